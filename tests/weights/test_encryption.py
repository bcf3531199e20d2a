"""Equivariant encryption of a tiny transformer: exact decrypted logits, token
round trips, the dense-rotation control, and the key-recovery attack."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq
from eqjax.weights._testmodels import SEQ, VOCAB, build

W = eq.weights
VOCAB_AXES = {"embed/embedding": 0, "head/kernel": 1, "head/bias": 0}


@pytest.fixture(scope="module")
def model():
    m, _ = build("transformer", seed=9)
    return m, W.permutation_spec(m)


def test_encrypted_transformer_gives_the_plain_logits(model, key):
    m, spec = model
    graph, state = nnx.split(m)
    ekey = W.generate_key(key, spec, VOCAB)
    enc_state = W.encrypt_weights(ekey, spec, state, VOCAB_AXES)
    tokens = jnp.asarray(
        np.random.default_rng(0).integers(0, VOCAB, (3, SEQ)), jnp.int32
    )

    @jax.jit
    def run(state, enc_state, tokens):
        f = lambda s, t: nnx.merge(graph, s)(t)
        enc_tokens = W.encrypt_tokens(ekey, tokens)
        plain = f(state, tokens)
        # the control: a dense orthogonal mixing of the residual stream instead
        # of a permutation (through RMSNorm/LayerNorm scales and the GELU)
        stream = spec.axes["embed/embedding"][1]
        orth = {stream: eq.groups.On(spec.sizes[stream]).sample(key, ())}
        rotated = W.apply_orthogonal(spec, orth, state)
        return {
            "plain": plain,
            "decrypted": W.decrypt_logits(ekey, f(enc_state, enc_tokens)),
            "encrypted": f(enc_state, enc_tokens),
            "roundtrip": W.decrypt_tokens(ekey, enc_tokens),
            "enc_tokens": enc_tokens,
            "rotated": f(rotated, tokens),
        }

    r = run(state, enc_state, tokens)
    np.testing.assert_array_equal(r["roundtrip"], tokens)
    assert not np.array_equal(r["enc_tokens"], tokens)
    np.testing.assert_allclose(r["decrypted"], r["plain"], atol=1e-5, rtol=0)
    assert (
        float(jnp.max(jnp.abs(r["encrypted"] - r["plain"]))) > 0.1
    )  # really encrypted
    # the dense rotation breaks through the norms and the GELU
    assert float(jnp.max(jnp.abs(r["rotated"] - r["plain"]))) > 1e-2
    # the weights themselves moved
    assert W.l2_distance(enc_state, state) > 1.0


def test_dense_rotation_is_exact_for_a_linear_network(key):
    """The control's other half: with no nonlinearity, the same orthogonal
    mixing is a symmetry, so the failure above is the nonlinearity's."""

    @jax.jit
    def run(key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        p = {"w1": jax.random.normal(k1, (3, 5)), "w2": jax.random.normal(k2, (5, 2))}
        spec = W.spec_from_axes({"w1": (None, "h"), "w2": ("h", None)}, p)
        q = jnp.linalg.qr(jax.random.normal(k3, (5, 5)))[0]
        r = W.apply_orthogonal(spec, {"h": q}, p)
        x = jax.random.normal(k4, (4, 3))
        relu = lambda s: jax.nn.relu(x @ s["w1"]) @ s["w2"]
        return (
            jnp.max(jnp.abs(x @ r["w1"] @ r["w2"] - x @ p["w1"] @ p["w2"])),
            jnp.max(jnp.abs(relu(r) - relu(p))),
        )

    with jax.enable_x64(True):
        linear, nonlinear = run(key)
    assert float(linear) < 1e-12 and float(nonlinear) > 1e-2


def _markov_stream(chain, n, seed):
    rng = np.random.default_rng(seed)
    cum = np.cumsum(chain, axis=1)
    u = rng.random(n)
    out, t = np.empty(n, np.int64), 0
    for i in range(n):
        t = min(int(np.searchsorted(cum[t], u[i])), chain.shape[0] - 1)
        out[i] = t
    return out


def test_attack_recovers_the_vocabulary_key_from_traffic():
    """A 16-token language with a sparse bigram structure: frequency analysis
    alone gets part of the key; hill climbing on the public bigram model gets
    all of it from 2000 tokens of traffic; 10 tokens are not enough."""
    rng = np.random.default_rng(3)
    chain = rng.dirichlet(np.full(16, 0.15), size=16)
    public = _markov_stream(chain, 20000, 1)
    private = _markov_stream(chain, 2000, 2)
    ekey = W.EncryptionKey(jnp.asarray(rng.permutation(16), jnp.int32), {})
    traffic = np.asarray(ekey.vocab)[private]
    freq_only = W.attack_vocabulary_permutation(traffic, public, 16, iterations=0)
    full = W.attack_vocabulary_permutation(traffic, public, 16, iterations=4000)
    r_freq = W.key_recovery(freq_only, ekey, private)
    r_full = W.key_recovery(full, ekey, private)
    assert r_full["vocabulary"] == 1.0 and r_full["traffic"] == 1.0
    assert r_freq["vocabulary"] < 1.0
    tiny = W.attack_vocabulary_permutation(traffic[:10], public, 16, iterations=4000)
    assert W.key_recovery(tiny, ekey)["vocabulary"] < 1.0
    with pytest.raises(ValueError, match="tokens in 0..15"):
        W.attack_vocabulary_permutation(traffic + 16, public, 16)


def test_bad_vocabulary_axes_fail_loudly(model, key):
    m, spec = model
    ekey = W.generate_key(key, spec, VOCAB)
    state = nnx.state(m)
    with pytest.raises(ValueError, match="already carries permutation"):
        W.encrypt_weights(ekey, spec, state, {"head/kernel": 0})
    with pytest.raises(ValueError, match="not a parameter"):
        W.encrypt_weights(ekey, spec, state, {"nope": 0})
    p = {"emb": jnp.zeros((VOCAB, 3)), "w": jnp.zeros((3, 4))}
    hand = W.spec_from_axes({"emb": (None, None), "w": (None, None)}, p)
    with pytest.raises(
        ValueError, match="'w' axis 0 has size 3 but permutation 'vocab'"
    ):
        W.encrypt_weights(ekey._replace(hidden={}), hand, p, {"emb": 0, "w": 0})
    with pytest.raises(ValueError, match="vocabulary has 11"):
        W.decrypt_logits(ekey, jnp.zeros((2, 7)))
