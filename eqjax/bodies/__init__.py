"""Partial and piecewise symmetry for articulated bodies.

- Chen, Han, Sun, Huang, "Subequivariant Graph Reinforcement Learning in 3D
  Environments" (SET, ICML 2023): :func:`set_init`, :func:`set_model`,
  :func:`set_layer`, :func:`gram_invariants` — O(3)-equivariant in all vectors,
  exactly O_g(3)-symmetric with gravity fixed (:func:`eqjax.groups.axis_subgroup`).
- Atzmon, Huang, Williams, Litany, "Approximately Piecewise E(3) Equivariant
  Point Networks" (APEN, ICLR 2024): :func:`piecewise_frame_average` over weighted
  PCA frames of hard or soft parts, :func:`part_outputs`, the fixed-shape
  mixture of part candidates (:class:`PartMixture`, :func:`mixture_init`,
  :func:`em_step`, :func:`merge_and_prune`, :func:`responsibilities`,
  :func:`mixture_log_likelihood`), :func:`straight_through_parts`; a small APEN
  segmentation model (:func:`apen_init`, :func:`apen`, :func:`apen_votes`).
- Feng, Kulits, Liu, Black, Abrevaya, "Generalizing Neural Human Fitting to Unseen
  Poses With Articulated SE(3) Equivariance" (ArtEq, ICCV 2023):
  :func:`chordal_mean` (weighted, SVD projection with the determinant fix,
  :func:`project_to_so3`) and a small ArtEq-style model whose anchors are each
  soft part's PCA frame or the octahedral rotation group (:data:`ANCHORS`;
  :func:`arteq_init`, :func:`arteq`; :func:`check_tree`).

The NNX modules are :class:`eqjax.nn.SET`, :class:`eqjax.nn.APEN` and
:class:`eqjax.nn.ArtEq`.
"""

from ._apen import apen as apen
from ._apen import apen_init as apen_init
from ._apen import apen_votes as apen_votes
from ._arteq import ANCHORS as ANCHORS
from ._arteq import arteq as arteq
from ._arteq import arteq_init as arteq_init
from ._arteq import check_tree as check_tree
from ._chordal import chordal_mean as chordal_mean
from ._chordal import project_to_so3 as project_to_so3
from ._piecewise import PartMixture as PartMixture
from ._piecewise import em_step as em_step
from ._piecewise import merge_and_prune as merge_and_prune
from ._piecewise import mixture_init as mixture_init
from ._piecewise import mixture_log_likelihood as mixture_log_likelihood
from ._piecewise import part_outputs as part_outputs
from ._piecewise import piecewise_frame_average as piecewise_frame_average
from ._piecewise import responsibilities as responsibilities
from ._piecewise import straight_through_parts as straight_through_parts
from ._set import gram_invariants as gram_invariants
from ._set import set_init as set_init
from ._set import set_layer as set_layer
from ._set import set_model as set_model

__all__ = [
    "ANCHORS",
    "PartMixture",
    "apen",
    "apen_init",
    "apen_votes",
    "arteq",
    "arteq_init",
    "check_tree",
    "chordal_mean",
    "em_step",
    "merge_and_prune",
    "mixture_init",
    "mixture_log_likelihood",
    "part_outputs",
    "piecewise_frame_average",
    "project_to_so3",
    "responsibilities",
    "straight_through_parts",
    "gram_invariants",
    "set_init",
    "set_layer",
    "set_model",
]
