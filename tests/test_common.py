"""The shared checks every registered transform must pass (STYLE.md §10).

Rows come from each area's ``eqjax/<area>/_rows.py`` through
``eq.testing.registered()``: a new area's rows appear here with no edit. Each
equivariance check runs in float64 and float32 jit-compiled, and in float64 in a
second variant in the spirit of ``chex.variants``: ``nojit`` (under
``chex.fake_jit()``, so every ``jax.jit`` inside the library runs eagerly too).
"""

import contextlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq
from eqjax.testing import (
    assert_equivariant,
    assert_sides_close,
    cast_floating,
    sides_from_outputs,
    transformed_inputs,
)

ROWS = eq.testing.registered()
IDS = [r.name for r in ROWS]
# rows marked ``slow`` (Transform.slow) run their shared checks in the slow tier
TIERED_ROWS = [
    pytest.param(r, id=r.name, marks=[pytest.mark.slow] if r.slow else []) for r in ROWS
]

VARIANTS = {
    "jit": (jax.jit, contextlib.nullcontext),
    "nojit": (lambda f: f, chex.fake_jit),
}
"""``(wrap, context)``: how the transform is called, and the context it runs in."""

# Every row in both variants and both dtypes. The eager ("nojit") runs dispatch
# every primitive on its own (seconds to a minute a row on 2 cores): slow tier.
# The jit float64 check is slow-tier too: the fast tier's float64 equivariance
# check (same elements' count, same tolerance, jit-compiled, output dtype checked)
# runs inside test_vmap_gradients_and_degenerate_inputs' one program, so a third
# program per row would only compile the same check again unbatched.
# The eager variant runs in float64 only: what it adds over the jit runs is the
# op-by-op code path (no tracing of the library's inner jits), the same in either
# dtype, and float32's tolerance is checked under jit; eager float32 cost 10-35 s
# a row on 2 cores (half the slow tier's registry time).
FAST_CASES = {("jit", "float32")}
CASES = [
    pytest.param(
        variant,
        dtype,
        marks=[] if (variant, dtype) in FAST_CASES else [pytest.mark.slow],
    )
    for variant, dtype in (("jit", "float32"), ("jit", "float64"), ("nojit", "float64"))
]


def _float_leaves(tree):
    return [
        v
        for v in jax.tree_util.tree_leaves(tree)
        if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating)
    ]


def _stack(trees):
    return jax.tree_util.tree_map(lambda *v: jnp.stack(v), *trees)


@pytest.mark.parametrize(("variant", "dtype"), CASES)
@pytest.mark.parametrize("row", TIERED_ROWS)
def test_equivariance_and_dtype(row, variant, dtype, key):
    """fn(g·x) == g·fn(x) through chex at the row's tolerance, and dtype in ==
    dtype out (one compiled program per row and dtype)."""
    wrap, context = VARIANTS[variant]
    dt = jnp.dtype(dtype)
    tol = row.tol64 if dtype == "float64" else row.tol32
    with jax.enable_x64(dtype == "float64"), context():
        x = row.make_input(key, dt)
        assert_equivariant(
            wrap(row.fn),
            row.group,
            x,
            act_in=row.act_in,
            act_out=row.act_out,
            key=jax.random.fold_in(key, 1),
            num_samples=8,
            sample=row.sample,
            tol=tol,
            dtype=dt,
            name=row.name,
            jit=variant == "jit",
        )


def _value_and_grad(f, x, cotangent_mask=None):
    """``(f(x), gradient of Σ m·(sin(y) + y²) over f's floating outputs y with
    respect to the floating leaves of x)``, with one forward trace of ``f`` (a
    ``vjp``: every trace of ``f`` is compiled). ``cotangent_mask(v)``: the weight
    ``m`` of each output leaf's entries (default 1)."""
    leaves, treedef = jax.tree_util.tree_flatten(x)
    is_f = [
        hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating) for v in leaves
    ]

    def apply(fl):
        it = iter(fl)
        full = [next(it) if f else v for v, f in zip(leaves, is_f, strict=True)]
        return f(jax.tree_util.tree_unflatten(treedef, full))

    y, vjp = jax.vjp(apply, [v for v, f in zip(leaves, is_f, strict=True) if f])

    def cotangent(v):  # d/dv Σ sin(v) + v² on floating leaves; zeros elsewhere
        if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating):
            c = jnp.cos(v) + 2 * v
            return c if cotangent_mask is None else c * cotangent_mask(v)
        return np.zeros(np.shape(v), jax.dtypes.float0)

    (grad,) = vjp(jax.tree_util.tree_map(cotangent, y))
    return y, grad


def _first_only(v):
    """Weight 1 on the first entry of the leading axis, 0 elsewhere."""
    return (
        (jnp.arange(v.shape[0]) == 0)
        .astype(v.dtype)
        .reshape((-1,) + (1,) * (v.ndim - 1))
    )


def _signature(x):
    leaves, treedef = jax.tree_util.tree_flatten(x)
    return treedef, tuple((jnp.shape(v), jnp.result_type(v)) for v in leaves)


def _groups_of_equal_shape(inputs):
    """``[(indices, stacked inputs)]``: inputs with one structure, shapes and dtypes
    stacked along a new leading axis, in order of first appearance."""
    groups: dict = {}
    for i, x in enumerate(inputs):
        groups.setdefault(_signature(x), []).append(i)
    return [(idx, _stack([inputs[i] for i in idx])) for idx in groups.values()]


@pytest.mark.parametrize("row", TIERED_ROWS)
def test_vmap_gradients_and_degenerate_inputs(row, key):
    """In float64, one compiled program per row: ``vmap`` over two generic and the
    row's degenerate inputs (stacked where shapes agree) equals an unbatched call on
    the first generic input (to 1e-12), whose floating outputs are float64;
    gradients are finite on every input; and fn(g·x) == g·fn(x) for 8 sampled
    elements on the generic inputs at ``tol64`` (the fast tier's float64
    equivariance check) and on the degenerate ones at ``tol_degenerate``."""
    with jax.enable_x64(True):
        k1, k2, k_sample = jax.random.split(key, 3)
        generic = [row.make_input(k, jnp.float64) for k in (k1, k2)]
        degenerate = []
        if row.degenerate_inputs is not None:
            degenerate = [
                cast_floating(x, jnp.float64)
                for x in row.degenerate_inputs(jnp.float64)
            ]
        inputs = generic + degenerate
        tols = [row.tol64] * len(generic) + [row.tol_degenerate] * len(degenerate)
        check_eq = any(t is not None for t in tols)
        groups = _groups_of_equal_shape(inputs)

        def one(x, key):
            # fn traced once: one vmap over [x, g1·x, ..., g8·x] gives fn(x) and
            # both sides; its vjp (cotangent on fn(x) only) gives the gradient at x
            def inputs(x):
                return transformed_inputs(
                    row.group,
                    x,
                    act_in=row.act_in,
                    key=key,
                    num_samples=8,
                    sample=row.sample,
                )

            def forward(x):
                return jax.vmap(row.fn)(inputs(x)[1]) if check_eq else row.fn(x)

            out = {}
            if row.differentiable:
                mask = _first_only if check_eq else None
                ys, out["grad"] = _value_and_grad(forward, x, cotangent_mask=mask)
            else:
                ys = forward(x)
            if check_eq:
                gs = inputs(x)[0]  # the same draws (same key)
                out["sides"] = sides_from_outputs(gs, ys, act_out=row.act_out)
                out["y"] = jax.tree_util.tree_map(lambda v: v[0], ys)
            else:
                out["y"] = ys
            return out

        def program(stacks, singles, key):
            batched = [jax.vmap(one, in_axes=(0, None))(xs, key) for xs in stacks]
            return batched, [row.fn(x) for x in singles]

        singles = generic[:1]
        batched, single = jax.jit(program)([xs for _, xs in groups], singles, k_sample)

        def take(tree, j):
            return jax.tree_util.tree_map(lambda v: v[j], tree)

        where = {
            i: (g, j) for g, (idx, _) in enumerate(groups) for j, i in enumerate(idx)
        }
        for i, y1 in enumerate(single):
            g, j = where[i]
            yb = take(batched[g]["y"], j)
            for leaf in _float_leaves(y1):  # dtype in == dtype out
                chex.assert_type(leaf, jnp.float64)
            chex.assert_trees_all_equal_shapes_and_dtypes(yb, y1)
            chex.assert_trees_all_close(yb, y1, rtol=1e-12, atol=1e-12)
        for i, tol in enumerate(tols):
            g, j = where[i]
            out = take(batched[g], j)
            if row.differentiable:
                chex.assert_tree_all_finite(out["grad"])
            if tol is None:
                continue
            kind = "generic" if i < len(generic) else "degenerate"
            assert_sides_close(
                out["sides"],
                tol=tol,
                name=f"{row.name} ({kind} input {i})",
                group_name=row.group.name,
                invariant=row.act_out is None,
            )


def test_registry_names_unique_and_every_area_has_rows():
    assert len(set(IDS)) == len(IDS) > 0
    areas = {name.split(".")[0] for name in IDS}
    assert areas == set(eq.testing.discover_areas())
