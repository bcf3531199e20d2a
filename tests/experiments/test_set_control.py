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


def test_checkpoints_per_model_and_seed_and_resume_gives_the_same_table(tmp_path):
    """--checkpoint-dir writes one folder per model and seed; --resume of the
    finished runs restores their parameters: the same table (train s aside)."""
    ck = str(tmp_path / "ck")
    flags = [
        "--quick",
        "--steps",
        "5",
        "--n-train",
        "16",
        "--n-test",
        "4",
        "--seeds",
        "1",
    ]
    for sub, more in (("a", []), ("b", ["--resume"])):
        argv = [*flags, "--results-dir", str(tmp_path / sub), "--checkpoint-dir", ck]
        assert set_control.main([*argv, *more]) == 0
    runs = {f"{r}_seed0" for r in set_control.RUN_NAMES.values()}
    assert {p.name for p in (tmp_path / "ck").iterdir()} == runs

    def table(sub):
        rows = list(csv.reader(open(tmp_path / sub / "quick.csv")))
        return [r[:-1] for r in rows]  # the last column: train seconds

    assert table("a") == table("b")
