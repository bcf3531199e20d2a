"""The `Group` record and the input checks shared by every group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

Element = Any
"""A group element: an array or a pytree of arrays with leading batch axes."""

Action = Callable[[Element, Any], Any]
"""``act(g, x) -> g·x``, broadcasting over leading batch axes."""


class Group(NamedTuple):
    """A group as a record of pure functions (optax-style, see STYLE.md §2).

    Every function broadcasts over leading batch axes of its element arguments and
    works under ``jit``, ``vmap`` and ``grad``. Records are cached by their factory
    (``Sn(5) is Sn(5)``), so they are hashable and safe to close over in jitted code.

    Attributes:
      name: human-readable name, e.g. ``"SO3"`` or ``"Sn(7)"``.
      identity: ``identity(shape=(), dtype=None) -> g`` with batch shape ``shape``.
      compose: ``compose(g, h) -> g∘h`` (first apply ``h``, then ``g``).
      inverse: ``inverse(g) -> g⁻¹``.
      sample: ``sample(key, shape=(), dtype=None) -> g``; Haar for compact groups,
        a documented distribution otherwise.
      act: the natural action ``act(g, x) -> g·x`` (points for matrix groups, items
        for permutations).
      exp: Lie-algebra coordinates -> element, or ``None`` where not defined.
      log: element -> Lie-algebra coordinates (inverse of ``exp`` on its principal
        domain), or ``None`` where not defined.
      validate: ``validate(g) -> None``; raises ``ValueError``/``TypeError`` when
        ``g`` is not an element: its shape and dtype are checked always (so at
        trace time), and, when ``g`` is concrete (not a tracer: eager code),
        membership too (orthogonality, determinant, a true permutation, ...), in
        NumPy on the host. ``act``, ``compose``, ``inverse`` and ``log`` run the
        same checks, so under ``jit`` they cost nothing and eagerly they refuse
        elements of the wrong group (a reflection passed to ``SO3.act``).
      dim: the dimension ``n`` of the space acted on (``n`` items for ``Sn``).
      compact: whether ``sample`` draws from a Haar measure.
      has_reflections: whether the group contains elements with ``det = -1``.

    Example:
      >>> import jax, eqjax as eq
      >>> R = eq.groups.SO3.sample(jax.random.key(0), (4,))
      >>> R.shape
      (4, 3, 3)
      >>> I = eq.groups.SO3.compose(R, eq.groups.SO3.inverse(R))
      >>> bool(jax.numpy.allclose(I, eq.groups.SO3.identity((4,)), atol=1e-5))
      True
    """

    name: str
    identity: Callable[..., Element]
    compose: Callable[[Element, Element], Element]
    inverse: Callable[[Element], Element]
    sample: Callable[..., Element]
    act: Action
    exp: Callable[[Any], Element] | None
    log: Callable[[Element], Any] | None
    validate: Callable[[Element], None]
    dim: int
    compact: bool
    has_reflections: bool

    def __repr__(self) -> str:
        return f"Group({self.name})"


def default_float() -> Any:
    """The default floating dtype of JAX (float64 under ``jax_enable_x64``)."""
    return jnp.zeros(()).dtype


def check_float(x: Any, what: str) -> None:
    dtype = getattr(x, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{what} must be a floating-point array, got dtype {dtype}")


def check_square(g: Any, n: int, group: str) -> None:
    """Raise unless ``g`` is a floating array of shape ``(..., n, n)``."""
    shape = getattr(g, "shape", None)
    if shape is None:
        raise TypeError(f"{group} expects an array element, got {type(g).__name__}")
    if len(shape) < 2 or shape[-2:] != (n, n):
        raise ValueError(
            f"{group} expects elements of shape (..., {n}, {n}); got shape {shape}"
        )
    check_float(g, f"{group} element")


def check_vectors(x: Any, n: int, group: str, where: str | None = None) -> None:
    """Raise unless ``x`` is a floating array of shape ``(..., n)``; the message
    starts with ``where`` (default ``"<group>.act"``)."""
    where = f"{group}.act" if where is None else where
    shape = getattr(x, "shape", None)
    if shape is None:
        raise TypeError(f"{where} expects an array, got {type(x).__name__}")
    if len(shape) < 1 or shape[-1] != n:
        raise ValueError(
            f"{where} expects points/vectors of shape (..., {n}); got shape {shape}"
        )
    check_float(x, f"{where} input")


def matvec(A: jax.Array, x: jax.Array) -> jax.Array:
    """``A @ x`` for ``A (..., n, m)`` and ``x (..., m)`` with broadcast batch axes."""
    return jnp.einsum("...ij,...j->...i", A, x)


def add_broadcast(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a + b`` with explicit left-padding of the lower-rank operand (numpy
    broadcasting of leading batch axes that also works under
    ``jax_numpy_rank_promotion="raise"``)."""
    if a.ndim < b.ndim:
        a = a.reshape((1,) * (b.ndim - a.ndim) + a.shape)
    elif b.ndim < a.ndim:
        b = b.reshape((1,) * (a.ndim - b.ndim) + b.shape)
    return a + b


def random_orthogonal(key: jax.Array, shape: tuple[int, ...], n: int, dtype) -> Any:
    """Haar-distributed O(n) matrices via QR of a Gaussian with the sign fix.

    Mezzadri, "How to generate random matrices from the classical compact groups"
    (Notices AMS 2007): ``Q · diag(sign(diag R))`` is Haar on O(n).
    """
    z = jax.random.normal(key, (*shape, n, n), dtype=dtype)
    q, r = jnp.linalg.qr(z)
    d = jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))
    d = jnp.where(d == 0, 1, d)
    return q * d[..., None, :]


def small_det(a: jax.Array) -> jax.Array:
    """``det`` of ``(..., n, n)`` matrices: closed forms for ``n <= 3`` (a few
    multiplications, cheap to compile and differentiate), LU otherwise."""
    n = a.shape[-1]
    if n == 1:
        return a[..., 0, 0]
    if n == 2:
        return a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    if n == 3:
        c = jnp.cross(a[..., 1, :], a[..., 2, :])
        return jnp.sum(a[..., 0, :] * c, axis=-1)
    return jnp.linalg.det(a)


def flip_to_det_one(q: jax.Array) -> jax.Array:
    """Multiply the first column by ``det(q)`` so that ``det = +1``.

    Maps Haar on O(n) to Haar on SO(n) (right multiplication by a fixed reflection
    preserves Haar measure on the coset).
    """
    det = small_det(q)
    s = jnp.where(det < 0, -1.0, 1.0).astype(q.dtype)
    return q.at[..., :, 0].multiply(s[..., None])


def static_int(value: Any, what: str, *, minimum: int | None = None) -> int:
    """``value`` as a Python ``int`` for a static argument (a size, an axis, a
    count), refusing floats (``2.7``, ``2.0``), strings (``'4'``), bools and values
    below ``minimum`` with an error naming ``what``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{what} must be an int, got {value!r} ({type(value).__name__})"
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    return value


def normalize_axis(axis: Any, ndim: int, what: str) -> int:
    """A static axis in ``[-ndim, ndim)`` as a non-negative int; out-of-range axes
    are refused instead of wrapped around."""
    axis = static_int(axis, what)
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{what}={axis} is out of range for an input with {ndim} axes "
            f"(valid: {-ndim} .. {ndim - 1})"
        )
    return axis % ndim


def as_shape(shape: int | tuple[int, ...] | None) -> tuple[int, ...]:
    """A batch shape as a tuple of non-negative ints (``None`` and ``()`` mean
    unbatched); floats, strings and negative sizes are refused."""
    if shape is None:
        return ()
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        return (static_int(shape, "shape", minimum=0),)
    if isinstance(shape, str) or not isinstance(shape, tuple | list):
        raise TypeError(
            f"shape must be an int or a tuple of ints, got {shape!r} "
            f"({type(shape).__name__})"
        )
    return tuple(
        static_int(s, f"shape {tuple(shape)!r} entry", minimum=0) for s in shape
    )


# ---------------------------------------------------------------- membership


def concrete(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array when its values are known (eager code), ``None`` for
    tracers (inside ``jit``/``vmap``/``grad``): membership checks are free there
    because they are skipped."""
    if isinstance(x, jax.core.Tracer):
        return None
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        try:
            return np.asarray(x)
        except Exception:  # e.g. a sharded array not addressable here
            return None
    return None


def membership_tolerance(dtype: Any) -> float:
    """``10·√eps`` of ``dtype``: about 3e-3 in float32 and 1.5e-7 in float64, loose
    enough for accumulated rounding and tight enough to refuse ``2·I``."""
    return 10.0 * float(np.sqrt(np.finfo(np.dtype(dtype)).eps))


def _where(bad: Any) -> str:
    bad = np.asarray(bad)
    if bad.ndim == 0:
        return ""
    idx = np.argwhere(bad)
    return (
        f" (batch index {tuple(int(i) for i in idx[0])}, {len(idx)} of {bad.size} bad)"
    )


def check_finite_element(a: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(a).reshape(*a.shape[: a.ndim - 2], -1).all(-1)
    if bad.any():
        raise ValueError(f"{where}: the element contains NaN or inf{_where(bad)}")


def check_orthogonal_values(g: Any, where: str, *, special: bool) -> None:
    """When ``g`` is concrete: raise unless every matrix is orthogonal (and has
    ``det = +1`` when ``special``)."""
    a = concrete(g)
    if a is None or a.size == 0:
        return
    tol = membership_tolerance(a.dtype)
    a = a.astype(np.float64)
    check_finite_element(a, where)
    n = a.shape[-1]
    gram = np.swapaxes(a, -1, -2) @ a
    dev = np.abs(gram - np.eye(n)).max(axis=(-2, -1))
    bad = dev > tol
    if bad.any():
        raise ValueError(
            f"{where}: the element is not an orthogonal matrix: max|gᵀg − I| = "
            f"{dev.max():.3g} (tolerance {tol:.1e}){_where(bad)}"
        )
    if special:
        det = np.linalg.det(a)
        bad = det < 0
        if bad.any():
            raise ValueError(
                f"{where}: the element has det = -1 (a reflection), but the group "
                f"holds rotations only (det = +1); use the O(n)/E(n) group for "
                f"reflections{_where(bad)}"
            )


def check_invertible_values(
    g: Any, where: str, *, positive: bool = False, unimodular: bool = False
) -> None:
    """When ``g`` is concrete: raise if a matrix is singular (smallest singular value
    below ``n·eps`` of the largest), has ``det <= 0`` (``positive``) or
    ``det != 1`` (``unimodular``)."""
    a = concrete(g)
    if a is None or a.size == 0:
        return
    dtype = a.dtype
    a = a.astype(np.float64)
    check_finite_element(a, where)
    n = a.shape[-1]
    sv = np.linalg.svd(a, compute_uv=False)
    smax = sv[..., 0]
    bad = sv[..., -1] <= n * float(np.finfo(dtype).eps) * smax
    if bad.any():
        raise ValueError(
            f"{where}: the matrix is singular (smallest singular value "
            f"{sv[..., -1].min():.3g}, largest {smax.max():.3g}): not an element of "
            f"an invertible-matrix group{_where(bad)}"
        )
    if positive or unimodular:
        det = np.linalg.det(a)
        if positive and (det <= 0).any():
            raise ValueError(
                f"{where}: the matrix has det = {det[det <= 0].ravel()[0]:.3g} <= 0, "
                f"not in GL+(n){_where(np.asarray(det <= 0))}"
            )
        if unimodular:
            tol = membership_tolerance(dtype) * n
            bad = np.abs(det - 1.0) > tol
            if bad.any():
                raise ValueError(
                    f"{where}: the matrix has det = {det[bad].ravel()[0]:.6g}, not 1 "
                    f"(tolerance {tol:.1e}): not in SL(n){_where(bad)}"
                )


def resolve_dtype(dtype) -> Any:
    return default_float() if dtype is None else jnp.dtype(dtype)
