"""SPE (Huang et al., ICLR 2024): invariance to sign flips and to rotations inside
every eigenspace (cycle, hypercubes, CSL) against the raw-eigenvector control,
permutation equivariance, padding, the cut inside an eigenspace, the in-jit
eigendecomposition with finite gradients on degenerate graphs, bad input, the NNX
wrapper.

Compile budget: the invariance, cut, permutation and padding checks share ONE
compiled ``spe`` program (float64, ``[K, N, D]`` inputs built on the host with
NumPy and stacked to ``K``); the baselines compile one small program each; the
in-jit eigendecomposition and its gradient one program; the NNX wrapper one
(float32). Comparisons go through ``eqjax.testing.assert_sides_close``."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq
from eqjax.testing import Sides, assert_sides_close

G = eq.graphs
N, D, K = (
    42,
    9,
    32,
)  # padded nodes (CSL has 41: one padding node at least), eigenpairs, batch
E = 2 * 82  # directed edges of a 4-regular graph on 41 nodes


# ------------------------------------------------------------------ fixtures


def _hypercube(k):
    n = 2**k
    A = np.zeros((n, n))
    for i in range(n):
        for b in range(k):
            A[i, i ^ (1 << b)] = 1
    return A


def _csl(skip):
    i = np.arange(41)
    A = np.zeros((41, 41))
    for j in (i + 1, i + skip):
        A[i, j % 41] = A[j % 41, i] = 1
    return A


def _cycle(n):
    return np.roll(np.eye(n), 1, 0) + np.roll(np.eye(n), -1, 0)


def _blocks(lam, valid, tol=1e-8):
    """``(start, size)`` of each eigenspace among the valid leading columns."""
    out, start = [], 0
    for i in range(1, valid + 1):
        if i == valid or abs(lam[i] - lam[i - 1]) > tol:
            out.append((start, i - start))
            start = i
    return out


class Case:
    """One graph padded to ``N`` nodes, ``D`` eigenpair columns (``valid`` used)."""

    def __init__(self, A, valid):
        n = A.shape[0]
        full = G.laplacian_eigenpairs(A, n, dtype=np.float64)
        self.n, self.valid, self.full = n, valid, full
        self.blocks = _blocks(full.eigvals, valid)
        s, r = np.nonzero(A)
        self.s = np.full(E, N - 1, np.int32)  # padding edges: the last (padded) node
        self.r = np.full(E, N - 1, np.int32)
        self.s[: len(s)], self.r[: len(r)] = s, r
        self.nm = np.arange(N) < n
        self.em = np.arange(D) < valid

    def inputs(self, Q=None, *, cols=None):
        """``(λ, V, s, r, node mask, eigval mask)`` with the full eigenbasis
        rotated by ``Q`` (``(n, n)``) before keeping the first ``cols`` columns."""
        cols = self.valid if cols is None else cols
        V = self.full.eigvecs if Q is None else self.full.eigvecs @ Q
        lam, Vp = np.zeros(D), np.zeros((N, D))
        lam[:cols] = self.full.eigvals[:cols]
        Vp[: self.n, :cols] = V[:, :cols]
        em = np.arange(D) < cols
        return lam, Vp, self.s, self.r, self.nm, em

    def rotation(self, rng, *, sign_only=False, blocks=None):
        """Haar O(k) on each eigenspace (reflections included), or random
        signs, as an ``(n, n)`` block-diagonal matrix."""
        Q = np.eye(self.n)
        for a, k in self.blocks if blocks is None else blocks:
            if sign_only:
                Q[a : a + k, a : a + k] = np.diag(rng.choice([-1.0, 1.0], k))
            else:
                q, r = np.linalg.qr(rng.normal(size=(k, k)))
                Q[a : a + k, a : a + k] = q * np.sign(np.diag(r))
        return Q


@functools.cache
def _cases():
    return {
        "C8": Case(_cycle(8), 8),  # eigenspaces 1, 2, 2, 2, 1
        "Q3": Case(_hypercube(3), 8),  # 1, 3, 3, 1
        "Q4": Case(_hypercube(4), 5),  # 1, 4 | 6, 4, 1
        "CSL2": Case(_csl(2), 9),  # 1, 2, 2, 2, 2 | ...
        "CSL9": Case(_csl(9), 9),  # 1, 4, 4 | ... (9² ≡ −1 mod 41)
    }


def _fill(init, *args, seed, **kwargs):
    """Parameters of ``init``'s structure filled with seeded NumPy normals (no
    compiled init program; the functions are checked for any parameters)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda: init(jax.random.key(0), *args, **kwargs))
    return jax.tree_util.tree_map(
        lambda a: (rng.normal(size=a.shape) / np.sqrt(max(a.shape[-1], 1))).astype(
            np.float32
        ),
        shapes,
    )


@functools.cache
def _params():
    """float32 NumPy parameters (built once); tests cast them."""
    return (
        _fill(G.spe_init, D, 3, num_channels=4, phi_hidden=8, hidden=8, seed=0),
        _fill(G.eigvec_pe_init, D, 3, hidden=8, seed=1),
        _fill(G.signnet_pe_init, D, 3, phi_hidden=4, hidden=8, seed=2),
    )


def _f64(tree):
    return jax.tree_util.tree_map(
        lambda v: jnp.asarray(np.asarray(v), jnp.float64), tree
    )


def _stack(items):
    """Stack input tuples to the batch ``K`` (repeating the first as filler)."""
    assert len(items) <= K
    items = items + [items[0]] * (K - len(items))
    return tuple(np.stack(v) for v in zip(*items, strict=True))


def _run(fn, items):
    """``fn`` on a list of inputs, one compiled ``[K, ...]`` program per ``fn``."""
    out = np.asarray(fn(*(jnp.asarray(v) for v in _stack(items))))
    return out[: len(items)]


def _spe64(items, params=None):
    """float64 ``spe`` on the ``[K, N, D]`` batch (``spe``'s own compiled program,
    shared by every test here and the NNX wrapper's call)."""
    p = _params()[0] if params is None else params  # float32: spe casts them

    def fn(lam, V, s, r, nm, em):
        return G.spe(p, lam, V, s, r, nm, eigval_mask=em)

    return _run(fn, items)


@jax.jit
def _baseline_batch(ev, sn, lam, V, nm, em):
    return (
        G.eigvec_pe(ev, V, nm, eigval_mask=em),
        G.signnet_pe(sn, lam, V, nm, eigval_mask=em),
    )


def _baselines(items):
    """Both baselines in one compiled program."""
    _, ev, sn = _params()
    lam, V, _, _, nm, em = (jnp.asarray(v) for v in _stack(items))
    raw, sign = _baseline_batch(ev, sn, lam, V, nm, em)
    return np.asarray(raw)[: len(items)], np.asarray(sign)[: len(items)]


def _rng(key):
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())


def _element(Q):
    """A rotation of the basis as a ``(D, D)`` element (for the report)."""
    if Q.ndim != 2 or Q.shape[0] == N:  # permutations
        return Q
    k = min(D, Q.shape[0])
    out = np.eye(D)
    out[:k, :k] = Q[:k, :k]
    return out


def _sides(elements, lhs, rhs):
    return Sides(
        np.stack([_element(np.asarray(g)) for g in elements]),
        np.stack(lhs),
        np.stack(rhs),
    )


# --------------------------------------------------------------- invariance


def _basis_samples(rng, names, per_graph=4):
    """Inputs [originals..., transformed...], the elements and which original."""
    cases = _cases()
    items = [cases[c].inputs() for c in names]
    Qs, owner = [], []
    for i, c in enumerate(names):
        for j in range(per_graph + 1):
            Qs.append(cases[c].rotation(rng, sign_only=j == 0))
            owner.append(i)
            items.append(cases[c].inputs(Qs[-1]))
    return items, Qs, owner


def test_basis_invariance_sign_flips_and_rotations_inside_eigenspaces(key):
    """Random signs and Haar O(k) rotations inside every eigenspace (dimensions
    2, 3, 4 and 1) leave SPE unchanged in float64 to 1e-9; the raw-eigenvector PE
    moves (the control), SignNet survives sign flips only."""
    names = list(_cases())
    with jax.enable_x64(True):
        items, Qs, owner = _basis_samples(_rng(key), names)
        out = _spe64(items)
        g = len(names)
        err = assert_sides_close(
            _sides(Qs, list(out[g:]), [out[i] for i in owner]),
            tol=1e-9,
            dtype=jnp.float64,
            name="spe",
            group_name="rotations inside eigenspaces",
            invariant=True,
        )
        assert err < 1e-9 and np.abs(out).max() > 1e-2  # not a trivial zero
        assert out.dtype == np.float64
        # the control: raw eigenvectors through an MLP are not basis-invariant;
        # SignNet-style is sign- but not rotation-invariant
        raw, sign = _baselines(items)
        few = [j for j in range(len(Qs)) if j % 5 == 1]  # one rotation per graph
        with pytest.raises(AssertionError, match="not invariant"):
            assert_sides_close(
                _sides([Qs[j] for j in few], [raw[g + j] for j in few],
                       [raw[owner[j]] for j in few]), tol=1e-3, invariant=True,
            )  # fmt: skip
        flips = [
            j for j in range(len(Qs)) if np.allclose(np.abs(Qs[j]), np.eye(len(Qs[j])))
        ]
        assert_sides_close(
            _sides([Qs[j] for j in flips], [sign[g + j] for j in flips],
                   [sign[owner[j]] for j in flips]), tol=1e-9, invariant=True,
        )  # fmt: skip
        with pytest.raises(AssertionError, match="not invariant"):
            assert_sides_close(
                _sides([Qs[j] for j in few], [sign[g + j] for j in few],
                       [sign[owner[j]] for j in few]), tol=1e-3, invariant=True,
            )  # fmt: skip


def test_cut_inside_an_eigenspace_breaks_basis_invariance(key):
    """Q4's third eigenspace has dimension 6 (columns 5..10): keeping 7
    eigenpairs keeps 2 of its vectors, and another basis of the same eigenspace
    keeps 2 others, so the output changes; dropping the partial eigenspace (the
    host function's mask) restores invariance."""
    q4 = _cases()["Q4"]
    A = _hypercube(4)
    assert (
        G.laplacian_eigenpairs(A, 7, partial_eigenspace="drop").mask.tolist()
        == [True] * 5 + [False] * 2
    )
    with pytest.raises(ValueError, match="cuts the eigenspace"):
        G.laplacian_eigenpairs(A, 7, partial_eigenspace="raise")
    whole = [(5, 6)]  # the whole 6-dimensional eigenspace
    rng = _rng(key)
    Qs = [q4.rotation(rng, blocks=whole) for _ in range(4)]
    with jax.enable_x64(True):
        keep = [q4.inputs(None, cols=7)] + [q4.inputs(Q, cols=7) for Q in Qs]
        drop = [q4.inputs(None, cols=5)] + [q4.inputs(Q, cols=5) for Q in Qs]
        out = _spe64(keep + drop)
        k, dr = out[:5], out[5:]
        with pytest.raises(AssertionError, match="not invariant"):
            assert_sides_close(
                _sides(Qs, list(k[1:]), [k[0]] * 4), tol=1e-3, invariant=True
            )
        assert_sides_close(
            _sides(Qs, list(dr[1:]), [dr[0]] * 4), tol=1e-9, invariant=True
        )


def test_permutation_equivariance(key):
    """Relabelling all N slots (padding too) permutes the eigenvector rows, the
    edges and the mask; the encoding's rows follow (float64, 1e-9)."""
    rng = _rng(key)
    cases = _cases()
    items, perm_items, ps = [], [], []
    for name in ("C8", "Q4", "CSL9"):
        lam, V, s, r, nm, em = cases[name].inputs()
        for _ in range(3):
            p = rng.permutation(N)
            Vp, nmp = np.empty_like(V), np.empty_like(nm)
            Vp[p], nmp[p] = V, nm
            items.append((lam, V, s, r, nm, em))
            perm_items.append(
                (lam, Vp, p[s].astype(np.int32), p[r].astype(np.int32), nmp, em)
            )
            ps.append(p)
    with jax.enable_x64(True):
        out = _spe64(items + perm_items)
    m = len(items)
    rhs = []
    for p, y in zip(ps, out[:m], strict=True):
        yp = np.empty_like(y)
        yp[p] = y
        rhs.append(yp)
    assert_sides_close(_sides(ps, list(out[m:]), rhs), tol=1e-9, name="spe")


def test_padding_contents_do_not_leak(key):
    """NaN/garbage in padded eigenvector rows, in a masked eigenpair (value and
    vector) and random padding edges among padded nodes change nothing; padded
    output rows are exactly zero."""
    rng = _rng(key)
    c8 = _cases()["C8"]
    lam, V, s, r, nm, em = c8.inputs()
    lam2, V2, s2, r2 = lam.copy(), V.copy(), s.copy(), r.copy()
    V2[8:] = rng.normal(size=V2[8:].shape) * 1e3
    V2[9:, :] = np.nan
    V2[:, 8], lam2[8] = np.nan, np.nan  # the masked eigenpair (C8 has 8)
    pad = np.arange(len(s)) >= 16
    s2[pad] = rng.integers(8, N, pad.sum())
    r2[pad] = rng.integers(8, N, pad.sum())
    with jax.enable_x64(True):
        a, b = _spe64([(lam, V, s, r, nm, em), (lam2, V2, s2, r2, nm, em)])
    assert np.isfinite(b).all() and (b[8:] == 0).all() and (a[8:] == 0).all()
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    assert np.abs(a[:8]).max() > 1e-2


# ----------------------------------------------- in-jit eigenpairs, gradients


def _degenerate_batch():
    """n = 8, d = 6: C8 (degenerate spectrum), a path on 4 nodes with 2 isolated
    nodes and 2 padded, an edgeless graph on 5 nodes (L = I), no real node, and a
    randomly weighted graph (distinct eigenvalues: the finite-difference check)."""
    n = 8
    As, ms = [], []
    As.append(_cycle(8))
    ms.append(np.ones(n, bool))
    P = np.zeros((n, n))
    for i in range(3):
        P[i, i + 1] = P[i + 1, i] = 1
    As.append(P)
    ms.append(np.arange(n) < 6)
    As.append(np.zeros((n, n)))
    ms.append(np.arange(n) < 5)
    As.append(np.ones((n, n)))
    ms.append(np.zeros(n, bool))
    W = np.triu(np.random.default_rng(3).uniform(0.2, 1.0, (n, n)), 1)
    As.append(W + W.T)
    ms.append(np.ones(n, bool))
    return np.stack(As), np.stack(ms)


def _check_eigh(loss, *args):
    """``loss(A, *args) -> (value, eigenpairs)`` on the degenerate batch: finite
    gradients, the host function's eigenpairs, a finite-difference check on the
    weighted graph; one compiled program."""
    A, M = _degenerate_batch()
    n, d = A.shape[-1], 6
    f = jax.jit(
        jax.value_and_grad(loss, argnums=tuple(range(1 + len(args))), has_aux=True)
    )
    (val, ep), (gA, *gp) = f(jnp.asarray(A), *args)
    assert np.isfinite(float(val)) and np.isfinite(np.asarray(gA)).all()
    assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree_util.tree_leaves(gp))
    assert np.abs(np.asarray(gA[-1])).max() > 0  # the weighted graph has a gradient
    # the host function: same masks, eigenvalues and eigenspace projections
    for b in range(len(A)):
        real = int(M[b].sum())
        Ab = A[b][:real, :real] * (1 - np.eye(real))
        host = G.laplacian_eigenpairs(Ab, d, num_nodes=n, partial_eigenspace="drop")
        assert np.asarray(ep.mask[b]).tolist() == host.mask.tolist(), b
        np.testing.assert_allclose(np.asarray(ep.eigvals[b]), host.eigvals, atol=1e-10)
        Vj, Vh = np.asarray(ep.eigvecs[b]), host.eigvecs
        np.testing.assert_allclose(Vj @ Vj.T, Vh @ Vh.T, atol=1e-10)
        assert (Vj[real:] == 0).all()
    # C8 cut after 5 (drop): complete eigenspaces 1 + 2 + 2; the edgeless graph:
    # L = I on its 5 real nodes, every eigenvalue 1
    assert np.asarray(ep.mask[0]).sum() == 5
    assert np.allclose(np.asarray(ep.eigvals[2])[np.asarray(ep.mask[2])], 1.0)
    # a directional finite difference on the weighted graph (distinct spectrum)
    dA = np.zeros_like(A)
    U = np.triu(np.random.default_rng(4).normal(size=(n, n)), 1)
    dA[-1] = U + U.T
    h = 1e-6
    (vp, _), _ = f(jnp.asarray(A + h * dA), *args)
    (vm, _), _ = f(jnp.asarray(A - h * dA), *args)
    fd = (float(vp) - float(vm)) / (2 * h)
    np.testing.assert_allclose(fd, float(np.sum(np.asarray(gA) * dA)), rtol=1e-5)


def test_jit_eigh_matches_host_and_gradients_are_finite_on_degenerate_graphs():
    """laplacian_eigh in jit (float64) against the host function, and the
    gradient of a basis-invariant spectral function ``Σ_k c(λ_k) v_k v_kᵀ`` of
    its eigenpairs: finite on a cycle, isolated nodes, an edgeless graph and a
    graph with no real node; exact (finite differences) on distinct spectra."""
    _, M = _degenerate_batch()

    def loss(A):
        ep = G.laplacian_eigh(A, 6, M, partial_eigenspace="drop")
        c = jnp.where(ep.mask, jnp.cos(3 * ep.eigvals) + ep.eigvals, 0)
        W = jnp.einsum("bid,bd,bjd->bij", ep.eigvecs, c, ep.eigvecs)
        return jnp.sum(W**2), ep

    with jax.enable_x64(True):
        _check_eigh(loss)


@pytest.mark.slow
def test_spe_through_jit_eigh_gradients():
    """The same checks for SPE on top of laplacian_eigh, gradients with respect
    to the adjacency and the parameters (a 2 s compile: slow tier)."""
    _, M = _degenerate_batch()
    s, r = np.nonzero(_cycle(8))  # ρ's graph (any edges work for these checks)

    def loss(A, params):
        ep = G.laplacian_eigh(A, 6, M, partial_eigenspace="drop")
        pe = G.spe(params, ep.eigvals, ep.eigvecs, s, r, M, eigval_mask=ep.mask)
        return jnp.mean(pe**2), ep

    with jax.enable_x64(True):
        params = _f64(_params()[0])._replace(eps=jnp.array([0.5, -0.3]))
        _check_eigh(loss, params)


# ------------------------------------------------------------------ bad input


def test_bad_input_raises_clear_errors():
    A = _cycle(5)
    H = G.laplacian_eigenpairs
    with pytest.raises(ValueError, match="symmetric"):
        H(np.triu(A), 2)
    with pytest.raises(ValueError, match="non-finite"):
        H(np.where(A > 0, np.nan, 0.0), 2)
    with pytest.raises(ValueError, match="negative"):
        H(-A, 2)
    with pytest.raises(ValueError, match="more eigenpairs than the 5 nodes"):
        H(A, 6)
    with pytest.raises(ValueError, match="square"):
        H(np.ones((3, 4)), 2)
    with pytest.raises(ValueError, match="partial_eigenspace"):
        H(A, 2, partial_eigenspace="cut")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="num_eigvals"):
        H(A, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="more eigenpairs than the 5 nodes"):
        G.laplacian_eigh(A.astype(np.float32), 6)
    with pytest.raises(TypeError, match="floating"):
        G.laplacian_eigh(A.astype(np.int32), 2)
    with pytest.raises(ValueError, match="partial_eigenspace"):
        G.laplacian_eigh(A.astype(np.float32), 2, partial_eigenspace="raise")  # type: ignore[arg-type]
    p, ev, sn = _params()
    lam, V = np.zeros(3, np.float32), np.zeros((5, 3), np.float32)
    s = r = np.arange(5)
    with pytest.raises(ValueError, match="more than the 5 nodes"):
        G.spe(p, np.zeros(6, np.float32), np.zeros((5, 6), np.float32), s, r)
    with pytest.raises(ValueError, match="must end in d=3"):
        G.spe(p, np.zeros(4, np.float32), V, s, r)
    with pytest.raises(TypeError, match="floating"):
        G.spe(p, lam, V.astype(np.int32), s, r)
    with pytest.raises(TypeError, match="dtypes differ"):
        G.spe(p, lam.astype(np.float16), V, s, r)
    with pytest.raises(TypeError, match="integer"):
        G.spe(p, lam, V, s.astype(np.float32), r)
    with pytest.raises(ValueError, match="differ in E"):
        G.spe(p, lam, V, s, r[:3])
    with pytest.raises(TypeError, match="boolean"):
        G.spe(p, lam, V, s, r, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="node_mask"):
        G.spe(p, lam, V, s, r, np.ones(4, bool))
    with pytest.raises(ValueError, match="eigval_mask"):
        G.spe(p, lam, V, s, r, eigval_mask=np.ones(2, bool))
    with pytest.raises(TypeError, match="SPEParams"):
        G.spe(ev, lam, V, s, r)  # type: ignore[arg-type]
    bad = p._replace(
        rho=(p.rho[0]._replace(weights=(jnp.zeros((7, 8)),) + p.rho[0].weights[1:]),)
        + p.rho[1:]
    )
    with pytest.raises(ValueError, match="do not fit"):
        G.spe(bad, lam, V, s, r)
    with pytest.raises(ValueError, match="take 9 eigenvectors"):
        G.eigvec_pe(ev, V)
    with pytest.raises(ValueError, match="eigenvectors, got d=3"):
        G.signnet_pe(sn, lam, V)
    with pytest.raises(ValueError, match="num_channels"):
        G.spe_init(jax.random.key(0), 3, 2, num_channels=0)


def test_nnx_wrapper():
    """eq.nn.SPE: keyword-only rngs, float32 parameters computed in the input's
    dtype (float64 in, float64 out), the pure function's result."""
    model = eq.nn.SPE(D, 3, num_channels=4, phi_hidden=8, hidden=8, rngs=nnx.Rngs(0))
    leaves = jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))
    assert {v.dtype for v in leaves} == {jnp.dtype(jnp.float32)}
    items = [_cases()[c].inputs() for c in ("C8", "Q4")]
    with jax.enable_x64(True):
        batch = tuple(jnp.asarray(v) for v in _stack(items))
        lam, V, s, r, nm, em = batch
        pe = np.asarray(model(lam, V, s, r, nm, eigval_mask=em))
        assert pe.dtype == np.float64 and pe.shape == (K, N, 3)
        ref = _spe64(items, params=model._params())
    np.testing.assert_array_equal(pe[: len(items)], ref)
    assert np.isfinite(pe).all() and (pe[0, 8:] == 0).all()
