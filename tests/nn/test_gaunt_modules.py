"""NNX wrappers: shapes, dtypes, equivariance (O(3) incl. reflections), gradients."""

import functools

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
    """Haar-distributed reflections (det = -1), NumPy: no compilation."""
    rng = np.random.default_rng(4)
    out = []
    for _ in range(n):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q * np.sign(np.diag(r))
        out.append(-q * np.sign(np.linalg.det(q)))
    return jnp.asarray(np.stack(out), jnp.float32)


@functools.cache
def _signal_D():
    """``eq.groups.act_irreps`` of the three reflections on the basis of
    ``0e+1o+2e`` (one compilation): ``D[r]`` acts on one such signal."""
    basis = e3nn.IrrepsArray("0e+1o+2e", jnp.eye(9))
    act = jax.jit(jax.vmap(eq.groups.act_irreps, (0, None)))(_reflections(), basis)
    return np.swapaxes(np.asarray(act.array), -1, -2)


def _act(r, x):
    """Reflection ``r`` on any ``IrrepsArray`` with ``l ≤ 2``: degree ``l`` with
    parity ``p`` moves like the signal block times ``p (-1)^l`` (det = -1)."""
    D = _signal_D()[r]
    a = np.asarray(x.array)
    out = np.empty_like(a)
    for (mul, ir), sl in zip(x.irreps, x.irreps.slices(), strict=True):
        blk = D[ir.l**2 : (ir.l + 1) ** 2, ir.l**2 : (ir.l + 1) ** 2]
        blk = blk * ir.p * (-1) ** ir.l
        chunk = a[..., sl].reshape(a.shape[:-1] + (mul, ir.dim))
        out[..., sl] = (chunk @ blk.T).reshape(a.shape[:-1] + (-1,))
    return e3nn.IrrepsArray(x.irreps, jnp.asarray(out))


def _normal(irreps, seed, shape):
    """Random ``IrrepsArray`` from NumPy (no compilation)."""
    irreps = e3nn.Irreps(irreps)
    a = np.random.default_rng(seed).normal(size=shape + (irreps.dim,))
    return e3nn.IrrepsArray(irreps, jnp.asarray(a, jnp.float32))


def _rel(a, b):
    return float(jnp.abs(a - b).max() / jnp.abs(b).max())


_call = nnx.jit(lambda m, *xs: m(*xs))


def test_gaunt_tensor_product_module():
    tp = GauntTensorProduct("4x0e+4x1o+4x2e", "4x0o+4x1e", lmax_out=2, rngs=nnx.Rngs(0))
    x1 = _normal("4x0e+4x1o+4x2e", 1, (6,))
    x2 = _normal("4x0o+4x1e", 2, (6,))
    y = _call(tp, x1, x2)
    assert y.irreps == e3nn.Irreps("4x0o+4x1e+4x2o") and y.shape == (6, 36)
    ref = jax.jit(gaunt_tensor_product, static_argnames="lmax_out")(
        x1, x2, lmax_out=2, weights1=tp.w1[...], weights2=tp.w2[...]
    )
    np.testing.assert_allclose(y.array, ref.array, atol=1e-6)
    for r in range(3):
        lhs = _call(tp, _act(r, x1), _act(r, x2)).array
        assert _rel(lhs, _act(r, y).array) < 1e-4


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
    x = _normal("3x0e+3x1o", 1, (2,))
    y = _call(tp, x, x)
    assert y.irreps == e3nn.Irreps("5x0e+5x1o") and y.dtype == jnp.float32
    lhs = _call(tp, _act(0, x), _act(0, x))
    assert _rel(lhs.array, _act(0, y).array) < 1e-4


def test_many_body_module_equivariant_and_trainable():
    mb = GauntManyBody("4x0e+4x1o+4x2e", correlation=3, lmax_out=2, rngs=nnx.Rngs(0))
    x = _normal("4x0e+4x1o+4x2e", 1, (5,))
    y = _call(mb, x)
    assert y.irreps == e3nn.Irreps("4x0e+4x1o+4x2e")
    for r in range(3):
        lhs = _call(mb, _act(r, x)).array
        assert _rel(lhs, _act(r, y).array) < 1e-4

    def loss(m):
        return jnp.sum(m(x).array ** 2)

    grads = nnx.jit(nnx.grad(loss))(mb)
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
