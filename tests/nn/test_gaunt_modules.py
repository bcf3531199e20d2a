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


def _tp(**kw):
    args = dict(lmax_out=2, rngs=nnx.Rngs(0)) | kw
    return GauntTensorProduct("4x0e+4x1o", "4x0e+4x1o", **args)


def test_module_checks_inputs_against_its_construction():
    """Issue 12, §3: wrong parity, an extra degree, a non-IrrepsArray, mixed dtypes
    and bad per-edge weights are refused naming the argument and both irreps."""
    tp = _tp()
    good = _normal("4x0e+4x1o", 1, (3,))
    with pytest.raises(
        ValueError, match=r"x1 with irreps 4x0e\+4x1o, got irreps 4x0o\+4x1e"
    ):
        tp(_normal("4x0o+4x1e", 1, (3,)), good)
    with pytest.raises(
        ValueError, match=r"x2 with irreps 4x0e\+4x1o, got irreps 4x0e\+4x1o\+4x2e"
    ):
        tp(good, _normal("4x0e+4x1o+4x2e", 1, (3,)))
    with pytest.raises(TypeError, match="x1 must be an e3nn_jax.IrrepsArray"):
        tp(good.array, good)
    with pytest.raises(TypeError, match="dtypes differ"):
        tp(good, good.astype(jnp.float16))
    with pytest.raises(ValueError, match="weights must have shape"):
        tp(good, good, weights=jnp.ones((3, 7)))
    with pytest.raises(ValueError, match="do not broadcast"):
        tp(good, good, weights=jnp.ones((4, tp.weight_numel)))
    mb = GauntManyBody("2x0e+2x1o", correlation=2, lmax_out=1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"GauntManyBody was built for x"):
        mb(_normal("2x0e+2x1o+2x2e", 1, ()))


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(method="fft"), "method"),
        (dict(normalization="norm"), "normalization"),
        (dict(lmax_out=-1), "lmax_out"),
        (dict(lmax_out=2.0), "lmax_out"),
        (dict(channels_out=0), "channels_out"),
        (dict(channels_out="4"), "channels_out"),
        (dict(dtype=jnp.int32), "dtype"),
        (dict(param_dtype="nope"), "param_dtype"),
    ],
)
def test_every_option_validated_at_construction(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _tp(**kw)
    mb_kw = {k: v for k, v in kw.items() if k != "channels_out"} | (
        {"channels_out": kw["channels_out"]} if "channels_out" in kw else {}
    )
    with pytest.raises((ValueError, TypeError), match=match):
        GauntManyBody("2x0e+2x1o", correlation=2, **(dict(lmax_out=1) | mb_kw),
                      rngs=nnx.Rngs(0))  # fmt: skip
    with pytest.raises(ValueError, match="correlation"):
        GauntManyBody("2x0e+2x1o", correlation=2.0, lmax_out=1, rngs=nnx.Rngs(0))


def test_single_channel_input_with_per_channel_weights():
    """A one-channel input times a C-channel one: the module's per-channel weights
    broadcast it (the docstring's promise), equal to copying it into C channels."""
    tp = GauntTensorProduct("0e+1o", "4x0e+4x1o", lmax_out=2, rngs=nnx.Rngs(0))
    x1, x2 = _normal("0e+1o", 1, (3,)), _normal("4x0e+4x1o", 2, (3,))
    y = _call(tp, x1, x2)
    assert y.irreps == e3nn.Irreps("4x0e+4x1o+4x2e")
    ref = gaunt_tensor_product(
        x1, x2, lmax_out=2, weights1=tp.w1[...], weights2=tp.w2[...]
    )
    np.testing.assert_allclose(y.array, ref.array, atol=1e-5)
    assert _rel(_call(tp, _act(0, x1), _act(0, x2)).array, _act(0, y).array) < 1e-4


@pytest.mark.parametrize("dtype,tol", [(jnp.float16, 5e-3), (jnp.bfloat16, 3e-2)])
def test_half_precision_within_documented_tolerance(dtype, tol):
    tp = _tp()
    x = _normal("4x0e+4x1o", 3, (4,)).astype(dtype)
    y = _call(tp, x, x)
    assert y.dtype == dtype
    ref = _call(tp, x.astype(jnp.float32), x.astype(jnp.float32)).array
    err = jnp.abs(y.array.astype(jnp.float32) - ref).max() / jnp.abs(ref).max()
    assert float(err) < tol
