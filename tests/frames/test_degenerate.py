"""Degenerate spectra: PCA frames fail there (and say so); point-pair frames are
exact."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from frames_util import elements, errors, invariance_error, point_backbones

import eqjax as eq

E3 = eq.groups.E3
ACT = eq.groups.cloud_action(E3)


def _cube():
    return np.array(list(itertools.product((-0.5, 0.5), repeat=3)))


def _tetrahedron():
    return np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)


def _square():
    return np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], float)


def _cylinder():
    ang = 2 * np.pi * np.arange(6) / 6
    ring = np.stack([np.cos(ang), np.sin(ang), np.zeros(6)], -1)
    return np.concatenate([ring + [0, 0, h] for h in (-1.0, 0.2, 1.5)])


def _planar():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(7, 2)), np.zeros((7, 1))], -1)


def _coincident():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    return np.concatenate([x, x[:2], x[:1]])


DEGENERATE = {
    "cube": _cube,
    "tetrahedron": _tetrahedron,
    "square": _square,
    "cylinder": _cylinder,
}
GENERIC_ODD = {"planar": _planar, "coincident": _coincident}


def _posed(shape_fn, dtype):
    """The shape in a random pose, so that its covariance is not exactly diagonal."""
    g = elements(E3, 1, 42, np.float64)
    return jnp.asarray(shape_fn() @ np.asarray(g.R[0]).T + np.asarray(g.t), dtype)


def test_gap_diagnostic_flags_degenerate_shapes():
    """Gap ~0 on the symmetric shapes; planar and coincident clouds are not
    degenerate."""
    with jax.enable_x64(True):
        gap = jax.jit(lambda x: eq.frames.pca_spectrum(x)[2])
        for shape in sorted(DEGENERATE):
            assert float(gap(_posed(DEGENERATE[shape], jnp.float64))) < 1e-8, shape
        for shape in sorted(GENERIC_ODD):
            assert float(gap(_posed(GENERIC_ODD[shape], jnp.float64))) > 1e-3, shape


@pytest.mark.parametrize(
    "shape",
    [
        "cube",
        pytest.param("square", marks=pytest.mark.slow),
        pytest.param("tetrahedron", marks=pytest.mark.slow),
        pytest.param("cylinder", marks=pytest.mark.slow),
    ],
)
def test_control_pca_frame_fails_on_degenerate_shapes(shape):
    """The known failure of PCA frames (the check bites on symmetric shapes)."""
    with jax.enable_x64(True):
        x = _posed(DEGENERATE[shape], jnp.float64)
        phi, _ = point_backbones(0, x.shape[0], dtype=jnp.float64)
        f = eq.frames.frame_average(phi, eq.frames.pca_frame(E3), act_in=ACT)
        gs = elements(E3, 6, 1, jnp.float64)
        assert invariance_error(f, ACT, gs, x) > 1e-3


# fast tier: the cube under E(3) (the registry rows check O(3) and SE(3) on the
# square, tetrahedron and ring)
_FAST = {("cube", "E3")}
CASES = [
    pytest.param(s, g, marks=() if (s, g) in _FAST else pytest.mark.slow)
    for s, g in [(s, "E3") for s in sorted(DEGENERATE) + sorted(GENERIC_ODD)]
    + [("tetrahedron", "SE3"), ("square", "O3"), ("cylinder", "SE3"), ("cube", "O3")]
]


@pytest.mark.parametrize("shape,name", CASES)
def test_point_pair_frame_exact_on_degenerate_shapes(shape, name):
    with jax.enable_x64(True):
        G = getattr(eq.groups, name)
        act = eq.groups.cloud_action(G)
        x = _posed({**DEGENERATE, **GENERIC_ODD}[shape], jnp.float64)
        phi, psi = point_backbones(0, x.shape[0], dtype=jnp.float64)
        frame = eq.frames.point_pair_frame(G)
        f = eq.frames.frame_average(phi, frame, act_in=act)
        fe = eq.frames.frame_average(psi, frame, act_in=act, act_out=act)
        gs = elements(G, 4, 1, jnp.float64)
        loss = lambda x: jnp.sum(f(x) ** 2) + jnp.sum(fe(x) ** 2)
        errs, grad = errors(
            {"inv": (f, None), "eqv": (fe, act)}, act, gs, x, extra=jax.grad(loss)
        )
        assert errs["inv"] < 1e-9 and errs["eqv"] < 1e-9
        assert bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.parametrize(
    "shape", ["planar", pytest.param("coincident", marks=pytest.mark.slow)]
)
def test_pca_frame_exact_on_planar_and_coincident(shape):
    with jax.enable_x64(True):
        x = _posed(GENERIC_ODD[shape], jnp.float64)
        phi, _ = point_backbones(0, x.shape[0], dtype=jnp.float64)
        f = eq.frames.frame_average(phi, eq.frames.pca_frame(E3), act_in=ACT)
        gs = elements(E3, 4, 1, jnp.float64)
        assert invariance_error(f, ACT, gs, x) < 1e-9


@pytest.mark.parametrize(
    "shape",
    [
        "cube",
        *(
            pytest.param(s, marks=pytest.mark.slow)
            for s in ("planar", "coincident", "cylinder", "square", "tetrahedron")
        ),
    ],
)
def test_gradients_finite_pca_frame(shape):
    x = _posed({**DEGENERATE, **GENERIC_ODD}[shape], jnp.float32)
    phi, psi = point_backbones(0, x.shape[0])
    frame = eq.frames.pca_frame(E3)
    f = eq.frames.frame_average(phi, frame, act_in=ACT)
    fe = eq.frames.frame_average(psi, frame, act_in=ACT, act_out=ACT)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(f(x) ** 2) + jnp.sum(fe(x) ** 2)))(x)
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_point_pair_frame_float32_and_mask():
    x = _posed(_cube, jnp.float32)
    phi, _ = point_backbones(0, 8)
    frame = eq.frames.point_pair_frame(E3)
    f = eq.frames.frame_average(phi, frame, act_in=ACT)
    gs = elements(E3, 4, 1)
    assert invariance_error(f, ACT, gs, x) < 1e-4
    # Padding points do not change the frame's weights on real pairs.
    pad = jnp.asarray(np.concatenate([np.asarray(x), np.full((2, 3), 9.0, np.float32)]))
    mask = jnp.asarray(np.arange(10) < 8)
    weights = jax.jit(lambda x, m: frame(x, m).weights)
    w = weights(pad, mask).reshape(2, 10, 10)[:, :8, :8].reshape(-1)
    np.testing.assert_allclose(w, weights(x, None), rtol=1e-5, atol=1e-7)


def test_point_pair_frame_2d_square():
    with jax.enable_x64(True):
        G = eq.groups.En(2)
        act = eq.groups.cloud_action(G)
        x = jnp.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]], jnp.float64)
        phi, _ = point_backbones(0, 4, d=2, dtype=jnp.float64)
        f = eq.frames.frame_average(phi, eq.frames.point_pair_frame("E2"), act_in=act)
        gs = elements(G, 4, 1, jnp.float64)
        assert invariance_error(f, act, gs, x) < 1e-9


def test_collinear_cloud_is_finite():
    """Rank-1 clouds: documented fallback, finite but not invariant."""
    x = jnp.array([[0.0, 0, 0], [1, 1, 1], [2, 2, 2], [-1, -1, -1]])
    fr = jax.jit(eq.frames.point_pair_frame(E3))(x)
    assert float(fr.weights[0]) == 1.0
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree_util.tree_leaves(fr))
