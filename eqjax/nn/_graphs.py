"""NNX wrappers around :mod:`eqjax.graphs`: SPEN, a global 2-IGN, GIN, one IGN
linear layer, SPE positional encodings and PPGN / PPGN++.

Mitton & Murray-Smith, "Subgraph Permutation Equivariant Networks",
arXiv:2111.11840; Maron et al., "Invariant and Equivariant Graph Networks",
ICLR 2019; Xu et al., "How Powerful are Graph Neural Networks?", ICLR 2019;
Huang et al., "On the Stability of Expressive Positional Encodings for Graphs",
ICLR 2024; Maron et al., "Provably Powerful Graph Networks", NeurIPS 2019; Puny
et al., "Equivariant Polynomials for Graph Neural Networks", ICML 2023. Each module holds its parameter pytree as ``nnx.Param`` leaves and
calls the pure function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import jraph
from flax import nnx
from jaxtyping import Array, Bool, Float

from ..graphs import (
    DEFAULT_BUCKETS,
    EgoSubgraphs,
    gin,
    gin_init,
    graph_subgraphs,
    ign_init,
    ign_linear,
    ign_model,
    ign_model_init,
    ppgn,
    ppgn_init,
    spe,
    spe_init,
    spen,
    spen_init,
)


class _PytreeParams(nnx.Module):
    """Stores a parameter pytree as ``nnx.Param`` leaves (``self.leaves``)."""

    def _store(self, tree: Any) -> None:
        leaves, self._treedef = jax.tree_util.tree_flatten(tree)
        self.leaves = nnx.List([nnx.Param(v) for v in leaves])

    def _params(self, dtype: Any = None) -> Any:
        vals = [p[...] for p in self.leaves]
        if dtype is not None:
            vals = [v.astype(dtype) for v in vals]
        return jax.tree_util.tree_unflatten(self._treedef, vals)


class SPEN(_PytreeParams):
    """Sub-graph permutation-equivariant network (Mitton & Murray-Smith).

    ``hops``-hop ego networks in size buckets (host side), ``num_layers`` SPEN
    layers (2-IGN updates of each sub-graph's node and pair features, weights
    per size bucket unless ``share_weights``, scattered back and averaged),
    per-graph sum readout, MLP head. :func:`eqjax.graphs.spen` underneath.

    Args:
      in_features: node feature width ``F``.
      hidden: width of node and pair features.
      out_features: output width.
      hops: ego-network radius ``k >= 1``.
      num_layers: SPEN layers.
      bucket_sizes: sub-graph size buckets (increasing node capacities).
      share_weights: one weight set for every bucket (then the output does not
        depend on the bucket boundaries either).
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: computation dtype (default: that of the node features).
      param_dtype: parameter dtype.

    Example:
      >>> from flax import nnx
      >>> from eqjax import datasets
      >>> g, _, _ = datasets.pad_graphs([datasets.cycle_graph(5), datasets.cycle_graph(4)])
      >>> model = SPEN(1, 4, 2, hops=1, num_layers=1, bucket_sizes=(4,), rngs=nnx.Rngs(0))
      >>> model(g).shape
      (3, 2)
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        out_features: int,
        hops: int = 1,
        *,
        num_layers: int = 2,
        bucket_sizes: Sequence[int] = DEFAULT_BUCKETS,
        share_weights: bool = False,
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        if isinstance(hops, bool) or not isinstance(hops, int) or hops < 1:
            raise ValueError(f"SPEN: hops must be an int >= 1, got {hops!r}")
        self.hops = hops
        self.bucket_sizes = tuple(int(b) for b in bucket_sizes)
        self.dtype = dtype
        self._store(
            spen_init(
                rngs.params(),
                in_features,
                hidden,
                out_features,
                num_layers=num_layers,
                num_buckets=len(self.bucket_sizes),
                share_weights=share_weights,
                dtype=param_dtype,
            )
        )

    def subgraphs(self, graph: jraph.GraphsTuple) -> EgoSubgraphs:
        """The ego networks of ``graph`` in this model's buckets (host side: call
        outside ``jit`` and pass the result to ``__call__``)."""
        return graph_subgraphs(graph, self.hops, bucket_sizes=self.bucket_sizes)

    def __call__(
        self, graph: jraph.GraphsTuple, subgraphs: EgoSubgraphs | None = None
    ) -> Float[Array, "G out"]:
        """Logits ``(n_graph, out)`` of a padded ``GraphsTuple`` with ``(N, F)``
        node features (one-hot labels). ``subgraphs`` defaults to
        :meth:`subgraphs` (concrete arrays only)."""
        if subgraphs is None:
            subgraphs = self.subgraphs(graph)
        if subgraphs.sizes != self.bucket_sizes:
            raise ValueError(
                f"SPEN: sub-graph buckets {subgraphs.sizes} differ from the model's "
                f"{self.bucket_sizes}"
            )
        x = jnp.asarray(graph.nodes)
        dt = self.dtype or x.dtype
        return spen(self._params(dt), graph._replace(nodes=x.astype(dt)), subgraphs)


class IGN(_PytreeParams):
    """Global 2-IGN (Maron et al., ICLR 2019) on dense ``[B, n, n, C]`` tensors
    with a ``[B, n]`` node mask: :func:`eqjax.graphs.ign_model`.

    Example:
      >>> from flax import nnx
      >>> IGN(2, 4, 3, num_layers=1, rngs=nnx.Rngs(0))(jnp.ones((4, 5, 5, 2))).shape
      (4, 3)
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        out_features: int,
        *,
        num_layers: int = 2,
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        self.dtype = dtype
        self._store(
            ign_model_init(
                rngs.params(),
                in_channels,
                hidden,
                out_features,
                num_layers=num_layers,
                dtype=param_dtype,
            )
        )

    def __call__(
        self, x: Float[Array, "B n n C"], mask: Bool[Array, "B n"] | None = None
    ) -> Float[Array, "B out"]:
        """Invariant outputs ``(B, out)``."""
        dt = self.dtype or x.dtype
        return ign_model(self._params(dt), x.astype(dt), mask)


class GIN(_PytreeParams):
    """GIN (Xu et al., ICLR 2019) on a padded ``GraphsTuple``:
    :func:`eqjax.graphs.gin`.

    Example:
      >>> from flax import nnx
      >>> from eqjax import datasets
      >>> g, _, _ = datasets.pad_graphs([datasets.cycle_graph(5)])
      >>> GIN(1, 8, 2, num_layers=1, rngs=nnx.Rngs(0))(g).shape
      (2, 2)
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        out_features: int,
        *,
        num_layers: int = 3,
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        self.dtype = dtype
        self._store(
            gin_init(
                rngs.params(),
                in_features,
                hidden,
                out_features,
                num_layers=num_layers,
                dtype=param_dtype,
            )
        )

    def __call__(self, graph: jraph.GraphsTuple) -> Float[Array, "G out"]:
        """Logits ``(n_graph, out)``."""
        x = jnp.asarray(graph.nodes)
        dt = self.dtype or x.dtype
        return gin(self._params(dt), graph._replace(nodes=x.astype(dt)))


class IGNLinear(_PytreeParams):
    """One equivariant linear layer ``order_in → order_out`` (orders 0–3):
    :func:`eqjax.graphs.ign_linear`.

    Example:
      >>> from flax import nnx
      >>> layer = IGNLinear(2, 1, 3, 4, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((2, 5, 5, 3))).shape
      (2, 5, 4)
    """

    def __init__(
        self,
        order_in: int,
        order_out: int,
        channels_in: int,
        channels_out: int,
        *,
        bias: bool = True,
        normalization: str = "mean",
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        self.order_in, self.order_out = int(order_in), int(order_out)
        self.normalization = normalization
        self.dtype = dtype
        self._store(
            ign_init(
                rngs.params(),
                order_in,
                order_out,
                channels_in,
                channels_out,
                bias=bias,
                dtype=param_dtype,
            )
        )

    def __call__(self, x: Array, mask: Array | None = None, *, n: int | None = None):
        """Apply the layer to ``x (*batch, n, …, n, C)`` (``order_in`` node axes)."""
        dt = self.dtype or x.dtype
        return ign_linear(
            self._params(dt),
            x.astype(dt),
            mask,
            order_in=self.order_in,
            order_out=self.order_out,
            normalization=self.normalization,
            n=n,
        )


class SPE(_PytreeParams):
    """Stable and expressive positional encodings (Huang et al., "On the
    Stability of Expressive Positional Encodings for Graphs", ICLR 2024):
    :func:`eqjax.graphs.spe`, ``ρ([V diag(φ_ℓ(λ)) Vᵀ]_ℓ)``, with its parameters
    as ``nnx.Param`` leaves.

    Args:
      num_eigvals: ``d``, the number of eigenpairs (see
        :func:`eqjax.graphs.spe_init`).
      out_dim: ``p``, the encoding width.
      num_channels, phi_hidden, phi_layers, hidden, num_layers, diagonal: as in
        :func:`eqjax.graphs.spe_init`.
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: computation dtype (default: that of ``eigvecs``).
      param_dtype: parameter dtype.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from eqjax import graphs
      >>> A = np.roll(np.eye(5), 1, 0) + np.roll(np.eye(5), -1, 0)
      >>> ep = graphs.laplacian_eigenpairs(A, 3, dtype=np.float32)
      >>> s, r = np.nonzero(A)
      >>> model = SPE(3, 4, num_channels=2, hidden=8, rngs=nnx.Rngs(0))
      >>> model(ep.eigvals, ep.eigvecs, s, r, eigval_mask=ep.mask).shape
      (5, 4)
    """

    def __init__(
        self,
        num_eigvals: int,
        out_dim: int,
        *,
        num_channels: int = 8,
        phi_hidden: int = 16,
        phi_layers: int = 2,
        hidden: int = 32,
        num_layers: int = 2,
        diagonal: bool = False,
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        self.num_eigvals = int(num_eigvals)
        self.dtype = dtype
        self._store(
            spe_init(
                rngs.params(),
                num_eigvals,
                out_dim,
                num_channels=num_channels,
                phi_hidden=phi_hidden,
                phi_layers=phi_layers,
                hidden=hidden,
                num_layers=num_layers,
                diagonal=diagonal,
                dtype=param_dtype,
            )
        )

    def __call__(
        self,
        eigvals: Float[Array, "*batch d"],
        eigvecs: Float[Array, "*batch n d"],
        senders: Array,
        receivers: Array,
        node_mask: Bool[Array, "*batch n"] | None = None,
        *,
        eigval_mask: Bool[Array, "*batch d"] | None = None,
    ) -> Float[Array, "*batch n p"]:
        """Positional encodings ``(*batch, n, p)`` (arguments as in
        :func:`eqjax.graphs.spe`)."""
        V = jnp.asarray(eigvecs)
        dt = self.dtype or V.dtype
        return spe(  # spe casts the parameters to dt inside its compiled program
            self._params(),
            jnp.asarray(eigvals).astype(dt),
            V.astype(dt),
            senders,
            receivers,
            node_mask,
            eigval_mask=eigval_mask,
        )


class PPGN(_PytreeParams):
    """PPGN (Maron et al., NeurIPS 2019) or PPGN++ (Puny et al., ICML 2023) on
    dense ``[B, n, n, C]`` tensors with a ``[B, n]`` node mask:
    :func:`eqjax.graphs.ppgn` (build the input with
    :func:`eqjax.graphs.ppgn_input`, polynomial channels included).

    Args:
      in_channels: channels ``C`` of the input tensor.
      hidden: block width.
      out_features: output width.
      num_blocks: PPGN blocks.
      plus: PPGN++ blocks (MLPs on ``[X, Xᵀ, δ]``, concatenating skip).
      normalization: ``"mean"`` or ``"sum"`` (matrix products and readout).
      rngs: ``nnx.Rngs`` (keyword-only).
      dtype: computation dtype (default: that of the input).
      param_dtype: parameter dtype.

    Example:
      >>> from flax import nnx
      >>> model = PPGN(2, 4, 3, num_blocks=1, plus=True, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 5, 5, 2)), jnp.ones((2, 5), bool)).shape
      (2, 3)
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        out_features: int,
        *,
        num_blocks: int = 2,
        plus: bool = False,
        normalization: str = "mean",
        rngs: nnx.Rngs,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ):
        if normalization not in ("mean", "sum"):
            raise ValueError(
                f"PPGN: normalization must be 'mean' or 'sum', got {normalization!r}"
            )
        self._store(
            ppgn_init(
                rngs.params(),
                in_channels,
                hidden,
                num_blocks,
                out_features,
                plus=plus,
                dtype=param_dtype,
            )
        )
        self.plus = bool(plus)
        self.normalization = normalization
        self.dtype = dtype

    def __call__(
        self, x: Float[Array, "B n n C"], mask: Bool[Array, "B n"] | None = None
    ) -> Float[Array, "B out"]:
        """Invariant outputs ``(B, out)``."""
        dt = self.dtype or x.dtype
        return ppgn(
            self._params(dt),
            x.astype(dt),
            mask,
            plus=self.plus,
            normalization=self.normalization,
        )
