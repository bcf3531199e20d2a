"""A small ArtEq-style model: SO(3)-equivariant point features on the octahedral
rotation group, soft part pooling, kinematic conditioning, per-part rotations as
weighted chordal means of anchor rotations.

Feng, Kulits, Liu, Black, Abrevaya, "Generalizing Neural Human Fitting to Unseen
Poses With Articulated SE(3) Equivariance", ICCV 2023 (oral). ArtEq uses EPN
features on the icosahedral group; here the discrete group is the 24 rotations of
the cube (:func:`eqjax.geometric.octahedral_rotations`), and the point features
are a group lifting ``F[n, r] = φ(r⁻¹ (x - x̄))[n]`` of a PointNet ``φ``: a
rotation ``q`` of the group permutes the group axis (``F'[n, r] = F[n, q⁻¹ r]``),
so invariant heads (a mean over ``r``) segment the parts and anchor weights over
``r`` give equivariant rotations through :func:`chordal_mean`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..geometric import octahedral_rotations
from ._chordal import chordal_mean
from ._dense import dense, dense_init


def check_tree(parents: Any, where: str = "check_tree") -> tuple[int, ...]:
    """A kinematic tree as a tuple of parent indices: exactly one root (``-1``),
    every other entry an index in range, and no cycle (every part reaches the
    root). Raises ``ValueError`` naming the offending part otherwise.

    Example:
      >>> check_tree([-1, 0, 1, 0])
      (-1, 0, 1, 0)
    """
    try:
        arr = np.asarray(parents)
    except Exception:
        raise TypeError(f"{where}: parents must be a sequence of ints") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{where}: parents must be a non-empty 1-d sequence, got {parents!r}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{where}: parents must be ints, got dtype {arr.dtype}")
    p = tuple(int(v) for v in arr)
    k = len(p)
    roots = [i for i, v in enumerate(p) if v == -1]
    if len(roots) != 1:
        raise ValueError(
            f"{where}: parents {list(p)} is not a tree: it needs exactly one root "
            f"(-1), found {len(roots)}"
        )
    bad = [i for i, v in enumerate(p) if v != -1 and not 0 <= v < k]
    if bad or any(p[i] == i for i in range(k)):
        raise ValueError(f"{where}: parents {list(p)} has out-of-range or self parents")
    for i in range(k):
        seen, j = set(), i
        while j != -1:
            if j in seen:
                raise ValueError(
                    f"{where}: parents {list(p)} is not a tree: part {i} is on a cycle"
                )
            seen.add(j)
            j = p[j]
    return p


def arteq_init(
    key: Array, num_parts: int, *, hidden: int = 32, dtype: Any = jnp.float32
) -> dict:
    """Parameters of :func:`arteq` for ``num_parts`` parts.

    Example:
      >>> import jax
      >>> sorted(arteq_init(jax.random.key(0), 4))
      ['anchor', 'cond', 'mix', 'point', 'segment']
    """
    for name, v in (("num_parts", num_parts), ("hidden", hidden)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"arteq_init: {name} must be an int >= 1, got {v!r}")
    k = jax.random.split(key, 5)
    h = hidden
    return {
        "point": dense_init(k[0], 3, h, dtype),
        "mix": dense_init(k[1], 2 * h, h, dtype),
        "segment": dense_init(k[2], h, num_parts, dtype),
        "cond": dense_init(k[3], 2 * h, h, dtype),
        "anchor": dense_init(k[4], h, 1, dtype),
    }


def arteq(params: dict, x: Float[Array, "N 3"], parents: Any) -> tuple[Array, Array]:
    """ArtEq-style fitting (Feng et al., ICCV 2023): per-point part logits and
    per-part rotations.

    1. lifted features ``F[n, r] = φ(r⁻¹ (x - x̄))[n]`` over the 24 octahedral
       rotations ``r`` (a PointNet ``φ`` with mean pooling);
    2. part logits ``mean_r segment(F[n, r])`` (invariant), soft parts ``z =
       softmax``;
    3. soft part pooling ``P[k, r] = Σ_n z_nk F[n, r] / Σ_n z_nk``;
    4. kinematic conditioning on the parent part (``parents``, a tree checked by
       :func:`check_tree`): ``P'[k, r] = silu(cond([P[k, r], P[parent(k), r]]))``
       (the root conditions on itself);
    5. anchor weights ``a[k] = softmax_r anchor(P'[k, r])`` and rotations
       ``R_k = chordal_mean(r, a[k])`` (:func:`chordal_mean`).

    Symmetry: exact under the octahedral rotations ``q`` (and any translation):
    logits unchanged, ``R_k → q R_k``; for other rotations it is approximate
    (the discretisation of SO(3) by 24 anchors). Limits: the 24 anchors sum to
    zero, so when the lifted features barely vary over ``r`` (nearly uniform
    anchor weights) the chordal mean is ill-conditioned: on the registry's input
    (unit-scale box parts, float32) the equivariance error is 4e-6 at scale 1 and
    1.4 at scale 1e-4 (measured with :func:`eqjax.testing.equivariance_error`):
    normalise the cloud's scale before the model. A cloud every rotation fixes
    (all points equal) admits no equivariant rotation output at all (``R = q R``
    for every ``q``).

    Args:
      params: from :func:`arteq_init`.
      x: ``(N, 3)`` points.
      parents: the kinematic tree, ``K`` parent indices (``-1`` for the root).

    Returns:
      ``(part_logits (N, K), rotations (K, 3, 3))``.

    Example:
      >>> import jax
      >>> p = arteq_init(jax.random.key(0), 3)
      >>> x = jax.random.normal(jax.random.key(1), (10, 3))
      >>> logits, R = arteq(p, x, [-1, 0, 1])
      >>> logits.shape, R.shape
      ((10, 3), (3, 3, 3))
    """
    p = check_tree(parents, "arteq")
    k = params["segment"]["w"].shape[1]
    if len(p) != k:
        raise ValueError(f"arteq: {len(p)} parents for a model of {k} parts")
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2 or shape[-1] != 3 or shape[0] < 1:
        raise ValueError(f"arteq: x must have shape (N, 3), N >= 1, got {shape}")
    if not jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating):
        raise TypeError(f"arteq: x must be floating, got dtype {x.dtype}")
    G = octahedral_rotations(dtype=x.dtype)  # (24, 3, 3)
    centred = x - jnp.mean(x, 0, keepdims=True)
    canon = jnp.einsum("rji,nj->rni", G, centred)  # r⁻¹ (x - x̄) = rᵀ (x - x̄)
    h = jax.nn.silu(dense(params["point"], canon))  # (24, N, H)
    pooled = jnp.broadcast_to(jnp.mean(h, 1, keepdims=True), h.shape)
    F = jax.nn.silu(dense(params["mix"], jnp.concatenate([h, pooled], -1)))
    logits = jnp.mean(dense(params["segment"], F), 0)  # (N, K)
    z = jax.nn.softmax(logits, -1)
    P = jnp.einsum("nk,rnh->krh", z, F) / jnp.sum(z, 0)[:, None, None]
    par = jnp.asarray([i if q < 0 else q for i, q in enumerate(p)])
    Pc = jax.nn.silu(dense(params["cond"], jnp.concatenate([P, P[par]], -1)))
    a = jax.nn.softmax(dense(params["anchor"], Pc)[..., 0], -1)  # (K, 24)
    R = chordal_mean(jnp.broadcast_to(G, (k, *G.shape)), a)
    return logits, R
