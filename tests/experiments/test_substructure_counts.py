import csv
import itertools

import numpy as np

from experiments import substructure_counts as sc


def _brute(A):
    """Subgraph counts by enumeration (triangles, tailed triangles, 4-cycles,
    3-stars; not induced)."""
    n = len(A)
    adj = lambda a, b: bool(A[a, b])  # noqa: E731
    tri = tail = c4 = 0
    for a, b, c in itertools.combinations(range(n), 3):
        if adj(a, b) and adj(b, c) and adj(a, c):
            tri += 1
            tail += sum(
                adj(v, t) for v in (a, b, c) for t in range(n) if t not in (a, b, c)
            )
    for q in itertools.combinations(range(n), 4):
        for b, c, d in itertools.permutations(q[1:]):
            if b < d and adj(q[0], b) and adj(b, c) and adj(c, d) and adj(d, q[0]):
                c4 += 1
    star = sum(
        1
        for v in range(n)
        for _ in itertools.combinations([u for u in range(n) if adj(u, v)], 3)
    )
    return [tri, tail, c4, star]


def test_exact_counts_match_enumeration():
    for A in sc.random_graphs(8, seed=5):
        A = A[:9, :9]  # enumeration is quartic
        assert sc.counts(A).tolist() == _brute(A)
    K4 = np.ones((4, 4)) - np.eye(4)
    assert sc.counts(K4).tolist() == [4, 12, 3, 4]


def test_quick_run_writes_table_and_plot(tmp_path):
    assert sc.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    assert [r["model"] for r in rows] == list(sc.MODELS)
    for r in rows:
        for t in sc.TARGETS:
            v = float(r[f"{t} (MAE ÷ std)"])
            assert np.isfinite(v) and 0 <= v < 10, (r["model"], t, v)
    text = (tmp_path / "quick.md").read_text()
    assert "GIN+SPE below GIN+raw eigenvectors on:" in text
    assert (tmp_path / "quick.png").stat().st_size > 1000
