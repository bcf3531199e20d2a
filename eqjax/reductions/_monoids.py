"""Exact and learnable commutative monoids for :func:`tree_reduce`.

Ong & Veličković, "Learnable Commutative Monoids for Graph Neural Networks"
(LoG 2022): a monoid is a binary operator with a neutral element. The exact ones
(sum, max, min, logsumexp, product) make the tree reduction a permutation-invariant
set function. The learnable ones are parameterised binary operators made
commutative by construction, ``op(a, b) = ½ (h(a, b) + h(b, a))`` with a GRU cell or
an MLP ``h``, plus a learnable identity: :func:`symmetric_gru_monoid` and
:func:`symmetric_mlp_monoid` return them as :class:`Monoid` records like the exact
ones. Associativity (hence invariance to the
order of items, not only to swapping tree children) is encouraged by
:func:`associativity_penalty` and neutrality by :func:`identity_penalty`.

The symmetrised operators share their matrix products between the two directions:
each operand is multiplied once by the concatenated weights (``u @ [W_i | W_h]``
and ``v @ [W_i | W_h]`` for the GRU cell: four ``D × 3D`` products per pair, the
minimum), and the GRU's two directions are then one elementwise pass with its own
differentiation rule (one coefficient array per projection, so the backward pass
does not reassemble per-gate slices; its plain definition sits beside it). The pair is first put in a canonical order
with a gather-free lexicographic comparison, which makes ``op(a, b) == op(b, a)``
hold bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._switch import uses_rule
from ._tree import _static_int_arg

PyTree = Any


class Monoid(NamedTuple):
    """A binary operator with its neutral element (optax-style record).

    Attributes:
      op: ``op(a, b)``, elementwise over leading axes.
      identity: the neutral element: a scalar for the exact monoids, a learnable
        ``[D]`` array for :func:`symmetric_gru_monoid` and
        :func:`symmetric_mlp_monoid`; :func:`tree_reduce` casts it to the data
        dtype.
      name: short name.

    Example:
      >>> m = sum_monoid()
      >>> float(m.op(2.0, m.identity))
      2.0
    """

    op: Callable[[Any, Any], Any]
    identity: Any
    name: str


def _lowest(dtype) -> Any:
    if dtype is None or jnp.issubdtype(dtype, jnp.floating):
        return -np.inf
    return np.iinfo(dtype).min


def _highest(dtype) -> Any:
    if dtype is None or jnp.issubdtype(dtype, jnp.floating):
        return np.inf
    return np.iinfo(dtype).max


def sum_monoid() -> Monoid:
    """``(+, 0)``. Tree reduction equals ``jax.ops.segment_sum``.

    Example:
      >>> sum_monoid().name
      'sum'
    """
    return Monoid(jnp.add, 0, "sum")


def product_monoid() -> Monoid:
    """``(×, 1)``. Tree reduction equals ``jax.ops.segment_prod``.

    Example:
      >>> product_monoid().identity
      1
    """
    return Monoid(jnp.multiply, 1, "product")


def max_monoid(dtype: Any = None) -> Monoid:
    """``(max, -inf)`` (``iinfo.min`` for an integer ``dtype``).

    Example:
      >>> max_monoid().identity
      -inf
    """
    return Monoid(jnp.maximum, _lowest(dtype), "max")


def min_monoid(dtype: Any = None) -> Monoid:
    """``(min, +inf)`` (``iinfo.max`` for an integer ``dtype``).

    Example:
      >>> min_monoid().identity
      inf
    """
    return Monoid(jnp.minimum, _highest(dtype), "min")


def logsumexp_monoid() -> Monoid:
    """``(log(eᵃ + eᵇ), -inf)``: tree reduction is a segment-wise logsumexp.

    Example:
      >>> import jax.numpy as jnp
      >>> m = logsumexp_monoid()
      >>> float(m.op(jnp.log(2.0), jnp.log(3.0)))  # log 5
      1.609...
    """
    return Monoid(jnp.logaddexp, -np.inf, "logsumexp")


# ----------------------------------------------------------------- learnable ops


class GRUCellParams(NamedTuple):
    """Parameters of a GRU cell (PyTorch gate order ``r, z, n``).

    Attributes:
      w_i: ``[D, 3D]`` input weights.
      w_h: ``[D, 3D]`` hidden weights.
      b_i: ``[3D]`` input bias.
      b_h: ``[3D]`` hidden bias.
    """

    w_i: Array
    w_h: Array
    b_i: Array
    b_h: Array


class MLPParams(NamedTuple):
    """Parameters of the two-argument MLP ``h(a, b)`` used by
    :func:`symmetric_mlp_op`.

    Attributes:
      w_a: ``[D, H]`` first-layer weights of ``a``.
      w_b: ``[D, H]`` first-layer weights of ``b``.
      b_1: ``[H]`` first-layer bias.
      w_2: ``[H, D]`` output weights.
      b_2: ``[D]`` output bias.
    """

    w_a: Array
    w_b: Array
    b_1: Array
    w_2: Array
    b_2: Array


def init_gru_cell(
    key: Array, features: int, *, dtype: Any = jnp.float32
) -> GRUCellParams:
    """Uniform ``±1/sqrt(D)`` initialisation of a GRU cell of width ``D``.

    Example:
      >>> import jax
      >>> init_gru_cell(jax.random.key(0), 4).w_i.shape
      (4, 12)
    """
    D = _static_int_arg(features, "features", 1)
    s = 1.0 / np.sqrt(D)
    k = jax.random.split(key, 4)
    u = lambda kk, shape: jax.random.uniform(kk, shape, dtype, -s, s)
    return GRUCellParams(
        u(k[0], (D, 3 * D)), u(k[1], (D, 3 * D)), u(k[2], (3 * D,)), u(k[3], (3 * D,))
    )


def init_mlp_op(
    key: Array, features: int, hidden: int, *, dtype: Any = jnp.float32
) -> MLPParams:
    """LeCun-normal initialisation of :class:`MLPParams`.

    Example:
      >>> import jax
      >>> init_mlp_op(jax.random.key(0), 4, 8).w_2.shape
      (8, 4)
    """
    D = _static_int_arg(features, "features", 1)
    H = _static_int_arg(hidden, "hidden", 1)
    k = jax.random.split(key, 3)
    n = lambda kk, shape, fan: jax.random.normal(kk, shape, dtype) / np.sqrt(fan)
    return MLPParams(
        n(k[0], (D, H), 2 * D),
        n(k[1], (D, H), 2 * D),
        jnp.zeros((H,), dtype),
        n(k[2], (H, D), H),
        jnp.zeros((D,), dtype),
    )


def _bias(b, like):
    # explicit broadcast of a [F] bias against [..., F] (no implicit rank promotion)
    return b.astype(like.dtype).reshape((1,) * (like.ndim - 1) + b.shape)


def _sigmoid(x):
    # σ(x) = ½ tanh(x/2) + ½: one tanh instead of an exp and a division (XLA:CPU
    # evaluates tanh with a short rational approximation); exact up to rounding.
    return 0.5 * jnp.tanh(0.5 * x) + 0.5


def _gate_values(gi, gh):
    """GRU gates from the input and hidden projections ``gi, gh`` (``[..., 3D]``,
    reset | update | candidate blocks): ``r, z, gh_n, n``."""
    D = gi.shape[-1] // 3
    r = _sigmoid(gi[..., :D] + gh[..., :D])
    z = _sigmoid(gi[..., D : 2 * D] + gh[..., D : 2 * D])
    a = gh[..., 2 * D :]
    n = jnp.tanh(gi[..., 2 * D :] + r * a)
    return r, z, a, n


def _gates(gi, gh, h):
    _, z, _, n = _gate_values(gi, gh)
    return (1 - z) * n + z * h


def _gate_terms(gi, gh, h):
    """One GRU direction and the coefficients of its differential.

    With ``r, z, n`` the reset, update and candidate gates and ``out = (1 - z) n +
    z h``: returns ``out`` and the coefficients of ``d out`` in ``d(gi_r + gh_r)``,
    ``d(gi_z + gh_z)``, ``d gi_n``, ``d gh_n`` and ``d h``.
    """
    r, z, a, n = _gate_values(gi, gh)
    out = (1 - z) * n + z * h
    c_in = (1 - z) * (1 - n * n)
    c_r = c_in * a * (r * (1 - r))
    c_z = (h - n) * (z * (1 - z))
    return out, c_r, c_z, c_in, c_in * r, z


def _symmetric_gates_plain(pu, pv, u, v):
    """``½ (GRU(u, v) + GRU(v, u))`` from the projections ``pu = u W + b``,
    ``pv = v W + b`` (``[N, 6D]``: input gates, then hidden gates).

    The plain definition: JAX differentiates it directly when the rule below is
    switched off (``_switch.plain_definitions("symmetric_gru")``), and the tests
    compare the rule against it.
    """
    d3 = 3 * u.shape[-1]
    return 0.5 * (_gates(pu[:, :d3], pv[:, d3:], v) + _gates(pv[:, :d3], pu[:, d3:], u))


# Differentiation rule of the same function: the differential is written as
# ½ Σ_k (C_u ⊙ dpu + C_v ⊙ dpv)[D-block k] + ½ (z_vu ⊙ du + z_uv ⊙ dv), one
# coefficient array per projection. Its transpose (the backward pass) is then one
# product C ⊙ g of shape [N, 6D] per operand, where autodiff of the plain definition
# assembles the cotangent of pu from per-gate slices padded and summed. What it buys
# is measured by `python -m experiments bench_reductions --part rules` (rows
# "symmetric_gru" in experiments/results/bench_reductions/rules.md). Forward and
# reverse mode and higher derivatives follow from the rule.
_symmetric_gates = jax.custom_jvp(_symmetric_gates_plain)


@_symmetric_gates.defjvp
def _symmetric_gates_jvp(primals, tangents):
    pu, pv, u, v = primals
    dpu, dpv, du, dv = tangents
    N, D = u.shape
    d3 = 3 * D
    o_uv, r_uv, z_uv, in_uv, hn_uv, h_uv = _gate_terms(pu[:, :d3], pv[:, d3:], v)
    o_vu, r_vu, z_vu, in_vu, hn_vu, h_vu = _gate_terms(pv[:, :d3], pu[:, d3:], u)
    cu = jnp.stack([r_uv, z_uv, in_uv, r_vu, z_vu, hn_vu], axis=1)  # [N, 6, D]
    cv = jnp.stack([r_vu, z_vu, in_vu, r_uv, z_uv, hn_uv], axis=1)
    out = 0.5 * (o_uv + o_vu)
    t = (cu * dpu.reshape(N, 6, D)).sum(1) + (cv * dpv.reshape(N, 6, D)).sum(1)
    t = 0.5 * (t + h_uv * dv + h_vu * du)
    return out, t


def _canonical_pair(a, b):
    """Order each pair ``(a, b)`` canonically (lexicographically smaller row first).

    ``½ (h(a, b) + h(b, a))`` is symmetric in exact arithmetic, but once XLA fuses
    it the two directions may be rounded differently (FMA contraction, matmul
    tiles that depend on the row). Feeding both argument orders the same canonical
    pair makes ``op(a, b) == op(b, a)`` hold bit for bit. The comparison needs no
    gather: coordinate ``k`` weighs ``D - k``, and the first differing coordinate
    (the largest weight among the differing ones) decides. The selection is a
    ``where`` (its gradient is that of the symmetric function).
    """
    D = a.shape[-1]
    # key of coordinate k: 2 (D - k) + [a_k > b_k] where a_k != b_k, else 0; the
    # largest key is the first differing coordinate, its low bit says which is
    # greater (one reduction)
    w = 2 * jnp.arange(D, 0, -1, dtype=jnp.int32).reshape((1,) * (a.ndim - 1) + (D,))
    key = jnp.where(a != b, w + (a > b).astype(jnp.int32), jnp.zeros((), jnp.int32))
    swap = (jnp.max(key, axis=-1, keepdims=True) & 1) == 1
    return jnp.where(swap, b, a), jnp.where(swap, a, b)


def _flat_pair(a, b):
    """Canonical pair flattened to ``[N, D]`` and a function restoring ``a``'s
    leading axes."""
    lead, D = a.shape[:-1], a.shape[-1]
    u, v = _canonical_pair(a.reshape(-1, D), b.reshape(-1, D))
    return u, v, lambda out: out.reshape(*lead, out.shape[-1])


def gru_cell(
    params: GRUCellParams, x: Float[Array, "*batch D"], h: Float[Array, "*batch D"]
) -> Float[Array, "*batch D"]:
    """One GRU step ``h' = GRU(x, h)`` (Cho et al. 2014; PyTorch gate convention).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = init_gru_cell(jax.random.key(0), 3)
      >>> gru_cell(p, jnp.ones((2, 3)), jnp.zeros((2, 3))).shape
      (2, 3)
    """
    x, h = jnp.asarray(x), jnp.asarray(h)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"gru_cell: x must be floating, got {x.dtype}")
    gi = x @ params.w_i.astype(x.dtype)
    gi = gi + _bias(params.b_i, gi)
    gh = h @ params.w_h.astype(x.dtype)
    gh = gh + _bias(params.b_h, gh)
    return _gates(gi, gh, h)


def _check_pair(a, b, D: int, name: str) -> None:
    for v in (a, b):
        if v.shape[-1:] != (D,):
            raise ValueError(
                f"{name}: expected operands of shape (..., {D}), got {v.shape}"
            )
    if a.shape != b.shape:
        raise ValueError(f"{name}: operand shapes differ: {a.shape} vs {b.shape}")
    for v in (a, b):
        if not jnp.issubdtype(v.dtype, jnp.floating):
            raise TypeError(
                f"{name}: operands must be floating, got {v.dtype} (the parameters "
                "are not cast to integers)"
            )


def symmetric_gru_op(params: GRUCellParams) -> Callable[[Array, Array], Array]:
    """The commutative operator ``op(a, b) = ½ (GRU(a, b) + GRU(b, a))``.

    Ong & Veličković (LoG 2022) symmetrise a GRU cell (input ``a``, hidden state
    ``b``) into an exactly commutative learnable binary operator. Both directions
    are one GRU call on ``2N`` rows (inputs ``[u; v]``, hidden ``[v; u]``). The pair
    is put in a canonical (lexicographic) order ``(u, v)`` first, so
    ``op(a, b) == op(b, a)`` holds bit for bit, also under ``jit``.

    Args:
      params: :class:`GRUCellParams` of width ``D``.

    Returns:
      ``op(a, b)`` on ``[..., D]`` arrays (cast params to the operands' dtype).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> op = symmetric_gru_op(init_gru_cell(jax.random.key(0), 4))
      >>> a, b = jnp.ones((3, 4)), jnp.arange(12.0).reshape(3, 4) / 12
      >>> bool((op(a, b) == op(b, a)).all())
      True
    """
    D = params.w_i.shape[0]
    # concatenated once per trace (not once per tree level)
    w_cat = jnp.concatenate([params.w_i, params.w_h], axis=1)
    b_cat = jnp.concatenate([params.b_i, params.b_h])

    def op(a, b):
        _check_pair(a, b, D, "symmetric_gru_op")
        u, v, unflatten = _flat_pair(a, b)
        dt = u.dtype
        w, bias = w_cat.astype(dt), b_cat
        # each operand's input and hidden projections in one product: [N, 6D]
        pu = u @ w
        pu = pu + _bias(bias, pu)
        pv = v @ w
        pv = pv + _bias(bias, pv)
        gates = (
            _symmetric_gates if uses_rule("symmetric_gru") else _symmetric_gates_plain
        )
        return unflatten(gates(pu, pv, u, v))

    return op


def symmetric_mlp_op(params: MLPParams) -> Callable[[Array, Array], Array]:
    """The commutative operator ``op(a, b) = ½ (h(a, b) + h(b, a))`` with
    ``h(a, b) = W₂ relu(W_a a + W_b b + b₁) + b₂`` (Ong & Veličković, LoG 2022).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> op = symmetric_mlp_op(init_mlp_op(jax.random.key(0), 4, 8))
      >>> a, b = jnp.ones((3, 4)), jnp.arange(12.0).reshape(3, 4)
      >>> bool((op(a, b) == op(b, a)).all())
      True
    """
    D = params.w_a.shape[0]
    w_cat = jnp.concatenate([params.w_a, params.w_b], axis=1)

    def op(a, b):
        _check_pair(a, b, D, "symmetric_mlp_op")
        u, v, unflatten = _flat_pair(a, b)
        dt = u.dtype
        H = params.w_a.shape[1]
        w = w_cat.astype(dt)
        pu, pv = u @ w, v @ w  # [N, 2H]: (u W_a, u W_b) and (v W_a, v W_b)
        b1 = _bias(params.b_1, pu[:, :H])
        # W_2 is linear: ½ (h(u, v) + h(v, u)) = ½ (r_uv + r_vu) W_2 + b_2
        hidden = 0.5 * (
            jax.nn.relu(pu[:, :H] + pv[:, H:] + b1)
            + jax.nn.relu(pv[:, :H] + pu[:, H:] + b1)
        )
        out = hidden @ params.w_2.astype(dt)
        return unflatten(out + _bias(params.b_2, out))

    return op


def _learned_identity(identity, D: int, name: str) -> Array:
    e = jnp.asarray(identity)
    if e.shape not in ((), (D,)):
        raise ValueError(
            f"{name}: identity must have shape () or ({D},), got {e.shape}"
        )
    return e


def symmetric_gru_monoid(params: GRUCellParams, identity: Any) -> Monoid:
    """The learnable commutative monoid ``(½ (GRU(a, b) + GRU(b, a)), e)``.

    Ong & Veličković (LoG 2022): :func:`symmetric_gru_op` with a learnable identity
    ``e``, as one :class:`Monoid` used like the exact ones
    (``tree_reduce(m.op, ..., identity=m.identity)``, :func:`tree_aggregator`,
    :func:`aggregate`). Only commutativity is exact; associativity and neutrality
    of ``e`` are encouraged by :func:`associativity_penalty` and
    :func:`identity_penalty`. ``tree_reduce`` never feeds ``e`` to ``op`` (padding
    is skipped), so it only stands for empty segments.

    Args:
      params: :class:`GRUCellParams` of width ``D``.
      identity: ``e``, shape ``[D]`` (or a scalar).

    Returns:
      ``Monoid(op, identity, "symmetric_gru")``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eqjax.reductions import tree_reduce
      >>> m = symmetric_gru_monoid(init_gru_cell(jax.random.key(0), 4), jnp.zeros(4))
      >>> tree_reduce(m.op, jnp.ones((3, 4)), jnp.array([0, 0, 2]), 3,
      ...             identity=m.identity, max_segment_size=2).shape
      (3, 4)
    """
    D = params.w_i.shape[0]
    e = _learned_identity(identity, D, "symmetric_gru_monoid")
    return Monoid(symmetric_gru_op(params), e, "symmetric_gru")


def symmetric_mlp_monoid(params: MLPParams, identity: Any) -> Monoid:
    """The learnable commutative monoid ``(½ (h(a, b) + h(b, a)), e)`` with the
    two-argument MLP ``h`` of :func:`symmetric_mlp_op` (Ong & Veličković,
    LoG 2022); see :func:`symmetric_gru_monoid`.

    Args:
      params: :class:`MLPParams` of width ``D``.
      identity: ``e``, shape ``[D]`` (or a scalar).

    Returns:
      ``Monoid(op, identity, "symmetric_mlp")``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> m = symmetric_mlp_monoid(init_mlp_op(jax.random.key(0), 4, 8), jnp.zeros(4))
      >>> m.name, m.identity.shape
      ('symmetric_mlp', (4,))
    """
    D = params.w_a.shape[0]
    e = _learned_identity(identity, D, "symmetric_mlp_monoid")
    return Monoid(symmetric_mlp_op(params), e, "symmetric_mlp")


def associativity_penalty(
    op: Callable, a: PyTree, b: PyTree, c: PyTree, *, normalize: bool = False
) -> Array:
    """Mean squared associativity defect ``‖op(op(a, b), c) − op(a, op(b, c))‖²``.

    The regulariser of Ong & Veličković (LoG 2022), evaluated on sampled triples
    (encoded set items, or better partial aggregates of real sets). It is zero for
    an exact monoid. The plain defect can also be lowered by shrinking the
    operator's outputs (a contraction is nearly associative); ``normalize=True``
    divides it by the mean squared spread of ``op(op(a, b), c)`` over the batch
    (``‖L_i − L_{N−1−i}‖²``), which makes it scale-free and is what lowers the
    *relative* permutation-invariance error in our tests.

    Args:
      op: binary operator.
      a, b, c: pytrees of ``[N, ...]`` leaves.
      normalize: divide by the spread of the outputs (scale-free penalty).

    Returns:
      Scalar: squared error summed over features, averaged over ``N``.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.arange(6.0).reshape(3, 2)
      >>> float(associativity_penalty(jnp.add, x, x + 1, x * 2))
      0.0
      >>> float(associativity_penalty(lambda u, v: u - v, x, x, x)) > 0
      True
    """
    left = op(op(a, b), c)
    right = op(a, op(b, c))
    pen = _mean_sq(left, right)
    if normalize:
        rev = jax.tree_util.tree_map(lambda x: x[::-1], left)
        pen = pen / (_mean_sq(left, rev) + jnp.finfo(pen.dtype).tiny)
    return pen


def identity_penalty(op: Callable, identity: PyTree, a: PyTree) -> Array:
    """Mean squared neutrality defect ``‖op(a, e) − a‖² + ‖op(e, a) − a‖²``.

    Encourages a learnable identity ``e`` to be neutral (Ong & Veličković,
    LoG 2022), so identity padding in :func:`tree_reduce` does not change results.

    Args:
      op: binary operator.
      identity: ``e``, broadcastable to the leaves of ``a``.
      a: pytree of ``[N, ...]`` leaves.

    Returns:
      Scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> float(identity_penalty(jnp.add, 0.0, jnp.ones((4, 2))))
      0.0
    """
    e = (
        jax.tree_util.tree_map(
            lambda x, v: jnp.broadcast_to(jnp.asarray(v, x.dtype), x.shape), a, identity
        )
        if not jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(identity))
        else jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(jnp.asarray(identity, x.dtype), x.shape), a
        )
    )
    return _mean_sq(op(a, e), a) + _mean_sq(op(e, a), a)


def _mean_sq(u: PyTree, v: PyTree) -> Array:
    sq = jax.tree_util.tree_map(
        lambda x, y: (
            jnp.sum(((x - y) ** 2).reshape(x.shape[0], -1), axis=-1)
            if x.ndim
            else (x - y) ** 2
        ),
        u,
        v,
    )
    return jnp.mean(sum(jax.tree_util.tree_leaves(sq)))
