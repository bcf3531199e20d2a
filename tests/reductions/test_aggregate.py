"""Registry rows, jraph aggregation, the GRU fold and the NNX modules."""

from functools import partial

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

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


def test_control_lcm_tree_not_invariant_under_all_of_sn():
    """Control that must fail: the learnable tree is no set function under Sn(8)
    (while the row's own group, the tree's automorphisms, leaves it invariant)."""
    row = ROWS["reductions.lcm_gru_tree_automorphisms"]
    with jax.enable_x64(True):
        x = row.make_input(jax.random.key(0), jnp.float64)
        key = jax.random.key(1)

        @jax.jit
        def errors(x):
            y = row.fn(x)
            out = []
            for sample in (row.group.sample, row.sample):
                xs = jax.vmap(lambda g: row.act_in(g, x))(sample(key, (4,)))
                err = jnp.abs(jax.vmap(row.fn)(xs) - y[None]).max()
                out.append(err / jnp.abs(y).max())
            return out

        all_of_sn, automorphisms = errors(x)
        assert float(all_of_sn) > 1e-3
        assert float(automorphisms) < 1e-12


def test_tree_automorphisms_are_a_group_of_permutations():
    sample = jax.jit(R.sample_tree_automorphisms, static_argnums=1)
    p = sample(jax.random.key(0), (64,))
    assert (jnp.sort(p, axis=-1) == jnp.arange(8)[None]).all()
    assert len({tuple(v) for v in np.asarray(p).tolist()}) > 30  # 2**7 = 128 elements
    # every element (and a composition of two) keeps first-level siblings (i, i+4)
    # together: their images differ exactly in the top bit
    p = np.asarray(p)
    for q in (p[0], p[1], p[0][p[1]]):  # Sn composes as index arrays
        assert ((q[:4] ^ q[4:]) == 4).all()


def test_aggregate_matches_jraph_and_works_in_graph_network():
    with jax.enable_x64(True):
        g = R.make_graph(jax.random.key(0), jnp.float64)
        msgs = g.nodes[g.senders]
        agg = tree_aggregator(jnp.maximum, identity=-jnp.inf, max_segment_size=16)
        net = jraph.GraphNetwork(
            update_edge_fn=lambda e, s, r, glob: s,
            update_node_fn=lambda n, sent, recv, glob: recv,
            aggregate_edges_for_nodes_fn=agg,
        )
        g2 = g._replace(edges=jnp.zeros((g.senders.shape[0], 1)))

        @jax.jit
        def both(msgs, g2):
            out = aggregate(
                msgs, g.receivers, 8, op=jnp.add, identity=0.0, max_segment_size=32
            )
            return out, net(g2).nodes

        out, got = both(msgs, g2)
        m, r = np.asarray(msgs), np.asarray(g.receivers)
        want_sum = np.stack([m[r == v].sum(0) for v in range(8)])
        want_max = np.stack(
            [
                m[r == v].max(0) if (r == v).any() else np.full(3, -np.inf)
                for v in range(8)
            ]
        )
        np.testing.assert_allclose(out, want_sum, atol=1e-12)
        np.testing.assert_array_equal(got, want_max)


def test_gru_fold_matches_python_loop_and_depends_on_order():
    with jax.enable_x64(True):
        p = init_gru_cell(jax.random.key(0), 4, dtype=jnp.float64)
        x = np.random.default_rng(1).normal(size=(7, 4))
        ids = jnp.array([2, 0, 2, 2, 0, 3, 2])
        mask = jnp.array([[True, False, True]])

        @jax.jit
        def folds(x):
            return (
                gru_fold(p, x, ids, 4, max_segment_size=4),
                gru_fold(p, x[::-1], ids[::-1], 4, max_segment_size=4),
                gru_fold_dense(p, x[None, :3], mask=mask),
            )

        out, rev, dense = folds(x)
        cell = jax.jit(partial(gru_cell, p))
        for s in range(4):
            h = np.zeros(4)
            for k in np.flatnonzero(np.asarray(ids) == s):
                h = cell(x[k], h)
            np.testing.assert_allclose(out[s], h, atol=1e-12)
        h = cell(x[2], cell(x[0], np.zeros(4)))
        np.testing.assert_allclose(dense[0], h, atol=1e-12)
        # recurrent folds are order dependent (the reason for LCMs)
        assert np.abs(np.asarray(rev) - np.asarray(out)).max() > 1e-3
        with pytest.raises(ValueError, match="more than max_segment_size"):
            gru_fold(p, x, ids, 4, max_segment_size=3)
