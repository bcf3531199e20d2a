"""Registry rows of :mod:`eqjax.tensor_products` (group O(3), Wigner-D action)."""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp

from ..groups import O3, act_irreps
from ..tensor_products import (
    gaunt_power,
    gaunt_self_interaction,
    gaunt_tensor_product,
    gaunt_vector_product,
)
from ..testing import Transform

_IRREPS1 = e3nn.Irreps("2x0e+2x1o+2x2e")  # p = +1
_IRREPS2 = e3nn.Irreps("2x0o+2x1e+2x2o")  # p = -1: output parity flips


def _act_pair(R, xs):
    return tuple(act_irreps(R, x) for x in xs)


def _pair(key, dtype):
    k1, k2 = jax.random.split(key)
    return (
        e3nn.normal(_IRREPS1, k1, dtype=dtype),
        e3nn.normal(_IRREPS2, k2, dtype=dtype),
    )


def _single(key, dtype):
    return e3nn.normal(_IRREPS1, key, dtype=dtype)


def _zero_pair(dtype):
    return [(e3nn.zeros(_IRREPS1, (), dtype), e3nn.zeros(_IRREPS2, (), dtype))]


def _zero_single(dtype):
    return [e3nn.zeros(_IRREPS1, (), dtype)]


def _gtp(method):
    return lambda xs: gaunt_tensor_product(xs[0], xs[1], lmax_out=3, method=method)


ROWS: list[Transform] = [
    Transform(
        name=f"tensor_products.gaunt_tensor_product[{method}]",
        fn=_gtp(method),
        group=O3,
        act_in=_act_pair,
        act_out=act_irreps,
        make_input=_pair,
        degenerate_inputs=_zero_pair,
        notes="(x1, x2) -> coefficients of f1·f2 up to l=3; reflections flip parity",
    )
    for method in ("auto", "fourier_fft", "fourier_direct", "s2grid")
] + [
    Transform(
        name="tensor_products.gaunt_power[nu=3]",
        fn=lambda x: gaunt_power(x, 3, lmax_out=4, method="fourier_fft"),
        group=O3,
        act_in=act_irreps,
        act_out=act_irreps,
        make_input=_single,
        degenerate_inputs=_zero_single,
        notes="many-body f³ computed in the Fourier domain",
    ),
    Transform(
        name="tensor_products.gaunt_self_interaction",
        fn=lambda x: gaunt_self_interaction(
            x,
            weights1=jnp.asarray([1.0, -0.5, 0.25]),
            weights2=jnp.asarray([0.3, 1.0, 2.0]),
        ),
        group=O3,
        act_in=act_irreps,
        act_out=act_irreps,
        make_input=_single,
        degenerate_inputs=_zero_single,
    ),
    Transform(
        name="tensor_products.gaunt_vector_product",
        fn=lambda xs: gaunt_vector_product(xs[0], xs[1], method="fourier_fft"),
        group=O3,
        act_in=_act_pair,
        act_out=act_irreps,
        make_input=_pair,
        degenerate_inputs=_zero_pair,
        notes="antisymmetric odd paths (r·∇f1×∇f2); pseudoscalar field parity",
    ),
]
