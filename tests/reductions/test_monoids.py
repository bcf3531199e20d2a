"""Learnable commutative monoids (Ong & Veličković, LoG 2022): exact
commutativity, penalties, and the penalty weight lowering the permutation error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq
import eqjax.reductions._monoids as M
from eqjax.reductions import (
    GRUCellParams,
    MLPParams,
    Monoid,
    aggregate,
    associativity_penalty,
    identity_penalty,
    init_mlp_op,
    logsumexp_monoid,
    max_monoid,
    min_monoid,
    product_monoid,
    sum_monoid,
    symmetric_gru_monoid,
    symmetric_gru_op,
    symmetric_mlp_monoid,
    symmetric_mlp_op,
    tree_aggregator,
    tree_reduce,
    tree_reduce_dense,
)
from eqjax.reductions._switch import plain_definitions


def normal(seed, shape, dtype=jnp.float32, scale=1.0):
    """NumPy draws: test inputs without compiling a random kernel per shape."""
    x = scale * np.random.default_rng(seed).normal(size=shape)
    return jnp.asarray(x.astype(dtype))  # cast on the host: no conversion kernel


def maxdiff(x, y) -> float:
    """Largest absolute difference, computed in NumPy (no kernel per shape)."""
    return float(np.abs(np.asarray(x) - np.asarray(y)).max())


def gru_params(seed, D, dtype=jnp.float32, bias=0.0):
    """Parameters distributed like ``init_gru_cell``'s (biases ``bias``-scaled
    normals instead)."""
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(D)
    w = lambda shape: jnp.asarray(rng.uniform(-s, s, shape).astype(dtype))
    b = lambda shape: jnp.asarray(
        (bias * rng.normal(size=shape) + rng.uniform(-s, s, shape)).astype(dtype)
    )
    return GRUCellParams(w((D, 3 * D)), w((D, 3 * D)), b(3 * D), b(3 * D))


def mlp_params(seed, D, H, dtype=jnp.float32, bias=0.0):
    """Parameters distributed like ``init_mlp_op``'s (biases ``bias``-scaled
    normals)."""
    rng = np.random.default_rng(seed)
    n = lambda shape, fan: jnp.asarray(
        (rng.normal(size=shape) / np.sqrt(fan)).astype(dtype)
    )
    b = lambda shape: jnp.asarray((bias * rng.normal(size=shape)).astype(dtype))
    return MLPParams(n((D, H), 2 * D), n((D, H), 2 * D), b(H), n((H, D), H), b(D))


CELLS = {
    "gru": lambda seed, D, dt: symmetric_gru_op(gru_params(seed, D, dt)),
    "mlp": lambda seed, D, dt: symmetric_mlp_op(mlp_params(seed, D, 2 * D, dt)),
}


@pytest.mark.parametrize(
    "dtype", [jnp.float32, pytest.param(jnp.float64, marks=pytest.mark.slow)]
)
def test_learnable_ops_are_exactly_commutative(dtype):
    """op(a, b) == op(b, a) bit for bit under jit, with mirrored gradients.
    Control: the bare GRU cell h(a, b) is not commutative (the check bites)."""
    with jax.enable_x64(dtype == jnp.float64):
        a, b = (
            np.asarray(normal(1, (257, 8), dtype)),
            np.array(normal(2, (257, 8), dtype)),
        )
        b[:5, :3], b[7] = a[:5, :3], a[7]  # shared prefixes, a tie
        bare = gru_params(0, 8, dtype)

        @jax.jit
        def both_orders(a, b):
            ops = [CELLS[cell](0, 8, dtype) for cell in sorted(CELLS)]
            control = (
                eq.reductions.gru_cell(bare, a, b),
                eq.reductions.gru_cell(bare, b, a),
            )
            # gradients are mirror images: d/da op(a, b) == d/db op(b, a)
            return control, [
                (
                    op(a, b),
                    op(b, a),
                    jax.grad(lambda a, op=op: jnp.sum(jnp.sin(op(a, b))))(a),
                    jax.grad(lambda a, op=op: jnp.sum(jnp.sin(op(b, a))))(a),
                )
                for op in ops
            ]

        control, results = both_orders(a, b)
        assert maxdiff(*control) > 1e-2
        for ab, ba, ga, gb in results:
            assert ab.dtype == dtype
            np.testing.assert_array_equal(ab, ba)  # bit for bit
            rtol = 1e-5 if dtype == jnp.float32 else 1e-12
            np.testing.assert_allclose(ga, gb, rtol=rtol)


@pytest.mark.slow
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_learnable_op_commutative_eager_and_vmap_slow(cell):
    op = CELLS[cell](0, 8, jnp.float32)
    a, b = normal(1, (2, 3, 65, 8))
    np.testing.assert_array_equal(op(a, b), op(b, a))
    np.testing.assert_array_equal(jax.vmap(op)(a, b), jax.vmap(op)(b, a))


def test_learnable_monoids_are_monoid_records():
    """symmetric_gru_monoid / symmetric_mlp_monoid are Monoids used like the exact
    ones, and give the same results as the operators they wrap."""
    D = 4
    g = gru_params(0, D)
    m = mlp_params(1, D, 8)
    e = jnp.asarray(np.linspace(-1.0, 1.0, D, dtype=np.float32))
    x = normal(2, (7, D))
    ids = jnp.array([0, 0, 1, 1, 1, 3, 3])
    monoids = [(symmetric_gru_monoid(g, e), symmetric_gru_op(g))]
    monoids.append((symmetric_mlp_monoid(m, e), symmetric_mlp_op(m)))

    @jax.jit
    def both(x):
        out = []
        for monoid, op in monoids:
            kw = dict(identity=monoid.identity, max_segment_size=4)
            out.append(
                (
                    tree_reduce(monoid.op, x, ids, 4, **kw),
                    aggregate(x, ids, 4, op=monoid.op, **kw),
                    tree_aggregator(monoid.op, **kw)(x, ids, 4),
                    tree_reduce(op, x, ids, 4, identity=e, max_segment_size=4),
                )
            )
        return out

    for (monoid, _), (a, b, c, want) in zip(monoids, both(x), strict=True):
        assert isinstance(monoid, Monoid) and monoid.name.startswith("symmetric_")
        np.testing.assert_array_equal(a, want)
        np.testing.assert_array_equal(b, want)
        np.testing.assert_array_equal(c, want)
        np.testing.assert_array_equal(a[2], e)  # empty segment: the identity
    with pytest.raises(ValueError, match=r"identity must have shape \(\) or \(4,\)"):
        symmetric_gru_monoid(g, jnp.zeros(3))


D = 5


def _setup():
    """float64 GRU and MLP parameters with non-zero biases, operands, cotangent."""
    a = normal(0, (3, 4, D), jnp.float64)
    b = normal(1, (3, 4, D), jnp.float64)
    g = gru_params(2, D, jnp.float64, bias=1.0)
    m = mlp_params(3, D, 2 * D, jnp.float64, bias=1.0)
    ct = jnp.asarray(np.cos(np.asarray(a) + 2 * np.asarray(b)))
    return g, m, a, b, ct


def _derivatives(fn, g, a, b, ct, forward=True):
    """Reverse mode w.r.t. parameters and both operands, and forward mode, of
    ``fn(params, a, b)``."""
    loss = lambda p, x, y: jnp.sum(ct * jnp.sin(fn(p, x, y)))
    grads = jax.tree.leaves(jax.grad(loss, argnums=(0, 1, 2))(g, a, b))
    if not forward:
        return grads
    tangents = (jax.tree.map(lambda x: 0.1 * jnp.ones_like(x), g), b, a)
    return grads, jax.jvp(fn, (g, a, b), tangents)[1]


def _gru_definition(p, x, y):
    h = lambda u, v: eq.reductions.gru_cell(p, u, v)
    return 0.5 * (h(x, y) + h(y, x))


def _fused_gru(p, x, y):
    return symmetric_gru_op(p)(x, y)


def test_learnable_ops_equal_their_definition():
    """The fused symmetric ops (shared projections, one output layer; the GRU's
    differentiation rule) equal the definition ½ (h(a, b) + h(b, a)) written out
    with ``gru_cell`` / the MLP, values and reverse-mode derivatives w.r.t.
    operands and every parameter (forward mode: the next test), float64, non-zero
    biases.
    Commutativity alone would not catch, e.g., an operand paired with its own
    projections (h(a, a) + h(b, b) is symmetric too)."""
    with jax.enable_x64(True):
        g, m, a, b, ct = _setup()

        def h_mlp(x, y):
            pre = x @ m.w_a + y @ m.w_b + m.b_1[None, None]
            return jax.nn.relu(pre) @ m.w_2 + m.b_2[None, None]

        @jax.jit
        def everything(a, b):
            return (
                (_fused_gru(g, a, b), _gru_definition(g, a, b)),
                (symmetric_mlp_op(m)(a, b), 0.5 * (h_mlp(a, b) + h_mlp(b, a))),
                eq.reductions.gru_cell(g, a, b),
                _derivatives(_fused_gru, g, a, b, ct, forward=False),
                _derivatives(_gru_definition, g, a, b, ct, forward=False),
            )

        (gru, gru_want), (mlp, mlp_want), one_way, got, want = everything(a, b)
        np.testing.assert_allclose(gru, gru_want, atol=1e-13)
        np.testing.assert_allclose(mlp, mlp_want, atol=1e-13)
        for u, v in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(u, v, atol=1e-12)
        # control: the one-direction cell is far from the symmetrised op
        assert maxdiff(gru, one_way) > 1e-2


def test_symmetric_gru_rule_equals_its_plain_definition():
    """The GRU op's hand-written differentiation rule (one coefficient array per
    projection) gives the derivatives that JAX computes from the plain definition
    beside it (``_symmetric_gates_plain``, switched in by
    ``_switch.plain_definitions``): reverse mode w.r.t. operands and every
    parameter, forward mode (float64). Control: the comparison catches a rule
    with one wrong coefficient."""
    with jax.enable_x64(True):
        g, _, a, b, ct = _setup()
        # a fresh trace each time: the switch is read while tracing
        fresh = lambda: jax.jit(lambda *args: _derivatives(_fused_gru, *args))
        got = fresh()(g, a, b, ct)
        op = symmetric_gru_op(g)
        jaxpr = lambda: str(jax.make_jaxpr(lambda a, b: op(a, b))(a, b))
        assert "custom_jvp_call" in jaxpr()
        with plain_definitions("symmetric_gru"):
            assert "custom_jvp_call" not in jaxpr()
            plain = fresh()(g, a, b, ct)
        for u, v in zip(jax.tree.leaves(got), jax.tree.leaves(plain), strict=True):
            np.testing.assert_allclose(u, v, atol=1e-12)

        # control: scale one coefficient of the rule (d out / d gh_n) by 1.01
        real = M._gate_terms

        def wrong(gi, gh, h):
            out, c_r, c_z, c_in, c_hn, z = real(gi, gh, h)
            return out, c_r, c_z, c_in, 1.01 * c_hn, z

        M._gate_terms = wrong
        try:
            bad = fresh()(g, a, b, ct)
        finally:
            M._gate_terms = real
        assert maxdiff(bad[0][-2], plain[0][-2]) > 1e-6


@pytest.mark.slow
def test_symmetric_gru_rule_second_order_slow():
    """Higher derivatives follow from the rule (numerical check, order 2)."""
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        g, _, a, b, _ = _setup()
        op = symmetric_gru_op(g)
        check_grads(op, (a, b), order=2, modes=("fwd", "rev"))


def test_tree_of_commutative_op_invariant_to_swapping_children():
    """Commutativity alone: swapping the two halves (root children) is exact."""
    with jax.enable_x64(True):
        x = np.asarray(normal(3, (5, 8, 4), jnp.float64))
        swapped = np.concatenate([x[:, 4:], x[:, :4]], axis=1)
        # but moving items between subtrees changes the result (no associativity)
        p = np.array([1, 0, 2, 3, 4, 5, 6, 7])
        f = lambda x: tree_reduce_dense(CELLS["gru"](0, 4, x.dtype), x, identity=0.0)
        y, ys, yp = jax.jit(jax.vmap(f))(np.stack([x, swapped, x[:, p]]))
        np.testing.assert_allclose(y, ys, atol=1e-12)
        assert maxdiff(y, yp) > 1e-4


def test_penalties_vanish_on_exact_monoids_only():
    with jax.enable_x64(True):
        a, b, c = np.asarray(normal(0, (3, 32, 4), jnp.float64))
        exact = (
            sum_monoid(),
            max_monoid(),
            min_monoid(),
            logsumexp_monoid(),
            product_monoid(),
        )
        add = lambda x, y: jax.tree_util.tree_map(jnp.add, x, y)
        tree = {"u": a, "v": b[:, :2]}

        @jax.jit
        def penalties(a, b, c):
            learned = [CELLS[cell](1, 4, jnp.float64) for cell in CELLS]
            return (
                [
                    (
                        associativity_penalty(m.op, a, b, c),
                        identity_penalty(m.op, m.identity, a),
                    )
                    for m in exact
                ],
                [
                    (
                        associativity_penalty(op, a, b, c, normalize=True),
                        identity_penalty(op, jnp.zeros(4), a),
                    )
                    for op in learned
                ]
                + [(associativity_penalty(learned[-1], a, b, c),)],
                associativity_penalty(add, tree, tree, tree),  # pytree operands
            )

        zero, nonzero, tree_pen = penalties(a, b, c)
        assert all(float(v) < 1e-20 for pair in zero for v in pair)
        assert all(float(v) > 1e-4 for row in nonzero for v in row)
        assert float(tree_pen) == 0.0


def _invariance_errors(weights, steps):
    """Train an MLP op near its random initialisation with the scale-free
    associativity penalty (on partial aggregates of sets of size 8) at each weight;
    return the relative permutation-invariance error on sets of size 8, 16, 32."""
    import optax

    D = 8
    p0 = init_mlp_op(jax.random.key(0), D, 16)
    opt = optax.adam(3e-3)
    zero = jnp.zeros(D)

    def loss(p, lam, key):
        op = symmetric_mlp_op(p)
        k1, k2 = jax.random.split(key)
        x = jax.random.normal(k1, (32, 8, D))
        grp = jax.random.randint(k2, (32, 8), 0, 3)
        abc = [tree_reduce_dense(op, x, identity=zero, mask=grp == g) for g in range(3)]
        anchor = sum(
            jnp.sum((u - v) ** 2)
            for u, v in zip(jax.tree.leaves(p), jax.tree.leaves(p0), strict=True)
        )
        return anchor + lam * associativity_penalty(op, *abc, normalize=True)

    @jax.jit
    def train_and_measure(lam):
        def step(carry, key):
            p, st = carry
            u, st = opt.update(jax.grad(loss)(p, lam, key), st)
            return (optax.apply_updates(p, u), st), None

        keys = jax.random.split(jax.random.key(1), steps)
        (p, _), _ = jax.lax.scan(step, (p0, opt.init(p0)), keys)
        op = symmetric_mlp_op(p)
        errs = []
        for n in (8, 16, 32):
            x = jax.random.normal(jax.random.key(7), (64, n, D))
            perm = eq.groups.Sn(n).sample(jax.random.key(8), (64,))
            f = lambda x: tree_reduce_dense(op, x, identity=zero)
            y, yp = f(x), f(eq.groups.act_set(perm, x))
            spread = jnp.mean(jnp.linalg.norm(y - y[::-1], axis=-1))
            errs.append(jnp.mean(jnp.linalg.norm(y - yp, axis=-1)) / spread)
        return jnp.stack(errs)

    return np.stack([np.asarray(train_and_measure(jnp.float32(w))) for w in weights])


@pytest.mark.slow
def test_invariance_error_falls_monotonically_slow():
    errs = _invariance_errors([0.0, 1.0, 10.0, 100.0], steps=300)
    assert (errs[0] > 0.3).all()  # the random operator is far from invariant
    mean = errs.mean(axis=1)
    assert (np.diff(mean) < 0).all(), errs
    assert mean[-1] < 0.6 * mean[0], errs
