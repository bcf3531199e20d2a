"""Helpers shared by experiments: result folders, tables, timing."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jraph
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def results_dir(name: str) -> Path:
    """``experiments/results/<name>/``, created if missing."""
    path = RESULTS / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_table(
    name: str, stem: str, header, rows, preamble: str = "", out_dir=None
) -> str:
    """Write ``<stem>.md`` and ``<stem>.csv`` under the experiment's folder (or
    ``out_dir``, e.g. an experiment's ``--results-dir``, created if missing);
    return the Markdown text."""
    out = results_dir(name) if out_dir is None else Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = (preamble + "\n\n" if preamble else "") + markdown_table(header, rows) + "\n"
    (out / f"{stem}.md").write_text(md)
    with open(out / f"{stem}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return md


def time_call(
    fn: Callable[..., Any], *args, repeats: int = 20, min_time: float = 0.05
) -> float:
    """Median seconds per call of an already-jitted ``fn`` (compiled first)."""
    jax.block_until_ready(fn(*args))
    times = []
    total = 0.0
    while len(times) < repeats or total < min_time:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        dt = time.perf_counter() - t0
        times.append(dt)
        total += dt
        if len(times) >= 10 * repeats:
            break
    times.sort()
    return times[len(times) // 2]


def power_law_exponent(xs, ts, *, xmin: float | None = None) -> float:
    """Exponent ``k`` of ``t ∝ x^k``: least-squares slope of ``log t`` against
    ``log x`` over the points with ``x >= xmin`` (all by default) and a finite,
    positive ``t``; NaN when fewer than two points remain."""
    xs, ts = np.asarray(xs, float), np.asarray(ts, float)
    ok = np.isfinite(ts) & (ts > 0)
    if xmin is not None:
        ok &= xs >= xmin
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(xs[ok]), np.log(ts[ok]), 1)[0])


def dense_graphs_tuple(x, nm, s, r) -> jraph.GraphsTuple:
    """A dense batch (``[B, n, F]`` node features, ``[B, n]`` mask, ``[B, E]``
    edges) as one padded ``GraphsTuple``: the real nodes of every graph in
    order, then all padded slots as jraph's padding graph (traceable).

    Padding edges must point at a padded slot (so each graph needs one).
    """
    B, n, F = x.shape
    flat = nm.reshape(-1)
    order = jnp.argsort(~flat, stable=True)  # real nodes first, graph-major
    where = (
        jnp.zeros(B * n, jnp.int32).at[order].set(jnp.arange(B * n, dtype=jnp.int32))
    )
    off = (jnp.arange(B, dtype=jnp.int32) * n)[:, None]
    nreal = jnp.sum(nm, 1).astype(jnp.int32)
    return jraph.GraphsTuple(
        nodes=x.reshape(B * n, F)[order],
        edges=None,
        senders=where[(s + off).reshape(-1)],
        receivers=where[(r + off).reshape(-1)],
        globals=None,
        n_node=jnp.concatenate([nreal, (B * n - jnp.sum(nreal))[None]]),
        n_edge=jnp.concatenate(
            [jnp.full((B,), s.shape[1], jnp.int32), jnp.zeros((1,), jnp.int32)]
        ),
    )


def scale_first_weight(p, factor):
    """An :class:`eqjax.graphs.MLPParams` with its first weight matrix scaled
    (``factor`` may be an array): start sum-aggregating GIN layers and sum
    readouts at order-one activations without normalisation layers."""
    return p._replace(weights=(p.weights[0] * factor,) + tuple(p.weights[1:]))
