"""Graph data sets and graph batching (host side, pure NumPy, offline).

Readers for the TU benchmark collection (Morris et al., "TUDataset: A collection
of benchmark datasets for learning with graphs", ICML GRL+ workshop 2020), the
EXP/CEXP pairs (Abboud et al., "The Surprising Power of Graph Neural Networks
with Random Node Initialization", IJCAI 2021) and graph6 files (strongly regular
families, B. McKay's tables); generators for CSL (Murphy et al., "Relational
Pooling for Graph Representations", ICML 2019), the 4×4 rook's graph, the
Shrikhande graph and Paley graphs; stratified cross-validation folds; batching
into size-bucketed padded ``jraph.GraphsTuple`` s and dense masked tensors.

A graph is a :class:`Graph`: an undirected graph stored as a directed edge list
with both directions, one-hot node features and an integer label. Every reader
raises ``FileNotFoundError`` naming the path for a missing file and
``ValueError`` naming ``path:line`` for a malformed one; nothing returns a
silently empty set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jraph
import numpy as np

TU_SETS = (
    "MUTAG",
    "PTC_MR",
    "PROTEINS_full",
    "NCI1",
    "NCI109",
    "IMDB-BINARY",
    "IMDB-MULTI",
)
"""The TU sets expected under ``<data_dir>/tu/<NAME>/``."""


class Graph(NamedTuple):
    """One undirected graph (host-side NumPy arrays).

    Attributes:
      senders: ``(E,)`` int32 — every undirected edge appears in both directions,
        no self-loops, no duplicates.
      receivers: ``(E,)`` int32.
      nodes: ``(n, F)`` float32 node features (one-hot labels or degrees).
      label: the graph's class (int), ``-1`` when it has none.
    """

    senders: np.ndarray
    receivers: np.ndarray
    nodes: np.ndarray
    label: int

    @property
    def num_nodes(self) -> int:
        """The number of nodes ``n``."""
        return int(self.nodes.shape[0])

    @property
    def num_edges(self) -> int:
        """The number of directed edges ``E`` (twice the undirected count)."""
        return int(self.senders.shape[0])


def _clean_edges(s: np.ndarray, r: np.ndarray, n: int):
    """Symmetrise, drop self-loops and duplicates; sorted by (sender, receiver)."""
    s, r = np.asarray(s, np.int64), np.asarray(r, np.int64)
    keep = s != r
    s, r = s[keep], r[keep]
    key = np.unique(np.concatenate([s * n + r, r * n + s]))
    return (key // n).astype(np.int32), (key % n).astype(np.int32)


def from_adjacency(
    A: np.ndarray, node_labels: np.ndarray | None = None, *, num_labels=None, label=-1
) -> Graph:
    """A :class:`Graph` from a symmetric ``(n, n)`` adjacency matrix.

    Args:
      A: ``(n, n)`` adjacency (non-zero = edge; symmetrised; the diagonal is
        ignored).
      node_labels: ``(n,)`` integer labels, one-hot encoded over ``num_labels``
        classes (default ``max + 1``); ``None`` gives one constant feature.
      num_labels: number of node label classes.
      label: the graph label.

    Example:
      >>> g = from_adjacency(np.ones((3, 3)) - np.eye(3))
      >>> g.num_nodes, g.num_edges, g.nodes.shape
      (3, 6, (3, 1))
    """
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"from_adjacency: A must be square (n, n), got {A.shape}")
    n = A.shape[0]
    s, r = np.nonzero(A)
    s, r = _clean_edges(s, r, n)
    if node_labels is None:
        nodes = np.ones((n, 1), np.float32)
    else:
        lab = np.asarray(node_labels, np.int64).reshape(-1)
        if lab.shape[0] != n:
            raise ValueError(
                f"from_adjacency: node_labels has {lab.shape[0]} entries for {n} nodes"
            )
        k = int(num_labels) if num_labels is not None else int(lab.max(initial=-1)) + 1
        nodes = np.zeros((n, max(k, 1)), np.float32)
        nodes[np.arange(n), lab] = 1
    return Graph(s, r, nodes, int(label))


def to_adjacency(graph: Graph) -> np.ndarray:
    """The ``(n, n)`` 0/1 float32 adjacency matrix of a :class:`Graph`.

    Example:
      >>> to_adjacency(cycle_graph(4)).sum(1).tolist()
      [2.0, 2.0, 2.0, 2.0]
    """
    A = np.zeros((graph.num_nodes, graph.num_nodes), np.float32)
    A[graph.senders, graph.receivers] = 1
    return A


# ----------------------------------------------------------------- file parsing


def _read_ints(path: Path, ncols: int) -> np.ndarray:
    """An ``(rows, ncols)`` int64 table from a text file (comma/space separated);
    a malformed line raises ``ValueError`` naming ``path:line``."""
    if not path.is_file():
        raise FileNotFoundError(f"missing data file: {path}")
    text = path.read_text()
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: the file is empty")
    try:
        flat = np.array(text.replace(",", " ").split(), dtype=np.int64)
        if flat.size == ncols * len(lines):
            return flat.reshape(len(lines), ncols)
    except ValueError:
        pass
    for i, line in enumerate(lines, start=1):  # slow path: find the bad line
        parts = line.replace(",", " ").split()
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"{path}:{i}: expected {ncols} integer(s), got {line!r}"
            ) from None
        if len(vals) != ncols:
            raise ValueError(f"{path}:{i}: expected {ncols} integer(s), got {line!r}")
    raise ValueError(f"{path}: could not parse as {ncols} integer column(s)")


def _tu_folder(name: str, data_dir: str | Path) -> Path:
    if name not in TU_SETS:
        raise ValueError(f"unknown TU data set {name!r}; known: {list(TU_SETS)}")
    base = Path(data_dir)
    for cand in (base / "tu" / name, base / name):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(
        f"TU data set {name!r} not found: neither {base / 'tu' / name} nor "
        f"{base / name} is a folder (pass data_dir=<the shared data folder>)"
    )


def tu(name: str, data_dir: str | Path = "../shared/data") -> list[Graph]:
    """Read a TU graph classification set.

    Node features are the one-hot node labels (over the labels that occur in the
    set); sets without node labels (IMDB-BINARY, IMDB-MULTI) get one-hot degrees
    (capped at the set's largest degree), as in Xu et al. (GIN, ICLR 2019) and
    Mitton & Murray-Smith (SPEN). Graph labels are mapped to ``0 … K-1`` in sorted
    order (MUTAG's ``-1/1`` become ``0/1``). Edges are symmetrised.

    Args:
      name: one of :data:`TU_SETS`.
      data_dir: the shared data folder (holding ``tu/<name>/``), or the ``tu``
        folder itself.

    Returns:
      A list of :class:`Graph`, in file order.

    Raises:
      ValueError: unknown ``name``; a malformed line (``path:line``); inconsistent
        files (edge between graphs, counts that disagree).
      FileNotFoundError: the folder or a required file is missing.
    """
    folder = _tu_folder(name, data_dir)
    pre = folder / name
    edges = _read_ints(Path(f"{pre}_A.txt"), 2) - 1
    gid = _read_ints(Path(f"{pre}_graph_indicator.txt"), 1)[:, 0] - 1
    glab = _read_ints(Path(f"{pre}_graph_labels.txt"), 1)[:, 0]
    nl_path = Path(f"{pre}_node_labels.txt")
    nlab = _read_ints(nl_path, 1)[:, 0] if nl_path.exists() else None
    N, G = gid.shape[0], glab.shape[0]
    if gid.min() < 0 or gid.max() != G - 1 or np.any(np.diff(gid) < 0):
        raise ValueError(
            f"{pre}_graph_indicator.txt: graph ids must be sorted 1..{G} "
            f"(the number of graph labels); got {gid.min() + 1}..{gid.max() + 1}"
        )
    if nlab is not None and nlab.shape[0] != N:
        raise ValueError(
            f"{nl_path}: {nlab.shape[0]} node labels for {N} nodes in the indicator"
        )
    if edges.min() < 0 or edges.max() >= N:
        bad = int(np.nonzero((edges < 0).any(1) | (edges >= N).any(1))[0][0])
        raise ValueError(f"{pre}_A.txt:{bad + 1}: node id out of range 1..{N}")
    cross = gid[edges[:, 0]] != gid[edges[:, 1]]
    if cross.any():
        bad = int(np.nonzero(cross)[0][0])
        raise ValueError(f"{pre}_A.txt:{bad + 1}: edge joins two different graphs")
    classes = np.unique(glab)
    labels = np.searchsorted(classes, glab)
    starts = np.searchsorted(gid, np.arange(G + 1))
    e_graph = gid[edges[:, 0]]
    order = np.argsort(e_graph, kind="stable")
    edges, e_graph = edges[order], e_graph[order]
    e_starts = np.searchsorted(e_graph, np.arange(G + 1))
    per_graph = []
    for g in range(G):
        a, b = starts[g], starts[g + 1]
        e = edges[e_starts[g] : e_starts[g + 1]] - a
        per_graph.append(_clean_edges(e[:, 0], e[:, 1], b - a))
    if nlab is not None:
        vocab = np.unique(nlab)
        codes = np.searchsorted(vocab, nlab)
        feats = np.eye(len(vocab), dtype=np.float32)[codes]
    else:
        deg = np.zeros(N, np.int64)
        for g, (s, _) in enumerate(per_graph):
            np.add.at(deg, s + starts[g], 1)
        feats = np.eye(int(deg.max()) + 1, dtype=np.float32)[deg]
    return [
        Graph(s, r, feats[starts[g] : starts[g + 1]], int(labels[g]))
        for g, (s, r) in enumerate(per_graph)
    ]


def graph_labels(graphs: Sequence[Graph]) -> np.ndarray:
    """``(G,)`` int64 labels of a list of graphs."""
    return np.asarray([g.label for g in graphs], np.int64)


def cv_folds(
    labels: Sequence[int] | np.ndarray, n_folds: int = 10, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified ``n_folds``-fold cross-validation splits (seeded).

    Each class's indices are shuffled with ``numpy.random.default_rng(seed)`` and
    dealt round-robin to the folds (continuing across classes), so every fold has
    the class proportions of the whole set to within one graph per class, and
    fold sizes differ by at most one. Test folds partition ``range(len(labels))``.

    Args:
      labels: ``(G,)`` integer class labels.
      n_folds: number of folds (``2 <= n_folds <= G``).
      seed: the shuffle seed.

    Returns:
      ``[(train_idx, test_idx), ...]``, sorted int64 index arrays.

    Example:
      >>> folds = cv_folds([0, 0, 0, 0, 1, 1, 1, 1], n_folds=4, seed=0)
      >>> [sorted(np.asarray([0, 0, 0, 0, 1, 1, 1, 1])[t].tolist()) for _, t in folds]
      [[0, 1], [0, 1], [0, 1], [0, 1]]
    """
    y = np.asarray(labels).reshape(-1)
    G = y.shape[0]
    if not 2 <= int(n_folds) <= G:
        raise ValueError(f"cv_folds: need 2 <= n_folds <= {G} (labels), got {n_folds}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(G, np.int64)
    offset = 0
    for c in np.unique(y):
        idx = rng.permutation(np.nonzero(y == c)[0])
        fold_of[idx] = (offset + np.arange(idx.shape[0])) % n_folds
        offset += idx.shape[0]
    out = []
    for f in range(int(n_folds)):
        test = np.nonzero(fold_of == f)[0]
        train = np.nonzero(fold_of != f)[0]
        out.append((train, test))
    return out


# ------------------------------------------------------------ EXP / CEXP / graph6


def read_graphsat(path: str | Path, max_graphs: int | None = None) -> list[Graph]:
    """Read a GRAPHSAT text file (the EXP/CEXP format).

    Format: the first line is the number of graphs; per graph a line
    ``n label``, then per node ``node_label degree neighbour...`` (0-based).
    Node features are one-hot node labels over two classes (EXP's labels are
    0/1); the graph label is the SAT label.

    Raises:
      FileNotFoundError: ``path`` is missing.
      ValueError: a malformed line (``path:line``) or a truncated file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing data file: {path}")
    lines = path.read_text().splitlines()
    pos = 0

    def ints(expect_min: int) -> list[int]:
        nonlocal pos
        if pos >= len(lines):
            raise ValueError(f"{path}:{pos + 1}: unexpected end of file")
        try:
            vals = [int(t) for t in lines[pos].split()]
        except ValueError:
            raise ValueError(
                f"{path}:{pos + 1}: expected integers, got {lines[pos]!r}"
            ) from None
        if len(vals) < expect_min:
            raise ValueError(
                f"{path}:{pos + 1}: expected at least {expect_min} integers, "
                f"got {lines[pos]!r}"
            )
        pos += 1
        return vals

    (count, *_) = ints(1)
    if max_graphs is not None:
        count = min(count, int(max_graphs))
    graphs = []
    for _ in range(count):
        n, label = ints(2)[:2]
        s, r, lab = [], [], np.zeros(n, np.int64)
        for v in range(n):
            line_no = pos + 1
            t = ints(2)
            lab[v] = t[0]
            if len(t) != 2 + t[1] or any(not 0 <= u < n for u in t[2:]):
                raise ValueError(
                    f"{path}:{line_no}: node line must be 'label degree "
                    f"neighbours...' with {t[1] if len(t) > 1 else '?'} neighbours "
                    f"in 0..{n - 1}, got {lines[line_no - 1]!r}"
                )
            s += [v] * t[1]
            r += t[2:]
        ss, rr = _clean_edges(np.asarray(s), np.asarray(r), n)
        k = max(2, int(lab.max(initial=0)) + 1)
        graphs.append(Graph(ss, rr, np.eye(k, dtype=np.float32)[lab], int(label)))
    return graphs


def exp(
    data_dir: str | Path = "../shared/data",
    variant: str = "EXP",
    max_pairs: int | None = None,
) -> list[tuple[Graph, Graph]]:
    """The EXP or CEXP set (Abboud et al., IJCAI 2021) as pairs of graphs.

    Graphs ``2k`` and ``2k + 1`` of the file are a non-isomorphic pair that 1-WL
    cannot tell apart (their SAT labels differ in EXP).

    Args:
      data_dir: the shared data folder (holding ``exp/``) or the ``exp`` folder.
      variant: ``"EXP"`` or ``"CEXP"``.
      max_pairs: read only the first pairs.
    """
    if variant not in ("EXP", "CEXP"):
        raise ValueError(f"exp: variant must be 'EXP' or 'CEXP', got {variant!r}")
    base = Path(data_dir)
    fname = f"{variant}_GRAPHSAT.txt"
    path = base / "exp" / fname if (base / "exp").is_dir() else base / fname
    graphs = read_graphsat(path, None if max_pairs is None else 2 * int(max_pairs))
    return [(graphs[2 * k], graphs[2 * k + 1]) for k in range(len(graphs) // 2)]


def parse_graph6(line: str | bytes) -> np.ndarray:
    """The ``(n, n)`` int8 adjacency of one graph6 string (``>>graph6<<``
    header allowed; graphs with n < 63 and 63 <= n < 258048).

    Example:
      >>> parse_graph6("Bw").tolist()  # the path/triangle on 3 nodes: K3
      [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    """
    s = line.decode() if isinstance(line, bytes) else line
    s = s.strip()
    if s.startswith(">>graph6<<"):
        s = s[len(">>graph6<<") :]
    data = [ord(c) - 63 for c in s]
    if not data or any(not 0 <= d < 64 for d in data):
        raise ValueError(f"not a graph6 string: {s!r}")
    if data[0] < 63:
        n, data = data[0], data[1:]
    elif len(data) >= 4 and data[1] < 63:
        n = (data[1] << 12) | (data[2] << 6) | data[3]
        data = data[4:]
    else:
        raise ValueError(
            f"graph6 graphs with n >= 258048 are not supported: {s[:20]!r}"
        )
    bits = np.unpackbits(np.asarray(data, np.uint8)[:, None], axis=1)[:, 2:].reshape(-1)
    need = n * (n - 1) // 2
    if bits.shape[0] < need:
        raise ValueError(f"graph6 string too short for n={n}: {s!r}")
    A = np.zeros((n, n), np.int8)
    # graph6 orders the upper triangle column by column: (0,1), (0,2), (1,2), ...
    cols = np.concatenate([np.full(j, j) for j in range(n)]) if n > 1 else []
    rows = np.concatenate([np.arange(j) for j in range(n)]) if n > 1 else []
    A[rows, cols] = bits[:need]
    return np.maximum(A, A.T)


def read_graph6(path: str | Path) -> list[Graph]:
    """Every graph of a graph6 file (one per line), e.g. ``sr/sr16622.g6``.

    Raises:
      FileNotFoundError: ``path`` is missing.
      ValueError: a malformed line (``path:line``) or an empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing data file: {path}")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(from_adjacency(parse_graph6(line)))
        except ValueError as e:
            raise ValueError(f"{path}:{i}: {e}") from None
    if not out:
        raise ValueError(f"{path}: no graphs in the file")
    return out


def strongly_regular(
    family: str, data_dir: str | Path = "../shared/data"
) -> list[Graph]:
    """A strongly regular family from ``<data_dir>/sr/<family>.g6`` (e.g.
    ``"sr16622"``: the rook's 4×4 graph and the Shrikhande graph)."""
    base = Path(data_dir)
    folder = base / "sr" if (base / "sr").is_dir() else base
    return read_graph6(folder / f"{family}.g6")


# ------------------------------------------------------------------- generators


def cycle_graph(n: int) -> Graph:
    """The cycle ``C_n`` (n >= 3), constant node features."""
    if n < 3:
        raise ValueError(f"cycle_graph needs n >= 3, got {n}")
    i = np.arange(n)
    s, r = _clean_edges(i, (i + 1) % n, n)
    return Graph(s, r, np.ones((n, 1), np.float32), -1)


def disjoint_union(*graphs: Graph) -> Graph:
    """The disjoint union of graphs (node features concatenated; label -1).

    Example:
      >>> g = disjoint_union(cycle_graph(3), cycle_graph(3))
      >>> g.num_nodes, g.num_edges
      (6, 12)
    """
    off = np.cumsum([0] + [g.num_nodes for g in graphs])
    s = np.concatenate([g.senders + o for g, o in zip(graphs, off, strict=False)])
    r = np.concatenate([g.receivers + o for g, o in zip(graphs, off, strict=False)])
    nodes = np.concatenate([g.nodes for g in graphs])
    return Graph(s.astype(np.int32), r.astype(np.int32), nodes, -1)


def csl(n: int = 41, skips: Sequence[int] = (2, 3, 4, 5, 6, 9, 11, 12, 13, 16)):
    """Circular skip-link graphs (Murphy et al., ICML 2019): the ``n``-cycle plus
    chords ``i — i + R`` for each skip ``R``; all 4-regular, so 1-WL-equivalent.
    Label = index of ``R`` in ``skips``; constant node features.

    Example:
      >>> gs = csl()
      >>> len(gs), gs[0].num_nodes, {int(np.bincount(g.senders).max()) for g in gs}
      (10, 41, {4})
    """
    out = []
    i = np.arange(n)
    for c, R in enumerate(skips):
        s = np.concatenate([i, i])
        r = np.concatenate([(i + 1) % n, (i + R) % n])
        ss, rr = _clean_edges(s, r, n)
        out.append(Graph(ss, rr, np.ones((n, 1), np.float32), c))
    return out


def rook_graph(m: int = 4) -> Graph:
    """The ``m × m`` rook's graph (line graph of ``K_{m,m}``): cells adjacent when
    they share a row or a column. ``m = 4``: srg(16, 6, 2, 2), cospectral with and
    2-WL-equivalent to the Shrikhande graph.

    Example:
      >>> rook_graph(4).num_edges // 2
      48
    """
    cells = np.arange(m * m)
    a, b = np.meshgrid(cells, cells, indexing="ij")
    A = ((a // m == b // m) | (a % m == b % m)) & (a != b)
    return from_adjacency(A)


def shrikhande_graph() -> Graph:
    """The Shrikhande graph: the Cayley graph of ``Z_4 × Z_4`` with connection set
    ``±(1, 0), ±(0, 1), ±(1, 1)``; srg(16, 6, 2, 2), not isomorphic to the rook's
    graph.

    Example:
      >>> set(np.bincount(shrikhande_graph().senders).tolist())
      {6}
    """
    conn = {(1, 0), (3, 0), (0, 1), (0, 3), (1, 1), (3, 3)}
    A = np.zeros((16, 16), np.int8)
    for u in range(16):
        for v in range(16):
            d = ((u // 4 - v // 4) % 4, (u % 4 - v % 4) % 4)
            A[u, v] = d in conn
    return from_adjacency(A)


def paley_graph(q: int) -> Graph:
    """The Paley graph of prime order ``q ≡ 1 (mod 4)``: ``i ~ j`` iff ``i - j``
    is a non-zero square mod ``q``; srg(q, (q-1)/2, (q-5)/4, (q-1)/4).

    Raises:
      ValueError: ``q`` is not a prime ``≡ 1 (mod 4)`` (prime powers need
        finite-field arithmetic, not implemented here).

    Example:
      >>> paley_graph(13).num_edges // 2
      39
    """
    q = int(q)
    if q < 5 or q % 4 != 1 or any(q % d == 0 for d in range(2, math.isqrt(q) + 1)):
        raise ValueError(f"paley_graph needs a prime q ≡ 1 (mod 4), got {q}")
    squares = {(x * x) % q for x in range(1, q)}
    i = np.arange(q)
    A = np.isin((i[:, None] - i[None, :]) % q, list(squares))
    return from_adjacency(A)


def random_regular_graph(
    n: int, d: int, seed: int = 0, *, max_tries: int = 100
) -> Graph:
    """A random simple ``d``-regular graph on ``n`` nodes (``n·d`` even): stubs
    are paired one at a time, each new pair drawn uniformly among the pairs that
    keep the graph simple, restarting on a dead end (the pairing algorithm of
    Steger & Wormald, 1999; close to uniform for small ``d``). Seeded.

    Example:
      >>> g = random_regular_graph(10, 3, seed=0)
      >>> set(np.bincount(g.senders).tolist()), g.num_edges
      ({3}, 30)
    """
    n, d = int(n), int(d)
    if n * d % 2 or not 0 <= d < n:
        raise ValueError(
            f"random_regular_graph needs n*d even and 0 <= d < n; got {n}, {d}"
        )
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        stubs = list(np.repeat(np.arange(n), d))
        edges: set[tuple[int, int]] = set()
        ok = True
        while stubs:
            for _attempt in range(50):
                i, j = rng.choice(len(stubs), 2, replace=False)
                u, v = int(stubs[i]), int(stubs[j])
                if u != v and (min(u, v), max(u, v)) not in edges:
                    break
            else:
                ok = False
                break
            edges.add((min(u, v), max(u, v)))
            for k in sorted((int(i), int(j)), reverse=True):
                stubs[k] = stubs[-1]
                stubs.pop()
        if ok:
            e = np.asarray(sorted(edges), np.int64).reshape(-1, 2)
            s, r = _clean_edges(e[:, 0], e[:, 1], n)
            return Graph(s, r, np.ones((n, 1), np.float32), -1)
    raise RuntimeError(
        f"random_regular_graph({n}, {d}): no simple graph in {max_tries} tries"
    )


def erdos_renyi_graph(n: int, mean_degree: float, seed: int = 0) -> Graph:
    """An Erdős–Rényi graph ``G(n, p)`` with ``p = mean_degree / (n - 1)``. Seeded.

    Example:
      >>> erdos_renyi_graph(50, 4.0, seed=0).num_nodes
      50
    """
    n = int(n)
    p = float(mean_degree) / max(n - 1, 1)
    if not 0 <= p <= 1:
        raise ValueError(
            f"erdos_renyi_graph: mean_degree {mean_degree} impossible for n={n}"
        )
    rng = np.random.default_rng(seed)
    A = np.triu(rng.random((n, n)) < p, 1)
    s, r = np.nonzero(A)
    s, r = _clean_edges(s, r, n)
    return Graph(s, r, np.ones((n, 1), np.float32), -1)


# ------------------------------------------------------------------- batching


def _check_graphs(graphs, where: str) -> list[Graph]:
    if isinstance(graphs, Graph):
        graphs = [graphs]
    graphs = list(graphs)
    if not graphs:
        raise ValueError(f"{where}: got an empty list of graphs")
    bad = [type(g).__name__ for g in graphs if not isinstance(g, Graph)]
    if bad:
        raise TypeError(f"{where}: expected eqjax.datasets.Graph items, got {bad[0]}")
    widths = {g.nodes.shape[1] for g in graphs}
    if len(widths) != 1:
        raise ValueError(f"{where}: node feature widths differ: {sorted(widths)}")
    return graphs


def bucket_size(size: int, buckets: Sequence[int] | None = None) -> int:
    """The smallest bucket ``>= size``: from ``buckets`` (sorted ints), or the
    next power of two when ``buckets`` is ``None``.

    Example:
      >>> bucket_size(5), bucket_size(5, (4, 8, 16)), bucket_size(0)
      (8, 8, 1)
    """
    size = int(size)
    if buckets is None:
        return 1 if size <= 1 else 1 << (size - 1).bit_length()
    for b in sorted(int(b) for b in buckets):
        if b >= size:
            return b
    raise ValueError(f"size {size} exceeds the largest bucket {max(buckets)}")


def pad_graphs(
    graphs: Sequence[Graph],
    *,
    n_node: int | None = None,
    n_edge: int | None = None,
    n_graph: int | None = None,
    node_buckets: Sequence[int] | None = None,
    edge_buckets: Sequence[int] | None = None,
) -> tuple[jraph.GraphsTuple, np.ndarray, np.ndarray]:
    """Batch graphs into one padded ``jraph.GraphsTuple`` (jraph's convention: the
    extra nodes and edges form padding graphs at the end).

    Without explicit sizes, total nodes + 1 and edges are rounded up to a bucket
    (:func:`bucket_size`: next power of two, or the given buckets), so a data set
    compiles a handful of programs; ``n_graph`` defaults to ``len(graphs) + 1``.

    Returns:
      ``(graph, labels (n_graph,) int32 (-1 on padding), graph_mask (n_graph,)
      bool)``.

    Example:
      >>> g, y, m = pad_graphs([cycle_graph(3), cycle_graph(4)])
      >>> g.nodes.shape, g.n_node.tolist(), m.tolist()
      ((8, 1), [3, 4, 1], [True, True, False])
    """
    graphs = _check_graphs(graphs, "pad_graphs")
    N = sum(g.num_nodes for g in graphs)
    E = sum(g.num_edges for g in graphs)
    n_node = bucket_size(N + 1, node_buckets) if n_node is None else int(n_node)
    n_edge = bucket_size(max(E, 1), edge_buckets) if n_edge is None else int(n_edge)
    n_graph = len(graphs) + 1 if n_graph is None else int(n_graph)
    if n_node < N + 1 or n_edge < E or n_graph < len(graphs) + 1:
        raise ValueError(
            f"pad_graphs: padding sizes (n_node={n_node}, n_edge={n_edge}, "
            f"n_graph={n_graph}) too small for {len(graphs)} graphs with {N} nodes "
            f"and {E} edges (need n_node > nodes, n_graph > graphs)"
        )
    F = graphs[0].nodes.shape[1]
    nodes = np.zeros((n_node, F), np.float32)
    senders = np.full(n_edge, N, np.int32)  # padding edges: first padding node
    receivers = np.full(n_edge, N, np.int32)
    offn = offe = 0
    for g in graphs:
        nodes[offn : offn + g.num_nodes] = g.nodes
        senders[offe : offe + g.num_edges] = g.senders + offn
        receivers[offe : offe + g.num_edges] = g.receivers + offn
        offn += g.num_nodes
        offe += g.num_edges
    nn = np.zeros(n_graph, np.int32)
    ne = np.zeros(n_graph, np.int32)
    nn[: len(graphs)] = [g.num_nodes for g in graphs]
    ne[: len(graphs)] = [g.num_edges for g in graphs]
    nn[len(graphs)] = n_node - N  # jraph: the first padding graph takes the rest
    ne[len(graphs)] = n_edge - E
    labels = np.full(n_graph, -1, np.int32)
    labels[: len(graphs)] = [g.label for g in graphs]
    mask = np.zeros(n_graph, bool)
    mask[: len(graphs)] = True
    fields: dict[str, Any] = {
        "nodes": nodes,
        "edges": None,
        "senders": senders,
        "receivers": receivers,
        "globals": None,
        "n_node": nn,
        "n_edge": ne,
    }
    gt = jraph.GraphsTuple(**fields)  # host NumPy arrays; jnp.asarray them to use
    return gt, labels, mask


def graph_batches(
    graphs: Sequence[Graph],
    batch_size: int,
    *,
    seed: int | None = None,
    node_buckets: Sequence[int] | None = None,
    edge_buckets: Sequence[int] | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[jraph.GraphsTuple, np.ndarray, np.ndarray]]:
    """Padded, size-bucketed batches of ``batch_size`` graphs (:func:`pad_graphs`
    per batch, ``n_graph = batch_size + 1`` always), shuffled when ``seed`` is
    given. Every batch pads to a bucket, so an epoch compiles a handful of
    programs.

    Example:
      >>> bs = list(graph_batches(csl(), 4))
      >>> [b[0].nodes.shape[0] for b in bs], [int(b[2].sum()) for b in bs]
      ([256, 256, 128], [4, 4, 2])
    """
    graphs = _check_graphs(graphs, "graph_batches")
    if batch_size < 1:
        raise ValueError(f"graph_batches: batch_size must be >= 1, got {batch_size}")
    order = np.arange(len(graphs))
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(graphs))
    for i in range(0, len(graphs), batch_size):
        idx = order[i : i + batch_size]
        if drop_last and len(idx) < batch_size:
            return
        yield pad_graphs(
            [graphs[j] for j in idx],
            n_graph=batch_size + 1,
            node_buckets=node_buckets,
            edge_buckets=edge_buckets,
        )


class DenseBatch(NamedTuple):
    """Graphs as dense masked tensors.

    Attributes:
      adjacency: ``(B, n, n, C)`` float32 pair features (``C = 1``: the adjacency).
      nodes: ``(B, n, F)`` float32 node features (zero on padding).
      mask: ``(B, n)`` bool, ``True`` on real nodes.
      labels: ``(B,)`` int32 graph labels.
    """

    adjacency: np.ndarray
    nodes: np.ndarray
    mask: np.ndarray
    labels: np.ndarray

    def ign_input(self) -> np.ndarray:
        """``(B, n, n, 1 + F)``: adjacency with node features on the diagonal, the
        input of a global 2-IGN (Maron et al., ICLR 2019)."""
        B, n, _, _ = self.adjacency.shape
        F = self.nodes.shape[-1]
        diag = np.zeros((B, n, n, F), np.float32)
        i = np.arange(n)
        diag[:, i, i, :] = self.nodes
        return np.concatenate([self.adjacency, diag], -1)


def dense_batch(
    graphs: Sequence[Graph], n_max: int | None = None, *, buckets=None
) -> DenseBatch:
    """Stack graphs into dense ``[B, n, n, 1]`` adjacency and ``[B, n, F]`` node
    tensors with a ``[B, n]`` node mask.

    Args:
      graphs: :class:`Graph` s (a single graph gives ``B = 1``).
      n_max: the padded node count (default: the largest graph, rounded up to a
        bucket when ``buckets`` is given — ``"pow2"`` or a list of sizes).

    Example:
      >>> d = dense_batch([cycle_graph(3), cycle_graph(5)])
      >>> d.adjacency.shape, d.mask.sum(1).tolist()
      ((2, 5, 5, 1), [3, 5])
    """
    graphs = _check_graphs(graphs, "dense_batch")
    n_big = max(g.num_nodes for g in graphs)
    if n_max is None:
        n_max = n_big
        if buckets is not None:
            n_max = bucket_size(n_big, None if buckets == "pow2" else buckets)
    if n_max < n_big:
        raise ValueError(
            f"dense_batch: n_max={n_max} is smaller than the largest graph ({n_big})"
        )
    B, F = len(graphs), graphs[0].nodes.shape[1]
    A = np.zeros((B, n_max, n_max, 1), np.float32)
    X = np.zeros((B, n_max, F), np.float32)
    M = np.zeros((B, n_max), bool)
    for b, g in enumerate(graphs):
        A[b, g.senders, g.receivers, 0] = 1
        X[b, : g.num_nodes] = g.nodes
        M[b, : g.num_nodes] = True
    y = np.asarray([g.label for g in graphs], np.int32)
    return DenseBatch(A, X, M, y)
