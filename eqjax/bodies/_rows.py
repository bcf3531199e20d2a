"""Registry rows for :mod:`eqjax.bodies`: SET (O(3) with gravity transformed, O_g(3)
with gravity fixed).

The controls that must fail (an off-axis rotation with gravity fixed changes
SET's outputs) are in ``tests/bodies``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import bodies as B
from ..groups import O3, axis_subgroup
from ..testing import Transform

_K, _V, _C = 5, 2, 3  # parts, vector channels, scalar channels
_GRAVITY = (0.0, 0.0, -9.81)
_OG = axis_subgroup(_GRAVITY)


def _numpy_params(init, seed):
    """``init``'s parameter pytree as NumPy float32 arrays (weights ``N(0,
    1/fan_in)``, small biases), built on first use: no JAX program is compiled
    for a row's constants (``built_once`` evaluates eagerly, and ``eval_shape``
    under compile-time evaluation runs the initialiser op by op: 7 s)."""

    @functools.cache
    def get():
        rng = np.random.default_rng(seed)

        def fill(leaf):
            fan = leaf.shape[0] if len(leaf.shape) > 1 else 10.0
            return (rng.normal(size=leaf.shape) / np.sqrt(fan)).astype(np.float32)

        return jax.tree_util.tree_map(fill, jax.eval_shape(init))

    return get


_set_params = _numpy_params(
    lambda: B.set_init(
        jax.random.key(0),
        vector_in=_V,
        scalar_in=_C,
        vector_out=2,
        scalar_out=2,
        hidden_vectors=4,
        hidden_scalars=8,
        num_layers=1,
    ),
    0,
)


def _set_input(key, dtype):
    k1, k2, k3 = jax.random.split(key, 3)
    return (
        jax.random.normal(k1, (_K, _V, 3), dtype),
        jax.random.normal(k2, (_K, _C), dtype),
        jax.random.normal(k3, (3,), dtype) + jnp.asarray([0.0, 0.0, -2.0], dtype),
    )


def _rot(g, v):
    return jnp.einsum("ij,...j->...i", g, v)


def _set_all(x):
    return B.set_model(_set_params(), *x)


def _set_gravity_fixed(x):
    v, s = x
    return B.set_model(_set_params(), v, s, jnp.asarray(_GRAVITY, v.dtype))


def _out(g, y):
    return (_rot(g, y[0]), y[1])


def _set_degenerate(dtype):
    g = jnp.asarray([0.0, 0.0, -9.81], dtype)
    s = jnp.ones((_K, _C), dtype)
    along = jnp.broadcast_to(g, (_K, _V, 3))  # every vector parallel to gravity
    return [(jnp.zeros((_K, _V, 3), dtype), s, g), (along, s, g)]


ROWS: list[Transform] = [
    Transform(
        name="bodies.set_O3",
        fn=_set_all,
        group=O3,
        act_in=lambda g, x: (_rot(g, x[0]), x[1], _rot(g, x[2])),
        act_out=_out,
        make_input=_set_input,
        degenerate_inputs=_set_degenerate,
        notes="SET (Chen et al., ICML 2023): vectors and gravity rotate together "
        "(O(3), reflections included); degenerate: zero vectors, vectors ∥ gravity",
    ),
    Transform(
        name="bodies.set_Og3_gravity_fixed",
        fn=_set_gravity_fixed,
        group=_OG,
        act_in=lambda g, x: (_rot(g, x[0]), x[1]),
        act_out=_out,
        make_input=lambda key, dtype: _set_input(key, dtype)[:2],
        degenerate_inputs=lambda dt: [d[:2] for d in _set_degenerate(dt)],
        notes="gravity (0, 0, -9.81) fixed: O_g(3) = rotations about and "
        "reflections through planes containing the gravity axis (slow tier: "
        "tests/bodies checks it, with the off-axis control, in the fast tier)",
        slow=True,
    ),
]
