"""PONITA's point-cloud mode lifted along the edges (eqjax.geometric._lifting)."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest
from flax import nnx

import eqjax as eq

geo = eq.geometric


def _graph(x, s, r, **nodes):
    return jraph.GraphsTuple(
        nodes={"positions": x, **nodes},
        edges=None,
        senders=jnp.asarray(s),
        receivers=jnp.asarray(r),
        globals=None,
        n_node=jnp.asarray([x.shape[0]]),
        n_edge=jnp.asarray([len(s)]),
    )


def test_edge_lift_structure_and_lowering():
    n = 4
    s, r = np.nonzero(1 - np.eye(n))
    # duplicates and self-loops of the input are dropped
    lift = geo.edge_lift(np.r_[s, 0, 2], np.r_[r, 0, r[0]], n)
    assert lift.base.shape == (n * (n - 1),)
    assert lift.senders.shape == (n * n * (n - 1) ** 2,)
    pairs = {
        (int(a), int(b)) for a, b in zip(lift.senders, lift.receivers, strict=True)
    }
    assert len(pairs) == lift.senders.shape[0]  # no repeated lifted edge
    x = np.random.default_rng(0).normal(size=(n, 3))
    lifted = jax.jit(lambda x: geo.lift_to_edges(_graph(x, s, r), lift))(jnp.asarray(x))
    o = np.asarray(lifted.nodes["orientations"])
    d = x[lift.neighbour] - x[lift.base]
    np.testing.assert_allclose(o, d / np.linalg.norm(d, axis=-1, keepdims=True), 1e-5)
    assert lifted.n_node.tolist() == [n * (n - 1)]
    vals = jnp.asarray(np.arange(n * (n - 1), dtype=np.float32))
    want = [vals[lift.base == i].mean() for i in range(n)]
    low = jax.jit(lambda v: geo.lower_from_edges(v, lift))(vals)
    np.testing.assert_allclose(low, want, rtol=1e-6)


def test_lifted_ponita_is_e3_equivariant_and_the_check_bites(key):
    n = 3
    s, r = np.nonzero(1 - np.eye(n))
    lift = geo.edge_lift(s, r, n)
    with jax.enable_x64(True):
        model = nnx.jit(
            lambda: eq.nn.PONITA(
                0,
                4,
                1,
                scalar_outputs=1,
                vector_inputs=1,
                vector_outputs=1,
                mode="point_cloud",
                readout="node",
                layer_scale=None,
                param_dtype=jnp.float64,
                rngs=nnx.Rngs(0),
            )
        )()
        k1, k2, k3 = jax.random.split(key, 3)
        x = jax.random.normal(k1, (n, 3), jnp.float64)
        v = jax.random.normal(k2, (n, 1, 3), jnp.float64)
        g = eq.groups.E3.sample(k3, ())
        R, t = g.R.astype(jnp.float64), g.t.astype(jnp.float64)[None]

        def f(x, v, fixed=None):
            lifted = geo.lift_to_edges(_graph(x, s, r, vectors=v), lift)
            if fixed is not None:  # control: orientations that do not move
                lifted.nodes["orientations"] = fixed
            sc, vec = model(lifted)
            return geo.lower_from_edges(sc, lift), geo.lower_from_edges(vec, lift)

        @jax.jit
        def run(x, v):
            fixed = geo.lift_to_edges(_graph(x, s, r), lift).nodes["orientations"]
            xm, vm = x @ R.T + t, v @ R.T
            return f(x, v), f(xm, vm), f(x, v, fixed)[1], f(xm, vm, fixed)[1]

        (s0, v0), (s1, v1), w0, w1 = run(x, v)
        np.testing.assert_allclose(s1, s0, atol=1e-9)
        np.testing.assert_allclose(v1, v0 @ R.T, atol=1e-9)
        assert float(jnp.abs(v0).max()) > 1e-3  # not a trivial pass
        assert float(jnp.abs(w1 - w0 @ R.T).max()) > 1e-3


def test_edge_lift_bad_inputs():
    with pytest.raises(ValueError, match="one shape"):
        geo.edge_lift([0, 1], [1], 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        geo.edge_lift([0, 2], [1, 0], 2)
    with pytest.raises(ValueError, match="outside jit"):
        jax.jit(lambda s: geo.edge_lift(s, s, 2).base.shape[0])(jnp.array([0, 1]))
    lift = geo.edge_lift([0, 1], [1, 0], 2)
    x = jnp.zeros((3, 3))
    with pytest.raises(ValueError, match="built for 2 nodes"):
        geo.lift_to_edges(_graph(x, [0, 1], [1, 0]), lift)
    with pytest.raises(ValueError, match="lifted nodes"):
        geo.lower_from_edges(jnp.zeros((3,)), lift)
