"""Offline data-set readers and seeded generators.

Molecules: :func:`load_rmd17` (rMD17, official splits, meV and meV/Å),
:func:`load_qm9` (the ``qm9pack`` CSV files), :func:`molecule_batch` (padded
``GraphsTuple`` batches). Simulation: :func:`charged_nbody` (the charged-particle
N-body data of EGNN, seeded).
"""

from ._molecules import KCAL_MOL_TO_MEV as KCAL_MOL_TO_MEV
from ._molecules import QM9 as QM9
from ._molecules import QM9_TARGETS as QM9_TARGETS
from ._molecules import RMD17_MOLECULES as RMD17_MOLECULES
from ._molecules import Molecules as Molecules
from ._molecules import load_qm9 as load_qm9
from ._molecules import load_rmd17 as load_rmd17
from ._molecules import molecule_batch as molecule_batch
from ._molecules import qm9_data_dir as qm9_data_dir
from ._nbody import NBodyData as NBodyData
from ._nbody import charged_nbody as charged_nbody

__all__ = [
    "KCAL_MOL_TO_MEV",
    "QM9",
    "QM9_TARGETS",
    "Molecules",
    "NBodyData",
    "RMD17_MOLECULES",
    "charged_nbody",
    "load_qm9",
    "load_rmd17",
    "molecule_batch",
    "qm9_data_dir",
]
