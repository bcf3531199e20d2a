"""Radius and k-nearest-neighbour graphs with a fixed edge capacity.

Static shapes: the number of edge slots is a Python int fixed before tracing, so
one compiled program serves every batch of the same padded size. Real edges come
first, grouped by graph (jraph's layout); unused slots are *padding edges* that
point from and to the last node row (jraph's padding node) and have
``edge_mask = False``: the layers of :mod:`eqjax.geometric` multiply every message
by the edge mask, so padding edges never change an output. More real edges than
slots is never silent: an error when the inputs are concrete (eager call), a
``overflow`` flag under ``jit`` (the first ``max_edges`` edges in row-major
(receiver, sender) order are kept, the rest dropped, and the flag says so).

The pair search is dense (``O(N²)`` per batch, inside the compiled program), fine
for molecules and small point clouds (a batch of 32 aspirins: 672 nodes, 450k pairs).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Array, Bool, Float, Int


class Edges(NamedTuple):
    """A fixed-capacity edge list.

    Attributes:
      senders: ``[E]`` int32, source node of each slot (padding: ``N - 1``).
      receivers: ``[E]`` int32, target node of each slot (padding: ``N - 1``).
      mask: ``[E]`` bool, ``True`` for real edges.
      num_edges: ``[]`` int32, number of real edges found (may exceed ``E``).
      overflow: ``[]`` bool, ``num_edges > E``: some edges were dropped.
    """

    senders: Int[Array, " E"]
    receivers: Int[Array, " E"]
    mask: Bool[Array, " E"]
    num_edges: Int[Array, ""]
    overflow: Bool[Array, ""]


def _is_concrete(*xs) -> bool:
    """Whether every ``x`` has a value now (an eager call), not a tracer."""
    for x in xs:
        try:
            np.asarray(x)
        except Exception:  # a tracer: TracerArrayConversionError and kin
            return False
    return True


def node_dict(graphs: jraph.GraphsTuple, who: str = "graphs") -> dict[str, Any]:
    """``graphs.nodes`` as a dict of named node arrays (``ValueError`` otherwise)."""
    nodes = graphs.nodes
    if not isinstance(nodes, dict):
        raise ValueError(
            f"{who}: expected graphs.nodes to be a dict of node arrays "
            f"(with 'positions' [N, 3]); got {type(nodes).__name__}"
        )
    return cast(dict[str, Any], nodes)


def _check_positions(positions, name: str = "positions"):
    if getattr(positions, "ndim", None) != 2 or positions.shape[-1] not in (2, 3):
        raise ValueError(
            f"{name} must have shape [N, 3] (or [N, 2]), got "
            f"{getattr(positions, 'shape', None)}"
        )


def _candidate_pairs(positions, graph_index, node_mask, loops: bool):
    n = positions.shape[0]
    if graph_index is None:
        graph_index = jnp.zeros((n,), jnp.int32)
    if node_mask is None:
        node_mask = jnp.ones((n,), bool)
    same = graph_index[:, None] == graph_index[None, :]
    real = node_mask[:, None] & node_mask[None, :]
    ok = same & real
    if not loops:
        ok = ok & ~jnp.eye(n, dtype=bool)
    diff = positions[None, :, :] - positions[:, None, :]  # [i, j] = x_j - x_i
    d2 = jnp.sum(diff * diff, axis=-1)
    return ok, d2


def radius_graph(
    positions: Float[Array, "N 3"],
    radius: float,
    *,
    max_edges: int,
    graph_index: Int[Array, " N"] | None = None,
    node_mask: Bool[Array, " N"] | None = None,
    loops: bool = False,
) -> Edges:
    """All pairs ``j -> i`` of nodes of the same graph with ``|x_j - x_i| < radius``.

    Args:
      positions: ``[N, 3]`` (or ``[N, 2]``) node positions.
      radius: cutoff, a Python float ``> 0``.
      max_edges: number of edge slots (static).
      graph_index: ``[N]`` graph of each node (default: one graph).
      node_mask: ``[N]`` ``False`` for padding nodes (no edges touch them).
      loops: include ``i -> i``.

    Returns:
      :class:`Edges` with ``max_edges`` slots: receivers in increasing order, then
      senders; padding slots ``N-1 -> N-1`` with ``mask=False``.

    Raises:
      ValueError: bad shapes, ``radius <= 0`` or ``max_edges < 1``; and, for
        concrete inputs, more than ``max_edges`` edges (under ``jit``: the
        ``overflow`` flag instead).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0, 0, 0], [1.0, 0, 0], [5.0, 0, 0]])
      >>> e = radius_graph(x, 1.5, max_edges=4)
      >>> e.senders.tolist(), e.receivers.tolist(), e.mask.tolist()
      ([1, 0, 2, 2], [0, 1, 2, 2], [True, True, False, False])
    """
    _check_positions(positions)
    if not float(radius) > 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    if int(max_edges) < 1:
        raise ValueError(f"max_edges must be >= 1, got {max_edges!r}")
    n = positions.shape[0]
    ok, d2 = _candidate_pairs(positions, graph_index, node_mask, loops)
    ok = ok & (d2 < jnp.asarray(radius, positions.dtype) ** 2)
    return _select(ok, n, int(max_edges), positions, graph_index, node_mask)


def _select(ok, n, max_edges, *concrete_check) -> Edges:
    flat = ok.reshape(-1)
    count = jnp.sum(flat, dtype=jnp.int32)
    (idx,) = jnp.nonzero(flat, size=max_edges, fill_value=n * n - 1)
    slot = jnp.arange(max_edges)
    mask = slot < count
    receivers = jnp.where(mask, idx // n, n - 1).astype(jnp.int32)
    senders = jnp.where(mask, idx % n, n - 1).astype(jnp.int32)
    overflow = count > max_edges
    if _is_concrete(count, *[c for c in concrete_check if c is not None]):
        try:
            c = int(count)
        except jax.errors.ConcretizationTypeError:  # pragma: no cover
            c = None
        if c is not None and c > max_edges:
            raise ValueError(
                f"radius/kNN graph has {c} edges but max_edges={max_edges}: raise "
                "max_edges (under jit the `overflow` flag reports this instead)"
            )
    return Edges(senders, receivers, mask, count, overflow)


def knn_graph(
    positions: Float[Array, "N 3"],
    k: int,
    *,
    graph_index: Int[Array, " N"] | None = None,
    node_mask: Bool[Array, " N"] | None = None,
) -> Edges:
    """For each real node ``i``, edges from its ``k`` nearest other nodes of its
    graph (ties broken by the lower index). Capacity ``N·k`` slots, one block of
    ``k`` per receiver; a node whose graph has fewer than ``k + 1`` nodes gets
    padding slots (``mask=False``), so ``overflow`` is always ``False``.

    Args:
      positions: ``[N, 3]`` node positions.
      k: neighbours per node (static, ``>= 1``, ``< N``).
      graph_index, node_mask: as in :func:`radius_graph`.

    Returns:
      :class:`Edges` with ``N·k`` slots; ``receivers = repeat(arange(N), k)`` on
      real slots.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]])
      >>> knn_graph(x, 1).senders.tolist()
      [1, 0, 1]
    """
    _check_positions(positions)
    n = positions.shape[0]
    if not 1 <= int(k) < n:
        raise ValueError(f"k must satisfy 1 <= k < N={n}, got {k!r}")
    k = int(k)
    ok, d2 = _candidate_pairs(positions, graph_index, node_mask, loops=False)
    score = jnp.where(ok, -d2, -jnp.inf)
    top, senders = jax.lax.top_k(score, k)  # [N, k]
    mask = jnp.isfinite(top).reshape(-1)
    receivers = jnp.repeat(jnp.arange(n, dtype=jnp.int32), k)
    senders = senders.reshape(-1).astype(jnp.int32)
    pad = jnp.int32(n - 1)
    return Edges(
        jnp.where(mask, senders, pad),
        jnp.where(mask, receivers, pad),
        mask,
        jnp.sum(mask, dtype=jnp.int32),
        jnp.zeros((), bool),
    )


def graph_index(graphs: jraph.GraphsTuple) -> Int[Array, " N"]:
    """``[N]`` the graph each node row of a (padded) ``GraphsTuple`` belongs to.

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> g = jraph.GraphsTuple(nodes=jnp.zeros((4, 1)), edges=None, senders=None,
      ...     receivers=None, globals=None, n_node=jnp.array([3, 1]),
      ...     n_edge=jnp.array([0, 0]))
      >>> graph_index(g).tolist()
      [0, 0, 0, 1]
    """
    n = _num_nodes(graphs)
    n_node = jnp.asarray(graphs.n_node)
    return jnp.repeat(
        jnp.arange(n_node.shape[0], dtype=jnp.int32), n_node, total_repeat_length=n
    )


def _num_nodes(graphs: jraph.GraphsTuple) -> int:
    leaves = jax.tree_util.tree_leaves(graphs.nodes)
    if not leaves:
        raise ValueError("graphs.nodes holds no arrays")
    return int(leaves[0].shape[0])


def positions_of(graphs: jraph.GraphsTuple) -> Float[Array, "N 3"]:
    """``graphs.nodes["positions"]``, with a clear error when it is missing."""
    nodes = node_dict(graphs)
    if "positions" not in nodes:
        raise ValueError(
            "expected graphs.nodes to have a 'positions' entry [N, 3]; its keys are "
            f"{sorted(nodes)}"
        )
    pos = nodes["positions"]
    _check_positions(pos, "graphs.nodes['positions']")
    return pos


def with_radius_graph(
    graphs: jraph.GraphsTuple,
    radius: float,
    *,
    max_edges: int,
    k: int | None = None,
) -> tuple[jraph.GraphsTuple, Bool[Array, ""]]:
    """Replace the edges of a padded batch by its radius graph (or kNN graph when
    ``k`` is given) from ``graphs.nodes["positions"]``.

    jraph's convention is assumed: the *last* graph is padding (as made by
    ``jraph.pad_with_graphs``) and holds at least one node. Its nodes get no real
    edges; every unused slot becomes a padding edge on its last node and is
    counted in ``n_edge[-1]``, so ``jraph.get_edge_padding_mask`` agrees with
    ``edges["mask"]``. Padding edges touch only the padding graph, so they cannot
    change a real graph's output even where a layer ignored the mask.

    Args:
      graphs: padded ``GraphsTuple`` with ``nodes["positions"]`` ``[N, 3]``.
      radius: cutoff (``> 0``); with ``k`` the kNN edges are further cut at it.
      max_edges: edge slots (static; ignored with ``k``: ``N·k`` slots).
      k: if given, a kNN graph.

    Returns:
      ``(graphs, overflow)``: the new ``GraphsTuple`` (``edges={"mask": [E]}``,
      ``False`` on padding edges; the layers of eqjax read it) and the overflow
      flag (always ``False`` eagerly, where overflow raises).

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> g = jraph.GraphsTuple(nodes={"positions": jnp.array(
      ...     [[0.0, 0, 0], [1.0, 0, 0], [0.0, 0, 0]])}, edges=None, senders=None,
      ...     receivers=None, globals=None, n_node=jnp.array([2, 1]),
      ...     n_edge=jnp.array([0, 0]))
      >>> h, overflow = with_radius_graph(g, 2.0, max_edges=3)
      >>> h.n_edge.tolist(), h.senders.tolist(), bool(overflow)
      ([2, 1], [1, 0, 2], False)
    """
    pos = positions_of(graphs)
    n = pos.shape[0]
    gid = graph_index(graphs)
    n_node = jnp.asarray(graphs.n_node)
    num_graphs = n_node.shape[0]
    if num_graphs < 2:
        raise ValueError(
            "with_radius_graph needs a padded batch (the last graph is padding, "
            f"jraph.pad_with_graphs); got n_node of length {num_graphs}"
        )
    if _is_concrete(n_node) and int(np.asarray(n_node)[-1]) < 1:
        raise ValueError("the padding graph (last in n_node) must hold >= 1 node")
    node_mask = gid < num_graphs - 1
    if k is not None:
        e = knn_graph(pos, k, graph_index=gid, node_mask=node_mask)
        diff = pos[e.senders] - pos[e.receivers]
        close = jnp.sum(diff * diff, -1) < jnp.asarray(radius, pos.dtype) ** 2
        keep = e.mask & close
        # compact: real edges first, grouped by graph (receivers stay sorted)
        order = jnp.argsort(~keep, stable=True)
        mask = keep[order]
        pad = jnp.int32(n - 1)
        e = Edges(
            jnp.where(mask, e.senders[order], pad),
            jnp.where(mask, e.receivers[order], pad),
            mask,
            jnp.sum(mask, dtype=jnp.int32),
            e.overflow,
        )
    else:
        e = radius_graph(
            pos, radius, max_edges=max_edges, graph_index=gid, node_mask=node_mask
        )
    slots = e.mask.shape[0]
    per_graph = jax.ops.segment_sum(
        e.mask.astype(jnp.int32), gid[e.receivers], num_segments=num_graphs
    )
    n_edge = per_graph.at[-1].add(slots - jnp.sum(per_graph))
    out = graphs._replace(
        senders=e.senders, receivers=e.receivers, edges={"mask": e.mask}, n_edge=n_edge
    )
    return out, e.overflow


def edge_mask_of(graphs: jraph.GraphsTuple) -> Bool[Array, " E"] | None:
    """``graphs.edges["mask"]`` when present (set by :func:`with_radius_graph`),
    else ``None`` (every edge real)."""
    e = graphs.edges
    if isinstance(e, dict) and "mask" in e:
        return cast(Any, e)["mask"]
    return None
