"""Equivariant encryption of a tiny transformer, and how fast it is broken.

Buban et al., "Encrypted Large Model Inference: The Equivariant Encryption
Paradigm" (arXiv 2502.01013): secret permutations of the vocabulary and of the
hidden dimensions, applied to the weights, give a model that maps permuted
tokens to permuted logits exactly, at no extra inference cost. No code was
released: ``eq.weights`` implements it from the definition.

Part 1: a character-level transformer (one block: embedding, RMSNorm, 4-head
causal attention, LayerNorm, GELU MLP; random weights, vocabulary = the
characters of the public text) runs on plain and on encrypted tokens; the table
gives the largest difference of the decrypted logits (float32) and the time of a
forward pass, of the encrypt/decrypt steps and of encrypting the weights.

Part 2: the attack. The vocabulary permutation is a substitution cipher on the
token stream: frequency analysis against public English text (the GPL-3 text in
``/usr/share/common-licenses``, else Python's own module docstrings) plus
hill climbing on a bigram model of it recovers the key from encrypted traffic
(the Apache-2.0 license text, else other docstrings); the table gives the
fraction of the vocabulary and of the traffic decrypted correctly against the
amount of traffic seen.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import eqjax as eq

from ._common import time_call, write_table

DESCRIPTION = "equivariant encryption: exact decrypted logits, overhead, and the key-recovery attack vs traffic"
NAME = "equivariant_encryption"
PAPER = (
    "paper (Buban et al., arXiv 2502.01013): exact outputs (decrypted logits equal "
    "the plain model's), no inference overhead; security is claimed from the "
    "size of the permutation group (V! keys), without a statistical attack"
)
LICENSES = Path("/usr/share/common-licenses")


def texts() -> tuple[str, str, str]:
    """``(public, private, source)``: two English texts."""
    pub, priv = LICENSES / "GPL-3", LICENSES / "Apache-2.0"
    if pub.exists() and priv.exists():
        return (
            pub.read_text(),
            priv.read_text(),
            "GPL-3 (public) / Apache-2.0 (traffic)",
        )
    import importlib
    import pkgutil

    docs = []
    for m in sorted(pkgutil.iter_modules(), key=lambda m: m.name):
        if m.name.startswith("_") or not m.ispkg and len(docs) > 400:
            continue
        try:
            d = importlib.import_module(m.name).__doc__
        except Exception:  # noqa: BLE001 - any module that fails to import
            continue
        if d:
            docs.append(d)
        if len(docs) > 200:
            break
    half = len(docs) // 2
    return "\n".join(docs[:half]), "\n".join(docs[half:]), "Python module docstrings"


@functools.cache
def _transformer_class():
    from flax import nnx

    class CharTransformer(nnx.Module):
        def __init__(self, vocab: int, d: int, heads: int, *, rngs: nnx.Rngs):
            self.embed = nnx.Embed(vocab, d, rngs=rngs)
            self.norm1 = nnx.RMSNorm(d, rngs=rngs)
            self.attn = nnx.MultiHeadAttention(
                num_heads=heads, in_features=d, decode=False, rngs=rngs
            )
            self.norm2 = nnx.LayerNorm(d, rngs=rngs)
            self.up = nnx.Linear(d, 4 * d, rngs=rngs)
            self.down = nnx.Linear(4 * d, d, rngs=rngs)
            self.head = nnx.Linear(d, vocab, rngs=rngs)

        def __call__(self, tokens):
            h = self.embed(tokens)
            n = tokens.shape[-1]
            h = h + self.attn(self.norm1(h), mask=jnp.tril(jnp.ones((n, n), bool)))
            h = h + self.down(jax.nn.gelu(self.up(self.norm2(h))))
            return self.head(h)

    return CharTransformer


def exactness(vocab, public_ids, args):
    from flax import nnx

    W = eq.weights
    model = _transformer_class()(vocab, args.dim, 4, rngs=nnx.Rngs(0))
    t0 = time.perf_counter()
    spec = W.permutation_spec(model)
    t_spec = time.perf_counter() - t0
    graph, state = nnx.split(model)
    axes = {"embed/embedding": 0, "head/kernel": 1, "head/bias": 0}
    ekey = W.generate_key(jax.random.key(1), spec, vocab)
    t0 = time.perf_counter()
    enc_state = jax.block_until_ready(W.encrypt_weights(ekey, spec, state, axes))
    t_weights = time.perf_counter() - t0
    L = args.seq
    n = (len(public_ids) // L) * L
    tokens = jnp.asarray(public_ids[: min(n, args.batch * L)].reshape(-1, L), jnp.int32)
    fwd = jax.jit(lambda s, t: nnx.merge(graph, s)(t))
    enc_tok = jax.jit(lambda t: W.encrypt_tokens(ekey, t))
    dec_log = jax.jit(lambda y: W.decrypt_logits(ekey, y))
    plain = fwd(state, tokens)
    decrypted = dec_log(fwd(enc_state, enc_tok(tokens)))
    err = float(jnp.max(jnp.abs(decrypted - plain)))
    rel = err / float(jnp.max(jnp.abs(plain)))
    roundtrip = bool(jnp.all(W.decrypt_tokens(ekey, enc_tok(tokens)) == tokens))
    t_plain = time_call(fwd, state, tokens)
    t_enc = time_call(fwd, enc_state, enc_tok(tokens))
    t_tok = time_call(enc_tok, tokens) + time_call(dec_log, plain)
    header = [
        "V",
        "d",
        "tokens",
        "max |decrypted - plain|",
        "relative",
        "round trip",
        "plain fwd ms",
        "encrypted fwd ms",
        "encrypt+decrypt ms",
        "encrypt weights ms",
        "spec (trace) ms",
    ]
    row = [
        vocab,
        args.dim,
        int(tokens.size),
        err,
        rel,
        roundtrip,
        1e3 * t_plain,
        1e3 * t_enc,
        1e3 * t_tok,
        1e3 * t_weights,
        1e3 * t_spec,
    ]
    return header, [row], err


def attack(vocab, public_ids, private_ids, args):
    W = eq.weights
    rows = []
    for i, n in enumerate(args.traffic):
        if n > len(private_ids):
            continue
        ekey = W.EncryptionKey(
            jnp.asarray(np.random.default_rng(100 + i).permutation(vocab), jnp.int32),
            {},
        )
        start = (i * 997) % max(len(private_ids) - n, 1)
        plain = private_ids[start : start + n]
        traffic = np.asarray(ekey.vocab)[plain]
        t0 = time.perf_counter()
        freq = W.attack_vocabulary_permutation(traffic, public_ids, vocab, iterations=0)
        hill = W.attack_vocabulary_permutation(
            traffic,
            public_ids,
            vocab,
            iterations=args.iterations,
            restarts=args.restarts,
        )
        dt = time.perf_counter() - t0
        rf, rh = W.key_recovery(freq, ekey, plain), W.key_recovery(hill, ekey, plain)
        seen = int(len(np.unique(plain)))
        rows.append(
            [
                n,
                seen,
                rf["vocabulary"],
                rf["traffic"],
                rh["vocabulary"],
                rh["traffic"],
                dt,
            ]
        )
    header = [
        "traffic tokens",
        "distinct tokens seen",
        "freq: vocab recovered",
        "freq: traffic decrypted",
        "freq+hill: vocab recovered",
        "freq+hill: traffic decrypted",
        "attack s",
    ]
    return header, rows


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog=f"python -m experiments {NAME}", description=__doc__
    )
    p.add_argument("--quick", action="store_true")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--data-dir", default="../shared/data", help="unused")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument(
        "--traffic", type=int, nargs="+", default=[30, 100, 300, 1000, 3000, 10000]
    )
    p.add_argument("--iterations", type=int, default=30000)
    p.add_argument("--restarts", type=int, default=3)
    args = p.parse_args(argv)
    if args.quick:
        args.dim, args.seq, args.batch = 32, 16, 4
        args.traffic, args.iterations, args.restarts = [100, 3000], 8000, 1
    out = Path(args.results_dir) if args.results_dir else None
    t0 = time.perf_counter()
    public, private, source = texts()
    alphabet = sorted(set(public))
    index = {c: i for i, c in enumerate(alphabet)}
    vocab = len(alphabet)
    public_ids = np.array([index[c] for c in public], np.int64)
    private_ids = np.array([index[c] for c in private if c in index], np.int64)
    h1, r1, err = exactness(vocab, public_ids, args)
    h2, r2 = attack(vocab, public_ids, private_ids, args)
    elapsed = time.perf_counter() - t0
    stem = "quick" if args.quick else "results"
    md1 = write_table(
        NAME,
        stem + "_exact",
        h1,
        r1,
        f"{PAPER}.\n\nRandom-weight character transformer, float32, {jax.devices()[0].platform} "
        f"(median of timed calls). CPU, {elapsed:.0f} s wall for the whole experiment.",
        out,
    )
    md2 = write_table(
        NAME,
        stem + "_attack",
        h2,
        r2,
        f"Texts: {source}; V = {vocab} characters. Hill climbing: {args.iterations} "
        f"proposed swaps x {args.restarts} restarts on a bigram model of the public text.",
        out,
    )
    print(md1)
    print(md2)
    return 0 if err < 1e-5 else 1
