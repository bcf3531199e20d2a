"""The action of O(3) on e3nn-jax ``IrrepsArray``s through Wigner-D matrices."""

from __future__ import annotations

import e3nn_jax as e3nn
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import check_orthogonal_values, check_square


def act_irreps(R: Float[Array, "*batch 3 3"], x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
    """Act with ``R ∈ O(3)`` on an ``IrrepsArray``: each ``(l, p)`` block is multiplied
    by ``p^k D^l(R')``, where ``R = (-1)^k R'`` with ``R' ∈ SO(3)``.

    Conventions are e3nn-jax's (basis, ordering, normalisation and parity), so the
    result agrees with ``x.transform_by_matrix(R)``; this version applies one
    ``(2l+1)²`` Wigner block per distinct irrep instead of a full ``dim × dim``
    matrix.

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
    k = (1 - det) / 2
    alpha, beta, gamma = e3nn.matrix_to_angles(R * det[..., None, None])
    batch = jnp.broadcast_shapes(R.shape[:-2], x.shape[:-1])
    cache: dict = {}
    chunks = []
    for (mul, ir), chunk in zip(x.irreps, x.chunks, strict=True):
        if chunk is None:
            chunks.append(None)
            continue
        if ir not in cache:
            cache[ir] = ir.D_from_angles(alpha, beta, gamma, k).astype(x.dtype)
        chunks.append(jnp.einsum("...ij,...uj->...ui", cache[ir], chunk))
        del mul
    return e3nn.from_chunks(x.irreps, chunks, batch, x.dtype)
