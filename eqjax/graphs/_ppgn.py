"""Provably powerful graph networks (PPGN) and PPGN++ on dense pair tensors.

* PPGN: Maron, Ben-Hamu, Serviansky & Lipman, "Provably Powerful Graph
  Networks", NeurIPS 2019. A block maps ``X ∈ R^{n×n×C}`` to
  ``L([m₃(X), m₁(X) · m₂(X)])``: ``m₁, m₂, m₃`` are MLPs applied to every entry
  ``(i, j)`` alone, ``·`` is the matrix product over the node axis taken
  channel by channel (``Σ_k m₁(X)_{ik} m₂(X)_{kj}``), ``L`` a linear map of the
  concatenation. The matrix product is what lifts the model to 2-FWL (3-WL)
  power; a node relabelling ``P`` gives ``block(P X Pᵀ) = P block(X) Pᵀ``.
* PPGN++: Puny, Lim, Kiani, Maron & Lipman, "Equivariant Polynomials for Graph
  Neural Networks", ICML 2023 — the paper's edge-based prototypical model as a
  block: the MLPs read ``Z = [X, Xᵀ, δ]`` (the transpose and the
  diagonal-indicator channel ``δ_ij = [i = j]``) and the block input is
  concatenated (skipped) into ``L``'s input, ``L([X, m₃(Z), m₁(Z) · m₂(Z)])``.
  Its distinguishing power is still that of 2-FWL; the paper's point is to feed
  it, as extra input channels, the equivariant polynomials ``P_H`` it cannot
  compute (:func:`ppgn_plus_patterns`, :func:`ppgn_input`), which lifts it past
  2-FWL (the rook's 4×4 graph and the Shrikhande graph differ in their ``K_4``
  polynomial).

Padding: ``mask`` (``True`` = real node) is honoured everywhere. The input is
zeroed at padded rows and columns, the factors of every matrix product are
zeroed there too (so padded nodes never enter a sum ``Σ_k``, whatever the MLP
biases make of a zero entry), and every output is zeroed there: real entries do
not depend on what sits in the padding, and padded entries are exactly zero.

Normalisation (``normalization="mean"``, the default): the matrix product and
the readout sums are divided by the number of real nodes (``Σ_k … / n``; the
readout by ``n`` for the diagonal and ``n(n-1)`` off it), so a block keeps its
scale on graphs of any size and a stack of blocks does not grow like
``n^{2^L}``; ``"sum"`` keeps the plain sums of the papers' formulas. The graph
size stays visible to the model through its input (e.g. the diagonal of the
input or a polynomial channel).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from ._models import MLPParams, mlp, mlp_init
from ._polynomials import (
    PolynomialPattern,
    _check_inputs,
    evaluate_polynomials,
    polynomial_basis,
)

_NORMALIZATIONS = ("mean", "sum")
_POLY_SCALES = ("density", "nodes", "none")
_INVARIANTS = ("diagonal", "skip")


class PPGNBlockParams(NamedTuple):
    """Parameters of one PPGN or PPGN++ block (:func:`ppgn_block_init`).

    Attributes:
      m1, m2: the per-entry MLPs whose outputs are multiplied as matrices.
      skip: the third per-entry MLP ``m₃``, concatenated beside the product.
      out: the final linear map ``L`` (one layer) of the concatenation.
    """

    m1: MLPParams
    m2: MLPParams
    skip: MLPParams
    out: MLPParams


class PPGNParams(NamedTuple):
    """A PPGN / PPGN++ model (:func:`ppgn_init`): blocks, then an MLP head on
    the diagonal and off-diagonal readouts."""

    blocks: tuple[PPGNBlockParams, ...]
    head: MLPParams


def _flag(plus, where: str) -> bool:
    if not isinstance(plus, (bool, np.bool_)):
        raise TypeError(f"{where}: plus must be a bool, got {plus!r}")
    return bool(plus)


def _positive(v, name: str, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
        raise ValueError(f"{where}: {name} must be an int >= 1, got {v!r}")
    return int(v)


def _mlp_in(c: int, plus: bool) -> int:
    """The width of the MLP input ``Z``: ``C`` (PPGN) or ``2C + 1`` (PPGN++)."""
    return 2 * c + 1 if plus else c


def ppgn_block_init(
    key: jax.Array,
    in_channels: int,
    out_channels: int,
    *,
    plus: bool = False,
    dtype: Any = jnp.float32,
) -> PPGNBlockParams:
    """Random parameters of one :func:`ppgn_block`.

    ``m₁, m₂, m₃`` are two-layer MLPs ``[Z, D, D]`` (``Z = C`` for PPGN,
    ``2C + 1`` for PPGN++), ``L`` is one linear layer from ``2D`` (PPGN) or
    ``C + 2D`` (PPGN++) to ``D``; He-scaled normal weights, zero biases
    (:func:`mlp_init`).

    Args:
      key: a PRNG key.
      in_channels: ``C``, the channels of the block input.
      out_channels: ``D``, the channels of the block output (and of the MLPs).
      plus: PPGN++ (``True``) or PPGN (``False``); pass the same to
        :func:`ppgn_block`.
      dtype: parameter dtype.

    Example:
      >>> p = ppgn_block_init(jax.random.key(0), 3, 8, plus=True)
      >>> p.m1.weights[0].shape, p.out.weights[0].shape
      ((7, 8), (19, 8))
    """
    where = "ppgn_block_init"
    plus = _flag(plus, where)
    c = _positive(in_channels, "in_channels", where)
    d = _positive(out_channels, "out_channels", where)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    z = _mlp_in(c, plus)
    return PPGNBlockParams(
        m1=mlp_init(k1, [z, d, d], dtype=dtype),
        m2=mlp_init(k2, [z, d, d], dtype=dtype),
        skip=mlp_init(k3, [z, d, d], dtype=dtype),
        out=mlp_init(k4, [(c if plus else 0) + 2 * d, d], dtype=dtype),
    )


def _check_pairs(x, mask, where: str):
    """``x (*batch, n, n, C)`` floating and ``mask (*batch, n)`` bool or None."""
    return _check_inputs(x, mask, where, name="x", channels=True)


def _check_normalization(normalization, where: str) -> None:
    if normalization not in _NORMALIZATIONS:
        raise ValueError(
            f"{where}: normalization must be one of {_NORMALIZATIONS}, got "
            f"{normalization!r}"
        )


def _masks(mask, batch, n, dt):
    """``(*batch, n, n, 1)`` pair mask and ``(*batch, 1, 1, 1)`` real-node count
    (at least 1) in dtype ``dt``."""
    if mask is None:
        m = jnp.ones(batch + (n,), dt)
    else:
        m = mask.astype(dt)
    pair = (m[..., :, None] * m[..., None, :])[..., None]
    nreal = jnp.maximum(jnp.sum(m, -1), 1).reshape(batch + (1, 1, 1))
    return m, pair, nreal


def _check_mlp(p: MLPParams, width: int, name: str, where: str, hint: str) -> int:
    ws = p.weights
    if not ws or jnp.ndim(ws[0]) != 2 or ws[0].shape[0] != width:
        got = ws[0].shape if ws else "no layers"
        raise ValueError(
            f"{where}: {name} expects input width {width} ({hint}), but its first "
            f"weight has shape {got}; were the parameters made with "
            "ppgn_block_init / ppgn_init with the same in_channels and plus?"
        )
    return int(ws[-1].shape[-1])


def _block(p: PPGNBlockParams, x, pair, nreal, plus: bool, normalization: str):
    """One block on a masked ``x`` (the checks are done)."""
    act = jax.nn.relu
    if plus:
        n = x.shape[-2]
        eye = jnp.eye(n, dtype=x.dtype).reshape((1,) * (x.ndim - 3) + (n, n, 1))
        z = jnp.concatenate([x, jnp.swapaxes(x, -3, -2), eye * pair], -1)
    else:
        z = x
    h1 = act(mlp(p.m1, z)) * pair
    h2 = act(mlp(p.m2, z)) * pair
    prod = jnp.einsum("...ikc,...kjc->...ijc", h1, h2)
    if normalization == "mean":
        prod = prod / nreal
    s = act(mlp(p.skip, z))
    cat = [x, s, prod] if plus else [s, prod]
    return mlp(p.out, jnp.concatenate(cat, -1)) * pair


def _check_block(p, c: int, plus: bool, where: str) -> int:
    if not isinstance(p, PPGNBlockParams):
        raise TypeError(
            f"{where}: params must be PPGNBlockParams (from ppgn_block_init), got "
            f"{type(p).__name__}"
        )
    z = _mlp_in(c, plus)
    hint = f"x has {c} channels, plus={plus}" + (": [X, Xᵀ, δ]" if plus else "")
    d1 = _check_mlp(p.m1, z, "m1", where, hint)
    d2 = _check_mlp(p.m2, z, "m2", where, hint)
    d3 = _check_mlp(p.skip, z, "skip", where, hint)
    if d1 != d2:
        raise ValueError(
            f"{where}: m1 and m2 must have the same output width, got {d1} and {d2}"
        )
    return _check_mlp(
        p.out, (c if plus else 0) + d3 + d1, "out", where, "skip and product widths"
    )


@functools.partial(jax.jit, static_argnames=("plus", "normalization"))
def ppgn_block(
    params: PPGNBlockParams,
    x: Float[Array, "*batch n n C"],
    mask: Bool[Array, "*batch n"] | None = None,
    *,
    plus: bool = False,
    normalization: str = "mean",
) -> Float[Array, "*batch n n D"]:
    """One PPGN block (Maron et al., NeurIPS 2019) or PPGN++ block (Puny et al.,
    ICML 2023) on dense pair tensors: edge-level ``S_n``-equivariant.

    PPGN: ``L([m₃(X), m₁(X) · m₂(X)])``; PPGN++: with ``Z = [X, Xᵀ, δ]``,
    ``L([X, m₃(Z), m₁(Z) · m₂(Z)])``. ``m₁, m₂, m₃`` act on every entry (ReLU
    after each of their layers, as in Maron et al.'s implementation), ``·`` is
    the channel-wise matrix product over the node axis (divided by the number of
    real nodes under ``normalization="mean"``), ``L`` is linear. Padded rows and
    columns are zeroed in the input, in both factors of the product and in the
    output (see the module docstring).

    Args:
      params: :class:`PPGNBlockParams` from :func:`ppgn_block_init`.
      x: ``(*batch, n, n, C)`` floating pair features.
      mask: ``(*batch, n)`` boolean node mask (``True`` = real node) or ``None``
        (all real).
      plus: PPGN++ (``True``) or PPGN (``False``), as the parameters were made.
      normalization: ``"mean"`` (the product divided by the number of real
        nodes) or ``"sum"``.

    Returns:
      ``(*batch, n, n, D)``, dtype of ``x``; zero at padded rows and columns.

    Raises:
      TypeError: ``x`` not floating, ``mask`` not boolean, ``plus`` not a bool or
        ``params`` of another type.
      ValueError: ``x`` not ``(..., n, n, C)``, ``mask`` not ``x.shape[:-2]``,
        channel counts that do not fit the parameters, or an unknown
        ``normalization``.

    Example:
      >>> p = ppgn_block_init(jax.random.key(0), 2, 4, plus=True)
      >>> x = jnp.ones((3, 5, 5, 2))
      >>> mask = jnp.arange(5)[None, :] < jnp.array([[5], [4], [1]])
      >>> y = ppgn_block(p, x, mask, plus=True)
      >>> y.shape, bool((y[1, 4] == 0).all() and (y[2, :, 1:] == 0).all())
      ((3, 5, 5, 4), True)
    """
    where = "ppgn_block"
    plus = _flag(plus, where)
    _check_normalization(normalization, where)
    x, mask = _check_pairs(x, mask, where)
    _check_block(params, x.shape[-1], plus, where)
    batch, n = x.shape[:-3], x.shape[-2]
    _, pair, nreal = _masks(mask, batch, n, x.dtype)
    return _block(params, x * pair, pair, nreal, plus, normalization)


def ppgn_init(
    key: jax.Array,
    in_channels: int,
    hidden: int,
    num_blocks: int,
    out_dim: int,
    *,
    plus: bool = False,
    dtype: Any = jnp.float32,
) -> PPGNParams:
    """Random parameters of :func:`ppgn`: ``num_blocks`` blocks of width
    ``hidden`` (:func:`ppgn_block_init`) and a head MLP
    ``[2 · hidden, hidden, out_dim]``.

    Args:
      key: a PRNG key.
      in_channels: channels of the input tensor (e.g. ``1 + F + len(patterns)``
        for :func:`ppgn_input`).
      hidden: block width.
      num_blocks: number of blocks, ``>= 1``.
      out_dim: output width.
      plus: PPGN++ blocks (``True``) or PPGN blocks; pass the same to :func:`ppgn`.
      dtype: parameter dtype.

    Example:
      >>> p = ppgn_init(jax.random.key(0), 3, 8, 2, 4, plus=True)
      >>> len(p.blocks), p.head.weights[-1].shape
      (2, (8, 4))
    """
    where = "ppgn_init"
    plus = _flag(plus, where)
    c = _positive(in_channels, "in_channels", where)
    h = _positive(hidden, "hidden", where)
    nb = _positive(num_blocks, "num_blocks", where)
    o = _positive(out_dim, "out_dim", where)
    ks = jax.random.split(key, nb + 1)
    blocks = []
    for k in ks[:nb]:
        blocks.append(ppgn_block_init(k, c, h, plus=plus, dtype=dtype))
        c = h
    head = mlp_init(ks[-1], [2 * h, h, o], dtype=dtype)
    return PPGNParams(tuple(blocks), head)


@functools.partial(jax.jit, static_argnames=("plus", "normalization"))
def ppgn(
    params: PPGNParams,
    x: Float[Array, "*batch n n C"],
    mask: Bool[Array, "*batch n"] | None = None,
    *,
    plus: bool = False,
    normalization: str = "mean",
) -> Float[Array, "*batch out"]:
    """A PPGN / PPGN++ graph embedding: blocks, then an invariant readout.

    Maron et al., "Provably Powerful Graph Networks" (NeurIPS 2019); PPGN++:
    Puny et al., "Equivariant Polynomials for Graph Neural Networks" (ICML 2023).
    After the blocks (:func:`ppgn_block`), the readout sums the real diagonal
    entries and the real off-diagonal entries of every channel (divided by ``n``
    and ``n(n-1)`` under ``normalization="mean"``), concatenates the two, and
    applies the head MLP. Invariant to node relabelling; padded nodes change
    nothing.

    Args:
      params: :class:`PPGNParams` from :func:`ppgn_init`.
      x: ``(*batch, n, n, C)``, e.g. from :func:`ppgn_input` (adjacency, node
        features on the diagonal, polynomial channels).
      mask: ``(*batch, n)`` boolean node mask or ``None`` (all real).
      plus: PPGN++ (``True``) or PPGN blocks, as the parameters were made.
      normalization: ``"mean"`` or ``"sum"`` (products and readout).

    Returns:
      ``(*batch, out_dim)``, dtype of ``x``.

    Raises:
      TypeError, ValueError: as :func:`ppgn_block`; also ``params`` not a
        :class:`PPGNParams`.

    Example:
      >>> A = jnp.ones((4, 4)) - jnp.eye(4)  # K_4
      >>> p = ppgn_init(jax.random.key(0), 1, 8, 2, 3, plus=True)
      >>> ppgn(p, ppgn_input(A), plus=True).shape
      (3,)
    """
    where = "ppgn"
    plus = _flag(plus, where)
    _check_normalization(normalization, where)
    if not isinstance(params, PPGNParams) or not params.blocks:
        raise TypeError(
            f"{where}: params must be PPGNParams with at least one block (from "
            f"ppgn_init), got {type(params).__name__}"
        )
    x, mask = _check_pairs(x, mask, where)
    batch, n = x.shape[:-3], x.shape[-2]
    m, pair, nreal = _masks(mask, batch, n, x.dtype)
    h = x * pair
    for i, p in enumerate(params.blocks):
        _check_block(p, h.shape[-1], plus, f"{where} (block {i})")
        h = _block(p, h, pair, nreal, plus, normalization)
    diag = jnp.einsum("...iic->...c", h)
    off = jnp.sum(h, axis=(-3, -2)) - diag
    if normalization == "mean":
        nr = nreal.reshape(batch + (1,))
        diag = diag / nr
        off = off / jnp.maximum(nr * (nr - 1), 1)
    _check_mlp(
        params.head, 2 * h.shape[-1], "head", where, "diagonal + off-diagonal readout"
    )
    return mlp(params.head, jnp.concatenate([diag, off], -1))


# ------------------------------------------------------------- input tensors


def ppgn_plus_patterns(max_edges: int = 6) -> tuple[PolynomialPattern, ...]:
    """The polynomial patterns PPGN++ takes as extra input channels: every basis
    pattern with at most ``max_edges`` edges that PPGN cannot compute
    (``not p.ppgn_computable``; Puny et al., ICML 2023).

    With ``max_edges=6``: 12 patterns — the 5-edge edge-level one (``K_4`` minus
    an edge, marked at its two degree-2 vertices), then the 6-edge ones: ``K_4``
    (invariant and node-level) and 9 edge-level ones. None below 5 edges. The
    first call with 6 enumerates networkx's atlas (seconds); results are cached.

    Args:
      max_edges: ``1 … 6`` (:func:`polynomial_basis`).

    Returns:
      A tuple of :class:`PolynomialPattern`, in :func:`polynomial_basis` order.

    Example:
      >>> [(p.kind, p.num_edges) for p in ppgn_plus_patterns(5)]
      [('edge', 5)]
    """
    return tuple(
        p for p in polynomial_basis(max_edges, min_edges=1) if not p.ppgn_computable
    )


def _check_patterns(patterns, where: str) -> tuple[PolynomialPattern, ...]:
    if isinstance(patterns, PolynomialPattern) or not isinstance(patterns, Sequence):
        raise TypeError(
            f"{where}: patterns must be a sequence of PolynomialPattern, got "
            f"{type(patterns).__name__}"
        )
    for p in patterns:
        if not isinstance(p, PolynomialPattern):
            raise TypeError(
                f"{where}: patterns must be PolynomialPattern (from polynomial_basis, "
                f"ppgn_plus_patterns or polynomial_pattern), got {type(p).__name__}"
            )
    return tuple(patterns)


@functools.partial(jax.jit, static_argnames=("patterns", "poly_scale", "invariants"))
def _input(A, mask, nodes, patterns, ys, poly_scale, invariants):
    dt = A.dtype
    batch, n = A.shape[:-2], A.shape[-1]
    m, pair, nreal = _masks(mask, batch, n, dt)
    pair2 = pair[..., 0]
    chans = [(A * pair2)[..., None]]
    eye = jnp.eye(n, dtype=dt).reshape((1,) * len(batch) + (n, n))
    if nodes is not None:
        v = nodes.astype(dt) * m[..., None]
        chans.append(eye[..., None] * v[..., :, None, :])
    if patterns:
        nr = nreal.reshape(batch)
        # mean |A| off the diagonal over real pairs: the edge density of a 0/1 graph
        offdiag = jnp.abs(A * pair2) * (1 - eye)
        dens = jnp.sum(offdiag, (-2, -1)) / jnp.maximum(nr * (nr - 1), 1)
        dens = jnp.where(dens > 0, dens, jnp.ones_like(dens))
        # P_H is homogeneous of degree e: P_H(A / ρ) = P_H(A) / ρ^e, evaluated so
        # that neither side over- or underflows (A = 1e30 in float32)
        by_density = ys is None and poly_scale == "density"
        if ys is None:
            A_eval = A / dens.reshape(batch + (1, 1)) if by_density else A
            ys = evaluate_polynomials(patterns, A_eval, mask)
        else:  # precomputed: honour the mask all the same
            ys = tuple(
                y * (m if p.kind == "node" else pair2 if p.kind == "edge" else 1)
                for p, y in zip(patterns, ys, strict=True)
            )
        for p, y in zip(patterns, ys, strict=True):
            k = len(p.marked)
            if k == 0 and invariants == "skip":
                continue
            free = p.num_vertices - k
            if poly_scale != "none":
                scale = nr**free
                if poly_scale == "density" and not by_density:
                    scale = scale * dens**p.num_edges
                y = y / scale.reshape(batch + (1,) * k)
                if poly_scale == "density":
                    y = jnp.arcsinh(y)
            if k == 2:
                chans.append((y * pair2)[..., None])
            else:
                y = y if k == 1 else y[..., None] * m
                chans.append((eye * y[..., None, :] * pair2)[..., None])
    return jnp.concatenate(chans, -1)


def ppgn_input(
    adjacency: Float[Array, "*batch n n"],
    mask: Bool[Array, "*batch n"] | None = None,
    node_features: Float[Array, "*batch n F"] | None = None,
    patterns: Sequence[PolynomialPattern] = (),
    *,
    polynomials: Sequence[Array] | None = None,
    poly_scale: str = "density",
    invariants: str = "diagonal",
) -> Float[Array, "*batch n n C"]:
    """The input tensor of :func:`ppgn`: the adjacency, node features on the
    diagonal, and one channel per equivariant polynomial (PPGN++ with
    polynomial features, Puny et al., ICML 2023).

    Channels, in order: the (masked) adjacency; the ``F`` node features on the
    diagonal; one channel per pattern of ``patterns``
    (:func:`eqjax.graphs.evaluate_polynomials`): an edge-level ``P_H`` fills the
    ``n × n`` channel, a node-level one sits on the diagonal, an invariant one is
    a constant on the diagonal of the real nodes (``invariants="diagonal"``) or
    left out (``"skip"``). So ``C = 1 + F + len(patterns)`` (less the invariant
    patterns when skipped).

    Polynomial scaling (``poly_scale``), so that degree-6 counts of 36-node
    graphs (up to ``~10⁹``) stay of order one: a pattern ``H`` with ``V``
    vertices, ``k`` marked and ``e`` edges sums over ``n^{V-k}`` maps, ``n`` the
    number of real nodes.

    * ``"density"`` (default): ``asinh(P_H / (n^{V-k} ρ^e))``, with ``ρ`` the
      mean ``|A_ij|`` over real pairs ``i ≠ j`` (the edge density of a 0/1
      graph): ``n^{V-k} ρ^e`` is about ``P_H`` of an Erdős–Rényi graph of the
      same density, so the ratio is of order one, and ``asinh`` (``≈ r`` near
      0, ``≈ log 2r`` for large ``r``) keeps a pattern far more frequent than
      that (cliques in a sparse graph) from blowing up. An empty graph (``ρ =
      0``) gives zeros.
    * ``"nodes"``: ``P_H / n^{V-k}`` (the homomorphism density, in ``[0, 1]``
      for a 0/1 adjacency; small for sparse graphs and many edges).
    * ``"none"``: the raw polynomial.

    All three are functions of the graph alone and keep permutation
    equivariance; padded rows and columns are zero in every channel.

    Args:
      adjacency: ``(*batch, n, n)`` floating (weighted) adjacency.
      mask: ``(*batch, n)`` boolean node mask or ``None`` (all real).
      node_features: ``(*batch, n, F)`` floating or ``None``; cast to the
        adjacency's dtype.
      patterns: :class:`PolynomialPattern` s, e.g. :func:`ppgn_plus_patterns`.
      polynomials: the values ``evaluate_polynomials(patterns, adjacency,
        mask)``, when already computed (e.g. to scale them two ways, or cached
        across runs); ``None`` evaluates them here.
      poly_scale: ``"density"``, ``"nodes"`` or ``"none"``.
      invariants: ``"diagonal"`` or ``"skip"`` (invariant patterns).

    Returns:
      ``(*batch, n, n, C)``, dtype of ``adjacency``.

    Raises:
      TypeError: non-floating adjacency or node features, non-boolean mask,
        patterns that are not :class:`PolynomialPattern`.
      ValueError: shapes that do not fit ``(*batch, n, n)`` / ``(*batch, n)`` /
        ``(*batch, n, F)``, or an unknown option.

    Example:
      >>> from eqjax.graphs import polynomial_pattern
      >>> k4 = polynomial_pattern([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
      >>> A = jnp.ones((4, 4)) - jnp.eye(4)
      >>> x = ppgn_input(A, node_features=jnp.ones((4, 2)), patterns=[k4])
      >>> x.shape  # adjacency, 2 node features, K4
      (4, 4, 4)
      >>> x[0, 0, 3] == jnp.arcsinh(24 / 4**4), x[0, 1, 3]  # 24 maps / (n^4 ρ^6), ρ = 1
      (Array(True, dtype=bool), Array(0., dtype=float32))
    """
    where = "ppgn_input"
    if poly_scale not in _POLY_SCALES:
        raise ValueError(
            f"{where}: poly_scale must be one of {_POLY_SCALES}, got {poly_scale!r}"
        )
    if invariants not in _INVARIANTS:
        raise ValueError(
            f"{where}: invariants must be one of {_INVARIANTS}, got {invariants!r}"
        )
    pats = _check_patterns(patterns, where)
    A = jnp.asarray(adjacency)
    if not jnp.issubdtype(A.dtype, jnp.floating):
        raise TypeError(f"{where}: adjacency must be floating, got {A.dtype}")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"{where}: adjacency must have shape (..., n, n), got {A.shape}"
        )
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_:
            raise TypeError(f"{where}: mask must be boolean, got {mask.dtype}")
        if mask.shape != A.shape[:-1]:
            raise ValueError(
                f"{where}: mask must have shape {A.shape[:-1]} for adjacency of "
                f"shape {A.shape}, got {mask.shape}"
            )
    if node_features is not None:
        node_features = jnp.asarray(node_features)
        if not jnp.issubdtype(node_features.dtype, jnp.floating):
            raise TypeError(
                f"{where}: node_features must be floating, got {node_features.dtype}"
            )
        if node_features.ndim != A.ndim or node_features.shape[:-1] != A.shape[:-1]:
            raise ValueError(
                f"{where}: node_features must have shape {A.shape[:-1]} + (F,) for "
                f"adjacency of shape {A.shape}, got {node_features.shape}"
            )
    ys = None
    if polynomials is not None:
        if not isinstance(polynomials, Sequence) or len(polynomials) != len(pats):
            raise ValueError(
                f"{where}: polynomials must be a sequence of {len(pats)} arrays (one "
                f"per pattern), got {type(polynomials).__name__}"
                + (
                    f" of length {len(polynomials)}"
                    if hasattr(polynomials, "__len__")
                    else ""
                )
            )
        ys = tuple(jnp.asarray(y) for y in polynomials)
        for p, y in zip(pats, ys, strict=True):
            want = A.shape[:-2] + A.shape[-1:] * len(p.marked)
            if y.shape != want or y.dtype != A.dtype:
                raise ValueError(
                    f"{where}: the polynomial of the {p.kind} pattern {p.edges} must "
                    f"have shape {want} and dtype {A.dtype}, got {y.shape} {y.dtype}"
                )
    return _input(A, mask, node_features, pats, ys, poly_scale, invariants)
