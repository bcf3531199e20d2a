"""Gaunt tensor products on e3nn-jax ``IrrepsArray``s (Luo et al., ICLR 2024)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from . import _kernels as K
from . import _plan

METHODS = ("auto", "fourier_fft", "fourier_direct", "s2grid")
"""Accepted values of ``method``."""

_NORMALIZATIONS = ("integral", "component")


class SignalIrreps(NamedTuple):
    """What an irreps string means as spherical functions (see
    :func:`signal_irreps`): ``channels`` functions per input, each of degree
    ``≤ lmax``, with degree ``l`` carrying parity ``parity · (-1)^l``."""

    channels: int
    lmax: int
    parity: int


def signal_irreps(irreps: Any, name: str = "irreps") -> SignalIrreps:
    """Read ``irreps`` as ``C`` spherical functions, the input the Gaunt products
    accept, or raise the error they would raise.

    Every degree ``l`` present must appear once, with the same multiplicity ``C``
    (the channel count), and with parity ``p·(-1)^l`` for one ``p`` (``"0e+1o+2e"``:
    ``p = +1``; ``"0o+1e+2o"``: ``p = -1``); missing degrees are zero.

    Args:
      irreps: anything ``e3nn.Irreps`` accepts.
      name: how error messages call the argument.

    Returns:
      ``SignalIrreps(channels=C, lmax=L, parity=p)``.

    Raises:
      ValueError: no irreps, a repeated degree, unequal multiplicities or a parity
        pattern that is not one spherical function.

    Example:
      >>> signal_irreps("4x0e+4x1o+4x2e")
      SignalIrreps(channels=4, lmax=2, parity=1)
      >>> signal_irreps("0o+1e").parity
      -1
    """
    irreps = e3nn.Irreps(irreps)
    entries = [(mul, ir) for mul, ir in irreps if mul > 0]
    if not entries:
        raise ValueError(f"{name} has no irreps ({irreps!r})")
    ls = [ir.l for _, ir in entries]
    if len(set(ls)) != len(ls):
        raise ValueError(
            f"{name}: each degree l may appear once (one spherical function per "
            f"channel), got irreps {irreps}; regroup or split the input."
        )
    muls = {mul for mul, _ in entries}
    if len(muls) != 1:
        raise ValueError(
            f"{name}: every degree must carry the same number of channels, got "
            f"irreps {irreps}."
        )
    p0 = {ir.p * (-1) ** ir.l for _, ir in entries}
    if len(p0) != 1:
        raise ValueError(
            f"{name} has irreps {irreps}, which are not the coefficients of one "
            "spherical function: Gaunt products need every degree l with parity "
            "p·(-1)^l for a single p (e.g. '0e+1o+2e' for p=+1 or '0o+1e+2o' for "
            "p=-1). Split the input by parity class, or use e3nn.tensor_product "
            "for general irreps."
        )
    return SignalIrreps(channels=muls.pop(), lmax=max(ls), parity=p0.pop())


class _Signal:
    """An ``IrrepsArray`` read as ``C`` spherical functions: ``c[..., C, (L+1)²]``."""

    def __init__(self, x: Any, name: str):
        if not isinstance(x, e3nn.IrrepsArray):
            raise TypeError(
                f"{name} must be an e3nn_jax.IrrepsArray, got {type(x).__name__}"
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name} must be floating point, got dtype {x.dtype}")
        irreps = e3nn.Irreps(x.irreps)
        self.C, self.L, self.p = signal_irreps(irreps, name)
        self.dtype = x.dtype
        self.batch = x.shape[:-1]
        self.c = _read_signal(x.array, irreps, self.C, self.L)


@functools.cache
def _signal_index(irreps: e3nn.Irreps, C: int, L: int):
    """Gather indices ``(C, (L+1)²)`` into ``x.array`` (``irreps.dim`` = a zero pad)
    for ``c[..., C, (L+1)²]``, or ``None`` when ``c`` is ``x.array`` reshaped."""
    idx = np.full((C, (L + 1) ** 2), irreps.dim, dtype=np.int32)
    for (mul, ir), sl in zip(irreps, irreps.slices(), strict=True):
        if mul == 0:
            continue
        block = sl.start + np.arange(mul * ir.dim).reshape(mul, ir.dim)
        idx[:, ir.l * ir.l : (ir.l + 1) ** 2] = block
    if C == 1 and np.array_equal(idx[0], np.arange(idx.shape[1])):
        return None
    return idx


def _read_signal(array, irreps: e3nn.Irreps, C: int, L: int):
    """``x.array[..., irreps.dim] -> c[..., C, (L+1)²]`` with one gather."""
    idx = _signal_index(irreps, C, L)
    if idx is None:
        return array.reshape(array.shape[:-1] + (1, array.shape[-1]))
    if (idx == irreps.dim).any():
        zero = jnp.zeros(array.shape[:-1] + (1,), array.dtype)
        array = jnp.concatenate([array, zero], axis=-1)
    return jnp.take(array, jnp.asarray(idx), axis=-1)


def _check_lmax(lmax_out: Any, default: int) -> int:
    if lmax_out is None:
        return default
    if isinstance(lmax_out, bool) or not isinstance(lmax_out, int) or lmax_out < 0:
        raise ValueError(
            f"lmax_out must be a non-negative Python int, got {lmax_out!r}"
        )
    return lmax_out


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _check_normalization(normalization: str) -> None:
    if normalization not in _NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}"
        )


def _apply_degree_weights(sig: _Signal, w: Any, name: str) -> None:
    """Multiply degree ``l`` of every channel by ``w[..., l]``."""
    if w is None:
        return
    w = jnp.asarray(w)
    if w.ndim == 0 or w.shape[-1] != sig.L + 1:
        raise ValueError(
            f"{name} must have shape (..., {sig.L + 1}) (one weight per degree "
            f"0..{sig.L}, channels/batch broadcast), got {w.shape}"
        )
    target = sig.batch + (sig.C, sig.L + 1)
    try:
        jnp.broadcast_shapes(w.shape, target)
    except ValueError:
        raise ValueError(
            f"{name} of shape {w.shape} does not broadcast against the input's "
            f"(*batch, channels, degrees) = {target}"
        ) from None
    if not jnp.issubdtype(w.dtype, jnp.floating) and not jnp.issubdtype(
        w.dtype, jnp.integer
    ):
        raise TypeError(f"{name} must be real numbers, got dtype {w.dtype}")
    ls = jnp.asarray([l for l in range(sig.L + 1) for _ in range(2 * l + 1)])
    sig.c = _aligned_mul(sig.c, jnp.take(w, ls, axis=-1).astype(sig.dtype))
    # weights may broadcast the input: per-channel weights on a one-channel input,
    # per-item (e.g. per-edge) weights on a shared input
    sig.batch, sig.C = tuple(sig.c.shape[:-2]), int(sig.c.shape[-2])


def _aligned_mul(a, b):
    """``a * b`` with NumPy broadcasting made explicit: leading unit axes first."""
    rank = max(a.ndim, b.ndim)
    return K.lead_axes(a, rank) * K.lead_axes(b, rank)


def _broadcast(sigs: Sequence[_Signal]):
    dtypes = {s.dtype for s in sigs}
    if len(dtypes) != 1:
        raise TypeError(f"inputs must share one dtype, got {sorted(map(str, dtypes))}")
    Cs = {s.C for s in sigs} - {1}
    if len(Cs) > 1:
        raise ValueError(
            f"channel counts must match or be 1, got {[s.C for s in sigs]}"
        )
    C = Cs.pop() if Cs else 1
    try:
        batch = jnp.broadcast_shapes(*[s.batch for s in sigs])
    except ValueError as e:
        raise ValueError(
            f"batch shapes {[s.batch for s in sigs]} do not broadcast"
        ) from e
    return C, batch


def _out_irreps(C: int, L: int, p: int) -> e3nn.Irreps:
    return e3nn.Irreps([(C, (l, p * (-1) ** l)) for l in range(L + 1)])


def _to_irreps_array(c, C: int, L: int, p: int, batch) -> e3nn.IrrepsArray:
    """``c[..., C, (L+1)²] ->`` ``IrrepsArray`` ``(*batch, C (L+1)²)`` (one gather
    from the channel-major layout to e3nn's degree-major one; none when ``C = 1``)."""
    K = (L + 1) ** 2
    c = jnp.broadcast_to(c, batch + (C, K)).reshape(batch + (C * K,))
    if C > 1:
        idx = np.concatenate(
            [
                (np.arange(C)[:, None] * K + l * l + np.arange(2 * l + 1)).ravel()
                for l in range(L + 1)
            ]
        )
        c = jnp.take(c, jnp.asarray(idx, np.int32), axis=-1)
    return e3nn.IrrepsArray(_out_irreps(C, L, p), c)


def _product(sigs: list[_Signal], lmax_out, method, normalization) -> e3nn.IrrepsArray:
    _check_method(method)
    _check_normalization(normalization)
    C, batch = _broadcast(sigs)
    Ls = [s.L for s in sigs]
    L_out = _check_lmax(lmax_out, sum(Ls))
    p = 1
    for s in sigs:
        p *= s.p
    n = math.prod(batch + (C,))
    if method == "auto":
        method = _plan.choose_method(Ls, L_out, n)
    # equal ranks: the inputs' batch axes broadcast by size only (no rank promotion)
    rank = len(batch) + 2
    dtype, work = _work_dtype(sigs[0].dtype)
    cs = [K.lead_axes(s.c, rank).astype(work) for s in sigs]
    if method == "s2grid":
        plan = _plan.planned_s2grid(Ls, L_out, n, work)
        out = K.product_s2grid(
            cs,
            Ls,
            L_out,
            layout=plan.layout,
            chunk=plan.chunk,
            signals_last=plan.signals_last,
        )
    elif method == "fourier_fft":
        out = K.product_fourier_fft(cs, Ls, L_out)
    else:
        out = K.product_fourier_direct(cs, Ls, L_out)
    if normalization == "component":
        out = out * jnp.asarray(K.SQRT_4PI ** (len(sigs) - 1), out.dtype)
    return _to_irreps_array(out.astype(dtype), C, L_out, p, batch)


def _work_dtype(dtype):
    """``(dtype, computation dtype)``: float16/bfloat16 inputs are computed in
    float32 and rounded back (error: the output's half-precision rounding)."""
    dtype = jnp.dtype(dtype)
    return dtype, (jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype)


def gaunt_tensor_product(
    x1: e3nn.IrrepsArray,
    x2: e3nn.IrrepsArray,
    *,
    lmax_out: int | None = None,
    method: str = "auto",
    normalization: str = "component",
    weights1: Any = None,
    weights2: Any = None,
) -> e3nn.IrrepsArray:
    """Gaunt tensor product: the spherical-harmonic coefficients of the pointwise
    product of two spherical functions (Luo et al., "Enabling Efficient Equivariant
    Operations in the Fourier Basis via Gaunt Tensor Products", ICLR 2024).

    Each input is read as ``C`` spherical functions ``f(x) = Σ_lm c_lm Y_lm(x)`` with
    e3nn-jax's real harmonics: ``normalization="component"`` (default) uses e3nn-jax's
    default harmonics (``e3nn.spherical_harmonics(..., normalization="component")``,
    ``Σ_m Y_lm(x)² = 2l+1``; the grid values of
    ``e3nn.to_s2grid(x, ..., normalization="integral")``), ``"integral"`` the
    orthonormal ones, ``√(4π)`` times smaller (``∫ Y_i Y_j dΩ = δ_ij``). The output
    holds the coefficients (in the same normalisation) of ``f1·f2`` truncated at
    ``lmax_out``; for two inputs this is ``Σ c1_i c2_j G_ijk`` with ``G`` =
    :func:`gaunt_coefficients` (times ``√(4π)`` for ``"component"``). The table
    relating these to e3nn-jax's names is in :mod:`eqjax.tensor_products`. Only
    paths with even ``l1+l2+l3`` exist (see :func:`gaunt_vector_product` for the
    odd ones).

    Irreps: every degree ``l`` must appear once per input with the same multiplicity
    ``C`` (the channel count) and parity ``p·(-1)^l`` for one ``p`` per input
    (``"0e+1o+2e"``: ``p=+1``; ``"0o+1e+2o"``: ``p=-1``); missing degrees are zero.
    The output irreps are ``C x l (p1 p2 (-1)^l)`` for ``l = 0 … lmax_out``. Leading
    axes broadcast; channels broadcast when one side has ``C = 1`` (product is
    channel-wise).

    Args:
      x1, x2: ``IrrepsArray`` of shape ``(*batch, irreps.dim)``.
      lmax_out: largest output degree (default ``L1 + L2``, the exact product).
      method: ``"fourier_fft"`` (2D FFT convolution, ``O(L² log L)`` plus
        ``O(L³)`` conversions), ``"fourier_direct"`` (direct 2D convolution,
        ``O(L⁴)``, small ``L``), ``"s2grid"`` (Gauss–Legendre grid, exact) or
        ``"auto"`` (:func:`choose_method`: the measured table on CPU,
        ``"s2grid"`` on backends without one). All agree to float rounding.
      normalization: ``"component"`` (default) or ``"integral"`` (see above).
      weights1, weights2: optional per-degree weights ``(..., L+1)`` applied in the
        SH domain before the product (the paper's parameterisation), broadcast
        against ``(*batch, C, L+1)``.

    Returns:
      ``IrrepsArray`` ``(*batch, C (lmax_out+1)²)``, dtype of the inputs.

    Raises:
      ValueError: irreps that are not one spherical function per channel (wrong
        parity pattern, repeated ``l``, unequal multiplicities), bad ``lmax_out``,
        ``method`` or ``normalization``.
      TypeError: non-``IrrepsArray`` inputs or mixed dtypes.

    Example:
      >>> import jax.numpy as jnp, e3nn_jax as e3nn, numpy as np
      >>> x1 = e3nn.IrrepsArray("0e+1o", jnp.array([1.0, 0.0, 0.0, 0.0]))
      >>> x2 = e3nn.IrrepsArray("0e+1o", jnp.array([0.0, 0.0, 2.0, 0.0]))
      >>> y = gaunt_tensor_product(x1, x2, lmax_out=1, method="fourier_fft")
      >>> y.irreps
      1x0e+1x1o
      >>> np.round(np.asarray(y.array, float), 5)  # 1 · (2 Y_1) with Y_00 = 1
      array([0., 0., 2., 0.])
    """
    s1, s2 = _Signal(x1, "x1"), _Signal(x2, "x2")
    _apply_degree_weights(s1, weights1, "weights1")
    _apply_degree_weights(s2, weights2, "weights2")
    return _product([s1, s2], lmax_out, method, normalization)


def gaunt_product(
    xs: Sequence[e3nn.IrrepsArray],
    *,
    lmax_out: int | None = None,
    method: str = "auto",
    normalization: str = "component",
) -> e3nn.IrrepsArray:
    """Multi-input Gaunt product ``f1·f2·…·fν`` computed in one go: every factor goes
    to the Fourier (or grid) domain once, the factors are multiplied there, and only
    the final result returns to spherical harmonics — the paper's equivariant
    many-body interaction (Luo et al., ICLR 2024, Sec. 4). Exact (no intermediate
    truncation), unlike ``ν-1`` chained two-input products truncated at ``lmax_out``.

    Args:
      xs: one or more ``IrrepsArray`` (same rules as :func:`gaunt_tensor_product`).
      lmax_out: largest output degree (default ``Σ L_k``).
      method, normalization: as in :func:`gaunt_tensor_product`.

    Returns:
      ``IrrepsArray`` ``(*batch, C (lmax_out+1)²)`` with parity ``Π p_k · (-1)^l``.

    Example:
      >>> import jax, e3nn_jax as e3nn
      >>> x = e3nn.normal("0e+1o+2e", jax.random.key(0))
      >>> y = gaunt_product([x, x, x], lmax_out=2, method="s2grid")
      >>> y.irreps
      1x0e+1x1o+1x2e
    """
    if isinstance(xs, e3nn.IrrepsArray) or len(xs) == 0:
        raise ValueError("xs must be a non-empty sequence of IrrepsArray")
    sigs = [_Signal(x, f"xs[{i}]") for i, x in enumerate(xs)]
    return _product(sigs, lmax_out, method, normalization)


def gaunt_power(
    x: e3nn.IrrepsArray,
    nu: int,
    *,
    lmax_out: int | None = None,
    method: str = "auto",
    normalization: str = "component",
    weights: Any = None,
) -> e3nn.IrrepsArray:
    """``f^ν`` for one input (``ν ≥ 1``), staying in the Fourier/grid domain between
    factors (Luo et al., ICLR 2024, equivariant many-body interaction); optional
    per-degree ``weights`` ``(..., L+1)`` are applied once before the power.

    Example:
      >>> import jax, e3nn_jax as e3nn
      >>> x = e3nn.normal("0e+1o", jax.random.key(1))
      >>> gaunt_power(x, 3, lmax_out=2).irreps
      1x0e+1x1o+1x2e
    """
    if isinstance(nu, bool) or not isinstance(nu, int) or nu < 1:
        raise ValueError(f"nu must be a positive Python int, got {nu!r}")
    s = _Signal(x, "x")
    _apply_degree_weights(s, weights, "weights")
    return _product([s] * nu, lmax_out, method, normalization)


def gaunt_self_interaction(
    x: e3nn.IrrepsArray,
    *,
    weights1: Any = None,
    weights2: Any = None,
    lmax_out: int | None = None,
    method: str = "auto",
    normalization: str = "component",
) -> e3nn.IrrepsArray:
    """Equivariant feature self-interaction ``(w1 ⊙ x) ⊗_Gaunt (w2 ⊙ x)``: one input
    reweighted per degree twice and multiplied with itself (Luo et al., ICLR 2024,
    "equivariant feature interactions"). Default ``lmax_out`` is the input's ``L``.

    Args:
      x: ``IrrepsArray`` (one spherical function per channel).
      weights1, weights2: per-degree weights ``(..., L+1)`` (``None``: ones).
      lmax_out, method, normalization: as in :func:`gaunt_tensor_product`.

    Example:
      >>> import jax, jax.numpy as jnp, e3nn_jax as e3nn
      >>> x = e3nn.normal("4x0e+4x1o", jax.random.key(0))
      >>> gaunt_self_interaction(x, weights1=jnp.ones(2), weights2=jnp.ones(2)).irreps
      4x0e+4x1o
    """
    s1, s2 = _Signal(x, "x"), _Signal(x, "x")
    _apply_degree_weights(s1, weights1, "weights1")
    _apply_degree_weights(s2, weights2, "weights2")
    lmax_out = s1.L if lmax_out is None else lmax_out
    return _product([s1, s2], lmax_out, method, normalization)


def gaunt_vector_product(
    x1: e3nn.IrrepsArray,
    x2: e3nn.IrrepsArray,
    *,
    lmax_out: int | None = None,
    method: str = "auto",
    normalization: str = "component",
) -> e3nn.IrrepsArray:
    """Antisymmetric vector-signal Gaunt product: the coefficients of the spherical
    function ``r̂ · (∇_S f1 × ∇_S f2)`` (surface gradients, pointwise cross product).

    The scalar Gaunt product is symmetric and only has paths with even
    ``l1 + l2 + l3``; the cross product of tangent vector signals restores the odd
    ones (e.g. ``1 ⊗ 1 → 1``, the cross product) at the same ``O(L³)`` cost. The
    remedy follows Xie et al., "The Price of Freedom: Exploring Expressivity and
    Runtime Tradeoffs in Equivariant Tensor Products" (2025), who lift the scalar
    signals to vector signals on the sphere; this construction (gradients + cross
    product) is eqjax's. Each output path ``(l1, l2, l3)`` is proportional to
    e3nn-jax's Clebsch–Gordan path, is non-zero only for odd ``l1 + l2 + l3`` with
    ``l1, l2 ≥ 1``, and the product is antisymmetric in ``x1 ↔ x2``.

    Output parity: ``r̂·(a×b)`` is a pseudoscalar field, so degree ``l`` carries
    ``-p1 p2 (-1)^l``. For ``f_k = c_k · Y_1`` the result is ``√3 (c_1 × c_2) · Y_1``
    (``"component"``) or ``√(3/4π) (c_1 × c_2) · Y_1`` (``"integral"``).

    Args:
      x1, x2: as in :func:`gaunt_tensor_product`.
      lmax_out: largest output degree (default ``L1 + L2 - 1``, exact).
      method: ``"fourier_fft"``, ``"s2grid"`` or ``"auto"`` (``"fourier_direct"`` is
        routed to ``"fourier_fft"``).
      normalization: as in :func:`gaunt_tensor_product`.

    Example:
      >>> import jax.numpy as jnp, e3nn_jax as e3nn, numpy as np
      >>> a = e3nn.IrrepsArray("1o", jnp.array([1.0, 0.0, 0.0]))
      >>> b = e3nn.IrrepsArray("1o", jnp.array([0.0, 1.0, 0.0]))
      >>> y = gaunt_vector_product(a, b, lmax_out=1)
      >>> y.irreps
      1x0o+1x1e
      >>> np.round(np.asarray(y.array) / np.sqrt(3), 5) + 0.0
      array([0., 0., 0., 1.])
    """
    _check_method(method)
    _check_normalization(normalization)
    s1, s2 = _Signal(x1, "x1"), _Signal(x2, "x2")
    C, batch = _broadcast([s1, s2])
    L_out = _check_lmax(lmax_out, max(s1.L + s2.L - 1, 0))
    if method == "auto":
        method = _plan.choose_method([s1.L, s2.L], L_out, math.prod(batch + (C,)))
    rank = len(batch) + 2
    dtype, work = _work_dtype(s1.dtype)
    c1, c2 = (K.lead_axes(s.c, rank).astype(work) for s in (s1, s2))
    if method == "s2grid":
        out = K.vector_product_s2grid(
            c1, s1.L, c2, s2.L, L_out, dense=_plan.use_dense_vector_grid
        )
    else:
        out = K.vector_product_fourier_fft(c1, s1.L, c2, s2.L, L_out)
    if normalization == "component":
        out = out * jnp.asarray(K.SQRT_4PI, out.dtype)
    return _to_irreps_array(out.astype(dtype), C, L_out, -s1.p * s2.p, batch)


def gaunt_many_body(
    x: e3nn.IrrepsArray,
    weights_in: Any,
    weights_out: Any,
    *,
    lmax_out: int,
    method: str = "auto",
    normalization: str = "component",
) -> e3nn.IrrepsArray:
    """Many-body (MACE-style) product basis with Gaunt powers:
    ``Σ_{n=1}^{ν} w_out[n] ⊙ (w_in[n] ⊙ x)^n``, each power computed in one pass in
    the Fourier/grid domain (Luo et al., ICLR 2024, equivariant many-body
    interactions; correlation order ``ν``).

    Args:
      x: ``IrrepsArray`` of one spherical function per channel with parity
        ``p = +1`` (``"0e+1o+2e…"``): powers of ``p = -1`` signals alternate parity
        and cannot be summed.
      weights_in: ``(ν, ..., L+1)`` per-degree weights applied before each power
        (broadcast against ``(*batch, C, L+1)``).
      weights_out: ``(ν, ..., lmax_out+1)`` per-degree weights of each power.
      lmax_out: largest output degree.
      method, normalization: as in :func:`gaunt_tensor_product`.

    Returns:
      ``IrrepsArray`` ``(*batch, C (lmax_out+1)²)`` with irreps ``C x l (-1)^l``.

    Example:
      >>> import jax, jax.numpy as jnp, e3nn_jax as e3nn
      >>> x = e3nn.normal("3x0e+3x1o", jax.random.key(0))
      >>> y = gaunt_many_body(x, jnp.ones((3, 2)), jnp.ones((3, 3)), lmax_out=2)
      >>> y.irreps
      3x0e+3x1o+3x2e
    """
    s = _Signal(x, "x")
    if s.p != 1:
        raise ValueError(
            f"gaunt_many_body needs parity p=+1 signals ('0e+1o+2e…'), got {x.irreps}"
        )
    w_in, w_out = jnp.asarray(weights_in), jnp.asarray(weights_out)
    if w_in.ndim < 2 or w_out.ndim < 2 or not 0 < w_in.shape[0] == w_out.shape[0]:
        raise ValueError(
            "weights_in and weights_out need shapes (ν, ..., degrees) with the same, "
            "non-empty leading correlation axis ν ≥ 1, got "
            f"shapes {jnp.shape(weights_in)} and {jnp.shape(weights_out)}"
        )
    L_out = _check_lmax(lmax_out, s.L)
    for name, w, L in (("weights_in", w_in, s.L), ("weights_out", w_out, L_out)):
        target = s.batch + (s.C, L + 1)
        try:
            if w.shape[-1] != L + 1:
                raise ValueError
            jnp.broadcast_shapes(w.shape[1:], target)
        except ValueError:
            raise ValueError(
                f"{name} must have shape (ν, ..., {L + 1}) broadcasting against the "
                f"input's (*batch, channels, degrees) = {target}, got {w.shape}"
            ) from None
    total = None
    for n in range(w_in.shape[0]):
        y = gaunt_power(
            x,
            n + 1,
            lmax_out=L_out,
            method=method,
            normalization=normalization,
            weights=w_in[n],
        )
        ls = jnp.asarray([l for l in range(L_out + 1) for _ in range(2 * l + 1)])
        term = _aligned_mul(
            y.mul_to_axis().array, jnp.take(w_out[n], ls, axis=-1).astype(y.dtype)
        )
        total = term if total is None else total + term
    assert total is not None and y is not None
    total = jnp.broadcast_to(total, y.mul_to_axis().shape)
    return e3nn.IrrepsArray(_out_irreps(1, L_out, 1), total).axis_to_mul()
