import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from experiments import nbody

ROOT = Path(__file__).resolve().parents[2]
EXACT = ["model", "test MSE", "test MSE (moved)", "best val MSE", "steps"]


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


def _rows(d):
    return list(csv.DictReader(open(Path(d) / "quick.csv")))


def test_quick_run_writes_table(tmp_path):
    assert nbody.main(["--quick", "--no-progress", "--results-dir", str(tmp_path)]) == 0
    rows = _rows(tmp_path)
    names = ["FA-GNN", "EGNN", "PONITA-PC", "PONITA-FB", "GNN"]
    assert [r["model"] for r in rows] == names
    for r in rows:
        assert np.isfinite(float(r["test MSE"])) and r["steps"] == "4"
    # Frame averaging, EGNN and the edge-lifted PONITA are exactly E(3)-equivariant:
    # the moved test set changes nothing (the fiber bundle on a Fibonacci grid is
    # only approximately equivariant).
    for r in rows[:3]:
        mse, moved = float(r["test MSE"]), float(r["test MSE (moved)"])
        assert abs(mse - moved) <= 1e-3 * mse, r
    for m in names:  # the harness' metrics, per model
        log = list(csv.DictReader(open(tmp_path / f"{m}_metrics.csv")))
        assert [int(r["step"]) for r in log] == [1, 2, 3, 4]
        assert (tmp_path / f"{m}_metrics.png").exists()


def _env(cache=None):
    env = dict(os.environ)
    if cache is not None:  # the runs share compiled programs (same bits)
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cmd(*args):
    return [sys.executable, "-m", "experiments", "nbody", "--quick", *map(str, args)]


def _check(cmd, cache=None):
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=_env(cache), cwd=ROOT, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_contract_four_devices_and_kill_then_resume(tmp_path):
    """The issue's three commands: 4 forced host devices; a checkpointed run
    SIGKILLed mid-way, then resumed, ending with the uninterrupted run's table."""
    ref, four, killed, resumed = (tmp_path / n for n in ("ref", "four", "k", "r"))
    ckpt = tmp_path / "ckpt"
    cache = tmp_path / "jax-cache"
    _check(_cmd("--results-dir", ref), cache)
    proc = _check(_cmd("--devices", 4, "--results-dir", four))
    assert "global batch 32 over 4 cpu device(s)" in proc.stdout
    for a, b in zip(_rows(ref), _rows(four), strict=True):
        assert a["model"] == b["model"] and a["steps"] == b["steps"]
        for col in ("test MSE", "best val MSE"):
            np.testing.assert_allclose(float(b[col]), float(a[col]), rtol=1e-4)

    run = subprocess.Popen(
        _cmd("--checkpoint-dir", ckpt, "--results-dir", killed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(cache),
        cwd=ROOT,
    )
    done = ckpt / "FA-GNN" / "4" / "eqjax_manifest.json"  # FA-GNN finished
    deadline = time.monotonic() + 600
    while not done.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=60) == -signal.SIGKILL  # killed while EGNN trained
    assert not (killed / "quick.csv").exists()
    _check(_cmd("--checkpoint-dir", ckpt, "--resume", "--results-dir", resumed), cache)
    for a, b in zip(_rows(ref), _rows(resumed), strict=True):
        assert [a[c] for c in EXACT] == [b[c] for c in EXACT]
