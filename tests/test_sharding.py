"""Every registry row on inputs sharded over 4 forced host devices (own process)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("area", ["groups", "tensor_products", "frames", "reductions"])
def test_registry_rows_sharded_over_four_devices(area):
    import importlib.util

    if importlib.util.find_spec(f"eqjax.testing._rows_{area}") is None:
        pytest.skip(f"no registry rows for {area}")
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_sharded_check.py"), area],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "sharded over 4 devices" in proc.stdout
