"""Equivariant graph polynomials ``P_H`` and their pattern basis.

Puny, Lim, Kiani, Maron & Lipman, "Equivariant Polynomials for Graph Neural
Networks", ICML 2023 (arXiv:2302.11556). Every polynomial map
``R^{n×n} → R^{n^k}`` (``k = 0, 1, 2``) that commutes with relabelling the nodes
is a linear combination of the polynomials

    P_H(A)[i_1 … i_k] = Σ_{φ: V(H) → [n], φ(marked_r) = i_r}  Π_{(u, v) ∈ E(H)} A[φ(u), φ(v)]

of (multi)graphs ``H`` with ``k`` marked (output) vertices: the sum runs over all
maps (not only injective ones) of the unmarked vertices to the nodes, the marked
vertices index the output. For a 0/1 adjacency ``P_H`` counts homomorphisms of
``H`` (rooted at the marked vertices); e.g. the triangle gives ``trace(A³)``
(``6 ×`` the number of triangles) and ``K_4`` gives ``24 ×`` the number of
4-cliques (every homomorphism of a complete graph into a simple graph is
injective). Each ``P_H`` is one tensor contraction (one einsum with one operand
per edge of ``H``); its contraction order is chosen once per pattern
(``opt_einsum``, dynamic programming) and cached.

:func:`polynomial_basis` enumerates the patterns from networkx's offline graph
atlas (all graphs on at most 7 vertices); :func:`polynomial_pattern` builds any
other (multi)graph pattern; :func:`evaluate_polynomial` evaluates one on a
(batched, padded) adjacency. Each pattern also says whether PPGN (Maron et al.,
"Provably Powerful Graph Networks", NeurIPS 2019; 2-FWL) can compute it, by the
paper's contraction argument (see :func:`polynomial_pattern`). The enumeration is
host-side NumPy/networkx work done once per setting; the evaluation is pure and
jit-able, with the pattern static.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import string
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import opt_einsum
from jaxtyping import Array, Bool, Float

Kind = Literal["invariant", "node", "edge"]

MAX_BASIS_EDGES = 6
"""The largest ``max_edges`` of :func:`polynomial_basis`: networkx's atlas holds
the graphs on at most 7 vertices, and a connected graph with ``m`` edges can have
``m + 1`` vertices."""

MAX_PATTERN_EDGES = 12
"""The most edges (einsum operands) a pattern of :func:`polynomial_pattern` may
have; a guard against contractions that would not fit in memory or time."""

_MAX_VERTICES = 24  # einsum letters (two are kept for nothing; plenty)
_KINDS: tuple[Kind, ...] = ("invariant", "node", "edge")


@dataclasses.dataclass(frozen=True)
class PolynomialPattern:
    """A pattern graph ``H`` with 0, 1 or 2 marked vertices: one basis polynomial.

    Build one with :func:`polynomial_pattern` or take them from
    :func:`polynomial_basis`; :func:`evaluate_polynomial` checks that a pattern's
    fields agree with its edges. A pattern is a static pytree (no leaves), so it
    may be passed straight through ``jax.jit``.

    Attributes:
      edges: the edges ``(u, v)`` with ``u <= v``, sorted; repeats are parallel
        edges (``A ⊙ A``), ``(u, u)`` a self-loop (the diagonal ``A[i, i]``).
      num_vertices: ``|V(H)|``; the vertices are ``0 … num_vertices-1``.
      marked: the marked vertices, in output-axis order: ``()`` (invariant),
        ``(i,)`` (node-level) or ``(i, j)`` with ``i != j`` (edge-level).
      kind: ``"invariant"``, ``"node"`` or ``"edge"`` (``len(marked)`` = 0, 1, 2).
      ppgn_computable: whether the paper's PPGN contraction argument computes
        ``P_H`` (see :func:`polynomial_pattern`).
      einsum: the contraction, one operand per edge (every one the adjacency)
        and then one per isolated vertex (the node mask), output letters those
        of the marked vertices, e.g. ``"ab,ac,bc->a"``; batch axes are prepended
        to every operand and to the output.
      atlas_index: the index of ``H`` (unmarked) in ``networkx.graph_atlas_g()``
        for patterns from :func:`polynomial_basis`, else ``None`` (not compared
        by the consistency check).

    Example:
      >>> p = polynomial_pattern([(0, 1), (1, 2), (0, 2)], marked=(0,))
      >>> p.kind, p.einsum, p.ppgn_computable
      ('node', 'ab,ac,bc->a', True)
    """

    edges: tuple[tuple[int, int], ...]
    num_vertices: int
    marked: tuple[int, ...]
    kind: Kind
    ppgn_computable: bool
    einsum: str
    atlas_index: int | None = dataclasses.field(default=None, compare=False)

    @property
    def num_edges(self) -> int:
        """The number of edges of ``H`` (the polynomial's degree)."""
        return len(self.edges)


jax.tree_util.register_static(PolynomialPattern)


def _ppgn_reducible(
    num_vertices: int, edges: Sequence[tuple[int, int]], marked: Sequence[int]
) -> bool:
    """The paper's elimination: an unmarked vertex with at most two neighbours is
    contracted away (none: a scalar sum; one: a row sum, a vector on the
    neighbour; two ``u, w``: the matrix product ``X_uv X_vw``, a new ``u–w`` edge,
    Hadamard-multiplied into an existing one). Loops are diagonal vectors and
    parallel edges one Hadamard product, so only neighbour sets matter. No step
    raises a degree, so the greedy order is as good as any; the pattern is
    computable iff only marked vertices remain."""
    nbrs: dict[int, set[int]] = {v: set() for v in range(num_vertices)}
    for u, v in edges:
        if u != v:
            nbrs[u].add(v)
            nbrs[v].add(u)
    keep = set(marked)
    progress = True
    while progress:
        progress = False
        for v in list(nbrs):
            if v in keep or len(nbrs[v]) > 2:
                continue
            around = sorted(nbrs.pop(v))
            for u in around:
                nbrs[u].discard(v)
            if len(around) == 2:
                a, b = around
                nbrs[a].add(b)
                nbrs[b].add(a)
            progress = True
    return set(nbrs) <= keep


def _einsum_spec(num_vertices, edges, marked) -> str:
    letters = string.ascii_lowercase
    touched = {v for e in edges for v in e}
    ops = [letters[u] + letters[v] for u, v in edges]
    ops += [letters[v] for v in range(num_vertices) if v not in touched]
    return ",".join(ops) + "->" + "".join(letters[v] for v in marked)


@functools.cache
def _pattern(
    num_vertices: int, edges: tuple[tuple[int, int], ...], marked: tuple[int, ...]
) -> PolynomialPattern:
    return PolynomialPattern(
        edges=edges,
        num_vertices=num_vertices,
        marked=marked,
        kind=_KINDS[len(marked)],
        ppgn_computable=_ppgn_reducible(num_vertices, edges, marked),
        einsum=_einsum_spec(num_vertices, edges, marked),
    )


def polynomial_pattern(
    edges: Sequence[tuple[int, int]],
    marked: Sequence[int] = (),
    num_vertices: int | None = None,
) -> PolynomialPattern:
    """The pattern of any (multi)graph ``H`` with 0, 1 or 2 marked vertices.

    PPGN computability follows the paper's argument for its edge-based
    prototypical model (matrix products, Hadamard products, row sums and
    diagonals of order-2 tensors): repeatedly eliminate an unmarked vertex with
    at most two distinct neighbours — none: it sums to a scalar; one ``u``: a row
    sum, a vector (a diagonal term) on ``u``; two ``u, w``: its two edges become
    the product ``X_uv X_vw``, a new ``u–w`` edge (merged into an existing
    ``u–w`` edge by a Hadamard product). Marked vertices are never eliminated.
    ``H`` is PPGN-computable iff this ends with the marked vertices alone (with
    only marked vertices left, what remains is an order ≤ 2 tensor built from
    diagonals, Hadamard products and broadcasting). Eliminations never raise a
    degree, so the result does not depend on their order; for an unmarked ``H``
    it says whether ``H`` has treewidth at most 2 (``K_4`` is the smallest graph
    it rejects).

    Args:
      edges: pairs ``(u, v)`` of vertices in ``0 … num_vertices-1`` (repeats:
        parallel edges; ``(u, u)``: a loop), at most :data:`MAX_PATTERN_EDGES`.
      marked: the marked vertices in output-axis order: ``()``, ``(i,)`` or
        ``(i, j)`` with ``i != j``.
      num_vertices: the number of vertices (default: one more than the largest
        vertex named); vertices on no edge are isolated (an unmarked one
        contributes the number of real nodes).

    Returns:
      The :class:`PolynomialPattern`.

    Raises:
      ValueError: bad vertices, too many edges or marked vertices, repeated
        marked vertices, or no vertex at all.

    Example:
      >>> k4 = polynomial_pattern(list(itertools.combinations(range(4), 2)))
      >>> k4.kind, k4.num_edges, k4.ppgn_computable
      ('invariant', 6, False)
    """
    try:
        es = [tuple(int(v) for v in e) for e in edges]
        mk = tuple(int(v) for v in marked)
    except TypeError as err:
        raise ValueError(
            f"polynomial_pattern: edges must be pairs of ints and marked a sequence "
            f"of ints, got edges={edges!r}, marked={marked!r}"
        ) from err
    if any(len(e) != 2 for e in es):
        raise ValueError(
            f"polynomial_pattern: every edge must be a pair, got {edges!r}"
        )
    if len(es) > MAX_PATTERN_EDGES:
        raise ValueError(
            f"polynomial_pattern: at most {MAX_PATTERN_EDGES} edges, got {len(es)}"
        )
    if len(mk) > 2:
        raise ValueError(
            f"polynomial_pattern: at most 2 marked vertices, got marked={mk}"
        )
    if len(set(mk)) != len(mk):
        raise ValueError(
            f"polynomial_pattern: marked vertices must differ, got marked={mk} "
            "(a coinciding pair is the node-level pattern with the vertices merged)"
        )
    named = [v for e in es for v in e] + list(mk)
    nv = (max(named) + 1 if named else 0) if num_vertices is None else num_vertices
    nv = int(nv)
    if not 1 <= nv <= _MAX_VERTICES:
        raise ValueError(
            f"polynomial_pattern: num_vertices must be in 1..{_MAX_VERTICES}, got {nv}"
        )
    if any(not 0 <= v < nv for v in named):
        raise ValueError(
            f"polynomial_pattern: vertices must lie in 0..{nv - 1}, got edges={es}, "
            f"marked={mk}"
        )
    canon = tuple(sorted((min(e), max(e)) for e in es))
    return _pattern(nv, canon, mk)


@functools.cache
def _permutations(num_vertices: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(num_vertices))), np.int64)


def _orbit_representatives(adj: np.ndarray, k: int) -> list[tuple[int, ...]]:
    """One ordered ``k``-tuple of distinct vertices per orbit of the automorphism
    group of the graph with 0/1 adjacency ``adj`` (brute force over all
    ``|V|!`` relabellings, ``|V| <= 7``): the lexicographically first of each
    orbit, in lexicographic order."""
    V = adj.shape[0]
    perms = _permutations(V)
    auts = perms[(adj[perms[:, :, None], perms[:, None, :]] == adj).all((1, 2))]
    tuples = np.array(list(itertools.permutations(range(V), k)), np.int64)
    tuples = tuples.reshape(len(tuples), k)
    code = np.zeros((len(auts), len(tuples)), np.int64)
    for r in range(k):
        code = code * V + auts[:, tuples[:, r]]
    first = code.min(0)  # codes are lexicographic: the orbit's first tuple
    own = np.zeros(len(tuples), np.int64)
    for r in range(k):
        own = own * V + tuples[:, r]
    return [tuple(int(v) for v in t) for t in tuples[own == first]]


def _relabel(
    edges: Sequence[tuple[int, int]],
    num_vertices: int,
    marked: tuple[int, ...],
    index: int,
) -> PolynomialPattern:
    """Marked vertices become ``0`` (and ``1``), the rest follow in order."""
    order = list(marked) + [v for v in range(num_vertices) if v not in marked]
    new = {v: i for i, v in enumerate(order)}
    es = tuple(sorted(tuple(sorted((new[u], new[v]))) for u, v in edges))
    p = _pattern(num_vertices, es, tuple(range(len(marked))))
    return dataclasses.replace(p, atlas_index=index)


@functools.cache
def _atlas() -> dict[int, list[tuple[int, int, list[tuple[int, int]]]]]:
    """The connected atlas graphs with 1 … 6 edges by number of edges:
    ``(atlas index, |V|, edges)``."""
    import networkx as nx

    out: dict[int, list[tuple[int, int, list[tuple[int, int]]]]] = {
        m: [] for m in range(1, MAX_BASIS_EDGES + 1)
    }
    for index, graph in enumerate(nx.graph_atlas_g()):
        m = graph.number_of_edges()
        if 1 <= m <= MAX_BASIS_EDGES and nx.is_connected(graph):
            nodes = sorted(graph.nodes)
            pos = {v: i for i, v in enumerate(nodes)}
            edges = [(pos[u], pos[v]) for u, v in graph.edges]
            out[m].append((index, len(nodes), edges))
    return out


@functools.cache
def _atlas_patterns(num_edges: int) -> tuple[PolynomialPattern, ...]:
    out: dict[Kind, list[PolynomialPattern]] = {k: [] for k in _KINDS}
    for index, nv, edges in _atlas()[num_edges]:
        adj = np.zeros((nv, nv), bool)
        for u, v in edges:
            adj[u, v] = adj[v, u] = True
        for k, kind in enumerate(_KINDS):
            for marked in _orbit_representatives(adj, k):
                out[kind].append(_relabel(edges, nv, marked, index))
    return tuple(p for kind in _KINDS for p in out[kind])


def polynomial_basis(
    max_edges: int = 6, *, min_edges: int | None = None
) -> tuple[PolynomialPattern, ...]:
    """The connected pattern graphs with ``min_edges … max_edges`` edges (by
    default exactly ``max_edges``), up to isomorphism, for each output order.

    Convention (the one that gives the paper-style counts below): a pattern is a
    *connected simple* graph ``H`` with exactly ``m`` edges (so no isolated
    vertex, ``2 <= |V(H)| <= m + 1``) and

    - ``"invariant"``: no marked vertex — one pattern per graph;
    - ``"node"``: one marked vertex — one per ``Aut(H)``-orbit of vertices;
    - ``"edge"``: an *ordered* pair ``(i, j)`` of *distinct* marked vertices (not
      necessarily adjacent) — one per ``Aut(H)``-orbit of ordered pairs, so
      ``(i, j)`` and ``(j, i)`` are two patterns unless an automorphism swaps
      them (``P[i, j]`` and its transpose); ``i = j`` is the node-level pattern
      on the diagonal and is not repeated here.

    Isomorphisms preserve the marking (and its order). Counts (invariant / node /
    edge; not PPGN-computable among them): ``m = 5``: 12 / 37 / 125 (0 / 0 / 1:
    ``K_4`` minus an edge, marked at the two degree-2 vertices); ``m = 6``: 30 /
    114 / 460 (1 / 1 / 9, ``K_4`` among them). Disconnected patterns are
    products of connected ones and multigraphs (parallel edges, loops) are
    Hadamard powers and diagonals, which :func:`polynomial_pattern` builds on
    request; together they span all equivariant polynomials of the degree.

    Patterns come ordered by number of edges, then kind (invariant, node, edge),
    then atlas index, then marking; marked vertices are relabelled ``0`` (``1``).

    Args:
      max_edges: the largest number of edges, ``1 … 6`` (:data:`MAX_BASIS_EDGES`).
      min_edges: the smallest number of edges (``1 … max_edges``); default
        ``max_edges`` (exactly ``max_edges`` edges). ``min_edges=1`` gives all
        patterns with at most ``max_edges`` edges.

    Returns:
      A tuple of :class:`PolynomialPattern`.

    Example:
      >>> basis = polynomial_basis(max_edges=3)
      >>> [sum(p.kind == k for p in basis) for k in ("invariant", "node", "edge")]
      [3, 5, 10]
      >>> len(polynomial_basis(3, min_edges=1))
      27
    """
    hi = _edge_count(max_edges, "max_edges", 1)
    lo = hi if min_edges is None else _edge_count(min_edges, "min_edges", 1)
    if lo > hi:
        raise ValueError(
            f"polynomial_basis: min_edges={lo} is larger than max_edges={hi}"
        )
    return tuple(p for m in range(lo, hi + 1) for p in _atlas_patterns(m))


def _edge_count(v, name, lo) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"polynomial_basis: {name} must be an int, got {v!r}")
    if not lo <= int(v) <= MAX_BASIS_EDGES:
        raise ValueError(
            f"polynomial_basis: {name} must be in {lo}..{MAX_BASIS_EDGES} (the "
            f"networkx atlas holds graphs on at most 7 vertices), got {v}"
        )
    return int(v)


@functools.cache
def _contraction_path(spec: str) -> list[tuple[int, ...]]:
    """The contraction order of ``spec`` for equal axis sizes, chosen once by
    opt_einsum's dynamic programming (fewest flops; the choice is the same for
    any large ``n``)."""
    ins = spec.split("->")[0].split(",")
    shapes = [(32,) * len(s) for s in ins]
    path, _ = opt_einsum.contract_path(
        spec, *shapes, shapes=True, optimize="dp" if len(ins) > 2 else "optimal"
    )
    return [tuple(int(i) for i in step) for step in path]


def _check_pattern(pattern, where: str) -> PolynomialPattern:
    if not isinstance(pattern, PolynomialPattern):
        raise TypeError(
            f"{where}: pattern must be a PolynomialPattern (from polynomial_basis "
            f"or polynomial_pattern), got {type(pattern).__name__}"
        )
    if len(pattern.edges) > MAX_PATTERN_EDGES:
        raise ValueError(
            f"{where}: patterns have at most {MAX_PATTERN_EDGES} edges, got "
            f"{len(pattern.edges)}"
        )
    try:
        ref = polynomial_pattern(pattern.edges, pattern.marked, pattern.num_vertices)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: invalid pattern {pattern}: {err}") from err
    if ref != pattern:
        raise ValueError(
            f"{where}: pattern {pattern} does not agree with its edges and marked "
            f"vertices (expected {ref}); build patterns with polynomial_pattern"
        )
    return pattern


# ---------------------------------------------------------------------------
# Evaluation plan: every pattern's einsum is split into pairwise contractions
# along its cached path; an intermediate is the partial pattern it sums (its
# factors, with its open vertices in axis order), and partial patterns equal up
# to renaming their summed vertices are computed once for all patterns of a call.
# Factors: (u, v) is A[u, v] (u == v: the diagonal), (u, -1) the node mask on u.

Factor = tuple[int, int]
Key = tuple[int, tuple[Factor, ...]]


def _canonical(factors: Sequence[Factor], open_: str, letters: dict[str, int]) -> Key:
    """The factors relabelled: open vertex p -> p, summed vertices -> the
    labelling (among those that respect an isomorphism-invariant ordering of
    them) with the smallest sorted factor list."""
    opened = [letters[c] for c in open_]
    pos = {v: i for i, v in enumerate(opened)}
    inner = sorted({v for f in factors for v in f if v >= 0 and v not in pos})

    def signature(v):
        near = sorted(
            (pos.get(w, len(pos)), f.index(v)) for f in factors if v in f for w in f
        )
        return (sum(v in f for f in factors), tuple(near))

    classes: dict[tuple, list[int]] = {}
    for v in inner:
        classes.setdefault(signature(v), []).append(v)
    blocks = [classes[c] for c in sorted(classes)]
    best: tuple[Factor, ...] | None = None
    for choice in itertools.product(*(itertools.permutations(b) for b in blocks)):
        lab = dict(pos)
        lab.update({v: len(pos) + i for i, v in enumerate(itertools.chain(*choice))})
        lab[-1] = -1
        key = tuple(sorted((lab[u], lab[v]) for u, v in factors))
        if best is None or key < best:
            best = key
    assert best is not None
    return len(opened), best


class _Plan(NamedTuple):
    steps: tuple  # (kind, args, in_labels, out_labels); kind: A, diag, mask, sum, dot
    outputs: tuple[int, ...]  # the step holding each pattern's result
    output_mask: tuple[bool, ...]  # whether the result needs the output mask


@functools.cache
def _plan(patterns: tuple[PolynomialPattern, ...]) -> _Plan:
    steps: list = []
    memo: dict = {}

    def emit(key, step) -> int:
        if key not in memo:
            memo[key] = len(steps)
            steps.append(step)
        return memo[key]

    outputs, output_mask = [], []
    for p in patterns:
        ins, out = p.einsum.split("->")
        terms = ins.split(",")
        letters = {c: i for i, c in enumerate(string.ascii_lowercase)}
        ops = []  # (labels, factors, step)
        for t in terms:
            v = letters[t[0]]
            if len(t) == 1:
                fs, kind, lab = [(v, -1)], "mask", t
            elif t[0] == t[1]:
                fs, kind, lab = [(v, v)], "diag", t[0]
            else:
                fs, kind, lab = [(v, letters[t[1]])], "A", t
            ops.append(
                (lab, fs, emit(_canonical(fs, lab, letters), (kind, (), "", "")))
            )
        path = _contraction_path(p.einsum)
        for n_step, pick in enumerate(path):
            picked = [ops[i] for i in pick]
            for i in sorted(pick, reverse=True):
                del ops[i]
            fs = [f for o in picked for f in o[1]]
            if n_step == len(path) - 1:
                lab = out
            else:
                need = set("".join(o[0] for o in ops)) | set(out)
                seen = "".join(o[0] for o in picked)
                lab = "".join(c for c in dict.fromkeys(seen) if c in need)
            key = _canonical(fs, lab, letters)
            kind = "dot" if len(picked) == 2 else "sum"
            args = tuple(o[2] for o in picked)
            in_labels = tuple(o[0] for o in picked)
            ops.append((lab, fs, emit(key, (kind, args, in_labels, lab))))
        assert len(ops) == 1
        outputs.append(ops[0][2])
        touched = {v for e in p.edges for v in e}
        output_mask.append(any(v not in touched for v in p.marked))
    return _Plan(tuple(steps), tuple(outputs), tuple(output_mask))


def _sum_to(x, labels: str, keep: str):
    """Sum the axes (after the batch axis) whose labels are not in ``keep``."""
    gone = tuple(1 + i for i, c in enumerate(labels) if c not in keep)
    if gone:
        x = jnp.sum(x, axis=gone)
        labels = "".join(c for c in labels if c in keep)
    return x, labels


def _transpose_to(x, labels: str, want: str):
    if labels == want:
        return x
    return jnp.transpose(x, (0,) + tuple(1 + labels.index(c) for c in want))


def _dot(x1, t1: str, x2, t2: str, want: str):
    x1, t1 = _sum_to(x1, t1, t2 + want)
    x2, t2 = _sum_to(x2, t2, t1 + want)
    batch = [c for c in t1 if c in t2 and c in want]
    contract = [c for c in t1 if c in t2 and c not in want]
    dims = (
        (
            tuple(1 + t1.index(c) for c in contract),
            tuple(1 + t2.index(c) for c in contract),
        ),
        (
            (0,) + tuple(1 + t1.index(c) for c in batch),
            (0,) + tuple(1 + t2.index(c) for c in batch),
        ),
    )
    y = jax.lax.dot_general(x1, x2, dims)
    shared = set(batch) | set(contract)
    labels = "".join(batch) + "".join(c for c in t1 if c not in shared)
    labels += "".join(c for c in t2 if c not in shared)
    return _transpose_to(y, labels, want)


def _run(plan: _Plan, A, m):
    """``A (B, n, n)`` (masked), ``m (B, n)``: every step of the plan."""
    vals: list = []
    for kind, args, in_labels, lab in plan.steps:
        if kind == "A":
            vals.append(A)
        elif kind == "diag":
            vals.append(jnp.diagonal(A, axis1=1, axis2=2))
        elif kind == "mask":
            vals.append(m)
        elif kind == "sum":
            x, t = _sum_to(vals[args[0]], in_labels[0], lab)
            vals.append(_transpose_to(x, t, lab))
        else:
            (i, j), (t1, t2) = args, in_labels
            vals.append(_dot(vals[i], t1, vals[j], t2, lab))
    return vals


def _check_inputs(adjacency, mask, where: str, *, name="adjacency", channels=False):
    """``adjacency (*batch, n, n)`` (``channels``: ``(*batch, n, n, C)``, named
    ``name``) floating, square in its two node axes, and ``mask (*batch, n)``
    boolean or ``None``: the one validator of the dense graph inputs (polynomials,
    PPGN)."""
    A = jnp.asarray(adjacency)
    if not jnp.issubdtype(A.dtype, jnp.floating):
        raise TypeError(f"{where}: {name} must be floating, got {A.dtype}")
    k = 1 if channels else 0  # trailing channel axes
    if A.ndim < 2 + k or A.shape[-1 - k] != A.shape[-2 - k]:
        want = "(..., n, n, C) (square in its two node axes)" if k else "(..., n, n)"
        raise ValueError(f"{where}: {name} must have shape {want}, got {A.shape}")
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_:
            raise TypeError(f"{where}: mask must be boolean, got {mask.dtype}")
        if mask.shape != A.shape[: -1 - k]:
            raise ValueError(
                f"{where}: mask must have shape {A.shape[: -1 - k]} for {name} of "
                f"shape {A.shape}, got {mask.shape}"
            )
    return A, mask


@functools.partial(jax.jit, static_argnums=0)
def _evaluate(patterns: tuple[PolynomialPattern, ...], A, mask):
    dt = A.dtype
    batch, n = A.shape[:-2], A.shape[-1]
    A = A.reshape((-1, n, n))
    if mask is None:
        m = jnp.ones(A.shape[:-1], dt)
    else:
        m = mask.reshape((-1, n)).astype(dt)
        A = A * m[:, :, None] * m[:, None, :]
    plan = _plan(patterns)
    vals = _run(plan, A, m)
    out = []
    for p, i, needs_mask in zip(patterns, plan.outputs, plan.output_mask, strict=True):
        y = vals[i]
        if needs_mask and mask is not None:
            for ax in range(len(p.marked)):
                shape = [m.shape[0]] + [1] * len(p.marked)
                shape[1 + ax] = n
                y = y * m.reshape(shape)
        out.append(y.reshape(batch + (n,) * len(p.marked)).astype(dt))
    return tuple(out)


def evaluate_polynomials(
    patterns: Sequence[PolynomialPattern],
    adjacency: Float[Array, "*batch n n"],
    mask: Bool[Array, "*batch n"] | None = None,
) -> tuple[Array, ...]:
    """:func:`evaluate_polynomial` for several patterns in one program: the
    adjacency is masked once, and intermediate contractions that several
    patterns share (the same partial pattern up to renaming its summed vertices,
    e.g. ``A²`` or the degrees) are computed once, so the compiled program is a
    few times smaller than one contraction per pattern.

    Args:
      patterns: a sequence of :class:`PolynomialPattern` (static).
      adjacency: ``(*batch, n, n)`` floating.
      mask: ``(*batch, n)`` boolean node mask or ``None``.

    Returns:
      One array per pattern, as :func:`evaluate_polynomial` returns it.

    Example:
      >>> basis = polynomial_basis(max_edges=2)  # the path a–b–c, rooted 3 ways
      >>> A = jnp.ones((3, 3)) - jnp.eye(3)
      >>> [y.shape for y in evaluate_polynomials(basis, A)]
      [(), (3,), (3,), (3, 3), (3, 3), (3, 3)]
    """
    where = "evaluate_polynomials"
    if isinstance(patterns, PolynomialPattern) or not isinstance(patterns, Sequence):
        raise TypeError(
            f"{where}: patterns must be a sequence of PolynomialPattern, got "
            f"{type(patterns).__name__}"
        )
    pats = tuple(_check_pattern(p, where) for p in patterns)
    A, mask = _check_inputs(adjacency, mask, where)
    return _evaluate(pats, A, mask)


def evaluate_polynomial(
    pattern: PolynomialPattern,
    adjacency: Float[Array, "*batch n n"],
    mask: Bool[Array, "*batch n"] | None = None,
) -> Float[Array, "*batch ..."]:
    """Evaluate the equivariant polynomial ``P_H`` of a pattern on adjacencies.

    Puny et al., "Equivariant Polynomials for Graph Neural Networks", ICML 2023:
    ``P_H(A)[i_1 … i_k] = Σ_φ Π_{(u, v) ∈ E(H)} A[φ(u), φ(v)]`` over all maps
    ``φ`` of the unmarked vertices to the real nodes, the ``k`` marked vertices
    sent to the output indices. Permuting the nodes of ``A`` permutes the output
    the same way (``k`` node axes). The contraction follows ``pattern.einsum``
    pairwise, in the order opt_einsum chose once for the pattern; the function is
    jit-compiled with the pattern static (use :func:`evaluate_polynomials` for
    many patterns).

    Args:
      pattern: a :class:`PolynomialPattern` (static).
      adjacency: ``(*batch, n, n)`` floating (weighted) adjacency, symmetric
        expected (a non-symmetric ``A`` is used as given: edge ``(u, v)`` reads
        ``A[φ(u), φ(v)]``).
      mask: ``(*batch, n)`` boolean node mask (``True`` = real node) or ``None``
        (all real). Padded nodes take part in no map, and their outputs are zero.

    Returns:
      ``(*batch,)`` (invariant), ``(*batch, n)`` (node) or ``(*batch, n, n)``
      (edge, axes in ``pattern.marked`` order), dtype of ``adjacency``.

    Raises:
      TypeError: ``pattern`` is not a pattern, ``adjacency`` is not floating or
        ``mask`` not boolean.
      ValueError: ``adjacency`` not ``(..., n, n)``, ``mask`` of another shape
        than ``adjacency.shape[:-1]``, or an inconsistent pattern.

    Example:
      >>> tri = polynomial_pattern([(0, 1), (1, 2), (0, 2)])
      >>> A = jnp.ones((4, 4)) - jnp.eye(4)  # K_4: 4 triangles
      >>> evaluate_polynomial(tri, A)
      Array(24., dtype=float32)
      >>> evaluate_polynomial(tri, A, jnp.array([True, True, True, False]))
      Array(6., dtype=float32)
    """
    where = "evaluate_polynomial"
    pattern = _check_pattern(pattern, where)
    A, mask = _check_inputs(adjacency, mask, where)
    return _evaluate((pattern,), A, mask)[0]
