"""The NNX wrapper of frame averaging (the registry rows are checked by
tests/test_common.py)."""

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx
from frames_util import elements, equivariance_error, normal

import eqjax as eq


class _MLP(nnx.Module):
    def __init__(self, n, rngs):
        self.l1 = nnx.Linear(3 * n, 32, rngs=rngs)
        self.l2 = nnx.Linear(32, 3 * n, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.gelu(self.l1(x.reshape(-1)))).reshape(x.shape)


def test_frame_averaging_module_trains_and_stays_equivariant():
    n = 5
    act = eq.groups.cloud_action(eq.groups.E3)
    model = eq.nn.FrameAveraging(
        _MLP(n, nnx.Rngs(0)),
        eq.frames.plain_pca_frame(eq.groups.E3),  # pca_frame: test_clouds.py
        act_in=act,
        act_out=act,
    )
    x = normal(0, (16, n, 3))
    target = 2.0 * x - x.mean(-2, keepdims=True)
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y):
        def loss(model):
            return jnp.mean((jax.vmap(model)(x) - y) ** 2)

        value, grads = nnx.value_and_grad(loss)(model)
        opt.update(model, grads)
        return value

    losses = [float(step(model, opt, x, target)) for _ in range(10)]
    assert losses[-1] < losses[0]
    gs = elements(eq.groups.E3, 3, 1)
    assert equivariance_error(model, act, act, gs, x[0]) < 1e-4


def test_frame_averaging_module_stochastic():
    n = 5
    act = eq.frames.cloud_action(eq.groups.O3)  # the compatibility alias
    model = eq.nn.FrameAveraging(
        _MLP(n, nnx.Rngs(0)),
        eq.frames.pca_frame("O3"),  # the string alias
        act_in=act,
        act_out=act,
        num_samples=2,
    )
    x = normal(0, (n, 3))
    assert jax.eval_shape(lambda: model(x, key=jax.random.key(0))).shape == (n, 3)
    with pytest.raises(ValueError, match="key"):
        model(x)
    model.eval()
    gs = elements(eq.groups.O3, 3, 1)
    assert equivariance_error(model, act, act, gs, x) < 1e-4


def test_frame_averaging_module_passes_its_options():
    """``chunk_size``/``remat``/``stored_elements`` and ``group=`` reach the
    module's frame average: the chunked, checkpointed program (the default is one
    vmap), the same values, and a bare frame at call time inverted through
    ``group=``."""
    n = 5
    E3 = eq.groups.E3
    act = eq.groups.cloud_action(E3)
    frame = eq.frames.plain_pca_frame(E3)
    backbone = _MLP(n, nnx.Rngs(0))
    default = eq.nn.FrameAveraging(backbone, frame, act_in=act, act_out=act)
    chunked = eq.nn.FrameAveraging(
        backbone,
        frame,
        act_in=act,
        act_out=act,
        chunk_size=1,
        remat=True,
        stored_elements=2,
    )
    bare = eq.nn.FrameAveraging(backbone, None, act_in=act, act_out=act, group=E3)
    x = normal(0, (n, 3))
    program = lambda m: str(jax.make_jaxpr(lambda x: m(x))(x))
    assert "scan" in program(chunked) and "remat" in program(chunked)
    assert "scan" not in program(default) and "remat" not in program(default)

    @nnx.jit
    def outputs(default, chunked, bare, x):
        hand_built = eq.frames.Frame(*frame(x))  # no group
        return default(x), chunked(x), bare(x, frame=hand_built)

    y0, y1, y2 = outputs(default, chunked, bare, x)
    assert jnp.allclose(y1, y0, rtol=1e-5, atol=1e-6)
    assert jnp.allclose(y2, y0, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("chunk_size,remat", [(1, True), (2, False)])
def test_frame_averaging_module_schedules_agree(chunk_size, remat):
    """``chunk_size``/``remat`` reach the module's frame average: the same loss and
    parameter gradients as one vmap without checkpointing (float64)."""
    with jax.enable_x64(True):
        n = 5
        act = eq.groups.cloud_action(eq.groups.E3)
        x = normal(0, (6, n, 3), jnp.float64)

        def grads(**kw):
            backbone = _MLP(n, nnx.Rngs(0))
            for layer in (backbone.l1, backbone.l2):
                layer.kernel.set_value(layer.kernel.get_value().astype(jnp.float64))
                layer.bias.set_value(layer.bias.get_value().astype(jnp.float64))
            model = eq.nn.FrameAveraging(
                backbone,
                eq.frames.plain_pca_frame(eq.groups.E3),
                act_in=act,
                act_out=act,
                **kw,
            )
            loss = lambda m: jnp.sum(jnp.sin(jax.vmap(m)(x)))
            value, g = nnx.jit(nnx.value_and_grad(loss))(model)
            return value, jax.tree_util.tree_leaves(nnx.state(g))

        v0, g0 = grads(chunk_size=None, remat=False)
        v1, g1 = grads(chunk_size=chunk_size, remat=remat)
        assert abs(float(v1 - v0)) <= 1e-12 * abs(float(v0))
        for a, b in zip(g1, g0, strict=True):
            assert jnp.allclose(a, b, rtol=1e-10, atol=1e-12)
