"""The action of O(3) on e3nn-jax ``IrrepsArray``s through Wigner-D matrices."""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._base import check_orthogonal_values, check_square


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` near-uniform points on the unit sphere (the golden-angle spiral: equal
    areas in ``z``), a host-side NumPy ``(n, 3)`` float64 array.

    Used for the fixed points of :func:`wigner_D` and, in :mod:`eqjax.geometric`,
    for PONITA's Fibonacci orientation grid.

    Example:
      >>> import numpy as np
      >>> p = fibonacci_sphere(10)
      >>> p.shape, bool(np.allclose(np.linalg.norm(p, axis=-1), 1.0))
      ((10, 3), True)
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"fibonacci_sphere: n must be a positive int, got {n!r}")
    i = np.arange(int(n), dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(np.maximum(1.0 - z * z, 0.0))
    phi = np.pi * (1.0 + np.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], -1)


@functools.cache
def _sh_table(l: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P, Y⁺)``: ``3(2l+1)`` Fibonacci points on the sphere (rows of ``P``) and
    the pseudo-inverse of their degree-``l`` harmonics ``Y = Y_l(P)`` (``n × (2l+1)``),
    computed once per ``l`` in float64 on the host. ``Y`` has full column rank
    with a condition number below 4 for every ``l`` up to 20 (measured with
    ``np.linalg.cond``), so ``Y⁺`` loses no more than two bits."""
    P = fibonacci_sphere(3 * (2 * l + 1))
    with (
        jax.ensure_compile_time_eval(),
        jax.enable_x64(True),
        jax.numpy_rank_promotion("allow"),
    ):
        ir = e3nn.Irrep(l, (-1) ** l)
        Y = np.asarray(
            e3nn.spherical_harmonics(e3nn.Irreps([ir]), jnp.asarray(P), False).array,
            dtype=np.float64,
        )
    return P, np.linalg.pinv(Y)


def wigner_D(l: int, R: Float[Array, "*batch 3 3"]) -> Float[Array, "*batch d d"]:
    """The real Wigner-D matrix ``D^l(R)`` of a rotation ``R ∈ SO(3)`` in e3nn-jax's
    basis, ``d = 2l + 1``: equal to ``e3nn.Irrep(l, p).D_from_matrix(R)``.

    Spherical harmonics transform by it, ``Y_l(R p) = D^l(R) Y_l(p)``; evaluating
    them at ``3(2l+1)`` fixed points ``P`` on the sphere and solving once (a
    constant pseudo-inverse ``Y_l(P)⁺``) gives ``D^l(R) = (Y_l(P)⁺ Y_l(R P))ᵀ``: a
    polynomial in the entries of ``R`` — no Euler angles, so it is smooth
    everywhere (finite gradients at the identity and at gimbal lock) and compiles
    to a few small matrix products.

    Args:
      l: the degree, a non-negative Python int.
      R: ``(*batch, 3, 3)`` rotation matrices (proper; see :func:`act_irreps` for
        reflections).

    Returns:
      ``(*batch, 2l+1, 2l+1)`` in the dtype of ``R``.

    Example:
      >>> import jax.numpy as jnp
      >>> R = jnp.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
      >>> bool(jnp.allclose(wigner_D(1, R), R, atol=1e-6))  # "1o" is the vector
      True
    """
    if isinstance(l, bool) or not isinstance(l, int | np.integer) or l < 0:
        raise ValueError(f"wigner_D: l must be a non-negative int, got {l!r}")
    check_square(R, 3, "wigner_D (R)")
    if not jnp.issubdtype(R.dtype, jnp.floating):
        raise TypeError(f"wigner_D: R must be floating, got dtype {R.dtype}")
    l = int(l)
    P, pinv = _sh_table(l)
    ir = e3nn.Irrep(l, (-1) ** l)
    RP = jnp.einsum("...ij,nj->...ni", R, jnp.asarray(P, R.dtype))
    with jax.numpy_rank_promotion(
        "allow"
    ):  # e3nn's recursion broadcasts by rank at l ≥ 9
        Y = e3nn.spherical_harmonics(e3nn.Irreps([ir]), RP, False).array  # (..., n, d)
    return jnp.swapaxes(
        jnp.einsum("kn,...nm->...km", jnp.asarray(pinv, R.dtype), Y), -1, -2
    )


def act_irreps(R: Float[Array, "*batch 3 3"], x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
    """Act with ``R ∈ O(3)`` on an ``IrrepsArray``: each ``(l, p)`` block is multiplied
    by ``p^k D^l(R')``, where ``R = (-1)^k R'`` with ``R' ∈ SO(3)``.

    Conventions are e3nn-jax's (basis, ordering, normalisation and parity), so the
    result agrees with ``x.transform_by_matrix(R)``; this version applies one
    ``(2l+1)²`` Wigner block per distinct irrep (:func:`wigner_D`, polynomial in
    ``R``) instead of a full ``dim × dim`` matrix built from Euler angles.

    Args:
      R: ``(*batch, 3, 3)`` orthogonal matrices (reflections allowed).
      x: ``IrrepsArray`` of shape ``(*batch, irreps.dim)``; batch axes broadcast.

    Returns:
      ``IrrepsArray`` with the same irreps and the broadcast batch shape.

    Example:
      >>> import jax, jax.numpy as jnp, e3nn_jax as e3nn
      >>> x = e3nn.IrrepsArray("1o", jnp.array([1.0, 2.0, 3.0]))
      >>> R = -jnp.eye(3)
      >>> act_irreps(R, x).array
      Array([-1., -2., -3.], dtype=float32)
    """
    if not isinstance(x, e3nn.IrrepsArray):
        raise TypeError(
            f"act_irreps expects an e3nn_jax.IrrepsArray, got {type(x).__name__}"
        )
    check_square(R, 3, "act_irreps (R)")
    check_orthogonal_values(R, "act_irreps (R)", special=False)
    if R.dtype != x.dtype:
        raise TypeError(f"act_irreps: R has dtype {R.dtype} but x has dtype {x.dtype}")
    det = jnp.sign(jnp.linalg.det(R))
    proper = R * det[..., None, None]
    batch = jnp.broadcast_shapes(R.shape[:-2], x.shape[:-1])
    cache: dict = {}
    chunks = []
    for (_, ir), chunk in zip(x.irreps, x.chunks, strict=True):
        if chunk is None:
            chunks.append(None)
            continue
        if ir not in cache:
            D = wigner_D(ir.l, proper)
            if ir.p == -1:  # p^k with k = (1 - det) / 2: the sign of det
                D = D * det[..., None, None]
            cache[ir] = D.astype(x.dtype)
        chunks.append(jnp.einsum("...ij,...uj->...ui", cache[ir], chunk))
    return e3nn.from_chunks(x.irreps, chunks, batch, x.dtype)
