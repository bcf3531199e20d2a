"""PONITA's building blocks as pure functions: lifting, fiber-bundle convolutions
(separable and full), the ConvNeXt block and the readouts.

Bekkers et al., "Fast, Expressive SE(n) Equivariant Networks through
Weight-Sharing in Position-Orientation Space" (ICLR 2024), Sec. 4. Node features
live on a grid of orientations, ``x [N, O, C]`` (``O = 1`` with per-node
orientations in the point-cloud mode). A convolution kernel is a function of the
invariants only, so the layer is equivariant: in the fiber bundle a rotation that
permutes the grid permutes the ``O`` axis, and the readouts (mean over ``O`` for
scalars, ``Σ_o f_o o / O`` for vectors) turn that into exact invariance /
equivariance; for other rotations the grid is an approximation of S² whose error
falls as ``O`` grows.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int


def _segment_sum(msg, receivers, n):
    return jax.ops.segment_sum(msg, receivers, num_segments=n)


def _masked(msg, edge_mask):
    if edge_mask is None:
        return msg
    m = edge_mask.astype(msg.dtype).reshape((-1,) + (1,) * (msg.ndim - 1))
    return msg * m


def separable_conv(
    x: Float[Array, "N O C"],
    kernel_spatial: Float[Array, "E O C"],
    kernel_fiber: Float[Array, "O O C"] | None,
    senders: Int[Array, " E"],
    receivers: Int[Array, " E"],
    *,
    edge_mask: Bool[Array, " E"] | None = None,
) -> Float[Array, "N O C"]:
    """PONITA's separable group convolution: a depthwise spatial convolution per
    orientation, ``y[i, o, c] = Σ_{j→i} k_s[e, o, c] x[j, o, c]`` (a segment sum
    over receivers), then a depthwise convolution over the sphere,
    ``z[i, o, c] = (1/O) Σ_{o'} k_f[o, o', c] y[i, o', c]``. Cost ``E·O·C + N·O²·C``.

    Args:
      x: node features on the grid.
      kernel_spatial: kernel values from the spatial invariants ``[E, O, 2]``.
      kernel_fiber: kernel values from the fiber invariants ``[O, O, 1]``
        (``None``: no sphere convolution, e.g. ``O = 1``).
      senders, receivers: ``[E]``.
      edge_mask: ``[E]``, ``False`` for padding edges (their messages are zeroed).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.ones((2, 3, 1)); ks = jnp.ones((1, 3, 1)); kf = jnp.ones((3, 3, 1))
      >>> separable_conv(x, ks, kf, jnp.array([0]), jnp.array([1]))[:, 0, 0].tolist()
      [0.0, 1.0]
    """
    n = x.shape[0]
    msg = _masked(kernel_spatial * x[senders], edge_mask)
    y = _segment_sum(msg, receivers, n)
    if kernel_fiber is None:
        return y
    return jnp.einsum("poc,noc->npc", kernel_fiber, y) / kernel_fiber.shape[1]


def fiber_bundle_conv(
    x: Float[Array, "N O C"],
    kernel: Float[Array, "E O O C"],
    senders: Int[Array, " E"],
    receivers: Int[Array, " E"],
    *,
    edge_mask: Bool[Array, " E"] | None = None,
) -> Float[Array, "N O C"]:
    """The full (non-separable) fiber-bundle convolution, for comparison:
    ``z[i, o, c] = (1/O) Σ_{j→i} Σ_{o'} k[e, o, o', c] x[j, o', c]`` with the
    kernel a function of all three R³×S² invariants of ``(x_i, o)``, ``(x_j, o')``.
    Cost ``E·O²·C`` (time and memory).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.ones((2, 3, 1)); k = jnp.ones((1, 3, 3, 1))
      >>> fiber_bundle_conv(x, k, jnp.array([0]), jnp.array([1]))[:, 0, 0].tolist()
      [0.0, 1.0]
    """
    n = x.shape[0]
    msg = jnp.einsum("epqc,eqc->epc", kernel, x[senders]) / kernel.shape[2]
    return _segment_sum(_masked(msg, edge_mask), receivers, n)


def full_invariants(
    spatial: Float[Array, "E O 2"], fiber: Float[Array, "O O 1"]
) -> Float[Array, "E O O 3"]:
    """The R³×S² invariants of every (edge, receiver orientation ``o``, sender
    orientation ``o'``) from the separable ones: ``[o·d, ‖d⊥o‖, o·o']`` (input of
    the kernel of :func:`fiber_bundle_conv`).

    Example:
      >>> import jax.numpy as jnp
      >>> full_invariants(jnp.ones((4, 3, 2)), jnp.ones((3, 3, 1))).shape
      (4, 3, 3, 3)
    """
    e, o, _ = spatial.shape
    s = jnp.broadcast_to(spatial[:, :, None, :], (e, o, o, 2))
    f = jnp.broadcast_to(fiber[None], (e, o, o, 1))
    return jnp.concatenate([s, f], -1)


def lift(
    grid: Float[Array, "*N O 3"],
    scalars: Float[Array, "N C"] | None = None,
    vectors: Float[Array, "N V 3"] | None = None,
    *,
    num_nodes: int | None = None,
) -> Float[Array, "N O F"]:
    """Lift node inputs to functions on the orientation grid: scalars are copied to
    every orientation, vectors become ``v·o``; ``F = C + V``.

    Args:
      grid: ``[O, 3]`` shared grid, or ``[N, O, 3]`` per-node orientations (the
        point-cloud mode: ``[N, 1, 3]``).
      scalars: ``[N, C]`` invariant inputs, or ``None``.
      vectors: ``[N, V, 3]`` vector inputs (velocities, forces), or ``None``.
      num_nodes: ``N`` when both inputs are ``None`` (lifts a constant 1).

    Example:
      >>> import jax.numpy as jnp
      >>> g = jnp.eye(3)
      >>> lift(g, jnp.ones((2, 1)), jnp.array([[[1.0, 2, 3]], [[0.0, 0, 1]]])).shape
      (2, 3, 2)
    """
    o = grid.shape[-2]
    parts = []
    if scalars is not None:
        if scalars.ndim != 2:
            raise ValueError(f"scalars must be [N, C], got {scalars.shape}")
        n = scalars.shape[0]
        parts.append(jnp.broadcast_to(scalars[:, None, :], (n, o, scalars.shape[1])))
    if vectors is not None:
        if vectors.ndim != 3 or vectors.shape[-1] != grid.shape[-1]:
            raise ValueError(
                f"vectors must be [N, V, {grid.shape[-1]}], got {vectors.shape}"
            )
        if grid.ndim == 2:
            parts.append(jnp.einsum("nvd,od->nov", vectors, grid))
        else:
            parts.append(jnp.einsum("nvd,nod->nov", vectors, grid))
    if not parts:
        if num_nodes is None:
            raise ValueError("lift: give scalars, vectors or num_nodes")
        return jnp.ones((num_nodes, o, 1), grid.dtype)
    return jnp.concatenate(parts, -1)


def readout_scalars(x: Float[Array, "N O C"]) -> Float[Array, "N C"]:
    """Invariant scalars: the mean over orientations.

    Example:
      >>> import jax.numpy as jnp
      >>> readout_scalars(jnp.arange(6.0).reshape(1, 3, 2)).tolist()
      [[2.0, 3.0]]
    """
    return jnp.mean(x, axis=1)


def readout_vectors(
    x: Float[Array, "N O V"], grid: Float[Array, "*N O 3"]
) -> Float[Array, "N V 3"]:
    """Equivariant vectors ``Σ_o x_o · o / O`` (``grid`` ``[O, 3]`` or per node
    ``[N, O, 3]``).

    Example:
      >>> import jax.numpy as jnp
      >>> g = jnp.concatenate([jnp.eye(3), -jnp.eye(3)])
      >>> readout_vectors(jnp.arange(6.0).reshape(1, 6, 1), g).tolist()
      [[[-0.5, -0.5, -0.5]]]
    """
    if grid.ndim == 2:
        return jnp.einsum("nov,od->nvd", x, grid) / grid.shape[0]
    return jnp.einsum("nov,nod->nvd", x, grid) / grid.shape[-2]


def _row(v, y):
    """``v [C]`` shaped to broadcast against ``y [..., C]`` (no rank promotion)."""
    return jnp.reshape(v, (1,) * (y.ndim - 1) + (-1,))


def layer_norm(x, scale, bias, eps: float = 1e-6):
    """Layer norm over the channel axis (last); ``scale``, ``bias``: ``[C]``.

    Example:
      >>> import jax.numpy as jnp
      >>> layer_norm(jnp.array([[1.0, 3.0]]), jnp.ones(2), jnp.zeros(2)).round(3).tolist()
      [[-1.0, 1.0]]
    """
    mu = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, -1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * _row(scale, x) + _row(bias, x)


def convnext_block(
    params: dict[str, Any],
    x: Float[Array, "N O C"],
    basis_spatial: Float[Array, "E O B"],
    basis_fiber: Float[Array, "O O B"] | None,
    senders: Int[Array, " E"],
    receivers: Int[Array, " E"],
    *,
    edge_mask: Bool[Array, " E"] | None = None,
    separable: bool = True,
) -> Float[Array, "N O C"]:
    """One PONITA ConvNeXt block: group convolution (kernel = basis @ W), layer
    norm, pointwise MLP ``C → 4C → C`` (GELU), layer scale, residual.

    Args:
      params: ``kernel_spatial [B, C]``, ``kernel_fiber [B, C]``, ``conv_bias
        [C]``, ``norm_scale [C]``, ``norm_bias [C]``, ``w1 [C, H]``, ``b1 [H]``,
        ``w2 [H, C]``, ``b2 [C]``, ``layer_scale [C]``.
      x: ``[N, O, C]``.
      basis_spatial: ``[E, O, B]`` embedded spatial invariants (with ``separable
        = False``: ``[E, O, O, B]``, the embedded :func:`full_invariants`).
      basis_fiber: ``[O, O, B]`` embedded fiber invariants, or ``None``.
      senders, receivers, edge_mask: the edges.
      separable: :func:`separable_conv` (default) or :func:`fiber_bundle_conv`.

    Returns:
      ``[N, O, C]``.
    """
    ks = basis_spatial @ params["kernel_spatial"]
    if separable:
        kf = None if basis_fiber is None else basis_fiber @ params["kernel_fiber"]
        y = separable_conv(x, ks, kf, senders, receivers, edge_mask=edge_mask)
    else:
        y = fiber_bundle_conv(x, ks, senders, receivers, edge_mask=edge_mask)
    y = y + _row(params["conv_bias"], y)
    y = layer_norm(y, params["norm_scale"], params["norm_bias"])
    y = jax.nn.gelu(y @ params["w1"] + _row(params["b1"], y))
    y = y @ params["w2"] + _row(params["b2"], y)
    return x + _row(params["layer_scale"], y) * y
