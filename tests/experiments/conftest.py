import jax
import pytest


@pytest.fixture(autouse=True)
def _allow_rank_promotion():
    """Experiments are user-level scripts, run at JAX's default broadcasting rules;
    the library itself is tested under ``jax_numpy_rank_promotion="raise"``."""
    with jax.numpy_rank_promotion("allow"):
        yield
