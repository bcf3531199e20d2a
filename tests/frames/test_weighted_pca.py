"""PCA frames with per-point weights (``weights=``, added for APEN's soft parts)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq


def test_weighted_pca_frame_matches_mask_and_weighted_covariance(key):
    frame = eq.frames.plain_pca_frame(eq.groups.E3)
    x = jax.random.normal(key, (10, 3)) * jnp.array([[3.0, 2.0, 1.0]])
    mask = jnp.arange(10) < 6
    w = jax.random.uniform(jax.random.fold_in(key, 1), (10,)) + 0.1

    @jax.jit
    def program(x, w):
        by_mask = frame(x, mask)
        by_weights = frame(x, weights=mask.astype(x.dtype))
        weighted = frame(x, weights=w)
        safe = eq.frames.pca_frame(eq.groups.E3)(x, weights=w)
        return by_mask, by_weights, weighted, safe

    with jax.enable_x64(True):
        x64, w64 = x.astype(jnp.float64), w.astype(jnp.float64)
        by_mask, by_weights, weighted, safe = program(x64, w64)
    np.testing.assert_allclose(by_weights.elements.R, by_mask.elements.R, atol=1e-12)
    np.testing.assert_allclose(by_weights.elements.t, by_mask.elements.t, atol=1e-12)
    # weighted centroid and the eigenvectors of the weighted covariance
    xn, wn = np.asarray(x64), np.asarray(w64)
    c = (wn[:, None] * xn).sum(0) / wn.sum()
    cov = ((xn - c).T * wn) @ (xn - c) / wn.sum()
    V = np.linalg.eigh(cov)[1][:, ::-1]
    np.testing.assert_allclose(weighted.elements.t[0], c, atol=1e-12)
    R0 = np.asarray(weighted.elements.R[0])
    np.testing.assert_allclose(np.abs(R0.T @ V), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(safe.elements.t[0], c, atol=1e-12)
    with pytest.raises(ValueError, match=">= 0"):
        frame(x, weights=-w)
    with pytest.raises(ValueError, match="do not match"):
        frame(x, weights=w[:4])
    with pytest.raises(TypeError, match="floating"):
        frame(x, weights=jnp.ones(10, jnp.int32))
