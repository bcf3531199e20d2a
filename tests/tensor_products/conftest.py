import jax
import pytest


@pytest.fixture(autouse=True)
def _allow_rank_promotion_in_test_code():
    """These tests build reference values with NumPy-style broadcasting; the
    library's public functions are still checked under
    ``jax_numpy_rank_promotion="raise"`` by tests/test_common.py."""
    with jax.numpy_rank_promotion("allow"):
        yield
