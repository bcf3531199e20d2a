import jax
import pytest


@pytest.fixture(autouse=True)
def _strict_rank_promotion():
    """STYLE.md §7: no silent rank promotion inside eqjax.reductions."""
    with jax.numpy_rank_promotion("raise"):
        yield
