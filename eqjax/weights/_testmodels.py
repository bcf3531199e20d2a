"""Small Flax NNX models whose permutation specs the registry rows and the tests
check: an MLP, a CNN (convolutions, average and max pooling, a global mean), a
CNN whose feature map is flattened into dense layers, a residual MLP with LayerNorm (one permutation shared by the skip connections) and
a one-block transformer (token embedding, RMSNorm, multi-head attention, LayerNorm,
an MLP; residual stream). Flax is imported only when a model is built."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

VOCAB = 11
SEQ = 5


def build(kind: str, seed: int = 0, dtype: Any = jnp.float32):
    """``(module, example_input)`` for ``kind`` in ``"mlp" | "cnn" |
    "cnn_flatten" | "residual" | "transformer"``; parameters in ``dtype`` (call under ``jax.enable_x64`` for
    float64), biases and norm scales made generic (non-zero, not one)."""

    return _generic(_abstract(kind, jnp.dtype(dtype)), seed)


def _generic(built, seed: int):
    """Fill an abstract module with Gaussian parameters drawn in NumPy (eager
    NNX initialisation compiles one small program per parameter shape); zero biases and unit scales would hide a wrong permutation of them."""
    from flax import nnx

    m, x = built
    graphdef, state = nnx.split(m)
    leaves, treedef = jax.tree_util.tree_flatten(state)
    shapes = tuple((tuple(v.shape), jnp.dtype(v.dtype)) for v in leaves)

    rng = np.random.default_rng(seed)
    new = [
        jnp.asarray(rng.standard_normal(sh) / (sh[0] ** 0.5 if len(sh) > 1 else 1), dt)
        if jnp.issubdtype(dt, jnp.floating)
        else jnp.zeros(sh, dt)
        for sh, dt in shapes
    ]
    return nnx.merge(graphdef, jax.tree_util.tree_unflatten(treedef, new)), x


def _abstract(kind: str, dtype: Any):
    from flax import nnx

    return nnx.eval_shape(lambda: _concrete(kind, dtype))[0], _example(kind, dtype)


def _example(kind, dtype):
    return {
        "mlp": jnp.zeros((2, 4), dtype),
        "cnn": jnp.zeros((2, 8, 8, 2), dtype),
        "cnn_flatten": jnp.zeros((2, 8, 8, 2), dtype),
        "residual": jnp.zeros((2, 4), dtype),
        "transformer": jnp.zeros((2, SEQ), jnp.int32),
    }[kind]


def _concrete(kind: str, dtype: Any):
    from flax import nnx

    rngs = nnx.Rngs(0)
    # computations follow the parameters and inputs (dtype=None)
    kw: dict[str, Any] = {"param_dtype": dtype, "dtype": None, "rngs": rngs}
    if kind == "mlp":
        m = nnx.Sequential(
            nnx.Linear(4, 8, **kw),
            nnx.relu,
            nnx.Linear(8, 6, **kw),
            nnx.tanh,
            nnx.Linear(6, 3, **kw),
        )
    elif kind == "cnn":
        m = nnx.Sequential(
            nnx.Conv(2, 4, (3, 3), **kw),
            nnx.relu,
            lambda h: nnx.avg_pool(h, (2, 2), (2, 2)),
            nnx.Conv(4, 6, (3, 3), **kw),
            nnx.relu,
            lambda h: nnx.max_pool(h, (2, 2), (2, 2)),
            lambda h: h.mean(axis=(1, 2)),
            nnx.Linear(6, 3, **kw),
        )
    elif kind == "cnn_flatten":  # conv -> pool -> flatten (H, W, C) -> dense
        m = nnx.Sequential(
            nnx.Conv(2, 4, (3, 3), **kw),
            nnx.relu,
            lambda h: nnx.avg_pool(h, (2, 2), (2, 2)),
            nnx.Conv(4, 6, (3, 3), **kw),
            nnx.relu,
            lambda h: nnx.max_pool(h, (2, 2), (2, 2)),
            lambda h: h.reshape(h.shape[0], -1),
            nnx.Linear(2 * 2 * 6, 5, **kw),
            nnx.relu,
            nnx.Linear(5, 3, **kw),
        )
    elif kind == "residual":
        m = _Residual(kw)
    elif kind == "transformer":
        m = _Transformer(kw)
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return m, None


@functools.cache
def _module_classes():
    from flax import nnx

    class Residual(nnx.Module):
        def __init__(self, kw):
            rngs = kw["rngs"]
            kw = {k: v for k, v in kw.items() if k != "rngs"}
            self.inp = nnx.Linear(4, 8, **kw, rngs=rngs)
            self.norms = nnx.List([nnx.LayerNorm(8, **kw, rngs=rngs) for _ in range(2)])
            self.up = nnx.List([nnx.Linear(8, 5, **kw, rngs=rngs) for _ in range(2)])
            self.down = nnx.List([nnx.Linear(5, 8, **kw, rngs=rngs) for _ in range(2)])
            self.out = nnx.Linear(8, 3, **kw, rngs=rngs)

        def __call__(self, x):
            h = self.inp(x)
            for norm, up, down in zip(self.norms, self.up, self.down, strict=True):
                h = h + down(jax.nn.relu(up(norm(h))))
            return self.out(h)

    class Transformer(nnx.Module):
        def __init__(self, kw):
            rngs = kw["rngs"]
            kw = {k: v for k, v in kw.items() if k != "rngs"}
            self.embed = nnx.Embed(VOCAB, 8, param_dtype=kw["param_dtype"], rngs=rngs)
            self.norm1 = nnx.RMSNorm(8, **kw, rngs=rngs)
            self.attn = nnx.MultiHeadAttention(
                num_heads=2,
                in_features=8,
                qkv_features=6,
                decode=False,
                **kw,
                rngs=rngs,
            )
            self.norm2 = nnx.LayerNorm(8, **kw, rngs=rngs)
            self.up = nnx.Linear(8, 12, **kw, rngs=rngs)
            self.down = nnx.Linear(12, 8, **kw, rngs=rngs)
            self.head = nnx.Linear(8, VOCAB, **kw, rngs=rngs)

        def __call__(self, tokens):
            h = self.embed(tokens)
            n = tokens.shape[-1]
            causal = jnp.tril(jnp.ones((n, n), bool))
            h = h + self.attn(self.norm1(h), mask=causal)
            h = h + self.down(jax.nn.gelu(self.up(self.norm2(h))))
            return self.head(h)

    return Residual, Transformer


def _Residual(kw):
    return _module_classes()[0](kw)


def _Transformer(kw):
    return _module_classes()[1](kw)
