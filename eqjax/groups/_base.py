"""The `Group` record and the input checks shared by every group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
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
        ``g`` is not shaped like an element (checked on shapes, so at trace time).
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


def check_vectors(x: Any, n: int, group: str) -> None:
    """Raise unless ``x`` is a floating array of shape ``(..., n)``."""
    shape = getattr(x, "shape", None)
    if shape is None:
        raise TypeError(f"{group}.act expects an array, got {type(x).__name__}")
    if len(shape) < 1 or shape[-1] != n:
        raise ValueError(
            f"{group}.act expects points/vectors of shape (..., {n}); got shape {shape}"
        )
    check_float(x, f"{group}.act input")


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


def flip_to_det_one(q: jax.Array) -> jax.Array:
    """Multiply the first column by ``det(q)`` so that ``det = +1``.

    Maps Haar on O(n) to Haar on SO(n) (right multiplication by a fixed reflection
    preserves Haar measure on the coset).
    """
    det = jnp.linalg.det(q)
    s = jnp.where(det < 0, -1.0, 1.0).astype(q.dtype)
    return q.at[..., :, 0].multiply(s[..., None])


def as_shape(shape: int | tuple[int, ...] | None) -> tuple[int, ...]:
    if shape is None:
        return ()
    if isinstance(shape, int | np.integer):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def resolve_dtype(dtype) -> Any:
    return default_float() if dtype is None else jnp.dtype(dtype)
