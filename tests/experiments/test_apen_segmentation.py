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
