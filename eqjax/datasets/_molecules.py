"""Molecular data: rMD17 (offline NPZ files) and QM9 (the ``qm9pack`` CSV files),
and padded ``GraphsTuple`` batches of molecules.

- rMD17: Christensen & von Lilienfeld, "On the role of gradients for machine
  learning of molecular energies and forces" (2020); ten molecules, the official
  1000/1000 train/test splits ``01``-``05``. Files
  ``rmd17_<molecule>_<train|test>_<split>.npz`` (energies kcal/mol, forces
  kcal/mol/Å, coordinates Å) are converted to **meV** and **meV/Å**.
- QM9: Ramakrishnan et al., Sci. Data 1, 140022 (2014), read from the CSV files
  shipped inside the PyPI package ``qm9pack`` (install it with ``pip install
  --no-deps qm9pack``; its pandas loader is not used).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import jraph
import numpy as np

KCAL_MOL_TO_MEV = 43.364104
"""1 kcal/mol in meV (4.184 kJ/mol / 96.485332 kJ/mol/eV)."""

RMD17_MOLECULES = (
    "aspirin",
    "azobenzene",
    "benzene",
    "ethanol",
    "malonaldehyde",
    "naphthalene",
    "paracetamol",
    "salicylic",
    "toluene",
    "uracil",
)
DEFAULT_RMD17_DIR = Path("../shared/data/rmd17")


class Molecules(NamedTuple):
    """Frames of one molecule (rMD17).

    Attributes:
      species: ``[n_atoms]`` atomic numbers (int32).
      positions: ``[F, n_atoms, 3]`` coordinates in Å (float32).
      energies: ``[F]`` total energies in meV (float64: they are ~1e7 meV).
      forces: ``[F, n_atoms, 3]`` forces in meV/Å (float32).
    """

    species: np.ndarray
    positions: np.ndarray
    energies: np.ndarray
    forces: np.ndarray


def load_rmd17(
    molecule: str,
    *,
    data_dir: str | os.PathLike = DEFAULT_RMD17_DIR,
    split: int = 1,
) -> tuple[Molecules, Molecules]:
    """The official rMD17 train and test split of one molecule.

    Args:
      molecule: one of :data:`RMD17_MOLECULES`.
      data_dir: folder holding the ``rmd17_*.npz`` files.
      split: official split ``1``-``5``.

    Returns:
      ``(train, test)`` :class:`Molecules` (1000 frames each), energies in meV,
      forces in meV/Å.

    Raises:
      ValueError: unknown molecule or split.
      FileNotFoundError: the folder or a split file is missing (naming it).
    """
    if molecule not in RMD17_MOLECULES:
        raise ValueError(
            f"unknown rMD17 molecule {molecule!r}; the molecules are {RMD17_MOLECULES}"
        )
    if int(split) not in range(1, 6):
        raise ValueError(f"rMD17 split must be 1..5, got {split!r}")
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"rMD17 data folder {str(root)!r} does not exist")
    out = []
    for part in ("train", "test"):
        path = root / f"rmd17_{molecule}_{part}_{int(split):02d}.npz"
        if not path.exists():
            raise FileNotFoundError(f"rMD17 file {str(path)!r} is missing")
        with np.load(path) as d:
            out.append(
                Molecules(
                    species=np.asarray(d["nuclear_charges"], np.int32),
                    positions=np.asarray(d["coords"], np.float32),
                    energies=np.asarray(d["energies"], np.float64) * KCAL_MOL_TO_MEV,
                    forces=(np.asarray(d["forces"]) * KCAL_MOL_TO_MEV).astype(
                        np.float32
                    ),
                )
            )
    return out[0], out[1]


def molecule_batch(
    positions: np.ndarray,
    species: np.ndarray,
    *,
    species_table: np.ndarray | tuple[int, ...],
    pad_nodes: int = 1,
) -> jraph.GraphsTuple:
    """A padded batch of ``B`` molecules with the same atom list (rMD17 frames).

    Nodes: ``positions [B·n + pad, 3]``, ``species [B·n + pad]`` (atomic numbers,
    0 on padding) and ``features`` (one-hot of the species over
    ``species_table``). The last graph is padding (``pad_nodes`` nodes, jraph's
    convention); there are no edges yet: use
    :func:`eqjax.geometric.with_radius_graph` (inside ``jit``).

    Args:
      positions: ``[B, n, 3]``.
      species: ``[n]`` atomic numbers (shared by the frames) or ``[B, n]``.
      species_table: the atomic numbers of the one-hot features.
      pad_nodes: nodes of the padding graph (>= 1).

    Example:
      >>> import numpy as np
      >>> g = molecule_batch(np.zeros((2, 3, 3)), np.array([6, 1, 1]),
      ...     species_table=(1, 6))
      >>> g.n_node.tolist(), g.nodes["features"].shape
      ([3, 3, 1], (7, 2))
    """
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise ValueError(f"positions must be [B, n, 3], got {positions.shape}")
    b, n, _ = positions.shape
    species = np.broadcast_to(np.asarray(species), (b, n))
    table = np.asarray(species_table)
    idx = np.searchsorted(table, species)
    if (idx >= len(table)).any() or (
        table[np.minimum(idx, len(table) - 1)] != species
    ).any():
        raise ValueError(
            f"species {np.unique(species)} not all in species_table {table}"
        )
    if pad_nodes < 1:
        raise ValueError(f"pad_nodes must be >= 1, got {pad_nodes}")
    feats = np.eye(len(table), dtype=np.float32)[idx.reshape(-1)]
    feats = np.concatenate([feats, np.zeros((pad_nodes, len(table)), np.float32)])
    pos = np.concatenate(
        [positions.reshape(-1, 3), np.zeros((pad_nodes, 3), positions.dtype)]
    )
    spec = np.concatenate([species.reshape(-1), np.zeros(pad_nodes, species.dtype)])
    return jraph.GraphsTuple(
        nodes={
            "positions": jnp.asarray(pos),
            "species": jnp.asarray(spec, jnp.int32),
            "features": jnp.asarray(feats),
        },
        edges=None,
        senders=None,
        receivers=None,
        globals=None,
        n_node=jnp.asarray([n] * b + [pad_nodes], jnp.int32),
        n_edge=jnp.zeros(b + 1, jnp.int32),
    )


QM9_TARGETS = {
    "mu": ("Dipole_debye", "D"),
    "alpha": ("Polarizability_bohr3", "bohr^3"),
    "homo": ("HOMO_au", "Hartree"),
    "lumo": ("LUMO_au", "Hartree"),
    "gap": ("HOMO_LUMO_gap_au", "Hartree"),
    "r2": ("R2_bohr2", "bohr^2"),
    "zpve": ("ZPVE_au", "Hartree"),
    "U0": ("InternalEnergy_0K_au", "Hartree"),
    "U": ("InternalEnergy_298K_au", "Hartree"),
    "H": ("Enthalphy_298K_au", "Hartree"),
    "G": ("GibbsFreeEnergy_298K_au", "Hartree"),
    "Cv": ("Heatcapacity_Cv_cal_mol_K", "cal/(mol K)"),
}
"""The 12 usual QM9 targets: name -> (qm9pack CSV column, unit as stored)."""

_ELEMENTS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}


class QM9(NamedTuple):
    """QM9 molecules (ragged: one entry per molecule).

    Attributes:
      species: list of ``[n_i]`` atomic numbers.
      positions: list of ``[n_i, 3]`` coordinates in Å (float32).
      targets: ``[M, 12]`` float64, columns in :data:`QM9_TARGETS` order.
      target_names: the 12 names.
      splits: ``{"train", "valid", "test"}`` -> index arrays (seeded).
    """

    species: list
    positions: list
    targets: np.ndarray
    target_names: tuple[str, ...]
    splits: dict


def qm9_data_dir() -> Path | None:
    """The ``data/`` folder of the installed ``qm9pack`` package, or ``None``."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data"
    return path if path.is_dir() else None


def load_qm9(
    *,
    seed: int = 0,
    num_train: int = 110_000,
    num_valid: int = 10_000,
    max_molecules: int | None = None,
) -> QM9:
    """QM9 from ``qm9pack``'s CSV files (``qm9_part1..3.csv``), read directly.

    Args:
      seed: seed of the random train/valid/test permutation.
      num_train, num_valid: split sizes; the test set is the rest (shrunk
        proportionally when ``max_molecules`` cuts the data).
      max_molecules: read only the first this many molecules (tests, quick runs).

    Raises:
      FileNotFoundError: ``qm9pack`` is not installed.
    """
    root = qm9_data_dir()
    if root is None:
        raise FileNotFoundError(
            "QM9 needs the PyPI package qm9pack: pip install --no-deps qm9pack"
        )
    names = tuple(QM9_TARGETS)
    species, positions, targets = [], [], []
    csv.field_size_limit(1 << 24)
    for part in ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv"):
        with open(root / part, newline="") as f:
            for row in csv.DictReader(f):
                if max_molecules is not None and len(species) >= max_molecules:
                    break
                elems = row["Elements"].strip("[]").replace("'", "").split(",")
                species.append(
                    np.array([_ELEMENTS[e.strip()] for e in elems], np.int32)
                )
                positions.append(_coords(row["XYZ_Ang"]))
                targets.append([_float(row[QM9_TARGETS[t][0]]) for t in names])
        if max_molecules is not None and len(species) >= max_molecules:
            break
    m = len(species)
    total = 130_831
    frac = min(1.0, m / total)
    n_tr = int(round(num_train * frac)) if m < total else num_train
    n_va = int(round(num_valid * frac)) if m < total else num_valid
    perm = np.random.default_rng(seed).permutation(m)
    splits = {
        "train": perm[:n_tr],
        "valid": perm[n_tr : n_tr + n_va],
        "test": perm[n_tr + n_va :],
    }
    return QM9(species, positions, np.asarray(targets, np.float64), names, splits)


def _float(s: str) -> float:
    try:
        return float(s)
    except ValueError:  # e.g. Fortran-style '1.2*^-6'
        return float(s.replace("*^", "e"))


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _coords(text: str) -> np.ndarray:
    """``"[[x,y,z],...]"`` (numbers like ``0.`` and ``1.2*^-6`` included) -> [n, 3]."""
    nums = _NUMBER.findall(text.replace("*^", "e"))
    return np.asarray([float(v) for v in nums], np.float32).reshape(-1, 3)
