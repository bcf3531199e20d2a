import csv

from experiments import md17, md17_gaunt


def test_quick_run_on_fixture(tmp_path):
    data = md17_gaunt.make_fixture(tmp_path / "rmd17")
    out = tmp_path / "out"
    assert (
        md17.main(["--quick", "--data-dir", str(data), "--results-dir", str(out)]) == 0
    )
    rows = list(csv.DictReader(open(out / "quick.csv")))
    assert [r["model"] for r in rows] == [
        "PONITA O=20",
        "PONITA O=8",
        "EGNN",
        "Gaunt many-body",
    ]
    for r in rows:
        assert 0 < float(r["energy MAE (meV)"]) < 1e9
        assert 0 < float(r["force MAE (meV/A)"]) < 1e9
    assert (out / "quick_learning_curves.png").exists()


def test_skips_cleanly_without_data(tmp_path, capsys):
    assert md17.main(["--quick", "--data-dir", str(tmp_path / "none")]) == 0
    assert "skipping" in capsys.readouterr().out
