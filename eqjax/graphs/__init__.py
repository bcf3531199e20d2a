"""Permutation-equivariant graph networks: IGN layers, a global 2-IGN, GIN, SPEN.

Maron et al., "Invariant and Equivariant Graph Networks" (ICLR 2019): linear
``S_n``-equivariant maps between order-k tensors, one basis element per set
partition (:func:`ign_linear`, :func:`ign_basis`). Mitton & Murray-Smith,
"Subgraph Permutation Equivariant Networks" (arXiv:2111.11840): 2-IGN layers on
k-hop ego networks, weights shared per sub-graph size bucket
(:func:`ego_subgraphs`, :func:`spen_layer`, :func:`spen`). Xu et al., "How
Powerful are Graph Neural Networks?" (ICLR 2019): the GIN baseline (:func:`gin`).
Puny et al., "Equivariant Polynomials for Graph Neural Networks" (ICML 2023): the
basis polynomials ``P_H`` of pattern graphs with 0, 1 or 2 marked vertices and
whether PPGN computes them (:func:`polynomial_basis`, :func:`polynomial_pattern`,
:func:`evaluate_polynomial`). Maron et al., "Provably Powerful Graph Networks"
(NeurIPS 2019) and Puny et al.'s PPGN++: matrix-product blocks on dense pair
tensors, with the polynomials PPGN cannot compute as extra input channels
(:func:`ppgn_block`, :func:`ppgn`, :func:`ppgn_input`, :func:`ppgn_plus_patterns`).
Huang et al., "On the Stability of Expressive Positional Encodings for Graphs"
(ICLR 2024): SPE, ``ρ([V diag(φ_ℓ(λ)) Vᵀ]_ℓ)`` on normalised-Laplacian eigenpairs,
with the raw-eigenvector and SignNet-style baselines (:func:`laplacian_eigenpairs`,
:func:`laplacian_eigh`, :func:`spe`, :func:`eigvec_pe`, :func:`signnet_pe`).
"""

from ._ign import IGNParams as IGNParams
from ._ign import ign_basis as ign_basis
from ._ign import ign_basis_size as ign_basis_size
from ._ign import ign_init as ign_init
from ._ign import ign_linear as ign_linear
from ._ign import set_partitions as set_partitions
from ._models import GINParams as GINParams
from ._models import IGNModelParams as IGNModelParams
from ._models import MLPParams as MLPParams
from ._models import gin as gin
from ._models import gin_init as gin_init
from ._models import ign_model as ign_model
from ._models import ign_model_init as ign_model_init
from ._models import mlp as mlp
from ._models import mlp_init as mlp_init
from ._polynomials import MAX_BASIS_EDGES as MAX_BASIS_EDGES
from ._polynomials import MAX_PATTERN_EDGES as MAX_PATTERN_EDGES
from ._polynomials import PolynomialPattern as PolynomialPattern
from ._polynomials import evaluate_polynomial as evaluate_polynomial
from ._polynomials import evaluate_polynomials as evaluate_polynomials
from ._polynomials import polynomial_basis as polynomial_basis
from ._polynomials import polynomial_pattern as polynomial_pattern
from ._ppgn import PPGNBlockParams as PPGNBlockParams
from ._ppgn import PPGNParams as PPGNParams
from ._ppgn import ppgn as ppgn
from ._ppgn import ppgn_block as ppgn_block
from ._ppgn import ppgn_block_init as ppgn_block_init
from ._ppgn import ppgn_init as ppgn_init
from ._ppgn import ppgn_input as ppgn_input
from ._ppgn import ppgn_plus_patterns as ppgn_plus_patterns
from ._spe import PAD_EIGENVALUE as PAD_EIGENVALUE
from ._spe import Eigenpairs as Eigenpairs
from ._spe import EigvecPEParams as EigvecPEParams
from ._spe import SignNetParams as SignNetParams
from ._spe import SPEParams as SPEParams
from ._spe import eigvec_pe as eigvec_pe
from ._spe import eigvec_pe_init as eigvec_pe_init
from ._spe import laplacian_eigenpairs as laplacian_eigenpairs
from ._spe import laplacian_eigh as laplacian_eigh
from ._spe import normalized_laplacian as normalized_laplacian
from ._spe import signnet_pe as signnet_pe
from ._spe import signnet_pe_init as signnet_pe_init
from ._spe import spe as spe
from ._spe import spe_init as spe_init
from ._spen import DEFAULT_BUCKETS as DEFAULT_BUCKETS
from ._spen import EgoSubgraphs as EgoSubgraphs
from ._spen import SPENLayerParams as SPENLayerParams
from ._spen import SPENParams as SPENParams
from ._spen import SubgraphBucket as SubgraphBucket
from ._spen import ego_subgraphs as ego_subgraphs
from ._spen import graph_ids as graph_ids
from ._spen import graph_subgraphs as graph_subgraphs
from ._spen import relabel_subgraphs as relabel_subgraphs
from ._spen import spen as spen
from ._spen import spen_init as spen_init
from ._spen import spen_layer as spen_layer
from ._spen import spen_layer_init as spen_layer_init

__all__ = [
    "DEFAULT_BUCKETS",
    "MAX_BASIS_EDGES",
    "MAX_PATTERN_EDGES",
    "PAD_EIGENVALUE",
    "EgoSubgraphs",
    "Eigenpairs",
    "EigvecPEParams",
    "GINParams",
    "IGNModelParams",
    "IGNParams",
    "MLPParams",
    "PPGNBlockParams",
    "PPGNParams",
    "PolynomialPattern",
    "SPENLayerParams",
    "SPENParams",
    "SPEParams",
    "SignNetParams",
    "SubgraphBucket",
    "ego_subgraphs",
    "eigvec_pe",
    "eigvec_pe_init",
    "evaluate_polynomial",
    "evaluate_polynomials",
    "gin",
    "gin_init",
    "graph_ids",
    "graph_subgraphs",
    "ign_basis",
    "ign_basis_size",
    "ign_init",
    "ign_linear",
    "ign_model",
    "ign_model_init",
    "laplacian_eigenpairs",
    "laplacian_eigh",
    "mlp",
    "mlp_init",
    "normalized_laplacian",
    "polynomial_basis",
    "polynomial_pattern",
    "ppgn",
    "ppgn_block",
    "ppgn_block_init",
    "ppgn_init",
    "ppgn_input",
    "ppgn_plus_patterns",
    "relabel_subgraphs",
    "set_partitions",
    "signnet_pe",
    "signnet_pe_init",
    "spe",
    "spe_init",
    "spen",
    "spen_init",
    "spen_layer",
    "spen_layer_init",
]
