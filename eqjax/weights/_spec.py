"""Permutation specs: which axes of which parameters share one hidden-unit permutation.

Ainsworth, Hayase & Srinivasa, "Git Re-Basin: Merging Models modulo Permutation
Symmetries" (ICLR 2023): permuting the hidden units of a layer (the output axis of
its weights, and the input axis of the next layer's) leaves the network's function
unchanged. A :class:`PermutationSpec` records, for every parameter, one
permutation name (or ``None``) per axis; :func:`apply_permutation` acts with a
dictionary of permutations on a parameter tree (an ``nnx.State``, or any pytree
of arrays).

:func:`permutation_spec` derives the spec of a Flax NNX module from its state and
the program it computes: the module is traced once (``jax.make_jaxpr``, abstract
values only) and the axes of every intermediate value are joined into classes by
union-find, through rules that hold exactly for each primitive (a contraction of
``dot_general`` or a convolution joins the two contracted axes; an elementwise op
joins corresponding axes; a reduction over an axis is invariant to permuting it;
a row-major reshape keeps the factors of the axes it merges or splits apart, so
a flattened ``(H, W, C)`` feature map carries its channel permutation into the
dense layer after it, seen through a view of its kernel).
Any primitive without a rule fixes every axis it touches, as do the module's
inputs and outputs, so a class free of fixed axes is a permutation symmetry of the
function: MLPs, CNNs (convolution, pooling, global means, or a flatten into dense
layers), residual networks (the sum of a skip and a branch joins their axes: one
shared permutation per residual stream), LayerNorm/RMSNorm/BatchNorm (their scale
and bias follow the features), and Flax's multi-head attention (its head axis is
one class, so heads move as blocks; the query/key and the value features within a
head are two more).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..groups import Group

Tracer = jax.core.Tracer  # pyright: ignore[reportAttributeAccessIssue]

Perm = Mapping[str, jax.Array]
"""A permutation per name: ``{name: int array (n,)}``, read as in
:func:`eqjax.groups.act_set` (item ``i`` moves to position ``p[i]``)."""


_NO_VIEWS: Mapping[str, tuple[int, ...]] = MappingProxyType({})


class PermutationSpec(NamedTuple):
    """Which hidden-unit permutation acts on which axis of which parameter.

    Attributes:
      axes: parameter path (``"layers/0/kernel"``: the keys of the state joined by
        ``/``) -> one permutation name or ``None`` per axis (of the parameter's
        view, when it has one). Every floating leaf of a state must be listed; a
        leaf whose axes are all ``None`` is left as it is.
      sizes: permutation name -> its length.
      views: parameter path -> the shape the permutations see it in, for a
        parameter one of whose axes is a flattened product of several (the
        ``H * W * C`` input axis of a dense layer after a convolution and a
        flatten: view ``(H * W, C, out)``, the permutation on the ``C`` factor,
        the same for every pixel). A view only splits axes (each axis of the
        parameter is the row-major product of consecutive view axes); a
        parameter without a view is seen in its own shape.

    Example:
      >>> spec = spec_from_axes({"w1": (None, "h"), "b1": ("h",), "w2": ("h", None)},
      ...                       {"w1": (3, 4), "b1": (4,), "w2": (4, 2)})
      >>> spec.sizes
      {'h': 4}
      >>> spec_perm_axes(spec)["h"]
      (('b1', 0), ('w1', 1), ('w2', 0))
    """

    axes: Mapping[str, tuple[str | None, ...]]
    sizes: Mapping[str, int]
    views: Mapping[str, tuple[int, ...]] = _NO_VIEWS


def _splits(shape: tuple[int, ...], view: tuple[int, ...]) -> bool:
    """Whether ``view`` splits each axis of ``shape`` into consecutive factors
    (row-major), e.g. ``(12, 5) -> (4, 3, 5)``."""
    j = 0
    for n in shape:
        if j == len(view):
            return False
        q = view[j]
        j += 1
        while j < len(view) and q < n:
            q *= view[j]
            j += 1
        if q != n:
            return False
    return all(v == 1 for v in view[j:])


def view_of(spec: PermutationSpec, path: str, w):
    """``w`` (the parameter at ``path``) reshaped to its view in ``spec`` (itself
    when it has none); NumPy and JAX arrays alike.

    Example:
      >>> import numpy as np
      >>> spec = spec_from_axes({"w": (None, "c", None)}, {"w": (12, 5)},
      ...                       views={"w": (4, 3, 5)})
      >>> view_of(spec, "w", np.zeros((12, 5))).shape
      (4, 3, 5)
    """
    view = spec.views.get(path)
    return w if view is None else w.reshape(view)


def spec_perm_axes(spec: PermutationSpec) -> dict[str, tuple[tuple[str, int], ...]]:
    """Permutation name -> the ``(path, axis)`` pairs it acts on, sorted by path
    (``axis`` counts the axes of the parameter's view, when it has one).

    Example:
      >>> spec = spec_from_axes({"w": (None, "h"), "b": ("h",)}, {"w": (2, 3), "b": (3,)})
      >>> spec_perm_axes(spec)
      {'h': (('b', 0), ('w', 1))}
    """
    out: dict[str, list[tuple[str, int]]] = {name: [] for name in spec.sizes}
    for path in sorted(spec.axes):
        for ax, name in enumerate(spec.axes[path]):
            if name is not None:
                out[name].append((path, ax))
    return {k: tuple(v) for k, v in out.items()}


def spec_from_axes(
    axes: Mapping[str, Iterable[str | None]],
    shapes: Mapping[str, tuple[int, ...]] | Any,
    views: Mapping[str, Iterable[int]] | None = None,
) -> PermutationSpec:
    """A hand-written spec, checked against the parameter shapes.

    Args:
      axes: parameter path -> one permutation name or ``None`` per axis (per axis
        of its view, for a path in ``views``).
      shapes: parameter path -> shape, or a parameter tree (an ``nnx.State`` or a
        pytree of arrays) whose floating leaves give the paths and shapes.
      views: parameter path -> the shape the permutations see it in, splitting
        a flattened axis into its factors (:class:`PermutationSpec`): the dense
        kernel ``(H * W * C, out)`` after a flattened ``(H, W, C)`` feature map
        is ``(H * W, C, out)`` with axes ``(None, "c", "h")``.

    Returns:
      The :class:`PermutationSpec` with each permutation's size.

    Raises:
      ValueError: an axis count that differs from a parameter's rank (its view's),
        a permutation that acts on axes of different sizes, a path not among
        ``shapes``, or a view that does not split the parameter's axes.

    Example:
      >>> spec_from_axes({"w": (None, "h")}, {"w": (2, 3)}).sizes
      {'h': 3}
      >>> conv_then_dense = spec_from_axes(
      ...     {"conv": (None, None, None, "c"), "dense": (None, "c", None)},
      ...     {"conv": (3, 3, 1, 4), "dense": (2 * 2 * 4, 5)},
      ...     views={"dense": (2 * 2, 4, 5)})
      >>> conv_then_dense.sizes, conv_then_dense.views
      ({'c': 4}, {'dense': (4, 4, 5)})
    """
    if not isinstance(shapes, Mapping) or not all(
        isinstance(v, tuple) for v in shapes.values()
    ):
        shapes = {p: tuple(v.shape) for p, v in _float_leaves(shapes).items()}
    sizes: dict[str, int] = {}
    where: dict[str, str] = {}
    out: dict[str, tuple[str | None, ...]] = {}
    views_out: dict[str, tuple[int, ...]] = {}
    for path, view in (views or {}).items():
        view = tuple(int(n) for n in view)
        if path not in axes:
            raise ValueError(
                f"spec_from_axes: views names {path!r}, which the spec's axes do "
                f"not list ({sorted(axes)})"
            )
        if path in shapes and not _splits(tuple(shapes[path]), view):
            raise ValueError(
                f"spec_from_axes: the view {view} of {path!r} does not split its "
                f"shape {tuple(shapes[path])} into consecutive factors"
            )
        views_out[path] = view
    for path, names in axes.items():
        names = tuple(names)
        if path not in shapes:
            raise ValueError(
                f"spec_from_axes: {path!r} is not a parameter; the parameters are "
                f"{sorted(shapes)}"
            )
        shape = views_out.get(path, tuple(shapes[path]))
        if len(names) != len(shape):
            seen = "view" if path in views_out else "shape"
            raise ValueError(
                f"spec_from_axes: {path!r} has {seen} {shape} ({len(shape)} axes) but "
                f"the spec names {len(names)} axes: {names}"
            )
        for ax, name in enumerate(names):
            if name is None:
                continue
            if not isinstance(name, str):
                raise TypeError(
                    f"spec_from_axes: permutation names are str or None, got "
                    f"{name!r} at {path!r} axis {ax}"
                )
            if name in sizes and sizes[name] != shape[ax]:
                raise ValueError(
                    f"spec_from_axes: permutation {name!r} acts on {where[name]} of "
                    f"size {sizes[name]} and on {path!r} axis {ax} of size "
                    f"{shape[ax]}"
                )
            sizes.setdefault(name, int(shape[ax]))
            where.setdefault(name, f"{path!r} axis {ax}")
        out[path] = names
    return PermutationSpec(
        axes=out,
        sizes=dict(sorted(sizes.items())),
        views=dict(sorted(views_out.items())),
    )


def path_string(path: tuple[Any, ...]) -> str:
    """A pytree key path as ``"a/b/0"``: dict keys, sequence indices and attribute
    names joined by ``/``; the ``.value`` of an NNX ``Variable`` is dropped.

    Example:
      >>> import jax
      >>> [path_string(p) for p, _ in jax.tree_util.tree_flatten_with_path(
      ...     {"a": [1.0, {"b": 2.0}]})[0]]
      ['a/0', 'a/1/b']
    """
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            if k.name != "value":
                parts.append(k.name)
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append(str(k.key))
        else:
            parts.append(str(k))
    return "/".join(parts)


def _is_float(v) -> bool:
    dt = getattr(v, "dtype", None)
    return dt is not None and jnp.issubdtype(dt, jnp.inexact)


def _float_leaves(tree) -> dict[str, Any]:
    """Path string -> floating leaf of ``tree`` (integer leaves and PRNG keys are
    not parameters)."""
    out = {}
    for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if _is_float(v):
            out[path_string(p)] = v
    return out


def check_spec(spec: PermutationSpec, state, *, where: str) -> None:
    """Raise ``ValueError`` unless ``spec`` covers exactly the floating leaves of
    ``state`` with matching ranks and sizes."""
    leaves = _float_leaves(state)
    missing = sorted(set(leaves) - set(spec.axes))
    if missing:
        raise ValueError(
            f"{where}: the spec does not cover the parameters {missing} (shapes "
            f"{[tuple(leaves[p].shape) for p in missing]}); list them in the spec "
            "(with None for axes no permutation acts on)"
        )
    extra = sorted(set(spec.axes) - set(leaves))
    if extra:
        raise ValueError(
            f"{where}: the spec names {extra}, which are not floating parameters of "
            f"the state (its parameters: {sorted(leaves)})"
        )
    stray = sorted(set(spec.views) - set(spec.axes))
    if stray:
        raise ValueError(f"{where}: the spec has views of {stray}, not in its axes")
    for path, names in spec.axes.items():
        shape = tuple(leaves[path].shape)
        if path in spec.views:
            view = tuple(spec.views[path])
            if not _splits(shape, view):
                raise ValueError(
                    f"{where}: the view {view} of parameter {path!r} does not split "
                    f"its shape {shape} into consecutive factors"
                )
            shape = view
        if len(names) != len(shape):
            seen = "view" if path in spec.views else "shape"
            raise ValueError(
                f"{where}: parameter {path!r} has {seen} {shape} but the spec names "
                f"{len(names)} axes {names}"
            )
        for ax, name in enumerate(names):
            if name is not None and spec.sizes.get(name) != shape[ax]:
                raise ValueError(
                    f"{where}: parameter {path!r} axis {ax} has size {shape[ax]} but "
                    f"permutation {name!r} has size {spec.sizes.get(name)}"
                )


def _check_perm_dict(spec: PermutationSpec, perm: Perm, where: str) -> None:
    if not isinstance(perm, Mapping):
        raise TypeError(
            f"{where}: perm must be a mapping name -> index array, got "
            f"{type(perm).__name__}"
        )
    missing = sorted(set(spec.sizes) - set(perm))
    extra = sorted(set(perm) - set(spec.sizes))
    if missing or extra:
        raise ValueError(
            f"{where}: perm must have one entry per permutation of the spec "
            f"{sorted(spec.sizes)}; missing {missing}, unknown {extra}"
        )
    for name, n in spec.sizes.items():
        p = perm[name]
        shape = getattr(p, "shape", None)
        if shape != (n,):
            raise ValueError(
                f"{where}: permutation {name!r} must have shape ({n},), got {shape}"
            )
        if not jnp.issubdtype(p.dtype, jnp.integer):
            raise TypeError(
                f"{where}: permutation {name!r} must be integer, got {p.dtype}"
            )


def apply_permutation(spec: PermutationSpec, perm: Perm, state):
    """Act with hidden-unit permutations on a parameter tree.

    On every axis the spec assigns permutation ``name``, ``perm[name]`` acts as
    :func:`eqjax.groups.act_set` does (entry ``i`` moves to ``perm[name][i]``);
    a parameter with a view (:class:`PermutationSpec`) is permuted in it and
    reshaped back.
    Leaves that are not floating arrays (PRNG keys, counters) pass unchanged; the
    tree keeps its type (an ``nnx.State`` stays one). Pure and jit-able (the spec
    is static, the permutations may be traced). The permutation itself is exact
    (a gather); a permuted model computes the same function in exact arithmetic
    but sums its contractions in another order, so in floating point its outputs
    agree to rounding: about 1e-15 relative in float64, 1e-7 in float32, 1e-3 in
    float16 (the transformer rows' float16 case of the bad-input sweep).

    Args:
      spec: the :class:`PermutationSpec`.
      perm: ``{name: int array (n,)}``, one per permutation of the spec.
      state: an ``nnx.State`` (``nnx.state(module)``) or a pytree of arrays.

    Returns:
      The permuted tree.

    Raises:
      ValueError: the spec does not cover a floating parameter, names one that is
        not there, or disagrees with a parameter's shape; ``perm`` misses a name or
        has the wrong length.

    Example:
      >>> import jax.numpy as jnp
      >>> params = {"w1": jnp.arange(6.0).reshape(2, 3), "w2": jnp.arange(3.0)}
      >>> spec = spec_from_axes({"w1": (None, "h"), "w2": ("h",)}, params)
      >>> out = apply_permutation(spec, {"h": jnp.array([2, 0, 1])}, params)
      >>> out["w2"]
      Array([1., 2., 0.], dtype=float32)
    """
    check_spec(spec, state, where="apply_permutation")
    _check_perm_dict(spec, perm, "apply_permutation")
    concrete = not any(
        isinstance(v, Tracer)
        for v in (*perm.values(), *jax.tree_util.tree_leaves(state))
    )
    if concrete:  # eager: NumPy gathers (no small program compiled per shape)
        inv = {}
        for k, p in perm.items():
            p = np.asarray(p)
            if not np.array_equal(np.sort(p), np.arange(p.shape[0])):
                raise ValueError(
                    f"apply_permutation: perm[{k!r}] is not a permutation of "
                    f"0..{p.shape[0] - 1}: {p.tolist()[:12]}"
                )
            inv[k] = np.argsort(p)

    def one(path, v):
        if not _is_float(v):
            return v
        key = path_string(path)
        names = spec.axes[key]
        if all(name is None for name in names):
            return v
        if concrete:
            w = view_of(spec, key, np.asarray(v))
            for ax, name in enumerate(names):
                if name is not None:
                    w = np.take(w, inv[name], axis=ax)
            return jnp.asarray(w.reshape(v.shape), dtype=v.dtype)
        w = view_of(spec, key, v)
        for ax, name in enumerate(names):
            if name is not None:
                w = jnp.take(w, traced_inv[name], axis=ax)
        return w.reshape(v.shape)

    if not concrete:  # one inverse per permutation, shared by its axes
        traced_inv = {k: jnp.argsort(p) for k, p in perm.items()}

    return jax.tree_util.tree_map_with_path(one, state)


def identity_permutation(spec: PermutationSpec) -> dict[str, jax.Array]:
    """The identity element: ``{name: arange(n)}``.

    Example:
      >>> identity_permutation(spec_from_axes({"w": ("h",)}, {"w": (3,)}))
      {'h': Array([0, 1, 2], dtype=int32)}
    """
    return {k: jnp.arange(n, dtype=jnp.int32) for k, n in spec.sizes.items()}


def random_permutation(key: jax.Array, spec: PermutationSpec) -> dict[str, jax.Array]:
    """Uniform random permutations, one per name of the spec (independent keys).

    Example:
      >>> import jax
      >>> spec = spec_from_axes({"w": ("h",)}, {"w": (5,)})
      >>> sorted(random_permutation(jax.random.key(0), spec)["h"].tolist())
      [0, 1, 2, 3, 4]
    """
    names = sorted(spec.sizes)
    keys = jax.random.split(key, max(len(names), 1))
    return {
        n: jnp.argsort(jax.random.uniform(k, (spec.sizes[n],))).astype(jnp.int32)
        for n, k in zip(names, keys, strict=False)
    }


def invert_permutation(perm: Perm) -> dict[str, jax.Array]:
    """Each permutation's inverse: ``apply_permutation(spec, invert_permutation(p),
    apply_permutation(spec, p, s)) == s``.

    Example:
      >>> import jax.numpy as jnp
      >>> invert_permutation({"h": jnp.array([2, 0, 1])})
      {'h': Array([1, 2, 0], dtype=int32)}
    """
    return {k: jnp.argsort(v).astype(v.dtype) for k, v in perm.items()}


# ----------------------------------------------------------------------------
# Deriving a spec from the program a module computes


class _UnionFind:
    """Axis classes; class 0 is the fixed class (axes no permutation may act on)."""

    def __init__(self):
        self.parent = [0]

    def new(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if rb == 0:  # keep 0 the root of the fixed class
            ra, rb = rb, ra
        self.parent[rb] = ra


_ELEMENTWISE = frozenset(
    """abs acos acosh add and asin asinh atan atan2 atanh cbrt ceil clamp
    convert_element_type copy copy_p cos cosh custom_lin div eq erf erf_inv erfc exp
    exp2 expm1 floor ge gt imag integer_pow is_finite le lgamma digamma log log1p
    logistic lt max min mul ne neg nextafter not or pow real reduce_precision rem
    round rsqrt select_n sign sin sinh sqrt square stop_gradient sub tan tanh xor
    """.split()
)
"""Primitives computed entry by entry: corresponding axes of operands and result
are one class (broadcasting in a jaxpr is explicit, so operands have the result's
shape or are scalars)."""

_REDUCTIONS = frozenset(
    "reduce_sum reduce_max reduce_min reduce_prod reduce_and reduce_or".split()
)
"""Reductions invariant to permuting the reduced axes (not argmax/argmin, whose
result is a position)."""


class _Ax:
    """One axis of one value: a row-major sequence of atoms (ids into the
    union-find; one atom unless a reshape split the axis into factors, e.g. the
    ``(H, W, C)`` of a flattened feature map)."""

    __slots__ = ("atoms",)

    def __init__(self, atoms: list[int]):
        self.atoms = atoms


def _common_refinement(sx: list[int], sy: list[int]) -> list[int] | None:
    """The coarsest factor sequence (outer to inner, no 1s) of which both
    row-major factorisations ``sx`` and ``sy`` of one size are groupings, or
    ``None`` when there is none (the reshape mixes entries: ``(2, 3) -> (3, 2)``).
    A factorisation is determined by its inner block sizes (suffix products);
    both are groupings of a common one iff the union of those is a divisibility
    chain."""

    def suffix(sizes):
        out, q = {1}, 1
        for n in reversed(sizes):
            q *= n
            out.add(q)
        return out, q

    bx, nx = suffix(sx)
    by, ny = suffix(sy)
    if nx != ny or nx == 0:
        return None
    b = sorted(bx | by)
    if any(hi % lo for lo, hi in zip(b, b[1:], strict=False)):
        return None
    return [hi // lo for lo, hi in zip(b, b[1:], strict=False)][::-1]


class _Analysis:
    """Union-find over atoms. Every axis of every value is one or more atoms;
    joining two axes unifies their factorisations (splitting atoms, and every atom
    of their classes, where one side is finer) and joins them atom by atom. Atom
    0 is the fixed class (axes no permutation may act on)."""

    def __init__(self):
        self.uf = _UnionFind()
        self.ids: dict[Any, list[_Ax]] = {}
        self.size: list[int] = [0]
        self.owner: dict[int, _Ax] = {}
        self.members: dict[int, list[int]] = {}

    def _atom(self, n: int, owner: _Ax) -> int:
        a = self.uf.new()
        self.size.append(int(n))
        self.owner[a] = owner
        self.members[a] = [a]
        return a

    def axes(self, v) -> list[Any]:
        """The axes of ``v``: an :class:`_Ax` each, or ``0`` (fixed) for a
        literal constant."""
        from jax.extend.core import Literal

        if isinstance(v, Literal):
            nd = np.ndim(v.val)
            return [0] * nd  # constants fix their axes
        if v not in self.ids:
            shape = v.aval.shape if hasattr(v.aval, "shape") else ()
            axs = []
            for n in shape:
                ax = _Ax([])
                ax.atoms.append(self._atom(n, ax))
                axs.append(ax)
            self.ids[v] = axs
        return self.ids[v]

    def _union(self, a: int, b: int) -> None:
        ra, rb = self.uf.find(a), self.uf.find(b)
        if ra == rb:
            return
        self.uf.union(ra, rb)
        r = self.uf.find(ra)
        merged = self.members.pop(ra, []) + self.members.pop(rb, [])
        if r != 0:  # the fixed class is never split: no member list
            self.members[r] = merged

    def _fix_ax(self, ax) -> None:
        if isinstance(ax, _Ax):
            for a in ax.atoms:
                self._union(0, a)

    def fix(self, v) -> None:
        for ax in self.axes(v):
            self._fix_ax(ax)

    def _split(self, a: int, sizes: list[int]) -> None:
        """Split atom ``a`` into factors ``sizes`` (outer to inner), and with it
        every atom of its class (they must stay one class, factor by factor); a
        fixed atom alone, into fixed factors."""
        r = self.uf.find(a)
        group = [a] if r == 0 else self.members.pop(r)
        ref: list[int] | None = None
        for b in group:
            owner = self.owner.pop(b)
            new = [self._atom(n, owner) for n in sizes]
            i = owner.atoms.index(b)
            owner.atoms[i : i + 1] = new
            if r == 0:
                for c in new:
                    self._union(0, c)
            elif ref is None:
                ref = new
            else:
                for c, d in zip(ref, new, strict=True):
                    self._union(c, d)

    def _refine(self, axs: list[Any], target: list[int]) -> bool:
        """Split the atoms of the axes ``axs`` (read as one row-major sequence)
        until their sizes other than 1 are ``target``; ``False`` if they cannot
        be (an atom met twice that would need two different splits)."""
        for _ in range(4 * len(target) + 4):
            pos = 0
            for ax in axs:
                for a in list(ax.atoms):
                    n = self.size[a]
                    if n == 1:
                        continue
                    q, j = 1, pos
                    while j < len(target) and q < n:
                        q *= target[j]
                        j += 1
                    if q != n:
                        return False
                    if j - pos > 1:
                        self._split(a, target[pos:j])
                        break  # splitting may change other atoms: start again
                    pos = j
                else:
                    continue
                break
            else:
                return pos == len(target)
        return False

    def join_seq(self, xs: list[Any], ys: list[Any]) -> None:
        """Join two sequences of axes that hold the same entries in the same
        row-major order (one axis each, or the operand and result of a reshape)."""
        if any(not isinstance(x, _Ax) for x in (*xs, *ys)):
            for x in (*xs, *ys):
                self._fix_ax(x)
            return
        sx = [self.size[a] for x in xs for a in x.atoms]
        sy = [self.size[a] for y in ys for a in y.atoms]
        target = _common_refinement(sx, sy)
        if target is None or not (
            self._refine(xs, target) and self._refine(ys, target)
        ):
            for x in (*xs, *ys):
                self._fix_ax(x)
            return
        ax_ = [a for x in xs for a in x.atoms if self.size[a] != 1]
        ay_ = [a for y in ys for a in y.atoms if self.size[a] != 1]
        for a, b in zip(ax_, ay_, strict=True):
            self._union(a, b)

    def join(self, a, b) -> None:
        """Join two axes (``0``: the fixed class)."""
        if isinstance(a, int) and a == 0:
            self._fix_ax(b)
        elif isinstance(b, int) and b == 0:
            self._fix_ax(a)
        else:
            self.join_seq([a], [b])

    def jaxpr(self, jaxpr, invars_axes=None, outvars_axes=None) -> None:
        """Analyse ``jaxpr``; ``invars_axes``/``outvars_axes``: axis ids of the
        caller's operands/results to join with this jaxpr's invars/outvars."""
        for cv in jaxpr.constvars:
            self.fix(cv)
        if invars_axes is not None:
            for v, ax in zip(jaxpr.invars, invars_axes, strict=True):
                for a, b in zip(self.axes(v), ax, strict=True):
                    self.join(a, b)
        for eqn in jaxpr.eqns:
            self.eqn(eqn)
        if outvars_axes is not None:
            for v, ax in zip(jaxpr.outvars, outvars_axes, strict=True):
                for a, b in zip(self.axes(v), ax, strict=True):
                    self.join(a, b)

    def _sub(self, eqn, sub) -> None:
        jx = sub.jaxpr if hasattr(sub, "jaxpr") and hasattr(sub, "consts") else sub
        n_in = len(jx.invars)
        ins = [self.axes(v) for v in eqn.invars[-n_in:]] if n_in else []
        for v in eqn.invars[: len(eqn.invars) - n_in]:
            self.fix(v)
        outs = [self.axes(v) for v in eqn.outvars]
        if len(jx.outvars) != len(outs):
            for v in list(eqn.invars) + list(eqn.outvars):
                self.fix(v)
            return
        # fresh axis ids for the callee's variables: one jaxpr object is shared
        # by every call site of a cached function (jax.nn.relu), and its calls
        # must not join one another's axes
        outer, self.ids = self.ids, {}
        try:
            self.jaxpr(jx, ins, outs)
        finally:
            self.ids = outer

    def eqn(self, eqn) -> None:  # noqa: C901
        name = eqn.primitive.name
        p = eqn.params
        ins, outs = eqn.invars, eqn.outvars
        shape = lambda v: tuple(v.aval.shape)  # noqa: E731
        for sub_key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
            sub = p.get(sub_key)
            if sub is not None and name in (
                "pjit",
                "jit",
                "closed_call",
                "core_call",
                "remat",
                "checkpoint",
                "custom_jvp_call",
                "custom_vjp_call",
                "custom_vjp_call_jaxpr",
            ):
                self._sub(eqn, sub)
                return
        if name in _ELEMENTWISE:
            out = outs[0]
            oax = self.axes(out)
            for v in ins:
                s = shape(v)
                if len(s) == 0:
                    continue
                if len(s) != len(oax):
                    self.fix(v)
                    self.fix(out)
                    continue
                for d, a in enumerate(self.axes(v)):
                    if s[d] == shape(out)[d]:
                        self.join(a, oax[d])
                    else:
                        self.join(0, a)
            for o in outs[1:]:
                for a, b in zip(self.axes(o), oax, strict=False):
                    self.join(a, b)
            return
        if name == "dot_general":
            (lc, rc), (lb, rb) = p["dimension_numbers"]
            la, ra, oa = self.axes(ins[0]), self.axes(ins[1]), self.axes(outs[0])
            for i, j in zip(lc, rc, strict=True):
                self.join(la[i], ra[j])
            k = 0
            for i, j in zip(lb, rb, strict=True):
                self.join(la[i], ra[j])
                self.join(la[i], oa[k])
                k += 1
            for i in range(len(la)):
                if i not in lc and i not in lb:
                    self.join(la[i], oa[k])
                    k += 1
            for j in range(len(ra)):
                if j not in rc and j not in rb:
                    self.join(ra[j], oa[k])
                    k += 1
            return
        if name in _REDUCTIONS:
            red = set(p["axes"])
            ia, oa = self.axes(ins[0]), self.axes(outs[0])
            rest = [a for d, a in enumerate(ia) if d not in red]
            for a, b in zip(rest, oa, strict=True):
                self.join(a, b)
            return
        if name == "broadcast_in_dim":
            ia, oa = self.axes(ins[0]), self.axes(outs[0])
            for d, od in enumerate(p["broadcast_dimensions"]):
                if shape(ins[0])[d] == shape(outs[0])[od]:
                    self.join(ia[d], oa[od])
            for v in ins[1:]:
                self.fix(v)
            return
        if name == "transpose":
            ia, oa = self.axes(ins[0]), self.axes(outs[0])
            for od, d in enumerate(p["permutation"]):
                self.join(ia[d], oa[od])
            return
        if name == "squeeze":
            ia, oa = self.axes(ins[0]), self.axes(outs[0])
            dims = {d % len(ia) for d in p["dimensions"]}
            rest = [a for d, a in enumerate(ia) if d not in dims]
            for a, b in zip(rest, oa, strict=True):
                self.join(a, b)
            return
        if name == "reshape":
            if p.get("dimensions") is not None:  # a transpose first: no rule
                for v in (*ins, *outs):
                    self.fix(v)
                return
            self._reshape(ins[0], outs[0])
            for v in ins[1:]:
                self.fix(v)
            return
        if name == "conv_general_dilated":
            dn = p["dimension_numbers"]
            lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
            la, ra, oa = self.axes(ins[0]), self.axes(ins[1]), self.axes(outs[0])
            if p["feature_group_count"] != 1 or p["batch_group_count"] != 1:
                for v in (*ins, *outs):
                    self.fix(v)
                return
            self.join(la[lhs_spec[0]], oa[out_spec[0]])  # batch
            self.join(la[lhs_spec[1]], ra[rhs_spec[1]])  # contracted features
            self.join(ra[rhs_spec[0]], oa[out_spec[0 + 1]])  # output features
            for spec_, ax in ((lhs_spec, la), (rhs_spec, ra), (out_spec, oa)):
                for d in spec_[2:]:
                    self.join(0, ax[d])
            return
        if name.startswith("reduce_window") and name != "reduce_window":
            ia, oa = self.axes(ins[0]), self.axes(outs[0])
            wd, ws = p["window_dimensions"], p["window_strides"]
            pad = p["padding"]
            dil = [*p.get("base_dilation", [1] * len(ia))]
            wdil = [*p.get("window_dilation", [1] * len(ia))]
            for d in range(len(ia)):
                if wd[d] == 1 and ws[d] == 1 and tuple(pad[d]) == (0, 0):
                    if dil[d] == 1 and wdil[d] == 1:
                        self.join(ia[d], oa[d])
                        continue
                self.join(0, ia[d])
                self.join(0, oa[d])
            return
        if name == "concatenate":
            dim = p["dimension"]
            oa = self.axes(outs[0])
            for v in ins:
                for d, a in enumerate(self.axes(v)):
                    self.join(a, 0 if d == dim else oa[d])
            self.join(0, oa[dim])
            return
        if name in ("pad", "slice", "dynamic_slice", "rev"):
            ia, oa = self.axes(ins[0]), self.axes(outs[0])
            si, so = shape(ins[0]), shape(outs[0])
            for d in range(len(ia)):
                whole = si[d] == so[d]
                if name == "pad":
                    whole = tuple(p["padding_config"][d]) == (0, 0, 0)
                elif name == "slice":
                    st = p["strides"]
                    whole = (
                        whole
                        and p["start_indices"][d] == 0
                        and (st is None or st[d] == 1)
                    )
                elif name == "rev":
                    whole = d not in p["dimensions"]
                if whole:
                    self.join(ia[d], oa[d])
                else:
                    self.join(0, ia[d])
                    self.join(0, oa[d])
            for v in ins[1:]:
                self.fix(v)
            return
        if name == "split":
            axis = p["axis"]
            ia = self.axes(ins[0])
            for o in outs:
                for d, a in enumerate(self.axes(o)):
                    self.join(a, 0 if d == axis else ia[d])
            self.join(0, ia[axis])
            return
        if name == "gather":
            self._gather(eqn)
            return
        for v in (*ins, *outs):  # no rule: nothing may move
            self.fix(v)

    def _reshape(self, vin, vout) -> None:
        """A row-major reshape: the operand's and the result's axes, as one
        sequence each, share a common factorisation (merged axes become one
        axis of several atoms, split axes several of one each); a reshape that
        has none (it mixes entries) fixes every axis."""
        self.join_seq(self.axes(vin), self.axes(vout))

    def _gather(self, eqn) -> None:
        p = eqn.params
        operand, indices = eqn.invars[0], eqn.invars[1]
        out = eqn.outvars[0]
        dn = p["dimension_numbers"]
        oa, ia = self.axes(out), self.axes(operand)
        self.fix(indices)
        batching = set(getattr(dn, "operand_batching_dims", ()))
        kept = [
            d
            for d in range(len(ia))
            if d not in dn.collapsed_slice_dims and d not in batching
        ]
        offset = set(dn.offset_dims)
        for d, od in zip(kept, dn.offset_dims, strict=True):
            if (
                p["slice_sizes"][d] == operand.aval.shape[d]
                and d not in dn.start_index_map
            ):
                self.join(ia[d], oa[od])
            else:
                self.join(0, ia[d])
                self.join(0, oa[od])
        for d in range(len(ia)):
            if d not in kept:
                self.join(0, ia[d])
        for od in range(len(oa)):
            if od not in offset:
                self.join(0, oa[od])


def _nontrivial(an: _Analysis, ax: _Ax) -> list[int]:
    """The atoms of ``ax`` other than size-1 factors (all of them for a size-1
    axis)."""
    atoms = [a for a in ax.atoms if an.size[a] != 1]
    return atoms or ax.atoms[:1]


def _raw(var):
    """A Variable's value, concrete or abstract (``nnx.eval_shape`` modules)."""
    get = getattr(var, "get_value", None)
    return get() if get is not None else var.value


def _example_inputs(module) -> list[tuple[Any, ...]]:
    """Candidate example inputs for a module called with one array: one per
    layer with a known input width, in the order the module's graph lists them."""
    from flax import nnx

    cands: list[tuple[Any, ...]] = []
    for _, m in nnx.iter_graph(module):
        x = None
        if isinstance(m, nnx.Embed):
            x = jnp.zeros((1, 4), jnp.int32)
        elif isinstance(m, nnx.Conv):
            k = _raw(m.kernel)
            x = jnp.zeros((1,) + (8,) * (k.ndim - 2) + (k.shape[-2],), k.dtype)
        elif isinstance(m, nnx.MultiHeadAttention):
            x = jnp.zeros((1, 3, m.in_features))
        elif isinstance(m, nnx.Linear):
            x = jnp.zeros((1, m.in_features), _raw(m.kernel).dtype)
        if x is not None:
            cands.append((x,))
    return cands


def permutation_spec(module, *example_args, **example_kwargs) -> PermutationSpec:
    """The hidden-unit permutation symmetries of a Flax NNX module.

    The module (in evaluation mode: dropout off, batch statistics frozen) is traced
    once on abstract inputs; every axis of every parameter is put in a class with
    the axes it must move with (module docstring), and each class that touches
    neither the inputs, the outputs, a constant, nor an operation without a rule
    becomes one permutation, named after its first ``"path:axis"``. Size-1 classes
    are dropped. Other state (PRNG keys, counters) is not a parameter.

    Args:
      module: an ``nnx.Module``; an abstract one (``nnx.eval_shape``) works too:
        only shapes are traced.
      *example_args, **example_kwargs: an example call (shapes and dtypes are all
        that matter). Without them the module is called with one array shaped for
        one of its layers (an ``nnx.Linear``'s ``in_features``; an ``nnx.Conv``'s
        input channels on an 8-pixel grid; ``nnx.Embed`` token ids; an
        ``nnx.MultiHeadAttention``'s features on 3 positions), the first that
        traces.

    Returns:
      The :class:`PermutationSpec` covering every floating leaf of
      ``nnx.state(module)``.

    Reshapes: a row-major reshape that merges or splits axes keeps its factors
    apart (each axis is a sequence of factors, and a parameter contracted with a
    merged axis is seen in a view that splits it, :class:`PermutationSpec`). So a
    CNN whose ``(H, W, C)`` feature map is flattened into a dense layer permutes
    the channels ``C`` of the last convolution and, with them, the ``C`` factor
    of the dense kernel's ``H * W * C`` input axis, pixel by pixel (view
    ``(H * W, C, out)``; the pixel axes stay fixed, as in the convolutions);
    separate query/key/value projections reshaped from ``H * D`` to ``(H, D)``
    permute the heads as blocks and the features within a head (one permutation
    of them for all heads).

    Limits (each conservative: an axis is left unpermuted, never permuted
    wrongly): a reshape whose factors do not line up (``(2, 3) -> (3, 2)``), a
    reshape after a transpose of the flattened axes, a fused ``qkv`` projection
    split along its feature axis (``jnp.split`` fixes the axis it splits) and
    grouped and depthwise convolutions fix the axes involved; an operation
    without a rule (a sort, a cumulative sum, a custom call) fixes every axis it
    touches. Each permutation acts on a factor the same way wherever it appears
    (all pixels, all heads): the per-pixel or per-head permutations a flatten
    would also allow are not part of the group.

    Raises:
      ValueError: no example input given and none of the guessed ones traces.

    Example:
      >>> from flax import nnx
      >>> mlp = nnx.Sequential(nnx.Linear(3, 8, rngs=nnx.Rngs(0)), nnx.relu,
      ...                      nnx.Linear(8, 2, rngs=nnx.Rngs(1)))
      >>> spec = permutation_spec(mlp)
      >>> spec.sizes, spec.axes["layers/2/kernel"]
      ({'layers/0/bias:0': 8}, ('layers/0/bias:0', None))
    """
    from flax import nnx

    graphdef, state = nnx.split(module)
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    treedef = jax.tree_util.tree_structure(state)
    is_param = [_is_float(v) for _, v in flat]
    paths = [path_string(p) for p, _ in flat]

    def run(params, *args, **kwargs):
        it = iter(params)
        leaves = [
            next(it) if f else v for (_, v), f in zip(flat, is_param, strict=True)
        ]
        m = nnx.merge(graphdef, jax.tree_util.tree_unflatten(treedef, leaves))
        m.eval()
        return m(*args, **kwargs)

    params = [v for (_, v), f in zip(flat, is_param, strict=True) if f]
    calls = [(example_args, example_kwargs)] if example_args or example_kwargs else []
    calls += [(c, {}) for c in _example_inputs(module)] if not calls else []
    closed = None
    errors = []
    for args, kwargs in calls:
        try:
            closed = jax.make_jaxpr(lambda ps, a, k: run(ps, *a, **k))(
                params, args, kwargs
            )
            break
        except Exception as e:  # a guessed input that does not fit
            errors.append(f"{[getattr(a, 'shape', a) for a in args]}: {e}")
    if closed is None:
        raise ValueError(
            f"permutation_spec: could not call {type(module).__name__} on "
            + ("the example input" if example_args else "a guessed input")
            + "; pass an example call: permutation_spec(module, x). Tried: "
            + "; ".join(errors)[:2000]
        )
    an = _Analysis()
    jx = closed.jaxpr
    n_params = len(params)
    an.jaxpr(jx)
    for v in jx.invars[n_params:]:
        an.fix(v)
    for v in jx.outvars:
        if not hasattr(v, "val"):
            an.fix(v)
    ppaths = [p for p, f in zip(paths, is_param, strict=True) if f]
    order = sorted(range(n_params), key=lambda i: ppaths[i])
    # atoms of the parameters, by class; a class is named after its first
    # "path:axis" (".j": the j-th factor of an axis a reshape split)
    classes: dict[int, list[int]] = {}
    label: dict[int, str] = {}
    for i in order:
        for d, ax in enumerate(an.axes(jx.invars[i])):
            atoms = _nontrivial(an, ax)
            for j, a in enumerate(atoms):
                r = an.uf.find(a)
                classes.setdefault(r, []).append(a)
                split = len(atoms) > 1
                label.setdefault(r, f"{ppaths[i]}:{d}" + (f".{j}" if split else ""))
    names: dict[int, str] = {}
    sizes: dict[str, int] = {}
    for root, atoms in classes.items():
        n = an.size[atoms[0]]
        if root == 0 or n <= 1 or any(an.size[a] != n for a in atoms):
            continue
        names[root] = label[root]
        sizes[names[root]] = n
    axes: dict[str, tuple[str | None, ...]] = {}
    views: dict[str, tuple[int, ...]] = {}
    for i in range(n_params):
        view: list[int] = []
        view_names: list[str | None] = []
        split = False
        for ax in an.axes(jx.invars[i]):
            # one view axis per named atom; consecutive unnamed atoms merged
            parts: list[tuple[int, str | None]] = []
            for a in _nontrivial(an, ax):
                nm = names.get(an.uf.find(a))
                if parts and nm is None and parts[-1][1] is None:
                    parts[-1] = (parts[-1][0] * an.size[a], None)
                else:
                    parts.append((an.size[a], nm))
            split = split or len(parts) > 1
            view += [n for n, _ in parts]
            view_names += [nm for _, nm in parts]
        axes[ppaths[i]] = tuple(view_names)
        if split:
            views[ppaths[i]] = tuple(view)
    return PermutationSpec(
        axes=axes, sizes=dict(sorted(sizes.items())), views=dict(sorted(views.items()))
    )


def permuted_module(module, spec: PermutationSpec, perm: Perm) -> Any:
    """``module`` with its state permuted by ``perm``, as a new module (the
    original is untouched): the same function when ``spec`` is a symmetry.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> mlp = nnx.Sequential(nnx.Linear(3, 8, rngs=nnx.Rngs(0)), nnx.relu,
      ...                      nnx.Linear(8, 2, rngs=nnx.Rngs(1)))
      >>> spec = permutation_spec(mlp)
      >>> other = permuted_module(mlp, spec, random_permutation(jax.random.key(0), spec))
      >>> x = jnp.ones((1, 3))
      >>> bool(jnp.allclose(other(x), mlp(x), atol=1e-6))
      True
    """
    from flax import nnx

    graphdef, state = nnx.split(module)
    return nnx.merge(graphdef, apply_permutation(spec, perm, state))


def permutation_group(spec: PermutationSpec) -> Group:
    """The group of hidden-unit permutations of ``spec`` as a :class:`Group`.

    An element is a dict ``{name: int array (*batch, n)}``; ``compose`` and
    ``inverse`` act name by name as in :func:`eqjax.groups.Sn`; ``sample`` is
    uniform; ``act(g, state)`` is :func:`apply_permutation` for one element (use
    ``vmap`` for several). ``dim`` is the number of permuted units; the name
    lists the factors, ``"S8×S6"``, in the order of the sorted permutation names.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> spec = spec_from_axes({"w": (None, "h")}, {"w": (2, 3)})
      >>> G = permutation_group(spec)
      >>> g = G.sample(jax.random.key(0), (4,))
      >>> g["h"].shape, G.act(G.identity(), {"w": jnp.ones((2, 3))})["w"].shape
      ((4, 3), (2, 3))
    """
    names = sorted(spec.sizes)

    def identity(shape=(), dtype=jnp.int32):
        shape = tuple(np.atleast_1d(shape)) if shape != () else ()
        return {
            k: jnp.broadcast_to(jnp.arange(spec.sizes[k], dtype=dtype), (*shape, n))
            for k, n in spec.sizes.items()
        }

    def sample(key, shape=(), dtype=jnp.int32):
        shape = tuple(np.atleast_1d(shape)) if shape != () else ()
        keys = jax.random.split(key, max(len(names), 1))
        return {
            k: jnp.argsort(
                jax.random.uniform(kk, (*shape, spec.sizes[k])), axis=-1
            ).astype(dtype)
            for k, kk in zip(names, keys, strict=False)
        }

    def compose(g, h):
        return {
            k: jnp.take_along_axis(*jnp.broadcast_arrays(g[k], h[k]), axis=-1)
            for k in names
        }

    def inverse(g):
        return {k: jnp.argsort(g[k], axis=-1).astype(g[k].dtype) for k in names}

    def validate(g):
        _check_perm_dict(
            spec, {k: v[(0,) * (v.ndim - 1)] for k, v in g.items()}, "permutation group"
        )

    return Group(
        name="×".join(f"S{spec.sizes[k]}" for k in names) or "trivial",
        identity=identity,
        compose=compose,
        inverse=inverse,
        sample=sample,
        act=lambda g, state: apply_permutation(spec, g, state),
        exp=None,
        log=None,
        validate=validate,
        dim=int(sum(spec.sizes.values())),
        compact=True,
        has_reflections=False,
    )
