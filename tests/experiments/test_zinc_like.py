import csv
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import zinc_like as zl


def _need_rdkit():
    return pytest.importorskip("rdkit.Chem")


def _need_molsets():
    # ``import moses`` pulls in torch and pandas: look the wheel up by metadata
    try:
        importlib.metadata.distribution("molsets")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("molsets is not installed (pip install --no-deps molsets)")


def _independent_sa():
    """RDKit's SA scorer imported the documented way (``sys.path``), not
    through the experiment's loader."""
    rdconfig = importlib.import_module("rdkit.RDConfig")
    path = Path(rdconfig.RDContribDir) / "SA_Score" / "sascorer.py"
    spec = importlib.util.spec_from_file_location("_test_sascorer", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# (SMILES, Crippen logP, SA score, ring sizes) as RDKit 2026.09 computes them
KNOWN = {
    "c1ccccc1": (0.6866, 0.6866),  # logP 1.6866, SA 1.0, one 6-ring
    "Cn1c(=O)c2c(ncn2C)n(C)c1=O": (-3.3273, -3.3273),  # caffeine: -1.0293 - 2.2980
    "C1CCCCCC1": (0.7307, 0.7307),  # 2.7307 - 1.0 - one 7-ring
    "C1CCCCCCC1": (1.1208, 0.1208),  # 3.1208 - 1.0 - (1 ring | 8 - 6)
    "C1CCCCCC1CC1CCCCCC1": (1.5722, 2.5722),  # 5.3173 - 1.7451 - (2 rings | 7 - 6)
}


@pytest.mark.parametrize("smiles", sorted(KNOWN))
def test_penalized_logp_known_molecules(smiles):
    _need_rdkit()
    count, largest = KNOWN[smiles]
    assert zl.penalized_logp(smiles) == pytest.approx(count, abs=2e-4)
    assert zl.penalized_logp(smiles, cycles="largest") == pytest.approx(
        largest, abs=2e-4
    )


def test_penalized_logp_matches_an_independent_computation():
    chem = _need_rdkit()
    crippen = importlib.import_module("rdkit.Chem.Crippen")
    sa = _independent_sa()
    smiles = [
        "CCCS(=O)c1ccc2[nH]c(=NC(=O)OC)[nH]c2c1",
        "CC(C)(C)C(=O)C(Oc1ccc(Cl)cc1)n1ccnc1",
        "O=C1CCCCCC1N1CCOCC1",
        "Cc1ccc(S(=O)(=O)N2CCC3(CC2)OCCO3)cc1",
    ]
    for s in smiles:
        m = chem.MolFromSmiles(s)
        rings = [len(r) for r in m.GetRingInfo().AtomRings()]
        want = crippen.MolLogP(m) - sa.calculateScore(m) - sum(k > 6 for k in rings)
        assert zl.penalized_logp(m) == pytest.approx(want, abs=1e-12), s
        assert zl.penalized_logp(s) == pytest.approx(want, abs=1e-12), s


def test_penalized_logp_bad_input():
    _need_rdkit()
    with pytest.raises(ValueError, match="cannot parse"):
        zl.penalized_logp("C1CC(")
    with pytest.raises(ValueError, match="cycles"):
        zl.penalized_logp("CCO", cycles="all")


def test_molecule_graph_one_hots():
    chem = _need_rdkit()
    atoms, bonds = zl.molecule_graph(chem.MolFromSmiles("OC(=O)c1ccccc1C#N"))
    assert atoms.shape == (11, zl.NUM_ATOM_FEATURES) and bonds.shape == (11, 11, 4)
    np.testing.assert_array_equal(atoms.sum(1), 1)
    elements = [zl.ELEMENTS[i] for i in atoms.argmax(1)]
    assert elements.count("O") == 2 and elements.count("N") == 1
    per_type = bonds.sum((0, 1)) / 2  # single, double, triple, aromatic
    assert per_type.tolist() == [3, 1, 1, 6]
    np.testing.assert_array_equal(bonds, bonds.transpose(1, 0, 2))


def test_moses_csv_ships_in_the_wheel_and_moses_is_not_imported():
    _need_molsets()
    path = zl.moses_smiles_file("train")
    assert path.name == "train.csv.gz" and path.stat().st_size > 1_000_000
    smiles = zl.read_smiles(path)
    assert len(smiles) > 1_000_000 and all(isinstance(s, str) for s in smiles[:5])
    assert "moses" not in sys.modules


def test_read_smiles_formats(tmp_path):
    (tmp_path / "a.smi").write_text("CCO ethanol\nc1ccccc1 benzene\n\n")
    assert zl.read_smiles(tmp_path / "a.smi") == ["CCO", "c1ccccc1"]
    (tmp_path / "b.csv").write_text("id,SMILES,y\n1,CCO,0.5\n2,CCN,0.1\n")
    assert zl.read_smiles(tmp_path / "b.csv") == ["CCO", "CCN"]


def test_clear_messages_when_rdkit_or_molsets_missing(monkeypatch):
    real = importlib.import_module

    def no_rdkit(name, *a, **k):
        if name.startswith("rdkit"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_rdkit)
    with pytest.raises(SystemExit, match="pip install rdkit"):
        zl.penalized_logp("CCO")
    monkeypatch.setattr(importlib, "import_module", real)

    def no_dist(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    with pytest.raises(SystemExit, match="--no-deps molsets"):
        zl.moses_smiles_file()


def test_rescale_polynomials_keeps_zeros_and_scales_per_channel():
    c = zl.NUM_PLAIN_CHANNELS
    rng = np.random.default_rng(0)
    X = np.zeros((4, 5, 5, c + 3), np.float32)
    X[..., :c] = 7.0  # plain channels stay as they are
    X[:, :3, :3, c] = rng.uniform(1, 3, (4, 3, 3))  # sparse, large
    X[:, :2, :2, c + 1] = 0.01
    nm = np.zeros((4, 5), bool)
    nm[:, :3] = True
    scale = zl.rescale_polynomials(X, nm, np.arange(3))
    assert scale[2] == 1.0  # an all-zero channel is left alone
    np.testing.assert_allclose(X[..., :c], 7.0)
    np.testing.assert_allclose(X[:, :2, :2, c + 1], 1.0, rtol=1e-6)
    assert np.all(X[:, 3:, :, c:] == 0) and np.all(X[:, :, 3:, c:] == 0)
    nz = X[:3, ..., c][X[:3, ..., c] != 0]
    assert np.sqrt(np.mean(nz.astype(np.float64) ** 2)) == pytest.approx(1, rel=1e-5)


def test_quick_run_writes_table_curves_and_plot(tmp_path):
    _need_rdkit()
    _need_molsets()
    assert zl.main(["--quick", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "quick.csv")))
    assert [r["model"] for r in rows] == list(zl.MODELS)
    col = next(k for k in rows[0] if k.startswith("test MAE"))
    for r in rows:
        v = float(r[col])
        assert np.isfinite(v) and 0 < v < 10, (r["model"], v)
    text = (tmp_path / "quick.md").read_text()
    assert "NOT the ZINC-12k benchmark" in text and "split seed 0" in text
    curves = list(csv.DictReader(open(tmp_path / "quick_val_mae.csv")))
    assert {r["model"] for r in curves} == set(zl.MODELS)
    assert all(np.isfinite(float(r["val_mae"])) for r in curves)
    assert (tmp_path / "quick_val_mae.png").stat().st_size > 1000


def test_smiles_file_option(tmp_path):
    _need_rdkit()
    smi = tmp_path / "mols.smi"
    # 30 small molecules, one unparsable line that must be skipped
    base = ["CCO", "CCN", "c1ccccc1O", "CC(=O)O", "C1CCCCC1", "c1ccncc1"]
    smi.write_text("\n".join(base * 5 + ["C1CC("]) + "\n")
    args = ["--smiles-file", str(smi), "--results-dir", str(tmp_path)]
    args += ["--train", "20", "--val", "5", "--test", "5", "--epochs", "1"]
    args += ["--batch", "10", "--seeds", "0", "--models", "GIN + SPE"]
    args += ["--no-progress", "--checkpoint-dir", str(tmp_path / "ck")]
    assert zl.main(args) == 0
    text = (tmp_path / "results.md").read_text()
    assert "mols.smi" in text and "1 skipped" in text
    # the harness' flags reach fit: one folder per model and seed, and --resume
    # of the finished run restores its final checkpoint (same test MAE)
    assert [p.name for p in (tmp_path / "ck" / "gin_spe_seed0").iterdir()] == ["2"]
    first = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert zl.main(args + ["--resume"]) == 0
    again = list(csv.DictReader(open(tmp_path / "results.csv")))
    col = next(k for k in first[0] if k.startswith("test MAE"))
    assert [r[col] for r in again] == [r[col] for r in first]
