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
stand-in) trains with Adam and NC1,
NC2 (ETF) and NC3 of its penultimate features are logged along the way.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import eqjax as eq

from ._common import write_table
from ._weights_data import SYNTHETIC_HELP, cross_entropy, digits

DESCRIPTION = "neural collapse: UFM against the closed forms (balanced/bias/imbalanced/minority), NC along MLP training"
NAME = "neural_collapse"
PAPER = (
    "paper (Dang et al., ICML 2023): theory, exact at the global minimiser: NC2 = 0 "
    "against OF (no bias) / ETF (bias) / the closed-form GOF (imbalanced); minority "
    "collapse s_k = 0 below the threshold"
)


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


def mlp_training(data, quick: bool):
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
    import optax

    opt = optax.adamw(1e-3, weight_decay=5e-4)
    params = (sb, sh)
    state = opt.init(params)

    def loss_fn(p):
        h = nnx.merge(gb, p[0])(xtr)
        return cross_entropy(nnx.merge(gh, p[1])(h), ytr)

    @functools.partial(jax.jit, static_argnums=2)
    def steps_(p, s, n):
        def step(c, _):
            p, s = c
            g = jax.grad(loss_fn)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, s), _ = jax.lax.scan(step, (p, s), None, length=n)
        return p, s

    @jax.jit
    def nc(p):
        h = nnx.merge(gb, p[0])(xtr)
        wk = p[1]["kernel"][...].T
        means, g = W.class_means(h, ytr, 10)
        acc = jnp.mean(jnp.argmax(nnx.merge(gh, p[1])(h), -1) == ytr)
        return W.nc1(h, ytr, 10), W.nc2_etf(wk), W.nc3_etf(wk, means, g), acc

    rows = []
    chunk, total = (100, 200) if quick else (250, 3000)
    done = 0
    while done <= total:
        n1, n2, n3, acc = nc(params)
        rows.append([done, float(acc), float(n1), float(n2), float(n3)])
        params, state = steps_(params, state, chunk)
        done += chunk
    return ["step", "train acc", "NC1", "NC2 (ETF)", "NC3"], rows


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog=f"python -m experiments {NAME}", description=__doc__
    )
    p.add_argument("--quick", action="store_true")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--data-dir", default="../shared/data", help="unused")
    p.add_argument("--synthetic-digits", action="store_true", help=SYNTHETIC_HELP)
    args = p.parse_args(argv)
    out = Path(args.results_dir) if args.results_dir else None
    t0 = time.perf_counter()
    h1, r1 = ufm_cases(args.quick)
    data = digits(0, synthetic=args.synthetic_digits)
    h2, r2 = mlp_training(data, args.quick)
    elapsed = time.perf_counter() - t0
    stem = "quick" if args.quick else "results"
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
        f"MLP on {data[4]} (training set), AdamW 1e-3, weight decay 5e-4; NC of the "
        "penultimate features.",
        out,
    )
    print(md1)
    print(md2)
    return 0
