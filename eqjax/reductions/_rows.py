"""Registry rows of eqjax.reductions (Ong & Veličković, LoG 2022).

* exact monoids reduced over a balanced tree are set functions invariant under
  ``Sn`` acting on the items;
* a learnable commutative operator reduced over the tree is exactly invariant
  under the automorphisms of the tree (swapping the children of any node; it needs
  commutativity only), sampled by :func:`sample_tree_automorphisms`;
* aggregation on a padded jraph graph (exact and learnable monoids, one row) is
  equivariant under relabelling nodes within their graphs (edges keep their
  order, so even the learnable, non-associative operator gives an exact result).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import jraph
import numpy as np

from ..groups import Sn, act_graph, act_set, graph_node_permutations
from ..reductions import (
    aggregate,
    init_gru_cell,
    logsumexp_monoid,
    max_monoid,
    sum_monoid,
    symmetric_gru_monoid,
    tree_reduce_dense,
)
from ..testing import Transform, built_once

N_ITEMS, FEATURES = 6, 3
N_TREE = 8  # a power of two: the whole item axis is one tree


def sample_tree_automorphisms(key, shape=(), dtype=jnp.int32, *, n: int = N_TREE):
    """Uniform permutations of ``n = 2**L`` leaves that preserve the balanced tree of
    :func:`eqjax.reductions.tree_reduce_dense` (level ``k`` pairs leaves differing in
    bit ``L - k``): bit ``t`` of a leaf index is flipped by a random bit that
    depends on the lower bits ``0..t-1`` (the node the flip swaps the children of).

    Example:
      >>> import jax
      >>> p = sample_tree_automorphisms(jax.random.key(0), (2,))
      >>> p.shape, sorted(p[0].tolist()) == list(range(8))
      ((2, 8), True)
    """
    L = (n - 1).bit_length()
    if 1 << L != n:
        raise ValueError(f"tree automorphisms need a power of two, got n={n}")
    shape = tuple(shape)
    i = jnp.arange(n)
    out = jnp.broadcast_to(i, (*shape, n))
    keys = jax.random.split(key, max(L, 1))
    for t in range(L):
        flips = jax.random.bernoulli(keys[t], 0.5, (*shape, 1 << t))
        lower = i % (1 << t)
        bit = jnp.take(flips, lower, axis=-1).astype(i.dtype)
        out = out ^ (bit << t)
    return out.astype(dtype)


def _set_input(n):
    def make(key, dtype):
        return jax.random.normal(key, (n, FEATURES), dtype)

    return make


def _set_degenerate(n):
    def make(dtype):
        return [
            jnp.zeros((n, FEATURES), dtype),
            jnp.ones((n, FEATURES), dtype),  # all items equal
            jnp.tile(jnp.arange(FEATURES, dtype=dtype), (n, 1)),
        ]

    return make


def _monoid_row(monoid):
    def fn(x):
        return tree_reduce_dense(monoid.op, x, identity=monoid.identity)

    return Transform(
        name=f"reductions.tree_reduce_{monoid.name}_set",
        fn=fn,
        group=Sn(N_ITEMS),
        act_in=act_set,
        act_out=None,
        make_input=_set_input(N_ITEMS),
        degenerate_inputs=_set_degenerate(N_ITEMS),
        notes=f"balanced-tree {monoid.name} over 6 items (padded to 8 with the "
        "identity); invariant under Sn(6)",
    )


# sampled once (inside a traced fn a threefry sampler was compiled into every
# check program: about 2 s of compilation each on 2 cores)
_gru_params = built_once(
    lambda: init_gru_cell(jax.random.key(0, impl="rbg"), FEATURES), jit=True
)


def _gru_monoid(dtype):
    params = jax.tree_util.tree_map(lambda v: v.astype(dtype), _gru_params())
    return symmetric_gru_monoid(params, jnp.zeros((FEATURES,), dtype))


def _lcm_tree(x):
    m = _gru_monoid(x.dtype)
    return tree_reduce_dense(m.op, x, identity=m.identity)


# ------------------------------------------------------------------ graphs

N_NODE = (4, 3, 1)  # two graphs and jraph's padding graph
N_EDGE = (10, 6, 1)
MAX_DEGREE = 4  # in-degrees are at most ceil(10 / 4) = 3: a tree of 4 slots


def make_graph(key, dtype) -> jraph.GraphsTuple:
    """A padded batch of two random multigraphs (in-degree <= 3) with random node
    features; the last graph is jraph's padding graph (``get_edge_padding_mask``
    marks its edge)."""
    return _make_graph(key, dtype=jnp.dtype(dtype))


@partial(jax.jit, static_argnames="dtype")
def _make_graph(key, dtype) -> jraph.GraphsTuple:
    # one compilation per dtype (op-by-op it would compile a few dozen kernels)
    ks = jax.random.split(key, 3)
    starts = [0, 4, 7]
    send, recv = [], []
    for g, (nn, ne) in enumerate(zip(N_NODE, N_EDGE, strict=True)):
        kk = jax.random.split(ks[g], 2)
        send.append(starts[g] + jax.random.randint(kk[0], (ne,), 0, nn))
        # each node receives ceil(ne / nn) edges at most
        balanced = jnp.tile(jnp.arange(nn), -(-ne // nn))[:ne]
        recv.append(starts[g] + jax.random.permutation(kk[1], balanced))
    return jraph.GraphsTuple(
        nodes=jax.random.normal(ks[2], (sum(N_NODE), FEATURES), dtype),
        edges=None,
        senders=jnp.concatenate(send),
        receivers=jnp.concatenate(recv),
        globals=None,
        n_node=jnp.array(N_NODE),
        n_edge=jnp.array(N_EDGE),
    )


def _graph_degenerate(dtype):
    """One input for all the degenerate cases (each input costs a compilation):
    zero features (all messages equal), and the second graph without real edges
    (its edges become padding edges at the padding node, as
    ``jraph.pad_with_graphs`` makes them): isolated real nodes."""
    g = make_graph(jax.random.key(0), dtype)
    assert g.senders is not None and g.receivers is not None
    n0 = N_EDGE[0]
    padding_node = jnp.full((sum(N_EDGE) - n0,), sum(N_NODE) - 1, jnp.int32)
    return [
        g._replace(
            nodes=jnp.zeros((sum(N_NODE), FEATURES), dtype),
            senders=g.senders.at[n0:].set(padding_node),
            receivers=g.receivers.at[n0:].set(padding_node),
            n_edge=jnp.array([n0, 0, sum(N_EDGE) - n0]),
        )
    ]


def _graph_fn(graph):
    """Exact (sum) and learnable (symmetrised GRU) aggregation of neighbour
    features at the receivers, padding edges masked; one row for the three (they
    share the segment bookkeeping, and each row costs compilations)."""
    x = graph.nodes
    msgs, recv, n = x[graph.senders], graph.receivers, x.shape[0]
    mask = jnp.asarray(jraph.get_edge_padding_mask(graph))
    lcm = _gru_monoid(x.dtype)

    def agg(op, identity):
        return aggregate(
            msgs,
            recv,
            n,
            op=op,
            identity=identity,
            max_segment_size=MAX_DEGREE,
            mask=mask,
        )

    return {"sum": agg(jnp.add, 0.0), "lcm_gru": agg(lcm.op, lcm.identity)}


# the group needs only the batch's layout (nodes per graph), built without JAX ops
_GRAPH_GROUP = graph_node_permutations(
    jraph.GraphsTuple(
        nodes=jnp.asarray(np.zeros((sum(N_NODE), FEATURES), np.float32)),
        edges=None,
        senders=jnp.asarray(np.zeros(sum(N_EDGE), np.int32)),
        receivers=jnp.asarray(np.zeros(sum(N_EDGE), np.int32)),
        globals=None,
        n_node=jnp.asarray(np.array(N_NODE)),
        n_edge=jnp.asarray(np.array(N_EDGE)),
    )
)


def _act_nodes(p, y):
    return jax.tree_util.tree_map(lambda v: act_set(p, v, axis=0), y)


ROWS: list[Transform] = [
    _monoid_row(sum_monoid()),
    _monoid_row(max_monoid()),
    _monoid_row(logsumexp_monoid()),
    Transform(
        name="reductions.lcm_gru_tree_automorphisms",
        fn=_lcm_tree,
        group=Sn(N_TREE),
        act_in=act_set,
        act_out=None,
        make_input=_set_input(N_TREE),
        degenerate_inputs=_set_degenerate(N_TREE),
        sample=sample_tree_automorphisms,
        notes="learnable symmetrised-GRU operator over a balanced tree of 8 items: "
        "exactly invariant under the tree's automorphisms (commutativity), not "
        "under all of Sn(8) (that needs associativity)",
    ),
    Transform(
        name="reductions.aggregate_graph",
        fn=_graph_fn,
        group=_GRAPH_GROUP,
        act_in=act_graph,
        act_out=_act_nodes,
        make_input=make_graph,
        degenerate_inputs=_graph_degenerate,
        notes="sum and learnable commutative (symmetrised GRU) aggregation of "
        "neighbour features by tree_reduce over receivers, padding edges masked; "
        "node relabelling within graphs of a padded jraph batch (exact for the "
        "learnable op too, because edges keep their order)",
    ),
]
