import jax
import jax.numpy as jnp
import numpy as np
import pytest
from frames_util import (
    elements,
    errors,
    invariance_error,
    normal,
    point_backbones,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import eqjax as eq

GROUPS = {
    "O3": eq.groups.O3,
    "SO3": eq.groups.SO3,
    "E3": eq.groups.E3,
    "SE3": eq.groups.SE3,
}
ACT = {k: eq.groups.cloud_action(G) for k, G in GROUPS.items()}
N = 7


def _setup(name, seed, dtype, n=N):
    G = GROUPS[name]
    phi, psi = point_backbones(seed, n, dtype=dtype)
    x = normal(seed + 7, (n, 3), dtype, shift=0.3)
    gs = elements(G, 6, seed + 9, dtype)
    frame = eq.frames.plain_pca_frame(G)  # pca_frame: tests/frames/test_clouds.py
    f_inv = eq.frames.frame_average(phi, frame, act_in=ACT[name])
    f_eqv = eq.frames.frame_average(psi, frame, act_in=ACT[name], act_out=ACT[name])
    return ACT[name], x, gs, f_inv, f_eqv


def _check_exact(name, seed, dtype, tol):
    act, x, gs, f_inv, f_eqv = _setup(name, seed, dtype)
    assert jax.eval_shape(f_inv, x).dtype == jax.eval_shape(f_eqv, x).dtype == dtype
    errs, y = errors(
        {"inv": (f_inv, None), "eqv": (f_eqv, act)}, act, gs, x, extra=f_inv
    )
    assert float(np.max(np.abs(y))) > 1e-3  # not a trivial zero output
    assert errs["inv"] < tol and errs["eqv"] < tol


@pytest.mark.parametrize(
    "name,dtype",
    [
        ("O3", jnp.float64),
        pytest.param("SE3", jnp.float64, marks=pytest.mark.slow),
        ("SO3", jnp.float32),
        pytest.param("E3", jnp.float32, marks=pytest.mark.slow),
    ],
)
def test_pca_frame_exact(name, dtype):
    """Invariance and equivariance, every group once, float64 and float32."""
    with jax.enable_x64(dtype == jnp.float64):
        _check_exact(name, 3, dtype, 1e-9 if dtype == jnp.float64 else 1e-4)


@pytest.mark.slow
@settings(max_examples=12)
@given(
    name=st.sampled_from(sorted(GROUPS)),
    seed=st.integers(0, 10_000),
    dtype=st.sampled_from([jnp.float32, jnp.float64]),
)
def test_pca_frame_exact_property(name, seed, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        _check_exact(name, seed, dtype, 1e-9 if dtype == jnp.float64 else 1e-4)


@pytest.mark.slow
def test_reflections_and_translations_are_sampled():
    with jax.enable_x64(True):
        g = jax.jit(eq.groups.E3.sample, static_argnums=1)(jax.random.key(0), (64,))
        dets = np.linalg.det(np.asarray(g.R))
        assert (dets < 0).any() and (dets > 0).any()
        assert float(jnp.min(jnp.linalg.norm(g.t, axis=-1))) > 0


@pytest.mark.parametrize("name", ["O3", pytest.param("E3", marks=pytest.mark.slow)])
def test_jit_vmap_grad(name):
    with jax.enable_x64(True):
        act, x, gs, f_inv, _ = _setup(name, 11, jnp.float64)
        x_np = np.asarray(x)
        xs = jnp.asarray(np.stack([x_np, 2 * x_np + 1.0, -x_np]))
        jf, f1 = jax.jit(jax.vmap(f_inv)), jax.jit(f_inv)
        np.testing.assert_allclose(jf(xs), np.stack([f1(v) for v in xs]), rtol=1e-10)
        ys = jf(jax.jit(jax.vmap(act, (0, None)))(gs, x))
        assert float(np.max(np.abs(ys - f1(x)[None]))) < 1e-9 * float(
            np.max(np.abs(ys))
        )
        # Gradients: finite, and equivariant (the frame is held fixed, which keeps
        # the averaged function's gradient equivariant).
        loss = jax.jit(jax.grad(lambda x: jnp.sum(f_inv(x) ** 2)))
        g0 = gs[0] if name == "O3" else gs.R[0]
        gr = loss(x)
        assert bool(jnp.all(jnp.isfinite(gr)))
        gr_rot = loss(act(jax.tree_util.tree_map(lambda e: e[0], gs), x))
        np.testing.assert_allclose(gr_rot, gr @ g0.T, atol=1e-9)


def test_control_so3_frame_fails_under_reflection():
    """The 4-element SO(3) frame is not O(3)-equivariant: the check must bite."""
    with jax.enable_x64(True):
        phi, _ = point_backbones(0, N, dtype=jnp.float64)
        x = normal(1, (N, 3), jnp.float64)
        frame = eq.frames.plain_pca_frame(eq.groups.SO3)
        f = eq.frames.frame_average(phi, frame, act_in=ACT["O3"])
        assert frame.size == 4
        R = elements(eq.groups.SO3, 4, 2, jnp.float64)
        reflections = -R  # det = -1
        assert invariance_error(f, ACT["O3"], R, x) < 1e-9
        assert invariance_error(f, ACT["O3"], reflections, x) > 1e-3


def test_control_no_frame_is_not_invariant():
    with jax.enable_x64(True):
        phi, _ = point_backbones(0, N, dtype=jnp.float64)
        x = normal(1, (N, 3), jnp.float64)
        gs = elements(eq.groups.E3, 4, 2, jnp.float64)
        assert invariance_error(phi, ACT["E3"], gs, x) > 1e-2


@pytest.mark.parametrize(
    "name,k",
    [
        ("SE(5)", 16),
        pytest.param("O(2)", 4, marks=pytest.mark.slow),
        pytest.param("SO(2)", 2, marks=pytest.mark.slow),
        pytest.param("E(4)", 16, marks=pytest.mark.slow),
    ],
)
def test_general_dimension(name, k):
    with jax.enable_x64(True):
        d = int(name.split("(")[1][:-1])
        frame = eq.frames.plain_pca_frame(name)
        G = frame.group
        act = eq.groups.cloud_action(G)
        phi, psi = point_backbones(d, 9, d=d, dtype=jnp.float64)
        x = normal(1, (9, d), jnp.float64)
        assert frame.size == k
        gs = elements(G, 4, 2, jnp.float64)
        f = eq.frames.frame_average(phi, frame, act_in=act)
        fe = eq.frames.frame_average(psi, frame, act_in=act, act_out=act)
        errs = errors({"inv": (f, None), "eqv": (fe, act)}, act, gs, x)
        assert errs["inv"] < 1e-9 and errs["eqv"] < 1e-9


def test_special_frames_have_det_one():
    x = normal(0, (3, 8, 3))
    fr = jax.jit(eq.frames.plain_pca_frame(eq.groups.SE3))(x)
    assert fr.elements.R.shape == (3, 4, 3, 3)
    np.testing.assert_allclose(np.linalg.det(fr.elements.R), 1.0, atol=1e-5)
    R = np.asarray(jax.jit(eq.frames.plain_pca_frame(eq.groups.O3))(x).elements)
    eye = np.broadcast_to(np.eye(3), R.shape)
    np.testing.assert_allclose(np.swapaxes(R, -1, -2) @ R, eye, atol=1e-5)


def test_masked_points_match_unpadded():
    with jax.enable_x64(True):
        phi, _ = point_backbones(0, 6, dtype=jnp.float64)
        x = normal(1, (6, 3), jnp.float64)
        pad = jnp.concatenate([x, 100 * jnp.ones((3, 3))])
        mask = jnp.arange(9) < 6
        frame = eq.frames.plain_pca_frame(eq.groups.E3)
        a, b = jax.jit(frame)(x), jax.jit(frame)(pad, mask)
        np.testing.assert_allclose(a.elements.R, b.elements.R, atol=1e-12)
        np.testing.assert_allclose(a.elements.t, b.elements.t, atol=1e-12)
        # Masked clouds through frame_average: input (points, mask), act on points.
        act = lambda g, xm: (ACT["E3"](g, xm[0]), xm[1])
        f = jax.jit(
            eq.frames.frame_average(lambda xm: phi(xm[0][:6]), frame, act_in=act)
        )
        g = elements(eq.groups.E3, 1, 3, jnp.float64)
        g = jax.tree_util.tree_map(lambda e: e[0], g)
        np.testing.assert_allclose(f((pad, mask)), f(act(g, (pad, mask))), rtol=1e-9)
        np.testing.assert_allclose(
            f((pad, mask)),
            jax.jit(eq.frames.frame_average(phi, frame, act_in=ACT["E3"]))(x),
            rtol=1e-10,
        )


def test_bad_inputs():
    frame = eq.frames.pca_frame(eq.groups.E3)
    with pytest.raises(ValueError, match="at least 3 points"):
        frame(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="mask"):
        frame(jnp.ones((5, 3)), jnp.ones(4, bool))
    with pytest.raises(ValueError, match=r"\(\.\.\., n, 3\)"):
        frame(jnp.ones((5, 2)))
    with pytest.raises(TypeError, match="floating"):
        frame(jnp.ones((5, 3), jnp.int32))
    with pytest.raises(ValueError, match="unknown group name"):
        eq.frames.pca_frame("SU2")
    with pytest.raises(TypeError, match="mask must be boolean"):
        frame(jnp.ones((5, 3)), jnp.ones(5))
    for name in ("O(40)", "E(17)"):  # 2^40 sign patterns: refused at construction
        with pytest.raises(ValueError, match="2\\^"):
            eq.frames.plain_pca_frame(name)
        with pytest.raises(ValueError, match="2\\^"):
            eq.frames.pca_frame(name)
    with pytest.raises(ValueError, match="plain_pca_frame"):
        eq.frames.pca_frame("E(4)")  # no degenerate-safe fallback for d >= 4
    with pytest.raises(TypeError, match="mask must be boolean"):
        eq.groups.cloud_action(eq.groups.E3)(
            eq.groups.E3.identity(), (jnp.ones((5, 3)), jnp.ones(5))
        )
    # All-padded cloud: a finite frame of valid elements, gap diagnostic 0.
    x, mask = jnp.ones((5, 3)), jnp.zeros(5, bool)
    fr, gap = jax.jit(lambda x, m: (frame(x, m), eq.frames.pca_spectrum(x, m)[2]))(
        x, mask
    )
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree_util.tree_leaves(fr))
    assert abs(float(fr.weights.sum()) - 1) < 1e-6 and float(gap) == 0.0
