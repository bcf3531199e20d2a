"""The shared registry checks of ``tests/test_common.py`` on the group actions kept
out of the fast tier (``eqjax.groups._rows.SLOW_ROWS``): the fast tier checks one
action of each kind, this file checks every other group's action the same way."""

import importlib

import pytest

from eqjax.groups._rows import SLOW_ROWS

common = importlib.import_module("tests.test_common")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("row", SLOW_ROWS, ids=[r.name for r in SLOW_ROWS])
def test_slow_rows_equivariance_and_dtype(row, dtype, key):
    common.test_equivariance_and_dtype(row, "jit", dtype, key)


@pytest.mark.slow
@pytest.mark.parametrize("row", SLOW_ROWS, ids=[r.name for r in SLOW_ROWS])
def test_slow_rows_vmap_gradients_and_degenerate_inputs(row, key):
    common.test_vmap_gradients_and_degenerate_inputs(row, key)
