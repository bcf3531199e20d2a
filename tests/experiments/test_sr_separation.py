"""The SR experiment's quick mode (sr16622 and sr281264): PPGN++ with the 6-edge
polynomial features tells every pair apart, at least as many as plain PPGN,
which (2-FWL-bounded) fails them all, like PPGN++ without polynomials and GIN."""

import csv
from pathlib import Path

import pytest

from experiments import sr_separation as sr

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _pct(v: str) -> float:
    return float(v.rstrip("%"))


@pytest.mark.skipif(
    not all((DATA / "sr" / f"{f}.g6").exists() for f in sr.QUICK_FAMILIES),
    reason="shared SR data not found",
)
def test_quick_run(tmp_path):
    assert (
        sr.main(["--quick", "--data-dir", str(DATA), "--results-dir", str(tmp_path)])
        == 0
    )
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    got = {(r["family"], r["model"]): r for r in rows}
    assert {r["family"] for r in rows} == set(sr.QUICK_FAMILIES)
    for fam in sr.QUICK_FAMILIES:
        plus6, plain = got[(fam, "PPGN++(6)")], got[(fam, "PPGN")]
        assert _pct(plus6["told apart"]) >= _pct(plain["told apart"])
        for m in ("PPGN", "PPGN++", "GIN"):  # the 1-WL / 2-FWL bounds
            assert _pct(got[(fam, m)]["told apart"]) == 0.0, (fam, m)
        for m in ("PPGN", "PPGN++", "PPGN++(6)", "GIN", "SPEN k=1"):
            assert float(got[(fam, m)]["noise"]) < 1e-10, (fam, m)  # invariant
    assert _pct(got[("sr16622", "PPGN++(6)")]["worst seed"]) == 100.0
    assert _pct(got[("sr16622", "PPGN")]["worst seed"]) == 0.0  # the control


def test_skips_cleanly_without_data(tmp_path, capsys):
    assert sr.main(["--quick", "--data-dir", str(tmp_path)]) == 0
    assert "not found" in capsys.readouterr().out
