"""Metrics of a run: rows of ``{column: value}``, written as CSV and plotted as PNG."""

from __future__ import annotations

import csv
import math
import os
import warnings
from pathlib import Path


class MetricsLog:
    """Rows keyed by ``step`` with any columns (train loss every step, eval
    metrics every N steps), kept in memory and rewritten to ``path`` (CSV) on
    :meth:`flush`; :meth:`plot` draws each column against the step.

    On resume, :meth:`resume` reloads the CSV and drops rows after the restored
    step, so the file continues as if the run had never stopped. Values are
    written with ``repr`` (float round trip is exact).

    Args:
      path: CSV file (its folder is created), or ``None`` to keep rows in memory.
      enabled: ``False`` on processes other than 0 (they write nothing).
    """

    def __init__(self, path: str | os.PathLike | None, *, enabled: bool = True):
        self.path = None if path is None else Path(path)
        self.enabled = enabled
        self.rows: dict[int, dict[str, float]] = {}

    def add(self, step: int, **values: float) -> None:
        """Merge ``values`` into the row of ``step``."""
        self.rows.setdefault(int(step), {}).update(
            {k: float(v) for k, v in values.items()}
        )

    def columns(self) -> list[str]:
        cols: dict[str, None] = {}
        for row in self.rows.values():
            cols.update(dict.fromkeys(row))
        return list(cols)

    def column(self, name: str) -> tuple[list[int], list[float]]:
        """Steps and values where column ``name`` is present."""
        pts = [(s, r[name]) for s, r in sorted(self.rows.items()) if name in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    def resume(self, step: int) -> None:
        """Reload the CSV, keeping rows with ``step <= step``."""
        if self.path is None or not self.path.exists():
            return
        with open(self.path, newline="") as f:
            for row in csv.DictReader(f):
                s = int(row.pop("step"))
                if s <= step:
                    self.add(s, **{k: float(v) for k, v in row.items() if v != ""})

    def flush(self) -> None:
        """Rewrite the CSV (atomically)."""
        if not (self.enabled and self.path):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cols = self.columns()
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", *cols])
            for s, r in sorted(self.rows.items()):
                w.writerow([s, *(repr(r[c]) if c in r else "" for c in cols)])
        os.replace(tmp, self.path)

    def plot(self, path: str | os.PathLike, title: str = "") -> bool:
        """One panel per column against the step (log scale for positive
        columns); ``False`` (and a warning) without matplotlib."""
        if not (self.enabled and self.rows):
            return False
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            warnings.warn("matplotlib is not installed: no metrics plot", stacklevel=2)
            return False
        cols = self.columns()
        fig, axes = plt.subplots(
            1, len(cols), figsize=(4 * len(cols), 3), squeeze=False
        )
        for ax, c in zip(axes[0], cols, strict=True):
            xs, ys = self.column(c)
            ax.plot(xs, ys, marker="." if len(xs) < 50 else None)
            if ys and all(y > 0 and math.isfinite(y) for y in ys):
                ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_title(c)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return True
