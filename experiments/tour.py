"""The tour: every registered transform, its measured equivariance error in float32
and float64, and its jit-compiled time per call.

Each row costs two compilations by default: the transform jitted once per dtype,
the float64 one (only its error is reported) with XLA's backend optimisation off
(:data:`ERROR_ONLY_COMPILER_OPTIONS`: about a third less compile time, measured on
the 11 frames rows, ``--filter frames --workers 1``: 32 s -> 22 s), the float32 one
with the default options (its time per call is reported).
The same compiled function is then called on ``g·x`` for every sampled element
``g`` (elements sampled and acted on eagerly, whose one-primitive programs are
shared between rows), so no check program is compiled beside it; rows are spread
over ``--workers`` processes (compilation is single-threaded). ``--full``
measures with 16 elements through :func:`eqjax.testing.equivariance_error` (one
more program per dtype and row) and times with more repeats.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import eqjax as eq

from ._common import results_dir, time_call, write_table

DESCRIPTION = (
    "equivariance errors (float32/float64) and jit time of every registered transform"
)


# XLA options for a program whose outputs are checked but not timed.
ERROR_ONLY_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def _progress(it, total, enabled=True):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in the `experiments` extra
        return it
    return tqdm(it, total=total, disable=not enabled, desc="tour", unit="row")


def _elements(row, num: int, dtype):
    draw = row.sample if row.sample is not None else row.group.sample
    gs = draw(jax.random.key(1, impl="rbg"), (num,))
    gs = eq.testing.cast_floating(gs, dtype)
    return [jax.tree_util.tree_map(lambda v, i=i: v[i], gs) for i in range(num)]


def _rel_error(lhs, rhs) -> float:
    a = [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(lhs)]
    b = [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(rhs)]
    num = sum(float(np.sum((u - v) ** 2)) for u, v in zip(a, b, strict=True))
    den = sum(float(np.sum(v**2)) for v in b)
    err = np.sqrt(num) / max(np.sqrt(den), np.finfo(np.float64).tiny)
    return float("inf") if np.isnan(err) else float(err)


def quick_error(row, fn, x, gs) -> float:
    """Largest relative error over the elements ``gs``, calling the already
    compiled ``fn`` on ``g·x`` (same shapes as ``x``: no new compilation)."""
    y = fn(x)
    errs = []
    for g in gs:
        rhs = y if row.act_out is None else row.act_out(g, y)
        errs.append(_rel_error(fn(row.act_in(g, x)), rhs))
    return max(errs)


def full_error(row, x, num_samples: int) -> float:
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
    key = jax.random.key(0, impl="rbg")  # rbg: faster to compile than threefry
    out = {"transform": row.name, "group": row.group.name}
    for dtype, tag in ((jnp.float64, "f64"), (jnp.float32, "f32")):
        with jax.enable_x64(dtype == jnp.float64):
            x = row.make_input(key, dtype)
            timed = dtype == jnp.float32
            fn = jax.jit(
                row.fn, compiler_options=None if timed else ERROR_ONLY_COMPILER_OPTIONS
            )
            t0 = time.perf_counter()
            jax.block_until_ready(fn(x))
            compile_s = time.perf_counter() - t0
            if full:
                out[f"err_{tag}"] = full_error(row, x, num_samples)
            else:
                out[f"err_{tag}"] = quick_error(
                    row, fn, x, _elements(row, num_samples, dtype)
                )
            if timed:
                out["compile_ms"] = 1e3 * compile_s
                per_call = time_call(fn, x, repeats=repeats, min_time=0.01)
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
    rows = {r.name: r for r in eq.testing.registered()}
    return [
        measure(rows[n], num_samples=num_samples, repeats=repeats, full=full)
        for n in names
    ]


def _measure_all(names, workers, num_samples, repeats, full):
    """Measure rows in ``workers`` spawned processes (in this one for 1), in
    registry order, with a progress bar."""
    if workers == 1 or len(names) == 1:
        return [
            _measure_named([n], num_samples, repeats, full)[0]
            for n in _progress(names, len(names))
        ]
    # interleaved chunks: neighbouring rows (same area) compile alike
    chunks = [names[i::workers] for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")  # never fork a process running JAX
    by_name = {}
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [
            pool.submit(_measure_named, [n], num_samples, repeats, full)
            for chunk in chunks
            for n in chunk
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
    rows = [r for r in eq.testing.registered() if args.filter in r.name]
    if not rows:
        print(f"no registered transform matches --filter {args.filter!r}")
        return 2
    t0 = time.perf_counter()
    results = _measure_all(
        [r.name for r in rows], args.workers, num_samples, repeats, args.full
    )
    seconds = time.perf_counter() - t0
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
