"""Lifting a point cloud in R³ to a point cloud in position-orientation space
R³×S² along its edges (PONITA's point-cloud mode for data with vectors).

Bekkers et al., "Fast, Expressive SE(n) Equivariant Networks through
Weight-Sharing in Position-Orientation Space" (PONITA, ICLR 2024), Sec. 4 and the
authors' ``num_ori = -1`` transform: every edge ``j -> i`` of the input graph
becomes a *lifted node* at the position ``x_i`` of its receiver with the
orientation ``o = (x_j - x_i) / ‖x_j - x_i‖``. Lifted nodes whose base nodes are
neighbours (or the same node) are connected: for every input edge ``s -> t`` and
every base node's self-loop ``t -> t``, all lifted nodes at ``s`` send to all
lifted nodes at ``t``. A network on this cloud (:class:`eqjax.nn.PONITA` with
``mode="point_cloud"``) is exactly E(3)-equivariant, since the orientations move
with the positions; its node outputs are brought back to the base nodes by
:func:`lower_from_edges` (the mean over each base node's lifted nodes).

The index bookkeeping is ragged, so it is done once on the host in NumPy
(:func:`edge_lift`) and gives static-shape index arrays; the compiled part
(:func:`lift_to_edges`, :func:`lower_from_edges`) is pure and jit-able.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Array, Float

from ._neighbours import graph_index, node_dict, positions_of


class EdgeLift(NamedTuple):
    """Index arrays of an edge-lifted graph (NumPy int32, from :func:`edge_lift`).

    Attributes:
      base: ``[L]`` base node of each lifted node (the input edge's receiver).
      neighbour: ``[L]`` the input edge's sender; the lifted node's orientation
        points from ``base`` to ``neighbour``.
      senders, receivers: ``[L_E]`` edges between lifted nodes.
      num_nodes: number of base nodes ``N``.
    """

    base: np.ndarray
    neighbour: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    num_nodes: int


def edge_lift(senders, receivers, num_nodes: int) -> EdgeLift:
    """The lifted graph's indices (host-side NumPy; call outside ``jit``).

    Self-loops and repeated edges of the input are dropped (a self-loop defines
    no direction). With ``k_i`` lifted nodes at node ``i``, the lifted graph has
    ``L = Σ_i k_i`` nodes and ``Σ_{s -> t or s = t} k_s k_t`` edges (a complete
    graph on ``n`` nodes: ``n(n-1)`` nodes and ``n²(n-1)²`` edges).

    Args:
      senders, receivers: ``[E]`` concrete integer edge endpoints ``j -> i``.
      num_nodes: ``N``, the number of base nodes.

    Returns:
      An :class:`EdgeLift`.

    Example:
      >>> lift = edge_lift([0, 1], [1, 0], 2)  # one undirected edge
      >>> lift.base.tolist(), lift.neighbour.tolist()
      ([0, 1], [1, 0])
      >>> sorted(zip(lift.senders.tolist(), lift.receivers.tolist()))
      [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    try:
        s = np.asarray(senders).astype(np.int64).reshape(-1)
        r = np.asarray(receivers).astype(np.int64).reshape(-1)
    except Exception as err:  # a tracer
        raise ValueError(
            "edge_lift needs concrete senders and receivers (call it outside jit)"
        ) from err
    n = int(num_nodes)
    if s.shape != r.shape:
        raise ValueError(
            f"senders and receivers must have one shape, got {s.shape}, {r.shape}"
        )
    if s.size and (min(s.min(), r.min()) < 0 or max(s.max(), r.max()) >= n):
        raise ValueError(f"edge endpoints must lie in [0, {n}), got {s}, {r}")
    pairs = np.unique(np.stack([r, s], -1), axis=0)  # sorted by receiver
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    base, nbr = pairs[:, 0], pairs[:, 1]
    at = [np.nonzero(base == i)[0] for i in range(n)]  # lifted nodes per base node
    base_edges = np.unique(
        np.concatenate([np.stack([s, r], -1), np.stack([np.arange(n)] * 2, -1)]),
        axis=0,
    )
    ls, lr = [], []
    for a, b in base_edges:
        if len(at[a]) and len(at[b]):
            ls.append(np.repeat(at[a], len(at[b])))
            lr.append(np.tile(at[b], len(at[a])))
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros((0,), np.int64)
    i32 = lambda x: np.asarray(x, np.int32)
    return EdgeLift(i32(base), i32(nbr), i32(cat(ls)), i32(cat(lr)), n)


def _unit(d):
    sq = jnp.sum(d * d, -1, keepdims=True)
    pos = sq > 0
    return jnp.where(pos, d * jax.lax.rsqrt(jnp.where(pos, sq, 1.0)), 0.0)


def lift_to_edges(graphs: jraph.GraphsTuple, lift: EdgeLift) -> jraph.GraphsTuple:
    """The edge-lifted ``GraphsTuple`` (jit-able; ``lift`` from :func:`edge_lift`).

    Every node array of ``graphs.nodes`` is gathered at the lifted nodes' base
    nodes (so ``positions`` become ``x_base``, ``features`` and ``vectors`` are
    copied; a network lifts the vectors to ``v·o``), ``orientations [L, 3]`` are
    the unit vectors from base to neighbour (zero for coincident points), the
    edges are the lifted ones and ``n_node`` counts lifted nodes per graph.
    Input edge masks are not carried over: build ``lift`` from the real edges.

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> g = jraph.GraphsTuple(nodes={"positions": jnp.array([[0.0, 0, 0],
      ...     [0.0, 0, 2]])}, edges=None, senders=jnp.array([0, 1]),
      ...     receivers=jnp.array([1, 0]), globals=None, n_node=jnp.array([2]),
      ...     n_edge=jnp.array([2]))
      >>> lifted = lift_to_edges(g, edge_lift(g.senders, g.receivers, 2))
      >>> lifted.nodes["orientations"].tolist()
      [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]
    """
    pos = positions_of(graphs)
    if pos.shape[0] != lift.num_nodes:
        raise ValueError(
            f"lift_to_edges: the lift was built for {lift.num_nodes} nodes, the "
            f"graphs have {pos.shape[0]}"
        )
    base, nbr = jnp.asarray(lift.base), jnp.asarray(lift.neighbour)
    nodes: dict[str, Any] = {
        k: v[base] for k, v in node_dict(graphs).items() if k != "orientations"
    }
    nodes["orientations"] = _unit(pos[nbr] - pos[base])
    n_graph = jnp.asarray(graphs.n_node).shape[0]
    gid = graph_index(graphs)[base]
    n_node = jax.ops.segment_sum(jnp.ones_like(gid), gid, num_segments=n_graph)
    n_edge = jax.ops.segment_sum(
        jnp.ones((lift.receivers.shape[0],), jnp.int32),
        gid[jnp.asarray(lift.receivers)],
        num_segments=n_graph,
    )
    return jraph.GraphsTuple(
        nodes=nodes,
        edges=None,
        senders=jnp.asarray(lift.senders),
        receivers=jnp.asarray(lift.receivers),
        globals=graphs.globals,
        n_node=n_node,
        n_edge=n_edge,
    )


def lower_from_edges(
    values: Float[Array, "L ..."], lift: EdgeLift
) -> Float[Array, "N ..."]:
    """Mean of lifted-node values over each base node's lifted nodes (zero for a
    node without any): brings :func:`lift_to_edges` outputs back to R³.

    Example:
      >>> import jax.numpy as jnp
      >>> lift = edge_lift([1, 2, 0], [0, 0, 1], 3)  # node 0: 2 lifted, node 2: 0
      >>> lower_from_edges(jnp.array([1.0, 3.0, 5.0]), lift).tolist()
      [2.0, 5.0, 0.0]
    """
    base = jnp.asarray(lift.base)
    if values.shape[0] != base.shape[0]:
        raise ValueError(
            f"lower_from_edges: values have {values.shape[0]} rows, the lift has "
            f"{base.shape[0]} lifted nodes"
        )
    n = lift.num_nodes
    total = jax.ops.segment_sum(values, base, num_segments=n)
    count = np.bincount(lift.base, minlength=n).astype(np.float64)
    inv = jnp.asarray(1.0 / np.maximum(count, 1.0), values.dtype)
    return total * inv.reshape((n,) + (1,) * (values.ndim - 1))
