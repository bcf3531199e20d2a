"""Message aggregation on ``jraph.GraphsTuple`` through :func:`tree_reduce`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxtyping import Array, Bool, Int

from ._tree import check_reduction_options, tree_reduce

PyTree = Any


def aggregate(
    messages: PyTree,
    receivers: Int[Array, " E"],
    num_nodes: int,
    *,
    op: Callable[[Any, Any], Any],
    identity: PyTree,
    max_segment_size: int,
    mask: Bool[Array, " E"] | None = None,
    order: str | Callable[[PyTree], Array] = "input",
    on_overflow: str = "raise",
    indices_are_sorted: bool = False,
) -> PyTree:
    """Aggregate edge messages at their receiving nodes with a (learnable) monoid.

    Ong & Veličković (LoG 2022): message passing whose neighbourhood aggregation
    is a balanced-tree reduction with ``op`` (see :func:`tree_reduce`). Nodes
    without incoming (unmasked) edges get ``identity``. Relabelling nodes
    (``eqjax.groups.act_graph``) relabels the output rows and, because edges keep
    their order, is exact even for a merely commutative ``op``; permuting the
    *edges* changes a learnable (non-associative) ``op``'s result unless
    ``order="sorted"``.

    Padded graphs: ``jraph.pad_with_graphs`` sends every padding edge to one
    padding node; pass ``mask=jraph.get_edge_padding_mask(graph)`` so that they
    are neither reduced nor counted against ``max_segment_size`` (real nodes then
    get exactly their unpadded result).

    Args:
      messages: pytree of ``[E, *feature]`` per-edge messages.
      receivers: ``[E]`` receiving node of each edge.
      num_nodes: static number of node rows (padding included).
      op, identity, max_segment_size, mask, order, on_overflow,
        indices_are_sorted: as in :func:`tree_reduce`; ``max_segment_size``
        bounds the in-degree.

    Returns:
      Pytree of ``[num_nodes, *feature]`` leaves.

    Example:
      >>> import jax.numpy as jnp
      >>> aggregate(jnp.array([[1.0], [2.0], [4.0]]), jnp.array([1, 1, 0]), 3,
      ...           op=jnp.add, identity=0.0, max_segment_size=2)[:, 0]
      Array([4., 3., 0.], dtype=float32)
    """
    return tree_reduce(
        op,
        messages,
        receivers,
        num_nodes,
        identity=identity,
        max_segment_size=max_segment_size,
        mask=mask,
        order=order,
        on_overflow=on_overflow,
        indices_are_sorted=indices_are_sorted,
    )


def tree_aggregator(
    op: Callable[[Any, Any], Any],
    *,
    identity: PyTree,
    max_segment_size: int,
    order: str | Callable[[PyTree], Array] = "input",
    on_overflow: str = "raise",
) -> Callable[..., PyTree]:
    """A jraph-compatible ``aggregate_edges_for_nodes_fn(data, segment_ids,
    num_segments, mask=None)`` that reduces with ``op`` over a balanced tree.

    Drop it into ``jraph.GraphNetwork`` / ``jraph.GraphConvolution`` in place of
    ``jraph.segment_sum`` (Ong & Veličković, LoG 2022). For a graph padded by
    ``jraph.pad_with_graphs`` bind the padding mask, e.g.
    ``functools.partial(agg, mask=jraph.get_edge_padding_mask(graph))``, so the
    padding edges (all sent to one padding node) do not count against
    ``max_segment_size``. A learnable ``op`` that is not associative makes the
    result depend on the order of the edges; ``order="sorted"`` removes that (see
    :func:`tree_reduce`). The options are validated here, at construction.

    Example:
      >>> import jax.numpy as jnp
      >>> agg = tree_aggregator(jnp.maximum, identity=-jnp.inf, max_segment_size=4)
      >>> agg(jnp.array([1.0, 3.0, 2.0]), jnp.array([0, 0, 1]), 2)
      Array([3., 2.], dtype=float32)
    """
    if not callable(op):
        raise TypeError(f"op must be a binary function, got {op!r}")
    max_segment_size = check_reduction_options(max_segment_size, order, on_overflow)

    def fn(data, segment_ids, num_segments, mask=None):
        return aggregate(
            data,
            segment_ids,
            num_segments,
            op=op,
            identity=identity,
            max_segment_size=max_segment_size,
            mask=mask,
            order=order,
            on_overflow=on_overflow,
        )

    return fn
