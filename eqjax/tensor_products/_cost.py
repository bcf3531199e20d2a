"""The measured cost model behind ``method="auto"``."""

from __future__ import annotations

from collections.abc import Sequence

import jax

# Crossovers measured by ``python -m experiments bench_tensor_products`` (see
# experiments/results/bench_tensor_products/); per backend, a list of
# (largest total degree D = ΣL_k + L_out, method), first match wins.
COST_MODEL: dict[str, list[tuple[int, str]]] = {
    "cpu": [(3, "fourier_direct"), (10**9, "s2grid")],
    "gpu": [(3, "fourier_direct"), (10**9, "s2grid")],
}


def choose_method(
    Ls: Sequence[int], lmax_out: int, n_signals: int, backend: str | None = None
) -> str:
    """The method ``"auto"`` runs for inputs of degrees ``Ls``, output degree
    ``lmax_out`` and ``n_signals`` channel-signals in the batch, on ``backend``
    (default: JAX's default backend), from the measured crossovers in
    ``COST_MODEL``.

    Example:
      >>> choose_method([8, 8], 8, 8192, backend="cpu") in ("fourier_fft",
      ...     "fourier_direct", "s2grid")
      True
    """
    backend = backend or jax.default_backend()
    table = COST_MODEL.get(backend, COST_MODEL["cpu"])
    D = sum(Ls) + lmax_out
    del n_signals
    for bound, method in table:
        if D <= bound:
            return method
    return table[-1][1]
