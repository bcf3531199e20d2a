"""NNX wrappers around :mod:`eqjax.reductions`: a learnable commutative monoid
aggregator (balanced tree, O(log n) depth) and a GRU fold baseline (O(n) depth).

Ong & Veličković, "Learnable Commutative Monoids for Graph Neural Networks",
LoG 2022.

Both take ``mask`` (padded jraph graphs: ``jraph.get_edge_padding_mask(graph)``),
``order`` and ``on_overflow`` as :func:`eqjax.reductions.tree_reduce` does, and
validate every option at construction and every input at trace time, naming the
argument. Data must be floating (integer data raise ``TypeError``: the
parameters are never cast to an integer dtype). float16 and bfloat16 are
supported: the computation runs in that dtype, and against the same module in
float32 the relative error of an aggregate is below ``LOW_PRECISION_RTOL``
(measured on unit-normal items and the default initialisation; see
tests/nn/test_lcm_modules.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from ..reductions import (
    GRUCellParams,
    MLPParams,
    Monoid,
    associativity_penalty,
    check_reduction_options,
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

LOW_PRECISION_RTOL = {"float16": 2e-3, "bfloat16": 2e-2}
"""Documented relative error (max |low − float32| / max |float32|) of the
aggregators in float16 / bfloat16 against float32."""


def _size(value: Any, name: str, owner: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {name} must be a Python int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


def _float_dtype(value: Any, name: str, owner: str, allow_none: bool) -> Any:
    if value is None and allow_none:
        return None
    try:
        dt = jnp.dtype(value)
    except TypeError:
        raise TypeError(
            f"{owner}: {name} must be a floating dtype, got {value!r}"
        ) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(
            f"{owner}: {name} must be a floating dtype (float16, bfloat16, float32, "
            f"float64), got {dt}"
        )
    return dt


def _options(owner: str, max_segment_size, order, on_overflow) -> int:
    try:
        return check_reduction_options(max_segment_size, order, on_overflow)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{owner}: {err}") from None


def _check_rngs(rngs: Any, owner: str) -> None:
    if not isinstance(rngs, nnx.Rngs):
        raise TypeError(f"{owner}: rngs must be an nnx.Rngs, got {rngs!r}")


def _check_data(x: Any, features: int, owner: str, name: str, dense: bool) -> Array:
    x = jnp.asarray(x)
    shape = f"[..., n, {features}]" if dense else f"[E, {features}]"
    ok = x.ndim >= 2 if dense else x.ndim == 2
    if not ok or x.shape[-1] != features:
        raise ValueError(f"{owner}: {name} must be {shape}, got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{owner}: {name} must be floating, got {x.dtype} (the parameters are "
            f"not cast to integers; cast the data, e.g. {name}.astype(jnp.float32))"
        )
    return x


class LCMAggregator(nnx.Module):
    """Learnable commutative monoid aggregation over a balanced binary tree.

    Holds a binary operator made commutative by construction (``"gru"``:
    ``½ (GRU(a, b) + GRU(b, a))``; ``"mlp"``: the symmetrised two-argument MLP) and a
    learnable identity ``e`` returned for empty segments (Ong & Veličković,
    LoG 2022). ``__call__`` aggregates ragged segments (jraph edges -> receivers)
    with :func:`eqjax.reductions.tree_reduce`; :meth:`dense` reduces
    ``[..., n, D]`` sets; :meth:`penalties` returns the associativity and identity
    regularisers. With the signature ``(data, segment_ids, num_segments,
    mask=None)`` an instance is a drop-in ``aggregate_edges_for_nodes_fn`` for
    jraph.

    Edge order: the learned operator is commutative but not associative, so with
    the default ``order="input"`` the result depends on the order of a segment's
    items (of the edges), not only on the multiset; ``order="sorted"`` sorts each
    segment's items by value first and makes it exactly invariant to permuting
    the edges (at the cost of a sort).

    Padded jraph graphs: pass ``mask=jraph.get_edge_padding_mask(graph)``; padding
    edges are then neither reduced nor counted against ``max_segment_size``. An
    over-full real segment is reported as ``on_overflow`` says (default
    ``"raise"``: a ``ValueError``, eagerly or at run time under ``jit``).

    Args:
      features: width ``D`` of the items (an int >= 1).
      max_segment_size: default bound on a segment's size (overridable per call).
      cell: ``"gru"`` or ``"mlp"``.
      hidden: hidden width of the ``"mlp"`` cell (default ``2 D``).
      order: ``"input"``, ``"sorted"`` or a key function (see
        :func:`eqjax.reductions.tree_reduce`).
      on_overflow: ``"raise"``, ``"checkify"``, ``"nan"`` or ``"truncate"``.
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: floating computation dtype (default: that of the inputs, which must
        be floating; float16/bfloat16 within :data:`LOW_PRECISION_RTOL`).
      param_dtype: floating dtype of the parameters.

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
        order: str | Callable[[Array], Array] = "input",
        on_overflow: str = "raise",
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        name = "LCMAggregator"
        self.features = _size(features, "features", name)
        self.max_segment_size = _options(name, max_segment_size, order, on_overflow)
        if not isinstance(cell, str) or cell not in ("gru", "mlp"):
            raise ValueError(f"{name}: cell must be 'gru' or 'mlp', got {cell!r}")
        if hidden is not None:
            hidden = _size(hidden, "hidden", name)
            if cell != "mlp":
                raise ValueError(f"{name}: hidden is only used by cell='mlp'")
        self.cell = cell
        self.order = order
        self.on_overflow = on_overflow
        self.dtype = _float_dtype(dtype, "dtype", name, True)
        self.param_dtype = _float_dtype(param_dtype, "param_dtype", name, False)
        _check_rngs(rngs, name)
        key = rngs.params()
        if cell == "gru":
            p = init_gru_cell(key, self.features, dtype=self.param_dtype)
        else:
            p = init_mlp_op(
                key,
                self.features,
                hidden or 2 * self.features,
                dtype=self.param_dtype,
            )
        self._fields = type(p)._fields
        for field, v in zip(self._fields, p, strict=True):
            setattr(self, field, nnx.Param(v))
        self.identity = nnx.Param(jnp.zeros((self.features,), self.param_dtype))

    def _dtype(self, x) -> Any:
        return self.dtype if self.dtype is not None else x.dtype

    def monoid(self, dtype: Any = None) -> Monoid:
        """The current learnable monoid (:func:`eqjax.reductions.symmetric_gru_monoid`
        or :func:`~eqjax.reductions.symmetric_mlp_monoid`), parameters and identity
        cast to the floating ``dtype`` (default ``param_dtype``)."""
        dt = _float_dtype(dtype or self.param_dtype, "dtype", "monoid", False)
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
        mask: Bool[Array, " E"] | None = None,
        *,
        max_segment_size: int | None = None,
        indices_are_sorted: bool = False,
    ) -> Float[Array, "S D"]:
        """Tree-reduce each segment (items with ``mask`` False left out); empty
        segments give the learned identity."""
        name = "LCMAggregator"
        data = _check_data(data, self.features, name, "data", dense=False)
        size = self.max_segment_size
        if max_segment_size is not None:
            size = _options(name, max_segment_size, self.order, self.on_overflow)
        dt = self._dtype(data)
        m = self.monoid(dt)
        return tree_reduce(
            m.op,
            data.astype(dt),
            segment_ids,
            num_segments,
            identity=m.identity,
            max_segment_size=size,
            mask=mask,
            order=self.order,
            on_overflow=self.on_overflow,
            indices_are_sorted=indices_are_sorted,
        )

    def dense(
        self, x: Float[Array, "*batch n D"], mask: Array | None = None
    ) -> Float[Array, "*batch D"]:
        """Tree-reduce the item axis of ``[*batch, n, D]`` sets (skip masked items;
        items enter the tree in axis order)."""
        x = _check_data(x, self.features, "LCMAggregator.dense", "x", dense=True)
        m = self.monoid(self._dtype(x))
        return tree_reduce_dense(
            m.op, x.astype(m.identity.dtype), identity=m.identity, mask=mask
        )

    def penalties(self, a: Array, b: Array, c: Array) -> tuple[Array, Array]:
        """``(associativity_penalty(op, a, b, c), identity_penalty(op, e, a))`` on
        sampled ``[N, D]`` triples."""
        owner = "LCMAggregator.penalties"
        a, b, c = (
            _check_data(v, self.features, owner, n, dense=False)
            for v, n in ((a, "a"), (b, "b"), (c, "c"))
        )
        if not a.shape == b.shape == c.shape:
            raise ValueError(
                f"{owner}: a, b, c must share a shape, got {a.shape}, {b.shape}, "
                f"{c.shape}"
            )
        dt = self._dtype(a)
        m = self.monoid(dt)
        a, b, c = a.astype(dt), b.astype(dt), c.astype(dt)
        return (
            associativity_penalty(m.op, a, b, c),
            identity_penalty(m.op, m.identity, a),
        )


class GRUAggregator(nnx.Module):
    """Recurrent GRU aggregation baseline: an O(n)-depth ``lax.scan`` fold.

    The hidden state starts at a learnable ``initial`` state and consumes each
    segment's items in input order (segments are stably sorted by id), as the
    recurrent aggregators compared in Ong & Veličković (LoG 2022). Edge order:
    with ``order="input"`` (default) the result depends on the order of the
    edges, it is not permutation invariant; ``order="sorted"`` folds each
    segment's items in sorted (lexicographic) order and is exactly invariant to
    permuting the edges. ``mask`` and ``on_overflow`` as in
    :class:`LCMAggregator`.

    Args:
      features: width ``D`` (an int >= 1).
      max_segment_size: default scan length (bound on a segment's size).
      order: ``"input"``, ``"sorted"`` or a key function.
      on_overflow: ``"raise"``, ``"checkify"``, ``"nan"`` or ``"truncate"``.
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: floating computation dtype (default: that of the inputs).
      param_dtype: floating dtype of the parameters.

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
        order: str | Callable[[Array], Array] = "input",
        on_overflow: str = "raise",
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        name = "GRUAggregator"
        self.features = _size(features, "features", name)
        self.max_segment_size = _options(name, max_segment_size, order, on_overflow)
        self.order = order
        self.on_overflow = on_overflow
        self.dtype = _float_dtype(dtype, "dtype", name, True)
        self.param_dtype = _float_dtype(param_dtype, "param_dtype", name, False)
        _check_rngs(rngs, name)
        p = init_gru_cell(rngs.params(), self.features, dtype=self.param_dtype)
        self.w_i, self.w_h = nnx.Param(p.w_i), nnx.Param(p.w_h)
        self.b_i, self.b_h = nnx.Param(p.b_i), nnx.Param(p.b_h)
        self.initial = nnx.Param(jnp.zeros((self.features,), self.param_dtype))

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
        mask: Bool[Array, " E"] | None = None,
        *,
        max_segment_size: int | None = None,
        indices_are_sorted: bool = False,
    ) -> Float[Array, "S D"]:
        """Fold each segment (items with ``mask`` False left out); empty segments
        give ``initial``."""
        name = "GRUAggregator"
        data = _check_data(data, self.features, name, "data", dense=False)
        size = self.max_segment_size
        if max_segment_size is not None:
            size = _options(name, max_segment_size, self.order, self.on_overflow)
        dt, p = self._cast(data)
        return gru_fold(
            p,
            data.astype(dt),
            segment_ids,
            num_segments,
            max_segment_size=size,
            initial=self.initial[...].astype(dt),
            mask=mask,
            order=self.order,
            on_overflow=self.on_overflow,
            indices_are_sorted=indices_are_sorted,
        )

    def dense(
        self, x: Float[Array, "*batch n D"], mask: Array | None = None
    ) -> Float[Array, "*batch D"]:
        """Fold the item axis of ``[*batch, n, D]`` sets in order (skip masked)."""
        x = _check_data(x, self.features, "GRUAggregator.dense", "x", dense=True)
        dt, p = self._cast(x)
        return gru_fold_dense(
            p, x.astype(dt), mask=mask, initial=self.initial[...].astype(dt)
        )
