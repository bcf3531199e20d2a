import itertools

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_numpy_rank_promotion", "raise")

_counter = itertools.count(1000)


@pytest.fixture
def key():
    """A fresh PRNG key per test."""
    return jax.random.key(next(_counter))


settings.register_profile("eqjax", derandomize=True, deadline=None, max_examples=25)
settings.load_profile("eqjax")
