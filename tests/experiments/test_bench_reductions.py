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
