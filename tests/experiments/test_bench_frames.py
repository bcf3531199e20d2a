import csv
import math

import pytest

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
    assert "pca_frame E3 [vmap] (default)" in timings
    assert (
        "pca_frame E3 [chunk1]" in timings and "pca_frame E3 [chunk1+remat]" in timings
    )
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


@pytest.mark.slow
def test_bench_frames_reexecutes_itself_under_the_retaining_allocator():
    """The second table: the same schedules, measured in a subprocess started with
    the retaining glibc malloc settings."""
    out = bench_frames._rerun(
        "--retaining-child",
        bench_frames.RETAINING_GLIBC_TUNABLES,
        batch=8,
        n=8,
        rounds=1,
        repeats=1,
        width=8,
        quick=True,
    )
    assert "(the retaining settings: True)" in out
    path = results_dir("bench_frames") / "quick_retaining_allocator_timings.csv"
    methods = {r["method"] for r in _rows(path)}
    assert {"pca_frame E3 [vmap] (default)", "pca_frame E3 [chunk1+remat]"} <= methods
