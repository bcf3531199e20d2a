"""Neural-collapse metrics and the closed-form geometry of deep linear heads.

Dang, Nguyen, Tran, Tran & Ho, "Neural Collapse in Deep Linear Networks: From
Balanced to Imbalanced Data" (ICML 2023), after Papyan, Han & Donoho (PNAS 2020):
NC1 (within-class variability collapses), NC2 (the classifier rows form a simplex
ETF with a bias, an orthogonal frame without one, a general orthogonal frame for
imbalanced data) and NC3 (the classifier aligns with the class means). All
metrics are invariant to an orthogonal transform applied jointly to the features,
the class means and the classifier rows, and to relabelling the classes.

The closed form (:func:`imbalanced_geometry`) is derived here for the bias-free
unconstrained-features model with ``M`` linear layers,

    (1/2N) ‖W_M⋯W_1 H − Y‖² + Σ_j (λ_j/2) ‖W_j‖² + (λ_H/2) ‖H‖²,

following the paper's argument: at a minimiser features collapse to their class
means, the regulariser of the product is a Schatten quasi-norm of
``Z = W_M⋯W_1 H̄ D^{1/2}`` (``D = diag(n_k)``), and ``Z`` is diagonal with
entries ``s_k`` minimising ``(s − √n_k)²/(2N) + c s^{2/(M+1)} (M+1)/2``,
``c = (λ_H Π_j λ_j)^{1/(M+1)}``. For ``M = 1`` this is
``s_k = max(√n_k − N c, 0)``; for ``M ≥ 2`` the positive stationary point is the
larger root ``x_k`` of ``s^{(M−1)/(M+1)} (√n_k − s) = N c``, found by bisection,
and ``s_k = 0`` (minority collapse: the class's classifier row and features
vanish) when no root exists or the root's objective is not below ``g(0)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._ebv import check_floating, check_labels


def class_means(
    features: Float[Array, "n d"], labels: Int[Array, " n"], num_classes: int
) -> tuple[Float[Array, "K d"], Float[Array, " d"]]:
    """Per-class means ``(K, d)`` and the global mean of the samples ``(d,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> m, g = class_means(jnp.array([[0.0], [2.0], [4.0]]), jnp.array([0, 0, 1]), 2)
      >>> m.ravel().tolist(), g.tolist()
      ([1.0, 4.0], [2.0])
    """
    _check(features, labels, num_classes, "class_means")
    onehot = jax.nn.one_hot(labels, num_classes, dtype=features.dtype)
    counts = jnp.sum(onehot, axis=0)
    means = (onehot.T @ features) / jnp.maximum(counts, 1)[:, None]
    return means, jnp.mean(features, axis=0)


def _check(features, labels, num_classes, where):
    check_floating(features, "features", where)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"{where}: features must be (n, d) and labels (n,); got {features.shape} "
            f"and {labels.shape}"
        )
    check_labels(labels, num_classes, where)


def nc1(
    features: Float[Array, "n d"], labels: Int[Array, " n"], num_classes: int
) -> Float[Array, ""]:
    """NC1 = ``tr(Σ_W Σ_B^†) / K``: within-class covariance against between-class
    covariance (``Σ_B`` over the centred class means); 0 when every feature
    equals its class mean. ``Σ_B^†`` is computed in the K-dimensional span of
    the means (exact when they span K − 1 dimensions, the generic case for
    ``d >= K - 1``; with fewer, directions of zero between-class variance are
    regularised at rounding level rather than inverted).

    Raises:
      ValueError: shapes that disagree, or concrete labels outside ``0..K-1``.

    Example:
      >>> import jax.numpy as jnp
      >>> h = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> float(nc1(h, jnp.array([0, 0, 1]), 2))
      0.0
    """
    _check(features, labels, num_classes, "nc1")
    dtype = features.dtype
    # NC1 is scale invariant: divide by the largest entry (1e30 and 1e-30 stay in
    # range); half precision is decomposed in float32 (no half eigh on CPU)
    h = features.astype(jnp.promote_types(dtype, jnp.float32))
    scale = jax.lax.stop_gradient(jnp.max(jnp.abs(h)))
    h = h / jnp.where(scale > 0, scale, 1)
    means, g = class_means(h, labels, num_classes)
    within = h - means[labels]
    sw = within.T @ within / h.shape[0]
    # Σ_B = cᵀc / K with c the centred means (K, d), whose rows satisfy
    # Σ_k n_k c_k = 0: the counts u span the null space of G = c cᵀ, so
    # Σ_B^† = K cᵀ G'^{-2} c with G' = G + s uuᵀ (+ a δ I of rounding size),
    # solved in the K-dimensional space, with a gradient that stays finite where
    # the pseudo-inverse's does not (its zero singular values repeat)
    counts = jnp.sum(jax.nn.one_hot(labels, num_classes, dtype=h.dtype), axis=0)
    c = means - g[None]
    G = c @ c.T
    tr = jnp.trace(G)
    floor = jnp.where(tr > 0, tr, 1.0)  # h is scaled to max |h| = 1 (or all 0)
    u = counts / jnp.maximum(jnp.linalg.norm(counts), 1.0)
    k = num_classes
    Gp = G + floor / k * jnp.outer(u, u)
    Gp = Gp + jnp.finfo(h.dtype).eps * floor * jnp.eye(k, dtype=h.dtype)
    A = jnp.linalg.solve(Gp, c)  # (K, d)
    out = jnp.trace(A @ sw @ A.T)
    return out.astype(dtype)


def _unit(x):
    """``x / ‖x‖_F`` (0 for ``x = 0``), scaled by ``max |x|`` first so that
    1e30 and 1e-30 entries neither overflow nor underflow."""
    # the result does not depend on the scale: no gradient through it (the max's
    # tie-counting derivative is 0/0 when a recomputed max matches no entry)
    scale = jax.lax.stop_gradient(jnp.max(jnp.abs(x)))
    x = x / jnp.where(scale > 0, scale, 1)
    n = jnp.linalg.norm(x)
    return x / jnp.where(n > 0, n, 1)


def _gram_normalized(w):
    check_floating(w, "W", "nc2")
    return _unit(_unit(w) @ _unit(w).T)


def nc2_etf(W: Float[Array, "K d"]) -> Float[Array, ""]:
    """NC2 against the simplex ETF: ``‖WWᵀ/‖WWᵀ‖_F − (I − 11ᵀ/K)/√(K−1)‖_F``;
    0 for an exact ETF (any scale, any orthogonal embedding).

    Example:
      >>> from eqjax.weights import simplex_etf
      >>> float(nc2_etf(simplex_etf(5, 7))) < 1e-6
      True
    """
    k = W.shape[0]
    target = (jnp.eye(k, dtype=W.dtype) - 1.0 / k) / jnp.sqrt(
        jnp.asarray(k - 1, W.dtype)
    )
    return jnp.linalg.norm(_gram_normalized(W) - target)


def nc2_of(W: Float[Array, "K d"]) -> Float[Array, ""]:
    """NC2 against an orthogonal frame: ``‖WWᵀ/‖WWᵀ‖_F − I/√K‖_F``.

    Example:
      >>> import jax.numpy as jnp
      >>> float(nc2_of(3.0 * jnp.eye(4)))
      0.0
    """
    k = W.shape[0]
    return jnp.linalg.norm(
        _gram_normalized(W) - jnp.eye(k, dtype=W.dtype) / jnp.sqrt(k)
    )


def nc2_gof(W: Float[Array, "K d"], diag: Float[Array, " K"]) -> Float[Array, ""]:
    """NC2 against a general orthogonal frame with Gram diagonal ``diag`` (the
    imbalanced geometry of :func:`imbalanced_geometry`): ``‖WWᵀ/‖WWᵀ‖_F −
    D/‖D‖_F‖_F``.

    Example:
      >>> import jax.numpy as jnp
      >>> float(nc2_gof(jnp.diag(jnp.array([2.0, 1.0])), jnp.array([4.0, 1.0])))
      0.0
    """
    d = jnp.diag(jnp.asarray(diag, W.dtype))
    return jnp.linalg.norm(_gram_normalized(W) - _unit(d))


def nc3_etf(
    W: Float[Array, "K d"], means: Float[Array, "K d"], global_mean: Float[Array, " d"]
) -> Float[Array, ""]:
    """NC3, classifier/mean alignment: ``‖W/‖W‖_F − M̄/‖M̄‖_F‖_F`` with the
    centred class means ``M̄ = means − global_mean`` (with a bias; pass a zero
    ``global_mean`` for the bias-free, uncentred version).

    Example:
      >>> import jax.numpy as jnp
      >>> M = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> float(nc3_etf(2 * M, M + 1.0, jnp.ones(2)))
      0.0
    """
    if W.shape != means.shape or global_mean.shape != W.shape[-1:]:
        raise ValueError(
            f"nc3_etf: W {W.shape}, means {means.shape} and global_mean "
            f"{global_mean.shape} must be (K, d), (K, d), (d,)"
        )
    check_floating(W, "W", "nc3_etf")
    c = means - global_mean[None]
    return jnp.linalg.norm(_unit(W) - _unit(c))


def imbalanced_geometry(
    counts: Sequence[int],
    weight_decays: Sequence[float],
    feature_decay: float,
    *,
    tol: float = 1e-14,
) -> dict[str, np.ndarray]:
    """Closed-form minimiser of the bias-free deep linear UFM (module docstring).

    Args:
      counts: ``n_k``, samples per class (``K`` entries).
      weight_decays: ``λ_1..λ_M``, one per linear layer (``M = len``).
      feature_decay: ``λ_H``.
      tol: bisection tolerance (relative to ``√n_k``).

    Returns:
      float64 NumPy arrays, each ``(K,)``: ``s`` (the diagonal of ``Z``),
      ``last_gram`` (the diagonal of ``W_M W_Mᵀ``; off-diagonals are 0),
      ``product_gram`` (of ``(W_M⋯W_1)(W_M⋯W_1)ᵀ``), ``feature_norm_sq``
      (``‖h_k‖²``), and ``collapsed`` (bool: minority collapse, ``s_k = 0``).

    Example:
      >>> g = imbalanced_geometry([100, 100, 4], [2e-2], 2e-2)
      >>> g["collapsed"].tolist()
      [False, False, True]
    """
    n = np.asarray(counts, np.float64)
    lam = np.asarray(weight_decays, np.float64)
    if n.ndim != 1 or n.size < 1 or np.any(n <= 0) or lam.ndim != 1 or lam.size < 1:
        raise ValueError(
            f"imbalanced_geometry: counts must be positive (K,), weight_decays (M,) "
            f"with M >= 1; got {n.tolist()} and {lam.tolist()}"
        )
    if np.any(lam <= 0) or not feature_decay > 0:
        raise ValueError("imbalanced_geometry: every decay must be positive")
    m = lam.size
    total = n.sum()
    c = float(np.exp((np.log(lam).sum() + np.log(feature_decay)) / (m + 1)))
    q = 2.0 / (m + 1)
    root_n = np.sqrt(n)
    s = np.zeros_like(n)
    for k, r in enumerate(root_n):
        if m == 1:
            s[k] = max(r - total * c, 0.0)
            continue
        a = (m - 1) / (m + 1)
        phi = lambda x, r=r, a=a: x**a * (r - x) - total * c  # noqa: E731
        peak = a * r / (1 + a)  # φ rises on [0, peak], falls on [peak, √n]
        if phi(peak) <= 0:
            continue  # no root: minority collapse
        lo, hi = peak, r  # the larger root (the local minimum of g)
        while hi - lo > tol * r:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if phi(mid) > 0 else (lo, mid)
        x = 0.5 * (lo + hi)

        def g(v, r=r):
            return (v - r) ** 2 / (2 * total) + c * (m + 1) / 2 * v**q

        s[k] = x if g(x) < g(0.0) else 0.0
    last = c / lam[-1] * s**q
    prod = s ** (2 * m / (m + 1)) * c**m / np.prod(lam)
    feat = c / feature_decay * s**q / n
    return {
        "s": s,
        "last_gram": last,
        "product_gram": prod,
        "feature_norm_sq": feat,
        "collapsed": s == 0,
    }


def train_ufm(
    key: jax.Array,
    counts: Sequence[int],
    dim: int,
    weight_decays: Sequence[float],
    feature_decay: float,
    *,
    bias: bool = False,
    steps: int = 5000,
    learning_rate: float = 0.5,
    init_scale: float = 0.1,
    dtype: Any = None,
):
    """Train the unconstrained-features model directly (full-batch gradient
    descent with momentum 0.9, one compiled ``lax.scan``): features ``H`` are free
    parameters, the head is ``M = len(weight_decays)`` linear layers of width
    ``dim``, the loss the module docstring's (a bias, when ``bias``, is not
    regularised). Parameters start Gaussian with standard deviation
    ``init_scale``: for ``M >= 2`` zero is a local minimum of every class's
    scalar problem, and a small start may fall into it.

    Returns:
      ``{"W": [W_1..W_M], "H": (N, d), "b": (K,), "labels": (N,), "loss": (steps,)}``
      (``W_j`` as ``(out, in)``; features as rows).

    Example:
      >>> import jax
      >>> out = train_ufm(jax.random.key(0), [3, 3], 4, [1e-2], 1e-2, steps=50)
      >>> out["H"].shape, out["W"][0].shape
      ((6, 4), (2, 4))
    """
    n = [int(c) for c in counts]
    k, total, m = len(n), sum(n), len(weight_decays)
    dtype = dtype or jnp.zeros(()).dtype
    labels = jnp.asarray(np.repeat(np.arange(k), n), jnp.int32)
    y = jax.nn.one_hot(labels, k, dtype=dtype)
    lam = [float(x) for x in weight_decays]
    keys = jax.random.split(key, m + 1)
    ws = [
        jax.random.normal(keys[j], (k if j == m - 1 else dim, dim), dtype) * init_scale
        for j in range(m)
    ]
    params = {
        "W": ws,
        "H": jax.random.normal(keys[m], (total, dim), dtype) * init_scale,
        "b": jnp.zeros((k,), dtype),
    }

    def loss_fn(p):
        z = p["H"]
        for w in p["W"]:
            z = z @ w.T
        if bias:
            z = z + p["b"][None]
        fit = jnp.sum((z - y) ** 2) / (2 * total)
        reg = sum(lj / 2 * jnp.sum(w**2) for lj, w in zip(lam, p["W"], strict=True))
        return fit + reg + feature_decay / 2 * jnp.sum(p["H"] ** 2)

    @jax.jit
    def run(params):
        def step(carry, _):
            p, v = carry
            loss, g = jax.value_and_grad(loss_fn)(p)
            v = jax.tree_util.tree_map(lambda a, b: 0.9 * a + b, v, g)
            p = jax.tree_util.tree_map(lambda a, b: a - learning_rate * b, p, v)
            return (p, v), loss

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        (p, _), losses = jax.lax.scan(step, (params, zeros), None, length=steps)
        return p, losses

    p, losses = run(params)
    return {"W": p["W"], "H": p["H"], "b": p["b"], "labels": labels, "loss": losses}
