"""Group axioms, exp/log, decompositions, Haar checks and bad input."""

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eqjax as eq
from eqjax.testing import strategies as eqst

G = eq.groups
TOL = 1e-10

FLOAT_GROUPS = [
    G.SO2,
    G.O2,
    G.SO3,
    G.O3,
    G.SOn(4),
    G.On(5),
    G.axis_rotations((0.0, 1.0, 1.0)),
    G.SE3,
    G.E3,
    G.SEn(2),
    G.En(4),
    G.GLPlus(3),
    G.SL(3),
    G.GLPlus(2),
    G.SL(4),
    G.Aff(3),
]
ALL_GROUPS = FLOAT_GROUPS + [G.Sn(7), G.Sn(1)]

# one group of each kind in the fast tier (the rest run in the slow tier)
_FAST = {"SO2", "O3", "SE3", "Aff(3)", "Sn(7)"}  # Aff(3): GL(3) with translations
TIERED_GROUPS = [
    pytest.param(g, id=g.name, marks=[] if g.name in _FAST else [pytest.mark.slow])
    for g in ALL_GROUPS
]


def _close(a, b, tol=TOL):
    for u, v in zip(
        jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True
    ):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


def _act_input(group, key):
    if group.name.startswith("Sn"):
        return jax.random.normal(key, (group.dim, 4))
    return jax.random.normal(key, (6, group.dim))


@pytest.mark.parametrize("group", TIERED_GROUPS)
def test_group_axioms_and_action_homomorphism(group, key):
    """Associativity, identity, inverses; the action is a homomorphism; sampled
    batches have the asked shape and an unbatched element composes with a batch
    (one compiled program per group)."""

    def take(tree, *index):
        return jax.tree_util.tree_map(lambda v: v[index], tree)

    def pairs(key):
        # one sampling call and one inverse call (a QR and an LU each for the
        # matrix groups: the program's compile time is mostly these)
        k1, k2, k3 = jax.random.split(key, 3)
        elems = group.sample(k1, (3, 5))
        inv = group.inverse(elems)
        a, b, c = (take(elems, i) for i in range(3))
        inv_a, inv_b = take(inv, 0), take(inv, 1)
        g, h, inv_g = take(elems, 1, 0), take(elems, 2, 0), take(inv, 1, 0)
        comp, e = group.compose, group.identity((5,))
        x = _act_input(group, k2)
        shaped = group.sample(k3, (2, 3))
        return [
            (comp(comp(a, b), c), comp(a, comp(b, c))),
            (comp(e, a), a),
            (comp(a, e), a),
            (comp(a, inv_a), e),
            (comp(inv_b, b), e),
            (group.act(group.compose(g, h), x), group.act(g, group.act(h, x))),
            (group.act(group.identity(()), x), x),
            (group.act(inv_g, group.act(g, x)), x),
        ], (shaped, comp(g, shaped))

    with jax.enable_x64(True):
        checks, (shaped, composed) = jax.jit(pairs)(key)
        for u, v in checks:
            _close(u, v)
        for tree in (shaped, composed):
            assert all(v.shape[:2] == (2, 3) for v in jax.tree_util.tree_leaves(tree))


_EXP_LOG_FAST = {"SO3", "SE3"}


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(
            g, id=g.name, marks=[] if g.name in _EXP_LOG_FAST else [pytest.mark.slow]
        )
        for g in FLOAT_GROUPS
        if g.exp is not None and g.log is not None
    ],
)
def test_exp_log_round_trip(group, key):
    # log is defined on the identity component
    rot = G.SOn(group.dim) if group.has_reflections else group

    @jax.jit
    def program(key):
        g = rot.sample(key, (64,))
        xi = group.log(g)
        return g, xi, group.exp(xi), group.log(group.exp(xi))

    with jax.enable_x64(True):
        g, xi, g2, xi2 = program(key)
        _close(g2, g, 1e-9)
        # log ∘ exp on the principal domain (angles < π)
        _close(xi2, xi, 1e-8)


def test_so3_exp_log_edge_cases():
    @jax.jit
    def program(w, Rpi):  # one compiled program instead of eager op-by-op calls
        R = G.so3_exp(w)
        grad = jax.grad(lambda w: jnp.sum(G.so3_log(G.so3_exp(w))))(
            jnp.zeros_like(w[0])
        )
        return R, G.so3_log(R), G.so3_exp(G.so3_log(Rpi)), G.so3_log(Rpi), grad

    with jax.enable_x64(True):
        w = jnp.array(
            [[0.0, 0.0, 0.0], [1e-9, 0, 0], [0, 0, jnp.pi - 1e-6], [0, 3.0, 0]]
        )
        # rotations by exactly π: log returns axis·π giving back R, with the
        # axis's largest-magnitude component positive (documented choice)
        Rpi = jnp.stack(
            [
                jnp.diag(jnp.array([1.0, -1.0, -1.0])),
                jnp.diag(jnp.array([-1.0, -1.0, 1.0])),
                jnp.diag(jnp.array([-1.0, 1.0, -1.0])),
            ]
        )
        R, log_R, Rpi2, log_pi, grad = program(w, Rpi)
        _close(jnp.swapaxes(R, -1, -2) @ R, jnp.broadcast_to(jnp.eye(3), R.shape))
        _close(log_R, w, 1e-8)
        _close(Rpi2, Rpi)
        _close(log_pi, jnp.pi * jnp.eye(3)[jnp.array([0, 2, 1])])
        assert bool(jnp.all(jnp.isfinite(grad)))
        _close(grad, jnp.ones(3))


def test_se3_exp_log(key):
    @jax.jit
    def program(key):
        xi = jax.random.normal(key, (32, 6))
        w = xi[:, :3] / jnp.linalg.norm(xi[:, :3], axis=-1, keepdims=True)
        angle = jax.random.uniform(jax.random.fold_in(key, 1), (32, 1), maxval=3.0)
        xi = jnp.concatenate([w * angle, xi[:, 3:]], -1)
        # exp of a twist is the composition-compatible one-parameter subgroup
        g1, g2 = G.se3_exp(0.3 * xi), G.se3_exp(0.7 * xi)
        return xi, G.se3_log(G.se3_exp(xi)), G.SE3.compose(g1, g2), G.se3_exp(xi)

    with jax.enable_x64(True):
        xi, xi2, g12, g = program(key)
        _close(xi2, xi, 1e-9)
        _close(g12, g, 1e-9)


@pytest.mark.slow
def test_glplus_sl_exp_one_parameter(key):
    with jax.enable_x64(True):
        X = 0.3 * jax.random.normal(key, (4, 3, 3))
        for grp in (G.GLPlus(3), G.SL(3)):
            _close(grp.compose(grp.exp(0.4 * X), grp.exp(0.6 * X)), grp.exp(X), 1e-9)
        np.testing.assert_allclose(jnp.linalg.det(G.SL(3).exp(X)), 1.0, atol=1e-10)


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(G.SL(3), id="SL(3)"),
        pytest.param(G.GLPlus(3), id="GLPlus(3)", marks=pytest.mark.slow),
        pytest.param(G.GLPlus(5), id="GLPlus(5)", marks=pytest.mark.slow),
        pytest.param(G.SL(4), id="SL(4)", marks=pytest.mark.slow),
    ],
)
def test_decompositions_round_trip(group, key):
    n = group.dim

    @jax.jit
    def program(key):
        A = group.sample(key, (16,))
        P, Q = G.polar_decomposition(A)
        K, d, N = G.iwasawa_decomposition(A)
        again = G.iwasawa_decomposition(G.iwasawa_compose(K, d, N))[1]
        dets = [jnp.linalg.det(M) for M in (A, Q, K, P)]
        return A, P, Q, K, d, N, again, jnp.linalg.eigvalsh(P), dets

    with jax.enable_x64(True):
        A, P, Q, K, d, N, again, eig, (detA, detQ, detK, detP) = program(key)
        eye = jnp.broadcast_to(jnp.eye(n), A.shape)
        _close(G.polar_compose(P, Q), A, 1e-10)
        _close(P, jnp.swapaxes(P, -1, -2))
        assert bool(jnp.all(eig > 0))
        _close(Q @ jnp.swapaxes(Q, -1, -2), eye)
        np.testing.assert_allclose(detQ, 1.0, atol=1e-10)
        _close(G.iwasawa_compose(K, d, N), A, 1e-10)
        _close(K @ jnp.swapaxes(K, -1, -2), eye)
        np.testing.assert_allclose(detK, 1.0, atol=1e-10)
        assert bool(jnp.all(d > 0))
        _close(jnp.tril(N, -1), jnp.zeros_like(N))
        _close(jnp.diagonal(N, axis1=-2, axis2=-1), jnp.ones((16, n)))
        if group.name.startswith("SL"):
            np.testing.assert_allclose(detA, 1.0, atol=1e-10)
            np.testing.assert_allclose(jnp.prod(d, -1), 1.0, atol=1e-10)
            np.testing.assert_allclose(detP, 1.0, atol=1e-10)
        # the decompositions are unique: decomposing the recomposition is a fixed point
        _close(again, d)


def test_polar_gradient_finite_and_extreme_scales():
    """Finite gradients at repeated singular values; convergence at 1e±19..30 in
    float32 (the input is rescaled before the Newton iteration)."""

    @jax.jit
    def grads(As):
        loss = lambda A: jnp.sum(jnp.sin(G.polar_decomposition(A)[1]))
        return jax.vmap(jax.grad(loss))(As)

    with jax.enable_x64(True):
        As = jnp.stack([jnp.eye(3), 2.0 * jnp.eye(3), jnp.diag(jnp.array([1.0, 1, 3]))])
        assert bool(jnp.all(jnp.isfinite(grads(As))))
    scales = jnp.array([1e-30, 1e-19, 1.0, 1e30], jnp.float32)
    A = scales[:, None, None] * jnp.diag(jnp.array([1.0, 2.0, 0.5]))[None]
    P, Q = G.polar_decomposition(A)
    np.testing.assert_allclose(Q, jnp.broadcast_to(jnp.eye(3), Q.shape), atol=1e-6)
    np.testing.assert_allclose(
        P / scales[:, None, None], A / scales[:, None, None], rtol=1e-5
    )


def test_haar_so3_trace_moments_and_control(key):
    """Trace moments of Haar on SO(3); the check bites on small random rotations."""

    @jax.jit
    def traces(key):
        R = G.SO3.sample(key, (40_000,))
        small = G.so3_exp(0.3 * jax.random.normal(key, (40_000, 3)))
        return jnp.trace(R, axis1=-2, axis2=-1), jnp.trace(small, axis1=-2, axis2=-1)

    with jax.enable_x64(True):
        n = 40_000
        tr, tr_small = traces(key)
        # Haar on SO(3): E[tr] = 0, E[tr²] = 1, Var[tr] = 1, Var[tr²] = E[tr⁴] - 1 = 1
        se = 1.0 / np.sqrt(n)
        assert abs(float(tr.mean())) < 5 * se
        assert abs(float((tr**2).mean()) - 1.0) < 5 * se * 2
        # the rotation angle has density (1 - cos θ)/π: E[cos θ] = -1/2
        cos = 0.5 * (tr - 1.0)
        assert abs(float(cos.mean()) + 0.5) < 5 * se
        # control: small random rotations are far from Haar
        assert abs(float(tr_small.mean())) > 1.0


def _matrix(g):
    return g[0] if isinstance(g, tuple) else g


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(g, id=g.name, marks=[] if g.name == "O3" else [pytest.mark.slow])
        for g in (G.O2, G.O3, G.On(5), G.E3, G.Aff(3))
    ],
)
def test_reflections_half_the_time(group, key):
    det = jax.jit(lambda k: jnp.linalg.det(_matrix(group.sample(k, (4000,)))))(key)
    frac = float(jnp.mean(det < 0))
    assert abs(frac - 0.5) < 0.05


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(g, id=g.name, marks=[] if g.name == "SE3" else [pytest.mark.slow])
        for g in (G.SO2, G.SO3, G.SOn(4), G.SE3, G.GLPlus(3))
    ],
)
def test_orientation_preserving(group, key):
    det = jax.jit(lambda k: jnp.linalg.det(_matrix(group.sample(k, (500,)))))(key)
    assert bool(jnp.all(det > 0))


def test_axis_rotations_fix_axis(key):
    grp = G.axis_rotations((1.0, 2.0, 2.0))

    @jax.jit
    def program(key):
        R = grp.sample(key, (10,))
        theta = jax.random.uniform(key, (10,), minval=-3.0, maxval=3.0)
        return R, theta, grp.log(grp.exp(theta))

    with jax.enable_x64(True):
        axis = jnp.array([1.0, 2.0, 2.0]) / 3.0
        R, theta, theta2 = program(key)
        _close(R @ axis, jnp.broadcast_to(axis, (10, 3)))
        _close(theta2, theta)


def test_sn_uniform(key):
    p = G.Sn(3).sample(key, (6000,))
    codes = p[:, 0] * 9 + p[:, 1] * 3 + p[:, 2]
    counts = np.bincount(np.asarray(codes), minlength=27)
    counts = counts[counts > 0]
    assert len(counts) == 6
    assert counts.min() > 850 and counts.max() < 1150


@settings(max_examples=5)
@given(eqst.group_elements(G.O3, (3,)), eqst.group_elements(G.O3, (3,)))
def test_o3_hypothesis_homomorphism(g, h):
    x = jnp.ones((3, 3))
    np.testing.assert_allclose(
        G.O3.act(G.O3.compose(g, h), x), G.O3.act(g, G.O3.act(h, x)), atol=1e-5
    )


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises():
    x3 = jnp.ones((4, 3))
    with pytest.raises(
        ValueError, match=r"SO3.act \(g\) expects elements of shape \(\.\.\., 3, 3\)"
    ):
        G.SO3.act(jnp.eye(2), x3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        G.SO3.act(jnp.eye(3), jnp.ones((4, 2)))
    with pytest.raises(TypeError, match="floating"):
        G.SO3.act(jnp.eye(3, dtype=jnp.int32), x3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 7\)"):
        G.Sn(7).compose(jnp.arange(6), jnp.arange(7))
    with pytest.raises(ValueError, match="does not match"):
        G.Sn(5, item_axis=-2).act(jnp.arange(5), jnp.ones((4, 2)))
    with pytest.raises(TypeError, match="integer"):
        G.Sn(3).act(jnp.array([0.0, 1.0, 2.0]), jnp.ones((3, 2)))
    with pytest.raises(TypeError, match="EuclideanElement"):
        G.E3.act(jnp.eye(3), x3)
    with pytest.raises(TypeError, match="IrrepsArray"):
        G.act_irreps(jnp.eye(3), jnp.ones(3))
    with pytest.raises(ValueError, match="axis"):
        G.axis_rotations((0.0, 0.0))
    with pytest.raises(ValueError, match="non-zero"):
        G.axis_rotations((0.0, 0.0, 0.0))


def test_bad_input_raises_at_trace_time():
    with pytest.raises(ValueError, match="SO3"):
        jax.jit(G.SO3.act)(jnp.eye(2), jnp.ones(3))
    with pytest.raises(ValueError, match="act_graph"):
        g = eq.testing.random_graph(0, (3,), dtype=np.float32)
        jax.jit(G.act_graph)(jnp.arange(4), g)


def test_irreps_bad_dtype_mix():
    with pytest.raises(TypeError, match="dtype"):
        with jax.enable_x64(True):
            G.act_irreps(
                jnp.eye(3, dtype=jnp.float64), e3nn.zeros("1o", (), jnp.float32)
            )


def test_groups_are_cached_and_hashable():
    assert G.Sn(5) is G.Sn(5)
    assert G.SOn(3) is G.SO3
    assert hash(G.GLPlus(3)) == hash(G.GLPlus(3))
    assert G.axis_rotations((0, 0, 2)) is G.axis_rotations((0, 0, 1))


@given(st.sampled_from([1, 2, 5]), eqst.seeds())
def test_sampled_permutations_are_permutations(n, seed):
    p = G.Sn(n).sample(jax.random.key(seed), (4,))
    assert (np.sort(np.asarray(p), -1) == np.arange(n)).all()
