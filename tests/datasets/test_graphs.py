"""eqjax.datasets graph readers, generators and batching (host-side NumPy)."""

from pathlib import Path

import jraph
import numpy as np
import pytest

import eqjax as eq

ds = eq.datasets
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(
    not (DATA / "tu").is_dir(), reason=f"shared data not found at {DATA}"
)


def _write_tu(root: Path, name="MUTAG", node_labels=True, a_lines=None):
    d = root / "tu" / name
    d.mkdir(parents=True)
    # graph 1: triangle (nodes 1-3); graph 2: an edge 4-5 and isolated node 6
    a = a_lines or ["1, 2", "2, 1", "2, 3", "3, 2", "1, 3", "3, 1", "4, 5", "5, 4"]
    (d / f"{name}_A.txt").write_text("\n".join(a) + "\n")
    (d / f"{name}_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n2\n")
    (d / f"{name}_graph_labels.txt").write_text("1\n-1\n")
    if node_labels:
        (d / f"{name}_node_labels.txt").write_text("0\n2\n2\n0\n0\n5\n")
    return root


def test_tu_reader_on_a_small_file(tmp_path):
    gs = ds.tu("MUTAG", _write_tu(tmp_path))
    assert len(gs) == 2 and [g.label for g in gs] == [1, 0]
    assert [g.num_nodes for g in gs] == [3, 3] and [g.num_edges for g in gs] == [6, 2]
    assert gs[0].nodes.shape == (3, 3)  # labels {0, 2, 5} one-hot
    assert gs[1].nodes.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]
    assert ds.to_adjacency(gs[0]).tolist() == (np.ones((3, 3)) - np.eye(3)).tolist()


def test_tu_degree_features_when_no_node_labels(tmp_path):
    gs = ds.tu("IMDB-BINARY", _write_tu(tmp_path, "IMDB-BINARY", node_labels=False))
    assert gs[0].nodes.shape == (3, 3)  # degrees 0..2
    assert gs[0].nodes.argmax(1).tolist() == [2, 2, 2]
    assert gs[1].nodes.argmax(1).tolist() == [1, 1, 0]


def test_tu_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(ValueError, match="unknown TU data set 'NOPE'"):
        ds.tu("NOPE", tmp_path)
    with pytest.raises(FileNotFoundError, match="MUTAG"):
        ds.tu("MUTAG", tmp_path / "missing")
    bad = _write_tu(tmp_path / "a", a_lines=["1, 2", "2, x", "1, 3"])
    with pytest.raises(ValueError, match=r"MUTAG_A\.txt:2: expected 2 integer"):
        ds.tu("MUTAG", bad)
    cross = _write_tu(tmp_path / "b", a_lines=["1, 2", "3, 4"])
    with pytest.raises(ValueError, match=r"MUTAG_A\.txt:2: edge joins two"):
        ds.tu("MUTAG", cross)
    gone = _write_tu(tmp_path / "c")
    (gone / "tu" / "MUTAG" / "MUTAG_graph_labels.txt").unlink()
    with pytest.raises(FileNotFoundError, match="MUTAG_graph_labels.txt"):
        ds.tu("MUTAG", gone)


@needs_data
@pytest.mark.slow
def test_tu_sets_match_the_published_statistics():
    expect = {  # graphs, node-feature width, classes (TUDataset tables; IMDB: degrees)
        "MUTAG": (188, 7, 2),
        "PTC_MR": (344, 18, 2),
        "PROTEINS_full": (1113, 3, 2),
        "NCI1": (4110, 37, 2),
        "NCI109": (4127, 38, 2),
        "IMDB-BINARY": (1000, 136, 2),
        "IMDB-MULTI": (1500, 89, 3),
    }
    for name, (G, F, K) in expect.items():
        gs = ds.tu(name, DATA)
        y = ds.graph_labels(gs)
        assert (len(gs), gs[0].nodes.shape[1], len(np.unique(y))) == (G, F, K), name
        for g in gs[:50]:
            A = ds.to_adjacency(g)
            assert (A == A.T).all() and np.trace(A) == 0


@needs_data
def test_mutag_reads_fast():
    gs = ds.tu("MUTAG", DATA)
    assert len(gs) == 188 and np.bincount(ds.graph_labels(gs)).tolist() == [63, 125]


def test_cv_folds_stratified_seeded_partition():
    y = np.array([0] * 30 + [1] * 12 + [2] * 8)
    folds = ds.cv_folds(y, n_folds=10, seed=0)
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(50))
    for tr, te in folds:
        assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 50
        assert np.bincount(y[te], minlength=3).tolist() in (
            [3, 1, 1],
            [3, 2, 1],
            [3, 1, 0],
            [3, 2, 0],
        )
    assert {len(t) for _, t in folds} <= {4, 5, 6}
    again = ds.cv_folds(y, n_folds=10, seed=0)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=True))
    other = ds.cv_folds(y, n_folds=10, seed=1)
    assert any((a[1] != b[1]).any() for a, b in zip(folds, other, strict=True))
    with pytest.raises(ValueError, match="n_folds"):
        ds.cv_folds(y[:3], n_folds=10)


def test_graphsat_reader_and_errors(tmp_path):
    good = "2\n3 1\n0 2 1 2\n1 2 0 2\n0 2 0 1\n2 0\n1 1 1\n0 1 0\n"
    p = tmp_path / "EXP_GRAPHSAT.txt"
    p.write_text(good)
    pairs = ds.exp(tmp_path)
    assert len(pairs) == 1
    a, b = pairs[0]
    assert (a.num_nodes, a.num_edges, a.label) == (3, 6, 1)
    assert (b.num_nodes, b.num_edges, b.label) == (2, 2, 0)
    assert a.nodes.argmax(1).tolist() == [0, 1, 0]
    p.write_text("2\n3 1\n0 2 1 2\n1 2 0 x\n")
    with pytest.raises(ValueError, match=r"EXP_GRAPHSAT.txt:4: expected integers"):
        ds.exp(tmp_path)
    p.write_text("2\n3 1\n0 2 1 2\n1 3 0 2\n")
    with pytest.raises(ValueError, match=r"EXP_GRAPHSAT.txt:4: node line"):
        ds.exp(tmp_path)
    p.write_text("2\n3 1\n0 2 1 2\n")
    with pytest.raises(ValueError, match="unexpected end of file"):
        ds.exp(tmp_path)
    with pytest.raises(FileNotFoundError, match="CEXP_GRAPHSAT.txt"):
        ds.exp(tmp_path, "CEXP")
    with pytest.raises(ValueError, match="variant"):
        ds.exp(tmp_path, "XYZ")


@needs_data
def test_exp_pairs_are_1wl_equivalent():
    pairs = ds.exp(DATA, max_pairs=20)
    assert len(pairs) == 20
    for a, b in pairs:
        assert a.num_nodes == b.num_nodes and a.label != b.label
        ca = eq.frames.wl_colours(ds.to_adjacency(a), a.nodes.argmax(1))
        cb = eq.frames.wl_colours(ds.to_adjacency(b), b.nodes.argmax(1))
        assert sorted(np.bincount(ca).tolist()) == sorted(np.bincount(cb).tolist())


def _srg_params(g):
    A = ds.to_adjacency(g).astype(int)
    n, k = A.shape[0], A.sum(1)
    A2 = A @ A
    lam = {int(A2[i, j]) for i in range(n) for j in range(n) if A[i, j]}
    mu = {int(A2[i, j]) for i in range(n) for j in range(n) if i != j and not A[i, j]}
    return n, set(k.tolist()), lam, mu


def _neighbourhood_edges(g):
    """Edges inside each node's neighbourhood, sorted: rook = K3+K3 (6), Shrikhande
    = C6 (6); told apart by triangle counts inside the neighbourhood."""
    A = ds.to_adjacency(g).astype(int)
    out = []
    for v in range(A.shape[0]):
        nb = np.nonzero(A[v])[0]
        S = A[np.ix_(nb, nb)]
        out.append(int(np.trace(S @ S @ S)) // 6)  # triangles in N(v)
    return sorted(out)


def test_strongly_regular_constructions():
    rook, shr = ds.rook_graph(4), ds.shrikhande_graph()
    assert _srg_params(rook) == _srg_params(shr) == (16, {6}, {2}, {2})
    assert _neighbourhood_edges(rook) == [2] * 16  # N(v) = two triangles
    assert _neighbourhood_edges(shr) == [0] * 16  # N(v) = a 6-cycle
    assert _srg_params(ds.paley_graph(13)) == (13, {6}, {2}, {3})
    assert _srg_params(ds.paley_graph(17)) == (17, {8}, {3}, {4})
    for q in (7, 9, 15):
        with pytest.raises(ValueError, match="prime"):
            ds.paley_graph(q)
    gs = ds.csl()
    assert len(gs) == 10 and [g.label for g in gs] == list(range(10))
    assert all(set(np.bincount(g.senders).tolist()) == {4} for g in gs)


def test_graph6_parser():
    assert ds.parse_graph6(">>graph6<<Bw").tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    # C4 in graph6: n=4 ('C'), upper triangle bits (0,1)(0,2)(1,2)(0,3)(1,3)(2,3)
    bits = "101101"  # edges 01, 12, 03, 23
    s = "C" + chr(int(bits, 2) + 63)
    A = ds.parse_graph6(s)
    assert A.sum() == 8 and A[0, 1] and A[1, 2] and A[0, 3] and A[2, 3] and not A[0, 2]
    with pytest.raises(ValueError, match="graph6"):
        ds.parse_graph6("C")


@needs_data
def test_sr16622_file_is_rook_and_shrikhande():
    gs = ds.strongly_regular("sr16622", DATA)
    assert len(gs) == 2
    assert all(_srg_params(g) == (16, {6}, {2}, {2}) for g in gs)
    assert sorted(_neighbourhood_edges(g)[0] for g in gs) == [0, 2]


def test_read_graph6_errors(tmp_path):
    p = tmp_path / "x.g6"
    p.write_text("Bw\n!!bad\n")
    with pytest.raises(ValueError, match=r"x.g6:2"):
        ds.read_graph6(p)
    with pytest.raises(FileNotFoundError, match="nope.g6"):
        ds.read_graph6(tmp_path / "nope.g6")


def test_pad_graphs_jraph_convention_and_buckets():
    gs = [ds.cycle_graph(3), ds.cycle_graph(5), ds.from_adjacency(np.zeros((1, 1)))]
    g, y, m = ds.pad_graphs(gs)
    assert g.nodes.shape == (16, 1) and g.senders.shape == (16,)
    assert g.n_node.tolist() == [3, 5, 1, 7] and int(g.n_edge.sum()) == 16
    assert (
        jraph.get_graph_padding_mask(g).tolist() == m.tolist() == [True] * 3 + [False]
    )
    assert int(jraph.get_number_of_padding_with_graphs_nodes(g)) == 7
    assert y.tolist() == [-1, -1, -1, -1]
    with pytest.raises(ValueError, match="too small"):
        ds.pad_graphs(gs, n_node=9)
    with pytest.raises(TypeError, match="Graph"):
        ds.pad_graphs([np.zeros((3, 3))])
    shapes = {
        (b[0].nodes.shape[0], b[0].senders.shape[0])
        for b in ds.graph_batches(ds.csl() * 3, 4, seed=0)
    }
    assert len(shapes) <= 2  # size buckets: a handful of programs per data set
    a = [int(b[1][0]) for b in ds.graph_batches(ds.csl(), 3, seed=0)]
    c = [int(b[1][0]) for b in ds.graph_batches(ds.csl(), 3, seed=0)]
    assert a == c


def test_dense_batch_masks_and_errors():
    gs = [ds.cycle_graph(3), ds.cycle_graph(5)]
    d = ds.dense_batch(gs)
    assert d.adjacency.shape == (2, 5, 5, 1) and d.nodes.shape == (2, 5, 1)
    assert d.mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert (d.adjacency[0, 3:] == 0).all() and (
        d.adjacency == d.adjacency.transpose(0, 2, 1, 3)
    ).all()
    x = d.ign_input()
    assert (
        x.shape == (2, 5, 5, 2)
        and x[0, :, :, 1].tolist() == np.diag([1, 1, 1, 0, 0]).tolist()
    )
    assert ds.dense_batch(gs, buckets="pow2").adjacency.shape == (2, 8, 8, 1)
    with pytest.raises(ValueError, match="n_max=4"):
        ds.dense_batch(gs, n_max=4)
    with pytest.raises(TypeError, match="Graph"):
        ds.dense_batch([np.ones((3, 3)), np.ones((4, 4))])
    with pytest.raises(ValueError, match="feature widths"):
        ds.dense_batch([gs[0], ds.from_adjacency(np.ones((2, 2)), np.array([0, 1]))])
    with pytest.raises(ValueError, match="empty"):
        ds.dense_batch([])
