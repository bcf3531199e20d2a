import csv

from experiments import set_control


def test_quick_run_writes_the_table_and_set_transfers_across_headings(tmp_path):
    assert set_control.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = {r["model"]: r for r in csv.DictReader(open(tmp_path / "quick.csv"))}
    assert set(rows) == set(set_control.MODELS)
    ind, ood = (
        "normalised MSE, in distribution (+x heading)",
        "normalised MSE, out of distribution (all headings)",
    )
    mlp, set_ = rows["MLP"], rows["SET (gravity + target)"]
    # SET is O_g(3)-equivariant: its error does not grow with the heading (to
    # sampling noise), the MLP's does, and SET beats the MLP out of distribution
    assert float(set_[ood]) < 1.5 * float(set_[ind])
    assert float(mlp[ood]) > 3 * float(mlp[ind])
    assert float(set_[ood]) < float(mlp[ood])
