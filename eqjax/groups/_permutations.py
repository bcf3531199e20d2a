"""The symmetric group S_n and its actions on sets, graphs and adjacency tensors.

A permutation is an integer index array ``p`` of shape ``(..., n)`` read as the
map ``i ↦ p[i]``: acting with ``p`` moves item ``i`` to position ``p[i]``.
Composition is composition of maps, ``(p∘q)[i] = p[q[i]]``, so
``act(compose(p, q), x) == act(p, act(q, x))``. In matrix form ``P[p[i], i] = 1``
and the actions are ``P x`` on items and ``P A Pᵀ`` on adjacency matrices.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Array, Int

from ._base import Group, as_shape, concrete, normalize_axis, static_int


def _check_perm(p, n: int | None, name: str) -> None:
    """Shape and dtype always; when ``p`` is concrete, that every row is a
    permutation of ``0..n-1`` (no duplicates, nothing out of range)."""
    _check_perm_shape(p, n, name)
    a = concrete(p)
    if a is None or a.size == 0:
        return
    m = a.shape[-1]
    ok = (np.sort(a, axis=-1) == np.arange(m)).all(axis=-1)
    if not ok.all():
        idx = tuple(int(i) for i in np.argwhere(~ok)[0]) if ok.ndim else ()
        row = a[idx] if idx else a
        out = row[(row < 0) | (row >= m)]
        vals, counts = np.unique(row, return_counts=True)
        what = (
            f"entries out of range 0..{m - 1}: {out[:5].tolist()}"
            if out.size
            else f"duplicate entries {vals[counts > 1][:5].tolist()}"
        )
        where = f" at batch index {idx}" if idx else ""
        raise ValueError(
            f"{name}: p is not a permutation of 0..{m - 1}{where} ({what})"
        )


def _check_perm_shape(p, n: int | None, name: str) -> None:
    shape = getattr(p, "shape", None)
    if shape is None:
        raise TypeError(
            f"{name} expects an integer index array, got {type(p).__name__}"
        )
    if not jnp.issubdtype(p.dtype, jnp.integer):
        raise TypeError(
            f"{name} expects an integer permutation array, got dtype {p.dtype}"
        )
    if len(shape) < 1 or (n is not None and shape[-1] != n):
        want = "(..., n)" if n is None else f"(..., {n})"
        raise ValueError(
            f"{name} expects permutations of shape {want}; got shape {shape}"
        )


def permutation_inverse(p: Int[Array, "*batch n"]) -> Int[Array, "*batch n"]:
    """Inverse permutation ``q`` with ``q[p[i]] = i``.

    Example:
      >>> import jax.numpy as jnp
      >>> permutation_inverse(jnp.array([2, 0, 1]))
      Array([1, 2, 0], dtype=int32)
    """
    _check_perm(p, None, "permutation_inverse")
    return jnp.argsort(p, axis=-1).astype(p.dtype)


def act_set(p: Int[Array, "*batch n"], x: Array, *, axis: int = -2) -> Array:
    """Permute the items of a set/sequence: item ``i`` of ``x`` moves to ``p[i]``.

    Args:
      p: permutations ``(*batch, n)``.
      x: ``(*batch, ..., n, ...)`` with the item axis at ``axis`` (default ``-2``, for
        ``[n, features]`` sets; use ``axis=-1`` for ``[n]`` scalars). Leading batch
        axes of ``p`` and ``x`` broadcast.

    Returns:
      ``y`` with ``y[..., p[i], :] = x[..., i, :]``.

    Example:
      >>> import jax.numpy as jnp
      >>> act_set(jnp.array([2, 0, 1]), jnp.array([10.0, 11.0, 12.0]), axis=-1)
      Array([11., 12., 10.], dtype=float32)
    """
    _check_perm(p, None, "act_set")
    if not hasattr(x, "ndim") or not hasattr(x, "shape"):
        raise TypeError(f"act_set expects an array x, got {type(x).__name__}")
    axis = normalize_axis(axis, x.ndim, "act_set: axis")
    n = p.shape[-1]
    if x.shape[axis] != n:
        raise ValueError(
            f"act_set: permutation of length {n} does not match item axis {axis} of "
            f"input with shape {x.shape}"
        )
    inv = jnp.argsort(p, axis=-1)  # p was checked above
    trailing = x.ndim - axis - 1
    idx = inv.reshape(inv.shape + (1,) * trailing)
    lead = x.shape[:axis]
    batch = jnp.broadcast_shapes(idx.shape[: -1 - trailing], lead)
    idx = jnp.broadcast_to(idx, (*batch, n, *x.shape[axis + 1 :]))
    xb = jnp.broadcast_to(x, (*batch, *x.shape[axis:]))
    return jnp.take_along_axis(xb, idx, axis=len(batch))


def act_adjacency(
    p: Int[Array, "*batch n"], A: Array, *, num_feature_axes: int = 0
) -> Array:
    """``P A Pᵀ``: relabel both node axes of an adjacency (or pair-feature) tensor.

    Args:
      p: permutation ``(*batch, n)``.
      A: ``(*batch, n, n, *features)`` with ``num_feature_axes`` trailing axes.

    Returns:
      ``B`` with ``B[p[i], p[j]] = A[i, j]``.

    Example:
      >>> import jax.numpy as jnp
      >>> A = jnp.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=jnp.float32)
      >>> act_adjacency(jnp.array([2, 1, 0]), A)[2, 1]
      Array(1., dtype=float32)
    """
    f = static_int(num_feature_axes, "act_adjacency: num_feature_axes", minimum=0)
    if not hasattr(A, "ndim"):
        raise TypeError(f"act_adjacency expects an array A, got {type(A).__name__}")
    if A.ndim < 2 + f or A.shape[A.ndim - 2 - f] != A.shape[A.ndim - 1 - f]:
        raise ValueError(
            f"act_adjacency expects A of shape (..., n, n{', ...' * bool(f)}); got {A.shape}"
        )
    B = act_set(p, A, axis=-2 - f)
    return act_set(p, B, axis=-1 - f)


def act_graph_tensors(
    p: Int[Array, "*batch n"], xa: tuple[Array, Array]
) -> tuple[Array, Array]:
    """Act on a dense graph ``(X, A)``: node features ``P X``, adjacency ``P A Pᵀ``.

    Args:
      p: permutation ``(*batch, n)``.
      xa: ``(X (*batch, n, d), A (*batch, n, n))``.

    Example:
      >>> import jax.numpy as jnp
      >>> X, A = jnp.eye(3), jnp.ones((3, 3))
      >>> Y, B = act_graph_tensors(jnp.array([1, 2, 0]), (X, A))
      >>> Y.shape, B.shape
      ((3, 3), (3, 3))
    """
    X, A = xa
    return act_set(p, X, axis=-2), act_adjacency(p, A)


def act_graph(p: Int[Array, " n_total"], graph: jraph.GraphsTuple) -> jraph.GraphsTuple:
    """Relabel the nodes of a (possibly batched, possibly padded) ``GraphsTuple``.

    Node ``i`` becomes node ``p[i]``: node features are moved, ``senders`` and
    ``receivers`` are relabelled, edge features, globals and counts are unchanged.
    For a batch of graphs ``p`` must keep each node inside its own graph (jraph
    stores graphs as contiguous node ranges); :func:`graph_node_permutations`
    samples such permutations. Use ``jax.vmap`` for a batch of permutations.

    Args:
      p: integer permutation of shape ``(n_total,)``, ``n_total`` = number of node
        rows in ``graph`` (padding included).
      graph: a ``jraph.GraphsTuple`` whose ``nodes`` is an array or pytree of
        arrays with leading axis ``n_total``.

    Returns:
      The relabelled ``GraphsTuple``.

    Example:
      >>> import jax.numpy as jnp, jraph
      >>> g = jraph.GraphsTuple(nodes=jnp.arange(3.0)[:, None], edges=None,
      ...     senders=jnp.array([0]), receivers=jnp.array([1]), globals=None,
      ...     n_node=jnp.array([3]), n_edge=jnp.array([1]))
      >>> h = act_graph(jnp.array([2, 0, 1]), g)
      >>> (h.senders.tolist(), h.receivers.tolist(), h.nodes[:, 0].tolist())
      ([2], [0], [1.0, 2.0, 0.0])
    """
    if not isinstance(graph, jraph.GraphsTuple):
        raise TypeError(
            f"act_graph expects a jraph.GraphsTuple, got {type(graph).__name__}"
        )
    n_total = _num_node_rows(graph)
    _check_perm(p, n_total, "act_graph")
    if p.ndim != 1:
        raise ValueError(
            f"act_graph takes one permutation of shape ({n_total},); use jax.vmap for batches, got {p.shape}"
        )
    _check_within_graphs(p, graph, "act_graph")
    nodes = jax.tree_util.tree_map(lambda v: act_set(p, v, axis=0), graph.nodes)
    return graph._replace(
        nodes=nodes,
        senders=p[graph.senders] if graph.senders is not None else None,
        receivers=p[graph.receivers] if graph.receivers is not None else None,
    )


def _check_within_graphs(p, graph: jraph.GraphsTuple, name: str) -> None:
    """When ``p`` and ``graph.n_node`` are concrete: every node must stay in its
    own graph (jraph keeps each graph's nodes in one contiguous block)."""
    a, n_node = concrete(p), concrete(graph.n_node)
    if a is None or n_node is None or a.size == 0:
        return
    if int(n_node.sum()) != a.shape[-1]:
        raise ValueError(
            f"{name}: graph.n_node sums to {int(n_node.sum())} but the graph has "
            f"{a.shape[-1]} node rows"
        )
    gid = np.repeat(np.arange(n_node.shape[0]), n_node)
    moved = gid[a] != gid
    if moved.any():
        i = int(np.argmax(moved))
        raise ValueError(
            f"{name}: p moves node {i} of graph {int(gid[i])} to position "
            f"{int(a[i])} in graph {int(gid[a[i]])}; a permutation of a batched "
            "GraphsTuple must keep every node in its own graph (sample one with "
            "graph_node_permutations(graph).sample)"
        )


def _num_node_rows(graph: jraph.GraphsTuple) -> int:
    leaves = jax.tree_util.tree_leaves(graph.nodes)
    if not leaves:
        raise ValueError("act_graph needs node features to know the number of nodes")
    sizes = {leaf.shape[0] for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(
            f"node feature leaves disagree on the number of nodes: {sizes}"
        )
    return sizes.pop()


def _sn_group(n: int, item_axis: int, name: str, sample) -> Group:
    def validate(g):
        _check_perm(g, n, name)

    def identity(shape=(), dtype=jnp.int32):
        shape = as_shape(shape)
        return jnp.broadcast_to(jnp.arange(n, dtype=dtype), (*shape, n))

    def compose(g, h):
        validate(g)
        validate(h)
        batch = jnp.broadcast_shapes(g.shape[:-1], h.shape[:-1])
        g = jnp.broadcast_to(g, (*batch, n))
        h = jnp.broadcast_to(h, (*batch, n))
        return jnp.take_along_axis(g, h, axis=-1)

    def inverse(g):
        validate(g)
        return permutation_inverse(g)

    def act(g, x):
        validate(g)
        return act_set(g, x, axis=item_axis)

    return Group(
        name=name,
        identity=identity,
        compose=compose,
        inverse=inverse,
        sample=sample,
        act=act,
        exp=None,
        log=None,
        validate=validate,
        dim=n,
        compact=True,
        has_reflections=False,
    )


@functools.cache
def Sn(n: int, item_axis: int = -2) -> Group:
    """The symmetric group S_n: permutations as ``(..., n)`` integer arrays.

    ``sample`` is uniform (Haar); ``act`` permutes the item axis ``item_axis`` of
    ``x`` (default ``-2``: sets ``[..., n, d]``) as :func:`act_set` does.

    Example:
      >>> import jax
      >>> Sn(7).sample(jax.random.key(0), (5,)).shape
      (5, 7)
    """
    n = static_int(n, "Sn: n", minimum=1)
    item_axis = static_int(item_axis, "Sn: item_axis")

    def sample(key, shape=(), dtype=jnp.int32):
        return _sample_sn(key, as_shape(shape), n, jnp.dtype(dtype))

    return _sn_group(n, item_axis, f"Sn({n})", sample)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _sample_sn(key, shape, n, dtype):
    u = jax.random.uniform(key, (*shape, n))
    return jnp.argsort(u, axis=-1).astype(dtype)


def graph_node_permutations(graph: jraph.GraphsTuple) -> Group:
    """The node relabellings of a batched ``GraphsTuple`` that keep each node in its
    own graph: ``S_{n_1} × … × S_{n_G}`` inside ``S_N``.

    Elements, ``compose`` and ``inverse`` are those of ``Sn(N)``; ``sample`` is
    uniform on the product (jit-able: a lexicographic sort by (graph id, uniform
    key)); ``act`` is :func:`act_graph`. Padding nodes (jraph's padding graph) stay
    in the padding graph.

    Example:
      >>> import jax, jax.numpy as jnp, jraph
      >>> g = jraph.GraphsTuple(nodes=jnp.zeros((5, 1)), edges=None,
      ...     senders=jnp.array([0, 3]), receivers=jnp.array([1, 4]), globals=None,
      ...     n_node=jnp.array([2, 3]), n_edge=jnp.array([1, 1]))
      >>> G = graph_node_permutations(g)
      >>> p = G.sample(jax.random.key(0))
      >>> bool((jnp.sort(p[:2]) == jnp.array([0, 1])).all())
      True
    """
    if not isinstance(graph, jraph.GraphsTuple):
        raise TypeError(
            f"graph_node_permutations expects a jraph.GraphsTuple, got {type(graph).__name__}"
        )
    n_total = _num_node_rows(graph)
    try:  # concrete sizes (the usual case): the layout on the host, no JAX program
        n_node_np = np.asarray(graph.n_node)
    except (TypeError, jax.errors.TracerArrayConversionError):
        n_node = jnp.asarray(graph.n_node)
        graph_ids = jnp.repeat(
            jnp.arange(n_node.shape[0]), n_node, total_repeat_length=n_total
        )
    else:
        # as jnp.repeat(..., total_repeat_length=n_total): cut, or filled with the
        # last graph's id
        ids = np.repeat(np.arange(n_node_np.shape[0]), n_node_np)[:n_total]
        fill = np.full(n_total - ids.shape[0], max(n_node_np.shape[0] - 1, 0))
        graph_ids = jnp.asarray(np.concatenate([ids, fill]), jnp.int32)

    def sample(key, shape=(), dtype=jnp.int32):
        shape = as_shape(shape)
        u = jax.random.uniform(key, (*shape, n_total))
        gid = jnp.broadcast_to(graph_ids, u.shape)
        # order[k] = the node placed at position k; nodes stay in their graph block.
        order = jnp.lexsort((u, gid), axis=-1)
        return jnp.argsort(order, axis=-1).astype(dtype)

    base = _sn_group(n_total, 0, f"GraphNodePermutations({n_total})", sample)

    def act(g, x):
        base.validate(g)
        return act_graph(g, x)

    return base._replace(act=act)
