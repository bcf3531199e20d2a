"""The registry of public equivariant transforms that drives ``tests/test_common.py``
and ``python -m experiments tour`` (STYLE.md §10).

Each area of eqjax lists its rows next to its code, in ``eqjax/<area>/_rows.py``, as
a module attribute ``ROWS: list[Transform]``; :func:`discover_areas` discovers the areas (every
subpackage of ``eqjax`` except the infrastructure packages in :data:`NOT_AREAS`) and
:func:`registered` collects their rows. Adding a transform to the shared checks
(equivariance in float32 and float64, jit, vmap, finite gradients, dtype, degenerate
inputs, sharding) means adding a row; adding an area means adding a package with a
``_rows.py``. An area without rows, or whose rows fail to import, is an error naming
the area.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

import jax

from ..groups import Action, Group

PACKAGE = __name__.split(".")[0]  # "eqjax"
NOT_AREAS = frozenset({"testing", "nn", "experimental", "datasets", "training"})
"""Subpackages of ``eqjax`` that are infrastructure, not areas (they have no rows)."""


class RegistryError(RuntimeError):
    """An area has no ``_rows.py``, or its rows failed to import or are malformed.

    Example:
      >>> try:
      ...     registered(["no_such_area"])
      ... except RegistryError as e:
      ...     print(str(e).split(";")[0])
      unknown areas ['no_such_area']
    """


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
      slow: run the shared checks of this row in the slow test tier only (a
        baseline, or a claim the area's own fast tests cover at another level);
        the tour and the sharding check still include it.

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
    slow: bool = False


def built_once(make: Callable[[], Any], *, jit: bool = False) -> Callable[[], Any]:
    """``make`` as a cached zero-argument function that evaluates eagerly.

    For a row's constants (model parameters, NNX modules, sampled weights): built
    on the first call, not when the area's ``_rows.py`` is imported (every test
    worker imports every area's rows), and with concrete values even when the first
    call happens while ``fn`` is being traced.

    ``jit=True`` builds a pytree of arrays (an ``*_init`` function's parameters) in
    one compiled program instead of op by op: eagerly, every sampler call of a
    new shape compiles its own small program (``spen_init`` of the graphs rows:
    8.5 CPU-s op by op with threefry keys, 3.2 CPU-s in one program with ``rbg``
    keys, on the 2-core CI machine under load). NNX modules need
    ``flax.nnx.jit`` inside ``make`` instead.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> weights = built_once(lambda: jax.random.normal(jax.random.key(0), (3,)))
      >>> jax.jit(lambda x: x * weights())(jnp.ones(3)).shape, weights() is weights()
      ((3,), True)
    """
    if not callable(make):
        raise TypeError(f"built_once expects a zero-argument callable, got {make!r}")

    if not isinstance(jit, bool):
        raise TypeError(f"built_once: jit must be a bool, got {jit!r}")
    build = jax.jit(make) if jit else make

    @functools.cache
    def get():
        with jax.ensure_compile_time_eval():
            return build()

    return get


def discover_areas(package: str = PACKAGE) -> tuple[str, ...]:
    """The areas of ``package``: its subpackages except :data:`NOT_AREAS`, sorted,
    ``groups`` first (every area builds on it).

    Example:
      >>> "groups" in discover_areas() and "testing" not in discover_areas()
      True
    """
    try:
        pkg = importlib.import_module(package)
    except ImportError as e:
        raise RegistryError(
            f"discover_areas: cannot import package {package!r}: {e}"
        ) from e
    found = sorted(
        m.name
        for m in pkgutil.iter_modules(pkg.__path__)
        if m.ispkg and not m.name.startswith("_") and m.name not in NOT_AREAS
    )
    return tuple(sorted(found, key=lambda a: a != "groups"))


def _area_rows(package: str, area: str) -> list[Transform]:
    name = f"{package}.{area}._rows"
    try:
        spec = importlib.util.find_spec(name)
    except ImportError as e:  # the area package itself fails to import
        raise RegistryError(
            f"area {area!r}: importing {package}.{area} failed: {e!r}"
        ) from e
    if spec is None:
        raise RegistryError(
            f"area {area!r} has no registry rows: add {name.replace('.', '/')}.py "
            "with ROWS = [Transform(...), ...] (or list the package in NOT_AREAS if "
            "it is not an area)"
        )
    try:
        module = importlib.import_module(name)
    except Exception as e:
        raise RegistryError(f"area {area!r}: importing {name} failed: {e!r}") from e
    rows = getattr(module, "ROWS", None)
    if not isinstance(rows, (list, tuple)) or not rows:
        raise RegistryError(f"area {area!r}: {name}.ROWS must be a non-empty list")
    bad = [r for r in rows if not isinstance(r, Transform)]
    if bad:
        raise RegistryError(
            f"area {area!r}: {name}.ROWS holds non-Transform {bad[0]!r}"
        )
    misnamed = [r.name for r in rows if not r.name.startswith(area + ".")]
    if misnamed:
        raise RegistryError(
            f"area {area!r}: row names must start with '{area}.': {misnamed}"
        )
    return list(rows)


def registered(
    areas: Sequence[str] | None = None, *, package: str = PACKAGE
) -> list[Transform]:
    """The registered transforms of the given areas (default: every area found by
    :func:`discover_areas`).

    Args:
      areas: area names (a tuple or list; a bare string is one area), or ``None``
        for all.
      package: the package whose areas are searched (tests use a scratch package).

    Raises:
      RegistryError: an unknown area, an area without ``_rows.py``, rows that fail
        to import, or duplicate row names.

    Example:
      >>> rows = registered()
      >>> all(isinstance(r, Transform) for r in rows) and len(rows) > 0
      True
      >>> {r.name.split(".")[0] for r in registered(["frames"])}
      {'frames'}
    """
    found = discover_areas(package)
    if areas is None:
        wanted: Sequence[str] = found
    elif isinstance(areas, str):
        wanted = (areas,)
    else:
        wanted = tuple(areas)
        bad = [a for a in wanted if not isinstance(a, str)]
        if bad:
            raise TypeError(f"registered: areas must be names (str), got {bad!r}")
    unknown = [a for a in wanted if a not in found]
    if unknown:
        raise RegistryError(f"unknown areas {unknown}; the areas are {list(found)}")
    rows: list[Transform] = []
    for area in wanted:
        rows.extend(_area_rows(package, area))
    names = [r.name for r in rows]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise RegistryError(f"duplicate registry names: {sorted(dup)}")
    return rows
