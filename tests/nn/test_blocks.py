"""NNX building blocks (Linear, Gate, RadialMLP, per-edge GauntTensorProduct):
O(3) equivariance through eqjax.testing (reflections included), float64/float32,
jit, grad, a control per check, and clear errors for bad options and inputs."""

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq
from eqjax.nn import Gate, GauntTensorProduct, Linear, RadialMLP, gate_irreps

O3 = eq.groups.O3
act = eq.groups.act_irreps
HIDDEN = e3nn.Irreps("4x0e+4x1o+4x2e")


def _block(rngs):
    """A message-passing step on 5 edges: Gaunt TP of node features with edge
    harmonics, weighted per edge by a radial MLP, then Linear and Gate."""
    tp = GauntTensorProduct("4x0e+4x1o", "0e+1o+2e", lmax_out=2, rngs=rngs)
    radial = RadialMLP(6, 3.0, (8,), tp.weight_numel, rngs=rngs)
    lin = Linear(HIDDEN, gate_irreps(HIDDEN), biases=True, rngs=rngs)
    gate = Gate(gate_irreps(HIDDEN))
    return tp, radial, lin, gate


def _fn(mods):
    tp, radial, lin, gate = mods

    def f(inp):
        h, vec = inp
        sh = e3nn.spherical_harmonics("0e+1o+2e", vec, normalize=True)
        r = jnp.sqrt(jnp.sum(vec**2, -1))
        return gate(lin(tp(h, sh, weights=radial(r))))

    return f


def _act_in(R, inp):
    h, vec = inp
    return act(R, h), vec @ R.T


@pytest.mark.parametrize(
    "dtype", [jnp.float32, pytest.param(jnp.float64, marks=pytest.mark.slow)]
)
def test_block_equivariant_jit_grad(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        # initialised in one compiled program (eagerly: one per parameter shape)
        mods = nnx.jit(lambda: _block(nnx.Rngs(0)))()
        rng = np.random.default_rng(0)
        h = e3nn.IrrepsArray("4x0e+4x1o", jnp.asarray(rng.normal(size=(5, 16)), dtype))
        vec = jnp.asarray(rng.normal(size=(5, 3)), dtype)
        f = _fn(mods)
        y = jax.eval_shape(f, (h, vec))  # traced only: the programs below compile f
        assert y.irreps == HIDDEN and y.dtype == dtype
        kw = dict(act_in=_act_in, act_out=act, key=jax.random.key(1), num_samples=4)
        sides = jax.jit(lambda inp: eq.testing.equivariance_sides(f, O3, inp, **kw))(
            (h, vec)
        )
        eq.testing.assert_sides_close(sides, tol=1e-4, dtype=dtype, name="block")

        # control: a hidden non-equivariant term (a raw vector component into a
        # scalar channel) added to the block fails the same check; act_irreps is
        # linear, so the sides of f + term are the sums of the sides
        def term(inp):
            raw = inp[1][:, :1]
            return e3nn.IrrepsArray(HIDDEN, jnp.pad(raw, ((0, 0), (0, HIDDEN.dim - 1))))

        t = jax.jit(lambda inp: eq.testing.equivariance_sides(term, O3, inp, **kw))(
            (h, vec)
        )
        bad = jax.tree.map(lambda a, b: a + b, sides, t)
        with pytest.raises(AssertionError, match="not equivariant"):
            eq.testing.assert_sides_close(bad, tol=1e-4, name="block + raw vector")

        def loss(mods, vec):
            return jnp.sum(_fn(mods)((h, vec)).array ** 2)

        g_mods, g_vec = nnx.jit(nnx.grad(loss, argnums=(0, 1)))(mods, vec)
        leaves = jax.tree.leaves(nnx.state(g_mods, nnx.Param))
        assert leaves and all(np.all(np.isfinite(x)) for x in leaves)
        assert sum(float(jnp.abs(x).sum()) for x in leaves) > 0
        assert np.all(np.isfinite(g_vec))


def test_linear_matches_e3nn_functional_and_refuses_bad_input():
    lin = Linear("4x0e+2x1o", "3x0e+5x1o", rngs=nnx.Rngs(0))
    x = e3nn.IrrepsArray("4x0e+2x1o", jnp.ones((2, 10)))
    ref = e3nn.FunctionalLinear(e3nn.Irreps("4x0e+2x1o"), e3nn.Irreps("3x0e+5x1o"))
    ws = [w[...] for w in lin.weights]
    np.testing.assert_allclose(lin(x).array, jax.vmap(lambda v: ref(ws, v))(x).array)
    with pytest.raises(ValueError, match="built for x with irreps 4x0e\\+2x1o"):
        lin(e3nn.IrrepsArray("4x0e+2x1e", jnp.ones((2, 10))))
    with pytest.raises(TypeError, match="IrrepsArray"):
        lin(jnp.ones((2, 10)))
    with pytest.raises(ValueError, match="irreps_out .* needs"):
        Linear("4x0e", "2x1o", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="irreps_in"):
        Linear("4xfoo", "2x0e", rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="param_dtype"):
        Linear("4x0e", "2x0e", param_dtype=jnp.int32, rngs=nnx.Rngs(0))


def test_gate_and_radial_validate():
    assert gate_irreps("8x0e+4x1o+4x2e") == e3nn.Irreps("8x0e+8x0e+4x1o+4x2e")
    assert Gate("8x0e+8x0e+4x1o+4x2e").irreps_out == e3nn.Irreps("8x0e+4x1o+4x2e")
    with pytest.raises(ValueError, match="not a gate input"):
        Gate("4x1o+2x0e")
    with pytest.raises(TypeError, match="even_act"):
        Gate("2x0e", even_act="relu")
    g = Gate("2x0e+1x0e+1x1o")
    with pytest.raises(ValueError, match="Gate was built for x"):
        g(e3nn.IrrepsArray("2x0e+1x1o", jnp.ones(5)))
    for kw, match in [
        (dict(num_basis=0), "num_basis"),
        (dict(cutoff=-1.0), "cutoff"),
        (dict(hidden=8), "hidden"),
        (dict(hidden=(8, 0)), "hidden\\[1\\]"),
        (dict(out_features=2.5), "out_features"),
    ]:
        args = dict(num_basis=4, cutoff=3.0, hidden=(8,), out_features=3) | kw
        with pytest.raises((ValueError, TypeError), match=match):
            RadialMLP(**args, rngs=nnx.Rngs(0))
    mlp = RadialMLP(4, 3.0, (8,), 3, rngs=nnx.Rngs(0))
    out = mlp(jnp.array([0.0, 1.0, 3.0, 4.0]))
    assert out.shape == (4, 3) and np.all(np.isfinite(out))
    np.testing.assert_allclose(out[2:], 0.0)  # zero at and beyond the cutoff
    with pytest.raises(TypeError, match="floating"):
        mlp(jnp.arange(3))
