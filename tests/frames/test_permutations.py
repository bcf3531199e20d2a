import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from frames_util import mlp, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

import eqjax as eq


def _circulant(n, skips):
    a = np.zeros((n, n), np.int8)
    for s in skips:
        for i in range(n):
            a[i, (i + s) % n] = a[(i + s) % n, i] = 1
    return a


def _random_graph(n, p, seed):
    rng = np.random.default_rng(seed)
    a = np.triu(rng.random((n, n)) < p, 1)
    return (a | a.T).astype(np.int8)


def _relabel(a, x, p):
    """Node i -> p[i] (the eqjax.groups convention)."""
    n = len(p)
    P = np.zeros((n, n))
    P[p, np.arange(n)] = 1
    return (P @ a @ P.T).astype(a.dtype), None if x is None else P @ x


def _backbones(n, f):
    """Order-sensitive MLPs on (flattened adjacency, node features)."""
    inv = mlp(0, n * n + n * f, 3)
    node = mlp(2, n * n + n * f, n * 2)

    def phi(xa):
        x, a = xa
        return inv(jnp.concatenate([a.reshape(-1), x.reshape(-1)]))

    def psi(xa):
        x, a = xa
        return node(jnp.concatenate([a.reshape(-1), x.reshape(-1)])).reshape(n, 2)

    return phi, psi


@functools.cache
def _averagers(n, f):
    """Jitted (invariant, node-equivariant) averages for graphs of n nodes."""
    phi, psi = _backbones(n, f)
    act = eq.groups.act_graph_tensors
    f_inv = eq.frames.frame_average(phi, None, act_in=act)
    f_eqv = eq.frames.frame_average(
        psi, None, act_in=act, act_out=lambda g, y: eq.groups.act_set(g, y)
    )
    return jax.jit(lambda xa, fr: (f_inv(xa, frame=fr), f_eqv(xa, frame=fr)))


def _averaged(a, x, max_size):
    n, f = x.shape
    both = _averagers(n, f)
    labels = np.asarray(x).argmax(-1)
    frame, info = eq.frames.permutation_frame(
        a, labels, max_size=max_size, return_info=True
    )
    xa = (jnp.asarray(x, jnp.float32), jnp.asarray(a, jnp.float32))
    return (*both(xa, frame), info)


def test_wl_colours_are_invariant():
    a = _random_graph(12, 0.3, 0)
    c = eq.frames.wl_colours(a)
    p = np.random.default_rng(1).permutation(12)
    b, _ = _relabel(a, None, p)
    cb = eq.frames.wl_colours(b)
    np.testing.assert_array_equal(cb[p], c)


def _check_invariance_exact(seed, graph):
    a = {
        "cycle": _circulant(7, [1]),
        "csl": _circulant(11, [1, 3]),
        "petersen_like": _circulant(10, [1, 4]),
        "random": _random_graph(9, 0.35, seed),
    }[graph]
    n = a.shape[0]
    rng = np.random.default_rng(seed)
    x = np.eye(2)[rng.integers(0, 2, n)]
    y_inv, y_eqv, (exact, leaves) = _averaged(a, x, max_size=64)
    assert exact and leaves <= 64
    p = rng.permutation(n)
    b, xb = _relabel(a, x, p)
    z_inv, z_eqv, _ = _averaged(b, xb, max_size=64)
    assert rel_err(z_inv, y_inv) < 1e-5
    assert rel_err(z_eqv, np.asarray(y_eqv)[np.argsort(p)]) < 1e-5


@pytest.mark.parametrize("seed,graph", [(0, "csl"), (1, "random")])
def test_permutation_frame_invariance_exact(seed, graph):
    _check_invariance_exact(seed, graph)


@pytest.mark.slow
@settings(max_examples=12)
@given(
    seed=st.integers(0, 1000),
    graph=st.sampled_from(["cycle", "csl", "petersen_like", "random"]),
)
def test_permutation_frame_invariance_exact_property(seed, graph):
    _check_invariance_exact(seed, graph)


def test_vertex_transitive_graph_frame_is_automorphism_sized():
    fr, (exact, leaves) = eq.frames.permutation_frame(
        _circulant(11, [1, 3]), max_size=64, return_info=True
    )
    assert exact and leaves == 22  # |Aut| of this circulant: 11 rotations × 2 flips
    assert fr.elements.shape == (64, 11) and abs(fr.weights.sum() - 1) < 1e-6
    assert (fr.weights[22:] == 0).all()


def test_no_ties_gives_one_leaf():
    a = np.zeros((4, 4), np.int8)
    for i, j in [(0, 1), (1, 2), (2, 3), (1, 3)]:
        a[i, j] = a[j, i] = 1
    feats = np.array([0, 0, 0, 1])  # breaks the remaining symmetry
    _, (exact, leaves) = eq.frames.permutation_frame(a, feats, return_info=True)
    assert exact and leaves == 1


def test_control_without_frame_not_invariant():
    a = _random_graph(9, 0.35, 0)
    x = np.eye(2)[np.random.default_rng(0).integers(0, 2, 9)]
    phi, _ = _backbones(9, 2)
    p = np.random.default_rng(1).permutation(9)
    b, xb = _relabel(a, x, p)
    y = phi((jnp.asarray(x, jnp.float32), jnp.asarray(a, jnp.float32)))
    z = phi((jnp.asarray(xb, jnp.float32), jnp.asarray(b, jnp.float32)))
    assert rel_err(z, y) > 1e-2


def test_sampled_frame_when_cap_exceeded():
    a = _circulant(16, [1, 5])
    fr, (exact, leaves) = eq.frames.permutation_frame(a, max_size=4, return_info=True)
    assert not exact and leaves > 4
    assert fr.elements.shape == (4, 16) and np.allclose(fr.weights, 0.25)
    for order in fr.elements:
        assert sorted(order.tolist()) == list(range(16))


def test_set_ties_enumerated_without_refinement():
    feats = np.array([0, 1, 0, 1, 1])
    fr, (exact, leaves) = eq.frames.permutation_frame(
        None, feats, max_size=16, return_info=True
    )
    assert exact and leaves == 12  # 2! * 3!
    sorted_feats = feats[fr.elements[:12]]
    assert (np.diff(sorted_feats, axis=1) >= 0).all()


def test_padding_nodes_stay_in_place():
    a = np.zeros((6, 6), np.int8)
    a[:4, :4] = _circulant(4, [1])
    fr = eq.frames.permutation_frame(a, num_nodes=4, max_size=8)
    np.testing.assert_array_equal(fr.elements[:, 4:], np.tile([4, 5], (8, 1)))


def test_bad_input():
    with pytest.raises(ValueError, match="adjacency"):
        eq.frames.permutation_frame(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="rows"):
        eq.frames.permutation_frame(np.zeros((3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="key_fn"):
        eq.frames.sort_frame(lambda x: x)(jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="max_size must be >= 1"):
        eq.frames.graph_frame(max_size=0)
    with pytest.raises(TypeError, match="max_size must be an int"):
        eq.frames.graph_frame(max_size=2.5)
    with pytest.raises(TypeError, match="floating"):
        eq.frames.permutation_frame(np.zeros((3, 3)), dtype=np.int32)
    # an empty graph is reported at trace time (it was "INTERNAL: CpuCallback")
    with pytest.raises(ValueError, match="0 nodes"):
        jax.jit(eq.frames.graph_frame(4))((jnp.ones((0, 1)), jnp.ones((0, 0))))


def test_integer_node_features_give_float_weights():
    """Integer labels: the weights are floating (they were int32 zeros)."""
    A = jnp.asarray(_circulant(5, [1]), jnp.int32)
    x = jnp.asarray(np.eye(5, 2, dtype=np.int32))
    fr = jax.jit(eq.frames.graph_frame(16))((x, A))
    assert jnp.issubdtype(fr.weights.dtype, jnp.floating)
    assert abs(float(fr.weights.sum()) - 1) < 1e-6
