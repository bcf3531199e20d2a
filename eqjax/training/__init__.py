"""Training harness: data parallelism over a device mesh, several hosts through
``jax.distributed``, Orbax checkpoints with resume, metrics, early stopping.

One jitted step per run: batches are split over the mesh axis ``"data"`` with a
``NamedSharding`` (each device gets whole samples, or whole padded graph batches
stacked with :func:`stack_graphs`), parameters and optimiser state are
replicated, and XLA inserts the gradient all-reduce (no ``pmap``). With several
processes (:func:`initialize`) the mesh spans every process' devices, each
process feeds its own slice of every global batch, and only process 0 writes
metrics. Checkpoints hold parameters, optimiser state, step, the data
iterator's position, the PRNG key and the early-stopping state; a resumed run
ends with the same parameters, bit for bit, as an uninterrupted one.
:func:`fit_options` turns the command-line flags of :func:`add_arguments` into
:func:`fit`'s checkpoint keywords for one named run (a subfolder per run);
``fit(budget_s=...)`` bounds a run by seconds of training steps instead of (or
as well as) a step count.

>>> import jax.numpy as jnp, numpy as np, optax
>>> from eqjax import training
>>> xs = np.linspace(-1, 1, 8, dtype=np.float32)
>>> data = training.ArrayLoader({"x": xs, "y": 3 * xs}, 4, seed=0)
>>> loss = lambda w, b, key: jnp.mean((w * b["x"] - b["y"]) ** 2)
>>> r = training.fit(loss, jnp.float32(0.0), optax.sgd(0.5), data, steps=40,
...                  progress=False)
>>> round(float(r.params), 3), r.compiles
(3.0, 1)
"""

from ._checkpoint import Checkpointer as Checkpointer
from ._checkpoint import CheckpointMismatchError as CheckpointMismatchError
from ._checkpoint import fingerprint as fingerprint
from ._cli import add_arguments as add_arguments
from ._cli import fit_options as fit_options
from ._cli import setup as setup
from ._data import ArrayLoader as ArrayLoader
from ._data import IndexedSource as IndexedSource
from ._data import Resumable as Resumable
from ._distributed import initialize as initialize
from ._mesh import DATA_AXIS as DATA_AXIS
from ._mesh import batch_sharding as batch_sharding
from ._mesh import data_mesh as data_mesh
from ._mesh import replicate as replicate
from ._mesh import replicated as replicated
from ._mesh import request_cpu_devices as request_cpu_devices
from ._mesh import shard_batch as shard_batch
from ._mesh import stack_graphs as stack_graphs
from ._mesh import to_host as to_host
from ._metrics import MetricsLog as MetricsLog
from ._trainer import EarlyStopping as EarlyStopping
from ._trainer import Evaluator as Evaluator
from ._trainer import FitResult as FitResult
from ._trainer import fit as fit
from ._trainer import nnx_loss as nnx_loss

__all__ = [
    "DATA_AXIS",
    "ArrayLoader",
    "CheckpointMismatchError",
    "Checkpointer",
    "EarlyStopping",
    "Evaluator",
    "FitResult",
    "IndexedSource",
    "MetricsLog",
    "Resumable",
    "add_arguments",
    "batch_sharding",
    "data_mesh",
    "fingerprint",
    "fit",
    "fit_options",
    "initialize",
    "nnx_loss",
    "replicate",
    "replicated",
    "request_cpu_devices",
    "setup",
    "shard_batch",
    "stack_graphs",
    "to_host",
]
