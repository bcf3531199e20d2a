"""Orthogonal groups O(n), SO(n) and rotations about a fixed axis.

Elements are matrices of shape ``(..., n, n)``; the natural action is ``x ↦ R x``
on points/vectors of shape ``(..., n)``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._base import (
    Group,
    as_shape,
    check_float,
    check_orthogonal_values,
    check_square,
    check_vectors,
    concrete,
    flip_to_det_one,
    matvec,
    membership_tolerance,
    random_orthogonal,
    resolve_dtype,
    static_int,
)


def skew(w: Float[Array, "*batch 3"]) -> Float[Array, "*batch 3 3"]:
    """The skew-symmetric matrix ``[w]×`` with ``[w]× v = w × v``.

    Example:
      >>> import jax.numpy as jnp
      >>> skew(jnp.array([0.0, 0.0, 1.0])) @ jnp.array([1.0, 0.0, 0.0])
      Array([0., 1., 0.], dtype=float32)
    """
    check_vectors(w, 3, "skew", where="skew")
    x, y, z = w[..., 0], w[..., 1], w[..., 2]
    o = jnp.zeros_like(x)
    return jnp.stack(
        [
            jnp.stack([o, -z, y], -1),
            jnp.stack([z, o, -x], -1),
            jnp.stack([-y, x, o], -1),
        ],
        -2,
    )


def vee(K: Float[Array, "*batch 3 3"]) -> Float[Array, "*batch 3"]:
    """Inverse of :func:`skew` on the antisymmetric part: ``vee(skew(w)) == w``.

    Example:
      >>> import jax.numpy as jnp
      >>> vee(skew(jnp.array([1.0, 2.0, 3.0])))
      Array([1., 2., 3.], dtype=float32)
    """
    check_square(K, 3, "vee")
    return 0.5 * jnp.stack(
        [
            K[..., 2, 1] - K[..., 1, 2],
            K[..., 0, 2] - K[..., 2, 0],
            K[..., 1, 0] - K[..., 0, 1],
        ],
        -1,
    )


def _safe_norm(w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(|w|, small)`` with a gradient that stays finite at ``w = 0``."""
    sq = jnp.sum(w * w, axis=-1)
    small = sq < jnp.finfo(w.dtype).eps
    return jnp.sqrt(jnp.where(small, 1.0, sq)), small


def so3_exp(w: Float[Array, "*batch 3"]) -> Float[Array, "*batch 3 3"]:
    """Rodrigues' formula: rotation vector ``w`` (axis × angle) -> rotation matrix.

    Uses Taylor series near ``w = 0`` so that values and gradients stay finite.

    Example:
      >>> import jax.numpy as jnp
      >>> R = so3_exp(jnp.array([0.0, 0.0, jnp.pi / 2]))
      >>> jnp.round(R @ jnp.array([1.0, 0.0, 0.0]), 6)
      Array([0., 1., 0.], dtype=float32)
    """
    check_vectors(w, 3, "so3_exp (w)")
    # Scale-safe: away from 0 the formula uses the unit axis u = w/θ, so
    # R = I + sin θ [u]× + (1 − cos θ) [u]×² stays finite for |w| up to the
    # dtype's maximum (|w|² would overflow at 1e20 in float32).
    m = jnp.max(jnp.abs(w), axis=-1, keepdims=True)
    m = jnp.where(m > 0, m, 1.0)
    ws = w / m  # entries in [-1, 1]
    theta_s, _ = _safe_norm(ws)
    theta = theta_s * m[..., 0]
    t2 = jnp.sum(w * w, axis=-1)
    # from |w|² (not theta: at w = 0 the safe norm's stand-in value is not small);
    # |w|² overflowing to inf for huge w is correctly "not small"
    small = t2 < jnp.finfo(w.dtype).eps
    small_t2 = jnp.where(small, t2, 0.0)
    u = ws / theta_s[..., None]
    K = skew(jnp.where(small[..., None], w, u))
    a = jnp.where(small, 1.0 - small_t2 / 6.0 + small_t2**2 / 120.0, jnp.sin(theta))
    b = jnp.where(
        small,
        0.5 - small_t2 / 24.0 + small_t2**2 / 720.0,
        2.0 * jnp.sin(0.5 * theta) ** 2,  # 1 − cos θ without cancellation
    )
    eye = jnp.broadcast_to(jnp.eye(3, dtype=w.dtype), K.shape)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def matrix_to_quaternion(R: Float[Array, "*batch 3 3"]) -> Float[Array, "*batch 4"]:
    """Unit quaternion ``(w, x, y, z)`` with ``w >= 0`` of a rotation matrix.

    Shepperd's method: of the four algebraically equal formulas, the one with the
    largest pivot is used, which keeps it accurate at all angles (including π).

    Example:
      >>> import jax.numpy as jnp
      >>> matrix_to_quaternion(jnp.eye(3))
      Array([1., 0., 0., 0.], dtype=float32)
    """
    check_square(R, 3, "matrix_to_quaternion")
    r00, r11, r22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    tr = r00 + r11 + r22
    d21, d02, d10 = (
        R[..., 2, 1] - R[..., 1, 2],
        R[..., 0, 2] - R[..., 2, 0],
        R[..., 1, 0] - R[..., 0, 1],
    )
    s21, s02, s10 = (
        R[..., 2, 1] + R[..., 1, 2],
        R[..., 0, 2] + R[..., 2, 0],
        R[..., 1, 0] + R[..., 0, 1],
    )
    pivots = jnp.stack([tr, r00, r11, r22], -1)
    which = jnp.argmax(pivots, axis=-1)
    # Each candidate is 4·(quaternion)·(its pivot component); normalise afterwards.
    c0 = jnp.stack([1.0 + tr, d21, d02, d10], -1)
    c1 = jnp.stack([d21, 1.0 + r00 - r11 - r22, s10, s02], -1)
    c2 = jnp.stack([d02, s10, 1.0 - r00 + r11 - r22, s21], -1)
    c3 = jnp.stack([d10, s02, s21, 1.0 - r00 - r11 + r22], -1)
    cands = jnp.stack([c0, c1, c2, c3], -2)
    q = jnp.take_along_axis(cands, which[..., None, None], axis=-2)[..., 0, :]
    q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
    return q * jnp.where(q[..., :1] < 0, -1.0, 1.0).astype(q.dtype)


def so3_log(R: Float[Array, "*batch 3 3"]) -> Float[Array, "*batch 3"]:
    """Rotation matrix -> rotation vector with angle in ``[0, π]``.

    Inverse of :func:`so3_exp` for angles below π. At angle π the axes ``±u``
    give the same rotation: when ``R`` is exactly symmetric (``trace R = -1``
    with no rounding, e.g. ``diag(-1, -1, 1)``) the axis returned has its
    largest-magnitude component positive (Shepperd's pivot), so
    ``so3_log(diag(-1, -1, 1)) = (0, 0, π)`` and
    ``so3_log(diag(1, -1, -1)) = (π, 0, 0)``; for a matrix within rounding of a
    π-rotation the sign follows the rounding (both answers are correct). ``R`` must be a rotation: eagerly, a
    reflection (``det R = -1``, e.g. ``-I``) or a non-orthogonal matrix raises
    ``ValueError``; under ``jit`` it is not checked and the result is unspecified.

    Example:
      >>> import jax.numpy as jnp
      >>> w = jnp.array([0.3, -0.2, 0.5])
      >>> bool(jnp.allclose(so3_log(so3_exp(w)), w, atol=1e-6))
      True
    """
    check_square(R, 3, "so3_log")
    check_orthogonal_values(R, "so3_log (R)", special=True)
    q = matrix_to_quaternion(R)
    w, v = q[..., 0], q[..., 1:]
    n, small = _safe_norm(v)
    n2 = jnp.sum(v * v, axis=-1)
    # 2·atan2(n, w)/n, with its series 2/w - 2n²/(3w³) near n = 0 (there w ≈ 1).
    w_safe = jnp.where(small, w, 1.0)
    factor = jnp.where(
        small, 2.0 / w_safe - 2.0 * n2 / (3.0 * w_safe**3), 2.0 * jnp.arctan2(n, w) / n
    )
    return v * factor[..., None]


def so2_exp(theta: Float[Array, "*batch"]) -> Float[Array, "*batch 2 2"]:
    """Angle -> 2D rotation matrix ``[[cos, -sin], [sin, cos]]``.

    Example:
      >>> import jax.numpy as jnp
      >>> R = so2_exp(jnp.array(jnp.pi / 2))
      >>> bool(jnp.allclose(R @ jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), atol=1e-6))
      True
    """
    check_float(theta, "SO2.exp input")
    c, s = jnp.cos(theta), jnp.sin(theta)
    return jnp.stack([jnp.stack([c, -s], -1), jnp.stack([s, c], -1)], -2)


def so2_log(R: Float[Array, "*batch 2 2"]) -> Float[Array, "*batch"]:
    """2D rotation matrix -> angle in ``(-π, π]``.

    Example:
      >>> import jax.numpy as jnp
      >>> float(so2_log(so2_exp(jnp.array(0.5))))
      0.5
    """
    check_square(R, 2, "SO2.log")
    check_orthogonal_values(R, "SO2.log (R)", special=True)
    return jnp.arctan2(R[..., 1, 0], R[..., 0, 0])


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _sample_orthogonal(key, shape, n, dtype, special):
    # One compiled program per (shape, n, dtype): an eager call compiles once
    # instead of dispatching (and compiling) every primitive on its own.
    q = random_orthogonal(key, shape, n, dtype)
    return flip_to_det_one(q) if special else q


def _matrix_group(
    name: str,
    n: int,
    *,
    special: bool,
    exp=None,
    log=None,
) -> Group:
    def check(g, where):
        check_square(g, n, where)
        check_orthogonal_values(g, where, special=special)

    def validate(g):
        check(g, name)

    def identity(shape=(), dtype=None):
        shape = as_shape(shape)
        return jnp.broadcast_to(jnp.eye(n, dtype=resolve_dtype(dtype)), (*shape, n, n))

    def compose(g, h):
        check(g, f"{name}.compose (g)")
        check(h, f"{name}.compose (h)")
        return g @ h

    def inverse(g):
        # the inverse is the transpose only for orthogonal g: checked eagerly
        check(g, f"{name}.inverse (g)")
        return jnp.swapaxes(g, -1, -2)

    def sample(key, shape=(), dtype=None):
        return _sample_orthogonal(
            key, as_shape(shape), n, resolve_dtype(dtype), special
        )

    def act(g, x):
        check(g, f"{name}.act (g)")
        check_vectors(x, n, name)
        return matvec(g, x)

    return Group(
        name=name,
        identity=identity,
        compose=compose,
        inverse=inverse,
        sample=sample,
        act=act,
        exp=exp,
        log=log,
        validate=validate,
        dim=n,
        compact=True,
        has_reflections=not special,
    )


@functools.cache
def SOn(n: int) -> Group:
    """The special orthogonal group SO(n): rotations, ``(..., n, n)`` matrices.

    Sampling is Haar (QR of a Gaussian with the sign fix, then the first column
    flipped where ``det = -1``). ``exp``/``log`` are given for ``n = 2`` (angles)
    and ``n = 3`` (rotation vectors).

    Example:
      >>> import jax
      >>> SOn(4).sample(jax.random.key(0), (2,)).shape
      (2, 4, 4)
    """
    n = static_int(n, "SOn: n", minimum=1)
    exp, log = {2: (so2_exp, so2_log), 3: (so3_exp, so3_log)}.get(n, (None, None))
    return _matrix_group(
        f"SO{n}" if n <= 3 else f"SO({n})", n, special=True, exp=exp, log=log
    )


@functools.cache
def On(n: int) -> Group:
    """The orthogonal group O(n): rotations and reflections, ``(..., n, n)``.

    Sampling is Haar on O(n), so ``det = -1`` with probability ½. ``exp`` maps the
    Lie algebra to the identity component (as for SO(n)); ``log`` is only defined
    there, so both are those of SO(n).

    Example:
      >>> import jax
      >>> On(3).sample(jax.random.key(0), (2,)).shape
      (2, 3, 3)
    """
    n = static_int(n, "On: n", minimum=1)
    exp, log = {2: (so2_exp, so2_log), 3: (so3_exp, so3_log)}.get(n, (None, None))
    return _matrix_group(
        f"O{n}" if n <= 3 else f"O({n})", n, special=False, exp=exp, log=log
    )


SO2 = SOn(2)
O2 = On(2)
SO3 = SOn(3)
O3 = On(3)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _sample_axis(key, shape, dtype, unit):
    theta = jax.random.uniform(key, shape, dtype, -jnp.pi, jnp.pi)
    return _axis_exp(unit, theta)


def _axis_exp(unit, theta):
    u = jnp.asarray(unit, dtype=theta.dtype)
    K = jnp.broadcast_to(skew(u), (*theta.shape, 3, 3))
    eye = jnp.broadcast_to(jnp.eye(3, dtype=theta.dtype), K.shape)
    s, c = jnp.sin(theta)[..., None, None], jnp.cos(theta)[..., None, None]
    return eye + s * K + (1.0 - c) * (K @ K)


def _axis_ops(unit, name: str, *, special: bool):
    """``(check, ops)`` of a group of 3×3 matrices that fix ``unit``: rotations
    about it (``special``) or also the reflections through planes containing it
    (O_g(3)); ``ops`` holds ``validate``, ``compose``, ``inverse`` and ``act``."""
    what = "a rotation" if special else "an orthogonal matrix"
    hint = (
        ""
        if special
        else "; O_g(3) holds the rotations about it and the reflections through "
        "planes containing it"
    )

    def check(R, where):
        check_square(R, 3, where)
        check_orthogonal_values(R, where, special=special)
        a = concrete(R)
        if a is not None and a.size:
            moved = np.abs(a.astype(np.float64) @ np.asarray(unit) - unit).max(-1)
            tol = membership_tolerance(a.dtype)
            if (moved > tol).any():
                raise ValueError(
                    f"{where}: the element is {what} that does not fix the axis "
                    f"{unit} (|R u − u| = {moved.max():.3g}, tolerance {tol:.1e})"
                    + hint
                )

    def validate(g):
        check(g, name)

    def compose(g, h):
        check(g, f"{name}.compose (g)")
        check(h, f"{name}.compose (h)")
        return g @ h

    def inverse(g):
        check(g, f"{name}.inverse (g)")
        return jnp.swapaxes(g, -1, -2)

    def act(g, x):
        check(g, f"{name}.act (g)")
        check_vectors(x, 3, name)
        return matvec(g, x)

    return check, dict(validate=validate, compose=compose, inverse=inverse, act=act)


@functools.cache
def _axis_rotations(axis: tuple[float, float, float]) -> Group:
    unit = axis
    name = f"SO2[axis={tuple(round(a, 4) for a in unit)}]"
    check, ops = _axis_ops(unit, name, special=True)

    def exp(theta):
        check_float(theta, f"{name}.exp input")
        return _axis_exp(unit, theta)

    def log(R):
        check(R, f"{name}.log (R)")
        u = jnp.asarray(unit, dtype=R.dtype)
        sin = jnp.sum(vee(R) * jnp.broadcast_to(u, R.shape[:-1]), axis=-1)
        cos = 0.5 * (jnp.trace(R, axis1=-2, axis2=-1) - 1.0)
        return jnp.arctan2(sin, cos)

    def sample(key, shape=(), dtype=None):
        return _sample_axis(key, as_shape(shape), resolve_dtype(dtype), unit)

    return SOn(3)._replace(name=name, sample=sample, exp=exp, log=log, **ops)


def axis_rotations(axis=(0.0, 0.0, 1.0)) -> Group:
    """SO(2) embedded in SO(3) as rotations about a fixed ``axis``.

    For sub-equivariance (e.g. a preferred direction such as gravity or a magnetic
    field): elements are ``(..., 3, 3)`` rotation matrices about ``axis``; ``exp``
    takes angles ``(...,)``; sampling is Haar (uniform angle).

    Args:
      axis: a non-zero 3-vector (normalised internally).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> Gz = axis_rotations((0, 0, 1))
      >>> R = Gz.sample(jax.random.key(0), (3,))
      >>> bool(jnp.allclose(R[:, :, 2], jnp.array([[0.0, 0.0, 1.0]])))
      True
    """
    try:
        arr = np.asarray(axis, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(
            f"axis_rotations expects a 3-vector axis, got {axis!r}"
        ) from None
    a = tuple(float(v) for v in arr)
    if len(a) != 3:
        raise ValueError(f"axis_rotations expects a 3-vector axis, got {axis!r}")
    norm = math.hypot(*a)
    if not math.isfinite(norm):
        raise ValueError(f"axis_rotations needs a finite axis, got {axis!r}")
    if norm == 0.0:
        raise ValueError("axis_rotations needs a non-zero axis")
    return _axis_rotations(tuple(v / norm for v in a))


def _axis_mirror(unit: tuple[float, float, float]) -> np.ndarray:
    """``I - 2 n nᵀ``: the reflection through a plane containing ``unit`` (``n``
    is ``unit × e`` normalised, ``e`` the basis vector least aligned with it)."""
    u = np.asarray(unit, np.float64)
    e = np.eye(3)[int(np.argmin(np.abs(u)))]
    n = np.cross(u, e)
    n = n / np.linalg.norm(n)
    return np.eye(3) - 2.0 * np.outer(n, n)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _sample_axis_o2(key, shape, dtype, unit):
    k1, k2 = jax.random.split(key)
    R = _sample_axis(k1, shape, dtype, unit)
    flip = jax.random.bernoulli(k2, 0.5, shape)[..., None, None]
    M = jnp.asarray(_axis_mirror(unit), dtype)
    return jnp.where(flip, R @ M, R)


@functools.cache
def _axis_subgroup(axis: tuple[float, float, float]) -> Group:
    unit = axis
    name = f"O2[axis={tuple(round(a, 4) for a in unit)}]"
    _, ops = _axis_ops(unit, name, special=False)

    def sample(key, shape=(), dtype=None):
        return _sample_axis_o2(key, as_shape(shape), resolve_dtype(dtype), unit)

    return _axis_rotations(unit)._replace(
        name=name, sample=sample, has_reflections=True, **ops
    )


def axis_subgroup(axis=(0.0, 0.0, 1.0), reflections: bool = True) -> Group:
    """The subgroup O_g(3) of O(3) that fixes an axis ``g`` (e.g. gravity).

    With ``reflections=True``: the rotations about ``axis`` and the reflections
    through the planes that contain it (a copy of O(2); the symmetry group of a
    body under gravity, Chen et al., "Subequivariant Graph Reinforcement Learning
    in 3D Environments", ICML 2023). With ``reflections=False``: the rotations
    only, i.e. :func:`axis_rotations` (SO(2) about the axis). Elements are
    ``(..., 3, 3)`` orthogonal matrices with ``R g = g``; sampling is Haar (a
    uniform angle, and with probability ½ a reflection); ``exp``/``log`` are
    those of the rotations about the axis (the identity component).

    Args:
      axis: a non-zero, finite 3-vector (normalised internally).
      reflections: include the reflections (O_g(3)) or not (SO(2) about ``axis``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> Og = axis_subgroup((0, 0, 1))
      >>> R = Og.sample(jax.random.key(0), (8,))
      >>> bool(jnp.allclose(R @ jnp.array([0.0, 0.0, 1.0]), jnp.array([[0.0, 0, 1]])))
      True
      >>> Og.has_reflections, axis_subgroup((0, 0, 1), reflections=False).name
      (True, 'SO2[axis=(0.0, 0.0, 1.0)]')
    """
    if not isinstance(reflections, (bool, np.bool_)):
        raise TypeError(
            f"axis_subgroup: reflections must be a bool, got {reflections!r}"
        )
    rot = axis_rotations(axis)  # validates the axis (3-vector, finite, non-zero)
    if not reflections:
        return rot
    try:
        arr = np.asarray(axis, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):  # pragma: no cover - axis_rotations raised
        raise TypeError(
            f"axis_subgroup expects a 3-vector axis, got {axis!r}"
        ) from None
    norm = math.hypot(*arr)
    return _axis_subgroup(tuple(float(v) / norm for v in arr))
