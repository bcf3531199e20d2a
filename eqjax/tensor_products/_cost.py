"""The measured cost model behind ``method="auto"``.

``_cost_model.json`` holds, per backend, measured forward times (µs per signal,
32 channels, jitted) of each Gaunt method, keyed by the total degree
``D = L1 + L2 + L_out`` of the product. It is written by
``python -m experiments bench_tensor_products --write-cost-model``; backends never
measured fall back to the CPU table.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import jax

_PATH = Path(__file__).with_name("_cost_model.json")


@functools.lru_cache(maxsize=1)
def cost_model() -> dict:
    """``{backend: {"device": str, "times": {D: {method: µs per signal}}}}``."""
    return json.loads(_PATH.read_text())


def choose_method(
    Ls: Sequence[int], lmax_out: int, n_signals: int, backend: str | None = None
) -> str:
    """The method ``"auto"`` runs for inputs of degrees ``Ls`` and output degree
    ``lmax_out`` on ``backend`` (default: JAX's default backend): the fastest one
    measured at the nearest total degree ``D = ΣL + lmax_out`` (nearest in
    ``log D``). Methods are only compared where all were measured; ``n_signals``
    (batch × channels) is accepted for future batch-dependent tables (the
    measured ranking did not change with batch on CPU).

    Example:
      >>> choose_method([8, 8], 8, 8192, backend="cpu") in ("fourier_fft",
      ...     "fourier_direct", "s2grid")
      True
    """
    del n_signals
    backend = backend or jax.default_backend()
    models = cost_model()
    table = models.get(backend, models["cpu"])["times"]
    D = max(sum(Ls) + lmax_out, 1)
    key = min(table, key=lambda k: abs(math.log(int(k)) - math.log(D)))
    times = table[key]
    return min(times, key=times.get)
