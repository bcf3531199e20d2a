"""IGN bases (set partitions, Bell sizes, independence), ign_linear against the
dense basis, permutation equivariance, masks/padding, bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

G = eq.graphs
BELL = [1, 1, 2, 5, 15, 52, 203]


def _init(init, key, *args, **kw):
    """``init(key, *args, **kw)`` in one compiled program (op by op, every
    parameter shape would compile its own sampler); ``key`` an int seed (an
    ``rbg`` key) or a key."""
    if isinstance(key, int):
        key = jax.random.key(key, impl="rbg")
    return jax.jit(lambda k: init(k, *args, **kw))(key)


def test_partitions_have_bell_sizes():
    for m, b in enumerate(BELL):
        parts = G.set_partitions(m)
        assert len(parts) == len(set(parts)) == b
        for mu in parts:
            assert sorted(p for blk in mu for p in blk) == list(range(m))
    sizes = {(k, l): G.ign_basis_size(k, l) for k in range(4) for l in range(4)}
    assert sizes[(1, 1)] == 2 and sizes[(1, 2)] == sizes[(2, 1)] == 5
    assert sizes[(2, 2)] == 15 and sizes[(1, 0)] == 1 and sizes[(2, 0)] == 2
    assert sizes[(3, 3)] == 203 and sizes[(2, 3)] == 52
    with pytest.raises(ValueError, match="order_in"):
        G.ign_basis_size(4, 0)


@pytest.mark.parametrize(("k", "l"), [(1, 1), (1, 2), (2, 1), (2, 2), (2, 0), (0, 2)])
def test_basis_linearly_independent(k, l):
    B = G.ign_basis(k, l, k + l)  # independent as soon as n >= k + l
    assert np.linalg.matrix_rank(B.reshape(B.shape[0], -1)) == BELL[k + l]
    # every element commutes with a permutation acting on all index axes
    n = max(k + l, 3)
    B = G.ign_basis(k, l, n)
    P = np.eye(n)[np.roll(np.arange(n), 1)]
    for Bm in B:
        T = Bm.reshape((n,) * (l + k))
        for ax in range(l + k):
            T = np.moveaxis(np.tensordot(P, T, axes=(1, ax)), 0, ax)
        assert np.array_equal(T.reshape(Bm.shape), Bm)


@pytest.mark.slow
def test_order_three_bases_independent():
    for k, l in [(2, 3), (3, 2), (3, 3)]:
        B = G.ign_basis(k, l, k + l)
        M = B.reshape(B.shape[0], -1)
        assert np.linalg.matrix_rank(M @ M.T) == BELL[k + l] == B.shape[0]


_ORDERS = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 0), (0, 2)]


@functools.cache
def _params(k, l):
    return _init(G.ign_init, 10 * k + l, k, l, 2, 3, dtype=jnp.float64)


def test_ign_linear_equals_the_dense_basis():
    """ign_linear (normalization="sum") = Σ_μ B_μ x W_μ (+ bias basis), float64."""
    n = 4
    with jax.enable_x64(True):
        xs = {
            o: jax.random.normal(jax.random.key(o), (3,) + (n,) * o + (2,), jnp.float64)
            for o in range(3)
        }

        for o in _ORDERS:
            _params(*o)  # create (and cache) the parameters outside the traced code

        @jax.jit
        def run(xs):
            return {
                (k, l): G.ign_linear(
                    _params(k, l),
                    xs[k],
                    order_in=k,
                    order_out=l,
                    normalization="sum",
                    n=n,
                )
                for k, l in _ORDERS
            }

        ys = run(xs)
        for k, l in _ORDERS:
            p = _params(k, l)
            B = G.ign_basis(k, l, n)
            Bb = G.ign_basis(0, l, n)[:, :, 0]
            x = np.asarray(xs[k]).reshape(3, n**k, 2)
            ref = np.einsum("mij,bjc,mcd->bid", B, x, np.asarray(p.weights))
            ref = ref + np.einsum("mi,md->id", Bb, np.asarray(p.bias + 0))[None]
            got = np.asarray(ys[(k, l)]).reshape(3, n**l, 3)
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def _with_bias(p):
    return p._replace(bias=p.bias + 0.5)


def test_padding_never_changes_real_outputs():
    """Padded nodes (mask False, arbitrary values) change nothing on real nodes and
    get zeros; mean normalisation counts real nodes only."""
    n, pad = 4, 3
    with jax.enable_x64(True):
        k1, k2 = jax.random.split(jax.random.key(1))
        x1 = jax.random.normal(k1, (2, n + pad, 2), jnp.float64)
        x2 = jax.random.normal(k2, (2, n + pad, n + pad, 2), jnp.float64)
        mask = jnp.broadcast_to(jnp.arange(n + pad) < n, (2, n + pad))
        for o in _ORDERS:
            _params(*o)

        @jax.jit
        def run(x1, x2, mask):
            out = {}
            for k, l in [(2, 1), (2, 2), (2, 0)]:
                p = _with_bias(_params(k, l))
                x = x1 if k == 1 else x2
                xs = x[:, :n] if k == 1 else x[:, :n, :n]
                full = G.ign_linear(p, x, mask, order_in=k, order_out=l)
                small = G.ign_linear(p, xs, order_in=k, order_out=l)
                out[(k, l)] = (full, small)
            return out

        for (_k, l), (full, small) in run(x1, x2, mask).items():
            real = full[(slice(None),) + (slice(0, n),) * l]
            np.testing.assert_allclose(real, small, rtol=1e-12, atol=1e-12)
            if l:
                assert float(jnp.abs(full).sum() - jnp.abs(real).sum()) < 1e-12


def test_equivariance_of_order_3_maps_and_a_control(key):
    n = 4
    with jax.enable_x64(True):
        x2 = jax.random.normal(key, (n, n, 2), jnp.float64)
        p23 = _with_bias(_init(G.ign_init, key, 2, 3, 2, 2, dtype=jnp.float64))

        def f(x):
            return G.ign_linear(p23, x, order_in=2, order_out=3)

        def act2(p, x):
            return eq.groups.act_adjacency(p, x, num_feature_axes=1)

        def act3(p, y):
            for ax in (-4, -3, -2):
                y = eq.groups.act_set(p, y, axis=ax)
            return y

        g = eq.groups.Sn(n)
        eq.testing.assert_equivariant(
            f, g, x2, act_in=act2, act_out=act3, key=key, num_samples=4, tol=1e-10
        )
        # control: an extra term that depends on the node order must be caught
        pos = jnp.arange(n, dtype=jnp.float64)[:, None, None, None]
        with pytest.raises(AssertionError):
            eq.testing.assert_equivariant(
                lambda x: f(x) + pos * x[0, 0, 0],
                g,
                x2,
                act_in=act2,
                act_out=act3,
                key=key,
                num_samples=4,
                tol=1e-10,
            )


@pytest.mark.slow
def test_equivariance_3_to_3(key):
    n = 4
    with jax.enable_x64(True):
        x3 = jax.random.normal(key, (n, n, n, 2), jnp.float64)
        p = _init(G.ign_init, key, 3, 3, 2, 2, dtype=jnp.float64)
        p = p._replace(bias=p.bias + 1.0)

        def act3(q, y):
            for ax in (-4, -3, -2):
                y = eq.groups.act_set(q, y, axis=ax)
            return y

        eq.testing.assert_equivariant(
            lambda x: G.ign_linear(p, x, order_in=3, order_out=3),
            eq.groups.Sn(n),
            x3,
            act_in=act3,
            act_out=act3,
            key=key,
            num_samples=4,
            tol=1e-10,
        )


def test_bad_input_raises_clear_errors():
    p = _init(G.ign_init, 0, 2, 2, 2, 3)
    x = jnp.ones((2, 4, 4, 2))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 4\)"):
        G.ign_linear(p, x, jnp.ones((2, 5), bool), order_in=2, order_out=2)
    with pytest.raises(ValueError, match="node axes of x differ"):
        G.ign_linear(p, jnp.ones((2, 4, 5, 2)), order_in=2, order_out=2)
    with pytest.raises(ValueError, match="do not fit order 2->1"):
        G.ign_linear(p, x, order_in=2, order_out=1)
    with pytest.raises(ValueError, match="order_out must be an int in 0..3"):
        G.ign_linear(p, x, order_in=2, order_out=5)
    with pytest.raises(ValueError, match="normalization"):
        G.ign_linear(p, x, order_in=2, order_out=2, normalization="max")
    with pytest.raises(TypeError, match="floating"):
        G.ign_linear(p, jnp.ones((2, 4, 4, 2), jnp.int32), order_in=2, order_out=2)


@pytest.mark.slow
def test_ign_model_invariant_and_padding_free(key):
    """The global 2-IGN: invariant to node relabelling; padding changes nothing."""
    with jax.enable_x64(True):
        gs = [eq.datasets.cycle_graph(5), eq.datasets.rook_graph(2)]
        d = eq.datasets.dense_batch(gs, n_max=7)
        x = jnp.asarray(d.ign_input(), jnp.float64)
        m = jnp.asarray(d.mask)
        p = _init(G.ign_model_init, key, 2, 6, 3, num_layers=1, dtype=jnp.float64)
        f = jax.jit(lambda x, m: G.ign_model(p, x, m))
        y = f(x, m)
        small = f(x[:1, :5, :5], m[:1, :5])
        np.testing.assert_allclose(y[:1], small, rtol=1e-10, atol=1e-12)
        perm = jnp.asarray(np.random.default_rng(0).permutation(7))
        xp = eq.groups.act_adjacency(perm, x, num_feature_axes=1)
        mp = eq.groups.act_set(perm, m, axis=-1)
        np.testing.assert_allclose(f(xp, mp), y, rtol=1e-10, atol=1e-12)
