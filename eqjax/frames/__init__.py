"""Frames and frame averaging: make any backbone exactly invariant or equivariant.

Puny et al., "Frame Averaging for Invariant and Equivariant Network Design",
ICLR 2022. A frame maps an input ``X`` to a weighted set of elements of a
:class:`~eqjax.groups.Group` with ``F(g·X) = g·F(X)``; :func:`frame_average`
symmetrises a function over it.
"""

from ..groups import cloud_action as cloud_action
from ._core import Frame as Frame
from ._core import ProductElement as ProductElement
from ._core import frame_average as frame_average
from ._core import invert_elements as invert_elements
from ._core import product_act as product_act
from ._core import product_frame as product_frame
from ._core import stochastic_frame_average as stochastic_frame_average
from ._pca import pca_frame as pca_frame
from ._pca import pca_spectrum as pca_spectrum
from ._pca import plain_pca_frame as plain_pca_frame
from ._pca import point_pair_frame as point_pair_frame
from ._permutations import graph_frame as graph_frame
from ._permutations import permutation_frame as permutation_frame
from ._permutations import sort_frame as sort_frame
from ._permutations import wl_colours as wl_colours

__all__ = [
    "Frame",
    "ProductElement",
    "cloud_action",
    "frame_average",
    "graph_frame",
    "invert_elements",
    "pca_frame",
    "pca_spectrum",
    "plain_pca_frame",
    "permutation_frame",
    "point_pair_frame",
    "product_act",
    "product_frame",
    "sort_frame",
    "stochastic_frame_average",
    "wl_colours",
]
