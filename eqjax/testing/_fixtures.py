"""Deterministic input factories: point clouds (generic and degenerate) and small
graphs (isolated nodes, empty graphs, jraph padding). NumPy only, no hypothesis."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import jraph
import numpy as np
from numpy.typing import DTypeLike

DEGENERATE_CLOUDS = (
    "coincident",
    "zero",
    "duplicates",
    "collinear",
    "planar",
    "square",
    "cube",
    "tetrahedron",
    "cylinder",
)
"""Names accepted by :func:`degenerate_cloud`."""


def _size(value, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{what} must be an int, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def random_cloud(
    seed: int, n: int = 8, dim: int = 3, dtype: DTypeLike = np.float64
) -> np.ndarray:
    """A generic Gaussian point cloud ``(n, dim)`` (distinct covariance eigenvalues
    almost surely).

    Example:
      >>> random_cloud(0, 5).shape
      (5, 3)
    """
    n = _size(n, "random_cloud: n", 0)
    dim = _size(dim, "random_cloud: dim", 1)
    rng = np.random.default_rng(seed)
    scales = np.linspace(1.5, 0.5, dim)
    return (rng.normal(size=(n, dim)) * scales).astype(dtype)


def degenerate_cloud(
    kind: str, dtype: DTypeLike = np.float64, seed: int = 0
) -> np.ndarray:
    """A 3D point cloud with a degenerate feature (``kind`` in
    :data:`DEGENERATE_CLOUDS`): coincident points, all-zero, repeated points,
    collinear, planar, and shapes with repeated covariance eigenvalues (square,
    cube, regular tetrahedron, a cylinder symmetric about its axis).

    Example:
      >>> degenerate_cloud("cube").shape
      (8, 3)
    """
    rng = np.random.default_rng(seed)
    if kind == "coincident":
        x = np.tile(rng.normal(size=(1, 3)), (6, 1))
    elif kind == "zero":
        x = np.zeros((6, 3))
    elif kind == "duplicates":
        base = rng.normal(size=(4, 3))
        x = np.concatenate([base, base[:2]], 0)
    elif kind == "collinear":
        x = np.outer(rng.normal(size=6), rng.normal(size=3)) + rng.normal(size=3)
    elif kind == "planar":
        x = np.concatenate([rng.normal(size=(8, 2)), np.zeros((8, 1))], 1)
    elif kind == "square":
        x = np.array([[1, 1, 0], [1, -1, 0], [-1, 1, 0], [-1, -1, 0]], dtype=np.float64)
    elif kind == "cube":
        x = np.array(list(itertools.product([-1.0, 1.0], repeat=3)))
    elif kind == "tetrahedron":
        x = np.array(
            [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64
        )
    elif kind == "cylinder":
        t = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        ring = np.stack([np.cos(t), np.sin(t), np.zeros_like(t)], 1)
        x = np.concatenate([ring + [0, 0, 1.0], ring - [0, 0, 1.0]], 0)
    else:
        raise ValueError(
            f"unknown degenerate cloud {kind!r}; choose from {DEGENERATE_CLOUDS}"
        )
    return np.asarray(x, dtype=dtype)


def random_graph(
    seed: int,
    n_node: tuple[int, ...] = (5, 0, 4),
    n_edge: tuple[int, ...] | None = None,
    node_features: int = 3,
    edge_features: int = 2,
    pad_to: tuple[int, int, int] | None = None,
    dtype: DTypeLike = np.float64,
) -> jraph.GraphsTuple:
    """A batch of small random directed graphs as a ``jraph.GraphsTuple``.

    Graph ``i`` has ``n_node[i]`` nodes (``0`` makes an empty graph) and
    ``n_edge[i]`` random edges inside it (default: about one per node, which leaves
    some nodes isolated). ``pad_to=(nodes, edges, graphs)`` pads with
    ``jraph.pad_with_graphs``. Features are Gaussian; the shapes depend only on the
    arguments, not on ``seed``.

    Example:
      >>> g = random_graph(0, (3, 2), pad_to=(8, 8, 3))
      >>> (g.nodes.shape, g.senders.shape, g.n_node.tolist())
      ((8, 3), (8,), [3, 2, 3])
    """
    if isinstance(n_node, int | str) or not all(
        isinstance(k, int | np.integer) and not isinstance(k, bool) and k >= 0
        for k in n_node
    ):
        raise TypeError(
            f"random_graph: n_node must be a tuple of non-negative ints, got {n_node!r}"
        )
    if n_edge is not None and len(tuple(n_edge)) != len(tuple(n_node)):
        raise ValueError(
            f"random_graph: n_edge {n_edge!r} must have one entry per graph of "
            f"n_node {n_node!r}"
        )
    rng = np.random.default_rng(seed)
    if n_edge is None:
        n_edge = tuple(max(n - 1, 0) for n in n_node)
    senders, receivers = [], []
    offset = 0
    for n, e in zip(n_node, n_edge, strict=True):
        if e and not n:
            raise ValueError("an empty graph cannot have edges")
        senders.append(rng.integers(0, max(n, 1), size=e) + offset)
        receivers.append(rng.integers(0, max(n, 1), size=e) + offset)
        offset += n
    N, E = sum(n_node), sum(n_edge)
    g = jraph.GraphsTuple(
        nodes=jnp.asarray(rng.normal(size=(N, node_features)).astype(dtype)),
        edges=jnp.asarray(rng.normal(size=(E, edge_features)).astype(dtype)),
        senders=jnp.asarray(np.concatenate(senders).astype(np.int32)),
        receivers=jnp.asarray(np.concatenate(receivers).astype(np.int32)),
        globals=jnp.asarray(rng.normal(size=(len(n_node), 1)).astype(dtype)),
        n_node=jnp.asarray(np.array(n_node, dtype=np.int32)),
        n_edge=jnp.asarray(np.array(n_edge, dtype=np.int32)),
    )
    if pad_to is not None:
        g = jraph.pad_with_graphs(g, *pad_to)
    return g
