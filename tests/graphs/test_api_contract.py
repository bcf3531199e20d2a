"""The issue's public API contract, line by line (SPEN's call is its doctest)."""

import inspect
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_contract_names_and_signatures():
    if (DATA / "tu").is_dir():
        graphs = eq.datasets.tu("MUTAG", DATA)
    else:
        graphs = eq.datasets.csl()
    labels = eq.datasets.graph_labels(graphs)
    folds = eq.datasets.cv_folds(labels, n_folds=10, seed=0)
    assert len(folds) == 10
    A = eq.datasets.dense_batch(graphs[:4])
    B, n = A.mask.shape
    assert A.adjacency.shape == (B, n, n, 1)
    C, D = 1, 3
    params = eq.graphs.ign_init(
        jax.random.key(0), order_in=2, order_out=2, channels_in=C, channels_out=D
    )
    y = eq.graphs.ign_linear(
        params, jnp.asarray(A.adjacency), jnp.asarray(A.mask), order_in=2, order_out=2
    )
    assert y.shape == (B, n, n, D)
    assert eq.graphs.ign_basis_size(2, 2) == 15
    g = graphs[0]
    subs = eq.graphs.ego_subgraphs(g.senders, g.receivers, g.num_nodes, hops=1)
    assert sum(int(b.mask.any(1).sum()) for b in subs.buckets) == g.num_nodes
    sig = inspect.signature(eq.nn.SPEN.__init__)
    assert list(sig.parameters)[1:5] == [
        "in_features",
        "hidden",
        "out_features",
        "hops",
    ]
    assert sig.parameters["rngs"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(ValueError, match="unknown TU data set"):
        eq.datasets.tu("MUTAGG", DATA)
    assert np.isfinite(np.asarray(y)).all()
