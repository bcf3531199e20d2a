import csv
from pathlib import Path

import pytest

from experiments import tu_classification

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.skipif(not (DATA / "tu").is_dir(), reason="shared TU data not found")
def test_quick_run_writes_table_and_plot(tmp_path):
    args = ["--quick", "--results-dir", str(tmp_path), "--data-dir", str(DATA)]
    assert tu_classification.main(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    assert [r["model"] for r in rows] == ["SPEN", "2-IGN", "GIN"]
    for r in rows:
        mean, std = (
            float(v) for v in r["ours (acc %, mean ± std over folds)"].split(" ± ")
        )
        assert 0 <= mean <= 100 and std >= 0
        assert r["set"] == "MUTAG" and r["epochs"] == "2" and r["folds"] == "2/10"
    assert rows[1]["paper (same model)"] == "84.6 ± 10.0"
    assert (tmp_path / "quick.png").stat().st_size > 1000


def test_missing_data_dir_is_reported(tmp_path, capsys):
    assert (
        tu_classification.main(
            [
                "--quick",
                "--data-dir",
                str(tmp_path / "none"),
                "--results-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "TU data not found" in capsys.readouterr().out
