"""Weighted chordal means on SO(3) (the per-part rotation of ArtEq).

Feng, Kulits, Liu, Black, Abrevaya, "Generalizing Neural Human Fitting to Unseen
Poses With Articulated SE(3) Equivariance", ICCV 2023 (oral): each part's rotation
is the weighted chordal L2 mean of anchor rotations, i.e. the rotation nearest (in
Frobenius norm) to ``Σ_a w_a R_a``: with ``M = U S Vᵀ``,
``R = U diag(1, 1, det(U Vᵀ)) Vᵀ`` (Hartley et al., "Rotation Averaging", IJCV
2013).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def _work_dtype(dtype):
    """float16/bfloat16 are decomposed in float32 (no half-precision SVD)."""
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else jnp.dtype(dtype)


def _signed_svd(M):
    """``U', s', Vᵀ`` in the work dtype, of ``M / max|M|`` (the projection is
    scale-invariant: finite from the dtype's tiny to its max), ``s'`` scaled back."""
    A = M.astype(_work_dtype(M.dtype))
    scale = jnp.max(jnp.abs(A), axis=(-2, -1))
    scale = jnp.where(scale > 0, scale, 1)
    U, s, Vt = jnp.linalg.svd(A / scale[..., None, None])
    det = jnp.sign(jnp.linalg.det(U @ Vt))
    det = jnp.where(det == 0, 1, det).astype(A.dtype)
    d = jnp.concatenate([jnp.ones(A.shape[:-2] + (2,), A.dtype), det[..., None]], -1)
    # U' = U D, s' = s D: M = U' s' Vᵀ
    return U * d[..., None, :], s * d * scale[..., None], Vt


@jax.custom_jvp
def project_to_so3(M: Float[Array, "*batch 3 3"]) -> Float[Array, "*batch 3 3"]:
    """The rotation nearest to ``M`` in Frobenius norm: ``U diag(1, 1, det(U Vᵀ))
    Vᵀ`` for ``M = U S Vᵀ`` (the SVD projection with the determinant fix).

    Its derivative is that of the (signed) polar factor, ``dR = U' K Vᵀ`` with
    ``K_ij = (C_ij - C_ji) / (s'_i + s'_j)``, ``C = U'ᵀ dM V`` and the signed
    singular values ``s' = s · (1, 1, det)``: finite at repeated singular values
    (equal inputs, ``M = R``), where the SVD's own derivative is not; zero where
    ``s'_i + s'_j = 0`` (``det M < 0`` with ``s_2 = s_3``: the nearest rotation is
    not unique there).

    Example:
      >>> import jax.numpy as jnp
      >>> project_to_so3(2.0 * jnp.eye(3))
      Array([[1., 0., 0.],
             [0., 1., 0.],
             [0., 0., 1.]], dtype=float32)
    """
    U, _, Vt = _signed_svd(M)
    return (U @ Vt).astype(M.dtype)


@project_to_so3.defjvp
def _project_jvp(primals, tangents):
    (M,), (dM,) = primals, tangents
    U, s, Vt = _signed_svd(M)
    R = U @ Vt
    C = jnp.swapaxes(U, -1, -2) @ dM.astype(U.dtype) @ jnp.swapaxes(Vt, -1, -2)
    den = s[..., :, None] + s[..., None, :]
    tiny = jnp.finfo(U.dtype).tiny ** 0.5
    safe = (
        jnp.abs(den)
        > tiny * jnp.maximum(jnp.max(jnp.abs(s), -1), tiny)[..., None, None]
    )
    K = jnp.where(safe, (C - jnp.swapaxes(C, -1, -2)) / jnp.where(safe, den, 1), 0)
    return R.astype(M.dtype), (U @ K @ Vt).astype(M.dtype)


def _concrete(x):
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def chordal_mean(
    rotations: Float[Array, "*batch A 3 3"], weights: Float[Array, "*batch A"]
) -> Float[Array, "*batch 3 3"]:
    """Weighted chordal L2 mean of rotations (ArtEq, Feng et al., ICCV 2023).

    ``argmin_{R ∈ SO(3)} Σ_a w_a ‖R - R_a‖_F² = project_to_so3(Σ_a w_a R_a)``
    (:func:`project_to_so3`: SVD with the determinant fix). Properties: the
    result is a rotation (orthogonal to rounding, ``det = +1``); left- and
    right-equivariant (``mean(Q R_a) = Q mean(R_a)``, ``mean(R_a Q) = mean(R_a)
    Q`` for ``Q ∈ SO(3)``); idempotent (equal inputs give that input);
    differentiable with finite gradients at equal inputs. Invariant to positive
    scales of ``rotations`` and ``weights`` (summed at unit scale: finite over the
    dtype's range); float16/bfloat16 are decomposed in float32. Limit: weights or
    rotations that are all zero (invalid: eagerly the weights check refuses them)
    have no nearest rotation; under jit the result is then an arbitrary rotation.

    Args:
      rotations: ``(*batch, A, 3, 3)`` rotation matrices (anchors).
      weights: ``(*batch, A)`` non-negative weights summing to one over ``A``
        (checked when concrete; a softmax output, for instance).

    Returns:
      ``(*batch, 3, 3)``.

    Raises:
      ValueError: wrong shapes; eagerly, negative or non-finite weights, or
        weights that do not sum to one.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> R = eq.groups.SO3.sample(jax.random.key(0), (4,))
      >>> M = chordal_mean(R, jnp.full(4, 0.25))
      >>> bool(jnp.allclose(M @ M.T, jnp.eye(3), atol=1e-5)), M.shape
      (True, (3, 3))
    """
    shape = getattr(rotations, "shape", None)
    if shape is None or len(shape) < 3 or tuple(shape[-2:]) != (3, 3):
        raise ValueError(
            f"chordal_mean: rotations must have shape (..., A, 3, 3), got {shape}"
        )
    wshape = getattr(weights, "shape", None)
    if wshape is None or tuple(wshape) != tuple(shape[:-2]):
        raise ValueError(
            f"chordal_mean: weights of shape {wshape} do not match rotations of "
            f"shape {shape} (expected {tuple(shape[:-2])})"
        )
    for name, x in (("rotations", rotations), ("weights", weights)):
        if not jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating):
            raise TypeError(f"chordal_mean: {name} must be floating")
    if shape[-3] == 0:
        raise ValueError("chordal_mean: needs at least one rotation (A = 0)")
    w = _concrete(weights)
    if w is not None:
        w = w.astype(np.float64)
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"chordal_mean: weights must be finite and >= 0, got {w}")
        total = w.sum(-1)
        tol = 1e3 * float(jnp.finfo(jnp.asarray(weights).dtype).eps) * shape[-3] ** 0.5
        if np.any(np.abs(total - 1) > tol):
            raise ValueError(
                f"chordal_mean: weights must sum to one over the anchors, got sums "
                f"{total} (normalise them: w / w.sum(-1, keepdims=True))"
            )
    R = jnp.asarray(rotations)
    w = jnp.asarray(weights).astype(R.dtype)
    # the mean is invariant to positive scales of R and w: sum at unit scale (no
    # overflow of R·w in float32 at 1e30); the scales carry no gradient (exact:
    # the projection's derivative is zero along M)
    r = jax.lax.stop_gradient(jnp.max(jnp.abs(R), axis=(-3, -2, -1)))
    v = jax.lax.stop_gradient(jnp.max(jnp.abs(w), axis=-1))
    R = R / jnp.where(r > 0, r, 1)[..., None, None, None]
    w = w / jnp.where(v > 0, v, 1)[..., None]
    return project_to_so3(jnp.einsum("...a,...aij->...ij", w, R))
