"""Command-line flags shared by every training script."""

from __future__ import annotations

import argparse

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
