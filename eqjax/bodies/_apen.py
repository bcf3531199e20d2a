"""A small APEN model: votes for part centres, EM part discovery, piecewise frame
averaging of a segmentation backbone.

Atzmon, Huang, Williams, Litany, "Approximately Piecewise E(3) Equivariant Point
Networks", ICLR 2024. The parts are predicted bottom-up: every point votes for its
part's centre with an E(3)-equivariant offset (a PointNet frame-averaged over the
cloud's PCA frame), a Gaussian mixture fitted to the votes by EM (with merging
and pruning of candidates) gives soft parts, and the segmentation backbone is
frame-averaged per soft part (:func:`piecewise_frame_average`). With the true
partition passed instead, the model is exactly piecewise E(3)-invariant (the
upper bound); with predicted parts, it is exactly E(3)-invariant globally and
piecewise-invariant up to the error of the predicted partition.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..frames import frame_average, plain_pca_frame
from ..groups import E3, act_vectors, cloud_action
from ._dense import dense, dense_init
from ._piecewise import (
    em_step,
    merge_and_prune,
    mixture_init,
    part_outputs,
    piecewise_frame_average,
    responsibilities,
    straight_through_parts,
)


def _pointnet_init(key, hidden, out, dtype, last_scale=1.0):
    k = jax.random.split(key, 3)
    return {
        "point": dense_init(k[0], 3, hidden, dtype),
        "mix": dense_init(k[1], 3 * hidden, hidden, dtype),
        "out": dense_init(k[2], hidden, out, dtype, last_scale),
    }


def _pointnet(p, x, w):
    """Per-point outputs ``(N, out)`` from points ``x (N, 3)`` and weights ``w (N,)``
    (weighted mean and weighted max pooling, ``max_i w_i h_i``: points with
    ``w = 0`` do not reach the others, their ``0`` is a constant floor)."""
    h = jax.nn.silu(dense(p["point"], x))
    total = jnp.sum(w)
    mean = jnp.sum(w[:, None] * h, 0) / jnp.where(total > 0, total, 1)
    top = jnp.max(w[:, None] * h, 0)
    g = jnp.broadcast_to(
        jnp.concatenate([mean, top])[None], (h.shape[0], 2 * h.shape[1])
    )
    h = jax.nn.silu(dense(p["mix"], jnp.concatenate([h, g], -1)))
    return dense(p["out"], h)


def apen_init(
    key: Array, num_classes: int, *, hidden: int = 32, dtype: Any = jnp.float32
) -> dict:
    """Parameters of :func:`apen`: the vote PointNet (3 outputs per point, an
    offset to the part centre), the segmentation PointNet (``hidden`` features
    per point) and the part-context head (``num_classes`` logits per point).

    Example:
      >>> import jax
      >>> sorted(apen_init(jax.random.key(0), 4))
      ['context', 'logits', 'segment', 'vote']
    """
    for name, v in (("num_classes", num_classes), ("hidden", hidden)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"apen_init: {name} must be an int >= 1, got {v!r}")
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "vote": _pointnet_init(k1, hidden, 3, dtype, 0.1),
        "segment": _pointnet_init(k2, hidden, hidden, dtype),
        # per point of part k: [its features, part k's descriptor, the
        # mass-weighted mean descriptor of all parts] -> logits
        "context": dense_init(k3, 5 * hidden, hidden, dtype),
        "logits": dense_init(k4, hidden, num_classes, dtype),
    }


def _segment(params, x, w):
    """Part ``k``'s features in its own frame: per point ``(N, H)`` and the part's
    descriptor ``(2H,)`` (weighted mean and max of those features)."""
    h = jax.nn.silu(_pointnet(params["segment"], x, w))
    total = jnp.sum(w)
    mean = jnp.sum(w[:, None] * h, 0) / jnp.where(total > 0, total, 1)
    return h, jnp.concatenate([mean, jnp.max(w[:, None] * h, 0)])


def apen_votes(params: dict, x: Float[Array, "N 3"]) -> Float[Array, "N 3"]:
    """Votes ``x + offset(x)`` for part centres: the offset PointNet frame-averaged
    over the cloud's E(3) PCA frame (an E(3)-equivariant vote).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = apen_init(jax.random.key(0), 2)
      >>> apen_votes(p, jnp.arange(12.0).reshape(4, 3) ** 1.5).shape
      (4, 3)
    """
    ones = jnp.ones(x.shape[:1], x.dtype)
    offset = frame_average(
        lambda y: _pointnet(params["vote"], y, ones),
        plain_pca_frame(E3),
        act_in=cloud_action(E3),
        act_out=act_vectors,
    )(x)
    return x + offset


def apen(
    params: dict,
    x: Float[Array, "N 3"],
    *,
    num_parts: int,
    parts: Float[Array, "N K"] | None = None,
    em_steps: int = 5,
    merge_distance: float = 0.0,
    min_weight: float = 0.0,
    hard: bool = False,
) -> tuple[Array, Array]:
    """APEN segmentation (Atzmon et al., ICLR 2024): per-point logits and parts.

    Without ``parts``: votes (:func:`apen_votes`), ``num_parts`` candidates by
    farthest-point sampling, ``em_steps`` EM steps, one :func:`merge_and_prune`
    (``merge_distance``, ``min_weight``), soft parts = the responsibilities
    (``hard=True``: one-hot forward, soft gradient, :func:`straight_through_parts`).
    Then the segmentation PointNet (weighted mean and max pooling), frame-averaged
    per part (:func:`piecewise_frame_average`): per-point features and a part
    descriptor; each point of part ``k`` is classified from its features, part
    ``k``'s descriptor and the mass-weighted mean of all parts' descriptors (each
    descriptor is invariant to its own part's motion, so this context keeps the
    piecewise invariance); combined per point (:func:`part_outputs`).
    With ``parts`` (``(N, K)``, e.g. the true partition): those parts.

    Symmetry: E(3)-invariant logits (a global motion moves the votes, the
    candidates and the frames with it); with given hard ``parts``, exactly
    invariant when every part moves by its own rigid motion (parts with distinct
    covariance eigenvalues, see :func:`piecewise_frame_average`). Limit: EM's
    variances square the coordinates, so float32 clouds beyond about 1e19 overflow
    (NaN); rescale the input.

    Returns:
      ``(logits (N, num_classes), parts (N, K))``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = apen_init(jax.random.key(0), 3)
      >>> x = jax.random.normal(jax.random.key(1), (16, 3)) * jnp.array([[3., 2, 1]])
      >>> logits, parts = apen(p, x, num_parts=2)
      >>> logits.shape, parts.shape
      ((16, 3), (16, 2))
    """
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2 or shape[-1] != 3:
        raise ValueError(f"apen: x must have shape (N, 3), got {shape}")
    if isinstance(num_parts, bool) or not isinstance(num_parts, int) or num_parts < 1:
        raise ValueError(f"apen: num_parts must be an int >= 1, got {num_parts!r}")
    if parts is None:
        votes = apen_votes(params, x)
        mix = mixture_init(jax.lax.stop_gradient(votes), num_parts)
        for _ in range(int(em_steps)):
            mix = em_step(mix, votes)
        mix = merge_and_prune(mix, merge_distance=merge_distance, min_weight=min_weight)
        soft = responsibilities(mix, votes)
        if hard:
            soft = straight_through_parts(soft)
        # candidates dropped by merging (or left without votes) are empty: a
        # vanishing uniform weight keeps their (unused) frames defined
        soft = soft + jnp.finfo(x.dtype).eps
        soft = soft / jnp.sum(soft, -1, keepdims=True)
    else:
        soft = jnp.asarray(parts)
    h, d = piecewise_frame_average(lambda y, w: _segment(params, y, w), x, soft)
    # part context: each descriptor is invariant to its own part's motion, so
    # their mass-weighted mean is piecewise invariant too (a part's label can
    # depend on the other parts' shapes, e.g. its size relative to theirs)
    mass = jnp.sum(soft, 0)
    ctx = jnp.sum(mass[:, None] * d, 0) / jnp.sum(mass)
    K, n = h.shape[:2]
    z = jnp.concatenate(
        [
            h,
            jnp.broadcast_to(d[:, None], (K, n, d.shape[-1])),
            jnp.broadcast_to(ctx, (K, n, ctx.shape[-1])),
        ],
        -1,
    )
    per_part = dense(params["logits"], jax.nn.silu(dense(params["context"], z)))
    return part_outputs(soft, per_part), soft
