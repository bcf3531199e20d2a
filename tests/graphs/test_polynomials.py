"""Equivariant polynomials (Puny et al., ICML 2023): the pattern counts and the
PPGN rule, permutation equivariance of every basis polynomial against a
non-equivariant control, padding, trace(A³), K4 on the rook's vs the Shrikhande
graph, bad input.

Compile budget: every basis polynomial of one test is evaluated in ONE jitted
program (``evaluate_polynomials``, which ``evaluate_polynomial`` calls with one
pattern), on one stacked batch; comparisons run on the host in NumPy."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

G = eq.graphs
KINDS = ("invariant", "node", "edge")


def _counts(basis, computable=None):
    return tuple(
        sum(
            p.kind == k and (computable is None or p.ppgn_computable == computable)
            for p in basis
        )
        for k in KINDS
    )


def test_basis_counts_and_ppgn_computability():
    b5, b6 = G.polynomial_basis(max_edges=5), G.polynomial_basis(max_edges=6)
    assert _counts(b5) == (12, 37, 125) and _counts(b5, False) == (0, 0, 1)
    assert _counts(b6) == (30, 114, 460) and _counts(b6, False) == (1, 1, 9)
    assert G.polynomial_basis() == b6
    for b, m in ((b5, 5), (b6, 6)):
        assert all(p.num_edges == m for p in b)
        assert len({(p.edges, p.marked) for p in b}) == len(b)
        assert all(p.marked == tuple(range(len(p.marked))) for p in b)
    # the 5-edge exception: K4 minus an edge, marked at its two degree-2 vertices
    (bad5,) = [p for p in b5 if not p.ppgn_computable]
    deg = np.bincount(np.asarray(bad5.edges).ravel(), minlength=4)
    assert bad5.num_vertices == 4 and deg.tolist() == [2, 2, 3, 3]
    assert (0, 1) not in bad5.edges
    # the 6-edge invariant and node exceptions are K4
    k4 = tuple(itertools.combinations(range(4), 2))
    assert [p.edges for p in b6 if not p.ppgn_computable][:3] == [k4] * 3
    # "at most m edges" = the union of the exact sets
    upto = G.polynomial_basis(4, min_edges=1)
    assert len(upto) == sum(len(G.polynomial_basis(m)) for m in range(1, 5)) == 80
    assert _counts(G.polynomial_basis(3)) == (3, 5, 10)


def test_ppgn_rule_on_hand_made_patterns():
    P = G.polynomial_pattern
    k4 = list(itertools.combinations(range(4), 2))
    assert not P(k4).ppgn_computable and not P(k4, marked=(0,)).ppgn_computable
    cyc = [(i, (i + 1) % 6) for i in range(6)]
    assert P(cyc).ppgn_computable and P(cyc, marked=(0, 3)).ppgn_computable
    k4e = [e for e in k4 if e != (0, 1)]
    assert P(k4e).ppgn_computable and P(k4e, marked=(2, 3)).ppgn_computable
    assert not P(k4e, marked=(0, 1)).ppgn_computable  # adds K4's missing edge back
    # K_{2,3} with its two degree-3 vertices marked is fine; unmarked it is too
    k23 = [(a, b) for a in (0, 1) for b in (2, 3, 4)]
    assert P(k23).ppgn_computable and P(k23, marked=(0, 1)).ppgn_computable
    # multigraph / loop / isolated-vertex patterns build and keep their einsum
    assert P([(0, 1), (0, 1), (1, 1)]).einsum == "ab,ab,bb->"
    assert P([(0, 1)], marked=(2,), num_vertices=3).einsum == "ab,c->c"


def _ref(p, A):
    """NumPy einsum of the pattern on a batch of (masked) adjacencies."""
    ins, out = p.einsum.split("->")
    ones = np.ones(A.shape[:-1])
    ops = [A if len(t) == 2 else ones for t in ins.split(",")]
    spec = ",".join("z" + t for t in ins.split(",")) + "->z" + out
    return np.einsum(spec, *ops, optimize=True)


def _permute(y, perm, order):
    """``y[..., p[i], p[j]] = x[..., i, j]`` on the last ``order`` axes."""
    out = np.empty_like(y)
    idx = (Ellipsis,) + tuple(
        perm.reshape((-1,) + (1,) * (order - 1 - a)) for a in range(order)
    )
    out[idx] = y
    return out


def _rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _check_basis(basis, n, pad, seed):
    """One program: rows (0) a padded weighted graph, (1) it relabelled by a
    random permutation of all n + pad nodes, (2) other junk in the padding,
    (3) the padding zeroed and every node real."""
    rng = np.random.default_rng(seed)
    N = n + pad
    X = rng.normal(size=(N, N))
    X = X + X.T
    real = np.arange(N) < n
    perm = rng.permutation(N)
    junk = rng.normal(size=(N, N))
    junk = junk + junk.T
    pad2 = ~(real[:, None] & real[None, :])
    A = np.stack(
        [
            X,
            _permute(X, perm, 2),
            np.where(pad2, junk, X),
            np.where(pad2, 0.0, X),
        ]
    )
    mask = np.stack([real, real[np.argsort(perm)], real, np.ones(N, bool)])
    with jax.enable_x64(True):
        ys = jax.jit(G.evaluate_polynomials)(basis, jnp.asarray(A), jnp.asarray(mask))
        ys = [np.asarray(y) for y in ys]
    Am = A * mask[:, :, None] * mask[:, None, :]
    for p, y in zip(basis, ys, strict=True):
        k = len(p.marked)
        assert y.dtype == np.float64 and y.shape == (4,) + (N,) * k
        assert _rel_err(y, _ref(p, Am)) < 1e-12, p
        assert _rel_err(y[1], _permute(y[0], perm, k)) < 1e-10, p
        np.testing.assert_array_equal(y[2], y[0])  # junk in padding changes nothing
        real_k = np.ix_(*[real] * k) if k else ()
        assert _rel_err(y[3][real_k], y[0][real_k]) < 1e-12, p  # masked = removed
        if k:  # padded nodes' outputs are zero, on every output axis
            assert not np.any(y[0][~real]), p
            assert k == 1 or not np.any(y[0][:, ~real]), p
    return A, mask, perm, ys


def test_every_polynomial_is_equivariant_and_padding_is_honoured():
    A, mask, perm, ys = _check_basis(G.polynomial_basis(5), n=5, pad=2, seed=0)
    # the control: the same check on a contraction with one fixed (not relabelled)
    # weight matrix instead of A must fail
    Am = A * mask[:, :, None] * mask[:, None, :]
    W = np.random.default_rng(1).normal(size=A.shape[1:])
    ctrl = np.einsum("zab,zbc,ac->za", Am, Am, W)
    assert _rel_err(ctrl[1], _permute(ctrl[0], perm, 1)) > 1e-2


@pytest.mark.slow
def test_every_six_edge_polynomial_is_equivariant():
    _check_basis(G.polynomial_basis(6), n=6, pad=1, seed=2)


def test_k4_separates_rook_from_shrikhande_and_triangles_are_trace_a3():
    """srg(16, 6, 2, 2): 2-WL-equivalent, equal triangle counts (6 × 32); K4 (not
    PPGN-computable) gives 24 × 8 = 192 on the rook's graph, 0 on Shrikhande's.
    The triangle patterns are trace(A³), diag(A³) and A ⊙ A² (marked ends of an
    edge) on a weighted graph too (third batch row)."""
    k4 = G.polynomial_pattern(list(itertools.combinations(range(4), 2)))
    k4_node = G.polynomial_pattern(k4.edges, marked=(0,))
    tri = [(0, 1), (1, 2), (0, 2)]
    tris = [G.polynomial_pattern(tri, marked=m) for m in ((), (0,), (0, 1))]
    graphs = (eq.datasets.rook_graph(4), eq.datasets.shrikhande_graph())
    A = np.stack([eq.datasets.to_adjacency(g) for g in graphs]).astype(np.float32)
    W = np.random.default_rng(3).uniform(size=(16, 16)).astype(np.float32)
    A = np.concatenate([A, (A[0] * (W + W.T))[None]])
    y_k4, y_node, *y_tri = jax.jit(G.evaluate_polynomials)(
        (k4, k4_node, *tris), jnp.asarray(A)
    )
    assert y_k4.dtype == jnp.float32 and y_node.shape == (3, 16)
    assert y_k4[:2].tolist() == [192.0, 0.0] and y_tri[0][:2].tolist() == [192.0] * 2
    assert np.asarray(y_node[:2]).tolist() == [[12.0] * 16, [0.0] * 16]  # 2 K4s × 3!
    A3 = A @ A @ A
    np.testing.assert_allclose(y_tri[0], np.trace(A3, 0, 1, 2), rtol=1e-5)
    np.testing.assert_allclose(y_tri[1], np.diagonal(A3, 0, 1, 2), rtol=1e-5)
    np.testing.assert_allclose(y_tri[2], A * (A @ A), rtol=1e-5, atol=1e-5)


def test_bad_input_fails_loudly():
    tri = G.polynomial_pattern([(0, 1), (1, 2), (0, 2)], marked=(0,))
    A = jnp.zeros((4, 4))
    f = G.evaluate_polynomial
    with pytest.raises(ValueError, match="shape"):
        f(tri, jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="shape"):
        f(tri, jnp.zeros((4,)))
    with pytest.raises(ValueError, match="mask must have shape"):
        f(tri, A, jnp.ones((3,), bool))
    with pytest.raises(TypeError, match="boolean"):
        f(tri, A, jnp.ones((4,)))
    with pytest.raises(TypeError, match="floating"):
        f(tri, jnp.zeros((4, 4), jnp.int32))
    with pytest.raises(TypeError, match="PolynomialPattern"):
        f(((0, 1),), A)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sequence"):
        G.evaluate_polynomials(tri, A)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not agree"):
        f(dataclasses.replace(tri, ppgn_computable=False), A)
    big = [(i, i + 1) for i in range(G.MAX_PATTERN_EDGES + 1)]
    with pytest.raises(ValueError, match="at most"):
        G.polynomial_pattern(big)
    forged = dataclasses.replace(tri, edges=tuple(big))
    with pytest.raises(ValueError, match="at most"):
        f(forged, A)
    with pytest.raises(ValueError, match="max_edges"):
        G.polynomial_basis(7)
    with pytest.raises(ValueError, match="min_edges"):
        G.polynomial_basis(3, min_edges=4)
    with pytest.raises(TypeError, match="max_edges"):
        G.polynomial_basis(2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ"):
        G.polynomial_pattern([(0, 1)], marked=(1, 1))
    with pytest.raises(ValueError, match="at most 2"):
        G.polynomial_pattern([(0, 1), (1, 2)], marked=(0, 1, 2))
    with pytest.raises(ValueError, match="lie in"):
        G.polynomial_pattern([(0, 5)], num_vertices=3)
