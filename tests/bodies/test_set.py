"""SET (Chen et al., ICML 2023): O_g(3) symmetry with gravity fixed, the off-axis
control that must fail, scale robustness, the NNX module and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq
from eqjax.bodies import _rows

B = eq.bodies
GRAVITY = jnp.asarray(_rows._GRAVITY)


def _rot(Q, v):
    """``(n, K, V, 3)``: each of ``Q (n, 3, 3)`` applied to ``v (K, V, 3)``."""
    return jnp.einsum("nij,kvj->nkvi", Q, v)


def test_set_gravity_fixed_symmetry_and_off_axis_control(key):
    """O_g(3) (with reflections) leaves scalars unchanged and rotates vectors with
    gravity fixed (float64 < 1e-9); rotating everything but gravity off the axis
    changes the outputs (the model uses gravity); finite float32 outputs at input
    scales 1e±6 (vectors and gravity scaled). One program, SET traced twice."""
    params = _rows._set_params()
    Og = eq.groups.axis_subgroup(_rows._GRAVITY)

    def model(v, s, g):
        return B.set_model(params, v, s, g)

    def program(key):
        v, s, _ = _rows._set_input(key, jnp.float64)
        k1, k2 = jax.random.split(jax.random.fold_in(key, 1))
        Q_og = Og.sample(k1, (6,), jnp.float64)
        Q = jnp.concatenate([Q_og, eq.groups.SO3.sample(k2, (6,), jnp.float64)])
        vs = jnp.concatenate([v[None], _rot(Q, v)])
        (vo, so) = jax.vmap(model, in_axes=(0, None, None))(vs, s, GRAVITY)
        err_v = jnp.max(jnp.abs(vo[1:] - _rot(Q, vo[0])), axis=(1, 2, 3))
        err_s = jnp.max(jnp.abs(so[1:] - so[:1]), axis=(1, 2))
        scale = jnp.maximum(jnp.max(jnp.abs(vo[0])), jnp.max(jnp.abs(so[0])))
        c = jnp.asarray([1e-6, 1.0, 1e6], jnp.float32)
        v32, s32, g32 = v.astype(jnp.float32), s.astype(jnp.float32), GRAVITY
        scaled = jax.vmap(model, in_axes=(0, None, 0))(
            c[:, None, None, None] * v32[None], s32, c[:, None] * g32[None]
        )
        return (err_v + err_s) / scale, jnp.linalg.det(Q_og), scaled

    with jax.enable_x64(True):
        err, det, scaled = jax.jit(program)(key)
    assert float(jnp.max(err[:6])) < 1e-9, err
    assert bool(jnp.any(det < 0))  # reflections through planes containing gravity
    assert float(jnp.min(err[6:])) > 1e-3, err  # control: off-axis changes it
    for leaf in scaled:
        assert leaf.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(leaf)))
    # the vector outputs scale with the inputs, the scalars stay bounded
    vn = jnp.max(jnp.abs(scaled[0]), axis=(1, 2, 3))
    assert float(vn[0]) < 1e-4 < 1e4 < float(vn[2])


def test_set_nnx_module_batch_and_mask():
    """eq.nn.SET on a batch with padding: padded parts get zero outputs and their
    values do not reach the real parts (same outputs for two different paddings)."""
    from flax import nnx

    model = nnx.jit(
        lambda: eq.nn.SET(2, 3, 1, 2, hidden_vectors=4, hidden_scalars=8,
                          num_layers=1, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    )()  # fmt: skip
    rng = np.random.default_rng(0)
    v = jnp.asarray(rng.normal(size=(2, 5, 2, 3)), jnp.float32)
    v = v.at[1, 3:].set(100.0)  # a second padding of the same body
    s = jnp.asarray(rng.normal(size=(1, 5, 3)).repeat(2, 0), jnp.float32)
    v = v.at[1, :3].set(v[0, :3])
    mask = jnp.array([[True] * 3 + [False] * 2] * 2)
    vm, sm = nnx.jit(lambda m, v, s: m(v, s, GRAVITY, mask))(model, v, s)
    assert vm.shape == (2, 5, 1, 3) and sm.shape == (2, 5, 2)
    np.testing.assert_allclose(vm[1], vm[0], atol=1e-6)
    np.testing.assert_allclose(sm[1], sm[0], atol=1e-6)
    assert not np.any(np.asarray(vm[:, 3:])) and not np.any(np.asarray(sm[:, 3:]))
    assert np.any(np.asarray(vm[:, :3])) and np.any(np.asarray(sm[:, :3]))


def test_set_bad_input():
    params = _rows._set_params()
    v, s = jnp.ones((5, 2, 3)), jnp.ones((5, 3))
    with pytest.raises(ValueError, match="zero gravity"):
        B.set_model(params, v, s, jnp.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        B.set_model(params, v, s, jnp.array([0.0, jnp.nan, 1.0]))
    with pytest.raises(ValueError, match="gravity must have shape"):
        B.set_model(params, v, s, jnp.ones(2))
    with pytest.raises(TypeError, match="floating"):
        B.set_model(params, v, s, jnp.ones(3, jnp.int32))
    with pytest.raises(ValueError, match="vectors must have shape"):
        B.set_model(params, v[..., :2], s, GRAVITY)
    with pytest.raises(ValueError, match="do not match vectors"):
        B.set_model(params, v, s[:4], GRAVITY)
    with pytest.raises(ValueError, match="scalar channels"):
        B.set_model(params, v, s[:, :2], GRAVITY)
    with pytest.raises(TypeError, match="mask must be boolean"):
        B.set_model(params, v, s, GRAVITY, jnp.ones(5))
    with pytest.raises(ValueError, match="num_heads"):
        B.set_init(jax.random.key(0), vector_in=1, scalar_in=1, vector_out=1,
                   scalar_out=1, hidden_scalars=6, num_heads=4)  # fmt: skip
    with pytest.raises(ValueError, match="both 0"):
        B.set_init(jax.random.key(0), vector_in=1, scalar_in=1, vector_out=0,
                   scalar_out=0)  # fmt: skip
