"""Weight matching, interpolation barriers, merging, and singular-vector alignment.

Ainsworth, Hayase & Srinivasa, "Git Re-Basin: Merging Models modulo Permutation
Symmetries" (ICLR 2023): weight matching maximises ``Σ_ℓ ⟨θ_a^ℓ, π(θ_b)^ℓ⟩`` over
the hidden-unit permutations π by coordinate ascent (each step a linear
assignment problem in one permutation with the others held fixed); the
straight-through estimator (STE) learns the permutation that minimises the loss
at the midpoint; MergeMany aligns several models to each other's mean.

Ito, Yamada & Kumagai, "Analysis of Linear Mode Connectivity via Permutation-Based
Weight Matching" (ICLR 2025): permutations leave every layer's singular values
unchanged, and weight matching mostly aligns the singular vectors with large
singular values (:func:`singular_vector_alignment`), which is why the barrier
falls while the L2 distance falls only a little (:func:`l2_distance`).

The assignment problems are solved on the host (``scipy.optimize
.linear_sum_assignment``, float64 NumPy); the permutations come back as JAX
arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from scipy.optimize import linear_sum_assignment

from ._spec import (
    Perm,
    PermutationSpec,
    _float_leaves,
    _is_float,
    apply_permutation,
    check_spec,
    identity_permutation,
    spec_perm_axes,
    view_of,
)


def _host(state, spec: PermutationSpec | None = None) -> dict[str, np.ndarray]:
    """Float64 NumPy copies of the floating leaves (in their views, with a
    spec)."""
    out = {p: np.asarray(v, np.float64) for p, v in _float_leaves(state).items()}
    return out if spec is None else {p: view_of(spec, p, w) for p, w in out.items()}


def _permute_np(spec, perm_np, path, w, skip=None):
    """Apply the (NumPy) permutations to every axis of ``w`` except those of
    permutation ``skip``; ``perm[i]`` is where entry ``i`` goes."""
    for ax, name in enumerate(spec.axes[path]):
        if name is None or name == skip:
            continue
        inv = np.argsort(perm_np[name])
        w = np.take(w, inv, axis=ax)
    return w


def _objective(spec, perm_np, a, b) -> float:
    return float(
        sum(np.vdot(a[p], _permute_np(spec, perm_np, p, b[p])) for p in spec.axes)
    )


def _seed(key) -> np.random.Generator:
    data = np.asarray(jax.random.key_data(key)).ravel()
    return np.random.default_rng([int(x) for x in data])


def matching_objective(spec: PermutationSpec, perm: Perm, state_a, state_b) -> float:
    """``Σ ⟨θ_a, π(θ_b)⟩`` over every floating parameter (float64, on the host).

    Example:
      >>> import jax.numpy as jnp
      >>> from eqjax.weights import spec_from_axes
      >>> a = {"w": jnp.array([1.0, 2.0])}
      >>> spec = spec_from_axes({"w": ("h",)}, a)
      >>> matching_objective(spec, {"h": jnp.array([1, 0])}, a, a)
      4.0
    """
    check_spec(spec, state_a, where="matching_objective: state_a")
    check_spec(spec, state_b, where="matching_objective: state_b")
    perm_np = {k: np.asarray(v) for k, v in perm.items()}
    return _objective(spec, perm_np, _host(state_a, spec), _host(state_b, spec))


def weight_matching(
    key: jax.Array,
    spec: PermutationSpec,
    state_a,
    state_b,
    *,
    max_iter: int = 100,
    init: Perm | None = None,
    return_objectives: bool = False,
):
    """The permutation π that best aligns ``state_b`` to ``state_a``.

    Coordinate ascent on ``Σ ⟨θ_a, π(θ_b)⟩`` (Ainsworth et al., Algorithm 1): in
    a random order (from ``key``), each permutation is set to the solution of the
    linear assignment problem it faces with the others fixed (axes of the same
    permutation elsewhere in a parameter take its current value). A step is kept
    only if it raises the objective, so the objective never decreases; the
    iteration stops after a sweep without a gain.

    Args:
      key: PRNG key for the order of the coordinates.
      spec: the :class:`PermutationSpec` of both states.
      state_a, state_b: parameter trees (``nnx.State`` or pytrees of arrays).
      max_iter: most sweeps over the permutations.
      init: starting permutations (default: identities).
      return_objectives: also return the objective after each sweep (the first
        entry is the starting value).

    Returns:
      ``perm`` such that ``apply_permutation(spec, perm, state_b)`` is aligned
      with ``state_a``; with ``return_objectives``, ``(perm, objectives)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eqjax.weights import spec_from_axes, apply_permutation
      >>> a = {"w1": jax.random.normal(jax.random.key(0), (3, 6)),
      ...      "w2": jax.random.normal(jax.random.key(1), (6, 2))}
      >>> spec = spec_from_axes({"w1": (None, "h"), "w2": ("h", None)}, a)
      >>> b = apply_permutation(spec, {"h": jnp.array([3, 1, 5, 0, 2, 4])}, a)
      >>> perm = weight_matching(jax.random.key(2), spec, a, b)
      >>> perm["h"].tolist()
      [3, 1, 4, 0, 5, 2]
    """
    perm, history = _weight_matching(key, spec, state_a, state_b, max_iter, init)
    return (perm, history) if return_objectives else perm


def _weight_matching(
    key, spec, state_a, state_b, max_iter: int = 100, init: Perm | None = None
) -> tuple[dict[str, jax.Array], list[float]]:
    check_spec(spec, state_a, where="weight_matching: state_a")
    check_spec(spec, state_b, where="weight_matching: state_b")
    a, b = _host(state_a, spec), _host(state_b, spec)
    for p in a:
        if a[p].shape != b[p].shape:
            raise ValueError(
                f"weight_matching: {p!r} has shape {a[p].shape} in state_a and "
                f"{b[p].shape} in state_b"
            )
    rng = _seed(key)
    perm = identity_permutation(spec) if init is None else dict(init)
    perm_np = {k: np.asarray(v).astype(np.int64) for k, v in perm.items()}
    where = spec_perm_axes(spec)
    names = sorted(spec.sizes)
    best = _objective(spec, perm_np, a, b)
    history = [best]
    for _ in range(max_iter):
        improved = False
        for name in rng.permutation(names):
            n = spec.sizes[name]
            cost = np.zeros((n, n))
            for path, ax in where[name]:
                wa = np.moveaxis(a[path], ax, 0).reshape(n, -1)
                wb = _permute_np(spec, perm_np, path, b[path], skip=name)
                wb = np.moveaxis(wb, ax, 0)
                # other axes of this permutation (a square weight shared by one
                # permutation on both sides) take its current value
                others = [
                    d for d, nm in enumerate(spec.axes[path]) if nm == name and d != ax
                ]
                if others:
                    inv = np.argsort(perm_np[name])
                    for d in others:
                        d2 = d + 1 if d < ax else d
                        wb = np.take(wb, inv, axis=d2)
                cost += wa @ wb.reshape(n, -1).T
            rows, cols = linear_sum_assignment(cost, maximize=True)
            new = np.empty(n, np.int64)
            new[cols] = rows  # entry cols[j] of b moves to position rows[j]
            if np.array_equal(new, perm_np[name]):
                continue
            trial = dict(perm_np, **{name: new})
            value = _objective(spec, trial, a, b)
            if value > best + 1e-12 * max(1.0, abs(best)):
                perm_np, best, improved = trial, value, True
        history.append(best)
        if not improved:
            break
    out = {k: jnp.asarray(v, jnp.int32) for k, v in perm_np.items()}
    return out, history


def interpolate(state_a, state_b, lam):
    """``(1 - λ) θ_a + λ θ_b`` on floating leaves (others from ``state_a``).

    Example:
      >>> import jax.numpy as jnp
      >>> interpolate({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, 0.25)["w"]
      Array([0.25, 0.25], dtype=float32)
    """
    return jax.tree_util.tree_map(
        lambda x, y: (1 - lam) * x + lam * y if _is_float(x) else x, state_a, state_b
    )


def interpolation_curve(
    fn: Callable[[Any], Any], state_a, state_b, lambdas: Float[Array, " m"]
):
    """``fn`` along the segment from ``state_a`` to ``state_b``, vmapped over λ.

    Args:
      fn: ``fn(state) -> pytree of metrics`` (a loss, an accuracy, ...); traced
        once.
      state_a, state_b: parameter trees of one structure.
      lambdas: ``(m,)`` points in ``[0, 1]``.

    Returns:
      ``fn``'s metrics with a leading axis of length ``m``.

    Example:
      >>> import jax.numpy as jnp
      >>> f = lambda s: jnp.sum(s["w"] ** 2)
      >>> interpolation_curve(f, {"w": -jnp.ones(2)}, {"w": jnp.ones(2)},
      ...                     jnp.linspace(0, 1, 3))
      Array([2., 0., 2.], dtype=float32)
    """
    return jax.vmap(lambda lam: fn(interpolate(state_a, state_b, lam)))(lambdas)


def barrier(
    values: Float[Array, " m"],
    lambdas: Float[Array, " m"],
    *,
    higher_is_better: bool = False,
) -> Float[Array, ""]:
    """The largest excess of a metric along the segment over the straight line
    between its ends: ``max_λ f(λ) - ((1-λ) f(0) + λ f(1))`` for a loss; the
    largest deficit for an accuracy (``higher_is_better``). ``lambdas`` must start
    at 0 and end at 1.

    Example:
      >>> import jax.numpy as jnp
      >>> barrier(jnp.array([1.0, 3.0, 2.0]), jnp.array([0.0, 0.5, 1.0]))
      Array(1.5, dtype=float32)
    """
    values = jnp.asarray(values)
    lambdas = jnp.asarray(lambdas, values.dtype)
    if values.shape != lambdas.shape or values.ndim != 1:
        raise ValueError(
            f"barrier: values {values.shape} and lambdas {lambdas.shape} must be "
            "one-dimensional of one length"
        )
    line = (1 - lambdas) * values[0] + lambdas * values[-1]
    excess = line - values if higher_is_better else values - line
    return jnp.max(excess)


def l2_distance(state_a, state_b) -> float:
    """``‖θ_a − θ_b‖₂`` over every floating parameter (float64, host).

    Example:
      >>> import jax.numpy as jnp
      >>> l2_distance({"w": jnp.zeros(2)}, {"w": jnp.array([3.0, 4.0])})
      5.0
    """
    a, b = _host(state_a), _host(state_b)
    return float(np.sqrt(sum(np.sum((a[p] - b[p]) ** 2) for p in a)))


def singular_vector_alignment(
    w_a: Float[Array, "m n"], w_b: Float[Array, "m n"], k: int
) -> Float[Array, " k"]:
    """``|⟨u_i^a, u_i^b⟩| · |⟨v_i^a, v_i^b⟩|`` for the top ``k`` singular pairs.

    The statistic of Ito et al. (ICLR 2025): 1 when the i-th left and right
    singular vectors of the two matrices coincide (up to sign), near 0 for
    unrelated matrices. Weight matching raises it for the leading singular
    vectors while the L2 distance falls only a little.

    Args:
      w_a, w_b: two matrices of one shape (reshape a kernel to 2-D first).
      k: how many leading singular pairs.

    Returns:
      ``(k,)`` alignments in ``[0, 1]``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> w = jax.random.normal(jax.random.key(0), (5, 4))
      >>> bool(jnp.allclose(singular_vector_alignment(w, -w, 3), 1.0, atol=1e-5))
      True
    """
    if w_a.ndim != 2 or w_a.shape != w_b.shape:
        raise ValueError(
            "singular_vector_alignment: w_a and w_b must be matrices of one shape, "
            f"got {w_a.shape} and {w_b.shape}"
        )
    if not 1 <= k <= min(w_a.shape):
        raise ValueError(
            f"singular_vector_alignment: k must be in 1..{min(w_a.shape)}, got {k}"
        )
    ua, _, vta = jnp.linalg.svd(w_a, full_matrices=False)
    ub, _, vtb = jnp.linalg.svd(w_b, full_matrices=False)
    cu = jnp.abs(jnp.sum(ua[:, :k] * ub[:, :k], axis=0))
    cv = jnp.abs(jnp.sum(vta[:k] * vtb[:k], axis=1))
    return cu * cv


def merge_models(
    key: jax.Array,
    spec: PermutationSpec,
    states: Sequence[Any],
    *,
    max_iter: int = 20,
):
    """Align several models to one another and average them (MergeMany,
    Ainsworth et al., Algorithm 3).

    Each round visits the models in a random order and aligns model ``i`` to the
    mean of the other (aligned) models by :func:`weight_matching`; the rounds stop
    when no permutation changes.

    Args:
      key: PRNG key.
      spec: the common :class:`PermutationSpec`.
      states: two or more parameter trees.
      max_iter: most rounds.

    Returns:
      ``(merged, perms)``: the mean of the aligned models (the tree type of
      ``states[0]``) and the permutation applied to each model.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eqjax.weights import spec_from_axes, apply_permutation
      >>> a = {"w1": jax.random.normal(jax.random.key(0), (3, 6)),
      ...      "w2": jax.random.normal(jax.random.key(1), (6, 2))}
      >>> spec = spec_from_axes({"w1": (None, "h"), "w2": ("h", None)}, a)
      >>> b = apply_permutation(spec, {"h": jnp.array([3, 1, 5, 0, 2, 4])}, a)
      >>> merged, perms = merge_models(jax.random.key(0), spec, [a, b, a])
      >>> bool(jnp.allclose(merged["w2"], a["w2"], atol=1e-6)) or bool(
      ...     jnp.allclose(merged["w2"], b["w2"], atol=1e-6))
      True
    """
    if len(states) < 2:
        raise ValueError(f"merge_models: need two or more models, got {len(states)}")
    for i, s in enumerate(states):
        check_spec(spec, s, where=f"merge_models: states[{i}]")
    m = len(states)
    perms = [identity_permutation(spec) for _ in range(m)]
    aligned = list(states)
    rng = _seed(key)

    def mean_of(idx):
        trees = [aligned[j] for j in idx]
        return jax.tree_util.tree_map(
            lambda *v: sum(v[1:], v[0]) / len(v) if _is_float(v[0]) else v[0], *trees
        )

    for it in range(max_iter):
        changed = False
        for i in rng.permutation(m):
            target = mean_of([j for j in range(m) if j != i])
            k = jax.random.fold_in(key, it * m + int(i))
            new, _ = _weight_matching(k, spec, target, states[i], init=perms[i])
            if any(not np.array_equal(new[n], perms[i][n]) for n in new):
                changed = True
                perms[i] = new
                aligned[i] = apply_permutation(spec, new, states[i])
        if not changed:
            break
    return mean_of(range(m)), perms


def ste_matching(
    key: jax.Array,
    spec: PermutationSpec,
    state_a,
    state_b,
    loss_fn: Callable[[Any, Any], jax.Array],
    batches: Sequence[Any],
    *,
    learning_rate: float = 1e-3,
    init: Perm | None = None,
):
    """The straight-through estimator of Ainsworth et al. (Algorithm 2).

    A free copy θ̃ (started at ``state_a``) is projected onto the orbit of
    ``state_b`` by :func:`weight_matching`, ``π(θ_b)``; the loss at the midpoint
    ``(θ_a + π(θ_b)) / 2`` is evaluated with the projection in the forward pass
    and its gradient passed straight through to θ̃, which Adam updates. The
    permutation with the lowest midpoint loss seen is returned.

    Args:
      key: PRNG key (orders of the matching coordinates).
      spec: the :class:`PermutationSpec`.
      state_a, state_b: parameter trees (pytrees of arrays or ``nnx.State``).
      loss_fn: ``loss_fn(state, batch) -> scalar``.
      batches: one training batch per step.
      learning_rate: Adam's step size.
      init: the starting projection (default: :func:`weight_matching` of the two
        states).

    Returns:
      ``(perm, losses)``: the best permutation and the midpoint loss per step.
    """
    import optax

    opt = optax.adam(learning_rate)
    theta = jax.tree_util.tree_map(lambda v: v, state_a)
    opt_state = jax.jit(opt.init)(theta)  # one program, not one per leaf

    @jax.jit
    def step(theta, opt_state, proj, batch):
        def mid_loss(t):
            ste = jax.tree_util.tree_map(
                lambda p, q: p + (q - jax.lax.stop_gradient(q)) if _is_float(p) else p,
                proj,
                t,
            )
            return loss_fn(interpolate(state_a, ste, 0.5), batch)

        loss, g = jax.value_and_grad(mid_loss)(theta)
        updates, opt_state = opt.update(g, opt_state, theta)
        return optax.apply_updates(theta, updates), opt_state, loss

    perm = (
        dict(init)
        if init is not None
        else _weight_matching(key, spec, state_a, state_b)[0]
    )
    best, best_loss, losses = perm, np.inf, []
    for t, batch in enumerate(batches):
        k = jax.random.fold_in(key, t)
        perm, _ = _weight_matching(k, spec, theta, state_b, init=perm)
        proj = apply_permutation(spec, perm, state_b)
        theta, opt_state, loss = step(theta, opt_state, proj, batch)
        loss = float(loss)
        losses.append(loss)
        if loss < best_loss:
            best, best_loss = perm, loss
    return best, losses
