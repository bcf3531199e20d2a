"""The E(n)-equivariant graph layer.

Satorras, Hoogeboom, Welling, "E(n) Equivariant Graph Neural Networks" (ICML
2021), Eqs. 3-7: for edges ``j -> i``

    m_ij = φ_e(h_i, h_j, ‖x_i - x_j‖², a_ij)
    x_i' = x_i + C Σ_j (x_i - x_j) φ_x(m_ij)             (no velocities)
    v_i' = φ_v(h_i) v_i + C Σ_j (x_i - x_j) φ_x(m_ij),  x_i' = x_i + v_i'
    h_i' = h_i + φ_h(h_i, Σ_j m_ij)

with ``C = 1 / deg(i)`` (mean aggregation; ``1`` for sum). The MLPs see only
invariants, so ``h`` is invariant and ``x``, ``v`` are equivariant under E(n)
(``v`` ignores translations), and the layer is equivariant under node
permutations that relabel the edges accordingly.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._invariants import _check_edges


def egnn_layer(
    h: Float[Array, "N F"],
    x: Float[Array, "N 3"],
    senders: Int[Array, " E"],
    receivers: Int[Array, " E"],
    *,
    phi_e: Callable[[Array], Array],
    phi_x: Callable[[Array], Array],
    phi_h: Callable[[Array], Array],
    phi_v: Callable[[Array], Array] | None = None,
    v: Float[Array, "N 3"] | None = None,
    edge_attr: Float[Array, "E A"] | None = None,
    edge_mask: Bool[Array, " E"] | None = None,
    aggregation: str = "mean",
    normalize: bool = False,
) -> tuple[Float[Array, "N F"], Float[Array, "N 3"], Float[Array, "N 3"] | None]:
    """One EGNN layer (pure: the MLPs are callables).

    Args:
      h: ``[N, F]`` invariant node features.
      x: ``[N, d]`` positions.
      senders, receivers: ``[E]`` edges ``j -> i``.
      phi_e: ``[E, 2F + 1 (+A)] -> [E, M]`` message MLP.
      phi_x: ``[E, M] -> [E, 1]`` coordinate weight MLP.
      phi_h: ``[N, F + M] -> [N, F]`` node update MLP (residual added here).
      phi_v: ``[N, F] -> [N, 1]`` velocity scale MLP (with ``v``).
      v: ``[N, d]`` velocities, or ``None`` (Eq. 4 instead of Eq. 7).
      edge_attr: ``[E, A]`` invariant edge attributes, or ``None``.
      edge_mask: ``[E]``, ``False`` on padding edges (they contribute nothing).
      aggregation: ``"mean"`` (``C = 1/deg``) or ``"sum"`` for the coordinate
        update; messages to ``h`` are always summed (as in the paper).
      normalize: use ``(x_i - x_j) / (‖x_i - x_j‖ + 1)`` in the coordinate update
        (the paper's code's option for stability).

    Returns:
      ``(h', x', v')`` (``v' = None`` without velocities).

    Example:
      >>> import jax.numpy as jnp
      >>> h, x = jnp.ones((2, 1)), jnp.array([[0.0, 0, 0], [1.0, 0, 0]])
      >>> s, r = jnp.array([0, 1]), jnp.array([1, 0])
      >>> h2, x2, _ = egnn_layer(h, x, s, r, phi_e=lambda z: z[:, -1:],
      ...     phi_x=lambda m: m, phi_h=lambda z: 0 * z[:, :1])
      >>> x2.tolist()
      [[-1.0, 0.0, 0.0], [2.0, 0.0, 0.0]]
    """
    if h.ndim != 2 or x.ndim != 2 or h.shape[0] != x.shape[0]:
        raise ValueError(
            f"h must be [N, F] and x [N, d] with the same N, got {h.shape}, {x.shape}"
        )
    _check_edges(senders, receivers)
    if aggregation not in ("mean", "sum"):
        raise ValueError(f"aggregation must be 'mean' or 'sum', got {aggregation!r}")
    if (v is None) != (phi_v is None):
        raise ValueError("give both v and phi_v, or neither")
    n = x.shape[0]
    mask = (
        jnp.ones(senders.shape, x.dtype)
        if edge_mask is None
        else edge_mask.astype(x.dtype)
    )[:, None]
    diff = x[receivers] - x[senders]  # x_i - x_j
    r2 = jnp.sum(diff * diff, -1, keepdims=True)
    parts = [h[receivers], h[senders], r2]
    if edge_attr is not None:
        parts.append(edge_attr)
    m = phi_e(jnp.concatenate(parts, -1)).astype(h.dtype) * mask.astype(h.dtype)
    if normalize:
        sq = r2[:, 0]
        safe = jnp.where(sq > 0, sq, 1.0)
        norm = jnp.where(sq > 0, jnp.sqrt(safe), 0.0)[:, None]
        diff = diff / (norm + 1.0)
    shift = jax.ops.segment_sum(
        diff * phi_x(m).astype(x.dtype) * mask, receivers, num_segments=n
    )
    if aggregation == "mean":
        deg = jax.ops.segment_sum(mask[:, 0], receivers, num_segments=n)
        shift = shift / jnp.maximum(deg, 1.0)[:, None]
    if v is not None:
        assert phi_v is not None
        v = phi_v(h).astype(x.dtype) * v + shift
        x = x + v
    else:
        x = x + shift
    agg = jax.ops.segment_sum(m, receivers, num_segments=n)
    h = h + phi_h(jnp.concatenate([h, agg], -1)).astype(h.dtype)
    return h, x, v
