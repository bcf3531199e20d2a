"""Whole-graph models built from the layers: a global 2-IGN and a GIN baseline.

* 2-IGN: Maron, Ben-Hamu, Shamir & Lipman, "Invariant and Equivariant Graph
  Networks", ICLR 2019 — 2→2 equivariant layers on the dense ``[n, n, C]``
  tensor (adjacency, node features on the diagonal), a 2→0 invariant layer, an
  MLP. Memory ``O(n²)`` per graph.
* GIN: Xu, Hu, Leskovec & Jegelka, "How Powerful are Graph Neural Networks?",
  ICLR 2019 — ``h ← MLP((1 + ε) h + Σ_{neighbours} h)``, sum readout of every
  layer; as expressive as 1-WL at most.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jraph
from jaxtyping import Array, Bool, Float

from ._ign import IGNParams, ign_init, ign_linear


class MLPParams(NamedTuple):
    """Weights ``((C0, C1), (C1, C2), …)`` and biases of an MLP."""

    weights: tuple[Array, ...]
    biases: tuple[Array, ...]


def mlp_init(key: jax.Array, sizes, *, dtype: Any = jnp.float32) -> MLPParams:
    """An MLP with layer widths ``sizes`` (He-scaled normal weights, zero biases).

    Example:
      >>> p = mlp_init(jax.random.key(0), [3, 8, 2])
      >>> [w.shape for w in p.weights]
      [(3, 8), (8, 2)]
    """
    sizes = [int(s) for s in sizes]
    ks = jax.random.split(key, max(len(sizes) - 1, 1))
    ws = tuple(
        jax.random.normal(k, (a, b), dtype)
        * jnp.sqrt(jnp.asarray(2.0 / max(a, 1), dtype))
        for k, a, b in zip(ks, sizes[:-1], sizes[1:], strict=False)
    )
    bs = tuple(jnp.zeros((b,), dtype) for b in sizes[1:])
    return MLPParams(ws, bs)


def mlp(params: MLPParams, x: Float[Array, "... C"], activation=jax.nn.relu):
    """Apply an MLP (``activation`` between layers, none after the last)."""
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        x = x @ w.astype(x.dtype) + b.astype(x.dtype).reshape(
            (1,) * (x.ndim - 1) + (-1,)
        )
        if i < len(params.weights) - 1:
            x = activation(x)
    return x


# ------------------------------------------------------------------ 2-IGN model


class IGNModelParams(NamedTuple):
    """A global 2-IGN: 2→2 layers, one 2→0 layer, an MLP head."""

    layers: tuple[IGNParams, ...]
    pool: IGNParams
    head: MLPParams


def ign_model_init(
    key: jax.Array,
    in_channels: int,
    hidden: int,
    out_features: int,
    *,
    num_layers: int = 2,
    dtype: Any = jnp.float32,
) -> IGNModelParams:
    """Random parameters of :func:`ign_model`.

    Example:
      >>> p = ign_model_init(jax.random.key(0), 3, 8, 2, num_layers=1)
      >>> len(p.layers), p.pool.weights.shape
      (1, (2, 8, 8))
    """
    ks = jax.random.split(key, num_layers + 2)
    layers = []
    c = in_channels
    for k in ks[:num_layers]:
        layers.append(ign_init(k, 2, 2, c, hidden, dtype=dtype))
        c = hidden
    pool = ign_init(ks[-2], 2, 0, c, hidden, dtype=dtype)
    head = mlp_init(ks[-1], [hidden, hidden, out_features], dtype=dtype)
    return IGNModelParams(tuple(layers), pool, head)


@functools.partial(jax.jit, static_argnames=("normalization",))
def ign_model(
    params: IGNModelParams,
    x: Float[Array, "*batch n n C"],
    mask: Bool[Array, "*batch n"] | None = None,
    *,
    normalization: str = "mean",
) -> Float[Array, "*batch out"]:
    """Global 2-IGN (Maron et al., ICLR 2019) on dense pair tensors: invariant to
    node relabelling, padded nodes ignored.

    Args:
      x: ``(*batch, n, n, C)``, e.g. :meth:`eqjax.datasets.DenseBatch.ign_input`.
      mask: ``(*batch, n)`` node mask or ``None``.

    Example:
      >>> p = ign_model_init(jax.random.key(0), 2, 4, 3, num_layers=1)
      >>> ign_model(p, jnp.ones((5, 6, 6, 2))).shape
      (5, 3)
    """
    h = x
    for p in params.layers:
        h = jax.nn.relu(
            ign_linear(p, h, mask, order_in=2, order_out=2, normalization=normalization)
        )
    g = ign_linear(
        params.pool, h, mask, order_in=2, order_out=0, normalization=normalization
    )
    return mlp(params.head, jax.nn.relu(g))


# ------------------------------------------------------------------------- GIN


class GINParams(NamedTuple):
    """GIN: an MLP and an ``ε`` per layer, a linear readout per layer (the
    input included)."""

    layers: tuple[MLPParams, ...]
    eps: Array
    readout: tuple[MLPParams, ...]


def gin_init(
    key: jax.Array,
    in_features: int,
    hidden: int,
    out_features: int,
    *,
    num_layers: int = 3,
    dtype: Any = jnp.float32,
) -> GINParams:
    """Random parameters of :func:`gin`."""
    ks = jax.random.split(key, 2 * num_layers + 1)
    layers, readout = [], [mlp_init(ks[0], [in_features, out_features], dtype=dtype)]
    c = in_features
    for i in range(num_layers):
        layers.append(mlp_init(ks[1 + 2 * i], [c, hidden, hidden], dtype=dtype))
        readout.append(mlp_init(ks[2 + 2 * i], [hidden, out_features], dtype=dtype))
        c = hidden
    return GINParams(tuple(layers), jnp.zeros((num_layers,), dtype), tuple(readout))


@functools.partial(jax.jit, static_argnames=())
def gin(params: GINParams, graph: jraph.GraphsTuple) -> Float[Array, "G out"]:
    """GIN (Xu et al., ICLR 2019) on a (padded) ``GraphsTuple``: sum aggregation
    over incoming edges, per-graph sum readout of every layer, summed linear
    heads. Returns ``(n_graph, out)``.

    Example:
      >>> import numpy as np
      >>> from eqjax import datasets
      >>> g, _, _ = datasets.pad_graphs([datasets.cycle_graph(3)])
      >>> gin(gin_init(jax.random.key(0), 1, 8, 2), g).shape
      (2, 2)
    """
    x = jnp.asarray(graph.nodes)
    if x.ndim != 2:
        raise ValueError(f"gin: graph.nodes must be (N, F), got {x.shape}")
    N = x.shape[0]
    if graph.senders is None or graph.receivers is None:
        raise ValueError("gin: graph.senders and graph.receivers are required")
    senders, receivers = jnp.asarray(graph.senders), jnp.asarray(graph.receivers)
    G = jnp.shape(graph.n_node)[0]
    gid = jnp.repeat(jnp.arange(G), jnp.asarray(graph.n_node), total_repeat_length=N)
    out = mlp(params.readout[0], jax.ops.segment_sum(x, gid, G))
    h = x
    for i, p in enumerate(params.layers):
        agg = jax.ops.segment_sum(h[senders], receivers, N)
        h = jax.nn.relu(mlp(p, (1 + params.eps[i].astype(h.dtype)) * h + agg))
        out = out + mlp(params.readout[i + 1], jax.ops.segment_sum(h, gid, G))
    return out
