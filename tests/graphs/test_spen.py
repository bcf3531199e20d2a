"""Ego sub-graphs, the SPEN layer and model, GIN: invariance, padding and
bucketing, expressivity beyond 1-WL, bad input, the NNX modules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq

G, ds = eq.graphs, eq.datasets


def _init(init, seed, *args, **kw):
    """``init(key, *args, **kw)`` in one compiled program with an ``rbg`` key (op
    by op, every parameter shape would compile its own threefry sampler)."""
    return jax.jit(lambda: init(jax.random.key(seed, impl="rbg"), *args, **kw))()


def _path(n):
    i = np.arange(n - 1)
    return np.concatenate([i, i + 1]), np.concatenate([i + 1, i])


def test_ego_subgraphs_of_a_path():
    s, r = _path(5)
    subs = G.ego_subgraphs(s, r, 5, hops=1, bucket_sizes=(2, 3))
    b2, b3 = subs.buckets
    assert subs.sizes == (2, 3)
    assert b2.nodes.tolist() == [[0, 1], [3, 4]] and b2.mask.all()
    assert b3.nodes.tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [5, 5, 5]]
    assert b3.mask.sum(1).tolist() == [3, 3, 3, 0]
    # pair_edges names the directed edge of each pair, E (=8) elsewhere
    E = s.shape[0]
    for S in range(3):
        for a in range(3):
            for c in range(3):
                u, v = b3.nodes[S, a], b3.nodes[S, c]
                e = b3.pair_edges[S, a, c]
                if e < E:
                    assert (s[e], r[e]) == (u, v)
                else:
                    assert abs(int(u) - int(v)) != 1
    two = G.ego_subgraphs(s, r, 5, hops=2)
    sizes = [int(m.sum()) for b in two.buckets for m in b.mask if m.any()]
    assert sorted(sizes) == [3, 3, 4, 4, 5]


def test_ego_subgraphs_bad_input():
    s, r = _path(4)
    with pytest.raises(ValueError, match="hops must be an int >= 1"):
        G.ego_subgraphs(s, r, 4, hops=0)
    with pytest.raises(ValueError, match="equal length"):
        G.ego_subgraphs(s, r[:-1], 4)
    with pytest.raises(ValueError, match="node ids"):
        G.ego_subgraphs(s, r, 3)
    with pytest.raises(ValueError, match="largest bucket 2"):
        G.ego_subgraphs(s, r, 4, bucket_sizes=(2,))
    with pytest.raises(TypeError, match="host"):
        jax.jit(lambda a, b: G.ego_subgraphs(a, b, 4))(jnp.asarray(s), jnp.asarray(r))
    with pytest.raises(ValueError, match="hops"):
        eq.nn.SPEN(1, 4, 2, hops=0, rngs=nnx.Rngs(0))


def _relabel_within_graphs(gt, seed):
    """Host-side random relabelling that keeps every node in its graph (the
    action of eq.groups.graph_node_permutations, in NumPy)."""
    rng = np.random.default_rng(seed)
    off = np.concatenate([[0], np.cumsum(gt.n_node)])
    p = np.concatenate(
        [a + rng.permutation(b - a) for a, b in zip(off[:-1], off[1:], strict=True)]
    )
    nodes = np.empty_like(gt.nodes)
    nodes[p] = gt.nodes
    return gt._replace(nodes=nodes, senders=p[gt.senders], receivers=p[gt.receivers])


def _batch(graphs, **kw):
    gt, _, _ = ds.pad_graphs(graphs, **kw)
    return gt


def _two_triangles_vs_hexagon():
    return ds.disjoint_union(ds.cycle_graph(3), ds.cycle_graph(3)), ds.cycle_graph(6)


def test_spen_separates_what_gin_cannot():
    """Two triangles vs a hexagon (1-WL-equivalent): random 1-hop SPEN tells them
    apart, random GIN cannot."""
    gt = _batch(list(_two_triangles_vs_hexagon()))
    subs = G.graph_subgraphs(gt, 1, bucket_sizes=(4,))
    sp = _init(G.spen_init, 0, 1, 8, 4, num_layers=1, num_buckets=1)
    gp = _init(G.gin_init, 0, 1, 8, 4)
    y_spen = np.asarray(jax.jit(G.spen)(sp, gt, subs))
    y_gin = np.asarray(jax.jit(G.gin)(gp, gt))
    scale = np.abs(y_spen[:2]).max()
    assert np.abs(y_spen[0] - y_spen[1]).max() > 1e-2 * scale
    assert np.abs(y_gin[0] - y_gin[1]).max() <= 1e-5 * np.abs(y_gin[:2]).max()


def _mixed_graphs(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n in (6, 7, 5):
        A = np.triu(rng.random((n, n)) < 0.45, 1)
        lab = rng.integers(0, 3, n)
        out.append(ds.from_adjacency(A | A.T, lab, num_labels=3))
    out.append(ds.from_adjacency(np.zeros((1, 1)), np.array([2]), num_labels=3))
    return out


@pytest.mark.parametrize(
    ("dtype", "hops", "layers"),
    [
        ("float64", 1, 1),
        pytest.param("float32", 1, 2, marks=pytest.mark.slow),
        pytest.param("float64", 2, 2, marks=pytest.mark.slow),
        pytest.param("float32", 2, 1, marks=pytest.mark.slow),
    ],
)
def test_spen_invariant_to_relabelling_with_host_reextraction(dtype, hops, layers):
    """Relabel nodes, rebuild the ego networks on the host (new sub-graph order,
    new node order inside them): the graph outputs agree; and more padding (nodes,
    edges, graphs, sub-graphs per bucket) never changes them (the compiled program
    of the unpadded batch is shared by both checks)."""
    tol = 1e-9 if dtype == "float64" else 1e-4
    with jax.enable_x64(dtype == "float64"):
        dt = jnp.dtype(dtype)
        gs = _mixed_graphs()
        gt = _batch(gs)
        gt = gt._replace(nodes=gt.nodes.astype(dt))
        p = _init(G.spen_init, 1, 3, 8, 3, num_layers=layers, num_buckets=3, dtype=dt)
        f = jax.jit(G.spen)
        if True:
            y = np.asarray(
                f(p, gt, G.graph_subgraphs(gt, hops, bucket_sizes=(2, 4, 8)))
            )
            gt2 = _relabel_within_graphs(gt, seed=hops)
            y2 = np.asarray(
                f(p, gt2, G.graph_subgraphs(gt2, hops, bucket_sizes=(2, 4, 8)))
            )
            real = slice(0, len(gs))
            err = np.abs(y[real] - y2[real]).max() / np.abs(y[real]).max()
            assert err < tol, (hops, err)
            big = _batch(gs, n_node=64, n_edge=128, n_graph=7)
            big = big._replace(nodes=big.nodes.astype(dt))
            subs_big = G.graph_subgraphs(
                big, hops, bucket_sizes=(2, 4, 8), num_subgraphs=(64, 32, 16)
            )
            y_big = np.asarray(f(p, big, subs_big))
            np.testing.assert_allclose(y_big[real], y[real], rtol=tol, atol=tol)


@pytest.mark.slow  # float32; the fast tier checks padding in float64 above
def test_padding_never_changes_outputs():
    gs = _mixed_graphs(1)
    gt = _batch(gs)
    big = _batch(gs, n_node=64, n_edge=128, n_graph=7)
    p = _init(G.spen_init, 2, 3, 8, 3, num_layers=1, num_buckets=3)
    f = jax.jit(G.spen)
    real = slice(0, len(gs))
    y = f(p, gt, G.graph_subgraphs(gt, 1, bucket_sizes=(2, 4, 8)))
    subs_big = G.graph_subgraphs(
        big, 1, bucket_sizes=(2, 4, 8), num_subgraphs=(64, 32, 16)
    )
    y_big = f(p, big, subs_big)
    np.testing.assert_allclose(y_big[real], y[real], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_bucketing_changes_nothing_with_shared_weights():
    gs = _mixed_graphs(1)
    gt = _batch(gs)
    real = slice(0, len(gs))
    f = jax.jit(G.spen)
    p = _init(G.spen_init, 2, 3, 8, 3, num_buckets=3)
    y = f(p, gt, G.graph_subgraphs(gt, 1, bucket_sizes=(2, 4, 8)))
    # shared weights: the bucket boundaries do not matter either
    ps = _init(G.spen_init, 2, 3, 8, 3, share_weights=True)
    a = f(ps, gt, G.graph_subgraphs(gt, 1, bucket_sizes=(2, 4, 8)))
    b = f(ps, gt, G.graph_subgraphs(gt, 1, bucket_sizes=(8,)))
    np.testing.assert_allclose(a[real], b[real], rtol=1e-5, atol=1e-5)
    # control: per-bucket weights do depend on which bucket a sub-graph lands in
    c = f(p, gt, G.graph_subgraphs(gt, 1, bucket_sizes=(4, 8, 16)))
    assert np.abs(np.asarray(c[real]) - np.asarray(y[real])).max() > 1e-4


@pytest.mark.slow
def test_wrong_subgraphs_are_caught_by_the_invariance_check(key):
    """Control: feeding the un-relabelled sub-graphs with a relabelled graph breaks
    invariance, and eq.testing catches it."""
    gt = jax.tree_util.tree_map(jnp.asarray, _batch(_mixed_graphs(2)))
    subs = G.graph_subgraphs(gt, 1, bucket_sizes=(2, 4, 8))
    p = _init(G.spen_init, 3, 3, 8, 3, num_layers=1, num_buckets=3)
    grp = eq.groups.graph_node_permutations(gt)
    with pytest.raises(AssertionError):
        eq.testing.assert_invariant(
            lambda g: G.spen(p, g, subs)[:4],
            grp,
            gt,
            act_in=eq.groups.act_graph,
            key=key,
            num_samples=4,
            tol=1e-4,
        )


@pytest.mark.slow
def test_spen_module_and_gradients_on_degenerate_graphs():
    gs = [
        ds.from_adjacency(np.zeros((1, 1))),
        ds.cycle_graph(3),
        ds.from_adjacency(np.zeros((3, 3))),
    ]
    gt = _batch(gs)
    model = eq.nn.SPEN(
        1, 8, 2, hops=2, num_layers=1, bucket_sizes=(2, 4), rngs=nnx.Rngs(0)
    )
    subs = model.subgraphs(gt)
    y = model(gt)
    assert y.shape == (4, 2) and np.isfinite(np.asarray(y)).all()

    @nnx.jit
    def loss(m, g, s):
        return jnp.sum(m(g, s)[:3] ** 2)

    grads = nnx.grad(loss)(model, gt, subs)
    leaves = jax.tree_util.tree_leaves(nnx.state(grads))
    assert leaves and all(np.isfinite(np.asarray(v)).all() for v in leaves)
    with pytest.raises(ValueError, match="differ from the model"):
        model(gt, G.graph_subgraphs(gt, 2, bucket_sizes=(4, 8)))
    gin = eq.nn.GIN(1, 8, 2, num_layers=1, rngs=nnx.Rngs(0))
    assert gin(gt).shape == (4, 2)
