"""Permutation frames for sets and graphs.

Puny et al., "Frame Averaging for Invariant and Equivariant Network Design",
ICLR 2022, Sec. 3.3 (graphs: sort nodes by invariant features, average over the
orderings that the ties allow). Ties are resolved here by individualisation and
refinement (the search tree of McKay and Piperno, "Practical graph isomorphism
II", J. Symb. Comput. 2014): the set of leaves of that tree is an exactly
equivariant frame, much smaller than all tie orderings.

The combinatorial part runs in NumPy outside ``jit`` (DESIGN.md: ragged
preprocessing produces static-shape arrays); the jit-able :func:`sort_frame`
covers the common case of distinct invariant keys.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..groups import Sn
from ._core import Frame


def _ranks(keys: list[tuple]) -> np.ndarray:
    """Dense ranks of hashable, orderable keys (0 = smallest): canonical relabelling."""
    uniq = sorted(set(keys))
    index = {k: i for i, k in enumerate(uniq)}
    return np.array([index[k] for k in keys], np.int64)


def _neighbours(adjacency: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    a = np.asarray(adjacency)
    outs = [np.nonzero(a[i])[0] for i in range(a.shape[0])]
    ins = [np.nonzero(a[:, i])[0] for i in range(a.shape[0])]
    return outs, ins


def _refine(colours: np.ndarray, nbrs) -> np.ndarray:
    outs, ins = nbrs
    c = _ranks([(int(v),) for v in colours])
    while True:
        sig = [
            (
                int(c[v]),
                tuple(sorted(c[ins[v]].tolist())),
                tuple(sorted(c[outs[v]].tolist())),
            )
            for v in range(len(c))
        ]
        new = _ranks(sig)
        if new.max(initial=-1) == c.max(initial=-1):
            return new
        c = new


def _initial_colours(n: int, node_features) -> np.ndarray:
    if node_features is None:
        return np.zeros(n, np.int64)
    f = np.asarray(node_features)
    if f.shape[0] != n:
        raise ValueError(
            f"node_features has {f.shape[0]} rows but the graph has {n} nodes"
        )
    f = f.reshape(n, -1)
    return _ranks([tuple(row.tolist()) for row in f])


def wl_colours(
    adjacency: np.ndarray, node_features: np.ndarray | None = None
) -> np.ndarray:
    """1-WL colour refinement to its fixed point, with canonical integer colours.

    Colours are dense ranks of the refinement signatures ``(colour, multiset of
    in-neighbour colours, multiset of out-neighbour colours)``, so they are
    invariant under node relabelling (not just a partition): ``wl_colours(P A Pᵀ,
    P x) = P wl_colours(A, x)``. Runs in NumPy (outside ``jit``).

    Args:
      adjacency: ``(n, n)`` adjacency matrix (non-zero = edge ``i -> j``).
      node_features: optional ``(n,)`` or ``(n, f)`` discrete node features.

    Returns:
      ``(n,)`` int64 colours.

    Example:
      >>> import numpy as np
      >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
      >>> wl_colours(path).tolist()
      [0, 1, 0]
    """
    a = np.asarray(adjacency)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"wl_colours expects an (n, n) adjacency, got shape {a.shape}")
    n = a.shape[0]
    return _refine(_initial_colours(n, node_features), _neighbours(a))


def _individualise(c: np.ndarray, v: int) -> np.ndarray:
    return _ranks([(int(c[u]), 0 if u == v else 1) for u in range(len(c))])


def _target_cell(c: np.ndarray) -> np.ndarray | None:
    counts = np.bincount(c)
    multi = np.nonzero(counts > 1)[0]
    if len(multi) == 0:
        return None
    return np.nonzero(c == multi[0])[0]


def _count_leaves(c, nbrs, cap, refine: bool) -> int:
    cell = _target_cell(c)
    if cell is None:
        return 1
    total = 0
    for v in cell:
        child = _individualise(c, int(v))
        if refine:
            child = _refine(child, nbrs)
        total += _count_leaves(child, nbrs, cap - total, refine)
        if total > cap:
            return total
    return total


def _all_leaves(c, nbrs, refine: bool, out: list) -> None:
    cell = _target_cell(c)
    if cell is None:
        out.append(np.argsort(c, kind="stable"))
        return
    for v in cell:
        child = _individualise(c, int(v))
        _all_leaves(_refine(child, nbrs) if refine else child, nbrs, refine, out)


def _random_leaf(c, nbrs, refine: bool, rng: np.random.Generator) -> np.ndarray:
    while True:
        cell = _target_cell(c)
        if cell is None:
            return np.argsort(c, kind="stable")
        c = _individualise(c, int(rng.choice(cell)))
        if refine:
            c = _refine(c, nbrs)


def permutation_frame(
    adjacency: np.ndarray | None = None,
    node_features: np.ndarray | None = None,
    *,
    num_nodes: int | None = None,
    max_size: int = 16,
    refine: bool = True,
    seed: int = 0,
    dtype=np.float32,
    return_info: bool = False,
):
    """A permutation frame for a graph (or a set): canonical orderings of its nodes.

    Nodes are sorted by invariant colours (``node_features``, refined by 1-WL when
    ``refine`` and an ``adjacency`` is given); ties are split by individualising one
    node of the first non-singleton colour class at a time and refining again. The
    frame is the set of all leaves of this search tree, each leaf an ordering
    ``order`` (``order[k]`` = the node put at position ``k``) used as the group
    element ``g = order`` (so ``g⁻¹·X`` is the canonical relabelling: act with
    :func:`eqjax.groups.act_set` / ``act_graph_tensors`` / ``act_graph``).

    Guarantee: if the tree has at most ``max_size`` leaves the frame is all of them
    with uniform weights, and ``F(P·G) = P·F(G)`` holds exactly, so frame averaging
    is exactly invariant/equivariant. Otherwise ``max_size`` root-to-leaf paths are
    drawn with ``numpy.random.default_rng(seed)``; the frame distribution is then
    equivariant (invariance holds in distribution, Puny et al. ICLR 2022, Sec. 3.3)
    and the error is measurable, not zero. With ``refine=False`` the leaves are all
    orderings within the tie classes of ``node_features`` (plain sorting, the
    paper's construction). Leaves are padded to ``max_size`` with weight 0.

    Args:
      adjacency: ``(n, n)`` adjacency (``None``: a set, no edges).
      node_features: ``(n,)`` or ``(n, f)`` discrete invariant node features
        (degrees, labels, ...); ``None`` = all equal.
      num_nodes: the number of real nodes when the arrays are padded; nodes
        ``>= num_nodes`` are padding and stay in place.
      max_size: static frame size.
      refine: refine colours with 1-WL after each individualisation.
      seed: seed for the sampled case.
      dtype: dtype of the weights.
      return_info: also return ``(exact, num_leaves)`` where ``num_leaves`` is the
        leaf count, or a number above ``max_size`` when sampling.

    Returns:
      ``Frame(elements (max_size, n) int32, weights (max_size,), Sn(n))`` of NumPy
      arrays (plus the info tuple when asked). Runs outside ``jit``; pass the result as
      ``frame=`` to the function returned by :func:`frame_average`.

    Example:
      >>> import numpy as np
      >>> cycle = np.roll(np.eye(4), 1, 0) + np.roll(np.eye(4), -1, 0)
      >>> fr, (exact, leaves) = permutation_frame(cycle, max_size=16, return_info=True)
      >>> exact, leaves, fr.elements.shape
      (True, 8, (16, 4))
    """
    frame, info = _permutation_frame(
        adjacency, node_features, num_nodes, max_size, refine, seed, dtype
    )
    return (frame, info) if return_info else frame


def _permutation_frame(
    adjacency, node_features, num_nodes, max_size, refine, seed, dtype
) -> tuple[Frame, tuple[bool, int]]:
    """:func:`permutation_frame` and its ``(exact, num_leaves)``."""
    if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
        raise TypeError(f"permutation_frame: max_size must be an int, got {max_size!r}")
    if max_size < 1:
        raise ValueError(f"permutation_frame: max_size must be >= 1, got {max_size}")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(
            f"permutation_frame: dtype of the weights must be floating, got {dtype!r}"
        )
    if adjacency is None:
        if node_features is None:
            raise ValueError("permutation_frame needs an adjacency or node_features")
        n_total = np.asarray(node_features).shape[0]
        adjacency = np.zeros((n_total, n_total), np.int8)
        refine_graph = False
    else:
        adjacency = np.asarray(adjacency)
        if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError(
                f"permutation_frame: adjacency must be (n, n), got {adjacency.shape}"
            )
        n_total = adjacency.shape[0]
        refine_graph = refine
    rows = None if node_features is None else np.asarray(node_features).shape[0]
    if rows is not None and rows != n_total:
        raise ValueError(
            f"permutation_frame: node_features has {rows} rows but the graph has "
            f"{n_total} nodes"
        )
    n = n_total if num_nodes is None else int(num_nodes)
    if not 0 <= n <= n_total:
        raise ValueError(
            f"permutation_frame: num_nodes={num_nodes} not in [0, {n_total}]"
        )
    feats = None if node_features is None else np.asarray(node_features)[:n]
    a = adjacency[:n, :n]
    nbrs = _neighbours(a)
    c0 = _initial_colours(n, feats)
    c = _refine(c0, nbrs) if refine_graph else c0
    if n == 0:
        leaves, exact, count = [np.zeros(0, np.int64)], True, 1
    else:
        count = _count_leaves(c, nbrs, max_size, refine_graph)
        exact = count <= max_size
        if exact:
            leaves: list = []
            _all_leaves(c, nbrs, refine_graph, leaves)
        else:
            rng = np.random.default_rng(seed)
            leaves = [_random_leaf(c, nbrs, refine_graph, rng) for _ in range(max_size)]
    pad = np.arange(n, n_total)
    elems = np.stack([np.concatenate([leaf, pad]) for leaf in leaves]).astype(np.int32)
    m = len(leaves)
    elements = np.concatenate([elems, np.repeat(elems[:1], max_size - m, 0)], 0)
    weights = np.concatenate([np.full(m, 1.0 / m), np.zeros(max_size - m)]).astype(
        dtype
    )
    frame = Frame(elements, weights, Sn(n_total) if n_total >= 1 else None)
    return frame, (bool(exact), int(count))


def sort_frame(key_fn: Callable[[Array], Float[Array, " n"]]):
    """A jit-able single-ordering permutation frame: sort items by invariant keys.

    ``frame(x) -> Frame(order[None], [1])`` with ``order = argsort(key_fn(x))``
    (ascending, ``order[k]`` = the item put at position ``k``). Exactly equivariant
    whenever the keys are distinct (e.g. distances to the centroid of a generic
    point cloud, which are also E(3)-invariant, for an ``S_n × E(3)``
    :func:`product_frame`); ties are broken by the input order, which is not
    invariant — use :func:`permutation_frame` when ties occur.

    Args:
      key_fn: ``key_fn(x) -> (n,)`` permutation-equivariant, invariant keys.

    Returns:
      ``frame(x) -> Frame`` with elements ``(1, n)`` int32, weights ``(1,)`` and
      group ``Sn(n)``.

    Example:
      >>> import jax.numpy as jnp
      >>> fr = sort_frame(lambda x: x[:, 0])(jnp.array([[3.0], [1.0], [2.0]]))
      >>> fr.elements
      Array([[1, 2, 0]], dtype=int32)
    """

    def frame(x) -> Frame:
        keys = key_fn(x)
        if keys.ndim != 1:
            raise ValueError(
                f"sort_frame: key_fn must return shape (n,), got {keys.shape}"
            )
        order = jnp.argsort(keys, stable=True).astype(jnp.int32)
        dtype = keys.dtype if jnp.issubdtype(keys.dtype, jnp.floating) else jnp.float32
        return Frame(order[None], jnp.ones((1,), dtype), Sn(keys.shape[0]))

    return frame


def graph_frame(max_size: int = 16, *, refine: bool = True, seed: int = 0):
    """A jit-able :func:`permutation_frame` for dense graphs ``(X, A)``.

    ``frame((X, A)) -> Frame`` calls :func:`permutation_frame` through
    ``jax.pure_callback`` (on ``stop_gradient``-ed inputs), with node colours given
    by the exact values of the rows of ``X`` (discrete features such as one-hot
    labels or degrees) and edges ``A != 0``. Same guarantee as
    :func:`permutation_frame`: exact when the search tree has at most ``max_size``
    leaves, equivariant in distribution otherwise. Works under ``jit``, ``vmap``
    (the callback runs once per graph) and ``grad`` (no gradient through the frame,
    which is discrete).

    Args:
      max_size: static frame size.
      refine: refine colours with 1-WL.
      seed: seed for the sampled case.

    Returns:
      ``frame((X (n, f), A (n, n))) -> Frame(elements (max_size, n) int32,
      weights (max_size,), Sn(n))``; act with
      :func:`eqjax.groups.act_graph_tensors`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> A = jnp.roll(jnp.eye(5), 1, 0) + jnp.roll(jnp.eye(5), -1, 0)
      >>> fr = jax.jit(graph_frame(16))((jnp.ones((5, 1)), A))
      >>> fr.elements.shape, round(float(fr.weights.sum()), 5)
      ((16, 5), 1.0)
    """
    if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
        raise TypeError(f"graph_frame: max_size must be an int, got {max_size!r}")
    if max_size < 1:
        raise ValueError(f"graph_frame: max_size must be >= 1, got {max_size}")
    max_size = int(max_size)

    def host_one(x, a):
        feats = np.unique(x, axis=0, return_inverse=True)[1].reshape(-1)
        fr, _ = _permutation_frame(
            a != 0, feats, None, max_size, refine, seed, np.float32
        )
        count = np.count_nonzero(np.asarray(fr.weights) > 0)
        return np.asarray(fr.elements, dtype=np.int32), np.int32(count)

    def host(x, a):
        # Only integers cross the callback boundary: float results would be
        # converted on the callback thread, where a caller's `jax.enable_x64`
        # context is not active. Leading batch axes (vmap, "broadcast_all") are
        # looped over here in NumPy.
        x, a = np.asarray(x), np.asarray(a)
        batch = x.shape[:-2]
        if not batch:
            return host_one(x, a)
        outs = [host_one(x[i], a[i]) for i in np.ndindex(*batch)]
        elements = np.stack([o[0] for o in outs]).reshape(*batch, max_size, -1)
        counts = np.stack([o[1] for o in outs]).reshape(batch).astype(np.int32)
        return elements, counts

    def frame(xa) -> Frame:
        x, a = xa
        if x.ndim != 2 or a.shape != (x.shape[0], x.shape[0]):
            raise ValueError(
                f"graph_frame expects X (n, f) and A (n, n); got {x.shape}, {a.shape}"
            )
        if x.shape[0] == 0:
            raise ValueError(
                "graph_frame: the graph has 0 nodes (X of shape "
                f"{x.shape}); an empty graph has no node orderings to average "
                "over: pad it to at least one node"
            )
        x, a = jax.lax.stop_gradient(x), jax.lax.stop_gradient(a)
        n = x.shape[0]
        # weights are floating even for integer (label) features
        wdtype = (
            x.dtype
            if jnp.issubdtype(x.dtype, jnp.floating)
            else jax.dtypes.canonicalize_dtype(np.float64)
        )
        out = (
            jax.ShapeDtypeStruct((max_size, n), jnp.int32),
            jax.ShapeDtypeStruct((), jnp.int32),
        )
        elements, count = jax.pure_callback(
            host, out, x, a, vmap_method="broadcast_all"
        )
        # uniform weights over the `count` distinct leaves, zero on the padding rows
        live = jnp.arange(max_size) < count
        weights = jnp.where(live, 1.0 / jnp.maximum(count, 1).astype(wdtype), 0.0)
        return Frame(elements, weights.astype(wdtype), Sn(n))

    return frame
