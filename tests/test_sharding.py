"""Every registry row on inputs sharded over 4 forced host devices, in one process
(``XLA_FLAGS`` must be set before JAX is imported), areas found by the registry's
discovery (slow tier)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import eqjax as eq

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_registry_rows_sharded_over_four_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_sharded_check.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    rows = eq.testing.registered()
    assert f"{len(rows)} rows sharded over 4 devices" in proc.stdout
    for area in eq.testing.discover_areas():
        assert f"area {area}:" in proc.stdout, area
