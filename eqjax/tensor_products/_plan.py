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

The s2grid plan (layout and blocking) comes from :func:`planned_s2grid`:

* the rule (:func:`s2grid_plan`): the grid layout from the size of the synthesis
  matrices (:data:`LAYOUT_MAX_ENTRIES`) and blocks whose grid temporaries fit the
  per-core L2 cache (:func:`cache_sizes`). The constants were chosen from
  ``python -m experiments bench_tensor_products --plan-sweep --ls 4,8 --repeats 15``
  on a 2-core Intel Xeon (48 KiB L1d, 2 MiB L2): results in
  ``experiments/results/bench_tensor_products/plan_sweep.md``.
* measured (the default on CPU for products of at least :data:`MEASURE_MIN_WORK`):
  the rule did not carry to a CPU with smaller caches (AMD EPYC, 32 KiB L1d /
  512 KiB L2 per core: the rule's quadrant / 128 ran 1.61× e3nn's S² grid at
  L = 8 where the unblocked hemisphere layout ran 2.2×, ``plan_sweep_amd_epyc.md``).
  So the first product of each shape times the rule's plan and its neighbours
  (:func:`s2grid_candidates`: adjacent layouts × {unblocked, the L2 block, half
  and 4× it}
  × signals on the major or the minor axis; :func:`search_s2grid_plan` times
  about a third of them)
  once, on small random inputs of the same shape, and keeps the fastest: in
  memory for the process and in a JSON file (:func:`set_s2grid_planning`) keyed by
  the CPU, JAX's version and the shape, so later processes do not time again. It
  costs one compilation per candidate, once per shape and machine (about 3 s at
  L = 8 here). Smaller products, other backends and ``set_s2grid_planning("rule")``
  use the rule. Every plan gives the same product to float rounding.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from ._kernels import grid_sizes, product_s2grid

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
    ``chunk``: signals per block (``0``: no blocking); ``signals_last``: the GEMMs
    with the signals on the minor axis (symmetry-split layouts only)."""

    layout: str
    chunk: int
    signals_last: bool = False

    @property
    def name(self) -> str:
        """``layout/chunk``, with ``/last`` for ``signals_last``."""
        return f"{self.layout}/{self.chunk}" + ("/last" if self.signals_last else "")


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


# ---------------------------------------------------------------------------
# s2grid: measured plans (the rule's plan and its neighbours, timed once per shape)
# ---------------------------------------------------------------------------

LAYOUTS = ("dense", "hemisphere", "quadrant", "factored")
"""The s2grid layouts, from the largest synthesis matrices to the smallest."""

MEASURE_MIN_WORK = 2e7
"""Products smaller than this (signals × grid points × the largest ``(L+1)²``,
about the multiply-adds of one synthesis) use the rule: they take about a
millisecond on CPU, less than the timing costs to pay back."""

PLANNING_MODES = ("measure", "rule")

_log = logging.getLogger("eqjax.tensor_products")


def _default_plan_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "eqjax" / "s2grid_plans.json"


class _Planning:
    mode: str = "measure"
    file: Path | None = _default_plan_file()
    memo: dict[str, S2GridPlan] = {}


def set_s2grid_planning(
    mode: str = "measure", *, plan_file: str | os.PathLike | None | bool = True
) -> None:
    """How ``method="s2grid"`` picks its layout and blocking.

    Args:
      mode: ``"measure"`` (default): on CPU, time the candidate plans of a shape
        once and keep the fastest (see :mod:`eqjax.tensor_products._plan`);
        ``"rule"``: the cache-size rule :func:`s2grid_plan` only (no timing).
      plan_file: where measured plans persist between processes: a path, ``None``
        (memory only), or ``True`` (keep the current file; by default
        ``$XDG_CACHE_HOME/eqjax/s2grid_plans.json``).

    Plans already measured in this process are forgotten when the mode or the
    file changes.

    Example:
      >>> set_s2grid_planning("rule"); set_s2grid_planning("measure")
    """
    if mode not in PLANNING_MODES:
        raise ValueError(
            f"set_s2grid_planning: mode must be one of {PLANNING_MODES}, got {mode!r}"
        )
    _Planning.mode = mode
    if plan_file is not True:
        if plan_file is False:
            raise TypeError("plan_file must be a path, None or True")
        _Planning.file = None if plan_file is None else Path(plan_file)
    _Planning.memo = {}


def s2grid_candidates(
    Ls: Sequence[int],
    L_out: int,
    n_signals: int,
    itemsize: int = 4,
    caches: CacheSizes | None = None,
) -> list[S2GridPlan]:
    """The plans the measured planner chooses from: the rule's layout and its
    neighbours in :data:`LAYOUTS` (the symmetry-split ones with the signals on the
    major and on the minor axis, ``signals_last``), each unblocked, in blocks of
    the rule's L2-sized block, of half and of four times that (blocks only where
    smaller than the batch, at least ``MIN_CHUNK``). The rule's own plan comes
    first. The half block is there because on a 2-vCPU AMD EPYC (1 MiB L2) the
    quadrant layout ran fastest at 128 signals per block where the rule gives
    256 (7.45 vs 8.7 ms at L = 8, batch 256 × 32: ``python -m experiments
    bench_tensor_products --plan-sweep --ls 8 --repeats 11 --tag
    amd_epyc_1mib_l2``).
    :func:`search_s2grid_plan` times a subset of them.

    Example:
      >>> plans = s2grid_candidates([8, 8], 8, 8192)
      >>> plans[0] == s2grid_plan([8, 8], 8, 8192) and len(set(plans)) == len(plans)
      True
      >>> sorted({p.layout for p in plans})
      ['factored', 'hemisphere', 'quadrant']
    """
    rule = s2grid_plan(Ls, L_out, n_signals, itemsize, caches)
    i = LAYOUTS.index(rule.layout)
    layouts = LAYOUTS[max(i - 1, 0) : i + 2]
    plans = [rule]
    for layout in layouts:
        for last in (False, True) if layout != "factored" else (False,):
            for chunk in _chunks(Ls, L_out, n_signals, itemsize, caches):
                plan = S2GridPlan(layout, chunk, last)
                if plan not in plans:
                    plans.append(plan)
    return plans


def _chunks(Ls, L_out, n_signals, itemsize, caches) -> list[int]:
    unit = s2grid_chunk(Ls, L_out, 1 << 62, itemsize, caches)
    small = [unit // 2] if unit // 2 >= MIN_CHUNK else []
    return [0] + [c for c in (unit, *small, 4 * unit) if c < n_signals]


def search_s2grid_plan(
    Ls: Sequence[int],
    L_out: int,
    n_signals: int,
    dtype,
    *,
    measure: Callable[..., dict[S2GridPlan, float]] | None = None,
    caches: CacheSizes | None = None,
) -> tuple[S2GridPlan, dict[S2GridPlan, float]]:
    """``(fastest plan, seconds of every plan timed)`` among
    :func:`s2grid_candidates`, in two rounds of :func:`measure_s2grid_plans`
    (``measure``): every layout and signal axis at one block size (the rule's, or
    unblocked where the batch fits one block), then the other block sizes of the
    fastest. About a third of the candidates are compiled (8 of 20 at L = 8).

    Example:
      >>> fake = lambda Ls, Lo, n, dt, plans: {p: 1.0 + p.chunk for p in plans}
      >>> search_s2grid_plan([8, 8], 8, 8192, "float32", measure=fake)[0].chunk
      0
    """
    measure = measure_s2grid_plans if measure is None else measure
    itemsize = np.dtype(dtype).itemsize
    cands = s2grid_candidates(Ls, L_out, n_signals, itemsize, caches)
    rule = cands[0]
    first = [rule] + [
        p
        for p in cands
        if p.chunk == rule.chunk and (p.layout, p.signals_last) != (rule.layout, False)
    ]
    times = dict(measure(Ls, L_out, n_signals, dtype, first))
    best = min(times, key=times.__getitem__)
    second = [
        p
        for p in cands
        if (p.layout, p.signals_last) == (best.layout, best.signals_last)
        and p not in times
    ]
    if second:
        times.update(measure(Ls, L_out, n_signals, dtype, second))
    return min(times, key=times.__getitem__), times


def s2grid_work(Ls: Sequence[int], L_out: int, n_signals: int) -> float:
    """Signals × grid points × the largest ``(L+1)²`` (see :data:`MEASURE_MIN_WORK`)."""
    return n_signals * grid_points(Ls, L_out) * max((L + 1) ** 2 for L in [*Ls, L_out])


def measure_s2grid_plans(
    Ls: Sequence[int],
    L_out: int,
    n_signals: int,
    dtype,
    plans: Sequence[S2GridPlan],
    *,
    rounds: int = 7,
    min_rounds: int = 3,
    budget_s: float = 2.0,
    timer=time.perf_counter,
) -> dict[S2GridPlan, float]:
    """Seconds per call of the forward product (jitted, on random inputs of shape
    ``[n_signals, (L+1)²]`` per factor, ``dtype``) for each plan: each plan is
    compiled, then timed in interleaved rounds (every plan once per round, so
    load from other processes spreads over all of them); the fastest round counts
    (other processes only ever add time). After ``min_rounds`` rounds, timing stops
    once ``budget_s`` seconds are spent."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((n_signals, (L + 1) ** 2)).astype(dtype) for L in Ls]
    with jax.ensure_compile_time_eval():
        xs = [jax.device_put(x) for x in xs]
        fns = []
        for plan in plans:
            f = jax.jit(
                functools.partial(
                    _product_for_timing,
                    Ls=tuple(Ls),
                    L_out=L_out,
                    layout=plan.layout,
                    chunk=plan.chunk,
                    signals_last=plan.signals_last,
                )
            )
            jax.block_until_ready(f(*xs))  # compile (and warm)
            fns.append(f)
        samples: list[list[float]] = [[] for _ in plans]
        spent = 0.0
        for _ in range(rounds):
            for f, s in zip(fns, samples, strict=True):
                t0 = timer()
                jax.block_until_ready(f(*xs))
                s.append(timer() - t0)
                spent += s[-1]
            if spent > budget_s and len(samples[0]) >= min_rounds:
                break
    return {p: float(np.min(s)) for p, s in zip(plans, samples, strict=True)}


def _product_for_timing(*xs, Ls, L_out, layout, chunk, signals_last):
    return product_s2grid(
        list(xs), list(Ls), L_out, layout=layout, chunk=chunk, signals_last=signals_last
    )


@functools.cache
def _machine() -> str:
    """The CPU model, its cache sizes and JAX's version: measured plans are kept
    per machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    c = cache_sizes()
    return (
        f"{model} (L1d {c.l1d >> 10} KiB, L2 {c.l2 >> 10} KiB, "
        f"{os.cpu_count()} CPUs) jax {jax.__version__}"
    )


def _plan_key(Ls, L_out, n_signals, dtype) -> str:
    return (
        f"cpu | {_machine()} | Ls={','.join(map(str, Ls))} L_out={L_out} "
        f"n={n_signals} {np.dtype(dtype).name}"
    )


def _read_plan_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        warnings.warn(
            f"eqjax: ignoring the s2grid plan file {path} ({e}); plans are measured "
            "again and the file rewritten",
            RuntimeWarning,
            stacklevel=3,
        )
        return {}


def _stored_plan(entry) -> S2GridPlan | None:
    try:
        plan = S2GridPlan(
            str(entry["layout"]), int(entry["chunk"]), bool(entry["signals_last"])
        )
    except (KeyError, TypeError, ValueError):
        return None
    ok = plan.layout in LAYOUTS and plan.chunk >= 0
    return (
        plan if ok and not (plan.signals_last and plan.layout == "factored") else None
    )


def _write_plan_file(path: Path, key: str, entry: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_plan_file(path)
        data[key] = entry
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)  # atomic: readers see the old or the new file
    except OSError as e:
        _log.warning("could not store the s2grid plan in %s: %s", path, e)


def planned_s2grid(
    Ls: Sequence[int],
    L_out: int,
    n_signals: int,
    dtype,
    backend: str | None = None,
) -> S2GridPlan:
    """The layout and blocking ``method="s2grid"`` runs for factors of degrees
    ``Ls`` (``n_signals`` signals of ``dtype``) and output degree ``L_out``: on
    CPU in ``"measure"`` mode, for products of at least :data:`MEASURE_MIN_WORK`,
    the fastest of :func:`s2grid_candidates` as measured once per shape and
    machine (:func:`measure_s2grid_plans`); otherwise the rule,
    :func:`s2grid_plan`. Safe to call while tracing (the timing runs eagerly on
    concrete inputs of its own).

    Example:
      >>> planned_s2grid([2, 2], 2, 16, "float32")   # small: the rule
      S2GridPlan(layout='dense', chunk=0, signals_last=False)
    """
    itemsize = np.dtype(dtype).itemsize
    backend = backend or jax.default_backend()
    if (
        _Planning.mode == "rule"
        or backend != "cpu"
        or s2grid_work(Ls, L_out, n_signals) < MEASURE_MIN_WORK
    ):
        return s2grid_plan(Ls, L_out, n_signals, itemsize)
    key = _plan_key(Ls, L_out, n_signals, dtype)
    plan = _Planning.memo.get(key)
    if plan is not None:
        return plan
    path = _Planning.file
    if path is not None:
        plan = _stored_plan(_read_plan_file(path).get(key))
    if plan is None:
        t0 = time.perf_counter()
        plan, times = search_s2grid_plan(
            Ls, L_out, n_signals, dtype, measure=measure_s2grid_plans
        )
        _log.info(
            "s2grid plan for Ls=%s L_out=%d, %d signals: %s (%.1f s to measure "
            "%d candidates)",
            list(Ls),
            L_out,
            n_signals,
            plan.name,
            time.perf_counter() - t0,
            len(times),
        )
        if path is not None:
            entry = {
                "layout": plan.layout,
                "chunk": plan.chunk,
                "signals_last": plan.signals_last,
                "ms": {p.name: t * 1e3 for p, t in times.items()},
                "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            _write_plan_file(path, key, entry)
    _Planning.memo[key] = plan
    return plan
