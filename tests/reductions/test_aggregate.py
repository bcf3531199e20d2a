"""Registry rows, jraph aggregation, the GRU fold and the NNX modules."""

import dataclasses

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest
from flax import nnx

import eqjax as eq
import eqjax.nn
from eqjax.reductions import _rows as R
from eqjax.reductions import (
    aggregate,
    gru_cell,
    gru_fold,
    gru_fold_dense,
    init_gru_cell,
    tree_aggregator,
)
from eqjax.testing import registered

ROWS = {r.name: r for r in registered(["reductions"])}


def _max_error(row, x, key, num=4):
    sample = row.sample or row.group.sample
    gs = sample(key, (num,))
    fn = jax.jit(row.fn)
    y = fn(x)
    errs = []
    for g in gs:
        yg = fn(row.act_in(g, x))
        want = y if row.act_out is None else row.act_out(g, y)
        errs.append(float(jnp.max(jnp.abs(yg - want)) / (jnp.max(jnp.abs(y)) + 1e-30)))
    return max(errs)


def test_control_lcm_tree_not_invariant_under_all_of_sn():
    """Control that must fail: the learnable tree is no set function under Sn(8)."""
    row = ROWS["reductions.lcm_gru_tree_automorphisms"]
    with jax.enable_x64(True):
        x = row.make_input(jax.random.key(0), jnp.float64)
        full = dataclasses.replace(row, sample=None)
        assert _max_error(full, x, jax.random.key(1)) > 1e-3


def test_tree_automorphisms_are_a_group_of_permutations():
    p = R.sample_tree_automorphisms(jax.random.key(0), (64,))
    assert (jnp.sort(p, axis=-1) == jnp.arange(8)[None]).all()
    assert len({tuple(v) for v in np.asarray(p).tolist()}) > 30  # 2**7 = 128 elements
    # every element (and a composition of two) keeps first-level siblings (i, i+4)
    # together: their images differ exactly in the top bit
    for q in (p[0], p[1], eq.groups.Sn(8).compose(p[0], p[1])):
        q = np.asarray(q)
        assert ((q[:4] ^ q[4:]) == 4).all()


def test_aggregate_matches_jraph_and_works_in_graph_network():
    with jax.enable_x64(True):
        g = R.make_graph(jax.random.key(0), jnp.float64)
        msgs = g.nodes[g.senders]
        out = aggregate(
            msgs, g.receivers, 8, op=jnp.add, identity=0.0, max_segment_size=32
        )
        np.testing.assert_allclose(
            out, jraph.segment_sum(msgs, g.receivers, 8), atol=1e-12
        )
        agg = tree_aggregator(jnp.maximum, identity=-jnp.inf, max_segment_size=16)
        net = jraph.GraphNetwork(
            update_edge_fn=lambda e, s, r, glob: s,
            update_node_fn=lambda n, sent, recv, glob: recv,
            aggregate_edges_for_nodes_fn=agg,
        )
        g2 = g._replace(edges=jnp.zeros((g.senders.shape[0], 1)))
        got = jax.jit(net)(g2).nodes
        np.testing.assert_array_equal(got, jraph.segment_max(msgs, g.receivers, 8))


def test_gru_fold_matches_python_loop_and_depends_on_order():
    with jax.enable_x64(True):
        p = init_gru_cell(jax.random.key(0), 4, dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (7, 4), jnp.float64)
        ids = jnp.array([2, 0, 2, 2, 0, 3, 2])
        out = jax.jit(lambda x: gru_fold(p, x, ids, 4, max_segment_size=4))(x)
        for s in range(4):
            h = jnp.zeros(4, jnp.float64)
            for k in np.flatnonzero(np.asarray(ids) == s):
                h = gru_cell(p, x[k], h)
            np.testing.assert_allclose(out[s], h, atol=1e-12)
        dense = gru_fold_dense(p, x[None, :3], mask=jnp.array([[True, False, True]]))
        h = gru_cell(p, x[2], gru_cell(p, x[0], jnp.zeros(4, jnp.float64)))
        np.testing.assert_allclose(dense[0], h, atol=1e-12)
        # recurrent folds are order dependent (the reason for LCMs)
        rev = gru_fold(p, x[::-1], ids[::-1], 4, max_segment_size=4)
        assert float(jnp.abs(rev - out).max()) > 1e-3
        with pytest.raises(ValueError, match="more than max_segment_size"):
            gru_fold(p, x, ids, 4, max_segment_size=3)


@pytest.mark.parametrize("cell", ["gru", "mlp"])
def test_lcm_aggregator_module(cell):
    agg = eq.nn.LCMAggregator(4, max_segment_size=8, cell=cell, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (9, 4))
    ids = jnp.array([0, 0, 1, 1, 1, 3, 3, 3, 3])
    out = nnx.jit(lambda m, x: m(x, ids, 5))(agg, x)
    assert out.shape == (5, 4) and out.dtype == jnp.float32
    np.testing.assert_array_equal(out[2], agg.identity[...])  # empty segment
    # swapping the two items of segment 0 (the root's subtrees) changes only the
    # rounding (the op is exactly commutative; rows of a level may round apart)
    sw = x.at[0].set(x[1]).at[1].set(x[0])
    np.testing.assert_allclose(agg(sw, ids, 5)[0], out[0], rtol=1e-5, atol=1e-6)
    # gradients reach every parameter, including the identity
    loss = lambda m: (
        jnp.sum(m(x, ids, 5) ** 2) + sum(m.penalties(x[:3], x[3:6], x[6:9]))
    )
    grads = nnx.jit(nnx.grad(loss))(agg)
    leaves = jax.tree_util.tree_leaves(nnx.state(grads))
    assert leaves and all(np.isfinite(np.asarray(v)).all() for v in leaves)
    assert float(jnp.abs(grads.identity[...]).sum()) > 0
    d = agg.dense(x.reshape(3, 3, 4), mask=jnp.array([[1, 1, 0]] * 3, bool))
    assert d.shape == (3, 4)
    with jax.enable_x64(True):
        assert agg(x.astype(jnp.float64), ids, 5).dtype == jnp.float64


def test_gru_aggregator_module():
    agg = eq.nn.GRUAggregator(4, max_segment_size=8, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (5, 4))
    out = agg(x, jnp.array([0, 0, 2, 2, 2]), 3)
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out[1], agg.initial[...])
    assert agg.dense(x[None]).shape == (1, 4)
