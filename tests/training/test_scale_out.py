"""Scale-out checks in subprocesses (slow tier): 4 forced host devices against 1,
two processes on localhost against one, SIGKILL mid-run then resume."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.slow


def _env(**extra):
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


def _run(*args, timeout=600):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        cwd=ROOT,
    )


def test_four_devices_match_one_device_and_compile_once():
    proc = _run(HERE / "_four_devices.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FOUR DEVICES OK" in proc.stdout
    assert "devices 4: compiles 1, steps 20" in proc.stdout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_to_the_same_parameters_as_one(tmp_path):
    single = _run(HERE / "_two_process.py", tmp_path / "single.npz")
    assert single.returncode == 0, single.stderr[-3000:]
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_two_process.py"),
                str(tmp_path / f"multi{i}.npz"),
                str(port),
                str(i),
                str(tmp_path / "ck"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
        for i in (0, 1)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-2000:] + err[-3000:]
        assert "mesh 2 devices, compiles 1" in out
    assert not (tmp_path / "multi1.npz").exists()  # only process 0 writes
    a, b = np.load(tmp_path / "single.npz"), np.load(tmp_path / "multi0.npz")
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-5, err_msg=k)
    # both processes wrote one shared Orbax checkpoint per save, with its manifest
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["10", "20"]
    assert (tmp_path / "ck" / "20" / "eqjax_manifest.json").exists()


def _leaves_equal(a, b):
    a, b = np.load(a), np.load(b)
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    ref = _run(HERE / "_kill_run.py", tmp_path / "ref.npz", "-", 0)
    assert ref.returncode == 0, ref.stderr[-3000:]
    ck = tmp_path / "ck"
    killed = _run(HERE / "_kill_run.py", tmp_path / "never.npz", ck, 21)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (
        "killing at step 21" in killed.stdout and not (tmp_path / "never.npz").exists()
    )
    resumed = _run(HERE / "_kill_run.py", tmp_path / "resumed.npz", ck, 0, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "done: resumed_from 15, step 40" in resumed.stdout or (
        "done: resumed_from 20, step 40" in resumed.stdout
    ), resumed.stdout
    _leaves_equal(tmp_path / "ref.npz", tmp_path / "resumed.npz")


def test_truncated_checkpoint_is_skipped_after_a_kill(tmp_path):
    ck = tmp_path / "ck"
    killed = _run(HERE / "_kill_run.py", tmp_path / "never.npz", ck, 17)
    assert killed.returncode == -signal.SIGKILL
    newest = max(int(p.name) for p in ck.iterdir() if p.name.isdigit())
    files = [
        p
        for p in (ck / str(newest)).rglob("*")
        if p.is_file() and p.name != "eqjax_manifest.json"
    ]
    victim = max(files, key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[:-7])
    resumed = _run(HERE / "_kill_run.py", tmp_path / "resumed.npz", ck, 0, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{newest} skipped: files missing or changed" in resumed.stderr
    assert f"done: resumed_from {newest - 5}, step 40" in resumed.stdout
    ref = _run(HERE / "_kill_run.py", tmp_path / "ref.npz", "-", 0)
    assert ref.returncode == 0, ref.stderr[-3000:]
    _leaves_equal(tmp_path / "ref.npz", tmp_path / "resumed.npz")
