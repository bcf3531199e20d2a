"""Sub-graph permutation-equivariant networks (SPEN).

Mitton & Murray-Smith, "Subgraph Permutation Equivariant Networks",
arXiv:2111.11840 (TMLR 2023). Every node's ``k``-hop ego network is a
sub-graph; a SPEN layer updates each sub-graph's order-1 (node) and order-2
(pair) features with a 2-IGN layer (Maron et al., ICLR 2019: maps 1→1, 2→1,
1→2, 2→2), weights shared between the sub-graphs of one size bucket, and
writes the results back to the graph: a node's (edge's) new feature is the
average over every sub-graph that contains it. Sub-graph extraction is
combinatorial and runs on the host (:func:`ego_subgraphs`, NumPy/SciPy); it
produces padded static-shape index arrays in a few size buckets, and
everything after it is a pure, jit-able function of arrays.

Memory: a global 2-IGN stores ``n²`` pair features; SPEN stores
``Σ_v |ego(v)|²``, linear in ``n`` at bounded degree.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import scipy.sparse as sp
from jaxtyping import Array, Float, Int

from ._ign import IGNParams, ign_init, ign_linear
from ._models import MLPParams, mlp, mlp_init

DEFAULT_BUCKETS = (4, 8, 16, 32, 64, 128, 256)
"""Default sub-graph size buckets of :class:`SPEN` and :func:`spen_init`."""


class SubgraphBucket(NamedTuple):
    """The padded sub-graphs of one size bucket (``S`` sub-graphs of at most ``s``
    nodes).

    Attributes:
      nodes: ``(S, s)`` int32 global node ids; padding entries hold ``num_nodes``.
      pair_edges: ``(S, s, s)`` int32 id of the directed edge ``(nodes[a],
        nodes[b])``, or ``num_edges`` where there is none (or on padding).
      mask: ``(S, s)`` bool, ``True`` on real entries (padded sub-graphs are all
        ``False``).
    """

    nodes: Any
    pair_edges: Any
    mask: Any


class EgoSubgraphs(NamedTuple):
    """Ego-network sub-graphs in size buckets (a pytree of index arrays).

    Attributes:
      buckets: one :class:`SubgraphBucket` per bucket size (a bucket with no
        sub-graph has zero rows, and costs nothing).
    """

    buckets: tuple[SubgraphBucket, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        """The node capacity ``s`` of each bucket (from the array shapes)."""
        return tuple(int(b.nodes.shape[-1]) for b in self.buckets)


def _pow2(x: int) -> int:
    return 1 if x <= 1 else 1 << (int(x) - 1).bit_length()


def ego_subgraphs(
    senders: Int[Array, " E"] | np.ndarray,
    receivers: Int[Array, " E"] | np.ndarray,
    num_nodes: int,
    hops: int = 1,
    *,
    bucket_sizes: Sequence[int] | None = None,
    num_subgraphs: Sequence[int] | None = None,
) -> EgoSubgraphs:
    """The ``hops``-hop ego network of every node, bucketed by size (host side).

    Sub-graph ``v`` holds the nodes within ``hops`` hops of ``v`` (``v``
    included), in increasing id order. Runs in NumPy/SciPy on concrete arrays;
    the result has static shapes: bucket ``b`` holds the sub-graphs with
    ``sizes[b-1] < size <= sizes[b]``, padded to ``sizes[b]`` nodes, and its
    number of sub-graphs is padded to a power of two (or to ``num_subgraphs[b]``;
    an empty bucket has 0 rows).

    Args:
      senders, receivers: ``(E,)`` directed edge list (a batched or padded
        ``GraphsTuple``'s arrays work as they are: ego networks never cross
        graphs, and self-loops such as jraph's padding edges are ignored for
        reachability).
      num_nodes: number of nodes ``N`` (node ids are ``0 … N-1``).
      hops: ``k >= 1``.
      bucket_sizes: increasing node capacities; default: powers of two up to the
        largest ego network.
      num_subgraphs: optional per-bucket sub-graph capacities.

    Returns:
      :class:`EgoSubgraphs` (NumPy arrays).

    Raises:
      ValueError: ``hops < 1``, ragged or out-of-range edge arrays, an ego
        network larger than the largest bucket, a capacity too small.

    Example:
      >>> s, r = np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1])   # path 0-1-2
      >>> subs = ego_subgraphs(s, r, 3, hops=1, bucket_sizes=(2, 4))
      >>> subs.sizes, subs.buckets[1].nodes.tolist()
      ((2, 4), [[0, 1, 2, 3]])
    """
    if isinstance(hops, bool) or not isinstance(hops, (int, np.integer)) or hops < 1:
        raise ValueError(f"ego_subgraphs: hops must be an int >= 1, got {hops!r}")
    try:
        s = np.asarray(senders)
        r = np.asarray(receivers)
    except jax.errors.TracerArrayConversionError:
        raise TypeError(
            "ego_subgraphs runs on the host: call it outside jax.jit on concrete "
            "arrays and pass the result into the jitted function"
        ) from None
    N = int(num_nodes)
    if s.ndim != 1 or r.ndim != 1 or s.shape != r.shape:
        raise ValueError(
            f"ego_subgraphs: senders and receivers must be 1-D of equal length, got "
            f"{s.shape} and {r.shape}"
        )
    if not (np.issubdtype(s.dtype, np.integer) and np.issubdtype(r.dtype, np.integer)):
        raise TypeError(
            f"ego_subgraphs: senders/receivers must be integer, got {s.dtype}, {r.dtype}"
        )
    E = s.shape[0]
    if E and (min(s.min(), r.min()) < 0 or max(s.max(), r.max()) >= N):
        raise ValueError(f"ego_subgraphs: node ids must lie in 0..{N - 1} (num_nodes)")
    s64, r64 = s.astype(np.int64), r.astype(np.int64)
    off = s64 != r64
    A: Any = sp.csr_matrix(
        (np.ones(int(off.sum()), np.int8), (s64[off], r64[off])), shape=(N, N)
    )
    A = ((A + A.T) > 0).astype(np.int8)
    R: Any = (A + sp.identity(N, dtype="int8", format="csr")).tocsr()
    P: Any = sp.identity(N, dtype="int8", format="csr")
    for _ in range(int(hops)):
        P = ((P @ R) > 0).astype(np.int8).tocsr()
    P.sort_indices()
    indptr, indices = P.indptr, P.indices
    sizes = np.diff(indptr)
    if bucket_sizes is None:
        top = _pow2(int(sizes.max(initial=1)))
        bucket_sizes = [1 << i for i in range(top.bit_length())]
    bsz = [int(b) for b in bucket_sizes]
    if any(b2 <= b1 for b1, b2 in zip(bsz, bsz[1:], strict=False)) or bsz[0] < 1:
        raise ValueError(f"ego_subgraphs: bucket_sizes must increase, got {bsz}")
    if sizes.size and sizes.max() > bsz[-1]:
        raise ValueError(
            f"ego_subgraphs: an ego network has {int(sizes.max())} nodes, more than "
            f"the largest bucket {bsz[-1]}; pass larger bucket_sizes"
        )
    keys = s64 * N + r64
    order = np.argsort(keys, kind="stable")
    skeys = keys[order]
    buckets = []
    lo = 0
    for b, cap in enumerate(bsz):
        roots = np.nonzero((sizes > lo) & (sizes <= cap))[0]
        lo = cap
        S = roots.shape[0]
        S_pad = _pow2(S) if S else 0
        if num_subgraphs is not None:
            S_pad = int(num_subgraphs[b])
            if S_pad < S:
                raise ValueError(
                    f"ego_subgraphs: bucket {cap} has {S} sub-graphs, more than "
                    f"num_subgraphs[{b}]={S_pad}"
                )
        nodes = np.full((S_pad, cap), N, np.int64)
        cnt = sizes[roots]
        if S:
            row = np.repeat(np.arange(S), cnt)
            col = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            nodes[row, col] = indices[np.repeat(indptr[roots], cnt) + col]
        mask = nodes < N
        u, v = nodes[:, :, None], nodes[:, None, :]
        pk = (u * N + v).reshape(-1)
        if E:
            pos = np.clip(np.searchsorted(skeys, pk), 0, E - 1)
            pe = np.where(skeys[pos] == pk, order[pos], E)
        else:
            pe = np.full(pk.shape, E, np.int64)
        pe = pe.reshape(S_pad, cap, cap)
        pe = np.where(mask[:, :, None] & mask[:, None, :], pe, E)
        buckets.append(
            SubgraphBucket(nodes.astype(np.int32), pe.astype(np.int32), mask)
        )
    return EgoSubgraphs(tuple(buckets))


def graph_subgraphs(
    graph: jraph.GraphsTuple,
    hops: int = 1,
    *,
    bucket_sizes: Sequence[int] | None = DEFAULT_BUCKETS,
    num_subgraphs: Sequence[int] | None = None,
) -> EgoSubgraphs:
    """:func:`ego_subgraphs` of a (batched, padded) ``GraphsTuple`` (host side)."""
    if not isinstance(graph, jraph.GraphsTuple):
        raise TypeError(
            f"graph_subgraphs expects a jraph.GraphsTuple, got {type(graph)}"
        )
    N = int(jax.tree_util.tree_leaves(graph.nodes)[0].shape[0])
    if graph.senders is None or graph.receivers is None:
        raise ValueError(
            "graph_subgraphs: graph.senders and graph.receivers are required"
        )
    return ego_subgraphs(
        graph.senders,
        graph.receivers,
        N,
        hops,
        bucket_sizes=bucket_sizes,
        num_subgraphs=num_subgraphs,
    )


class SPENLayerParams(NamedTuple):
    """The four IGN maps of one SPEN layer for one bucket: node→node (1→1),
    pairs→node (2→1), node→pairs (1→2), pairs→pairs (2→2)."""

    n2n: IGNParams
    p2n: IGNParams
    n2p: IGNParams
    p2p: IGNParams


def spen_layer_init(
    key: jax.Array,
    node_in: int,
    pair_in: int,
    node_out: int,
    pair_out: int,
    *,
    dtype: Any = jnp.float32,
) -> SPENLayerParams:
    """Parameters of one bucket of a SPEN layer. ``pair_in`` counts the pair
    features without the adjacency indicator that :func:`spen_layer` appends."""
    k = jax.random.split(key, 4)
    c2 = pair_in + 1
    return SPENLayerParams(
        ign_init(k[0], 1, 1, node_in, node_out, dtype=dtype),
        ign_init(k[1], 2, 1, c2, node_out, bias=False, dtype=dtype),
        ign_init(k[2], 1, 2, node_in, pair_out, bias=False, dtype=dtype),
        ign_init(k[3], 2, 2, c2, pair_out, dtype=dtype),
    )


@functools.partial(jax.jit, static_argnames=("activation", "normalization"))
def spen_layer(
    params: Sequence[SPENLayerParams] | SPENLayerParams,
    nodes: Float[Array, "N C"],
    edges: Float[Array, "E Ce"],
    subgraphs: EgoSubgraphs,
    *,
    activation=jax.nn.relu,
    normalization: str = "mean",
) -> tuple[Float[Array, "N D"], Float[Array, "E De"]]:
    """One SPEN layer: per-sub-graph 2-IGN update, scattered back and averaged.

    For each bucket, the sub-graphs' node features ``X1 (S, s, C)`` and pair
    features ``X2 (S, s, s, Ce + 1)`` (the edge features of the pairs that are
    edges, zero elsewhere, and an adjacency indicator) are mapped to
    ``Y1 = L11 X1 + L21 X2`` and ``Y2 = L22 X2 + L12 X1`` with that bucket's
    weights (:func:`~eqjax.graphs.ign_linear`, masked). Node ``v``'s output is
    ``activation`` of the mean of ``Y1`` over all sub-graphs containing ``v``;
    edge ``(u, w)``'s is that of the mean of ``Y2`` over all sub-graphs
    containing both; pairs that are not edges are dropped.

    Args:
      params: one :class:`SPENLayerParams` per bucket (in ``subgraphs.sizes``
        order), or a single one shared by every bucket.
      nodes: ``(N, C)`` node features.
      edges: ``(E, Ce)`` edge features (``Ce`` may be 0).
      subgraphs: :class:`EgoSubgraphs` of the same graph (``N`` nodes, ``E``
        edges).

    Returns:
      ``(nodes (N, D), edges (E, De))``.

    Raises:
      ValueError: mismatched shapes or a params list of the wrong length.
    """
    if not isinstance(subgraphs, EgoSubgraphs):
        raise TypeError(
            f"spen_layer: subgraphs must be EgoSubgraphs, got {type(subgraphs)}"
        )
    if nodes.ndim != 2 or edges.ndim != 2:
        raise ValueError(
            f"spen_layer: nodes must be (N, C) and edges (E, Ce); got {nodes.shape}, "
            f"{edges.shape}"
        )
    nb = len(subgraphs.buckets)
    plist = [params] * nb if isinstance(params, SPENLayerParams) else list(params)
    if len(plist) != nb:
        raise ValueError(
            f"spen_layer: {len(plist)} parameter sets for {nb} buckets "
            f"{subgraphs.sizes}"
        )
    N, E = nodes.shape[0], edges.shape[0]
    dt = nodes.dtype
    edges = edges.astype(dt)
    hp = jnp.concatenate([nodes, jnp.zeros((1, nodes.shape[1]), dt)])
    ep = jnp.concatenate([edges, jnp.zeros((1, edges.shape[1]), dt)])
    D = plist[0].n2n.weights.shape[-1]
    De = plist[0].p2p.weights.shape[-1]
    h_sum = jnp.zeros((N + 1, D), dt)
    h_cnt = jnp.zeros((N + 1,), dt)
    e_sum = jnp.zeros((E + 1, De), dt)
    e_cnt = jnp.zeros((E + 1,), dt)
    for bucket, p in zip(subgraphs.buckets, plist, strict=True):
        idx, pe, m = bucket.nodes, bucket.pair_edges, bucket.mask
        if (
            idx.ndim != 2
            or pe.shape != idx.shape + idx.shape[-1:]
            or m.shape != idx.shape
        ):
            raise ValueError(
                f"spen_layer: bucket arrays disagree: nodes {idx.shape}, pair_edges "
                f"{pe.shape}, mask {m.shape}"
            )
        x1 = hp[jnp.clip(idx, 0, N)]
        is_edge = (pe < E) & m[:, :, None] & m[:, None, :]
        x2 = jnp.concatenate(
            [ep[jnp.clip(pe, 0, E)], is_edge[..., None].astype(dt)], -1
        )
        kw = {"normalization": normalization}
        y1 = ign_linear(p.n2n, x1, m, order_in=1, order_out=1, **kw) + ign_linear(
            p.p2n, x2, m, order_in=2, order_out=1, **kw
        )
        y2 = ign_linear(p.p2p, x2, m, order_in=2, order_out=2, **kw) + ign_linear(
            p.n2p, x1, m, order_in=1, order_out=2, **kw
        )
        seg = jnp.where(m, idx, N).reshape(-1)
        h_sum = h_sum + jax.ops.segment_sum(y1.reshape(-1, D), seg, N + 1)
        h_cnt = h_cnt + jax.ops.segment_sum(m.reshape(-1).astype(dt), seg, N + 1)
        eseg = jnp.where(is_edge, pe, E).reshape(-1)
        e_sum = e_sum + jax.ops.segment_sum(y2.reshape(-1, De), eseg, E + 1)
        e_cnt = e_cnt + jax.ops.segment_sum(is_edge.reshape(-1).astype(dt), eseg, E + 1)
    h = h_sum[:N] / jnp.maximum(h_cnt[:N], 1)[:, None]
    e = e_sum[:E] / jnp.maximum(e_cnt[:E], 1)[:, None]
    return activation(h), activation(e)


@functools.partial(jax.jit, static_argnames=())
def relabel_subgraphs(p: Int[Array, " N"], subgraphs: EgoSubgraphs) -> EgoSubgraphs:
    """Sub-graph index arrays after the node relabelling ``v → p[v]`` (edge ids
    are unchanged; padding stays padding): the action of ``S_N`` on
    :class:`EgoSubgraphs`, jit-able."""
    N = p.shape[-1]
    out = []
    for b in subgraphs.buckets:
        new = jnp.where(b.mask, p[jnp.clip(b.nodes, 0, N - 1)], N).astype(b.nodes.dtype)
        out.append(b._replace(nodes=new))
    return EgoSubgraphs(tuple(out))


class SPENParams(NamedTuple):
    """Parameters of a SPEN model: ``layers[l]`` is a tuple with one
    :class:`SPENLayerParams` per bucket (length 1 when weights are shared by all
    buckets); ``readout`` an MLP on the concatenated per-layer node sums."""

    layers: tuple[tuple[SPENLayerParams, ...], ...]
    readout: MLPParams


def spen_init(
    key: jax.Array,
    in_features: int,
    hidden: int,
    out_features: int,
    *,
    num_layers: int = 2,
    num_buckets: int = len(DEFAULT_BUCKETS),
    share_weights: bool = False,
    dtype: Any = jnp.float32,
) -> SPENParams:
    """Random SPEN parameters: ``num_layers`` SPEN layers (per-bucket weights for
    ``num_buckets`` buckets, or one set when ``share_weights``) and a readout MLP
    ``[in + layers · hidden] → hidden → out``."""
    if num_layers < 1:
        raise ValueError(f"spen_init: num_layers must be >= 1, got {num_layers}")
    keys = jax.random.split(key, num_layers + 1)
    layers = []
    c, ce = in_features, 0
    for kl in keys[:-1]:
        nb = 1 if share_weights else int(num_buckets)
        layers.append(
            tuple(
                spen_layer_init(kb, c, ce, hidden, hidden, dtype=dtype)
                for kb in jax.random.split(kl, nb)
            )
        )
        c = ce = hidden
    readout = mlp_init(
        keys[-1], [in_features + num_layers * hidden, hidden, out_features], dtype=dtype
    )
    return SPENParams(tuple(layers), readout)


def graph_ids(graph: jraph.GraphsTuple, num_nodes: int) -> Array:
    """``(N,)`` the graph each node row belongs to (jit-able)."""
    n_node = jnp.asarray(graph.n_node)
    return jnp.repeat(
        jnp.arange(n_node.shape[0]), n_node, total_repeat_length=num_nodes
    )


@functools.partial(jax.jit, static_argnames=("normalization",))
def spen(
    params: SPENParams,
    graph: jraph.GraphsTuple,
    subgraphs: EgoSubgraphs,
    *,
    normalization: str = "mean",
) -> Float[Array, "G out"]:
    """The SPEN model: SPEN layers, per-graph sums of every layer's node features
    (invariant readout), an MLP. Returns ``(n_graph, out)`` (rows of padding
    graphs are computed too; mask them).

    Args:
      params: :class:`SPENParams` from :func:`spen_init`.
      graph: a (padded) ``jraph.GraphsTuple`` with ``(N, F)`` node features.
      subgraphs: :func:`graph_subgraphs` of ``graph`` (bucket count matching
        ``params`` unless weights are shared).
    """
    if not isinstance(graph, jraph.GraphsTuple):
        raise TypeError(f"spen expects a jraph.GraphsTuple, got {type(graph)}")
    x = jnp.asarray(graph.nodes)
    if x.ndim != 2:
        raise ValueError(f"spen: graph.nodes must be (N, F), got {x.shape}")
    if graph.senders is None:
        raise ValueError("spen: graph.senders is required")
    N, E = x.shape[0], jnp.shape(graph.senders)[0]
    h, e = x, jnp.zeros((E, 0), x.dtype)
    feats = [h]
    for layer in params.layers:
        p = layer[0] if len(layer) == 1 else layer
        h, e = spen_layer(p, h, e, subgraphs, normalization=normalization)
        feats.append(h)
    gid = graph_ids(graph, N)
    G = jnp.shape(graph.n_node)[0]
    pooled = jax.ops.segment_sum(jnp.concatenate(feats, -1), gid, G)
    return mlp(params.readout, pooled)
