"""The frames registry rows (a local stand-in for the shared registry test) and the
NNX wrapper."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from frames_util import equivariance_error, invariance_error

import eqjax as eq
from eqjax.testing._rows_frames import ROWS


def _err(row, x, key, n=3):
    draw = row.sample if row.sample is not None else row.group.sample
    gs = draw(key, (n,))
    dtype = jax.tree_util.tree_leaves(x)[0].dtype
    gs = jax.tree_util.tree_map(
        lambda e: e.astype(dtype) if jnp.issubdtype(e.dtype, jnp.floating) else e, gs
    )
    if row.act_out is None:
        return invariance_error(row.fn, row.act_in, gs, x)
    return equivariance_error(row.fn, row.act_in, row.act_out, gs, x)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_row(row):
    key = jax.random.key(0)
    with jax.enable_x64(True):
        x = row.make_input(key, jnp.float64)
        assert _err(row, x, jax.random.key(1)) < row.tol64
        for xd in row.degenerate_inputs(jnp.float64):
            assert _err(row, xd, jax.random.key(2)) < row.tol_degenerate
            loss = lambda x: sum(
                jnp.sum(v**2) for v in jax.tree_util.tree_leaves(row.fn(x))
            )
            g = jax.grad(loss)(xd)
            assert all(
                bool(jnp.all(jnp.isfinite(v))) for v in jax.tree_util.tree_leaves(g)
            )
    x = row.make_input(key, jnp.float32)
    assert _err(row, x, jax.random.key(1)) < row.tol32
    xs = jax.tree_util.tree_map(
        lambda *v: jnp.stack(v),
        *[row.make_input(jax.random.key(i), jnp.float32) for i in range(2)],
    )
    ys = jax.jit(jax.vmap(row.fn))(xs)
    y0 = row.fn(jax.tree_util.tree_map(lambda v: v[0], xs))
    for a, b in zip(
        jax.tree_util.tree_leaves(ys), jax.tree_util.tree_leaves(y0), strict=True
    ):
        np.testing.assert_allclose(a[0], b, rtol=1e-4, atol=1e-5)


class _MLP(nnx.Module):
    def __init__(self, n, rngs):
        self.l1 = nnx.Linear(3 * n, 32, rngs=rngs)
        self.l2 = nnx.Linear(32, 3 * n, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.gelu(self.l1(x.reshape(-1)))).reshape(x.shape)


def test_frame_averaging_module_trains_and_stays_equivariant():
    n = 5
    act = eq.frames.cloud_action(eq.groups.E3)
    model = eq.nn.FrameAveraging(
        _MLP(n, nnx.Rngs(0)), eq.frames.pca_frame("E3"), act_in=act, act_out=act
    )
    x = jax.random.normal(jax.random.key(0), (16, n, 3))
    target = 2.0 * x - x.mean(-2, keepdims=True)
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y):
        def loss(model):
            return jnp.mean((jax.vmap(model)(x) - y) ** 2)

        value, grads = nnx.value_and_grad(loss)(model)
        opt.update(model, grads)
        return value

    losses = [float(step(model, opt, x, target)) for _ in range(30)]
    assert losses[-1] < losses[0]
    gs = eq.groups.E3.sample(jax.random.key(1), (3,))
    assert equivariance_error(model, act, act, gs, x[0]) < 1e-4


def test_frame_averaging_module_stochastic():
    n = 5
    act = eq.frames.cloud_action(eq.groups.O3)
    model = eq.nn.FrameAveraging(
        _MLP(n, nnx.Rngs(0)),
        eq.frames.pca_frame("O3"),
        act_in=act,
        act_out=act,
        num_samples=2,
    )
    x = jax.random.normal(jax.random.key(0), (n, 3))
    assert model(x, key=jax.random.key(0)).shape == (n, 3)
    with pytest.raises(ValueError, match="key"):
        model(x)
    model.eval()
    gs = eq.groups.O3.sample(jax.random.key(1), (3,))
    assert equivariance_error(model, act, act, gs, x) < 1e-4
