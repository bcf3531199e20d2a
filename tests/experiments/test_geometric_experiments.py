import csv

from experiments import bench_ponita, md17_gaunt, mds_shapes


def test_bench_ponita_quick(tmp_path):
    data = md17_gaunt.make_fixture(tmp_path / "rmd17")
    out = tmp_path / "out"
    assert (
        bench_ponita.main(
            ["--quick", "--data-dir", str(data), "--results-dir", str(out)]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out / "quick.csv")))
    assert [r["convolution"] for r in rows] == ["separable", "full"]
    assert all(float(r["ms / fwd+bwd"]) > 0 for r in rows)


def test_bench_ponita_skips_without_data(tmp_path, capsys):
    assert bench_ponita.main(["--quick", "--data-dir", str(tmp_path / "none")]) == 0
    assert "skipping" in capsys.readouterr().out


def test_mds_shapes_quick(tmp_path):
    out = tmp_path / "out"
    assert mds_shapes.main(["--quick", "--results-dir", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "quick.csv")))
    assert len(rows) == 3 and (out / "quick.png").exists()
    for r in rows:
        assert 0.0 <= float(r["test acc. (moved)"]) <= 1.0
