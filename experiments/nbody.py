"""Charged-particle N-body: FA-GNN vs EGNN vs GNN (Puny et al., ICLR 2022, Table 3).

The data set is generated here with the recipe of Satorras et al. (EGNN, ICML 2021),
itself the 3D version of Kipf et al.'s charged-particle simulation (NRI, ICML 2018):
5 particles with charges ±1, Gaussian initial positions (std 1), initial speeds
0.5, Coulomb forces ``q_i q_j (x_i - x_j)/|x_i - x_j|³`` (norm clipped at 100),
time step 0.001, no box (so that E(3) is a symmetry). The input is the state after
3000 steps (positions, velocities, charges), the target the positions 1000 steps
later. Paper numbers (test MSE): FA-GNN 0.0057, EGNN 0.0071, GNN 0.0107 (3000
training samples, 10 000 epochs on a GPU). Also reported: the error on the test
set moved by random E(3) elements (rotations, reflections, translations).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import eqjax as eq
from eqjax import training as T

from ._common import results_dir, write_table

DESCRIPTION = "N-body (charged, 5 particles): FA-GNN vs EGNN vs GNN, test MSE"
PAPER = {"FA-GNN": 0.0057, "EGNN": 0.0071, "GNN": 0.0107}


# ----------------------------------------------------------------------------- data
def simulate(num: int, seed: int, **kwargs):
    """``num`` trajectories of :func:`eqjax.datasets.charged_nbody`; returns
    (x0, v0, q, x_target) as float32 arrays."""
    d = eq.datasets.charged_nbody(num, seed, **kwargs)
    return d.positions, d.velocities, d.charges, d.targets


# --------------------------------------------------------------------------- models
def _mlp_init(key, sizes, last_scale=1.0):
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        scale = last_scale if i == len(sizes) - 2 else 1.0
        W = jax.random.normal(k, (a, b)) * np.sqrt(1.0 / a) * scale
        params.append((W, jnp.zeros(b)))
    return params


def _mlp(params, z):
    for i, (W, b) in enumerate(params):
        z = z @ W + jnp.broadcast_to(b, z.shape[:-1] + b.shape)
        if i < len(params) - 1:
            z = jax.nn.silu(z)
    return z


def _pairs(h):
    n = h.shape[0]
    hi = jnp.broadcast_to(h[:, None, :], (n, n, h.shape[-1]))
    hj = jnp.broadcast_to(h[None, :, :], (n, n, h.shape[-1]))
    return hi, hj


def gnn_init(key, hidden=64, layers=4):
    ks = jax.random.split(key, 2 * layers + 2)
    return {
        "embed": _mlp_init(ks[0], [7, hidden]),
        "edge": [
            _mlp_init(ks[1 + 2 * i], [2 * hidden + 1, hidden, hidden])
            for i in range(layers)
        ],
        "node": [
            _mlp_init(ks[2 + 2 * i], [2 * hidden, hidden, hidden])
            for i in range(layers)
        ],
        "out": _mlp_init(ks[-1], [hidden, hidden, 3], last_scale=0.1),
    }


def gnn_apply(params, xv, q):
    """A plain message-passing GNN on the complete graph; predicts positions."""
    x, v = xv
    n = x.shape[0]
    h = _mlp(params["embed"], jnp.concatenate([x, v, q[:, None]], -1))
    qq = (q[:, None] * q[None, :])[..., None]
    off = (1.0 - jnp.eye(n, dtype=x.dtype))[..., None]
    for pe, pn in zip(params["edge"], params["node"], strict=True):
        hi, hj = _pairs(h)
        m = _mlp(pe, jnp.concatenate([hi, hj, qq], -1)) * off
        h = h + _mlp(pn, jnp.concatenate([h, m.sum(1) / (n - 1)], -1))
    return x + _mlp(params["out"], h)


def egnn_init(key, hidden=64, layers=4):
    ks = jax.random.split(key, 4 * layers + 1)
    lay = []
    for i in range(layers):
        k = ks[1 + 4 * i : 5 + 4 * i]
        lay.append(
            {
                "edge": _mlp_init(k[0], [2 * hidden + 2, hidden, hidden]),
                "coord": _mlp_init(k[1], [hidden, hidden, 1], last_scale=0.01),
                "vel": _mlp_init(k[2], [hidden, hidden, 1]),
                "node": _mlp_init(k[3], [2 * hidden, hidden, hidden]),
            }
        )
    return {"embed": _mlp_init(ks[0], [1, hidden]), "layers": lay}


def egnn_apply(params, xv, q):
    """EGNN with velocities (Satorras et al., ICML 2021, Eq. 7)."""
    x, v = xv
    n = x.shape[0]
    h = _mlp(params["embed"], jnp.linalg.norm(v, axis=-1, keepdims=True))
    qq = (q[:, None] * q[None, :])[..., None]
    off = (1.0 - jnp.eye(n, dtype=x.dtype))[..., None]
    for p in params["layers"]:
        d = x[:, None, :] - x[None, :, :]
        r2 = jnp.sum(d * d, -1, keepdims=True)
        hi, hj = _pairs(h)
        m = _mlp(p["edge"], jnp.concatenate([hi, hj, r2, qq], -1)) * off
        shift = jnp.sum(d * _mlp(p["coord"], m), axis=1) / (n - 1)
        v = _mlp(p["vel"], h) * v + shift
        x = x + v
        h = h + _mlp(p["node"], jnp.concatenate([h, m.sum(1) / (n - 1)], -1))
    return x


E3_POINTS = eq.frames.cloud_action(eq.groups.E3)
O3_POINTS = eq.frames.cloud_action(eq.groups.O3)


def act_state(g, xv):
    """E(3) on (positions, velocities): velocities ignore the translation."""
    x, v = xv
    return E3_POINTS(g, x), O3_POINTS(g.R, v)


# Puny et al.'s 8-element frame: exact on the generic clouds the simulator makes
# (eq.frames.pca_frame, exact on every cloud, evaluates the network O(n²) times).
_PCA = eq.frames.plain_pca_frame("E3")
fa_gnn_apply_single = eq.frames.frame_average(
    lambda xv, q, params: gnn_apply(params, xv, q),
    lambda xv: _PCA(xv[0]),
    act_in=act_state,
    act_out=E3_POINTS,
)


def fa_gnn_apply(params, xv, q):
    """FA-GNN: the GNN above, frame-averaged over the 8-element E(3) PCA frame."""
    return fa_gnn_apply_single(xv, q, params)


MODELS = {
    "FA-GNN": (gnn_init, fa_gnn_apply),
    "EGNN": (egnn_init, egnn_apply),
    "GNN": (gnn_init, gnn_apply),
}


# ------------------------------------------------------------------------- training
def _batched(apply):
    return jax.vmap(apply, in_axes=(None, (0, 0), 0))


def _per_example_mse(apply):
    f = _batched(apply)

    def per_example(p, b):
        xb, vb, qb, yb = b
        return {"mse": jnp.mean((f(p, (xb, vb), qb) - yb) ** 2, axis=(1, 2))}

    return per_example


# one function object per model, so that its evaluation program compiles once
_PER_EXAMPLE = {name: _per_example_mse(apply) for name, (_, apply) in MODELS.items()}


def train(
    name,
    data,
    *,
    epochs,
    batch,
    lr,
    seed,
    mesh=None,
    patience=None,
    checkpoint_dir=None,
    checkpoint_every=0,
    keep=3,
    resume=False,
    results_dir=None,
    progress=True,
    on_step=None,
):
    """Train one model with :func:`eqjax.training.fit` (data-parallel over
    ``mesh``, checkpointed under ``checkpoint_dir/<name>``); the parameters of the
    best validation MSE are evaluated on the test sets."""
    init, apply = MODELS[name]
    f = _batched(apply)
    mesh = mesh or T.data_mesh()
    params = init(jax.random.key(seed))
    opt = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adamw(lr, weight_decay=1e-12)
    )
    loader = T.ArrayLoader(data["train"], batch, seed=seed)
    spe = loader.steps_per_epoch
    if spe == 0:
        raise ValueError(f"batch {batch} exceeds the {len(data['train'][0])} samples")

    def loss(p, b, key):
        xb, vb, qb, yb = b
        return jnp.mean((f(p, (xb, vb), qb) - yb) ** 2)

    def evaluator(split):
        return T.Evaluator(_PER_EXAMPLE[name], data[split], 500, mesh)

    r = T.fit(
        loss,
        params,
        opt,
        loader,
        steps=epochs * spe,
        key=seed,
        mesh=mesh,
        eval_fn=evaluator("val"),
        eval_every=max(1, epochs // 10) * spe,
        early_stopping=T.EarlyStopping("mse", patience=patience),
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir) / name,
        checkpoint_every=checkpoint_every,
        keep=keep,
        resume=resume,
        results_dir=results_dir,
        name=name,
        progress=progress,
        on_step=on_step,
    )
    assert r.best is not None
    return {
        "val": r.best["mse"],
        "test": evaluator("test")(r.params)["mse"],
        "test_moved": evaluator("test_moved")(r.params)["mse"],
        "seconds": r.seconds,
        "steps": r.step,
        "steps_per_second": r.steps_per_second,
        "compiles": r.compiles,
        "resumed_from": r.resumed_from,
        "params": r.params,
        "log": r.log,
    }


def _move(split, seed):
    """Apply one random E(3) element (reflections included) per test sample."""
    x, v, q, y = split
    g = eq.groups.E3.sample(jax.random.key(seed), (len(x),), translation_scale=2.0)
    R, t = np.asarray(g.R), np.asarray(g.t)
    mv = lambda p: np.einsum("bij,bnj->bni", R, p) + t[:, None, :]
    return (
        mv(x).astype(np.float32),
        np.einsum("bij,bnj->bni", R, v).astype(np.float32),
        q,
        mv(y).astype(np.float32),
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m experiments nbody", description=__doc__
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes (tests)")
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--val", type=int, default=2000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=100, help="global batch size")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="FA-GNN,EGNN,GNN")
    ap.add_argument(
        "--patience",
        type=int,
        default=None,
        help="early stopping: evaluations (10 per run) without a better val MSE",
    )
    ap.add_argument(
        "--data-dir", default="../shared/data", help="unused: data is generated"
    )
    ap.add_argument(
        "--results-dir", default=None, help="default experiments/results/nbody/"
    )
    ap.add_argument("--no-progress", action="store_true")
    T.add_arguments(ap)
    args = ap.parse_args(argv)
    mesh = T.setup(args)  # before any JAX computation
    if args.quick:
        args.train, args.val, args.test, args.epochs, args.batch = 64, 32, 32, 2, 32
    out_dir = Path(args.results_dir) if args.results_dir else results_dir("nbody")
    main_process = jax.process_index() == 0
    t0 = time.perf_counter()
    sims = simulate(args.train + args.val + args.test, args.seed)
    a, b = args.train, args.train + args.val
    data = {
        "train": tuple(s[:a] for s in sims),
        "val": tuple(s[a:b] for s in sims),
        "test": tuple(s[b:] for s in sims),
    }
    data["test_moved"] = _move(data["test"], args.seed + 1)
    if main_process:
        print(
            f"simulated {len(sims[0])} trajectories in {time.perf_counter() - t0:.1f}s;"
            f" {mesh.devices.size} device(s) over {jax.process_count()} process(es)"
        )
    rows = []
    for name in args.models.split(","):
        r = train(
            name,
            data,
            epochs=args.epochs,
            batch=args.batch,
            lr=args.lr,
            seed=args.seed,
            mesh=mesh,
            patience=args.patience,
            checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every,
            keep=args.keep,
            resume=args.resume,
            results_dir=out_dir,
            progress=not args.no_progress,
        )
        rows.append(
            [
                name,
                r["test"],
                r["test_moved"],
                PAPER[name],
                r["val"],
                r["steps"],
                round(r["steps_per_second"], 2),
                round(r["seconds"], 1),
            ]
        )
    pre = (
        f"N-body charged particles (generated, EGNN recipe). Train/val/test = "
        f"{args.train}/{args.val}/{args.test}, {args.epochs} epochs, "
        f"global batch {args.batch} over {mesh.devices.size} "
        f"{jax.default_backend()} device(s) in {jax.process_count()} process(es), "
        f"Adam lr {args.lr}. The paper trains for 10 000 epochs on a GPU; this is "
        f"a much shorter run, so absolute MSEs are higher than the "
        f"paper's and the ranking at this budget need not match the paper's; the "
        f"moved-test-set column is the symmetry check. "
        f"'moved' = test inputs and targets transformed by random E(3) elements "
        f"(rotations, reflections, translations with std 2). Test MSEs use the "
        f"parameters of the best validation MSE; 'steps/s' excludes the first "
        f"(compiling) step; 'train s' is this invocation's wall time (a resumed run "
        f"counts only its own steps)."
        + (
            " (--quick: tiny smoke-test sizes, numbers meaningless)"
            if args.quick
            else ""
        )
    )
    header = [
        "model",
        "test MSE",
        "test MSE (moved)",
        "paper test MSE",
        "best val MSE",
        "steps",
        "steps/s",
        "train s",
    ]
    if main_process:
        md = write_table(
            "nbody",
            "quick" if args.quick else "results",
            header,
            rows,
            preamble=pre,
            out_dir=out_dir,
        )
        print(md)
    return 0
