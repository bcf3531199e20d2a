"""Linear permutation-equivariant layers between order-k tensors (IGN layers).

Maron, Ben-Hamu, Shamir & Lipman, "Invariant and Equivariant Graph Networks",
ICLR 2019. The linear maps ``R^{n^k} → R^{n^l}`` commuting with the action of
``S_n`` on every index form a space of dimension ``Bell(k + l)`` (for
``n >= k + l``): one basis element per set partition ``μ`` of the ``k + l``
index positions (``l`` output positions first, then ``k`` input positions),

    B_μ[i_1 … i_l, j_1 … j_k] = 1  iff positions in the same block of μ carry
                                   equal indices,

(the "at least these equalities" basis; Maron et al. use the orbit basis of
exact equality patterns, which spans the same space). Applying ``B_μ`` never
materialises ``n^{k+l}`` entries: input positions of a block are contracted
onto one diagonal, blocks with only input positions are summed (or averaged:
``normalization="mean"``), blocks with output positions become output axes,
with diagonals for several output positions and broadcasting for blocks with
no input position. Biases are the ``Bell(l)`` equivariant constants (the maps
from order 0). Padded nodes (``mask`` False) contribute nothing and receive
zeros, so they never change real outputs.
"""

from __future__ import annotations

import functools
import string
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

Partition = tuple[tuple[int, ...], ...]


@functools.cache
def set_partitions(m: int) -> tuple[Partition, ...]:
    """All set partitions of ``{0, …, m-1}`` (restricted growth strings order),
    each a tuple of sorted blocks; there are ``Bell(m)``.

    Example:
      >>> set_partitions(3)
      (((0, 1, 2),), ((0, 1), (2,)), ((0, 2), (1,)), ((0,), (1, 2)), ((0,), (1,), (2,)))
    """
    m = int(m)
    if m < 0:
        raise ValueError(f"set_partitions needs m >= 0, got {m}")
    out: list[Partition] = []

    def grow(i: int, labels: list[int], k: int):
        if i == m:
            blocks = [tuple(j for j in range(m) if labels[j] == b) for b in range(k)]
            out.append(tuple(blocks))
            return
        for b in range(k + 1):
            labels.append(b)
            grow(i + 1, labels, max(k, b + 1))
            labels.pop()

    grow(0, [], 0)
    return tuple(out)


def ign_basis_size(order_in: int, order_out: int) -> int:
    """``Bell(order_in + order_out)``: the dimension of the space of linear
    ``S_n``-equivariant maps from order-``order_in`` to order-``order_out``
    tensors (for ``n >= order_in + order_out``).

    Example:
      >>> [ign_basis_size(k, l) for k, l in [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3)]]
      [2, 5, 5, 15, 203]
    """
    _check_orders(order_in, order_out, "ign_basis_size")
    return len(set_partitions(order_in + order_out))


def _check_orders(k, l, where):
    for name, v in (("order_in", k), ("order_out", l)):
        if not isinstance(v, (int, np.integer)) or not 0 <= int(v) <= 3:
            raise ValueError(f"{where}: {name} must be an int in 0..3, got {v!r}")


def ign_basis(order_in: int, order_out: int, n: int) -> np.ndarray:
    """The dense basis ``(Bell(k+l), n^l, n^k)`` (float64 0/1) of the equivariant
    linear maps, one matrix per set partition, in :func:`set_partitions` order:
    a reference for tests (memory ``Bell · n^{k+l}``).

    Example:
      >>> B = ign_basis(1, 1, 3)
      >>> B.shape, B[0].tolist() == np.eye(3).tolist(), B[1].tolist() == np.ones((3, 3)).tolist()
      ((2, 3, 3), True, True)
    """
    _check_orders(order_in, order_out, "ign_basis")
    k, l = int(order_in), int(order_out)
    m = k + l
    idx = np.indices((n,) * m).reshape(m, n**m)  # positions: outputs, then inputs
    mats = []
    for mu in set_partitions(m):
        ok = np.ones(idx.shape[1], bool)
        for block in mu:
            for p in block[1:]:
                ok &= idx[p] == idx[block[0]]
        mats.append(ok.reshape(n**l, n**k).astype(np.float64))
    return np.stack(mats)


class IGNParams(NamedTuple):
    """Parameters of one IGN layer.

    Attributes:
      weights: ``(Bell(k + l), C, D)``: one ``C × D`` matrix per basis element.
      bias: ``(Bell(l), D)`` (the equivariant constants of order ``l``) or ``None``.
    """

    weights: Array
    bias: Array | None


def ign_init(
    key: jax.Array,
    order_in: int,
    order_out: int,
    channels_in: int,
    channels_out: int,
    *,
    bias: bool = True,
    dtype: Any = jnp.float32,
) -> IGNParams:
    """Random IGN parameters: weights ``N(0, 1 / (C · Bell(k+l)))`` (unit-scale
    outputs under ``normalization="mean"``), zero biases.

    Example:
      >>> p = ign_init(jax.random.key(0), order_in=2, order_out=2, channels_in=3, channels_out=4)
      >>> p.weights.shape, p.bias.shape
      ((15, 3, 4), (2, 4))
    """
    nb = ign_basis_size(order_in, order_out)
    w = jax.random.normal(key, (nb, channels_in, channels_out), dtype)
    w = w / jnp.sqrt(jnp.asarray(max(channels_in, 1) * nb, dtype))
    b = (
        jnp.zeros((len(set_partitions(order_out)), channels_out), dtype)
        if bias
        else None
    )
    return IGNParams(w, b)


def _letters(count: int) -> str:
    return string.ascii_lowercase[1 : 1 + count]  # "a" is kept for the batch axis


def _contract(x, nreal, mu, k, l, normalization):
    """The input side of ``B_μ``: ``x (b, n^k, C)`` contracted to ``z (b, n^a, C)``
    (one axis per block with output and input positions) and the output pattern
    ``(blocks of μ restricted to the outputs, whether each has an input)`` that
    says how ``z`` expands to ``(b, n^l, C)``."""
    letters = _letters(len(mu))
    block_of = {p: i for i, blk in enumerate(mu) for p in blk}
    in_sub = "".join(letters[block_of[l + j]] for j in range(k))
    z_blocks = [i for i, blk in enumerate(mu) if blk[0] < l and blk[-1] >= l]
    summed = sum(1 for blk in mu if blk[0] >= l)
    z_sub = "".join(letters[i] for i in z_blocks)
    z = jnp.einsum(f"a{in_sub}z->a{z_sub}z", x) if k else x
    if summed and normalization == "mean":
        z = z / nreal.reshape((-1,) + (1,) * (z.ndim - 1)) ** summed
    out_blocks = tuple(tuple(p for p in blk if p < l) for blk in mu if blk[0] < l)
    has_in = tuple(blk[-1] >= l for blk in mu if blk[0] < l)
    return z, (out_blocks, has_in)


def _expand(z, n, pattern, l, bsz):
    """``z (b, n^a, D)`` -> ``(b, n^l, D)``: each z axis sits at its block's first
    output position, other positions of the block are diagonals, blocks without
    an input are broadcast."""
    out_blocks, has_in = pattern
    firsts = {blk[0] for blk, h in zip(out_blocks, has_in, strict=True) if h}
    z = jnp.expand_dims(z, [1 + p for p in range(l) if p not in firsts])
    eye = jnp.eye(n, dtype=z.dtype)
    for blk in out_blocks:
        for p in blk[1:]:
            shape = [1] * (l + 2)
            shape[1 + blk[0]] = shape[1 + p] = n
            z = z * eye.reshape(shape)
    return jnp.broadcast_to(z, (bsz,) + (n,) * l + (z.shape[-1],))


def _mask_tensor(mask, order, dtype):
    """``(b, n, …, n, 1)``: the product of the node mask over ``order`` axes."""
    b, n = mask.shape
    m = jnp.ones((b,) + (1,) * order + (1,), dtype)
    for p in range(order):
        shape = [b] + [1] * order + [1]
        shape[1 + p] = n
        m = m * mask.astype(dtype).reshape(shape)
    return m


@functools.partial(
    jax.jit, static_argnames=("order_in", "order_out", "normalization", "n")
)
def ign_linear(
    params: IGNParams,
    x: Float[Array, "*batch ... C"],
    mask: Bool[Array, "*batch n"] | None = None,
    *,
    order_in: int,
    order_out: int,
    normalization: str = "mean",
    n: int | None = None,
) -> Float[Array, "*batch ... D"]:
    """Apply an equivariant linear layer of order ``order_in → order_out``.

    Args:
      params: :class:`IGNParams` from :func:`ign_init` with the same orders.
      x: ``(*batch, n, …, n, C)`` with ``order_in`` node axes (``(*batch, C)``
        for order 0).
      mask: ``(*batch, n)`` node mask (``True`` = real node) or ``None`` (all
        real). Padded nodes are zeroed in the input and in the output.
      order_in, order_out: tensor orders, ``0 … 3``.
      normalization: ``"mean"`` (pooled blocks divided by the number of real
        nodes per pooled index, as in Maron et al.'s implementation) or ``"sum"``
        (the plain basis of :func:`ign_basis`).
      n: the number of nodes; needed only when ``order_in == 0`` and there is no
        mask.

    Returns:
      ``(*batch, n, …, n, D)`` with ``order_out`` node axes, dtype of ``x``.

    Example:
      >>> p = ign_init(jax.random.key(0), order_in=2, order_out=2, channels_in=1, channels_out=3)
      >>> ign_linear(p, jnp.ones((4, 5, 5, 1)), jnp.ones((4, 5), bool), order_in=2, order_out=2).shape
      (4, 5, 5, 3)
    """
    _check_orders(order_in, order_out, "ign_linear")
    k, l = int(order_in), int(order_out)
    if normalization not in ("mean", "sum"):
        raise ValueError(
            f"ign_linear: normalization must be 'mean' or 'sum', got {normalization!r}"
        )
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"ign_linear: x must be floating, got {x.dtype}")
    nb = ign_basis_size(k, l)
    w = params.weights
    if w.ndim != 3 or w.shape[0] != nb or w.shape[1] != x.shape[-1]:
        raise ValueError(
            f"ign_linear: weights of shape {w.shape} do not fit order {k}->{l} "
            f"(expected ({nb}, {x.shape[-1]}, D)); were they made by ign_init with "
            "the same orders and channels?"
        )
    if x.ndim < k + 1:
        raise ValueError(
            f"ign_linear: x of shape {x.shape} has fewer than {k} node axes"
        )
    batch = x.shape[: x.ndim - k - 1]
    node_axes = x.shape[x.ndim - k - 1 : -1]
    if len(set(node_axes)) > 1:
        raise ValueError(f"ign_linear: node axes of x differ: {x.shape}")
    if node_axes:
        n_nodes = node_axes[0]
    elif mask is not None:
        n_nodes = jnp.shape(mask)[-1]
    elif n is not None:
        n_nodes = int(n)
    else:
        raise ValueError(
            "ign_linear: order_in=0 needs a mask or n to know the node count"
        )
    if mask is None:
        mask = jnp.ones(batch + (n_nodes,), bool)
    mask = jnp.asarray(mask)
    if mask.shape != batch + (n_nodes,):
        raise ValueError(
            f"ign_linear: mask must have shape {batch + (n_nodes,)} for x of shape "
            f"{x.shape}, got {mask.shape}"
        )
    dt = x.dtype
    bsz = int(np.prod(batch)) if batch else 1
    xf = x.reshape((bsz,) + node_axes + (x.shape[-1],))
    mf = mask.reshape(bsz, n_nodes)
    nreal = jnp.maximum(jnp.sum(mf, -1).astype(dt), 1)
    xf = xf * _mask_tensor(mf, k, dt)
    w = w.astype(dt)
    # basis elements with the same output pattern share one matmul and expansion
    groups: dict = {}
    for mu, wm in zip(set_partitions(k + l), w, strict=True):
        z, pattern = _contract(xf, nreal, mu, k, l, normalization)
        groups.setdefault(pattern, []).append((z, wm))
    if params.bias is not None:
        bias = params.bias.astype(dt)
        if bias.shape != (len(set_partitions(l)), w.shape[-1]):
            raise ValueError(
                f"ign_linear: bias of shape {bias.shape} does not fit order {l} "
                f"(expected ({len(set_partitions(l))}, {w.shape[-1]}))"
            )
        one = jnp.ones((bsz, 1), dt)
        for mu, bm in zip(set_partitions(l), bias, strict=True):
            z, pattern = _contract(one, nreal, mu, 0, l, normalization)
            groups.setdefault(pattern, []).append((z, bm[None, :]))
    y = None
    for pattern, items in groups.items():
        zs = jnp.concatenate([z for z, _ in items], -1)
        ws = jnp.concatenate([v for _, v in items], 0)
        term = _expand(zs @ ws, n_nodes, pattern, l, bsz)
        y = term if y is None else y + term
    assert y is not None
    y = y * _mask_tensor(mf, l, dt)
    return y.reshape(batch + (n_nodes,) * l + (w.shape[-1],))
