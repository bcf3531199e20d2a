import csv

from experiments import spe_stability


def test_quick_run_spe_is_stable_raw_eigenvectors_are_not(tmp_path):
    assert spe_stability.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    assert {r["graph"] for r in rows} == set(spe_stability.graphs())
    for r in rows:
        # SPE moves in proportion to ΔL (Lipschitz, ratio well below 1);
        # raw eigenvectors jump by O(1) however small ΔL is
        assert float(r["SPE: max ratio to ‖ΔL‖"]) < 1
        assert float(r["raw eigenvectors: ‖ΔPE‖/‖PE‖"]) > 0.1
        if r["ε"] == "1e-05":
            assert float(r["raw eigenvectors: max ratio to ‖ΔL‖"]) > 1e3
            assert float(r["SignNet: max ratio to ‖ΔL‖"]) > 10  # rotations
    slopes = list(csv.DictReader(open(tmp_path / "quick_slopes.csv")))
    for r in slopes:
        vals = list(r.values())
        spe, raw = float(vals[1]), float(vals[2])
        assert 0.8 < spe < 1.2 and abs(raw) < 0.3
    assert (tmp_path / "quick.png").stat().st_size > 1000
