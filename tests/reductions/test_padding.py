"""Padded jraph graphs, over-full segments, edge order and tied maxima (issue 12).

* ``jraph.pad_with_graphs`` sends every padding edge to one padding node: with
  ``mask=jraph.get_edge_padding_mask(graph)`` every aggregator gives the real
  nodes exactly their unpadded result, and the padding edges do not count
  against ``max_segment_size`` (here 28 of them at one node, bound 4);
* a real over-full segment is reported under ``jit`` (each ``on_overflow``);
* ``order="sorted"`` makes the learnable (non-associative) aggregators invariant
  to permuting the edges, ``order="input"`` is not (the control);
* ties in a tree max/min split the gradient evenly, as ``jax.ops.segment_max``.

The NNX modules' share of the padding check is in tests/nn/test_lcm_modules.py.
"""

from functools import partial

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest
from jax.experimental import checkify

from eqjax.reductions import (
    aggregate,
    gru_fold,
    init_gru_cell,
    init_mlp_op,
    logsumexp_monoid,
    max_monoid,
    min_monoid,
    product_monoid,
    segment_overflow,
    sum_monoid,
    symmetric_gru_monoid,
    symmetric_mlp_monoid,
    tree_aggregator,
    tree_reduce,
    tree_reduce_dense,
)

D = 3
MAX_DEGREE = 4
N_REAL, E_REAL = 7, 12
N_PADDED, E_PADDED = 10, 40  # 28 padding edges, all at node 7


def graphs():
    """An unpadded batch of two graphs (4 + 3 nodes, in-degree <= 3, an isolated
    node) and the same batch through ``jraph.pad_with_graphs``."""
    rng = np.random.default_rng(0)
    recv = np.array([0, 0, 0, 1, 1, 2, 2, 2, 4, 4, 4, 5])  # node 3, 6: no edges
    send = np.concatenate([rng.integers(0, 4, 8), rng.integers(4, 7, 4)])
    perm = rng.permutation(E_REAL)
    g = jraph.GraphsTuple(
        nodes=rng.normal(size=(N_REAL, D)),
        edges=None,
        senders=send[perm].astype(np.int32),
        receivers=recv[perm].astype(np.int32),
        globals=None,
        n_node=np.array([4, 3], np.int32),
        n_edge=np.array([8, 4], np.int32),
    )
    padded = jraph.pad_with_graphs(g, n_node=N_PADDED, n_edge=E_PADDED, n_graph=3)
    return g, padded


def learnable_monoids():
    return {
        "gru": symmetric_gru_monoid(
            init_gru_cell(jax.random.key(1), D, dtype=jnp.float64),
            0.1 * jnp.ones(D, jnp.float64),
        ),
        "mlp": symmetric_mlp_monoid(
            init_mlp_op(jax.random.key(2), D, 2 * D, dtype=jnp.float64),
            jnp.zeros(D, jnp.float64),
        ),
    }


def aggregators():
    """Every functional aggregator: ``name -> f(messages, receivers, num_nodes,
    mask)``."""
    out = {}
    for m in (sum_monoid(), max_monoid(), min_monoid(), logsumexp_monoid()):
        out[m.name] = tree_aggregator(
            m.op, identity=m.identity, max_segment_size=MAX_DEGREE
        )
    # product through aggregate() (the same function tree_aggregator calls)
    pm = product_monoid()
    out["product"] = lambda x, r, n, mask=None: aggregate(
        x, r, n, op=pm.op, identity=pm.identity, max_segment_size=4, mask=mask
    )
    for name, m in learnable_monoids().items():
        for order in ("input", "sorted"):
            out[f"{name}_{order}"] = tree_aggregator(
                m.op, identity=m.identity, max_segment_size=MAX_DEGREE, order=order
            )
    cell = init_gru_cell(jax.random.key(3), D, dtype=jnp.float64)
    for order in ("input", "sorted"):
        out[f"gru_fold_{order}"] = lambda x, r, n, mask=None, order=order: gru_fold(
            cell, x, r, n, max_segment_size=MAX_DEGREE, mask=mask, order=order
        )
    return out


def _all(fns, g, mask):
    msgs = g.nodes[g.senders]
    n = g.nodes.shape[0]
    return {k: f(msgs, g.receivers, n, mask=mask) for k, f in fns.items()}


def _compare(plain, padded):
    for name, want in plain.items():
        got = np.asarray(padded[name])
        assert got.shape == (N_PADDED, D), name
        np.testing.assert_allclose(
            got[:N_REAL], want, rtol=1e-12, atol=1e-12, err_msg=name
        )


def test_padded_graphs_match_unpadded_and_sorted_order_invariant_under_jit():
    """Every aggregator, jitted (one program per graph shape):

    * the padded batch (28 padding edges at one node, bound 4) gives the real nodes
      their unpadded rows, and the padding node the identity; without the mask
      the padding node is over-full and reported (control);
    * with order="sorted" (and a key function) permuting the edges changes
      nothing, bit for bit (the sorted buffer is the same); with order="input"
      the learnable aggregators change (control: edge order matters).
    """
    with jax.enable_x64(True):
        g, padded = graphs()
        fns = aggregators()
        m = learnable_monoids()["gru"]
        fns["gru_key"] = tree_aggregator(
            m.op,
            identity=m.identity,
            max_segment_size=MAX_DEGREE,
            order=lambda d: d @ jnp.array([1.0, np.pi, np.e]),
        )
        run = jax.jit(lambda g, mask: _all(fns, g, mask))
        plain = run(g, None)
        pad = run(padded, jraph.get_edge_padding_mask(padded))
        _compare(plain, pad)
        np.testing.assert_array_equal(pad["sum"][N_REAL], np.zeros(D))
        np.testing.assert_array_equal(pad["max"][N_REAL], np.full(D, -np.inf))
        for seed in (5, 6):
            p = np.random.default_rng(seed).permutation(E_REAL)
            perm = run(g._replace(senders=g.senders[p], receivers=g.receivers[p]), None)
            for k in fns:
                a, b = np.asarray(perm[k]), np.asarray(plain[k])
                if k.endswith("_input"):
                    if seed == 5:  # (seed 6 keeps the middle item of each tree)
                        assert np.abs(a - b).max() > 1e-6, k
                elif k.endswith(("_sorted", "_key")):
                    np.testing.assert_array_equal(a, b, err_msg=k)
                else:  # exact monoids: rounding only
                    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        # control: unmasked, the padding node's 28 edges are over the bound
        f = jax.jit(lambda g: _all({"sum": fns["sum"]}, g, None))
        with pytest.raises(Exception, match="segment 7 has 28 items.*padding_mask"):
            jax.block_until_ready(f(padded))


def test_padded_graphs_match_unpadded_eagerly():
    """The eager path (concrete ids and mask: checked in NumPy first) on the exact
    sum, against the jitted unpadded result; every aggregator eagerly in the slow
    tier."""
    with jax.enable_x64(True):
        g, padded = graphs()
        fns = {"sum": aggregators()["sum"]}
        plain = jax.jit(lambda g: _all(fns, g, None))(g)
        _compare(plain, _all(fns, padded, jraph.get_edge_padding_mask(padded)))
        with pytest.raises(ValueError, match="segment 7 has 28 items"):
            _all(fns, padded, None)


# ------------------------------------------------------------- over-full segments

X5 = np.arange(1.0, 6.0)[:, None]
IDS5 = np.array([0, 7, 1, 1, 1], np.int32)  # id 7 out of range; segment 1: 3 > 2


def _sum(on_overflow, x, ids, mask=None):
    return tree_reduce(
        jnp.add,
        x,
        ids,
        3,
        identity=0.0,
        max_segment_size=2,
        mask=mask,
        on_overflow=on_overflow,
    )


def test_overflow_reported_under_jit():
    """A real over-full segment under jit: "raise" raises at run time (not when
    the padding item is masked), "nan" poisons that segment only, "checkify"
    reports through checkify, "truncate" keeps the first items (as documented);
    out-of-range ids are dropped as segment_sum does; segment_overflow counts."""

    @jax.jit
    def all_policies(x, ids, mask):
        return (
            _sum("raise", x, ids, mask),
            _sum("nan", x, ids),
            _sum("truncate", x, ids),
            segment_overflow(ids, 3, 2),
            segment_overflow(ids, 3, 2, mask=mask),
        )

    mask = np.array([True, True, True, True, False])
    masked, nan, trunc, over, over_masked = all_policies(X5, IDS5, mask)
    np.testing.assert_array_equal(masked[:, 0], [1.0, 7.0, 0.0])
    np.testing.assert_array_equal(nan[:, 0], [1.0, np.nan, 0.0])
    np.testing.assert_array_equal(trunc[:, 0], [1.0, 7.0, 0.0])
    np.testing.assert_array_equal(over, [0, 1, 0])
    np.testing.assert_array_equal(over_masked, [0, 0, 0])
    with pytest.raises(Exception, match="segment 1 has 3 items, more than"):
        jax.block_until_ready(all_policies(X5, IDS5, np.ones(5, bool)))
    err, out = jax.jit(checkify.checkify(partial(_sum, "checkify")))(X5, IDS5)
    with pytest.raises(checkify.JaxRuntimeError, match="segment 1 has 3 items"):
        err.throw()
    ok_ids = np.array([0, 2, 1, 1, 2], np.int32)
    err, out = jax.jit(checkify.checkify(partial(_sum, "checkify")))(X5, ok_ids)
    err.throw()  # no over-full segment: nothing to report
    # eagerly: raise/checkify raise at once, nan and truncate as under jit
    for policy in ("raise", "checkify"):
        with pytest.raises(ValueError, match="segment 1 has 4 items"):
            _sum(policy, X5, IDS5 % 3)


def test_bad_options_raise_naming_the_argument():
    x, ids = jnp.ones((3, 2)), jnp.zeros(3, jnp.int32)
    kw = dict(identity=0.0, max_segment_size=4)
    for bad, match in [
        (dict(max_segment_size=0), "max_segment_size must be an integer >= 1"),
        (dict(max_segment_size=2.5), "max_segment_size"),
        (dict(max_segment_size=True), "max_segment_size"),
        (dict(on_overflow="clip"), "on_overflow must be one of"),
        (dict(order="random"), "order must be one of"),
        (dict(mask=jnp.ones(3)), "mask must be a boolean array of shape"),
        (dict(mask=jnp.ones(4, bool)), r"mask must be a boolean array of shape \(3,\)"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            tree_reduce(jnp.add, x, ids, 1, **{**kw, **bad})
    with pytest.raises(ValueError, match="max_segment_size"):
        tree_aggregator(jnp.add, identity=0.0, max_segment_size=0)
    with pytest.raises(ValueError, match="on_overflow"):
        tree_aggregator(jnp.add, identity=0.0, max_segment_size=2, on_overflow="x")
    with pytest.raises(TypeError, match="op must be a binary function"):
        tree_aggregator("add", identity=0.0, max_segment_size=2)
    with pytest.raises(ValueError, match="key function must return"):
        jax.eval_shape(
            lambda x: tree_reduce(jnp.add, x, ids, 1, **kw, order=lambda d: d[:2]), x
        )
    with pytest.raises(TypeError, match="floating"):
        jax.eval_shape(
            lambda x: tree_reduce(jnp.add, x, ids, 1, **kw, on_overflow="nan"),
            jax.ShapeDtypeStruct((3, 2), jnp.int32),
        )
    with pytest.raises(ValueError, match="features must be an integer >= 1"):
        init_gru_cell(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="hidden must be an integer >= 1"):
        init_mlp_op(jax.random.key(0), 4, 2.5)
    with pytest.raises(ValueError, match="axis 5 is out of range"):
        tree_reduce_dense(jnp.add, jnp.ones((2, 3, 4)), identity=0.0, axis=5)
    p = init_gru_cell(jax.random.key(0), 2)
    with pytest.raises(ValueError, match=r"initial must have shape \(2,\)"):
        gru_fold(p, x, ids, 1, max_segment_size=4, initial=jnp.zeros(3))
    with pytest.raises(TypeError, match="symmetric_gru_op: operands must be floating"):
        m = symmetric_gru_monoid(p, jnp.zeros(2))
        m.op(jnp.ones((3, 2), jnp.int32), jnp.ones((3, 2), jnp.int32))
    with pytest.raises(TypeError, match="gru_fold: data must be floating"):
        gru_fold(p, jnp.ones((3, 2), jnp.int32), ids, 1, max_segment_size=4)
    with pytest.raises(ValueError, match="on_overflow"):
        gru_fold(p, x, ids, 1, max_segment_size=4, on_overflow="x")


# --------------------------------------------------------------------- ties


def test_tied_extrema_split_gradient_evenly():
    """Three tied maxima get 1/3 each (not 1/4, 1/4, 1/2 by tree position), as
    jax.ops.segment_max gives; min and the dense form alike."""
    x = np.array([[1.0, 0.0], [1.0, 2.0], [1.0, 0.0], [0.5, 0.0], [3.0, 1.0]])
    ids = np.array([0, 0, 0, 0, 1], np.int32)

    @jax.jit
    def grads(x):
        def tree(op, e):
            return lambda x: jnp.sum(
                tree_reduce(op, x, ids, 2, identity=e, max_segment_size=4)
            )

        def dense(op, e):
            return lambda x: jnp.sum(tree_reduce_dense(op, x[:4], identity=e, axis=0))

        return (
            jax.grad(tree(jnp.maximum, -jnp.inf))(x),
            jax.grad(tree(jax.lax.min, jnp.inf))(x),
            jax.grad(dense(jnp.maximum, -jnp.inf))(x),
            jax.grad(lambda x: jnp.sum(jax.ops.segment_max(x, ids, 2)))(x),
            jax.grad(lambda x: jnp.sum(jax.ops.segment_min(x, ids, 2)))(x),
        )

    g_max, g_min, g_dense, want_max, want_min = map(np.asarray, grads(x))
    np.testing.assert_allclose(g_max[:3, 0], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(g_max, want_max, rtol=1e-6)
    np.testing.assert_allclose(g_min, want_min, rtol=1e-6)
    np.testing.assert_allclose(g_dense[:4], want_max[:4], rtol=1e-6)
