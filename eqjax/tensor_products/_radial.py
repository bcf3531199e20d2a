"""Radial functions for per-edge weights: a Bessel basis with a smooth cutoff
(Gasteiger, Groß & Günnemann, "Directional Message Passing for Molecular Graphs",
ICLR 2020, Eqs. 7–8)."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float


def _check(num_basis: Any, cutoff: Any, p: Any = 6) -> None:
    if isinstance(num_basis, bool) or not isinstance(num_basis, int) or num_basis < 1:
        raise ValueError(f"num_basis must be a Python int ≥ 1, got {num_basis!r}")
    if (
        isinstance(cutoff, bool)
        or not isinstance(cutoff, int | float)
        or not math.isfinite(cutoff)
        or cutoff <= 0
    ):
        raise ValueError(f"cutoff must be a positive finite number, got {cutoff!r}")
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ValueError(f"p must be a Python int ≥ 1, got {p!r}")


def smooth_cutoff(
    r: Float[Array, "*batch"], cutoff: float, p: int = 6
) -> Float[Array, "*batch"]:
    """DimeNet's polynomial envelope ``u(d) = 1 − (p+1)(p+2)/2 d^p + p(p+2) d^{p+1}
    − p(p+1)/2 d^{p+2}`` of ``d = r / cutoff`` for ``d < 1``, else ``0``: ``u(0) = 1``,
    and value, slope and curvature vanish at the cutoff (DimeNet, Eq. 8).

    Args:
      r: distances, any shape, floating.
      cutoff: ``c > 0``.
      p: envelope exponent (int ≥ 1).

    Returns:
      ``u(r / c)``, same shape and dtype as ``r``.

    Example:
      >>> import jax.numpy as jnp
      >>> smooth_cutoff(jnp.array([0.0, 5.0, 6.0]), 5.0).tolist()
      [1.0, 0.0, 0.0]
    """
    _check(1, cutoff, p)
    r = jnp.asarray(r)
    if not jnp.issubdtype(r.dtype, jnp.floating):
        raise TypeError(f"r must be floating point, got {r.dtype}")
    d = jnp.clip(r / cutoff, 0.0, 1.0)
    u = (
        1
        - (p + 1) * (p + 2) / 2 * d**p
        + p * (p + 2) * d ** (p + 1)
        - p * (p + 1) / 2 * d ** (p + 2)
    )
    return jnp.where(r < cutoff, u, 0.0).astype(r.dtype)


def bessel_basis(
    r: Float[Array, "*batch"], num_basis: int, cutoff: float
) -> Float[Array, "*batch num_basis"]:
    """Radial Bessel basis ``√(2/c) sin(nπ r / c) / r`` for ``n = 1 … num_basis``
    (DimeNet, Eq. 7), with its finite limit ``√(2/c) nπ/c`` at ``r = 0`` (coincident
    points and padding edges give finite values and gradients).

    Args:
      r: distances, any shape, floating.
      num_basis: number of functions (int ≥ 1).
      cutoff: ``c > 0``.

    Returns:
      ``(*r.shape, num_basis)`` in ``r``'s dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> bessel_basis(jnp.array([0.0, 1.0]), 3, 5.0).shape
      (2, 3)
    """
    _check(num_basis, cutoff)
    r = jnp.asarray(r)
    if not jnp.issubdtype(r.dtype, jnp.floating):
        raise TypeError(f"r must be floating point, got {r.dtype}")
    n = jnp.arange(1, num_basis + 1, dtype=r.dtype) * (math.pi / cutoff)
    n = n.reshape((1,) * r.ndim + (num_basis,))
    r_ = r[..., None]
    small = jnp.abs(r_) < 1e-6 * cutoff
    safe = jnp.where(small, 1.0, r_)
    # sin(n r)/r, with the Taylor series n − n³r²/6 near 0
    val = jnp.where(small, n - n**3 * r_**2 / 6, jnp.sin(n * safe) / safe)
    return (math.sqrt(2.0 / cutoff) * val).astype(r.dtype)
