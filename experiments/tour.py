"""The tour: every registered transform, its measured equivariance error in float32
and float64, and its jit-compiled time per call.

Each row costs two compilations by default: the transform jitted once per dtype,
the float64 one (only its error is reported) with XLA's backend optimisation off
(:data:`ERROR_ONLY_COMPILER_OPTIONS`: about a third less compile time, measured on
the 11 frames rows, ``--filter frames --workers 1``: 32 s -> 22 s), the float32 one
with the default options (its time per call is reported).
The same compiled functions are then called on ``g·x`` for every sampled element
``g`` (elements sampled and acted on eagerly, in float64 only: the float32 call
takes the float64 input and ``g·x`` rounded to float32, and ``g`` acts on its
output in float64, so the float32 column is ``fn``'s own float32 error against
the exact action), so no check program is compiled beside them; rows are spread
over ``--workers`` processes (compilation is single-threaded). ``--full``
measures with 16 elements through :func:`eqjax.testing.equivariance_error` (one
more program per dtype and row) and times with more repeats.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import time

import numpy as np

# jax, eqjax and ._common (which imports jax) are imported inside the functions:
# the main process spawns its workers first and imports them while they start


def results_dir(name: str):
    """``experiments/results/<name>/`` (see ``experiments._common``)."""
    from ._common import results_dir as _results_dir

    return _results_dir(name)


DESCRIPTION = (
    "equivariance errors (float32/float64) and jit time of every registered transform"
)


# XLA options for a program whose outputs are checked but not timed.
ERROR_ONLY_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
# The timed float32 program: XLA's default optimisation level (3), given
# explicitly because the workers default to level 0 (TOUR_XLA_FLAG).
TIMED_COMPILER_OPTIONS = {"xla_backend_optimization_level": 3}
TOUR_XLA_FLAG = "--xla_backend_optimization_level=0"
"""Appended to the workers' ``XLA_FLAGS`` (unless the user set a level): the
eager operations that build inputs, sample elements and act on them compile
their many small programs faster unoptimised; only the timed program is
optimised (``TIMED_COMPILER_OPTIONS``)."""


def _progress(it, total, enabled=True):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in the `experiments` extra
        return it
    return tqdm(it, total=total, disable=not enabled, desc="tour", unit="row")


def _elements(row, num: int, dtype):
    import jax

    import eqjax as eq

    draw = row.sample if row.sample is not None else row.group.sample
    gs = draw(jax.random.key(1, impl="rbg"), (num,))
    gs = eq.testing.cast_floating(gs, dtype)
    return [jax.tree_util.tree_map(lambda v, i=i: v[i], gs) for i in range(num)]


def _rel_error(lhs, rhs) -> float:
    import jax

    a = [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(lhs)]
    b = [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(rhs)]
    num = sum(float(np.sum((u - v) ** 2)) for u, v in zip(a, b, strict=True))
    den = sum(float(np.sum(v**2)) for v in b)
    err = np.sqrt(num) / max(np.sqrt(den), np.finfo(np.float64).tiny)
    return float("inf") if np.isnan(err) else float(err)


def _to_float32(tree):
    """Floating leaves to float32, integer leaves to JAX's default width (a tree
    built under ``jax.enable_x64`` holds int64 indices)."""
    import jax
    import jax.numpy as jnp

    def one(v):
        if not hasattr(v, "dtype"):
            return v
        if jnp.issubdtype(v.dtype, jnp.floating):
            return jnp.asarray(v, jnp.float32)
        if jnp.issubdtype(v.dtype, jnp.integer):
            return jnp.asarray(v, jax.dtypes.canonicalize_dtype(v.dtype))
        return v

    return jax.tree_util.tree_map(one, tree)


def _to_float64(tree):
    import jax.numpy as jnp

    import eqjax as eq

    return eq.testing.cast_floating(tree, jnp.float64)


def quick_errors(row, fn64, fn32, x64, x32, gs) -> tuple[float, float]:
    """Largest relative errors over the elements ``gs`` (float64 elements) of the
    float64 and the float32 compiled ``fn``, each called on ``g·x`` (same shapes
    as ``x``: no new compilation).

    The group acts in float64 only: ``g·x`` is computed once and rounded to
    float32 for the float32 call, and ``g`` acts on the float32 output in float64,
    so the float32 column measures ``fn``'s own float32 error against the exact
    action (the shared test checks also run the actions in float32)."""
    import jax

    y64 = fn64(x64)
    with jax.enable_x64(False):
        y32 = fn32(x32)  # x32: x64 rounded (measure builds it once)
    e64, e32 = [], []
    for g in gs:
        gx = row.act_in(g, x64)
        with jax.enable_x64(False):
            lhs32 = fn32(_to_float32(gx))
        lhs64 = fn64(gx)
        if row.act_out is None:
            rhs64, rhs32 = y64, y32
        else:
            rhs64 = row.act_out(g, y64)
            rhs32 = row.act_out(g, _to_float64(y32))
        e64.append(_rel_error(lhs64, rhs64))
        e32.append(_rel_error(lhs32, rhs32))
    return max(e64), max(e32)


def full_error(row, x, num_samples: int) -> float:
    import jax

    import eqjax as eq

    return float(
        eq.testing.equivariance_error(
            jax.jit(row.fn),
            row.group,
            x,
            act_in=row.act_in,
            act_out=row.act_out,
            key=jax.random.key(1, impl="rbg"),
            num_samples=num_samples,
            sample=row.sample,
        )
    )


def measure(row, *, num_samples: int, repeats: int, full: bool) -> dict:
    import jax
    import jax.numpy as jnp

    from ._common import time_call

    key = jax.random.key(0, impl="rbg")  # rbg: faster to compile than threefry
    out = {"transform": row.name, "group": row.group.name}
    with jax.enable_x64(True):
        x64 = row.make_input(key, jnp.float64)
        fn64 = jax.jit(row.fn, compiler_options=ERROR_ONLY_COMPILER_OPTIONS)
        jax.block_until_ready(fn64(x64))
    with jax.enable_x64(False):
        x32 = row.make_input(key, jnp.float32) if full else _to_float32(x64)
        fn32 = jax.jit(row.fn, compiler_options=TIMED_COMPILER_OPTIONS)
        t0 = time.perf_counter()
        jax.block_until_ready(fn32(x32))
        out["compile_ms"] = 1e3 * (time.perf_counter() - t0)
        per_call = time_call(fn32, x32, repeats=repeats, min_time=0.01)
    if full:
        with jax.enable_x64(True):
            out["err_f64"] = full_error(row, x64, num_samples)
        with jax.enable_x64(False):
            out["err_f32"] = full_error(row, x32, num_samples)
    else:
        with jax.enable_x64(True):
            gs = _elements(row, num_samples, jnp.float64)
            out["err_f64"], out["err_f32"] = quick_errors(row, fn64, fn32, x64, x32, gs)
    ok = out["err_f64"] < row.tol64 and out["err_f32"] < row.tol32
    out.update(
        tol_f32=row.tol32,
        tol_f64=row.tol64,
        ok="yes" if ok else "NO",
        us_per_call=1e6 * per_call,
    )
    order = ["transform", "group", "err_f32", "err_f64", "tol_f32", "tol_f64", "ok"]
    return {k: out[k] for k in order + ["compile_ms", "us_per_call"]}


def _measure_named(names, num_samples, repeats, full):
    """Worker: measure the rows with these names (looked up in the registry)."""
    import eqjax as eq

    rows = {r.name: r for r in eq.testing.registered()}
    return [
        measure(rows[n], num_samples=num_samples, repeats=repeats, full=full)
        for n in names
    ]


@contextlib.contextmanager
def _worker_xla_flags():
    """``XLA_FLAGS`` plus :data:`TOUR_XLA_FLAG` while the workers are spawned
    (they inherit it), restored afterwards; a level the user set is kept."""
    old = os.environ.get("XLA_FLAGS")
    if old is None or "xla_backend_optimization_level" not in old:
        os.environ["XLA_FLAGS"] = f"{old or ''} {TOUR_XLA_FLAG}".strip()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = old


def _names(filter_: str) -> list[str]:
    """The registered transforms whose name contains ``filter_``."""
    import eqjax as eq

    return [r.name for r in eq.testing.registered() if filter_ in r.name]


@contextlib.contextmanager
def _pool(workers: int):
    """``workers`` spawned processes (``None`` for 1: rows run in this one)."""
    if workers == 1:
        yield None
        return
    ctx = multiprocessing.get_context("spawn")  # never fork a process running JAX
    with _worker_xla_flags(), cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        yield pool


def _measure_all(pool, names, num_samples, repeats, full):
    """Measure rows in the ``pool``'s processes (in this one without a pool), in
    registry order, with a progress bar."""
    if pool is None:
        return [
            _measure_named([n], num_samples, repeats, full)[0]
            for n in _progress(names, len(names))
        ]
    by_name = {}
    futures = [
        pool.submit(_measure_named, [n], num_samples, repeats, full) for n in names
    ]
    for fut in _progress(cf.as_completed(futures), len(futures)):
        res = fut.result()[0]
        by_name[res["transform"]] = res
    return [by_name[n] for n in names]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments tour", description=DESCRIPTION
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="16 elements through eq.testing.equivariance_error, 20 timing repeats",
    )
    parser.add_argument(
        "--quick", action="store_true", help="(the default; kept for old commands)"
    )
    parser.add_argument(
        "--filter", default="", help="only transforms whose name contains this"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="processes measuring rows in parallel (default: cores, at most 4)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    num_samples, repeats = (16, 20) if args.full else (4, 3)
    t0 = time.perf_counter()
    with _pool(args.workers) as pool:
        # the workers start (and import eqjax) while this process imports it too
        warm = (
            [pool.submit(_names, args.filter) for _ in range(args.workers)]
            if pool
            else []
        )
        import jax

        from ._common import write_table

        names = _names(args.filter)
        if not names:
            print(f"no registered transform matches --filter {args.filter!r}")
            return 2
        for fut in warm:
            fut.result()
        results = _measure_all(pool, names, num_samples, repeats, args.full)
    seconds = time.perf_counter() - t0
    rows = names
    header = list(results[0].keys())
    table = [[res[h] for h in header] for res in results]
    command = "python -m experiments tour" + (" --full" if args.full else "")
    preamble = (
        f"# eqjax tour\n\nMeasured with `{command}` on "
        f"{jax.devices()[0].device_kind} (jax {jax.__version__}), {len(rows)} "
        f"transforms in {seconds:.0f} s. Errors: largest relative error "
        f"‖f(g·x) − g·f(x)‖/‖g·f(x)‖ over {num_samples} sampled elements "
        "(reflections included where the group has them); compile: first float32 "
        "call; time: median of jit-compiled float32 calls on one input."
    )
    stem = "tour_full" if args.full else "tour"
    if args.filter:
        stem = "tour_filtered"  # partial tables never replace the committed ones
    md = write_table("tour", stem, header, table, preamble)
    print(md)
    print(
        f"{len(rows)} transforms in {seconds:.0f} s; written to {results_dir('tour')}"
    )
    return 0 if all(r["ok"] == "yes" for r in results) else 1
