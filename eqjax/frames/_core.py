"""Frames and frame averaging (Puny et al., "Frame Averaging for Invariant and
Equivariant Network Design", ICLR 2022).

A *frame* is an input-dependent, finite, weighted set of group elements ``F(X)``
with ``F(g·X) = g·F(X)``. Averaging over it turns any function into an invariant
or equivariant one:

* invariant: ``⟨φ⟩(X) = Σ_k w_k φ(g_k⁻¹·X)``
* equivariant: ``⟨Φ⟩(X) = Σ_k w_k g_k·Φ(g_k⁻¹·X)``

with ``(g_k, w_k)`` the elements and weights of ``F(X)`` (weights sum to one and
are themselves invariant). The inverses ``g_k⁻¹`` come from the frame's
:class:`~eqjax.groups.Group`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..groups import Group


@jax.tree_util.register_pytree_node_class
class Frame:
    """A frame ``F(X)``: ``k`` group elements with weights, and their group.

    A pytree whose children are ``elements`` and ``weights``; ``group`` is static
    metadata (it survives ``jit``, ``vmap`` and ``tree_map``). Unpacks like the
    pair it holds: ``elements, weights = frame``.

    Attributes:
      elements: a pytree of group elements whose leaves share a leading *frame axis*
        of static length ``k`` (after any batch axes of the input): matrices
        ``(k, d, d)``, ``EuclideanElement(R (k, d, d), t (k, d))``, permutations
        ``(k, n)``, or a :class:`ProductElement` of those.
      weights: ``(k,)`` non-negative weights summing to one. Zero weights pad a
        frame to its static size.
      group: the :class:`~eqjax.groups.Group` of the elements (its ``inverse`` is
        what :func:`frame_average` uses), or ``None`` for a frame built by hand;
        then pass ``group=`` or ``inverse=`` to :func:`frame_average`.

    Example:
      >>> import jax.numpy as jnp, eqjax as eq
      >>> f = Frame(jnp.eye(3)[None], jnp.ones(1), eq.groups.O3)
      >>> f.elements.shape, f.weights.shape, f.group
      ((1, 3, 3), (1,), Group(O3))
    """

    __slots__ = ("elements", "weights", "group")

    def __init__(
        self,
        elements: Any,
        weights: Float[Array | np.ndarray, "*batch k"],
        group: Group | None = None,
    ):
        self.elements = elements
        self.weights = weights
        self.group = group

    def __iter__(self) -> Iterator[Any]:
        return iter((self.elements, self.weights))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return (self.elements, self.weights)[i]

    def __repr__(self) -> str:
        return (
            f"Frame(elements={self.elements!r}, weights={self.weights!r}, "
            f"group={self.group!r})"
        )

    def _replace(self, **changes) -> Frame:
        """A copy with some of ``elements``, ``weights``, ``group`` replaced."""
        kw = {"elements": self.elements, "weights": self.weights, "group": self.group}
        return Frame(**{**kw, **changes})

    def tree_flatten(self):
        return (self.elements, self.weights), self.group

    @classmethod
    def tree_unflatten(cls, group, children):
        elements, weights = children
        return cls(elements, weights, group)


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


@functools.cache
def _product_group(a: Group, b: Group) -> Group:
    """The direct product ``A × B`` with :class:`ProductElement` elements,
    componentwise operations and the action :func:`product_act` of the factors'."""

    def validate(g):
        if not isinstance(g, ProductElement):
            raise TypeError(
                f"{a.name}×{b.name} expects a ProductElement, got {type(g).__name__}"
            )
        a.validate(g.first)
        b.validate(g.second)

    def identity(shape=(), dtype=None):
        return ProductElement(a.identity(shape), b.identity(shape, dtype))

    def compose(g, h):
        return ProductElement(a.compose(g[0], h[0]), b.compose(g[1], h[1]))

    def inverse(g):
        validate(g)
        return ProductElement(a.inverse(g.first), b.inverse(g.second))

    def sample(key, shape=(), dtype=None):
        ka, kb = jax.random.split(key)
        return ProductElement(a.sample(ka, shape), b.sample(kb, shape, dtype))

    return Group(
        name=f"{a.name}×{b.name}",
        identity=identity,
        compose=compose,
        inverse=inverse,
        sample=sample,
        act=product_act(a.act, b.act),
        exp=None,
        log=None,
        validate=validate,
        dim=b.dim,
        compact=a.compact and b.compact,
        has_reflections=a.has_reflections or b.has_reflections,
    )


def invert_elements(elements: Any, group: Group | None = None) -> Any:
    """The inverses of frame elements, through their group's ``inverse``.

    Args:
      elements: a :class:`Frame` (its ``group`` is used unless ``group`` is
        given), or bare elements (then ``group`` is required: the inverse is not
        guessed from dtypes and shapes).
      group: the elements' :class:`~eqjax.groups.Group`.

    Returns:
      the inverted elements (the elements of ``elements`` if it is a frame).

    Example:
      >>> import jax.numpy as jnp, eqjax as eq
      >>> invert_elements(jnp.array([2, 0, 1]), eq.groups.Sn(3))
      Array([1, 2, 0], dtype=int32)
    """
    if isinstance(elements, Frame):
        group = elements.group if group is None else group
        elements = elements.elements
    if group is None:
        raise TypeError(
            "invert_elements: the group of bare elements is not known; pass group= "
            "(e.g. eq.groups.O3)"
        )
    return group.inverse(elements)


def _is_concrete(x) -> bool:
    """Whether ``x`` has a value now (not a tracer under jit/vmap/grad)."""
    try:
        np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return False
    except jax.errors.ConcretizationTypeError:
        return False
    return True


def _check_weights(weights, where: str) -> None:
    """Floating weights always; when they are concrete (not traced), also finite,
    non-negative and summing to one (per frame)."""
    if not jnp.issubdtype(weights.dtype, jnp.floating):
        raise TypeError(
            f"{where}: frame weights must be floating, got dtype {weights.dtype} "
            "(integer weights would truncate to 0; e.g. use jnp.full(k, 1 / k))"
        )
    if isinstance(weights, jax.Array) and not _is_concrete(weights):
        return
    w = np.asarray(weights, np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{where}: frame weights contain NaN or inf: {w}")
    if np.any(w < 0):
        raise ValueError(f"{where}: frame weights must be >= 0, got {w}")
    total = w.sum(axis=-1)
    tol = 1e3 * float(jnp.finfo(weights.dtype).eps) * max(w.shape[-1], 1) ** 0.5
    if w.size and np.any(np.abs(total - 1) > tol):
        raise ValueError(
            f"{where}: frame weights must sum to one, got sums {total} (normalise "
            "them: w / w.sum())"
        )


def _check_frame(frame: Any, where: str) -> Frame:
    if isinstance(frame, Frame):
        elements, weights, group = frame.elements, frame.weights, frame.group
    elif isinstance(frame, tuple) and len(frame) == 2:
        (elements, weights), group = frame, None
    else:
        raise TypeError(
            f"{where}: a frame function must return Frame(elements, weights), got "
            f"{type(frame).__name__}"
        )
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
    _check_weights(weights, where)
    return Frame(elements, weights, group)


def _weighted_mean(weights, ys):
    def mean(y):
        y = jnp.asarray(y)
        if not jnp.issubdtype(y.dtype, jnp.inexact):
            raise TypeError(f"frame_average: outputs must be floating, got {y.dtype}")
        return jnp.einsum("k,k...->...", weights.astype(y.dtype), y)

    return jax.tree_util.tree_map(mean, ys)


def _check_schedule(chunk_size, remat, stored_elements, where: str) -> None:
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
            raise TypeError(
                f"{where}: chunk_size must be None (one vmap) or a Python int, got "
                f"{chunk_size!r}"
            )
        if chunk_size < 1:
            raise ValueError(f"{where}: chunk_size must be >= 1, got {chunk_size}")
    if not (isinstance(remat, bool) or callable(remat)):
        raise TypeError(
            f"{where}: remat must be a bool or a jax.checkpoint policy, got {remat!r}"
        )
    s = stored_elements
    if isinstance(s, bool) or not isinstance(s, int) or s < 0:
        raise TypeError(f"{where}: stored_elements must be an int >= 0, got {s!r}")


def _over_frame(one, elements, inv, chunk_size: int | None, remat: Any, stored: int):
    """``one(g, g_inv)`` over the frame axis: one ``vmap`` (``chunk_size=None`` or
    ``>= k``), else ``lax.map`` over chunks of ``chunk_size`` elements; ``remat``
    (``True`` or a ``jax.checkpoint`` policy) recomputes the calls of all but the
    first ``stored`` elements in the backward pass instead of storing their
    intermediates."""
    k = jax.tree_util.tree_leaves(elements)[0].shape[0]
    if remat is not False and 0 < stored < k:
        head, head_inv = jax.tree_util.tree_map(lambda e: e[:stored], (elements, inv))
        tail, tail_inv = jax.tree_util.tree_map(lambda e: e[stored:], (elements, inv))
        ys_head = _over_frame(one, head, head_inv, chunk_size, False, 0)
        ys_tail = _over_frame(one, tail, tail_inv, chunk_size, remat, 0)
        return jax.tree_util.tree_map(
            lambda u, v: jnp.concatenate([u, v], axis=0), ys_head, ys_tail
        )
    if stored >= k:
        remat = False
    if remat is True:
        one = jax.checkpoint(one)
    elif remat is not False:  # a policy (checked by _check_schedule)
        one = jax.checkpoint(one, policy=remat)
    if chunk_size is None or chunk_size >= k:
        return jax.vmap(one)(elements, inv)
    pair = lambda gs: one(*gs)
    if chunk_size == 1:
        return jax.lax.map(pair, (elements, inv))
    return jax.lax.map(pair, (elements, inv), batch_size=chunk_size)


def _averager(fn, frame_fn, act_in, act_out, group, inverse, schedule, num_samples):
    """The one evaluation path of :func:`frame_average` (``num_samples=None``) and
    :func:`stochastic_frame_average`: ``average(x, args, frame, key)``;
    ``schedule = (chunk_size, remat, stored_elements)``."""
    where = "frame_average" if num_samples is None else "stochastic_frame_average"
    chunk_size, remat, stored_elements = schedule
    _check_schedule(chunk_size, remat, stored_elements, where)

    def average(x, args, frame, key):
        if frame is None:
            if frame_fn is None:
                raise ValueError(f"{where}: no frame function and no frame= given")
            frame = frame_fn(x)
        frame = _check_frame(frame, where)
        elements, weights = frame.elements, frame.weights
        if num_samples is not None:
            logits = jnp.log(jnp.maximum(weights, 0).astype(jnp.float32))
            idx = jax.random.categorical(key, logits, shape=(num_samples,))
            elements = jax.tree_util.tree_map(lambda e: jnp.take(e, idx, 0), elements)
            weights = jnp.full((num_samples,), 1.0 / num_samples, weights.dtype)
        invert = inverse
        if invert is None:
            g = frame.group if group is None else group
            if g is None:
                raise TypeError(
                    f"{where}: the frame does not say its group (a hand-built Frame "
                    "or tuple); pass group= (e.g. eq.groups.O3) or inverse="
                )
            invert = g.inverse

        def one(g, g_inv):
            y = fn(act_in(g_inv, x), *args)
            if act_out is None:
                return y
            try:
                return act_out(g, y)
            except (TypeError, ValueError) as err:
                shapes = jax.tree_util.tree_map(lambda v: getattr(v, "shape", v), y)
                raise type(err)(
                    f"{where}: act_out(g, y) failed on the backbone's output y of "
                    f"shape {shapes}: the backbone must return what act_out acts on "
                    "(e.g. (n, 3) per-point vectors for cloud_action). Cause: "
                    f"{err}"
                ) from err

        inv = invert(elements)
        ys = _over_frame(one, elements, inv, chunk_size, remat, stored_elements)
        return _weighted_mean(weights, ys)

    return average


def frame_average(
    fn: Callable[..., Any],
    frame: Callable[[Any], Frame] | None,
    *,
    act_in: Callable[[Any, Any], Any],
    act_out: Callable[[Any, Any], Any] | None = None,
    group: Group | None = None,
    inverse: Callable[[Any], Any] | None = None,
    chunk_size: int | None = None,
    remat: bool | Callable[..., Any] = False,
    stored_elements: int = 0,
) -> Callable[..., Any]:
    """Symmetrise ``fn`` over a frame (Puny et al., ICLR 2022, Eq. 4 and 5).

    Returns ``averaged(x, *args, frame=None)`` equal to
    ``Σ_k w_k fn(g_k⁻¹·x, *args)`` (``act_out=None``: invariant) or
    ``Σ_k w_k g_k·fn(g_k⁻¹·x, *args)`` (equivariant), where ``(g_k, w_k)`` is
    ``frame(x)``. By default the ``k`` backbone calls are one ``jax.vmap`` over
    the frame axis, on every backend; ``chunk_size`` and ``remat`` trade time for
    memory explicitly (same values either way). ``*args`` are passed to ``fn``
    unchanged (invariant side inputs: charges, masks, parameters). A precomputed
    :class:`Frame` (e.g. a permutation frame built in NumPy by
    :func:`permutation_frame`) can be passed as ``frame=`` at call time; then
    ``frame`` given here may be ``None``.

    Exactness: if ``frame`` satisfies ``F(g·x) = g·F(x)`` with invariant weights,
    the result is exactly invariant/equivariant for *any* ``fn`` (up to float
    rounding). That rounding is relative to ``fn``'s outputs, not to the average:
    the non-equivariant part of ``fn`` cancels only to about ``eps · |fn|``, so
    when the exact average is much smaller than ``fn``'s outputs (a cloud of size
    1e-10 through an MLP with biases returns an average of size 1e-10 and O(1)
    outputs per element) the relative error is ``eps / 1e-10``; normalise the
    input's scale inside ``fn`` there. Convention: ``act_in(g, x)`` is a left action and ``frame`` returns
    elements ``g`` that map the canonical pose to the input (``x = g·x_canon``).

    On CPU hosts, large batches run faster with a retaining ``malloc`` (README,
    "Large programs on CPU hosts"; ``python -m experiments bench_frames``, results
    in ``experiments/results/bench_frames/``).

    Args:
      fn: the backbone, ``fn(x, *args) -> pytree of floating arrays``.
      frame: ``frame(x) -> Frame`` (``pca_frame``, ``point_pair_frame``,
        ``sort_frame``, ``product_frame``, ...), or ``None`` when frames are always
        passed at call time.
      act_in: action on inputs, ``act_in(g, x)`` for one element ``g``.
      act_out: action on outputs, ``act_out(g, y)``; ``None`` for invariance.
        For per-point *vectors* (forces, velocities, displacements) under E(d)
        or SE(d) use ``eq.groups.act_vectors`` (rotation only), not
        ``E3.act`` / ``cloud_action(E3)``, which also translate (right for
        positions only).
      group: the group of the frame elements, for frames that do not carry one
        (``Frame.group is None``); overrides the frame's group when given.
      inverse: ``inverse(elements) -> elements``; overrides ``group.inverse``.
      chunk_size: ``None`` (default): all ``k`` calls in one ``vmap``. An int
        ``c``: ``jax.lax.map`` over chunks of ``c`` frame elements (each chunk
        one ``vmap``), so a batched call evaluates the backbone on ``c·B`` rather
        than ``k·B`` inputs at a time.
      remat: ``False`` (default): store the backbone's intermediates for the
        backward pass. ``True``: ``jax.checkpoint`` around each backbone call
        (recompute its forward pass instead); a ``jax.checkpoint_policies``
        policy: checkpoint with that policy.
      stored_elements: with ``remat``, the number ``s`` of frame elements (the
        first ``s``) whose calls keep their intermediates; only the other
        ``k - s`` calls are recomputed (default 0).

    Returns:
      ``averaged(x, *args, frame=None)`` with the output structure of ``fn``.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> frame = eq.frames.pca_frame(eq.groups.E3)
      >>> phi = lambda x: jnp.sum(jax.nn.softplus(x[:, 0] + 0.3))
      >>> act = eq.groups.cloud_action(eq.groups.E3)  # or eq.groups.E3.act
      >>> f = jax.jit(eq.frames.frame_average(phi, frame, act_in=act))
      >>> x = jax.random.normal(jax.random.key(0), (6, 3))
      >>> g = eq.groups.E3.sample(jax.random.key(1))
      >>> bool(jnp.allclose(f(x), f(act(g, x)), rtol=1e-4))
      True
    """
    schedule = (chunk_size, remat, stored_elements)
    average = _averager(fn, frame, act_in, act_out, group, inverse, schedule, None)

    def averaged(x, *args, frame: Frame | None = None):
        return average(x, args, frame, None)

    return averaged


def stochastic_frame_average(
    fn: Callable[..., Any],
    frame: Callable[[Any], Frame] | None,
    *,
    act_in: Callable[[Any, Any], Any],
    act_out: Callable[[Any, Any], Any] | None = None,
    num_samples: int,
    group: Group | None = None,
    inverse: Callable[[Any], Any] | None = None,
    chunk_size: int | None = None,
    remat: bool | Callable[..., Any] = False,
    stored_elements: int = 0,
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
      fn, frame, act_in, act_out, group, inverse, chunk_size, remat,
        stored_elements: as in :func:`frame_average` (the schedule is over the
        ``num_samples`` calls).
      num_samples: static number of sampled elements (``>= 1``).

    Returns:
      ``averaged(x, *args, key, frame=None)``.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> frame = eq.frames.plain_pca_frame(eq.groups.O3)
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
    schedule = (chunk_size, remat, stored_elements)
    average = _averager(
        fn, frame, act_in, act_out, group, inverse, schedule, num_samples
    )

    def averaged(x, *args, key, frame: Frame | None = None):
        return average(x, args, frame, key)

    return averaged


def product_frame(frame_a: Callable[[Any], Frame], frame_b: Callable[[Any], Frame]):
    """The product frame ``F_A(x) × F_B(x)`` of two commuting symmetries.

    Elements are all pairs ``ProductElement(a_i, b_j)`` (frame axis of size
    ``k_A k_B``, ``a`` major), weights ``w_i w_j``; the group is the direct
    product of the factors' groups (componentwise inverse), when both frames say
    theirs. If ``F_A`` is ``A``-equivariant and ``B``-invariant and vice versa
    (e.g. a node ordering by E(3)-invariant keys and a PCA frame, which is
    unchanged by node relabelling), the product is ``A × B``-equivariant (Puny et
    al., ICLR 2022, Sec. 3.2). Act with :func:`product_act`.

    Args:
      frame_a: ``frame_a(x) -> Frame`` (the first factor, e.g. ``sort_frame``).
      frame_b: ``frame_b(x) -> Frame`` (the second factor, e.g. ``pca_frame``).

    Returns:
      ``frame(x) -> Frame`` with :class:`ProductElement` elements.

    Example:
      >>> import jax, jax.numpy as jnp, eqjax as eq
      >>> fr = product_frame(eq.frames.sort_frame(lambda x: jnp.linalg.norm(
      ...     x - x.mean(0, keepdims=True), axis=-1)), eq.frames.plain_pca_frame("E3"))
      >>> f = fr(jax.random.normal(jax.random.key(0), (5, 3)))
      >>> f.weights.shape, f.group
      ((8,), Group(Sn(5)×E3))
    """

    def frame(x) -> Frame:
        fa = _check_frame(frame_a(x), "product_frame")
        fb = _check_frame(frame_b(x), "product_frame")
        ka, kb = fa.weights.shape[0], fb.weights.shape[0]
        first = jax.tree_util.tree_map(lambda e: jnp.repeat(e, kb, axis=0), fa.elements)
        second = jax.tree_util.tree_map(
            lambda e: jnp.tile(e, (ka,) + (1,) * (e.ndim - 1)), fb.elements
        )
        w = fa.weights[:, None] * fb.weights[None, :].astype(fa.weights.dtype)
        group = None
        if fa.group is not None and fb.group is not None:
            group = _product_group(fa.group, fb.group)
        return Frame(ProductElement(first, second), w.reshape(ka * kb), group)

    return frame
