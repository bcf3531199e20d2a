"""Groups, their elements and their actions.

A group is a :class:`Group` record of pure functions; elements are arrays (matrix
groups, permutations) or NamedTuple pytrees (``(R, t)``, ``(A, b)``) that batch
over leading axes.
"""

from ._base import Action as Action
from ._base import Group as Group
from ._clouds import cloud_action as cloud_action
from ._euclidean import E3 as E3
from ._euclidean import SE3 as SE3
from ._euclidean import En as En
from ._euclidean import EuclideanElement as EuclideanElement
from ._euclidean import SEn as SEn
from ._euclidean import act_vectors as act_vectors
from ._euclidean import se3_exp as se3_exp
from ._euclidean import se3_log as se3_log
from ._irreps import act_irreps as act_irreps
from ._irreps import fibonacci_sphere as fibonacci_sphere
from ._irreps import wigner_D as wigner_D
from ._linear import SL as SL
from ._linear import Aff as Aff
from ._linear import AffineElement as AffineElement
from ._linear import GLPlus as GLPlus
from ._linear import iwasawa_compose as iwasawa_compose
from ._linear import iwasawa_decomposition as iwasawa_decomposition
from ._linear import polar_compose as polar_compose
from ._linear import polar_decomposition as polar_decomposition
from ._orthogonal import O2 as O2
from ._orthogonal import O3 as O3
from ._orthogonal import SO2 as SO2
from ._orthogonal import SO3 as SO3
from ._orthogonal import On as On
from ._orthogonal import SOn as SOn
from ._orthogonal import axis_rotations as axis_rotations
from ._orthogonal import axis_subgroup as axis_subgroup
from ._orthogonal import matrix_to_quaternion as matrix_to_quaternion
from ._orthogonal import skew as skew
from ._orthogonal import so2_exp as so2_exp
from ._orthogonal import so2_log as so2_log
from ._orthogonal import so3_exp as so3_exp
from ._orthogonal import so3_log as so3_log
from ._orthogonal import vee as vee
from ._permutations import Sn as Sn
from ._permutations import act_adjacency as act_adjacency
from ._permutations import act_graph as act_graph
from ._permutations import act_graph_tensors as act_graph_tensors
from ._permutations import act_set as act_set
from ._permutations import graph_node_permutations as graph_node_permutations
from ._permutations import permutation_inverse as permutation_inverse

__all__ = [
    "Action",
    "Aff",
    "AffineElement",
    "E3",
    "En",
    "EuclideanElement",
    "GLPlus",
    "Group",
    "O2",
    "O3",
    "On",
    "SE3",
    "SEn",
    "SL",
    "SO2",
    "SO3",
    "SOn",
    "Sn",
    "act_adjacency",
    "act_graph",
    "act_graph_tensors",
    "act_irreps",
    "act_set",
    "act_vectors",
    "axis_rotations",
    "axis_subgroup",
    "cloud_action",
    "graph_node_permutations",
    "iwasawa_compose",
    "iwasawa_decomposition",
    "matrix_to_quaternion",
    "permutation_inverse",
    "polar_compose",
    "polar_decomposition",
    "se3_exp",
    "se3_log",
    "skew",
    "so2_exp",
    "so2_log",
    "so3_exp",
    "so3_log",
    "vee",
    "wigner_D",
    "fibonacci_sphere",
]
