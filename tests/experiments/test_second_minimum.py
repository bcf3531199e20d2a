import math

from experiments import second_minimum
from experiments._common import results_dir


def test_second_minimum_quick_runs_and_writes_table():
    assert second_minimum.main(["--quick", "--methods", "sum,lcm"]) == 0
    out = results_dir("second_minimum")
    md = (out / "quick.md").read_text()
    assert "| sets | lcm |" in md and "| graph | sum |" in md
    rows = (out / "quick.csv").read_text().strip().splitlines()[1:]
    assert len(rows) == 4
    for row in rows:
        cols = row.split(",")
        loss, acc16, acc32 = float(cols[3]), float(cols[4]), float(cols[5])
        assert math.isfinite(loss) and 0.0 <= acc16 <= 1.0 and 0.0 <= acc32 <= 1.0
