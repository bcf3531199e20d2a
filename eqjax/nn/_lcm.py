"""NNX wrappers around :mod:`eqjax.reductions`: a learnable commutative monoid
aggregator (balanced tree, O(log n) depth) and a GRU fold baseline (O(n) depth).

Ong & Veličković, "Learnable Commutative Monoids for Graph Neural Networks",
LoG 2022.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int

from ..reductions import (
    GRUCellParams,
    MLPParams,
    Monoid,
    associativity_penalty,
    gru_fold,
    gru_fold_dense,
    identity_penalty,
    init_gru_cell,
    init_mlp_op,
    symmetric_gru_monoid,
    symmetric_mlp_monoid,
    tree_reduce,
    tree_reduce_dense,
)


class LCMAggregator(nnx.Module):
    """Learnable commutative monoid aggregation over a balanced binary tree.

    Holds a binary operator made commutative by construction (``"gru"``:
    ``½ (GRU(a, b) + GRU(b, a))``; ``"mlp"``: the symmetrised two-argument MLP) and a
    learnable identity ``e`` used to pad segments (Ong & Veličković, LoG 2022).
    ``__call__`` aggregates ragged segments (jraph edges -> receivers) with
    :func:`eqjax.reductions.tree_reduce`; :meth:`dense` reduces ``[..., n, D]``
    sets; :meth:`penalties` returns the associativity and identity regularisers.
    With the signature ``(data, segment_ids, num_segments)`` an instance is a
    drop-in ``aggregate_edges_for_nodes_fn`` for jraph.

    Args:
      features: width ``D`` of the items.
      max_segment_size: default bound on a segment's size (overridable per call).
      cell: ``"gru"`` or ``"mlp"``.
      hidden: hidden width of the ``"mlp"`` cell (default ``2 D``).
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: computation dtype (default: that of the inputs).
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> agg = LCMAggregator(4, max_segment_size=8, rngs=nnx.Rngs(0))
      >>> agg(jnp.ones((5, 4)), jnp.array([0, 0, 1, 1, 1]), 3).shape
      (3, 4)
    """

    def __init__(
        self,
        features: int,
        *,
        max_segment_size: int,
        cell: str = "gru",
        hidden: int | None = None,
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        if cell not in ("gru", "mlp"):
            raise ValueError(f"cell must be 'gru' or 'mlp', got {cell!r}")
        self.features = int(features)
        self.max_segment_size = int(max_segment_size)
        self.cell = cell
        self.dtype = dtype
        self.param_dtype = param_dtype
        key = rngs.params()
        if cell == "gru":
            p = init_gru_cell(key, self.features, dtype=param_dtype)
        else:
            p = init_mlp_op(
                key, self.features, hidden or 2 * self.features, dtype=param_dtype
            )
        self._fields = type(p)._fields
        for name, v in zip(self._fields, p, strict=True):
            setattr(self, name, nnx.Param(v))
        self.identity = nnx.Param(jnp.zeros((self.features,), param_dtype))

    def _dtype(self, x) -> Any:
        return self.dtype if self.dtype is not None else x.dtype

    def monoid(self, dtype: Any = None) -> Monoid:
        """The current learnable monoid (:func:`eqjax.reductions.symmetric_gru_monoid`
        or :func:`~eqjax.reductions.symmetric_mlp_monoid`), parameters and identity
        cast to ``dtype`` (default ``param_dtype``)."""
        dt = dtype or self.param_dtype
        vals = [getattr(self, name)[...].astype(dt) for name in self._fields]
        e = self.identity[...].astype(dt)
        if self.cell == "gru":
            return symmetric_gru_monoid(GRUCellParams(*vals), e)
        return symmetric_mlp_monoid(MLPParams(*vals), e)

    def op(self, dtype: Any = None):
        """The current binary operator (a pure function of two ``[..., D]`` arrays):
        ``self.monoid(dtype).op``."""
        return self.monoid(dtype).op

    def __call__(
        self,
        data: Float[Array, "E D"],
        segment_ids: Int[Array, " E"],
        num_segments: int,
        *,
        max_segment_size: int | None = None,
        indices_are_sorted: bool = False,
    ) -> Float[Array, "S D"]:
        """Tree-reduce each segment; empty segments give the learned identity."""
        dt = self._dtype(data)
        m = self.monoid(dt)
        return tree_reduce(
            m.op,
            data.astype(dt),
            segment_ids,
            num_segments,
            identity=m.identity,
            max_segment_size=max_segment_size or self.max_segment_size,
            indices_are_sorted=indices_are_sorted,
        )

    def dense(
        self, x: Float[Array, "*batch n D"], mask: Array | None = None
    ) -> Float[Array, "*batch D"]:
        """Tree-reduce the item axis of ``[*batch, n, D]`` sets (skip masked items)."""
        m = self.monoid(self._dtype(x))
        return tree_reduce_dense(
            m.op, x.astype(m.identity.dtype), identity=m.identity, mask=mask
        )

    def penalties(self, a: Array, b: Array, c: Array) -> tuple[Array, Array]:
        """``(associativity_penalty(op, a, b, c), identity_penalty(op, e, a))`` on
        sampled ``[N, D]`` triples."""
        m = self.monoid(self._dtype(a))
        return (
            associativity_penalty(m.op, a, b, c),
            identity_penalty(m.op, m.identity, a),
        )


class GRUAggregator(nnx.Module):
    """Recurrent GRU aggregation baseline: an O(n)-depth ``lax.scan`` fold.

    The hidden state starts at a learnable ``initial`` state and consumes each
    segment's items in input order (segments are stably sorted by id), as the
    recurrent aggregators compared in Ong & Veličković (LoG 2022). Not
    permutation invariant.

    Args:
      features: width ``D``.
      max_segment_size: default scan length (bound on a segment's size).
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: computation dtype (default: that of the inputs).
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> agg = GRUAggregator(4, max_segment_size=8, rngs=nnx.Rngs(0))
      >>> agg.dense(jnp.ones((2, 5, 4))).shape
      (2, 4)
    """

    def __init__(
        self,
        features: int,
        *,
        max_segment_size: int,
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        self.features = int(features)
        self.max_segment_size = int(max_segment_size)
        self.dtype = dtype
        self.param_dtype = param_dtype
        p = init_gru_cell(rngs.params(), self.features, dtype=param_dtype)
        self.w_i, self.w_h = nnx.Param(p.w_i), nnx.Param(p.w_h)
        self.b_i, self.b_h = nnx.Param(p.b_i), nnx.Param(p.b_h)
        self.initial = nnx.Param(jnp.zeros((self.features,), param_dtype))

    def _cast(self, x):
        dt = self.dtype if self.dtype is not None else x.dtype
        p = GRUCellParams(
            *(getattr(self, n)[...].astype(dt) for n in GRUCellParams._fields)
        )
        return dt, p

    def __call__(
        self,
        data: Float[Array, "E D"],
        segment_ids: Int[Array, " E"],
        num_segments: int,
        *,
        max_segment_size: int | None = None,
        indices_are_sorted: bool = False,
    ) -> Float[Array, "S D"]:
        """Fold each segment in input order; empty segments give ``initial``."""
        dt, p = self._cast(data)
        return gru_fold(
            p,
            data.astype(dt),
            segment_ids,
            num_segments,
            max_segment_size=max_segment_size or self.max_segment_size,
            initial=self.initial[...].astype(dt),
            indices_are_sorted=indices_are_sorted,
        )

    def dense(
        self, x: Float[Array, "*batch n D"], mask: Array | None = None
    ) -> Float[Array, "*batch D"]:
        """Fold the item axis of ``[*batch, n, D]`` sets in order (skip masked)."""
        dt, p = self._cast(x)
        return gru_fold_dense(
            p, x.astype(dt), mask=mask, initial=self.initial[...].astype(dt)
        )
