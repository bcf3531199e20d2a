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
world rotation of every part.

**The rotation target is defined modulo the box's half-turn.** Every box part is
symmetric under the half-turn ``S = diag(1, -1, -1)`` about its own bone (its
joint and its child's joint lie on that axis), so the points determine a part's
rotation ``R`` only up to ``R S`` (:data:`eqjax.datasets.PART_SYMMETRIES`). A
non-equivariant model resolves this by the training prior (upright bodies facing
one way), an SO(3)-equivariant one cannot: a body with bends ``θ`` and the same
body with bends ``-θ`` turned by π about gravity are the *same* cloud (both in
the training range), with targets ``R`` and ``R S``. With the plain chordal
loss and the plain error (the previous version of this table) every equivariant
model sat at chance level, ~90° (global FA 95.6° / 87.4°, the grid ArtEq-style
model 88.6° / 99.2°, narrow / wide), while the PointNet measured 9.4° in
distribution. All models are now trained with the symmetric chordal loss
``min_{S'} ‖R̂ - R S'‖²`` over ``S' ∈ {I, S}`` and scored by the geodesic error
``min_{S'} ∠(R̂, R S')`` (chance: 102.6° for a Haar-random prediction).

Models (cross-entropy on the labels plus the symmetric chordal loss, through
``eqjax.training.fit``):

* PointNet: per-point logits and a per-part 6-d rotation (Gram-Schmidt);
* global FA: the same PointNet frame-averaged over the body's SE(3) PCA frame
  (4 elements; rotations ``g R``, averaged and projected with
  :func:`eqjax.bodies.project_to_so3`) — equivariant to global motions only;
* ArtEq-style, octahedral grid: :func:`eqjax.bodies.arteq` with
  ``anchors="grid"`` (exact under the 24 cube rotations only);
* ArtEq-style, part frames: :func:`eqjax.bodies.arteq` with the default
  ``anchors="part_frames"`` (anchors in each soft part's own PCA frame: exact
  under every rotation, each part read in its own frame).

Reported: part accuracy and the mean symmetry-aware geodesic rotation error
(degrees). Measured (default run, seed 0; part accuracy / rotation error,
narrow → wide): PointNet 0.981 / 9.1° → 0.379 / 108.5° (chance level);
global FA 0.980 / 17.3° → 0.959 / 46.9°; ArtEq-style with the octahedral grid
0.979 / 7.1° → 0.906 / 77.1°; ArtEq-style with part frames 0.982 / 11.6° →
0.953 / 15.0°. So the order the paper claims holds: out of distribution the
part-frame ArtEq-style model keeps its rotations (15° vs the PointNet's 108°)
and its part accuracy (0.95 vs 0.38). The grid model shows why the anchors
must move with the parts: it is exact only under the 24 cube rotations, and a
Haar-random global rotation leaves every anchor up to ~60° from a pose it was
trained on. What the previous version of this model lacked (debugged on 8
training bodies: it could not fit them, part accuracy 0.41, rotation error
76°): max instead of mean pooling in its PointNet (mean: part accuracy 0.59 →
max: 0.97, 600 steps), the symmetric loss (the half-turn above), a residual
rotation per anchor, the scale normalisation, a stop-gradient on the soft
parts (the rotation loss otherwise degrades the segmentation of the part-frame
model: part accuracy 0.53 vs 0.98 on 8 bodies) and anchors in each part's own
frame. CPU budget: ``--quick`` about 30 s on 2 shared cores (150 steps per
model), the default about 100 s (1500 steps).
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
MODELS = (
    "PointNet",
    "global FA (SE(3) PCA frame)",
    "ArtEq-style, octahedral grid",
    "ArtEq-style, part frames",
)
# run names: checkpoint folders ``<--checkpoint-dir>/<run>_seed<s>``
RUN_NAMES: dict[str, str] = dict(
    zip(
        MODELS,
        ("pointnet", "global_fa", "arteq_grid", "arteq_part_frames"),
        strict=True,
    )
)
QUICK = dict(steps=150, n_train=64, n_test=16)
K, PER = 4, 16
PARENTS = (-1, 0, 1, 2)
SYM = np.asarray(eq.datasets.PART_SYMMETRIES, np.float32)  # {I, diag(1, -1, -1)}


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
            lambda key: eq.bodies.arteq_init(key, K, hidden=32, anchors="grid"),
            lambda p, x: eq.bodies.arteq(p, x, PARENTS),
        ),
        MODELS[3]: (
            lambda key: eq.bodies.arteq_init(key, K, hidden=32),
            lambda p, x: eq.bodies.arteq(p, x, PARENTS),
        ),
    }


def _geodesic_deg(Ra, Rb):
    """The geodesic angle between ``Ra`` and ``Rb`` modulo the part's symmetry
    (``min`` over ``Rb S`` for ``S`` in :data:`SYM`), in degrees."""
    Rs = np.einsum("...ij,sjk->s...ik", Rb, SYM)
    c = (np.trace(np.swapaxes(Ra, -1, -2) @ Rs, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(c, -1, 1))).min(0)


def symmetric_chordal(Rp, R):
    """``min_S ‖R̂ - R S‖²`` over the part's symmetries (per part)."""
    Rs = jnp.einsum("...ij,sjk->s...ik", R, jnp.asarray(SYM))
    return jnp.min(jnp.sum((Rp - Rs) ** 2, axis=(-2, -1)), 0)


def run(steps, n_train, n_test, seed, mesh=None, fit_kw=None):
    """``({model: ({test: (part accuracy, rotation error)}, train s)}, tests)``;
    ``fit_kw(run name) -> dict`` of extra :func:`eqjax.training.fit` keywords."""
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
            return jnp.mean(ce) + jnp.mean(symmetric_chordal(Rp, batch["R"]))

        data = eq.training.ArrayLoader({"x": x, "y": y, "R": R}, 16, seed=seed)
        opt = optax.adam(optax.cosine_decay_schedule(3e-3, steps))
        t0 = time.perf_counter()
        run_name = f"{RUN_NAMES[name]}_seed{seed}"
        fit = eq.training.fit(
            loss_fn, init(jax.random.key(seed)), opt, data, steps=steps, key=seed,
            mesh=mesh, name=run_name, progress=False,
            **(fit_kw(run_name) if fit_kw else {}),
        )  # fmt: skip
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
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-test sizes ({QUICK}); flags given explicitly win",
    )
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--n-train", type=int, default=256, help="training bodies")
    ap.add_argument("--n-test", type=int, default=64, help="test bodies per set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results-dir", default=None)
    eq.training.add_arguments(ap)
    args = ap.parse_args(argv)
    if args.quick:  # parse again: the quick sizes as defaults, explicit flags win
        ap.set_defaults(**QUICK)
        args = ap.parse_args(argv)
    mesh = eq.training.setup(args)  # before any JAX computation
    steps, n_train, n_test = args.steps, args.n_train, args.n_test
    t0 = time.perf_counter()
    results, tests = run(
        steps, n_train, n_test, args.seed, mesh,
        lambda name: eq.training.fit_options(args, name),
    )  # fmt: skip
    total = time.perf_counter() - t0
    header = ["model"]
    for t in tests:
        header += [f"part accuracy, {t}", f"rotation error mod half-turn (deg), {t}"]
    header.append("train s")
    rows = []
    for m, (out, secs) in results.items():
        row = [m]
        for t in tests:
            row += [f"{out[t][0]:.3f}", f"{out[t][1]:.1f}"]
        rows.append([*row, f"{secs:.1f}"])
    pre = (
        f"Paper: {PAPER}.\n\nOurs: {n_train} training bodies (narrow poses), "
        f"{n_test} test bodies per set, {steps} Adam steps of batch 16 per model "
        "(cross-entropy plus the chordal loss modulo the box's half-turn about its "
        "bone, which the points cannot resolve: eqjax.datasets.PART_SYMMETRIES); "
        "rotation error = mean geodesic angle modulo that half-turn (chance, a "
        "Haar-random guess: 102.6°); "
        f"CPU, {total:.0f} s in all (`python -m experiments arteq_fitting"
        + (" --quick" if args.quick else "")
        + "`)."
    )
    stem = "quick" if args.quick else "arteq_fitting"
    print(write_table("arteq_fitting", stem, header, rows, pre, args.results_dir))
    return 0
