"""Registry rows for eqjax.graphs: the IGN maps, a sample of equivariant
polynomials (invariant, node- and edge-level, PPGN-computable or not), the SPEN layer (node relabelling;
permuting the sub-graphs of one bucket), the SPEN model and GIN (graph-level
invariance on a padded ``GraphsTuple``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jraph
import numpy as np

from .. import datasets as ds
from ..groups import Sn, act_adjacency, act_graph, act_set, graph_node_permutations
from ..testing import Transform, built_once
from ._ign import ign_init, ign_linear
from ._models import MLPParams, gin, gin_init
from ._polynomials import evaluate_polynomials, polynomial_pattern
from ._ppgn import ppgn, ppgn_block, ppgn_block_init, ppgn_init
from ._spe import spe, spe_init
from ._spen import (
    EgoSubgraphs,
    graph_subgraphs,
    relabel_subgraphs,
    spen,
    spen_init,
    spen_layer,
    spen_layer_init,
)

_N = 5  # nodes of the dense IGN input (the last one is padding)
_C = 2
_BUCKETS = (4,)


def _ign_params():
    k = jax.random.split(jax.random.key(7, impl="rbg"), 6)
    orders = [(1, 1), (2, 1), (1, 2), (2, 2), (1, 0), (2, 0)]
    return {o: ign_init(k[i], *o, _C, 3) for i, o in enumerate(orders)}


def _ign_row():
    params = built_once(_ign_params, jit=True)

    def fn(x):
        x1, x2, mask = x

        def f(o, v):
            p = params()[o]
            assert p.bias is not None
            p = p._replace(
                weights=p.weights.astype(v.dtype),
                bias=p.bias.astype(v.dtype) + 0.3,  # non-zero biases are checked too
            )
            return ign_linear(p, v, mask, order_in=o[0], order_out=o[1])

        y1 = f((1, 1), x1) + f((2, 1), x2)
        y2 = f((2, 2), x2) + f((1, 2), x1)
        y0 = f((1, 0), x1) + f((2, 0), x2)
        return y1, y2, y0

    def act_in(p, x):
        x1, x2, mask = x
        return (
            act_set(p, x1),
            act_adjacency(p, x2, num_feature_axes=1),
            act_set(p, mask, axis=-1),
        )

    def act_out(p, y):
        y1, y2, y0 = y
        return act_set(p, y1), act_adjacency(p, y2, num_feature_axes=1), y0

    mask = jnp.arange(_N) < _N - 1

    def make_input(key, dtype):
        k1, k2 = jax.random.split(key)
        x1 = jax.random.normal(k1, (_N, _C), dtype)
        x2 = jax.random.normal(k2, (_N, _N, _C), dtype)
        return x1, x2, mask

    def degenerate(dtype):
        z1, z2 = jnp.zeros((_N, _C), dtype), jnp.zeros((_N, _N, _C), dtype)
        one = jnp.arange(_N) < 1
        empty = jnp.zeros((_N,), bool)
        o1, o2 = jnp.ones((_N, _C), dtype), jnp.ones((_N, _N, _C), dtype)
        return [(z1, z2, mask), (o1, o2, one), (o1, o2, empty)]

    return Transform(
        name="graphs.ign_maps",
        fn=fn,
        group=Sn(_N),
        act_in=act_in,
        act_out=act_out,
        make_input=make_input,
        degenerate_inputs=degenerate,
        notes="1→1+2→1, 2→2+1→2, 1→0+2→0 IGN maps with biases, n=5, one padded node "
        "(mask permuted with the nodes); degenerate: zeros, one real node, empty graph",
    )


def _graph_batch(dtype=np.float32):
    """Two graphs (a 4-cycle with a pendant; an edge and an isolated node) padded
    to 10 nodes / 16 edges: isolated nodes and jraph padding in one batch."""
    g1 = ds.cycle_graph(4)
    s = np.concatenate([g1.senders, [0, 4]]).astype(np.int32)
    r = np.concatenate([g1.receivers, [4, 0]]).astype(np.int32)
    g1 = ds.Graph(s, r, np.ones((5, 1), np.float32), 0)
    g2 = ds.from_adjacency(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    gt, _, _ = ds.pad_graphs([g1, g2], n_node=10, n_edge=16, n_graph=3)
    return gt


_GT = _graph_batch()
_SUBS = graph_subgraphs(_GT, 1, bucket_sizes=_BUCKETS)
_SUBS = EgoSubgraphs(
    tuple(jax.tree_util.tree_map(jnp.asarray, b) for b in _SUBS.buckets)
)
_NN = int(np.asarray(_GT.nodes).shape[0])
_NE = int(np.asarray(_GT.senders).shape[0])


def _spen_layer_rows():
    def init():
        k = jax.random.split(jax.random.key(3, impl="rbg"), len(_BUCKETS))
        return [spen_layer_init(kb, 3, 2, 4, 4) for kb in k]

    params = built_once(init, jit=True)

    def fn(x):
        h, e, subs = x
        p = jax.tree_util.tree_map(lambda v: v.astype(h.dtype), params())
        return spen_layer(p, h, e, subs, activation=jax.nn.softplus)

    def make_input(key, dtype):
        k1, k2 = jax.random.split(key)
        return (
            jax.random.normal(k1, (_NN, 3), dtype),
            jax.random.normal(k2, (_NE, 2), dtype),
            _SUBS,
        )

    def degenerate(dtype):
        return [(jnp.zeros((_NN, 3), dtype), jnp.zeros((_NE, 2), dtype), _SUBS)]

    def relabel(p, x):
        h, e, subs = x
        return act_set(p, h), e, relabel_subgraphs(p, subs)

    def relabel_out(p, y):
        h, e = y
        return act_set(p, h), e

    b = 0  # the only bucket (every 1-hop ego network here has <= 4 nodes)
    S = int(_SUBS.buckets[b].nodes.shape[0])

    def shuffle(p, x):
        h, e, subs = x
        bk = list(subs.buckets)
        bk[b] = jax.tree_util.tree_map(lambda v: act_set(p, v, axis=0), bk[b])
        return h, e, EgoSubgraphs(tuple(bk))

    note = (
        "one SPEN layer (1-hop ego networks of a padded 2-graph batch with an "
        "isolated node; one bucket (<= 4 nodes), per-bucket weights, softplus)"
    )
    return [
        Transform(
            name="graphs.spen_layer_relabel",
            fn=fn,
            group=Sn(_NN),
            act_in=relabel,
            act_out=relabel_out,
            make_input=make_input,
            degenerate_inputs=degenerate,
            notes=note + ": node relabelling moves node outputs, edge outputs stay",
        ),
        Transform(
            name="graphs.spen_layer_subgraph_order",
            fn=fn,
            group=Sn(S),
            act_in=shuffle,
            act_out=None,
            make_input=make_input,
            degenerate_inputs=degenerate,
            notes=note + f": permuting the {S} (padded) sub-graphs of the bucket",
            # fast tier: tests/graphs/test_spen.py re-extracts the ego networks of
            # relabelled graphs (new sub-graph order) and compares the models
            slow=True,
        ),
    ]


def _model_rows():
    group = graph_node_permutations(_GT)
    sp = built_once(
        lambda: spen_init(
            jax.random.key(5, impl="rbg"),
            3,
            6,
            2,
            num_layers=1,
            num_buckets=len(_BUCKETS),
        ),
        jit=True,
    )
    gp = built_once(
        lambda: gin_init(jax.random.key(6, impl="rbg"), 3, 6, 2, num_layers=2),
        jit=True,
    )

    def make_input(key, dtype):
        gt = jax.tree_util.tree_map(jnp.asarray, _GT)
        return gt._replace(nodes=jax.random.normal(key, (_NN, 3), dtype)), _SUBS

    def degenerate(dtype):
        gt = jax.tree_util.tree_map(jnp.asarray, _GT)
        return [(gt._replace(nodes=jnp.zeros((_NN, 3), dtype)), _SUBS)]

    def act(p, x):
        gt, subs = x
        return act_graph(p, gt), relabel_subgraphs(p, subs)

    def cast(params, dtype):
        return jax.tree_util.tree_map(lambda v: v.astype(dtype), params)

    def spen_fn(x):
        gt, subs = x
        return spen(cast(sp(), gt.nodes.dtype), gt, subs)

    def gin_fn(x):
        gt, _ = x
        g: jraph.GraphsTuple = gt
        return gin(cast(gp(), jnp.asarray(g.nodes).dtype), g)

    note = (
        "graph-level outputs [n_graph, 2] of a padded batch (a 4-cycle with a "
        "pendant; an edge and an isolated node); nodes relabelled within graphs"
    )
    return [
        Transform(
            name="graphs.spen_model_invariant",
            fn=spen_fn,
            group=group,
            act_in=act,
            act_out=None,
            make_input=make_input,
            degenerate_inputs=degenerate,
            notes="SPEN, 1 layer, 1-hop, one bucket (<= 4 nodes): " + note,
        ),
        Transform(
            name="graphs.gin_invariant",
            fn=gin_fn,
            group=group,
            act_in=act,
            act_out=None,
            make_input=make_input,
            degenerate_inputs=degenerate,
            notes="GIN, 2 layers: " + note,
            slow=True,  # the baseline; tests/graphs/test_spen.py runs it fast
        ),
    ]


def _polynomial_row():
    """Three patterns of each kind (among them K4 and the 5-edge edge-level
    pattern PPGN cannot compute), stacked on a feature axis per kind."""
    P = polynomial_pattern  # hand-made (no networkx atlas at import time)
    k4 = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    c4 = [(0, 1), (1, 2), (2, 3), (0, 3)]
    paw = [(0, 1), (1, 2), (0, 2), (2, 3)]  # a triangle with a pendant edge
    pats = {
        "invariant": [P(k4), P(c4), P(paw)],
        "node": [P(paw, (3,)), P(paw, (2,)), P(k4[1:], (0,))],
        # K4 minus the edge 0-1, marked at 0 and 1: the 5-edge pattern PPGN misses
        "edge": [P(k4[1:], (0, 1)), P(paw, (3, 0)), P(c4, (0, 2))],
    }
    assert (
        not pats["edge"][0].ppgn_computable and not pats["invariant"][0].ppgn_computable
    )
    order = [p for k in ("invariant", "node", "edge") for p in pats[k]]

    def fn(x):
        A, mask = x
        ys = evaluate_polynomials(order, A, mask)
        return (
            jnp.stack(ys[0:3], -1),
            jnp.stack(ys[3:6], -1),
            jnp.stack(ys[6:9], -1),
        )

    def act_in(p, x):
        A, mask = x
        return act_adjacency(p, A), act_set(p, mask, axis=-1)

    def act_out(p, y):
        y0, y1, y2 = y
        return y0, act_set(p, y1), act_adjacency(p, y2, num_feature_axes=1)

    mask = jnp.arange(_N) < _N - 1

    def make_input(key, dtype):
        A = jax.random.uniform(key, (_N, _N), dtype)
        return (A + A.T) / 2, mask

    def degenerate(dtype):
        one = jnp.arange(_N) < 1
        empty = jnp.zeros((_N,), bool)
        z, o = jnp.zeros((_N, _N), dtype), jnp.ones((_N, _N), dtype)
        return [(z, mask), (o, one), (o, empty), (o - jnp.eye(_N, dtype=dtype), mask)]

    return Transform(
        name="graphs.polynomials",
        fn=fn,
        group=Sn(_N),
        act_in=act_in,
        act_out=act_out,
        make_input=make_input,
        degenerate_inputs=degenerate,
        notes="3 invariant (K4 first), 3 node-level, 3 edge-level (the 5-edge "
        "non-PPGN one first) polynomials of a weighted adjacency, n=5, one padded "
        "node (mask permuted with the nodes); degenerate: zeros, one real node, "
        "empty graph, K_4 plus padding",
    )


def _spe_row():
    """SPE (Huang et al., ICLR 2024) on a 4-cycle with one padded node and one
    masked eigenpair: node relabelling permutes the rows of the eigenvectors,
    the edge lists and the node mask, and the encoding's rows follow."""
    n, d = _N, 3
    params = built_once(
        lambda: spe_init(
            jax.random.key(11), d, 2, num_channels=2, phi_hidden=4, hidden=4
        )
    )
    c4 = np.array([0, 1, 2, 3])
    senders = jnp.asarray(np.concatenate([c4, (c4 + 1) % 4, [n - 1]]), jnp.int32)
    receivers = jnp.asarray(np.concatenate([(c4 + 1) % 4, c4, [n - 1]]), jnp.int32)
    node_mask = jnp.arange(n) < n - 1
    eig_mask = jnp.arange(d) < d - 1

    def fn(x):
        lam, V, s, r, nm, em = x
        return spe(params(), lam, V, s, r, nm, eigval_mask=em)

    def act_in(p, x):
        lam, V, s, r, nm, em = x
        return lam, act_set(p, V), p[s], p[r], act_set(p, nm, axis=-1), em

    def make_input(key, dtype):
        k1, k2 = jax.random.split(key)
        lam = jax.random.uniform(k1, (d,), dtype, 0.0, 2.0)
        V = jax.random.normal(k2, (n, d), dtype)
        return lam, V, senders, receivers, node_mask, eig_mask

    def degenerate(dtype):
        z, zv = jnp.zeros((d,), dtype), jnp.zeros((n, d), dtype)
        one, none = jnp.arange(n) < 1, jnp.zeros((n,), bool)
        o, ov = jnp.ones((d,), dtype), jnp.ones((n, d), dtype)
        return [
            (z, zv, senders, receivers, node_mask, eig_mask),
            (o, ov, senders, receivers, one, eig_mask),
            (o, ov, senders, receivers, none, eig_mask),
            (o, ov, senders, receivers, node_mask, jnp.zeros((d,), bool)),
        ]

    return Transform(
        name="graphs.spe",
        fn=fn,
        group=Sn(n),
        act_in=act_in,
        act_out=act_set,
        make_input=make_input,
        degenerate_inputs=degenerate,
        notes="SPE positional encodings [n, 2] (2 eigenvalue networks, 2 GIN "
        "layers of width 4) of a 4-cycle, n=5 with one padded node (a padding "
        "self-edge), d=3 with one masked eigenpair; random eigenpairs (any V: "
        "equivariance does not need orthonormal columns); degenerate: zeros, one "
        "real node, no real node, every eigenpair masked",
    )


def _ppgn_rows():
    """A PPGN++ block (edge-level equivariance) and a one-block PPGN model
    (invariance) on a dense ``[5, 5, 2]`` tensor with one padded node; every
    bias made non-zero, so a padded entry that leaked would show."""

    def biased(p, dtype):
        p = jax.tree_util.tree_map(lambda v: v.astype(dtype), p)
        return jax.tree_util.tree_map(
            lambda m: m._replace(biases=tuple(b + 0.1 for b in m.biases)),
            p,
            is_leaf=lambda v: isinstance(v, MLPParams),
        )

    bp = built_once(
        lambda: ppgn_block_init(jax.random.key(12, impl="rbg"), _C, 3, plus=True),
        jit=True,
    )
    mp = built_once(
        lambda: ppgn_init(jax.random.key(13, impl="rbg"), _C, 3, 1, 2), jit=True
    )

    def block_fn(x):
        X, mask = x
        return ppgn_block(biased(bp(), X.dtype), X, mask, plus=True)

    def model_fn(x):
        X, mask = x
        return ppgn(biased(mp(), X.dtype), X, mask)

    def act_in(p, x):
        X, mask = x
        return act_adjacency(p, X, num_feature_axes=1), act_set(p, mask, axis=-1)

    mask = jnp.arange(_N) < _N - 1

    def make_input(key, dtype):
        return jax.random.normal(key, (_N, _N, _C), dtype), mask

    def degenerate(dtype):
        z, o = jnp.zeros((_N, _N, _C), dtype), jnp.ones((_N, _N, _C), dtype)
        one, empty = jnp.arange(_N) < 1, jnp.zeros((_N,), bool)
        return [(z, mask), (o, one), (o, empty)]

    note = (
        "n=5, C=2, one padded node (mask permuted with the nodes), biases 0.1; "
        "degenerate: zeros, one real node, empty graph"
    )
    return [
        Transform(
            name="graphs.ppgn_plus_block",
            fn=block_fn,
            group=Sn(_N),
            act_in=act_in,
            act_out=lambda p, y: act_adjacency(p, y, num_feature_axes=1),
            make_input=make_input,
            degenerate_inputs=degenerate,
            notes="one PPGN++ block (MLPs on [X, Xᵀ, δ], mean-normalised matrix "
            "product, concatenating skip) -> [5, 5, 3]: " + note,
        ),
        Transform(
            name="graphs.ppgn_invariant",
            fn=model_fn,
            group=Sn(_N),
            act_in=act_in,
            act_out=None,
            make_input=make_input,
            degenerate_inputs=degenerate,
            notes="PPGN model, one plain block of width 3, diagonal / off-diagonal "
            "mean readout, MLP head -> [2]: " + note,
        ),
    ]


ROWS: list[Transform] = [
    _ign_row(),
    _polynomial_row(),
    *_spen_layer_rows(),
    *_model_rows(),
    *_ppgn_rows(),
    _spe_row(),
]
