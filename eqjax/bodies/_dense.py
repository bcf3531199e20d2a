"""The dense layer the bodies models (APEN, ArtEq) share: ``x @ w + b`` in the
input's dtype, ``w`` scaled by ``1/sqrt(fan_in)``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def dense_init(key, a: int, b: int, dtype, scale: float = 1.0) -> dict:
    """``{"w": (a, b), "b": (b,)}``: normal weights times ``scale / sqrt(a)``,
    zero bias."""
    return {
        "w": jax.random.normal(key, (a, b), dtype) * (scale / math.sqrt(a)),
        "b": jnp.zeros((b,), dtype),
    }


def dense(p: dict, x):
    """``x @ p["w"] + p["b"]`` over the last axis, in ``x``'s dtype."""
    y = x @ p["w"].astype(x.dtype)
    return y + p["b"].astype(x.dtype).reshape((1,) * (y.ndim - 1) + (-1,))
