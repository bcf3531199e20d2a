"""Fixed classifier geometries: equiangular basis vectors, the simplex ETF and
orthogonal frames.

Shen et al., "Equiangular Basis Vectors" (CVPR 2023): a fixed set of unit vectors,
one per class, with every pairwise ``|cos|`` below a small threshold (possible for
more classes than dimensions, down to the Welch bound
``sqrt((K - d) / (d (K - 1)))``), replaces the learned classifier; logits are the
cosines between the normalised feature and each basis vector, over a temperature.
The geometry is what matters: the loss is invariant to an orthogonal transform
applied jointly to the features and the basis, and equivariant to relabelling
the classes (permuting the basis rows).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._spec import Tracer


def welch_bound(num_classes: int, dim: int) -> float:
    """The smallest possible largest ``|cos|`` of ``num_classes`` unit vectors in
    ``dim`` dimensions (Welch 1974): 0 when ``num_classes <= dim``.

    Example:
      >>> round(welch_bound(200, 64), 4)
      0.1033
    """
    k, d = int(num_classes), int(dim)
    if k <= d:
        return 0.0
    return float(np.sqrt((k - d) / (d * (k - 1))))


def _max_abs_cos(b):
    c = b @ b.T
    c = jnp.where(jnp.eye(b.shape[0], dtype=bool), 0.0, c)
    return jnp.max(jnp.abs(c))


@functools.partial(jax.jit, static_argnames=("num_classes", "dim"))
def _generate(key, tol, lr, max_steps, *, num_classes, dim):
    b = jax.random.normal(key, (num_classes, dim))
    if num_classes <= dim:  # start orthonormal: already equiangular
        q, _ = jnp.linalg.qr(b.T)
        b = q.T
    b = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
    eye = jnp.eye(num_classes, dtype=bool)
    target = 0.9 * tol  # aim a little below the threshold

    def cond(state):
        step, b, worst = state
        return (step < max_steps) & (worst > tol)

    def body(state):
        step, b, _ = state
        c = jnp.where(eye, 0.0, b @ b.T)
        # gradient of ½ Σ_{i≠j} relu(|c_ij| - target)²: 2 Σ_j m_ij b_j
        m = jnp.maximum(jnp.abs(c) - target, 0.0) * jnp.sign(c)
        g = 2.0 * m @ b
        g = g - jnp.sum(g * b, axis=-1, keepdims=True) * b  # tangent to the sphere
        b = b - lr * g
        b = b / jnp.linalg.norm(b, axis=-1, keepdims=True)  # projection
        return step + 1, b, _max_abs_cos(b)

    steps, b, worst = jax.lax.while_loop(cond, body, (0, b, _max_abs_cos(b)))
    return b, worst, steps


def equiangular_basis(
    key: jax.Array,
    num_classes: int,
    dim: int,
    *,
    tol: float | None = None,
    max_steps: int = 2000,
    learning_rate: float = 0.1,
    allow_infeasible: bool = False,
    return_info: bool = False,
):
    """Nearly orthogonal unit vectors, one per class (Shen et al., CVPR 2023).

    Projected gradient steps on ``½ Σ_{i≠j} relu(|cos_ij| − 0.9 tol)²`` (each step
    followed by a projection back onto the unit sphere), stopped as soon as the
    largest ``|cos|`` is at most ``tol``. For ``num_classes <= dim`` the start is
    an orthonormal set (converged at once).

    Args:
      key: PRNG key of the random start.
      num_classes: ``K``, the number of vectors.
      dim: ``d``, their dimension.
      tol: the largest accepted ``|cos|``; default ``1e-5`` when ``K <= d``, else
        twice the Welch bound.
      max_steps: most gradient steps.
      learning_rate: step size.
      allow_infeasible: accept a ``tol`` below the Welch bound (no set of vectors
        reaches it; the result then always says ``converged=False``).
      return_info: also return ``{"max_abs_cos", "steps", "welch_bound"}``.

    Returns:
      ``(basis, converged)``: ``basis`` ``(K, d)`` float32 unit rows, and whether
      the largest ``|cos|`` is within ``tol`` (a Python bool). With
      ``return_info``, ``(basis, converged, info)``.

    Raises:
      ValueError: ``tol`` below the Welch bound without ``allow_infeasible``, or
        non-positive sizes.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> basis, ok = equiangular_basis(jax.random.key(0), 20, 8)
      >>> basis.shape, ok
      ((20, 8), True)
      >>> bool(jnp.allclose(jnp.linalg.norm(basis, axis=-1), 1.0, atol=1e-5))
      True
    """
    k, d = int(num_classes), int(dim)
    if k < 1 or d < 1:
        raise ValueError(
            f"equiangular_basis: num_classes and dim must be >= 1, got {k}, {d}"
        )
    bound = welch_bound(k, d)
    if tol is None:
        tol = 1e-5 if k <= d else 2.0 * bound
    tol = float(tol)
    if not tol > 0:
        raise ValueError(f"equiangular_basis: tol must be positive, got {tol}")
    if tol < bound and not allow_infeasible:
        raise ValueError(
            f"equiangular_basis: {k} unit vectors in {d} dimensions cannot have all "
            f"|cos| <= {tol}: the Welch bound is {bound:.4f}. Use tol >= {bound:.4f}, "
            "a larger dim, or allow_infeasible=True (converged is then False)"
        )
    b, worst, steps = _generate(
        key,
        jnp.float32(tol),
        jnp.float32(learning_rate),
        jnp.int32(max_steps),
        num_classes=k,
        dim=d,
    )
    converged = bool(worst <= tol)
    if return_info:
        info = {"max_abs_cos": float(worst), "steps": int(steps), "welch_bound": bound}
        return b, converged, info
    return b, converged


def _normalize(x, eps):
    """``x / ‖x‖`` (0 for ``x = 0``) with a finite gradient at ``x = 0``; rows
    are first divided by their largest entry, so 1e30 and 1e-30 neither
    overflow nor underflow when squared."""
    scale = jax.lax.stop_gradient(jnp.max(jnp.abs(x), axis=-1, keepdims=True))
    x = x / jnp.where(scale > 0, scale, 1)
    sq = jnp.sum(x * x, axis=-1, keepdims=True)
    return x / jnp.sqrt(jnp.maximum(sq, eps * eps))


def check_floating(x, what: str, where: str) -> None:
    """``TypeError`` unless ``x`` is a floating array."""
    dt = getattr(x, "dtype", None)
    if dt is None or not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"{where}: {what} must be a floating array, got dtype {dt}")


def ebv_logits(
    features: Float[Array, "*batch d"],
    basis: Float[Array, "K d"],
    temperature: float = 0.07,
) -> Float[Array, "*batch K"]:
    """Cosine similarities of the features to the basis vectors over a
    temperature: the EBV head (Shen et al.). Also the head of any fixed frame
    (:func:`simplex_etf`, :func:`orthogonal_frame`).

    Example:
      >>> import jax.numpy as jnp
      >>> ebv_logits(jnp.array([[2.0, 0.0]]), jnp.eye(2), 1.0)
      Array([[1., 0.]], dtype=float32)
    """
    check_floating(features, "features", "ebv_logits")
    check_floating(basis, "basis", "ebv_logits")
    if features.shape[-1] != basis.shape[-1] or basis.ndim != 2:
        raise ValueError(
            f"ebv_logits: features {features.shape} and basis {basis.shape} must end "
            "in one feature dimension (basis: (K, d))"
        )
    eps = jnp.finfo(features.dtype).eps  # a finite gradient at zero features
    f = _normalize(features, eps)
    b = _normalize(basis.astype(features.dtype), eps)
    return f @ b.T / jnp.asarray(temperature, features.dtype)


def check_labels(labels, num_classes: int, where: str) -> None:
    """``labels`` must be integers; concrete ones must lie in ``0..K-1``."""
    if not jnp.issubdtype(jnp.asarray(labels).dtype, jnp.integer):
        raise TypeError(f"{where}: labels must be integers, got {labels.dtype}")
    if isinstance(labels, Tracer):
        return
    a = np.asarray(labels)
    if a.size and (a.min() < 0 or a.max() >= num_classes):
        bad = a[(a < 0) | (a >= num_classes)]
        raise ValueError(
            f"{where}: labels must lie in 0..{num_classes - 1}; got {bad[:5].tolist()}"
        )


def ebv_loss(
    features: Float[Array, "n d"],
    labels: Int[Array, " n"],
    basis: Float[Array, "K d"],
    temperature: float = 0.07,
) -> Float[Array, ""]:
    """Mean cross-entropy of :func:`ebv_logits` (the EBV training loss).

    Raises:
      ValueError: concrete labels outside ``0..K-1`` (traced labels are not
        checked).

    Example:
      >>> import jax.numpy as jnp
      >>> float(ebv_loss(jnp.eye(2), jnp.array([0, 1]), jnp.eye(2), 1.0)) < 0.32
      True
    """
    k = basis.shape[0]
    check_labels(labels, k, "ebv_loss")
    logits = ebv_logits(features, basis, temperature)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


def _embedding(key, k, dim, dtype):
    if key is None:
        return jnp.eye(dim, k, dtype=dtype)
    q, _ = jnp.linalg.qr(jax.random.normal(key, (dim, k), dtype))
    return q


def simplex_etf(
    num_classes: int, dim: int, *, key: jax.Array | None = None, dtype: Any = None
) -> Float[Array, "K d"]:
    """The simplex equiangular tight frame: ``K`` unit rows with pairwise
    ``cos = -1/(K-1)`` (needs ``dim >= K``), the geometry of neural collapse for
    balanced data with a bias (Papyan et al. 2020; Dang et al., ICML 2023).
    ``key`` rotates it by a random orthonormal embedding (else the canonical one).

    Example:
      >>> import jax.numpy as jnp
      >>> M = simplex_etf(4, 5)
      >>> bool(jnp.allclose(M @ M.T, (4 * jnp.eye(4) - 1) / 3, atol=1e-6))
      True
    """
    k, d = int(num_classes), int(dim)
    if k < 2 or d < k:
        raise ValueError(f"simplex_etf: need 2 <= num_classes <= dim, got {k}, {d}")
    dtype = dtype or jnp.zeros(()).dtype
    u = _embedding(key, k, d, dtype)  # (d, K) orthonormal columns
    centred = jnp.eye(k, dtype=dtype) - jnp.full((k, k), 1.0 / k, dtype)
    return jnp.sqrt(jnp.asarray(k / (k - 1), dtype)) * (u @ centred).T


def orthogonal_frame(
    num_classes: int, dim: int, *, key: jax.Array | None = None, dtype: Any = None
) -> Float[Array, "K d"]:
    """``K`` orthonormal rows (``dim >= K``): the fixed orthonormal head, and the
    geometry of neural collapse without a bias (Dang et al., ICML 2023).

    Example:
      >>> import jax.numpy as jnp
      >>> F = orthogonal_frame(3, 5)
      >>> bool(jnp.allclose(F @ F.T, jnp.eye(3)))
      True
    """
    k, d = int(num_classes), int(dim)
    if k < 1 or d < k:
        raise ValueError(
            f"orthogonal_frame: need 1 <= num_classes <= dim, got {k}, {d}"
        )
    dtype = dtype or jnp.zeros(()).dtype
    return _embedding(key, k, d, dtype).T
