"""Partial and piecewise symmetry for articulated bodies.

- Chen, Han, Sun, Huang, "Subequivariant Graph Reinforcement Learning in 3D
  Environments" (SET, ICML 2023): :func:`set_init`, :func:`set_model`,
  :func:`set_layer`, :func:`gram_invariants` — O(3)-equivariant in all vectors,
  exactly O_g(3)-symmetric with gravity fixed (:func:`eqjax.groups.axis_subgroup`).
The NNX module is :class:`eqjax.nn.SET`.
"""

from ._set import gram_invariants as gram_invariants
from ._set import set_init as set_init
from ._set import set_layer as set_layer
from ._set import set_model as set_model

__all__ = [
    "gram_invariants",
    "set_init",
    "set_layer",
    "set_model",
]
