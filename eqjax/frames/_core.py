"""Frames and frame averaging (Puny et al., "Frame Averaging for Invariant and
Equivariant Network Design", ICLR 2022).

A *frame* is an input-dependent, finite, weighted set of group elements ``F(X)``
with ``F(g·X) = g·F(X)``. Averaging over it turns any function into an invariant
or equivariant one:

* invariant: ``⟨φ⟩(X) = Σ_k w_k φ(g_k⁻¹·X)``
* equivariant: ``⟨Φ⟩(X) = Σ_k w_k g_k·Φ(g_k⁻¹·X)``

with ``(g_k, w_k)`` the elements and weights of ``F(X)`` (weights sum to one and
are themselves invariant).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..groups import EuclideanElement, permutation_inverse


class Frame(NamedTuple):
    """A frame ``F(X)``: ``k`` group elements with weights.

    Attributes:
      elements: a pytree of group elements whose leaves share a leading *frame axis*
        of static length ``k`` (after any batch axes of the input): matrices
        ``(k, d, d)``, ``EuclideanElement(R (k, d, d), t (k, d))``, permutations
        ``(k, n)``, or a :class:`ProductElement` of those.
      weights: ``(k,)`` non-negative weights summing to one. Zero weights pad a
        frame to its static size.

    Example:
      >>> import jax.numpy as jnp
      >>> f = Frame(jnp.eye(3)[None], jnp.ones(1))
      >>> f.elements.shape, f.weights.shape
      ((1, 3, 3), (1,))
    """

    elements: Any
    weights: Float[Array, "*batch k"]


class ProductElement(NamedTuple):
    """An element ``(a, b)`` of a direct product ``A × B`` of commuting actions,
    e.g. ``S_n × E(3)`` on point clouds: ``(p, g)·X = p·(g·X)``.

    Attributes:
      first: element of the first factor (applied last by :func:`product_act`).
      second: element of the second factor.
    """

    first: Any
    second: Any


def product_act(act_first: Callable, act_second: Callable) -> Callable:
    """The action of a direct product: ``act((a, b), x) = a·(b·x)``.

    Args:
      act_first: action of the first factor.
      act_second: action of the second factor (the two must commute, as node
        permutations and rigid motions of a point cloud do).

    Returns:
      ``act(g, x)`` for :class:`ProductElement` ``g``.

    Example:
      >>> import jax.numpy as jnp, eqjax as eq
      >>> act = product_act(eq.groups.act_set, eq.groups.O3.act)
      >>> g = ProductElement(jnp.array([1, 0]), -jnp.eye(3))
      >>> act(g, jnp.array([[1.0, 0, 0], [0, 2.0, 0]]))[0]
      Array([ 0., -2.,  0.], dtype=float32)
    """

    def act(g, x):
        return act_first(g[0], act_second(g[1], x))

    return act


def cloud_action(group) -> Callable[[Any, Any], Any]:
    """The action of one element of O(d)/SO(d)/E(d)/SE(d) on a cloud ``(..., n, d)``.

    ``group.act`` aligns element batch axes with the *leading* axes of the points,
    so one element acts on a cloud ``(n, d)`` directly, but a batch of elements
    ``(B,)`` does not broadcast against clouds ``(B, n, d)``. This wrapper inserts
    the point axis into the element first, so element ``b`` acts on every point of
    cloud ``b`` (use it as ``act_in``/``act_out`` when elements carry batch axes).

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> act = cloud_action(eq.groups.E3)
      >>> g = eq.groups.E3.sample(jax.random.key(0))
      >>> act(g, jnp.zeros((4, 3))).shape
      (4, 3)
    """

    def act(g, x):
        if isinstance(g, EuclideanElement):
            g = EuclideanElement(g.R[..., None, :, :], g.t[..., None, :])
        else:
            g = g[..., None, :, :]
        return group.act(g, x)

    return act


def invert_elements(g: Any) -> Any:
    """The inverse of frame elements, inferred from their type.

    ``EuclideanElement(R, t)`` -> ``(Rᵀ, -Rᵀ t)``; integer arrays (permutations)
    -> inverse permutation; floating ``(..., d, d)`` arrays are taken to be
    orthogonal -> transpose; :class:`ProductElement` -> both factors inverted.
    Pass ``inverse=`` to :func:`frame_average` for other groups.

    Example:
      >>> import jax.numpy as jnp
      >>> invert_elements(jnp.array([2, 0, 1]))
      Array([1, 2, 0], dtype=int32)
    """
    if isinstance(g, ProductElement):
        return ProductElement(invert_elements(g.first), invert_elements(g.second))
    if isinstance(g, EuclideanElement):
        Rt = jnp.swapaxes(g.R, -1, -2)
        return EuclideanElement(Rt, -jnp.einsum("...ij,...j->...i", Rt, g.t))
    dtype = getattr(g, "dtype", None)
    if dtype is None:
        raise TypeError(
            "frame_average cannot infer the inverse of frame elements of type "
            f"{type(g).__name__}; pass inverse=..."
        )
    if jnp.issubdtype(dtype, jnp.integer):
        return permutation_inverse(g)
    if g.ndim >= 2 and g.shape[-1] == g.shape[-2]:
        return jnp.swapaxes(g, -1, -2)
    raise TypeError(
        f"frame_average cannot infer the inverse of elements of shape {g.shape}; "
        "pass inverse=..."
    )


def _check_frame(frame: Any, where: str) -> Frame:
    if not (isinstance(frame, tuple) and len(frame) == 2):
        raise TypeError(
            f"{where}: a frame function must return Frame(elements, weights), got "
            f"{type(frame).__name__}"
        )
    elements, weights = frame
    weights = jnp.asarray(weights)
    if weights.ndim != 1:
        raise ValueError(
            f"{where}: frame weights must have shape (k,) for one input (vmap the "
            f"averaged function for batches); got shape {weights.shape}"
        )
    k = weights.shape[0]
    for leaf in jax.tree_util.tree_leaves(elements):
        if leaf.ndim < 1 or leaf.shape[0] != k:
            raise ValueError(
                f"{where}: frame elements must have leading frame axis {k}; got a "
                f"leaf of shape {leaf.shape}"
            )
    return Frame(elements, weights)


def _weighted_mean(weights, ys):
    def mean(y):
        y = jnp.asarray(y)
        if not jnp.issubdtype(y.dtype, jnp.inexact):
            raise TypeError(f"frame_average: outputs must be floating, got {y.dtype}")
        return jnp.einsum("k,k...->...", weights.astype(y.dtype), y)

    return jax.tree_util.tree_map(mean, ys)


AUTO = "auto"

# Working-set budget of the automatic CPU schedule: glibc's largest dynamic mmap
# threshold (DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB on 64-bit). XLA:CPU packs a
# program's temporaries into one allocation; above this size malloc serves it with
# a fresh mmap on every call, so every 4 KiB page of it is page-faulted (and zeroed
# by the kernel) again on every call (`python -m experiments bench_frames
# --diagnose`).
AUTO_BUDGET_BYTES = 32 * 2**20
# XLA:CPU temporaries per JAX residual byte, measured with
# ``jax.jit(f).lower(...).compile().memory_analysis()`` on the benchmark's
# PointNet backbone: a forward+backward step over a batch needs ~1.3x the bytes of
# the residuals JAX saves for it; of those, XLA keeps ~0.5x alive across a loop.
_STEP_TEMP_PER_RESIDUAL = 1.3
_KEPT_PER_RESIDUAL = 0.5
# The same for the partly checkpointed schedule (:func:`plan_stored_elements`),
# measured on that backbone at batch 256 with 0..4 of 8 elements stored (temp
# 14.3, 22.5, 26.9, 33.2, 39.4 MiB for ~10.3 MiB of residuals per call; `python -m
# experiments bench_frames --diagnose`): the checkpointed loop needs ~1.4x one
# call's residual bytes, each stored element adds ~0.6x.
_REMAT_STEP_PER_RESIDUAL = 1.4
_STORED_PER_RESIDUAL = 0.6
# With a retaining allocator, the share of physical memory the automatic schedule
# may plan for (the backbone's own batch of |F|·B inputs needs as much).
_RETAINED_MEMORY_SHARE = 0.25
# The smallest trim threshold that counts as retaining (below it glibc hands freed
# heap tops back to the kernel and they are page-faulted again).
_MIN_RETAINED_TRIM = 64 * 2**20
RETAINING_GLIBC_TUNABLES = (
    "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
    "glibc.malloc.trim_threshold=4294967296"
)


def _glibc_malloc_settings(environ) -> dict[str, int]:
    """glibc malloc tunables set in ``environ`` (``GLIBC_TUNABLES`` first, then the
    legacy ``MALLOC_*`` variables), as ints; unparsable values are skipped."""
    out: dict[str, int] = {}
    legacy = {
        "arena_max": "MALLOC_ARENA_MAX",
        "mmap_max": "MALLOC_MMAP_MAX_",
        "trim_threshold": "MALLOC_TRIM_THRESHOLD_",
    }
    for name, var in legacy.items():
        try:
            out[name] = int(environ[var], 0)
        except (KeyError, ValueError):
            pass
    for item in environ.get("GLIBC_TUNABLES", "").split(":"):
        key, sep, value = item.partition("=")
        if sep and key.startswith("glibc.malloc."):
            try:
                out[key[len("glibc.malloc.") :]] = int(value, 0)
            except ValueError:
                pass
    return out


def host_allocator_retains_memory(environ=None) -> bool:
    """Whether this process's glibc malloc keeps large freed blocks for reuse.

    XLA:CPU gets a program's temporaries from ``malloc`` on every call. With
    glibc's defaults, blocks above its largest dynamic mmap threshold (32 MiB)
    are fresh ``mmap`` s, and XLA's worker threads allocate from non-main arenas
    whose heaps cannot hold them either, so every call page-faults (the kernel
    zeroes) every page of them again. A process started with
    :data:`RETAINING_GLIBC_TUNABLES` in its environment (one arena, no mmap, freed
    heap tops kept up to 4 GiB) reuses them instead: there the frame average's
    one-``vmap`` schedule measured 1.05-1.13 × |F| backbone CPU time (E3, SE3,
    O3 frames) against 1.25-1.33 × for the 32 MiB schedule under the defaults
    (``python -m experiments bench_frames``). This is the CPU counterpart of
    XLA's preallocating GPU allocator. The settings are read by glibc at process
    start, so they must be in the environment before Python starts (``mallopt``
    later does not reach the arenas already created).

    Args:
      environ: mapping to read (default ``os.environ``).

    Returns:
      ``True`` iff glibc is the C library and ``arena_max`` is 1, ``mmap_max`` is
      0 and ``trim_threshold`` is at least 64 MiB (via ``GLIBC_TUNABLES`` or the
      ``MALLOC_ARENA_MAX``/``MALLOC_MMAP_MAX_``/``MALLOC_TRIM_THRESHOLD_``
      variables).

    Example:
      >>> from eqjax.frames import RETAINING_GLIBC_TUNABLES
      >>> host_allocator_retains_memory({"GLIBC_TUNABLES": RETAINING_GLIBC_TUNABLES})
      True
      >>> host_allocator_retains_memory({})
      False
    """
    return _retained_trim(os.environ if environ is None else environ) is not None


def _retained_trim(env) -> int | None:
    """The trim threshold when ``env`` makes glibc malloc retain large blocks (see
    :func:`host_allocator_retains_memory`), else ``None``."""
    if platform.libc_ver()[0] != "glibc":
        return None
    t = _glibc_malloc_settings(env)
    trim = t.get("trim_threshold", 0)
    retains = t.get("arena_max") == 1 and t.get("mmap_max") == 0
    return trim if retains and trim >= _MIN_RETAINED_TRIM else None


def auto_budget_bytes(environ=None) -> int:
    """The working-set budget of ``chunk_size="auto"`` on CPU, read at trace time.

    :data:`AUTO_BUDGET_BYTES` (32 MiB, glibc's mmap ceiling) by default; when
    :func:`host_allocator_retains_memory`, the smaller of the trim threshold and a
    quarter of physical memory (then the plan is usually one ``vmap``).

    Args:
      environ: mapping to read (default ``os.environ``).

    Returns:
      bytes.
    """
    trim = _retained_trim(os.environ if environ is None else environ)
    if trim is None:
        return AUTO_BUDGET_BYTES
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        phys = 4 * AUTO_BUDGET_BYTES
    return int(max(AUTO_BUDGET_BYTES, min(trim, _RETAINED_MEMORY_SHARE * phys)))


def _check_chunk(chunk_size, where: str) -> int | str | None:
    if chunk_size is None or chunk_size == AUTO:
        return chunk_size
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(
            f"{where}: chunk_size must be a Python int, None or 'auto', got "
            f"{chunk_size!r}"
        )
    if chunk_size < 1:
        raise ValueError(f"{where}: chunk_size must be >= 1, got {chunk_size}")
    return chunk_size


def _check_remat(remat, where: str):
    if isinstance(remat, bool) or remat == AUTO or callable(remat):
        return remat
    raise TypeError(
        f"{where}: remat must be a bool, 'auto' or a jax.checkpoint policy, got "
        f"{remat!r}"
    )


def plan_frame_schedule(
    num_elements: int,
    batch: int,
    residual_bytes: int,
    *,
    budget_bytes: int = AUTO_BUDGET_BYTES,
) -> tuple[int | None, bool]:
    """The CPU schedule of ``chunk_size="auto"``: ``(chunk_size, remat)``.

    Chooses the cheapest evaluation of ``num_elements`` backbone calls per input,
    over ``batch`` inputs, whose estimated XLA:CPU temporaries fit
    ``budget_bytes`` (default :data:`AUTO_BUDGET_BYTES`, glibc's 32 MiB mmap
    ceiling: larger temporaries are page-faulted afresh on every call):

    1. ``(None, False)``: one ``vmap`` over the frame (no extra work) if
       ``1.3 · k · B · r`` fits, ``r`` = ``residual_bytes`` per input;
    2. ``(1, False)``: ``lax.map`` over frame elements, residuals of all ``k``
       kept (``(0.5 k + 1.3) · B · r``);
    3. ``(1, True)``: ``lax.map`` with ``jax.checkpoint`` (one extra forward pass
       per checkpointed call; only its inputs are kept). With ``stored_elements=
       "auto"``, :func:`plan_stored_elements` then keeps the residuals of as many
       elements as still fit, and only the others are recomputed.

    The factors 1.3 and 0.5 are XLA:CPU temporaries per JAX residual byte measured
    on the benchmark's backbone (``python -m experiments bench_frames
    --diagnose``); they are estimates, not guarantees.

    The ceiling is the allocator's, not the frame's: in a process whose glibc
    malloc retains large blocks (:func:`host_allocator_retains_memory`, e.g.
    started with ``GLIBC_TUNABLES=`` :data:`RETAINING_GLIBC_TUNABLES`),
    ``chunk_size="auto"`` plans with :func:`auto_budget_bytes` instead, usually
    one ``vmap``, which measured 1.05-1.13 × |F| there against 1.25-1.33 × |F|
    for this plan's schedules under glibc's defaults (``python -m experiments
    bench_frames``).

    Args:
      num_elements: frame size ``k`` (or samples of the stochastic average).
      batch: inputs evaluated together (product of the ``vmap`` sizes around the
        averaged function).
      residual_bytes: bytes of the batch-dependent residuals JAX saves for
        reverse mode, per input and frame element.
      budget_bytes: working-set budget.

    Returns:
      ``(chunk_size, remat)`` for :func:`frame_average`.

    Example:
      >>> plan_frame_schedule(8, 64, 40_000)
      (None, False)
      >>> plan_frame_schedule(8, 256, 40_000)
      (1, True)
    """
    k, B, r = int(num_elements), int(batch), float(residual_bytes)
    step = _STEP_TEMP_PER_RESIDUAL * B * r
    if k * step <= budget_bytes:
        return None, False
    if _KEPT_PER_RESIDUAL * k * B * r + step <= budget_bytes:
        return 1, False
    return 1, True


def plan_stored_elements(
    num_elements: int,
    batch: int,
    residual_bytes: int,
    *,
    budget_bytes: int = AUTO_BUDGET_BYTES,
) -> int:
    """How many of the ``k`` checkpointed backbone calls of the automatic CPU
    schedule keep their residuals (``stored_elements="auto"``).

    Rematerialising a call costs one more forward pass (about 40% of a
    forward+backward pass for the benchmark's backbone), so the schedule stores the
    residuals of as many frame elements as fit the budget beside the working set
    of one call, ``0.6 · s · B · r + 1.4 · B · r <= budget`` (estimates measured
    like those of :func:`plan_frame_schedule`), and recomputes the other
    ``k - s``. Measured on the benchmark (E3 frame, ``k = 8``, batch 256, CPU
    time over |F| backbone calls; ``python -m experiments bench_frames
    --diagnose``): 1.44 with none stored, 1.40 with 1, 1.37 with 2 (this plan's
    choice, 26.9 MiB of temporaries); 3 or 4 stored cross the 32 MiB ceiling
    (33.2, 39.4 MiB), page-fault on every call and cost 1.57.

    Args:
      num_elements: frame size ``k``.
      batch: inputs evaluated together.
      residual_bytes: residual bytes per input and frame element.
      budget_bytes: working-set budget.

    Returns:
      ``s`` in ``[0, k]``.

    Example:
      >>> plan_stored_elements(8, 256, 42_000)
      2
    """
    k, B, r = int(num_elements), int(batch), float(residual_bytes)
    if B * r <= 0:
        return k
    room = budget_bytes - _REMAT_STEP_PER_RESIDUAL * B * r
    return int(max(0, min(k, room // (_STORED_PER_RESIDUAL * B * r))))


def _batch_size(x: Any) -> int:
    """Product of the ``vmap`` axis sizes around ``x`` (1 when not batched).

    Reads the batching tracers' ``val``/``batch_dim`` (and JVP tracers' ``primal``)
    by duck typing; anything else counts as unbatched.
    """
    leaves = jax.tree_util.tree_leaves(x)
    if not leaves:
        return 1
    t, size = leaves[0], 1
    for _ in range(64):
        if not isinstance(t, jax.core.Tracer):
            break
        if hasattr(t, "batch_dim") and hasattr(t, "val"):
            bd = t.batch_dim
            if isinstance(bd, int) and hasattr(t.val, "shape"):
                size *= int(t.val.shape[bd])
            t = t.val
        elif hasattr(t, "primal"):
            t = t.primal
        else:
            break
    return size


def _residual_bytes(fn, x, args) -> int | None:
    """Bytes per input of the batch-dependent residuals of ``fn(x, *args)``'s VJP
    w.r.t. ``x`` and the floating leaves of ``args`` (abstract evaluation only);
    ``None`` when ``fn`` cannot be probed."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    diff = [
        i
        for i, a in enumerate(leaves)
        if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.inexact)
    ]

    def total(nb):
        def probe(xb, dl):
            def g(xb, dl):
                full = list(leaves)
                for i, v in zip(diff, dl, strict=True):
                    full[i] = v
                a = jax.tree_util.tree_unflatten(treedef, full)
                return jax.vmap(lambda xi: fn(xi, *a))(xb)

            return jax.vjp(g, xb, dl)[1]

        xs = jax.tree_util.tree_map(
            lambda v: jax.ShapeDtypeStruct((nb, *jnp.shape(v)), jnp.result_type(v)), x
        )
        dl = [jax.ShapeDtypeStruct(jnp.shape(leaves[i]), leaves[i].dtype) for i in diff]
        out = jax.eval_shape(probe, xs, dl)
        return sum(
            int(np.prod(v.shape)) * v.dtype.itemsize
            for v in jax.tree_util.tree_leaves(out)
            if hasattr(v, "dtype") and v.dtype != jax.dtypes.float0
        )

    try:
        return max(0, total(2) - total(1))
    except Exception:  # noqa: BLE001 - the probe is advisory: fall back to vmap
        return None


def _check_stored(stored, where: str):
    if stored == AUTO:
        return stored
    if isinstance(stored, bool) or not isinstance(stored, int) or stored < 0:
        raise TypeError(
            f"{where}: stored_elements must be an int >= 0 or 'auto', got {stored!r}"
        )
    return stored


def _schedule(chunk_size, remat, stored, fn, x, args, k: int):
    """Resolve ``"auto"`` settings to ``(chunk_size, remat, stored)`` at trace
    time."""
    if chunk_size != AUTO or jax.default_backend() != "cpu":
        # explicit chunks, or an accelerator: one vmap unless told otherwise
        rm = False if remat == AUTO else remat
        chunk = None if chunk_size == AUTO else chunk_size
        return chunk, rm, (0 if stored == AUTO else stored)
    r = _residual_bytes(fn, x, args)
    if r is None:
        plan, s = (None, False), 0
    else:
        # the budget is read at trace time (environment; tests lower the constant)
        B = _batch_size(x)
        budget = auto_budget_bytes()
        plan = plan_frame_schedule(k, B, r, budget_bytes=budget)
        s = plan_stored_elements(k, B, r, budget_bytes=budget)
    rm = plan[1] if remat == AUTO else remat
    if stored != AUTO:
        s = stored
    elif remat != AUTO:
        s = 0
    return plan[0], rm, s


def _over_frame(one, elements, inv, chunk_size: int | None, remat=False, stored=0):
    """``one(g, g_inv)`` over the frame axis: one ``vmap`` (``chunk_size=None`` or
    ``>= k``), else ``lax.map`` over chunks of ``chunk_size`` elements; ``remat``
    (``True`` or a ``jax.checkpoint`` policy) rematerialises the intermediates of
    the calls of all but the first ``stored`` elements in the backward pass instead
    of storing them."""
    k = jax.tree_util.tree_leaves(elements)[0].shape[0]
    if remat is not False and remat is not None and 0 < stored < k:
        head = jax.tree_util.tree_map(lambda e: e[:stored], (elements, inv))
        tail = jax.tree_util.tree_map(lambda e: e[stored:], (elements, inv))
        ys_head = _over_frame(one, *head, chunk_size, False)
        ys_tail = _over_frame(one, *tail, chunk_size, remat)
        return jax.tree_util.tree_map(
            lambda u, v: jnp.concatenate([u, v], axis=0), ys_head, ys_tail
        )
    if stored >= k:
        remat = False
    if remat is True:
        one = jax.checkpoint(one)
    elif callable(remat):
        one = jax.checkpoint(one, policy=remat)
    if chunk_size is None or chunk_size >= k:
        return jax.vmap(one)(elements, inv)
    pair = lambda gs: one(*gs)
    if chunk_size == 1:
        return jax.lax.map(pair, (elements, inv))
    return jax.lax.map(pair, (elements, inv), batch_size=chunk_size)


def frame_average(
    fn: Callable[..., Any],
    frame: Callable[[Any], Frame],
    *,
    act_in: Callable[[Any, Any], Any],
    act_out: Callable[[Any, Any], Any] | None = None,
    inverse: Callable[[Any], Any] | None = None,
    chunk_size: int | str | None = AUTO,
    remat: bool | str | Callable[..., Any] = AUTO,
    stored_elements: int | str = AUTO,
) -> Callable[..., Any]:
    """Symmetrise ``fn`` over a frame (Puny et al., ICLR 2022, Eq. 4 and 5).

    Returns ``averaged(x, *args, frame=None)`` equal to
    ``Σ_k w_k fn(g_k⁻¹·x, *args)`` (``act_out=None``: invariant) or
    ``Σ_k w_k g_k·fn(g_k⁻¹·x, *args)`` (equivariant), where ``(g_k, w_k)`` is
    ``frame(x)``. The ``k`` backbone calls are one ``jax.vmap`` over the frame
    axis, or a ``lax.map`` over chunks of it on CPU when that keeps the working
    set small (``chunk_size``, ``remat``). ``*args`` are passed to ``fn``
    unchanged (invariant side inputs: charges, masks, parameters). A precomputed :class:`Frame` (e.g. a permutation frame built
    in NumPy by :func:`permutation_frame`) can be passed as ``frame=`` at call
    time; then ``frame`` given here may be ``None``.

    Exactness: if ``frame`` satisfies ``F(g·x) = g·F(x)`` with invariant weights,
    the result is exactly invariant/equivariant for *any* ``fn`` (up to float
    rounding). Convention: ``act_in(g, x)`` is a left action and ``frame`` returns
    elements ``g`` that map the canonical pose to the input (``x = g·x_canon``).

    Args:
      fn: the backbone, ``fn(x, *args) -> pytree of floating arrays``.
      frame: ``frame(x) -> Frame`` (``pca_frame``, ``point_pair_frame``,
        ``sort_frame``, ``product_frame``, ...), or ``None`` when frames are always
        passed at call time.
      act_in: action on inputs, ``act_in(g, x)`` for one element ``g``.
      act_out: action on outputs, ``act_out(g, y)``; ``None`` for invariance.
      inverse: ``inverse(elements) -> elements``; inferred from the element type
        (orthogonal matrices, ``EuclideanElement``, permutations, products) when
        ``None``.
      chunk_size: how the ``k`` backbone calls are scheduled (same values
        whichever is used). ``None``: all in one ``vmap``. An int ``c``:
        ``jax.lax.map`` over chunks of ``c`` frame elements (each chunk one
        ``vmap``), so a batched call evaluates the backbone on ``c·B`` rather
        than ``k·B`` inputs at a time. ``"auto"`` (default): one ``vmap`` on
        accelerators; on CPU, :func:`plan_frame_schedule` picks ``vmap``,
        ``lax.map`` or ``lax.map`` with ``jax.checkpoint`` at trace time from the
        batch size (the ``vmap`` axes around the averaged function) and the
        backbone's residual bytes per input (abstract evaluation of its VJP), so
        that XLA's temporaries stay under glibc's 32 MiB mmap ceiling, above
        which they are page-faulted afresh on every call (see ``python -m
        experiments bench_frames``); in a process whose allocator retains
        memory (:func:`host_allocator_retains_memory`) the budget is
        :func:`auto_budget_bytes`.
      remat: ``"auto"`` (default): as chosen by ``chunk_size="auto"``, else
        ``False``. ``True``: ``jax.checkpoint`` around each backbone call
        (recompute its forward pass in the backward pass instead of storing its
        intermediates); a ``jax.checkpoint_policies`` policy: checkpoint with
        that policy. ``False``: store everything.
      stored_elements: with ``remat``, the number ``s`` of frame elements (the
        first ``s``) whose calls keep their residuals; only the other ``k - s``
        calls are recomputed. ``"auto"`` (default): planned with ``chunk_size=
        "auto"`` by :func:`plan_stored_elements` (as many as fit the budget),
        else 0.

    Returns:
      ``averaged(x, *args, frame=None)`` with the output structure of ``fn``.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> frame = eq.frames.pca_frame("E3")
      >>> phi = lambda x: jnp.sum(jax.nn.softplus(x[:, 0] + 0.3))
      >>> act = eq.frames.cloud_action(eq.groups.E3)  # or eq.groups.E3.act
      >>> f = eq.frames.frame_average(phi, frame, act_in=act)
      >>> x = jax.random.normal(jax.random.key(0), (6, 3))
      >>> g = eq.groups.E3.sample(jax.random.key(1))
      >>> bool(jnp.allclose(f(x), f(act(g, x)), rtol=1e-4))
      True
    """
    invert = invert_elements if inverse is None else inverse
    chunk_size = _check_chunk(chunk_size, "frame_average")
    remat = _check_remat(remat, "frame_average")
    stored_elements = _check_stored(stored_elements, "frame_average")

    def averaged(x, *args, frame: Frame | None = None):
        if frame is None:
            if frame_fn is None:
                raise ValueError("frame_average: no frame function and no frame= given")
            frame = frame_fn(x)
        elements, weights = _check_frame(frame, "frame_average")
        inv = invert(elements)

        def one(g, g_inv):
            y = fn(act_in(g_inv, x), *args)
            return y if act_out is None else act_out(g, y)

        chunk, rm, st = _schedule(
            chunk_size, remat, stored_elements, fn, x, args, weights.shape[0]
        )
        ys = _over_frame(one, elements, inv, chunk, rm, st)
        return _weighted_mean(weights, ys)

    frame_fn = frame
    return averaged


def stochastic_frame_average(
    fn: Callable[..., Any],
    frame: Callable[[Any], Frame],
    *,
    act_in: Callable[[Any, Any], Any],
    act_out: Callable[[Any, Any], Any] | None = None,
    num_samples: int,
    inverse: Callable[[Any], Any] | None = None,
    chunk_size: int | str | None = AUTO,
    remat: bool | str | Callable[..., Any] = AUTO,
    stored_elements: int | str = AUTO,
) -> Callable[..., Any]:
    """Monte-Carlo frame averaging: ``num_samples`` elements drawn from the frame.

    Returns ``averaged(x, *args, key, frame=None)``: draws ``k = num_samples``
    indices i.i.d. from the categorical distribution given by the frame weights and
    returns the plain mean of ``fn`` (or ``g·fn``) over them. The estimate is
    unbiased: its expectation over ``key`` is :func:`frame_average`'s output, and
    for a frame with ``F(g·x) = g·F(x)`` it is invariant/equivariant in
    distribution. Cost: ``num_samples`` backbone calls instead of ``|F|``
    (Puny et al., ICLR 2022, Sec. 3.3; Duval et al., "FAENet", ICML 2023).

    Args:
      fn, frame, act_in, act_out, inverse, chunk_size, remat, stored_elements:
        as in :func:`frame_average` (``"auto"`` plans for ``num_samples`` calls).
      num_samples: static number of sampled elements (``>= 1``).

    Returns:
      ``averaged(x, *args, key, frame=None)``.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> frame = eq.frames.pca_frame("O3")
      >>> phi = lambda x: jnp.sum(jax.nn.softplus(x[:, 0] + 0.3))
      >>> f = eq.frames.stochastic_frame_average(
      ...     phi, frame, act_in=eq.groups.O3.act, num_samples=2)
      >>> x = jax.random.normal(jax.random.key(0), (6, 3))
      >>> f(x, key=jax.random.key(1)).shape
      ()
    """
    num_samples = int(num_samples)
    if num_samples < 1:
        raise ValueError(
            f"stochastic_frame_average: num_samples must be >= 1, got {num_samples}"
        )
    invert = invert_elements if inverse is None else inverse
    chunk_size = _check_chunk(chunk_size, "stochastic_frame_average")
    remat = _check_remat(remat, "stochastic_frame_average")
    stored_elements = _check_stored(stored_elements, "stochastic_frame_average")
    frame_fn = frame

    def averaged(x, *args, key, frame: Frame | None = None):
        if frame is None:
            if frame_fn is None:
                raise ValueError(
                    "stochastic_frame_average: no frame function and no frame= given"
                )
            frame = frame_fn(x)
        elements, weights = _check_frame(frame, "stochastic_frame_average")
        logits = jnp.log(jnp.maximum(weights, 0).astype(jnp.float32))
        idx = jax.random.categorical(key, logits, shape=(num_samples,))
        picked = jax.tree_util.tree_map(lambda e: jnp.take(e, idx, axis=0), elements)
        inv = invert(picked)

        def one(g, g_inv):
            y = fn(act_in(g_inv, x), *args)
            return y if act_out is None else act_out(g, y)

        chunk, rm, st = _schedule(
            chunk_size, remat, stored_elements, fn, x, args, num_samples
        )
        ys = _over_frame(one, picked, inv, chunk, rm, st)
        uniform = jnp.full((num_samples,), 1.0 / num_samples, weights.dtype)
        return _weighted_mean(uniform, ys)

    return averaged


def product_frame(frame_a: Callable[[Any], Frame], frame_b: Callable[[Any], Frame]):
    """The product frame ``F_A(x) × F_B(x)`` of two commuting symmetries.

    Elements are all pairs ``ProductElement(a_i, b_j)`` (frame axis of size
    ``k_A k_B``, ``a`` major), weights ``w_i w_j``. If ``F_A`` is ``A``-equivariant
    and ``B``-invariant and vice versa (e.g. a node ordering by E(3)-invariant keys
    and a PCA frame, which is unchanged by node relabelling), the product is
    ``A × B``-equivariant (Puny et al., ICLR 2022, Sec. 3.2). Act with
    :func:`product_act`.

    Args:
      frame_a: ``frame_a(x) -> Frame`` (the first factor, e.g. ``sort_frame``).
      frame_b: ``frame_b(x) -> Frame`` (the second factor, e.g. ``pca_frame``).

    Returns:
      ``frame(x) -> Frame`` with :class:`ProductElement` elements.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> fr = product_frame(eq.frames.sort_frame(lambda x: jnp.linalg.norm(
      ...     x - x.mean(0, keepdims=True), axis=-1)), eq.frames.pca_frame("E3"))
      >>> fr(jax.random.normal(jax.random.key(0), (5, 3))).weights.shape
      (8,)
    """

    def frame(x) -> Frame:
        ea, wa = _check_frame(frame_a(x), "product_frame")
        eb, wb = _check_frame(frame_b(x), "product_frame")
        ka, kb = wa.shape[0], wb.shape[0]
        first = jax.tree_util.tree_map(lambda e: jnp.repeat(e, kb, axis=0), ea)
        second = jax.tree_util.tree_map(
            lambda e: jnp.tile(e, (ka,) + (1,) * (e.ndim - 1)), eb
        )
        w = (wa[:, None] * wb[None, :].astype(wa.dtype)).reshape(ka * kb)
        return Frame(ProductElement(first, second), w)

    return frame
