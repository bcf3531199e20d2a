"""The shared registry checks of ``tests/test_common.py`` on the group actions kept
out of the fast tier (``eqjax.groups._rows.SLOW_ROWS``): the fast tier checks one
action of each kind, this file checks every other group's action the same way."""

import importlib.util
import sys
from pathlib import Path

import pytest

from eqjax.groups._rows import SLOW_ROWS


def _test_common():
    """``tests/test_common.py`` as pytest imported it (``test_common``: ``tests/``
    is not a package), else loaded from its path. Not ``import tests.test_common``:
    a site-packages ``tests`` package (molsets ships one) shadows the directory."""
    if "test_common" in sys.modules:
        return sys.modules["test_common"]
    path = Path(__file__).resolve().parents[1] / "test_common.py"
    spec = importlib.util.spec_from_file_location("_eqjax_test_common", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _test_common()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("row", SLOW_ROWS, ids=[r.name for r in SLOW_ROWS])
def test_slow_rows_equivariance_and_dtype(row, dtype, key):
    common.test_equivariance_and_dtype(row, "jit", dtype, key)


@pytest.mark.slow
@pytest.mark.parametrize("row", SLOW_ROWS, ids=[r.name for r in SLOW_ROWS])
def test_slow_rows_vmap_gradients_and_degenerate_inputs(row, key):
    common.test_vmap_gradients_and_degenerate_inputs(row, key)
