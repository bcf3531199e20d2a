"""Peak memory and time per training step of SPEN (k = 1, 2) vs a global 2-IGN,
against the graph size n.

Mitton & Murray-Smith ("Subgraph Permutation Equivariant Networks",
arXiv:2111.11840) claim that running 2-IGN layers on ego-network sub-graphs
uses far less memory than a global 2-IGN (Maron et al., ICLR 2019), whose pair
features grow as n². Here: one training step (loss, gradient, SGD update) of
each model, jit-compiled; memory is the compiled program's own figure
(``jax.jit(step).lower(...).compile().memory_analysis()``: temporaries +
arguments + outputs, not a guess), time the median wall time of a step on this
machine's CPU. Graphs: random 3- and 6-regular graphs and Erdős–Rényi graphs at
mean degree 4, n = 32 … 1024 (one graph per step). Exponents are least-squares
slopes of log(memory) and log(time) against log(n) for n >= 128
(``experiments._common.power_law_exponent``).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import eqjax as eq

from ._common import markdown_table, power_law_exponent, results_dir, time_call

DESCRIPTION = "SPEN vs global 2-IGN: compiled peak memory and step time vs n"
PAPER_CLAIM = "SPEN uses far less GPU memory than global 2-IGN (paper, Fig. memory)"
HIDDEN = 16


def _family(name, n, seed):
    if name == "3-regular":
        return eq.datasets.random_regular_graph(n, 3, seed)
    if name == "6-regular":
        return eq.datasets.random_regular_graph(n, 6, seed)
    return eq.datasets.erdos_renyi_graph(n, 4.0, seed)


def _memory(compiled) -> float:
    m = compiled.memory_analysis()
    if m is None:
        return float("nan")
    return float(
        m.temp_size_in_bytes
        + m.argument_size_in_bytes
        + m.output_size_in_bytes
        - getattr(m, "alias_size_in_bytes", 0)
    )


def _sgd(loss):
    def step(params, *data):
        val, g = jax.value_and_grad(loss)(params, *data)
        return jax.tree_util.tree_map(lambda p, q: p - 1e-3 * q, params, g), val

    return step


def measure(model: str, graph: eq.datasets.Graph, *, repeats: int):
    """``(bytes, seconds per step, compile seconds)`` for one model on one graph."""
    key = jax.random.key(0)
    gt, _, _ = eq.datasets.pad_graphs([graph])
    gt = jax.tree_util.tree_map(jnp.asarray, gt)
    if model.startswith("SPEN"):
        hops = int(model[-1])
        subs = eq.graphs.graph_subgraphs(gt, hops, bucket_sizes=None)
        subs = jax.tree_util.tree_map(jnp.asarray, subs)
        params = eq.graphs.spen_init(
            key, 1, HIDDEN, 2, num_layers=2, num_buckets=len(subs.buckets)
        )

        def loss(p, gt, subs):
            return jnp.sum(eq.graphs.spen(p, gt, subs)[0] ** 2)

        data = (gt, subs)
    else:
        d = eq.datasets.dense_batch([graph])
        x = jnp.asarray(d.ign_input())
        mask = jnp.asarray(d.mask)
        params = eq.graphs.ign_model_init(key, x.shape[-1], HIDDEN, 2, num_layers=2)

        def loss(p, x, mask):
            return jnp.sum(eq.graphs.ign_model(p, x, mask) ** 2)

        data = (x, mask)
    step = jax.jit(_sgd(loss))
    t0 = time.perf_counter()
    compiled = step.lower(params, *data).compile()
    t_compile = time.perf_counter() - t0
    mem = _memory(compiled)
    sec = time_call(compiled, params, *data, repeats=repeats, min_time=0.0)
    return mem, sec, t_compile


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m experiments spen_memory", description=__doc__
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--data-dir", default="../shared/data", help="unused (graphs are generated)"
    )
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--sizes", default="32,64,128,256,512,1024")
    ap.add_argument("--families", default="3-regular,6-regular,ER(deg 4)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    families = args.families.split(",")
    models = ["SPEN k=1", "SPEN k=2", "2-IGN"]
    if args.quick:
        sizes, families, args.repeats = [32, 64, 128], ["3-regular"], 1
    out = Path(args.results_dir) if args.results_dir else results_dir("spen_memory")
    out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "results"
    rows, curves = [], {}
    jobs = [(f, m, n) for f in families for m in models for n in sizes]
    for fam, model, n in tqdm(jobs, desc="spen_memory"):
        mem, sec, tc = measure(model, _family(fam, n, seed=n), repeats=args.repeats)
        curves.setdefault((fam, model), []).append((n, mem, sec))
        rows.append(
            [fam, model, n, round(mem / 2**20, 3), round(1e3 * sec, 2), round(tc, 1)]
        )
    fits = []
    for (fam, model), pts in curves.items():
        ns, ms, ts = (np.asarray(v) for v in zip(*pts, strict=True))
        xmin = 128 if ns.max() > 128 else None
        fits.append(
            [
                fam,
                model,
                round(power_law_exponent(ns, ms, xmin=xmin), 2),
                round(power_law_exponent(ns, ts, xmin=xmin), 2),
            ]
        )
    ratio_rows = []
    for fam in families:
        n_top = max(sizes)
        m = {mo: dict((n, mm) for n, mm, _ in curves[(fam, mo)]) for mo in models}
        ratio_rows.append(
            [
                fam,
                n_top,
                round(m["2-IGN"][n_top] / m["SPEN k=1"][n_top], 1),
                round(m["2-IGN"][n_top] / m["SPEN k=2"][n_top], 1),
            ]
        )
    pre = (
        "One SGD training step (2 layers, hidden 16, one graph) per model. Memory = "
        "compiled program's memory_analysis() (temp + arguments + outputs - aliased), "
        f"CPU ({jax.devices()[0].platform}); time = median wall time of "
        f"{args.repeats}+ steps on a shared 2-core machine. Paper's claim: {PAPER_CLAIM}."
    )
    text = (
        pre
        + "\n\n"
        + markdown_table(
            ["graphs", "model", "n", "memory MiB", "ms / step", "compile s"], rows
        )
        + "\n\nFitted exponents (n >= 128 when available):\n\n"
        + markdown_table(["graphs", "model", "memory exponent", "time exponent"], fits)
        + f"\n\nMemory ratio 2-IGN / SPEN at n = {max(sizes)}:\n\n"
        + markdown_table(
            ["graphs", "n", "2-IGN / SPEN k=1", "2-IGN / SPEN k=2"], ratio_rows
        )
        + "\n"
    )
    (out / f"{stem}.md").write_text(text)
    with open(out / f"{stem}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["graphs", "model", "n", "memory MiB", "ms / step", "compile s"])
        w.writerows(rows)
    with open(out / f"{stem}_fits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["graphs", "model", "memory exponent", "time exponent"])
        w.writerows(fits)
    _plot(curves, out / f"{stem}.png")
    print(text)
    return 0


def _plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (fam, model), pts in curves.items():
        ns, ms, ts = zip(*pts, strict=True)
        style = "-" if model.startswith("SPEN") else "--"
        axes[0].loglog(
            ns, np.asarray(ms) / 2**20, style, marker="o", label=f"{model}, {fam}"
        )
        axes[1].loglog(
            ns, 1e3 * np.asarray(ts), style, marker="o", label=f"{model}, {fam}"
        )
    axes[0].set(xlabel="n (nodes)", ylabel="compiled memory (MiB)", title="peak memory")
    axes[1].set(
        xlabel="n (nodes)", ylabel="ms / training step", title="time per step (CPU)"
    )
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
