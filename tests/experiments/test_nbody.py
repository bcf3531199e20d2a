import csv

import numpy as np

from experiments import nbody
from experiments._common import results_dir


def test_simulation_is_sane():
    x, v, q, y = nbody.simulate(8, 0, burn=20, horizon=30)
    assert x.shape == v.shape == y.shape == (8, 5, 3) and q.shape == (8, 5)
    assert set(np.unique(q)) <= {-1.0, 1.0}
    np.testing.assert_allclose(
        np.linalg.norm(nbody.simulate(4, 1, burn=0, horizon=1)[1], axis=-1),
        0.5,
        rtol=1e-5,
    )
    assert np.isfinite(y).all() and 0 < np.mean((y - x) ** 2) < 1.0


def test_quick_run_writes_table():
    assert nbody.main(["--quick"]) == 0
    path = results_dir("nbody") / "quick.csv"
    rows = list(csv.DictReader(open(path)))
    assert [r["model"] for r in rows] == ["FA-GNN", "EGNN", "GNN"]
    for r in rows:
        assert np.isfinite(float(r["test MSE"]))
    fa = rows[0]
    # Frame averaging is exactly E(3)-equivariant: the moved test set changes nothing.
    assert abs(float(fa["test MSE"]) - float(fa["test MSE (moved)"])) <= 1e-3 * float(
        fa["test MSE"]
    )
