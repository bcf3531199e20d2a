"""The NNX heads: fixed bases, cosine logits, invariance of the loss to a joint
rotation is the pure function's (tests/weights/test_geometry.py)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq


def test_ebv_and_frame_heads(key):
    # the shapes of test_geometry's EBV check: the generator's program is shared
    # (and its key type: the test's rbg key)
    head = eq.nn.EBVHead(64, 200, temperature=1.0, tol=0.15, rngs=nnx.Rngs(params=key))
    b = np.asarray(head.basis[...])
    assert b.shape == (200, 64)
    c = b @ b.T
    np.fill_diagonal(c, 0)
    assert np.abs(c).max() <= 0.15 + 1e-6
    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 64)), jnp.float32)
    xn = np.asarray(x) / np.linalg.norm(np.asarray(x), axis=-1, keepdims=True)
    np.testing.assert_allclose(head(x), xn @ b.T, rtol=1e-5, atol=1e-6)
    assert not any(
        isinstance(v, nnx.Param) for _, v in nnx.iter_graph(head)
    )  # the basis is not trained
    etf = np.asarray(
        eq.nn.FixedFrameHead(8, 5, kind="etf", rngs=nnx.Rngs(1)).basis[...]
    )
    np.testing.assert_allclose(etf @ etf.T, (5 * np.eye(5) - 1) / 4, atol=1e-5)
    with pytest.raises(ValueError, match="did not converge"):
        eq.nn.EBVHead(64, 200, tol=0.105, max_steps=1, rngs=nnx.Rngs(params=key))
    with pytest.raises(ValueError, match="kind must be one of"):
        eq.nn.FixedFrameHead(8, 5, kind="simplex", rngs=nnx.Rngs(1))
