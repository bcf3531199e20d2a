"""The tensor-product registry rows are registered (tests/test_common.py checks
them: equivariance in float64/float32 under jit and vmap, gradients, dtype,
degenerate inputs)."""

import jax
import jax.numpy as jnp

from eqjax.tensor_products._rows import ROWS
from eqjax.testing import registered


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
