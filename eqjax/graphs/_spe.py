"""Stable and expressive positional encodings (SPE) and two eigenvector baselines.

Huang, Lu, Robinson, Yang, Zhang, Jegelka & Li, "On the Stability of Expressive
Positional Encodings for Graphs", ICLR 2024 (arXiv:2310.02579):

    SPE(V, λ) = ρ([V diag(φ_ℓ(λ)) Vᵀ]_{ℓ = 1 … m})

with ``V`` the first ``d`` Laplacian eigenvectors (``[n, d]``) and ``λ`` their
eigenvalues (``[d]``). Each ``φ_ℓ`` is a small MLP applied to every eigenvalue
on its own (so it is permutation-equivariant along the eigenvalue axis), the
``m`` matrices ``W_ℓ = V diag(φ_ℓ(λ)) Vᵀ`` form an ``[n, n, m]`` tensor, and ``ρ``
is a GIN (Xu et al., ICLR 2019) that passes messages along the row axis of
``W`` for every column at once, followed by a masked sum over the column axis:
an ``[n, p]`` positional encoding.

Because ``φ_ℓ`` gives one value per eigenvalue, ``W_ℓ`` is a sum of eigenspace
projections ``Σ_k φ_ℓ(λ_k) P_k``: it does not change when the eigenvectors of
an eigenspace are replaced by any other orthonormal basis of it (sign flips
included), as long as the ``d`` eigenpairs hold whole eigenspaces (see
:func:`laplacian_eigenpairs` on cutting); relabelling the nodes permutes its
rows and columns, and so the output rows. Soft dependence on ``λ`` (Lipschitz
``φ_ℓ``) is what makes SPE stable under small perturbations of the Laplacian,
where the raw eigenvectors of a nearly degenerate eigenspace can rotate freely.

Baselines: :func:`eigvec_pe` (the raw eigenvectors through an MLP: neither
sign- nor basis-invariant) and :func:`signnet_pe` (SignNet-style, Lim et al.,
ICLR 2023: ``φ(v) + φ(−v)`` per eigenvector, sign- but not basis-invariant).

Eigenpairs come from :func:`laplacian_eigenpairs` (host NumPy, once per graph)
or :func:`laplacian_eigh` (``jnp.linalg.eigh`` inside ``jit``, node-masked), both
of the symmetric-normalised Laplacian ``I − D^{-1/2} A D^{-1/2}``.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ._models import MLPParams, mlp

PartialEigenspace = Literal["keep", "drop", "raise"]

PAD_EIGENVALUE = 3.0
"""The diagonal that :func:`laplacian_eigh` gives padded nodes before ``eigh``:
above the normalised Laplacian's spectrum (``[0, 2]``), so the padded nodes'
eigenpairs sort after every real one (they are never returned as valid)."""


class Eigenpairs(NamedTuple):
    """The first ``d`` eigenpairs of a (padded) graph's normalised Laplacian.

    Attributes:
      eigvals: ``(*batch, d)`` eigenvalues, ascending among the valid ones;
        ``0`` where ``mask`` is ``False``.
      eigvecs: ``(*batch, n, d)`` orthonormal eigenvectors (columns); zero on
        padded nodes and in every column where ``mask`` is ``False``. Signs, and
        bases inside an eigenspace, are whatever LAPACK returns.
      mask: ``(*batch, d)`` bool, ``True`` for valid eigenpairs: the columns
        ``k < min(d, number of real nodes)``, less a dropped partial trailing
        eigenspace (``partial_eigenspace="drop"``).
    """

    eigvals: Any
    eigvecs: Any
    mask: Any


# --------------------------------------------------------------- checks


def _static_int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def _check_floating(x: Any, what: str) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{what} must be floating, got dtype {x.dtype}")
    return x


def _check_mask(mask: Any, shape: tuple[int, ...], what: str, where: str):
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise TypeError(f"{where}: {what} must be boolean, got dtype {mask.dtype}")
    try:
        fits = jnp.broadcast_shapes(mask.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits or mask.ndim > len(shape):
        raise ValueError(
            f"{where}: {what} of shape {mask.shape} does not broadcast to {shape}"
        )
    return mask


def _check_partial(value: Any, where: str, *, host: bool) -> str:
    allowed = ("keep", "drop", "raise") if host else ("keep", "drop")
    if value not in allowed:
        raise ValueError(
            f"{where}: partial_eigenspace must be one of {allowed}, got {value!r}"
        )
    return value


# ------------------------------------------------------------ eigenpairs


def _host_laplacian(A: np.ndarray) -> np.ndarray:
    deg = A.sum(1)
    dinv = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
    return np.eye(A.shape[0]) - dinv[:, None] * A * dinv[None, :]


def laplacian_eigenpairs(
    adjacency: np.ndarray,
    num_eigvals: int,
    *,
    num_nodes: int | None = None,
    partial_eigenspace: PartialEigenspace = "keep",
    tol: float = 1e-8,
    dtype: Any = None,
) -> Eigenpairs:
    """The first ``d`` eigenpairs of ``L = I − D^{-1/2} A D^{-1/2}`` on the host.

    Computed once per graph in float64 NumPy (``numpy.linalg.eigh``) and padded
    to ``num_nodes`` rows. Conventions:

    * ``D`` holds the weighted degrees (a self-loop ``A[i, i]`` counts once). An
      isolated node (degree 0) takes ``D^{-1/2} = 0``, so ``L[i, i] = 1``: it
      adds the eigenvalue 1 with the indicator vector of the node (an edgeless
      graph has ``L = I``: one eigenspace of dimension ``n``).
    * The eigenpairs are the ``d`` smallest eigenvalues, ascending, the trivial
      ``λ = 0`` ones included. Rows ``n … num_nodes-1`` (padding) are zero; if
      ``d`` exceeds the number of real nodes ``n``, columns ``n … d-1`` are
      invalid (``mask`` ``False``, eigenvalue and vector zero).
    * **Cutting.** If ``λ_{d-1}`` and ``λ_d`` (the first eigenvalue left out) lie
      within ``tol``, the ``d`` columns hold only part of an eigenspace, and no
      function of them can be invariant to the choice of basis (another
      decomposition of the same ``L`` keeps another part).
      ``partial_eigenspace`` says what to do: ``"keep"`` (the paper's plain
      first-``d`` cut, the default), ``"drop"`` (mark the whole partial trailing
      eigenspace invalid, so that every valid column belongs to a complete
      eigenspace) or ``"raise"`` (a ``ValueError``).

    Args:
      adjacency: ``(n, n)`` symmetric, non-negative, finite adjacency (weighted
        or 0/1; boolean and integer matrices are read as 0/1 weights).
      num_eigvals: ``d``, at most ``num_nodes``.
      num_nodes: the padded row count (default ``n``).
      partial_eigenspace: ``"keep"``, ``"drop"`` or ``"raise"`` (above).
      tol: eigenvalues closer than this are one eigenspace (symmetry of
        ``adjacency`` is checked at ``tol`` times its largest entry, too).
      dtype: output floating dtype (default: that of a floating ``adjacency``,
        else float32).

    Returns:
      :class:`Eigenpairs` of NumPy arrays ``(d,)``, ``(num_nodes, d)``, ``(d,)``.

    Raises:
      ValueError: a non-square, asymmetric, negative or non-finite (NaN/inf)
        adjacency, ``d`` larger than ``num_nodes``, ``num_nodes < n``, a bad
        ``partial_eigenspace``, or (``"raise"``) a cut inside an eigenspace.
      TypeError: a non-integer ``num_eigvals``/``num_nodes`` or a non-floating
        ``dtype``.

    Example:
      >>> A = np.roll(np.eye(6), 1, 0) + np.roll(np.eye(6), -1, 0)  # the 6-cycle
      >>> ep = laplacian_eigenpairs(A, 2)
      >>> np.round(ep.eigvals, 3).tolist(), ep.mask.tolist()
      ([0.0, 0.5], [True, True])
      >>> laplacian_eigenpairs(A, 2, partial_eigenspace="drop").mask.tolist()
      [True, False]
      >>> laplacian_eigenpairs(A, 3, num_nodes=8).eigvecs.shape
      (8, 3)
    """
    where = "laplacian_eigenpairs"
    A = np.asarray(adjacency)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{where}: adjacency must be square (n, n), got {A.shape}")
    if not (
        np.issubdtype(A.dtype, np.floating)
        or np.issubdtype(A.dtype, np.integer)
        or A.dtype == np.bool_
    ):
        raise TypeError(f"{where}: adjacency must be numeric, got dtype {A.dtype}")
    if dtype is None:
        dtype = A.dtype if np.issubdtype(A.dtype, np.floating) else np.float32
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(f"{where}: dtype must be floating, got {dtype}")
    n = A.shape[0]
    d = _static_int(num_eigvals, f"{where}: num_eigvals", 1)
    N = n if num_nodes is None else _static_int(num_nodes, f"{where}: num_nodes", 1)
    if N < n:
        raise ValueError(f"{where}: num_nodes={N} is less than the {n} nodes")
    if d > N:
        raise ValueError(
            f"{where}: num_eigvals={d} is more eigenpairs than the {N} nodes"
        )
    _check_partial(partial_eigenspace, where, host=True)
    A = A.astype(np.float64)
    if not np.isfinite(A).all():
        bad = np.argwhere(~np.isfinite(A))[0].tolist()
        raise ValueError(
            f"{where}: adjacency has a non-finite weight {A[tuple(bad)]} at {bad}"
        )
    if (A < 0).any():
        bad = np.argwhere(A < 0)[0].tolist()
        raise ValueError(
            f"{where}: adjacency has a negative weight {A[tuple(bad)]} at {bad}"
        )
    scale = float(np.abs(A).max(initial=0.0))
    asym = np.abs(A - A.T)
    if (asym > tol * max(scale, 1.0)).any():
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise ValueError(
            f"{where}: adjacency must be symmetric, but A[{i}, {j}] = {A[i, j]} and "
            f"A[{j}, {i}] = {A[j, i]}"
        )
    A = (A + A.T) / 2
    if n:
        lam, vec = np.linalg.eigh(_host_laplacian(A))
    else:
        lam, vec = np.zeros(0), np.zeros((0, 0))
    k = min(d, n)
    valid = np.zeros(d, bool)
    valid[:k] = True
    if n > d and abs(lam[d] - lam[d - 1]) <= tol:
        if partial_eigenspace == "raise":
            first = int(np.argmax(np.abs(lam - lam[d]) <= tol))
            last = int(len(lam) - np.argmax((np.abs(lam - lam[d]) <= tol)[::-1]))
            raise ValueError(
                f"{where}: num_eigvals={d} cuts the eigenspace of λ ≈ {lam[d]:.6g} "
                f"(columns {first}..{last - 1}) after {d - first} of its "
                f"{last - first} vectors; use num_eigvals={first} or {last}, or "
                "partial_eigenspace='keep'/'drop'"
            )
        if partial_eigenspace == "drop":
            valid[:d] &= np.abs(lam[:d] - lam[d]) > tol
    eigvals = np.zeros(d)
    eigvecs = np.zeros((N, d))
    if k:
        eigvals[:k] = lam[:k]
        eigvecs[:n, :k] = vec[:, :k]
    eigvals = np.where(valid, eigvals, 0.0)
    eigvecs = eigvecs * valid[None, :]
    return Eigenpairs(eigvals.astype(dtype), eigvecs.astype(dtype), valid)


def normalized_laplacian(
    adjacency: Float[Array, "*batch n n"],
    node_mask: Bool[Array, "*batch n"] | None = None,
) -> Float[Array, "*batch n n"]:
    """``I − D^{-1/2} A D^{-1/2}`` of a padded (batch of) adjacency, traceable.

    ``A`` is symmetrised (``(A + Aᵀ)/2``) and restricted to real nodes; isolated
    real nodes get ``L[i, i] = 1`` (``D^{-1/2} = 0``); padded rows and columns
    are zero. Weights must be non-negative (a node of non-positive degree is
    treated as isolated).

    Example:
      >>> A = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> normalized_laplacian(A).tolist()
      [[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    A = _check_floating(adjacency, "normalized_laplacian: adjacency")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"normalized_laplacian: adjacency must be (..., n, n), got {A.shape}"
        )
    mask = _check_mask(node_mask, A.shape[:-1], "node_mask", "normalized_laplacian")
    return _laplacian(A, mask)


def _laplacian(A, mask):
    dt, n = A.dtype, A.shape[-1]
    A = (A + jnp.swapaxes(A, -1, -2)) / 2
    m = jnp.ones(A.shape[:-1], dt) if mask is None else mask.astype(dt)
    m = jnp.broadcast_to(m, A.shape[:-1])
    A = A * m[..., :, None] * m[..., None, :]
    deg = jnp.sum(A, -1)
    pos = deg > 0
    dinv = jnp.where(pos, jax.lax.rsqrt(jnp.where(pos, deg, 1)), 0)
    return _eye(n, dt, A.ndim) * m[..., :, None] - (
        dinv[..., :, None] * A * dinv[..., None, :]
    )


def _eye(n: int, dtype, ndim: int):
    """``I_n`` with leading unit axes up to rank ``ndim`` (no rank promotion)."""
    return jnp.eye(n, dtype=dtype).reshape((1,) * (ndim - 2) + (n, n))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _eigh(L, tol):
    w, v = jnp.linalg.eigh(L, symmetrize_input=False)
    return w, v


@_eigh.defjvp
def _eigh_jvp(tol, primals, tangents):
    """The eigh derivative with the in-eigenspace term dropped: for eigenvalues
    closer than ``tol``, ``1/(λ_j − λ_i)`` is infinite (the basis inside their
    eigenspace is undetermined), so that term is left out (see
    :func:`laplacian_eigh`)."""
    (L,), (dL,) = primals, tangents
    w, v = _eigh(L, tol)
    dL = (dL + jnp.swapaxes(dL, -1, -2)) / 2
    a = jnp.swapaxes(v, -1, -2) @ dL @ v
    dw = jnp.diagonal(a, axis1=-2, axis2=-1)
    gap = w[..., None, :] - w[..., :, None]  # [i, j] = λ_j − λ_i
    far = jnp.abs(gap) > tol
    F = jnp.where(far, 1 / jnp.where(far, gap, 1), 0)
    return (w, v), (dw, v @ (F * a))


def _select(lam, vec, real, d: int, partial: str, tol):
    """First ``d`` of ascending eigenpairs; ``real`` = number of real nodes."""
    dt = lam.dtype
    cols = jnp.arange(d).reshape((1,) * real.ndim + (d,))
    valid = cols < real[..., None]
    if lam.shape[-1] > d and partial == "drop":
        nxt = lam[..., d : d + 1]
        cut = (real[..., None] > d) & (jnp.abs(lam[..., :d] - nxt) <= tol)
        valid = valid & ~cut
    eigvals = jnp.where(valid, lam[..., :d], 0).astype(dt)
    eigvecs = vec[..., :, :d] * valid[..., None, :].astype(dt)
    return Eigenpairs(eigvals, eigvecs, valid)


def laplacian_eigh(
    adjacency: Float[Array, "*batch n n"],
    num_eigvals: int,
    node_mask: Bool[Array, "*batch n"] | None = None,
    *,
    partial_eigenspace: Literal["keep", "drop"] = "keep",
    tol: float | None = None,
) -> Eigenpairs:
    """The first ``d`` normalised-Laplacian eigenpairs inside ``jit``
    (``jnp.linalg.eigh`` on :func:`normalized_laplacian`), node-masked.

    The conventions of :func:`laplacian_eigenpairs` (isolated nodes, ascending
    order, the trivial eigenvalue included, zero rows on padded nodes, invalid
    columns beyond the real node count), computed in the adjacency's dtype.
    Padded nodes get the diagonal :data:`PAD_EIGENVALUE` before ``eigh``, so their
    eigenpairs come after every real one and are never valid. The symmetry of
    ``adjacency`` and the sign of its weights are not checked (values are not
    known at trace time): it is symmetrised. ``partial_eigenspace`` is ``"keep"``
    or ``"drop"`` (a cut inside an eigenspace cannot raise under ``jit``; the
    mask reports it).

    Derivatives: ``jnp.linalg.eigh``'s rule, except that the eigenvector term
    ``1/(λ_j − λ_i)`` is left out for eigenvalues closer than ``tol`` (it is
    infinite there: the basis inside an eigenspace is not a function of ``L``),
    so gradients stay finite on degenerate spectra (regular graphs, isolated
    nodes, edgeless graphs). Where the eigenvalues are distinct the derivative is
    exact. At a degenerate eigenvalue it is exact for perturbations that keep the
    eigenspace's eigenvalue common (e.g. those that respect the symmetry that
    makes it degenerate); a perturbation that splits the eigenspace moves each
    eigenvalue, to first order, by the diagonal of ``Vᵀ dL V`` in the returned
    basis, and the off-diagonal part inside the eigenspace is missed (for
    :func:`spe`'s ``W_ℓ`` that is ``φ_ℓ'(λ)`` times it). Use the host
    :func:`laplacian_eigenpairs` when no gradient through the eigenpairs is
    needed.

    Args:
      adjacency: ``(*batch, n, n)`` floating, non-negative weights.
      num_eigvals: ``d <= n`` (static).
      node_mask: ``(*batch, n)`` bool, ``True`` on real nodes (default all).
      partial_eigenspace: ``"keep"`` or ``"drop"``.
      tol: eigenvalues closer than this are one eigenspace (default
        ``max(1e-8, 1000 · eps)`` of the dtype: ``1e-8`` in float64, ``1.2e-4``
        in float32; float16 and bfloat16 are computed in float32, ``eigh`` has
        no half-precision kernels, and cast back).

    Returns:
      :class:`Eigenpairs` ``(*batch, d)``, ``(*batch, n, d)``, ``(*batch, d)``.

    Example:
      >>> A = jnp.roll(jnp.eye(6), 1, 0) + jnp.roll(jnp.eye(6), -1, 0)
      >>> ep = laplacian_eigh(A, 3, partial_eigenspace="drop")
      >>> ep.mask.tolist(), ep.eigvecs.shape
      ([True, True, True], (6, 3))
    """
    where = "laplacian_eigh"
    A = _check_floating(adjacency, f"{where}: adjacency")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{where}: adjacency must be (..., n, n), got {A.shape}")
    n = A.shape[-1]
    d = _static_int(num_eigvals, f"{where}: num_eigvals", 1)
    if d > n:
        raise ValueError(
            f"{where}: num_eigvals={d} is more eigenpairs than the {n} nodes"
        )
    mask = _check_mask(node_mask, A.shape[:-1], "node_mask", where)
    partial = _check_partial(partial_eigenspace, where, host=False)
    # eigh has no half-precision kernels: float16/bfloat16 run in float32
    cdt = A.dtype if jnp.dtype(A.dtype).itemsize >= 4 else jnp.dtype(jnp.float32)
    eps = float(jnp.finfo(cdt).eps)
    t = max(1e-8, 1000 * eps) if tol is None else float(tol)
    return _laplacian_eigh(A, mask, d, partial, t)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _laplacian_eigh(A, mask, d, partial, tol):
    dt0 = A.dtype
    if jnp.dtype(dt0).itemsize < 4:
        ep = _laplacian_eigh(A.astype(jnp.float32), mask, d, partial, tol)
        return Eigenpairs(ep.eigvals.astype(dt0), ep.eigvecs.astype(dt0), ep.mask)
    dt, n = A.dtype, A.shape[-1]
    L = _laplacian(A, mask)
    if mask is None:
        real = jnp.full(A.shape[:-2], n, jnp.int32)
    else:
        m = jnp.broadcast_to(mask, A.shape[:-1])
        real = jnp.sum(m, -1).astype(jnp.int32)
        pad = (1 - m.astype(dt)) * PAD_EIGENVALUE
        L = L + pad[..., :, None] * _eye(n, dt, L.ndim)
    lam, vec = _eigh(L, tol)
    if mask is not None:
        vec = vec * jnp.broadcast_to(mask, A.shape[:-1])[..., :, None].astype(dt)
    return _select(lam, vec, real, d, partial, tol)


# ------------------------------------------------------------------ SPE


class SPEParams(NamedTuple):
    """Parameters of :func:`spe`.

    Attributes:
      phi: the ``m`` element-wise eigenvalue MLPs ``φ_ℓ: R → R``, stacked: weights
        ``(m, a, b)`` (``1 → … → 1``), biases ``(m, b)``.
      rho: one MLP per GIN layer of ``ρ``; the first takes ``m`` channels
        (``m + 1`` with the diagonal-indicator channel).
      eps: ``(num_layers,)`` GIN ``ε``.
      head: the MLP applied after the sum over the column axis (``→ p``).
    """

    phi: MLPParams
    rho: tuple[MLPParams, ...]
    eps: Array
    head: MLPParams


def _mlp_specs(sizes, bias_scale: float, lead: tuple[int, ...] = ()):
    """``(shape, scale)`` of an MLP's weights (He-scaled) and then its biases.
    The biases are random too: a ReLU MLP with zero biases is positively
    homogeneous (``φ(λ) = c·λ`` on ``λ >= 0``: every eigenvalue channel would be
    a multiple of the same one)."""
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    ws = [((*lead, a, b), float(np.sqrt(2.0 / max(a, 1)))) for a, b in pairs]
    return ws + [((*lead, b), bias_scale) for _, b in pairs]


def _draw_mlps(key, specs, dtype) -> list[MLPParams]:
    """MLPs from ONE normal draw (each random op is a program to compile)."""
    flat = [s for spec in specs for s in spec]
    sizes = [int(np.prod(shape)) for shape, _ in flat]
    z = jax.random.normal(key, (sum(sizes),), dtype)
    arrs, off = [], 0
    for (shape, scale), k in zip(flat, sizes, strict=True):
        arrs.append(z[off : off + k].reshape(shape) * jnp.asarray(scale, dtype))
        off += k
    out, i = [], 0
    for spec in specs:
        nl = len(spec) // 2
        out.append(MLPParams(tuple(arrs[i : i + nl]), tuple(arrs[i + nl : i + 2 * nl])))
        i += 2 * nl
    return out


def spe_init(
    key: jax.Array,
    num_eigvals: int,
    out_dim: int,
    *,
    num_channels: int = 8,
    phi_hidden: int = 16,
    phi_layers: int = 2,
    hidden: int = 32,
    num_layers: int = 2,
    diagonal: bool = False,
    dtype: Any = jnp.float32,
) -> SPEParams:
    """Random parameters of :func:`spe`.

    Args:
      key: PRNG key.
      num_eigvals: ``d``. The eigenvalue networks act on each eigenvalue alone
        and ``ρ`` sees ``n × n`` matrices, so the parameters do not depend on
        ``d``: it is checked (``>= 1``) and the same parameters accept any
        number of eigenpairs.
      out_dim: ``p``, the width of the positional encoding.
      num_channels: ``m``, the number of eigenvalue networks ``φ_ℓ``.
      phi_hidden: hidden width of each ``φ_ℓ``.
      phi_layers: linear layers of each ``φ_ℓ`` (``>= 1``).
      hidden: width of ``ρ``'s GIN layers.
      num_layers: GIN layers of ``ρ`` (``>= 1``).
      diagonal: add the indicator of the diagonal ``δ_ij`` as an extra input
        channel of ``ρ`` (still basis-invariant and permutation-equivariant;
        lets ``ρ`` tell ``W_ii`` from ``W_ij`` when ``d < n``). Off in the paper.
      dtype: parameter dtype.

    Example:
      >>> p = spe_init(jax.random.key(0), num_eigvals=4, out_dim=3, num_channels=2)
      >>> p.phi.weights[0].shape, p.rho[0].weights[0].shape, p.head.weights[-1].shape
      ((2, 1, 16), (2, 32), (32, 3))
    """
    _static_int(num_eigvals, "spe_init: num_eigvals", 1)
    p = _static_int(out_dim, "spe_init: out_dim", 1)
    m = _static_int(num_channels, "spe_init: num_channels", 1)
    ph = _static_int(phi_hidden, "spe_init: phi_hidden", 1)
    pl = _static_int(phi_layers, "spe_init: phi_layers", 1)
    h = _static_int(hidden, "spe_init: hidden", 1)
    L = _static_int(num_layers, "spe_init: num_layers", 1)
    return _spe_init(key, p, m, ph, pl, h, L, bool(diagonal), jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=tuple(range(1, 9)))
def _spe_init(key, p, m, ph, pl, h, L, diagonal, dtype) -> SPEParams:
    # one compiled program: eagerly, every random op compiles on its own
    c = m + int(bool(diagonal))
    specs = [_mlp_specs([1] + [ph] * (pl - 1) + [1], 0.5, (m,))]
    specs += [_mlp_specs([c if i == 0 else h, h, h], 0.1) for i in range(L)]
    specs += [_mlp_specs([h, h, p], 0.1)]
    phi, *rho, head = _draw_mlps(key, specs, dtype)
    return SPEParams(phi, tuple(rho), jnp.zeros((L,), dtype), head)


def _phi(params: MLPParams, lam):
    """``[..., d] -> [..., d, m]``: the m element-wise eigenvalue MLPs."""
    x = jnp.broadcast_to(
        lam[..., None, None], lam.shape + (params.weights[0].shape[0], 1)
    )
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        b = b.astype(x.dtype).reshape((1,) * (x.ndim - 2) + b.shape)
        x = jnp.einsum("...ma,mab->...mb", x, w.astype(x.dtype)) + b
        if i < len(params.weights) - 1:
            x = jax.nn.relu(x)
    return x[..., 0]


def _spe_one(params: SPEParams, lam, V, s, r, nm, em, diagonal: bool):
    dt, n = V.dtype, V.shape[0]
    nmf, emf = nm.astype(dt), em.astype(dt)
    V = jnp.where(nm[:, None] & em[None, :], V, 0)  # NaN-safe: padding never leaks
    lam = jnp.where(em, lam, 0)
    z = _phi(params.phi, lam) * emf[:, None]  # [d, m]
    h = jnp.einsum("id,dm,jd->ijm", V, z, V)  # W_ℓ = V diag(φ_ℓ(λ)) Vᵀ
    if diagonal:
        eye = jnp.eye(n, dtype=dt) * nmf[:, None]
        h = jnp.concatenate([h, eye[:, :, None]], -1)
    rows, cols = nmf[:, None, None], nmf[None, :, None]
    for i, p in enumerate(params.rho):
        agg = jax.ops.segment_sum(h[s], r, n)  # messages along the row axis
        h = mlp(p, (1 + params.eps[i].astype(dt)) * h + agg) * rows
        if i < len(params.rho) - 1:
            h = jax.nn.relu(h)
    pooled = jnp.sum(h * cols, axis=1)  # masked sum over the column axis
    return mlp(params.head, pooled) * nmf[:, None]


def _check_broadcast(shape, batch, tail, what, where):
    """Shape arithmetic only (no array op runs before the checks pass)."""
    try:
        fits = jnp.broadcast_shapes(tuple(shape), batch + tail) == batch + tail
    except ValueError:
        fits = False
    if not fits or len(shape) > len(batch + tail):
        raise ValueError(
            f"{where}: {what} of shape {tuple(shape)} does not broadcast to the batch "
            f"shape {batch} (+ {tail})"
        )


def _check_eigen_inputs(eigvals, eigvecs, eigval_mask, node_mask, where):
    V = _check_floating(eigvecs, f"{where}: eigvecs")
    lam = _check_floating(eigvals, f"{where}: eigvals")
    if V.ndim < 2:
        raise ValueError(f"{where}: eigvecs must be (..., n, d), got {V.shape}")
    n, d = V.shape[-2:]
    if d > n:
        raise ValueError(
            f"{where}: {d} eigenpairs are more than the {n} nodes (eigvecs "
            f"{V.shape}: (..., n, d))"
        )
    if lam.ndim < 1 or lam.shape[-1] != d:
        raise ValueError(
            f"{where}: eigvals {lam.shape} must end in d={d} (eigvecs {V.shape})"
        )
    if lam.dtype != V.dtype:
        raise TypeError(
            f"{where}: eigvals ({lam.dtype}) and eigvecs ({V.dtype}) dtypes differ"
        )
    batch = V.shape[:-2]
    _check_broadcast(lam.shape, batch, (d,), "eigvals", where)
    em = _check_mask(eigval_mask, batch + (d,), "eigval_mask", where)
    nm = _check_mask(node_mask, batch + (n,), "node_mask", where)
    return lam, V, em, nm


def _batched(lam, V, em, nm):
    """Inside jit: broadcast ``λ`` and the masks (``None`` = all valid) to the
    batch of ``V``."""
    batch, (n, d) = V.shape[:-2], V.shape[-2:]
    lam = jnp.broadcast_to(lam, batch + (d,))
    em = jnp.ones(batch + (d,), bool) if em is None else em
    nm = jnp.ones(batch + (n,), bool) if nm is None else nm
    return lam, jnp.broadcast_to(em, batch + (d,)), jnp.broadcast_to(nm, batch + (n,))


def _check_edges(senders, receivers, batch, where):
    s, r = jnp.asarray(senders), jnp.asarray(receivers)
    for name, e in (("senders", s), ("receivers", r)):
        if not jnp.issubdtype(e.dtype, jnp.integer):
            raise TypeError(f"{where}: {name} must be integer, got dtype {e.dtype}")
        if e.ndim < 1:
            raise ValueError(f"{where}: {name} must be (..., E), got {e.shape}")
    if s.shape[-1] != r.shape[-1]:
        raise ValueError(
            f"{where}: senders {s.shape} and receivers {r.shape} differ in E"
        )
    E = s.shape[-1]
    _check_broadcast(s.shape, batch, (E,), "senders", where)
    _check_broadcast(r.shape, batch, (E,), "receivers", where)
    return s, r


def spe(
    params: SPEParams,
    eigvals: Float[Array, "*batch d"],
    eigvecs: Float[Array, "*batch n d"],
    senders: Int[Array, "*batch E"],
    receivers: Int[Array, "*batch E"],
    node_mask: Bool[Array, "*batch n"] | None = None,
    *,
    eigval_mask: Bool[Array, "*batch d"] | None = None,
) -> Float[Array, "*batch n p"]:
    """Stable and expressive positional encodings (Huang et al., ICLR 2024).

    ``SPE(V, λ) = ρ([V diag(φ_ℓ(λ)) Vᵀ]_ℓ)``: each eigenvalue network ``φ_ℓ``
    turns ``λ`` into ``d`` weights, ``W_ℓ = V diag(φ_ℓ(λ)) Vᵀ`` (``[n, n]``, the
    ``m`` of them stacked on a channel axis), and ``ρ`` runs GIN layers
    ``h ← MLP((1 + ε) h + Σ_{u → i} h[u])`` along the row axis of ``[n, n, C]``
    for every column at once, then sums the columns of real nodes and applies an
    MLP. The result is permutation-equivariant (relabel ``V``'s rows, the edges
    and the mask together and its rows follow), invariant to sign flips and to
    any orthogonal change of basis inside each eigenspace that the ``d``
    eigenpairs hold completely (see :func:`laplacian_eigenpairs` on cutting),
    and stable under small changes of the Laplacian.

    Padding never leaks: rows of ``eigvecs`` on masked nodes and eigenpairs with
    ``eigval_mask`` ``False`` are replaced by zeros (whatever they hold, NaN
    too), the GIN zeroes masked rows after every layer, the column sum skips
    masked columns, and masked rows of the output are zero. Padding edges (jraph's:
    both ends on a padding node) carry nothing; every index must lie in
    ``0 … n-1``.

    Args:
      params: :class:`SPEParams` from :func:`spe_init`.
      eigvals: ``(*batch, d)`` eigenvalues (any order: ``φ_ℓ`` acts on each).
      eigvecs: ``(*batch, n, d)`` eigenvectors (columns), ``d <= n``.
      senders, receivers: ``(*batch, E)`` integer edge lists of the graph ``ρ``
        passes messages on (both directions of every undirected edge).
      node_mask: ``(*batch, n)`` bool, ``True`` on real nodes (default all).
      eigval_mask: ``(*batch, d)`` bool, ``True`` on valid eigenpairs (e.g.
        :attr:`Eigenpairs.mask`; default all).

    Leading batch axes of every argument broadcast to those of ``eigvecs``
    (one graph with many eigendecompositions, or a batch of padded graphs);
    ``jax.vmap`` works too.

    Returns:
      ``(*batch, n, p)`` in the dtype of ``eigvecs`` (the parameters are cast).

    Raises:
      TypeError: non-floating ``eigvals``/``eigvecs`` (or of different dtypes),
        non-integer edges, non-boolean masks, parameters of another type.
      ValueError: ``d > n``, mismatched shapes, parameters that do not fit.

    Example:
      >>> A = np.roll(np.eye(6), 1, 0) + np.roll(np.eye(6), -1, 0)
      >>> ep = laplacian_eigenpairs(A, 3)
      >>> s, r = np.nonzero(A)
      >>> params = spe_init(jax.random.key(0), num_eigvals=3, out_dim=4)
      >>> pe = spe(params, ep.eigvals, ep.eigvecs, s, r, eigval_mask=ep.mask)
      >>> pe.shape, pe.dtype
      ((6, 4), dtype('float32'))
      >>> flipped = ep.eigvecs * np.array([1.0, -1.0, -1.0], np.float32)
      >>> bool(jnp.allclose(spe(params, ep.eigvals, flipped, s, r), pe, atol=1e-5))
      True
    """
    where = "spe"
    if not isinstance(params, SPEParams):
        raise TypeError(f"{where}: params must be SPEParams, got {type(params)}")
    lam, V, em, nm = _check_eigen_inputs(
        eigvals, eigvecs, eigval_mask, node_mask, where
    )
    batch = V.shape[:-2]
    s, r = _check_edges(senders, receivers, batch, where)
    m = int(params.phi.weights[-1].shape[0])
    c_in = int(params.rho[0].weights[0].shape[0])
    if c_in not in (m, m + 1) or params.phi.weights[0].shape[-2] != 1:
        raise ValueError(
            f"{where}: params do not fit together: {m} eigenvalue networks but "
            f"ρ's first layer takes {c_in} channels (expected {m} or {m + 1})"
        )
    return _spe(params, lam, V, s, r, nm, em, c_in == m + 1)


@functools.partial(jax.jit, static_argnums=(7,))
def _spe(params, lam, V, s, r, nm, em, diagonal):
    batch, (n, d) = V.shape[:-2], V.shape[-2:]
    lam, em, nm = _batched(lam, V, em, nm)
    E = s.shape[-1]
    s, r = jnp.broadcast_to(s, batch + (E,)), jnp.broadcast_to(r, batch + (E,))
    one = functools.partial(_spe_one, params, diagonal=diagonal)
    flat = jax.vmap(one)(
        lam.reshape(-1, d),
        V.reshape(-1, n, d),
        s.reshape(-1, E),
        r.reshape(-1, E),
        nm.reshape(-1, n),
        em.reshape(-1, d),
    )
    return flat.reshape(batch + flat.shape[-2:])


# ------------------------------------------------------------- baselines


class EigvecPEParams(NamedTuple):
    """Parameters of :func:`eigvec_pe`: one MLP ``d → … → p`` on each node's row
    of eigenvector entries."""

    mlp: MLPParams


def eigvec_pe_init(
    key: jax.Array,
    num_eigvals: int,
    out_dim: int,
    *,
    hidden: int = 32,
    dtype: Any = jnp.float32,
) -> EigvecPEParams:
    """Random parameters of :func:`eigvec_pe` (an MLP ``d → hidden → p``).

    Example:
      >>> eigvec_pe_init(jax.random.key(0), 4, 3).mlp.weights[0].shape
      (4, 32)
    """
    d = _static_int(num_eigvals, "eigvec_pe_init: num_eigvals", 1)
    p = _static_int(out_dim, "eigvec_pe_init: out_dim", 1)
    h = _static_int(hidden, "eigvec_pe_init: hidden", 1)
    return _eigvec_pe_init(key, d, h, p, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _eigvec_pe_init(key, d, h, p, dtype) -> EigvecPEParams:
    (mlp_params,) = _draw_mlps(key, [_mlp_specs([d, h, p], 0.1)], dtype)
    return EigvecPEParams(mlp_params)


def eigvec_pe(
    params: EigvecPEParams,
    eigvecs: Float[Array, "*batch n d"],
    node_mask: Bool[Array, "*batch n"] | None = None,
    *,
    eigval_mask: Bool[Array, "*batch d"] | None = None,
) -> Float[Array, "*batch n p"]:
    """The raw-eigenvector positional encoding: an MLP on each node's row
    ``V[i, :]`` (the Laplacian PE of Dwivedi et al., 2020/2023, without random
    sign flips). Permutation-equivariant, but it changes under sign flips and
    rotations inside eigenspaces: the baseline (and failing control) of
    :func:`spe`. Masked eigenpairs and nodes are zeroed; masked output rows are
    zero.

    Example:
      >>> V = jnp.linalg.eigh(jnp.eye(4) + 0.1 * jnp.ones((4, 4)))[1][:, :2]
      >>> eigvec_pe(eigvec_pe_init(jax.random.key(0), 2, 3), V).shape
      (4, 3)
    """
    where = "eigvec_pe"
    if not isinstance(params, EigvecPEParams):
        raise TypeError(f"{where}: params must be EigvecPEParams, got {type(params)}")
    V = _check_floating(eigvecs, f"{where}: eigvecs")
    if V.ndim < 2:
        raise ValueError(f"{where}: eigvecs must be (..., n, d), got {V.shape}")
    n, d = V.shape[-2:]
    if d > n:
        raise ValueError(f"{where}: {d} eigenpairs are more than the {n} nodes")
    if params.mlp.weights[0].shape[0] != d:
        raise ValueError(
            f"{where}: params take {params.mlp.weights[0].shape[0]} eigenvectors, "
            f"got d={d}"
        )
    _, V, em, nm = _check_eigen_inputs(
        np.zeros((d,), V.dtype), V, eigval_mask, node_mask, where
    )
    return _eigvec_pe(params, V, nm, em)


@jax.jit
def _eigvec_pe(params, V, nm, em):
    dt = V.dtype
    _, em, nm = _batched(jnp.zeros(V.shape[-1:], dt), V, em, nm)
    nmf = nm.astype(dt)[..., :, None]
    V = jnp.where(nm[..., :, None] & em[..., None, :], V, 0)
    return mlp(params.mlp, V) * nmf


class SignNetParams(NamedTuple):
    """Parameters of :func:`signnet_pe`.

    Attributes:
      phi: MLP ``(v, λ) → h`` applied to every eigenvector entry (with its
        eigenvalue), symmetrised as ``φ(v, λ) + φ(−v, λ)``.
      rho: MLP ``d · h → … → p`` on each node's concatenated features.
    """

    phi: MLPParams
    rho: MLPParams


def signnet_pe_init(
    key: jax.Array,
    num_eigvals: int,
    out_dim: int,
    *,
    phi_hidden: int = 16,
    hidden: int = 32,
    dtype: Any = jnp.float32,
) -> SignNetParams:
    """Random parameters of :func:`signnet_pe`.

    Example:
      >>> p = signnet_pe_init(jax.random.key(0), 4, 3, phi_hidden=8)
      >>> p.phi.weights[0].shape, p.rho.weights[0].shape
      ((2, 8), (32, 32))
    """
    d = _static_int(num_eigvals, "signnet_pe_init: num_eigvals", 1)
    p = _static_int(out_dim, "signnet_pe_init: out_dim", 1)
    ph = _static_int(phi_hidden, "signnet_pe_init: phi_hidden", 1)
    h = _static_int(hidden, "signnet_pe_init: hidden", 1)
    return _signnet_pe_init(key, d, p, ph, h, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _signnet_pe_init(key, d, p, ph, h, dtype) -> SignNetParams:
    specs = [_mlp_specs([2, ph, ph], 0.5), _mlp_specs([d * ph, h, p], 0.1)]
    phi, rho = _draw_mlps(key, specs, dtype)
    return SignNetParams(phi, rho)


def signnet_pe(
    params: SignNetParams,
    eigvals: Float[Array, "*batch d"],
    eigvecs: Float[Array, "*batch n d"],
    node_mask: Bool[Array, "*batch n"] | None = None,
    *,
    eigval_mask: Bool[Array, "*batch d"] | None = None,
) -> Float[Array, "*batch n p"]:
    """A SignNet-style sign-invariant encoding (Lim et al., "Sign and Basis
    Invariant Networks for Spectral Graph Representation Learning", ICLR 2023):
    ``ρ([φ(v_k, λ_k) + φ(−v_k, λ_k)]_{k = 1 … d})`` with ``φ`` an MLP on each
    entry of eigenvector ``k`` (and its eigenvalue) and ``ρ`` an MLP on each
    node's ``d · h`` features. Invariant to the sign of every eigenvector, not to
    rotations inside an eigenspace of dimension ``>= 2``. Masked eigenpairs
    contribute zero; masked output rows are zero.

    Example:
      >>> V = jnp.linalg.eigh(jnp.eye(4) + 0.1 * jnp.ones((4, 4)))[1][:, :2]
      >>> p = signnet_pe_init(jax.random.key(0), 2, 3)
      >>> lam = jnp.array([0.0, 1.0])
      >>> bool(jnp.allclose(signnet_pe(p, lam, -V), signnet_pe(p, lam, V)))
      True
    """
    where = "signnet_pe"
    if not isinstance(params, SignNetParams):
        raise TypeError(f"{where}: params must be SignNetParams, got {type(params)}")
    lam, V, em, nm = _check_eigen_inputs(
        eigvals, eigvecs, eigval_mask, node_mask, where
    )
    d, h = V.shape[-1], params.phi.weights[-1].shape[-1]
    if params.phi.weights[0].shape[0] != 2 or params.rho.weights[0].shape[0] != d * h:
        raise ValueError(
            f"{where}: params take {params.rho.weights[0].shape[0] // max(h, 1)} "
            f"eigenvectors, got d={d}"
        )
    return _signnet_pe(params, lam, V, nm, em)


@jax.jit
def _signnet_pe(params, lam, V, nm, em):
    dt = V.dtype
    lam, em, nm = _batched(lam, V, em, nm)
    n, d = V.shape[-2:]
    emf, nmf = em.astype(dt), nm.astype(dt)[..., :, None]
    V = jnp.where(nm[..., :, None] & em[..., None, :], V, 0)
    lam = jnp.broadcast_to(jnp.where(em, lam, 0)[..., None, :], V.shape)

    def phi(v):
        return mlp(params.phi, jnp.stack([v, lam], -1))

    z = (phi(V) + phi(-V)) * emf[..., None, :, None]  # [..., n, d, h]
    z = z.reshape(z.shape[:-2] + (d * z.shape[-1],))
    return mlp(params.rho, z) * nmf
