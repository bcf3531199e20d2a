"""NNX modules around :mod:`eqjax.geometric`: ``EGNNLayer``, ``EGNN``, ``PONITA``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jraph
from flax import nnx

from .. import geometric as geo


def _edges(graphs: jraph.GraphsTuple, who: str) -> tuple[Any, Any]:
    if graphs.senders is None or graphs.receivers is None:
        raise ValueError(
            f"{who}: graphs has no edges; build them with "
            "eq.geometric.with_radius_graph (or give senders and receivers)"
        )
    return graphs.senders, graphs.receivers


class MLP(nnx.Module):
    """``Linear -> act -> ... -> Linear`` (no activation after the last layer
    unless ``final_activation``)."""

    def __init__(
        self,
        sizes,
        *,
        activation=nnx.silu,
        final_activation: bool = False,
        use_bias: bool = True,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.layers = nnx.List(
            [
                nnx.Linear(
                    a,
                    b,
                    use_bias=use_bias,
                    dtype=dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )
        self.activation = activation
        self.final_activation = final_activation
        self.dtype = dtype

    def __call__(self, x):
        dt = x.dtype
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < n - 1 or self.final_activation:
                x = self.activation(x)
        # dtype in, dtype out (float16 inputs with float32 parameters compute in
        # float32 and return float16), unless a computation dtype was chosen
        return x if self.dtype is not None else x.astype(dt)


class EGNNLayer(nnx.Module):
    """One EGNN layer (Satorras et al., ICML 2021): the MLPs of
    :func:`eqjax.geometric.egnn_layer`.

    Args:
      features: node feature size ``F``.
      hidden: message / hidden size ``M``.
      edge_features: size ``A`` of invariant edge attributes (0: none).
      velocity: update velocities (Eq. 7).
      aggregation, normalize: as in :func:`eqjax.geometric.egnn_layer`.
      coord_scale: scale of the last coordinate-MLP layer's initial weights
        (small keeps early updates stable).
      rngs: ``nnx.Rngs``.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> layer = EGNNLayer(4, 8, rngs=nnx.Rngs(0))
      >>> h, x, v = layer(jnp.ones((3, 4)), jnp.eye(3), jnp.array([0, 1]),
      ...     jnp.array([1, 2]))
      >>> h.shape, x.shape, v is None
      ((3, 4), (3, 3), True)
    """

    def __init__(
        self,
        features: int,
        hidden: int,
        *,
        edge_features: int = 0,
        velocity: bool = False,
        aggregation: str = "mean",
        normalize: bool = False,
        coord_scale: float = 0.01,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.phi_e = MLP(
            [2 * features + 1 + edge_features, hidden, hidden],
            final_activation=True,
            **kw,
        )
        self.phi_x = MLP([hidden, hidden, 1], **kw)
        last = self.phi_x.layers[-1]
        last.kernel[...] = last.kernel[...] * coord_scale
        self.phi_h = MLP([features + hidden, hidden, features], **kw)
        self.phi_v = MLP([features, hidden, 1], **kw) if velocity else None
        self.aggregation, self.normalize = aggregation, normalize

    def __call__(
        self, h, x, senders, receivers, *, v=None, edge_attr=None, edge_mask=None
    ):
        if (v is None) != (self.phi_v is None):
            raise ValueError(
                "EGNNLayer: pass v exactly when the layer was built with velocity=True"
            )
        return geo.egnn_layer(
            h,
            x,
            senders,
            receivers,
            phi_e=self.phi_e,
            phi_x=self.phi_x,
            phi_h=self.phi_h,
            phi_v=self.phi_v,
            v=v,
            edge_attr=edge_attr,
            edge_mask=edge_mask,
            aggregation=self.aggregation,
            normalize=self.normalize,
        )


class EGNNOutput(NamedTuple):
    """What :class:`EGNN` returns.

    Attributes:
      node_features: ``[N, out_features]`` invariant node outputs.
      graph_features: ``[G, out_features]`` their sum over each graph.
      positions: ``[N, 3]`` updated positions (equivariant).
      velocities: ``[N, 3]`` updated velocities, or ``None``.
    """

    node_features: jax.Array
    graph_features: jax.Array
    positions: jax.Array
    velocities: jax.Array | None


class EGNN(nnx.Module):
    """An EGNN on a (padded) geometric ``GraphsTuple`` (Satorras et al., ICML 2021).

    Reads ``nodes["positions"] [N, 3]``, ``nodes["features"] [N, in_features]``
    (a constant 1 when ``in_features = 0``), ``nodes["velocities"] [N, 3]`` when
    ``velocity=True`` (the paper's N-body model; the velocity norm is appended to
    the features), and ``edges["mask"]`` when present.

    Args:
      in_features: invariant input size.
      hidden: hidden size.
      out_features: output size of the node / graph readout.
      num_layers: EGNN layers.
      velocity: use and update velocities.
      edge_features: size of ``edges["attr"]`` (0: none).
      aggregation, normalize: as in :func:`eqjax.geometric.egnn_layer`.
      rngs: ``nnx.Rngs``.

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> from flax import nnx
      >>> g = jraph.GraphsTuple(nodes={"positions": jnp.eye(3)}, edges=None,
      ...     senders=jnp.array([0, 1, 2]), receivers=jnp.array([1, 2, 0]),
      ...     globals=None, n_node=jnp.array([3]), n_edge=jnp.array([3]))
      >>> out = EGNN(0, 8, 1, num_layers=2, rngs=nnx.Rngs(0))(g)
      >>> out.graph_features.shape, out.positions.shape
      ((1, 1), (3, 3))
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        out_features: int,
        *,
        num_layers: int = 4,
        velocity: bool = False,
        edge_features: int = 0,
        aggregation: str = "mean",
        normalize: bool = False,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.in_features, self.velocity = in_features, velocity
        n_in = max(in_features, 1) + (1 if velocity else 0)
        self.embed = nnx.Linear(n_in, hidden, **kw)
        self.layers = nnx.List(
            [
                EGNNLayer(
                    hidden,
                    hidden,
                    edge_features=edge_features,
                    velocity=velocity,
                    aggregation=aggregation,
                    normalize=normalize,
                    **kw,
                )
                for _ in range(num_layers)
            ]
        )
        self.head = MLP([hidden, hidden, out_features], **kw)

    def __call__(self, graphs: jraph.GraphsTuple) -> EGNNOutput:
        x = geo.positions_of(graphs)
        nodes = geo.node_dict(graphs)
        n = x.shape[0]
        if self.in_features:
            h = nodes["features"]
            if h.shape != (n, self.in_features):
                raise ValueError(
                    f"nodes['features'] must be [{n}, {self.in_features}], got {h.shape}"
                )
        else:
            h = jnp.ones((n, 1), x.dtype)
        v = None
        if self.velocity:
            if "velocities" not in nodes:
                raise ValueError("EGNN(velocity=True) needs nodes['velocities'] [N, 3]")
            v = nodes["velocities"]
            vn = jnp.sqrt(jnp.sum(v * v, -1, keepdims=True) + 1e-12)
            h = jnp.concatenate([h, vn.astype(h.dtype)], -1)
        h = self.embed(h.astype(x.dtype))
        edges: Any = graphs.edges
        attr = edges.get("attr") if isinstance(edges, dict) else None
        mask = geo.edge_mask_of(graphs)
        snd, rcv = _edges(graphs, "EGNN")
        for layer in self.layers:
            h, x, v = layer(
                h,
                x,
                snd,
                rcv,
                v=v,
                edge_attr=attr,
                edge_mask=mask,
            )
        out = self.head(h)
        gid = geo.graph_index(graphs)
        per_graph = jax.ops.segment_sum(
            out, gid, num_segments=jnp.asarray(graphs.n_node).shape[0]
        )
        return EGNNOutput(out, per_graph, x, v)


class ConvNeXtBlock(nnx.Module):
    """PONITA's ConvNeXt block (parameters of :func:`eqjax.geometric.convnext_block`).

    Args:
      channels: ``C``.
      basis_dim: size ``B`` of the embedded invariants (the kernel basis).
      widening: MLP width factor (4 in the paper).
      layer_scale: initial layer-scale value (``None``: 1, no scaling).
      separable: separable (default) or full fiber-bundle convolution.
      fiber: whether a fiber kernel is used (``False`` for ``O = 1`` modes).
    """

    def __init__(
        self,
        channels: int,
        basis_dim: int,
        *,
        widening: int = 4,
        layer_scale: float | None = 1e-6,
        separable: bool = True,
        fiber: bool = True,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        c, b, h = channels, basis_dim, widening * channels
        init = nnx.initializers.lecun_normal()
        key = rngs.params
        self.kernel_spatial = nnx.Param(init(key(), (b, c), param_dtype))
        self.kernel_fiber = (
            nnx.Param(init(key(), (b, c), param_dtype)) if fiber and separable else None
        )
        self.conv_bias = nnx.Param(jnp.zeros((c,), param_dtype))
        self.norm_scale = nnx.Param(jnp.ones((c,), param_dtype))
        self.norm_bias = nnx.Param(jnp.zeros((c,), param_dtype))
        self.w1 = nnx.Param(init(key(), (c, h), param_dtype))
        self.b1 = nnx.Param(jnp.zeros((h,), param_dtype))
        self.w2 = nnx.Param(init(key(), (h, c), param_dtype))
        self.b2 = nnx.Param(jnp.zeros((c,), param_dtype))
        ls = 1.0 if layer_scale is None else layer_scale
        self.layer_scale = nnx.Param(jnp.full((c,), ls, param_dtype))
        self.separable = separable

    def __call__(
        self, x, basis_spatial, basis_fiber, senders, receivers, *, edge_mask=None
    ):
        dt = x.dtype
        names = (
            "kernel_spatial",
            "conv_bias",
            "norm_scale",
            "norm_bias",
            "w1",
            "b1",
            "w2",
            "b2",
            "layer_scale",
        )
        params = {k: getattr(self, k)[...].astype(dt) for k in names}
        if self.kernel_fiber is not None:
            params["kernel_fiber"] = self.kernel_fiber[...].astype(dt)
        return geo.convnext_block(
            params,
            x,
            basis_spatial,
            basis_fiber if self.kernel_fiber is not None else None,
            senders,
            receivers,
            edge_mask=edge_mask,
            separable=self.separable,
        )


_MODES = ("fiber_bundle", "point_cloud", "r3")


def _safe_sqrt(sq):
    """``sqrt`` with gradient 0 (not NaN) at 0 (self-loop padding edges)."""
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


class PONITA(nnx.Module):
    """PONITA (Bekkers et al., ICLR 2024) on a padded geometric ``GraphsTuple``.

    Node inputs: ``nodes["positions"] [N, 3]``, ``nodes["features"] [N,
    in_features]`` (a constant 1 when ``in_features = 0``), ``nodes["vectors"]
    [N, vector_inputs, 3]`` (velocities, ..., lifted as ``v·o``), and in the
    point-cloud mode ``nodes["orientations"] [N, 3]`` (unit vectors); the edges
    (e.g. from :func:`eqjax.geometric.with_radius_graph`) with ``edges["mask"]``
    when present. Positions are used in the data's own units (distances are
    computed from squares, and the polynomial attribute embedding raises them to
    the power ``degree``): in float32 keep them below about
    ``1e38 ** (1 / max(2, degree))`` (``1e19`` for degree 2), or rescale them
    first; beyond, intermediates overflow to inf/NaN although the
    layer-normalised output would exist.

    Modes: ``"fiber_bundle"`` (features on a shared grid of ``num_ori``
    orientations; separable spatial ``[E, O, 2]`` and fiber ``[O, O, 1]``
    invariants; exactly invariant under rotations that permute the grid, e.g. the
    octahedral grid, approximately otherwise), ``"point_cloud"`` (one orientation
    per node, invariants ``[E, 1, 3]``; exactly E(3)-invariant) and ``"r3"``
    (distance only; scalar outputs only).

    Args:
      in_features: invariant node input size.
      hidden: channels ``C``.
      num_layers: ConvNeXt blocks.
      scalar_outputs: ``S`` invariant outputs.
      vector_inputs: ``V_in`` vector inputs.
      vector_outputs: ``V`` equivariant vector outputs (node level).
      mode: one of ``"fiber_bundle"``, ``"point_cloud"``, ``"r3"``.
      num_ori: grid size ``O`` (fiber bundle).
      grid_kind: :func:`eqjax.geometric.sphere_grid` kind.
      radius: if given, kernels are multiplied by a smooth cutoff at ``radius``
        (use the radius of the radius graph, for smooth energies).
      degree: polynomial embedding degree of the invariants.
      basis_dim: kernel basis size (default ``hidden``).
      separable: separable (default) or full fiber-bundle convolution.
      readout: ``"graph"`` (scalars summed per graph, ``[G, S]``) or ``"node"``.
      rngs: ``nnx.Rngs``.

    Returns (``__call__(graphs, *, grid=None)``):
      scalars ``[G, S]`` (or ``[N, S]``); with ``vector_outputs > 0`` the tuple
      ``(scalars, vectors [N, V, 3])``. ``grid`` overrides the orientation grid
      at call time (the parameters do not depend on ``O``).

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> from flax import nnx
      >>> g = jraph.GraphsTuple(nodes={"positions": jnp.eye(3)}, edges=None,
      ...     senders=jnp.array([0, 1, 2]), receivers=jnp.array([1, 2, 0]),
      ...     globals=None, n_node=jnp.array([3]), n_edge=jnp.array([3]))
      >>> model = PONITA(0, 8, 1, num_ori=6, grid_kind="octahedral", rngs=nnx.Rngs(0))
      >>> model(g).shape
      (1, 1)
    """

    def __init__(
        self,
        in_features: int,
        hidden: int = 64,
        num_layers: int = 4,
        *,
        scalar_outputs: int = 1,
        vector_inputs: int = 0,
        vector_outputs: int = 0,
        mode: str = "fiber_bundle",
        num_ori: int = 20,
        grid_kind: str = "fibonacci",
        radius: float | None = None,
        degree: int = 2,
        basis_dim: int | None = None,
        separable: bool = True,
        readout: str = "graph",
        layer_scale: float | None = None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        if mode not in _MODES:
            raise ValueError(f"PONITA: mode must be one of {_MODES}, got {mode!r}")
        if readout not in ("graph", "node"):
            raise ValueError(
                f"PONITA: readout must be 'graph' or 'node', got {readout!r}"
            )
        if mode == "r3" and (vector_outputs or vector_inputs):
            raise ValueError(
                "PONITA(mode='r3') has no orientations: no vector in/outputs"
            )
        if mode != "fiber_bundle" and not separable:
            raise ValueError("separable=False needs mode='fiber_bundle'")
        if radius is not None and not radius > 0:
            raise ValueError(f"PONITA: radius must be > 0, got {radius!r}")
        self.mode, self.radius, self.degree = mode, radius, degree
        self.separable, self.readout = separable, readout
        self.in_features, self.vector_inputs = in_features, vector_inputs
        self.scalar_outputs, self.vector_outputs = scalar_outputs, vector_outputs
        self.grid = (
            geo.sphere_grid(num_ori, kind=grid_kind) if mode == "fiber_bundle" else None
        )
        b = basis_dim or hidden
        kw = dict(param_dtype=param_dtype, rngs=rngs)
        n_attr = {"fiber_bundle": 2 if separable else 3, "point_cloud": 3, "r3": 1}[
            mode
        ]
        n_poly = sum(n_attr**d for d in range(1, degree + 1))
        act = nnx.gelu
        self.spatial_basis = MLP(
            [n_poly, hidden, b], activation=act, final_activation=True, **kw
        )
        fiber = mode == "fiber_bundle" and separable
        self.fiber_basis = (
            MLP([1, hidden, b], activation=act, final_activation=True, **kw)
            if fiber
            else None
        )
        self.embed = nnx.Linear(max(in_features, 1) + vector_inputs, hidden, **kw)
        self.blocks = nnx.List(
            [
                ConvNeXtBlock(
                    hidden,
                    b,
                    layer_scale=layer_scale,
                    separable=separable,
                    fiber=fiber,
                    **kw,
                )
                for _ in range(num_layers)
            ]
        )
        self.head = nnx.Linear(hidden, scalar_outputs + vector_outputs, **kw)

    def _inputs(self, graphs):
        pos = geo.positions_of(graphs)
        nodes = geo.node_dict(graphs)
        n = pos.shape[0]
        if self.in_features:
            s = nodes.get("features")
            if s is None or s.shape != (n, self.in_features):
                raise ValueError(
                    f"PONITA: nodes['features'] must be [{n}, {self.in_features}], "
                    f"got {None if s is None else s.shape}"
                )
            s = s.astype(pos.dtype)
        else:
            s = jnp.ones((n, 1), pos.dtype)
        v = None
        if self.vector_inputs:
            v = nodes.get("vectors")
            if v is None or v.shape != (n, self.vector_inputs, 3):
                raise ValueError(
                    f"PONITA: nodes['vectors'] must be [{n}, {self.vector_inputs}, 3], "
                    f"got {None if v is None else v.shape}"
                )
        return pos, s, v

    def __call__(self, graphs: jraph.GraphsTuple, *, grid=None):
        pos, s, v = self._inputs(graphs)
        snd, rcv = _edges(graphs, "PONITA")
        mask = geo.edge_mask_of(graphs)
        basis_fiber = None
        if self.mode == "fiber_bundle":
            ori = self.grid if grid is None else grid
            assert ori is not None
            ori = ori.astype(pos.dtype)
            spatial, fib = geo.ponita_invariants(pos, snd, rcv, ori)
            dist = _safe_sqrt(jnp.sum(spatial[:, :1, :] ** 2, -1))  # [E, 1]
            if self.separable:
                attr = spatial
                basis_fiber = self.fiber_basis(fib) if self.fiber_basis else None
            else:
                attr = geo.full_invariants(spatial, fib)
                dist = dist[..., None]
        elif self.mode == "point_cloud":
            o = geo.node_dict(graphs).get("orientations")
            if o is None:
                raise ValueError(
                    "PONITA(mode='point_cloud') needs nodes['orientations']"
                )
            attr = geo.invariants_r3s2_point_cloud(pos, o, snd, rcv)[:, None, :]
            dist = _safe_sqrt(jnp.sum(attr[..., :2] ** 2, -1))
            ori = o[:, None, :]
        else:
            attr = geo.invariants_r3(pos, snd, rcv)[:, None, :]
            dist = attr[..., 0]
            ori = jnp.ones((1, 1), pos.dtype)
        basis = self.spatial_basis(geo.polynomial_features(attr, self.degree))
        if self.radius is not None:
            basis = basis * geo.smooth_cutoff(dist, self.radius)[..., None]
        x = s[:, None, :] if self.mode == "r3" else geo.lift(ori, s, v)
        dt = pos.dtype  # dtype in, dtype out (the Linears promote to float32)
        x = self.embed(x).astype(dt)
        for block in self.blocks:
            x = block(x, basis, basis_fiber, snd, rcv, edge_mask=mask)
        y = self.head(x).astype(dt)
        scalars = geo.readout_scalars(y[..., : self.scalar_outputs])
        if self.readout == "graph":
            gid = geo.graph_index(graphs)
            scalars = jax.ops.segment_sum(
                scalars, gid, num_segments=jnp.asarray(graphs.n_node).shape[0]
            )
        if not self.vector_outputs:
            return scalars
        vectors = geo.readout_vectors(y[..., self.scalar_outputs :], ori)
        return scalars, vectors
