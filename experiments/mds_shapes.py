"""Primitive-shape classification under rotation, reflection, translation and
scaling: a PointNet on raw points, on MDS representations, and frame-averaged.

TinvNN (Zhang et al., arXiv 2112.12345): a modified MDS of the pairwise distances
gives transformation-invariant, distance-preserving point representations that
any backbone can consume. Locally generated point clouds (64 points) of five
shapes (sphere, cube, cylinder, torus, cone surfaces, random proportions, small
noise). Models train on clouds in canonical pose and unit scale and are tested
both in canonical pose and after a random E(3) element (reflections included),
a translation (std 2) and a scale in [0.5, 2]. Paper claim: the MDS
representation makes the backbone invariant, so the accuracy on moved inputs
equals that on canonical inputs (the paper's data sets differ: no number to put
beside ours other than that equality). The frame-averaged model averages over
:func:`eqjax.frames.plain_pca_frame` (8 sign frames; the exact
:func:`eqjax.frames.pca_frame` costs 8632 backbone calls per 64-point cloud).
Every model trains with :func:`eqjax.training.fit` for a budget of seconds of
training steps (``--budget-s``; ``0`` with ``--max-steps`` for a step count).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import eqjax as eq
from eqjax import training as T

from ._common import markdown_table

DESCRIPTION = "shape classification: PointNet on raw points vs MDS vs frame averaging"
NAME = "mds_shapes"
SHAPES = ("sphere", "cube", "cylinder", "torus", "cone")
QUICK = dict(num_per_class=8, points=16, budget_s=1.0, max_steps=3, batch=8)
UNCAPPED = 10**9  # --max-steps' default: the budget decides


def make_shapes(num_per_class: int, n: int, seed: int):
    """``[5·num, n, 3]`` clouds in canonical pose (centred, RMS radius ~1) and labels."""
    rng = np.random.default_rng(seed)
    clouds, labels = [], []
    for c, shape in enumerate(SHAPES):
        for _ in range(num_per_class):
            u, v = rng.uniform(size=n), rng.uniform(size=n)
            a = rng.uniform(0.7, 1.3)
            if shape == "sphere":
                p = rng.normal(size=(n, 3))
                p /= np.linalg.norm(p, axis=-1, keepdims=True)
            elif shape == "cube":
                p = rng.uniform(-1, 1, size=(n, 3))
                ax = rng.integers(0, 3, n)
                p[np.arange(n), ax] = np.sign(rng.uniform(-1, 1, n))
            elif shape == "cylinder":
                t = 2 * np.pi * u
                p = np.stack([np.cos(t), np.sin(t), a * (2 * v - 1)], -1)
            elif shape == "torus":
                t, s = 2 * np.pi * u, 2 * np.pi * v
                r = 0.35 * a
                p = np.stack(
                    [
                        (1 + r * np.cos(s)) * np.cos(t),
                        (1 + r * np.cos(s)) * np.sin(t),
                        r * np.sin(s),
                    ],
                    -1,
                )
            else:  # cone
                t, h = 2 * np.pi * u, np.sqrt(v)
                p = np.stack([h * np.cos(t), h * np.sin(t), a * (1 - h)], -1)
            p = p + 0.02 * rng.normal(size=p.shape)
            p -= p.mean(0)
            p /= np.sqrt(np.mean(np.sum(p**2, -1)))
            clouds.append(p)
            labels.append(c)
    return np.asarray(clouds, np.float32), np.asarray(labels, np.int32)


def move(clouds, seed):
    """Random O(3) element, translation (std 2) and scale in [0.5, 2] per cloud."""
    rng = np.random.default_rng(seed)
    g = eq.groups.E3.sample(jax.random.key(seed), (len(clouds),), translation_scale=2.0)
    s = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=(len(clouds), 1, 1)))
    R, t = np.asarray(g.R), np.asarray(g.t)
    return (s * np.einsum("bij,bnj->bni", R, clouds) + t[:, None]).astype(np.float32)


def pointnet_init(key, din, hidden=64, classes=5):
    ks = jax.random.split(key, 4)
    lin = lambda k, a, b: (jax.random.normal(k, (a, b)) / np.sqrt(a), jnp.zeros(b))
    return [
        lin(ks[0], din, hidden),
        lin(ks[1], hidden, hidden),
        lin(ks[2], hidden, hidden),
        lin(ks[3], hidden, classes),
    ]


def pointnet(params, x):
    """Per-point MLP, max pool over points, MLP: ``[n, d] -> [classes]``."""
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = params
    h = jax.nn.relu(x @ w1 + b1[None])
    h = jax.nn.relu(h @ w2 + b2[None])
    h = jnp.max(h, axis=0)
    return jax.nn.relu(h @ w3 + b3) @ w4 + b4


def _mds(x):
    return eq.geometric.mds_representation(x, 3, scale_invariant=True)


# The plain PCA frame: 2^3 = 8 sign frames, the model of the first table. Since
# then eq.frames.pca_frame became exact on degenerate spectra by blending in the
# point-pair frame: 8 + 2n² + 6n + 48 = 8632 backbone calls per 64-point cloud,
# about 0.3 GB of activations per cloud here (a batch of 32 needs ~9 GB forward);
# the clouds here are noisy, so their spectra are not exactly degenerate.
_FA = eq.frames.frame_average(
    lambda x, params: pointnet(params, x),
    eq.frames.plain_pca_frame(eq.groups.E3),
    act_in=eq.groups.cloud_action(eq.groups.E3),
)


def _scale_normalise(x):
    xc = x - x.mean(0, keepdims=True)
    return xc / jnp.sqrt(jnp.mean(jnp.sum(xc**2, -1)))


MODELS = {
    "PointNet (raw points)": lambda params, x: pointnet(params, x),
    "PointNet on MDS (TinvNN)": lambda params, x: pointnet(params, _mds(x)),
    "frame-averaged PointNet (plain PCA, 8 frames, E(3)) + scale norm.": lambda params, x: (
        _FA(_scale_normalise(x), params)
    ),
}
# run names: progress bars, metrics files, ``<--checkpoint-dir>/<run name>``
RUN_NAMES = dict(zip(MODELS, ("pointnet", "mds", "frame_average"), strict=True))


def _accuracy_fn(apply):
    f = jax.vmap(apply, in_axes=(None, 0))

    def per_example(params, b):
        return {
            "acc": (jnp.argmax(f(params, b["x"]), -1) == b["y"]).astype(jnp.float32)
        }

    return per_example


# one function object per model: the canonical and moved test sets share a program
_ACCURACY = {name: _accuracy_fn(apply) for name, apply in MODELS.items()}


def train(name, xs, ys, *, budget_s, max_steps, batch, lr, seed, mesh=None,
          progress=True, **fit_kw):  # fmt: skip
    """Train one model with :func:`eqjax.training.fit` (cross-entropy, Adam) for
    ``budget_s`` seconds of training steps (``None``: no budget) or
    ``max_steps`` steps, whichever comes first; ``fit_kw`` goes to ``fit``
    (checkpoints: :func:`eqjax.training.fit_options`)."""
    f = jax.vmap(MODELS[name], in_axes=(None, 0))

    def loss(params, b, key):
        logits = f(params, b["x"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, b["y"]).mean()

    return T.fit(
        loss,
        pointnet_init(jax.random.key(seed), 3),
        optax.adam(lr),
        T.ArrayLoader({"x": xs, "y": ys}, batch, seed=seed),
        steps=max_steps,
        budget_s=budget_s,
        key=seed,
        mesh=mesh,
        name=RUN_NAMES[name],
        progress=progress,
        **fit_kw,
    )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog=f"python -m experiments {NAME}", description=__doc__
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-test sizes ({QUICK}); flags given explicitly win",
    )
    p.add_argument(
        "--data-dir", default="../shared/data", help="unused: data is generated"
    )
    p.add_argument("--results-dir", default=None)
    p.add_argument("--num-per-class", type=int, default=200)
    p.add_argument("--points", type=int, default=64)
    p.add_argument(
        "--budget-s",
        type=float,
        default=60.0,
        help="seconds of training steps per model (compilation, evaluation and "
        "checkpoints excluded); 0: no budget, --max-steps only (reproducible)",
    )
    p.add_argument("--max-steps", type=int, default=UNCAPPED)
    p.add_argument("--batch", type=int, default=32, help="global batch size")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--models",
        default=",".join(RUN_NAMES.values()),
        help="comma-separated run names (default: all)",
    )
    p.add_argument("--no-progress", action="store_true")
    T.add_arguments(p)
    args = p.parse_args(argv)
    if args.quick:  # parse again: the quick sizes as defaults, explicit flags win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    if args.budget_s < 0:
        raise SystemExit(f"--budget-s must be >= 0, got {args.budget_s}")
    by_run = {v: k for k, v in RUN_NAMES.items()}
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in by_run]
    if unknown or not models:
        raise SystemExit(
            f"unknown models {unknown or models}; choose from {list(by_run)}"
        )
    mesh = T.setup(args)  # before any JAX computation
    out = (
        Path(args.results_dir)
        if args.results_dir
        else Path(__file__).parent / "results" / NAME
    )
    out.mkdir(parents=True, exist_ok=True)
    xs, ys = make_shapes(args.num_per_class, args.points, args.seed)
    xt, yt = make_shapes(max(args.num_per_class // 2, 2), args.points, args.seed + 1)
    xt_moved = move(xt, args.seed + 2)

    rows = []
    for name in (by_run[m] for m in models):
        r = train(
            name, xs, ys, budget_s=args.budget_s or None, max_steps=args.max_steps,
            batch=args.batch, lr=args.lr, seed=args.seed, mesh=mesh,
            progress=not args.no_progress, **T.fit_options(args, RUN_NAMES[name]),
        )  # fmt: skip
        acc = [
            round(T.Evaluator(_ACCURACY[name], {"x": x, "y": yt}, 256, mesh)(
                r.params)["acc"], 4)
            for x in (xt, xt_moved)
        ]  # fmt: skip
        rows.append([name, *acc, r.step, round(r.train_seconds, 1)])
    header = ["model", "test acc. (canonical)", "test acc. (moved)", "steps", "train s"]
    pre = (
        f"{len(SHAPES)} shapes x {args.num_per_class} training clouds of {args.points} "
        f"points in canonical pose; test clouds canonical and moved (random O(3), "
        f"translation std 2, scale in [0.5, 2]); "
        + (
            f"{args.budget_s:g} s of training steps per model (compilation and "
            "evaluation excluded"
            + (
                f"; at most {args.max_steps} steps)"
                if args.max_steps < UNCAPPED
                else ")"
            )
            if args.budget_s
            else f"{args.max_steps} steps per model"
        )
        + f" with eqjax.training.fit on {mesh.devices.size} {jax.default_backend()} "
        f"device(s), batch {args.batch} (epoch shuffles), Adam {args.lr}. Paper "
        "(TinvNN): MDS inputs make the backbone invariant: moved accuracy = canonical "
        "accuracy." + (" (--quick: smoke-test sizes)" if args.quick else "")
    )
    md = pre + "\n\n" + markdown_table(header, rows) + "\n"
    if jax.process_index() != 0:  # one process writes the tables
        return 0
    stem = "quick" if args.quick else "results"
    (out / f"{stem}.md").write_text(md)
    with open(out / f"{stem}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    _plot(rows, out / f"{stem}.png")
    print(md)
    return 0


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r[1] for r in rows], 0.4, label="canonical")
    ax.bar(x + 0.2, [r[2] for r in rows], 0.4, label="moved")
    ax.set_xticks(x, [r[0].split(" (")[0] for r in rows], fontsize=7)
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
