"""ZINC-like molecular regression offline: penalised logP of MOSES molecules with
PPGN++ (with and without polynomial features) and GIN+SPE.

The ZINC-12k benchmark (Dwivedi et al., "Benchmarking Graph Neural Networks",
JMLR 2023; molecules from Gómez-Bombarelli et al. 2018) regresses the penalised
logP ("constrained solubility") of 12 000 ZINC molecules: ``y = logP − SAS −
cycles``, with Crippen's logP, Ertl & Schuffenhauer's synthetic-accessibility
score and ``cycles`` the number of rings with more than six atoms. Its files are
not available offline, so the task is re-created here:

* **Molecules**: SMILES of MOSES (Polykovskiy et al., "Molecular Sets (MOSES)",
  Frontiers in Pharmacology 2020), ZINC "clean leads" (250–350 Da), read from the
  ``train.csv.gz`` that the ``molsets`` wheel ships inside its package folder,
  located through :mod:`importlib.metadata` — the ``moses`` package is never
  imported (its ``__init__`` pulls in torch and pandas). Any other SMILES file
  can be given with ``--smiles-file``.
* **Split**: a seeded sample (``numpy.random.default_rng(split_seed)``
  permutation of the file's rows, ``--split-seed``, default 0) of 10 000 / 1 000 /
  1 000 molecules (train / val / test) that RDKit parses, with at most
  ``--max-atoms`` (38, ZINC's largest) heavy atoms.
* **Target**: :func:`penalized_logp`, computed with RDKit on the host (Crippen
  logP, the SA score of RDKit's ``Contrib/SA_Score``, SSSR rings longer than 6).
* **Graphs**: heavy atoms, one-hot by element (C, N, O, F, P, S, Cl, Br, I,
  other), bonds one-hot by type (single, double, triple, aromatic), padded to
  ``n = max atoms + 1`` nodes (one padded slot always: padding edges point at it).

Models (L1 loss on the standardised target, Adam with cosine decay from 1e-3,
:func:`eqjax.training.fit`; the test MAE, in target units, of the parameters
with the best validation MAE, evaluated every epoch):

* ``PPGN++``: :func:`eqjax.graphs.ppgn` with ``plus=True`` on
  :func:`eqjax.graphs.ppgn_input` (adjacency, element one-hot on the diagonal)
  with the 4 bond-type channels appended (Maron et al., NeurIPS 2019; Puny et
  al., ICML 2023).
* ``PPGN++(6)``: the same plus the 12 polynomials of at most 6 edges that PPGN
  cannot compute (:func:`eqjax.graphs.ppgn_plus_patterns`) as input channels
  (Puny et al.'s polynomial features), scaled by ``ppgn_input``'s default
  (``asinh`` of the ratio to the Erdős–Rényi value) and then, per channel, by
  the RMS of its non-zero training entries (:func:`rescale_polynomials`). They
  sum over all maps of the pattern, not only injective ones; all but one
  contain a triangle, so they vanish unless the molecule has a 3-ring (each of
  those is non-zero on ~0.1% of the node pairs; the table reports the shares).
  Both PPGN++ rows: width 16, 2 blocks, ``normalization="mean"`` (matrix
  products and readout averaged over the real nodes; ``--ppgn-normalization
  sum`` is the other choice: in probes on 2000 training molecules, 5 epochs,
  it gave test MAE 0.50 without and 0.83 with polynomials, against 0.56 and
  0.67 with means, and its first outputs were 10–100× the target's std).
* ``GIN + SPE``: :func:`eqjax.graphs.gin` on the element one-hot, the counts of
  incident bonds of each type (GIN takes no edge features: these sums are the
  bond information it gets) and :func:`eqjax.graphs.spe` encodings of every
  normalised-Laplacian eigenpair, trained end to end (Huang et al., ICLR 2024;
  their ZINC model is GINE, with edge features). GIN width 32, 3 layers, sum
  readout of every layer; SPE: 8 eigenvalue networks φ (width 16), ρ a 2-layer
  GIN of width 32, 16-dim encodings. First weights scaled by the training
  set's mean degree and size as in ``substructure_counts``.

The published numbers printed beside ours (PPGN++(6) ≈ 0.071, Puny et al.
2023; SPE ≈ 0.069, Huang et al. 2024, test MAE on ZINC-12k) are context only:
other molecules (MOSES clean leads, at most 26 heavy atoms in our sample where
ZINC-12k's reach 38), another split, another featurisation and a CPU budget of
minutes instead of GPU-hours. They could not be re-checked against the papers
offline (the values are those the issue gives).

Measured (``python -m experiments zinc_like``, the defaults: 5 epochs, training
seeds 0 and 1, 940 s wall on the shared 2-core CPU, 3.8 GB peak memory; table
in ``experiments/results/zinc_like/results.md``): test MAE GIN+SPE 0.356 ±
0.011, PPGN++(6) 0.507 ± 0.008, PPGN++ 0.511 ± 0.005, against 0.891 for
predicting the training mean. Every run's best validation epoch was its last:
all three are still improving at this budget. The polynomial channels change
PPGN++ by less than the seed spread here (11 of the 12 need a 3-ring and are
non-zero on ~0.1% of the node pairs; the bipartite one on 18%); the PPGN rows flatten near 0.52 on validation from epoch 2
on, while GIN+SPE (sum readout) keeps falling — plausibly because logP and SA
are close to sums over atoms and fragments, which a sum readout fits directly
and a mean-normalised PPGN must reconstruct; that is a guess, not tested here.
``--quick`` (200/50/50 molecules, 2 epochs, one seed) takes about 40 s.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import importlib
import importlib.metadata
import importlib.util
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import eqjax as eq
import eqjax.training as T

from ._common import (
    dense_graphs_tuple,
    results_dir,
    scale_first_weight,
    write_table,
)

DESCRIPTION = (
    "ZINC-like penalised logP of MOSES molecules (offline, RDKit): PPGN++ ± "
    "polynomial features, GIN+SPE"
)
MODELS = ("PPGN++", "PPGN++(6)", "GIN + SPE")
# checkpoint folders: ``<--checkpoint-dir>/<run name>_seed<s>``
RUN_NAMES = dict(zip(MODELS, ("ppgn++", "ppgn++6", "gin_spe"), strict=True))
ELEMENTS = ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I")  # then "other"
BONDS = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
NUM_ATOM_FEATURES = len(ELEMENTS) + 1
NUM_PLAIN_CHANNELS = 1 + NUM_ATOM_FEATURES + len(BONDS)  # PPGN++ without P_H
PUBLISHED = {
    "PPGN++": "-",
    "PPGN++(6)": "0.071 (Puny et al. 2023, ZINC-12k)",
    "GIN + SPE": "0.069 (Huang et al. 2024, GINE+SPE, ZINC-12k)",
}
INSTALL = "python -m pip install rdkit && python -m pip install --no-deps molsets"
NOT_COMPARABLE = (
    "Published test MAEs on ZINC-12k (PPGN++(6) 0.071, Puny et al., ICML 2023; "
    "SPE 0.069, Huang et al., ICLR 2024; the values the issue gives, not "
    "re-checked against the papers offline) are printed as context only: these "
    "are MOSES molecules with our seeded split and featurisation, NOT the ZINC-12k "
    "benchmark, trained for minutes on a CPU, so the numbers are not comparable."
)


# ------------------------------------------------------------------ RDKit


def _rdkit():
    """``(Chem, Crippen)`` from RDKit, or a clear error saying how to install it."""
    try:
        chem = importlib.import_module("rdkit.Chem")
        crippen = importlib.import_module("rdkit.Chem.Crippen")
    except ImportError as e:
        raise SystemExit(
            f"zinc_like needs RDKit ({e}); install it with: {INSTALL}"
        ) from None
    return chem, crippen


@functools.cache
def _sascorer():
    """RDKit's ``Contrib/SA_Score/sascorer.py`` (Ertl & Schuffenhauer, J.
    Cheminformatics 2009), loaded from ``rdkit.RDConfig.RDContribDir``."""
    _rdkit()
    rdconfig = importlib.import_module("rdkit.RDConfig")
    path = Path(rdconfig.RDContribDir) / "SA_Score" / "sascorer.py"
    if not path.exists():
        raise SystemExit(
            f"zinc_like: RDKit's SA score ({path}) is missing from this RDKit "
            f"install; reinstall it with: {INSTALL}"
        )
    spec = importlib.util.spec_from_file_location("_eqjax_sascorer", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def long_cycles(mol, min_size: int = 7) -> int:
    """Rings of at least ``min_size`` atoms in RDKit's smallest set of smallest
    rings (SSSR) of ``mol``."""
    return sum(len(r) >= min_size for r in mol.GetRingInfo().AtomRings())


def penalized_logp(mol, *, cycles: str = "count") -> float:
    """Penalised logP of a molecule: ``logP − SA − cycles``.

    Crippen's logP (Wildman & Crippen, J. Chem. Inf. Comput. Sci. 1999; RDKit's
    ``Crippen.MolLogP``), minus the synthetic-accessibility score (Ertl &
    Schuffenhauer 2009; RDKit's ``Contrib/SA_Score``), minus a ring penalty.
    ``cycles="count"``: the number of SSSR rings with more than six atoms, the
    definition of the ZINC benchmark (Dwivedi et al.); ``"largest"``: ``max(0,
    largest ring − 6)``, the variant of the molecule-generation literature
    (Jin et al., "Junction Tree VAE", ICML 2018). Unnormalised.

    Args:
      mol: an RDKit ``Mol`` or a SMILES string.
      cycles: ``"count"`` or ``"largest"``.

    Returns:
      The penalised logP (a float).

    Raises:
      ValueError: an unparsable SMILES or an unknown ``cycles``.

    Example:
      >>> round(penalized_logp("c1ccccc1"), 3)  # logP 1.687, SA 1.0, no long ring
      0.687
    """
    chem, crippen = _rdkit()
    if cycles not in ("count", "largest"):
        raise ValueError(f"cycles must be 'count' or 'largest', got {cycles!r}")
    if isinstance(mol, str):
        smiles, mol = mol, chem.MolFromSmiles(mol)
        if mol is None:
            raise ValueError(f"penalized_logp: RDKit cannot parse {smiles!r}")
    if cycles == "count":
        penalty = long_cycles(mol)
    else:
        rings = mol.GetRingInfo().AtomRings()
        penalty = max(0, max((len(r) for r in rings), default=0) - 6)
    return float(crippen.MolLogP(mol) - _sascorer().calculateScore(mol) - penalty)


# ------------------------------------------------------------------- data


def moses_smiles_file(split: str = "train") -> Path:
    """The MOSES ``<split>.csv.gz`` shipped inside the installed ``molsets``
    wheel (``moses/dataset/data/``), found through the distribution's file list
    without importing ``moses``."""
    try:
        dist = importlib.metadata.distribution("molsets")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            "zinc_like reads the MOSES SMILES shipped in the molsets package, which "
            f"is not installed; install it with: {INSTALL} (or pass --smiles-file)"
        ) from None
    path = Path(str(dist.locate_file(f"moses/dataset/data/{split}.csv.gz")))
    if not path.exists():
        raise SystemExit(
            f"zinc_like: {path} is missing from the molsets install; reinstall it "
            f"with: {INSTALL} (or pass --smiles-file)"
        )
    return path


def read_smiles(path) -> list[str]:
    """SMILES strings of a file: a CSV whose header has a ``SMILES`` column (as
    MOSES'), or one SMILES per line (the first whitespace-separated token, as in
    ``.smi`` files); gzip-compressed when the name ends in ``.gz``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        lines = [ln.strip() for ln in f.read().splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise SystemExit(f"zinc_like: no SMILES in {path}")
    head = [c.strip().lower() for c in lines[0].split(",")]
    if "smiles" in head:
        col = head.index("smiles")
        return [ln.split(",")[col].strip() for ln in lines[1:]]
    return [ln.split()[0] for ln in lines]


def molecule_graph(mol) -> tuple[np.ndarray, np.ndarray]:
    """``(element one-hot [n, 10], bond one-hot [n, n, 4])`` of a molecule's
    heavy atoms (RDKit's Kekulé/aromatic flags as parsed)."""
    n = mol.GetNumAtoms()
    atoms = np.zeros((n, NUM_ATOM_FEATURES), np.float32)
    for a in mol.GetAtoms():
        sym = a.GetSymbol()
        atoms[a.GetIdx(), ELEMENTS.index(sym) if sym in ELEMENTS else -1] = 1
    bonds = np.zeros((n, n, len(BONDS)), np.float32)
    for b in mol.GetBonds():
        t = str(b.GetBondType())
        k = BONDS.index(t) if t in BONDS else 0  # dative etc.: as single
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        bonds[i, j, k] = bonds[j, i, k] = 1
    return atoms, bonds


def sample_molecules(smiles: list[str], num: int, seed: int, max_atoms: int):
    """The first ``num`` molecules, in a seeded random order of ``smiles``, that
    RDKit parses and that have ``1 … max_atoms`` heavy atoms: ``(smiles, mols,
    skipped)``."""
    chem, _ = _rdkit()
    importlib.import_module("rdkit.RDLogger").DisableLog("rdApp.*")  # bad rows
    order = np.random.default_rng(seed).permutation(len(smiles))
    kept, mols, skipped = [], [], 0
    for i in order:
        if len(kept) == num:
            break
        m = chem.MolFromSmiles(smiles[i])
        if m is None or not 0 < m.GetNumAtoms() <= max_atoms:
            skipped += 1
            continue
        kept.append(smiles[i])
        mols.append(m)
    if len(kept) < num:
        raise SystemExit(
            f"zinc_like: only {len(kept)} usable molecules (of {len(smiles)} SMILES, "
            f"<= {max_atoms} heavy atoms), {num} needed"
        )
    return kept, mols, skipped


def featurize(mols, n_pad: int) -> dict[str, np.ndarray]:
    """Padded arrays of every molecule: adjacency ``A``, node mask ``nm``, atom
    one-hot ``atoms``, bond one-hot ``bonds``, GIN node features ``x`` (atoms and
    incident-bond counts per type), eigenpairs ``lam``, ``V``, ``em`` (every
    normalised-Laplacian eigenpair, masked past ``n``), edge lists ``s``, ``r``
    (padding edges on the last, always padded slot) and the target ``y``."""
    G = len(mols)
    E = 2 * max(m.GetNumBonds() for m in mols)
    F, K = NUM_ATOM_FEATURES, len(BONDS)
    out = {
        "A": np.zeros((G, n_pad, n_pad), np.float32),
        "nm": np.zeros((G, n_pad), bool),
        "atoms": np.zeros((G, n_pad, F), np.float32),
        "bonds": np.zeros((G, n_pad, n_pad, K), np.float32),
        "x": np.zeros((G, n_pad, F + K), np.float32),
        "lam": np.zeros((G, n_pad), np.float32),
        "V": np.zeros((G, n_pad, n_pad), np.float32),
        "em": np.zeros((G, n_pad), bool),
        "s": np.full((G, E), n_pad - 1, np.int32),
        "r": np.full((G, E), n_pad - 1, np.int32),
        "y": np.zeros((G,), np.float32),
    }
    for g, m in enumerate(mols):
        atoms, bonds = molecule_graph(m)
        n = len(atoms)
        A = bonds.sum(-1)
        ep = eq.graphs.laplacian_eigenpairs(
            A.astype(np.float64), n_pad, num_nodes=n_pad, dtype=np.float32
        )
        s, r = np.nonzero(A)
        out["A"][g, :n, :n] = A
        out["nm"][g, :n] = True
        out["atoms"][g, :n] = atoms
        out["bonds"][g, :n, :n] = bonds
        out["x"][g, :n] = np.concatenate([atoms, bonds.sum(1)], -1)
        out["lam"][g], out["V"][g], out["em"][g] = ep.eigvals, ep.eigvecs, ep.mask
        out["s"][g, : len(s)], out["r"][g, : len(r)] = s, r
        out["y"][g] = penalized_logp(m)
    return out


def ppgn_tensors(data, with_polynomials: bool, chunk: int = 256) -> np.ndarray:
    """The PPGN input of every molecule: :func:`eqjax.graphs.ppgn_input`
    (adjacency, atom one-hot on the diagonal, and with ``with_polynomials`` the
    :func:`eqjax.graphs.ppgn_plus_patterns` channels) with the bond one-hot
    inserted after the atoms: ``[A, atoms, bonds, P_H ...]``, so that the first
    :data:`NUM_PLAIN_CHANNELS` are the input without polynomials. Computed once,
    in chunks of one compiled shape."""
    patterns = eq.graphs.ppgn_plus_patterns(6) if with_polynomials else ()
    c = 1 + NUM_ATOM_FEATURES

    def build(A, m, x, b):
        base = eq.graphs.ppgn_input(A, m, x, patterns)  # [A, atoms, P_H ...]
        return jnp.concatenate([base[..., :c], b, base[..., c:]], -1)

    fn = jax.jit(build)
    keys = ("A", "nm", "atoms", "bonds")
    parts = []
    G = len(data["A"])
    for i in range(0, G, chunk):
        arrs = [data[k][i : i + chunk] for k in keys]
        k = len(arrs[0])
        if k < chunk:  # one compiled shape
            arrs = [
                np.concatenate([a, np.zeros((chunk - k,) + a.shape[1:], a.dtype)])
                for a in arrs
            ]
        parts.append(np.asarray(fn(*map(jnp.asarray, arrs)))[:k])
    return np.concatenate(parts)


def rescale_polynomials(X: np.ndarray, nm: np.ndarray, train_idx) -> np.ndarray:
    """Divide each polynomial channel of ``X`` (those past
    :data:`NUM_PLAIN_CHANNELS`, in place) by its root mean square over its
    non-zero entries in the training molecules (channels that are zero there
    are left as they are). One positive constant per channel, the same for every
    graph: permutation equivariance and the zero padding are kept, and the
    non-zero entries come to order one. (``ppgn_input``'s ``asinh`` values reach
    ~9 on molecules, on up to a fifth of the pairs, which made training with
    ``normalization="sum"`` diverge; most channels are non-zero on fewer than
    0.1% of the pairs, so a plain RMS would blow those up instead.) Returns the
    scales."""
    c = NUM_PLAIN_CHANNELS
    P = X[train_idx, ..., c:].reshape(-1, X.shape[-1] - c).astype(np.float64)
    nz = np.count_nonzero(P, axis=0)
    rms = np.sqrt(np.sum(P**2, 0) / np.maximum(nz, 1))
    scale = np.where(nz > 0, rms, 1.0).astype(X.dtype)
    for k in range(X.shape[-1] - c):  # channel by channel: no full-size temporary
        X[..., c + k] /= scale[k]
    return scale


# ---------------------------------------------------------------- models


def init(model: str, key, *, channels: int, hidden: int, blocks: int, stats):
    """Parameters of one model. GIN layers and readouts start scaled by the
    training set's mean degree and size (as in ``substructure_counts``: sum
    aggregation without normalisation layers)."""
    if model.startswith("PPGN"):
        return {
            "ppgn": eq.graphs.ppgn_init(key, channels, hidden, blocks, 1, plus=True)
        }
    degree, size, num_eig = stats
    kb, kp = jax.random.split(key)
    P = 16  # positional-encoding width
    g = eq.graphs.gin_init(kb, channels + P, hidden, 1, num_layers=blocks)
    g = g._replace(
        layers=tuple(scale_first_weight(m, 1 / (1 + degree)) for m in g.layers),
        readout=tuple(scale_first_weight(m, 1 / size) for m in g.readout),
    )
    sp = eq.graphs.spe_init(
        kp, num_eig, P, num_channels=8, phi_hidden=16, hidden=32,
        num_layers=2,
    )  # fmt: skip
    sp = sp._replace(
        rho=tuple(scale_first_weight(m, 1 / (1 + degree)) for m in sp.rho),
        head=scale_first_weight(sp.head, 1 / size),
    )
    return {"gin": g, "pe": sp}


def predict(model: str, params, b, normalization: str = "mean") -> jax.Array:
    """Standardised predictions ``[B]`` of a batch dict (``normalization``: that
    of :func:`eqjax.graphs.ppgn`)."""
    if model.startswith("PPGN"):
        return eq.graphs.ppgn(
            params["ppgn"], b["X"], b["nm"], plus=True, normalization=normalization
        )[:, 0]
    B = b["nm"].shape[0]
    pe = eq.graphs.spe(
        params["pe"], b["lam"], b["V"], b["s"], b["r"], b["nm"], eigval_mask=b["em"]
    )
    x = jnp.concatenate([b["x"], pe], -1)
    g = dense_graphs_tuple(x, b["nm"], b["s"], b["r"])
    return eq.graphs.gin(params["gin"], g)[:B, 0]


@functools.cache
def metric_fn(model: str, sd: float, normalization: str):
    """Per-example absolute error in target units (one object per model, so
    validation and test share one compiled program)."""

    def per_example(params, b):
        err = predict(model, params, b, normalization) - b["y"]
        return {"mae": sd * jnp.abs(err)}

    return per_example


def model_arrays(model: str, data, ppgn_x) -> dict[str, np.ndarray]:
    if model.startswith("PPGN"):
        return {"X": ppgn_x[model], "nm": data["nm"], "y": data["y"]}
    keys = ("x", "nm", "lam", "V", "em", "s", "r", "y")
    return {k: data[k] for k in keys}


def train(model, arrays, split, *, epochs, batch, hidden, blocks, seed, stats, sd,
          mesh, progress, normalization="mean", **fit_kw):  # fmt: skip
    """Train one model with :func:`eqjax.training.fit` (``fit_kw`` goes to it:
    checkpoints, from :func:`eqjax.training.fit_options`); returns the test MAE
    of the best-validation parameters, the validation curve and timings."""
    tr, va, te = split
    take = lambda idx: {k: v[idx] for k, v in arrays.items()}  # noqa: E731
    loader = T.ArrayLoader(take(tr), batch, seed=seed)
    steps = epochs * loader.steps_per_epoch
    channels = arrays["X"].shape[-1] if "X" in arrays else arrays["x"].shape[-1]
    params = init(
        model, jax.random.key(seed), channels=channels, hidden=hidden,
        blocks=blocks, stats=stats,
    )  # fmt: skip
    opt = optax.adam(optax.cosine_decay_schedule(1e-3, max(steps, 1), alpha=0.05))

    def loss(p, b, key):
        return jnp.mean(jnp.abs(predict(model, p, b, normalization) - b["y"]))

    per_example = metric_fn(model, sd, normalization)
    val = T.Evaluator(per_example, take(va), 250, mesh)
    r = T.fit(
        loss, params, opt, loader, steps=steps, key=seed, mesh=mesh,
        eval_fn=val, eval_every=loader.steps_per_epoch,
        early_stopping=T.EarlyStopping("mae"), name=f"{model} seed {seed}",
        progress=progress, **fit_kw,
    )  # fmt: skip
    assert r.best is not None
    test = T.Evaluator(per_example, take(te), 250, mesh)(r.params)["mae"]
    steps_at, curve = r.log.column("eval_mae")
    n_params = sum(int(np.size(v)) for v in jax.tree.leaves(params))
    return {
        "test": test,
        "val": r.best["mae"],
        "best_epoch": r.best["step"] // loader.steps_per_epoch,
        "curve": (np.asarray(steps_at) / loader.steps_per_epoch, np.asarray(curve)),
        "seconds": r.seconds,
        "params": n_params,
    }


# ------------------------------------------------------------------ main


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m experiments zinc_like", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="tiny subset, 2 epochs")
    ap.add_argument("--results-dir", default=None)
    ap.add_argument(
        "--smiles-file", default=None,
        help="SMILES file (CSV with a SMILES column, or .smi; .gz allowed) instead "
        "of MOSES' train.csv.gz from the molsets package",
    )  # fmt: skip
    ap.add_argument(
        "--data-dir", default=None,
        help="folder holding a MOSES-style train.csv.gz (instead of the molsets "
        "package's)",
    )  # fmt: skip
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--max-atoms", type=int, default=38)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--seeds", default="0,1", help="training seeds, comma-separated")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--ppgn-hidden", type=int, default=16, help="PPGN block width")
    ap.add_argument("--ppgn-blocks", type=int, default=2)
    ap.add_argument("--gin-hidden", type=int, default=32, help="GIN width")
    ap.add_argument("--gin-layers", type=int, default=3)
    ap.add_argument(
        "--ppgn-normalization", default="mean", choices=("mean", "sum"),
        help="PPGN products and readout: means or sums over the real nodes",
    )  # fmt: skip
    ap.add_argument("--no-progress", action="store_true")
    T.add_arguments(ap)
    args = ap.parse_args(argv)
    mesh = T.setup(args)  # before any JAX computation
    if args.quick:
        args.train, args.val, args.test, args.epochs, args.seeds = 200, 50, 50, 2, "0"
        args.batch, args.gin_hidden, args.gin_layers = 25, 16, 2
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {MODELS}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    _rdkit()
    _sascorer()
    if args.smiles_file:
        source = Path(args.smiles_file)
    elif args.data_dir:
        source = Path(args.data_dir) / "train.csv.gz"
    else:
        source = moses_smiles_file("train")
    if not source.exists():
        raise SystemExit(f"zinc_like: no SMILES file at {source}")

    t0 = time.perf_counter()
    smiles = read_smiles(source)
    G = args.train + args.val + args.test
    _, mols, skipped = sample_molecules(smiles, G, args.split_seed, args.max_atoms)
    n_pad = max(m.GetNumAtoms() for m in mols) + 1
    data = featurize(mols, n_pad)
    idx = np.arange(G)
    split = (idx[: args.train], idx[args.train : -args.test], idx[-args.test :])
    y = data["y"]
    mu, sd = float(y[split[0]].mean()), float(y[split[0]].std())
    data["y"] = ((y - mu) / sd).astype(np.float32)
    ppgn_x = {}
    if any(m.startswith("PPGN") for m in models):
        ppgn_x["PPGN++(6)"] = ppgn_tensors(data, True)
        rescale_polynomials(ppgn_x["PPGN++(6)"], data["nm"], split[0])
        # the same tensor less the 12 polynomial channels (a view, no copy)
        ppgn_x["PPGN++"] = ppgn_x["PPGN++(6)"][..., :NUM_PLAIN_CHANNELS]
    prep = time.perf_counter() - t0
    print(
        f"{G} molecules from {source.name} ({len(smiles)} SMILES, {skipped} skipped), "
        f"n <= {n_pad - 1} heavy atoms, target mean {mu:.3f} std {sd:.3f}; "
        f"data {prep:.0f} s",
        flush=True,
    )
    tr = split[0]
    size = float(data["nm"][tr].sum(1).mean())
    degree = float(data["A"][tr].sum((1, 2)).mean()) / size
    stats = (degree, size, n_pad)

    width = {
        m: (args.ppgn_hidden, args.ppgn_blocks)
        if m.startswith("PPGN")
        else (args.gin_hidden, args.gin_layers)
        for m in MODELS
    }
    rows, curves, results = [], {}, {}
    for m in models:
        arrays = model_arrays(m, data, ppgn_x)
        runs = []
        for s in seeds:
            r = train(
                m, arrays, split, epochs=args.epochs, batch=args.batch,
                hidden=width[m][0], blocks=width[m][1], seed=s, stats=stats, sd=sd,
                mesh=mesh, progress=not args.no_progress,
                normalization=args.ppgn_normalization,
                **T.fit_options(args, f"{RUN_NAMES[m]}_seed{s}"),
            )  # fmt: skip
            runs.append(r)
            curves[(m, s)] = r["curve"]
            print(
                f"{m} seed {s}: test MAE {r['test']:.4f} (best val {r['val']:.4f} "
                f"at epoch {r['best_epoch']}, {r['seconds']:.0f} s)",
                flush=True,
            )
        results[m] = runs
        test = np.array([r["test"] for r in runs])
        rows.append(
            [
                m,
                f"{width[m][0]} × {width[m][1]}",
                _mean_std(test),
                _mean_std(np.array([r["val"] for r in runs])),
                PUBLISHED[m],
                runs[0]["params"],
                args.epochs,
                round(sum(r["seconds"] for r in runs), 1),
            ]
        )
    total = time.perf_counter() - t0
    poly_note = ""
    if "PPGN++(6)" in ppgn_x:
        P = ppgn_x["PPGN++(6)"][..., NUM_PLAIN_CHANNELS:]
        any_nz = np.any(P != 0, axis=-1)  # [G, n, n]
        pair = data["nm"][:, :, None] & data["nm"][:, None, :]
        poly_note = (
            f" The 12 PPGN++(6) polynomial channels: some is non-zero in "
            f"{100 * float(np.mean(np.any(any_nz, (1, 2)))):.1f}% of the "
            f"molecules and on {100 * float(any_nz[pair].mean()):.1f}% of the real "
            f"node pairs; each divided by the RMS of its non-zero training entries."
        )
    header = [
        "model",
        "width × depth",
        f"test MAE (mean ± std, {len(seeds)} seed{'s' * (len(seeds) > 1)})",
        "best val MAE",
        "published ZINC-12k test MAE (context only, not comparable)",
        "parameters",
        "epochs",
        "train seconds",
    ]
    pre = (
        f"{NOT_COMPARABLE}\n\nOurs: {args.train}/{args.val}/{args.test} molecules "
        f"sampled from {source.name} with split seed {args.split_seed} (seeded "
        f"permutation of the file's rows; molecules RDKit parses with <= "
        f"{args.max_atoms} heavy atoms; {skipped} skipped), target penalised logP "
        f"(Crippen logP - SA score - rings > 6 atoms; mean {mu:.3f}, std {sd:.3f} on "
        f"the training set; MAE in target units; predicting the training mean gives "
        f"a test MAE of {float(np.mean(np.abs(y[split[2]] - mu))):.3f}). "
        f"Test MAE at the best of {args.epochs} epochs (validation each epoch), "
        f"batch {args.batch}, Adam 1e-3 with cosine decay, L1 loss, PPGN++ "
        f"normalization {args.ppgn_normalization!r}, training seeds {seeds}.{poly_note} Compute: {total:.0f} s wall on the CPU "
        f"({jax.device_count()} {jax.default_backend()} device(s), 2 shared cores), "
        f"{prep:.0f} s of it data (RDKit, eigenpairs, polynomials)."
        + (" (--quick: a tiny subset, 2 epochs)" if args.quick else "")
    )
    stem = "quick" if args.quick else "results"
    out_dir = Path(args.results_dir) if args.results_dir else results_dir("zinc_like")
    md = write_table("zinc_like", stem, header, rows, preamble=pre, out_dir=out_dir)
    _plot(curves, out_dir / f"{stem}_val_mae.png")
    _write_curves(curves, out_dir / f"{stem}_val_mae.csv")
    print(md)
    return 0


def _mean_std(v: np.ndarray) -> str:
    if len(v) == 1:
        return f"{v[0]:.4f}"
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"


def _write_curves(curves: dict[tuple[str, int], Any], path: Path) -> None:
    lines = ["model,seed,epoch,val_mae"]
    for (m, s), (ep, v) in curves.items():
        lines += [f"{m},{s},{e:g},{float(x)!r}" for e, x in zip(ep, v, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _plot(curves, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    colours = {}
    for (m, s), (ep, v) in curves.items():
        c = colours.setdefault(m, f"C{len(colours)}")
        ax.plot(ep, v, color=c, marker=".", label=m if s == min(
            k[1] for k in curves if k[0] == m) else None)  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation MAE (penalised logP)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("zinc_like: validation MAE")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
