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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jaxtyping import Array, Int

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


def _check_segments_eagerly(ids, num_segments: int, max_segment_size: int) -> None:
    ids = np.asarray(ids)
    if ids.size == 0:
        return
    bad = (ids < 0) | (ids >= num_segments)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(
            f"segment id {int(ids[k])} at position {k} is out of range "
            f"[0, {num_segments})"
        )
    counts = np.bincount(ids, minlength=num_segments)
    if counts.max() > max_segment_size:
        s = int(np.argmax(counts))
        raise ValueError(
            f"segment {s} has {int(counts[s])} items, more than max_segment_size="
            f"{max_segment_size}"
        )


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
    keep = size if max_segment_size is None else min(size, max_segment_size)
    fills = _identity_leaves(fill, leaves, treedef)
    E = segment_ids.shape[0]
    if E == 0:
        counts = jnp.zeros((num_segments,), jnp.int32)
        out = [jnp.broadcast_to(e, (size, num_segments, *e.shape)) for e in fills]
        return jax.tree_util.tree_unflatten(treedef, out), counts
    # Gather formulation: slot (k, s) holds the k-th item of segment s in the
    # (stably) sorted order. Its backward is one scatter-add into the items.
    if indices_are_sorted:
        order, sorted_ids = None, segment_ids
    else:
        order = jnp.argsort(segment_ids, stable=True)
        sorted_ids = segment_ids[order]
    segs = jnp.arange(num_segments, dtype=sorted_ids.dtype)
    start = jnp.searchsorted(sorted_ids, segs, side="left")
    counts = jnp.searchsorted(sorted_ids, segs, side="right") - start
    counts = jnp.minimum(counts, keep).astype(jnp.int32)
    k = jnp.arange(size)[:, None]
    slot_ok = k < counts[None, :]
    src = jnp.clip(start[None, :] + k, 0, E - 1)
    if order is not None:
        src = order[src]
    out = []
    for leaf, e in zip(leaves, fills, strict=True):
        ok = slot_ok.reshape(slot_ok.shape + (1,) * (leaf.ndim - 1))
        out.append(jnp.where(ok, leaf[src], e[None, None]))
    return jax.tree_util.tree_unflatten(treedef, out), counts


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
    the order of items inside a segment; with a merely commutative ``op`` it is
    invariant to swapping the children of any tree node.

    ``op(a, b)`` receives two pytrees shaped like ``data`` whose leaves are
    ``[N, *feature]`` (``N`` pairs of one level, all segments together) and must
    return the same structure and shapes. Padding never enters a result: a tree
    node with one padding child passes the other child through unchanged (``op``
    is still evaluated on the whole level, its results on such pairs are
    discarded), so a learnable, only approximately neutral identity cannot perturb
    non-empty segments and the reduction of a segment does not depend on
    ``max_segment_size`` beyond its tree shape. Empty segments return ``identity``
    exactly.

    Bad input. Non-static sizes, integer-less ids, a data/ids length mismatch and an
    identity that does not broadcast to a leaf's feature shape raise at trace time.
    Out-of-range ids and segments larger than ``max_segment_size`` raise
    ``ValueError`` when ``segment_ids`` is concrete (eager call); under ``jit`` they
    cannot be checked: out-of-range items are dropped (as ``jax.ops.segment_sum``
    does) and items past the first ``max_segment_size`` of a segment (input order)
    are dropped.

    Args:
      op: binary operator on pytrees, ideally commutative and associative.
      data: pytree of ``[E, *feature]`` leaves.
      segment_ids: ``[E]`` integer segment of each item (any order).
      num_segments: static number of segments ``S``.
      identity: the neutral element: one array (shared by all leaves) or a pytree
        like ``data``, each leaf broadcastable to that leaf's ``feature`` shape.
      max_segment_size: static upper bound on the items in one segment.
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
    num_segments = _static_int(num_segments, "num_segments", 0)
    max_segment_size = _static_int(max_segment_size, "max_segment_size", 1)
    leaves, treedef = jax.tree_util.tree_flatten(data)
    leaves = [jnp.asarray(leaf) for leaf in leaves]  # NumPy leaves too
    if not leaves:
        raise ValueError("tree_reduce: data has no array leaves")
    segment_ids = jnp.asarray(segment_ids)
    if segment_ids.ndim != 1 or not jnp.issubdtype(segment_ids.dtype, jnp.integer):
        raise TypeError(
            f"segment_ids must be a 1-D integer array, got shape {segment_ids.shape} "
            f"and dtype {segment_ids.dtype}"
        )
    E = segment_ids.shape[0]
    for leaf in leaves:
        if leaf.ndim < 1 or leaf.shape[0] != E:
            raise ValueError(
                f"every data leaf needs leading axis {E} (= len(segment_ids)); got "
                f"a leaf of shape {leaf.shape}"
            )
    ids_leaves = _identity_leaves(identity, leaves, treedef)
    if _is_concrete(segment_ids):
        _check_segments_eagerly(segment_ids, num_segments, max_segment_size)
    levels = num_levels(max_segment_size)
    size = 1 << levels
    buf, counts = segments_to_dense(
        data,
        segment_ids,
        num_segments,
        size,
        fill=jax.tree_util.tree_unflatten(treedef, ids_leaves),
        max_segment_size=max_segment_size,
        indices_are_sorted=indices_are_sorted,
    )
    out = _reduce_levels(
        op, jax.tree_util.tree_leaves(buf), treedef, size, counts=counts
    )
    empty = counts == 0
    out = [
        jnp.where(empty.reshape((-1,) + (1,) * (x.ndim - 1)), e[None], x)
        for x, e in zip(out, ids_leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)


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
        levels = (n - 1).bit_length()
        size = 1 << levels
        m = None if mask is None else jnp.moveaxis(mask, -1, 0).reshape(n, B)
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
        out = _reduce_levels(op, padded, treedef, size, valid, counts)
        if m is not None:
            empty = ~m.any(axis=0)
            out = [
                jnp.where(empty.reshape((-1,) + (1,) * (o.ndim - 1)), e[None], o)
                for o, e in zip(out, ids_leaves, strict=True)
            ]
    out = [o.reshape(*batch, *o.shape[1:]) for o in out]
    return jax.tree_util.tree_unflatten(treedef, out)
