"""Frames for point clouds in R^d: PCA frames and point-pair frames.

Puny et al., "Frame Averaging for Invariant and Equivariant Network Design",
ICLR 2022, Sec. 3.1 (PCA frames for O(d), SO(d), E(d), SE(d)). The point-pair
frames and the degenerate-spectrum fallback are an extension: Puny et al. ignore
repeated eigenvalues, which the symmetric shapes of chemistry are full of.
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
_MAX_PLAIN_DIM = 16  # 2^16 sign patterns: the largest enumerated PCA frame
_AXIAL = 3  # rotations about the axis of a collinear cloud (C_3)


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
        if d > _MAX_PLAIN_DIM:
            raise ValueError(
                f"{where}: {group!r} would enumerate 2^{d} sign patterns; frames "
                f"are limited to d <= {_MAX_PLAIN_DIM}"
            )
        return _FACTORIES[kind](d), kind, d
    if not isinstance(group, Group):
        raise TypeError(
            f"{where}: expects a Group (e.g. eq.groups.E3) or its name, got "
            f"{type(group).__name__}"
        )
    for kind, factory in _FACTORIES.items():
        if group.dim <= _MAX_PLAIN_DIM and group == factory(group.dim):
            return group, kind, group.dim
    if group.dim > _MAX_PLAIN_DIM and group.name.startswith(("O", "SO", "E", "SE")):
        raise ValueError(
            f"{where}: {group!r} would enumerate 2^{group.dim} sign patterns; "
            f"frames are limited to d <= {_MAX_PLAIN_DIM}"
        )
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
        if mask.dtype != jnp.bool_:
            raise TypeError(
                f"{where}: mask must be boolean (True = real point), got dtype "
                f"{mask.dtype}; use mask.astype(bool) if 0/1 is meant"
            )
        if mask.shape != shape[:-1]:
            raise ValueError(
                f"{where}: mask of shape {mask.shape} does not match points of shape "
                f"{shape} (expected {shape[:-1]})"
            )
    return x, mask


def _check_point_weights(weights, points, where: str):
    """Per-point weights for a weighted frame: floating, shape ``points.shape[:-1]``,
    and (when concrete) finite and non-negative."""
    if weights is None:
        return None
    shape = getattr(weights, "shape", None)
    if shape is None or tuple(shape) != points.shape[:-1]:
        raise ValueError(
            f"{where}: weights of shape {shape} do not match points of shape "
            f"{points.shape} (expected {points.shape[:-1]})"
        )
    w = jnp.asarray(weights)
    if not jnp.issubdtype(w.dtype, jnp.floating):
        raise TypeError(f"{where}: weights must be floating, got dtype {w.dtype}")
    try:
        a = np.asarray(w, np.float64)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        a = None
    if a is not None and (not np.isfinite(a).all() or (a < 0).any()):
        raise ValueError(f"{where}: weights must be finite and >= 0, got {a}")
    return jax.lax.stop_gradient(w.astype(points.dtype))


def _centred(x, mask, euclidean: bool, weights=None):
    """``(c, u, m)``: the centre (centroid for E/SE, origin for O/SO), the
    centred points ``u = (x - c)`` (zero on padding) and the float mask ``m``.

    With per-point ``weights`` (``m = mask · weights``): the weighted centroid and
    ``u = sqrt(m) (x - c)``, so ``Σ uᵀu / Σ m`` is the weighted covariance.

    The centroid is taken relative to the first real point, so identical points
    give ``u = 0`` exactly (a plain mean of equal values need not round back)."""
    dtype = x.dtype
    m = jnp.ones(x.shape[:-1], dtype) if mask is None else mask.astype(dtype)
    if weights is not None:
        m = m * weights
    root = m if weights is None else jnp.sqrt(m)
    if not euclidean:
        return jnp.zeros(x.shape[:-2] + x.shape[-1:], dtype), x * root[..., None], m
    if mask is None and weights is None:
        ref = x[..., 0, :]
    else:
        first = jnp.argmax(m > 0, axis=-1)[..., None, None]
        ref = jnp.take_along_axis(x, first, axis=-2)[..., 0, :]
    total = jnp.sum(m, axis=-1)
    count = jnp.where(total > 0, total, 1)
    dx = (x - ref[..., None, :]) * m[..., None]
    c = ref + jnp.sum(dx, axis=-2) / count[..., None]
    u = (x - c[..., None, :]) * root[..., None]
    return c, u, m


def _scale(v):
    """``max |v|`` over the last two axes (``stop_gradient``), 1 where it is 0."""
    s = jax.lax.stop_gradient(jnp.max(jnp.abs(v), axis=(-2, -1)))
    return jnp.where(s > 0, s, 1)


def _smoothstep(z):
    z = jnp.clip(z, 0, 1)
    return z * z * (3 - 2 * z)


def _band(value, lo):
    """0 below ``lo``, 1 above ``4 lo``, smooth in between (``stop_gradient``)."""
    value = jax.lax.stop_gradient(value)
    return _smoothstep((value - lo) / (3 * lo))


def _eps(dtype) -> float:
    return float(jnp.finfo(dtype).eps)


def _spectrum(u, m):
    """Eigen-decomposition of ``Σ ûᵀû / count`` with ``û = u / max|u|``:
    ``(λ̂ descending, V columns, s)``; ``λ = s² λ̂``.

    float16 / bfloat16 clouds are decomposed in float32 (XLA has no
    half-precision ``eigh``) and the results cast back: the frame is then a
    half-precision rounding of an exact one (orthogonal to about ``1e-3``)."""
    s = _scale(u)
    uh = u / s[..., None, None]
    total = jnp.sum(m, axis=-1)
    count = jnp.where(total > 0, total, 1)
    cov = jnp.einsum("...ni,...nj->...ij", uh, uh) / count[..., None, None]
    cov = jax.lax.stop_gradient(cov)
    if jnp.finfo(cov.dtype).bits < 32:
        lam, V = jnp.linalg.eigh(cov.astype(jnp.float32))
        lam, V = lam.astype(cov.dtype), V.astype(cov.dtype)
    else:
        lam, V = jnp.linalg.eigh(cov)
    return lam[..., ::-1], V[..., ::-1], s


def _relative_gap(lam):
    d = lam.shape[-1]
    if d == 1:
        return jnp.ones(lam.shape[:-1], lam.dtype)
    gaps = jnp.min(lam[..., :-1] - lam[..., 1:], axis=-1)
    top = lam[..., 0]
    return jnp.where(top > 0, gaps / jnp.where(top > 0, top, 1), 0)


def pca_spectrum(
    points: Float[Array, "*batch n d"],
    mask: Bool[Array, "*batch n"] | None = None,
) -> tuple[Array, Array, Array]:
    """Eigen-decomposition of the (masked) covariance and its eigen-gap diagnostic.

    A PCA frame built from the eigenvectors alone (:func:`plain_pca_frame`) is
    only equivariant when the covariance eigenvalues are simple: a repeated
    eigenvalue (cube, regular tetrahedron, square, axis-symmetric molecules such as
    benzene, collinear ones such as CO₂) leaves the eigenvectors undetermined within
    the eigenspace. The relative gap ``min_i (λ_i - λ_{i+1}) / λ_1`` measures how
    close to that the input is; ``0`` means degenerate. :func:`pca_frame` reads
    this gap itself and falls back to :func:`point_pair_frame` there, so both are
    exact on every cloud; only :func:`plain_pca_frame` fails where the gap is
    small. A zero *smallest* eigenvalue alone (a planar cloud in R³) is not
    degenerate: its eigenvector (the normal) is still unique up to sign.

    Args:
      points: ``(*batch, n, d)`` point clouds (centred at their centroid).
      mask: optional ``(*batch, n)`` boolean mask of real (non-padding) points.

    Returns:
      ``(eigenvalues (*batch, d) descending, eigenvectors (*batch, d, d) as
      columns, relative_gap (*batch,))``. An all-padded or single-point cloud has
      zero covariance and gap ``0``. Computed on the cloud rescaled to unit size,
      so float32 works at any magnitude (eigenvalues at ``1e±20`` may under- or
      overflow; the gap does not).

    Example:
      >>> import jax.numpy as jnp
      >>> cube = jnp.array([[i, j, k] for i in (0., 1.) for j in (0., 1.)
      ...                   for k in (0., 1.)])
      >>> float(pca_spectrum(cube)[2]) < 1e-6
      True
    """
    points, mask = _split_input(points, mask, "pca_spectrum", points.shape[-1])
    _, u, m = _centred(points, mask, True)
    lam, V, s = _spectrum(u, m)
    return lam * (s * s)[..., None], V, _relative_gap(lam)


@functools.cache
def _sign_patterns(d: int, special: bool) -> np.ndarray:
    """All ``2^d`` sign vectors (O(d)), or the ``2^(d-1)`` free first ``d-1`` signs."""
    free = d - 1 if special else d
    pats = np.array(list(itertools.product((1.0, -1.0), repeat=free)), np.float64)
    return pats.reshape(len(pats), free)


def _plain_elements(V, special: bool, d: int, dtype):
    """``(*batch, k, d, d)``: ``V S`` over the sign patterns."""
    pats = _sign_patterns(d, special)
    k = len(pats)
    batch = V.shape[:-2]
    s = jnp.asarray(pats, dtype)
    if special:
        det = jnp.sign(jnp.linalg.det(V))
        det = jnp.where(det == 0, 1, det).astype(dtype)
        last = det[..., None] * jnp.broadcast_to(jnp.prod(s, axis=-1), (*batch, k))
        s = jnp.concatenate(
            [jnp.broadcast_to(s, (*batch, k, d - 1)), last[..., None]], -1
        )
    else:
        s = jnp.broadcast_to(s, (*batch, k, d))
    return V[..., None, :, :] * s[..., None, :]


def _finish(R, c, weights, group, euclidean: bool) -> Frame:
    if euclidean:
        t = jnp.broadcast_to(c[..., None, :], R.shape[:-1])
        return Frame(EuclideanElement(R, t), weights, group)
    return Frame(R, weights, group)


def _check_count(points, need: int, where: str):
    if points.shape[-2] < need:
        raise ValueError(
            f"{where}: needs at least {need} points, got {points.shape[-2]} "
            f"(points shape {points.shape})"
        )


def plain_pca_frame(group: Group | str):
    """The PCA frame of Puny et al. (ICLR 2022, Sec. 3.1), without a fallback.

    **Not equivariant on degenerate spectra**: wherever two covariance eigenvalues
    coincide (:func:`pca_spectrum` gap 0 — cubes, regular tetrahedra and the other
    Platonic solids, squares, prisms and antiprisms, methane, benzene, SF₆,
    ferrocene, collinear clouds such as CO₂ and acetylene, diatomics, coincident
    points) its elements are an arbitrary basis of the eigenspace and frame
    averages over it are neither invariant nor equivariant (relative errors of
    0.1 and more with an MLP backbone), and near-degenerate spectra lose
    accuracy as ``eps / gap``. Use :func:`pca_frame`, which is exact on every
    cloud, unless the inputs are known to be generic and the ``2^d`` size matters.

    ``frame(points, mask=None, *, weights=None) -> Frame`` (or
    ``frame((points, mask))``). ``weights``: optional non-negative per-point
    weights ``(*batch, n)`` (a soft part, Atzmon et al., ICLR 2024): then ``c``
    and ``C`` are the weighted centroid and covariance ``Σ w (x - c)(x - c)ᵀ /
    Σ w`` (``stop_gradient``-ed, as the eigenvectors are). With
    ``c`` the (masked) centroid (origin for O(d)/SO(d)), ``C = Σ (x - c)(x - c)ᵀ /
    n`` and ``V`` its eigenvectors (columns, descending eigenvalues), the frame is
    ``{V S}`` over all ``2^d`` sign matrices ``S`` (O, E; with translation ``c``
    for E/SE) or the ``2^(d-1)`` of them with ``det = +1`` (SO, SE). Uniform
    weights. The eigenvectors are ``stop_gradient``-ed (as in the paper); the
    cloud is rescaled to unit size before the eigen-decomposition, so float32
    works at magnitudes ``1e-20 … 1e15`` and beyond; float16 / bfloat16 clouds
    are decomposed in float32 and the frame cast back.

    Args:
      group: O(d), SO(d), E(d) or SE(d) for ``1 <= d <= 16`` (a :class:`Group`
        or its name such as ``"E3"``, ``"SO(4)"``); larger ``d`` is refused (the
        frame would have ``2^d`` elements).

    Returns:
      ``frame(points (*batch, n, d), mask=None) -> Frame`` with a frame axis of
      static size ``frame.size`` (``2^d`` or ``2^(d-1)``).

    Example:
      >>> import jax, eqjax as eq
      >>> frame = eq.frames.plain_pca_frame(eq.groups.E3)
      >>> f = frame(jax.random.normal(jax.random.key(0), (10, 3)))
      >>> f.elements.R.shape, frame.size
      ((8, 3, 3), 8)
    """
    group, kind, d = _point_group(group, "plain_pca_frame")
    where = f"plain_pca_frame({group.name})"
    special, euclidean = kind in ("SO", "SE"), kind in ("E", "SE")
    k = len(_sign_patterns(d, special))

    def frame(points, mask=None, *, weights=None) -> Frame:
        points, mask = _split_input(points, mask, where, d)
        _check_count(points, d, where)
        weights = _check_point_weights(weights, points, where)
        c, u, m = _centred(points, mask, euclidean, weights)
        _, V, _ = _spectrum(u, m)
        R = _plain_elements(V, special, d, points.dtype)
        weights = jnp.full(R.shape[:-2], 1.0 / k, points.dtype)
        return _finish(R, c, weights, group, euclidean)

    frame.group = group  # type: ignore[attr-defined]
    frame.size = k  # type: ignore[attr-defined]
    return frame


def _safe_unit(v):
    sq = jnp.sum(v * v, axis=-1, keepdims=True)
    ok = sq > jnp.finfo(v.dtype).tiny
    return jnp.where(ok, v / jnp.sqrt(jnp.where(ok, sq, 1)), 0), ok[..., 0]


@functools.cache
def _finite_rotations(d: int, special: bool) -> np.ndarray:
    """The elements used on a cloud with all points at its centre: the signed
    permutation matrices (octahedral group O_h, 48; its rotations, 24) for d = 3,
    the dihedral group D_4 (8; its rotations C_4, 4) for d = 2."""
    if d == 3:
        mats = [
            np.eye(3)[list(p)] * np.array(s)[:, None]
            for p in itertools.permutations(range(3))
            for s in itertools.product((1.0, -1.0), repeat=3)
        ]
    else:
        mats = []
        for k in range(4):
            a = k * np.pi / 2
            r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).round()
            mats += [r, r @ np.diag([1.0, -1.0])]
    mats = np.stack(mats)
    if special:
        mats = mats[np.linalg.det(mats) > 0]
    return mats


def _axial(a, special: bool):
    """``(*batch, n, m, 3, 3)``: for unit axes ``a (*batch, n, 3)``, rotations
    ``[a, b_k, a × b_k]`` with ``b_k`` the completion ``b_0`` turned by
    ``2πk/3`` about ``a`` (and ``[a, b_k, -a × b_k]`` for O(3)/E(3))."""
    k = jnp.argmin(jnp.abs(a), axis=-1)
    e = jax.nn.one_hot(k, 3, dtype=a.dtype)
    b0, _ = _safe_unit(jnp.cross(a, e))
    c0 = jnp.cross(a, b0)
    ang = 2 * np.pi * np.arange(_AXIAL) / _AXIAL
    lead = (1,) * (a.ndim - 1)
    cos = jnp.asarray(np.cos(ang), a.dtype).reshape(*lead, _AXIAL, 1)
    sin = jnp.asarray(np.sin(ang), a.dtype).reshape(*lead, _AXIAL, 1)
    b = cos * b0[..., None, :] + sin * c0[..., None, :]  # (*batch, n, m, 3)
    aa = jnp.broadcast_to(a[..., None, :], b.shape)
    c = jnp.cross(aa, b)
    signs = (1.0,) if special else (1.0, -1.0)
    return jnp.concatenate([jnp.stack([aa, b, s * c], -1) for s in signs], -3)


def _pair_parts(u, m, x, special: bool, euclidean: bool):
    """Elements ``(*batch, k, d, d)`` and weights ``(*batch, k)`` (summing to one)
    of the point-pair frame of centred points ``u`` (see :func:`point_pair_frame`)."""
    dtype = u.dtype
    d = u.shape[-1]
    eps = _eps(dtype)
    s = _scale(u)
    uh = u / s[..., None, None]  # unit scale; gradient flows (s is held fixed)
    ug = jax.lax.stop_gradient(uh)
    batch, n = u.shape[:-2], u.shape[-2]
    sq = jnp.sum(uh * uh, -1) * m  # (*batch, n)
    total_sq = jnp.sum(sq, -1)
    a, a_ok = _safe_unit(ug)
    # a point is an axis only if it is clearly off the centre (|u| > 64 eps at
    # unit scale): nearer, its direction is rounding noise (at XLA's -O0 a centre
    # atom's residue normalises to a non-unit axis); its weight there is < (64 eps)²
    a_ok = a_ok & (m > 0) & (jnp.sum(ug * ug, -1) > (64 * eps) ** 2)
    # rank 0 (all points at the centre): relative to the cloud's own magnitude
    if euclidean:
        r0 = jax.lax.stop_gradient(
            jnp.max(jnp.abs(u), axis=(-2, -1))
            / jnp.maximum(_scale(x * m[..., None]), jnp.finfo(dtype).tiny)
        )
        has_rank1 = _band(r0, 0.5 * np.sqrt(eps))
    else:
        has_rank1 = jnp.where(jnp.max(jnp.abs(u), axis=(-2, -1)) > 0, 1.0, 0.0)
        has_rank1 = has_rank1.astype(dtype)
    fixed = jnp.asarray(_finite_rotations(d, special), dtype)
    if d == 3:
        ui = jnp.broadcast_to(ug[..., :, None, :], (*batch, n, n, 3))
        uj = jnp.broadcast_to(ug[..., None, :, :], (*batch, n, n, 3))
        e1 = jnp.broadcast_to(a[..., :, None, :], ui.shape)
        v = uj - jnp.sum(uj * e1, -1, keepdims=True) * e1
        # a pair is used only if u_j is clearly off the line of u_i (sin θ > 64
        # eps): below that, v is rounding noise (jnp.cross(a, a) is not exactly 0
        # on XLA:CPU); its weight there is < (64 eps)², far below rounding
        resolved = jnp.sum(v * v, -1) > (64 * eps) ** 2 * jnp.sum(uj * uj, -1)
        e3, e3_ok = _safe_unit(jnp.cross(e1, v))
        e2 = jnp.cross(e3, e1)  # orthonormal to rounding by construction
        w2 = jnp.sum(jnp.cross(uh[..., :, None, :], uh[..., None, :, :]) ** 2, -1)
        ok2 = a_ok[..., :, None] & a_ok[..., None, :] & resolved & e3_ok
        w2 = jnp.where(ok2, w2, 0).reshape(*batch, n * n)
        rho = jnp.sum(w2, -1) / jnp.maximum(total_sq * total_sq, jnp.finfo(dtype).tiny)
        has_rank2 = _band(rho, 0.25 * eps)
        signs = (1.0,) if special else (1.0, -1.0)
        e1, e2, e3 = (t.reshape(*batch, n * n, 3) for t in (e1, e2, e3))
        R2 = jnp.concatenate([jnp.stack([e1, e2, sg * e3], -1) for sg in signs], -3)
        w2 = jnp.concatenate([w2] * len(signs), -1)
        R1 = _axial(a, special)  # (*batch, n, q, 3, 3)
        q = R1.shape[-3]
        R1 = R1.reshape(*batch, n * q, 3, 3)
        w1 = jnp.repeat(jnp.where(a_ok, sq, 0), q, axis=-1)
    else:
        J = jnp.stack([-a[..., 1], a[..., 0]], -1)
        signs = (1.0,) if special else (1.0, -1.0)
        R2 = jnp.concatenate([jnp.stack([a, sg * J], -1) for sg in signs], -3)
        w2 = jnp.concatenate([jnp.where(a_ok, sq, 0)] * len(signs), -1)
        has_rank2 = jnp.ones(batch, dtype)
        R1 = jnp.zeros((*batch, 0, 2, 2), dtype)
        w1 = jnp.zeros((*batch, 0), dtype)
    R0 = jnp.broadcast_to(fixed, (*batch, *fixed.shape))
    w0 = jnp.ones((*batch, fixed.shape[0]), dtype)

    def norm(w):
        t = jnp.sum(w, -1, keepdims=True)
        return jnp.where(t > 0, w / jnp.where(t > 0, t, 1), 0)

    p2 = (has_rank1 * has_rank2)[..., None]
    p1 = (has_rank1 * (1 - has_rank2))[..., None]
    p0 = (1 - has_rank1)[..., None]
    weights = jnp.concatenate([p2 * norm(w2), p1 * norm(w1), p0 * norm(w0)], -1)
    R = jnp.concatenate([R2, R1, R0], -3)
    eye = jnp.broadcast_to(jnp.eye(d, dtype=dtype), R.shape)
    R = jnp.where((weights > 0)[..., None, None], R, eye)
    return R, weights


def _pair_size(d: int, special: bool, n: int) -> int:
    signs = 1 if special else 2
    fixed = len(_finite_rotations(d, special))
    if d == 3:
        return signs * (n * n + _AXIAL * n) + fixed
    return signs * n + fixed


def point_pair_frame(group: Group | str):
    """A frame built from the points themselves, exact on every cloud.

    For ``d = 3``, with ``u = x - c`` (centred at the centroid for E/SE, at the
    origin for O/SO) rescaled to unit size, the frame has three parts:

    * every ordered pair ``(i, j)``: ``e1 = u_i/|u_i|``, ``e2 ∝ u_j - (u_j·e1) e1``
      ``e3 = ±e1 × e2`` (pairs with ``u_j`` within ``64 eps`` of the line
      of ``u_i`` are skipped: their weight is below rounding) (both signs for O(3)/E(3), ``+``
      for SO(3)/SE(3)), weight ``|u_i × u_j|²``;
    * every point ``i``: ``e1 = u_i/|u_i|`` completed by three rotations about
      ``e1`` (by ``2π/3``), weight ``|u_i|²``, used on collinear clouds;
    * the 48 signed permutation matrices (24 rotations for SO/SE), used when all
      points sit at the centre (coincident points, an all-zero cloud);

    blended by invariant, smooth functions of the cloud (the non-collinearity
    ``ρ = Σ|u_i × u_j|² / (Σ|u_i|²)²`` and the spread relative to the cloud's
    magnitude), weights normalised to one. For ``d = 2``: every point gives
    ``e1 = u_i/|u_i|``, ``e2 = ±J e1``, weight ``|u_i|²``, and the dihedral group
    D_4 (C_4 for SO/SE) covers coincident points. Because a rigid motion permutes
    pairs and points (it does not change them) and the weights are invariant,
    ``F(g·X) = g·F(X)`` holds exactly for every cloud that spans at least two
    dimensions — cubes, Platonic solids, prisms, planar and symmetric molecules,
    coincident points — and frame averages are exactly invariant on **every**
    cloud. On collinear and coincident clouds no finite frame is equivariant
    (the stabiliser is infinite); there frame averages are exactly equivariant
    for outputs on which the stabiliser acts with angular frequency below 3
    about the axis (collinear: scalars, per-point vectors and positions, rank-2
    tensors) and below 4 for the octahedral group (coincident: the same). In the
    thin bands between regimes (``ρ`` within a factor 4 of ``eps/4``, a spread of
    ``~sqrt(eps)`` of the magnitude) the error is ``O(sqrt(eps))``, the
    conditioning of the input itself. Every element with non-zero weight is
    orthogonal to rounding (zero-weight slots hold the identity). Rotations are
    ``stop_gradient``-ed as in :func:`pca_frame`; the pair and point weights carry
    gradients (the blend factors do not). Float32 works for coordinates from
    ``1e-20`` to ``1e15`` and beyond (the cloud is rescaled first).

    This is an extension beyond Puny et al. (ICLR 2022), who ignore degenerate
    spectra. Cost: frame size ``frame.size_for(n)``: ``2n² + 6n + 48`` (O3/E3),
    ``n² + 3n + 24`` (SO3/SE3), ``2n + 8`` / ``n + 4`` (d = 2) backbone calls.

    Args:
      group: ``eq.groups.O3``, ``SO3``, ``E3``, ``SE3``, ``O2``, ``SO2``,
        ``En(2)`` or ``SEn(2)``, or its name (``"E3"``, ``"SE2"``, ...).

    Returns:
      ``frame(points (*batch, n, d), mask=None) -> Frame`` (or
      ``frame((points, mask))``) whose ``group`` is ``group``.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> square = jnp.array([[1., 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]])
      >>> frame = point_pair_frame(eq.groups.E3)
      >>> jax.jit(frame)(square).weights.shape, frame.size_for(4)
      ((104,), 104)
    """
    group, kind, d = _point_group(group, "point_pair_frame")
    where = f"point_pair_frame({group.name})"
    if d not in (2, 3):
        raise ValueError(f"point_pair_frame supports d = 2 or 3, got {group!r}")
    special, euclidean = kind in ("SO", "SE"), kind in ("E", "SE")

    def frame(points, mask=None) -> Frame:
        points, mask = _split_input(points, mask, where, d)
        _check_count(points, 1, where)
        c, u, m = _centred(points, mask, euclidean)
        R, weights = _pair_parts(u, m, points, special, euclidean)
        return _finish(R, c, weights, group, euclidean)

    frame.group = group  # type: ignore[attr-defined]
    frame.size_for = lambda n: _pair_size(d, special, int(n))  # type: ignore[attr-defined]
    return frame


def pca_frame(group: Group | str):
    """The PCA frame (Puny et al., ICLR 2022, Sec. 3.1), exact on every cloud.

    ``frame(points, mask=None, *, weights=None) -> Frame`` (or
    ``frame((points, mask))``), whose ``group`` is ``group``; optional
    non-negative per-point ``weights`` make the centroid, covariance and
    point-pair weights weighted ones (as in :func:`plain_pca_frame`). Two parts, blended by the relative eigen-gap ``γ`` of
    :func:`pca_spectrum` (an invariant):

    * the PCA frame ``{V S}`` of :func:`plain_pca_frame` (eigenvectors ``V`` of the
      covariance about the centroid — the origin for O(d)/SO(d) — over all sign
      matrices ``S``, ``det S = det V`` for SO/SE; translation the centroid for
      E/SE), weight ``α(γ)``;
    * the :func:`point_pair_frame`, weight ``1 - α(γ)``;

    with ``α`` a smooth step from 0 at ``γ = eps^(1/3)`` to 1 at ``4 eps^(1/3)``
    (``6e-6`` in float64, ``5e-3`` in float32). Where the spectrum is simple the
    PCA part is exact (its rounding error is ``eps/γ``), where it is degenerate or
    nearly so (cubes, Platonic solids, prisms, methane, benzene, SF₆, collinear
    CO₂, coincident points) the point-pair part takes over, which is exact there
    (see :func:`point_pair_frame` for collinear and coincident clouds, where
    invariant averages are exact and equivariant ones exact for per-point
    vectors, positions and rank-2 tensors). So frame averages over it are exactly
    invariant/equivariant on every cloud, with a static frame size. The
    eigenvectors and ``α`` are ``stop_gradient``-ed (``jax.grad`` of a
    frame-averaged function holds them fixed); the point-pair weights carry
    gradients; gradients are finite on every cloud. The cloud is rescaled to unit
    size first, so float32 works at any magnitude. float16 / bfloat16 clouds are
    decomposed in float32 and the frame cast back (exact to about 16 eps of the
    half-precision dtype).

    Cost: ``frame.size_for(n)`` backbone calls — ``8 + 2n² + 6n + 48`` for O3/E3,
    ``4 + n² + 3n + 24`` for SO3/SE3 (``2^d`` plus the point-pair frame; ``4 + 2n
    + 8`` / ``2 + n + 4`` for d = 2) — all evaluated, since shapes are static.
    For large generic clouds where that matters, :func:`plain_pca_frame` has
    ``2^d`` elements but is not equivariant on degenerate spectra. For ``d = 1``
    the PCA frame ``{±1}`` is the whole of O(1) and is exact as it is; ``d >= 4``
    is refused (no degenerate-safe fallback is implemented there; use
    :func:`plain_pca_frame` and check :func:`pca_spectrum`).

    Args:
      group: ``eq.groups.O3``, ``SO3``, ``E3``, ``SE3``, their 2-d and 1-d
        versions ``On(d)``, ``SOn(d)``, ``En(d)``, ``SEn(d)``, or a name (``"E3"``,
        ``"SE(2)"``, ...).

    Returns:
      ``frame(points (*batch, n, d), mask=None) -> Frame`` with frame axis of
      static size ``frame.size_for(n)`` after the batch axes. Raises
      ``ValueError`` when ``n < d`` statically or the mask does not match,
      ``TypeError`` for integer points or a non-boolean mask.

    Example:
      >>> import jax, eqjax as eq
      >>> frame = eq.frames.pca_frame(eq.groups.E3)
      >>> f = jax.jit(frame)(jax.random.normal(jax.random.key(0), (10, 3)))
      >>> f.elements.R.shape, f.weights.shape, frame.size_for(10), f.group
      ((316, 3, 3), (316,), 316, Group(E3))
    """
    group, kind, d = _point_group(group, "pca_frame")
    where = f"pca_frame({group.name})"
    if d >= 4:
        raise ValueError(
            f"{where}: no degenerate-safe frame for d = {d} >= 4; use "
            "eq.frames.plain_pca_frame (exact only where pca_spectrum's gap is "
            "clearly positive)"
        )
    special, euclidean = kind in ("SO", "SE"), kind in ("E", "SE")
    k_pca = len(_sign_patterns(d, special))
    if d == 1:
        plain = plain_pca_frame(group)
        plain.size_for = lambda n: k_pca  # type: ignore[attr-defined]
        return plain

    def frame(points, mask=None, *, weights=None) -> Frame:
        points, mask = _split_input(points, mask, where, d)
        _check_count(points, d, where)
        weights = _check_point_weights(weights, points, where)
        dtype = points.dtype
        c, u, m = _centred(points, mask, euclidean, weights)
        lam, V, _ = _spectrum(u, m)
        alpha = _band(_relative_gap(lam), _eps(dtype) ** (1 / 3))[..., None]
        Rp = _plain_elements(V, special, d, dtype)
        Rq, wq = _pair_parts(u, m, points, special, euclidean)
        weights = jnp.concatenate(
            [jnp.broadcast_to(alpha / k_pca, Rp.shape[:-2]), (1 - alpha) * wq], -1
        )
        R = jnp.concatenate([Rp, Rq], -3)
        return _finish(R, c, weights, group, euclidean)

    frame.group = group  # type: ignore[attr-defined]
    frame.size_for = lambda n: k_pca + _pair_size(d, special, int(n))  # type: ignore[attr-defined]
    return frame
