import itertools

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("eqjax", derandomize=True, deadline=None, max_examples=25)
settings.load_profile("eqjax")

_counter = itertools.count()


@pytest.fixture
def key():
    """A fresh PRNG key per test."""
    return jax.random.key(next(_counter))


# a script run in its own process by test_sharding.py, not a test module
collect_ignore = ["_sharded_check.py"]
