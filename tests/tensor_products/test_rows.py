"""The tensor-product registry rows are registered under their area (the common
tests in tests/test_common.py check them: equivariance in float64/float32 under
jit and vmap, gradients, dtype, degenerate inputs)."""

from eqjax.tensor_products._rows import ROWS
from eqjax.testing import discover_areas, registered


def test_rows_registered():
    assert "tensor_products" in discover_areas()
    names = [r.name for r in registered(["tensor_products"])]
    assert names == [r.name for r in ROWS]
    assert all(n.startswith("tensor_products.") for n in names)
