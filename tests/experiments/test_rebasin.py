import csv

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
