"""Test configuration for the whole repository (tests/, the eqjax doctests and the
notebooks): JAX settings, the persistent compilation cache, the hypothesis profile,
a PRNG key per test derived from its id, the two tiers, and each area's share of
the run's time.

Tiers: the README's command (``python -m pytest -n auto``) is the fast tier;
``python -m pytest -n auto -m slow`` is the slow tier (experiment ``--quick`` runs,
notebooks, the docstring examples, the multi-device subprocess, long property runs).
Items under ``notebooks/``, ``tests/experiments/`` and ``eqjax/`` (doctests) are
marked ``slow`` here, except those of :data:`_FAST_FILES`.

Area times: every test's setup + call + teardown time is attributed to an area
(``tests/<area>/``, ``eqjax/<area>/`` doctests, and ``tests/test_common.py`` rows
by their ``<area>.`` name) and written as JSON to ``$EQJAX_AREA_TIMES`` (default
``.pytest-area-times.json``) with the number of workers; ``python .ci/area_budget.py``
checks the budget on the area's share of the wall time (its sum over workers).

Fast-tier compilation: the fast tier runs with XLA's CPU backend optimisation
off (:data:`FAST_TIER_XLA_FLAG`, appended to ``XLA_FLAGS``; ``EQJAX_TEST_XLA_OPT=1``
keeps the optimising backend): most of the tier's time is compiling small
programs, and at -O0 that takes about a quarter less (``tests/tensor_products``,
``-n 0``, cold cache: 41 s -> 31 s). The slow tier compiles with XLA's defaults,
so every check also runs on optimised code.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections import defaultdict
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parent

jax.config.update("jax_numpy_rank_promotion", "raise")


def _compilation_cache_dir() -> str | None:
    """``$EQJAX_JAX_CACHE`` (``off`` disables it), else
    ``$XDG_CACHE_HOME/eqjax/jax-tests`` (``~/.cache/eqjax/jax-tests``)."""
    env = os.environ.get("EQJAX_JAX_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "none") else env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "eqjax", "jax-tests")


_cache = _compilation_cache_dir()
if _cache is not None:
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

try:
    from hypothesis import settings
except ImportError:  # hypothesis is in the dev extra
    pass
else:
    settings.register_profile("eqjax", derandomize=True, deadline=None, max_examples=25)
    settings.load_profile("eqjax")


@pytest.fixture
def key(request):
    """A PRNG key derived from the test's id: a failure reproduces when the test
    runs alone, under any ``-n``, in any order. It is an ``rbg`` key (XLA's
    RngBitGenerator): programs that sample compile in about a third of the time
    they take with the default threefry keys on XLA:CPU, and every check here
    compiles programs that sample."""
    return jax.random.key(zlib.crc32(request.node.nodeid.encode()), impl="rbg")


@pytest.fixture(autouse=True)
def _x64_does_not_leak():
    """A test (or an experiment run in-process) that switches ``jax_enable_x64``
    on globally changes the dtypes of every later test in its worker, the doctests
    above all: scope it with ``with jax.enable_x64(...)``. The flag is restored and
    the test errors, so the leak is named where it happens."""
    before = bool(jax.config.jax_enable_x64)
    yield
    after = bool(jax.config.jax_enable_x64)
    if after != before:
        jax.config.update("jax_enable_x64", before)
        pytest.fail(
            f"jax_enable_x64 leaked ({before} -> {after}): scope it with "
            "`with jax.enable_x64(...)`",
            pytrace=False,
        )


_SLOW_DIRS = ("notebooks/", "tests/experiments/", "eqjax/")
"""Paths whose items are slow-tier: notebooks, experiment runs and the docstring
examples (``eqjax/``: every doctest runs eagerly, one small compiled program per
operation and shape; together about a sixth of the fast tier's time)."""


_FAST_FILES = ("tests/experiments/test_training_flags.py",)
"""Files under :data:`_SLOW_DIRS` whose items stay in the fast tier (unless marked
``slow`` themselves): cheap checks that every training experiment takes the
harness' flags."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = _relative(item.nodeid)
        if rel.startswith(_SLOW_DIRS) and not rel.startswith(_FAST_FILES):
            item.add_marker(pytest.mark.slow)


def _relative(nodeid: str) -> str:
    return nodeid.replace(os.sep, "/")


def _areas() -> tuple[str, ...]:
    from eqjax.testing import discover_areas

    return discover_areas()


# eqjax's subpackages that are not areas (nn, datasets, training, ...): their tests
# count as their own line in the budget table, not as "shared".
_INFRASTRUCTURE = frozenset(
    p.name
    for p in (ROOT / "eqjax").iterdir()
    if p.is_dir() and (p / "__init__.py").exists() and not p.name.startswith("_")
)


def area_of(nodeid: str, areas: tuple[str, ...]) -> str:
    """The area a test's time counts against: ``tests/<area>/...``,
    ``eqjax/<area>/...`` (doctests), a ``tests/test_common.py`` row named
    ``<area>.<what>``; an infrastructure package (``nn``, ``datasets``, ``training``,
    ... any subpackage of ``eqjax`` outside the areas) for ``tests/<pkg>/`` and
    ``eqjax/<pkg>/``; ``shared`` for the rest (the harness, public-API checks,
    experiments, notebooks)."""
    rel = _relative(nodeid)
    parts = rel.split("::", 1)[0].split("/")
    if len(parts) >= 3 and parts[0] in ("tests", "eqjax") and parts[1] in areas:
        return parts[1]
    if (
        len(parts) >= 3
        and parts[0] in ("tests", "eqjax")
        and parts[1] in _INFRASTRUCTURE
        and parts[1] != "testing"
    ):
        return parts[1]
    if parts[:2] == ["tests", "test_common.py"] and "[" in rel:
        param = rel.split("[", 1)[1]
        for area in areas:
            if re.search(rf"(^|-){re.escape(area)}\.", param):
                return area
    return "shared"


_times: dict[str, float] = defaultdict(float)
_counts: dict[str, int] = defaultdict(int)
_workers: set[str] = set()


def pytest_runtest_logreport(report):
    if _config is None or hasattr(_config, "workerinput"):
        return  # xdist workers: the controller receives every report
    area = area_of(report.nodeid, _AREAS)
    node = getattr(report, "node", None)  # the xdist worker that ran it
    _workers.add(getattr(getattr(node, "gateway", None), "id", "main"))
    _times[area] += float(report.duration)
    if report.when == "call":
        _counts[area] += 1


_config = None
_AREAS: tuple[str, ...] = ()


FAST_TIER_XLA_FLAG = "--xla_backend_optimization_level=0"


def _is_fast_tier(config) -> bool:
    markexpr = config.getoption("markexpr", "") or ""
    return "slow" not in markexpr or "not slow" in markexpr


def pytest_configure(config):
    global _config, _AREAS
    _config = config
    # before any computation (the backend reads XLA_FLAGS when it starts); xdist
    # workers inherit the environment and run this too
    flags = os.environ.get("XLA_FLAGS", "")
    if (
        _is_fast_tier(config)
        and os.environ.get("EQJAX_TEST_XLA_OPT", "0") == "0"
        and "xla_backend_optimization_level" not in flags
    ):
        os.environ["XLA_FLAGS"] = f"{flags} {FAST_TIER_XLA_FLAG}".strip()
    _AREAS = _areas()


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput") or not _times:
        return
    path = Path(os.environ.get("EQJAX_AREA_TIMES", ROOT / ".pytest-area-times.json"))
    marker = session.config.getoption("markexpr", "") or ""
    data = {
        "markexpr": marker,
        "workers": max(len(_workers), 1),
        "seconds": dict(sorted(_times.items())),
        "tests": dict(sorted(_counts.items())),
    }
    try:
        path.write_text(json.dumps(data, indent=1) + "\n")
    except OSError:
        pass


def pytest_terminal_summary(terminalreporter):
    if not _times:
        return
    terminalreporter.section(
        f"time per area (setup + call + teardown, summed over {max(len(_workers), 1)}"
        " workers)"
    )
    for area, seconds in sorted(_times.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(
            f"{area:18s} {seconds:7.1f} s  {_counts.get(area, 0):5d} tests"
        )
