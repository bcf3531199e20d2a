"""NNX wrappers around :mod:`eqjax.weights`: fixed classifier heads.

Shen et al., "Equiangular Basis Vectors" (CVPR 2023): :class:`EBVHead` holds a
fixed basis of nearly orthogonal unit vectors (one per class, possible with more
classes than dimensions) and returns the cosine logits over a temperature.
:class:`FixedFrameHead` holds the simplex ETF or an orthogonal frame (the
neural-collapse geometries of Dang et al., ICML 2023) instead. The basis is a
:class:`FixedBasis` variable, not an ``nnx.Param``: optimisers that filter on
``nnx.Param`` leave it alone, and :func:`eqjax.weights.permutation_spec` still
sees it (permuting the features permutes its columns).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from ..weights import ebv_logits, equiangular_basis, orthogonal_frame, simplex_etf


class FixedBasis(nnx.Variable):
    """A non-trainable classifier basis ``(num_classes, in_features)``."""


class EBVHead(nnx.Module):
    """Equiangular basis vectors as a fixed classifier (Shen et al., CVPR 2023).

    Args:
      in_features: feature dimension ``d``.
      num_classes: ``K`` (may exceed ``d``).
      temperature: logits are cosines over it.
      tol: the largest accepted ``|cos|`` (see
        :func:`eqjax.weights.equiangular_basis`).
      max_steps: most generator steps.
      dtype: computation dtype (default: the features').
      rngs: ``nnx.Rngs`` for the basis's random start.

    Raises:
      ValueError: the generator did not reach ``tol`` (never a silent failure).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> head = EBVHead(16, 40, rngs=nnx.Rngs(0))
      >>> head(jnp.ones((3, 16))).shape
      (3, 40)
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        temperature: float = 0.07,
        tol: float | None = None,
        max_steps: int = 2000,
        dtype: Any = None,
        rngs: nnx.Rngs,
    ):
        basis, ok, info = equiangular_basis(  # pyright: ignore[reportAssignmentType]
            rngs.params(),
            num_classes,
            in_features,
            tol=tol,
            max_steps=max_steps,
            return_info=True,
        )
        if not ok:
            raise ValueError(
                f"EBVHead: the basis did not converge (max |cos| "
                f"{info['max_abs_cos']:.4f} after {info['steps']} steps); raise tol"
            )
        self.basis = FixedBasis(basis)
        self.temperature = float(temperature)
        self.dtype = dtype

    def __call__(self, x: Float[Array, "*batch d"]) -> Float[Array, "*batch K"]:
        dtype = self.dtype or x.dtype
        return ebv_logits(
            x.astype(dtype), self.basis[...].astype(dtype), self.temperature
        )


class FixedFrameHead(nnx.Module):
    """A fixed simplex-ETF (``kind="etf"``) or orthogonal-frame (``"orthogonal"``)
    classifier: cosine logits over a temperature, as :class:`EBVHead`.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> head = FixedFrameHead(8, 5, kind="etf", rngs=nnx.Rngs(0))
      >>> head(jnp.ones((2, 8))).shape
      (2, 5)
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        kind: str = "etf",
        temperature: float = 0.07,
        dtype: Any = None,
        rngs: nnx.Rngs,
    ):
        makers = {"etf": simplex_etf, "orthogonal": orthogonal_frame}
        if kind not in makers:
            raise ValueError(
                f"FixedFrameHead: kind must be one of {sorted(makers)}, got {kind!r}"
            )
        key: jax.Array = rngs.params()
        self.basis = FixedBasis(
            makers[kind](num_classes, in_features, key=key, dtype=jnp.float32)
        )
        self.temperature = float(temperature)
        self.dtype = dtype

    def __call__(self, x: Float[Array, "*batch d"]) -> Float[Array, "*batch K"]:
        dtype = self.dtype or x.dtype
        return ebv_logits(
            x.astype(dtype), self.basis[...].astype(dtype), self.temperature
        )
