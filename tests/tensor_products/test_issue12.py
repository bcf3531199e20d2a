"""Issue 12: lmax_out far above L1+L2 on the FFT path, fast Gaunt tables, weights
that broadcast the input, half precision, the normalisation convention against
e3nn-jax, and clear errors for bad many-body weights."""

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqjax.tensor_products import (
    bessel_basis,
    fourier_to_sh,
    gaunt_coefficients,
    gaunt_many_body,
    gaunt_power,
    gaunt_tensor_product,
    gaunt_vector_product,
    sh_to_fourier,
    smooth_cutoff,
)


def _x64(irreps, seed, shape=()):
    irreps = e3nn.Irreps(irreps)
    a = np.random.default_rng(seed).normal(size=shape + (irreps.dim,))
    return e3nn.IrrepsArray(irreps, jnp.asarray(a, jnp.float64))


@pytest.mark.parametrize("lmax_out", [pytest.param(5, marks=pytest.mark.slow), 8])
def test_fft_lmax_out_above_total_degree(lmax_out):
    """The reproduction of issue 12: 0e+1o+2e squared to lmax_out = 8 on the FFT
    path (and power, vector product) agrees with s2grid and fourier_direct."""
    with jax.enable_x64(True):
        x, z = _x64("0e+1o+2e", 0, (2,)), _x64("0e+1o+2e", 1, (2,))
        ref = gaunt_tensor_product(x, x, lmax_out=lmax_out, method="s2grid")
        for m in ("fourier_fft", "fourier_direct"):
            y = gaunt_tensor_product(x, x, lmax_out=lmax_out, method=m)
            np.testing.assert_allclose(y.array, ref.array, atol=1e-12)
        p = [gaunt_power(x, 2, lmax_out=lmax_out, method=m).array
             for m in ("fourier_fft", "s2grid")]  # fmt: skip
        np.testing.assert_allclose(p[0], p[1], atol=1e-12)
        np.testing.assert_allclose(p[0], ref.array, atol=1e-12)
        v = [gaunt_vector_product(x, z, lmax_out=lmax_out, method=m).array
             for m in ("fourier_fft", "s2grid")]  # fmt: skip
        np.testing.assert_allclose(v[0], v[1], atol=1e-12)
        assert np.abs(v[1]).max() > 1e-2  # not trivially zero
        # degrees above L1 + L2 are exactly zero
        assert np.abs(np.asarray(ref.array)[..., 25:]).max() < 1e-12


def _fourier_gaunt(l1, l2, l3):
    """Independent reference (the former construction): product of the two 2D
    Fourier series by convolution, then the exact back map to harmonics."""
    D = l1 + l2
    T = sh_to_fourier(max(l1, l2, l3))
    L = max(l1, l2, l3)
    t1 = T[l1 * l1 : (l1 + 1) ** 2]
    t2 = T[l2 * l2 : (l2 + 1) ** 2]
    n = 2 * (2 * L) + 1
    f1 = np.fft.fft2(t1, s=(n, n))
    f2 = np.fft.fft2(t2, s=(n, n))
    prod = np.fft.ifft2(f1[:, None] * f2[None, :])  # centred at 2L
    idx = np.arange(2 * L - D, 2 * L + D + 1)
    prod = prod[..., idx, :][..., idx]
    B = fourier_to_sh(max(D, l3), D)[..., l3 * l3 : (l3 + 1) ** 2]
    return np.tensordot(prod, B, axes=([2, 3], [0, 1])).real


def test_fast_tables_match_fourier_construction():
    for l1, l2, l3 in [
        (2, 3, 3),
        (3, 4, 5),
        (4, 4, 2),
        (1, 5, 6),
        (5, 5, 8),
        (9, 8, 7),
    ]:
        np.testing.assert_allclose(
            gaunt_coefficients(l1, l2, l3), _fourier_gaunt(l1, l2, l3), atol=1e-13
        )


@pytest.mark.slow  # e3nn.clebsch_gordan at L = 12 takes ~10 s
def test_fast_tables_large_degree_selection_rules_and_cg():
    """At L = 12 the tables still equal e3nn's Clebsch–Gordan tensor times the
    closed-form scale, with exact zeros off the selection rules."""
    from eqjax.tensor_products import _tables as tb

    with jax.enable_x64(True):
        for l1, l2, l3 in [(12, 10, 8), (9, 7, 12)]:
            G = gaunt_coefficients(l1, l2, l3)
            C = np.asarray(e3nn.clebsch_gordan(l1, l2, l3))
            np.testing.assert_allclose(G, tb.gaunt_scale(l1, l2, l3) * C, atol=1e-12)
    assert np.all(gaunt_coefficients(12, 10, 9) == 0.0)
    assert np.all(gaunt_coefficients(12, 3, 16) == 0.0)
    G = gaunt_coefficients(12, 12, 12)
    np.testing.assert_allclose(G, G.transpose(1, 2, 0), atol=1e-14)


def test_weights_broadcast_a_single_channel_input():
    """Per-channel weights on a one-channel input act as if the input were copied
    into every channel (the docstring's promise)."""
    with jax.enable_x64(True):
        x1 = _x64("0e+1o", 0, (3,))
        x4 = _x64("4x0e+4x1o", 1, (3,))
        w = jnp.asarray(np.random.default_rng(2).normal(size=(4, 2)))
        y = gaunt_tensor_product(x1, x4, weights1=w, lmax_out=2, method="s2grid")
        a = np.asarray(x1.array)
        tiled = np.concatenate(
            [a[:, :1] * np.asarray(w[:, 0]),
             (a[:, None, 1:] * np.asarray(w[:, 1, None])).reshape(3, 12)], -1
        )  # fmt: skip
        ref = gaunt_tensor_product(
            e3nn.IrrepsArray("4x0e+4x1o", jnp.asarray(tiled)), x4, lmax_out=2,
            method="s2grid",
        )  # fmt: skip
        assert y.irreps == e3nn.Irreps("4x0e+4x1o+4x2e")
        np.testing.assert_allclose(y.array, ref.array, atol=1e-13)
        # per-item weights add a batch axis
        we = jnp.ones((5, 3, 4, 2))
        assert gaunt_tensor_product(x4, x4, weights1=we, lmax_out=1).shape == (5, 3, 16)
        with pytest.raises(ValueError, match="weights1 of shape"):
            gaunt_tensor_product(x4, x4, weights1=jnp.ones((3, 2)))


@pytest.mark.parametrize("dtype,tol", [(jnp.float16, 5e-3), (jnp.bfloat16, 3e-2)])
def test_half_precision_documented_tolerance(dtype, tol):
    """float16/bfloat16 are computed in float32 and rounded back: the result keeps
    the input dtype and is within the documented tolerance of float32."""
    x = _x64("2x0e+2x1o+2x2e", 3, (4,))
    x32 = x.astype(jnp.float32)
    xh = x32.astype(dtype)
    for method in ("s2grid", "fourier_fft"):
        y = gaunt_tensor_product(xh, xh, lmax_out=3, method=method)
        assert y.dtype == dtype
        ref = gaunt_tensor_product(xh.astype(jnp.float32), xh.astype(jnp.float32),
                                   lmax_out=3, method=method)  # fmt: skip
        err = np.abs(np.asarray(y.array, np.float32) - np.asarray(ref.array))
        assert err.max() / np.abs(np.asarray(ref.array)).max() < tol


@pytest.mark.slow  # e3nn's s2grid compiles for ~30 s here
def test_component_normalization_matches_e3nn_s2grid():
    """The table in eqjax.tensor_products: eqjax "component" coefficients are
    e3nn.to_s2grid(normalization="integral") grid functions; "integral" ones are
    √(4π) larger for the same function; e3nn's "component"/"norm" grids are
    per-degree rescalings of the coefficients."""
    ls = np.repeat(np.arange(3), 2 * np.arange(3) + 1)
    scale = {"component": 1 / np.sqrt((2 * ls + 1) * 3), "norm": np.full(9, 3**-0.5)}

    def grid(x, norm):
        return e3nn.to_s2grid(x, 6, 11, quadrature="gausslegendre",
                              normalization=norm, p_val=1, p_arg=-1)  # fmt: skip

    @jax.jit
    def run(x1, x2):
        g = grid(x1, "integral") * grid(x2, "integral")
        e3 = e3nn.from_s2grid(g, "0e+1o+2e+3o+4e", normalization="integral")
        y = gaunt_tensor_product(x1, x2, method="s2grid")  # default: component
        k = np.sqrt(4 * np.pi)
        yi = gaunt_tensor_product(x1 * k, x2 * k, normalization="integral",
                                  method="s2grid")  # fmt: skip
        pairs = [
            (grid(x1, n).grid_values,
             grid(e3nn.IrrepsArray(x1.irreps, x1.array * s), "integral").grid_values)
            for n, s in scale.items()
        ]  # fmt: skip
        return e3.array, y.array, yi.array / k, pairs

    with jax.enable_x64(True):
        e3, y, yi, pairs = run(_x64("0e+1o+2e", 4), _x64("0e+1o+2e", 5))
    np.testing.assert_allclose(y, e3, atol=1e-12)
    np.testing.assert_allclose(yi, y, atol=1e-12)
    for a, b in pairs:
        np.testing.assert_allclose(a, b, atol=1e-12)
    assert np.abs(y).max() > 0.1


def test_component_default_keeps_activations_at_unit_scale():
    """Issue 12 measured first-layer RMS 0.003 ("integral") vs 0.12: with unit
    inputs, "component" outputs are O(1) and √(4π) larger."""
    x = _x64("8x0e+8x1o+8x2e", 6, (64,)).astype(jnp.float32)
    yc = gaunt_tensor_product(x, x, lmax_out=2, method="s2grid").array
    yi = gaunt_tensor_product(x, x, lmax_out=2, method="s2grid",
                              normalization="integral").array  # fmt: skip
    rms_c, rms_i = float(jnp.sqrt(jnp.mean(yc**2))), float(jnp.sqrt(jnp.mean(yi**2)))
    assert 0.3 < rms_c < 10.0
    np.testing.assert_allclose(rms_c / rms_i, np.sqrt(4 * np.pi), rtol=1e-4)


@pytest.mark.parametrize(
    "w_in,w_out,match",
    [
        ((0, 2), (0, 3), "non-empty"),
        ((0,), (0,), "non-empty"),
        ((3, 0), (3, 3), "weights_in"),
        ((3, 2), (3, 0), "weights_out"),
        ((2, 0, 2), (2, 0, 3), "weights_in"),
        ((2, 5, 2), (2, 5, 3), "weights_in"),
        ((2, 2), (3, 3), "same"),
    ],
)
def test_many_body_bad_weights_raise_clearly(w_in, w_out, match):
    x = e3nn.IrrepsArray("3x0e+3x1o", jnp.ones(12))
    with pytest.raises(ValueError, match=match):
        gaunt_many_body(x, jnp.ones(w_in), jnp.ones(w_out), lmax_out=2)


def test_radial_basis_finite_at_zero_and_cutoff():
    r = jnp.array([0.0, 1e-9, 1.0, 4.999, 5.0, 7.0])

    def f(r):
        return bessel_basis(r, 4, 5.0) * smooth_cutoff(r, 5.0)[..., None]

    val, grad = jax.jit(lambda r: (f(r), jax.vmap(jax.jacfwd(f))(r)))(r)
    assert np.all(np.isfinite(val)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(val[-2:], 0.0)
    np.testing.assert_allclose(val[0], val[1], rtol=1e-5)
    np.testing.assert_allclose(smooth_cutoff(jnp.zeros(1), 5.0), [1.0])
    for bad in (0, 2.5, "4"):
        with pytest.raises(ValueError, match="num_basis"):
            bessel_basis(r, bad, 5.0)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="cutoff"):
            smooth_cutoff(r, bad)
    with pytest.raises(TypeError, match="floating"):
        bessel_basis(jnp.arange(3), 4, 5.0)


@pytest.mark.slow
def test_orthonormal_bessel():
    """∫_0^c r² B_n B_m dr = δ_nm (DimeNet's normalisation), by quadrature."""
    x, w = np.polynomial.legendre.leggauss(200)
    r = 2.5 * (x + 1)
    with jax.enable_x64(True):
        B = np.asarray(bessel_basis(jnp.asarray(r), 5, 5.0))
    gram = np.einsum("q,qn,qm->nm", w * 2.5 * r**2, B, B)
    np.testing.assert_allclose(gram, np.eye(5), atol=1e-10)
