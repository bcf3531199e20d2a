"""Device meshes for data parallelism: the batch axis sharded, parameters replicated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def request_cpu_devices(n: int) -> None:
    """Ask XLA:CPU for ``n`` host devices (``jax_num_cpu_devices``).

    Only possible before JAX's backends start (the first ``jax.devices()`` or
    array creation); afterwards this raises ``RuntimeError`` naming the count
    that is already there. It changes nothing on a GPU/TPU platform, whose
    devices are the physical ones.

    Args:
      n: number of host devices wanted (``>= 1``).
    """
    if n < 1:
        raise ValueError(f"devices must be >= 1, got {n}")
    try:
        jax.config.update("jax_num_cpu_devices", int(n))
    except RuntimeError as e:  # backends already initialised
        have = jax.local_device_count()
        if jax.default_backend() == "cpu" and have < n:
            raise RuntimeError(
                f"{n} host devices requested but JAX already started with {have}; "
                "request them before any JAX computation (or set "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={n})"
            ) from e


def data_mesh(
    num_devices: int | None = None, devices: Sequence[Any] | None = None
) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over the first ``num_devices`` devices of
    every process (all of them by default).

    With several processes (``jax.distributed``) the mesh spans every process'
    devices, so one jitted step runs over all hosts; ``num_devices`` counts the
    devices per process.

    Args:
      num_devices: devices per process to use; ``None`` for all.
      devices: an explicit device list (overrides ``num_devices``).

    Returns:
      ``jax.sharding.Mesh`` with one axis named ``"data"``.

    >>> data_mesh(1).axis_names
    ('data',)
    """
    if devices is None:
        local = jax.local_device_count()
        n = local if num_devices is None else int(num_devices)
        if not 1 <= n <= local:
            raise ValueError(
                f"devices={n} requested but this process has {local} "
                f"{jax.default_backend()} device(s): {jax.local_devices()}"
            )
        by_proc: dict[int, list] = {}
        for d in jax.devices():
            by_proc.setdefault(d.process_index, []).append(d)
        devices = [d for p in sorted(by_proc) for d in by_proc[p][:n]]
    return Mesh(np.array(list(devices)), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of parameters and optimiser state: a full copy on every
    device of ``mesh``."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding of batches: leading (batch) axis split over ``"data"``."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place a pytree (host or device arrays, the same value on every process)
    as fully replicated global arrays on ``mesh``."""
    sharding = replicated(mesh)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree.map(put, tree)


def check_global_batch(global_batch: int, mesh: Mesh, what: str = "batch") -> None:
    """``ValueError`` unless ``global_batch`` splits evenly over the mesh's
    devices and the processes."""
    n, procs = mesh.devices.size, jax.process_count()
    if global_batch % n or global_batch % procs:
        raise ValueError(
            f"{what} size {global_batch} is not divisible by the {n} devices of the "
            f"mesh ({procs} process(es)); choose a multiple of {n}"
        )


def shard_batch(local_batch: Any, mesh: Mesh) -> Any:
    """This process' part of a batch (a pytree whose leaves share a leading batch
    axis) -> global arrays whose leading axis is split over ``"data"``.

    Every device receives a whole number of rows (a row is one sample, or one
    padded graph batch when the leaves are stacked padded ``GraphsTuple``s, see
    :func:`stack_graphs`). The global batch is the concatenation of all
    processes' local batches in process order.

    Raises:
      ValueError: if the leaves disagree on the batch size or it does not split
        evenly over the devices.
    """
    leaves = jax.tree.leaves(local_batch)
    if not leaves:
        raise ValueError("empty batch")
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"every leaf of a batch needs the same leading batch axis, got sizes {sizes}"
        )
    local = int(next(iter(sizes)))  # type: ignore[arg-type]
    global_batch = local * jax.process_count()
    check_global_batch(global_batch, mesh)
    sharding = batch_sharding(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(
            sharding, np.asarray(x), (global_batch,) + np.shape(x)[1:]
        ),
        local_batch,
    )


def stack_graphs(graphs: Sequence[Any]) -> Any:
    """Stack equally padded ``jraph.GraphsTuple``s (or any pytrees of equal
    shapes) along a new leading axis, so that :func:`shard_batch` hands each
    device whole padded graph batches; the loss then ``vmap``s over that axis.

    Raises:
      ValueError: if the pytrees differ in structure or leaf shapes (pad them to
        the same sizes first, e.g. with ``jraph.pad_with_graphs``).
    """
    graphs = list(graphs)
    if not graphs:
        raise ValueError("stack_graphs needs at least one graph batch")
    ref = jax.tree.map(np.shape, graphs[0])
    for i, g in enumerate(graphs[1:], 1):
        if jax.tree.map(np.shape, g) != ref:
            raise ValueError(
                f"graph batch {i} is padded to {jax.tree.map(np.shape, g)}, "
                f"batch 0 to {ref}: pad all to the same sizes"
            )
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *graphs)


def to_host(x: Any) -> np.ndarray:
    """A replicated (or fully addressable) array as NumPy, on any process."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(x.addressable_data(0))
    return np.asarray(x)
