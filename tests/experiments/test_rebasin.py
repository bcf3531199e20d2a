import csv
import sys

import numpy as np
import pytest

from experiments import rebasin


def test_quick_run_matching_lowers_the_barrier_and_aligns(tmp_path):
    assert rebasin.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    assert [int(r["width"]) for r in rows] == [32, 64]
    for r in rows:
        assert float(r["WM loss barrier"]) < float(r["naive loss barrier"])
        assert 0 < float(r["L2 reduction"]) < 0.5
        assert float(r["align after"]) > float(r["align before"])
    merge = list(csv.DictReader(open(tmp_path / "quick_merge.csv")))[0]
    assert float(merge["MergeMany acc"]) > float(merge["plain average acc"])


def test_the_digits_never_fall_back_silently(monkeypatch):
    from experiments._weights_data import digits

    real, synth = digits(0), digits(0, synthetic=True)
    assert real[4] == "scikit-learn digits" and "synthetic" in synth[4]
    assert real[0].shape == synth[0].shape == (1257, 64)
    assert not np.allclose(real[0], synth[0])
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # not installed
    with pytest.raises(ImportError, match="--synthetic-digits"):
        digits(0)


def test_checkpoints_then_resume_equals_the_uninterrupted_run(tmp_path):
    ck = tmp_path / "ck"
    base = ["--quick", "--widths", "32", "--ste-steps", "2", "--no-progress"]

    def run(out, *flags):
        assert rebasin.main([*base, "--results-dir", str(tmp_path / out), *flags]) == 0
        return list(csv.DictReader(open(tmp_path / out / "quick.csv")))

    run("first", "--steps", "3", "--checkpoint-dir", str(ck))
    names = sorted(p.name for p in ck.iterdir())
    assert names == [
        "merge_w32_seed10",
        "merge_w32_seed11",
        "merge_w32_seed12",
        "w32_seed1",
        "w32_seed2",
    ]
    resumed = run("resumed", "--steps", "6", "--checkpoint-dir", str(ck), "--resume")
    assert sorted(int(p.name) for p in (ck / "w32_seed1").iterdir()) == [3, 6]
    assert resumed == run("whole", "--steps", "6")
