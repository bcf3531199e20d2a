import csv

from experiments import _common, bench_tensor_products


def test_quick_run_writes_sane_results(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    assert bench_tensor_products.main(["--quick", "--tag", "host"]) == 0
    out = tmp_path / "bench_tensor_products"
    for f in (
        "timings_host.md",
        "timings_host.csv",
        "summary_host.md",
        "exponents_host.md",
        "time_vs_L_host.png",
        "cost_model_host.json",
        "raw_host.json",
    ):
        assert (out / f).exists() and (out / f).stat().st_size > 0, f
    assert not (out / "summary.md").exists()  # the untagged host's table is kept
    rows = list(csv.DictReader(open(out / "timings_host.csv")))
    by_group = {g: {r["method"] for r in rows if r["group"] == g} for g in ("s2", "cg")}
    assert {"gaunt_s2grid", "e3nn_s2grid"} <= by_group["s2"]
    assert "e3nn_cg" not in by_group["s2"]
    assert {"gaunt_s2grid", "gaunt_fourier_fft", "e3nn_cg"} <= by_group["cg"]
    assert "e3nn_s2grid" not in by_group["cg"]
    assert all(float(r["ms"]) > 0 for r in rows)
    summary = list(csv.DictReader(open(out / "summary_host.csv")))
    assert [int(r["L"]) for r in summary] == [1, 2, 3]
    assert all(float(r["f32 err s2grid"]) < 1e-5 for r in summary)

    # each speed-up is a ratio within one group
    def ms(g, L, m):
        (r,) = [
            r
            for r in rows
            if (r["group"], int(r["L"]), r["method"], r["channels"], r["mode"])
            == (g, L, m, "32", "fwd")
        ]
        return float(r["ms"])

    for r in summary:
        L, m = int(r["L"]), "gaunt_" + r["auto picks"]
        s2 = ms("s2", L, "e3nn_s2grid") / ms("s2", L, m)
        assert abs(float(r["speedup vs e3nn_s2grid"]) / s2 - 1) < 0.01
        if L <= 2:  # --quick times e3nn's CG up to L = 2
            cg = ms("cg", L, "e3nn_cg") / ms("cg", L, m)
            assert abs(float(r["speedup vs e3nn_cg"]) / cg - 1) < 0.01


def test_merge_keeps_other_runs_labelled(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    assert bench_tensor_products.main(["--quick", "--ls", "1,3"]) == 0
    assert bench_tensor_products.main(["--quick", "--ls", "2,3", "--merge"]) == 0
    out = tmp_path / "bench_tensor_products"
    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert [int(r["L"]) for r in summary] == [1, 2, 3]
    runs = [r["run"] for r in summary]
    assert runs[0].endswith("(L=1,3)") and runs[1] == runs[2] != runs[0]
    assert runs[1].endswith("(L=2,3)")
    rows = list(csv.DictReader(open(out / "timings.csv")))
    assert {int(r["L"]) for r in rows if r["method"] == "e3nn_s2grid"} == {1, 2, 3}


def test_plan_sweep_quick_marks_the_plan(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    assert (
        bench_tensor_products.main(["--plan-sweep", "--quick", "--repeats", "1"]) == 0
    )
    out = tmp_path / "bench_tensor_products"
    rows = list(csv.DictReader(open(out / "plan_sweep.csv")))
    assert {r["layout"] for r in rows} >= {"dense", "quadrant", "e3nn_s2grid"}
    assert sum("plan" in r["mark"] for r in rows) == 1
    assert sum("fastest" in r["mark"] for r in rows) == 1
    by_cache = list(csv.DictReader(open(out / "plan_by_cache.csv")))
    assert [int(r["L"]) for r in by_cache] == [2, 4, 8, 12, 16]
