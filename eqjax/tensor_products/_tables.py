"""Exact float64 NumPy tables: real spherical harmonics in e3nn-jax's basis, their
2D Fourier coefficients (and the back map), Gauss–Legendre grids, Gaunt coefficients.

Conventions (e3nn-jax's, so an ``IrrepsArray`` passes through unchanged):

* Angles: ``x = (sin θ sin φ, cos θ, sin θ cos φ)`` (``e3nn.angles_to_xyz(φ, θ)``),
  i.e. the polar axis is ``y`` and ``φ = atan2(x, z)``.
* Index ``i = l² + l + m`` with ``m = -l … l``.
* ``Y_lm(θ, φ) = Θ_l|m|(θ) Φ_m(φ)``, ``Φ_m = cos(mφ)`` for ``m > 0``, ``1`` for
  ``m = 0``, ``sin(|m|φ)`` for ``m < 0``, and
  ``Θ_l|m| = √2^[m≠0] N_l|m| P_l^|m|(cos θ)``
  without the Condon–Shortley phase.
* Normalisation ``"integral"`` (orthonormal, ``∫ Y_i Y_j dΩ = δ_ij``) is what every
  table here uses; e3nn-jax's default ``"component"`` harmonics are ``√(4π)`` times
  these (see :func:`eqjax.tensor_products.gaunt_tensor_product`).

Every ``Θ_l|m|`` is a trigonometric polynomial of degree ``l`` in θ (continued to
θ ∈ [0, 2π) through ``sin θ``), so ``Y_lm`` is a 2D trigonometric polynomial and
sampling it on a ``(2l+1)²`` torus grid followed by an FFT gives its Fourier
coefficients exactly (up to float64 rounding). Tables are cached per degree and
returned read-only.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "fourier_to_sh",
    "gaunt_coefficients",
    "real_spherical_harmonics",
    "sh_to_fourier",
]


def _check_degree(l: int, what: str) -> int:
    if isinstance(l, bool) or not isinstance(l, int | np.integer) or l < 0:
        raise ValueError(f"{what} must be a non-negative Python int, got {l!r}")
    return int(l)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def legendre_theta(lmax: int, theta: np.ndarray) -> np.ndarray:
    """``Θ_l|m|(θ)`` of shape ``(lmax+1, lmax+1, *theta.shape)`` indexed ``[l, |m|]``
    (zero for ``|m| > l``), including the ``√2`` of the real ``m ≠ 0`` harmonics.

    Stable three-term recurrence on the orthonormal associated Legendre functions;
    ``sin θ`` is used with its sign, so the result is the trigonometric-polynomial
    continuation to θ ∈ [0, 2π).
    """
    theta = np.asarray(theta, dtype=np.float64)
    c, s = np.cos(theta), np.sin(theta)
    out = np.zeros((lmax + 1, lmax + 1) + theta.shape)
    out[0, 0] = 1.0 / math.sqrt(4.0 * math.pi)
    for m in range(1, lmax + 1):
        out[m, m] = math.sqrt((2.0 * m + 1.0) / (2.0 * m)) * s * out[m - 1, m - 1]
    for m in range(0, lmax):
        out[m + 1, m] = math.sqrt(2.0 * m + 3.0) * c * out[m, m]
    for m in range(0, lmax + 1):
        for l in range(m + 2, lmax + 1):
            a = math.sqrt((4.0 * l * l - 1.0) / (l * l - m * m))
            b = math.sqrt(((l - 1.0) ** 2 - m * m) / (4.0 * (l - 1.0) ** 2 - 1.0))
            out[l, m] = a * (c * out[l - 1, m] - b * out[l - 2, m])
    out[:, 1:] *= math.sqrt(2.0)
    return out


def phi_functions(lmax: int, phi: np.ndarray) -> np.ndarray:
    """``Φ_m(φ)`` of shape ``(2lmax+1, *phi.shape)`` indexed ``m + lmax``."""
    phi = np.asarray(phi, dtype=np.float64)
    m = np.arange(-lmax, lmax + 1).reshape((-1,) + (1,) * phi.ndim)
    return np.where(m > 0, np.cos(m * phi), np.where(m < 0, np.sin(-m * phi), 1.0))


def real_spherical_harmonics(lmax: int, theta, phi) -> np.ndarray:
    """Real spherical harmonics of e3nn-jax (``normalize=True``,
    ``normalization="integral"``) as functions of the angles, in float64 NumPy.

    Args:
      lmax: largest degree (Python int).
      theta: polar angles θ (from the ``y`` axis), any shape ``S``.
      phi: azimuths φ = atan2(x, z), broadcastable with ``theta``.

    Returns:
      ``(*S, (lmax+1)²)`` array, ordered like e3nn-jax (``l`` major, ``m = -l … l``).

    Example:
      >>> import numpy as np
      >>> y = real_spherical_harmonics(1, np.pi / 2, 0.0)   # the point (0, 0, 1)
      >>> np.round(y * np.sqrt(4 * np.pi / 3), 12)[1:]
      array([0., 0., 1.])
    """
    lmax = _check_degree(lmax, "lmax")
    theta, phi = np.broadcast_arrays(np.asarray(theta, float), np.asarray(phi, float))
    th = legendre_theta(lmax, theta)
    ph = phi_functions(lmax, phi)
    out = np.zeros(theta.shape + ((lmax + 1) ** 2,))
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            out[..., l * l + l + m] = th[l, abs(m)] * ph[m + lmax]
    return out


@functools.cache
def theta_fourier(lmax: int) -> np.ndarray:
    """Real ``A[l, |m|, u]`` (shape ``(lmax+1, lmax+1, 2lmax+1)``, ``u + lmax``) with
    ``Θ_l|m|(θ) = Σ_u i^(|m| mod 2) A[l, |m|, u] e^{iuθ}`` exactly.

    ``Θ_l|m|`` has parity ``(-1)^|m|`` in θ, so its coefficients are real and even for
    even ``|m|`` and imaginary and odd for odd ``|m|``: storing ``A`` real is exact.
    """
    n = 2 * lmax + 1
    theta = 2 * np.pi * np.arange(n) / n
    vals = legendre_theta(lmax, theta)  # [l, m, j]
    coef = np.fft.fftshift(np.fft.fft(vals, axis=-1) / n, axes=-1)  # [l, m, u]
    odd = (np.arange(lmax + 1) % 2 == 1)[None, :, None]
    A = np.where(odd, coef.imag, coef.real)
    # Exact structure: Θ_l|m| = sin^|m|θ · poly_{l-|m|}(cos θ) only holds frequencies
    # |u| ≤ l with u ≡ l (mod 2), and is even (odd) in θ for even (odd) |m|.
    l = np.arange(lmax + 1)[:, None, None]
    u = np.arange(-lmax, lmax + 1)[None, None, :]
    m = np.arange(lmax + 1)[None, :, None]
    A = np.where((np.abs(u) <= l) & ((u - l) % 2 == 0) & (m <= l), A, 0.0)
    A = 0.5 * (A + np.where(odd, -1.0, 1.0) * A[..., ::-1])
    return _readonly(A)


def _phase(m) -> np.ndarray:
    return np.where(np.asarray(m) % 2 == 1, 1j, 1.0)


def _phi_hat(lmax: int) -> np.ndarray:
    """``Φ̂[m, v]`` with ``Φ_m(φ) = Σ_v Φ̂[m, v] e^{ivφ}`` (indices ``+lmax``)."""
    out = np.zeros((2 * lmax + 1, 2 * lmax + 1), complex)
    out[lmax, lmax] = 1.0
    for m in range(1, lmax + 1):
        out[lmax + m, lmax + m] = out[lmax + m, lmax - m] = 0.5
        out[lmax - m, lmax + m] = 0.5 / 1j
        out[lmax - m, lmax - m] = -0.5 / 1j
    return out


@functools.cache
def sh_to_fourier(lmax: int) -> np.ndarray:
    """The change of basis from real spherical harmonics to 2D Fourier coefficients.

    ``Y_i(θ, φ) = Σ_{u,v} T[i, u, v] e^{i(uθ + vφ)}`` exactly, for ``|u|, |v| ≤ lmax``
    (Luo et al., ICLR 2024, "Enabling Efficient Equivariant Operations in the Fourier
    Basis via Gaunt Tensor Products", Sec. 3.2). ``T[i]`` is non-zero only at
    ``v = ±m`` and ``|u| ≤ l``; dense here for clarity, the tensor products use the
    factored form.

    Args:
      lmax: largest degree (Python int).

    Returns:
      complex128 ``((lmax+1)², 2lmax+1, 2lmax+1)``, axes ``[i, u + lmax, v + lmax]``
      (read-only, cached).

    Example:
      >>> import numpy as np
      >>> T = sh_to_fourier(1)
      >>> th, ph = 0.3, 1.1
      >>> e = np.exp(1j * (np.arange(-1, 2)[:, None] * th + np.arange(-1, 2) * ph))
      >>> y = np.einsum("iuv,uv->i", T, e).real
      >>> bool(np.allclose(y, real_spherical_harmonics(1, th, ph), atol=1e-14))
      True
    """
    lmax = _check_degree(lmax, "lmax")
    A = theta_fourier(lmax)
    ph = _phi_hat(lmax)
    T = np.zeros(((lmax + 1) ** 2, 2 * lmax + 1, 2 * lmax + 1), complex)
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            a = _phase(abs(m)) * A[l, abs(m)]
            T[l * l + l + m] = a[:, None] * ph[m + lmax][None, :]
    return _readonly(T)


def theta_integral(k: np.ndarray) -> np.ndarray:
    """``I(k) = ∫_0^π e^{ikθ} sin θ dθ`` for integer ``k`` (closed form)."""
    k = np.asarray(k)
    kf = k.astype(float)
    safe = np.where(np.abs(k) == 1, 0.0, 1.0 - kf * kf)
    even = np.where(k % 2 == 0, 2.0 / np.where(safe == 0, 1.0, safe), 0.0)
    return np.where(np.abs(k) == 1, 0.5j * np.pi * np.sign(kf), even + 0j)


def theta_integral_flat(k: np.ndarray) -> np.ndarray:
    """``I₀(k) = ∫_0^π e^{ikθ} dθ`` for integer ``k`` (closed form)."""
    k = np.asarray(k)
    kf = np.where(k == 0, 1.0, k.astype(float))
    return np.where(k == 0, np.pi + 0j, np.where(k % 2 == 1, 2j / kf, 0j))


@functools.cache
def theta_kernel(lmax: int, degree: int, measure: str = "sin") -> np.ndarray:
    """``K[l, |m|, u] = ∫_0^π e^{iuθ} Θ_l|m|(θ) w(θ) dθ`` for ``|u| ≤ degree``, with
    ``w = sin θ`` (``measure="sin"``) or ``w = 1`` (``"flat"``); complex,
    shape ``(lmax+1, lmax+1, 2degree+1)``."""
    A = theta_fourier(lmax)
    u = np.arange(-degree, degree + 1)
    up = np.arange(-lmax, lmax + 1)
    integ = theta_integral if measure == "sin" else theta_integral_flat
    Ik = integ(u[:, None] + up[None, :])  # [u, u']
    a = _phase(np.arange(lmax + 1))[None, :, None] * A  # [l, m, u']
    return _readonly(np.einsum("lmp,up->lmu", a, Ik))


@functools.cache
def fourier_to_sh(lmax: int, degree: int) -> np.ndarray:
    """The back map from 2D Fourier coefficients of a real spherical function to its
    real spherical-harmonic coefficients (the projection, with the ``sin θ`` measure).

    For ``f(θ, φ) = Σ_{|u|,|v| ≤ degree} F[u, v] e^{i(uθ+vφ)}`` (a real function on the
    sphere written on the torus), ``∫ f Y_i dΩ = Re Σ_{u,v} F[u, v] B[u, v, i]``
    exactly, with ``B[u, v, i] = 2π Σ_{u'} T[i, u', -v] ∫_0^π e^{i(u+u')θ} sin θ dθ``.
    It is not the transpose of :func:`sh_to_fourier`: the θ-integral runs over half a
    period with the ``sin θ`` weight, so every ``u`` contributes.

    Args:
      lmax: largest output degree.
      degree: Fourier degree of the input (``|u|, |v| ≤ degree``).

    Returns:
      complex128 ``(2degree+1, 2degree+1, (lmax+1)²)`` (read-only, cached).

    Example:
      >>> import numpy as np
      >>> T = sh_to_fourier(3)
      >>> B = fourier_to_sh(3, 3)
      >>> bool(np.allclose(np.einsum("iuv,uvj->ij", T, B).real, np.eye(16), atol=1e-13))
      True
    """
    lmax = _check_degree(lmax, "lmax")
    degree = _check_degree(degree, "degree")
    K = theta_kernel(lmax, degree)  # [l, m, u]
    ph = _phi_hat(max(lmax, degree))
    c = max(lmax, degree)
    B = np.zeros((2 * degree + 1, 2 * degree + 1, (lmax + 1) ** 2), complex)
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            # T[i, u', -v] = i^.. A[l,|m|,u'] Φ̂[m, -v]; sum over u' is in K.
            phv = ph[m + c, c - np.arange(-degree, degree + 1)]  # Φ̂[m, -v]
            B[:, :, l * l + l + m] = 2 * np.pi * K[l, abs(m)][:, None] * phv[None, :]
    return _readonly(B)


@functools.cache
def gauss_legendre_grid(n_theta: int, n_phi: int):
    """Gauss–Legendre nodes in ``cos θ`` and a uniform φ grid.

    Returns ``(theta, w_theta, phi, w_phi)``; ``Σ_t Σ_k w_t w_k g(θ_t, φ_k) = ∫ g dΩ``
    exactly when ``g`` is a polynomial of degree ``≤ 2 n_theta - 1`` in ``cos θ``
    (times ``sin^|m| θ`` factors of matching parity) and a trigonometric polynomial of
    degree ``< n_phi`` in φ.
    """
    x, w = np.polynomial.legendre.leggauss(n_theta)
    theta = np.arccos(x)
    phi = 2 * np.pi * np.arange(n_phi) / n_phi
    w_phi = np.full(n_phi, 2 * np.pi / n_phi)
    return tuple(_readonly(a) for a in (theta, w, phi, w_phi))


def wigner_3j_000(l1: int, l2: int, l3: int) -> float:
    """``(l1 l2 l3; 0 0 0)`` by Racah's closed form (zero off the triangle or for odd
    ``l1 + l2 + l3``)."""
    if (l1 + l2 + l3) % 2 or l3 < abs(l1 - l2) or l3 > l1 + l2:
        return 0.0
    g = (l1 + l2 + l3) // 2
    f = math.factorial
    val = math.sqrt(
        f(2 * g - 2 * l1) * f(2 * g - 2 * l2) * f(2 * g - 2 * l3) / f(2 * g + 1)
    ) * (f(g) / (f(g - l1) * f(g - l2) * f(g - l3)))
    return (-1) ** g * val


def gaunt_scale(l1: int, l2: int, l3: int) -> float:
    """``|G| / |C|``: the Frobenius norm of :func:`gaunt_coefficients` ``(l1, l2, l3)``,
    which equals the real Wigner-3j (Clebsch–Gordan) tensor of unit norm times this
    scalar: ``√((2l1+1)(2l2+1)(2l3+1) / 4π) |(l1 l2 l3; 0 0 0)|``."""
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1) / (4 * math.pi)) * abs(
        wigner_3j_000(l1, l2, l3)
    )


def _phi_triple(l1: int, l2: int, l3: int) -> np.ndarray:
    """``∫_0^{2π} Φ_m1 Φ_m2 Φ_m3 dφ`` of shape ``(2l1+1, 2l2+1, 2l3+1)``: products of
    cosines/sines integrate to ``2π``, ``π`` or ``±π/2`` when ``±m1 ± m2 ± m3 = 0``
    and to zero otherwise. Computed by uniform quadrature (exact for trigonometric
    polynomials of degree ``< n``) and snapped to the exact zeros."""
    n = l1 + l2 + l3 + 1
    phi = 2 * np.pi * np.arange(n) / n
    p1 = phi_functions(l1, phi)
    p2 = phi_functions(l2, phi)
    p3 = phi_functions(l3, phi)
    out = np.einsum("an,bn,cn->abc", p1, p2, p3) * (2 * np.pi / n)
    return np.where(np.abs(out) > 0.1, out, 0.0)


@functools.cache
def _gaunt_cached(l1: int, l2: int, l3: int) -> np.ndarray:
    """Vectorised exact quadrature: ``Y = Θ_l|m|(θ) Φ_m(φ)`` separates, the φ
    integral is :func:`_phi_triple`, and where it is non-zero ``|m1|+|m2|+|m3|`` is
    even, so ``Θ1 Θ2 Θ3`` is a polynomial of degree ``l1+l2+l3`` in ``cos θ``:
    Gauss–Legendre with ``⌊(l1+l2+l3)/2⌋ + 1`` nodes integrates it exactly.
    ``O(L⁴)`` flops (L = 20: milliseconds)."""
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    if (l1 + l2 + l3) % 2 == 0 and abs(l1 - l2) <= l3 <= l1 + l2:
        L = max(l1, l2, l3)
        x, w = np.polynomial.legendre.leggauss((l1 + l2 + l3) // 2 + 1)
        th = legendre_theta(L, np.arccos(x))  # [l, |m|, t]

        def theta(l: int) -> np.ndarray:  # [t, m = -l … l]
            return th[l, np.abs(np.arange(-l, l + 1))].T

        t_int = np.einsum("t,ta,tb,tc->abc", w, theta(l1), theta(l2), theta(l3))
        out[...] = t_int * _phi_triple(l1, l2, l3)
    return _readonly(out)


def gaunt_coefficients(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real Gaunt coefficients ``G[m1, m2, m3] = ∫ Y_{l1 m1} Y_{l2 m2} Y_{l3 m3} dΩ``
    in e3nn-jax's real basis with orthonormal (``"integral"``) normalisation.

    Computed by exact quadrature: the φ-integral of the three azimuthal factors in
    closed form and a Gauss–Legendre rule in ``cos θ`` exact for the polynomial
    degree of the product (``O(L⁴)`` flops, milliseconds at ``L = 20``). Exactly zero when ``l1 + l2 + l3`` is
    odd or the triangle rule fails. ``G`` equals e3nn-jax's
    ``clebsch_gordan(l1, l2, l3)`` times ``±`` :func:`gaunt_scale`.

    Args:
      l1, l2, l3: degrees (Python ints).

    Returns:
      float64 ``(2l1+1, 2l2+1, 2l3+1)`` (read-only, cached).

    Example:
      >>> import numpy as np
      >>> G = gaunt_coefficients(1, 1, 0)
      >>> bool(np.allclose(G, np.eye(3)[:, :, None] / np.sqrt(4 * np.pi)))
      True
      >>> float(np.abs(gaunt_coefficients(1, 1, 1)).max())
      0.0
    """
    l1 = _check_degree(l1, "l1")
    l2 = _check_degree(l2, "l2")
    l3 = _check_degree(l3, "l3")
    return _gaunt_cached(l1, l2, l3)
