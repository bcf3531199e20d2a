"""Symmetries of a network's own parameters and of its classifier geometry.

Ainsworth, Hayase & Srinivasa, "Git Re-Basin" (ICLR 2023): permutation specs of
NNX modules (:func:`permutation_spec`, :func:`apply_permutation`) and weight
matching (:func:`weight_matching`).
"""

from ._matching import barrier as barrier
from ._matching import interpolate as interpolate
from ._matching import interpolation_curve as interpolation_curve
from ._matching import l2_distance as l2_distance
from ._matching import matching_objective as matching_objective
from ._matching import merge_models as merge_models
from ._matching import singular_vector_alignment as singular_vector_alignment
from ._matching import ste_matching as ste_matching
from ._matching import weight_matching as weight_matching
from ._spec import Perm as Perm
from ._spec import PermutationSpec as PermutationSpec
from ._spec import apply_permutation as apply_permutation
from ._spec import identity_permutation as identity_permutation
from ._spec import invert_permutation as invert_permutation
from ._spec import path_string as path_string
from ._spec import permutation_group as permutation_group
from ._spec import permutation_spec as permutation_spec
from ._spec import permuted_module as permuted_module
from ._spec import random_permutation as random_permutation
from ._spec import spec_from_axes as spec_from_axes
from ._spec import spec_perm_axes as spec_perm_axes

__all__ = [
    "barrier",
    "interpolate",
    "interpolation_curve",
    "l2_distance",
    "matching_objective",
    "merge_models",
    "singular_vector_alignment",
    "ste_matching",
    "weight_matching",
    "Perm",
    "PermutationSpec",
    "apply_permutation",
    "identity_permutation",
    "invert_permutation",
    "path_string",
    "permutation_group",
    "permutation_spec",
    "permuted_module",
    "random_permutation",
    "spec_from_axes",
    "spec_perm_axes",
]
