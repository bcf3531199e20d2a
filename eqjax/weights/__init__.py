"""Symmetries of a network's own parameters and of its classifier geometry.

One mechanism runs through the area: a group acting on parameters (or on
features and classifier together) that leaves the function or the loss unchanged.

- Ainsworth, Hayase & Srinivasa, "Git Re-Basin" (ICLR 2023): permutation specs
  of NNX modules (:func:`permutation_spec`, :func:`spec_from_axes`,
  :func:`apply_permutation`, :func:`permutation_group`), weight matching
  (:func:`weight_matching`), the straight-through estimator
  (:func:`ste_matching`), interpolation barriers (:func:`interpolation_curve`,
  :func:`barrier`) and merging (:func:`merge_models`).
- Ito, Yamada & Kumagai (ICLR 2025): singular values are unchanged by
  permutations; :func:`singular_vector_alignment`, :func:`l2_distance`.
- Shen et al., "Equiangular Basis Vectors" (CVPR 2023): :func:`equiangular_basis`,
  :func:`ebv_logits`, :func:`ebv_loss`; fixed :func:`simplex_etf` and
  :func:`orthogonal_frame` heads.
- Dang, Nguyen, Tran, Tran & Ho, "Neural Collapse in Deep Linear Networks"
  (ICML 2023): :func:`nc1`, :func:`nc2_etf`, :func:`nc2_of`, :func:`nc2_gof`,
  :func:`nc3_etf`, the closed-form imbalanced geometry
  (:func:`imbalanced_geometry`) and the unconstrained-features model
  (:func:`train_ufm`).
- Buban et al., "Encrypted Large Model Inference: The Equivariant Encryption
  Paradigm" (arXiv 2502.01013): :func:`generate_key`, :func:`encrypt_weights`,
  :func:`encrypt_tokens`, :func:`decrypt_logits`, and the frequency-analysis and
  hill-climbing attack :func:`attack_vocabulary_permutation`.

Parameter trees are ``nnx.State`` objects or plain pytrees of arrays; Flax is
imported only by :func:`permutation_spec` (it traces the module).
"""

from ._collapse import class_means as class_means
from ._collapse import imbalanced_geometry as imbalanced_geometry
from ._collapse import nc1 as nc1
from ._collapse import nc2_etf as nc2_etf
from ._collapse import nc2_gof as nc2_gof
from ._collapse import nc2_of as nc2_of
from ._collapse import nc3_etf as nc3_etf
from ._collapse import train_ufm as train_ufm
from ._ebv import ebv_logits as ebv_logits
from ._ebv import ebv_loss as ebv_loss
from ._ebv import equiangular_basis as equiangular_basis
from ._ebv import orthogonal_frame as orthogonal_frame
from ._ebv import simplex_etf as simplex_etf
from ._ebv import welch_bound as welch_bound
from ._encryption import VOCAB as VOCAB
from ._encryption import EncryptionKey as EncryptionKey
from ._encryption import apply_orthogonal as apply_orthogonal
from ._encryption import attack_vocabulary_permutation as attack_vocabulary_permutation
from ._encryption import decrypt_logits as decrypt_logits
from ._encryption import decrypt_tokens as decrypt_tokens
from ._encryption import encrypt_tokens as encrypt_tokens
from ._encryption import encrypt_weights as encrypt_weights
from ._encryption import encryption_spec as encryption_spec
from ._encryption import generate_key as generate_key
from ._encryption import key_recovery as key_recovery
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
from ._spec import view_of as view_of

__all__ = [
    "VOCAB",
    "EncryptionKey",
    "apply_orthogonal",
    "attack_vocabulary_permutation",
    "decrypt_logits",
    "decrypt_tokens",
    "encrypt_tokens",
    "encrypt_weights",
    "encryption_spec",
    "generate_key",
    "key_recovery",
    "class_means",
    "imbalanced_geometry",
    "nc1",
    "nc2_etf",
    "nc2_gof",
    "nc2_of",
    "nc3_etf",
    "train_ufm",
    "ebv_logits",
    "ebv_loss",
    "equiangular_basis",
    "orthogonal_frame",
    "simplex_etf",
    "welch_bound",
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
    "view_of",
]
