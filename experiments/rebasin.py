"""Git Re-Basin on CPU: two MLPs from different seeds, aligned by weight matching.

Ainsworth, Hayase & Srinivasa (ICLR 2023): after weight matching, linear
interpolation between independently trained MLPs has (almost) no loss barrier,
the more so the wider the network; the straight-through estimator (STE) lowers it
further; MergeMany merges three or more models. Ito, Yamada & Kumagai (ICLR 2025):
matching reduces the L2 distance only a little (6–20%) while it aligns the
leading singular vectors of every layer.

For each width (two hidden ReLU layers, 64 → w → w → 10) two models train
full-batch with Adam from different seeds, each with
:func:`eqjax.training.fit` (``--devices``/``--checkpoint-dir``/``--resume``, one
checkpoint folder per model: ``w<width>_seed<s>``, ``merge_w<width>_seed<s>``);
the table gives the test loss and accuracy barriers (25 points of λ, vmapped)
naively, after weight matching and after the STE, the L2 reduction, and the
mean top-5 singular-vector alignment of the hidden and output kernels before and
after matching. Then three models are merged: plain averaging vs MergeMany. Data: scikit-learn's digits
(``--synthetic-digits``: the seeded stand-in of ``experiments/_weights_data.py``;
the table names the data it ran on).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import eqjax as eq
from eqjax import training as T

from ._common import results_dir, write_table
from ._weights_data import SYNTHETIC_HELP, digits, fit_classifier, metrics, mlp

DESCRIPTION = "Git Re-Basin: barriers before/after weight matching and STE, L2 vs alignment, merging"
NAME = "rebasin"
PAPER = (
    "paper (Ainsworth et al., ICLR 2023, MNIST MLP 512x3): loss barrier ~0 after "
    "weight matching, large naively, falling with width; STE at most as large as WM. "
    "Ito et al. (ICLR 2025): L2 distance falls only 6-20% while the top singular "
    "vectors align"
)
QUICK = dict(widths=[32, 64], steps=300, ste_steps=10, ste_max_width=32, merge_width=32)


def train(apply, state, data, args, mesh, name):
    """One model on the training set with :func:`eqjax.training.fit`: its
    trained state, checkpoints in ``<--checkpoint-dir>/<name>``."""
    r = fit_classifier(
        apply, state, data[0], data[1], steps=args.steps, name=name, mesh=mesh,
        fit_kw=T.fit_options(args, name), batch=args.batch,
        progress=not args.no_progress,
    )  # fmt: skip
    return r.params


def _alignment(spec, sa, sb, k=5):
    """Mean top-k singular-vector alignment over kernels with a permuted axis."""
    W = eq.weights
    a, b = W._spec._float_leaves(sa), W._spec._float_leaves(sb)
    vals = []
    for path, names in spec.axes.items():
        if not path.endswith("kernel") or all(n is None for n in names):
            continue
        wa, wb = np.asarray(a[path]), np.asarray(b[path])
        kk = min(k, *wa.shape)
        vals.append(float(np.mean(W.singular_vector_alignment(wa, wb, kk))))
    return float(np.mean(vals))


def run_width(width, data, args, key, mesh):
    from flax import nnx

    W = eq.weights
    xtr, ytr, xte, yte = (jnp.asarray(v) for v in data[:4])
    ma, mb = mlp(64, width, 10, args.seed + 1), mlp(64, width, 10, args.seed + 2)
    spec = W.permutation_spec(ma)
    graph, sa = nnx.split(ma)
    _, sb = nnx.split(mb)
    apply = lambda s, x: nnx.merge(graph, s)(x)  # noqa: E731
    sa = train(apply, sa, data, args, mesh, f"w{width}_seed{args.seed + 1}")
    sb = train(apply, sb, data, args, mesh, f"w{width}_seed{args.seed + 2}")
    lam = jnp.linspace(0.0, 1.0, 25)
    curve = jax.jit(
        lambda a, b: W.interpolation_curve(
            lambda s: metrics(apply(s, xte), yte), a, b, lam
        )
    )

    def barriers(a, b):
        c = curve(a, b)
        return (
            float(W.barrier(c["loss"], lam)),
            float(W.barrier(c["acc"], lam, higher_is_better=True)),
            float(c["acc"][0]),
            float(c["acc"][-1]),
        )

    naive = barriers(sa, sb)
    perm = W.weight_matching(key, spec, sa, sb)
    sbp = W.apply_permutation(spec, perm, sb)
    wm = barriers(sa, sbp)
    ste = (float("nan"), float("nan"))
    if width <= args.ste_max_width:
        loss = lambda s, batch: metrics(apply(s, batch[0]), batch[1])["loss"]  # noqa: E731
        perm_ste, _ = W.ste_matching(
            key,
            spec,
            sa,
            sb,
            loss,
            [(xtr, ytr)] * args.ste_steps,
            learning_rate=1e-3,
            init=perm,
        )
        ste = barriers(sa, W.apply_permutation(spec, perm_ste, sb))[:2]
    l2_red = 1 - W.l2_distance(sa, sbp) / W.l2_distance(sa, sb)
    return {
        "width": width,
        "acc a": naive[2],
        "acc b": naive[3],
        "naive loss barrier": naive[0],
        "WM loss barrier": wm[0],
        "STE loss barrier": ste[0],
        "naive acc barrier": naive[1],
        "WM acc barrier": wm[1],
        "STE acc barrier": ste[1],
        "L2 reduction": l2_red,
        "align before": _alignment(spec, sa, sb),
        "align after": _alignment(spec, sa, sbp),
    }


def merging(width, data, args, key, mesh, n_models=3):
    from flax import nnx

    W = eq.weights
    xtr, ytr, xte, yte = (jnp.asarray(v) for v in data[:4])
    seeds = [args.seed + 10 + i for i in range(n_models)]
    mods = [mlp(64, width, 10, s) for s in seeds]
    spec = W.permutation_spec(mods[0])
    graph = nnx.split(mods[0])[0]
    apply = lambda s, x: nnx.merge(graph, s)(x)  # noqa: E731
    states = [
        train(apply, nnx.split(m)[1], data, args, mesh, f"merge_w{width}_seed{s}")
        for m, s in zip(mods, seeds, strict=True)
    ]
    acc = jax.jit(lambda s: metrics(apply(s, xte), yte)["acc"])
    mean = jax.tree_util.tree_map(lambda *v: sum(v) / len(v), *states)
    merged, _ = W.merge_models(key, spec, states)
    return {
        "models": n_models,
        "width": width,
        "mean individual acc": float(np.mean([float(acc(s)) for s in states])),
        "plain average acc": float(acc(mean)),
        "MergeMany acc": float(acc(merged)),
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog=f"python -m experiments {NAME}", description=__doc__
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-test sizes ({QUICK}); flags given explicitly win",
    )
    p.add_argument("--results-dir", default=None)
    p.add_argument("--data-dir", default="../shared/data", help="unused")
    p.add_argument("--synthetic-digits", action="store_true", help=SYNTHETIC_HELP)
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--ste-steps", type=int, default=100)
    p.add_argument("--ste-max-width", type=int, default=512)
    p.add_argument("--merge-width", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--batch",
        type=int,
        default=0,
        help="global batch size; 0: full batch (the training set, less its "
        "remainder modulo the device count)",
    )
    p.add_argument("--no-progress", action="store_true")
    T.add_arguments(p)
    args = p.parse_args(argv)
    if args.quick:  # parse again: the quick sizes as defaults, explicit flags win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    mesh = T.setup(args)  # before any JAX computation
    out = Path(args.results_dir) if args.results_dir else None
    t0 = time.perf_counter()
    data = digits(args.seed, synthetic=args.synthetic_digits)
    key = jax.random.key(args.seed)
    rows = [run_width(w, data, args, key, mesh) for w in args.widths]
    merge = merging(args.merge_width, data, args, key, mesh)
    elapsed = time.perf_counter() - t0
    if jax.process_index() != 0:  # one process writes the tables
        return 0
    batch = (
        f"batch {args.batch}"
        if args.batch
        else f"full batch ({len(data[1]) - len(data[1]) % mesh.devices.size} samples)"
    )
    stem = "quick" if args.quick else "results"
    pre = (
        f"{PAPER}.\n\nData: {data[4]}; {args.steps} Adam steps (3e-3, {batch}) "
        f"per model with eqjax.training.fit on {mesh.devices.size} "
        f"{jax.default_backend()} device(s); STE {args.ste_steps} steps (widths <= "
        f"{args.ste_max_width}); {elapsed:.0f} s wall in all."
        + (" (--quick: smoke-test sizes)" if args.quick else "")
    )
    md = write_table(
        NAME, stem, list(rows[0]), [list(r.values()) for r in rows], pre, out
    )
    md2 = write_table(
        NAME, stem + "_merge", list(merge), [list(merge.values())], "", out
    )
    _plot(rows, (out or results_dir(NAME)) / f"{stem}.png")
    print(md)
    print(md2)
    print(f"ours beside the paper: {PAPER}")
    return 0


def _plot(rows, path):
    """Loss barriers against width (left), L2 reduction and alignment (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = [r["width"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for k, m in (("naive", "o"), ("WM", "s"), ("STE", "^")):
        a1.plot(w, [r[f"{k} loss barrier"] for r in rows], marker=m, label=k)
    a1.set_xscale("log", base=2)
    a1.set_xticks(w, [str(x) for x in w])
    a1.set_xlabel("width")
    a1.set_ylabel("test loss barrier")
    a1.legend()
    a2.plot(w, [r["L2 reduction"] for r in rows], marker="o", label="L2 reduction")
    a2.plot(w, [r["align before"] for r in rows], marker="s", label="align before")
    a2.plot(w, [r["align after"] for r in rows], marker="^", label="align after")
    a2.axhspan(0.06, 0.20, color="0.9", label="Ito et al.: L2 -6..20%")
    a2.set_xscale("log", base=2)
    a2.set_xticks(w, [str(x) for x in w])
    a2.set_xlabel("width")
    a2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
