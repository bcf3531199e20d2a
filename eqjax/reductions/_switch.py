"""Private switch between the hand-written differentiation rules and their plain
definitions (differentiated by JAX), for ``experiments/bench_reductions.py``
(``--part rules``) and the tests that compare the two.

The choice is read while tracing: trace (``jax.jit(f).lower(...).compile()``, or
the first call of a fresh ``jax.jit``) inside :func:`plain_definitions`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

RULES = ("symmetric_gru",)
_plain: set[str] = set()


@contextlib.contextmanager
def plain_definitions(*names: str) -> Iterator[None]:
    """Trace the named functions (default: all of :data:`RULES`) with their plain
    definitions instead of their differentiation rules."""
    names = names or RULES
    unknown = set(names) - set(RULES)
    if unknown:
        raise ValueError(f"unknown rules {sorted(unknown)}; known: {RULES}")
    before = set(_plain)
    _plain.update(names)
    try:
        yield
    finally:
        _plain.clear()
        _plain.update(before)


def uses_rule(name: str) -> bool:
    """Whether ``name`` is traced with its differentiation rule."""
    return name not in _plain
