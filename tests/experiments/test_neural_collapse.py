import csv

import pytest

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


def test_checkpoints_then_resume_equals_the_uninterrupted_run(tmp_path):
    ck, out = tmp_path / "ck", tmp_path / "run"
    base = ["--quick", "--eval-every", "2", "--no-progress"]

    def run(folder, *flags):
        assert neural_collapse.main([*base, "--results-dir", str(folder), *flags]) == 0
        return list(csv.DictReader(open(folder / "quick_mlp.csv")))

    run(out, "--steps", "4", "--checkpoint-dir", str(ck))
    assert sorted(int(p.name) for p in (ck / "mlp").iterdir()) == [4]
    resumed = run(out, "--steps", "8", "--checkpoint-dir", str(ck), "--resume")
    assert sorted(int(p.name) for p in (ck / "mlp").iterdir()) == [4, 8]
    whole = run(tmp_path / "whole", "--steps", "8")
    assert [int(r["step"]) for r in resumed] == [0, 2, 4, 6, 8]
    assert resumed == whole
    # the rows before the checkpoint live in the run's metrics log: elsewhere, a
    # resume cannot rebuild the table and says so
    with pytest.raises(RuntimeError, match="--results-dir"):
        run(
            tmp_path / "other", "--steps", "10", "--checkpoint-dir", str(ck), "--resume"
        )
