"""Registry rows for eqjax.weights: hidden-unit permutations of NNX models (specs
derived by :func:`permutation_spec`) leave the outputs unchanged; the EBV loss is
invariant to a joint O(d) transform of features and basis and its logits
equivariant to class relabelling; the neural-collapse metrics are invariant to a
joint O(d) transform of features and classifier."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..groups import On, Sn, act_set
from ..testing import Transform, built_once
from ._collapse import class_means, nc1, nc2_etf, nc2_of, nc3_etf
from ._ebv import ebv_logits, ebv_loss
from ._encryption import VOCAB as _VOCAB_NAME
from ._encryption import encryption_spec
from ._spec import apply_permutation, permutation_group, permutation_spec
from ._testmodels import VOCAB, build

_SIZES = {
    "mlp": (8, 6),
    "cnn": (4, 6),
    "cnn_flatten": (4, 6, 5),
    "residual": (8, 5, 5),
    "transformer": None,
}


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


def _encryption_row() -> Transform:
    """Equivariant encryption (Buban et al.) as a symmetry: the vocabulary
    permutation on the token ids, the embedding rows and the head's columns,
    with every hidden permutation of the derived spec, permutes the logits'
    vocabulary axis and nothing else."""

    def make():
        from flax import nnx

        m, x = build("transformer", seed=0)
        graphdef, state = nnx.split(m)
        return graphdef, state, x

    model = built_once(make)
    espec = encryption_spec(
        permutation_spec(build("transformer", seed=0)[0]),
        {"embed/embedding": 0, "head/kernel": 1, "head/bias": 0},
        VOCAB,
    )
    group = permutation_group(espec)

    def fn(inp):
        from flax import nnx

        state, tokens = inp
        return nnx.merge(model()[0], state)(tokens)

    def act_in(g, inp):
        state, tokens = inp
        return apply_permutation(espec, g, state), jnp.take(g[_VOCAB_NAME], tokens)

    def make_input(key, dtype):
        _, state, x = model()
        state = jax.tree_util.tree_map(
            lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v,
            state,
        )
        return state, jax.random.randint(key, x.shape, 0, VOCAB)

    return Transform(
        name="weights.transformer_encryption",
        fn=fn,
        group=group,
        act_in=act_in,
        act_out=lambda g, y: act_set(g[_VOCAB_NAME], y, axis=-1),
        make_input=make_input,
        tol64=1e-12,
        tol32=1e-5,
        notes="equivariant encryption: the vocabulary permutation (token ids, "
        "embedding rows, head columns) with the hidden permutations of the derived "
        "spec; logits permuted along the vocabulary axis",
        # fast tier: tests/weights/test_encryption.py (decrypted logits < 1e-5)
        slow=True,
    )


_N, _K, _D = 12, 5, 6  # samples, classes, feature dimension
_LABELS = jnp.arange(_N, dtype=jnp.int32) % _K


def _rotate(R, x):
    """``O(d)`` acting on the last axis of every floating array (features,
    classifier rows, basis vectors); labels stay."""
    return tuple(v @ R.T if jnp.issubdtype(v.dtype, jnp.floating) else v for v in x)


def _features(key, dtype):
    k1, k2 = jax.random.split(key)
    h = jax.random.normal(k1, (_N, _D), dtype)
    w = jax.random.normal(k2, (_K, _D), dtype)
    return h, w, _LABELS


def _geometry_rows() -> list[Transform]:
    def loss(x):
        h, basis, labels = x
        return ebv_loss(h, labels, basis, 0.5)

    def joint(x):
        h, w, labels = x
        means, g = class_means(h, labels, _K)
        nc = jnp.stack(
            [nc1(h, labels, _K), nc2_etf(w), nc2_of(w), nc3_etf(w, means, g)]
        )
        return loss(x), nc

    def logits(x):
        h, basis, _ = x
        return ebv_logits(h, basis, 0.5), loss(x)

    def relabel(p, x):
        h, basis, labels = x
        return h, act_set(p, basis), p[labels]

    def degenerate(dtype):
        h, w, labels = _features(jax.random.key(0), dtype)
        return [(jnp.zeros_like(h), w, labels)]

    shapes = f"{_N} features in R^{_D}, {_K} classes, a {_K}x{_D} basis/classifier"
    return [
        Transform(
            name="weights.ebv_and_collapse_joint_rotation",
            fn=joint,
            group=On(_D),
            act_in=_rotate,
            act_out=None,
            make_input=_features,
            # fast tier: tests/weights/test_geometry.py rotates every metric once
            # inside its one compiled program (this row's vmap/grad of the
            # pseudo-inverse alone costs ~3 s)
            slow=True,
            notes=f"EBV cross-entropy (temperature 0.5) and NC1, NC2 (ETF, "
            f"orthogonal frame), NC3 of {shapes}; one orthogonal map (reflections "
            "included) on features and basis rows",
        ),
        Transform(
            name="weights.ebv_class_relabelling",
            fn=logits,
            group=Sn(_K),
            act_in=relabel,
            act_out=lambda p, y: (act_set(p, y[0], axis=-1), y[1]),
            make_input=_features,
            degenerate_inputs=degenerate,
            # fast tier: tests/weights/test_geometry.py relabels once in its program
            slow=True,
            notes=f"{shapes}: relabelling the classes permutes the basis rows and "
            "the labels; the logits' class axis follows, the loss stays; "
            "degenerate: zero features (logits 0)",
        ),
    ]


ROWS: list[Transform] = [
    *_geometry_rows(),
    _encryption_row(),
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
    _model_row(
        "cnn_flatten",
        # fast tier: tests/weights/test_spec.py (float64 outputs, one program)
        slow=True,
        notes="two convolutions, average/max pooling, the (2, 2, 6) feature map "
        "flattened into a dense layer (its kernel seen as (pixels, channels, out)); ",
    ),
    _model_row("residual", slow=True, notes="two pre-LayerNorm residual blocks; "),
]
