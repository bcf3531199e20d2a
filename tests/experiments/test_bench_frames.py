import csv
import math

from experiments import bench_frames
from experiments._common import results_dir


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_bench_frames_quick_writes_tables_and_plot():
    assert bench_frames.main(["--quick"]) == 0
    out = results_dir("bench_frames")
    assert (out / "quick_frames.png").stat().st_size > 1000
    timings = {r["method"]: r for r in _rows(out / "quick_timings.csv")}
    assert "pca_frame E3 [vmap]" in timings and "pca_frame E3 [chunk1]" in timings
    assert "pca_frame E3 [auto] (default)" in timings
    for r in timings.values():
        assert float(r["wall ms"]) > 0 and float(r["cpu ms"]) >= 0
        assert math.isfinite(float(r["wall / |F|"]))
    errs = {r["method"]: r for r in _rows(out / "quick_stochastic_errors.csv")}
    exact = float(errs["exact E3 (|F|=8)"]["max inv err"])
    control = float(errs["backbone (control)"]["mean inv err"])
    k1 = float(errs["stochastic E3 k=1"]["mean rel err"])
    assert exact < 1e-5  # the exact frame average is invariant (float32)
    assert control > 100 * exact  # the bare backbone is not: the check bites
    assert 0 < k1 < 1  # a Monte Carlo estimate: not exact, not wild
