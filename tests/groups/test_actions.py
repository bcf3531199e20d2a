"""Actions: irreps (Wigner-D, parity), sets, adjacency, graphs."""

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import eqjax as eq
from eqjax.testing import strategies as eqst

G = eq.groups


@pytest.mark.parametrize(
    "irreps",
    [
        "3x0e + 0o + 2x1o + 1e + 2e + 2o",
        # e3nn's matrices for l = 3, 4 are most of the program's compile time
        pytest.param(
            "3x0e + 0o + 2x1o + 1e + 2e + 2o + 3o + 4e", marks=pytest.mark.slow
        ),
    ],
)
def test_act_irreps_matches_e3nn_transform_by_matrix(key, irreps):

    @jax.jit
    def program(key):  # one compiled program: eager e3nn calls cost ~20 s
        x = e3nn.normal(irreps, key, (5,), dtype=jnp.float64)
        R = G.O3.sample(jax.random.fold_in(key, 1), (5,))
        ours = G.act_irreps(R, x)
        ref = jax.vmap(lambda R, x: x.transform_by_matrix(R))(R, x)
        assert ours.irreps == ref.irreps
        return jnp.linalg.det(R), ours.array, ref.array

    with jax.enable_x64(True):
        det, ours, ref = program(key)
        assert bool(jnp.any(det < 0))
        np.testing.assert_allclose(ours, ref, atol=1e-12)


@pytest.mark.parametrize(
    "lmax", [4, pytest.param(10, marks=pytest.mark.slow)]
)  # e3nn's harmonics at l = 10 take a minute to compile
def test_wigner_D_homomorphism_orthogonality_and_smooth_gradients(key, lmax):
    """D(R1 R2) = D(R1) D(R2), D orthogonal, D(I) = I for l = 0..lmax (float64 <
    1e-12); gradients finite at the identity and at Euler-angle gimbal lock (a half
    turn about y); the transpose, an anti-homomorphism, is the control that fails."""
    ls = range(lmax + 1)

    @jax.jit
    def program(key):
        R1, R2 = G.SO3.sample(key, (2, 4))
        out = []
        for l in ls:
            d1, d2, d12 = (G.wigner_D(l, R) for R in (R1, R2, R1 @ R2))
            gram = jnp.swapaxes(d1, -1, -2) @ d1
            out.append((d1, d2, d12, gram, G.wigner_D(l, jnp.eye(3))))
        half_y = jnp.diag(jnp.array([-1.0, 1.0, -1.0]))
        grad = jax.grad(
            lambda R: sum(jnp.sum(jnp.sin(G.wigner_D(l, R))) for l in (1, 2, lmax))
        )
        return out, jax.vmap(grad)(jnp.stack([jnp.eye(3), half_y]))

    with jax.enable_x64(True):
        out, grads = program(key)
        for l, (d1, d2, d12, gram, ident) in zip(ls, out, strict=True):
            eye = np.eye(2 * l + 1)
            np.testing.assert_allclose(d12, d1 @ d2, atol=1e-12, err_msg=f"l={l}")
            np.testing.assert_allclose(
                gram, np.broadcast_to(eye, gram.shape), atol=1e-12
            )
            np.testing.assert_allclose(ident, eye, atol=1e-12)
        assert np.all(np.isfinite(grads))
        # control: the transpose is an anti-homomorphism, (AB)ᵀ = BᵀAᵀ ≠ AᵀBᵀ
        d1, d2, d12, _, _ = (np.asarray(v) for v in out[2])
        t = lambda d: np.swapaxes(d, -1, -2)  # noqa: E731
        assert np.max(np.abs(t(d12) - t(d1) @ t(d2))) > 1e-2
    with pytest.raises(ValueError, match="non-negative int"):
        G.wigner_D(-1, jnp.eye(3))
    with pytest.raises(ValueError, match="non-negative int"):
        G.wigner_D(1.0, jnp.eye(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        G.wigner_D(1, jnp.eye(2))
    with pytest.raises(TypeError, match="floating"):
        G.wigner_D(1, jnp.eye(3, dtype=jnp.int32))


@pytest.mark.parametrize("lmax", [3, pytest.param(6, marks=pytest.mark.slow)])
def test_act_irreps_on_spherical_harmonics(key, lmax):
    """Independent check: Y(R x) = D(R) Y(x), with the parity (-1)^l of Y."""
    irreps = e3nn.Irreps.spherical_harmonics(lmax)

    @jax.jit
    def program(key):
        v = jax.random.normal(key, (7, 3))
        R = G.O3.sample(jax.random.fold_in(key, 1), (7,))
        lhs = e3nn.spherical_harmonics(irreps, G.O3.act(R, v), normalize=True)
        rhs = G.act_irreps(R, e3nn.spherical_harmonics(irreps, v, normalize=True))
        return lhs.array, rhs.array

    with jax.enable_x64(True):
        lhs, rhs = program(key)
        np.testing.assert_allclose(lhs, rhs, atol=1e-12)


def test_act_irreps_l1_is_matrix(key):
    @jax.jit
    def program(key):
        v = jax.random.normal(key, (4, 3))
        R = G.O3.sample(key, (4,))
        return (
            v,
            G.act_irreps(R, e3nn.IrrepsArray("1o", v)).array,
            G.O3.act(R, v),
            G.act_irreps(-jnp.eye(3), e3nn.IrrepsArray("1e", v)).array,
        )

    with jax.enable_x64(True):
        v, ours, ref, pseudo = program(key)
        np.testing.assert_allclose(ours, ref, atol=1e-12)
        # a pseudovector (1e) does not flip under inversion
        np.testing.assert_allclose(pseudo, v, atol=1e-12)


def test_act_irreps_zero_chunks_and_broadcast():
    x = e3nn.zeros("0e + 1o", (2,))
    R = jnp.broadcast_to(jnp.eye(3), (3, 1, 3, 3))
    y = G.act_irreps(R, x)
    assert y.shape == (3, 2, 4)


def test_set_action_matches_permutation_matrix(key):
    with jax.enable_x64(True):
        p = G.Sn(6).sample(key, ())
        P = jnp.zeros((6, 6)).at[p, jnp.arange(6)].set(1.0)
        x = jax.random.normal(key, (6, 4))
        np.testing.assert_allclose(G.Sn(6).act(p, x), P @ x)
        A = jax.random.normal(key, (6, 6))
        np.testing.assert_allclose(G.act_adjacency(p, A), P @ A @ P.T)
        E = jax.random.normal(key, (6, 6, 2))
        np.testing.assert_allclose(
            G.act_adjacency(p, E, num_feature_axes=1),
            jnp.einsum("ia,abf,jb->ijf", P, E, P),
        )
        X2, A2 = G.act_graph_tensors(p, (x, A))
        np.testing.assert_allclose(X2, P @ x)
        np.testing.assert_allclose(A2, P @ A @ P.T)


def test_set_action_batches(key):
    p = G.Sn(5).sample(key, (3,))
    x = jax.random.normal(key, (3, 5, 2))
    y = G.Sn(5).act(p, x)
    for b in range(3):
        np.testing.assert_allclose(y[b], G.Sn(5).act(p[b], x[b]))
    # one permutation, batch of sets; and a batch of permutations of one set
    assert G.Sn(5).act(p[0], x).shape == (3, 5, 2)
    assert G.Sn(5).act(p, x[0]).shape == (3, 5, 2)
    assert G.act_set(p[0], x[..., 0], axis=-1).shape == (3, 5)


def _edge_set(g):
    return sorted(
        zip(
            np.asarray(g.senders).tolist(),
            np.asarray(g.receivers).tolist(),
            strict=True,
        )
    )


def _check_graph_permutation_is_isomorphism(graph, seed):
    grp = G.graph_node_permutations(graph)
    p = grp.sample(jax.random.key(seed))
    h = G.act_graph(p, graph)
    # same edge set after relabelling by p, edge features follow their edges
    relabelled = sorted(
        zip(
            np.asarray(p)[graph.senders].tolist(),
            np.asarray(p)[graph.receivers].tolist(),
            strict=True,
        )
    )
    assert _edge_set(h) == relabelled
    np.testing.assert_array_equal(h.edges, graph.edges)
    # node features moved to their new labels
    np.testing.assert_array_equal(
        np.asarray(h.nodes)[np.asarray(p)], np.asarray(graph.nodes)
    )
    # nodes stay in their graph; counts, globals and padding masks intact
    np.testing.assert_array_equal(h.n_node, graph.n_node)
    np.testing.assert_array_equal(h.globals, graph.globals)
    np.testing.assert_array_equal(jraph_node_graph(h), jraph_node_graph(graph))
    import jraph

    np.testing.assert_array_equal(
        jraph.get_node_padding_mask(h), jraph.get_node_padding_mask(graph)
    )
    np.testing.assert_array_equal(
        jraph.get_edge_padding_mask(h), jraph.get_edge_padding_mask(graph)
    )
    # every edge stays inside one graph
    gid = jraph_node_graph(h)
    assert (gid[np.asarray(h.senders)] == gid[np.asarray(h.receivers)]).all()


@settings(max_examples=3)  # every example is a new shape (the long run: 25)
@given(eqst.graphs(), eqst.seeds())
def test_graph_permutation_is_isomorphism(graph, seed):
    _check_graph_permutation_is_isomorphism(graph, seed)


@pytest.mark.slow
@given(eqst.graphs(), eqst.seeds())
def test_graph_permutation_is_isomorphism_long(graph, seed):
    """The profile's full run (25 examples) of the check above."""
    _check_graph_permutation_is_isomorphism(graph, seed)


def jraph_node_graph(g):
    return np.repeat(np.arange(len(g.n_node)), np.asarray(g.n_node))


def test_graph_group_sample_stays_in_blocks(key):
    g = eq.testing.random_graph(0, (3, 0, 4, 1), pad_to=(12, 8, 5))
    p = G.graph_node_permutations(g).sample(key, (50,))
    gid = jraph_node_graph(g)
    assert (gid[np.asarray(p)] == gid[None, :]).all()
    # and actually permutes (not the identity every time)
    assert bool(jnp.any(p != jnp.arange(12)[None]))


def test_graph_action_works_under_jit_and_vmap(key):
    g = eq.testing.random_graph(0, (4, 3), pad_to=(9, 6, 3), dtype=np.float32)
    grp = G.graph_node_permutations(g)
    ps = grp.sample(key, (4,))
    out = jax.jit(jax.vmap(G.act_graph, in_axes=(0, None)))(ps, g)
    assert out.nodes.shape == (4, 9, 3)
    np.testing.assert_array_equal(out.senders[2], ps[2][g.senders])


def test_graph_action_bad_input(key):
    g = eq.testing.random_graph(0, (4,), dtype=np.float32)
    with pytest.raises(TypeError, match="GraphsTuple"):
        G.act_graph(jnp.arange(4), g.nodes)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        G.act_graph(jnp.arange(5), g)
    with pytest.raises(ValueError, match="act_adjacency"):
        G.act_adjacency(jnp.arange(3), jnp.ones((3, 4)))
