"""Recurrent (O(n)-depth) GRU fold over segments: the baseline that learnable
commutative monoids are compared with (Ong & Veličković, LoG 2022)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ._monoids import GRUCellParams, _bias, _gates
from ._tree import _check_segments_eagerly, _is_concrete, _static_int, segments_to_dense


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


def gru_fold(
    params: GRUCellParams,
    data: Float[Array, "E D"],
    segment_ids: Int[Array, " E"],
    num_segments: int,
    *,
    max_segment_size: int,
    initial: Float[Array, " D"] | None = None,
    indices_are_sorted: bool = False,
) -> Float[Array, "S D"]:
    """Fold each segment with a GRU, one item per step (``lax.scan``, O(n) depth).

    The recurrent aggregator baseline of Ong & Veličković (LoG 2022): the hidden
    state starts at ``initial`` (zeros by default) and consumes the items of a
    segment in input order (a stable sort by segment id); padding steps leave it
    unchanged. All segments advance together, so the scan has
    ``max_segment_size`` steps. Not permutation invariant: the result depends on
    the order of items. Bad input is handled as in :func:`tree_reduce`.

    Args:
      params: :class:`GRUCellParams` of width ``D``.
      data: ``[E, D]`` items.
      segment_ids: ``[E]`` integer ids.
      num_segments: static ``S``.
      max_segment_size: static bound on a segment's size (scan length).
      initial: ``[D]`` initial hidden state (empty segments return it).
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
    num_segments = _static_int(num_segments, "num_segments", 0)
    max_segment_size = _static_int(max_segment_size, "max_segment_size", 1)
    D = params.w_i.shape[0]
    if data.ndim != 2 or data.shape[1] != D:
        raise ValueError(f"gru_fold: data must be [E, {D}], got {data.shape}")
    segment_ids = jnp.asarray(segment_ids)
    if segment_ids.shape != data.shape[:1] or not jnp.issubdtype(
        segment_ids.dtype, jnp.integer
    ):
        raise ValueError(
            f"gru_fold: segment_ids must be integer of shape {data.shape[:1]}, got "
            f"{segment_ids.dtype} {segment_ids.shape}"
        )
    if _is_concrete(segment_ids):
        _check_segments_eagerly(segment_ids, num_segments, max_segment_size)
    h0 = jnp.zeros((D,), data.dtype) if initial is None else initial.astype(data.dtype)
    buf, counts = segments_to_dense(
        data,
        segment_ids,
        num_segments,
        max_segment_size,
        fill=0.0,
        indices_are_sorted=indices_are_sorted,
    )
    mask = jnp.arange(max_segment_size)[:, None] < counts[None, :]
    return _fold_dense(params, buf, mask, jnp.broadcast_to(h0, (num_segments, D)))


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
    if x.ndim < 2 or x.shape[-1] != D:
        raise ValueError(f"gru_fold_dense: x must be [..., n, {D}], got {x.shape}")
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
    h0 = jnp.zeros((D,), x.dtype) if initial is None else initial.astype(x.dtype)
    out = _fold_dense(params, xs, m, jnp.broadcast_to(h0, (B, D)))
    return out.reshape(*batch, D)
