"""Fail when an area's share of the fast tier is over budget.

Reads the JSON the root ``conftest.py`` writes after a pytest run
(``$EQJAX_AREA_TIMES``, default ``.pytest-area-times.json``): seconds of setup +
call + teardown per area, summed over xdist workers, i.e. the area's share of the
wall time of 2 cores. Usage::

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
    args = parser.parse_args(argv)
    data = json.loads(Path(args.file).read_text())
    if "slow" in data.get("markexpr", "") and "not slow" not in data["markexpr"]:
        print(f"{args.file} is from the slow tier ({data['markexpr']!r})")
        return 2
    rows = sorted(data["seconds"].items(), key=lambda kv: -kv[1])
    over = [(a, s) for a, s in rows if s > args.budget]
    print(f"fast-tier time per area (budget {args.budget:.0f} s each):")
    for area, seconds in rows:
        flag = "  OVER BUDGET" if seconds > args.budget else ""
        print(
            f"  {area:18s} {seconds:7.1f} s  {data['tests'].get(area, 0):5d} tests{flag}"
        )
    print(f"  {'total':18s} {sum(s for _, s in rows):7.1f} s")
    if over:
        print(
            "over budget: "
            + ", ".join(f"{a} ({s:.0f} s)" for a, s in over)
            + ": move long runs to the slow tier (@pytest.mark.slow) or reuse shapes"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
