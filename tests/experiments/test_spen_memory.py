import csv

from experiments import spen_memory


def test_quick_run_writes_table_fits_and_plot(tmp_path):
    assert spen_memory.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    assert {r["model"] for r in rows} == {"SPEN k=1", "SPEN k=2", "2-IGN"}
    mem = {(r["model"], int(r["n"])): float(r["memory MiB"]) for r in rows}
    assert all(v > 0 for v in mem.values())
    # the global 2-IGN's memory grows faster than SPEN k=1's
    assert (
        mem[("2-IGN", 128)] / mem[("2-IGN", 32)]
        > mem[("SPEN k=1", 128)] / mem[("SPEN k=1", 32)]
    )
    fits = {r["model"]: r for r in csv.DictReader(open(tmp_path / "quick_fits.csv"))}
    assert float(fits["2-IGN"]["memory exponent"]) > float(
        fits["SPEN k=1"]["memory exponent"]
    )
    assert (tmp_path / "quick.png").stat().st_size > 1000
