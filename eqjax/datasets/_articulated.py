"""Articulated bodies (seeded generator): kinematic trees of rigid parts.

The shared synthetic world of issue 17 (SET, APEN, ArtEq): a body is a kinematic
tree of 3-8 rigid parts (a chain, or a branching stick figure), each part a
box-shaped point set with three distinct side lengths (so every part's covariance
has distinct eigenvalues) plus Gaussian noise, posed by joint rotations relative to
the parent part. Training poses bend every joint by a small angle about the part's
own bending axis and keep the body upright; test poses bend the joints about
arbitrary axes by large angles and rotate the whole body by a Haar-random
rotation. :func:`articulated_rollout` simulates the parts' centres as masses joined
by springs under gravity above a ground plane, pushed along a horizontal target
direction (the control task of Chen et al., ICML 2023).

References: Chen et al., "Subequivariant Graph Reinforcement Learning in 3D
Environments", ICML 2023; Atzmon et al., "Approximately Piecewise E(3) Equivariant
Point Networks", ICLR 2024; Feng et al., "Generalizing Neural Human Fitting to
Unseen Poses With Articulated SE(3) Equivariance", ICCV 2023.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

KINDS = ("chain", "stick_figure")
"""The body kinds of :func:`articulated`."""

# stick figure: torso (root), head, upper/lower left arm, upper/lower right arm,
# left leg, right leg; (parent, joint position in the parent's frame, bone length,
# rest direction of the bone in the parent's frame); every part's bone runs along
# its own x axis, the root's rest direction is in world coordinates (up)
_STICK = (
    (-1, (0.0, 0.0, 0.0), 1.0, (0.0, 0.0, 1.0)),
    (0, (1.0, 0.0, 0.0), 0.35, (1.0, 0.0, 0.0)),
    (0, (0.9, 0.3, 0.0), 0.55, (0.0, 1.0, 0.0)),
    (2, (0.55, 0.0, 0.0), 0.5, (1.0, 0.0, 0.0)),
    (0, (0.9, -0.3, 0.0), 0.55, (0.0, -1.0, 0.0)),
    (4, (0.55, 0.0, 0.0), 0.5, (1.0, 0.0, 0.0)),
    (0, (0.0, 0.15, 0.0), 0.8, (-1.0, 0.0, 0.0)),
    (0, (0.0, -0.15, 0.0), 0.8, (-1.0, 0.0, 0.0)),
)
_WIDTHS = (0.32, 0.16)  # box cross-section relative to the bone length

PART_SYMMETRIES = np.stack([np.eye(3), np.diag([1.0, -1.0, -1.0])])
"""``[2, 3, 3]``: the rotations ``S`` (in a part's own frame) that map a part's box
and the joints on its bone to themselves: the identity and the half-turn about
the bone (the part's ``x`` axis). In a chain every joint lies on its parent's
bone, so the points (labels included) determine each part's world rotation ``R``
only up to ``R S``, independently per part: score and train rotations modulo
these (``min_S ∠(R̂, R S)``). An SO(3)-equivariant model cannot use the upright
training prior to pick one: a chain bent by ``θ`` and the chain bent by ``-θ``
turned by π about gravity are the same cloud. (The stick figure's arms and legs
join the torso off its bone, which breaks this for the torso.)"""


class ArticulatedBodies(NamedTuple):
    """``B`` posed bodies of ``K`` parts and ``N = K · points_per_part`` points.

    Attributes:
      points: ``[B, N, 3]`` world coordinates (noise included).
      labels: ``[B, N]`` int32 part of each point (points are grouped by part).
      rotations: ``[B, K, 3, 3]`` world rotation of each part.
      translations: ``[B, K, 3]`` world position of each part's joint (its origin).
      joint_angles: ``[B, K, 3]`` rotation vector of each joint relative to its
        parent (the root's: the global rotation).
      parents: ``[K]`` int32 parent of each part (``-1`` for the root; parents come
        before children).
      canonical: ``[B, N, 3]`` the points in their part's own frame (noise
        included): ``points = R_label · canonical + t_label``.
      gravity: ``[3]`` the gravity vector (``(0, 0, -9.81)``; bodies stand on
        ``z = 0`` upright in the training range).
    """

    points: np.ndarray
    labels: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    joint_angles: np.ndarray
    parents: np.ndarray
    canonical: np.ndarray
    gravity: np.ndarray


class BodyRollout(NamedTuple):
    """Trajectories of part centres under gravity (see :func:`articulated_rollout`).

    Attributes:
      positions: ``[S, T + 1, K, 3]`` positions of the ``K`` part masses.
      velocities: ``[S, T + 1, K, 3]`` their velocities.
      targets: ``[S, 3]`` the unit horizontal target direction of each trajectory.
      gravity: ``[3]`` gravity.
      parents: ``[K]`` the kinematic tree (springs join each part to its parent).
    """

    positions: np.ndarray
    velocities: np.ndarray
    targets: np.ndarray
    gravity: np.ndarray
    parents: np.ndarray


def _rodrigues(w: np.ndarray) -> np.ndarray:
    theta = np.linalg.norm(w, axis=-1, keepdims=True)
    u = w / np.where(theta > 0, theta, 1.0)
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    o = np.zeros_like(x)
    K = np.stack(
        [np.stack([o, -z, y], -1), np.stack([z, o, -x], -1), np.stack([-y, x, o], -1)],
        -2,
    )
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def _haar_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )  # fmt: skip


def _align(d) -> np.ndarray:
    """A rotation taking the x axis to the unit vector ``d``."""
    d = np.asarray(d, np.float64) / np.linalg.norm(d)
    x = np.array([1.0, 0.0, 0.0])
    v = np.cross(x, d)
    s, c = np.linalg.norm(v), float(x @ d)
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([-1.0, -1.0, 1.0])
    return _rodrigues(v / s * np.arctan2(s, c))


def body_template(kind: str = "chain", num_parts: int = 4):
    """The kinematic tree of a body kind: ``(parents [K], offsets [K, 3], lengths
    [K], rest [K, 3, 3])`` — the joint position in the parent's frame, the bone
    length (the part's box extends along its own x axis from its joint) and the
    rest rotation relative to the parent.

    Args:
      kind: ``"chain"`` (``num_parts`` boxes end to end, rising from the ground)
        or ``"stick_figure"`` (8 parts: torso, head, two two-part arms, two legs).
      num_parts: parts of a chain, 3 to 8 (ignored for the stick figure).

    Example:
      >>> parents, offsets, lengths, rest = body_template("stick_figure")
      >>> parents.tolist()
      [-1, 0, 0, 2, 0, 4, 0, 0]
    """
    if kind not in KINDS:
        raise ValueError(f"articulated: kind must be one of {KINDS}, got {kind!r}")
    if kind == "stick_figure":
        parents = np.array([p for p, *_ in _STICK], np.int32)
        offsets = np.array([o for _, o, _, _ in _STICK], np.float64)
        lengths = np.array([ln for _, _, ln, _ in _STICK], np.float64)
        # rest rotations are relative to the parent's frame; the root stands up
        rest = np.stack([_align(d) for *_, d in _STICK])
        return parents, offsets, lengths, rest
    if isinstance(num_parts, bool) or not isinstance(num_parts, (int, np.integer)):
        raise TypeError(f"articulated: num_parts must be an int, got {num_parts!r}")
    if not 3 <= num_parts <= 8:
        raise ValueError(f"articulated: num_parts must be in 3..8, got {num_parts}")
    k = int(num_parts)
    parents = np.arange(-1, k - 1, dtype=np.int32)
    lengths = np.linspace(1.0, 0.6, k)
    offsets = np.zeros((k, 3))
    offsets[1:, 0] = lengths[:-1]  # each part starts at its parent's far end
    rest = np.stack([_align((0.0, 0.0, 1.0))] + [np.eye(3)] * (k - 1))
    return parents, offsets, lengths, rest


def _box_points(rng, n_samples, n, length):
    w, h = _WIDTHS[0] * length, _WIDTHS[1] * length
    u = rng.uniform(size=(n_samples, n, 3))
    return np.stack(
        [u[..., 0] * length, (u[..., 1] - 0.5) * w, (u[..., 2] - 0.5) * h], -1
    )


def forward_kinematics(parents, offsets, rest, joint_rotations, root_translation):
    """World rotations ``[B, K, 3, 3]`` and joint positions ``[B, K, 3]`` of posed
    parts: ``R_k = R_parent · rest_k · J_k``, ``t_k = R_parent · offset_k +
    t_parent`` (the root: ``R_0 = J_0 · rest_0``, ``t_0`` the root translation).

    Example:
      >>> import numpy as np
      >>> p, o, ln, rest = body_template("chain", 3)
      >>> R, t = forward_kinematics(p, o, rest, np.tile(np.eye(3), (1, 3, 1, 1)),
      ...                           np.zeros((1, 3)))
      >>> np.round(t[0, :, 2], 3).tolist()
      [0.0, 1.0, 1.8]
    """
    b, k = joint_rotations.shape[:2]
    R = np.zeros((b, k, 3, 3))
    t = np.zeros((b, k, 3))
    for i in range(k):
        p = int(parents[i])
        if p < 0:
            R[:, i] = joint_rotations[:, i] @ rest[i]
            t[:, i] = root_translation
        else:
            R[:, i] = R[:, p] @ rest[i] @ joint_rotations[:, i]
            t[:, i] = np.einsum("bij,j->bi", R[:, p], offsets[i]) + t[:, p]
    return R, t


def articulated(
    num: int,
    seed: int,
    *,
    kind: str = "chain",
    num_parts: int = 4,
    points_per_part: int = 32,
    pose: str = "train",
    noise: float = 0.01,
    train_angle: float = 0.35,
    test_angle: float = 1.2,
    dtype: Any = np.float32,
) -> ArticulatedBodies:
    """Seeded articulated bodies (NumPy; same seed, same bodies).

    Each part is a box of length ``L`` (its bone) and cross-section ``0.32 L ×
    0.16 L`` in its own frame (``x`` along the bone), sampled uniformly with
    ``points_per_part`` points plus Gaussian ``noise`` (std, absolute). Poses:

    * ``pose="train"`` (narrow): every non-root joint bends about its own local
      ``y`` axis (a hinge) by an angle uniform in ``±train_angle``; the root stands
      upright (its bone along ``+z``), turned about gravity by ``±train_angle``
      and translated by at most 0.5 horizontally;
    * ``pose="test"`` (wide, globally rotated): every joint rotates about a uniform
      random axis by an angle uniform in ``[0, test_angle]``, and the whole body
      by a Haar-random rotation about its root joint.

    Args:
      num: number of bodies.
      seed: seed of ``numpy.random.default_rng``.
      kind: ``"chain"`` or ``"stick_figure"`` (see :func:`body_template`).
      num_parts: parts of a chain (3 to 8).
      points_per_part: points sampled per part (``>= 3``).
      pose: ``"train"`` or ``"test"``.
      noise: standard deviation of the point noise (``>= 0``).
      train_angle, test_angle: the angle ranges above (radians, ``>= 0``).
      dtype: floating dtype of the arrays.

    Returns:
      :class:`ArticulatedBodies`.

    Example:
      >>> b = articulated(2, 0, kind="stick_figure", points_per_part=16)
      >>> b.points.shape, b.labels.shape, b.rotations.shape
      ((2, 128, 3), (2, 128), (2, 8, 3, 3))
    """
    for name, v in (("num", num), ("points_per_part", points_per_part)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"articulated: {name} must be an int, got {v!r}")
    if num < 1:
        raise ValueError(f"articulated: num must be >= 1, got {num}")
    if points_per_part < 3:
        raise ValueError(
            f"articulated: points_per_part must be >= 3, got {points_per_part}"
        )
    if pose not in ("train", "test"):
        raise ValueError(f"articulated: pose must be 'train' or 'test', got {pose!r}")
    for name, v in (
        ("noise", noise),
        ("train_angle", train_angle),
        ("test_angle", test_angle),
    ):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"articulated: {name} must be finite and >= 0, got {v}")
    parents, offsets, lengths, rest = body_template(kind, num_parts)
    k, n = len(parents), int(points_per_part)
    rng = np.random.default_rng(seed)
    if pose == "train":
        ang = rng.uniform(-train_angle, train_angle, size=(num, k))
        w = np.zeros((num, k, 3))
        w[:, 1:, 1] = ang[:, 1:]  # hinge about each part's local y axis
        w[:, 0, 2] = ang[:, 0]  # the root turns about gravity
        root_t = np.zeros((num, 3))
        root_t[:, :2] = rng.uniform(-0.5, 0.5, size=(num, 2))
        root_t[:, 2] = 0.8 if kind == "stick_figure" else 0.0  # feet on z = 0
        J = _rodrigues(w)
    else:
        axis = rng.normal(size=(num, k, 3))
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        w = axis * rng.uniform(0, test_angle, size=(num, k, 1))
        J = _rodrigues(w)
        J[:, 0] = _haar_rotations(rng, num) @ J[:, 0]
        root_t = rng.normal(size=(num, 3))
        w[:, 0] = _log(J[:, 0])
    R, t = forward_kinematics(parents, offsets, rest, J, root_t)
    local = np.concatenate(
        [_box_points(rng, num, n, lengths[i]) for i in range(k)], axis=1
    )
    local = local + noise * rng.normal(size=local.shape)
    labels = np.repeat(np.arange(k, dtype=np.int32), n)
    pts = np.einsum("bnij,bnj->bni", R[:, labels], local) + t[:, labels]
    return ArticulatedBodies(
        points=pts.astype(dtype),
        labels=np.broadcast_to(labels, (num, k * n)).copy(),
        rotations=R.astype(dtype),
        translations=t.astype(dtype),
        joint_angles=w.astype(dtype),
        parents=parents,
        canonical=local.astype(dtype),
        gravity=np.array([0.0, 0.0, -9.81], dtype),
    )


def _log(R: np.ndarray) -> np.ndarray:
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    theta = np.arccos(cos)
    v = np.stack(
        [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]],
        -1,
    )  # fmt: skip
    s = np.sin(theta)
    small = s < 1e-6
    out = v * np.where(small, 0.5, theta / (2 * np.where(small, 1.0, s)))[..., None]
    # near π: the axis from the diagonal (sign from the antisymmetric part)
    near_pi = small & (cos < 0)
    if near_pi.any():
        d = np.sqrt(np.clip((np.diagonal(R, axis1=-2, axis2=-1) + 1) / 2, 0, None))
        sign = np.where(v >= 0, 1.0, -1.0)
        out = np.where(near_pi[..., None], np.pi * d * sign, out)
    return out


def articulated_rollout(
    num: int,
    seed: int,
    *,
    steps: int = 20,
    kind: str = "chain",
    num_parts: int = 4,
    heading: str = "fixed",
    dt: float = 0.02,
    substeps: int = 4,
    push: float = 4.0,
    stiffness: float = 200.0,
    damping: float = 2.0,
    ground: float = 1000.0,
    friction: float = 1.0,
    dtype: Any = np.float32,
) -> BodyRollout:
    """Part centres of bodies under gravity, above a ground plane, pushed towards a
    target (seeded; semi-implicit Euler in float64).

    Each part is a unit mass at its box's centre, joined to its parent by a damped
    spring with the rest length of the initial training pose (:func:`articulated`,
    ``pose="train"``, lifted 0.3 above the ground). Forces: gravity ``(0, 0,
    -9.81)``; the ground ``z = 0`` pushes up with ``ground · depth`` and damps the
    vertical velocity below it; horizontal friction ``-friction · v_h`` acts on
    parts below ``z = 0.05``; the root is pushed with ``push`` along the unit
    horizontal target direction. ``heading="fixed"`` aims every trajectory at
    ``+x`` (the training distribution); ``heading="all"`` draws the target angle
    uniformly (the test distribution). The dynamics commute with rotations and
    reflections about the gravity axis (O_g(3)) applied to positions, velocities
    and target together.

    Args:
      num: number of trajectories.
      seed: seed of ``numpy.random.default_rng``.
      steps: recorded steps ``T`` (each ``substeps`` integrator steps of ``dt /
        substeps``).
      kind, num_parts: the body (:func:`body_template`).
      heading: ``"fixed"`` or ``"all"``.
      dt, substeps, push, stiffness, damping, ground, friction: the simulation
        constants above (positive).
      dtype: floating dtype of the arrays.

    Returns:
      :class:`BodyRollout`.

    Example:
      >>> r = articulated_rollout(2, 0, steps=5)
      >>> r.positions.shape, r.targets.shape
      ((2, 6, 4, 3), (2, 3))
    """
    for name, v in (("num", num), ("steps", steps), ("substeps", substeps)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(
                f"articulated_rollout: {name} must be an int >= 1, got {v!r}"
            )
    if heading not in ("fixed", "all"):
        raise ValueError(
            f"articulated_rollout: heading must be 'fixed' or 'all', got {heading!r}"
        )
    for name, v in (
        ("dt", dt),
        ("stiffness", stiffness),
        ("ground", ground),
        ("push", push),
        ("damping", damping),
        ("friction", friction),
    ):
        if not np.isfinite(v) or v < 0 or (name in ("dt", "stiffness") and v == 0):
            raise ValueError(
                f"articulated_rollout: {name} must be finite and positive, got {v}"
            )
    rng = np.random.default_rng(seed)
    body = articulated(
        num, int(rng.integers(2**31)), kind=kind, num_parts=num_parts,
        points_per_part=8, noise=0.0, dtype=np.float64,
    )  # fmt: skip
    parents = body.parents
    k = len(parents)
    centres = body.points.reshape(num, k, -1, 3).mean(axis=2)
    lift = 0.3 - centres[..., 2].min(axis=1)
    x = centres + np.stack([np.zeros(num), np.zeros(num), lift], -1)[:, None]
    v = 0.1 * rng.normal(size=x.shape)
    if heading == "fixed":
        ang = np.zeros(num)
    else:
        ang = rng.uniform(-np.pi, np.pi, size=num)
    target = np.stack([np.cos(ang), np.sin(ang), np.zeros(num)], -1)
    child = np.arange(1, k)
    par = parents[1:]
    rest = np.linalg.norm(x[:, child] - x[:, par], axis=-1)
    incidence = np.zeros((k - 1, k))  # +1 on the child, -1 on the parent
    incidence[np.arange(k - 1), child] = 1.0
    incidence[np.arange(k - 1), par] = -1.0
    g = np.array([0.0, 0.0, -9.81])
    h = dt / substeps
    xs, vs = [x.copy()], [v.copy()]
    for _ in range(steps):
        for _ in range(substeps):
            d = x[:, child] - x[:, par]
            length = np.linalg.norm(d, axis=-1, keepdims=True)
            u = d / np.maximum(length, 1e-9)
            rel = np.sum((v[:, child] - v[:, par]) * u, -1, keepdims=True)
            f_spring = -(stiffness * (length - rest[..., None]) + damping * rel) * u
            f = np.broadcast_to(g, x.shape).copy()
            f += np.einsum("ek,bed->bkd", incidence, f_spring)
            depth = np.maximum(-x[..., 2], 0.0)
            below = depth > 0
            f[..., 2] += ground * depth - np.where(below, 10.0 * v[..., 2], 0.0)
            near = x[..., 2] < 0.05
            f[..., :2] -= np.where(near[..., None], friction * v[..., :2], 0.0)
            f[:, 0] += push * target
            v = v + h * f
            x = x + h * v
        xs.append(x.copy())
        vs.append(v.copy())
    return BodyRollout(
        positions=np.stack(xs, 1).astype(dtype),
        velocities=np.stack(vs, 1).astype(dtype),
        targets=target.astype(dtype),
        gravity=g.astype(dtype),
        parents=parents,
    )
