import csv

import numpy as np

import eqjax as eq
from experiments import graph_separation as gs
from experiments._common import results_dir


def test_csl_graphs_are_wl_equivalent():
    graphs = gs.csl_graphs()
    assert len(graphs) == 10
    for A, _ in graphs:
        assert A.shape == (41, 41) and (A.sum(1) == 4).all()
        assert len(set(eq.frames.wl_colours(A).tolist())) == 1


def test_quick_run_writes_table():
    assert gs.main(["--quick"]) == 0  # EXP is skipped when ../shared/data is absent
    rows = list(csv.DictReader(open(results_dir("graph_separation") / "quick.csv")))
    csl = {r["model"]: r for r in rows if r["set"] == "CSL"}
    assert csl["GNN"]["told apart"] == "0.0%"  # 1-WL bound: the control
    assert float(csl["FA-ID"]["told apart"].rstrip("%")) > 90
    assert np.isfinite(float(csl["FA-ID"]["noise"]))
    # eqjax.graphs models: GIN is 1-WL-bounded; 2-IGN cannot beat 2-WL on the
    # strongly regular pair; the exactly invariant models have float-level noise
    assert csl["GIN (eqjax)"]["told apart"] == "0.0%"
    assert {"SPEN k=1", "SPEN k=2", "2-IGN"} <= set(csl)
    sr = {r["model"]: r for r in rows if r["set"] == "rook vs Shrikhande"}
    assert (
        sr["2-IGN"]["told apart"] == "0.0%"
        and sr["GIN (eqjax)"]["told apart"] == "0.0%"
    )
    for m in ("SPEN k=1", "SPEN k=2", "2-IGN", "GIN (eqjax)"):
        assert float(csl[m]["noise"]) < 1e-4
