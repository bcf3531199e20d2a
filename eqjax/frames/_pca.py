"""Frames for point clouds in R^d: PCA frames and point-pair frames.

Puny et al., "Frame Averaging for Invariant and Equivariant Network Design",
ICLR 2022, Sec. 3.1 (PCA frames for O(d), SO(d), E(d), SE(d)).
"""

from __future__ import annotations

import functools
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from ..groups import En, EuclideanElement, Group, On, SEn, SOn
from ._core import Frame

_NAMES = re.compile(r"^(O|SO|E|SE)\(?(\d+)\)?$")
_FACTORIES = {"O": On, "SO": SOn, "E": En, "SE": SEn}


def _point_group(group: Group | str, where: str) -> tuple[Group, str, int]:
    """``(group, kind, d)`` for O(d), SO(d), E(d) or SE(d), given as the
    :class:`Group` record or its name (``"E3"``, ``"SO(4)"``, ...)."""
    if isinstance(group, str):
        m = _NAMES.match(group)
        if m is None:
            raise ValueError(
                f"{where}: unknown group name {group!r}; expected one of 'O3', "
                "'SO3', 'E3', 'SE3' or 'O(d)', 'SO(d)', 'E(d)', 'SE(d)'"
            )
        kind, d = m.group(1), int(m.group(2))
        if d < 1:
            raise ValueError(f"{where}: group dimension must be >= 1, got {group!r}")
        return _FACTORIES[kind](d), kind, d
    if not isinstance(group, Group):
        raise TypeError(
            f"{where}: expects a Group (e.g. eq.groups.E3) or its name, got "
            f"{type(group).__name__}"
        )
    for kind, factory in _FACTORIES.items():
        if group == factory(group.dim):
            return group, kind, group.dim
    raise ValueError(
        f"{where}: supports the groups O(d), SO(d), E(d) and SE(d), got {group!r}"
    )


def _split_input(x, mask, where: str, d: int):
    if isinstance(x, tuple):
        if mask is not None or len(x) != 2:
            raise ValueError(f"{where}: pass either (points, mask) or points, mask=...")
        x, mask = x
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) < 2 or shape[-1] != d:
        raise ValueError(f"{where}: expects points of shape (..., n, {d}); got {shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{where}: points must be floating, got dtype {x.dtype}")
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.shape != shape[:-1]:
            raise ValueError(
                f"{where}: mask of shape {mask.shape} does not match points of shape "
                f"{shape} (expected {shape[:-1]})"
            )
    return x, mask


def _centroid_and_centered(x, mask):
    if mask is None:
        c = jnp.mean(x, axis=-2)
        return c, x - c[..., None, :], jnp.full(x.shape[:-2], x.shape[-2], x.dtype)
    m = mask.astype(x.dtype)
    count = jnp.sum(m, axis=-1)
    c = jnp.einsum("...n,...nd->...d", m, x) / jnp.maximum(count, 1)[..., None]
    u = (x - c[..., None, :]) * m[..., None]
    return c, u, count


def pca_spectrum(
    points: Float[Array, "*batch n d"],
    mask: Bool[Array, "*batch n"] | None = None,
) -> tuple[Array, Array, Array]:
    """Eigen-decomposition of the (masked) covariance and its eigen-gap diagnostic.

    The PCA frame is only equivariant when the covariance eigenvalues are simple:
    a repeated eigenvalue (cube, regular tetrahedron, square, axis-symmetric
    cylinder) leaves the eigenvectors undetermined within the eigenspace. The
    relative gap ``min_i (λ_i - λ_{i+1}) / λ_1`` measures how close to that the
    input is; ``0`` means degenerate (use :func:`point_pair_frame` there). A zero
    *smallest* eigenvalue alone (a planar cloud in R³) is not degenerate: its
    eigenvector (the normal) is still unique up to sign.

    Args:
      points: ``(*batch, n, d)`` point clouds.
      mask: optional ``(*batch, n)`` boolean mask of real (non-padding) points.

    Returns:
      ``(eigenvalues (*batch, d) descending, eigenvectors (*batch, d, d) as
      columns, relative_gap (*batch,))``. An all-padded or single-point cloud has
      zero covariance and gap ``0``.

    Example:
      >>> import jax.numpy as jnp
      >>> cube = jnp.array([[i, j, k] for i in (0., 1.) for j in (0., 1.)
      ...                   for k in (0., 1.)])
      >>> float(pca_spectrum(cube)[2]) < 1e-6
      True
    """
    points, mask = _split_input(points, mask, "pca_spectrum", points.shape[-1])
    _, u, count = _centroid_and_centered(points, mask)
    cov = (
        jnp.einsum("...ni,...nj->...ij", u, u) / jnp.maximum(count, 1)[..., None, None]
    )
    lam, V = jnp.linalg.eigh(cov)
    lam, V = lam[..., ::-1], V[..., ::-1]
    d = points.shape[-1]
    if d == 1:
        gap = jnp.ones(lam.shape[:-1], lam.dtype)
    else:
        gaps = jnp.min(lam[..., :-1] - lam[..., 1:], axis=-1)
        scale = lam[..., 0]
        gap = jnp.where(scale > 0, gaps / jnp.where(scale > 0, scale, 1), 0)
    return lam, V, gap


@functools.cache
def _sign_patterns(d: int, special: bool) -> np.ndarray:
    """All ``2^d`` sign vectors (O(d)), or the ``2^(d-1)`` free first ``d-1`` signs."""
    free = d - 1 if special else d
    pats = np.array(list(itertools.product((1.0, -1.0), repeat=free)), np.float64)
    return pats.reshape(len(pats), free)


def pca_frame(group: Group | str):
    """The PCA frame of Puny et al. (ICLR 2022, Sec. 3.1) for O(d), SO(d), E(d), SE(d).

    ``frame(points, mask=None) -> Frame`` (or ``frame((points, mask))``), whose
    ``group`` is ``group`` (so :func:`frame_average` inverts through it). With
    ``c`` the (masked) centroid, ``C = Σ (x - c)(x - c)ᵀ / n`` and ``V`` its
    eigenvectors (columns, descending eigenvalues), the frame is

    * ``O3`` / ``On(d)``: ``{V S}`` over all ``2^d`` sign matrices ``S``;
    * ``SO3`` / ``SOn(d)``: the ``2^(d-1)`` of them with ``det = +1``;
    * ``E3`` / ``En(d)`` and ``SE3`` / ``SEn(d)``: ``EuclideanElement(V S, c)``.

    For O(d)/SO(d) the covariance is taken about the origin (``C = Σ x xᵀ / n``)
    since translations are not in the group. Enumerating every sign makes the frame
    exactly equivariant, ``F(g·X) = g·F(X)``, whenever the eigenvalues are simple
    (no sign disambiguation is needed). Weights are uniform. Gradients do not flow
    through the eigenvectors (``stop_gradient``, as in the paper; they do flow
    through the centroid), so ``jax.grad`` of a frame-averaged function is the
    gradient with the frame held fixed; values are exact.

    Guarantee: exact (to float rounding) when the eigen-gap of
    :func:`pca_spectrum` is positive; on degenerate spectra the frame is not
    equivariant — use :func:`point_pair_frame`, which is exact there.

    Args:
      group: ``eq.groups.O3``, ``SO3``, ``E3``, ``SE3``, or ``On(d)``, ``SOn(d)``,
        ``En(d)``, ``SEn(d)`` for any ``d >= 1``; or its name (``"E3"``,
        ``"SO(4)"``, ...).

    Returns:
      ``frame(points (*batch, n, d), mask=None) -> Frame`` with frame axis of static
      size ``2^d`` (O, E) or ``2^(d-1)`` (SO, SE) after the batch axes. Raises
      ``ValueError`` when ``n < d`` statically (fewer points than dimensions) or
      the mask does not match; an all-padded cloud gives a finite frame (zero
      covariance, centroid 0) whose gap diagnostic is 0.

    Example:
      >>> import jax, eqjax as eq
      >>> frame = eq.frames.pca_frame(eq.groups.E3)
      >>> f = frame(jax.random.normal(jax.random.key(0), (10, 3)))
      >>> f.elements.R.shape, f.elements.t.shape, f.weights.shape, f.group
      ((8, 3, 3), (8, 3), (8,), Group(E3))
    """
    group, kind, d = _point_group(group, "pca_frame")
    where = f"pca_frame({group.name})"
    special = kind in ("SO", "SE")
    euclidean = kind in ("E", "SE")
    pats = _sign_patterns(d, special)
    k = len(pats)

    def frame(points, mask=None) -> Frame:
        points, mask = _split_input(points, mask, where, d)
        if points.shape[-2] < d:
            raise ValueError(
                f"{where}: needs at least {d} points, got "
                f"{points.shape[-2]} (points shape {points.shape})"
            )
        dtype = points.dtype
        if euclidean:
            c, u, count = _centroid_and_centered(points, mask)
        else:
            u = points if mask is None else points * mask[..., None].astype(dtype)
            count = (
                jnp.full(points.shape[:-2], points.shape[-2], dtype)
                if mask is None
                else jnp.sum(mask.astype(dtype), axis=-1)
            )
        cov = (
            jnp.einsum("...ni,...nj->...ij", u, u)
            / jnp.maximum(count, 1)[..., None, None]
        )
        _, V = jnp.linalg.eigh(jax.lax.stop_gradient(cov))
        V = jax.lax.stop_gradient(V[..., ::-1])
        batch = V.shape[:-2]
        s = jnp.asarray(pats, dtype)  # (k, free)
        if special:
            det = jnp.sign(jnp.linalg.det(V))
            det = jnp.where(det == 0, 1, det).astype(dtype)
            last = det[..., None] * jnp.broadcast_to(jnp.prod(s, axis=-1), (*batch, k))
            s = jnp.concatenate(
                [jnp.broadcast_to(s, (*batch, k, d - 1)), last[..., None]], -1
            )
        else:
            s = jnp.broadcast_to(s, (*batch, k, d))
        R = V[..., None, :, :] * s[..., None, :]  # (*batch, k, d, d): columns scaled
        weights = jnp.full((*batch, k), 1.0 / k, dtype)
        if euclidean:
            t = jnp.broadcast_to(c[..., None, :], (*batch, k, d))
            return Frame(EuclideanElement(R, t), weights, group)
        return Frame(R, weights, group)

    frame.group = group  # type: ignore[attr-defined]
    frame.size = k  # type: ignore[attr-defined]
    return frame


def _safe_unit(v):
    sq = jnp.sum(v * v, axis=-1, keepdims=True)
    tiny = jnp.finfo(v.dtype).tiny
    ok = sq > tiny
    return jnp.where(ok, v / jnp.sqrt(jnp.where(ok, sq, 1)), 0)


def point_pair_frame(group: Group | str):
    """A frame built from the points themselves, exact on degenerate spectra.

    For ``d = 3`` every ordered pair ``(i, j)`` of points gives the orthonormal
    basis ``e1 = u_i/|u_i|``, ``e2 ∝ u_j - (u_j·e1) e1``, ``e3 = ±e1 × e2`` (both
    signs for O(3)/E(3), ``+`` for SO(3)/SE(3)), with ``u = x - c`` (centred at the
    centroid for E/SE, at the origin for O/SO), and weight ``|u_i × u_j|²``
    (normalised). For ``d = 2`` every point ``i`` gives ``e1 = u_i/|u_i|``,
    ``e2 = ±J e1`` with weight ``|u_i|²``. Because the set of pairs is permuted,
    not changed, by a rigid motion and the weights are invariant,
    ``F(g·X) = g·F(X)`` holds exactly for *every* cloud whose centred points span
    at least two dimensions (d = 3) or one (d = 2) — including the cube, the
    regular tetrahedron, the square, axis-symmetric cylinders and clouds with
    coincident points, where PCA frames fail. The weights vanish continuously on
    nearly collinear pairs, so the averaged function is continuous. This is an
    extension beyond Puny et al. (ICLR 2022), who ignore degenerate spectra.

    Cost: frame size ``2 n²`` (O3/E3), ``n²`` (SO3/SE3), ``2n`` / ``n`` (d = 2)
    backbone calls, so use it for small clouds or after :func:`pca_spectrum`
    reports a small gap. For a collinear (rank ≤ 1) cloud all weights vanish; the
    frame then falls back to the first pair with weight one, which is finite but
    not equivariant. Rotations are ``stop_gradient``-ed as in :func:`pca_frame`.

    Args:
      group: ``eq.groups.O3``, ``SO3``, ``E3``, ``SE3``, ``O2``, ``SO2``,
        ``En(2)`` or ``SEn(2)``, or its name (``"E3"``, ``"SE2"``, ...).

    Returns:
      ``frame(points (*batch, n, d), mask=None) -> Frame`` whose ``group`` is
      ``group``.

    Example:
      >>> import jax.numpy as jnp, eqjax as eq
      >>> square = jnp.array([[1., 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]])
      >>> point_pair_frame(eq.groups.E3)(square).weights.shape
      (32,)
    """
    group, kind, d = _point_group(group, "point_pair_frame")
    where = f"point_pair_frame({group.name})"
    if d not in (2, 3):
        raise ValueError(f"point_pair_frame supports d = 2 or 3, got {group!r}")
    special = kind in ("SO", "SE")
    euclidean = kind in ("E", "SE")
    signs = (1.0,) if special else (1.0, -1.0)

    def frame(points, mask=None) -> Frame:
        points, mask = _split_input(points, mask, where, d)
        if points.shape[-2] < d - 1:
            raise ValueError(
                f"{where}: needs at least {d - 1} points, got {points.shape[-2]}"
            )
        dtype = points.dtype
        n = points.shape[-2]
        if euclidean:
            c, u, _ = _centroid_and_centered(points, mask)
        else:
            u = points if mask is None else points * mask[..., None].astype(dtype)
            c = jnp.zeros(points.shape[:-2] + (d,), dtype)
        ug = jax.lax.stop_gradient(u)
        if d == 3:
            ui = jnp.broadcast_to(ug[..., :, None, :], (*u.shape[:-2], n, n, 3))
            uj = jnp.broadcast_to(ug[..., None, :, :], (*u.shape[:-2], n, n, 3))
            e1 = _safe_unit(ui)
            e2 = _safe_unit(uj - jnp.sum(uj * e1, -1, keepdims=True) * e1)
            e3 = jnp.cross(e1, e2)
            w = jnp.sum(jnp.cross(u[..., :, None, :], u[..., None, :, :]) ** 2, -1)
            if mask is not None:
                mm = mask.astype(dtype)
                w = w * mm[..., :, None] * mm[..., None, :]
            lead = (*u.shape[:-2], n * n)
            e1, e2, e3 = (e.reshape(*lead, 3) for e in (e1, e2, e3))
            w = w.reshape(lead)
            Rs = [jnp.stack([e1, e2, s * e3], -1) for s in signs]
        else:
            e1 = _safe_unit(ug)
            Je1 = jnp.stack([-e1[..., 1], e1[..., 0]], -1)
            w = jnp.sum(u * u, -1)
            if mask is not None:
                w = w * mask.astype(dtype)
            Rs = [jnp.stack([e1, s * Je1], -1) for s in signs]
        R = jnp.concatenate(Rs, axis=-3)  # (*batch, k, d, d)
        w = jnp.concatenate([w] * len(signs), axis=-1)
        total = jnp.sum(w, -1, keepdims=True)
        k = w.shape[-1]
        fallback = jnp.broadcast_to(jax.nn.one_hot(0, k, dtype=dtype), w.shape)
        weights = jnp.where(total > 0, w / jnp.where(total > 0, total, 1), fallback)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=dtype), R.shape)
        ok = (weights > 0)[..., None, None]
        R = jnp.where(ok, R, eye)
        if euclidean:
            t = jnp.broadcast_to(c[..., None, :], (*c.shape[:-1], k, d))
            return Frame(EuclideanElement(R, t), weights, group)
        return Frame(R, weights, group)

    frame.group = group  # type: ignore[attr-defined]
    return frame
