"""NNX aggregators (LCMAggregator, GRUAggregator; Ong & Veličković, LoG 2022):
shapes, gradients, validation of every option and input, low precision, padded
jraph graphs and the order-independent option (issue 12)."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest
from flax import nnx

import eqjax as eq
from eqjax.nn._lcm import LOW_PRECISION_RTOL
from eqjax.reductions import Monoid

D = 4


def _modules(**kw):
    return {
        "lcm_gru": eq.nn.LCMAggregator(D, max_segment_size=4, rngs=nnx.Rngs(0), **kw),
        "lcm_mlp": eq.nn.LCMAggregator(
            D, max_segment_size=4, cell="mlp", rngs=nnx.Rngs(1), **kw
        ),
        "gru_fold": eq.nn.GRUAggregator(D, max_segment_size=4, rngs=nnx.Rngs(2), **kw),
    }


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("cls", [eq.nn.LCMAggregator, eq.nn.GRUAggregator])
def test_every_bad_option_raises_at_construction(cls):
    name = cls.__name__
    ok = dict(max_segment_size=4, rngs=nnx.Rngs(0))
    bad = [
        ((4,), dict(max_segment_size=0), ValueError, "max_segment_size must be"),
        ((4,), dict(max_segment_size=-2), ValueError, "max_segment_size"),
        ((4,), dict(max_segment_size=2.5), ValueError, "max_segment_size"),
        ((4,), dict(max_segment_size="8"), TypeError, "max_segment_size"),
        ((0,), {}, ValueError, "features must be >= 1"),
        ((2.7,), {}, TypeError, "features must be a Python int"),
        (("4",), {}, TypeError, "features"),
        ((True,), {}, TypeError, "features"),
        ((4,), dict(order="random"), ValueError, "order must be one of"),
        ((4,), dict(on_overflow="clip"), ValueError, "on_overflow must be one of"),
        ((4,), dict(dtype=jnp.int32), TypeError, "dtype must be a floating dtype"),
        ((4,), dict(param_dtype=jnp.int8), TypeError, "param_dtype must be a floating"),
        ((4,), dict(param_dtype="no-such-dtype"), TypeError, "param_dtype"),
        ((4,), dict(rngs=0), TypeError, "rngs must be an nnx.Rngs"),
    ]
    if cls is eq.nn.LCMAggregator:
        bad += [
            ((4,), dict(cell="lstm"), ValueError, "cell must be 'gru' or 'mlp'"),
            ((4,), dict(cell="mlp", hidden=0), ValueError, "hidden must be >= 1"),
            ((4,), dict(hidden=8), ValueError, "hidden is only used by cell='mlp'"),
        ]
    for args, kw, err, match in bad:
        with pytest.raises(err, match=f"{name}: {match}"):
            cls(*args, **{**ok, **kw})


def test_inputs_checked_against_construction():
    """Integer data raise (the parameters are never cast to int32), as do a wrong
    width, a bad per-call max_segment_size and mismatched penalty triples; all at
    trace time (eval_shape: nothing compiles)."""
    mods = _modules()
    ids = jnp.zeros(5, jnp.int32)
    f32 = jax.ShapeDtypeStruct((5, D), jnp.float32)
    for m in mods.values():
        owner = type(m).__name__
        with pytest.raises(
            TypeError, match=f"{owner}: data must be floating, got int32"
        ):
            jax.eval_shape(lambda x, m=m: m(x, ids, 2), jnp.ones((5, D), jnp.int32))
        with pytest.raises(TypeError, match="x must be floating"):
            jax.eval_shape(m.dense, jax.ShapeDtypeStruct((2, 5, D), jnp.int32))
        with pytest.raises(ValueError, match=rf"data must be \[E, {D}\], got shape"):
            jax.eval_shape(lambda x, m=m: m(x, ids, 2), jnp.ones((5, D + 1)))
        with pytest.raises(ValueError, match=f"{owner}: max_segment_size must be"):
            jax.eval_shape(lambda x, m=m: m(x, ids, 2, max_segment_size=0), f32)
        with pytest.raises(ValueError, match="mask must be a boolean array"):
            jax.eval_shape(lambda x, m=m: m(x, ids, 2, jnp.ones(5)), f32)
        with pytest.raises(ValueError, match="segment 0 has 5 items"):
            m(jnp.ones((5, D)), ids, 2)  # eager: the ids are checked first
    with pytest.raises(ValueError, match="a, b, c must share a shape"):
        mods["lcm_gru"].penalties(jnp.ones((3, D)), jnp.ones((3, D)), jnp.ones((2, D)))
    with pytest.raises(TypeError, match="a must be floating"):
        mods["lcm_gru"].penalties(*[jnp.ones((3, D), jnp.int32)] * 3)


def test_low_precision_within_documented_tolerance():
    """float16 / bfloat16 data: computed in that dtype, returned in it, within
    LOW_PRECISION_RTOL of the same module in float32 (unit-normal items)."""
    mods = _modules()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, D)).astype(np.float32)
    ids = np.array([0, 0, 0, 1, 1, 1, 1, 2, 3, 3, 4, 4], np.int32)

    @nnx.jit
    def outs(mods, x):
        return {
            (k, dt): m(x.astype(dt), ids, 6)
            for k, m in mods.items()
            for dt in ("float32", "float16", "bfloat16")
        }

    got = outs(mods, x)
    for k in mods:
        ref = np.asarray(got[k, "float32"])
        for dt in ("float16", "bfloat16"):
            y = got[k, dt]
            assert y.dtype == jnp.dtype(dt)
            err = np.abs(np.asarray(y, np.float32) - ref).max() / np.abs(ref).max()
            assert err < LOW_PRECISION_RTOL[dt], (k, dt, err)
            assert err > 0  # computed in low precision, not silently in float32


# ------------------------------------------------------------ padded jraph graphs


def _graphs():
    rng = np.random.default_rng(0)
    recv = np.array([0, 0, 0, 1, 1, 2, 2, 2, 4, 4, 4, 5], np.int32)
    send = np.concatenate([rng.integers(0, 4, 8), rng.integers(4, 7, 4)])
    perm = rng.permutation(12)
    g = jraph.GraphsTuple(
        nodes=rng.normal(size=(7, D)).astype(np.float32),
        edges=None,
        senders=send[perm].astype(np.int32),
        receivers=recv[perm],
        globals=None,
        n_node=np.array([4, 3], np.int32),
        n_edge=np.array([8, 4], np.int32),
    )
    return g, jraph.pad_with_graphs(g, n_node=10, n_edge=40, n_graph=3)


def _run(mods, g, mask):
    msgs = g.nodes[g.senders]
    return {k: m(msgs, g.receivers, g.nodes.shape[0], mask) for k, m in mods.items()}


def test_padded_graphs_match_unpadded_and_sorted_order_is_invariant():
    """Each module (both orders), under nnx.jit: a jraph.pad_with_graphs batch (28
    padding edges at one node, bound 4) gives the real nodes their unpadded rows
    when the padding mask is passed; with order="sorted" permuting the edges
    changes nothing, with order="input" it does (control). As a jraph
    aggregate_edges_for_nodes_fn the padding mask is bound with partial."""
    mods = {
        **_modules(),
        **{f"{k}_sorted": v for k, v in _modules(order="sorted").items()},
    }
    g, padded = _graphs()
    p = np.random.default_rng(3).permutation(12)
    g_perm = g._replace(senders=g.senders[p], receivers=g.receivers[p])

    @nnx.jit
    def everything(mods, g, padded, g_perm):
        net = jraph.GraphNetwork(
            update_edge_fn=lambda e, s, r, glob: s,
            update_node_fn=lambda n, sent, recv, glob: recv,
            aggregate_edges_for_nodes_fn=lambda *a: mods["lcm_gru"](
                *a, jraph.get_edge_padding_mask(padded)
            ),
        )
        edges = jnp.zeros((padded.senders.shape[0], 1))
        return (
            _run(mods, g, None),
            _run(mods, padded, jraph.get_edge_padding_mask(padded)),
            _run(mods, g_perm, None),
            net(padded._replace(edges=edges)).nodes,
        )

    plain, pad, perm, net = everything(mods, g, padded, g_perm)
    for k in mods:
        np.testing.assert_allclose(
            pad[k][:7], plain[k], rtol=1e-5, atol=1e-6, err_msg=k
        )
        err = np.abs(np.asarray(perm[k]) - np.asarray(plain[k])).max()
        if k.endswith("_sorted"):
            assert err == 0, k
        else:
            assert err > 1e-5, k
    np.testing.assert_allclose(net[:7], plain["lcm_gru"], rtol=1e-5, atol=1e-6)
    # unmasked, the padding node is over-full: reported under jit
    f = nnx.jit(lambda m, g: _run({"m": m}, g, None))
    with pytest.raises(Exception, match="segment 7 has 28 items"):
        jax.block_until_ready(f(mods["lcm_gru"], padded))


@pytest.mark.slow
def test_padded_graph_eagerly_every_module_slow():
    """Eagerly (concrete ids and mask, op by op: ~10 s a module) as under jit;
    the fast tier checks the eager overflow error in
    test_inputs_checked_against_construction."""
    g, padded = _graphs()
    mods = {
        **_modules(),
        **{f"{k}_sorted": v for k, v in _modules(order="sorted").items()},
    }
    plain = _run(mods, g, None)
    pad = _run(mods, padded, jraph.get_edge_padding_mask(padded))
    with pytest.raises(ValueError, match="segment 7 has 28 items.*padding_mask"):
        _run({"m": mods["lcm_gru"]}, padded, None)
    for k in mods:
        np.testing.assert_allclose(
            pad[k][:7], plain[k], rtol=1e-5, atol=1e-6, err_msg=k
        )


# ---------------------------------------------------------- shapes and gradients


def test_lcm_aggregator_module():
    cell = "gru"
    agg = eq.nn.LCMAggregator(4, max_segment_size=8, cell=cell, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    ids = jnp.array([0, 0, 1, 1, 1, 3, 3, 3, 3])
    # swapping the two items of segment 0 (the root's subtrees) changes only the
    # rounding (the op is exactly commutative; rows of a level may round apart)
    sw = x[[1, 0, 2, 3, 4, 5, 6, 7, 8]]
    mask = jnp.array([[1, 1, 0]] * 3, bool)

    def loss(m):
        return jnp.sum((m(x, ids, 5) - 1.0) ** 2)

    @nnx.jit
    def everything(m, xs):
        return jax.vmap(lambda x: m(x, ids, 5))(xs), nnx.grad(loss)(m)

    outs, grads = everything(agg, np.stack([x, sw]))
    out, out_sw = np.asarray(outs)
    # the wrappers of tree_reduce_dense and the penalties (tested in test_tree and
    # test_monoids): traced for their shapes only
    d = jax.eval_shape(lambda x: agg.dense(x.reshape(3, 3, 4), mask=mask), x)
    penalties = jax.eval_shape(agg.penalties, x[:3], x[3:6], x[6:9])
    assert [p.shape for p in penalties] == [(), ()]
    assert out.shape == (5, 4) and out.dtype == jnp.float32
    np.testing.assert_array_equal(out[2], agg.identity[...])  # empty segment
    np.testing.assert_allclose(out_sw[0], out[0], rtol=1e-5, atol=1e-6)
    # gradients reach every parameter, including the identity (empty segments)
    leaves = jax.tree_util.tree_leaves(nnx.state(grads))
    assert leaves and all(np.isfinite(np.asarray(v)).all() for v in leaves)
    assert np.abs(np.asarray(grads.identity[...])).sum() > 0
    assert d.shape == (3, 4)
    monoid = agg.monoid()
    assert isinstance(monoid, Monoid) and monoid.name == f"symmetric_{cell}"
    np.testing.assert_array_equal(monoid.identity, agg.identity[...])
    with jax.enable_x64(True):
        x64 = jax.ShapeDtypeStruct(x.shape, jnp.float64)
        assert jax.eval_shape(lambda x: agg(x, ids, 5), x64).dtype == jnp.float64


def test_lcm_aggregator_module_mlp_cell():
    """The "mlp" cell differs only in its monoid (same reduction code)."""
    agg = eq.nn.LCMAggregator(4, max_segment_size=8, cell="mlp", rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    ids = jnp.array([0, 0, 1, 1, 1, 3, 3, 3, 3])
    f = nnx.jit(lambda m, x: m(x, ids, 5))
    out = np.asarray(f(agg, x))
    monoid = agg.monoid()
    assert monoid.name == "symmetric_mlp" and out.shape == (5, 4)
    np.testing.assert_array_equal(out[2], agg.identity[...])
    sw = x[[1, 0, 2, 3, 4, 5, 6, 7, 8]]
    np.testing.assert_allclose(np.asarray(f(agg, sw))[0], out[0], rtol=1e-5, atol=1e-6)


def test_gru_aggregator_module():
    agg = eq.nn.GRUAggregator(4, max_segment_size=8, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    out, dense = nnx.jit(
        lambda m, x: (m(x, jnp.array([0, 0, 2, 2, 2]), 3), m.dense(x[None]))
    )(agg, x)
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(np.asarray(out)[1], agg.initial[...])
    assert dense.shape == (1, 4)
