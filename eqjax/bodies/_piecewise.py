"""Piecewise frame averaging and part discovery by EM (APEN).

Atzmon, Huang, Williams, Litany, "Approximately Piecewise E(3) Equivariant Point
Networks", ICLR 2024. A backbone is frame-averaged once per (soft) part, over the
weighted PCA frame of that part (:func:`eqjax.frames.plain_pca_frame` with
``weights=``); the parts come bottom-up from a Gaussian mixture fitted by EM to
per-point votes for part centres, with candidates merged and pruned in fixed
shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from ..frames import frame_average, pca_frame, plain_pca_frame
from ..groups import E3, cloud_action


def _concrete(x):
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def check_parts(parts: Any, n: int, where: str, *, partition: bool = True) -> Array:
    """``parts`` as a floating ``(n, K)`` array; when concrete: finite, ``>= 0``,
    every part non-empty (some weight) and, for a partition, rows summing to one."""
    shape = getattr(parts, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != n:
        raise ValueError(f"{where}: parts must have shape ({n}, K), got {shape}")
    if shape[1] == 0:
        raise ValueError(f"{where}: parts has no part (K = 0)")
    p = jnp.asarray(parts)
    if not jnp.issubdtype(p.dtype, jnp.floating):
        raise TypeError(
            f"{where}: parts must be floating (one-hot or soft weights), got dtype "
            f"{p.dtype}; e.g. jax.nn.one_hot(labels, K)"
        )
    a = _concrete(p)
    if a is not None:
        a = a.astype(np.float64)
        if not np.isfinite(a).all() or (a < 0).any():
            raise ValueError(f"{where}: parts must be finite and >= 0")
        empty = np.nonzero(a.sum(0) <= 0)[0]
        if empty.size:
            raise ValueError(
                f"{where}: parts {empty.tolist()} are empty (no point has weight); "
                "drop them or use a mask"
            )
        if partition:
            rows = a.sum(1)
            tol = 1e3 * float(jnp.finfo(p.dtype).eps) * max(shape[1], 1) ** 0.5
            if np.any(np.abs(rows - 1) > tol):
                raise ValueError(
                    f"{where}: each point's part weights must sum to one, got row "
                    f"sums in [{rows.min():.3g}, {rows.max():.3g}]"
                )
    return p


def piecewise_frame_average(
    fn: Callable[..., Any],
    x: Float[Array, "N 3"],
    parts: Float[Array, "N K"],
    *,
    act_out: Callable[[Any, Any], Any] | None = None,
    frame: str = "plain",
) -> Any:
    """Frame-average ``fn`` once per part, over that part's weighted PCA frame
    (APEN, Atzmon et al., ICLR 2024).

    For part ``k`` with weights ``w_k = parts[:, k]``, the frame ``F_k`` is the
    E(3) PCA frame of ``x`` weighted by ``w_k`` (``eq.frames.plain_pca_frame(E3)``
    with ``weights=w_k``: 8 elements ``g = (R, c_k)``), and the output is
    ``y_k = Σ_{g ∈ F_k} (1/8) act_out(g, fn(g⁻¹·x, w_k))`` (``act_out=None``:
    invariant, ``Σ (1/8) fn(g⁻¹·x, w_k)``). ``fn(x_canonical (N, 3), w (N,))``
    sees the whole cloud in part ``k``'s canonical pose and the part's weights.

    Exactness (for a hard partition, one-hot ``parts``): if ``fn``'s outputs for
    part ``k`` depend only on the points with ``w_k > 0`` (a weighted-pooling
    PointNet does; per-point outputs are combined per point, see
    :func:`part_outputs`), moving each part by its own rigid motion ``g_k ∈ E(3)``
    (reflections included) leaves every invariant ``y_k`` unchanged and moves
    every equivariant ``y_k`` by ``g_k`` — exactly, to rounding, **wherever part
    ``k``'s weighted covariance has distinct eigenvalues**. On a part with a
    repeated eigenvalue (a cube, a cylinder, a sphere, fewer than 3 non-collinear
    points) the PCA frame is not unique and the result is not equivariant there;
    ``frame="pca"`` uses the degenerate-safe :func:`eqjax.frames.pca_frame`
    instead (exact on every part, at ``2N² + 6N + 56`` backbone calls per part).
    Splitting a part into two keeps this exact (the finer partition is a
    partition). Soft parts: exact under one global motion of the whole cloud.

    Args:
      fn: the backbone ``fn(x (N, 3), w (N,)) -> pytree of floating arrays``.
      x: ``(N, 3)`` points.
      parts: ``(N, K)`` hard (one-hot) or soft part weights; each point's row sums
        to one and every part has some weight (checked when concrete).
      act_out: action of an E(3) element on ``fn``'s outputs (``None``:
        invariant; ``eq.groups.act_vectors`` for vectors,
        ``eq.groups.cloud_action(eq.groups.E3)`` for positions).
      frame: ``"plain"`` (8 elements per part) or ``"pca"`` (degenerate-safe).

    Returns:
      ``fn``'s output structure with a leading part axis ``K``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jax.random.normal(jax.random.key(0), (12, 3)) * jnp.array([[3., 2, 1]])
      >>> parts = jax.nn.one_hot(jnp.arange(12) % 2, 2)
      >>> fn = lambda x, w: jnp.sum(w * jnp.tanh(x[:, 0] + 0.5)) / jnp.sum(w)
      >>> piecewise_frame_average(fn, x, parts).shape
      (2,)
    """
    where = "piecewise_frame_average"
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2 or shape[-1] != 3:
        raise ValueError(f"{where}: x must have shape (N, 3), got {shape}")
    if not jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating):
        raise TypeError(f"{where}: x must be floating, got dtype {x.dtype}")
    if frame not in ("plain", "pca"):
        raise ValueError(f"{where}: frame must be 'plain' or 'pca', got {frame!r}")
    p = check_parts(parts, shape[0], where).astype(x.dtype)
    make_frame = (plain_pca_frame if frame == "plain" else pca_frame)(E3)
    averaged = frame_average(fn, None, act_in=cloud_action(E3), act_out=act_out)

    def one(w):
        return averaged(x, w, frame=make_frame(x, weights=w))

    return jax.vmap(one, in_axes=1)(p)


def part_outputs(
    parts: Float[Array, "N K"], per_part: Float[Array, "K N ..."]
) -> Float[Array, "N ..."]:
    """Per-point outputs from per-part per-point ones: ``Σ_k parts[n, k] ·
    per_part[k, n]`` (APEN's combination; for a hard partition each point takes
    its own part's output).

    Example:
      >>> import jax.numpy as jnp
      >>> part_outputs(jnp.eye(2), jnp.arange(4.0).reshape(2, 2)).tolist()
      [0.0, 3.0]
    """
    if per_part.shape[:2] != (parts.shape[1], parts.shape[0]):
        raise ValueError(
            f"part_outputs: per_part of shape {per_part.shape} does not match parts "
            f"of shape {parts.shape} (expected (K, N, ...) = {parts.shape[::-1]})"
        )
    p = parts.astype(per_part.dtype)
    return jnp.einsum("nk,kn...->n...", p, per_part)


class PartMixture(NamedTuple):
    """An isotropic Gaussian mixture of ``K`` part candidates in fixed shapes.

    Attributes:
      means: ``(K, 3)`` candidate part centres.
      variances: ``(K,)`` isotropic variances.
      weights: ``(K,)`` mixture weights (zero on inactive candidates, summing to
        one over the active ones).
      active: ``(K,)`` boolean: the candidate is in use.
    """

    means: Array
    variances: Array
    weights: Array
    active: Array


def _point_mask(votes, mask):
    if mask is None:
        return jnp.ones(votes.shape[:-1], votes.dtype)
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_ or mask.shape != votes.shape[:-1]:
        raise ValueError(
            f"mixture: mask must be boolean of shape {votes.shape[:-1]}, got "
            f"{mask.dtype} {mask.shape}"
        )
    return mask.astype(votes.dtype)


def _log_joint(mix: PartMixture, votes):
    """``log π_k + log N(v_n | μ_k, σ_k² I)``: ``(N, K)``; ``-inf`` on inactive."""
    d2 = jnp.sum((votes[:, None, :] - mix.means[None]) ** 2, -1)
    var = mix.variances[None, :]
    logn = -0.5 * d2 / var - 1.5 * jnp.log(2 * jnp.pi * var)
    logw = jnp.where(
        mix.active, jnp.log(jnp.where(mix.active, mix.weights, 1)), -jnp.inf
    )
    return logn + logw[None, :]


def mixture_log_likelihood(
    mix: PartMixture, votes: Float[Array, "N 3"], mask: Bool[Array, " N"] | None = None
) -> Array:
    """``Σ_n mask_n log Σ_k π_k N(v_n | μ_k, σ_k² I)``.

    Example:
      >>> import jax.numpy as jnp
      >>> mix = mixture_init(jnp.eye(3), 2)
      >>> mixture_log_likelihood(mix, jnp.eye(3)).shape
      ()
    """
    m = _point_mask(votes, mask)
    return jnp.sum(m * jax.nn.logsumexp(_log_joint(mix, votes), axis=-1))


def responsibilities(
    mix: PartMixture, votes: Float[Array, "N 3"], mask: Bool[Array, " N"] | None = None
) -> Float[Array, "N K"]:
    """Posterior part weights ``γ_nk`` (rows sum to one; zero on inactive
    candidates and on masked points).

    Example:
      >>> import jax.numpy as jnp
      >>> responsibilities(mixture_init(jnp.eye(3), 2), jnp.eye(3)).shape
      (3, 2)
    """
    m = _point_mask(votes, mask)
    return jax.nn.softmax(_log_joint(mix, votes), axis=-1) * m[:, None]


def mixture_init(
    votes: Float[Array, "N 3"],
    num_parts: int,
    mask: Bool[Array, " N"] | None = None,
    *,
    variance: float | None = None,
) -> PartMixture:
    """``num_parts`` candidates by farthest-point sampling of the votes (from the
    first real vote; deterministic and permutation-equivariant up to that choice),
    equal weights, a shared variance (default: the votes' mean squared spread
    divided by ``num_parts``).

    Example:
      >>> import jax.numpy as jnp
      >>> mixture_init(jnp.eye(3), 2).means.shape
      (2, 3)
    """
    if isinstance(num_parts, bool) or not isinstance(num_parts, int) or num_parts < 1:
        raise ValueError(
            f"mixture_init: num_parts must be an int >= 1, got {num_parts!r}"
        )
    m = _point_mask(votes, mask)
    first = jnp.argmax(m > 0)

    def far(i, state):
        idx, d = state
        nxt = jnp.argmax(d)
        dn = jnp.where(m > 0, jnp.sum((votes - votes[nxt][None]) ** 2, -1), -1.0)
        return idx.at[i].set(nxt), jnp.minimum(d, dn)

    d0 = jnp.where(m > 0, jnp.sum((votes - votes[first][None]) ** 2, -1), -1.0)
    idx0 = jnp.zeros((num_parts,), jnp.int32).at[0].set(first)
    idx, _ = jax.lax.fori_loop(1, num_parts, far, (idx0, d0))
    means = votes[idx]
    total = jnp.maximum(jnp.sum(m), 1)
    centre = jnp.sum(m[:, None] * votes, 0) / total
    spread = jnp.sum(m * jnp.sum((votes - centre[None]) ** 2, -1)) / total / 3
    var = spread / num_parts if variance is None else jnp.asarray(variance, votes.dtype)
    var = jnp.maximum(var, jnp.finfo(votes.dtype).eps)
    k = num_parts
    return PartMixture(
        means=means,
        variances=jnp.full((k,), var, votes.dtype),
        weights=jnp.full((k,), 1.0 / k, votes.dtype),
        active=jnp.ones((k,), bool),
    )


def em_step(
    mix: PartMixture,
    votes: Float[Array, "N 3"],
    mask: Bool[Array, " N"] | None = None,
    *,
    min_variance: float = 1e-6,
) -> PartMixture:
    """One EM step of the isotropic mixture on the votes (masked points ignored).

    E: responsibilities ``γ``; M: ``π_k = Σ_n γ_nk / Σ_n 1``, ``μ_k`` the
    ``γ``-weighted mean, ``σ_k² = max(Σ γ |v - μ_k|² / (3 Σ γ), min_variance)``.
    The mixture log-likelihood never decreases (the EM property; the variance
    floor only acts where a component collapses onto one vote, then the
    likelihood is bounded by the floor). An active candidate that receives no
    responsibility keeps its parameters and gets weight 0 (prune it with
    :func:`merge_and_prune`).

    Example:
      >>> import jax.numpy as jnp
      >>> v = jnp.array([[0.0, 0, 0], [0.1, 0, 0], [5, 0, 0], [5.1, 0, 0]])
      >>> mix = em_step(mixture_init(v, 2), v)
      >>> [round(float(w), 3) for w in mix.weights]
      [0.5, 0.5]
    """
    m = _point_mask(votes, mask)
    g = responsibilities(mix, votes, mask)
    nk = jnp.sum(g, 0)
    total = jnp.maximum(jnp.sum(m), 1)
    has = nk > jnp.finfo(votes.dtype).tiny
    safe = jnp.where(has, nk, 1)
    means = jnp.where(has[:, None], (g.T @ votes) / safe[:, None], mix.means)
    d2 = jnp.sum((votes[:, None, :] - means[None]) ** 2, -1)
    var = jnp.sum(g * d2, 0) / (3 * safe)
    var = jnp.where(has, jnp.maximum(var, min_variance), mix.variances)
    weights = jnp.where(mix.active, nk / total, 0)
    return PartMixture(means, var.astype(votes.dtype), weights, mix.active)


def merge_and_prune(
    mix: PartMixture, *, merge_distance: float, min_weight: float = 0.0
) -> PartMixture:
    """Merge candidates closer than ``merge_distance`` and drop those lighter than
    ``min_weight``, in fixed shapes (APEN's candidate clean-up).

    In index order, each active candidate ``j`` merges into the first active
    ``i < j`` with ``|μ_i - μ_j| < merge_distance``: ``π = π_i + π_j`` and the
    moment-matched mean and variance; ``j`` becomes inactive. Then candidates
    with ``π < min_weight`` become inactive (never the heaviest) and the weights
    are renormalised: they sum to one over the active candidates throughout.

    Example:
      >>> import jax.numpy as jnp
      >>> mix = PartMixture(jnp.array([[0.0, 0, 0], [0.01, 0, 0]]), jnp.ones(2),
      ...                   jnp.array([0.5, 0.5]), jnp.ones(2, bool))
      >>> out = merge_and_prune(mix, merge_distance=0.1)
      >>> out.active.tolist(), out.weights.tolist()
      ([True, False], [1.0, 0.0])
    """
    if not np.isfinite(merge_distance) or merge_distance < 0:
        raise ValueError(
            f"merge_and_prune: merge_distance must be finite and >= 0, got "
            f"{merge_distance}"
        )
    if not 0 <= min_weight < 1:
        raise ValueError(
            f"merge_and_prune: min_weight must be in [0, 1), got {min_weight}"
        )
    k = mix.means.shape[0]

    def body(j, state):
        means, var, w, active = state
        d = jnp.linalg.norm(means - means[j][None], axis=-1)
        cand = active & (jnp.arange(k) < j) & (d < merge_distance)
        i = jnp.argmax(cand)
        do = active[j] & jnp.any(cand)
        wi, wj = w[i], w[j]
        tot = wi + wj
        ok = tot > 0
        a = jnp.where(ok, wi / jnp.where(ok, tot, 1), 0.5)
        mu = a * means[i] + (1 - a) * means[j]
        v = a * (var[i] + jnp.sum((means[i] - mu) ** 2) / 3) + (1 - a) * (
            var[j] + jnp.sum((means[j] - mu) ** 2) / 3
        )
        means = jnp.where(do, means.at[i].set(mu), means)
        var = jnp.where(do, var.at[i].set(v), var)
        w = jnp.where(do, w.at[i].set(tot).at[j].set(0), w)
        active = jnp.where(do, active.at[j].set(False), active)
        return means, var, w, active

    means, var, w, active = jax.lax.fori_loop(
        1, k, body, (mix.means, mix.variances, mix.weights, mix.active)
    )
    heaviest = jnp.argmax(jnp.where(active, w, -1))
    keep = active & ((w >= min_weight) | (jnp.arange(k) == heaviest))
    w = jnp.where(keep, w, 0)
    w = w / jnp.maximum(jnp.sum(w), jnp.finfo(w.dtype).tiny)
    return PartMixture(means, var, w, keep)


def straight_through_parts(soft: Float[Array, "N K"]) -> Float[Array, "N K"]:
    """Hard one-hot parts forward, the soft parts' gradient backward
    (``one_hot(argmax) + soft - stop_gradient(soft)``).

    Example:
      >>> import jax.numpy as jnp
      >>> straight_through_parts(jnp.array([[0.3, 0.7]])).tolist()
      [[0.0, 1.0]]
    """
    hard = jax.nn.one_hot(jnp.argmax(soft, -1), soft.shape[-1], dtype=soft.dtype)
    return hard + soft - jax.lax.stop_gradient(soft)
