"""Measured equivariance: the checks eqjax's own tests use, public for users.

:func:`equivariance_errors`/:func:`equivariance_error` *measure* the relative error
``‖fn(g·x) − g·fn(x)‖ / ‖g·fn(x)‖``; :func:`assert_equivariant` and
:func:`assert_invariant` *assert* it, through chex: structures, shapes and dtypes of
the two sides with ``chex.assert_trees_all_equal_shapes_and_dtypes``, and the values
with ``chex.assert_trees_all_close`` at explicit ``rtol``/``atol``. A failure names
the function (or registry row), the group, the worst sampled element and the
largest deviation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

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


def _max_abs(tree: Any, dtype) -> jax.Array:
    leaves = [jnp.asarray(v).astype(dtype) for v in jax.tree_util.tree_leaves(tree)]
    if not leaves:
        return jnp.zeros((), dtype)
    return jnp.max(jnp.stack([jnp.max(jnp.abs(v), initial=0) for v in leaves]))


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
    s = equivariance_sides(
        fn, group, x, act_in=act_in, act_out=act_out, key=key,
        num_samples=num_samples, sample=sample,
    )  # fmt: skip

    def one(lhs, rhs):
        # both sides divided by the largest |entry| of rhs first: the squares of
        # 1e30 (float32) overflow, those of 1e-30 underflow
        c = _max_abs(rhs, dtype)
        c = jnp.where((c > 0) & jnp.isfinite(c), c, 1).astype(dtype)
        unit = lambda t: jax.tree_util.tree_map(lambda v: jnp.asarray(v) / c, t)
        num = _sq_norm(_diff(unit(lhs), unit(rhs)), dtype)
        den = _sq_norm(unit(rhs), dtype)
        return jnp.sqrt(num) / jnp.maximum(jnp.sqrt(den), jnp.finfo(dtype).tiny)

    return jax.vmap(one)(s.lhs, s.rhs)


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


class Sides(NamedTuple):
    """Both sides of an equivariance check over ``m`` sampled elements.

    Attributes:
      elements: the sampled group elements (leading axis ``m``).
      lhs: ``fn(g·x)`` for each element (pytree, leaves ``(m, ...)``).
      rhs: ``g·fn(x)`` (``fn(x)`` broadcast for invariance), same structure.

    Example:
      >>> import jax.numpy as jnp
      >>> s = Sides(jnp.eye(3)[None], jnp.ones((1, 2)), jnp.ones((1, 2)))
      >>> s.lhs.shape
      (1, 2)
    """

    elements: Any
    lhs: Any
    rhs: Any


def equivariance_sides(
    fn: Callable[[Any], Any],
    group: Group,
    x: Any,
    *,
    act_in: Action,
    act_out: Action | None = None,
    key: jax.Array,
    num_samples: int = 16,
    sample: Callable[..., Any] | None = None,
    fx: Any = None,
) -> Sides:
    """``fn(g·x)`` and ``g·fn(x)`` for ``num_samples`` sampled elements;
    traceable, so a caller can ``jax.jit`` the whole check. ``fn`` is traced once:
    one ``vmap`` over ``[x, g₁·x, …, g_m·x]`` (:func:`transformed_inputs`), which
    gives ``fn(x)`` and every ``fn(g·x)`` (then :func:`sides_from_outputs`).
    ``fx``: ``fn(x)`` when the caller has it already (the ``vmap`` then runs over
    the ``g·x`` only).

    Example:
      >>> import jax, eqjax as eq
      >>> x = jax.random.normal(jax.random.key(0), (4, 3))
      >>> s = eq.testing.equivariance_sides(lambda p: p, eq.groups.O3, x,
      ...     act_in=eq.groups.O3.act, act_out=eq.groups.O3.act,
      ...     key=jax.random.key(1), num_samples=2)
      >>> s.lhs.shape, s.rhs.shape
      ((2, 4, 3), (2, 4, 3))
    """
    gs, xs = transformed_inputs(
        group, x, act_in=act_in, key=key, num_samples=num_samples, sample=sample
    )
    if fx is None:
        ys = jax.vmap(fn)(xs)
    else:
        lhs = jax.vmap(fn)(jax.tree_util.tree_map(lambda v: v[1:], xs))
        ys = jax.tree_util.tree_map(
            lambda a, b: jnp.concatenate([jnp.asarray(a)[None], b]), fx, lhs
        )
    return sides_from_outputs(gs, ys, act_out=act_out)


def transformed_inputs(
    group: Group,
    x: Any,
    *,
    act_in: Action,
    key: jax.Array,
    num_samples: int = 16,
    sample: Callable[..., Any] | None = None,
) -> tuple[Any, Any]:
    """``(gs, xs)``: ``num_samples`` elements drawn from ``group`` (or by
    ``sample(key, shape, dtype)``), cast to ``x``'s floating dtype, and the inputs
    ``xs = [x, g₁·x, …, g_m·x]`` stacked on a new leading axis (``m + 1``; every
    leaf of ``x``, integer leaves repeated). Evaluate ``fn`` on ``xs`` with one
    ``vmap`` and pass the outputs to :func:`sides_from_outputs`: one trace of
    ``fn`` for the whole check (a program that also differentiates ``fn(x)`` can
    take the ``vjp`` of that one ``vmap``).

    Example:
      >>> import jax, eqjax as eq
      >>> gs, xs = eq.testing.transformed_inputs(eq.groups.O3, jax.numpy.ones((4, 3)),
      ...     act_in=eq.groups.O3.act, key=jax.random.key(0), num_samples=2)
      >>> gs.shape, xs.shape
      ((2, 3, 3), (3, 4, 3))
    """
    m = _num_samples(num_samples)
    if not isinstance(group, Group):
        raise TypeError(
            f"equivariance check: group must be an eqjax.groups.Group, got "
            f"{type(group).__name__}"
        )
    draw = sample if sample is not None else group.sample
    gs = cast_floating(draw(key, (m,)), _float_dtype(x))
    gx = jax.vmap(lambda g: act_in(g, x))(gs)
    xs = jax.tree_util.tree_map(
        lambda a, b: jnp.concatenate([jnp.asarray(a)[None], b]), x, gx
    )
    return gs, xs


def sides_from_outputs(gs: Any, ys: Any, *, act_out: Action | None = None) -> Sides:
    """The :class:`Sides` of a check from ``fn``'s outputs ``ys`` on the
    :func:`transformed_inputs` (``ys[0] = fn(x)``, ``ys[1:] = fn(g·x)``): ``lhs =
    ys[1:]``, ``rhs = g·ys[0]`` (``ys[0]`` repeated when ``act_out`` is ``None``,
    an invariance check).

    Example:
      >>> import jax.numpy as jnp, eqjax as eq
      >>> s = eq.testing.sides_from_outputs(jnp.eye(3)[None], jnp.ones((2, 5)))
      >>> s.lhs.shape, s.rhs.shape
      ((1, 5), (1, 5))
    """
    g_leaves = jax.tree_util.tree_leaves(gs)
    if not g_leaves:
        raise ValueError("sides_from_outputs: gs has no array leaves")
    m = int(np.shape(g_leaves[0])[0]) if np.ndim(g_leaves[0]) else -1
    bad = [
        np.shape(v)
        for v in jax.tree_util.tree_leaves(ys)
        if np.ndim(v) == 0 or np.shape(v)[0] != m + 1
    ]
    if m < 1 or bad:
        raise ValueError(
            f"sides_from_outputs: outputs need a leading axis of m + 1 = {m + 1} "
            f"(fn(x) then fn(g·x) for the {m} elements of gs), got leaves of shape "
            f"{bad[:3]}"
        )
    if act_out is not None and not callable(act_out):
        raise TypeError(
            f"act_out must be callable or None, got {type(act_out).__name__}"
        )
    y = jax.tree_util.tree_map(lambda v: v[0], ys)
    lhs = jax.tree_util.tree_map(lambda v: v[1:], ys)
    if act_out is None:
        rhs = jax.tree_util.tree_map(
            lambda v: jnp.broadcast_to(v, (m, *jnp.shape(v))), y
        )
    else:
        rhs = jax.vmap(lambda g: act_out(g, y))(gs)
    return Sides(gs, lhs, rhs)


def _num_samples(num_samples: Any) -> int:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int | np.integer):
        raise TypeError(
            f"num_samples must be an int, got {num_samples!r} "
            f"({type(num_samples).__name__})"
        )
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    return int(num_samples)


def _describe_element(g: Any, i: int) -> str:
    parts = []
    for leaf in jax.tree_util.tree_leaves(g):
        v = np.asarray(leaf[i])
        if v.ndim == 2 and v.shape[0] == v.shape[1] and v.dtype.kind == "f":
            det = np.linalg.det(v.astype(np.float64))
            parts.append(f"{np.array2string(v, precision=4)} (det {det:+.3f})")
        else:
            parts.append(np.array2string(v, precision=4, threshold=24))
    return ", ".join(parts)


def _largest_deviation(paths, lhs, rhs) -> str:
    best, text = -1.0, "no output entries"
    for path, a, b in zip(paths, lhs, rhs, strict=True):
        if a.size == 0:
            continue
        d = np.abs(a - b)
        d = np.where(np.isnan(d), np.inf, d)
        j = np.unravel_index(int(np.argmax(d)), d.shape) if d.ndim else ()
        if float(d[j]) > best:
            best = float(d[j])
            where = jax.tree_util.keystr(path) or "output"
            text = (
                f"|Δ| = {best:.3e} at {where}{[int(k) for k in j] if j else ''} "
                f"(fn(g·x) = {float(a[j]):.6g}, g·fn(x) = {float(b[j]):.6g})"
            )
    return text


def assert_sides_close(
    sides: Sides,
    *,
    tol: float,
    rtol: float | None = None,
    atol: float | None = None,
    dtype: Any = None,
    name: str = "fn",
    group_name: str = "the group",
    invariant: bool = False,
) -> float:
    """The assertion of :func:`assert_equivariant`, on precomputed
    :class:`Sides` (from :func:`equivariance_sides`, possibly jitted).

    For every sampled element ``g`` both must hold:
    ``chex.assert_trees_all_close(fn(g·x), g·fn(x), rtol=rtol, atol=atol)``
    elementwise (defaults ``rtol = tol``, ``atol = tol · max|g·fn(x)|``: entries near
    zero compare at the output's scale), and the relative error over the whole
    output, ``‖fn(g·x) − g·fn(x)‖ / ‖g·fn(x)‖ <= tol``. Before that,
    ``chex.assert_trees_all_equal_shapes_and_dtypes`` on the two sides, and, when
    ``dtype`` is given, ``chex.assert_type`` of every floating output leaf.

    Returns:
      The largest relative error (a Python float).

    Raises:
      AssertionError: naming ``name``, the group, the worst failing element and
        the largest deviation.

    Example:
      >>> import jax, eqjax as eq
      >>> x = jax.random.normal(jax.random.key(0), (4, 3))
      >>> s = eq.testing.equivariance_sides(lambda p: p + 1.0, eq.groups.O3, x,
      ...     act_in=eq.groups.O3.act, act_out=eq.groups.O3.act, key=jax.random.key(1))
      >>> eq.testing.assert_sides_close(s, tol=1e-4)
      Traceback (most recent call last):
      ...
      AssertionError: fn is not equivariant under the group: ...
    """
    if not isinstance(sides, Sides):
        raise TypeError(
            f"assert_sides_close expects the Sides of equivariance_sides, got "
            f"{type(sides).__name__}"
        )
    kind = "invariant" if invariant else "equivariant"
    head = f"{name} is not {kind} under {group_name}"
    try:
        chex.assert_trees_all_equal_shapes_and_dtypes(sides.lhs, sides.rhs)
    except AssertionError as e:
        raise AssertionError(
            f"{head}: fn(g·x) and g·fn(x) differ in structure, shape or dtype: {e}"
        ) from None
    if dtype is not None:
        for leaf in jax.tree_util.tree_leaves(sides.lhs):
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                try:
                    chex.assert_type(leaf, dtype)
                except AssertionError as e:
                    raise AssertionError(f"{name}: output dtype: {e}") from None
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(sides.rhs)[0]]
    lhs = [np.asarray(v) for v in jax.tree_util.tree_leaves(sides.lhs)]
    rhs = [np.asarray(v) for v in jax.tree_util.tree_leaves(sides.rhs)]
    m = int(np.shape(jax.tree_util.tree_leaves(sides.elements)[0])[0])
    errs, failures = np.zeros(m), []
    for i in range(m):
        a = [v[i].astype(np.float64) for v in lhs]
        b = [v[i].astype(np.float64) for v in rhs]
        num = sum(float(np.sum((u - v) ** 2)) for u, v in zip(a, b, strict=True))
        den = sum(float(np.sum(v**2)) for v in b)
        errs[i] = np.sqrt(num) / max(np.sqrt(den), np.finfo(np.float64).tiny)
        if np.isnan(errs[i]):
            errs[i] = np.inf
        scale = max((float(np.max(np.abs(v))) for v in b if v.size), default=0.0)
        try:
            chex.assert_trees_all_close(
                a,
                b,
                rtol=tol if rtol is None else rtol,
                atol=tol * scale if atol is None else atol,
            )
            close = True
        except AssertionError:
            close = False
        if not (close and errs[i] <= tol):
            failures.append(i)
    if failures:
        i = max(failures, key=lambda j: errs[j])
        raise AssertionError(
            f"{head}: {len(failures)} of {m} sampled elements fail; worst element "
            f"#{i}: g = {_describe_element(sides.elements, i)}; relative error "
            f"{errs[i]:.3e} (tolerance {tol:.1e}); largest deviation "
            f"{_largest_deviation(paths, [v[i] for v in lhs], [v[i] for v in rhs])}"
        )
    return float(np.max(errs)) if m else 0.0


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
    rtol: float | None = None,
    atol: float | None = None,
    dtype: Any = None,
    name: str | None = None,
    jit: bool = True,
) -> float:
    """Assert ``fn(g·x) == g·fn(x)`` for ``num_samples`` sampled elements, via chex.

    :func:`equivariance_sides` (one program, jit-compiled unless ``jit=False``;
    under ``chex.fake_jit()`` it runs eagerly) followed by
    :func:`assert_sides_close`: chex shape/dtype checks of both sides, then
    ``chex.assert_trees_all_close`` elementwise (``rtol = tol``, ``atol = tol ·
    max|g·fn(x)|`` unless given) and the relative error over the output pytree
    ``‖fn(g·x) − g·fn(x)‖ / ‖g·fn(x)‖ <= tol``, for every element. ``tol``
    defaults to ``1e-9`` for float64 inputs and ``1e-4`` otherwise.

    Args:
      fn, group, x, act_in, act_out, key, num_samples, sample: as in
        :func:`equivariance_error` (``act_out=None``: invariance).
      tol: relative tolerance.
      rtol, atol: explicit elementwise tolerances for ``chex.assert_trees_all_close``.
      dtype: if given, every floating leaf of ``fn(g·x)`` must have this dtype.
      name: what to call ``fn`` in the error (default: its ``__name__``).
      jit: compile the check as one program (``fn`` must be traceable).

    Returns:
      The largest relative error measured (a Python float).

    Raises:
      AssertionError: naming ``fn``, the group, the worst sampled element and the
        largest deviation.

    Example:
      >>> import jax, eqjax as eq
      >>> x = jax.random.normal(jax.random.key(0), (5, 3))
      >>> _ = eq.testing.assert_equivariant(lambda p: 2.0 * p, eq.groups.O3, x,
      ...     act_in=eq.groups.O3.act, act_out=eq.groups.O3.act, key=jax.random.key(1))
    """
    tol = default_tolerance(x) if tol is None else float(tol)

    def sides(x, key):
        return equivariance_sides(
            fn,
            group,
            x,
            act_in=act_in,
            act_out=act_out,
            key=key,
            num_samples=num_samples,
            sample=sample,
        )

    if not (tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    s = (jax.jit(sides) if jit else sides)(x, key)
    try:
        return assert_sides_close(
            s,
            tol=tol,
            rtol=rtol,
            atol=atol,
            dtype=dtype,
            name=name or getattr(fn, "__name__", "fn"),
            group_name=group.name,
            invariant=act_out is None,
        )
    except AssertionError as failure:
        # The error path only: were the sampled elements in the group at all (a
        # custom ``sample=`` drawing reflections for SO(3), non-orthogonal
        # matrices, ...)? Group.validate checks membership on concrete arrays.
        try:
            group.validate(s.elements)
        except (ValueError, TypeError) as bad:
            raise AssertionError(
                f"{failure}\nnote: the sampled elements are not valid elements of "
                f"{group.name}: {bad}"
            ) from None
        raise


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
    rtol: float | None = None,
    atol: float | None = None,
    dtype: Any = None,
    name: str | None = None,
    jit: bool = True,
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
        rtol=rtol,
        atol=atol,
        dtype=dtype,
        name=name,
        jit=jit,
    )
