"""eqjax.datasets molecule readers and the N-body simulator."""

from pathlib import Path

import numpy as np
import pytest

import eqjax as eq

ds = eq.datasets
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "rmd17"
needs_rmd17 = pytest.mark.skipif(
    not (DATA / "rmd17_aspirin_train_01.npz").exists(), reason="no rMD17 data"
)


@needs_rmd17
def test_rmd17_units_and_splits():
    train, test = ds.load_rmd17("ethanol", data_dir=DATA, split=1)
    raw = np.load(DATA / "rmd17_ethanol_train_01.npz")
    assert train.positions.shape == (1000, 9, 3) and test.energies.shape == (1000,)
    np.testing.assert_allclose(train.energies, raw["energies"] * 43.364104, rtol=1e-12)
    np.testing.assert_allclose(train.forces, raw["forces"] * 43.364104, rtol=1e-6)
    assert train.species.tolist() == raw["nuclear_charges"].tolist()
    # official splits: train and test frames are disjoint
    old_tr = set(raw["old_indices"].tolist())
    old_te = set(np.load(DATA / "rmd17_ethanol_test_01.npz")["old_indices"].tolist())
    assert not old_tr & old_te
    for m in ds.RMD17_MOLECULES:
        assert (DATA / f"rmd17_{m}_train_01.npz").exists()


def test_rmd17_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown rMD17 molecule"):
        ds.load_rmd17("caffeine", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ds.load_rmd17("aspirin", data_dir=tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="missing"):
        ds.load_rmd17("aspirin", data_dir=tmp_path)
    with pytest.raises(ValueError, match="split"):
        ds.load_rmd17("aspirin", data_dir=tmp_path, split=7)


def test_molecule_batch_layout():
    g = ds.molecule_batch(
        np.ones((3, 4, 3)), np.array([1, 6, 6, 8]), species_table=(1, 6, 8)
    )
    assert g.n_node.tolist() == [4, 4, 4, 1]
    assert g.nodes["features"].sum() == 12 and g.nodes["features"][-1].sum() == 0
    with pytest.raises(ValueError, match="species_table"):
        ds.molecule_batch(np.ones((1, 2, 3)), np.array([1, 7]), species_table=(1, 6))


def test_nbody_is_seeded_and_conserves_momentum_without_clipping():
    a = ds.charged_nbody(4, 3, burn=50, horizon=20)
    b = ds.charged_nbody(4, 3, burn=50, horizon=20)
    c = ds.charged_nbody(4, 4, burn=50, horizon=20)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.positions, c.positions)
    assert set(np.unique(a.charges)) <= {-1.0, 1.0}
    np.testing.assert_allclose(
        np.linalg.norm(ds.charged_nbody(3, 0, burn=0, horizon=1).velocities, axis=-1),
        0.5,
        rtol=1e-6,
    )


def test_qm9_reader():
    if ds.qm9_data_dir() is None:
        pytest.skip("qm9pack is not installed (pip install --no-deps qm9pack)")
    q = ds.load_qm9(max_molecules=50, seed=1)
    assert len(q.species) == 50 and q.targets.shape == (50, 12)
    assert q.species[0].tolist() == [6, 1, 1, 1, 1]  # methane
    assert q.positions[0].shape == (5, 3)
    i = q.target_names.index("U0")
    np.testing.assert_allclose(q.targets[0, i], -40.47893)
    sizes = [len(v) for v in q.splits.values()]
    assert (
        sum(sizes) == 50
        and len(np.unique(np.concatenate(list(q.splits.values())))) == 50
    )
