import csv

from experiments import neural_collapse


def test_quick_run_ufm_meets_the_closed_forms(tmp_path):
    assert neural_collapse.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "quick_ufm.csv")))
    assert len(rows) == 4
    for r in rows:
        assert float(r["NC2 vs target"]) < 1e-4, r["case"]
        assert r["collapse predicted"] in ("-", r["collapse trained"]), r["case"]
    assert any(r["collapse trained"] == "[3]" for r in rows)
    mlp = list(csv.DictReader(open(tmp_path / "quick_mlp.csv")))
    assert float(mlp[-1]["NC1"]) < float(mlp[0]["NC1"])
    assert float(mlp[-1]["train acc"]) > 0.9
