"""Piecewise frame averaging (APEN): splitting a part keeps per-part exactness, a
global frame average (the control) is not piecewise equivariant, soft parts are
exact under one global motion, the degenerate case, EM monotonicity, merging and
pruning, bad input. Per-part exactness itself is the registry row's
(``bodies.piecewise_frame_average_per_part_E3``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq
from eqjax.bodies import _rows

B = eq.bodies
E3 = eq.groups.E3


def _move(g, labels, x):
    return jnp.einsum("nij,nj->ni", g.R[labels], x) + g.t[labels]


def _act_out(g, y):
    return y[0], eq.groups.act_vectors(g, y[1])


def _model(x, parts):
    """Per-part scalars and per-point vectors, one piecewise frame average."""
    s, v = B.piecewise_frame_average(_rows._pointnet, x, parts, act_out=_act_out)
    return s, B.part_outputs(parts, v)


def test_split_parts_soft_parts_and_global_control(key):
    labels3 = jnp.asarray(_rows._LABELS)
    n = labels3.shape[0]
    # split part 0 (6 points) into two parts of 3: a finer partition, 4 parts
    labels4 = jnp.where((labels3 == 0) & (jnp.arange(n) % 2 == 1), 3, labels3)
    x0 = _rows._BOX.reshape(-1, 3).copy()
    x0[:6] *= np.array([1.0, 0.6, 0.3])  # keep the halves' spectra generic

    def program(key, x0):
        k1, k2, k3 = jax.random.split(key, 3)
        g = E3.sample(k1, (4,))
        h = E3.sample(k3, (1,))
        hard = jax.nn.one_hot(labels4, 4)
        # control: four copies of the whole cloud (each part's frame is the global
        # PCA frame: a global frame average) under the per-part motions
        uniform = jnp.full((n, 4), 0.25)
        soft = jax.nn.softmax(jax.random.normal(k2, (n, 4)) * 2, axis=-1)
        per_part, global_ = _move(g, labels4, x0), _move(h, jnp.zeros(n, int), x0)
        xs = jnp.stack([x0, per_part, x0, per_part, x0, global_])
        ps = jnp.stack([hard, hard, uniform, uniform, soft, soft])
        s, v = jax.vmap(_model)(xs, ps)  # one trace for the three checks
        split_err = jnp.maximum(
            jnp.max(jnp.abs(s[1] - s[0])),
            jnp.max(jnp.abs(v[1] - jnp.einsum("nij,nj->ni", g.R[labels4], v[0]))),
        )
        soft_err = jnp.maximum(
            jnp.max(jnp.abs(s[5] - s[4])), jnp.max(jnp.abs(v[5] - v[4] @ h.R[0].T))
        )
        return (
            split_err,
            jnp.max(jnp.abs(s[3] - s[2])),
            soft_err,
            jnp.max(jnp.abs(s[0])),
        )

    with jax.enable_x64(True):
        split_err, control, soft_err, scale = jax.jit(program)(key, jnp.asarray(x0))
    assert float(split_err) < 1e-8 * float(scale) + 1e-12
    assert float(soft_err) < 1e-8
    assert float(control) > 1e-3  # a global frame is not piecewise equivariant


@pytest.mark.slow
def test_degenerate_part_plain_vs_degenerate_safe_frame(key):
    """A cube-like part (repeated covariance eigenvalues): the plain PCA frame is
    not equivariant there (documented), the degenerate-safe frame is."""
    cube = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1.0)])
    box = _rows._BOX[1]
    x0 = jnp.asarray(np.concatenate([cube, box]))
    labels = jnp.asarray([0] * 8 + [1] * len(box))
    parts = jax.nn.one_hot(labels, 2)
    f = lambda x, w: _rows._pointnet(x, w)[0]  # noqa: E731

    def program(key, frame):
        g = E3.sample(key, (2,))
        a = B.piecewise_frame_average(f, x0, parts, frame=frame)
        b = B.piecewise_frame_average(f, _move(g, labels, x0), parts, frame=frame)
        return jnp.max(jnp.abs(a - b), axis=-1)

    with jax.enable_x64(True):
        plain = jax.jit(program, static_argnums=1)(key, "plain")
        safe = jax.jit(program, static_argnums=1)(key, "pca")
    assert float(plain[0]) > 1e-3 and float(plain[1]) < 1e-6
    assert float(safe.max()) < 1e-6


def test_em_monotone_merge_prune_and_straight_through(key):
    body = eq.datasets.articulated(1, 0, num_parts=4, points_per_part=16)
    lab = body.labels[0]
    centres = body.points[0].reshape(4, 16, 3).mean(1)
    votes = jnp.asarray(
        centres[lab] + 0.05 * np.random.default_rng(0).normal(size=(64, 3))
    )
    mask = jnp.arange(64) < 60  # four padded votes

    @jax.jit
    def program(votes):
        mix = B.mixture_init(votes, 6, mask)
        ll0 = B.mixture_log_likelihood(mix, votes, mask)

        def step(mix, _):
            mix = B.em_step(mix, votes, mask)
            return mix, B.mixture_log_likelihood(mix, votes, mask)

        mix, lls = jax.lax.scan(step, mix, None, length=8)
        lls = jnp.concatenate([ll0[None], lls])
        merged = B.merge_and_prune(mix, merge_distance=0.3, min_weight=0.05)
        return lls, mix, merged, B.responsibilities(merged, votes, mask)

    with jax.enable_x64(True):
        lls, mix, merged, gamma = program(votes.astype(jnp.float64))
    assert np.all(np.diff(np.asarray(lls, np.float64)) >= -1e-9), lls
    np.testing.assert_allclose(float(mix.weights.sum()), 1.0, atol=1e-12)
    np.testing.assert_allclose(float(merged.weights.sum()), 1.0, atol=1e-12)
    assert int(merged.active.sum()) == 4  # six candidates, four parts
    assert not np.any(np.asarray(merged.weights)[~np.asarray(merged.active)])
    np.testing.assert_allclose(np.asarray(gamma)[:60].sum(-1), 1.0, atol=1e-9)
    assert not np.any(np.asarray(gamma)[60:])
    # the recovered soft parts match the true labels (up to relabelling)
    pred = np.asarray(gamma)[:60].argmax(-1)
    for k in range(4):
        assert len(set(pred[np.asarray(lab)[:60] == k])) == 1
    soft = jnp.array([[0.2, 0.8], [0.6, 0.4]])
    st = B.straight_through_parts(soft)
    np.testing.assert_allclose(st, [[0.0, 1.0], [1.0, 0.0]], atol=1e-6)
    grad = jax.grad(
        lambda s: jnp.sum(B.straight_through_parts(s) * jnp.arange(2.0)[None])
    )
    np.testing.assert_allclose(grad(soft), [[0.0, 1.0], [0.0, 1.0]])


def test_piecewise_bad_input():
    x = jnp.asarray(_rows._BOX.reshape(-1, 3))
    parts = jax.nn.one_hot(jnp.asarray(_rows._LABELS), 3)
    f = lambda x, w: jnp.sum(w * x[:, 0])  # noqa: E731
    with pytest.raises(ValueError, match="sum to one"):
        B.piecewise_frame_average(f, x, 0.5 * parts)
    with pytest.raises(ValueError, match="empty"):
        B.piecewise_frame_average(f, x, jnp.concatenate([parts, 0 * parts[:, :1]], 1))
    with pytest.raises(ValueError, match=r"shape \(18, K\)"):
        B.piecewise_frame_average(f, x, parts[:5])
    with pytest.raises(TypeError, match="floating"):
        B.piecewise_frame_average(f, x, parts.astype(jnp.int32))
    with pytest.raises(ValueError, match=">= 0"):
        B.piecewise_frame_average(f, x, parts.at[0, 0].set(-1.0).at[0, 1].set(2.0))
    with pytest.raises(ValueError, match="frame must be"):
        B.piecewise_frame_average(f, x, parts, frame="svd")
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        B.piecewise_frame_average(f, x[:, :2], parts)
    mix = B.PartMixture(np.zeros((2, 3)), np.ones(2), np.full(2, 0.5), np.ones(2, bool))
    with pytest.raises(ValueError, match="merge_distance"):
        B.merge_and_prune(mix, merge_distance=-1.0)
    with pytest.raises(ValueError, match="min_weight"):
        B.merge_and_prune(mix, merge_distance=0.1, min_weight=1.5)
    with pytest.raises(ValueError, match="num_parts"):
        B.mixture_init(x, 0)
