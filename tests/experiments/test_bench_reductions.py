import csv

from experiments import bench_reductions
from experiments._common import results_dir


def test_bench_reductions_quick_writes_tables_and_plot():
    assert bench_reductions.main(["--quick", "--repeats", "1"]) == 0
    out = results_dir("bench_reductions")
    assert (out / "quick_timings.png").stat().st_size > 1000
    ratios = (out / "quick_ratios.csv").read_text().strip().splitlines()
    assert ratios[0].startswith("regime,segments,n,fold/tree")
    for row in ratios[1:]:
        assert float(row.split(",")[3]) > 0
    # the rules table: each differentiation rule timed against its plain definition
    with open(out / "quick_rules.csv", newline="") as f:
        rules = list(csv.DictReader(f))
    assert {r["rule"] for r in rules} == {"symmetric_gru"}
    for r in rules:
        assert float(r["ms rule"]) > 0 and float(r["ms plain"]) > 0
        assert float(r["plain/rule"]) > 0
    # the options table: every (order, on_overflow, mask) row timed
    with open(out / "quick_options.csv", newline="") as f:
        options = list(csv.DictReader(f))
    assert len(options) == len(bench_reductions.OPTIONS)
    assert {r["order"] for r in options} == {"input", "sorted"}
    for r in options:
        assert float(r["ms"]) > 0 and float(r["x ref"]) > 0


def test_power_law_exponent_recovers_the_exponent():
    from experiments._common import power_law_exponent

    ns = [16, 64, 256, 1024]
    assert abs(power_law_exponent(ns, [3.0 * n**1.5 for n in ns]) - 1.5) < 1e-9
    # the largest half only: a flat start does not bend the fit
    ts = [1.0, 1.0, 256.0, 1024.0]
    assert abs(bench_reductions.fit_largest_half(ns, ts) - 1.0) < 1e-9
    assert power_law_exponent([1.0], [1.0]) != power_law_exponent([1.0], [1.0])  # NaN
