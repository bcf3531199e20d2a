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
    check_square,
    check_vectors,
    flip_to_det_one,
    matvec,
    random_orthogonal,
    resolve_dtype,
)


def skew(w: Float[Array, "*batch 3"]) -> Float[Array, "*batch 3 3"]:
    """The skew-symmetric matrix ``[w]×`` with ``[w]× v = w × v``.

    Example:
      >>> import jax.numpy as jnp
      >>> skew(jnp.array([0.0, 0.0, 1.0])) @ jnp.array([1.0, 0.0, 0.0])
      Array([0., 1., 0.], dtype=float32)
    """
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
    check_vectors(w, 3, "SO3.exp")
    theta, small = _safe_norm(w)
    t2 = jnp.sum(w * w, axis=-1)
    a = jnp.where(small, 1.0 - t2 / 6.0 + t2**2 / 120.0, jnp.sin(theta) / theta)
    b = jnp.where(
        small, 0.5 - t2 / 24.0 + t2**2 / 720.0, (1.0 - jnp.cos(theta)) / theta**2
    )
    K = skew(w)
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

    Inverse of :func:`so3_exp` for angles below π (at exactly π the two opposite
    axes are equivalent and one of them is returned).

    Example:
      >>> import jax.numpy as jnp
      >>> w = jnp.array([0.3, -0.2, 0.5])
      >>> bool(jnp.allclose(so3_log(so3_exp(w)), w, atol=1e-6))
      True
    """
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
    return jnp.arctan2(R[..., 1, 0], R[..., 0, 0])


def _matrix_group(
    name: str,
    n: int,
    *,
    special: bool,
    exp=None,
    log=None,
) -> Group:
    def validate(g):
        check_square(g, n, name)

    def identity(shape=(), dtype=None):
        shape = as_shape(shape)
        return jnp.broadcast_to(jnp.eye(n, dtype=resolve_dtype(dtype)), (*shape, n, n))

    def compose(g, h):
        validate(g)
        validate(h)
        return g @ h

    def inverse(g):
        validate(g)
        return jnp.swapaxes(g, -1, -2)

    def sample(key, shape=(), dtype=None):
        q = random_orthogonal(key, as_shape(shape), n, resolve_dtype(dtype))
        return flip_to_det_one(q) if special else q

    def act(g, x):
        validate(g)
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
    exp, log = {2: (so2_exp, so2_log), 3: (so3_exp, so3_log)}.get(n, (None, None))
    return _matrix_group(
        f"O{n}" if n <= 3 else f"O({n})", n, special=False, exp=exp, log=log
    )


SO2 = SOn(2)
O2 = On(2)
SO3 = SOn(3)
O3 = On(3)


@functools.cache
def _axis_rotations(axis: tuple[float, float, float]) -> Group:
    unit = axis
    name = f"SO2[axis={tuple(round(a, 4) for a in unit)}]"
    base = SOn(3)

    def exp(theta):
        check_float(theta, f"{name}.exp input")
        u = jnp.asarray(unit, dtype=theta.dtype)
        K = jnp.broadcast_to(skew(u), (*theta.shape, 3, 3))
        eye = jnp.broadcast_to(jnp.eye(3, dtype=theta.dtype), K.shape)
        s, c = jnp.sin(theta)[..., None, None], jnp.cos(theta)[..., None, None]
        return eye + s * K + (1.0 - c) * (K @ K)

    def log(R):
        check_square(R, 3, name)
        u = jnp.asarray(unit, dtype=R.dtype)
        sin = jnp.sum(vee(R) * jnp.broadcast_to(u, R.shape[:-1]), axis=-1)
        cos = 0.5 * (jnp.trace(R, axis1=-2, axis2=-1) - 1.0)
        return jnp.arctan2(sin, cos)

    def sample(key, shape=(), dtype=None):
        dtype = resolve_dtype(dtype)
        theta = jax.random.uniform(key, as_shape(shape), dtype, -jnp.pi, jnp.pi)
        return exp(theta)

    return base._replace(name=name, sample=sample, exp=exp, log=log)


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
    a = tuple(float(v) for v in np.asarray(axis, dtype=np.float64).reshape(-1))
    if len(a) != 3:
        raise ValueError(f"axis_rotations expects a 3-vector axis, got {axis!r}")
    norm = math.sqrt(sum(v * v for v in a))
    if norm == 0.0:
        raise ValueError("axis_rotations needs a non-zero axis")
    return _axis_rotations(tuple(v / norm for v in a))
