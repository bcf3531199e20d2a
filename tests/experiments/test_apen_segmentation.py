import csv

from experiments import apen_segmentation


def test_quick_run_writes_the_table_frame_averaging_beats_pointnet(tmp_path):
    assert apen_segmentation.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = {r["model"]: r for r in csv.DictReader(open(tmp_path / "quick.csv"))}
    assert set(rows) == set(apen_segmentation.MODELS)
    miou = {
        m: float(r["mIoU, wide globally rotated test poses"]) for m, r in rows.items()
    }
    assert all(0.0 <= v <= 1.0 for v in miou.values())
    # on globally rotated poses the frame-averaged models beat the plain PointNet
    assert miou["global FA"] > miou["PointNet"] + 0.1
    assert miou["piecewise FA, true parts"] > miou["PointNet"]


def test_checkpoints_per_model_and_seed_and_resume_gives_the_same_table(tmp_path):
    """--checkpoint-dir writes one folder per model and seed; --resume of the
    finished runs restores their parameters: the same table (train s aside)."""
    ck = str(tmp_path / "ck")
    flags = ["--quick", "--steps", "5", "--n-train", "16", "--n-test", "4"]
    for sub, more in (("a", []), ("b", ["--resume"])):
        argv = [*flags, "--results-dir", str(tmp_path / sub), "--checkpoint-dir", ck]
        assert apen_segmentation.main([*argv, *more]) == 0
    runs = {f"{r}_seed0" for r in apen_segmentation.RUN_NAMES.values()}
    assert {p.name for p in (tmp_path / "ck").iterdir()} == runs

    def table(sub):
        rows = list(csv.reader(open(tmp_path / sub / "quick.csv")))
        return [r[:-1] for r in rows]  # the last column: train seconds

    assert table("a") == table("b")
