"""The articulated-bodies generator and roll-out (issue 17)."""

import numpy as np
import pytest

from eqjax import datasets


@pytest.mark.parametrize("kind", ["chain", "stick_figure"])
def test_articulated_consistent_and_seeded(kind):
    a = datasets.articulated(4, 3, kind=kind, num_parts=5, pose="test")
    b = datasets.articulated(4, 3, kind=kind, num_parts=5, pose="test")
    np.testing.assert_array_equal(a.points, b.points)
    k = 5 if kind == "chain" else 8
    assert a.points.shape == (4, 32 * k, 3) and a.rotations.shape == (4, k, 3, 3)
    assert a.parents[0] == -1 and all(a.parents[i] < i for i in range(1, k))
    # points = R_label · canonical + t_label, rotations orthogonal with det +1
    idx = np.arange(4)[:, None], a.labels
    pts = np.einsum("bnij,bnj->bni", a.rotations[idx], a.canonical)
    np.testing.assert_allclose(pts + a.translations[idx], a.points, atol=1e-5)
    R = a.rotations.astype(np.float64)
    np.testing.assert_allclose(
        R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    # the joint angles reproduce the rotations through forward kinematics
    parents, offsets, _, rest = datasets.body_template(kind, 5)
    from eqjax.datasets._articulated import _rodrigues

    R2, t2 = datasets.forward_kinematics(
        parents, offsets, rest, _rodrigues(a.joint_angles.astype(np.float64)),
        a.translations[:, 0].astype(np.float64),
    )  # fmt: skip
    np.testing.assert_allclose(R2, R, atol=1e-4)
    np.testing.assert_allclose(t2, a.translations, atol=1e-4)
    # every part's covariance has distinct eigenvalues (boxes 1 : 0.32 : 0.16)
    parts = a.canonical.reshape(4, k, 32, 3).astype(np.float64)
    c = parts - parts.mean(2, keepdims=True)
    lam = np.linalg.eigvalsh(np.einsum("bkni,bknj->bkij", c, c) / 32)
    assert (np.diff(lam, axis=-1) / lam[..., -1:]).min() > 0.005


def test_train_narrow_test_wide():
    tr = datasets.articulated(64, 0, pose="train")
    te = datasets.articulated(64, 0, pose="test")
    up = lambda b: b.rotations[:, 0, :, 0] @ np.array([0.0, 0, 1])  # noqa: E731
    assert up(tr).min() > 0.99  # the root's bone stands up
    assert up(te).min() < 0.0  # test bodies are globally rotated
    assert np.abs(tr.joint_angles[:, 1:]).max() <= 0.35 + 1e-6
    assert np.linalg.norm(te.joint_angles[:, 1:], axis=-1).max() > 0.9


def test_rollout_pushes_along_target_and_bad_input():
    r = datasets.articulated_rollout(6, 0, steps=40, heading="all")
    assert r.positions.shape == (6, 41, 4, 3) and np.isfinite(r.positions).all()
    np.testing.assert_allclose(np.linalg.norm(r.targets, axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(r.targets[:, 2], 0.0)
    move = r.positions[:, -1].mean(1) - r.positions[:, 0].mean(1)
    assert (np.sum(move * r.targets, -1) > 0).all()
    assert r.positions[..., 2].min() > -0.3  # the ground holds them
    fixed = datasets.articulated_rollout(2, 0, steps=2)
    np.testing.assert_allclose(fixed.targets, [[1.0, 0, 0]] * 2)
    with pytest.raises(ValueError, match="num_parts"):
        datasets.articulated(2, 0, num_parts=9)
    with pytest.raises(ValueError, match="kind"):
        datasets.articulated(2, 0, kind="tree")
    with pytest.raises(ValueError, match="pose"):
        datasets.articulated(2, 0, pose="wide")
    with pytest.raises(ValueError, match="noise"):
        datasets.articulated(2, 0, noise=-1.0)
    with pytest.raises(ValueError, match="heading"):
        datasets.articulated_rollout(2, 0, heading="north")
    with pytest.raises(ValueError, match="dt"):
        datasets.articulated_rollout(2, 0, dt=0.0)
