"""Every public point-cloud frame on a registry of degenerate clouds (tests/frames/
clouds.py: Platonic solids, prisms, antiprisms, symmetric molecules, collinear,
coincident and all-zero clouds): valid elements, weights that sum to one, exact
invariance and equivariance in float64, finite gradients. All clouds are padded to
one masked shape, so each (frame, group) is one compilation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from clouds import CLOUDS, DEGENERATE, N_MAX, padded
from frames_util import elements, mlp

import eqjax as eq

G = eq.groups
NAMES = sorted(CLOUDS)


def _backbones(dtype, n=N_MAX):
    """Masked, scale-normalised MLPs: phi -> (4,), psi -> (n, 3) positions."""
    phi0 = mlp(0, 3 * n, 4, dtype=dtype)
    psi0 = mlp(1, 3 * n, 3 * n, dtype=dtype)

    def prep(xm):
        x, m = xm
        x = x * m[:, None].astype(x.dtype)
        s = jnp.sqrt(jnp.sum(x * x) / jnp.maximum(jnp.sum(m), 1) + 1e-30)
        return x / s + 0.3, s

    def phi(xm):
        return phi0(prep(xm)[0])

    def psi(xm):
        z, s = prep(xm)
        return s * psi0(z).reshape(n, 3)

    return phi, psi


def _rel(a, b, axes=None, floor=1e-300):
    """``max |a - b| / max |b|``; ``floor`` bounds the denominator below (an
    all-zero cloud's O(3)-equivariant output is 0 exactly: rounding there is
    compared with the floor)."""
    num = jnp.max(jnp.abs(a - b), axis=axes)
    return num / jnp.maximum(jnp.max(jnp.abs(b), axis=axes), floor)


def _program(frame, group, dtype, with_grad=True):
    """``check(points (C, N, 3), mask (C, N), gs) -> dict of (C,) arrays``: one
    frame average whose backbone returns invariant features and equivariant
    positions, evaluated on ``x`` and ``g·x`` in one ``vmap`` (one trace of the
    frame, one of its gradient: compilation is what costs here)."""
    act = eq.groups.cloud_action(group)  # acts on arrays and on (points, mask)
    phi, psi = _backbones(dtype)
    both = lambda xm: (phi(xm), psi(xm))
    act_out = lambda g, y: (y[0], act(g, y[1]))
    f = eq.frames.frame_average(both, frame, act_in=act, act_out=act_out)
    d = group.dim

    def one(x, m, gs):
        xs = jnp.concatenate([x[None], jax.vmap(lambda g: act(g, x))(gs)])
        (y, ye), fr = jax.vmap(lambda z: (f((z, m)), frame((z, m))))(xs)
        want = jax.vmap(lambda g: act(g, ye[0]))(gs)
        R = fr.elements.R if hasattr(fr.elements, "R") else fr.elements
        live = fr.weights > 0
        RtR = jnp.einsum("ckji,ckjl->ckil", R, R)
        bad = jnp.abs(RtR - jnp.eye(d)[None, None])
        orth = jnp.max(jnp.where(live[..., None, None], bad, 0))
        det = jnp.linalg.det(R)
        loss = lambda x: sum(jnp.sum(v**2) for v in f((x, m)))
        grad = jax.grad(loss)(x) if with_grad else x
        return {
            "inv": jnp.max(_rel(y[1:], y[:1])),
            "eqv": jnp.max(_rel(ye[1:], want, floor=1e-12)),
            "orth": orth,
            "det_min": jnp.min(jnp.where(live, det, 1.0)),
            "wsum": jnp.max(jnp.abs(jnp.sum(fr.weights, -1) - 1)),
            "wmin": jnp.min(fr.weights),
            "finite": jnp.all(jnp.isfinite(grad)) & jnp.all(jnp.isfinite(ye)),
            "nonzero": jnp.max(jnp.abs(y[0])),
        }

    return jax.jit(jax.vmap(one, (0, 0, None)))


def _run(factory, group, names=NAMES, dtype=np.float64, seed=0, with_grad=True):
    rng = np.random.default_rng(seed)
    R = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    t = rng.normal(size=3) if group.name.startswith(("E", "SE")) else np.zeros(3)
    pts, mask = padded(names, (R, t))
    gs = elements(group, 2, seed + 1, dtype)
    out = _program(factory(group), group, dtype, with_grad)(
        jnp.asarray(pts, dtype), jnp.asarray(mask), gs
    )
    return {
        k: dict(zip(names, np.asarray(v).tolist(), strict=True)) for k, v in out.items()
    }


def _assert_exact(out, names, tol=1e-9, special=False):
    for name in names:
        assert out["finite"][name], name
        assert out["nonzero"][name] > 1e-3, name  # not a trivial zero output
        assert out["orth"][name] < 1e-12, (name, out["orth"][name])
        assert out["wsum"][name] < 1e-12 and out["wmin"][name] >= 0, name
        if special:
            assert out["det_min"][name] > 0, name
        assert out["inv"][name] < tol, (name, "invariance", out["inv"][name])
        assert out["eqv"][name] < tol, (name, "equivariance", out["eqv"][name])


FRAMES = {"pca": eq.frames.pca_frame, "point_pair": eq.frames.point_pair_frame}
FAST = {("pca", "E3")}  # the others (and pca_frame's parts) in the slow tier
CASES = [
    pytest.param(f, g, marks=() if (f, g) in FAST else pytest.mark.slow)
    for f in FRAMES
    for g in ("E3", "O3", "SE3", "SO3")
]


@pytest.mark.parametrize("frame,group", CASES)
def test_frames_exact_on_every_cloud(frame, group):
    """Fast tier: pca_frame(E3) without gradients (compiling the gradient of the
    frame average doubles the cost); the slow tier checks every frame and group
    with finite gradients."""
    with jax.enable_x64(True):
        grp = getattr(G, group)
        out = _run(FRAMES[frame], grp, with_grad=(frame, group) not in FAST)
        _assert_exact(out, NAMES, special=group.startswith(("SO", "SE")))


def test_control_plain_pca_frame_fails_on_degenerate_clouds():
    """plain_pca_frame: exact on generic and planar clouds, and the check bites on
    the symmetric ones (as its docstring says)."""
    with jax.enable_x64(True):
        names = ["generic", "planar", "cube", "methane", "benzene", "sf6"]
        out = _run(eq.frames.plain_pca_frame, G.E3, names, with_grad=False)
        _assert_exact(out, ["generic", "planar"])
        for name in ("cube", "methane", "benzene", "sf6"):
            assert out["orth"][name] < 1e-12  # valid elements, wrong frame
            assert max(out["inv"][name], out["eqv"][name]) > 1e-3, name


def test_gap_diagnostic():
    """pca_spectrum's gap is ~0 exactly on the degenerate clouds."""
    with jax.enable_x64(True):
        pts, mask = padded(NAMES)
        gap = jax.jit(jax.vmap(lambda x, m: eq.frames.pca_spectrum(x, m)[2]))(
            jnp.asarray(pts), jnp.asarray(mask)
        )
        gap = dict(zip(NAMES, np.asarray(gap).tolist(), strict=True))
        assert all(gap[n] < 1e-8 for n in DEGENERATE), gap
        assert gap["generic"] > 1e-3 and gap["planar"] > 1e-3


@pytest.mark.slow
def test_frames_2d_exact():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        ring = np.stack([np.cos(np.arange(6)), np.sin(np.arange(6))], -1)
        sq = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
        clouds = [
            rng.normal(size=(6, 2)),
            np.concatenate([sq, 2 * sq[:2]]),
            ring,
            np.tile([[0.3, 0.2]], (6, 1)),
            np.zeros((6, 2)),
        ]
        phi0 = mlp(0, 12, 4, dtype=np.float64)
        psi0 = mlp(1, 12, 12, dtype=np.float64)
        phi = lambda x: phi0(x + 0.3)
        psi = lambda x: psi0(x + 0.3).reshape(6, 2)
        for factory in (eq.frames.pca_frame, eq.frames.point_pair_frame):
            for name in ("E(2)", "O(2)", "SE(2)", "SO(2)"):
                frame = factory(name)
                act = eq.groups.cloud_action(frame.group)
                f = eq.frames.frame_average(phi, frame, act_in=act)
                fe = eq.frames.frame_average(psi, frame, act_in=act, act_out=act)
                gs = elements(frame.group, 3, 1, np.float64)

                def errs(x, f=f, fe=fe, act=act, gs=gs):
                    ys = jax.vmap(lambda g: f(act(g, x)))(gs)
                    yes = jax.vmap(lambda g: fe(act(g, x)))(gs)
                    want = jax.vmap(lambda g: act(g, fe(x)))(gs)
                    return jnp.max(_rel(ys, f(x)[None])), jnp.max(
                        _rel(yes, want, floor=1.0)
                    )

                e_inv, e_eqv = jax.jit(jax.vmap(errs))(jnp.asarray(np.stack(clouds)))
                assert float(e_inv.max()) < 1e-9, (name, e_inv)
                assert float(e_eqv.max()) < 1e-9, (name, e_eqv)


def test_float32_at_every_scale():
    """Float32 frames stay exact (1e-4) from 1e-20 to 1e15: the cloud is rescaled
    before the eigen-decomposition and the point-pair weights, so the weights are
    the same at every scale (the point-pair frame alone lost invariance at 1e-10
    and returned zero or NaN weights from 1e9)."""
    names = ["generic", "cube", "collinear", "benzene"]
    pts, mask = padded(names, pad_value=0.0, n_max=12)
    scales = np.array([1e-20, 1e-10, 1.0, 1e10, 1e15])
    x = (pts[None] * scales[:, None, None, None]).reshape(-1, 12, 3)
    x = jnp.asarray(x, jnp.float32)
    m = jnp.asarray(np.tile(mask, (len(scales), 1)))
    gs = elements(G.E3, 2, 3, np.float32)
    gs = G.EuclideanElement(gs.R, jnp.zeros_like(gs.t))  # no unit-scale shift
    act = eq.groups.cloud_action(G.E3)
    phi, _ = _backbones(np.float32, 12)
    frame = eq.frames.pca_frame(G.E3)  # its second part is point_pair_frame(E3)
    f = eq.frames.frame_average(phi, frame, act_in=act)

    @jax.jit
    def check(x, m):
        def one(x, m):
            xs = jnp.concatenate([x[None], jax.vmap(lambda g: act(g, x))(gs)])
            y, w = jax.vmap(lambda z: (f((z, m)), frame((z, m)).weights))(xs)
            return jnp.max(_rel(y[1:], y[:1])), w[0]

        return jax.vmap(one)(x, m)

    err, w = (np.asarray(v) for v in check(x, m))
    assert np.isfinite(w).all() and (w >= 0).all()
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert err.max() < 1e-4, err.reshape(len(scales), len(names))
    w = w.reshape(len(scales), len(names), -1)
    np.testing.assert_allclose(w, np.broadcast_to(w[2:3], w.shape), atol=1e-6)


@pytest.mark.parametrize(
    "dtype", [jnp.float16, pytest.param(jnp.bfloat16, marks=pytest.mark.slow)]
)
def test_half_precision_frames_within_documented_tolerance(dtype):
    """float16 / bfloat16 clouds: the PCA spectrum is decomposed in float32 and
    cast back (XLA has no half-precision eigh), so the frames run and stay in the
    input dtype, orthogonal and invariant to the half precision's rounding (within
    16 eps relative: 0.016 for float16, 0.125 for bfloat16, whose rounding of the
    rotated input alone moves a sum of cubes by several eps); the control, the
    backbone without averaging, is not invariant."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(7, 3)), dtype)
    R = elements(G.O3, 2, 3, np.float32)  # a rotation and a reflection
    frame = eq.frames.pca_frame(G.O3)
    act = eq.groups.cloud_action(G.O3)
    phi = lambda z: jnp.stack([jnp.sum(z[:, 0] ** 3), jnp.sum(z[:, 1] * z[:, 2])])
    f = eq.frames.frame_average(phi, frame, act_in=act)

    @jax.jit
    def check(x):
        xs = jax.vmap(lambda r: x @ r.T.astype(x.dtype))(R)
        return f(x), jax.vmap(f)(xs), phi(x), jax.vmap(phi)(xs), frame(x).elements

    y, ys, p, ps, els = check(x)
    assert y.dtype == dtype and els.dtype == dtype
    els = np.asarray(els, np.float64)
    tol = 16 * float(jnp.finfo(dtype).eps)
    assert np.abs(els @ els.swapaxes(-1, -2) - np.eye(3)).max() < tol
    y, ys = np.asarray(y, np.float64), np.asarray(ys, np.float64)
    assert np.abs(ys - y).max() / np.abs(y).max() < tol
    p, ps = np.asarray(p, np.float64), np.asarray(ps, np.float64)
    assert np.abs(ps - p).max() / np.abs(p).max() > 2 * tol  # the control bites
