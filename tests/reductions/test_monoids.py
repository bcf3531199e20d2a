"""Learnable commutative monoids (Ong & Veličković, LoG 2022): exact
commutativity, penalties, and the penalty weight lowering the permutation error."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import eqjax as eq
from eqjax.reductions import (
    associativity_penalty,
    identity_penalty,
    init_gru_cell,
    init_mlp_op,
    logsumexp_monoid,
    max_monoid,
    min_monoid,
    product_monoid,
    sum_monoid,
    symmetric_gru_op,
    symmetric_mlp_op,
    tree_reduce_dense,
)

CELLS = {
    "gru": lambda k, D, dt: symmetric_gru_op(init_gru_cell(k, D, dtype=dt)),
    "mlp": lambda k, D, dt: symmetric_mlp_op(init_mlp_op(k, D, 2 * D, dtype=dt)),
}


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_learnable_op_is_exactly_commutative(cell, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        op = CELLS[cell](jax.random.key(0), 8, dtype)
        a = jax.random.normal(jax.random.key(1), (257, 8), dtype)
        b = jax.random.normal(jax.random.key(2), (257, 8), dtype)
        b = b.at[:5, :3].set(a[:5, :3]).at[7].set(a[7])  # shared prefixes, a tie
        for f in (op, jax.jit(op), jax.vmap(op)):
            ab, ba = f(a, b), f(b, a)
            assert ab.dtype == dtype
            np.testing.assert_array_equal(ab, ba)  # bit for bit
        # gradients are mirror images: d/da op(a, b) == d/db op(b, a)
        ga = jax.grad(lambda a: jnp.sum(jnp.sin(op(a, b))))(a)
        gb = jax.grad(lambda a: jnp.sum(jnp.sin(op(b, a))))(a)
        np.testing.assert_allclose(ga, gb, rtol=1e-5 if dtype == jnp.float32 else 1e-12)


def test_learnable_ops_equal_their_definition():
    """The fused symmetric ops (shared projections, one output layer) equal the
    definition ½ (h(a, b) + h(b, a)) written out directly, in float64, with
    non-zero biases. Commutativity alone would not catch, e.g., an operand paired with its own
    projections (h(a, a) + h(b, b) is symmetric too)."""
    with jax.enable_x64(True):
        D, H = 6, 10
        ks = jax.random.split(jax.random.key(3), 8)
        a = jax.random.normal(ks[0], (4, 5, D), jnp.float64)
        b = jax.random.normal(ks[1], (4, 5, D), jnp.float64)
        g = init_gru_cell(ks[2], D, dtype=jnp.float64)
        h_gru = lambda x, y: eq.reductions.gru_cell(g, x, y)
        want = 0.5 * (h_gru(a, b) + h_gru(b, a))
        np.testing.assert_allclose(symmetric_gru_op(g)(a, b), want, atol=1e-13)
        m = init_mlp_op(ks[3], D, H, dtype=jnp.float64)._replace(
            b_1=jax.random.normal(ks[4], (H,), jnp.float64),
            b_2=jax.random.normal(ks[5], (D,), jnp.float64),
        )

        def h_mlp(x, y):
            pre = x @ m.w_a + y @ m.w_b + m.b_1[None, None]
            return jax.nn.relu(pre) @ m.w_2 + m.b_2[None, None]

        want = 0.5 * (h_mlp(a, b) + h_mlp(b, a))
        np.testing.assert_allclose(symmetric_mlp_op(m)(a, b), want, atol=1e-13)
        # control: the one-direction cell is far from the symmetrised op
        assert float(jnp.abs(symmetric_gru_op(g)(a, b) - h_gru(a, b)).max()) > 1e-2


def test_symmetric_gru_derivatives_equal_autodiff_of_the_definition():
    """The GRU op's hand-written differentiation rule (one coefficient array per
    projection) gives the derivatives of ½ (h(a, b) + h(b, a)) differentiated by
    JAX: reverse mode w.r.t. operands and every parameter, forward mode, and
    second order (float64). Control: the same comparison catches a rule with one
    wrong coefficient."""
    from jax.test_util import check_grads

    import eqjax.reductions._monoids as M

    with jax.enable_x64(True):
        D = 5
        ks = jax.random.split(jax.random.key(7), 6)
        a = jax.random.normal(ks[0], (3, 4, D), jnp.float64)
        b = jax.random.normal(ks[1], (3, 4, D), jnp.float64)
        g = init_gru_cell(ks[2], D, dtype=jnp.float64)
        g = g._replace(
            b_i=jax.random.normal(ks[3], g.b_i.shape, jnp.float64),
            b_h=jax.random.normal(ks[4], g.b_h.shape, jnp.float64),
        )
        ct = jax.random.normal(ks[5], a.shape, jnp.float64)

        def definition(p, x, y):
            h = lambda u, v: eq.reductions.gru_cell(p, u, v)
            return 0.5 * (h(x, y) + h(y, x))

        def loss(f):
            return lambda p, x, y: jnp.sum(ct * jnp.sin(f(p, x, y)))

        fused = lambda p, x, y: symmetric_gru_op(p)(x, y)
        got = jax.grad(loss(fused), argnums=(0, 1, 2))(g, a, b)
        want = jax.grad(loss(definition), argnums=(0, 1, 2))(g, a, b)
        for u, v in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(u, v, atol=1e-12)
        tangents = (jax.tree.map(lambda x: 0.1 * jnp.ones_like(x), g), b, a)
        _, t_got = jax.jvp(fused, (g, a, b), tangents)
        _, t_want = jax.jvp(definition, (g, a, b), tangents)
        np.testing.assert_allclose(t_got, t_want, atol=1e-12)
        check_grads(lambda x, y: fused(g, x, y), (a, b), order=2, modes=("fwd", "rev"))

        # control: scale one coefficient of the rule (d out / d gh_n) by 1.01
        real = M._gate_terms

        def wrong(gi, gh, h):
            out, c_r, c_z, c_in, c_hn, z = real(gi, gh, h)
            return out, c_r, c_z, c_in, 1.01 * c_hn, z

        M._gate_terms = wrong
        try:
            bad = jax.grad(loss(fused), argnums=1)(g, a, b)
        finally:
            M._gate_terms = real
        assert float(jnp.abs(bad - want[1]).max()) > 1e-6


def test_control_unsymmetrised_cell_is_not_commutative():
    """The bare GRU cell h(a, b) is not commutative: the check bites."""
    p = init_gru_cell(jax.random.key(0), 8)
    a, b = jax.random.normal(jax.random.key(1), (2, 16, 8))
    err = jnp.abs(eq.reductions.gru_cell(p, a, b) - eq.reductions.gru_cell(p, b, a))
    assert float(err.max()) > 1e-2


def test_tree_of_commutative_op_invariant_to_swapping_children():
    """Commutativity alone: swapping the two halves (root children) is exact."""
    with jax.enable_x64(True):
        op = CELLS["gru"](jax.random.key(0), 4, jnp.float64)
        x = jax.random.normal(jax.random.key(3), (5, 8, 4), jnp.float64)
        f = lambda x: tree_reduce_dense(op, x, identity=0.0)
        swapped = jnp.concatenate([x[:, 4:], x[:, :4]], axis=1)
        np.testing.assert_allclose(f(x), f(swapped), atol=1e-12)
        # but a generic permutation changes the result (no associativity)
        p = eq.groups.Sn(8).sample(jax.random.key(4))
        assert float(jnp.abs(f(x) - f(eq.groups.act_set(p, x))).max()) > 1e-4


def test_penalties_vanish_on_exact_monoids_only():
    with jax.enable_x64(True):
        a, b, c = jax.random.normal(jax.random.key(0), (3, 32, 4), jnp.float64)
        for m in (
            sum_monoid(),
            max_monoid(),
            min_monoid(),
            logsumexp_monoid(),
            product_monoid(),
        ):
            assert float(associativity_penalty(m.op, a, b, c)) < 1e-20
            assert float(identity_penalty(m.op, m.identity, a)) < 1e-20
        for cell in CELLS:
            op = CELLS[cell](jax.random.key(1), 4, jnp.float64)
            assert float(associativity_penalty(op, a, b, c)) > 1e-4
            assert float(associativity_penalty(op, a, b, c, normalize=True)) > 1e-4
            assert float(identity_penalty(op, jnp.zeros(4), a)) > 1e-4
        # pytree operands
        tree = {"u": a, "v": b[:, :2]}
        add = lambda x, y: jax.tree_util.tree_map(jnp.add, x, y)
        assert float(associativity_penalty(add, tree, tree, tree)) == 0.0


def _invariance_errors(weights, steps):
    """Train an MLP op near its random initialisation with the scale-free
    associativity penalty (on partial aggregates of sets of size 8) at each weight;
    return the relative permutation-invariance error on sets of size 8, 16, 32."""
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


def test_invariance_error_falls_with_associativity_weight():
    errs = _invariance_errors([0.0, 100.0], steps=120)
    assert (errs[0] > 0.3).all()  # the random operator is far from invariant
    assert (errs[1] < 0.8 * errs[0]).all(), errs


@pytest.mark.slow
def test_invariance_error_falls_monotonically_slow():
    errs = _invariance_errors([0.0, 1.0, 10.0, 100.0], steps=300)
    mean = errs.mean(axis=1)
    assert (np.diff(mean) < 0).all(), errs
    assert mean[-1] < 0.6 * mean[0], errs
