"""The charged-particle N-body data set (seeded simulator).

Kipf et al., "Neural Relational Inference" (ICML 2018), in the 3D version of
Satorras, Hoogeboom, Welling, "E(n) Equivariant Graph Neural Networks" (ICML
2021): ``n`` particles with charges ±1, Gaussian initial positions (std 1),
initial speed ``vel_norm`` in a uniformly random direction, Coulomb forces
``q_i q_j (x_i - x_j) / ‖x_i - x_j‖³`` (their norm clipped at ``max_force``),
explicit Euler steps of ``dt``, no box (so E(3) is a symmetry of the data). The
input is the state after ``burn`` steps, the target the positions ``horizon``
steps later.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NBodyData(NamedTuple):
    """Arrays of ``num`` systems of ``n`` particles (float32).

    Attributes:
      positions: ``[num, n, 3]`` input positions.
      velocities: ``[num, n, 3]`` input velocities.
      charges: ``[num, n]`` charges ±1.
      targets: ``[num, n, 3]`` positions ``horizon`` steps later.
    """

    positions: np.ndarray
    velocities: np.ndarray
    charges: np.ndarray
    targets: np.ndarray


def charged_nbody(
    num: int,
    seed: int,
    *,
    n: int = 5,
    burn: int = 3000,
    horizon: int = 1000,
    dt: float = 1e-3,
    vel_norm: float = 0.5,
    max_force: float = 100.0,
) -> NBodyData:
    """Simulate ``num`` charged N-body systems (NumPy, float64 inside, seeded by
    ``seed`` through ``numpy.random.default_rng``; same seed, same data).

    Args:
      num: number of systems.
      seed: RNG seed.
      n: particles per system.
      burn: Euler steps before the input state.
      horizon: steps from input to target.
      dt: time step.
      vel_norm: initial speed.
      max_force: clip of the force norm.

    Returns:
      :class:`NBodyData` (float32).

    Example:
      >>> d = charged_nbody(2, 0, burn=10, horizon=5)
      >>> d.positions.shape, d.charges.shape
      ((2, 5, 3), (2, 5))
    """
    if int(num) < 1 or int(n) < 2:
        raise ValueError(f"need num >= 1 and n >= 2, got num={num!r}, n={n!r}")
    if burn < 0 or horizon < 1 or not dt > 0:
        raise ValueError(
            f"need burn >= 0, horizon >= 1, dt > 0; got {burn}, {horizon}, {dt}"
        )
    rng = np.random.default_rng(seed)
    q = rng.choice([-1.0, 1.0], size=(num, n))
    x = rng.normal(size=(num, n, 3))
    v = rng.normal(size=(num, n, 3))
    v *= vel_norm / np.linalg.norm(v, axis=-1, keepdims=True)
    qq = q[:, :, None] * q[:, None, :]
    eye = np.eye(n, dtype=bool)[None]

    def force(x):
        d = x[:, :, None, :] - x[:, None, :, :]
        r2 = np.sum(d * d, -1)
        r3 = np.where(eye, np.inf, r2**1.5)
        f = np.sum((qq / r3)[..., None] * d, axis=2)
        norm = np.linalg.norm(f, axis=-1, keepdims=True)
        return f * np.minimum(1.0, max_force / np.maximum(norm, 1e-12))

    x0 = v0 = None
    for step in range(burn + horizon):
        if step == burn:
            x0, v0 = x.copy(), v.copy()
        x = x + dt * v
        v = v + dt * force(x)
    assert x0 is not None and v0 is not None
    f32 = lambda a: np.asarray(a, np.float32)
    return NBodyData(f32(x0), f32(v0), f32(q), f32(x))
