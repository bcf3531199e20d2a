"""Registry rows for eqjax.weights: hidden-unit permutations of NNX models (specs
derived by :func:`permutation_spec`) leave the outputs unchanged."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..testing import Transform, built_once
from ._spec import apply_permutation, permutation_group, permutation_spec
from ._testmodels import VOCAB, build

_SIZES = {"mlp": (8, 6), "cnn": (4, 6), "residual": (8, 5, 5), "transformer": None}


def _model_row(kind: str, *, slow: bool = False, notes: str = "") -> Transform:
    def make():
        from flax import nnx

        m, x = build(kind, seed=0)
        spec = permutation_spec(m)
        graphdef, state = nnx.split(m)
        return graphdef, state, spec, x

    model = built_once(make)
    spec = permutation_spec(build(kind, seed=0)[0])  # static: the group's sizes
    group = permutation_group(spec)

    def fn(inp):
        from flax import nnx

        state, x = inp
        return nnx.merge(model()[0], state)(x)

    def act_in(g, inp):
        state, x = inp
        return apply_permutation(spec, g, state), x

    def cast(state, dtype):
        return jax.tree_util.tree_map(
            lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v,
            state,
        )

    def make_input(key, dtype):
        _, state, _, x = model()
        if kind == "transformer":
            xs = jax.random.randint(key, x.shape, 0, VOCAB)
        else:
            xs = jax.random.normal(key, x.shape, dtype)
        return cast(state, dtype), xs

    def degenerate(dtype):
        _, state, _, x = model()
        if kind == "transformer":
            return [(cast(state, dtype), jnp.zeros(x.shape, jnp.int32))]
        return [(cast(state, dtype), jnp.zeros(x.shape, dtype))]

    return Transform(
        name=f"weights.{kind}_hidden_permutations",
        fn=fn,
        group=group,
        act_in=act_in,
        act_out=None,
        make_input=make_input,
        degenerate_inputs=degenerate,
        tol64=1e-12,
        tol32=1e-5,
        notes=f"{kind}: outputs invariant under the hidden-unit permutations of the "
        f"spec derived from the NNX module ({', '.join(f'{n}' for n in spec.sizes.values())} "
        f"units); {notes}degenerate: zero inputs",
        slow=slow,
    )


ROWS: list[Transform] = [
    _model_row("mlp", notes="ReLU/tanh MLP 4-8-6-3; "),
    _model_row(
        "transformer",
        # fast tier: tests/weights/test_spec.py checks the four models' outputs in
        # float64 in one program (this row's vmap/grad program alone is ~6 s)
        slow=True,
        notes="token embedding, RMSNorm, 2-head causal attention (heads permuted "
        "as blocks, query/key and value features within heads), LayerNorm, GELU MLP, "
        "residual stream shared; ",
    ),
    _model_row(
        "cnn", slow=True, notes="two convolutions, average/max pooling, global mean; "
    ),
    _model_row("residual", slow=True, notes="two pre-LayerNorm residual blocks; "),
]
