"""Array kernels of the Gaunt products: coefficients ``c[..., (L+1)²]`` (e3nn order,
orthonormal harmonics) in, product coefficients out.

Every method works per azimuthal order ``v = |m|`` (the harmonics factor as
``Θ_l|m|(θ) Φ_m(φ)``), so the conversions cost ``O(L³)`` per signal and run as
batched matrix multiplies over ``v``:

* ``fourier_fft``: SH → 2D Fourier half-spectrum → zero-padded inverse real FFT on the
  torus → pointwise product → real FFT → SH (Luo et al., ICLR 2024).
* ``fourier_direct``: the same two conversions with the product done as a direct 2D
  convolution of the Fourier coefficients (no FFT); cheap at small ``L``.
* ``s2grid``: SH → Gauss–Legendre × uniform grid → product → SH (quadrature exact
  for the truncated product).

The NumPy tables for each step are built once per static size (float64, cached) and
cast to the input dtype.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from . import _tables as tb


def _good_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c ≥ n (FFT-friendly)."""
    m = max(n, 1)
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


# ---------------------------------------------------------------------------
# layouts: e3nn order  <->  [v, sign, l]
# ---------------------------------------------------------------------------


@functools.cache
def m_layout(L: int) -> np.ndarray:
    """Gather indices ``(L+1, 2, L+1)`` from ``c`` padded with one zero (index
    ``(L+1)²``) to ``[v, s, l]`` = coefficient of ``(l, m = +v if s == 0 else -v)``."""
    pad = (L + 1) ** 2
    idx = np.full((L + 1, 2, L + 1), pad, dtype=np.int32)
    for v in range(L + 1):
        for l in range(v, L + 1):
            idx[v, 0, l] = l * l + l + v
            if v > 0:
                idx[v, 1, l] = l * l + l - v
    return idx


@functools.cache
def m_unlayout(L: int) -> np.ndarray:
    """Gather indices ``((L+1)²,)`` from the flattened ``[v, s, l]`` array back to e3nn
    order."""
    idx = np.zeros((L + 1) ** 2, dtype=np.int32)
    for l in range(L + 1):
        for m in range(-l, l + 1):
            v, s = abs(m), int(m < 0)
            idx[l * l + l + m] = (v * 2 + s) * (L + 1) + l
    return idx


def to_m_layout(c, L: int):
    """``c[..., (L+1)²] -> [..., L+1 (v), 2 (s), L+1 (l)]``."""
    cp = jnp.concatenate([c, jnp.zeros(c.shape[:-1] + (1,), c.dtype)], axis=-1)
    return jnp.take(cp, jnp.asarray(m_layout(L)), axis=-1)


def from_m_layout(cm, L: int):
    """``[..., L+1, 2, L+1] -> c[..., (L+1)²]``."""
    flat = cm.reshape(cm.shape[:-3] + (-1,))
    return jnp.take(flat, jnp.asarray(m_unlayout(L)), axis=-1)


# ---------------------------------------------------------------------------
# Fourier conversions (per v, real matrices)
# ---------------------------------------------------------------------------


@functools.cache
def fourier_forward_matrix(L: int) -> np.ndarray:
    """``W[v]`` ``(L+1, 2(L+1), 2(2L+1))``: ``[c(l, +v), c(l, -v)] -> [Re F[u, v],
    Im F[u, v]]`` for ``u = -L … L``, ``v ≥ 0`` (the half spectrum)."""
    A = tb.theta_fourier(L)  # [l, v, u]
    W = np.zeros((L + 1, 2, L + 1, 2, 2 * L + 1))
    for v in range(L + 1):
        ph = 1j ** (v % 2)
        for s, fac in ((0, 1.0 if v == 0 else 0.5), (1, 0.0 if v == 0 else -0.5j)):
            alpha = ph * fac * A[:, v, :]  # [l, u]
            W[v, s, :, 0] = alpha.real
            W[v, s, :, 1] = alpha.imag
    return W.reshape(L + 1, 2 * (L + 1), 2 * (2 * L + 1))


@functools.cache
def fourier_back_matrix(L: int, D: int, measure: str = "sin") -> np.ndarray:
    """``W[v]`` ``(L+1, 2(2D+1), 2(L+1))``: ``[Re G[u, v], Im G[u, v]]`` (half spectrum
    of a real function, ``|u| ≤ D``) ``-> [c(l, +v), c(l, -v)]``, the projection on
    the orthonormal harmonics with ``w(θ) = sin θ`` (``"sin"``) or ``1`` (``"flat"``,
    for ``∫∫ g Y dθ dφ``)."""
    K = tb.theta_kernel(L, D, measure)  # [l, v, u]
    W = np.zeros((L + 1, 2, 2 * D + 1, 2, L + 1))
    for v in range(L + 1):
        k = K[:, v, :]  # [l, u]
        kr = k[:, ::-1]  # K[-u]
        if v == 0:
            W[0, 0, :, 0] = 2 * np.pi * np.real(k).T
            W[0, 1, :, 0] = -2 * np.pi * np.imag(k).T
            continue
        for s, (a, b) in ((0, (0.5, 0.5)), (1, (-0.5 / 1j, 0.5 / 1j))):
            # a = Φ̂_m[-v], b = Φ̂_m[v] for m = +v (s=0) or -v (s=1)
            W[v, 0, :, s] = 2 * np.pi * (a * k + b * kr).real.T
            W[v, 1, :, s] = 2 * np.pi * (1j * a * k - 1j * b * kr).real.T
    return W.reshape(L + 1, 2 * (2 * D + 1), 2 * (L + 1))


def sh_to_half_spectrum(c, L: int):
    """``c[..., (L+1)²] -> F[..., 2L+1 (u), L+1 (v)]`` complex half spectrum."""
    cm = to_m_layout(c, L).reshape(c.shape[:-1] + (L + 1, 2 * (L + 1)))
    W = jnp.asarray(fourier_forward_matrix(L), c.dtype)
    ri = jnp.einsum("...vk,vkj->...vj", cm, W)  # [..., v, 2(2L+1)]
    n = 2 * L + 1
    F = ri[..., :n] + 1j * ri[..., n:]  # [..., v, u]
    return jnp.swapaxes(F, -1, -2)


def half_spectrum_to_sh(G, L: int, D: int, dtype, measure: str = "sin"):
    """``G[..., 2D+1 (u = -D … D), ≥ L+1 (v)] -> c[..., (L+1)²]``."""
    G = jnp.swapaxes(G[..., : L + 1], -1, -2)  # [..., v, u]
    ri = jnp.concatenate([G.real, G.imag], axis=-1).astype(dtype)
    W = jnp.asarray(fourier_back_matrix(L, D, measure), dtype)
    cm = jnp.einsum("...vk,vkj->...vj", ri, W)
    return from_m_layout(cm.reshape(cm.shape[:-1] + (2, L + 1)), L)


def full_spectrum(F):
    """Half spectrum ``[..., 2L+1, L+1]`` -> full ``[..., 2L+1, 2L+1]`` (``v = -L … L``)
    using ``F[u, -v] = conj F[-u, v]``."""
    neg = jnp.conj(F[..., ::-1, :0:-1])  # v = -L … -1
    return jnp.concatenate([neg, F], axis=-1)


# ---------------------------------------------------------------------------
# fourier_fft
# ---------------------------------------------------------------------------


def _torus_values(F, n_u: int, n_v: int):
    """Half spectrum ``[..., 2K+1, K+1]`` -> values on the ``n_u × n_v`` torus grid."""
    K = F.shape[-1] - 1
    pad_u = n_u - (2 * K + 1)
    pad_v = n_v // 2 + 1 - (K + 1)
    F = jnp.pad(F, [(0, 0)] * (F.ndim - 2) + [(0, pad_u), (0, pad_v)])
    F = jnp.roll(F, -K, axis=-2)  # row 0 is u = 0
    return jnp.fft.irfft2(F, s=(n_u, n_v)) * (n_u * n_v)


def _torus_to_spectrum(f, D: int, V: int):
    """Values on the torus -> half spectrum ``[..., 2D+1 (u = -D … D), V+1]``."""
    n_u, n_v = f.shape[-2:]
    G = jnp.fft.rfft2(f) / (n_u * n_v)
    G = G[..., : V + 1]
    G = jnp.roll(G, D, axis=-2)[..., : 2 * D + 1, :]
    return G


def fft_sizes(D: int, L_out: int, L_max: int = 0) -> tuple[int, int]:
    """Torus grid for a product of total degree ``D`` projected to degree ``L_out``:
    no aliasing in ``u`` at all (the back map needs every ``|u| ≤ D``), none onto
    ``|v| ≤ L_out`` in ``v``, and room for each factor's half spectrum (``L_max``)."""
    return _good_size(2 * D + 1), _good_size(max(D + L_out + 1, 2 * L_max + 1))


def product_fourier_fft(cs, Ls, L_out: int):
    """Product of several signals by FFTs on one torus grid (no return to SH between
    factors)."""
    D = sum(Ls)
    n_u, n_v = fft_sizes(D, L_out, max(Ls))
    prod = None
    for c, L in zip(cs, Ls, strict=True):
        f = _torus_values(sh_to_half_spectrum(c, L), n_u, n_v)
        prod = f if prod is None else prod * f
    # orders v > D of the product are exactly zero (and beyond the rfft's columns)
    G = _pad_v(_torus_to_spectrum(prod, D, min(L_out, D)), L_out)
    return half_spectrum_to_sh(G, L_out, D, cs[0].dtype)


# ---------------------------------------------------------------------------
# fourier_direct
# ---------------------------------------------------------------------------


def _conv2d(A, B, v_out: tuple[int, int] | None = None):
    """Linear 2D convolution of centred coefficient grids ``A[..., 2a+1, 2b+1]`` and
    ``B[..., 2c+1, 2d+1]`` (``u`` first); result centred, degrees ``(a+c, b+d)``,
    optionally restricted to the ``v`` range ``v_out = (lo, hi)`` (inclusive).

    Direct ``O(a b c d)`` sum without FFTs, as two contractions: a Toeplitz gather of
    ``A`` along ``v`` contracted with ``B`` over ``v``, then a skewed sum over the
    ``u`` shifts (pad + reshape, no loops).
    """
    b = (A.shape[-1] - 1) // 2
    d = (B.shape[-1] - 1) // 2
    lo, hi = v_out if v_out is not None else (-(b + d), b + d)
    w = np.arange(lo, hi + 1)[:, None]  # output v
    j = np.arange(2 * d + 1)[None, :]  # B column, offset j - d
    col = w - (j - d) + b  # A column
    col = np.where((col >= 0) & (col <= 2 * b), col, 2 * b + 1)
    Ap = jnp.concatenate([A, jnp.zeros(A.shape[:-1] + (1,), A.dtype)], axis=-1)
    T = jnp.take(Ap, jnp.asarray(col), axis=-1)  # [..., p, w, j]
    X = jnp.einsum("...pwj,...ij->...ipw", T, B)  # [..., i, p, w]
    ni, n_p, nw = X.shape[-3:]
    X = jnp.pad(X, [(0, 0)] * (X.ndim - 2) + [(0, ni), (0, 0)])  # p -> n_p + ni
    X = X.reshape(X.shape[:-3] + (ni * (n_p + ni), nw))[..., : ni * (n_p + ni - 1), :]
    X = X.reshape(X.shape[:-2] + (ni, n_p + ni - 1, nw))  # [.., i, i + p, w]
    return X.sum(axis=-3)


def product_fourier_direct(cs, Ls, L_out: int):
    """Product by direct 2D convolutions of the Fourier coefficients."""
    D = sum(Ls)
    acc = full_spectrum(sh_to_half_spectrum(cs[0], Ls[0]))
    deg_v = Ls[0]
    for k in range(1, len(cs)):
        F = full_spectrum(sh_to_half_spectrum(cs[k], Ls[k]))
        deg_v += Ls[k]
        last = k == len(cs) - 1
        acc = _conv2d(acc, F, (0, min(L_out, deg_v)) if last else None)
    if len(cs) == 1:
        acc = acc[..., Ls[0] :]
    return half_spectrum_to_sh(_pad_v(acc, L_out), L_out, D, cs[0].dtype)


def _pad_v(G, V: int):
    if G.shape[-1] < V + 1:
        G = jnp.pad(G, [(0, 0)] * (G.ndim - 1) + [(0, V + 1 - G.shape[-1])])
    return G


# ---------------------------------------------------------------------------
# s2grid
# ---------------------------------------------------------------------------


def grid_sizes(D: int, L_out: int) -> tuple[int, int]:
    """Gauss–Legendre × uniform grid exact for a product of degree ``D`` projected to
    degree ``L_out``."""
    return (D + L_out) // 2 + 1, D + L_out + 1


@functools.cache
def _grid_tables(L: int, n_t: int, n_p: int):
    theta, w_t, phi, w_p = tb.gauss_legendre_grid(n_t, n_p)
    th = tb.legendre_theta(L, theta)  # [l, v, t]
    th_vlt = np.ascontiguousarray(np.transpose(th, (1, 0, 2)))  # [v, l, t]
    ph = tb.phi_functions(L, phi)  # [m + L, k]
    # rows ordered like the [v, s] layout: (0,+), (0,-)=0, (1,+), (1,-), ...
    rows = np.zeros((L + 1, 2, n_p))
    drows = np.zeros((L + 1, 2, n_p))
    for v in range(L + 1):
        rows[v, 0] = ph[L + v]
        drows[v, 0] = -v * ph[L - v] if v else 0.0  # d/dφ cos(vφ)
        if v:
            rows[v, 1] = ph[L - v]
            drows[v, 1] = v * ph[L + v]  # d/dφ sin(vφ)
    rows = rows.reshape(2 * (L + 1), n_p)
    drows = drows.reshape(2 * (L + 1), n_p)
    # dΘ/dθ at the nodes from the exact Fourier form.
    A = tb.theta_fourier(L)
    u = np.arange(-L, L + 1)
    ph_v = (1j ** (np.arange(L + 1) % 2))[None, :, None]
    dth = np.einsum("lvu,ut->lvt", ph_v * A * (1j * u), np.exp(1j * np.outer(u, theta)))
    dth_vlt = np.ascontiguousarray(np.transpose(dth.real, (1, 0, 2)))
    return dict(
        th=th_vlt,
        thw=th_vlt * w_t,
        dth=dth_vlt,
        ph=rows,
        phw=rows * w_p,
        dph=drows,
        sin=np.sin(theta),
    )


@functools.cache
def _dense_grid_matrices(L: int, n_t: int, n_p: int, derivative: str = ""):
    """Dense ``((L+1)², n_t n_p)`` synthesis matrix (``derivative`` in ``"", "theta",
    "phi"``) and the ``(n_t n_p, (L+1)²)`` weighted projection matrix."""
    tab = _grid_tables(L, n_t, n_p)
    th = tab["dth" if derivative == "theta" else "th"]  # [v, l, t]
    ph = tab["dph" if derivative == "phi" else "ph"].reshape(L + 1, 2, n_p)
    idx = m_layout(L)
    syn = np.zeros(((L + 1) ** 2 + 1, n_t, n_p))
    proj = np.zeros((n_t, n_p, (L + 1) ** 2 + 1))
    phw = tab["phw"].reshape(L + 1, 2, n_p)
    for v in range(L + 1):
        for s_ in range(2):
            for l in range(L + 1):
                i = idx[v, s_, l]
                syn[i] += np.outer(th[v, l], ph[v, s_])
                proj[..., i] += np.outer(tab["thw"][v, l], phw[v, s_])
    return (
        syn[:-1].reshape((L + 1) ** 2, n_t * n_p),
        proj[..., :-1].reshape(n_t * n_p, (L + 1) ** 2),
    )


def _grid_values(
    c, L: int, n_t: int, n_p: int, *, dense: bool, d_theta=False, d_phi=False
):
    """``c[..., (L+1)²] -> f[..., n_t, n_p]`` (``dense``: one GEMM, else per
    order)."""
    deriv = "theta" if d_theta else ("phi" if d_phi else "")
    if dense:
        syn = jnp.asarray(_dense_grid_matrices(L, n_t, n_p, deriv)[0], c.dtype)
        return (c @ syn).reshape(c.shape[:-1] + (n_t, n_p))
    tab = _grid_tables(L, n_t, n_p)
    batch = c.shape[:-1]
    cm = to_m_layout(c.reshape((-1, c.shape[-1])), L)  # [N, v, s, l]
    n = cm.shape[0]
    cm = jnp.transpose(cm, (1, 0, 2, 3)).reshape(L + 1, n * 2, L + 1)
    th = jnp.asarray(tab["dth" if d_theta else "th"], c.dtype)  # [v, l, t]
    g = jnp.einsum("vnl,vlt->vnt", cm, th).reshape(L + 1, n, 2, n_t)
    g = jnp.transpose(g, (1, 3, 0, 2)).reshape(n, n_t, 2 * (L + 1))
    ph = jnp.asarray(tab["dph" if d_phi else "ph"], c.dtype)  # [(v, s), k]
    return (g @ ph).reshape(batch + (n_t, n_p))


def _grid_project(f, L: int, n_t: int, n_p: int, *, dense: bool):
    """``f[..., n_t, n_p] -> c[..., (L+1)²]`` (exact quadrature)."""
    if dense:
        proj = jnp.asarray(_dense_grid_matrices(L, n_t, n_p)[1], f.dtype)
        return f.reshape(f.shape[:-2] + (n_t * n_p,)) @ proj
    tab = _grid_tables(L, n_t, n_p)
    batch = f.shape[:-2]
    f = f.reshape((-1, n_t, n_p))
    n = f.shape[0]
    h = f @ jnp.asarray(tab["phw"].T, f.dtype)  # [N, t, (v, s)]
    h = jnp.transpose(h.reshape(n, n_t, L + 1, 2), (2, 0, 3, 1))
    h = h.reshape(L + 1, n * 2, n_t)
    cm = jnp.einsum("vnt,vlt->vnl", h, jnp.asarray(tab["thw"], f.dtype))
    cm = jnp.transpose(cm.reshape(L + 1, n, 2, L + 1), (1, 0, 2, 3))
    return from_m_layout(cm, L).reshape(batch + ((L + 1) ** 2,))


# Symmetry-split grids. Y_lm(π-θ, φ) = (-1)^(l+|m|) Y_lm(θ, φ) and Y_lm(θ, -φ) =
# ±Y_lm(θ, φ) (+ for cos, m ≥ 0; - for sin, m < 0), so the coefficients split into
# classes by (l+|m|) parity (and cos/sin) whose values on a hemisphere (a quarter) of
# the grid determine the whole grid by sign flips. Synthesis and projection become one
# small dense GEMM per class on the reduced grid (2× / 4× fewer flops than the dense
# GEMM) plus ± butterflies between classes and grid regions, which XLA fuses with the
# pointwise product.
SYMMETRIES = {"dense": 0, "hemisphere": 1, "quadrant": 2}


@functools.cache
def sym_grid_tables(L: int, n_t: int, n_p: int, layout: str):
    """Tables of the ``layout`` grid path for degree ``L`` on the ``n_t × n_p`` grid.

    The classes are numbered ``p`` (``"hemisphere"``: parity of ``l + |m|``) or
    ``2p + q`` (``"quadrant"``; ``q = 1`` for ``m < 0``, odd in φ), one class
    (``0``) for ``"dense"``; class ``c`` times class ``c'`` is class ``c ⊕ c'``.

    Returns ``(classes, (rows, syn), proj)`` over the non-empty classes: their numbers,
    the e3nn indices of their coefficients (``rows[j]``), the synthesis matrices
    ``syn[j] : (k_j, G)`` onto the reduced grid (``G`` points) and the projections
    ``proj[j] : (G, k_j)``. A class-``c`` function summed over the ``2^s`` images of
    a reduced-grid point gives ``2^s`` times its value there and any other class
    gives zero, so ``proj`` carries the quadrature weight times ``2^s``, divided by
    the multiplicity of points on a symmetry line (the equator, ``φ = 0``, ``φ = π``),
    which are their own images.
    """
    sym = SYMMETRIES[layout]
    theta, w_t, phi, w_p = tb.gauss_legendre_grid(n_t, n_p)
    hn = (n_t + 1) // 2 if sym >= 1 else n_t
    hk = n_p // 2 + 1 if sym >= 2 else n_p
    th = tb.legendre_theta(L, theta[:hn])  # [l, v, t]
    ph = tb.phi_functions(L, phi[:hk])  # [m + L, k]
    mult_t = np.ones(hn)
    if sym >= 1 and n_t % 2:
        mult_t[-1] = 2.0  # equator
    mult_k = np.ones(hk)
    if sym >= 2:
        mult_k[0] = 2.0  # φ = 0
        if n_p % 2 == 0:
            mult_k[-1] = 2.0  # φ = π
    wq = np.outer(w_t[:hn] / mult_t, w_p[:hk] / mult_k)
    n_cls = 2**sym
    classes: list[list[tuple[int, int]]] = [[] for _ in range(n_cls)]
    for l in range(L + 1):
        for m in range(-l, l + 1):
            p, q = (l + abs(m)) % 2, int(m < 0)
            cls = (0, p, 2 * p + q)[sym]
            classes[cls].append((l, m))
    rows, syn, proj, keep = [], [], [], []
    scale = float(2**sym)  # H[k] sums the 2^sym regions' products (see below)
    for cls, members in enumerate(classes):
        if not members:
            continue
        keep.append(cls)
        y = np.stack([np.outer(th[l, abs(m)], ph[m + L]).ravel() for l, m in members])
        rows.append(np.asarray([l * l + l + m for l, m in members], np.int32))
        syn.append(np.ascontiguousarray(y))
        proj.append(np.ascontiguousarray((y * (scale * wq.ravel())).T))
    return tuple(keep), (tuple(rows), tuple(syn)), tuple(proj)


def _class_product(A, B, n_cls: int):
    """Pointwise product in the class domain: ``H[k] = Σ_c A[c] B[c ⊕ k]`` (``None``
    = an empty class). The classes are the characters of the grid's symmetry group
    (Z₂ or Z₂²), so a product of class ``c`` and ``c'`` functions lies in class
    ``c ⊕ c'`` on the reduced grid; no butterflies to the grid regions and back."""
    H = []
    for k in range(n_cls):
        acc = None
        for c in range(n_cls):
            if A[c] is None or B[c ^ k] is None:
                continue
            t = A[c] * B[c ^ k]
            acc = t if acc is None else acc + t
        H.append(acc)
    return H


def _product_sym_grid(
    cs, Ls, L_out: int, n_t: int, n_p: int, layout: str, signals_last: bool = False
):
    """Grid product with the ``layout`` symmetry split; ``cs[i] : (..., (Ls[i]+1)²)``
    (batch axes broadcast in the pointwise product), or with ``signals_last``
    ``cs[i] : ((Ls[i]+1)², N)`` (signals on the minor axis: the GEMMs are
    ``table · signals``, which suits some CPUs' kernels better; same result)."""
    n_cls = 2 ** SYMMETRIES[layout]
    ax = 0 if signals_last else -1

    def apply(x, M):  # the table M : (k_in, k_out) on the coefficient axis
        if signals_last:
            return jnp.asarray(M.T, x.dtype) @ x
        return x @ jnp.asarray(M, x.dtype)

    prod = None
    for c, L in zip(cs, Ls, strict=True):
        classes, syn, _ = sym_grid_tables(L, n_t, n_p, layout)
        A = [None] * n_cls
        for cls, r, S in zip(classes, *syn, strict=True):
            x = c if len(classes) == 1 else jnp.take(c, jnp.asarray(r), axis=ax)
            A[cls] = apply(x, S)
        prod = A if prod is None else _class_product(prod, A, n_cls)
    assert prod is not None
    classes, (rows, _), proj = sym_grid_tables(L_out, n_t, n_p, layout)
    zero = next(h for h in prod if h is not None)
    outs = []
    for cls, P in zip(classes, proj, strict=True):
        h = prod[cls]
        if h is None:  # no product lands in this class: zero coefficients
            h = jnp.zeros_like(zero)
        outs.append(apply(h, P))
    if len(outs) == 1:
        return outs[0]
    inv = np.argsort(np.concatenate(rows)).astype(np.int32)
    return jnp.take(jnp.concatenate(outs, axis=ax), jnp.asarray(inv), axis=ax)


def product_s2grid(
    cs, Ls, L_out: int, *, layout: str, chunk: int = 0, signals_last: bool = False
):
    """Product on a Gauss–Legendre grid exact for the truncated product.

    ``layout``: ``"dense"``, ``"hemisphere"``, ``"quadrant"`` (the symmetry-split
    grids above) or ``"factored"`` (per-order conversions, ``O(L³)``). ``chunk``:
    run the whole product on ``chunk`` signals at a time (``lax.map``) so the grid
    temporaries stay in cache instead of streaming through memory (``0``: one
    block); it applies when every input has the same batch shape (always with
    ``signals_last``). ``signals_last``: run the symmetry-split GEMMs with the
    signals on the minor axis (inputs broadcast to one batch shape first; not for
    ``"factored"``). All three only change speed (the planner,
    ``_plan.planned_s2grid``, picks them)."""
    if signals_last and layout == "factored":
        raise ValueError(
            'signals_last applies to the symmetry-split layouts, not "factored"'
        )
    D = sum(Ls)
    n_t, n_p = grid_sizes(D, L_out)

    def run(xs):
        if layout == "factored":
            prod = None
            for c, L in zip(xs, Ls, strict=True):
                f = _grid_values(c, L, n_t, n_p, dense=False)
                prod = f if prod is None else prod * f
            return _grid_project(prod, L_out, n_t, n_p, dense=False)
        if signals_last:  # xs : [m, k_i]
            xt = [x.T for x in xs]
            return _product_sym_grid(xt, Ls, L_out, n_t, n_p, layout, True).T
        return _product_sym_grid(xs, Ls, L_out, n_t, n_p, layout)

    shapes = {c.shape[:-1] for c in cs}
    if signals_last and len(shapes) > 1:
        common = tuple(jnp.broadcast_shapes(*shapes))
        cs = [jnp.broadcast_to(c, common + c.shape[-1:]) for c in cs]
        shapes = {common}
    batch = cs[0].shape[:-1]
    n = math.prod(batch)
    blocked = bool(chunk) and n > chunk and len(shapes) == 1
    if not blocked and not signals_last:
        return run(cs)
    flat = [c.reshape((n, c.shape[-1])) for c in cs]
    if not blocked:
        out = run(flat)
        return out.reshape(batch + (out.shape[-1],))
    nb = n // chunk
    head = jax.lax.map(
        lambda xs: run(list(xs)),
        tuple(x[: nb * chunk].reshape((nb, chunk, x.shape[-1])) for x in flat),
    ).reshape((nb * chunk, -1))
    if nb * chunk < n:
        head = jnp.concatenate([head, run([x[nb * chunk :] for x in flat])], axis=0)
    return head.reshape(batch + (head.shape[-1],))


# ---------------------------------------------------------------------------
# vector-signal (antisymmetric) product: r · (∇f1 × ∇f2)
# ---------------------------------------------------------------------------


def lead_axes(x, ndim: int):
    """``x`` with leading unit axes up to ``ndim`` axes (explicit broadcasting)."""
    return x.reshape((1,) * (ndim - x.ndim) + x.shape)


def vector_product_s2grid(c1, L1: int, c2, L2: int, L_out: int, *, dense):
    """``r̂·(∇_S f1 × ∇_S f2) = (∂_θ f1 ∂_φ f2 − ∂_φ f1 ∂_θ f2) / sin θ`` on a
    Gauss–Legendre grid (the result has degree ≤ L1 + L2 − 1). ``dense(L, n_t,
    n_p)`` says whether degree ``L`` is converted by one dense GEMM (else per
    order); the result is the same."""
    D = L1 + L2
    n_t, n_p = grid_sizes(D, L_out)
    d1, d2 = dense(L1, n_t, n_p), dense(L2, n_t, n_p)
    t1 = _grid_values(c1, L1, n_t, n_p, dense=d1, d_theta=True)
    p1 = _grid_values(c1, L1, n_t, n_p, dense=d1, d_phi=True)
    t2 = _grid_values(c2, L2, n_t, n_p, dense=d2, d_theta=True)
    p2 = _grid_values(c2, L2, n_t, n_p, dense=d2, d_phi=True)
    sin = jnp.asarray(_grid_tables(L_out, n_t, n_p)["sin"], c1.dtype)
    cross = t1 * p2 - p1 * t2
    w = cross / lead_axes(sin[:, None], cross.ndim)
    return _grid_project(w, L_out, n_t, n_p, dense=dense(L_out, n_t, n_p))


def vector_product_fourier_fft(c1, L1: int, c2, L2: int, L_out: int):
    """Same product in the Fourier domain: derivatives are ``iu``, ``iv`` factors and
    ``sin θ dθ dφ`` cancels the ``1/sin θ``, so the back map uses ``∫∫ · dθ dφ``."""
    D = L1 + L2
    n_u, n_v = fft_sizes(D, L_out, max(L1, L2))

    def parts(c, L):
        F = sh_to_half_spectrum(c, L)
        u = lead_axes(jnp.arange(-L, L + 1, dtype=c.dtype)[:, None], F.ndim)
        v = lead_axes(jnp.arange(0, L + 1, dtype=c.dtype)[None, :], F.ndim)
        return (
            _torus_values(1j * u * F, n_u, n_v),
            _torus_values(1j * v * F, n_u, n_v),
        )

    t1, p1 = parts(c1, L1)
    t2, p2 = parts(c2, L2)
    G = _torus_to_spectrum(t1 * p2 - p1 * t2, D, min(L_out, D))
    return half_spectrum_to_sh(_pad_v(G, L_out), L_out, D, c1.dtype, measure="flat")


SQRT_4PI = math.sqrt(4 * math.pi)
