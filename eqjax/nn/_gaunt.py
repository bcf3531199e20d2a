"""Flax NNX wrappers around the Gaunt tensor products (parameters + calls only)."""

from __future__ import annotations

from typing import Any

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
from flax import nnx

from ..tensor_products import gaunt_many_body, gaunt_tensor_product, signal_irreps


class GauntTensorProduct(nnx.Module):
    """Gaunt tensor product with learnable per-degree, per-channel weights on both
    inputs (Luo et al., ICLR 2024, Sec. 4) and an optional per-degree channel mix.

    ``y = Mix_l( gaunt_tensor_product(w1 ⊙ x1, w2 ⊙ x2) )``; see
    :func:`eqjax.tensor_products.gaunt_tensor_product` for the irreps rules (one
    spherical function per channel).

    Args:
      irreps_in1, irreps_in2: e3nn irreps of the inputs, e.g. ``"8x0e+8x1o+8x2e"``.
      lmax_out: largest output degree.
      channels_out: if given, a learnable ``(C, channels_out)`` mix per degree;
        else the output keeps the ``C`` input channels.
      method, normalization: passed to the product.
      dtype: computation dtype (``None``: the inputs' dtype).
      param_dtype: parameter dtype.
      rngs: ``nnx.Rngs`` (keyword-only).

    Example:
      >>> import jax, e3nn_jax as e3nn
      >>> from flax import nnx
      >>> tp = GauntTensorProduct("4x0e+4x1o", "4x0e+4x1o", lmax_out=2,
      ...                         rngs=nnx.Rngs(0))
      >>> x = e3nn.normal("4x0e+4x1o", jax.random.key(1), (10,))
      >>> tp(x, x).irreps
      4x0e+4x1o+4x2e
    """

    def __init__(
        self,
        irreps_in1: Any,
        irreps_in2: Any,
        *,
        lmax_out: int,
        channels_out: int | None = None,
        method: str = "auto",
        normalization: str = "integral",
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        s1 = signal_irreps(irreps_in1, "irreps_in1")
        s2 = signal_irreps(irreps_in2, "irreps_in2")
        if s1.channels != s2.channels and 1 not in (s1.channels, s2.channels):
            raise ValueError(f"channel counts differ: {irreps_in1} vs {irreps_in2}")
        self.irreps_in1, self.irreps_in2 = (
            e3nn.Irreps(irreps_in1),
            e3nn.Irreps(irreps_in2),
        )
        self.C = max(s1.channels, s2.channels)
        self.lmax_out = lmax_out
        self.method, self.normalization = method, normalization
        self.dtype = dtype
        init = jax.nn.initializers.normal(1.0)
        self.w1 = nnx.Param(init(rngs.params(), (self.C, s1.lmax + 1), param_dtype))
        self.w2 = nnx.Param(init(rngs.params(), (self.C, s2.lmax + 1), param_dtype))
        self.channels_out = channels_out
        if channels_out is not None:
            mix = jax.nn.initializers.normal(self.C**-0.5)
            self.mix = nnx.Param(
                mix(rngs.params(), (lmax_out + 1, self.C, channels_out), param_dtype)
            )

    def __call__(self, x1: e3nn.IrrepsArray, x2: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        dtype = self.dtype or x1.dtype
        x1, x2 = x1.astype(dtype), x2.astype(dtype)
        y = gaunt_tensor_product(
            x1,
            x2,
            lmax_out=self.lmax_out,
            method=self.method,
            normalization=self.normalization,
            weights1=self.w1[...].astype(dtype),
            weights2=self.w2[...].astype(dtype),
        )
        if self.channels_out is None:
            return y
        return _mix(y, self.mix[...].astype(dtype))


def _mix(y: e3nn.IrrepsArray, w) -> e3nn.IrrepsArray:
    """Per-degree channel mix ``(L+1, C, C')`` of a ``C x l`` IrrepsArray."""
    chunks: list[jax.Array | None] = [
        jnp.einsum("...ci,cd->...di", ch, w[ir.l])
        for (_, ir), ch in zip(y.irreps, y.chunks, strict=True)
    ]
    irreps = e3nn.Irreps([(w.shape[-1], ir) for _, ir in y.irreps])
    return e3nn.from_chunks(irreps, chunks, y.shape[:-1], y.dtype)


class GauntManyBody(nnx.Module):
    """Many-body product basis of correlation order ``ν`` computed with Gaunt powers
    (Luo et al., ICLR 2024): ``Σ_{n≤ν} w_out[n] ⊙ (w_in[n] ⊙ x)^n``, then an
    optional per-degree channel mix — the Gaunt counterpart of MACE's symmetric
    contraction.

    Args:
      irreps_in: irreps of ``x`` (parity ``p = +1``: ``"C x 0e + C x 1o + …"``).
      correlation: ``ν ≥ 1``.
      lmax_out: largest output degree.
      channels_out: optional per-degree channel mix.
      method, normalization: passed to the products.
      dtype, param_dtype, rngs: as in :class:`GauntTensorProduct`.

    Example:
      >>> import jax, e3nn_jax as e3nn
      >>> from flax import nnx
      >>> mb = GauntManyBody("4x0e+4x1o+4x2e", correlation=3, lmax_out=1,
      ...                    rngs=nnx.Rngs(0))
      >>> mb(e3nn.normal("4x0e+4x1o+4x2e", jax.random.key(1), (5,))).irreps
      4x0e+4x1o
    """

    def __init__(
        self,
        irreps_in: Any,
        *,
        correlation: int,
        lmax_out: int,
        channels_out: int | None = None,
        method: str = "auto",
        normalization: str = "integral",
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        s = signal_irreps(irreps_in, "irreps_in")
        if (
            isinstance(correlation, bool)
            or not isinstance(correlation, int)
            or correlation < 1
        ):
            raise ValueError(f"correlation must be a positive int, got {correlation!r}")
        if s.parity != 1:
            raise ValueError(f"GauntManyBody needs parity p=+1 irreps, got {irreps_in}")
        self.irreps_in = e3nn.Irreps(irreps_in)
        self.C, self.correlation, self.lmax_out = s.channels, correlation, lmax_out
        self.method, self.normalization, self.dtype = method, normalization, dtype
        init = jax.nn.initializers.normal(1.0)
        self.w_in = nnx.Param(
            init(rngs.params(), (correlation, s.channels, s.lmax + 1), param_dtype)
        )
        self.w_out = nnx.Param(
            init(rngs.params(), (correlation, s.channels, lmax_out + 1), param_dtype)
            / correlation
        )
        self.channels_out = channels_out
        if channels_out is not None:
            mix = jax.nn.initializers.normal(s.channels**-0.5)
            self.mix = nnx.Param(
                mix(
                    rngs.params(), (lmax_out + 1, s.channels, channels_out), param_dtype
                )
            )

    def __call__(self, x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        dtype = self.dtype or x.dtype
        y = gaunt_many_body(
            x.astype(dtype),
            self.w_in[...].astype(dtype),
            self.w_out[...].astype(dtype),
            lmax_out=self.lmax_out,
            method=self.method,
            normalization=self.normalization,
        )
        if self.channels_out is None:
            return y
        return _mix(y, self.mix[...].astype(dtype))
