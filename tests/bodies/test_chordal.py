"""Weighted chordal means (ArtEq): SO(3) membership to 1e-12, left-equivariance,
idempotency, the derivative against finite differences, bad input. Gradients at
equal anchors and one-hot weights are the (slow-tier) registry row's
(``bodies.chordal_mean_left_SO3``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

B = eq.bodies


def test_chordal_mean_in_so3_idempotent_and_derivative(key):
    @jax.jit
    def program(key):
        k1, k2, k3 = jax.random.split(key, 3)
        R = eq.groups.SO3.sample(k1, (16, 5))
        w = jax.nn.softmax(jax.random.normal(k2, (16, 5)))
        M = B.chordal_mean(R, w)
        same = B.chordal_mean(jnp.broadcast_to(R[:, :1], R.shape), w)
        Q = eq.groups.SO3.sample(jax.random.fold_in(k1, 1), (16,))
        left = B.chordal_mean(jnp.einsum("bij,bajk->baik", Q, R), w) - Q @ M
        # derivative of the projection against central differences, including
        # det M < 0 (the determinant fix) and M = R (repeated singular values)
        A = (
            jax.random.normal(k3, (3, 3, 3))
            .at[1]
            .set(-jnp.eye(3) * 2)
            .at[2]
            .set(R[0, 0])
        )
        dA = jax.random.normal(jax.random.fold_in(k3, 1), (3, 3, 3))
        _, t = jax.jvp(B.project_to_so3, (A,), (dA,))
        h = 1e-6
        fd = (B.project_to_so3(A + h * dA) - B.project_to_so3(A - h * dA)) / (2 * h)
        return M, jnp.linalg.det(M), same, R[:, 0], t, fd, left

    with jax.enable_x64(True):
        M, det, same, first, t, fd, left = program(key)
    eye = np.broadcast_to(np.eye(3), M.shape)
    np.testing.assert_allclose(np.swapaxes(M, -1, -2) @ M, eye, atol=1e-12)
    np.testing.assert_allclose(det, 1.0, atol=1e-12)
    np.testing.assert_allclose(same, first, atol=1e-12)
    np.testing.assert_allclose(left, 0.0, atol=1e-12)  # left-equivariant
    np.testing.assert_allclose(np.asarray(t)[[0, 2]], np.asarray(fd)[[0, 2]], atol=1e-6)
    # -2 I: det < 0 with three equal singular values: the nearest rotation is not
    # unique (documented); the derivative is finite there
    assert np.isfinite(np.asarray(t[1])).all()


def test_chordal_mean_bad_input():
    R = jnp.broadcast_to(jnp.eye(3), (3, 3, 3))
    with pytest.raises(ValueError, match="sum to one"):
        B.chordal_mean(R, jnp.ones(3))
    with pytest.raises(ValueError, match=">= 0"):
        B.chordal_mean(R, jnp.array([1.5, -0.5, 0.0]))
    with pytest.raises(ValueError, match="do not match"):
        B.chordal_mean(R, jnp.ones(2) / 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., A, 3, 3\)"):
        B.chordal_mean(jnp.ones((3, 2, 2)), jnp.ones(3) / 3)
    with pytest.raises(ValueError, match="at least one"):
        B.chordal_mean(jnp.ones((0, 3, 3)), jnp.ones(0))
