"""The shared checks every registered transform must pass (STYLE.md §10).

Rows come from each area's ``eqjax/<area>/_rows.py`` through
``eq.testing.registered()``: a new area's rows appear here with no edit. Each
equivariance check runs in float64 and float32, and in two variants in the spirit
of ``chex.variants``: ``jit`` (the transform jit-compiled) and ``nojit`` (under
``chex.fake_jit()``, so every ``jax.jit`` inside the library runs eagerly too).
"""

import contextlib

import chex
import jax
import jax.numpy as jnp
import pytest

import eqjax as eq
from eqjax.testing import (
    assert_equivariant,
    assert_sides_close,
    cast_floating,
    equivariance_sides,
)

ROWS = eq.testing.registered()
IDS = [r.name for r in ROWS]

VARIANTS = {
    "jit": (jax.jit, contextlib.nullcontext),
    "nojit": (lambda f: f, chex.fake_jit),
}
"""``(wrap, context)``: how the transform is called, and the context it runs in."""

# Every row in both variants and both dtypes. The eager ("nojit") runs dispatch
# every primitive on its own (seconds to a minute a row on 2 cores): slow tier.
CASES = [
    pytest.param(variant, dtype, marks=[pytest.mark.slow] if variant == "nojit" else [])
    for variant in VARIANTS
    for dtype in ("float64", "float32")
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
@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_equivariance_dtype_and_vmap(row, variant, dtype, key):
    """fn(g·x) == g·fn(x) through chex at the row's tolerance, dtype in == dtype
    out, and (float64) ``vmap`` over inputs equals one call per input."""
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
        if (variant, dtype) == ("jit", "float64"):
            xs = _stack([row.make_input(k, dt) for k in jax.random.split(key, 3)])
            both = wrap(lambda v: (jax.vmap(row.fn)(v), jax.lax.map(row.fn, v)))
            batched, single = both(xs)
            chex.assert_trees_all_equal_shapes_and_dtypes(batched, single)
            chex.assert_trees_all_close(batched, single, rtol=1e-12, atol=1e-12)


def _loss(row, x):
    """A scalar of the output, differentiated w.r.t. the floating leaves of ``x``."""
    leaves, treedef = jax.tree_util.tree_flatten(x)
    is_f = [
        hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating) for v in leaves
    ]

    def loss(fl):
        it = iter(fl)
        full = [next(it) if f else v for v, f in zip(leaves, is_f, strict=True)]
        y = row.fn(jax.tree_util.tree_unflatten(treedef, full))
        return sum(jnp.sum(jnp.sin(v) + v**2) for v in _float_leaves(y))

    return loss, [v for v, f in zip(leaves, is_f, strict=True) if f]


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_degenerate_inputs_and_gradients(row, key):
    """Finite gradients on the generic and every degenerate input; equivariance on
    the degenerate inputs at ``tol_degenerate`` (all in one compiled program)."""
    with jax.enable_x64(True):
        inputs = [row.make_input(key, jnp.float64)]
        if row.degenerate_inputs is not None:
            inputs += [
                cast_floating(x, jnp.float64)
                for x in row.degenerate_inputs(jnp.float64)
            ]
        check_eq = row.tol_degenerate is not None

        def program(inputs, key):
            grads, sides = [], []
            for i, x in enumerate(inputs):
                if row.differentiable:
                    loss, fl = _loss(row, x)
                    grads.append(jax.grad(loss)(fl))
                if check_eq and i > 0:
                    sides.append(
                        equivariance_sides(
                            row.fn,
                            row.group,
                            x,
                            act_in=row.act_in,
                            act_out=row.act_out,
                            key=jax.random.fold_in(key, i),
                            num_samples=8,
                            sample=row.sample,
                        )
                    )
            return grads, sides

        grads, sides = jax.jit(program)(inputs, key)
        for g in grads:
            chex.assert_tree_all_finite(g)
        for i, s in enumerate(sides, start=1):
            assert_sides_close(
                s,
                tol=row.tol_degenerate,
                name=f"{row.name} (degenerate input {i})",
                group_name=row.group.name,
                invariant=row.act_out is None,
            )


def test_registry_names_unique_and_every_area_has_rows():
    assert len(set(IDS)) == len(IDS) > 0
    areas = {name.split(".")[0] for name in IDS}
    assert areas == set(eq.testing.discover_areas())
