"""Offline data sets and batching (host-side NumPy readers and seeded generators).

Graphs: the TU classification sets, EXP/CEXP, graph6 files (strongly regular
families), CSL, the rook's and Shrikhande graphs, Paley graphs; stratified
cross-validation folds; padded, size-bucketed ``jraph.GraphsTuple`` batches and
dense masked tensors. Molecules: :func:`load_rmd17` (rMD17, official splits, meV and
meV/Å), :func:`load_qm9` (the ``qm9pack`` CSV files), :func:`molecule_batch` (padded
``GraphsTuple`` batches). Simulation: :func:`charged_nbody` (the charged-particle
N-body data of EGNN, seeded). Bodies: :func:`articulated` (seeded kinematic trees of
rigid parts, narrow training and wide globally rotated test poses) and
:func:`articulated_rollout` (part masses under gravity above a ground plane); a
chain part's rotation is defined modulo :data:`PART_SYMMETRIES` (its box's
half-turn about the bone). Readers raise a clear error (path and line) for a
missing or malformed file.
"""

from ._articulated import PART_SYMMETRIES as PART_SYMMETRIES
from ._articulated import ArticulatedBodies as ArticulatedBodies
from ._articulated import BodyRollout as BodyRollout
from ._articulated import articulated as articulated
from ._articulated import articulated_rollout as articulated_rollout
from ._articulated import body_template as body_template
from ._articulated import forward_kinematics as forward_kinematics
from ._graphs import TU_SETS as TU_SETS
from ._graphs import DenseBatch as DenseBatch
from ._graphs import Graph as Graph
from ._graphs import bucket_size as bucket_size
from ._graphs import csl as csl
from ._graphs import cv_folds as cv_folds
from ._graphs import cycle_graph as cycle_graph
from ._graphs import dense_batch as dense_batch
from ._graphs import disjoint_union as disjoint_union
from ._graphs import erdos_renyi_graph as erdos_renyi_graph
from ._graphs import exp as exp
from ._graphs import from_adjacency as from_adjacency
from ._graphs import graph_batches as graph_batches
from ._graphs import graph_labels as graph_labels
from ._graphs import pad_graphs as pad_graphs
from ._graphs import paley_graph as paley_graph
from ._graphs import parse_graph6 as parse_graph6
from ._graphs import random_regular_graph as random_regular_graph
from ._graphs import read_graph6 as read_graph6
from ._graphs import read_graphsat as read_graphsat
from ._graphs import rook_graph as rook_graph
from ._graphs import shrikhande_graph as shrikhande_graph
from ._graphs import strongly_regular as strongly_regular
from ._graphs import to_adjacency as to_adjacency
from ._graphs import tu as tu
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
    "ArticulatedBodies",
    "PART_SYMMETRIES",
    "BodyRollout",
    "articulated",
    "articulated_rollout",
    "body_template",
    "forward_kinematics",
    "DenseBatch",
    "Graph",
    "KCAL_MOL_TO_MEV",
    "Molecules",
    "NBodyData",
    "QM9",
    "QM9_TARGETS",
    "RMD17_MOLECULES",
    "TU_SETS",
    "bucket_size",
    "charged_nbody",
    "csl",
    "cv_folds",
    "cycle_graph",
    "dense_batch",
    "disjoint_union",
    "erdos_renyi_graph",
    "exp",
    "from_adjacency",
    "graph_batches",
    "graph_labels",
    "load_qm9",
    "load_rmd17",
    "molecule_batch",
    "pad_graphs",
    "paley_graph",
    "parse_graph6",
    "qm9_data_dir",
    "random_regular_graph",
    "read_graph6",
    "read_graphsat",
    "rook_graph",
    "shrikhande_graph",
    "strongly_regular",
    "to_adjacency",
    "tu",
]
