"""Recurrent (O(n)-depth) GRU fold over segments: the baseline that learnable
commutative monoids are compared with (Ong & Veličković, LoG 2022)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._monoids import GRUCellParams, _bias, _gates
from ._tree import (
    _check_eagerly,
    _check_mask,
    _prepare_items,
    _report_overflow,
    _static_int_arg,
    _to_dense,
    check_reduction_options,
)


def _fold_dense(params: GRUCellParams, x, mask, h0):
    """x [n, B, D], mask [n, B] or None, h0 [B, D] -> [B, D]."""
    dt = x.dtype
    # input projections of every item in one matmul; the scan only does W_h h
    gi = x @ params.w_i.astype(dt)
    gi = gi + _bias(params.b_i, gi)
    w_h = params.w_h.astype(dt)
    b_h = _bias(params.b_h, h0)

    def step(h, inp):
        g, m = inp
        new = _gates(g, h @ w_h + b_h, h)
        if m is not None:
            new = jnp.where(m[:, None], new, h)
        return new, None

    h, _ = jax.lax.scan(step, h0, (gi, mask))
    return h


def _initial(initial, D: int, dtype) -> Array:
    if initial is None:
        return jnp.zeros((D,), dtype)
    initial = jnp.asarray(initial)
    if initial.shape != (D,):
        raise ValueError(f"initial must have shape ({D},), got {initial.shape}")
    return initial.astype(dtype)


def gru_fold(
    params: GRUCellParams,
    data: Float[Array, "E D"],
    segment_ids: Int[Array, " E"],
    num_segments: int,
    *,
    max_segment_size: int,
    initial: Float[Array, " D"] | None = None,
    mask: Bool[Array, " E"] | None = None,
    order: str | Callable[[Array], Array] = "input",
    on_overflow: str = "raise",
    indices_are_sorted: bool = False,
) -> Float[Array, "S D"]:
    """Fold each segment with a GRU, one item per step (``lax.scan``, O(n) depth).

    The recurrent aggregator baseline of Ong & Veličković (LoG 2022): the hidden
    state starts at ``initial`` (zeros by default) and consumes the items of a
    segment in input order (a stable sort by segment id); padding steps leave it
    unchanged. All segments advance together, so the scan has
    ``max_segment_size`` steps. Depends on the order of the items (jraph: of the
    edges) unless ``order="sorted"`` (items sorted lexicographically by value
    first: a function of the multiset). ``mask``, ``order``, ``on_overflow`` and
    bad input are handled as in :func:`tree_reduce` (padding items with ``mask``
    False are neither folded nor counted against ``max_segment_size``).

    Args:
      params: :class:`GRUCellParams` of width ``D``.
      data: ``[E, D]`` floating items.
      segment_ids: ``[E]`` integer ids.
      num_segments: static ``S``.
      max_segment_size: static bound on a segment's size (scan length).
      initial: ``[D]`` initial hidden state (empty segments return it).
      mask: optional boolean ``[E]``, False for padding items.
      order: ``"input"``, ``"sorted"`` or a key function.
      on_overflow: ``"raise"``, ``"checkify"``, ``"nan"`` or ``"truncate"``.
      indices_are_sorted: whether ``segment_ids`` is sorted.

    Returns:
      ``[S, D]`` final hidden states.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eqjax.reductions import init_gru_cell
      >>> p = init_gru_cell(jax.random.key(0), 4)
      >>> gru_fold(p, jnp.ones((5, 4)), jnp.array([0, 0, 1, 1, 1]), 3,
      ...          max_segment_size=3).shape
      (3, 4)
    """
    num_segments = _static_int_arg(num_segments, "num_segments", 0)
    max_segment_size = check_reduction_options(max_segment_size, order, on_overflow)
    D = params.w_i.shape[0]
    data = jnp.asarray(data)
    if data.ndim != 2 or data.shape[1] != D:
        raise ValueError(f"gru_fold: data must be [E, {D}], got {data.shape}")
    if not jnp.issubdtype(data.dtype, jnp.floating):
        raise TypeError(f"gru_fold: data must be floating, got {data.dtype}")
    segment_ids = jnp.asarray(segment_ids)
    if segment_ids.shape != data.shape[:1] or not jnp.issubdtype(
        segment_ids.dtype, jnp.integer
    ):
        raise ValueError(
            f"gru_fold: segment_ids must be integer of shape {data.shape[:1]}, got "
            f"{segment_ids.dtype} {segment_ids.shape}"
        )
    mask = _check_mask(mask, data.shape[0])
    checked = _check_eagerly(
        segment_ids, mask, num_segments, max_segment_size, on_overflow
    )
    h0 = _initial(initial, D, data.dtype)
    (data,), ids, indices_are_sorted = _prepare_items(
        data, [data], segment_ids, num_segments, mask, order, indices_are_sorted
    )
    (buf,), counts, raw = _to_dense(
        [data],
        [jnp.zeros((D,), data.dtype)],
        ids,
        num_segments,
        max_segment_size,
        max_segment_size,
        indices_are_sorted,
    )
    m = jnp.arange(max_segment_size)[:, None] < counts[None, :]
    out = _fold_dense(params, buf, m, jnp.broadcast_to(h0, (num_segments, D)))
    if not checked:
        (out,) = _report_overflow(
            [out], raw, max_segment_size, on_overflow, mask is not None
        )
    return out


def gru_fold_dense(
    params: GRUCellParams,
    x: Float[Array, "*batch n D"],
    *,
    mask: Any = None,
    initial: Float[Array, " D"] | None = None,
) -> Float[Array, "*batch D"]:
    """Dense form of :func:`gru_fold` for sets ``[*batch, n, D]`` with a mask.

    Items are consumed in axis order; masked items are skipped.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eqjax.reductions import init_gru_cell
      >>> p = init_gru_cell(jax.random.key(0), 4)
      >>> gru_fold_dense(p, jnp.ones((2, 6, 4))).shape
      (2, 4)
    """
    D = params.w_i.shape[0]
    x = jnp.asarray(x)
    if x.ndim < 2 or x.shape[-1] != D:
        raise ValueError(f"gru_fold_dense: x must be [..., n, {D}], got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"gru_fold_dense: x must be floating, got {x.dtype}")
    batch, n = x.shape[:-2], x.shape[-2]
    xs = jnp.moveaxis(x.reshape(-1, n, D), 1, 0)
    B = xs.shape[1]
    m = None
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.shape != (*batch, n) or mask.dtype != jnp.bool_:
            raise ValueError(
                f"mask must be boolean with shape {(*batch, n)}, got {mask.dtype} "
                f"{mask.shape}"
            )
        m = mask.reshape(B, n).T
    h0 = _initial(initial, D, x.dtype)
    out = _fold_dense(params, xs, m, jnp.broadcast_to(h0, (B, D)))
    return out.reshape(*batch, D)
