"""Exact tables: real SH in e3nn-jax's basis, 2D Fourier change of basis, Gaunt."""

import functools
import itertools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqjax.tensor_products import _tables as tb
from eqjax.tensor_products import (
    fourier_to_sh,
    gaunt_coefficients,
    real_spherical_harmonics,
    sh_to_fourier,
)

_RNG = np.random.default_rng(0)
_THETA, _PHI = _RNG.uniform(0, np.pi, 200), _RNG.uniform(0, 2 * np.pi, 200)
# one Gauss–Legendre x uniform grid, exact for every triple product tested below
# (l1 + l2 + l3 <= 24)
_X, _W = np.polynomial.legendre.leggauss(14)
_GRID = np.meshgrid(np.arccos(_X), 2 * np.pi * np.arange(26) / 26, indexing="ij")
_LMAX = 10


@functools.cache
def _e3nn_sh_all():
    """e3nn-jax harmonics (integral normalisation, float64) up to degree 10 at the
    random points and on the quadrature grid, in one call (one compilation)."""
    theta = np.concatenate([_THETA, _GRID[0].ravel()])
    phi = np.concatenate([_PHI, _GRID[1].ravel()])
    with jax.enable_x64(True):
        xyz = e3nn.angles_to_xyz(jnp.asarray(phi), jnp.asarray(theta))
        irreps = e3nn.Irreps.spherical_harmonics(_LMAX)
        sh = jax.jit(
            lambda v: (
                e3nn.spherical_harmonics(
                    irreps, v, True, normalization="integral"
                ).array
            )
        )
        y = np.asarray(sh(xyz), dtype=np.float64)
    return y[:200], y[200:].reshape(_GRID[0].shape + (-1,))


def test_real_sh_match_e3nn():
    ours = real_spherical_harmonics(_LMAX, _THETA, _PHI)
    np.testing.assert_allclose(ours, _e3nn_sh_all()[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("L", [0, 1, 4, 9])
def test_sh_to_fourier_is_exact(L):
    theta, phi = _THETA[:50], _PHI[:50]
    T = sh_to_fourier(L)
    n = np.arange(-L, L + 1)
    e = np.exp(1j * (n[None, :, None] * theta[:, None, None] + n * phi[:, None, None]))
    y = np.einsum("iuv,suv->si", T, e)
    ref = _e3nn_sh_all()[0][:50, : (L + 1) ** 2]
    np.testing.assert_allclose(y.real, ref, atol=1e-12, rtol=0)
    assert np.abs(y.imag).max() < 1e-13
    # sparsity: Y_lm only has v = ±m and |u| <= l
    for l in range(L + 1):
        for m in range(-l, l + 1):
            mask = np.ones((2 * L + 1, 2 * L + 1), bool)
            mask[L - l : L + l + 1, [L - abs(m), L + abs(m)]] = False
            assert np.abs(T[l * l + l + m][mask]).max(initial=0) == 0


@pytest.mark.parametrize("L,D", [(3, 3), (4, 9), (6, 12)])
def test_back_map_inverts_forward_map(L, D):
    T = sh_to_fourier(D)
    B = fourier_to_sh(L, D)
    P = np.einsum("iuv,uvj->ij", T, B).real
    expected = np.eye((D + 1) ** 2)[:, : (L + 1) ** 2]
    np.testing.assert_allclose(P, expected, atol=1e-12)
    # not a plain transpose: the sin(theta) measure mixes all u
    assert np.abs(B - np.conj(T[: (L + 1) ** 2].transpose(1, 2, 0))).max() > 1e-2


def _quadrature_gaunt(l1, l2, l3):
    """Independent: Gauss–Legendre x uniform quadrature of three e3nn-jax harmonics."""
    Y = _e3nn_sh_all()[1]
    W = _W[:, None] * (2 * np.pi / _GRID[0].shape[1])
    b = lambda l: Y[..., l * l : (l + 1) ** 2]
    return np.einsum("tp,tpi,tpj,tpk->ijk", W, b(l1), b(l2), b(l3))


def test_gaunt_matches_quadrature():
    for l1, l2, l3 in itertools.product(range(4), repeat=3):
        G = gaunt_coefficients(l1, l2, l3)
        assert G.shape == (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
        np.testing.assert_allclose(G, _quadrature_gaunt(l1, l2, l3), atol=1e-12)
    for l1, l2, l3 in [(4, 4, 4), (7, 8, 9), (10, 6, 4), (10, 10, 0)]:
        G = gaunt_coefficients(l1, l2, l3)
        np.testing.assert_allclose(G, _quadrature_gaunt(l1, l2, l3), atol=1e-12)


def test_gaunt_selection_rules_exact_zeros():
    for l1, l2, l3 in itertools.product(range(6), repeat=3):
        G = gaunt_coefficients(l1, l2, l3)
        allowed = (l1 + l2 + l3) % 2 == 0 and abs(l1 - l2) <= l3 <= l1 + l2
        if allowed:
            assert np.abs(G).max() > 1e-3
        else:
            assert np.all(G == 0.0)


def test_gaunt_is_symmetric():
    G = gaunt_coefficients(2, 3, 3)
    np.testing.assert_allclose(
        G, gaunt_coefficients(3, 2, 3).transpose(1, 0, 2), atol=1e-14
    )
    np.testing.assert_allclose(G, np.swapaxes(G, 1, 2), atol=1e-14)
    np.testing.assert_allclose(
        G, gaunt_coefficients(3, 3, 2).transpose(2, 0, 1), atol=1e-14
    )


def test_gaunt_equals_clebsch_gordan_times_known_scalar():
    with jax.enable_x64(True):
        for l1, l2, l3 in itertools.product(range(6), repeat=3):
            if (l1 + l2 + l3) % 2 or not abs(l1 - l2) <= l3 <= l1 + l2:
                continue
            C = np.asarray(e3nn.clebsch_gordan(l1, l2, l3))
            G = gaunt_coefficients(l1, l2, l3)
            scale = tb.gaunt_scale(l1, l2, l3)
            sign = np.sign((G * C).sum())
            np.testing.assert_allclose(G, sign * scale * C, atol=1e-12)
            assert sign == 1.0  # e3nn's real CG and the Gaunt tensor share a sign


def test_gaunt_cached_and_readonly():
    assert gaunt_coefficients(2, 2, 2) is gaunt_coefficients(2, 2, 2)
    assert sh_to_fourier(3) is sh_to_fourier(3)
    with pytest.raises(ValueError):
        gaunt_coefficients(2, 2, 2)[0, 0, 0] = 1.0


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_bad_degrees_raise(bad):
    with pytest.raises(ValueError, match="non-negative"):
        gaunt_coefficients(bad, 1, 1)
    with pytest.raises(ValueError, match="non-negative"):
        sh_to_fourier(bad)
