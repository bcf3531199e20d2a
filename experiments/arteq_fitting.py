"""Articulated fitting on out-of-distribution poses: part segmentation and per-part
rotations of a chain body, PointNet vs a globally equivariant model vs ArtEq-style.

Feng, Kulits, Liu, Black, Abrevaya, "Generalizing Neural Human Fitting to Unseen
Poses With Articulated SE(3) Equivariance" (ICCV 2023): ArtEq's part-wise
SO(3)-equivariant features keep part segmentation and per-part rotations accurate
on poses far from the training distribution, where non-equivariant regressors
fail (their tables report body-fitting errors on human scans; there is no number
for this toy task, so the claim checked is the order of the models out of
distribution).

Data: :func:`eqjax.datasets.articulated` chains of 4 box parts, 16 points each.
Training poses are narrow (hinge joints within ±0.35 rad, upright); the test sets
are fresh narrow poses and wide poses (joints up to 1.2 rad about random axes and
a Haar-random global rotation). Targets: the part label of every point and the
world rotation of every part. Models (all trained with cross-entropy on the
labels plus the chordal loss ``‖R̂ - R‖²`` on the rotations, through
``eqjax.training.fit``):

* PointNet: per-point logits and a per-part 6-d rotation (Gram-Schmidt);
* global FA: the same PointNet frame-averaged over the body's SE(3) PCA frame
  (4 elements; rotations ``g R``, averaged and projected with
  :func:`eqjax.bodies.project_to_so3`) — equivariant to global motions only;
* ArtEq-style: :func:`eqjax.bodies.arteq` (octahedral lifting, part pooling,
  kinematic conditioning, chordal means of the 24 anchors).

Reported: part accuracy and the mean geodesic rotation error (degrees).
Measured (default run, seed 0; part accuracy / rotation error, narrow → wide):
PointNet 0.980 / 9.4° → 0.397 / 138°; global FA 0.981 / 95.6° → 0.958 / 87.4°;
ArtEq-style 0.596 / 88.6° → 0.584 / 99.2°. So the issue's order does **not**
hold here yet: the global frame average keeps its part accuracy out of
distribution (the PointNet does not), but neither equivariant model learns the
rotations in this budget, and this small ArtEq-style model (a mean over the 24
lifted copies of one PointNet, no EPN-style group convolution) under-fits the
segmentation; a max over the group instead of the mean measured 0.639 → 0.512.
CPU budget: ``--quick`` about 20 s on 2 shared cores (150 steps per model), the
default about 70 s (1500 steps).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import eqjax as eq

from ._common import write_table

DESCRIPTION = (
    "ArtEq-style vs PointNet vs global FA: parts and rotations on unseen poses"
)
PAPER = (
    "Feng et al. (ICCV 2023): ArtEq generalises to out-of-distribution poses "
    "where non-equivariant regressors fail (qualitative claim for this toy task)"
)
MODELS = ("PointNet", "global FA (SE(3) PCA frame)", "ArtEq-style (octahedral)")
K, PER = 4, 16
PARENTS = (-1, 0, 1, 2)


def make_data(num, seed, pose):
    b = eq.datasets.articulated(num, seed, num_parts=K, points_per_part=PER, pose=pose)
    return b.points.astype(np.float32), b.labels, b.rotations.astype(np.float32)


def _dense(key, a, b):
    return {"w": jax.random.normal(key, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}


def pointnet_init(key, hidden=64):
    k = jax.random.split(key, 4)
    return {
        "p": _dense(k[0], 3, hidden),
        "m": _dense(k[1], 2 * hidden, hidden),
        "seg": _dense(k[2], hidden, K),
        "rot": _dense(k[3], hidden, K * 6),
    }


def _lin(p, x):
    return x @ p["w"] + p["b"]


def _gram_schmidt(a):
    a1, a2 = a[..., :3], a[..., 3:]
    e1 = a1 / (jnp.linalg.norm(a1, axis=-1, keepdims=True) + 1e-8)
    u2 = a2 - jnp.sum(e1 * a2, -1, keepdims=True) * e1
    e2 = u2 / (jnp.linalg.norm(u2, axis=-1, keepdims=True) + 1e-8)
    return jnp.stack([e1, e2, jnp.cross(e1, e2)], -1)


def pointnet(p, x):
    """``(logits (N, K), rotations (K, 3, 3))`` of one body."""
    c = x - jnp.mean(x, 0, keepdims=True)
    h = jax.nn.silu(_lin(p["p"], c))
    g = jnp.broadcast_to(jnp.max(h, 0, keepdims=True), h.shape)
    h = jax.nn.silu(_lin(p["m"], jnp.concatenate([h, g], -1)))
    logits = _lin(p["seg"], h)
    rot = _gram_schmidt(_lin(p["rot"], jnp.max(h, 0)).reshape(K, 6))
    return logits, rot


def global_fa(p, x):
    frame = eq.frames.plain_pca_frame(eq.groups.SE3)

    def act_out(g, y):
        return y[0], jnp.einsum("ij,kjl->kil", g.R, y[1])

    f = eq.frames.frame_average(
        lambda y: pointnet(p, y),
        frame,
        act_in=eq.groups.cloud_action(eq.groups.SE3),
        act_out=act_out,
    )
    logits, R = f(x)
    return logits, eq.bodies.project_to_so3(R)


def models():
    return {
        MODELS[0]: (pointnet_init, pointnet),
        MODELS[1]: (pointnet_init, global_fa),
        MODELS[2]: (
            lambda key: eq.bodies.arteq_init(key, K, hidden=32),
            lambda p, x: eq.bodies.arteq(p, x, PARENTS),
        ),
    }


def _geodesic_deg(Ra, Rb):
    c = (np.trace(np.swapaxes(Ra, -1, -2) @ Rb, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def run(steps, n_train, n_test, seed):
    x, y, R = make_data(n_train, seed, "train")
    tests = {
        "narrow poses": make_data(n_test, seed + 1, "train"),
        "wide, globally rotated poses": make_data(n_test, seed + 2, "test"),
    }
    results = {}
    for name, (init, apply) in models().items():
        batched = jax.vmap(lambda p, xx, apply=apply: apply(p, xx), (None, 0))

        def loss_fn(params, batch, key, batched=batched):
            logits, Rp = batched(params, batch["x"])
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
            chord = jnp.sum((Rp - batch["R"]) ** 2, axis=(-2, -1))
            return jnp.mean(ce) + jnp.mean(chord)

        data = eq.training.ArrayLoader({"x": x, "y": y, "R": R}, 16, seed=seed)
        opt = optax.adam(optax.cosine_decay_schedule(3e-3, steps))
        t0 = time.perf_counter()
        fit = eq.training.fit(
            loss_fn, init(jax.random.key(seed)), opt, data, steps=steps, progress=False
        )
        secs = time.perf_counter() - t0
        ev = jax.jit(batched)
        out = {}
        for tname, (xt, yt, Rt) in tests.items():
            logits, Rp = (np.asarray(a) for a in ev(fit.params, xt))
            acc = float(np.mean(logits.argmax(-1) == yt))
            out[tname] = (acc, float(np.mean(_geodesic_deg(Rp, Rt))))
        results[name] = (out, secs)
    return results, list(tests)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m experiments arteq_fitting", description=__doc__
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results-dir", default=None)
    args = ap.parse_args(argv)
    steps, n_train, n_test = args.steps, 256, 64
    if args.quick:
        steps, n_train, n_test = 150, 64, 16
    t0 = time.perf_counter()
    results, tests = run(steps, n_train, n_test, args.seed)
    total = time.perf_counter() - t0
    header = ["model"]
    for t in tests:
        header += [f"part accuracy, {t}", f"rotation error (deg), {t}"]
    header.append("train s")
    rows = []
    for m, (out, secs) in results.items():
        row = [m]
        for t in tests:
            row += [f"{out[t][0]:.3f}", f"{out[t][1]:.1f}"]
        rows.append([*row, f"{secs:.1f}"])
    pre = (
        f"Paper: {PAPER}.\n\nOurs: {n_train} training bodies (narrow poses), "
        f"{n_test} test bodies per set, {steps} Adam steps of batch 16 per model; "
        f"CPU, {total:.0f} s in all (`python -m experiments arteq_fitting"
        + (" --quick" if args.quick else "")
        + "`)."
    )
    stem = "quick" if args.quick else "arteq_fitting"
    print(write_table("arteq_fitting", stem, header, rows, pre, args.results_dir))
    return 0
