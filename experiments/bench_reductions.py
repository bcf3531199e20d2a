"""Benchmark: aggregation time vs neighbourhood size for sum, LCM tree, GRU fold,
and what each hand-written differentiation rule of eqjax.reductions buys.

Ong & Veličković (LoG 2022) argue that a learnable commutative monoid reduced over
a balanced tree (O(log n) depth) is faster than a recurrent GRU aggregator (O(n)
depth) on parallel hardware. ``--part scaling`` times one forward+backward pass
(gradient w.r.t. the items and the parameters) of three aggregators of width 32:

* ``sum``: ``jax.ops.segment_sum`` (the cheap, non-learnable reference);
* ``lcm_tree``: :func:`eqjax.reductions.tree_reduce` with
  :func:`eqjax.reductions.symmetric_gru_monoid`;
* ``gru_fold``: :func:`eqjax.reductions.gru_fold`, a ``lax.scan`` over the items.

Two regimes: latency (one segment of n items) and throughput (64 segments of n
items). We fit ``time ∝ n^k`` on each curve and report the fold/tree ratios next to
the targets of the issue (latency: tree ≥ 2× faster at n = 1024 and ≥ 4× at
n = 4096; throughput: tree ≤ 2.2× the fold's time at 64 × 1024). Tables:
``timings``, ``ratios``, ``scaling`` (``.md``/``.csv``) and ``timings.png``.

``--part rules`` times the same forward+backward workloads traced once with each
differentiation rule and once with its plain definition (differentiated by JAX),
in interleaved rounds, and writes ``rules.md``/``rules.csv``: medians of each, and
the median and quartiles of the per-round ratio plain/rule. A rule stays in the
library only where its rows show a gain beyond that spread: the padding skip's
rule (rows ``skip_padding``, measured at commit 14887a5 with ``--part rules
--repeats 11``, dense masked and ragged padded workloads) did not, and was
deleted.

``--part options`` times what the options added for issue 12 cost on the same
workload with traced segment ids: the run-time over-full check
(``on_overflow="raise"``, the default), a padding ``mask`` and ``order="sorted"``,
against ``order="input", on_overflow="truncate"`` (``options.md``/``.csv``).

Run: ``python -m experiments bench_reductions [--part scaling|rules|options|all]``;
results under ``experiments/results/bench_reductions/``.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from eqjax.reductions import (
    gru_fold,
    init_gru_cell,
    symmetric_gru_monoid,
    tree_reduce,
)
from eqjax.reductions._switch import plain_definitions

from ._common import power_law_exponent, results_dir, time_call, write_table

DESCRIPTION = "time/aggregation vs n: segment_sum vs LCM tree vs GRU fold (fwd+bwd)"
WIDTH = 32


def make_fns(num_segments: int, n: int, width: int = WIDTH, names=None):
    """Forward+backward functions ``f(params, data) -> (loss, grads)``, jitted (or
    the plain losses for ``names``, traced by the caller)."""
    ids = jnp.repeat(jnp.arange(num_segments), n)

    def loss_sum(params, data):
        del params
        return jnp.sum(
            jax.ops.segment_sum(data, ids, num_segments, indices_are_sorted=True) ** 2
        )

    def loss_tree(params, data):
        m = symmetric_gru_monoid(*params)
        out = tree_reduce(
            m.op,
            data,
            ids,
            num_segments,
            identity=m.identity,
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

    losses = {"sum": loss_sum, "lcm_tree": loss_tree, "gru_fold": loss_fold}
    if names is not None:
        return {k: losses[k] for k in names}
    return {
        k: jax.jit(jax.value_and_grad(f, argnums=(0, 1))) for k, f in losses.items()
    }


def inputs(num_segments: int, n: int, width: int = WIDTH):
    k1, k2 = jax.random.split(jax.random.key(0))
    params = (init_gru_cell(k1, width), jnp.zeros((width,)))
    data = jnp.tanh(jax.random.normal(k2, (num_segments * n, width)))
    return params, data


def fit_largest_half(ns, ts) -> float:
    """Exponent of ``t ∝ n^k`` over the largest half of the sizes (at least two)."""
    xmin = sorted(ns)[-max(2, len(ns) // 2)]
    return power_law_exponent(ns, ts, xmin=xmin)


# ------------------------------------------------------- rule vs plain definition


def rule_workloads(quick: bool):
    """``(rule, label, loss(params, data), params, data)``: forward+backward
    workloads whose derivative goes through the rule (full segments, so every
    tree level is a whole level of pairs)."""
    sizes = [(1, 64), (8, 16)]
    if not quick:
        sizes = [(1, 64), (64, 16), (1, 1024), (1, 4096), (64, 256)]
    out = []
    for S, n in sizes:
        (loss,) = make_fns(S, n, names=("lcm_tree",)).values()
        params, data = inputs(S, n)
        out.append(("symmetric_gru", f"ragged {S} x {n} (full)", loss, params, data))
    return out


def bench_rules(rounds: int, jobs) -> list[list]:
    rows = []
    for rule, label, loss, params, data in jobs:
        grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        with_rule = grad.lower(params, data).compile()
        with plain_definitions(rule):
            plain = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            plain = plain.lower(params, data).compile()
        t_rule, t_plain = [], []
        for _ in range(rounds):  # interleaved: a slow spell hits both alike
            t_rule.append(time_call(with_rule, params, data, repeats=3, min_time=0.0))
            t_plain.append(time_call(plain, params, data, repeats=3, min_time=0.0))
        ratio = np.asarray(t_plain) / np.asarray(t_rule)
        q1, q2, q3 = np.percentile(ratio, [25, 50, 75])
        rows.append(
            [
                rule,
                label,
                float(np.median(t_rule)) * 1e3,
                float(np.median(t_plain)) * 1e3,
                float(q2),
                f"{q1:.3f}-{q3:.3f}",
            ]
        )
    return rows


# ------------------------------------------------- what the safety options cost

OPTIONS = [
    ("input", "truncate", False),  # the old behaviour: the reference
    ("input", "raise", False),  # default: over-full segments reported at run time
    ("input", "raise", True),  # with a padding mask (1 item in 8 masked)
    ("sorted", "raise", False),  # edge-order-free: a lexicographic sort first
]


def option_workloads(quick: bool):
    """``(label, S, n)``: full segments, ids traced (the run-time check is on)."""
    return [
        (f"ragged {S} x {n}", S, n)
        for S, n in ([(8, 16)] if quick else [(64, 16), (64, 64), (1, 1024)])
    ]


def bench_options(rounds: int, jobs) -> list[list]:
    """Forward+backward of the symmetrised-GRU tree with each (order,
    on_overflow, mask) option, segment ids passed as traced arguments."""
    rows = []
    for label, S, n in jobs:
        params, data = inputs(S, n)
        ids = jnp.repeat(jnp.arange(S), n)
        mask = jnp.arange(S * n) % 8 != 7
        fns = []
        for order, policy, masked in OPTIONS:

            def loss(params, data, ids, mask, order=order, policy=policy, S=S, n=n):
                m = symmetric_gru_monoid(*params)
                out = tree_reduce(
                    m.op,
                    data,
                    ids,
                    S,
                    identity=m.identity,
                    max_segment_size=n,
                    mask=mask,
                    order=order,
                    on_overflow=policy,
                )
                return jnp.sum(out**2)

            grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            args = (params, data, ids, mask if masked else None)
            fns.append((grad.lower(*args).compile(), args))
        times = [[] for _ in fns]
        for _ in range(rounds):  # interleaved
            for t, (f, args) in zip(times, fns, strict=True):
                t.append(time_call(f, *args, repeats=3, min_time=0.0))
        ref = np.asarray(times[0])
        for (order, policy, masked), t in zip(OPTIONS, times, strict=True):
            ratio = np.asarray(t) / ref
            rows.append(
                [
                    label,
                    order,
                    policy,
                    "1/8 masked" if masked else "none",
                    float(np.median(t)) * 1e3,
                    float(np.median(ratio)),
                ]
            )
    return rows


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench_reductions", description=DESCRIPTION)
    ap.add_argument("--quick", action="store_true", help="small sizes (tests)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="interleaved timing rounds"
    )
    ap.add_argument(
        "--part",
        choices=("scaling", "rules", "options", "all"),
        default="all",
        help="aggregators vs n, differentiation rules vs plain definitions, the "
        "cost of order/on_overflow/mask, or all",
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
    tag = "quick_" if args.quick else ""

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = lambda x, **k: x

    if args.part in ("scaling", "all"):
        run_scaling(regimes, rounds, dev, tag, tqdm)
    if args.part in ("rules", "all"):
        jobs = tqdm(rule_workloads(args.quick), desc="bench_reductions (rules)")
        rows = bench_rules(rounds, jobs)
        pre = (
            f"device: {dev}; width {WIDTH}; symmetrised-GRU monoid, forward+backward "
            "(value_and_grad w.r.t. params and items), traced with the rule and "
            "with its plain definition (eqjax.reductions._switch); medians over "
            f"{rounds} interleaved rounds (each the median of 3 calls); plain/rule "
            "is the median and interquartile range of the per-round ratios (> 1: "
            "the rule is faster). Shared machine: ratios within the range of "
            "1 are noise."
        )
        print(
            write_table(
                "bench_reductions",
                tag + "rules",
                [
                    "rule",
                    "workload",
                    "ms rule",
                    "ms plain",
                    "plain/rule",
                    "plain/rule IQR",
                ],
                rows,
                preamble=pre,
            )
        )
    if args.part in ("options", "all"):
        jobs = tqdm(option_workloads(args.quick), desc="bench_reductions (options)")
        rows = bench_options(rounds, jobs)
        pre = (
            f"device: {dev}; width {WIDTH}; symmetrised-GRU tree, forward+backward "
            "(value_and_grad w.r.t. params and items), segment ids traced (so "
            "on_overflow='raise' checks at run time); medians over "
            f"{rounds} interleaved rounds (each the median of 3 calls); x ref is "
            "the median per-round ratio to order='input', on_overflow='truncate' "
            "(no check: the behaviour before issue 12)."
        )
        print(
            write_table(
                "bench_reductions",
                tag + "options",
                ["workload", "order", "on_overflow", "mask", "ms", "x ref"],
                rows,
                preamble=pre,
            )
        )
    return 0


def run_scaling(regimes, rounds: int, dev: str, tag: str, tqdm) -> None:
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
        [regime, name, fit_largest_half(*zip(*curves[(regime, name)], strict=True))]
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
