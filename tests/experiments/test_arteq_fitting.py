import csv

from experiments import arteq_fitting


def test_quick_run_writes_the_table_pointnet_fails_out_of_distribution(tmp_path):
    assert arteq_fitting.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    rows = {r["model"]: r for r in csv.DictReader(open(tmp_path / "quick.csv"))}
    assert set(rows) == set(arteq_fitting.MODELS)
    ind = "part accuracy, narrow poses"
    ood = "part accuracy, wide, globally rotated poses"
    pn, fa = rows["PointNet"], rows["global FA (SE(3) PCA frame)"]
    # the unstructured baseline fits the training poses and fails on rotated ones;
    # the globally equivariant model keeps its part accuracy there
    assert float(pn[ind]) > 0.8 and float(pn[ood]) < 0.6
    assert float(fa[ood]) > float(pn[ood]) + 0.2
    for r in rows.values():
        assert 0.0 <= float(r["rotation error (deg), narrow poses"]) <= 180.0
