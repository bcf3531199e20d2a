"""Balanced-tree reductions and (learnable) commutative monoids.

Ong & Veličković, "Learnable Commutative Monoids for Graph Neural Networks"
(LoG 2022): :func:`tree_reduce` reduces ragged segments with a binary operator
over a balanced binary tree (O(log n) depth); :func:`tree_reduce_dense` does the
same for masked dense sets; the exact monoids (sum, max, min, logsumexp, product)
make it a permutation-invariant set function, and the learnable commutative
monoids (:func:`symmetric_gru_monoid`, :func:`symmetric_mlp_monoid`: a
:class:`Monoid` like the exact ones, from the operators :func:`symmetric_gru_op`,
:func:`symmetric_mlp_op` and a learnable identity) with
:func:`associativity_penalty` / :func:`identity_penalty` learn one.
:func:`aggregate` / :func:`tree_aggregator` plug it into jraph message passing,
and :func:`gru_fold` is the recurrent O(n) baseline. Padded jraph graphs: pass
``mask=jraph.get_edge_padding_mask(graph)``; over-full segments are reported
(``on_overflow``), never silently truncated; ``order="sorted"`` makes a learnable
(non-associative) monoid independent of the order of the edges.
"""

from ._aggregate import aggregate as aggregate
from ._aggregate import tree_aggregator as tree_aggregator
from ._fold import gru_fold as gru_fold
from ._fold import gru_fold_dense as gru_fold_dense
from ._monoids import GRUCellParams as GRUCellParams
from ._monoids import MLPParams as MLPParams
from ._monoids import Monoid as Monoid
from ._monoids import associativity_penalty as associativity_penalty
from ._monoids import gru_cell as gru_cell
from ._monoids import identity_penalty as identity_penalty
from ._monoids import init_gru_cell as init_gru_cell
from ._monoids import init_mlp_op as init_mlp_op
from ._monoids import logsumexp_monoid as logsumexp_monoid
from ._monoids import max_monoid as max_monoid
from ._monoids import min_monoid as min_monoid
from ._monoids import product_monoid as product_monoid
from ._monoids import sum_monoid as sum_monoid
from ._monoids import symmetric_gru_monoid as symmetric_gru_monoid
from ._monoids import symmetric_gru_op as symmetric_gru_op
from ._monoids import symmetric_mlp_monoid as symmetric_mlp_monoid
from ._monoids import symmetric_mlp_op as symmetric_mlp_op
from ._tree import check_reduction_options as check_reduction_options
from ._tree import num_levels as num_levels
from ._tree import segment_overflow as segment_overflow
from ._tree import segment_positions as segment_positions
from ._tree import segments_to_dense as segments_to_dense
from ._tree import tree_reduce as tree_reduce
from ._tree import tree_reduce_dense as tree_reduce_dense

__all__ = [
    "GRUCellParams",
    "MLPParams",
    "Monoid",
    "aggregate",
    "associativity_penalty",
    "check_reduction_options",
    "gru_cell",
    "gru_fold",
    "gru_fold_dense",
    "identity_penalty",
    "init_gru_cell",
    "init_mlp_op",
    "logsumexp_monoid",
    "max_monoid",
    "min_monoid",
    "num_levels",
    "product_monoid",
    "segment_overflow",
    "segment_positions",
    "segments_to_dense",
    "sum_monoid",
    "symmetric_gru_monoid",
    "symmetric_gru_op",
    "symmetric_mlp_monoid",
    "symmetric_mlp_op",
    "tree_aggregator",
    "tree_reduce",
    "tree_reduce_dense",
]
