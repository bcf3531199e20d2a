"""Equivariant encryption of a model's weights and tokens, and an attack on it.

Buban et al., "Encrypted Large Model Inference: The Equivariant Encryption
Paradigm" (arXiv 2502.01013): secret permutations of the vocabulary and of the
hidden dimensions, applied to a model's weights, give a model that maps
permuted tokens to permuted logits exactly. No code was released; this is an
implementation from the definition. The hidden permutations are those of a
:class:`PermutationSpec` (so the encrypted model computes the same function up to
the vocabulary permutation, exactly, through every nonlinearity and norm); the
vocabulary permutation acts on the axes named in ``vocab_axes`` (the token
embedding's rows, the output head's columns).

The weakness, measured honestly (:func:`attack_vocabulary_permutation`): the
vocabulary permutation is a substitution cipher on the token stream, and the
encrypted traffic keeps every statistic of the plain text up to relabelling.
Frequency analysis against public text of the same language gives a first
guess, and hill climbing on the log-likelihood of the decrypted traffic under a
bigram model of public text refines it.

A dense orthogonal mixing of the hidden dimensions in place of a permutation
(:func:`apply_orthogonal`) is exact for a linear network but not through
elementwise nonlinearities or norm scales: that is why the scheme uses
permutations, and the tests keep it as a control.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._spec import (
    PermutationSpec,
    _is_float,
    apply_permutation,
    check_spec,
    path_string,
    random_permutation,
    view_of,
)

VOCAB = "vocab"
"""The permutation name of the vocabulary in an encryption spec."""


class EncryptionKey(NamedTuple):
    """The secret: ``vocab`` ``(V,)`` (token ``t`` is sent as ``vocab[t]``) and
    ``hidden``, one permutation per name of the model's :class:`PermutationSpec`."""

    vocab: Int[Array, " V"]
    hidden: Mapping[str, Int[Array, " n"]]


def encryption_spec(
    spec: PermutationSpec, vocab_axes: Mapping[str, int], vocab_size: int
) -> PermutationSpec:
    """``spec`` with the vocabulary permutation on ``vocab_axes`` (path -> axis).

    Raises:
      ValueError: a vocabulary axis that another permutation already acts on,
        or whose size is not ``vocab_size``.
    """
    axes = {k: tuple(v) for k, v in spec.axes.items()}
    for path, ax in vocab_axes.items():
        if path not in axes:
            raise ValueError(
                f"encryption_spec: vocabulary axis {path!r} is not a parameter of the "
                f"spec ({sorted(axes)})"
            )
        names = list(axes[path])
        if not -len(names) <= ax < len(names):
            raise ValueError(f"encryption_spec: {path!r} has no axis {ax}")
        if names[ax] is not None:
            raise ValueError(
                f"encryption_spec: {path!r} axis {ax} already carries permutation "
                f"{names[ax]!r}"
            )
        names[ax] = VOCAB
        axes[path] = tuple(names)
    if VOCAB in spec.sizes:
        raise ValueError(f"encryption_spec: the spec already names {VOCAB!r}")
    return PermutationSpec(
        axes=axes, sizes={**spec.sizes, VOCAB: int(vocab_size)}, views=spec.views
    )


def generate_key(
    key: jax.Array, spec: PermutationSpec, vocab_size: int
) -> EncryptionKey:
    """Uniform secret permutations of the vocabulary and of every hidden class.

    Example:
      >>> import jax
      >>> from eqjax.weights import spec_from_axes
      >>> spec = spec_from_axes({"w": (None, "h")}, {"w": (3, 4)})
      >>> k = generate_key(jax.random.key(0), spec, 10)
      >>> k.vocab.shape, k.hidden["h"].shape
      ((10,), (4,))
    """
    k1, k2 = jax.random.split(key)
    vocab = jnp.argsort(jax.random.uniform(k1, (int(vocab_size),))).astype(jnp.int32)
    return EncryptionKey(vocab=vocab, hidden=random_permutation(k2, spec))


def encrypt_weights(
    ekey: EncryptionKey, spec: PermutationSpec, state, vocab_axes: Mapping[str, int]
):
    """The encrypted model's parameters: the hidden permutations of ``spec`` and
    the vocabulary permutation on ``vocab_axes`` (e.g. ``{"embed/embedding": 0,
    "head/kernel": 1, "head/bias": 0}``).

    Example:
      >>> import jax.numpy as jnp
      >>> from eqjax.weights import spec_from_axes
      >>> p = {"emb": jnp.arange(6.0).reshape(3, 2)}
      >>> spec = spec_from_axes({"emb": (None, None)}, p)
      >>> k = EncryptionKey(jnp.array([2, 0, 1]), {})
      >>> encrypt_weights(k, spec, p, {"emb": 0})["emb"][:, 0]
      Array([2., 4., 0.], dtype=float32)
    """
    espec = encryption_spec(spec, vocab_axes, ekey.vocab.shape[0])
    return apply_permutation(espec, {**ekey.hidden, VOCAB: ekey.vocab}, state)


def encrypt_tokens(
    ekey: EncryptionKey, tokens: Int[Array, "*shape"]
) -> Int[Array, "*shape"]:
    """Token ``t`` becomes ``vocab[t]``.

    Example:
      >>> import jax.numpy as jnp
      >>> k = EncryptionKey(jnp.array([2, 0, 1]), {})
      >>> decrypt_tokens(k, encrypt_tokens(k, jnp.array([0, 1, 2, 2]))).tolist()
      [0, 1, 2, 2]
    """
    return jnp.take(ekey.vocab, tokens, axis=0)


def decrypt_tokens(
    ekey: EncryptionKey, tokens: Int[Array, "*shape"]
) -> Int[Array, "*shape"]:
    """The inverse of :func:`encrypt_tokens`."""
    return jnp.take(jnp.argsort(ekey.vocab), tokens, axis=0).astype(tokens.dtype)


def decrypt_logits(
    ekey: EncryptionKey, logits: Float[Array, "*batch V"]
) -> Float[Array, "*batch V"]:
    """Plain logits from encrypted ones: ``logits[..., t] = enc[..., vocab[t]]``.

    Example:
      >>> import jax.numpy as jnp
      >>> k = EncryptionKey(jnp.array([2, 0, 1]), {})
      >>> decrypt_logits(k, jnp.array([10.0, 11.0, 12.0]))
      Array([12., 10., 11.], dtype=float32)
    """
    if logits.shape[-1] != ekey.vocab.shape[0]:
        raise ValueError(
            f"decrypt_logits: logits end in {logits.shape[-1]} entries, the key's "
            f"vocabulary has {ekey.vocab.shape[0]}"
        )
    return jnp.take(logits, ekey.vocab, axis=-1)


def apply_orthogonal(
    spec: PermutationSpec, mats: Mapping[str, Float[Array, "n n"]], state
):
    """Act with orthogonal matrices in place of permutations: on every axis of
    permutation ``name``, ``w ← Q w`` along that axis (``Q⁻ᵀ = Q``, so inputs and
    outputs of a layer transform alike). Exact for linear maps; not through
    elementwise nonlinearities or norm scales (the control of equivariant
    encryption). Permutations not in ``mats`` are left alone.

    Example:
      >>> import jax.numpy as jnp
      >>> from eqjax.weights import spec_from_axes
      >>> p = {"w1": jnp.ones((2, 3)), "w2": jnp.ones((3, 1))}
      >>> spec = spec_from_axes({"w1": (None, "h"), "w2": ("h", None)}, p)
      >>> Q = jnp.eye(3)[::-1]
      >>> q = apply_orthogonal(spec, {"h": Q}, p)
      >>> bool(jnp.allclose(q["w1"] @ q["w2"], p["w1"] @ p["w2"]))
      True
    """
    check_spec(spec, state, where="apply_orthogonal")
    for name, q in mats.items():
        n = spec.sizes.get(name)
        if n is None or q.shape != (n, n):
            raise ValueError(
                f"apply_orthogonal: {name!r} needs a ({n}, {n}) matrix, got {q.shape}"
            )

    def one(path, v):
        if not _is_float(v):
            return v
        key = path_string(path)
        w = view_of(spec, key, v)
        for ax, name in enumerate(spec.axes[key]):
            if name is not None and name in mats:
                w = jnp.moveaxis(
                    jnp.tensordot(mats[name].astype(v.dtype), w, axes=(1, ax)), 0, ax
                )
        return w.reshape(v.shape)

    return jax.tree_util.tree_map_with_path(one, state)


def _bigram_log_probs(
    tokens: np.ndarray, vocab_size: int, smoothing: float
) -> np.ndarray:
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (tokens[:-1], tokens[1:]), 1.0)
    counts += smoothing
    return np.log(counts / counts.sum(axis=1, keepdims=True))


def attack_vocabulary_permutation(
    encrypted: Int[Array, " n"] | np.ndarray,
    public: Int[Array, " m"] | np.ndarray,
    vocab_size: int,
    *,
    seed: int = 0,
    iterations: int = 20000,
    restarts: int = 2,
    smoothing: float = 0.1,
) -> np.ndarray:
    """Recover the vocabulary permutation from encrypted traffic alone.

    1. Frequency analysis: the k-th most frequent encrypted token is guessed to
       be the k-th most frequent token of the public text.
    2. Hill climbing: swaps of two guesses are kept when they raise the
       log-likelihood of the decrypted traffic under a bigram model of the
       public text (add-``smoothing`` counts); the change of a swap is computed
       from the encrypted bigram counts in ``O(V)``. Each restart starts from
       the frequency guess with a few random swaps; the best result is kept.

    Args:
      encrypted: the observed encrypted token stream (host NumPy or JAX).
      public: a token stream of public text in the same language.
      vocab_size: ``V``.
      seed: NumPy seed of the swaps.
      iterations: proposed swaps per restart.
      restarts: independent climbs.
      smoothing: the bigram model's additive smoothing.

    Returns:
      ``guess`` ``(V,)``: ``guess[c]`` is the plain token believed to be sent as
      ``c`` (compare with ``argsort(key.vocab)``).

    Example:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> chain = rng.dirichlet(np.full(6, 0.2), size=6)
      >>> def stream(n, s):
      ...     r, t, out = np.random.default_rng(s), 0, []
      ...     for _ in range(n):
      ...         t = r.choice(6, p=chain[t]); out.append(t)
      ...     return np.array(out)
      >>> key = np.array([3, 5, 0, 1, 4, 2])
      >>> guess = attack_vocabulary_permutation(key[stream(3000, 1)], stream(3000, 2), 6)
      >>> float(np.mean(guess[key] == np.arange(6))) >= 0.5
      True
    """
    enc = np.asarray(encrypted).astype(np.int64).ravel()
    pub = np.asarray(public).astype(np.int64).ravel()
    v = int(vocab_size)
    for name, t in (("encrypted", enc), ("public", pub)):
        if t.size < 2 or t.min() < 0 or t.max() >= v:
            raise ValueError(
                f"attack_vocabulary_permutation: {name} tokens must be at least 2 "
                f"tokens in 0..{v - 1}"
            )
    logb = _bigram_log_probs(pub, v, smoothing)
    c = np.zeros((v, v))
    np.add.at(c, (enc[:-1], enc[1:]), 1.0)
    f_enc = np.bincount(enc, minlength=v)
    f_pub = np.bincount(pub, minlength=v)
    start = np.empty(v, np.int64)
    start[np.argsort(-f_enc, kind="stable")] = np.argsort(-f_pub, kind="stable")

    def score(g):
        return float(np.sum(c * logb[np.ix_(g, g)]))

    rng = np.random.default_rng(seed)
    best, best_score = start.copy(), score(start)
    for r in range(max(int(restarts), 1)):
        g = start.copy()
        if r > 0:
            for _ in range(max(v // 8, 1)):
                i, j = rng.integers(0, v, 2)
                g[[i, j]] = g[[j, i]]
        cur = score(g)
        for _ in range(int(iterations)):
            i, j = rng.integers(0, v, 2)
            if i == j:
                continue
            gi, gj = g[i], g[j]
            # change of Σ_ab c[a, b] logb[g[a], g[b]] when g[i] and g[j] swap:
            # rows i, j and columns i, j of c are the only terms that move
            new = g.copy()
            new[i], new[j] = gj, gi
            old_part = (
                np.dot(c[i], logb[gi, g])
                + np.dot(c[j], logb[gj, g])
                + np.dot(c[:, i], logb[g, gi])
                + np.dot(c[:, j], logb[g, gj])
            )
            new_part = (
                np.dot(c[i], logb[gj, new])
                + np.dot(c[j], logb[gi, new])
                + np.dot(c[:, i], logb[new, gj])
                + np.dot(c[:, j], logb[new, gi])
            )
            # entries counted twice (rows and columns i, j meet): correct them
            idx = np.array([i, j])
            old_x = np.sum(c[np.ix_(idx, idx)] * logb[np.ix_(g[idx], g[idx])])
            new_x = np.sum(c[np.ix_(idx, idx)] * logb[np.ix_(new[idx], new[idx])])
            delta = (new_part - new_x) - (old_part - old_x)
            if delta > 0:
                g, cur = new, cur + delta
        if cur > best_score:
            best, best_score = g.copy(), cur
    return best


def key_recovery(
    guess: np.ndarray, ekey: EncryptionKey, tokens=None
) -> dict[str, float]:
    """How much of the key an attack recovered: the fraction of the vocabulary
    decrypted correctly, and (given the plain ``tokens`` of some traffic) the
    fraction of that traffic's tokens.

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> k = EncryptionKey(jnp.array([2, 0, 1]), {})
      >>> key_recovery(np.array([1, 2, 0]), k)
      {'vocabulary': 1.0}
    """
    true = np.argsort(np.asarray(ekey.vocab))  # cipher token -> plain token
    out = {"vocabulary": float(np.mean(np.asarray(guess) == true))}
    if tokens is not None:
        t = np.asarray(tokens).ravel()
        out["traffic"] = float(
            np.mean(np.asarray(guess)[np.asarray(ekey.vocab)[t]] == t)
        )
    return out
