import csv
import math

from experiments import second_minimum


def test_second_minimum_quick_runs_and_writes_table(tmp_path):
    out = tmp_path / "res"
    args = [
        "--quick",
        "--methods",
        "sum,lcm",
        "--no-progress",
        "--results-dir",
        str(out),
    ]
    assert second_minimum.main(args + ["--checkpoint-dir", str(tmp_path / "ck")]) == 0
    md = (out / "quick.md").read_text()
    assert "| sets | lcm |" in md and "| graph | sum |" in md
    rows = list(csv.reader(open(out / "quick.csv")))[1:]
    assert len(rows) == 4
    for cols in rows:
        loss, acc16, acc32 = float(cols[3]), float(cols[4]), float(cols[5])
        assert math.isfinite(loss) and 0.0 <= acc16 <= 1.0 and 0.0 <= acc32 <= 1.0
    log = list(csv.DictReader(open(out / "sets_lcm_metrics.csv")))
    assert [int(r["step"]) for r in log] == list(range(1, 21))
    assert float(log[-1]["train_loss"]) == float(rows[1][3])
    assert (tmp_path / "ck" / "graph_sum" / "10" / "eqjax_manifest.json").exists()
