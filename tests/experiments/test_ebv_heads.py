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


def test_checkpoints_then_resume_equals_the_uninterrupted_run(tmp_path):
    ck = tmp_path / "ck"
    base = ["--quick", "--no-progress"]

    def run(out, *flags):
        assert (
            ebv_heads.main([*base, "--results-dir", str(tmp_path / out), *flags]) == 0
        )
        return list(csv.DictReader(open(tmp_path / out / "quick.csv")))

    run("first", "--steps", "3", "--checkpoint-dir", str(ck))
    # one folder per model and seed; no orthonormal frame of 200 in 64 dimensions
    assert sorted(p.name for p in ck.iterdir()) == [
        "digits_d16_ebv_seed0",
        "digits_d16_fc_seed0",
        "digits_d16_orth_seed0",
        "gauss200_d64_ebv_seed0",
        "gauss200_d64_fc_seed0",
    ]
    resumed = run("resumed", "--steps", "6", "--checkpoint-dir", str(ck), "--resume")
    assert sorted(int(p.name) for p in (ck / "digits_d16_fc_seed0").iterdir()) == [3, 6]
    assert resumed == run("whole", "--steps", "6")
