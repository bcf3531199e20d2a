"""Group actions on geometric graphs, and the octahedral rotations."""

from __future__ import annotations

import functools
import itertools

import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Array, Float

from ..groups import EuclideanElement
from ._neighbours import node_dict

_VECTOR_KEYS = ("velocities", "orientations", "forces")


def act_graph_positions(
    g: EuclideanElement, graphs: jraph.GraphsTuple
) -> jraph.GraphsTuple:
    """Move a geometric ``GraphsTuple`` by one E(3) element ``g = (R, t)``:
    ``nodes["positions"] -> R x + t``; the free vectors ``nodes["velocities"]``,
    ``nodes["orientations"]``, ``nodes["forces"]`` (``[N, 3]``) and
    ``nodes["vectors"]`` (``[N, V, 3]``) are rotated only; every other entry
    (features, species) and the edges are unchanged.

    Example:
      >>> import jax.numpy as jnp, jraph, eqjax as eq
      >>> g = jraph.GraphsTuple(nodes={"positions": jnp.zeros((2, 3))}, edges=None,
      ...     senders=None, receivers=None, globals=None, n_node=jnp.array([2]),
      ...     n_edge=jnp.array([0]))
      >>> e = eq.groups.EuclideanElement(jnp.eye(3), jnp.ones(3))
      >>> act_graph_positions(e, g).nodes["positions"].tolist()[0]
      [1.0, 1.0, 1.0]
    """
    nodes = node_dict(graphs, "act_graph_positions")
    if "positions" not in nodes:
        raise ValueError("act_graph_positions: graphs.nodes needs a 'positions' entry")
    R, t = g
    out = dict(nodes)
    out["positions"] = nodes["positions"] @ R.T + t[None, :]
    for k in _VECTOR_KEYS:
        if k in nodes and nodes[k] is not None:
            out[k] = nodes[k] @ R.T
    if "vectors" in nodes and nodes["vectors"] is not None:
        out["vectors"] = jnp.einsum("ij,nvj->nvi", R, nodes["vectors"])
    return graphs._replace(nodes=out)


@functools.cache
def _octahedral(reflections: bool) -> np.ndarray:
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = signs
            if reflections or np.linalg.det(m) > 0:
                mats.append(m)
    return np.stack(mats)


def octahedral_rotations(
    *, reflections: bool = False, dtype=None
) -> Float[Array, "K 3 3"]:
    """The 24 rotations of the cube (signed permutation matrices with determinant
    +1), or all 48 elements of the full octahedral group with ``reflections``.
    They permute :func:`sphere_grid` ``(6, kind="octahedral")``.

    Example:
      >>> octahedral_rotations().shape, octahedral_rotations(reflections=True).shape
      ((24, 3, 3), (48, 3, 3))
    """
    dt = jnp.zeros((), dtype).dtype if dtype is not None else jnp.zeros(()).dtype
    return jnp.asarray(_octahedral(bool(reflections)), dt)
