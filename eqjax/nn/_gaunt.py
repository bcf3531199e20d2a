"""Flax NNX wrappers around the Gaunt tensor products (parameters + calls only).

Every module validates its options at construction and its inputs (type, irreps,
dtype, weight shapes) at call time against that construction, naming the argument.
"""

from __future__ import annotations

from typing import Any

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
from flax import nnx

from ..tensor_products import (
    METHODS,
    gaunt_many_body,
    gaunt_tensor_product,
    signal_irreps,
)

_NORMALIZATIONS = ("component", "integral")


# ---------------------------------------------------------------------------
# validation shared by the NNX modules of eqjax.nn
# ---------------------------------------------------------------------------


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """A Python int ``≥ minimum`` (no bools, floats or strings)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a Python int ≥ {minimum}, got {value!r}")
    return value


def check_choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_dtype(value: Any, name: str, *, allow_none: bool) -> Any:
    if value is None and allow_none:
        return None
    try:
        dt = jnp.dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be a floating dtype, got {value!r}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"{name} must be a floating dtype, got {value!r}")
    return dt


def check_irreps_input(x: Any, irreps: e3nn.Irreps, name: str, owner: str):
    """``x`` is a floating ``IrrepsArray`` with exactly the construction irreps."""
    if not isinstance(x, e3nn.IrrepsArray):
        raise TypeError(
            f"{owner}: {name} must be an e3nn_jax.IrrepsArray with irreps {irreps}, "
            f"got {type(x).__name__}"
        )
    if e3nn.Irreps(x.irreps) != irreps:
        raise ValueError(
            f"{owner} was built for {name} with irreps {irreps}, got irreps "
            f"{x.irreps}; build the module with irreps {x.irreps} or convert the "
            "input (e.g. with eqjax.nn.Linear)"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{owner}: {name} must be floating point, got {x.dtype}")


def _check_lmax(value: Any) -> int:
    return check_int(value, "lmax_out", minimum=0)


# ---------------------------------------------------------------------------


class GauntTensorProduct(nnx.Module):
    """Gaunt tensor product with learnable per-degree, per-channel weights on both
    inputs (Luo et al., ICLR 2024, Sec. 4), optional per-item (e.g. per-edge,
    radial) weights, and an optional per-degree channel mix.

    ``y = Mix_l( gaunt_tensor_product(w1 ⊙ x1, (w2 · r) ⊙ x2) )`` where ``r`` are the
    optional ``weights`` of the call; see
    :func:`eqjax.tensor_products.gaunt_tensor_product` for the irreps rules (one
    spherical function per channel).

    Channels: both inputs carry ``C`` channels, or one carries one channel; the
    module has ``C = max(C1, C2)`` channels and its per-channel weights broadcast
    a one-channel input to ``C`` channels (e.g. node features ``"8x0e+8x1o"``
    times the edge harmonics ``"0e+1o+2e"``).

    Args:
      irreps_in1, irreps_in2: e3nn irreps of the inputs, e.g. ``"8x0e+8x1o+8x2e"``;
        the call checks its inputs against them.
      lmax_out: largest output degree (int ≥ 0).
      channels_out: if given (int ≥ 1), a learnable ``(C, channels_out)`` mix per
        degree; else the output keeps the ``C`` channels.
      method: one of :data:`eqjax.tensor_products.METHODS`.
      normalization: ``"component"`` (default, e3nn-jax's harmonics) or
        ``"integral"`` (orthonormal); see :mod:`eqjax.tensor_products`.
      dtype: computation dtype (``None``: the inputs' dtype). float16/bfloat16
        are computed in float32 and rounded back: relative error ≈ the format's
        rounding (< 5e-3 for float16, < 3e-2 for bfloat16; tested).
      param_dtype: parameter dtype.
      rngs: ``nnx.Rngs`` (keyword-only).

    Attributes:
      weight_numel: size of the per-item ``weights`` a call accepts,
        ``C · (L2 + 1)`` (one per channel and degree of ``x2``).

    Example:
      >>> import jax, e3nn_jax as e3nn
      >>> from flax import nnx
      >>> tp = GauntTensorProduct("4x0e+4x1o", "4x0e+4x1o", lmax_out=2,
      ...                         rngs=nnx.Rngs(0))
      >>> x = e3nn.normal("4x0e+4x1o", jax.random.key(1), (10,))
      >>> tp(x, x).irreps
      4x0e+4x1o+4x2e
      >>> sh = e3nn.normal("0e+1o+2e", jax.random.key(2), (10,))  # edge harmonics
      >>> edge = GauntTensorProduct("4x0e+4x1o", "0e+1o+2e", lmax_out=2,
      ...                           rngs=nnx.Rngs(0))
      >>> r = jax.numpy.ones((10, edge.weight_numel))             # radial weights
      >>> edge(x, sh, weights=r).shape
      (10, 36)
    """

    def __init__(
        self,
        irreps_in1: Any,
        irreps_in2: Any,
        *,
        lmax_out: int,
        channels_out: int | None = None,
        method: str = "auto",
        normalization: str = "component",
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        s1 = signal_irreps(irreps_in1, "irreps_in1")
        s2 = signal_irreps(irreps_in2, "irreps_in2")
        if s1.channels != s2.channels and 1 not in (s1.channels, s2.channels):
            raise ValueError(
                f"irreps_in1 ({irreps_in1}) and irreps_in2 ({irreps_in2}) must carry "
                "the same number of channels, or one of them a single channel"
            )
        self.lmax_out = _check_lmax(lmax_out)
        if channels_out is not None:
            check_int(channels_out, "channels_out")
        self.method = check_choice(method, "method", METHODS)
        self.normalization = check_choice(
            normalization, "normalization", _NORMALIZATIONS
        )
        self.dtype = check_dtype(dtype, "dtype", allow_none=True)
        param_dtype = check_dtype(param_dtype, "param_dtype", allow_none=False)
        self.irreps_in1, self.irreps_in2 = (
            e3nn.Irreps(irreps_in1),
            e3nn.Irreps(irreps_in2),
        )
        self.C = max(s1.channels, s2.channels)
        self.L1, self.L2 = s1.lmax, s2.lmax
        self.weight_numel = self.C * (s2.lmax + 1)
        init = jax.nn.initializers.normal(1.0)
        self.w1 = nnx.Param(init(rngs.params(), (self.C, s1.lmax + 1), param_dtype))
        self.w2 = nnx.Param(init(rngs.params(), (self.C, s2.lmax + 1), param_dtype))
        self.channels_out = channels_out
        if channels_out is not None:
            mix = jax.nn.initializers.normal(self.C**-0.5)
            self.mix = nnx.Param(
                mix(rngs.params(), (lmax_out + 1, self.C, channels_out), param_dtype)
            )

    def __call__(
        self, x1: e3nn.IrrepsArray, x2: e3nn.IrrepsArray, weights: Any = None
    ) -> e3nn.IrrepsArray:
        """``x1``, ``x2``: ``IrrepsArray`` ``(*batch, dim)`` with the construction
        irreps (batch axes broadcast); ``weights``: optional per-item weights
        ``(*batch, weight_numel)`` or ``(*batch, C, L2+1)`` multiplying ``x2``'s
        per-degree weights (e.g. a radial MLP of the edge length)."""
        owner = type(self).__name__
        check_irreps_input(x1, self.irreps_in1, "x1", owner)
        check_irreps_input(x2, self.irreps_in2, "x2", owner)
        if x1.dtype != x2.dtype:
            raise TypeError(f"{owner}: x1 and x2 dtypes differ: {x1.dtype}, {x2.dtype}")
        dtype = self.dtype or x1.dtype
        x1, x2 = x1.astype(dtype), x2.astype(dtype)
        w2 = self.w2[...].astype(dtype)
        if weights is not None:
            r = self._edge_weights(weights, x2.shape[:-1]).astype(dtype)
            w2 = w2.reshape((1,) * (r.ndim - 2) + w2.shape) * r
        y = gaunt_tensor_product(
            x1,
            x2,
            lmax_out=self.lmax_out,
            method=self.method,
            normalization=self.normalization,
            weights1=self.w1[...].astype(dtype),
            weights2=w2,
        )
        if self.channels_out is None:
            return y
        return _mix(y, self.mix[...].astype(dtype))

    def _edge_weights(self, weights: Any, batch: tuple[int, ...]):
        w = jnp.asarray(weights)
        shape = (self.C, self.L2 + 1)
        if w.ndim >= 2 and w.shape[-2:] == shape:
            out = w
        elif w.ndim >= 1 and w.shape[-1] == self.weight_numel:
            out = w.reshape(w.shape[:-1] + shape)
        else:
            raise ValueError(
                f"{type(self).__name__}: weights must have shape (*batch, "
                f"{self.weight_numel}) or (*batch, {self.C}, {self.L2 + 1}) "
                f"(channels × degrees of x2), got {w.shape}"
            )
        if not jnp.issubdtype(out.dtype, jnp.floating):
            raise TypeError(f"weights must be floating point, got {out.dtype}")
        try:
            jnp.broadcast_shapes(out.shape[:-2], batch)
        except ValueError:
            raise ValueError(
                f"weights of shape {w.shape} (batch {out.shape[:-2]}) do not "
                f"broadcast with the inputs' batch shape {batch}"
            ) from None
        return out


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
      irreps_in: irreps of ``x`` (parity ``p = +1``: ``"C x 0e + C x 1o + …"``);
        the call checks its input against them.
      correlation: ``ν ≥ 1``.
      lmax_out: largest output degree.
      channels_out: optional per-degree channel mix.
      method, normalization: passed to the products (validated here).
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
        normalization: str = "component",
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        s = signal_irreps(irreps_in, "irreps_in")
        correlation = check_int(correlation, "correlation")
        if s.parity != 1:
            raise ValueError(f"GauntManyBody needs parity p=+1 irreps, got {irreps_in}")
        self.lmax_out = _check_lmax(lmax_out)
        if channels_out is not None:
            check_int(channels_out, "channels_out")
        self.method = check_choice(method, "method", METHODS)
        self.normalization = check_choice(
            normalization, "normalization", _NORMALIZATIONS
        )
        self.dtype = check_dtype(dtype, "dtype", allow_none=True)
        param_dtype = check_dtype(param_dtype, "param_dtype", allow_none=False)
        self.irreps_in = e3nn.Irreps(irreps_in)
        self.C, self.correlation = s.channels, correlation
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
        check_irreps_input(x, self.irreps_in, "x", type(self).__name__)
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
