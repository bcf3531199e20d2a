"""Benchmark: aggregation time vs neighbourhood size for sum, LCM tree, GRU fold.

Ong & Veličković (LoG 2022) argue that a learnable commutative monoid reduced over
a balanced tree (O(log n) depth) is faster than a recurrent GRU aggregator (O(n)
depth) on parallel hardware. We time one forward+backward pass (gradient w.r.t.
the items and the parameters) of three aggregators of width 32:

* ``sum``: ``jax.ops.segment_sum`` (the cheap, non-learnable reference);
* ``lcm_tree``: :func:`eqjax.reductions.tree_reduce` with the symmetrised GRU cell
  (each operand multiplied once by the concatenated input/hidden weights, both
  directions in one elementwise pass, levels paired by reshaping, the padding skip
  under a ``lax.cond`` that full levels bypass);
* ``gru_fold``: :func:`eqjax.reductions.gru_fold`, a ``lax.scan`` over the items
  (input projections precomputed in one matmul, the usual fast RNN layout).

Two regimes: latency (one segment of n items) and throughput (64 segments of n
items). We fit ``time ∝ n^k`` on each curve and report the fold/tree ratios next to
the targets of the issue (latency: tree ≥ 2× faster at n = 1024 and ≥ 4× at
n = 4096; throughput: tree ≤ 2.2× the fold's time at 64 × 1024).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from eqjax.reductions import gru_fold, init_gru_cell, symmetric_gru_op, tree_reduce

from ._common import results_dir, time_call, write_table

DESCRIPTION = "time/aggregation vs n: segment_sum vs LCM tree vs GRU fold (fwd+bwd)"
WIDTH = 32


def make_fns(num_segments: int, n: int, width: int = WIDTH):
    """Jitted forward+backward functions ``f(params, data) -> (loss, grads)``."""
    ids = jnp.repeat(jnp.arange(num_segments), n)

    def loss_sum(params, data):
        del params
        return jnp.sum(
            jax.ops.segment_sum(data, ids, num_segments, indices_are_sorted=True) ** 2
        )

    def loss_tree(params, data):
        p, e = params
        out = tree_reduce(
            symmetric_gru_op(p),
            data,
            ids,
            num_segments,
            identity=e,
            max_segment_size=n,
            indices_are_sorted=True,
        )
        return jnp.sum(out**2)

    def loss_fold(params, data):
        p, e = params
        out = gru_fold(
            p,
            data,
            ids,
            num_segments,
            max_segment_size=n,
            initial=e,
            indices_are_sorted=True,
        )
        return jnp.sum(out**2)

    wrap = lambda f: jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    return {
        "sum": wrap(loss_sum),
        "lcm_tree": wrap(loss_tree),
        "gru_fold": wrap(loss_fold),
    }


def inputs(num_segments: int, n: int, width: int = WIDTH):
    k1, k2 = jax.random.split(jax.random.key(0))
    params = (init_gru_cell(k1, width), jnp.zeros((width,)))
    data = jnp.tanh(jax.random.normal(k2, (num_segments * n, width)))
    return params, data


def fit_exponent(ns, ts) -> float:
    """Slope of log t vs log n over the largest half of the sizes."""
    ns, ts = np.asarray(ns, float), np.asarray(ts, float)
    k = max(2, len(ns) // 2)
    return float(np.polyfit(np.log(ns[-k:]), np.log(ts[-k:]), 1)[0])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench_reductions", description=DESCRIPTION)
    ap.add_argument("--quick", action="store_true", help="small sizes (tests)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="interleaved timing rounds"
    )
    args = ap.parse_args(argv)

    if args.quick:
        regimes = {"latency": (1, [16, 64, 256]), "throughput": (8, [16, 64])}
        rounds = args.repeats or 3
    else:
        regimes = {
            "latency": (1, [16, 64, 256, 1024, 4096]),
            "throughput": (64, [16, 64, 256, 1024]),
        }
        rounds = args.repeats or 15
    device = jax.devices()[0]
    dev = f"{device.platform}:{getattr(device, 'device_kind', '')}".rstrip(":")

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = lambda x, **k: x

    rows, curves = [], {}
    jobs = [(r, s, n) for r, (s, ns) in regimes.items() for n in ns]
    for regime, S, n in tqdm(jobs, desc="bench_reductions"):
        params, data = inputs(S, n)
        fns = make_fns(S, n)
        # interleaved rounds: each round times every method (median of 3 calls),
        # so a slow spell of this shared machine hits the three alike
        per_round = {name: [] for name in fns}
        for _ in range(rounds):
            for name, f in fns.items():
                per_round[name].append(
                    time_call(f, params, data, repeats=3, min_time=0.0)
                )
        for name, ts in per_round.items():
            t = float(np.median(ts))
            curves.setdefault((regime, name), []).append((n, t))
            rows.append([regime, S, n, name, t * 1e3])

    # ratios and exponents
    summary = []
    for regime, (S, ns) in regimes.items():
        tr = dict(curves[(regime, "lcm_tree")])
        fo = dict(curves[(regime, "gru_fold")])
        su = dict(curves[(regime, "sum")])
        for n in ns:
            summary.append([regime, S, n, fo[n] / tr[n], tr[n] / su[n]])
    expo = [
        [regime, name, fit_exponent(*zip(*curves[(regime, name)], strict=True))]
        for regime in regimes
        for name in ("sum", "lcm_tree", "gru_fold")
    ]

    pre = (
        f"device: {dev}; width {WIDTH}; forward+backward (value_and_grad w.r.t. "
        f"params and items); median over {rounds} interleaved rounds (each the median of 3 calls).\nTargets (issue 5): "
        "latency fold/tree >= 2 at n=1024 and >= 4 at n=4096; throughput "
        "(64 segments) tree/fold <= 2.2 at n=1024, i.e. fold/tree >= 0.45."
    )
    name = "bench_reductions"
    tag = "quick_" if args.quick else ""
    md = write_table(
        name,
        tag + "timings",
        ["regime", "segments", "n", "method", "ms"],
        rows,
        preamble=pre,
    )
    md2 = write_table(
        name,
        tag + "ratios",
        ["regime", "segments", "n", "fold/tree", "tree/sum"],
        summary,
        preamble=pre,
    )
    md3 = write_table(
        name, tag + "scaling", ["regime", "method", "exponent k (t ~ n^k)"], expo
    )
    print(md, md2, md3, sep="\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(regimes), figsize=(5 * len(regimes), 4))
    for ax, (regime, (S, _)) in zip(np.atleast_1d(axes), regimes.items(), strict=True):
        for m in ("sum", "lcm_tree", "gru_fold"):
            n, t = zip(*curves[(regime, m)], strict=True)
            ax.loglog(n, np.asarray(t) * 1e3, "o-", label=m)
        ax.set_xlabel("items per segment n")
        ax.set_ylabel("ms (fwd+bwd)")
        ax.set_title(f"{regime}: {S} segment(s), width {WIDTH}, {dev}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(results_dir(name) / f"{tag}timings.png", dpi=100)
    plt.close(fig)
    return 0
