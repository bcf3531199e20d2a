"""Test helpers for the Gaunt products, computed in NumPy so that they cost no
compilation: random inputs, O(3) samples, Wigner-D matrices (least squares on
e3nn-jax's harmonics), the dense Gaunt contraction and pointwise evaluation."""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from eqjax.tensor_products import _tables as tb


def sh_irreps(L, p=1, mul=1):
    return e3nn.Irreps([(mul, (l, p * (-1) ** l)) for l in range(L + 1)])


def rand(irreps, seed, shape=(), dtype=jnp.float64):
    irreps = e3nn.Irreps(irreps)
    a = np.random.default_rng(seed).normal(size=tuple(shape) + (irreps.dim,))
    return e3nn.IrrepsArray(irreps, jnp.asarray(a, dtype))


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def o3_samples(seed, n):
    """Haar O(3) samples (NumPy float64), the first half reflections."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q * np.sign(np.diag(r))
        want = -1.0 if i < n // 2 else 1.0
        out.append(q * (want * np.sign(np.linalg.det(q))))
    return np.stack(out)


def _angles(xyz):
    xyz = xyz / np.linalg.norm(xyz, axis=-1, keepdims=True)
    return np.arccos(np.clip(xyz[..., 1], -1, 1)), np.arctan2(xyz[..., 0], xyz[..., 2])


def real_sh(L, xyz):
    """e3nn-jax's harmonics (integral normalisation) at points ``xyz``, NumPy."""
    return tb.real_spherical_harmonics(L, *_angles(np.asarray(xyz, np.float64)))


_POINTS = np.random.default_rng(123).normal(size=(300, 3))


@functools.cache
def _sh_pinv(L: int):
    return np.linalg.pinv(real_sh(L, _POINTS))


@functools.cache
def _wigner_blocks(R_bytes: bytes, L: int):
    R = np.frombuffer(R_bytes).reshape(3, 3)
    D = (_sh_pinv(L) @ real_sh(L, _POINTS @ R.T)).T  # Y(R x) = D Y(x), least squares
    return [D[l * l : (l + 1) ** 2, l * l : (l + 1) ** 2] for l in range(L + 1)]


def wigner_D(R, l):
    """e3nn-jax's ``D^l(R)`` for a proper rotation ``R`` (``Y(R x) = D Y(x)``)."""
    R = np.ascontiguousarray(np.asarray(R, np.float64))
    return _wigner_blocks(R.tobytes(), max(l, 8) if l <= 8 else l)[l]


def rotate(R, x):
    """``R ∈ O(3)`` acting on an ``IrrepsArray`` as e3nn-jax does: each ``(l, p)``
    block times ``p^k D^l(R')`` with ``R = (-1)^k R'`` (NumPy, no compilation)."""
    R = np.asarray(R, np.float64)
    det = np.sign(np.linalg.det(R))
    a = np.asarray(x.array, np.float64)
    out = np.empty_like(a)
    for (mul, ir), sl in zip(x.irreps, x.irreps.slices(), strict=True):
        D = wigner_D(det * R, ir.l) * (ir.p if det < 0 else 1)
        block = a[..., sl].reshape(a.shape[:-1] + (mul, ir.dim))
        out[..., sl] = (block @ D.T).reshape(a.shape[:-1] + (mul * ir.dim,))
    return e3nn.IrrepsArray(x.irreps, jnp.asarray(out, x.dtype))


def equivariance_error(fn, xs, Rs):
    errs = []
    for R in Rs:
        lhs = fn(*[rotate(R, x) for x in xs])
        rhs = rotate(R, fn(*xs))
        errs.append(rel_err(lhs.array, rhs.array))
    return max(errs)


def eval_sh(c, L, xyz, normalization="integral"):
    """``Σ_i c_i Y_i(x)`` with e3nn-jax's harmonics."""
    y = real_sh(L, xyz)
    if normalization == "component":
        y = y * np.sqrt(4 * np.pi)
    return np.einsum("...i,ni->...n", np.asarray(c), y)


@functools.cache
def _gaunt_tensor(L1, L2, L_out):
    G = np.zeros(((L1 + 1) ** 2, (L2 + 1) ** 2, (L_out + 1) ** 2))
    for l1 in range(L1 + 1):
        for l2 in range(L2 + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, L_out) + 1):
                G[
                    l1 * l1 : (l1 + 1) ** 2,
                    l2 * l2 : (l2 + 1) ** 2,
                    l3 * l3 : (l3 + 1) ** 2,
                ] = tb.gaunt_coefficients(l1, l2, l3)
    return G


def direct_gaunt(cs, Ls, L_out):
    """Reference: the dense Gaunt contraction of two inputs (``O(L⁶)``, NumPy)."""
    c1, c2 = (np.asarray(c, np.float64) for c in cs)
    return np.einsum("...i,...j,ijk->...k", c1, c2, _gaunt_tensor(*Ls, L_out))
