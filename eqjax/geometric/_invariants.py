"""Sphere grids and the invariant attributes of point pairs used by PONITA.

Bekkers, Vadgama, Hesselink, van der Linden, Romero, "Fast, Expressive SE(n)
Equivariant Networks through Weight-Sharing in Position-Orientation Space"
(ICLR 2024), Sec. 3-4: for points ``(x_i, o_i)`` and ``(x_j, o_j)`` of
position-orientation space R³×S² with ``d = x_j - x_i`` the bijective invariants
are ``[o_i·d, ‖d - (o_i·d) o_i‖, o_i·o_j]``; on R³ it is ``‖d‖``; in the fiber
bundle (one orientation grid shared by every node) they separate into a spatial
part ``[E, O, 2]`` (first two, per grid orientation ``o``) and a fiber part
``[O, O, 1]`` (``o·o'``), which is what makes the separable convolution possible.
All invariants are unchanged when the positions and orientations are moved by one
element of E(3) (reflections included); for the fiber bundle the grid moves too.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ..groups import fibonacci_sphere
from ._neighbours import _check_positions, _is_concrete

_KINDS = ("fibonacci", "repulsion", "octahedral")


@functools.cache
def _grid(n: int, kind: str) -> np.ndarray:
    if kind == "fibonacci":
        return fibonacci_sphere(n)
    if kind == "octahedral":
        if n != 6:
            raise ValueError(f"sphere_grid(kind='octahedral') has 6 points, got {n}")
        e = np.eye(3)
        return np.concatenate([e, -e])
    # repulsion: projected gradient descent on the Riesz s=1 (Coulomb) energy,
    # from the Fibonacci grid, fixed step count: deterministic.
    x = fibonacci_sphere(n)
    step = 0.5 / n
    for _ in range(300):
        d = x[:, None, :] - x[None, :, :]
        r = np.linalg.norm(d, axis=-1) + np.eye(n)
        force = np.sum(d / r[..., None] ** 3 * (1 - np.eye(n))[..., None], axis=1)
        force -= np.sum(force * x, -1, keepdims=True) * x  # tangent part
        x = x + step * force / max(np.abs(force).max(), 1e-12) * 0.1
        x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def sphere_grid(
    num: int, kind: str = "fibonacci", *, dtype=None
) -> Float[Array, "O 3"]:
    """``num`` unit vectors on S².

    Args:
      num: number of orientations ``O >= 2`` (static).
      kind: ``"fibonacci"`` (the golden-angle spiral, area-uniform),
        ``"repulsion"`` (the Fibonacci grid relaxed by 300 steps of Coulomb
        repulsion: more uniform nearest-neighbour spacing) or ``"octahedral"``
        (exactly the 6 points ``±e_i``, permuted by the 48 elements of the
        octahedral group: the fiber-bundle model is then exactly invariant under
        them).
      dtype: float dtype (default: JAX's default float).

    Returns:
      ``[O, 3]`` unit vectors (computed in float64 NumPy, then cast).

    Example:
      >>> sphere_grid(6, kind="octahedral")[:3].tolist()
      [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
      >>> sphere_grid(20).shape
      (20, 3)
    """
    if kind not in _KINDS:
        raise ValueError(f"sphere_grid: kind must be one of {_KINDS}, got {kind!r}")
    if int(num) < 2:
        raise ValueError(f"sphere_grid: need O >= 2 orientations, got {num!r}")
    g = _grid(int(num), kind)
    dt = jnp.zeros((), dtype).dtype if dtype is not None else jnp.zeros(()).dtype
    return jnp.asarray(g, dt)


def circle_grid(num: int, *, dtype=None) -> Float[Array, "O 2"]:
    """``num >= 2`` equally spaced unit vectors on S¹ (angles ``2πk/num``).

    Example:
      >>> circle_grid(4).round(6).tolist()
      [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-0.0, -1.0]]
    """
    if int(num) < 2:
        raise ValueError(f"circle_grid: need O >= 2 orientations, got {num!r}")
    a = 2 * np.pi * np.arange(int(num)) / int(num)
    dt = jnp.zeros((), dtype).dtype if dtype is not None else jnp.zeros(()).dtype
    return jnp.asarray(np.stack([np.cos(a), np.sin(a)], -1), dt)


def check_unit(v, name: str, tol: float = 1e-3) -> None:
    """Raise ``ValueError`` when concrete ``v [..., d]`` holds non-unit vectors."""
    if _is_concrete(v):
        n = np.linalg.norm(np.asarray(v, np.float64), axis=-1)
        if n.size and np.max(np.abs(n - 1.0)) > tol:
            raise ValueError(
                f"{name} must hold unit vectors; norms range over "
                f"[{n.min():.4g}, {n.max():.4g}]"
            )


def _check_edges(senders, receivers):
    if getattr(senders, "shape", None) != getattr(receivers, "shape", None) or (
        getattr(senders, "ndim", None) != 1
    ):
        raise ValueError(
            "senders and receivers must be [E] integer arrays of one shape, got "
            f"{getattr(senders, 'shape', None)} and {getattr(receivers, 'shape', None)}"
        )


def _safe_norm(v, axis=-1, keepdims=False):
    """‖v‖ with a finite gradient at 0 (where the gradient is taken as 0)."""
    sq = jnp.sum(v * v, axis=axis, keepdims=keepdims)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def invariants_r3(
    positions: Float[Array, "N 3"],
    senders: Int[Array, " E"],
    receivers: Int[Array, " E"],
) -> Float[Array, "E 1"]:
    """The R³ invariant of each edge ``j -> i``: ``‖x_j - x_i‖``.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0, 0, 0], [3.0, 4, 0]])
      >>> invariants_r3(x, jnp.array([1]), jnp.array([0])).tolist()
      [[5.0]]
    """
    _check_positions(positions)
    _check_edges(senders, receivers)
    d = positions[senders] - positions[receivers]
    return _safe_norm(d, keepdims=True)


def invariants_r3s2_point_cloud(
    positions: Float[Array, "N 3"],
    orientations: Float[Array, "N 3"],
    senders: Int[Array, " E"],
    receivers: Int[Array, " E"],
) -> Float[Array, "E 3"]:
    """Invariants of ``(x_j, o_j) -> (x_i, o_i)`` in R³×S² (one orientation per node):
    ``[o_i·d, ‖d - (o_i·d) o_i‖, o_i·o_j]`` with ``d = x_j - x_i``.

    Args:
      positions: ``[N, 3]``.
      orientations: ``[N, 3]`` unit vectors (checked when concrete).
      senders, receivers: ``[E]`` edge endpoints.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0, 0, 0], [1.0, 2, 0]])
      >>> o = jnp.array([[1.0, 0, 0], [0.0, 1, 0]])
      >>> invariants_r3s2_point_cloud(x, o, jnp.array([1]), jnp.array([0])).tolist()
      [[1.0, 2.0, 0.0]]
    """
    _check_positions(positions)
    _check_edges(senders, receivers)
    if orientations.shape != positions.shape:
        raise ValueError(
            f"orientations must have the shape of positions {positions.shape}, got "
            f"{orientations.shape}"
        )
    check_unit(orientations, "orientations")
    d = positions[senders] - positions[receivers]
    oi, oj = orientations[receivers], orientations[senders]
    a = jnp.sum(oi * d, -1)
    b = _safe_norm(d - a[:, None] * oi)
    c = jnp.sum(oi * oj, -1)
    return jnp.stack([a, b, c], -1)


def ponita_invariants(
    positions: Float[Array, "N 3"],
    senders: Int[Array, " E"],
    receivers: Int[Array, " E"],
    grid: Float[Array, "O 3"],
) -> tuple[Float[Array, "E O 2"], Float[Array, "O O 1"]]:
    """The separable fiber-bundle invariants (``r3s2_fiber_bundle``) of PONITA.

    For edge ``j -> i`` with ``d = x_j - x_i`` and grid orientation ``o``:
    ``spatial[e, o] = [o·d, ‖d - (o·d) o‖]`` (so ``inv1² + inv2² = ‖d‖²``), and
    ``fiber[o, o'] = [o·o']``.

    Args:
      positions: ``[N, 3]``.
      senders, receivers: ``[E]`` edge endpoints.
      grid: ``[O, 3]`` unit vectors, ``O >= 2`` (:func:`sphere_grid`).

    Returns:
      ``(spatial [E, O, 2], fiber [O, O, 1])``.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0, 0, 0], [1.0, 2, 0]])
      >>> s, f = ponita_invariants(x, jnp.array([1]), jnp.array([0]),
      ...     sphere_grid(6, kind="octahedral"))
      >>> s.shape, f.shape, s[0, 0].tolist()
      ((1, 6, 2), (6, 6, 1), [1.0, 2.0])
    """
    _check_positions(positions)
    _check_edges(senders, receivers)
    _check_grid(grid, positions.shape[-1])
    d = positions[senders] - positions[receivers]  # [E, 3]
    a = d @ grid.T  # [E, O]
    perp = d[:, None, :] - a[..., None] * grid[None]
    b = _safe_norm(perp)
    spatial = jnp.stack([a, b], -1)
    fiber = (grid @ grid.T)[..., None]
    return spatial, fiber


def _check_grid(grid, dim):
    if getattr(grid, "ndim", None) != 2 or grid.shape[-1] != dim:
        raise ValueError(
            f"grid must have shape [O, {dim}], got {getattr(grid, 'shape', None)}"
        )
    if grid.shape[0] < 2:
        raise ValueError(f"grid needs O >= 2 orientations, got O={grid.shape[0]}")
    check_unit(grid, "grid")


def invariants_r2s1(
    positions: Float[Array, "N 2"],
    senders: Int[Array, " E"],
    receivers: Int[Array, " E"],
    grid: Float[Array, "O 2"],
) -> tuple[Float[Array, "E O 2"], Float[Array, "O O 2"]]:
    """Fiber-bundle invariants on the plane (position-orientation space R²×S¹,
    group SE(2)): ``spatial[e, o] = [o·d, o⊥·d]`` with ``o⊥`` = ``o`` turned by
    +90° (signed: SE(2) has no reflections), ``fiber[o, o'] = [o·o', o⊥·o']``
    (cosine and sine of the angle from ``o`` to ``o'``).

    Args:
      positions: ``[N, 2]``.
      senders, receivers: ``[E]``.
      grid: ``[O, 2]`` unit vectors (:func:`circle_grid`).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0, 0], [1.0, 2]])
      >>> s, f = invariants_r2s1(x, jnp.array([1]), jnp.array([0]), circle_grid(4))
      >>> s[0, 0].tolist(), f.shape
      ([1.0, 2.0], (4, 4, 2))
    """
    if getattr(positions, "ndim", None) != 2 or positions.shape[-1] != 2:
        raise ValueError(
            f"positions must have shape [N, 2], got {getattr(positions, 'shape', None)}"
        )
    _check_edges(senders, receivers)
    _check_grid(grid, 2)
    d = positions[senders] - positions[receivers]
    perp = jnp.stack([-grid[:, 1], grid[:, 0]], -1)
    spatial = jnp.stack([d @ grid.T, d @ perp.T], -1)
    fiber = jnp.stack([grid @ grid.T, perp @ grid.T], -1)
    return spatial, fiber


def polynomial_features(x: Float[Array, "... A"], degree: int) -> Float[Array, "... F"]:
    """All monomials of the attributes up to ``degree`` (PONITA's polynomial
    embedding): ``[x, x⊗x, x⊗x⊗x, ...]`` flattened, ``F = A + A² + ... + A^degree``
    (products repeated in every order, as in the paper's code).

    Example:
      >>> import jax.numpy as jnp
      >>> polynomial_features(jnp.array([2.0, 3.0]), 2).tolist()
      [2.0, 3.0, 4.0, 6.0, 6.0, 9.0]
    """
    if int(degree) < 1:
        raise ValueError(f"degree must be >= 1, got {degree!r}")
    out, cur = [x], x
    for _ in range(int(degree) - 1):
        cur = (cur[..., :, None] * x[..., None, :]).reshape(*x.shape[:-1], -1)
        out.append(cur)
    return jnp.concatenate(out, -1)


def smooth_cutoff(r: Float[Array, "..."], radius: float) -> Float[Array, "..."]:
    """``½(cos(π r / radius) + 1)`` for ``r < radius``, else 0: a C¹ envelope so
    that edges entering or leaving the radius graph change outputs continuously.

    Example:
      >>> import jax.numpy as jnp
      >>> smooth_cutoff(jnp.array([0.0, 1.0, 3.0]), 2.0).round(6).tolist()
      [1.0, 0.5, 0.0]
    """
    r = jnp.minimum(r, radius)
    return jnp.where(r < radius, 0.5 * (jnp.cos(jnp.pi * r / radius) + 1.0), 0.0)


__all__ = [
    "circle_grid",
    "invariants_r2s1",
    "invariants_r3",
    "invariants_r3s2_point_cloud",
    "polynomial_features",
    "ponita_invariants",
    "smooth_cutoff",
    "sphere_grid",
]
