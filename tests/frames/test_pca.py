import jax
import jax.numpy as jnp
import numpy as np
import pytest
from frames_util import equivariance_error, invariance_error, point_backbones
from hypothesis import given, settings
from hypothesis import strategies as st

import eqjax as eq

GROUPS = {
    "O3": eq.groups.O3,
    "SO3": eq.groups.SO3,
    "E3": eq.groups.E3,
    "SE3": eq.groups.SE3,
}
ACT = {k: eq.frames.cloud_action(G) for k, G in GROUPS.items()}
N = 7


def _setup(name, seed, dtype, n=N):
    G = GROUPS[name]._replace(act=ACT[name])
    key = jax.random.key(seed)
    phi, psi = point_backbones(key, n, dtype=dtype)
    x = jax.random.normal(jax.random.fold_in(key, 7), (n, 3), dtype) + 0.3
    gs = G.sample(jax.random.fold_in(key, 9), (6,), dtype)
    frame = eq.frames.pca_frame(name)
    f_inv = eq.frames.frame_average(phi, frame, act_in=G.act)
    f_eqv = eq.frames.frame_average(psi, frame, act_in=G.act, act_out=G.act)
    return G, x, gs, f_inv, f_eqv


@settings(max_examples=12)
@given(name=st.sampled_from(sorted(GROUPS)), seed=st.integers(0, 10_000))
def test_pca_frame_exact_float64(name, seed):
    with jax.enable_x64(True):
        G, x, gs, f_inv, f_eqv = _setup(name, seed, jnp.float64)
        assert float(jnp.max(jnp.abs(f_inv(x)))) > 1e-3  # not a trivial zero output
        assert invariance_error(f_inv, G.act, gs, x) < 1e-9
        assert equivariance_error(f_eqv, G.act, G.act, gs, x) < 1e-9


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_pca_frame_float32(name):
    G, x, gs, f_inv, f_eqv = _setup(name, 3, jnp.float32)
    y = f_inv(x)
    assert y.dtype == jnp.float32 and f_eqv(x).dtype == jnp.float32
    assert invariance_error(f_inv, G.act, gs, x) < 1e-4
    assert equivariance_error(f_eqv, G.act, G.act, gs, x) < 1e-4


def test_reflections_and_translations_are_sampled():
    with jax.enable_x64(True):
        g = eq.groups.E3.sample(jax.random.key(0), (64,))
        dets = np.linalg.det(np.asarray(g.R))
        assert (dets < 0).any() and (dets > 0).any()
        assert float(jnp.min(jnp.linalg.norm(g.t, axis=-1))) > 0


@pytest.mark.parametrize("name", ["O3", "E3"])
def test_jit_vmap_grad(name):
    with jax.enable_x64(True):
        G, x, gs, f_inv, f_eqv = _setup(name, 11, jnp.float64)
        xs = jnp.stack([x, 2 * x + 1.0, -x])
        jf = jax.jit(jax.vmap(f_inv))
        np.testing.assert_allclose(
            jf(xs), jnp.stack([f_inv(v) for v in xs]), rtol=1e-10
        )
        gx = jax.vmap(lambda g: G.act(g, x))(gs)
        ys = jax.jit(jax.vmap(f_inv))(gx)
        assert float(jnp.max(jnp.abs(ys - f_inv(x)[None]))) < 1e-9 * float(
            jnp.max(jnp.abs(ys))
        )
        # Gradients: finite, and equivariant (the frame is held fixed, which keeps
        # the averaged function's gradient equivariant).
        loss = jax.jit(jax.grad(lambda x: jnp.sum(f_inv(x) ** 2)))
        g0 = gs[0] if name == "O3" else gs.R[0]
        gr = loss(x)
        assert bool(jnp.all(jnp.isfinite(gr)))
        gr_rot = loss(G.act(jax.tree_util.tree_map(lambda e: e[0], gs), x))
        np.testing.assert_allclose(gr_rot, gr @ g0.T, atol=1e-9)


def test_control_so3_frame_fails_under_reflection():
    """The 4-element SO(3) frame is not O(3)-equivariant: the check must bite."""
    with jax.enable_x64(True):
        phi, _ = point_backbones(jax.random.key(0), N, dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (N, 3), jnp.float64)
        f = eq.frames.frame_average(phi, eq.frames.pca_frame("SO3"), act_in=ACT["O3"])
        assert eq.frames.pca_frame("SO3")(x).weights.shape == (4,)
        R = eq.groups.SO3.sample(jax.random.key(2), (4,), jnp.float64)
        reflections = -R  # det = -1
        assert invariance_error(f, ACT["O3"], R, x) < 1e-9
        assert invariance_error(f, ACT["O3"], reflections, x) > 1e-2


def test_control_no_frame_is_not_invariant():
    with jax.enable_x64(True):
        phi, _ = point_backbones(jax.random.key(0), N, dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (N, 3), jnp.float64)
        gs = eq.groups.E3.sample(jax.random.key(2), (4,), jnp.float64)
        assert invariance_error(phi, ACT["E3"], gs, x) > 1e-2


@pytest.mark.parametrize(
    "name,k", [("O(2)", 4), ("SO(2)", 2), ("E(4)", 16), ("SE(5)", 16)]
)
def test_general_dimension(name, k):
    with jax.enable_x64(True):
        d = int(name.split("(")[1][:-1])
        G = {
            "O": eq.groups.On,
            "SO": eq.groups.SOn,
            "E": eq.groups.En,
            "SE": eq.groups.SEn,
        }[name.split("(")[0]](d)
        G = G._replace(act=eq.frames.cloud_action(G))
        phi, psi = point_backbones(jax.random.key(d), 9, d=d, dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (9, d), jnp.float64)
        frame = eq.frames.pca_frame(name)
        assert frame(x).weights.shape == (k,)
        gs = G.sample(jax.random.key(2), (4,), jnp.float64)
        f = eq.frames.frame_average(phi, frame, act_in=G.act)
        fe = eq.frames.frame_average(psi, frame, act_in=G.act, act_out=G.act)
        assert invariance_error(f, G.act, gs, x) < 1e-9
        assert equivariance_error(fe, G.act, G.act, gs, x) < 1e-9


def test_special_frames_have_det_one():
    x = jax.random.normal(jax.random.key(0), (3, 8, 3))
    fr = eq.frames.pca_frame("SE3")(x)
    assert fr.elements.R.shape == (3, 4, 3, 3)
    np.testing.assert_allclose(jnp.linalg.det(fr.elements.R), 1.0, atol=1e-5)
    R = eq.frames.pca_frame("O3")(x).elements
    eye = jnp.broadcast_to(jnp.eye(3), R.shape)
    np.testing.assert_allclose(jnp.swapaxes(R, -1, -2) @ R, eye, atol=1e-5)


def test_masked_points_match_unpadded():
    with jax.enable_x64(True):
        phi, psi = point_backbones(jax.random.key(0), 6, dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (6, 3), jnp.float64)
        pad = jnp.concatenate([x, 100 * jnp.ones((3, 3))])
        mask = jnp.arange(9) < 6
        frame = eq.frames.pca_frame("E3")
        a, b = frame(x), frame(pad, mask)
        np.testing.assert_allclose(a.elements.R, b.elements.R, atol=1e-12)
        np.testing.assert_allclose(a.elements.t, b.elements.t, atol=1e-12)
        # Masked clouds through frame_average: input (points, mask), act on points.
        act = lambda g, xm: (ACT["E3"](g, xm[0]), xm[1])
        f = eq.frames.frame_average(lambda xm: phi(xm[0][:6]), frame, act_in=act)
        g = eq.groups.E3.sample(jax.random.key(3), (), jnp.float64)
        np.testing.assert_allclose(f((pad, mask)), f(act(g, (pad, mask))), rtol=1e-9)
        np.testing.assert_allclose(
            f((pad, mask)),
            eq.frames.frame_average(phi, frame, act_in=ACT["E3"])(x),
            rtol=1e-10,
        )


def test_bad_inputs():
    frame = eq.frames.pca_frame("E3")
    with pytest.raises(ValueError, match="at least 3 points"):
        frame(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="mask"):
        frame(jnp.ones((5, 3)), jnp.ones(4, bool))
    with pytest.raises(ValueError, match=r"\(\.\.\., n, 3\)"):
        frame(jnp.ones((5, 2)))
    with pytest.raises(TypeError, match="floating"):
        frame(jnp.ones((5, 3), jnp.int32))
    with pytest.raises(ValueError, match="unknown group name"):
        eq.frames.pca_frame("SU2")
    # All-padded cloud: finite frame and finite averaged output, gap diagnostic 0.
    phi, _ = point_backbones(jax.random.key(0), 5)
    x, mask = jnp.ones((5, 3)), jnp.zeros(5, bool)
    fr = frame(x, mask)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree_util.tree_leaves(fr))
    act = lambda g, xm: (ACT["E3"](g, xm[0]), xm[1])
    f = eq.frames.frame_average(lambda xm: phi(xm[0]), frame, act_in=act)
    assert bool(jnp.all(jnp.isfinite(f((x, mask)))))
    assert float(eq.frames.pca_spectrum(x, mask)[2]) == 0.0
