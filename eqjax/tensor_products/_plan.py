"""Planning for the Gaunt products: which method ``method="auto"`` runs, and how
the ``"s2grid"`` product is laid out and blocked. The kernels (``_kernels.py``)
hold the mathematics and take these choices as arguments; every choice here only
changes speed (all methods and layouts agree to float rounding).

``method="auto"`` per backend (:func:`choose_method`):

* a backend with a measured table in ``_cost_model.json`` (today: ``"cpu"``, a
  2-core Intel Xeon with AVX-512): the method fastest at the nearest measured total
  degree. The table is written by
  ``python -m experiments bench_tensor_products --write-cost-model``; the run's
  figures are in ``experiments/results/bench_tensor_products/``.
* any other backend (``"gpu"``, ``"tpu"``, ...; nothing measured): ``"s2grid"``
  (:data:`UNMEASURED_DEFAULT`). It is exact, built from batched dense matrix
  products and pointwise products only (no complex FFTs, which are slow on TPUs),
  and it is the fastest method at every size measured on CPU. This is a default,
  not a measurement: write a table for the backend to replace it.

The s2grid plan (:func:`s2grid_plan`) picks the grid layout from the size of the
synthesis matrices (:data:`LAYOUT_MAX_ENTRIES`) and blocks the batch so that one
block's grid temporaries fit the per-core L2 cache of the CPU it runs on
(:func:`cache_sizes`), so the same rule carries to CPUs with smaller caches. The
constants were chosen from
``python -m experiments bench_tensor_products --plan-sweep --ls 4,8 --repeats 15``
(every layout × block size, interleaved rounds; results in
``experiments/results/bench_tensor_products/plan_sweep.md``, and the plan for other
L2 sizes in ``plan_by_cache.md``). Only this 2-core Intel host was measured.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax

from ._kernels import grid_sizes

_TABLE_PATH = Path(__file__).with_name("_cost_model.json")

UNMEASURED_DEFAULT = "s2grid"
"""The method ``"auto"`` runs on a backend without a measured table."""


@functools.lru_cache(maxsize=1)
def cost_model() -> dict:
    """``{backend: {"device": str, "times": {D: {method: µs per signal}}}}``."""
    return json.loads(_TABLE_PATH.read_text())


def choose_method(
    Ls: Sequence[int], lmax_out: int, n_signals: int, backend: str | None = None
) -> str:
    """The method ``"auto"`` runs for inputs of degrees ``Ls`` and output degree
    ``lmax_out`` on ``backend`` (default: JAX's default backend).

    On a backend with a measured table (``"cpu"``): the method fastest at the
    nearest measured total degree ``D = ΣL + lmax_out`` (nearest in ``log D``);
    methods are only compared where all were measured. On any other backend:
    ``"s2grid"`` (a documented default, see :mod:`eqjax.tensor_products`).
    ``n_signals`` (batch × channels) is accepted for batch-dependent tables; the
    measured CPU ranking did not change with batch.

    Args:
      Ls: the inputs' largest degrees.
      lmax_out: the output's largest degree.
      n_signals: number of spherical functions per input (batch × channels).
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``, ... (default: JAX's).

    Returns:
      ``"fourier_fft"``, ``"fourier_direct"`` or ``"s2grid"``.

    Example:
      >>> choose_method([8, 8], 8, 8192, backend="cpu") in ("fourier_fft",
      ...     "fourier_direct", "s2grid")
      True
      >>> choose_method([8, 8], 8, 8192, backend="tpu")
      's2grid'
    """
    del n_signals
    backend = backend or jax.default_backend()
    entry = cost_model().get(backend)
    if entry is None:
        return UNMEASURED_DEFAULT
    table = entry["times"]
    D = max(sum(Ls) + lmax_out, 1)
    key = min(table, key=lambda k: abs(math.log(int(k)) - math.log(D)))
    times = table[key]
    return min(times, key=times.get)


# ---------------------------------------------------------------------------
# s2grid: layout and blocking
# ---------------------------------------------------------------------------


class CacheSizes(NamedTuple):
    """Per-core data cache sizes in bytes (``l3``: the whole shared cache)."""

    l1d: int
    l2: int
    l3: int


FALLBACK_CACHES = CacheSizes(l1d=32 << 10, l2=1 << 20, l3=32 << 20)
"""Used where the host does not report a size: small, common values (a cache
assumed too small only makes blocks smaller than needed)."""

_SYSFS = Path("/sys/devices/system/cpu/cpu0/cache")
_SYSCONF = {1: "SC_LEVEL1_DCACHE_SIZE", 2: "SC_LEVEL2_CACHE_SIZE"}
_SYSCONF[3] = "SC_LEVEL3_CACHE_SIZE"


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    for suffix, scale in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if text.endswith(suffix):
            return int(text[:-1]) * scale
    return int(text)


def _read_caches(root: Path = _SYSFS) -> CacheSizes:
    sizes: dict[int, int] = {}
    try:
        for index in sorted(root.glob("index*")):
            kind = (index / "type").read_text().strip()
            if kind not in ("Data", "Unified"):
                continue
            level = int((index / "level").read_text())
            sizes[level] = _parse_size((index / "size").read_text())
    except (OSError, ValueError):
        sizes = {}
    for level, name in _SYSCONF.items():
        if level not in sizes:
            try:
                value = os.sysconf(name)
            except (ValueError, OSError):
                value = 0
            if value > 0:
                sizes[level] = value
    fallback = FALLBACK_CACHES
    return CacheSizes(
        l1d=sizes.get(1, fallback.l1d),
        l2=sizes.get(2, fallback.l2),
        l3=sizes.get(3, fallback.l3),
    )


@functools.cache
def cache_sizes() -> CacheSizes:
    """The host CPU's cache sizes: ``/sys/devices/system/cpu/cpu0/cache`` (Linux),
    else ``os.sysconf`` (``SC_LEVEL2_CACHE_SIZE``, ...), else
    :data:`FALLBACK_CACHES` level by level. Read once per process."""
    return _read_caches()


# Layout by the largest (L+1)² × grid points of a factor's synthesis matrix:
# "dense" (one GEMM) up to the first bound, then the 2× ("hemisphere") and 4×
# ("quadrant") symmetry-reduced grids, then the factored per-order path (O(L³)).
# Crossovers measured on CPU, forward, L1 = L2 = L_out, 8192 signals, blocked
# (``--plan-sweep``, results in plan_sweep.md): L = 4 is "dense" (2275 entries),
# L = 8 "quadrant" (26325 entries).
LAYOUT_MAX_ENTRIES = {"dense": 5_000, "hemisphere": 20_000, "quadrant": 2_000_000}

# The vector product's grid conversions: dense GEMM up to this many entries of the
# synthesis matrix, factored per-order path above.
VECTOR_DENSE_MAX_ENTRIES = 40_000

# Grid temporaries alive at once per signal in a two-factor product (the two
# factors' grid values and their product), and the share of the L2 cache that one
# block's temporaries fill. In ``--plan-sweep`` the fastest blocks at L = 8 and 12
# filled about one L2 (the matrices are small next to them); unblocked batches
# were about 1.6× slower at L = 8.
LIVE_GRIDS = 3
L2_SHARE = 1.0
MIN_CHUNK = 64


class S2GridPlan(NamedTuple):
    """``layout``: ``"dense"``, ``"hemisphere"``, ``"quadrant"`` or ``"factored"``;
    ``chunk``: signals per block (``0``: no blocking)."""

    layout: str
    chunk: int


def grid_points(Ls: Sequence[int], L_out: int) -> int:
    """Points of the Gauss–Legendre × uniform grid exact for the product."""
    n_t, n_p = grid_sizes(sum(Ls), L_out)
    return n_t * n_p


def s2grid_layout(Ls: Sequence[int], L_out: int) -> str:
    """The grid layout for factors of degrees ``Ls`` and output degree ``L_out``."""
    entries = max((L + 1) ** 2 for L in [*Ls, L_out]) * grid_points(Ls, L_out)
    for layout, bound in LAYOUT_MAX_ENTRIES.items():
        if entries <= bound:
            return layout
    return "factored"


def s2grid_chunk(
    Ls: Sequence[int],
    L_out: int,
    n_signals: int,
    itemsize: int = 4,
    caches: CacheSizes | None = None,
) -> int:
    """Signals per block: the largest power of two (at least ``MIN_CHUNK``)
    whose ``LIVE_GRIDS`` grids fit ``L2_SHARE`` of the L2 cache, or ``0`` (no
    blocking) when the whole batch already fits one block."""
    caches = cache_sizes() if caches is None else caches
    per_signal = LIVE_GRIDS * grid_points(Ls, L_out) * itemsize
    fit = max(int(caches.l2 * L2_SHARE) // per_signal, 1)
    chunk = max(1 << int(math.log2(fit)), MIN_CHUNK)
    return 0 if n_signals <= chunk else chunk


def s2grid_plan(
    Ls: Sequence[int],
    L_out: int,
    n_signals: int,
    itemsize: int = 4,
    caches: CacheSizes | None = None,
) -> S2GridPlan:
    """Layout and block size of the s2grid product of ``n_signals`` signals of
    ``itemsize`` bytes on a CPU with ``caches`` (default: this host's,
    :func:`cache_sizes`).

    Example:
      >>> s2grid_plan([8, 8], 8, 64).chunk   # small batches are not blocked
      0
      >>> big = CacheSizes(48 << 10, 2 << 20, 32 << 20)
      >>> small = CacheSizes(32 << 10, 512 << 10, 16 << 20)
      >>> s2grid_plan([8, 8], 8, 8192, caches=small).chunk < s2grid_plan(
      ...     [8, 8], 8, 8192, caches=big).chunk
      True
    """
    return S2GridPlan(
        s2grid_layout(Ls, L_out),
        s2grid_chunk(Ls, L_out, n_signals, itemsize, caches),
    )


def use_dense_vector_grid(L: int, n_t: int, n_p: int) -> bool:
    """Whether the vector product converts degree ``L`` on an ``n_t × n_p`` grid
    with one dense GEMM (else the factored per-order path)."""
    return (L + 1) ** 2 * n_t * n_p <= VECTOR_DENSE_MAX_ENTRIES
