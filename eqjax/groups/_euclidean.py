"""Euclidean groups E(n) = O(n) ⋉ Rⁿ and SE(n) = SO(n) ⋉ Rⁿ.

Elements are :class:`EuclideanElement` ``(R, t)`` pytrees with ``R (..., n, n)``
and ``t (..., n)``; ``g·x = R x + t``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import (
    Group,
    add_broadcast,
    as_shape,
    check_float,
    check_orthogonal_values,
    check_square,
    check_vectors,
    matvec,
    resolve_dtype,
    static_int,
)
from ._orthogonal import On, SOn, _safe_norm, skew, so3_exp, so3_log


class EuclideanElement(NamedTuple):
    """An element ``x ↦ R x + t`` of E(n)/SE(n).

    Attributes:
      R: ``(..., n, n)`` orthogonal matrix.
      t: ``(..., n)`` translation.

    Example:
      >>> import jax.numpy as jnp
      >>> g = EuclideanElement(jnp.eye(3), jnp.ones(3))
      >>> E3.act(g, jnp.zeros(3))
      Array([1., 1., 1.], dtype=float32)
    """

    R: Float[Array, "*batch n n"]
    t: Float[Array, "*batch n"]


def _se3_V_coeffs(w):
    theta, small = _safe_norm(w)
    t2 = jnp.sum(w * w, axis=-1)
    b = jnp.where(
        small, 0.5 - t2 / 24.0 + t2**2 / 720.0, (1.0 - jnp.cos(theta)) / theta**2
    )
    c = jnp.where(
        small,
        1.0 / 6.0 - t2 / 120.0 + t2**2 / 5040.0,
        (theta - jnp.sin(theta)) / theta**3,
    )
    return b, c, theta, small, t2


def se3_exp(xi: Float[Array, "*batch 6"]) -> EuclideanElement:
    """Twist ``xi = (ω, v)`` -> ``(R, t)`` with ``R = exp([ω]×)``, ``t = V(ω) v``.

    Example:
      >>> import jax.numpy as jnp
      >>> g = se3_exp(jnp.array([0.0, 0.0, 0.0, 1.0, 2.0, 3.0]))
      >>> g.t
      Array([1., 2., 3.], dtype=float32)
    """
    check_vectors(xi, 6, "SE3.exp")
    w, v = xi[..., :3], xi[..., 3:]
    b, c, *_ = _se3_V_coeffs(w)
    K = skew(w)
    eye = jnp.broadcast_to(jnp.eye(3, dtype=xi.dtype), K.shape)
    V = eye + b[..., None, None] * K + c[..., None, None] * (K @ K)
    return EuclideanElement(so3_exp(w), matvec(V, v))


def se3_log(g: EuclideanElement) -> Float[Array, "*batch 6"]:
    """Inverse of :func:`se3_exp` for rotation angles below π: ``(R, t) -> (ω, v)``
    of shape ``(..., 6)``.

    Example:
      >>> import jax.numpy as jnp
      >>> xi = jnp.array([0.1, -0.2, 0.3, 1.0, 2.0, 3.0])
      >>> bool(jnp.allclose(se3_log(se3_exp(xi)), xi, atol=1e-5))
      True
    """
    SE3.validate(g)
    R, t = g
    w = so3_log(R)
    theta, small = _safe_norm(w)
    t2 = jnp.sum(w * w, axis=-1)
    # V⁻¹ = I - K/2 + d K², d = (1 - θ sinθ / (2(1 - cosθ))) / θ² -> 1/12 + θ²/720.
    half = 0.5 * theta
    d = jnp.where(
        small,
        1.0 / 12.0 + t2 / 720.0,
        (1.0 - half * jnp.cos(half) / jnp.sin(jnp.where(small, 1.0, half))) / theta**2,
    )
    K = skew(w)
    eye = jnp.broadcast_to(jnp.eye(3, dtype=R.dtype), K.shape)
    Vinv = eye - 0.5 * K + d[..., None, None] * (K @ K)
    return jnp.concatenate([w, matvec(Vinv, t)], -1)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _sample_euclidean(key, shape, n, dtype, special, translation_scale):
    k1, k2 = jax.random.split(key)
    t = translation_scale * jax.random.normal(k2, (*shape, n), dtype)
    rot = SOn(n) if special else On(n)
    return EuclideanElement(rot.sample(k1, shape, dtype), t)


@functools.cache
def _euclidean(n: int, special: bool) -> Group:
    rot = SOn(n) if special else On(n)
    name = ("SE" if special else "E") + (f"{n}" if n <= 3 else f"({n})")

    def check(g, where):
        if not isinstance(g, tuple) or len(g) != 2:
            raise TypeError(
                f"{where} expects an (R, t) EuclideanElement, got {type(g).__name__}"
            )
        R, t = g
        check_square(R, n, f"{where} R")
        check_orthogonal_values(R, f"{where} R", special=special)
        check_vectors(t, n, name, where=f"{where} t")

    def validate(g):
        check(g, name)

    def identity(shape=(), dtype=None):
        shape = as_shape(shape)
        return EuclideanElement(
            rot.identity(shape, dtype), jnp.zeros((*shape, n), resolve_dtype(dtype))
        )

    def compose(g, h):
        check(g, f"{name}.compose (g)")
        check(h, f"{name}.compose (h)")
        return EuclideanElement(g[0] @ h[0], add_broadcast(matvec(g[0], h[1]), g[1]))

    def inverse(g):
        check(g, f"{name}.inverse (g)")
        Rt = jnp.swapaxes(g[0], -1, -2)
        return EuclideanElement(Rt, -matvec(Rt, g[1]))

    def sample(key, shape=(), dtype=None, translation_scale=1.0):
        return _sample_euclidean(
            key, as_shape(shape), n, resolve_dtype(dtype), special, translation_scale
        )

    def act(g, x):
        check(g, f"{name}.act (g)")
        check_vectors(x, n, name)
        return add_broadcast(matvec(g[0], x), g[1])

    exp, log = (se3_exp, se3_log) if (special and n == 3) else (None, None)
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
        compact=False,
        has_reflections=not special,
    )


def En(n: int) -> Group:
    """The Euclidean group E(n) of isometries ``x ↦ R x + t`` (reflections included).

    ``sample`` draws ``R`` from Haar on O(n) and ``t ~ N(0, s² I)`` with
    ``s = translation_scale`` (default 1): E(n) is not compact, so there is no Haar
    probability measure; this is the documented stand-in.

    Example:
      >>> import jax
      >>> g = En(3).sample(jax.random.key(0))
      >>> (g.R.shape, g.t.shape)
      ((3, 3), (3,))
    """
    return _euclidean(static_int(n, "En: n", minimum=1), False)


def SEn(n: int) -> Group:
    """The special Euclidean group SE(n) of rigid motions ``x ↦ R x + t``.

    Same sampling as :func:`En` with ``R`` Haar on SO(n). For ``n = 3`` ``exp`` and
    ``log`` map twists ``(ω, v)`` of shape ``(..., 6)``.

    Example:
      >>> import jax
      >>> SEn(3).sample(jax.random.key(0), (5,)).t.shape
      (5, 3)
    """
    return _euclidean(static_int(n, "SEn: n", minimum=1), True)


E3 = En(3)
SE3 = SEn(3)


def act_vectors(g: EuclideanElement | Array, v: Float[Array, "*batch n"]) -> Array:
    """Act on free vectors (velocities, forces, displacements): translations ignored.

    Accepts a matrix ``R`` or an ``(R, t)`` / ``(A, b)`` element.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> g = E3.sample(jax.random.key(0))
      >>> v = jnp.ones(3)
      >>> bool(jnp.allclose(act_vectors(g, v), g.R @ v))
      True
    """
    M = g[0] if isinstance(g, tuple) else g
    shape = getattr(M, "shape", None)
    check_square(M, shape[-1] if shape else 0, "act_vectors (g)")
    check_float(v, "act_vectors input")
    if v.shape[-1:] != M.shape[-1:]:
        raise ValueError(
            f"act_vectors: vectors of shape {v.shape} do not match {M.shape}"
        )
    return matvec(M, v)
