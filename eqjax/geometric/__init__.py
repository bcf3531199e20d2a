"""Geometric message passing: radius/kNN graphs, EGNN, PONITA, MDS representations.

- Satorras, Hoogeboom, Welling, "E(n) Equivariant Graph Neural Networks" (ICML
  2021): :func:`egnn_layer`.
- Bekkers, Vadgama, Hesselink, van der Linden, Romero, "Fast, Expressive SE(n)
  Equivariant Networks through Weight-Sharing in Position-Orientation Space"
  (PONITA, ICLR 2024): invariants (:func:`invariants_r3`,
  :func:`invariants_r3s2_point_cloud`, :func:`ponita_invariants` for the fiber
  bundle, :func:`invariants_r2s1`), :func:`sphere_grid`, polynomial embeddings, the
  separable and the full fiber-bundle convolutions, the ConvNeXt block, lifting and
  readouts; :func:`edge_lift` / :func:`lift_to_edges` / :func:`lower_from_edges`
  for the point-cloud mode lifted along the edges. The model is
  :class:`eqjax.nn.PONITA`.
- Zhang et al., TinvNN (arXiv 2112.12345): :func:`mds_representation`.

Graphs are padded ``jraph.GraphsTuple`` batches with ``nodes["positions"]``;
:func:`with_radius_graph` fills in the edges with a fixed capacity.
"""

from ._actions import act_graph_positions as act_graph_positions
from ._actions import octahedral_rotations as octahedral_rotations
from ._egnn import egnn_layer as egnn_layer
from ._invariants import circle_grid as circle_grid
from ._invariants import invariants_r2s1 as invariants_r2s1
from ._invariants import invariants_r3 as invariants_r3
from ._invariants import invariants_r3s2_point_cloud as invariants_r3s2_point_cloud
from ._invariants import polynomial_features as polynomial_features
from ._invariants import ponita_invariants as ponita_invariants
from ._invariants import smooth_cutoff as smooth_cutoff
from ._invariants import sphere_grid as sphere_grid
from ._lifting import EdgeLift as EdgeLift
from ._lifting import edge_lift as edge_lift
from ._lifting import lift_to_edges as lift_to_edges
from ._lifting import lower_from_edges as lower_from_edges
from ._mds import mds_representation as mds_representation
from ._neighbours import Edges as Edges
from ._neighbours import edge_mask_of as edge_mask_of
from ._neighbours import graph_index as graph_index
from ._neighbours import knn_graph as knn_graph
from ._neighbours import node_dict as node_dict
from ._neighbours import positions_of as positions_of
from ._neighbours import radius_graph as radius_graph
from ._neighbours import with_radius_graph as with_radius_graph
from ._ponita import convnext_block as convnext_block
from ._ponita import fiber_bundle_conv as fiber_bundle_conv
from ._ponita import full_invariants as full_invariants
from ._ponita import layer_norm as layer_norm
from ._ponita import lift as lift
from ._ponita import readout_scalars as readout_scalars
from ._ponita import readout_vectors as readout_vectors
from ._ponita import separable_conv as separable_conv

__all__ = [
    "EdgeLift",
    "Edges",
    "act_graph_positions",
    "circle_grid",
    "convnext_block",
    "edge_lift",
    "edge_mask_of",
    "egnn_layer",
    "fiber_bundle_conv",
    "full_invariants",
    "graph_index",
    "invariants_r2s1",
    "invariants_r3",
    "invariants_r3s2_point_cloud",
    "knn_graph",
    "layer_norm",
    "lift",
    "lift_to_edges",
    "lower_from_edges",
    "mds_representation",
    "node_dict",
    "octahedral_rotations",
    "polynomial_features",
    "ponita_invariants",
    "positions_of",
    "radius_graph",
    "readout_scalars",
    "readout_vectors",
    "separable_conv",
    "smooth_cutoff",
    "sphere_grid",
    "with_radius_graph",
]
