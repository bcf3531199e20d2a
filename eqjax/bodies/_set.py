"""The subequivariant transformer (SET) of Chen, Han, Sun, Huang, "Subequivariant
Graph Reinforcement Learning in 3D Environments", ICML 2023.

A transformer over the parts of a body with two streams per part: vectors
``Z_i (V, 3)`` (rotate with the world) and scalars ``h_i (C,)`` (invariant). The
direction vectors ``D (M, 3)`` — gravity, and a target direction — join each
part's vectors, ``Ẑ_i = [Z_i; D]``; their Gram matrix ``Ẑ_i Ẑ_iᵀ``, normalised
by its Frobenius norm + 1, gives O(3)-invariant features; attention weights
computed from invariants mix both streams; vectors are updated by multiplying
``Ẑ_j`` with invariant matrices (``Ẑ_jᵀ W_j`` in the paper's column layout).
So the model is O(3)-equivariant when every vector (the directions included)
is transformed, and, with gravity held fixed, exactly equivariant (vectors) and
invariant (scalars) under O_g(3) — the rotations about, and reflections through
planes containing, the gravity axis (:func:`eqjax.groups.axis_subgroup`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float


def _concrete(x) -> np.ndarray | None:
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def check_directions(directions: Any, where: str) -> Array:
    """``directions`` as a floating ``(..., M, 3)`` array (a single ``(3,)`` vector
    becomes ``(1, 3)``); when concrete, every direction must be finite and
    non-zero (a zero gravity vector defines no axis)."""
    shape = getattr(directions, "shape", None)
    if shape is None:
        raise TypeError(
            f"{where}: gravity/directions must be an array, got "
            f"{type(directions).__name__}"
        )
    d = jnp.asarray(directions)
    if not jnp.issubdtype(d.dtype, jnp.floating):
        raise TypeError(f"{where}: gravity must be floating, got dtype {d.dtype}")
    if d.ndim == 1:
        d = d[None]
    if d.shape[-1] != 3:
        raise ValueError(
            f"{where}: gravity must have shape (3,) or (..., M, 3), got {shape}"
        )
    a = _concrete(d)
    if a is not None and a.size:
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"{where}: gravity/directions contain NaN or inf: {a}")
        n = np.linalg.norm(a, axis=-1)
        if (n == 0).any():
            raise ValueError(
                f"{where}: a zero gravity/direction vector (norms {n}) defines no "
                "axis; pass the gravity vector, e.g. (0, 0, -9.81)"
            )
    return d


def gram_invariants(
    vectors: Float[Array, "*batch V 3"], directions: Float[Array, "*batch M 3"]
) -> Float[Array, "*batch P"]:
    """SET's invariants of one part: the upper triangle (``P = (V+M)(V+M+1)/2``
    entries) of the Gram matrix ``G = Ẑ Ẑᵀ`` of ``Ẑ = [vectors; directions]``,
    divided by ``‖G‖_F + 1`` (Chen et al., ICML 2023, Sec. 4.2).

    Invariant under O(3) acting on both arguments; with ``directions`` fixed,
    invariant under its stabiliser O_g(3). The normalisation keeps the features
    bounded (``|entry| < 1``) at any input scale; it is computed on ``Ẑ``
    rescaled by its largest entry, so float32 stays finite far beyond ``1e±6``.

    Example:
      >>> import jax.numpy as jnp
      >>> gram_invariants(jnp.ones((2, 3)), jnp.array([[0.0, 0.0, -1.0]])).shape
      (6,)
    """
    z = jnp.concatenate(
        [
            vectors,
            jnp.broadcast_to(directions, (*vectors.shape[:-2], *directions.shape[-2:])),
        ],
        axis=-2,
    )
    s = jax.lax.stop_gradient(jnp.max(jnp.abs(z), axis=(-2, -1), keepdims=True))
    s = jnp.where(s > 0, s, 1)
    zh = z / s
    G = jnp.einsum("...ai,...bi->...ab", zh, zh)
    sq = jnp.sum(G * G, axis=(-2, -1), keepdims=True)
    ok = sq > 0
    norm = jnp.where(ok, jnp.sqrt(jnp.where(ok, sq, 1)), 0)
    # G / (‖G‖ + 1) with G = s² Ĝ: Ĝ / (‖Ĝ‖ + 1/s²), the same for any s
    Gn = G / (norm + 1 / (s * s))
    n = z.shape[-2]
    iu, ju = np.triu_indices(n)
    return Gn[..., iu, ju]


class _Weight:
    """A weight to draw: ``N(0, scale² / fan_in)`` of shape ``(fan_in, fan_out)``
    (a pytree leaf until :func:`_draw` replaces it)."""

    def __init__(self, fan_in, fan_out, scale=1.0):
        self.shape, self.scale = (fan_in, fan_out), scale / math.sqrt(max(fan_in, 1))


def _dense_init(fan_in, fan_out, scale=1.0):
    return {"w": _Weight(fan_in, fan_out, scale), "b": ("zeros", fan_out)}


def _mlp_init(sizes, last_scale=1.0):
    n = len(sizes) - 1
    return [
        _dense_init(a, b, last_scale if i == n - 1 else 1.0)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    ]


def _draw(key, spec, dtype):
    """Every weight of ``spec`` from one ``jax.random.normal`` call (one RNG op
    to compile, whatever the depth), biases zero."""
    is_leaf = lambda v: (
        isinstance(v, _Weight)
        or (  # noqa: E731
            isinstance(v, tuple) and len(v) == 2 and v[0] == "zeros"
        )
    )
    leaves, treedef = jax.tree_util.tree_flatten(spec, is_leaf=is_leaf)
    sizes = [math.prod(w.shape) for w in leaves if isinstance(w, _Weight)]
    flat = jax.random.normal(key, (sum(sizes),), dtype)
    out, offset = [], 0
    for leaf in leaves:
        if isinstance(leaf, _Weight):
            size = math.prod(leaf.shape)
            w = flat[offset : offset + size].reshape(leaf.shape) * leaf.scale
            out.append(w.astype(dtype))
            offset += size
        else:
            out.append(jnp.zeros((leaf[1],), dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


def _dense(p, x):
    y = x @ p["w"].astype(x.dtype)
    return y + p["b"].astype(x.dtype).reshape((1,) * (y.ndim - 1) + (-1,))


def _mlp(ps, x):
    for i, p in enumerate(ps):
        x = _dense(p, x)
        if i < len(ps) - 1:
            x = jax.nn.silu(x)
    return x


def _layer_norm(x):
    mu = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, -1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-6)


def _check_int(v, what, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"set_init: {what} must be an int >= {minimum}, got {v!r}")
    return int(v)


def set_init(
    key: Array,
    *,
    vector_in: int,
    scalar_in: int,
    vector_out: int,
    scalar_out: int,
    num_directions: int = 1,
    hidden_vectors: int = 8,
    hidden_scalars: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    dtype: Any = jnp.float32,
) -> dict:
    """Parameters of :func:`set_model`.

    Args:
      key: PRNG key.
      vector_in, scalar_in: input vector channels ``V`` (>= 1) and scalar
        channels ``C`` (>= 0) per part.
      vector_out, scalar_out: output channels (>= 0 each, not both 0).
      num_directions: ``M``, the direction vectors (gravity, targets) passed.
      hidden_vectors, hidden_scalars: widths of the two streams.
      num_layers: SET layers (>= 1).
      num_heads: attention heads (divides ``hidden_scalars``).
      dtype: parameter dtype.

    Returns:
      a pytree of arrays (every size is read back from the shapes).

    Example:
      >>> import jax
      >>> p = set_init(jax.random.key(0), vector_in=2, scalar_in=3, vector_out=1,
      ...              scalar_out=1)
      >>> sorted(p)
      ['embed', 'layers', 'readout']
    """
    v_in = _check_int(vector_in, "vector_in")
    c_in = _check_int(scalar_in, "scalar_in", 0)
    v_out = _check_int(vector_out, "vector_out", 0)
    c_out = _check_int(scalar_out, "scalar_out", 0)
    if v_out + c_out == 0:
        raise ValueError("set_init: vector_out and scalar_out are both 0")
    m = _check_int(num_directions, "num_directions")
    V = _check_int(hidden_vectors, "hidden_vectors")
    C = _check_int(hidden_scalars, "hidden_scalars")
    L = _check_int(num_layers, "num_layers")
    H = _check_int(num_heads, "num_heads")
    if C % H:
        raise ValueError(f"set_init: num_heads ({H}) must divide hidden_scalars ({C})")

    def p_of(v):
        return (v + m) * (v + m + 1) // 2

    embed = {
        "s": _mlp_init([c_in + p_of(v_in), C, C]),
        "v": _mlp_init([C, C, (v_in + m) * V], 0.5),
    }
    layers = [
        {
            "phi": _mlp_init([C + p_of(V), C, C]),
            "q": _dense_init(C, C),
            "k": _dense_init(C, C),
            "v": _dense_init(C, C),
            "o": _dense_init(C, C, 0.5),
            "w": _mlp_init([C, C, H * (V + m) * V], 0.5),
        }
        for _ in range(L)
    ]
    readout = {
        "phi": _mlp_init([C + p_of(V), C, c_out]),
        "w": _mlp_init([C + p_of(V), C, (V + m) * v_out]),
    }
    spec = {"embed": embed, "layers": layers, "readout": readout}
    params = _draw(key, spec, dtype)
    # a head with no outputs keeps no parameters (zero-size arrays cannot be
    # checkpointed by Orbax); drawn first, so the other weights do not change
    for head, n in (("phi", c_out), ("w", v_out)):
        if not n:
            del params["readout"][head]
    return params


def _mix(W, z):
    """Vectors ``Wᵀ z``: ``W (..., A, B)`` invariant, ``z (..., A, 3)`` -> ``(..., B, 3)``."""
    return jnp.einsum("...ab,...ai->...bi", W, z)


def set_layer(
    params: dict,
    vectors: Float[Array, "K V 3"],
    scalars: Float[Array, "K C"],
    directions: Float[Array, "M 3"],
    mask: Bool[Array, " K"] | None = None,
) -> tuple[Array, Array]:
    """One SET layer (Chen et al., ICML 2023, Sec. 4.2) on one body.

    ``e_i = φ([h_i, inv(Ẑ_i)])`` with :func:`gram_invariants`; multi-head attention
    ``α_ij = softmax_j(q(e_i)·k(e_j)/√d)`` over the (unmasked) parts;
    ``h_i ← h_i + o(Σ_j α_ij v(e_j))`` and ``Z_i ← Z_i + Σ_heads Σ_j α_ij
    W(e_j)ᵀ Ẑ_j`` with ``W(e_j)`` a ``(V+M) × V`` invariant matrix per head.

    Returns:
      ``(vectors (K, V, 3), scalars (K, C))``.
    """
    K, V = vectors.shape[0], vectors.shape[1]
    M = directions.shape[0]
    C = scalars.shape[-1]
    H = params["w"][-1]["w"].shape[1] // ((V + M) * V)
    dk = C // H
    z = jnp.concatenate([vectors, jnp.broadcast_to(directions, (K, M, 3))], axis=1)
    e = _mlp(
        params["phi"],
        jnp.concatenate([scalars, gram_invariants(vectors, directions)], -1),
    )
    e = _layer_norm(e)
    q = _dense(params["q"], e).reshape(K, H, dk)
    k = _dense(params["k"], e).reshape(K, H, dk)
    v = _dense(params["v"], e).reshape(K, H, dk)
    logits = jnp.einsum("ihd,jhd->hij", q, k) / math.sqrt(dk)
    if mask is not None:
        logits = jnp.where(mask[None, None, :], logits, -jnp.inf)
        # a fully masked body: uniform weights (its outputs are zeroed below)
        logits = jnp.where(jnp.any(mask), logits, 0.0)
    alpha = jax.nn.softmax(logits, axis=-1)  # (H, K, K)
    h = scalars + _dense(
        params["o"], jnp.einsum("hij,jhd->ihd", alpha, v).reshape(K, C)
    )
    W = _mlp(params["w"], e).reshape(K, H, V + M, V)
    msg = jnp.einsum("jhab,jax->jhbx", W, z)  # (K, H, V, 3)
    out = vectors + jnp.einsum("hij,jhbx->ibx", alpha, msg)
    if mask is not None:
        out = jnp.where(mask[:, None, None], out, 0)
        h = jnp.where(mask[:, None], h, 0)
    return out, h


def _check_inputs(vectors, scalars, directions, mask, where):
    for name, x in (("vectors", vectors), ("scalars", scalars)):
        if not hasattr(x, "shape"):
            raise TypeError(f"{where}: {name} must be an array, got {type(x).__name__}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{where}: {name} must be floating, got dtype {x.dtype}")
    if vectors.ndim < 3 or vectors.shape[-1] != 3:
        raise ValueError(
            f"{where}: vectors must have shape (..., K, V, 3), got {vectors.shape}"
        )
    if scalars.ndim != vectors.ndim - 1 or scalars.shape[:-1] != vectors.shape[:-2]:
        raise ValueError(
            f"{where}: scalars of shape {scalars.shape} do not match vectors of "
            f"shape {vectors.shape} (expected (..., K, C) with (..., K) = "
            f"{vectors.shape[:-2]})"
        )
    if scalars.dtype != vectors.dtype:
        raise TypeError(
            f"{where}: vectors ({vectors.dtype}) and scalars ({scalars.dtype}) must "
            "have one dtype"
        )
    d = check_directions(directions, where)
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_:
            raise TypeError(f"{where}: mask must be boolean, got dtype {mask.dtype}")
        if mask.shape != vectors.shape[:-2]:
            raise ValueError(
                f"{where}: mask of shape {mask.shape} does not match the parts "
                f"{vectors.shape[:-2]}"
            )
    return d.astype(vectors.dtype), mask


def set_model(
    params: dict,
    vectors: Float[Array, "*batch K V 3"],
    scalars: Float[Array, "*batch K C"],
    gravity: Float[Array, "*batch M 3"] | Float[Array, "3"],
    mask: Bool[Array, "*batch K"] | None = None,
) -> tuple[Array, Array]:
    """The subequivariant transformer (SET, Chen et al., ICML 2023) over body parts.

    An embedding (scalars from ``[h, inv(Ẑ)]``, vectors ``W(e)ᵀ Ẑ``), the SET
    layers of :func:`set_layer`, and a readout of the same form. ``gravity`` is
    the gravity vector ``(3,)`` or a stack ``(M, 3)`` of directions (gravity, a
    target direction, ...; ``M = num_directions`` of :func:`set_init`), shared by
    the batch or with the batch axes of ``vectors``.

    Symmetry: with ``Q ∈ O(3)`` acting on ``vectors`` and ``gravity``,
    ``vectors_out → Q vectors_out`` and ``scalars_out`` unchanged (exactly, to
    rounding); with ``gravity`` fixed, the same for ``Q`` in O_g(3)
    (:func:`eqjax.groups.axis_subgroup` of the gravity axis); other rotations
    change the outputs (the model sees gravity). Outputs are finite at input
    scales ``1e±6`` (the invariants are normalised, the vector outputs scale with
    the inputs). A zero (or NaN) gravity vector raises ``ValueError`` when its
    value is known (eagerly); under ``jit`` it is not checked.

    Args:
      params: from :func:`set_init`.
      vectors: ``(*batch, K, V, 3)`` per-part vectors (velocities, centred
        positions, ...).
      scalars: ``(*batch, K, C)`` per-part invariant features.
      gravity: ``(3,)``, ``(M, 3)`` or ``(*batch, M, 3)``.
      mask: optional ``(*batch, K)`` boolean mask of real parts (padding parts
        get zero outputs and no attention).

    Returns:
      ``(vectors (*batch, K, vector_out, 3), scalars (*batch, K, scalar_out))``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = set_init(jax.random.key(0), vector_in=2, scalar_in=3, vector_out=1,
      ...              scalar_out=4)
      >>> v, s = set_model(p, jnp.ones((5, 2, 3)), jnp.ones((5, 3)),
      ...                  jnp.array([0.0, 0.0, -9.81]))
      >>> v.shape, s.shape
      ((5, 1, 3), (5, 4))
    """
    where = "set_model"
    d, mask = _check_inputs(vectors, scalars, gravity, mask, where)
    m_expected = params["embed"]["v"][-1]["w"].shape[1]
    v_in = vectors.shape[-2]
    if m_expected % (v_in + d.shape[-2]):
        raise ValueError(
            f"{where}: {v_in} vector channels and {d.shape[-2]} directions do not "
            "match the parameters (vector_in / num_directions of set_init)"
        )
    c_in = (
        params["embed"]["s"][0]["w"].shape[0]
        - (v_in + d.shape[-2]) * (v_in + d.shape[-2] + 1) // 2
    )
    if scalars.shape[-1] != c_in:
        raise ValueError(
            f"{where}: {scalars.shape[-1]} scalar channels, the parameters expect "
            f"{c_in} (or the vector channels / directions differ)"
        )
    batch = vectors.shape[:-3]
    if d.ndim > 2 and d.shape[:-2] != batch:
        raise ValueError(
            f"{where}: gravity of shape {d.shape} does not match the batch {batch}"
        )

    def one(vec, sca, dirs, msk):
        K = vec.shape[0]
        M = dirs.shape[0]
        z = jnp.concatenate([vec, jnp.broadcast_to(dirs, (K, M, 3))], axis=1)
        e = _mlp(
            params["embed"]["s"], jnp.concatenate([sca, gram_invariants(vec, dirs)], -1)
        )
        e = _layer_norm(e)
        hidden = params["embed"]["v"][-1]["w"].shape[1] // (v_in + M)
        W = _mlp(params["embed"]["v"], e).reshape(K, v_in + M, hidden)
        zv = _mix(W, z)
        h = e
        for lp in params["layers"]:
            zv, h = set_layer(lp, zv, h, dirs, msk)
        V = zv.shape[1]
        z = jnp.concatenate([zv, jnp.broadcast_to(dirs, (K, M, 3))], axis=1)
        f = jnp.concatenate([h, gram_invariants(zv, dirs)], -1)
        ro = params["readout"]
        s_out = _mlp(ro["phi"], f) if "phi" in ro else jnp.zeros((K, 0), f.dtype)
        if "w" in ro:
            n_v = ro["w"][-1]["w"].shape[1] // (V + M)
            v_out = _mix(_mlp(ro["w"], f).reshape(K, V + M, n_v), z)
        else:
            v_out = jnp.zeros((K, 0, 3), z.dtype)
        if msk is not None:
            s_out = jnp.where(msk[:, None], s_out, 0)
            v_out = jnp.where(msk[:, None, None], v_out, 0)
        return v_out, s_out

    fn = one
    for _ in range(len(batch)):
        d_axis = 0 if d.ndim > 2 else None
        m_axis = None if mask is None else 0
        fn = jax.vmap(fn, in_axes=(0, 0, d_axis, m_axis))
    return fn(vectors, scalars, d, mask)
