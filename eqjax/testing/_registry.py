"""The registry of public equivariant transforms that drives ``tests/test_common.py``
and ``python -m experiments tour`` (STYLE.md §10).

Each area of eqjax lists its rows in ``eqjax/testing/_rows_<area>.py`` as a module
attribute ``ROWS: list[Transform]``; :func:`registered` collects them. Adding a
transform to the shared checks (equivariance in float32 and float64, jit, vmap,
finite gradients, dtype, degenerate inputs, sharding) means adding a row.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

from ..groups import Action, Group

AREAS = ("groups", "tensor_products", "frames", "reductions")
"""Areas whose ``_rows_<area>`` modules are collected, in this order."""


@dataclasses.dataclass(frozen=True)
class Transform:
    """One row of the registry.

    Attributes:
      name: unique name, ``"<area>.<what>"``.
      fn: the transform, ``fn(x) -> y`` (close over parameters).
      group: the group whose elements are sampled.
      act_in: action on inputs, ``act_in(g, x)``.
      act_out: action on outputs, ``act_out(g, y)``; ``None`` for invariance.
      make_input: ``make_input(key, dtype) -> x``: one generic input; called with
        several keys and stacked for the vmap and sharding checks, so its shapes
        must not depend on the key.
      degenerate_inputs: ``degenerate_inputs(dtype) -> list of x`` (zero vectors,
        coincident points, empty graphs, padding, ...) checked for equivariance
        (with ``tol_degenerate``) and finite gradients.
      tol64, tol32: largest accepted relative equivariance error in float64 and
        float32.
      tol_degenerate: tolerance (float64) for degenerate inputs; ``None`` skips the
        equivariance check there (finite gradients are still checked) — say why in
        ``notes``.
      sample: optional ``sample(key, shape, dtype)`` overriding ``group.sample``.
      differentiable: whether ``fn`` is differentiable in its floating inputs.
      notes: anything a reader of the tour table should know.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> row = Transform(
      ...     name="demo.norms", fn=lambda x: jnp.linalg.norm(x, axis=-1),
      ...     group=eq.groups.O3, act_in=eq.groups.O3.act, act_out=None,
      ...     make_input=lambda key, dtype: jax.random.normal(key, (5, 3), dtype))
      >>> x = row.make_input(jax.random.key(0), jnp.float32)
      >>> float(eq.testing.equivariance_error(row.fn, row.group, x, act_in=row.act_in,
      ...     act_out=row.act_out, key=jax.random.key(1))) < 1e-5
      True
    """

    name: str
    fn: Callable[[Any], Any]
    group: Group
    act_in: Action
    act_out: Action | None
    make_input: Callable[[Any, Any], Any]
    degenerate_inputs: Callable[[Any], Sequence[Any]] | None = None
    tol64: float = 1e-9
    tol32: float = 1e-4
    tol_degenerate: float | None = 1e-9
    sample: Callable[..., Any] | None = None
    differentiable: bool = True
    notes: str = ""


def registered(areas: Sequence[str] = AREAS) -> list[Transform]:
    """All registered transforms of the given areas (default: every area present).

    Example:
      >>> rows = registered()
      >>> all(isinstance(r, Transform) for r in rows) and len(rows) > 0
      True
    """
    rows: list[Transform] = []
    for area in areas:
        name = f"{__package__}._rows_{area}"
        if importlib.util.find_spec(name) is None:
            continue
        rows.extend(importlib.import_module(name).ROWS)
    names = [r.name for r in rows]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate registry names: {sorted(dup)}")
    return rows
