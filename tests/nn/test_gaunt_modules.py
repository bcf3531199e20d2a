"""NNX wrappers: shapes, dtypes, equivariance (O(3) incl. reflections), gradients."""

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq
from eqjax.nn import GauntManyBody, GauntTensorProduct
from eqjax.tensor_products import gaunt_tensor_product


def _reflections(n=3):
    R = eq.groups.O3.sample(jax.random.key(4), (n,), jnp.float32)
    return R * -jnp.sign(jnp.linalg.det(R))[:, None, None]


def _rel(a, b):
    return float(jnp.abs(a - b).max() / jnp.abs(b).max())


def test_gaunt_tensor_product_module():
    tp = GauntTensorProduct("4x0e+4x1o+4x2e", "4x0o+4x1e", lmax_out=2, rngs=nnx.Rngs(0))
    x1 = e3nn.normal("4x0e+4x1o+4x2e", jax.random.key(1), (6,))
    x2 = e3nn.normal("4x0o+4x1e", jax.random.key(2), (6,))
    y = tp(x1, x2)
    assert y.irreps == e3nn.Irreps("4x0o+4x1e+4x2o") and y.shape == (6, 36)
    ref = gaunt_tensor_product(
        x1, x2, lmax_out=2, weights1=tp.w1[...], weights2=tp.w2[...]
    )
    np.testing.assert_allclose(y.array, ref.array, atol=1e-6)
    for R in _reflections():
        lhs = tp(eq.groups.act_irreps(R, x1), eq.groups.act_irreps(R, x2)).array
        assert _rel(lhs, eq.groups.act_irreps(R, y).array) < 1e-4


def test_channel_mix_and_dtypes():
    tp = GauntTensorProduct(
        "3x0e+3x1o",
        "3x0e+3x1o",
        lmax_out=1,
        channels_out=5,
        param_dtype=jnp.float32,
        dtype=jnp.float32,
        rngs=nnx.Rngs(0),
    )
    x = e3nn.normal("3x0e+3x1o", jax.random.key(1), (2,))
    y = tp(x, x)
    assert y.irreps == e3nn.Irreps("5x0e+5x1o") and y.dtype == jnp.float32
    R = _reflections(1)[0]
    lhs = tp(eq.groups.act_irreps(R, x), eq.groups.act_irreps(R, x))
    assert _rel(lhs.array, eq.groups.act_irreps(R, y).array) < 1e-4


def test_many_body_module_equivariant_and_trainable():
    mb = GauntManyBody("4x0e+4x1o+4x2e", correlation=3, lmax_out=2, rngs=nnx.Rngs(0))
    x = e3nn.normal("4x0e+4x1o+4x2e", jax.random.key(1), (5,))
    y = jax.jit(lambda m, x: m(x))(mb, x)
    assert y.irreps == e3nn.Irreps("4x0e+4x1o+4x2e")
    for R in _reflections():
        lhs = mb(eq.groups.act_irreps(R, x)).array
        assert _rel(lhs, eq.groups.act_irreps(R, y).array) < 1e-4

    def loss(m):
        return jnp.sum(m(x).array ** 2)

    grads = nnx.grad(loss)(mb)
    leaves = jax.tree.leaves(nnx.state(grads, nnx.Param))
    assert leaves and all(np.all(np.isfinite(g)) for g in leaves)
    assert any(float(jnp.abs(g).max()) > 0 for g in leaves)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="parity"):
        GauntManyBody("2x0o+2x1e", correlation=2, lmax_out=1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="correlation"):
        GauntManyBody("2x0e+2x1o", correlation=0, lmax_out=1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="parity"):
        GauntTensorProduct("0e+1e", "0e", lmax_out=1, rngs=nnx.Rngs(0))
