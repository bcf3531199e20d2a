"""The ArtEq-style model: exact under the octahedral rotations (and translations),
approximate (the control) under a generic rotation; kinematic trees checked."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

B = eq.bodies
PARENTS = [-1, 0, 1, 0]


def test_arteq_exact_on_the_grid_group_control_off_it(key):
    body = eq.datasets.articulated(1, 0, num_parts=4, points_per_part=8)

    def program(key, x):
        params = B.arteq_init(jax.random.key(0, impl="rbg"), 4, hidden=16)
        params = jax.tree_util.tree_map(lambda p: p.astype(x.dtype), params)
        G = eq.geometric.octahedral_rotations(dtype=x.dtype)
        k1, k2 = jax.random.split(key)
        q = jnp.concatenate(
            [
                G[jax.random.randint(k1, (4,), 0, 24)],
                eq.groups.SO3.sample(k2, (2,), x.dtype),
            ]
        )
        xs = jnp.concatenate([x[None], jnp.einsum("qij,nj->qni", q, x) + 0.7])
        logits, R = jax.vmap(lambda y: B.arteq(params, y, PARENTS))(xs)
        err_l = jnp.max(jnp.abs(logits[1:] - logits[:1]), axis=(1, 2))
        err_r = jnp.max(
            jnp.abs(R[1:] - jnp.einsum("qij,kjl->qkil", q, R[0])), axis=(1, 2, 3)
        )
        return err_l, err_r, R[0]

    with jax.enable_x64(True):
        err_l, err_r, R = jax.jit(program)(
            key, jnp.asarray(body.points[0], jnp.float64)
        )
    assert float(jnp.max(err_l[:4])) < 1e-9 and float(jnp.max(err_r[:4])) < 1e-9
    assert float(jnp.min(err_r[4:])) > 1e-3  # control: generic rotations are not exact
    np.testing.assert_allclose(
        np.swapaxes(R, -1, -2) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-12
    )


def test_check_tree_bad_input():
    assert B.check_tree([-1, 0, 0, 2]) == (-1, 0, 0, 2)
    assert B.check_tree([2, -1, 1]) == (2, -1, 1)  # any order
    with pytest.raises(ValueError, match="exactly one root"):
        B.check_tree([-1, -1, 0])
    with pytest.raises(ValueError, match="exactly one root"):
        B.check_tree([1, 2, 0])
    with pytest.raises(ValueError, match="cycle"):
        B.check_tree([-1, 2, 1])
    with pytest.raises(ValueError, match="out-of-range"):
        B.check_tree([-1, 5])
    with pytest.raises(TypeError, match="ints"):
        B.check_tree([-1.0, 0.0])
    with pytest.raises(ValueError, match="parents for a model"):
        B.arteq(
            B.arteq_init(jax.random.key(0), 2, hidden=4), jnp.ones((4, 3)), [-1, 0, 0]
        )


@pytest.mark.slow
def test_arteq_nnx_module():
    from flax import nnx

    model = eq.nn.ArtEq([-1, 0, 1], hidden=8, rngs=nnx.Rngs(0))
    logits, R = nnx.jit(lambda m, x: m(x))(
        model, jnp.ones((6, 3)) * jnp.arange(6.0)[:, None]
    )
    assert logits.shape == (6, 3) and R.shape == (3, 3, 3)
    with pytest.raises(ValueError, match="not a tree"):
        eq.nn.ArtEq([-1, -1], rngs=nnx.Rngs(0))
