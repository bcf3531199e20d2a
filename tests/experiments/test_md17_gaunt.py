import csv

from experiments import md17_gaunt


def test_quick_run_on_fixture(tmp_path):
    data = md17_gaunt.make_fixture(tmp_path / "rmd17")
    out = tmp_path / "results"
    args = [
        "--quick",
        "--no-progress",
        "--data-dir",
        str(data),
        "--results-dir",
        str(out),
    ]
    assert md17_gaunt.main(args + ["--checkpoint-dir", str(tmp_path / "ck")]) == 0
    rows = list(csv.DictReader(open(out / "quick.csv")))
    assert [r["many-body product"] for r in rows] == ["gaunt", "cg"]
    for r in rows:
        assert 0 < float(r["energy MAE (meV)"]) < 1e9
        assert 0 < float(r["force MAE (meV/A)"]) < 1e9
        assert float(r["ms / train step"]) > 0
    for product in ("gaunt", "cg"):  # the harness' per-step log and checkpoint
        log = list(csv.DictReader(open(out / f"{product}_metrics.csv")))
        assert [int(r["step"]) for r in log] == [1, 2, 3]
        assert (tmp_path / "ck" / product / "3" / "eqjax_manifest.json").exists()
    # resuming the finished run restores the final checkpoints: same MAEs
    again = tmp_path / "again"
    args[-1] = str(again)
    assert (
        md17_gaunt.main(args + ["--checkpoint-dir", str(tmp_path / "ck"), "--resume"])
        == 0
    )
    rows2 = list(csv.DictReader(open(again / "quick.csv")))
    for a, b in zip(rows, rows2, strict=True):
        assert a["energy MAE (meV)"] == b["energy MAE (meV)"]
        assert a["force MAE (meV/A)"] == b["force MAE (meV/A)"]


def test_skips_cleanly_without_data(tmp_path, capsys):
    assert md17_gaunt.main(["--quick", "--data-dir", str(tmp_path / "none")]) == 0
    assert "skipping" in capsys.readouterr().out
