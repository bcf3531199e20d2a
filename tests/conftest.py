"""Fixtures and settings live in the repository's root ``conftest.py`` (JAX
settings, compilation cache, hypothesis profile, the per-test ``key``)."""

# a script run in its own process by test_sharding.py, not a test module
collect_ignore = ["_sharded_check.py"]
