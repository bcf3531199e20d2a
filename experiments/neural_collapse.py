"""Neural collapse: the unconstrained-features model against its closed forms,
and the NC metrics along the training of a real MLP.

Dang, Nguyen, Tran, Tran & Ho (ICML 2023): in deep linear unconstrained-features
models, balanced data collapse to an orthogonal frame without a bias and a
simplex ETF with one; imbalanced data to a general orthogonal frame whose
lengths the closed form gives, and classes below a size threshold collapse to
zero (minority collapse). The paper's numbers are the theory: our trained UFMs
(full-batch gradient descent in float64, ``eq.weights.train_ufm``) are compared
with ``eq.weights.imbalanced_geometry``, NC2 against its target. Then an MLP
(64 → 128 → 128 → 10, scikit-learn's digits; ``--synthetic-digits``: the seeded
stand-in) trains full-batch with AdamW through :func:`eqjax.training.fit`
(``--devices``, ``--checkpoint-dir``/``--resume``: the folder ``mlp``), and
NC1, NC2 (ETF) and NC3 of its penultimate features are its evaluation every
``--eval-every`` steps. The UFMs are not fit runs: their "features" are free
parameters and there is no data to feed or shard (``train_ufm`` is the
library's solver, one compiled ``lax.scan``).
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
from ._weights_data import SYNTHETIC_HELP, digits, fit_classifier

DESCRIPTION = "neural collapse: UFM against the closed forms (balanced/bias/imbalanced/minority), NC along MLP training"
NAME = "neural_collapse"
PAPER = (
    "paper (Dang et al., ICML 2023): theory, exact at the global minimiser: NC2 = 0 "
    "against OF (no bias) / ETF (bias) / the closed-form GOF (imbalanced); minority "
    "collapse s_k = 0 below the threshold"
)
QUICK = dict(steps=200, eval_every=100)


def ufm_cases(quick: bool):
    W = eq.weights
    steps = 800 if quick else 4000
    cases = [
        ("balanced, no bias (OF)", [10] * 4, [5e-3], False, 0.5, 0.1),
        ("balanced, bias (ETF)", [10] * 4, [5e-3], True, 0.5, 0.1),
        ("imbalanced, M=1 (GOF)", [30, 20, 10, 5], [2e-3], False, 0.5, 0.1),
        ("minority collapse, M=1", [30, 20, 10, 2], [3e-2], False, 0.5, 0.1),
        ("imbalanced, M=2", [30, 20, 10, 5], [1e-3] * 2, False, 0.5, 0.1),
        ("minority collapse, M=2", [30, 20, 10, 2], [2e-2] * 2, False, 0.2, 0.5),
    ]
    if quick:  # the four geometries, one program each
        cases = [cases[0], cases[1], cases[3], cases[5]]
    else:
        cases.append(("imbalanced, M=3", [40, 20, 10, 5], [1e-3] * 3, False, 0.1, 0.5))
    rows = []
    with jax.enable_x64(True):
        for name, counts, lam, bias, lr, init in cases:
            out = W.train_ufm(
                jax.random.key(0),
                counts,
                8,
                lam,
                lam[0],
                bias=bias,
                steps=steps,
                learning_rate=lr,
                init_scale=init,
            )
            w = out["W"][-1]
            g = np.asarray(w @ w.T)
            if bias:
                nc2, target = float(W.nc2_etf(w)), "ETF"
                diag_err, pred_collapse = float("nan"), "-"
            else:
                geo = W.imbalanced_geometry(counts, lam, lam[0])
                nc2 = float(W.nc2_gof(w, geo["last_gram"]))
                target = "OF" if len(set(counts)) == 1 else "GOF (closed form)"
                got = np.diag(g) / np.linalg.norm(g)
                want = geo["last_gram"] / np.linalg.norm(geo["last_gram"])
                diag_err = float(np.abs(got - want).max())
                pred_collapse = str(np.flatnonzero(geo["collapsed"]).tolist())
            seen = np.flatnonzero(np.diag(g) < 1e-8 * np.abs(np.diag(g)).max()).tolist()
            rows.append(
                [
                    name,
                    str(counts),
                    len(lam),
                    target,
                    nc2,
                    diag_err,
                    pred_collapse,
                    str(seen),
                    float(W.nc1(out["H"], out["labels"], len(counts))),
                ]
            )
    header = [
        "case",
        "n_k",
        "M",
        "target",
        "NC2 vs target",
        "max |diag err| (normalised)",
        "collapse predicted",
        "collapse trained",
        "NC1",
    ]
    return header, rows


MLP_EVAL = {"train acc": "acc", "NC1": "nc1", "NC2 (ETF)": "nc2_etf", "NC3": "nc3"}


def mlp_training(data, args, mesh, metrics_dir, stem):
    """The MLP trained with :func:`eqjax.training.fit` (AdamW, full batch), its
    NC metrics on the training set as the evaluation every ``--eval-every``
    steps (the rows come from fit's metrics log, ``<stem>_mlp_metrics.csv`` in
    ``metrics_dir``: a resumed run reloads the rows before its checkpoint from
    there, so resume with the same ``--results-dir``)."""
    from flax import nnx

    W = eq.weights
    xtr, ytr = jnp.asarray(data[0]), jnp.asarray(data[1])
    rngs = nnx.Rngs(0)
    body = nnx.Sequential(
        nnx.Linear(64, 128, rngs=rngs),
        nnx.relu,
        nnx.Linear(128, 128, rngs=rngs),
        nnx.relu,
    )
    head = nnx.Linear(128, 10, use_bias=True, rngs=rngs)
    gb, sb = nnx.split(body)
    gh, sh = nnx.split(head)

    def apply(p, x):
        return nnx.merge(gh, p[1])(nnx.merge(gb, p[0])(x))

    @jax.jit
    def nc(p):
        h = nnx.merge(gb, p[0])(xtr)
        wk = p[1]["kernel"][...].T
        means, g = W.class_means(h, ytr, 10)
        acc = jnp.mean(jnp.argmax(nnx.merge(gh, p[1])(h), -1) == ytr)
        return {
            "acc": acc,
            "nc1": W.nc1(h, ytr, 10),
            "nc2_etf": W.nc2_etf(wk),
            "nc3": W.nc3_etf(wk, means, g),
        }

    def eval_fn(p):
        return {k: float(v) for k, v in nc(p).items()}

    params = (sb, sh)
    first = eval_fn(params)  # step 0: the initial parameters
    name = "mlp"
    r = fit_classifier(
        apply, params, data[0], data[1], steps=args.steps, name=stem + "_" + name,
        mesh=mesh, fit_kw=T.fit_options(args, name),
        optimizer=optax.adamw(1e-3, weight_decay=5e-4), eval_fn=eval_fn,
        eval_every=args.eval_every, results_dir=metrics_dir,
        progress=not args.no_progress,
    )  # fmt: skip
    cols = {
        k: dict(zip(*r.log.column(f"eval_{v}"), strict=True))
        for k, v in MLP_EVAL.items()
    }
    steps = sorted(cols["NC1"])
    missing = [
        s
        for s in range(args.eval_every, args.steps + 1, args.eval_every)
        if s not in cols["NC1"]
    ]
    if missing:
        raise RuntimeError(
            f"evaluations of steps {missing} are not in fit's metrics log: resume "
            "with the --results-dir of the interrupted run"
        )
    rows = [[0, *(first[v] for v in MLP_EVAL.values())]]
    rows += [[s, *(cols[k][s] for k in MLP_EVAL)] for s in steps]
    return ["step", *MLP_EVAL], rows


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
    p.add_argument("--steps", type=int, default=3000, help="MLP training steps")
    p.add_argument("--eval-every", type=int, default=250, help="NC metrics every N")
    p.add_argument("--no-progress", action="store_true")
    T.add_arguments(p)
    args = p.parse_args(argv)
    if args.quick:  # parse again: the quick sizes as defaults, explicit flags win
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)
    if args.eval_every < 1:
        raise SystemExit(f"--eval-every must be >= 1, got {args.eval_every}")
    mesh = T.setup(args)  # before any JAX computation
    out = Path(args.results_dir) if args.results_dir else None
    stem = "quick" if args.quick else "results"
    t0 = time.perf_counter()
    h1, r1 = ufm_cases(args.quick)
    data = digits(0, synthetic=args.synthetic_digits)
    h2, r2 = mlp_training(data, args, mesh, out or results_dir(NAME), stem)
    elapsed = time.perf_counter() - t0
    if jax.process_index() != 0:  # one process writes the tables
        return 0
    md1 = write_table(
        NAME,
        stem + "_ufm",
        h1,
        r1,
        f"{PAPER}.\n\nUFM: K = 4, d = 8, float64 gradient descent with momentum; CPU, "
        f"{elapsed:.0f} s wall for the whole experiment.",
        out,
    )
    md2 = write_table(
        NAME,
        stem + "_mlp",
        h2,
        r2,
        f"MLP on {data[4]} (training set), {args.steps} full-batch AdamW steps (1e-3, "
        f"weight decay 5e-4) with eqjax.training.fit on {mesh.devices.size} "
        f"{jax.default_backend()} device(s); NC of the penultimate features every "
        f"{args.eval_every} steps (fit's evaluation; curves: {stem}_mlp_metrics.png)."
        + (" (--quick: smoke-test sizes)" if args.quick else ""),
        out,
    )
    print(md1)
    print(md2)
    return 0
