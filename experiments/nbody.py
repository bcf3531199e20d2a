"""Charged-particle N-body: PONITA, EGNN, FA-GNN and a GNN on the library layers.

The data set is generated here with the recipe of Satorras et al. (EGNN, ICML 2021),
itself the 3D version of Kipf et al.'s charged-particle simulation (NRI, ICML 2018):
5 particles with charges ±1, Gaussian initial positions (std 1), initial speeds
0.5, Coulomb forces ``q_i q_j (x_i - x_j)/|x_i - x_j|³`` (norm clipped at 100),
time step 0.001, no box (so that E(3) is a symmetry). The input is the state after
3000 steps (positions, velocities, charges), the target the positions 1000 steps
later. Models (all predict the positions; trained on the same data, steps and
optimiser):

- ``PONITA-FB``: :class:`eqjax.nn.PONITA` in the fiber-bundle mode (Bekkers et al.,
  "Fast, Expressive SE(n) Equivariant Networks through Weight-Sharing in
  Position-Orientation Space", ICLR 2024): a shared grid of orientations per
  particle, the charge as the scalar input, the velocity lifted as ``v·o``, the
  displacement read out as ``Σ_o f_o o / O``; complete graph with self-loops.
- ``PONITA-PC``: the same network in PONITA's point-cloud mode, on the R³ cloud
  lifted along its edges to R³×S² (:func:`eqjax.geometric.edge_lift`,
  :func:`eqjax.geometric.lift_to_edges`): one orientation per (particle,
  neighbour) pair, outputs averaged back per particle.
- ``EGNN``: :class:`eqjax.nn.EGNN` with the velocity update (Satorras et al., Eq. 7).
- ``FA-GNN``: the plain GNN below, frame-averaged over the 8-element E(3) PCA frame
  (Puny et al., "Frame Averaging for Invariant and Equivariant Network Design",
  ICLR 2022, Table 3) with :mod:`eqjax.frames`.
- ``GNN``: a plain message-passing GNN on raw coordinates (not equivariant).

Paper numbers (test MSE, 3000 training samples, thousands of epochs on a GPU):
PONITA 0.0043 (Bekkers et al.; fiber bundle, the only PONITA N-body number they
give), EGNN 0.0070 (PONITA paper) / 0.0071 (EGNN and FA papers), FA-GNN 0.0057,
GNN 0.0107 (Satorras et al.). Also reported: the error on the test set moved by
random E(3) elements (rotations, reflections, translations).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import optax
from flax import nnx

import eqjax as eq
from eqjax import training as T

from ._common import results_dir, write_table

DESCRIPTION = (
    "N-body (charged, 5 particles): PONITA (fiber bundle, point cloud), EGNN, "
    "FA-GNN, GNN; test MSE"
)
PAPER = {
    "FA-GNN": "0.0057",
    "EGNN": "0.0070-0.0071",
    "PONITA-PC": "n/a",
    "PONITA-FB": "0.0043",
    "GNN": "0.0107",
}


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


# Library models (Flax NNX) as pure (init, apply) pairs on one 5-body system: the
# module is built once per process, split into its graph definition and
# parameters, and merged again inside every traced call.
_N = 5
_S, _R = np.nonzero(1 - np.eye(_N))  # complete graph without self-loops, 20 edges
_S_LOOP, _R_LOOP = np.nonzero(np.ones((_N, _N)))  # with self-loops, 25 edges
_LIFT = eq.geometric.edge_lift(_S, _R, _N)  # 20 lifted nodes, 400 lifted edges


def _graph(x, senders, receivers, edges=None, **nodes):
    return jraph.GraphsTuple(
        nodes={"positions": x, **nodes},
        edges=edges,
        senders=jnp.asarray(senders, jnp.int32),
        receivers=jnp.asarray(receivers, jnp.int32),
        globals=None,
        n_node=jnp.asarray([x.shape[0]]),
        n_edge=jnp.asarray([len(senders)]),
    )


class _NNXModel:
    """``init(key) -> params`` and ``apply(params, (x, v), q) -> x'`` around an NNX
    module built by ``make(rngs)`` and called by ``call(module, x, v, q)``."""

    def __init__(self, make, call):
        self.make, self.call, self._static = make, call, None

    def init(self, key):
        graphdef, params, rest = nnx.split(
            self.make(nnx.Rngs(params=key)), nnx.Param, ...
        )
        self._static = (graphdef, rest)
        return params

    def apply(self, params, xv, q):
        if self._static is None:
            raise RuntimeError("call init first")
        graphdef, rest = self._static
        x, v = xv
        return self.call(nnx.merge(graphdef, params, rest), x, v, q)


# EGNN: the paper's 64 channels, 4 layers. PONITA: the paper's degree-3 polynomial
# attribute embedding, but 32 channels, 4 blocks and O = 8 orientations (paper:
# 128, 5, O = 20), sized for the CPU budget (its cost grows as E·O·C).
CONFIG = {
    "hidden": 64,
    "layers": 4,
    "ponita_hidden": 32,
    "ponita_layers": 4,
    "num_ori": 8,
    "degree": 3,
}


def _egnn_make(rngs):
    """EGNN with velocities (Satorras et al., ICML 2021, Eq. 7), the paper's N-body
    model: ``h⁰ = |v|``, edge attribute ``q_i q_j``, mean coordinate aggregation."""
    c = CONFIG
    return eq.nn.EGNN(
        0,
        c["hidden"],
        1,
        num_layers=c["layers"],
        velocity=True,
        edge_features=1,
        rngs=rngs,
    )


def _egnn_call(model, x, v, q):
    qq = (q[_S] * q[_R])[:, None]
    g = _graph(x, _S, _R, edges={"attr": qq}, velocities=v)
    return model(g).positions


def _ponita_make(mode):
    def make(rngs):
        c = CONFIG
        return eq.nn.PONITA(
            1,  # the charge
            c["ponita_hidden"],
            c["ponita_layers"],
            scalar_outputs=0,
            vector_inputs=1,  # the velocity, lifted as v·o
            vector_outputs=1,  # the displacement
            mode=mode,
            num_ori=c["num_ori"],
            degree=c["degree"],
            readout="node",
            layer_scale=None,
            rngs=rngs,
        )

    return make


def _ponita_fb_call(model, x, v, q):
    """Fiber bundle: every particle carries the shared grid of ``num_ori``
    orientations; complete graph with self-loops (as the paper's N-body code)."""
    g = _graph(x, _S_LOOP, _R_LOOP, features=q[:, None], vectors=v[:, None, :])
    _, vec = model(g)
    return x + vec[:, 0, :]


def _ponita_pc_call(model, x, v, q):
    """Point-cloud mode: the R³ cloud lifted along its 20 edges to R³×S²
    (:func:`eqjax.geometric.lift_to_edges`), outputs averaged back per particle."""
    g = _graph(x, _S, _R, features=q[:, None], vectors=v[:, None, :])
    _, vec = model(eq.geometric.lift_to_edges(g, _LIFT))
    return x + eq.geometric.lower_from_edges(vec[:, 0, :], _LIFT)


_EGNN = _NNXModel(_egnn_make, _egnn_call)
_PONITA_PC = _NNXModel(_ponita_make("point_cloud"), _ponita_pc_call)
_PONITA_FB = _NNXModel(_ponita_make("fiber_bundle"), _ponita_fb_call)


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
    "EGNN": (_EGNN.init, _EGNN.apply),
    "PONITA-PC": (_PONITA_PC.init, _PONITA_PC.apply),
    "PONITA-FB": (_PONITA_FB.init, _PONITA_FB.apply),
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
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument(
        "--num-ori", type=int, default=CONFIG["num_ori"], help="PONITA-FB grid size O"
    )
    ap.add_argument("--ponita-hidden", type=int, default=CONFIG["ponita_hidden"])
    ap.add_argument("--ponita-layers", type=int, default=CONFIG["ponita_layers"])
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
        args.num_ori, args.ponita_hidden, args.ponita_layers = 6, 8, 2
    names = args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {list(MODELS)}")
    CONFIG.update(
        num_ori=args.num_ori,
        ponita_hidden=args.ponita_hidden,
        ponita_layers=args.ponita_layers,
    )
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
    for name in names:
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
        f"Adam lr {args.lr} (clipped at global norm 1), the same for every model. "
        f"Sizes: EGNN {CONFIG['hidden']} channels x {CONFIG['layers']} layers; "
        f"PONITA {CONFIG['ponita_hidden']} channels x {CONFIG['ponita_layers']} "
        f"ConvNeXt blocks, polynomial degree {CONFIG['degree']}, PONITA-FB on a "
        f"Fibonacci grid of O = {CONFIG['num_ori']} orientations, PONITA-PC on the "
        f"20 edge-lifted nodes (400 lifted edges) per system (paper: 128 channels, "
        f"5 blocks, O = 20); GNN/FA-GNN 64 channels x 4 layers. Compute budget: "
        f"this whole invocation took {{wall}} s of wall time on a shared 2-core "
        f"CPU machine (data simulation included). "
        f"The papers train for thousands of epochs on a GPU; this is "
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
    pre = pre.replace("{wall}", f"{time.perf_counter() - t0:.0f}")
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
