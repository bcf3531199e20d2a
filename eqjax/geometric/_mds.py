"""Transformation-invariant initial point representations by classical MDS.

Zhang et al., "TinvNN: transformation-invariant neural networks" (arXiv
2112.12345): replace the raw coordinates of a cloud by a distance-preserving
embedding computed from its pairwise distances only (modified multi-dimensional
scaling), and feed that to any backbone. The representation is invariant to E(d)
(and, with ``scale_invariant=True``, to scaling) because pairwise distances are,
once the eigenvector signs are fixed by a rule that itself depends on distances
only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

_SIGN_TOL = 1e-6


def mds_representation(
    x: Float[Array, "n D"],
    k: int,
    *,
    scale_invariant: bool = False,
    return_eigenvalues: bool = False,
) -> Float[Array, "n k"] | tuple[Float[Array, "n k"], Float[Array, " k"]]:
    """Classical MDS of a point cloud: ``z = V_k Λ_k^{1/2}`` from the top ``k``
    eigenpairs of the double-centred squared-distance matrix
    ``B = -½ J D² J = X_c X_cᵀ`` (computed as the Gram matrix of the centred
    points, which is the same matrix with less rounding).

    **Sign rule.** Column ``c`` is multiplied by ``sign(Σ_i z_ic³)`` (positive
    third moment); when that moment is below ``1e-6 · Σ_i |z_ic|³`` (a column
    symmetric about 0, where no rule built on distances can choose), the sign makes
    the entry of largest magnitude positive (the lowest index on ties).

    **Repeated eigenvalues.** When ``λ_c`` is repeated (a regular tetrahedron, a
    cube, a sphere-like cloud), the eigenvectors of that eigenspace are only
    defined up to an orthogonal mixing, and ``eigh`` returns *some* basis: ``z``
    then still preserves all pairwise distances (when ``k`` covers the whole
    eigenspace) and ``z zᵀ`` is still invariant, but ``z`` itself is invariant
    only up to an orthogonal transform of those columns (and gradients through
    ``eigh`` are not defined there). ``return_eigenvalues=True`` returns the
    spectrum so that callers can detect near-ties. Eigenvalues beyond the rank of
    the cloud are 0 and give zero columns (no ambiguity).

    Args:
      x: ``[n, D]`` points.
      k: output dimension (static, ``1 <= k <= n``).
      scale_invariant: first divide the centred cloud by its RMS radius
        ``sqrt(mean_i ‖x_i - x̄‖²)``: invariant to ``x ↦ s x``, ``s > 0``.
      return_eigenvalues: also return the ``k`` eigenvalues used (descending).

    Returns:
      ``z [n, k]`` (and ``λ [k]``), with ``‖z_i - z_j‖ = ‖x_i - x_j‖`` when
      ``k >= rank`` (times ``1/RMS`` with ``scale_invariant``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jax.random.normal(jax.random.key(0), (6, 3))
      >>> z = mds_representation(x, 3)
      >>> d = lambda p: jnp.linalg.norm(p[:, None] - p[None], axis=-1)
      >>> bool(jnp.allclose(d(z), d(x), atol=1e-4))
      True
    """
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"x must have shape [n, D], got {getattr(x, 'shape', None)}")
    n = x.shape[0]
    if not 1 <= int(k) <= n:
        raise ValueError(f"k must satisfy 1 <= k <= n={n}, got {k!r}")
    k = int(k)
    # centred relative to the first point, so identical points give exactly 0
    dx = x - x[:1]
    xc = dx - jnp.mean(dx, axis=0, keepdims=True)
    # unit scale for the eigen-decomposition and the sign rule (z is 1-homogeneous
    # in xc: z(xc) = s·z(xc/s) with s held fixed, gradients included), so float32
    # works from 1e-30 to 1e30 (z³ and B = xc xcᵀ would under/overflow)
    s = jax.lax.stop_gradient(jnp.max(jnp.abs(xc)))
    s = jnp.where(s > 0, s, 1).astype(xc.dtype)
    u = xc / s
    if scale_invariant:
        ms = jnp.mean(jnp.sum(u * u, -1))
        u = u / jnp.sqrt(jnp.where(ms > 0, ms, 1.0))
        s = jnp.ones((), xc.dtype)
    b = u @ u.T
    b = 0.5 * (b + b.T)
    if jnp.finfo(b.dtype).bits < 32:  # XLA has no half-precision eigh
        lam, vec = jnp.linalg.eigh(b.astype(jnp.float32))
        lam, vec = lam.astype(b.dtype), vec.astype(b.dtype)
    else:
        lam, vec = jnp.linalg.eigh(b)
    lam = lam[::-1][:k]
    vec = vec[:, ::-1][:, :k]
    lam = jnp.maximum(lam, 0.0)
    root = jnp.sqrt(jnp.where(lam > 0, lam, 1.0)) * (lam > 0)
    z = vec * root[None, :]
    m3 = jnp.sum(z**3, axis=0)
    scale = jnp.sum(jnp.abs(z) ** 3, axis=0)
    top = jnp.take_along_axis(z, jnp.argmax(jnp.abs(z), axis=0)[None], axis=0)[0]
    sign = jnp.where(
        jnp.abs(m3) > _SIGN_TOL * scale, jnp.sign(m3), jnp.where(top < 0, -1.0, 1.0)
    ).astype(z.dtype)
    z = z * sign[None, :] * s
    if return_eigenvalues:
        return z, lam * s * s
    return z
