"""NNX wrappers around :mod:`eqjax.bodies`: the subequivariant transformer (SET).

Chen, Han, Sun, Huang, "Subequivariant Graph Reinforcement Learning in 3D
Environments", ICML 2023. Each module holds its parameter pytree as ``nnx.Param``
leaves and calls the pure function.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float

from ..bodies import set_init, set_model
from ._graphs import _PytreeParams


class SET(_PytreeParams):
    """Subequivariant transformer over the parts of a body (Chen et al., ICML 2023).

    :func:`eqjax.bodies.set_model` underneath: O(3)-equivariant in every vector
    input (gravity and target directions included), exactly O_g(3)-symmetric
    (:func:`eqjax.groups.axis_subgroup`) when gravity is held fixed.

    Args:
      vector_in, scalar_in: per-part input vector and scalar channels.
      vector_out, scalar_out: per-part output channels.
      num_directions: direction vectors passed as ``gravity`` (gravity, targets).
      hidden_vectors, hidden_scalars, num_layers, num_heads: as in
        :func:`eqjax.bodies.set_init`.
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: computation dtype (default: that of the vectors).
      param_dtype: parameter dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = SET(2, 3, 1, 4, rngs=nnx.Rngs(0))
      >>> v, s = model(jnp.ones((5, 2, 3)), jnp.ones((5, 3)), jnp.array([0.0, 0, -1]))
      >>> v.shape, s.shape
      ((5, 1, 3), (5, 4))
    """

    def __init__(
        self,
        vector_in: int,
        scalar_in: int,
        vector_out: int,
        scalar_out: int,
        *,
        num_directions: int = 1,
        hidden_vectors: int = 8,
        hidden_scalars: int = 32,
        num_layers: int = 2,
        num_heads: int = 2,
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        self.dtype = dtype
        self._store(
            set_init(
                rngs.params(),
                vector_in=vector_in,
                scalar_in=scalar_in,
                vector_out=vector_out,
                scalar_out=scalar_out,
                num_directions=num_directions,
                hidden_vectors=hidden_vectors,
                hidden_scalars=hidden_scalars,
                num_layers=num_layers,
                num_heads=num_heads,
                dtype=param_dtype,
            )
        )

    def __call__(
        self,
        vectors: Float[Array, "*batch K V 3"],
        scalars: Float[Array, "*batch K C"],
        gravity: Float[Array, "*batch M 3"] | Float[Array, "3"],
        mask: Bool[Array, "*batch K"] | None = None,
    ) -> tuple[Array, Array]:
        """``(vectors (*batch, K, vector_out, 3), scalars (*batch, K,
        scalar_out))``; see :func:`eqjax.bodies.set_model`."""
        v = jnp.asarray(vectors)
        dt = self.dtype or v.dtype
        return set_model(
            self._params(dt),
            v.astype(dt),
            jnp.asarray(scalars).astype(dt),
            gravity,
            mask,
        )
