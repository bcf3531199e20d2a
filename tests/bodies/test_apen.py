"""The APEN model (slow tier: the fast tier checks its pieces, piecewise frame
averaging and EM, in test_piecewise.py): exactly piecewise invariant with the true
partition (upper bound), globally E(3)-invariant with predicted parts,
eq.nn.APEN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

B = eq.bodies


def _first(g):
    return eq.groups.EuclideanElement(g.R[0], g.t[0])


@pytest.mark.slow
def test_apen_true_parts_piecewise_predicted_parts_global(key):
    body = eq.datasets.articulated(1, 0, num_parts=3, points_per_part=12, noise=0.0)
    labels = jnp.asarray(body.labels[0])
    E3 = eq.groups.E3

    def program(key, x):
        params = B.apen_init(jax.random.key(0, impl="rbg"), 4, hidden=16)
        params = jax.tree_util.tree_map(lambda p: p.astype(x.dtype), params)
        g = E3.sample(key, (3,))
        moved = jnp.einsum("nij,nj->ni", g.R[labels], x) + g.t[labels]
        true = jax.nn.one_hot(labels, 3, dtype=x.dtype)
        xs = jnp.stack([x, moved, E3.act(_first(g), x)])
        apply_true = jax.vmap(lambda y: B.apen(params, y, num_parts=3, parts=true)[0])
        apply_pred = jax.vmap(lambda y: B.apen(params, y, num_parts=3, em_steps=8))
        lt = apply_true(xs[:2])
        lp, parts = apply_pred(xs[jnp.array([0, 2, 1])])
        return lt, lp, parts

    with jax.enable_x64(True):
        x = jnp.asarray(body.points[0], jnp.float64)
        lt, lp, parts = jax.jit(program)(key, x)
    scale = float(jnp.max(jnp.abs(lt[0])))
    # true partition: each part moved by its own rigid motion, logits unchanged
    assert float(jnp.max(jnp.abs(lt[1] - lt[0]))) < 1e-8 * scale
    # predicted parts: a global motion leaves logits and parts unchanged
    assert float(jnp.max(jnp.abs(lp[1] - lp[0]))) < 1e-8 * scale
    np.testing.assert_allclose(parts[1], parts[0], atol=1e-8)
    np.testing.assert_allclose(np.asarray(parts[0]).sum(-1), 1.0, atol=1e-9)


@pytest.mark.slow
def test_apen_nnx_module():
    from flax import nnx

    model = nnx.jit(
        lambda: eq.nn.APEN(
            4, 3, hidden=16, rngs=nnx.Rngs(jax.random.key(0, impl="rbg"))
        )
    )()
    x = jnp.asarray(
        eq.datasets.articulated(1, 1, num_parts=3, points_per_part=12).points[0]
    )
    logits, parts = nnx.jit(lambda m, x: m(x))(model, x)
    assert logits.shape == (36, 4) and parts.shape == (36, 3)
    assert bool(jnp.all(jnp.isfinite(logits)))
    with pytest.raises(ValueError, match="num_parts"):
        eq.nn.APEN(4, 0, rngs=nnx.Rngs(0))
