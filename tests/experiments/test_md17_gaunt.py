import csv

from experiments import _common, md17_gaunt


def test_quick_run_on_fixture(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")
    data = md17_gaunt.make_fixture(tmp_path / "rmd17")
    assert md17_gaunt.main(["--quick", "--data-dir", str(data)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "results" / "md17_gaunt" / "quick.csv")))
    assert [r["many-body product"] for r in rows] == ["gaunt", "cg"]
    for r in rows:
        assert 0 < float(r["energy MAE (meV)"]) < 1e9
        assert 0 < float(r["force MAE (meV/A)"]) < 1e9
        assert float(r["ms / train step"]) > 0


def test_skips_cleanly_without_data(tmp_path, capsys):
    assert md17_gaunt.main(["--quick", "--data-dir", str(tmp_path / "none")]) == 0
    assert "skipping" in capsys.readouterr().out
