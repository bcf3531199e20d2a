"""Command-line flags shared by every training script."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from jax.sharding import Mesh

from ._distributed import initialize
from ._mesh import data_mesh, request_cpu_devices


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the harness' flags: ``--devices``, ``--checkpoint-dir``, ``--resume``,
    ``--checkpoint-every``, ``--keep``, ``--coordinator``, ``--num-processes``,
    ``--process-id``, ``--distributed-timeout``. Returns ``parser``."""
    g = parser.add_argument_group("training harness (eqjax.training)")
    g.add_argument(
        "--devices",
        type=int,
        default=None,
        help="devices per process (default: all); on CPU this many host devices "
        "are created (jax_num_cpu_devices)",
    )
    g.add_argument("--checkpoint-dir", default=None, help="Orbax checkpoints here")
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest complete checkpoint in --checkpoint-dir",
    )
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        help="steps between checkpoints (0: end only)",
    )
    g.add_argument("--keep", type=int, default=3, help="checkpoints kept")
    g.add_argument("--coordinator", default=None, help="host:port of process 0")
    g.add_argument("--num-processes", type=int, default=None)
    g.add_argument("--process-id", type=int, default=None)
    g.add_argument(
        "--distributed-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the coordinator",
    )
    return parser


def setup(args: argparse.Namespace) -> Mesh:
    """Start ``jax.distributed`` if asked, create ``--devices`` host devices on
    CPU, and return the data mesh. Call it before any JAX computation.

    Raises:
      ValueError: inconsistent flags (``--resume`` without
        ``--checkpoint-dir``, bad process ids, more devices than exist).
      TimeoutError: the coordinator did not answer within the timeout.
    """
    if getattr(args, "resume", False) and not getattr(args, "checkpoint_dir", None):
        raise ValueError("--resume needs --checkpoint-dir")
    initialize(
        args.coordinator,
        args.num_processes,
        args.process_id,
        timeout_s=args.distributed_timeout,
    )
    if args.devices is not None:
        request_cpu_devices(args.devices)
    return data_mesh(args.devices)


_FIT_FLAGS = ("checkpoint_dir", "checkpoint_every", "keep", "resume")


def fit_options(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """:func:`fit`'s checkpoint keywords for one named run of a script.

    A script that trains several models (or seeds) checkpoints each run in its
    own subfolder ``<--checkpoint-dir>/<name>``, so ``--resume`` continues every
    run from its own checkpoints.

    Args:
      args: flags parsed by a parser that went through :func:`add_arguments`.
      name: the run's folder name: one path component (no ``/``, not ``.`` or
        ``..``), the same in the resumed invocation.

    Returns:
      ``{"checkpoint_dir": Path | None, "checkpoint_every": int, "keep": int,
      "resume": bool}``, to pass as ``fit(..., **fit_options(args, name))``;
      ``checkpoint_dir`` is ``None`` without ``--checkpoint-dir``.

    Raises:
      ValueError: a ``name`` that is not a single path component.
      TypeError: ``args`` lacks the harness' flags (no :func:`add_arguments`).

    >>> ap = add_arguments(argparse.ArgumentParser())
    >>> fit_options(ap.parse_args(["--checkpoint-dir", "ck", "--resume"]), "gin")
    {'checkpoint_dir': PosixPath('ck/gin'), 'checkpoint_every': 0, 'keep': 3, 'resume': True}
    >>> fit_options(ap.parse_args([]), "gin")["checkpoint_dir"] is None
    True
    """
    missing = [f for f in _FIT_FLAGS if not hasattr(args, f)]
    if missing:
        raise TypeError(
            f"args has no {missing}: parse the flags with a parser that went "
            "through eqjax.training.add_arguments(parser)"
        )
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or any(c in name for c in seps)
        or "\0" in name
    ):
        raise ValueError(
            f"run name {name!r} must be one non-empty path component (no path "
            "separators, not '.' or '..'): it names the run's checkpoint folder"
        )
    ck = args.checkpoint_dir
    if args.resume and ck is None:
        raise ValueError("--resume needs --checkpoint-dir")
    return {
        "checkpoint_dir": None if ck is None else Path(ck) / name,
        "checkpoint_every": int(args.checkpoint_every),
        "keep": int(args.keep),
        "resume": bool(args.resume),
    }
