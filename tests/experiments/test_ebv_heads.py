import csv
import math

from experiments import ebv_heads


def test_quick_run_fixed_heads_learn(tmp_path):
    assert ebv_heads.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    assert [int(r["classes"]) for r in rows] == [10, 200]
    for r in rows:
        assert float(r["FC acc"]) > 0.5 and float(r["EBV acc"]) > 0.5
    # no orthonormal frame of 200 vectors in 64 dimensions; EBV needs none
    assert math.isnan(float(rows[1]["orthonormal acc"]))
    assert float(rows[0]["orthonormal acc"]) > 0.5
