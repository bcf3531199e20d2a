"""Measured equivariance: the checks eqjax's own tests use, public for users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ..groups import Action, Group


def _float_dtype(tree: Any):
    for leaf in jax.tree_util.tree_leaves(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
            return dtype
    return jnp.zeros(()).dtype


def cast_floating(tree: Any, dtype) -> Any:
    """Cast the floating leaves of a pytree to ``dtype`` (integer leaves untouched).

    Example:
      >>> import jax.numpy as jnp
      >>> a, b = cast_floating((jnp.ones(2), jnp.arange(2)), jnp.float16)
      >>> a.dtype, b.dtype
      (dtype('float16'), dtype('int32'))
    """

    def cast(leaf):
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


def _sq_norm(tree: Any, dtype) -> jax.Array:
    leaves = [jnp.asarray(v).astype(dtype) for v in jax.tree_util.tree_leaves(tree)]
    if not leaves:
        return jnp.zeros((), dtype)
    return jnp.sum(jnp.stack([jnp.sum(v * v) for v in leaves]))


def _diff(a: Any, b: Any) -> Any:
    ta, tb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    if ta != tb:
        raise ValueError(
            f"fn(act_in(g, x)) and act_out(g, fn(x)) have different structures: {ta} vs {tb}"
        )
    return jax.tree_util.tree_map(lambda u, v: jnp.asarray(u) - jnp.asarray(v), a, b)


def equivariance_errors(
    fn: Callable[[Any], Any],
    group: Group,
    x: Any,
    *,
    act_in: Action,
    act_out: Action | None = None,
    key: jax.Array,
    num_samples: int = 16,
    sample: Callable[..., Any] | None = None,
) -> jax.Array:
    """Relative equivariance error for each of ``num_samples`` sampled elements.

    ``err_g = ‖fn(g·x) − g·fn(x)‖ / ‖g·fn(x)‖`` with the norm over all leaves of
    the output pytree (``g·y = y`` when ``act_out`` is ``None``: invariance).
    Outputs that are exactly zero on both sides give error 0.

    Returns:
      ``(num_samples,)`` errors in the floating dtype of ``x``.

    Example:
      >>> import jax, eqjax as eq
      >>> x = jax.random.normal(jax.random.key(0), (4, 3))
      >>> eq.testing.equivariance_errors(lambda p: p, eq.groups.O3, x,
      ...     act_in=eq.groups.O3.act, act_out=eq.groups.O3.act,
      ...     key=jax.random.key(1), num_samples=3).shape
      (3,)
    """
    dtype = _float_dtype(x)
    draw = sample if sample is not None else group.sample
    gs = cast_floating(draw(key, (int(num_samples),)), dtype)
    y = fn(x)

    def one(g):
        lhs = fn(act_in(g, x))
        rhs = y if act_out is None else act_out(g, y)
        num = _sq_norm(_diff(lhs, rhs), dtype)
        den = _sq_norm(rhs, dtype)
        tiny = jnp.finfo(dtype).tiny
        return jnp.sqrt(num) / jnp.maximum(jnp.sqrt(den), tiny)

    return jax.vmap(one)(gs)


def equivariance_error(
    fn: Callable[[Any], Any],
    group: Group,
    x: Any,
    *,
    act_in: Action,
    act_out: Action | None = None,
    key: jax.Array,
    num_samples: int = 16,
    sample: Callable[..., Any] | None = None,
) -> jax.Array:
    """Largest relative equivariance error of ``fn`` over sampled group elements.

    ``max_g ‖fn(act_in(g, x)) − act_out(g, fn(x))‖ / ‖act_out(g, fn(x))‖``, the
    norm taken over every leaf of the output pytree. Works under ``jit`` (close
    over ``fn``, ``group`` and the actions) and for batched or pytree inputs
    (``IrrepsArray``, ``GraphsTuple``); group elements are cast to the floating
    dtype of ``x``.

    Args:
      fn: the function to check, ``fn(x) -> y`` (any pytrees).
      group: the group whose ``sample`` draws elements (Haar where compact;
        reflections included for O(n)/E(n)).
      x: one input (pytree).
      act_in: ``act_in(g, x)``, the action on inputs.
      act_out: ``act_out(g, y)``, the action on outputs; ``None`` checks invariance.
      key: a PRNG key.
      num_samples: number of sampled elements.
      sample: optional sampler ``sample(key, shape)`` replacing ``group.sample``
        (e.g. a subgroup).

    Returns:
      A scalar: the largest relative error.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> x = jax.random.normal(jax.random.key(0), (5, 3))
      >>> center = lambda p: p - p.mean(0, keepdims=True)
      >>> err = eq.testing.equivariance_error(center, eq.groups.O3, x,
      ...     act_in=eq.groups.O3.act, act_out=eq.groups.O3.act, key=jax.random.key(1))
      >>> bool(err < 1e-5)
      True
    """
    return jnp.max(
        equivariance_errors(
            fn,
            group,
            x,
            act_in=act_in,
            act_out=act_out,
            key=key,
            num_samples=num_samples,
            sample=sample,
        )
    )


def default_tolerance(x: Any) -> float:
    """``1e-9`` for float64 inputs, ``1e-4`` otherwise (the project's standard).

    Example:
      >>> import jax.numpy as jnp
      >>> default_tolerance(jnp.ones(3, jnp.float32))
      0.0001
    """
    return 1e-9 if _float_dtype(x) == jnp.float64 else 1e-4


def assert_equivariant(
    fn: Callable[[Any], Any],
    group: Group,
    x: Any,
    *,
    act_in: Action,
    act_out: Action | None,
    key: jax.Array,
    num_samples: int = 16,
    tol: float | None = None,
    sample: Callable[..., Any] | None = None,
) -> float:
    """Raise ``AssertionError`` unless ``equivariance_error(...) <= tol``.

    ``tol`` defaults to ``1e-9`` for float64 inputs and ``1e-4`` otherwise.

    Returns:
      The measured error (a Python float).

    Example:
      >>> import jax, eqjax as eq
      >>> x = jax.random.normal(jax.random.key(0), (5, 3))
      >>> _ = eq.testing.assert_equivariant(lambda p: 2.0 * p, eq.groups.O3, x,
      ...     act_in=eq.groups.O3.act, act_out=eq.groups.O3.act, key=jax.random.key(1))
    """
    err = float(
        equivariance_error(
            fn,
            group,
            x,
            act_in=act_in,
            act_out=act_out,
            key=key,
            num_samples=num_samples,
            sample=sample,
        )
    )
    tol = default_tolerance(x) if tol is None else tol
    kind = "invariant" if act_out is None else "equivariant"
    if not err <= tol:
        raise AssertionError(
            f"{getattr(fn, '__name__', 'fn')} is not {kind} under {group.name}: "
            f"relative error {err:.3e} > tolerance {tol:.1e}"
        )
    return err


def assert_invariant(
    fn: Callable[[Any], Any],
    group: Group,
    x: Any,
    *,
    act_in: Action,
    key: jax.Array,
    num_samples: int = 16,
    tol: float | None = None,
    sample: Callable[..., Any] | None = None,
) -> float:
    """:func:`assert_equivariant` with the trivial output action (invariance).

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> x = jax.random.normal(jax.random.key(0), (5, 3))
      >>> _ = eq.testing.assert_invariant(lambda p: jnp.sum(p**2), eq.groups.O3, x,
      ...     act_in=eq.groups.O3.act, key=jax.random.key(1))
    """
    return assert_equivariant(
        fn,
        group,
        x,
        act_in=act_in,
        act_out=None,
        key=key,
        num_samples=num_samples,
        tol=tol,
        sample=sample,
    )
