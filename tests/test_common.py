"""The shared checks every registered transform must pass (STYLE.md §10)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq
from eqjax.testing import cast_floating, equivariance_error

ROWS = eq.testing.registered()
IDS = [r.name for r in ROWS]


def _float_leaves(tree):
    return [
        v
        for v in jax.tree_util.tree_leaves(tree)
        if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating)
    ]


def _err(row, x, key, num_samples=8):
    """Equivariance error with the transform jit-compiled (and vmapped over the
    sampled elements by ``equivariance_error``)."""
    return float(
        equivariance_error(
            jax.jit(row.fn), row.group, x, act_in=row.act_in, act_out=row.act_out,
            key=key, num_samples=num_samples, sample=row.sample,
        )
    )


def _assert_close(a, b, rtol, atol):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for u, v in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def _check_dtype(row, y, dtype):
    for leaf in _float_leaves(y):
        assert leaf.dtype == dtype, f"{row.name}: output {leaf.dtype} for input {dtype}"


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_equivariance_and_dtype_float64(row, key):
    with jax.enable_x64(True):
        x = row.make_input(key, jnp.float64)
        assert _err(row, x, jax.random.fold_in(key, 1)) < row.tol64
        _check_dtype(row, jax.jit(row.fn)(x), jnp.float64)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_equivariance_and_dtype_float32(row, key):
    x = row.make_input(key, jnp.float32)
    assert _err(row, x, jax.random.fold_in(key, 1)) < row.tol32
    _check_dtype(row, jax.jit(row.fn)(x), jnp.float32)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_vmap_matches_single_calls(row, key):
    with jax.enable_x64(True):
        xs = [row.make_input(k, jnp.float64) for k in jax.random.split(key, 3)]
        f = jax.jit(row.fn)
        single = [f(x) for x in xs]
        stacked = jax.tree_util.tree_map(lambda *v: jnp.stack(v), *xs)
        batched = jax.jit(jax.vmap(row.fn))(stacked)
        expect = jax.tree_util.tree_map(lambda *v: jnp.stack(v), *single)
        _assert_close(batched, expect, 1e-12, 1e-12)


def _grad_of(row, x):
    leaves, treedef = jax.tree_util.tree_flatten(x)
    is_f = [
        hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating) for v in leaves
    ]

    def loss(fl):
        it = iter(fl)
        full = [next(it) if f else v for v, f in zip(leaves, is_f, strict=True)]
        y = row.fn(jax.tree_util.tree_unflatten(treedef, full))
        return sum(jnp.sum(jnp.sin(v) + v**2) for v in _float_leaves(y))

    return jax.jit(jax.grad(loss))([v for v, f in zip(leaves, is_f, strict=True) if f])


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r.differentiable], ids=lambda r: r.name
)
def test_gradients_finite(row, key):
    with jax.enable_x64(True):
        inputs = [row.make_input(key, jnp.float64)]
        if row.degenerate_inputs is not None:
            inputs += list(row.degenerate_inputs(jnp.float64))
        for x in inputs:
            for g in jax.tree_util.tree_leaves(_grad_of(row, x)):
                assert bool(jnp.all(jnp.isfinite(g))), row.name


@pytest.mark.parametrize(
    "row",
    [
        r
        for r in ROWS
        if r.degenerate_inputs is not None and r.tol_degenerate is not None
    ],
    ids=lambda r: r.name,
)
def test_degenerate_inputs_equivariant(row, key):
    with jax.enable_x64(True):
        for x in row.degenerate_inputs(jnp.float64):
            x = cast_floating(x, jnp.float64)
            assert _err(row, x, key) < row.tol_degenerate, row.name


def test_registry_names_unique_and_documented():
    assert len(set(IDS)) == len(IDS) > 0
