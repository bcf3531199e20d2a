"""Stability of positional encodings under small Laplacian perturbations.

Huang et al., "On the Stability of Expressive Positional Encodings for Graphs"
(ICLR 2024): SPE changes by at most a constant times ``‖ΔL‖`` (its stability
theorem; the constant grows as the gap between ``λ_d`` and ``λ_{d+1}``, the
eigenvalues on either side of the cut, shrinks), while raw eigenvectors have no
such bound: inside a (nearly) degenerate eigenspace a tiny perturbation can
rotate them arbitrarily. The paper states this as a theorem and an
illustration, with no table of ``‖ΔPE‖`` values to compare against; the claim
checked here is the qualitative one.

Setup: graphs whose Laplacians have 2- and 4-dimensional eigenspaces (the
cycle C_16, the 6×6 grid, CSL(41, 2), CSL(41, 9)); every edge weight becomes
``1 + ε u_e`` with ``u_e ~ U(−1, 1)`` (seeded, several draws per ``ε``), which
splits the degenerate eigenvalues by ``O(ε)``. The first ``d ≈ 8`` normalised-
Laplacian eigenpairs (host NumPy, float64) are cut at an eigenspace boundary of
the unperturbed graph. Three randomly initialised encoders map them to
``[n, 16]``: SPE (:func:`eqjax.graphs.spe`, 8 eigenvalue networks, 2 GIN layers
of width 32, message passing on the unweighted graph), the raw-eigenvector PE
(:func:`eqjax.graphs.eigvec_pe`, an MLP on ``V``) and SignNet-style
(:func:`eqjax.graphs.signnet_pe`). Reported: the relative change
``‖ΔPE‖_F / ‖PE‖_F`` against ``‖ΔL‖_F``; a stable encoder's ratio stays bounded
as ``ε → 0`` (slope ≈ 1 on the log–log plot), an unstable one's jumps to
``O(1)`` at any ``ε`` (slope ≈ 0). CPU, float64, a few seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import eqjax as eq

from ._common import results_dir, write_table

DESCRIPTION = "SPE vs raw eigenvectors vs SignNet: ‖ΔPE‖ against ‖ΔL‖ (stability)"
PAPER = (
    "Huang et al. (ICLR 2024): SPE is Lipschitz in L (‖ΔPE‖ ≤ C ‖ΔL‖, C growing "
    "as the eigengap at the cut shrinks); raw eigenvectors are not (an O(1) "
    "change under an arbitrarily small ΔL in a degenerate eigenspace). No "
    "numeric table to compare against: the claim checked is the qualitative one."
)
MODELS = ("SPE", "raw eigenvectors", "SignNet")
N_PAD, D, P = 42, 9, 16


def _cycle(n):
    return np.roll(np.eye(n), 1, 0) + np.roll(np.eye(n), -1, 0)


def _grid(k):
    A = np.zeros((k * k, k * k))
    for i in range(k):
        for j in range(k):
            v = i * k + j
            if i + 1 < k:
                A[v, v + k] = A[v + k, v] = 1
            if j + 1 < k:
                A[v, v + 1] = A[v + 1, v] = 1
    return A


def _csl(skip, n=41):
    i = np.arange(n)
    A = np.zeros((n, n))
    for j in (i + 1, i + skip):
        A[i, j % n] = A[j % n, i] = 1
    return A


def graphs():
    """The test graphs: name -> 0/1 adjacency."""
    return {
        "C16": _cycle(16),
        "grid 6x6": _grid(6),
        "CSL(41,2)": _csl(2),
        "CSL(41,9)": _csl(9),
    }


def cut(A, target=8, tol=1e-8):
    """The eigenspace boundary nearest ``target`` (at most ``D``), the
    multiplicities of the kept eigenspaces and the eigengap at the cut."""
    lam = eq.graphs.laplacian_eigenpairs(A, A.shape[0]).eigvals
    bounds = [k for k in range(1, len(lam)) if lam[k] - lam[k - 1] > tol]
    d = min((b for b in bounds if b <= D), key=lambda b: abs(b - target))
    mults = np.diff([0] + [b for b in bounds if b <= d]).tolist()
    return d, mults, float(lam[d] - lam[d - 1])


def perturbed(A, eps, rng):
    """``A`` with every edge weight ``1 + eps · U(−1, 1)`` (symmetric)."""
    U = np.triu(rng.uniform(-1.0, 1.0, A.shape), 1)
    return A * (1.0 + eps * (U + U.T))


def _inputs(A, d):
    """Padded float64 eigenpairs, edges and masks of one (weighted) graph."""
    n = A.shape[0]
    ep = eq.graphs.laplacian_eigenpairs(A, d, num_nodes=N_PAD, dtype=np.float64)
    lam, V = np.zeros(D), np.zeros((N_PAD, D))
    lam[:d], V[:, :d] = ep.eigvals, ep.eigvecs
    em = np.arange(D) < d
    nm = np.arange(N_PAD) < n
    return lam, V, nm, em


def _laplacian(A):
    deg = A.sum(1)
    dinv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0)
    return np.eye(len(A)) - dinv[:, None] * A * dinv[None, :]


def encoders(seed):
    """The three randomly initialised encoders, each a jitted function of
    ``(λ, V, senders, receivers, node mask, eigenpair mask)`` batches."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    ps = eq.graphs.spe_init(k1, D, P, num_channels=8, hidden=32, dtype=jnp.float64)
    pe = eq.graphs.eigvec_pe_init(k2, D, P, hidden=32, dtype=jnp.float64)
    pn = eq.graphs.signnet_pe_init(k3, D, P, hidden=32, dtype=jnp.float64)

    @jax.jit
    def run(lam, V, s, r, nm, em):
        return (
            eq.graphs.spe(ps, lam, V, s, r, nm, eigval_mask=em),
            eq.graphs.eigvec_pe(pe, V, nm, eigval_mask=em),
            eq.graphs.signnet_pe(pn, lam, V, nm, eigval_mask=em),
        )

    return run


def measure(epsilons, trials, seed):
    """Rows ``(graph, d, multiplicities, gap, ε, ‖ΔL‖ per trial, {model: rel
    ‖ΔPE‖ per trial})``."""
    run = encoders(seed)
    out = []
    rng = np.random.default_rng(seed)
    E = 2 * 82  # the most directed edges (4-regular on 41 nodes)
    for name, A in graphs().items():
        d, mults, gap = cut(A)
        s0, r0 = np.nonzero(A)
        s = np.full(E, N_PAD - 1, np.int32)
        r = np.full(E, N_PAD - 1, np.int32)
        s[: len(s0)], r[: len(r0)] = s0, r0
        L0 = _laplacian(A)
        items, dls = [_inputs(A, d)], []
        for eps in epsilons:
            for _ in range(trials):
                Ap = perturbed(A, eps, rng)
                items.append(_inputs(Ap, d))
                dls.append(np.linalg.norm(_laplacian(Ap) - L0))
        lam, V, nm, em = (np.stack(v) for v in zip(*items, strict=True))
        B = len(items)
        outs = run(
            jnp.asarray(lam),
            jnp.asarray(V),
            jnp.asarray(np.broadcast_to(s, (B, E))),
            jnp.asarray(np.broadcast_to(r, (B, E))),
            jnp.asarray(nm),
            jnp.asarray(em),
        )
        rel = {}
        for model, y in zip(MODELS, outs, strict=True):
            y = np.asarray(y)
            rel[model] = np.linalg.norm(y[1:] - y[0], axis=(1, 2)) / np.linalg.norm(
                y[0]
            )
        for i, eps in enumerate(epsilons):
            sl = slice(i * trials, (i + 1) * trials)
            out.append(
                (
                    name,
                    d,
                    mults,
                    gap,
                    eps,
                    np.asarray(dls[sl]),
                    {m: rel[m][sl] for m in MODELS},
                )
            )
    return out


def slope(xs, ys):
    """Least-squares slope of ``log y`` against ``log x``."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ok = (xs > 0) & (ys > 0)
    return float(np.polyfit(np.log(xs[ok]), np.log(ys[ok]), 1)[0])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m experiments spe_stability", description=__doc__
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    epsilons = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    if args.quick:
        epsilons, args.trials = [1e-5, 1e-3, 1e-1], 2
    t0 = time.perf_counter()
    with jax.enable_x64(True):
        data = measure(epsilons, args.trials, args.seed)
    seconds = time.perf_counter() - t0
    rows, slopes = [], {}
    for name, d, mults, gap, eps, dl, rel in data:
        row = [name, d, "+".join(map(str, mults)), f"{gap:.3g}", f"{eps:.0e}"]
        row.append(f"{np.median(dl):.2e}")
        for m in MODELS:
            row.append(f"{np.median(rel[m]):.2e}")
            row.append(f"{np.max(rel[m] / dl):.3g}")
        rows.append(row)
    for name in graphs():
        for m in MODELS:
            pts = [(dl, rel[m]) for g, *_, dl, rel in data if g == name]
            slopes[(name, m)] = slope(
                np.concatenate([p[0] for p in pts]), np.concatenate([p[1] for p in pts])
            )
    header = ["graph", "d", "eigenspaces kept", "gap at cut", "ε", "‖ΔL‖_F"]
    for m in MODELS:
        header += [f"{m}: ‖ΔPE‖/‖PE‖", f"{m}: max ratio to ‖ΔL‖"]
    fit_rows = [
        [name] + [f"{slopes[(name, m)]:.2f}" for m in MODELS] for name in graphs()
    ]
    pre = (
        f"Paper: {PAPER}\n\nOurs: median over {args.trials} perturbations per ε "
        "of the relative change ‖ΔPE‖_F/‖PE‖_F, and the largest ratio of that "
        "change to ‖ΔL‖_F (bounded for a Lipschitz encoder, growing like 1/‖ΔL‖ "
        "for an unstable one). Random-init encoders, float64, cut at an eigenspace "
        f"boundary of the unperturbed graph. Compute: {seconds:.1f} s on the CPU "
        "(2 shared cores)."
        + (" (--quick: 3 values of ε, 2 draws each)" if args.quick else "")
    )
    out_dir = Path(args.results_dir) if args.results_dir else None
    stem = "quick" if args.quick else "results"
    md = write_table("spe_stability", stem, header, rows, preamble=pre, out_dir=out_dir)
    md_fit = write_table(
        "spe_stability",
        stem + "_slopes",
        ["graph"] + [f"{m}: slope of log ‖ΔPE‖ vs log ‖ΔL‖" for m in MODELS],
        fit_rows,
        preamble="Least-squares slopes over every draw (1: Lipschitz; 0: jumps "
        "that do not shrink with ‖ΔL‖).",
        out_dir=out_dir,
    )
    folder = out_dir if out_dir is not None else results_dir("spe_stability")
    _plot(data, folder / f"{stem}.png")
    print(md)
    print(md_fit)
    return 0


def _plot(data, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(g for g, *_ in data))
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.2))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=True):
        rows = [r for r in data if r[0] == name]
        dl = np.concatenate([r[5] for r in rows])
        for m, mark in zip(MODELS, "os^", strict=True):
            ax.loglog(dl, np.concatenate([r[6][m] for r in rows]), mark, ms=3, label=m)
        ref = np.array([dl.min(), dl.max()])
        ax.loglog(ref, ref, "k--", lw=0.8, label="‖ΔPE‖/‖PE‖ = ‖ΔL‖")
        ax.set_title(f"{name} (d = {rows[0][1]})", fontsize=9)
        ax.set_xlabel("‖ΔL‖_F")
    axes[0].set_ylabel("‖ΔPE‖_F / ‖PE‖_F")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
