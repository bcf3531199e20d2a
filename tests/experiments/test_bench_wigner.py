"""The Wigner-D benchmark's quick run writes its table (slow tier: tests/experiments)."""

from experiments import bench_wigner
from experiments._common import results_dir


def test_quick_run_writes_table():
    assert bench_wigner.main(["--quick", "--batch", "8"]) == 0
    text = (results_dir("bench_wigner") / "bench_wigner.md").read_text()
    assert "0e + 1o + 2e" in text and "compile ratio" in text
