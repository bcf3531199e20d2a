"""Our registry rows, checked here until the shared tests run them: equivariance in
float64/float32 under jit and vmap, finite gradients, dtype, degenerate inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqjax.testing._registry import registered
from eqjax.testing._rows_tensor_products import ROWS


def _err(row, x, Rs):
    fn = jax.jit(row.fn)
    y = fn(x)
    out = []
    for R in Rs:
        a = fn(row.act_in(R, x)).array
        b = row.act_out(R, y).array
        out.append(float(jnp.abs(a - b).max() / jnp.maximum(jnp.abs(b).max(), 1e-30)))
    return max(out)


def _rotations(dtype, n=2):
    R = ROWS[0].group.sample(jax.random.key(7), (n,), dtype)
    det = jnp.sign(jnp.linalg.det(R))
    return R * jnp.where(jnp.arange(n) % 2 == 0, -det, det)[:, None, None]


def test_rows_registered():
    names = {r.name for r in registered()}
    assert {r.name for r in ROWS} <= names


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_row(row):
    with jax.enable_x64(True):
        x = row.make_input(jax.random.key(0), jnp.float64)
        assert _err(row, x, _rotations(jnp.float64)) < row.tol64
        for xd in row.degenerate_inputs(jnp.float64):
            g = jax.grad(lambda t: jnp.sum(row.fn(t).array ** 2))(xd)
            assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(g))
        # vmap over a batch of inputs
        xs = [row.make_input(jax.random.key(i), jnp.float64) for i in range(2)]
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *xs)
        yb = jax.vmap(row.fn)(stacked)
        np.testing.assert_allclose(yb.array[1], row.fn(xs[1]).array, atol=1e-12)
    x32 = row.make_input(jax.random.key(1), jnp.float32)
    y32 = row.fn(x32)
    assert y32.dtype == jnp.float32
    assert _err(row, x32, _rotations(jnp.float32)) < row.tol32
