import csv

from experiments import bench_training


def test_quick_benchmark_one_and_two_host_devices(tmp_path):
    assert (
        bench_training.main(
            ["--quick", "--devices", "1,2", "--results-dir", str(tmp_path)]
        )
        == 0
    )
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    assert [int(r["devices"]) for r in rows] == [1, 2]
    assert all(r["platform"] == "cpu" and r["compiles"] == "1" for r in rows)
    assert all(float(r["steps/s"]) > 0 for r in rows)
    # same global batch, same loss up to float32 reduction order
    a, b = (float(r["final loss"]) for r in rows)
    assert abs(a - b) <= 1e-5 * max(1.0, abs(a))
