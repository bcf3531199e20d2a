"""The rMD17 potential of examples/rmd17_potential.py: energy invariant and forces
equivariant under O(3) and translations (float64 < 1e-10), and its --quick run.
Skips without ../shared/data/rmd17."""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "rmd17"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DATA / "rmd17_ethanol_train_01.npz").exists(), reason="no rMD17 data"
    ),
]


def _example():
    spec = importlib.util.spec_from_file_location(
        "rmd17_potential", ROOT / "examples" / "rmd17_potential.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_energy_invariant_forces_equivariant_float64():
    ex = _example()
    tr, _ = ex.load(DATA, "ethanol")
    model = ex.Potential(tr["z"], channels=8, layers=2, rngs=nnx.Rngs(0))
    O3 = eq.groups.O3
    with jax.enable_x64(True):
        R = jnp.asarray(tr["R"][0], jnp.float64)
        e_err = eq.testing.equivariance_error(
            model.energy, O3, R, act_in=O3.act, key=jax.random.key(0), num_samples=4
        )
        f_err = eq.testing.equivariance_error(
            lambda r: model.energy_and_forces(r)[1], O3, R, act_in=O3.act,
            act_out=O3.act, key=jax.random.key(1), num_samples=4,
        )  # fmt: skip
        e, f = model.energy_and_forces(R)
        et, ft = model.energy_and_forces(R + jnp.array([[1.0, -2.0, 0.5]]))
        # control: a term that depends on the absolute x-coordinate must fail
        bad = lambda r: model.energy(r) + 0.1 * r[0, 0]  # noqa: E731
        bad_err = eq.testing.equivariance_error(
            bad, O3, R, act_in=O3.act, key=jax.random.key(0), num_samples=4
        )
    assert float(e_err) < 1e-10 and float(f_err) < 1e-10
    assert abs(float(et - e)) < 1e-10 * abs(float(e)) + 1e-12
    np.testing.assert_allclose(ft, f, atol=1e-10 * float(jnp.abs(f).max()))
    assert float(jnp.abs(f).max()) > 1e-6  # forces are not trivially zero
    assert float(bad_err) > 1e-4


def test_quick_run(capsys):
    ex = _example()
    assert ex.main(["--quick", "--data-dir", str(DATA)]) == 0
    out = capsys.readouterr().out
    assert "test force MAE" in out and "first-layer feature RMS" in out
