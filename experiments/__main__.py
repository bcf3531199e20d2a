"""``python -m experiments list`` | ``python -m experiments <name> [--quick] ...``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _module_names() -> list[str]:
    """The public modules of ``experiments/`` (not imported)."""
    return [
        i.name for i in pkgutil.iter_modules([str(HERE)]) if not i.name.startswith("_")
    ]


def available() -> dict[str, str]:
    """Experiment name -> one-line description, for every module with ``main``."""
    out = {}
    for name in _module_names():
        mod = importlib.import_module(f"experiments.{name}")
        if hasattr(mod, "main"):
            out[name] = getattr(mod, "DESCRIPTION", "")
    return dict(sorted(out.items()))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "list"):
        print("usage: python -m experiments <name> [--quick] [options]\n\nexperiments:")
        for name, desc in available().items():
            print(f"  {name:28s} {desc}")
        return 0
    name, rest = argv[0], argv[1:]
    # Import only the named module: another experiment's import-time work must
    # not start JAX's backends before this one's ``--devices`` request.
    if name not in _module_names():
        print(
            f"unknown experiment {name!r}; try: python -m experiments list",
            file=sys.stderr,
        )
        return 2
    return int(importlib.import_module(f"experiments.{name}").main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
