"""Balanced binary-tree reductions over ragged segments and masked dense sets.

Ong & Veličković, "Learnable Commutative Monoids for Graph Neural Networks"
(LoG 2022) aggregate a multiset with a binary operator applied over a balanced
binary tree: O(log n) depth instead of the O(n) depth of a recurrent fold. This
module holds the tree itself; the operators (exact and learnable monoids) live in
``_monoids.py``.

Layout. Each segment is scattered into a buffer ``[P, S, *feature]`` (tree axis
first, ``P`` = next power of two >= ``max_segment_size``) filled with the identity.
A tree level pairs row ``i`` with row ``i + m/2`` of the ``m`` rows left: both
halves are contiguous leading-axis slices (a reshape ``[m, ...] -> [2, m/2, ...]``),
so a level is one call of ``op`` on ``m/2 * S`` pairs and costs no strided copy.
Padding slots are tracked by a validity mask: a pair with one padding slot passes
its real member through unchanged, so padding never reaches the result, even for a
learnable identity that is only approximately neutral.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jaxtyping import Array, Bool, Int

PyTree = Any
BinaryOp = Callable[[PyTree, PyTree], PyTree]


def _static_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, Tracer):
        raise TypeError(
            f"{name} must be a static Python int, got a traced value {value}"
        )
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a Python int, got {value!r}") from None
    if out != value or out < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return out


def _static_int_arg(value: Any, name: str, minimum: int) -> int:
    """:func:`_static_int` that also refuses ``bool`` (``True`` is no size)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be a Python int, got {value!r}")
    return _static_int(value, name, minimum)


OVERFLOW_POLICIES = ("raise", "nan", "checkify", "truncate")
"""What :func:`tree_reduce` (and everything built on it) does with a segment of
more than ``max_segment_size`` real items; see :func:`tree_reduce`."""

ORDERS = ("input", "sorted")
"""The order in which a segment's items enter the tree (or the fold); a callable
key is accepted too; see :func:`tree_reduce`."""


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_order(order: Any, name: str = "order") -> Any:
    if callable(order):
        return order
    if not isinstance(order, str) or order not in ORDERS:
        raise ValueError(
            f"{name} must be one of {ORDERS} or a callable key(data) -> [E] or "
            f"[E, K] array, got {order!r}"
        )
    return order


def check_reduction_options(
    max_segment_size: Any, order: Any = "input", on_overflow: Any = "raise"
) -> int:
    """Validate the static options shared by :func:`tree_reduce`,
    :func:`~eqjax.reductions.gru_fold` and their wrappers; returns
    ``max_segment_size`` as an ``int``. Raises ``TypeError``/``ValueError`` naming
    the bad argument.

    Example:
      >>> check_reduction_options(8, "sorted", "nan")
      8
      >>> check_reduction_options(0)
      Traceback (most recent call last):
      ...
      ValueError: max_segment_size must be an integer >= 1, got 0
    """
    size = _static_int_arg(max_segment_size, "max_segment_size", 1)
    _check_order(order)
    _check_choice(on_overflow, "on_overflow", OVERFLOW_POLICIES)
    return size


def num_levels(max_segment_size: int) -> int:
    """Depth of the balanced tree: ``ceil(log2(max_segment_size))`` (0 for size 1).

    This is also how many times :func:`tree_reduce` calls ``op`` while tracing.

    Example:
      >>> [num_levels(n) for n in (1, 2, 3, 16, 17)]
      [0, 1, 2, 4, 5]
    """
    n = _static_int(max_segment_size, "max_segment_size", 1)
    return (n - 1).bit_length()


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, Tracer)


def _check_identity_fits(identity: Any, dtype) -> None:
    """An infinite identity (``max``/``min``/``logsumexp``'s ``∓inf``) has no
    integer counterpart: refuse integer data with it, naming the remedy."""
    if not jnp.issubdtype(dtype, jnp.integer):
        return
    try:
        value = np.asarray(identity)
    except (TypeError, jax.errors.TracerArrayConversionError):
        return  # traced: nothing to check at trace time
    if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
        raise TypeError(
            f"identity {value.tolist()} cannot be represented in {jnp.dtype(dtype)} "
            "data: use an integer identity (max_monoid(dtype) / min_monoid(dtype) "
            "take jnp.iinfo's min / max) or floating data (logsumexp needs floats)"
        )


def _identity_leaves(identity: PyTree, leaves: list[Any], treedef) -> list[Array]:
    """Identity leaves cast to each data leaf's dtype, checked against its feature
    shape (a leaf identity is shared by every data leaf)."""
    if jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(identity)):
        ids = [identity] * len(leaves)
    else:
        try:
            ids = treedef.flatten_up_to(identity)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"identity must be one array or a pytree shaped like data; data has "
                f"structure {treedef}, identity has structure "
                f"{jax.tree_util.tree_structure(identity)}"
            ) from err
    out = []
    for leaf, e in zip(leaves, ids, strict=True):
        _check_identity_fits(e, leaf.dtype)
        e = jnp.asarray(e, dtype=leaf.dtype)
        feat = leaf.shape[1:]
        try:
            ok = jnp.broadcast_shapes(e.shape, feat) == feat
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"identity of shape {e.shape} does not broadcast to the feature shape "
                f"{feat} of a data leaf of shape {leaf.shape}"
            )
        out.append(jnp.broadcast_to(e, feat))
    return out


_PADDING_HINT = (
    "; jraph.pad_with_graphs sends every padding edge to one padding node: pass "
    "mask=jraph.get_edge_padding_mask(graph) so that padding edges are not counted"
)


def _overflow_message(s: int, count: int, max_segment_size: int, masked: bool) -> str:
    return (
        f"segment {s} has {count} items, more than max_segment_size="
        f"{max_segment_size} (raise max_segment_size, or choose "
        f"on_overflow='truncate' to drop the extra items)"
        + ("" if masked else _PADDING_HINT)
    )


def _check_segments_eagerly(
    ids,
    num_segments: int,
    max_segment_size: int,
    mask=None,
    *,
    check_size: bool = True,
) -> None:
    ids = np.asarray(ids)
    if mask is not None:
        ids = ids[np.asarray(mask)]
    if ids.size == 0:
        return
    bad = (ids < 0) | (ids >= num_segments)
    if bad.any():
        k = int(np.argmax(bad))
        where = "" if mask is None else " among the unmasked items"
        raise ValueError(
            f"segment id {int(ids[k])} at position {k}{where} is out of range "
            f"[0, {num_segments})"
        )
    if not check_size:
        return
    counts = np.bincount(ids, minlength=num_segments)
    if counts.max() > max_segment_size:
        s = int(np.argmax(counts))
        raise ValueError(
            _overflow_message(s, int(counts[s]), max_segment_size, mask is not None)
        )


def _check_mask(mask: Any, E: int) -> Array | None:
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.shape != (E,) or mask.dtype != jnp.bool_:
        raise ValueError(
            f"mask must be a boolean array of shape ({E},) (True for real items, "
            f"e.g. jraph.get_edge_padding_mask(graph)), got {mask.dtype} {mask.shape}"
        )
    return mask


def _sort_keys(order: Any, data: PyTree, leaves: list[Array], E: int) -> list[Array]:
    """Columns ``[E]`` of the lexicographic key of each item (first column first)."""
    if order == "sorted":
        cols = []
        for leaf in leaves:
            flat = jax.lax.stop_gradient(leaf).reshape(E, -1)
            if flat.dtype == jnp.bool_:
                flat = flat.astype(jnp.int32)
            if jnp.issubdtype(flat.dtype, jnp.complexfloating):
                flat = jnp.concatenate([flat.real, flat.imag], axis=1)
            cols += [flat[:, k] for k in range(flat.shape[1])]
        return cols
    key = jax.lax.stop_gradient(jnp.asarray(order(data)))
    if key.ndim not in (1, 2) or key.shape[0] != E:
        raise ValueError(
            f"order: the key function must return an [E] or [E, K] array with "
            f"E = {E}, got shape {key.shape}"
        )
    if not (
        jnp.issubdtype(key.dtype, jnp.floating)
        or jnp.issubdtype(key.dtype, jnp.integer)
    ):
        raise TypeError(f"order: the key must be real numbers, got {key.dtype}")
    key = key.reshape(E, -1)
    return [key[:, k] for k in range(key.shape[1])]


def _prepare_items(
    data: PyTree,
    leaves: list[Array],
    segment_ids: Array,
    num_segments: int,
    mask: Array | None,
    order: Any,
    indices_are_sorted: bool,
) -> tuple[list[Array], Array, bool]:
    """Drop masked items (their id becomes ``num_segments``, out of range) and put
    the items of every segment in the requested order. Returns ``(leaves, ids,
    indices_are_sorted)``."""
    ids = segment_ids
    if mask is not None:
        ids = jnp.where(mask, ids, jnp.asarray(num_segments, ids.dtype))
        indices_are_sorted = False
    if order != "input" and ids.shape[0] > 0:
        E = ids.shape[0]
        inside = (ids >= 0) & (ids < num_segments)
        ids = jnp.where(inside, ids, jnp.asarray(num_segments, ids.dtype))
        keys = _sort_keys(order, data, leaves, E)
        perm = jax.lax.sort(
            (ids, *keys, jnp.arange(E, dtype=jnp.int32)), num_keys=1 + len(keys)
        )[-1]
        leaves = [leaf[perm] for leaf in leaves]
        ids = ids[perm]
        indices_are_sorted = True
    return leaves, ids, indices_are_sorted


def _raise_overflow(s, count, max_segment_size, masked) -> None:
    s, count = np.ravel(np.asarray(s)), np.ravel(np.asarray(count))
    if (count > max_segment_size).any():
        k = int(np.argmax(count))
        raise ValueError(
            _overflow_message(int(s[k]), int(count[k]), max_segment_size, bool(masked))
        )


def _report_overflow(
    out: list[Array],
    raw_counts: Array,
    max_segment_size: int,
    on_overflow: str,
    masked: bool,
) -> list[Array]:
    """Apply ``on_overflow`` to segments with more than ``max_segment_size`` items
    (``raw_counts`` [S]) when they could not be checked eagerly."""
    if on_overflow == "truncate" or raw_counts.shape[0] == 0:
        return out
    if on_overflow == "nan":
        over = raw_counts > max_segment_size
        res = []
        for o in out:
            if not jnp.issubdtype(o.dtype, jnp.inexact):
                raise TypeError(
                    f"on_overflow='nan' needs floating data, got a {o.dtype} leaf; "
                    "choose on_overflow='raise' or 'checkify'"
                )
            sh = (-1,) + (1,) * (o.ndim - 1)
            res.append(jnp.where(over.reshape(sh), jnp.asarray(np.nan, o.dtype), o))
        return res
    s = jnp.argmax(raw_counts)
    count = raw_counts[s]
    if on_overflow == "checkify":
        from jax.experimental import checkify

        checkify.check(
            count <= max_segment_size,
            "segment {s} has {c} items, more than max_segment_size="
            f"{max_segment_size}" + ("" if masked else _PADDING_HINT),
            s=s,
            c=count,
        )
        return out
    # "raise": a host callback, run only when a segment is over-full (under vmap
    # the cond becomes a select; the callback checks the count itself)
    jax.lax.cond(
        count > max_segment_size,
        lambda: jax.debug.callback(_raise_overflow, s, count, max_segment_size, masked),
        lambda: None,
    )
    return out


# max/min are recognised and reduced in one pass: ties split the gradient evenly
# (as jax.ops.segment_max does) instead of by their position in the tree
_EXTREMA = (
    (jnp.maximum, "max"),
    (jax.lax.max, "max"),
    (jnp.minimum, "min"),
    (jax.lax.min, "min"),
)


def _extremum_kind(op: Any) -> str | None:
    for f, kind in _EXTREMA:
        if op is f:
            return kind
    return None


def _extreme_fill(kind: str, dtype) -> Any:
    if dtype == jnp.bool_:
        return kind == "min"
    if jnp.issubdtype(dtype, jnp.floating):
        return -np.inf if kind == "max" else np.inf
    info = np.iinfo(dtype)
    return info.min if kind == "max" else info.max


def _extremum_plain(kind: str, x: Array, valid: Array) -> Array:
    v = valid.reshape(valid.shape + (1,) * (x.ndim - 2))
    filled = jnp.where(v, x, jnp.asarray(_extreme_fill(kind, x.dtype), x.dtype))
    return (jnp.max if kind == "max" else jnp.min)(filled, axis=0)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _extremum(kind: str, x: Array, valid: Array) -> Array:
    """Max/min over axis 0 of ``x`` ``[P, B, *feature]`` where ``valid``
    ``[P, B]``; the tangent is the mean of the tangents of the tied items."""
    return _extremum_plain(kind, x, valid)


@_extremum.defjvp
def _extremum_jvp(kind, primals, tangents):
    x, valid = primals
    tx = tangents[0]
    y = _extremum_plain(kind, x, valid)
    v = valid.reshape(valid.shape + (1,) * (x.ndim - 2))
    hit = v & (x == y[None])
    n = jnp.sum(hit, axis=0)
    t = jnp.sum(jnp.where(hit, tx, jnp.zeros((), tx.dtype)), axis=0)
    return y, t / jnp.maximum(n, 1).astype(t.dtype)


def _reduce_extremum(kind: str, x: Array, valid: Array) -> Array:
    if jnp.issubdtype(x.dtype, jnp.floating):
        return _extremum(kind, x, valid)
    return _extremum_plain(kind, x, valid)


def segment_positions(
    segment_ids: Int[Array, " E"],
    num_segments: int,
    *,
    indices_are_sorted: bool = False,
) -> tuple[Int[Array, " E"], Int[Array, " S"]]:
    """Rank of every item inside its segment (input order kept) and segment sizes.

    Items with out-of-range ids get the rank ``2**31 - 1`` (past any buffer) and
    are not counted.

    Args:
      segment_ids: ``[E]`` integer ids.
      num_segments: static number of segments ``S``.
      indices_are_sorted: skip the (stable) sort when ids are already sorted.

    Returns:
      ``(positions [E], counts [S])``.

    Example:
      >>> import jax.numpy as jnp
      >>> pos, cnt = segment_positions(jnp.array([1, 0, 1, 1]), 3)
      >>> pos.tolist(), cnt.tolist()
      ([0, 0, 1, 2], [1, 3, 0])
    """
    E = segment_ids.shape[0]
    valid = (segment_ids >= 0) & (segment_ids < num_segments)
    ids = jnp.where(valid, segment_ids, num_segments)
    if E == 0:
        return jnp.zeros((0,), jnp.int32), jnp.zeros((num_segments,), jnp.int32)
    if indices_are_sorted:
        order = jnp.arange(E)
        sorted_ids = ids
    else:
        order = jnp.argsort(ids, stable=True)
        sorted_ids = ids[order]
    ar = jnp.arange(E, dtype=jnp.int32)
    is_start = jnp.concatenate(
        [jnp.ones((1,), bool), sorted_ids[1:] != sorted_ids[:-1]]
    )
    start = jax.lax.cummax(jnp.where(is_start, ar, 0))
    pos_sorted = ar - start
    if indices_are_sorted:
        pos = pos_sorted
    else:
        pos = jnp.zeros((E,), jnp.int32).at[order].set(pos_sorted)
    pos = jnp.where(valid, pos, np.iinfo(np.int32).max)
    counts = jax.ops.segment_sum(
        valid.astype(jnp.int32),
        ids,
        num_segments,
        indices_are_sorted=indices_are_sorted,
    )
    return pos, counts


def segments_to_dense(
    data: PyTree,
    segment_ids: Int[Array, " E"],
    num_segments: int,
    size: int,
    *,
    fill: PyTree,
    max_segment_size: int | None = None,
    indices_are_sorted: bool = False,
) -> tuple[PyTree, Int[Array, " S"]]:
    """Scatter ragged segments into a padded buffer with the tree axis first.

    Item ``k`` of segment ``s`` (input order) goes to ``buffer[k, s]``; the rest is
    ``fill``. Items past ``max_segment_size`` (default ``size``) in a segment and
    items with out-of-range ids are dropped.

    Args:
      data: pytree of ``[E, *feature]`` leaves.
      segment_ids: ``[E]`` integer ids.
      num_segments: static ``S``.
      size: static buffer length ``P >= max_segment_size``.
      fill: value of empty slots (one array, or a pytree like ``data``).
      max_segment_size: items kept per segment.
      indices_are_sorted: whether ``segment_ids`` is sorted.

    Returns:
      ``(buffer, counts)``: leaves ``[P, S, *feature]`` and the kept item count of
      each segment ``[S]``.

    Example:
      >>> import jax.numpy as jnp
      >>> buf, cnt = segments_to_dense(jnp.array([1.0, 2.0, 3.0]), jnp.array([1, 0, 1]),
      ...                              2, 2, fill=0.0)
      >>> buf.tolist(), cnt.tolist()
      ([[2.0, 1.0], [0.0, 3.0]], [1, 2])
    """
    leaves, treedef = jax.tree_util.tree_flatten(data)
    leaves = [jnp.asarray(leaf) for leaf in leaves]  # NumPy leaves too
    fills = _identity_leaves(fill, leaves, treedef)
    out, counts, _ = _to_dense(
        leaves,
        fills,
        jnp.asarray(segment_ids),
        num_segments,
        size,
        size if max_segment_size is None else min(size, max_segment_size),
        indices_are_sorted,
    )
    return jax.tree_util.tree_unflatten(treedef, out), counts


def _to_dense(
    leaves: list[Array],
    fills: list[Array],
    segment_ids: Array,
    num_segments: int,
    size: int,
    keep: int,
    indices_are_sorted: bool,
) -> tuple[list[Array], Array, Array]:
    """:func:`segments_to_dense` on leaves: ``(buffers, kept counts, counts)``
    (``counts`` before keeping at most ``keep`` items per segment)."""
    E = segment_ids.shape[0]
    if E == 0:
        counts = jnp.zeros((num_segments,), jnp.int32)
        out = [jnp.broadcast_to(e, (size, num_segments, *e.shape)) for e in fills]
        return out, counts, counts
    # Gather formulation: slot (k, s) holds the k-th item of segment s in the
    # (stably) sorted order. Its backward is one scatter-add into the items.
    if indices_are_sorted:
        order, sorted_ids = None, segment_ids
    else:
        order = jnp.argsort(segment_ids, stable=True)
        sorted_ids = segment_ids[order]
    segs = jnp.arange(num_segments, dtype=sorted_ids.dtype)
    start = jnp.searchsorted(sorted_ids, segs, side="left")
    raw = (jnp.searchsorted(sorted_ids, segs, side="right") - start).astype(jnp.int32)
    counts = jnp.minimum(raw, keep)
    k = jnp.arange(size)[:, None]
    slot_ok = k < counts[None, :]
    src = jnp.clip(start[None, :] + k, 0, E - 1)
    if order is not None:
        src = order[src]
    out = []
    for leaf, e in zip(leaves, fills, strict=True):
        ok = slot_ok.reshape(slot_ok.shape + (1,) * (leaf.ndim - 1))
        out.append(jnp.where(ok, leaf[src], e[None, None]))
    return out, counts, raw


def _marks(spec: tuple, aux: Array) -> tuple[Array, Array | None]:
    """Pair marks of one level: ``(both, only_a)``, ``both`` for pairs of two real
    members, ``only_a`` for those whose real member is ``a`` (``None``: always
    ``a``). ``spec`` is ``("counts", half)`` with ``aux`` the prefix counts, or
    ``("valid", size, m, half)`` with ``aux`` the original slot marks."""
    if spec[0] == "counts":
        half = spec[1]
        ar = jnp.arange(half, dtype=aux.dtype)[:, None]
        return ar + half < aux[None], None
    _, size, m, half = spec
    node = jnp.any(aux.reshape(size // m, m, aux.shape[-1]), axis=0)
    va, vb = node[:half], node[half:]
    return va & vb, va & ~vb


def _select_real(spec, aux, c, a, b):
    both, only_a = _marks(spec, aux)
    both = both.reshape(-1)
    out = []
    for u, x, y in zip(c, a, b, strict=True):
        sh = (-1,) + (1,) * (u.ndim - 1)
        pick = x if only_a is None else jnp.where(only_a.reshape(sh), x, y)
        out.append(jnp.where(both.reshape(sh), u, pick))
    return out


def _skip_padding(c, a, b, spec, aux, full=None):
    """Per leaf: ``c`` where both members of a pair are real, else the real member
    (marks from :func:`_marks`).

    The selection runs under a ``lax.cond`` on "no pair touches padding" (``full``,
    a scalar, or computed from the marks), and the marks are computed inside its
    branch, so a level without padding (e.g. full segments) pays nothing for
    them; under ``vmap`` the ``cond`` becomes a ``select`` and both forms agree.
    JAX differentiates it as written: a hand-written rule (tangent = the same
    selection of the tangents) bought nothing measurable (rows ``skip_padding``
    of experiments/results/bench_reductions/rules.md, measured at commit 14887a5
    with ``python -m experiments bench_reductions --part rules --repeats 11``).
    """
    if full is None:
        full = jnp.all(_marks(spec, aux)[0])
    return jax.lax.cond(
        full,
        lambda c, a, b: c,
        lambda c, a, b: _select_real(spec, aux, c, a, b),
        list(c),
        list(a),
        list(b),
    )


def _reduce_levels(
    op: BinaryOp,
    buf: list[Array],
    treedef,
    size: int,
    valid: Array | None = None,
    counts: Array | None = None,
) -> list[Array]:
    """Apply ``op`` level by level to leaves ``[size, B, *feature]``; ``size`` is a
    power of two. Returns leaves ``[B, *feature]``.

    Real items are marked by ``valid`` (``[size, B]`` booleans) or, when the real
    items of column ``b`` are its first ``counts[b]`` slots, by ``counts`` (``[B]``,
    cheaper); with neither, every slot is real. A pair with one padding slot passes
    its real member through unchanged, a pair of two padding slots keeps the
    (identity) fill, so padding never enters ``op``'s results even when the
    identity is only approximately neutral (a learnable one). ``op`` is still
    called once per level on all pairs (static shapes); the results of pairs that
    touch padding are discarded.

    Row ``i`` of a level with ``m`` rows holds the original slots ``i + j m``, so
    its validity is computed from the original marks at every level (a prefix
    test ``i < counts`` or an ``any`` over those slots), never by chaining the
    levels' masks: XLA would fuse such a chain into every consumer and re-evaluate
    it element by element.
    """
    if valid is not None and counts is not None:
        raise ValueError("_reduce_levels: give valid or counts, not both")
    if counts is not None:
        # the smallest count decides whether a level has padding at all
        cmin = jnp.min(counts, initial=size)
    m = size
    while m > 1:
        half = m // 2
        spec = aux = full = None
        if counts is not None:
            spec, aux, full = ("counts", half), counts, cmin >= m
        elif valid is not None:
            spec, aux = ("valid", size, m, half), valid
        a, b = [], []
        for x in buf:
            B, feat = x.shape[1], x.shape[2:]
            pair = x.reshape(2, half * B, *feat)
            a.append(pair[0])
            b.append(pair[1])
        c = op(
            jax.tree_util.tree_unflatten(treedef, a),
            jax.tree_util.tree_unflatten(treedef, b),
        )
        c_leaves, c_def = jax.tree_util.tree_flatten(c)
        if c_def != treedef or any(
            u.shape != v.shape for u, v in zip(c_leaves, a, strict=True)
        ):
            raise ValueError(
                "op must map two pytrees shaped like its inputs to one of the same "
                f"structure and shapes; inputs {treedef} with leaf shapes "
                f"{[v.shape for v in a]}, output {c_def} with leaf shapes "
                f"{[u.shape for u in c_leaves]}"
            )
        c_leaves = [u.astype(v.dtype) for u, v in zip(c_leaves, a, strict=True)]
        if spec is not None:
            c_leaves = _skip_padding(c_leaves, a, b, spec, aux, full)
        buf = [
            u.reshape(half, v.shape[0] // half, *v.shape[1:])
            for u, v in zip(c_leaves, a, strict=True)
        ]
        m = half
    return [x[0] for x in buf]


def tree_reduce(
    op: BinaryOp,
    data: PyTree,
    segment_ids: Int[Array, " E"],
    num_segments: int,
    *,
    identity: PyTree,
    max_segment_size: int,
    mask: Bool[Array, " E"] | None = None,
    order: str | Callable[[PyTree], Array] = "input",
    on_overflow: str = "raise",
    indices_are_sorted: bool = False,
) -> PyTree:
    """Reduce each segment of ``data`` with ``op`` over a balanced binary tree.

    Ong & Veličković, "Learnable Commutative Monoids for Graph Neural Networks",
    LoG 2022: an O(log n)-depth alternative to recurrent aggregation. Each segment
    is padded with ``identity`` to ``P = 2**ceil(log2(max_segment_size))`` items and
    reduced pairwise; ``op`` is applied to a whole tree level at once, so tracing
    calls it exactly ``ceil(log2(max_segment_size))`` times. With an exact monoid
    (``jnp.add``/0, ``jnp.maximum``/-inf, ``jnp.logaddexp``/-inf, ...) the result
    equals the corresponding ``jax.ops.segment_*`` reduction and does not depend on
    the order of items inside a segment; ``jnp.maximum``/``jnp.minimum`` (and
    ``lax.max``/``lax.min``: :func:`max_monoid`, :func:`min_monoid`) are
    recognised and reduced in one pass, with tied items sharing the gradient
    evenly as in ``jax.ops.segment_max`` (not by their place in the tree).

    Item order. A merely commutative ``op`` (the learnable monoids) is invariant to
    swapping the children of any tree node, not to every reordering of a segment:
    with ``order="input"`` the result depends on the order of the items (jraph:
    the order of the edges). ``order="sorted"`` first sorts each segment's items
    lexicographically by their feature values (all leaves, flattened), so the
    result is a function of the multiset of items: exactly invariant to
    permuting the items. ``order`` may also be a function ``key(data) -> [E]`` or
    ``[E, K]`` giving the sort key (invariant as long as distinct items get
    distinct keys). The sort's gradient is that of the gather it selects.

    ``op(a, b)`` receives two pytrees shaped like ``data`` whose leaves are
    ``[N, *feature]`` (``N`` pairs of one level, all segments together) and must
    return the same structure and shapes. Padding never enters a result: a tree
    node with one padding child passes the other child through unchanged (``op``
    is still evaluated on the whole level, its results on such pairs are
    discarded), so a learnable, only approximately neutral identity cannot perturb
    non-empty segments and the reduction of a segment does not depend on
    ``max_segment_size`` beyond its tree shape. Empty segments return ``identity``
    exactly.

    Padding and over-full segments. Items with ``mask`` False are left out: not
    reduced and not counted against ``max_segment_size`` (for a padded jraph graph
    pass ``mask=jraph.get_edge_padding_mask(graph)``: ``jraph.pad_with_graphs``
    sends every padding edge to one padding node, which then gets ``identity``). A
    segment with more than ``max_segment_size`` unmasked items is never reduced
    silently: ``on_overflow="raise"`` (default) raises ``ValueError`` at once when
    ``segment_ids`` and ``mask`` are concrete, and otherwise (under ``jit``) at run
    time from a host callback run only when a segment is over-full (JAX reports it
    as a ``JaxRuntimeError`` ending in that ``ValueError``); ``"checkify"`` makes
    it a ``jax.experimental.checkify`` check (wrap the caller in
    ``checkify.checkify``); ``"nan"`` fills the over-full segments' outputs with
    NaN (floating data; eager and jitted alike); ``"truncate"`` keeps the first
    ``max_segment_size`` items of a segment (in ``order``) and drops the rest.
    :func:`segment_overflow` returns the excess counts for explicit handling.

    Bad input. Non-static sizes, unknown options, integer-less ids, a data/ids
    length mismatch, a non-boolean or misshapen mask and an identity that does
    not broadcast to a leaf's feature shape raise at trace time. Out-of-range ids
    (among unmasked items) raise ``ValueError`` when ``segment_ids`` is concrete;
    under ``jit`` those items are dropped, as ``jax.ops.segment_sum`` does.

    Args:
      op: binary operator on pytrees, ideally commutative and associative.
      data: pytree of ``[E, *feature]`` leaves.
      segment_ids: ``[E]`` integer segment of each item (any order).
      num_segments: static number of segments ``S``.
      identity: the neutral element: one array (shared by all leaves) or a pytree
        like ``data``, each leaf broadcastable to that leaf's ``feature`` shape.
      max_segment_size: static upper bound on the (unmasked) items in a segment.
      mask: optional boolean ``[E]``; False marks padding items to leave out.
      order: ``"input"``, ``"sorted"`` or a key function (see above).
      on_overflow: ``"raise"``, ``"checkify"``, ``"nan"`` or ``"truncate"``.
      indices_are_sorted: promise that ``segment_ids`` is sorted (skips a sort).

    Returns:
      Pytree like ``data`` with leaves ``[S, *feature]``, same dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> data = jnp.array([1.0, 5.0, 2.0, 4.0])
      >>> tree_reduce(jnp.maximum, data, jnp.array([0, 0, 2, 0]), 3,
      ...             identity=-jnp.inf, max_segment_size=4)
      Array([  5., -inf,   2.], dtype=float32)
    """
    num_segments = _static_int_arg(num_segments, "num_segments", 0)
    max_segment_size = check_reduction_options(max_segment_size, order, on_overflow)
    leaves, treedef = jax.tree_util.tree_flatten(data)
    leaves = [jnp.asarray(leaf) for leaf in leaves]  # NumPy leaves too
    if not leaves:
        raise ValueError("tree_reduce: data has no array leaves")
    segment_ids = _check_ids(segment_ids)
    E = segment_ids.shape[0]
    for leaf in leaves:
        if leaf.ndim < 1 or leaf.shape[0] != E:
            raise ValueError(
                f"every data leaf needs leading axis {E} (= len(segment_ids)); got "
                f"a leaf of shape {leaf.shape}"
            )
    mask = _check_mask(mask, E)
    ids_leaves = _identity_leaves(identity, leaves, treedef)
    checked = _check_eagerly(
        segment_ids, mask, num_segments, max_segment_size, on_overflow
    )
    data = jax.tree_util.tree_unflatten(treedef, leaves)
    leaves, ids, indices_are_sorted = _prepare_items(
        data, leaves, segment_ids, num_segments, mask, order, indices_are_sorted
    )
    kind = _extremum_kind(op)
    size = max_segment_size if kind else 1 << num_levels(max_segment_size)
    buf, counts, raw = _to_dense(
        leaves,
        ids_leaves,
        ids,
        num_segments,
        size,
        max_segment_size,
        indices_are_sorted,
    )
    if kind:
        valid = jnp.arange(size)[:, None] < counts[None, :]
        out = [_reduce_extremum(kind, x, valid) for x in buf]
    else:
        out = _reduce_levels(op, buf, treedef, size, counts=counts)
    empty = counts == 0
    out = [
        jnp.where(empty.reshape((-1,) + (1,) * (x.ndim - 1)), e[None], x)
        for x, e in zip(out, ids_leaves, strict=True)
    ]
    if not checked:
        out = _report_overflow(
            out, raw, max_segment_size, on_overflow, mask is not None
        )
    return jax.tree_util.tree_unflatten(treedef, out)


def _check_ids(segment_ids: Any) -> Array:
    segment_ids = jnp.asarray(segment_ids)
    if segment_ids.ndim != 1 or not jnp.issubdtype(segment_ids.dtype, jnp.integer):
        raise TypeError(
            f"segment_ids must be a 1-D integer array, got shape {segment_ids.shape} "
            f"and dtype {segment_ids.dtype}"
        )
    return segment_ids


def _check_eagerly(
    segment_ids: Array,
    mask: Array | None,
    num_segments: int,
    max_segment_size: int,
    on_overflow: str,
) -> bool:
    """Check concrete ids (and mask) at once; True when over-full segments were
    ruled out here (nothing left to report at run time)."""
    if not (_is_concrete(segment_ids) and (mask is None or _is_concrete(mask))):
        return False
    size_now = on_overflow in ("raise", "checkify")
    _check_segments_eagerly(
        segment_ids, num_segments, max_segment_size, mask, check_size=size_now
    )
    return size_now


def segment_overflow(
    segment_ids: Int[Array, " E"],
    num_segments: int,
    max_segment_size: int,
    *,
    mask: Bool[Array, " E"] | None = None,
) -> Int[Array, " S"]:
    """How many items each segment has beyond ``max_segment_size`` (0 where it
    fits): the explicit overflow output for code that handles it itself (the
    reductions take ``on_overflow``, see :func:`tree_reduce`). Items with ``mask``
    False and out-of-range ids are not counted. Works under ``jit``.

    Example:
      >>> import jax.numpy as jnp
      >>> segment_overflow(jnp.array([0, 1, 1, 1, 2]), 3, 2).tolist()
      [0, 1, 0]
      >>> segment_overflow(jnp.array([0, 1, 1, 1, 2]), 3, 2,
      ...                  mask=jnp.array([True, True, True, False, True])).tolist()
      [0, 0, 0]
    """
    num_segments = _static_int_arg(num_segments, "num_segments", 0)
    max_segment_size = _static_int_arg(max_segment_size, "max_segment_size", 1)
    segment_ids = _check_ids(segment_ids)
    mask = _check_mask(mask, segment_ids.shape[0])
    ok = (segment_ids >= 0) & (segment_ids < num_segments)
    if mask is not None:
        ok = ok & mask
    counts = jax.ops.segment_sum(
        ok.astype(jnp.int32),
        jnp.where(ok, segment_ids, 0),
        num_segments,
    )
    return jnp.maximum(counts - max_segment_size, 0)


def tree_reduce_dense(
    op: BinaryOp,
    x: PyTree,
    *,
    identity: PyTree,
    mask: Array | None = None,
    axis: int = -2,
) -> PyTree:
    """Reduce the item axis of dense (masked) sets with ``op`` over a balanced tree.

    The dense form of :func:`tree_reduce` (Ong & Veličković, LoG 2022) for batches
    of sets ``[*batch, n, *feature]``: masked-out items and the padding of the
    item axis to a power of two are skipped (a tree node with one such child
    passes the other through unchanged, as in :func:`tree_reduce`), and ``op`` is
    called ``ceil(log2(n))`` times on whole tree levels. Item ``i`` is paired with item
    ``i + P/2`` at the first level (``P`` the padded size), and so on down.
    Sets with no unmasked item return ``identity``.

    Args:
      op: binary operator (see :func:`tree_reduce`); receives leaves
        ``[N, *feature]``.
      x: pytree of ``[*batch, n, *feature]`` leaves sharing ``*batch`` and ``n``.
      identity: neutral element, broadcastable to each leaf's ``feature`` shape.
      mask: optional boolean ``[*batch, n]``; ``True`` marks real items.
      axis: the item axis of every leaf (default ``-2``: ``[..., n, D]``).

    Returns:
      Pytree of ``[*batch, *feature]`` leaves, same dtypes.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])[..., None]
      >>> tree_reduce_dense(jnp.add, x, identity=0.0,
      ...                   mask=jnp.array([[True, True, False], [True, True, True]]))
      Array([[ 3.],
             [15.]], dtype=float32)
    """
    leaves, treedef = jax.tree_util.tree_flatten(x)
    leaves = [jnp.asarray(leaf) for leaf in leaves]  # NumPy leaves too
    if not leaves:
        raise ValueError("tree_reduce_dense: x has no array leaves")
    if any(leaf.ndim == 0 for leaf in leaves):
        raise ValueError("tree_reduce_dense: leaves need at least one (item) axis")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {axis!r}")
    for leaf in leaves:
        if not -leaf.ndim <= axis < leaf.ndim:
            raise ValueError(
                f"axis {axis} is out of range for a leaf of shape {leaf.shape}"
            )
    ax = [axis % leaf.ndim for leaf in leaves]
    batch = leaves[0].shape[: ax[0]]
    n = leaves[0].shape[ax[0]]
    for leaf, a in zip(leaves, ax, strict=True):
        if leaf.shape[:a] != batch or leaf.shape[a] != n:
            raise ValueError(
                f"all leaves must share batch shape {batch} and item count {n} at "
                f"axis {axis}; got a leaf of shape {leaf.shape}"
            )
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.shape != (*batch, n) or mask.dtype != jnp.bool_:
            raise ValueError(
                f"mask must be boolean with shape {(*batch, n)}, got {mask.dtype} "
                f"{mask.shape}"
            )
    B = int(np.prod(batch, dtype=int))
    # items first: [n, B, *feature]
    flat = [
        jnp.moveaxis(leaf, a, 0).reshape(n, B, *leaf.shape[a + 1 :])
        for leaf, a in zip(leaves, ax, strict=True)
    ]
    ids_leaves = _identity_leaves(
        identity,
        [jax.ShapeDtypeStruct((1, *f.shape[2:]), f.dtype) for f in flat],
        treedef,
    )
    if n == 0:
        out = [jnp.broadcast_to(e, (B, *e.shape)) for e in ids_leaves]
    else:
        m = None if mask is None else jnp.moveaxis(mask, -1, 0).reshape(n, B)
        out = _dense_levels(op, flat, ids_leaves, treedef, m, n, B)
        if m is not None:
            empty = ~m.any(axis=0)
            out = [
                jnp.where(empty.reshape((-1,) + (1,) * (o.ndim - 1)), e[None], o)
                for o, e in zip(out, ids_leaves, strict=True)
            ]
    out = [o.reshape(*batch, *o.shape[1:]) for o in out]
    return jax.tree_util.tree_unflatten(treedef, out)


def _dense_levels(op, flat, ids_leaves, treedef, m, n: int, B: int) -> list[Array]:
    """The tree over leaves ``[n, B, *feature]`` with item marks ``m`` ``[n, B]``
    (or None); max/min in one pass."""
    kind = _extremum_kind(op)
    if kind:
        valid = jnp.ones((n, B), bool) if m is None else m
        return [_reduce_extremum(kind, leaf, valid) for leaf in flat]
    levels = (n - 1).bit_length()
    size = 1 << levels
    padded = []
    for leaf, e in zip(flat, ids_leaves, strict=True):
        if m is not None:
            mm = m.reshape(m.shape + (1,) * (leaf.ndim - 2))
            leaf = jnp.where(mm, leaf, e[None, None])
        if size > n:
            pad = jnp.broadcast_to(e, (size - n, B, *e.shape))
            leaf = jnp.concatenate([leaf, pad], axis=0)
        padded.append(leaf)
    valid = counts = None
    if m is not None:
        valid = m
        if size > n:
            valid = jnp.concatenate([valid, jnp.zeros((size - n, B), bool)])
    elif size > n:  # only the power-of-two padding: a prefix of n real items
        counts = jnp.full((B,), n, jnp.int32)
    return _reduce_levels(op, padded, treedef, size, valid, counts)
