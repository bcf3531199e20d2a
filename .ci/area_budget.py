"""Fail when an area's share of the fast tier is over budget.

Reads the JSON the root ``conftest.py`` writes after a pytest run
(``$EQJAX_AREA_TIMES``, default ``.pytest-area-times.json``): seconds of setup +
call + teardown per area summed over the xdist workers, and the number of workers.
An area's share of the run's wall time is its sum divided by the workers (the
workers run side by side, one per core: ``-n auto`` on 2 cores); that share is
checked against the budget. Usage::

    python -m pytest -n auto && python .ci/area_budget.py [--budget 45] [FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "file",
        nargs="?",
        default=os.environ.get(
            "EQJAX_AREA_TIMES", str(ROOT / ".pytest-area-times.json")
        ),
    )
    parser.add_argument("--budget", type=float, default=45.0, help="seconds per area")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="print the table and the areas over budget, but exit 0",
    )
    args = parser.parse_args(argv)
    data = json.loads(Path(args.file).read_text())
    if "slow" in data.get("markexpr", "") and "not slow" not in data["markexpr"]:
        print(f"{args.file} is from the slow tier ({data['markexpr']!r})")
        return 2
    workers = max(int(data.get("workers", 1)), 1)
    rows = sorted(
        ((a, s / workers) for a, s in data["seconds"].items()), key=lambda kv: -kv[1]
    )
    over = [(a, s) for a, s in rows if s > args.budget]
    print(
        f"fast-tier wall-time share per area ({workers} workers; budget "
        f"{args.budget:.0f} s each):"
    )
    for area, seconds in rows:
        flag = "  OVER BUDGET" if seconds > args.budget else ""
        n = data["tests"].get(area, 0)
        print(f"  {area:18s} {seconds:7.1f} s  {n:5d} tests{flag}")
    print(f"  {'total':18s} {sum(s for _, s in rows):7.1f} s")
    if over:
        print(
            "over budget: "
            + ", ".join(f"{a} ({s:.0f} s)" for a, s in over)
            + ": move long runs to the slow tier (@pytest.mark.slow) or reuse shapes"
        )
        return 0 if args.report_only else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
