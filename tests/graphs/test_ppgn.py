"""PPGN and PPGN++ (Maron et al., NeurIPS 2019; Puny et al., ICML 2023): edge-level
equivariance of both blocks and invariance of the model in float64 against a
non-equivariant control, padding (junk in padded entries changes nothing, padded
outputs are zero), finite gradients on degenerate inputs, the input tensor's
channels and scalings, bad input, the NNX wrapper; slow tier: the 12 PPGN++
patterns, and the K4 channels telling the rook's graph from the Shrikhande graph
where PPGN cannot.

Compile budget (the fast tier's share is a few seconds): parameters are made
inside the compiled programs, and each fast test compiles one program."""

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq

G = eq.graphs
N, C = 6, 2  # the last node is padding
MASK = np.arange(N) < N - 1


def _host_params(init, *args, seed=0, dtype=np.float32, **kw):
    """Parameters of the shapes ``init`` makes, drawn with NumPy (biases
    included: a padded entry that leaked into a real one would show). Sampling
    inside a compiled program costs more compile time than the whole check."""
    shapes = jax.eval_shape(lambda: init(jax.random.key(0), *args, **kw))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda s: (0.7 * rng.normal(size=s.shape)).astype(dtype), shapes
    )


def _act_in(p, v):
    x, mask = v
    return (
        eq.groups.act_adjacency(p, x, num_feature_axes=1),
        eq.groups.act_set(p, mask, axis=-1),
    )


def _act_edge(p, y):
    return eq.groups.act_adjacency(p, y, num_feature_axes=1)


def test_equivariance_padding_control_and_gradients(key):
    """One float64 program: the PPGN++ block is edge-level equivariant and the
    (plain) PPGN model invariant (< 1e-10, the mask permuted with the nodes); a
    fixed, non-relabelled term added to a block is caught; junk in the padded
    entries changes no real output, padded outputs are exactly zero, and a padded
    graph gives what the graph alone gives; gradients are finite on zeros, one
    real node and an empty mask."""
    f64 = jnp.float64
    group = eq.groups.Sn(N)
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)  # NumPy: no eager program to compile
        x, junk = rng.normal(size=(2, N, N, C))
        junk = 10 * junk
        W = rng.normal(size=(N, N, 3))
        mask = MASK
        ones = np.ones((N, N, C))
        degenerate = (
            np.stack([0 * ones, ones, ones]),
            np.stack([mask, np.arange(N) < 1, np.zeros((N,), bool)]),
        )

        block_p = _host_params(G.ppgn_block_init, C, 3, plus=True, seed=1, dtype=f64)
        model = _host_params(G.ppgn_init, C, 3, 1, 2, seed=2, dtype=f64)

        def program(block_p, model, x, junk, W, ks, degenerate):
            def block(normalization="mean"):
                return lambda v: G.ppgn_block(
                    block_p, *v, plus=True, normalization=normalization
                )

            def net(v):
                return G.ppgn(model, *v)

            def sides(f, act_out):
                return eq.testing.equivariance_sides(
                    f, group, (x, mask), act_in=_act_in, act_out=act_out, key=ks,
                    num_samples=4,
                )  # fmt: skip

            out: dict[str, Any] = {
                "ppgn++": sides(block(), _act_edge),
                "model": sides(net, None),
                # the control's term: fixed weights on the node pairs, not relabelled
                "term": sides(lambda v: W * v[0][..., :1], _act_edge),
            }
            pair = (mask[:, None] & mask[None, :])[..., None]
            x_junk = jnp.where(pair, x, junk)
            small = (x[: N - 1, : N - 1], None)
            out["pad"] = (
                block("sum")((x_junk, mask)),
                block("sum")(small),
                net((x_junk, mask)),
                net(small),
            )

            def loss(params, x, mask):
                return jnp.sum(jnp.sin(G.ppgn(params, x, mask)))

            grad = jax.grad(loss, argnums=(0, 1))
            out["grads"] = jax.vmap(grad, in_axes=(None, 0, 0))(model, *degenerate)
            return out

        out = jax.jit(program)(block_p, model, x, junk, W, key, degenerate)
        for name in ("ppgn++", "model"):
            err = eq.testing.assert_sides_close(
                out[name], tol=1e-10, dtype=f64, name=name,
                invariant=name == "model",
            )  # fmt: skip
            assert err < 1e-10
        # act_adjacency is linear: the sides of block + term are the sums of sides
        bad = jax.tree_util.tree_map(lambda a, b: a + b, out["ppgn++"], out["term"])
        with pytest.raises(AssertionError, match="not equivariant"):
            eq.testing.assert_sides_close(bad, tol=1e-10, name="block + fixed term")
        y_full, y_small, e_full, e_small = out["pad"]
        assert y_full.dtype == f64 and y_full.shape == (N, N, 3)
        np.testing.assert_allclose(
            y_full[: N - 1, : N - 1], y_small, rtol=1e-12, atol=1e-12
        )
        assert not np.any(y_full[N - 1]) and not np.any(y_full[:, N - 1])
        np.testing.assert_allclose(e_full, e_small, rtol=1e-12, atol=1e-12)
        leaves = jax.tree_util.tree_leaves(out["grads"])
        assert leaves and all(np.isfinite(np.asarray(v)).all() for v in leaves)


def _k4_patterns():
    P = G.polynomial_pattern
    k4 = list(itertools.combinations(range(4), 2))
    # K4 minus the edge 0-1, marked at 0 and 1: the 5-edge pattern PPGN misses
    return (P(k4), P(k4, marked=(0,)), P(k4[1:], marked=(0, 1)))


def test_input_channels_scalings_and_padding():
    """``ppgn_input`` on a K4 with a pendant node plus one padded node, and on a
    relabelled copy (batch row 1): channel layout, raw values, the two scalings,
    invariant patterns skipped, precomputed polynomials, equivariance of the
    channels and zeros on padding (one program)."""
    pats = _k4_patterns()
    A = np.zeros((N, N), np.float32)
    for i, j in itertools.combinations(range(4), 2):
        A[i, j] = A[j, i] = 1
    A[0, 4] = A[4, 0] = 1
    A[N - 1, :] = A[:, N - 1] = 3.0  # junk in the padding
    perm = np.array([3, 5, 0, 1, 4, 2])
    Ap = np.empty_like(A)
    Ap[np.ix_(perm, perm)] = A  # Ap[p[i], p[j]] = A[i, j]
    mp = np.empty_like(MASK)
    mp[perm] = MASK
    As, masks = jnp.asarray(np.stack([A, Ap])), jnp.asarray(np.stack([MASK, mp]))
    feats = jnp.asarray(np.arange(2 * N * 2, dtype=np.float32).reshape(2, N, 2))
    feats = feats.at[1].set(feats[0][np.argsort(perm)])

    @jax.jit
    def run(A, mask, feats):
        ys = G.evaluate_polynomials(pats, A, mask)
        out = {  # the polynomials evaluated twice: here and inside "density"
            s: G.ppgn_input(A, mask, feats, pats, polynomials=ys, poly_scale=s)
            for s in ("none", "nodes")
        }
        out["density"] = G.ppgn_input(A, mask, feats, pats)
        out["skip"] = G.ppgn_input(
            A, mask, feats, pats, polynomials=ys, invariants="skip"
        )
        out["pre"] = G.ppgn_input(A, mask, feats, pats, polynomials=ys)
        out["plain"] = G.ppgn_input(A, mask)
        return out, ys

    out, ys = run(As, masks, feats)
    raw = np.asarray(out["none"])
    assert raw.shape == (2, N, N, 6) and raw.dtype == np.float32
    assert out["skip"].shape == (2, N, N, 5) and out["plain"].shape == (2, N, N, 1)
    r = raw[0]
    np.testing.assert_array_equal(r[..., 0], A * MASK[:, None] * MASK[None, :])
    np.testing.assert_array_equal(np.diagonal(r[..., 1:3], 0, 0, 1).T[:5], feats[0, :5])
    assert not np.any(r[..., 1:3][~np.eye(N, dtype=bool)])  # features: diagonal only
    # K4 invariant (24 maps into the one K4) on the real diagonal; K4 at a node:
    # 3! maps at each clique node, none at the pendant node
    np.testing.assert_array_equal(np.diag(r[..., 3]), [24, 24, 24, 24, 24, 0])
    np.testing.assert_array_equal(np.diag(r[..., 4]), [6, 6, 6, 6, 0, 0])
    np.testing.assert_array_equal(r[..., 5], np.asarray(ys[2][0]))
    assert np.any(r[..., 5][~np.eye(N, dtype=bool)])  # the edge channel is off-diagonal
    assert not np.any(raw[0][N - 1]) and not np.any(raw[0][:, N - 1])
    # scalings: n = 5 real nodes, density ρ = 2 · 7 edges / (5 · 4)
    n, rho = 5.0, 0.7
    nodes, dens = np.asarray(out["nodes"])[0], np.asarray(out["density"])[0]
    np.testing.assert_allclose(nodes[0, 0, 3], 24 / n**4, rtol=1e-6)
    np.testing.assert_allclose(nodes[0, 0, 4], 6 / n**3, rtol=1e-6)
    np.testing.assert_allclose(
        dens[0, 0, 3], np.arcsinh(24 / (n**4 * rho**6)), rtol=1e-6
    )
    np.testing.assert_allclose(
        dens[..., 5], np.arcsinh(r[..., 5] / (n**2 * rho**5)), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_array_equal(nodes[..., :3], r[..., :3])
    np.testing.assert_array_equal(np.asarray(out["skip"])[0], np.delete(dens, 3, -1))
    np.testing.assert_allclose(out["pre"], out["density"], rtol=1e-6)
    # the relabelled graph's channels are the relabelled channels
    for s in ("none", "density"):
        y = np.asarray(out[s])
        moved = np.empty_like(y[0])
        moved[np.ix_(perm, perm)] = y[0]
        np.testing.assert_allclose(y[1], moved, rtol=1e-5, atol=1e-5)


def test_bad_input_raises_clear_errors():
    k = jax.random.key(0)

    bp = _host_params(G.ppgn_block_init, C, 3, plus=True)
    mp = _host_params(G.ppgn_init, C, 3, 1, 2)
    x, mask = jnp.ones((N, N, C)), jnp.asarray(MASK)
    blk, net, inp = G.ppgn_block, G.ppgn, G.ppgn_input
    cases = [
        (ValueError, r"\(\.\.\., n, n, C\)", lambda: blk(bp, x[0], plus=True)),
        (ValueError, "square", lambda: blk(bp, x[:, :5], plus=True)),
        (ValueError, r"mask must have shape \(6,\)", lambda: blk(bp, x, mask[:5], plus=True)),
        (TypeError, "boolean", lambda: blk(bp, x, mask.astype(jnp.float32), plus=True)),
        (TypeError, "floating", lambda: blk(bp, x.astype(jnp.int32), plus=True)),
        (ValueError, "expects input width 7", lambda: blk(bp, jnp.ones((N, N, 3)), plus=True)),
        (ValueError, "plus=False", lambda: blk(bp, x, plus=False)),
        (ValueError, "normalization", lambda: blk(bp, x, plus=True, normalization="max")),
        (TypeError, "plus must be a bool", lambda: blk(bp, x, plus="yes")),
        (TypeError, "PPGNBlockParams", lambda: blk((1, 2), x)),
        (TypeError, "PPGNParams", lambda: net(bp, x, plus=True)),
        (ValueError, "expects input width", lambda: net(mp, x, plus=True)),
        (ValueError, r"\(\.\.\., n, n, C\)", lambda: net(mp, x[..., 0])),
        (ValueError, "in_channels", lambda: G.ppgn_init(k, 0, 3, 1, 2)),
        (ValueError, "num_blocks", lambda: G.ppgn_init(k, C, 3, 2.0, 2)),
        (ValueError, "out_channels", lambda: G.ppgn_block_init(k, C, -1)),
        (TypeError, "floating", lambda: inp(jnp.ones((N, N), jnp.int32))),
        (ValueError, r"\(\.\.\., n, n\)", lambda: inp(jnp.ones((N, 5)))),
        (ValueError, "mask must have shape", lambda: inp(x[..., 0], mask[:5])),
        (ValueError, "node_features", lambda: inp(x[..., 0], None, jnp.ones((5, 2)))),
        (TypeError, "node_features", lambda: inp(x[..., 0], None, jnp.ones((N, 2), int))),
        (ValueError, "poly_scale", lambda: inp(x[..., 0], poly_scale="log")),
        (ValueError, "invariants", lambda: inp(x[..., 0], invariants="broadcast")),
        (TypeError, "sequence", lambda: inp(x[..., 0], patterns=_k4_patterns()[0])),
        (TypeError, "PolynomialPattern", lambda: inp(x[..., 0], patterns=[(0, 1)])),
        (ValueError, "polynomials", lambda: inp(x[..., 0], patterns=_k4_patterns(),
                                                polynomials=[jnp.ones(())])),
        (ValueError, "must have shape", lambda: inp(x[..., 0], patterns=_k4_patterns()[:1],
                                                    polynomials=[jnp.ones((N,))])),
        (ValueError, "max_edges", lambda: G.ppgn_plus_patterns(7)),
    ]  # fmt: skip
    for exc, match, call in cases:
        with pytest.raises(exc, match=match):
            call()


def test_nnx_module_matches_the_function_and_is_invariant():
    """``eq.nn.PPGN`` (built abstractly, its parameters drawn with NumPy: random
    sampling costs more compile time than the check) called under ``nnx.jit``:
    its output equals :func:`eqjax.graphs.ppgn` with its parameters, keeps
    float32, and does not move under a relabelling of the nodes (mask included)."""
    rng = np.random.default_rng(0)
    abstract = nnx.eval_shape(
        lambda: eq.nn.PPGN(C, 4, 3, num_blocks=1, plus=True, rngs=nnx.Rngs(0))
    )
    graphdef, state = nnx.split(abstract)
    state = jax.tree_util.tree_map(
        lambda s: (0.7 * rng.normal(size=s.shape)).astype(s.dtype), state
    )
    model = nnx.merge(graphdef, state)
    x = jnp.asarray(rng.normal(size=(2, N, N, C)), jnp.float32)
    mask = jnp.asarray(np.stack([MASK, np.arange(N) < 3]))
    perm = jnp.asarray(rng.permutation(N))
    xp = eq.groups.act_adjacency(perm, x, num_feature_axes=1)
    mp = eq.groups.act_set(perm, mask, axis=-1)

    @nnx.jit
    def run(m, x, mask, xp, mp):
        ref = G.ppgn(m._params(), x, mask, plus=True)
        return m(x, mask), m(xp, mp), ref

    y, yp, ref = run(model, x, mask, xp, mp)
    assert y.shape == (2, 3) and y.dtype == jnp.float32
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(yp, y, rtol=1e-4, atol=1e-5)
    assert model.plus and model.normalization == "mean"
    with pytest.raises(ValueError, match="normalization"):
        eq.nn.PPGN(C, 4, 3, normalization="max", rngs=nnx.Rngs(0))


@pytest.mark.slow
def test_ppgn_plus_patterns_are_the_non_computable_ones():
    pats = G.ppgn_plus_patterns(6)
    assert len(pats) == 12 and not any(p.ppgn_computable for p in pats)
    assert [p.kind for p in pats].count("edge") == 10
    assert [(p.kind, p.num_edges) for p in pats[:3]] == [
        ("edge", 5),
        ("invariant", 6),
        ("node", 6),
    ]
    assert G.ppgn_plus_patterns(4) == () and len(G.ppgn_plus_patterns(5)) == 1


@pytest.mark.slow
def test_polynomial_channels_separate_rook_from_shrikhande():
    """srg(16, 6, 2, 2): the rook's 4×4 graph and the Shrikhande graph are
    2-FWL-equivalent, so random PPGN and PPGN++ embed them alike (to float64
    rounding); with the 12 PPGN++ polynomials (K4 among them) as channels they
    differ, for both seeds."""
    graphs = (eq.datasets.rook_graph(4), eq.datasets.shrikhande_graph())
    with jax.enable_x64(True):
        A = jnp.asarray(
            np.stack([eq.datasets.to_adjacency(g) for g in graphs]), jnp.float64
        )
        x0 = G.ppgn_input(A)
        x6 = G.ppgn_input(A, patterns=G.ppgn_plus_patterns(6))
        assert x6.shape == (2, 16, 16, 13)
        for seed in range(2):
            for x, plus, apart in (
                (x0, False, False),
                (x0, True, False),
                (x6, True, True),
            ):
                k = jax.random.key(seed, impl="rbg")  # compiles faster than threefry
                p = G.ppgn_init(k, x.shape[-1], 8, 2, 4, plus=plus,
                                dtype=jnp.float64)  # fmt: skip
                e = np.asarray(G.ppgn(p, x, plus=plus))
                d = np.linalg.norm(e[0] - e[1]) / np.linalg.norm(e[0])
                assert (d > 1e-3) if apart else (d < 1e-12), (seed, plus, d)
