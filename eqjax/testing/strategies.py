"""Hypothesis strategies for group elements, point clouds and small graphs.

Imports ``hypothesis`` (a ``dev`` extra). Strategies draw seeds and a few shapes
from small sets and build arrays from them, so each example does not recompile
new shapes (STYLE.md §12).
"""

from __future__ import annotations

import jax
import numpy as np
from hypothesis import strategies as st

from ..groups import Group
from ._fixtures import DEGENERATE_CLOUDS, degenerate_cloud, random_cloud, random_graph

__all__ = [
    "seeds",
    "group_elements",
    "point_clouds",
    "degenerate_point_clouds",
    "graphs",
]


def seeds() -> st.SearchStrategy[int]:
    """Integer seeds in ``[0, 2**31)``."""
    return st.integers(0, 2**31 - 1)


def group_elements(
    group: Group, shape: tuple[int, ...] = (), dtype=None
) -> st.SearchStrategy:
    """Elements of ``group`` drawn by ``group.sample`` from a hypothesis seed
    (Haar for compact groups, reflections included where the group has them).

    Example:
      >>> import eqjax as eq
      >>> from hypothesis import given
      >>> @given(group_elements(eq.groups.O3, (2,)))
      ... def check(R):
      ...     assert R.shape == (2, 3, 3)
      >>> check()
    """

    def build(seed):
        key = jax.random.key(seed)
        return (
            group.sample(key, shape)
            if dtype is None
            else group.sample(key, shape, dtype)
        )

    return st.builds(build, seeds())


def point_clouds(
    sizes=(4, 8), dim: int = 3, *, degenerate: bool | None = False, dtype=np.float64
) -> st.SearchStrategy[np.ndarray]:
    """Point clouds ``(n, dim)``: generic Gaussian clouds (``degenerate=False``), the
    degenerate shapes of :func:`degenerate_point_clouds` (``True``), or both
    (``None``).

    Example:
      >>> from hypothesis import given
      >>> @given(point_clouds())
      ... def check(x):
      ...     assert x.shape[1] == 3
      >>> check()
    """
    generic = st.builds(
        lambda s, n: random_cloud(s, n, dim, dtype), seeds(), st.sampled_from(sizes)
    )
    if degenerate is False:
        return generic
    if dim != 3:
        raise ValueError("degenerate point clouds are 3D")
    degen = degenerate_point_clouds(dtype=dtype)
    return degen if degenerate else st.one_of(generic, degen)


def degenerate_point_clouds(dtype=np.float64) -> st.SearchStrategy[np.ndarray]:
    """3D clouds with coincident points, zeros, duplicates, collinear/planar
    support, or repeated covariance eigenvalues (square, cube, tetrahedron,
    cylinder)."""
    return st.builds(
        lambda kind, s: degenerate_cloud(kind, dtype, s),
        st.sampled_from(DEGENERATE_CLOUDS),
        seeds(),
    )


def graphs(
    layouts=((5,), (4, 0, 3), (1, 1), (6, 2)),
    *,
    padded: bool | None = None,
    dtype=np.float64,
) -> st.SearchStrategy:
    """Small batched ``jraph.GraphsTuple``s with isolated nodes and empty graphs,
    optionally padded with ``jraph.pad_with_graphs`` (``padded=None``: both).

    Example:
      >>> from hypothesis import given
      >>> @given(graphs(padded=True))
      ... def check(g):
      ...     assert int(g.n_node.sum()) == g.nodes.shape[0]
      >>> check()
    """
    pads = [False, True] if padded is None else [bool(padded)]

    def build(seed, layout, pad):
        n, e = sum(layout), sum(max(k - 1, 0) for k in layout)
        pad_to = (n + 3, e + 2, len(layout) + 1) if pad else None
        return random_graph(seed, tuple(layout), pad_to=pad_to, dtype=dtype)

    return st.builds(build, seeds(), st.sampled_from(layouts), st.sampled_from(pads))
