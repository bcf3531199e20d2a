"""The tour: every registered transform, its measured equivariance error in float32
and float64, and its jit-compiled time per call."""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

import eqjax as eq

from ._common import results_dir, time_call, write_table

DESCRIPTION = (
    "equivariance errors (float32/float64) and jit time of every registered transform"
)


def _progress(it, total, enabled=True):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in the `experiments` extra
        return it
    return tqdm(it, total=total, disable=not enabled, desc="tour", leave=False)


def measure(row, *, num_samples: int, repeats: int) -> dict:
    key = jax.random.key(0)

    def err(x):
        return float(
            eq.testing.equivariance_error(
                row.fn,
                row.group,
                x,
                act_in=row.act_in,
                act_out=row.act_out,
                key=jax.random.key(1),
                num_samples=num_samples,
                sample=row.sample,
            )
        )

    with jax.enable_x64(True):
        e64 = err(row.make_input(key, jnp.float64))
    x32 = row.make_input(key, jnp.float32)
    e32 = err(x32)
    fn = jax.jit(row.fn)
    t0 = time.perf_counter()
    jax.block_until_ready(fn(x32))
    compile_s = time.perf_counter() - t0
    per_call = time_call(fn, x32, repeats=repeats)
    ok = e64 < row.tol64 and e32 < row.tol32
    return {
        "transform": row.name,
        "group": row.group.name,
        "err_f32": e32,
        "err_f64": e64,
        "tol_f32": row.tol32,
        "tol_f64": row.tol64,
        "pass": "yes" if ok else "NO",
        "compile_ms": 1e3 * compile_s,
        "us_per_call": 1e6 * per_call,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments tour", description=DESCRIPTION
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer samples and repeats"
    )
    parser.add_argument(
        "--filter", default="", help="only transforms whose name contains this"
    )
    args = parser.parse_args(argv)
    num_samples, repeats = (4, 3) if args.quick else (16, 20)
    rows = [r for r in eq.testing.registered() if args.filter in r.name]
    results = [
        measure(r, num_samples=num_samples, repeats=repeats)
        for r in _progress(rows, len(rows))
    ]
    header = list(results[0].keys())
    table = [[res[h] for h in header] for res in results]
    preamble = (
        f"# eqjax tour\n\nMeasured with `python -m experiments tour"
        f"{' --quick' if args.quick else ''}` on {jax.devices()[0].device_kind} "
        f"(jax {jax.__version__}). Errors: largest relative error "
        f"‖f(g·x) − g·f(x)‖/‖g·f(x)‖ over {num_samples} sampled elements "
        "(reflections included where the group has them); time: median of "
        "jit-compiled float32 calls on one input."
    )
    md = write_table(
        "tour", "tour_quick" if args.quick else "tour", header, table, preamble
    )
    print(md)
    print(f"written to {results_dir('tour')}")
    return 0 if all(r["pass"] == "yes" for r in results) else 1
