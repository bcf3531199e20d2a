"""Message aggregation on ``jraph.GraphsTuple`` through :func:`tree_reduce`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxtyping import Array, Int

from ._tree import tree_reduce

PyTree = Any


def aggregate(
    messages: PyTree,
    receivers: Int[Array, " E"],
    num_nodes: int,
    *,
    op: Callable[[Any, Any], Any],
    identity: PyTree,
    max_segment_size: int,
    indices_are_sorted: bool = False,
) -> PyTree:
    """Aggregate edge messages at their receiving nodes with a (learnable) monoid.

    Ong & Veličković (LoG 2022): message passing whose neighbourhood aggregation
    is a balanced-tree reduction with ``op`` (see :func:`tree_reduce`). Nodes
    without incoming edges (isolated nodes, jraph padding nodes) get
    ``identity``; padding edges point at padding nodes as usual in jraph. Relabelling
    nodes (``eqjax.groups.act_graph``) relabels the output rows and, because edges
    keep their order, is exact even for a merely commutative ``op``.

    Args:
      messages: pytree of ``[E, *feature]`` per-edge messages.
      receivers: ``[E]`` receiving node of each edge.
      num_nodes: static number of node rows (padding included).
      op, identity, max_segment_size, indices_are_sorted: as in
        :func:`tree_reduce`; ``max_segment_size`` bounds the in-degree.

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
        indices_are_sorted=indices_are_sorted,
    )


def tree_aggregator(
    op: Callable[[Any, Any], Any], *, identity: PyTree, max_segment_size: int
) -> Callable[[PyTree, Array, int], PyTree]:
    """A jraph-compatible ``aggregate_edges_for_nodes_fn(data, segment_ids,
    num_segments)`` that reduces with ``op`` over a balanced tree.

    Drop it into ``jraph.GraphNetwork`` / ``jraph.GraphConvolution`` in place of
    ``jraph.segment_sum`` (Ong & Veličković, LoG 2022).

    Example:
      >>> import jax.numpy as jnp
      >>> agg = tree_aggregator(jnp.maximum, identity=-jnp.inf, max_segment_size=4)
      >>> agg(jnp.array([1.0, 3.0, 2.0]), jnp.array([0, 0, 1]), 2)
      Array([3., 2.], dtype=float32)
    """

    def fn(data, segment_ids, num_segments):
        return aggregate(
            data,
            segment_ids,
            num_segments,
            op=op,
            identity=identity,
            max_segment_size=max_segment_size,
        )

    return fn
