"""NNX wrappers around :mod:`eqjax.bodies`: the subequivariant transformer (SET),
the APEN segmentation model and the ArtEq-style fitting model.

Chen, Han, Sun, Huang, "Subequivariant Graph Reinforcement Learning in 3D
Environments", ICML 2023; Atzmon, Huang, Williams, Litany, "Approximately
Piecewise E(3) Equivariant Point Networks", ICLR 2024; Feng, Kulits, Liu, Black,
Abrevaya, "Generalizing Neural Human Fitting to Unseen Poses With Articulated SE(3)
Equivariance", ICCV 2023. Each module holds its parameter pytree as ``nnx.Param``
leaves and calls the pure function.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float

from ..bodies import apen, apen_init, arteq, arteq_init, check_tree, set_init, set_model
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


class APEN(_PytreeParams):
    """Approximately piecewise E(3)-invariant point segmentation (Atzmon et al.,
    ICLR 2024): :func:`eqjax.bodies.apen` underneath (votes for part centres, EM
    part discovery with merging and pruning, a PointNet frame-averaged per part).

    Args:
      num_classes: logits per point.
      num_parts: part candidates ``K``.
      hidden: PointNet width.
      em_steps, merge_distance, min_weight, hard: as in :func:`eqjax.bodies.apen`.
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: computation dtype (default: that of the points).
      param_dtype: parameter dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = APEN(3, 2, rngs=nnx.Rngs(0))
      >>> x = jax.random.normal(jax.random.key(1), (16, 3)) * jnp.array([[3., 2, 1]])
      >>> logits, parts = model(x)
      >>> logits.shape, parts.shape
      ((16, 3), (16, 2))
    """

    def __init__(
        self,
        num_classes: int,
        num_parts: int,
        *,
        hidden: int = 32,
        em_steps: int = 5,
        merge_distance: float = 0.0,
        min_weight: float = 0.0,
        hard: bool = False,
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        if (
            isinstance(num_parts, bool)
            or not isinstance(num_parts, int)
            or num_parts < 1
        ):
            raise ValueError(f"APEN: num_parts must be an int >= 1, got {num_parts!r}")
        self.num_parts = num_parts
        self.em_steps = int(em_steps)
        self.merge_distance = float(merge_distance)
        self.min_weight = float(min_weight)
        self.hard = bool(hard)
        self.dtype = dtype
        self._store(
            apen_init(rngs.params(), num_classes, hidden=hidden, dtype=param_dtype)
        )

    def __call__(
        self, x: Float[Array, "N 3"], parts: Float[Array, "N K"] | None = None
    ) -> tuple[Array, Array]:
        """``(logits (N, num_classes), parts (N, K))``; ``parts`` given: use them
        (e.g. the true partition) instead of predicting them."""
        x = jnp.asarray(x)
        dt = self.dtype or x.dtype
        return apen(
            self._params(dt),
            x.astype(dt),
            num_parts=self.num_parts,
            parts=parts,
            em_steps=self.em_steps,
            merge_distance=self.merge_distance,
            min_weight=self.min_weight,
            hard=self.hard,
        )


class ArtEq(_PytreeParams):
    """ArtEq-style articulated fitting (Feng et al., ICCV 2023):
    :func:`eqjax.bodies.arteq` underneath (a PointNet lifted to anchor
    rotations, soft part pooling, kinematic conditioning on the parent, per-part
    rotations as chordal means of residual-corrected anchors). Invariant to the
    input's translation and scale; ``anchors="part_frames"`` (default): exact
    under every rotation on clouds whose body and soft parts have distinct
    covariance eigenvalues, each part read in its own PCA frame;
    ``anchors="grid"``: exact under the 24 octahedral rotations for every input.

    Args:
      parents: the kinematic tree (``K`` parent indices, ``-1`` for the root).
      hidden: feature width.
      anchors: ``"part_frames"`` or ``"grid"`` (:func:`eqjax.bodies.arteq_init`).
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: computation dtype (default: that of the points).
      param_dtype: parameter dtype.

    Example:
      >>> import jax
      >>> from flax import nnx
      >>> model = ArtEq([-1, 0, 1], rngs=nnx.Rngs(0))
      >>> logits, R = model(jax.random.normal(jax.random.key(1), (10, 3)))
      >>> logits.shape, R.shape
      ((10, 3), (3, 3, 3))
    """

    def __init__(
        self,
        parents: Any,
        *,
        hidden: int = 32,
        anchors: str = "part_frames",
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        self.parents = check_tree(parents, "ArtEq")
        self.dtype = dtype
        self._store(
            arteq_init(
                rngs.params(),
                len(self.parents),
                hidden=hidden,
                anchors=anchors,
                dtype=param_dtype,
            )
        )

    def __call__(self, x: Float[Array, "N 3"]) -> tuple[Array, Array]:
        """``(part_logits (N, K), rotations (K, 3, 3))``."""
        x = jnp.asarray(x)
        dt = self.dtype or x.dtype
        return arteq(self._params(dt), x.astype(dt), self.parents)
