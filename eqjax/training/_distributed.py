"""Several processes (hosts) through ``jax.distributed``, CPU collectives by gloo."""

from __future__ import annotations

import os
import socket
import time

import jax

ENV = {
    "coordinator_address": ("EQJAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("EQJAX_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
    "process_id": ("EQJAX_PROCESS_ID", "JAX_PROCESS_ID"),
}


def _env(name: str) -> str | None:
    for var in ENV[name]:
        if os.environ.get(var):
            return os.environ[var]
    return None


def _wait_for(address: str, timeout_s: float) -> None:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError as e:
            last = e
            time.sleep(0.2)
    raise TimeoutError(
        f"the coordinator at {address} did not answer within {timeout_s:g} s ({last}); "
        "start process 0 first, check the address/port, or raise the timeout"
    )


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: float = 60.0,
    cpu_collectives: str = "gloo",
) -> bool:
    """Join a multi-process run with ``jax.distributed.initialize``.

    Arguments default to ``$EQJAX_COORDINATOR_ADDRESS`` / ``$EQJAX_NUM_PROCESSES``
    / ``$EQJAX_PROCESS_ID`` (or JAX's ``$JAX_COORDINATOR_ADDRESS``, ...). With no
    address and at most one process nothing happens (a single-process run).
    On CPU the cross-process collectives use ``cpu_collectives`` (JAX's
    ``jax_cpu_collectives_implementation``, gloo by default).

    Must run before any JAX computation. Process 0 hosts the coordinator; every
    other process first waits up to ``timeout_s`` seconds for it to accept
    connections and raises ``TimeoutError`` if it does not (JAX itself would
    abort the process).

    Args:
      coordinator_address: ``host:port`` of process 0.
      num_processes: number of processes.
      process_id: this process' index, ``0 <= process_id < num_processes``.
      timeout_s: how long to wait for the coordinator and the other processes.
      cpu_collectives: ``"gloo"`` (or ``"mpi"``) for XLA:CPU collectives.

    Returns:
      ``True`` if a multi-process runtime was started, ``False`` otherwise.
    """
    addr = coordinator_address or _env("coordinator_address")
    n = num_processes if num_processes is not None else _env("num_processes")
    pid = process_id if process_id is not None else _env("process_id")
    n = None if n is None else int(n)
    pid = None if pid is None else int(pid)
    if addr is None:
        if n not in (None, 1):
            raise ValueError(
                f"num_processes={n} needs a coordinator address (host:port of "
                "process 0): pass --coordinator or set EQJAX_COORDINATOR_ADDRESS"
            )
        return False
    if ":" not in addr or not addr.rpartition(":")[2].isdigit():
        raise ValueError(f"coordinator address must be host:port, got {addr!r}")
    if n is None or pid is None:
        raise ValueError(
            f"coordinator {addr!r} given but num_processes={n}, process_id={pid}: "
            "give both"
        )
    if n < 1 or not 0 <= pid < n:
        raise ValueError(f"need 0 <= process_id < num_processes, got {pid} of {n}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    if pid != 0:
        _wait_for(addr, timeout_s)
    jax.distributed.initialize(
        addr, n, pid, initialization_timeout=max(1, int(round(timeout_s)))
    )
    return True
