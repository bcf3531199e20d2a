"""The whole public API under bad input (issue 12 §5): a sweep that tries each class
of bad input and classifies what comes back.

Two parts:

* **callables** — every public callable of ``eqjax.groups`` and ``eqjax.testing``
  (every name of their ``__all__``; a test checks none is missing) is called with
  recipes of bad input: wrong shape, wrong dtype (int, float16), NaN/inf, zero
  vectors, 1e±30 magnitudes, empty batches, elements of the wrong group, bad
  static arguments;
* **rows** — every registered transform of every area (``eq.testing.registered()``,
  the public equivariant functions of frames, reductions, tensor products, ...)
  is called, jitted, on its own input pushed to 1e30 and 1e-30 (float32), zeros,
  NaN, float16, int32 and a wrong trailing shape; results are checked against the
  row's equivariance claim.

Outcomes: ``clear`` (ValueError/TypeError raised by eqjax's own code, which names
the argument), ``unclear`` (any other error: raised deep inside JAX/NumPy),
``silent`` (a finite result that violates the documented property), ``nan``
(NaN/inf where a finite answer exists), ``nan-ok`` (NaN/inf from NaN/inf input:
no finite answer exists), ``limit`` (a finite result outside the row's claim
where a docstring states that limit: :data:`DOCUMENTED_LIMITS` names each),
``ok`` (a finite result that satisfies the property, or a documented
acceptance). For the rows' 1e30 inputs a finite answer exists only when the
same call in float64 stays within float32's range (a bilinear product of 1e30
values is 1e60: no float32 answer exists, and inf/NaN there is ``nan-ok``). Compute budget: about 2 min on 2 cores for the
callables and rows of groups/testing (``--quick``), ~10-20 min for every row.
There is no paper number: the first user report (issue 12) found 339 clear, 77
unclear and 62 silently wrong answers over 576 bad inputs, and 8 avoidable NaN.
"""

from __future__ import annotations

import argparse
import inspect
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import eqjax as eq

DESCRIPTION = "bad-input sweep over the public API: clear/unclear/silent/NaN counts"
OUTCOMES = ("clear", "unclear", "silent", "nan", "nan-ok", "limit", "ok")

DOCUMENTED_LIMITS = {
    ("frames.graph_frame_node_equivariant", "zeros"): (
        "all-zero features and adjacency: the empty graph's search tree has 8! "
        "leaves > max_size=128, so the frame is sampled and equivariant in "
        "distribution only (eqjax.frames.graph_frame's docstring)"
    ),
    ("frames.plain_pca_SO3_equivariant", "1e-30 (float32)"): (
        "cancellation: the exact average is O(1e-30) while the MLP backbone's O(1) "
        "part cancels only to rounding (float64 shows the same at 1e-10: error "
        "eps/scale); eqjax.frames.frame_average's docstring (normalise the scale "
        "in the backbone)"
    ),
    ("geometric.mds_representation", "1e-30 (float32)"): (
        "a limit of the check, not of MDS: E(3)'s unit translations absorb a 1e-30 "
        "cloud in float32 (1 + 1e-30 == 1), so g·x no longer holds x; MDS itself "
        "rescales before its eigen-decomposition (exact at 1e-30 without the "
        "translation)"
    ),
    ("geometric.ponita_point_cloud_edge_lifted", "1e30 (float32)"): (
        "float32 range, as for the fiber-bundle row: the polynomial attribute "
        "embedding squares (and cubes) distances of 1e30 (eqjax.nn.PONITA's "
        "docstring: rescale positions)"
    ),
    ("bodies.chordal_mean_left_SO3", "zeros"): (
        "all-zero rotations and weights (not rotations; eagerly the weights check "
        "refuses them) have no nearest rotation, so no equivariant answer "
        "(eqjax.bodies.chordal_mean's docstring)"
    ),
    ("bodies.arteq_octahedral", "zeros"): (
        "a cloud every rotation fixes admits no equivariant rotation output "
        "(R = qR for all q); eqjax.bodies.arteq's docstring"
    ),
    ("bodies.arteq_part_frames", "zeros"): (
        "a cloud every rotation fixes admits no equivariant rotation output "
        "(R = qR for all q); eqjax.bodies.arteq's docstring"
    ),
    ("bodies.apen_global_E3", "1e30 (float32)"): (
        "float32 range: EM's variances square coordinates of 1e30 "
        "(eqjax.bodies.apen's docstring: rescale the input)"
    ),
    ("weights.transformer_hidden_permutations", "float16"): (
        "summation order: a permuted model sums its contractions in another order, "
        "so in float16 its outputs agree to ~1e-3 relative, above the check's "
        "tolerance (eqjax.weights.apply_permutation's docstring)"
    ),
    ("weights.transformer_encryption", "float16"): (
        "summation order, as for the permuted transformer: the encrypted model "
        "agrees with the plain one to ~1e-3 relative in float16 "
        "(eqjax.weights.apply_permutation's docstring)"
    ),
    ("weights.mlp_hidden_permutations", "1e30 (float32)"): (
        "float32 range of the test model, not of the permutation: weights and "
        "inputs both scaled to 1e30 make the MLP's float32 pre-activations 1e60 "
        "(inf); the float64 model is finite. apply_permutation itself is a gather "
        "(exact at any scale)"
    ),
    ("geometric.ponita_fiber_octahedral", "1e30 (float32)"): (
        "float32 range: the polynomial attribute embedding squares (and cubes) "
        "distances of 1e30, so intermediates overflow; the layer-normalised output "
        "exists in float64 only (eqjax.nn.PONITA's docstring: rescale positions)"
    ),
}
"""(row, bad input) -> the documented limit a finite result outside the claim
falls under (reported as ``limit``, with this reason, never as ``ok``)."""
RESULTS = Path(__file__).resolve().parent / "results" / "bad_input_sweep.md"


@dataclass
class Case:
    area: str
    name: str  # the public callable (or registry row)
    kind: str  # the class of bad input
    call: Callable[[], Any]
    finite: bool = True  # a finite answer exists
    check: Callable[[Any], bool] | None = None  # the documented property


def _raised_by_eqjax(e: BaseException) -> bool:
    frames = traceback.extract_tb(e.__traceback__)
    return bool(frames) and "/eqjax/" in frames[-1].filename.replace("\\", "/")


def classify(case: Case) -> tuple[str, str]:
    try:
        out = case.call()
        out = jax.block_until_ready(out)
    except (ValueError, TypeError, eq.testing.RegistryError) as e:
        # Python's own "missing required argument" names the argument: clear
        python_args = isinstance(e, TypeError) and "required" in str(e)
        return ("clear" if python_args or _raised_by_eqjax(e) else "unclear"), _short(e)
    except AssertionError as e:  # eqjax.testing's assertions
        return ("clear" if _raised_by_eqjax(e) else "unclear"), _short(e)
    except Exception as e:
        return "unclear", _short(e)
    leaves = [
        np.asarray(v)
        for v in jax.tree_util.tree_leaves(out)
        if hasattr(v, "dtype") and np.issubdtype(np.asarray(v).dtype, np.inexact)
    ]
    if not all(np.isfinite(v.astype(np.float64)).all() for v in leaves):
        limit = DOCUMENTED_LIMITS.get((case.name, case.kind))
        if case.finite and limit is not None:
            return "limit", limit
        return ("nan" if case.finite else "nan-ok"), "non-finite output"
    if case.check is not None:
        try:
            good = bool(case.check(out))
        except Exception as e:
            return "silent", f"property check raised {_short(e)}"
        if not good:
            limit = DOCUMENTED_LIMITS.get((case.name, case.kind))
            if limit is not None:
                return "limit", limit
            return "silent", "finite output violates the property"
    return "ok", ""


def _short(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".splitlines()[0]
    return text[:140]


# ----------------------------------------------------------------- callables

G = eq.groups
# The arrays the cases share: made by _make_constants() when a sweep runs, not at
# import (importing this module must not start JAX's backends: experiments that
# take --devices set the device count before JAX starts).
K: jax.Array
I3: jax.Array
REFL: jax.Array
X: jax.Array


def _make_constants() -> None:
    global K, I3, REFL, X
    K = jax.random.key(0)
    I3 = jnp.eye(3)
    REFL = jnp.diag(jnp.array([1.0, 1.0, -1.0]))
    X = jnp.ones((4, 3))


def _close(a, b, tol=1e-4):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.allclose(a, b, rtol=tol, atol=tol * max(np.abs(b).max(initial=0), 1e-300))


def _orth(R, tol=1e-4):
    R = np.asarray(R, np.float64)
    return np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(R.shape[-1])).max() < tol


def _group_cases() -> list[Case]:
    c: list[Case] = []

    def add(name, kind, call, finite=True, check=None):
        c.append(Case("groups", name, kind, call, finite, check))

    # static arguments of the factories
    for fname in ("SOn", "On", "GLPlus", "SL", "Aff", "En", "SEn", "Sn"):
        f = getattr(G, fname)
        add(fname, "float size", lambda f=f: f(2.7))
        add(fname, "string size", lambda f=f: f("4"))
        add(fname, "zero size", lambda f=f: f(0))
        add(fname, "negative size", lambda f=f: f(-3))
    add("axis_rotations", "zero vector", lambda: G.axis_rotations((0, 0, 0)))
    add("axis_rotations", "NaN", lambda: G.axis_rotations((0, float("nan"), 1)))
    add("axis_rotations", "wrong shape", lambda: G.axis_rotations((0, 1)))
    add("axis_rotations", "1e30", lambda: G.axis_rotations((0, 0, 1e30)), True,
        lambda g: g.name == G.axis_rotations((0, 0, 1)).name)  # fmt: skip
    groups = [G.SO3, G.O3, G.SE3, G.E3, G.GLPlus(3), G.SL(3), G.Aff(3)]
    for grp in groups + [G.Sn(5), G.axis_rotations((0, 0, 1))]:
        n = grp.name
        add(f"{n}.sample", "float shape", lambda g=grp: g.sample(K, (2.7,)))
        add(f"{n}.sample", "negative shape", lambda g=grp: g.sample(K, -1))
        add(f"{n}.sample", "string shape", lambda g=grp: g.sample(K, "4"))
        add(f"{n}.sample", "empty batch", lambda g=grp: g.sample(K, (0,)))
        add(f"{n}.identity", "float shape", lambda g=grp: g.identity(1.5))
    # elements: wrong shape, dtype, NaN, wrong group, 1e±30 points, zeros, empty
    for grp in groups:
        n = grp.name
        pair = isinstance(grp.identity(), tuple)

        def el(M, g=grp, pair=pair):
            return (M, jnp.zeros(M.shape[:-1], M.dtype)) if pair else M

        e = grp.identity()
        add(
            f"{n}.act",
            "wrong shape element",
            lambda g=grp, el=el: g.act(el(jnp.eye(2)), X),
        )
        add(
            f"{n}.act",
            "int element",
            lambda g=grp, el=el: g.act(el(jnp.eye(3, dtype=jnp.int32)), X),
        )
        add(
            f"{n}.act",
            "wrong shape points",
            lambda g=grp, e=e: g.act(e, jnp.ones((4, 2))),
        )
        add(
            f"{n}.act",
            "int points",
            lambda g=grp, e=e: g.act(e, jnp.ones((4, 3), jnp.int32)),
        )
        add(
            f"{n}.act",
            "NaN element",
            lambda g=grp, el=el: g.act(el(jnp.full((3, 3), jnp.nan)), X),
            False,
        )
        add(
            f"{n}.act",
            "NaN points",
            lambda g=grp, e=e: g.act(e, jnp.full((4, 3), jnp.nan)),
            False,
        )
        add(f"{n}.act", "float16 points", lambda g=grp: g.act(
            eq.testing.cast_floating(g.identity(), jnp.float16), X.astype(jnp.float16)),
            True, lambda y: y.dtype == jnp.float16 and _close(y, X, 1e-3))  # fmt: skip
        for scale in (1e30, 1e-30):
            gs = grp.sample(K)
            xs = scale * X
            add(f"{n}.act", f"{scale:.0e} points", lambda g=grp, gs=gs, xs=xs: g.act(gs, xs),
                True, lambda y, xs=xs, gs=gs, g=grp: _close(
                    g.act(g.inverse(gs), y) if not isinstance(gs, tuple) else y, xs)
                    if not isinstance(gs, tuple) else True)  # fmt: skip
        add(f"{n}.act", "zero points", lambda g=grp: g.act(g.sample(K), jnp.zeros((4, 3))),
            True, lambda y, g=grp: True)  # fmt: skip
        add(f"{n}.act", "empty points", lambda g=grp, e=e: g.act(e, jnp.zeros((0, 3))),
            True, lambda y: y.shape == (0, 3))  # fmt: skip
        add(
            f"{n}.inverse",
            "wrong group element (2I)",
            lambda g=grp, el=el: (
                g.inverse(el(2.0 * I3))
                if g.compact or g.name in ("SE3", "E3", "SL(3)")
                else g.inverse(el(jnp.zeros((3, 3))))
            ),
        )
        add(
            f"{n}.compose",
            "wrong shape",
            lambda g=grp, el=el, e=e: g.compose(e, el(jnp.eye(4))),
        )
    add("SO3.act", "reflection element", lambda: G.SO3.act(REFL, X))
    add("SE3.act", "reflection element", lambda: G.SE3.act((REFL, jnp.zeros(3)), X))
    add("GLPlus(3).act", "det < 0 element", lambda: G.GLPlus(3).act(REFL, X))
    add("SL(3).act", "det != 1 element", lambda: G.SL(3).act(2 * I3, X))
    add(
        "GLPlus(3).inverse",
        "singular",
        lambda: G.GLPlus(3).inverse(jnp.diag(jnp.array([1.0, 1, 0]))),
    )
    add("axis_rotations.act", "wrong subgroup element",
        lambda: G.axis_rotations((0, 0, 1)).act(G.so3_exp(jnp.array([1.0, 0, 0])), X))  # fmt: skip
    # Lie maps
    for nm, f, arg, fin, chk in [
        ("so3_exp", G.so3_exp, jnp.ones(2), True, None),
        ("so3_exp", G.so3_exp, jnp.ones(3, jnp.int32), True, None),
        ("so3_exp", G.so3_exp, jnp.full(3, 1e30), True, _orth),
        ("so3_exp", G.so3_exp, jnp.full(3, 1e-30), True, lambda R: _close(R, I3)),
        ("so3_exp", G.so3_exp, jnp.zeros(3), True, lambda R: _close(R, I3)),
        ("so3_exp", G.so3_exp, jnp.full(3, jnp.nan), False, None),
        (
            "so3_exp",
            G.so3_exp,
            jnp.ones(3, jnp.float16),
            True,
            lambda R: _orth(R, 1e-2),
        ),
        ("so3_log", G.so3_log, REFL, True, None),
        ("so3_log", G.so3_log, -I3, True, None),
        ("so3_log", G.so3_log, 2 * I3, True, None),
        ("so3_log", G.so3_log, jnp.eye(2), True, None),
        ("so3_log", G.so3_log, jnp.zeros((0, 3, 3)), True, lambda w: w.shape == (0, 3)),
        ("so2_exp", G.so2_exp, jnp.array(1e30), True, _orth),
        ("so2_exp", G.so2_exp, jnp.array(1, jnp.int32), True, None),
        ("so2_log", G.so2_log, jnp.diag(jnp.array([1.0, -1.0])), True, None),
        ("skew", G.skew, jnp.array([1.0, 2.0]), True, None),
        (
            "skew",
            G.skew,
            jnp.full(3, 1e30),
            True,
            lambda S: _close(S, -np.swapaxes(S, -1, -2)),
        ),
        ("vee", G.vee, jnp.eye(2), True, None),
        ("matrix_to_quaternion", G.matrix_to_quaternion, jnp.eye(2), True, None),
        (
            "matrix_to_quaternion",
            G.matrix_to_quaternion,
            I3,
            True,
            lambda q: _close(q, np.array([1.0, 0, 0, 0])),
        ),  # fmt: skip
        ("se3_exp", G.se3_exp, jnp.ones(5), True, None),
        ("se3_exp", G.se3_exp, jnp.zeros(6), True, lambda g: _close(g.R, I3)),
        ("se3_log", G.se3_log, (REFL, jnp.zeros(3)), True, None),
        ("se3_log", G.se3_log, I3, True, None),
        (
            "polar_decomposition",
            G.polar_decomposition,
            1e-19 * I3,
            True,
            lambda pq: _close(pq[1], I3) and _close(pq[0], 1e-19 * I3),
        ),  # fmt: skip
        (
            "polar_decomposition",
            G.polar_decomposition,
            1e-30 * I3,
            True,
            lambda pq: _close(pq[1], I3),
        ),
        (
            "polar_decomposition",
            G.polar_decomposition,
            1e30 * I3,
            True,
            lambda pq: _close(pq[1], I3),
        ),
        ("polar_decomposition", G.polar_decomposition, jnp.zeros((3, 3)), True, None),
        ("polar_decomposition", G.polar_decomposition, jnp.ones((3, 2)), True, None),
        (
            "polar_decomposition",
            G.polar_decomposition,
            jnp.eye(3, dtype=jnp.int32),
            True,
            None,
        ),
        (
            "iwasawa_decomposition",
            G.iwasawa_decomposition,
            jnp.zeros((3, 3)),
            True,
            None,
        ),
        (
            "iwasawa_decomposition",
            G.iwasawa_decomposition,
            1e30 * I3,
            True,
            lambda kdn: _close(kdn[1], 1e30 * np.ones(3)),
        ),  # fmt: skip
        (
            "iwasawa_decomposition",
            G.iwasawa_decomposition,
            1e-30 * I3,
            True,
            lambda kdn: _close(kdn[1], 1e-30 * np.ones(3)),
        ),  # fmt: skip
        (
            "permutation_inverse",
            G.permutation_inverse,
            jnp.array([0, 0, 1]),
            True,
            None,
        ),
        (
            "permutation_inverse",
            G.permutation_inverse,
            jnp.array([0.0, 1.0]),
            True,
            None,
        ),
        (
            "permutation_inverse",
            G.permutation_inverse,
            jnp.array([0, 1, 5]),
            True,
            None,
        ),
    ]:
        kind = _describe(arg)
        add(nm, kind, lambda f=f, arg=arg: f(arg), fin, chk)
    add(
        "polar_compose",
        "wrong shape",
        lambda: G.polar_compose(jnp.ones((3, 3)), jnp.ones((2, 2))),
    )
    add(
        "iwasawa_compose", "wrong shape", lambda: G.iwasawa_compose(I3, jnp.ones(2), I3)
    )
    # permutations and graphs
    graph = eq.testing.random_graph(0, (3, 2), n_edge=(2, 1), dtype=np.float32)
    add(
        "act_set",
        "axis out of range",
        lambda: G.act_set(jnp.arange(3), jnp.ones((3, 2)), axis=5),
    )
    add(
        "act_set",
        "float axis",
        lambda: G.act_set(jnp.arange(3), jnp.ones((3, 2)), axis=0.5),
    )
    add(
        "act_set",
        "duplicate entries",
        lambda: G.act_set(jnp.array([0, 0, 2]), jnp.ones((3, 2))),
    )
    add(
        "act_set",
        "float permutation",
        lambda: G.act_set(jnp.array([0.0, 1, 2]), jnp.ones((3, 2))),
    )
    add("act_set", "wrong length", lambda: G.act_set(jnp.arange(4), jnp.ones((3, 2))))
    add("act_set", "empty set", lambda: G.act_set(jnp.zeros((0,), jnp.int32), jnp.ones((0, 2))),
        True, lambda y: y.shape == (0, 2))  # fmt: skip
    add(
        "act_adjacency",
        "non-square",
        lambda: G.act_adjacency(jnp.arange(3), jnp.ones((3, 4))),
    )
    add("act_adjacency", "negative feature axes",
        lambda: G.act_adjacency(jnp.arange(3), jnp.ones((3, 3)), num_feature_axes=-1))  # fmt: skip
    add("act_graph_tensors", "wrong shape",
        lambda: G.act_graph_tensors(jnp.arange(3), (jnp.ones((3, 2)), jnp.ones((4, 4)))))  # fmt: skip
    add(
        "act_graph",
        "across graphs",
        lambda: G.act_graph(jnp.array([3, 1, 2, 0, 4]), graph),
    )
    add("act_graph", "not a graph", lambda: G.act_graph(jnp.arange(5), graph.nodes))
    add("act_graph", "wrong length", lambda: G.act_graph(jnp.arange(6), graph))
    add(
        "graph_node_permutations",
        "not a graph",
        lambda: G.graph_node_permutations(jnp.ones(3)),
    )
    add("graph_node_permutations.act", "across graphs",
        lambda: G.graph_node_permutations(graph).act(jnp.array([3, 1, 2, 0, 4]), graph))  # fmt: skip
    add("act_irreps", "not IrrepsArray", lambda: G.act_irreps(I3, jnp.ones(3)))
    add("act_irreps", "non-orthogonal R", lambda: G.act_irreps(2 * I3, _irreps()))
    add("act_irreps", "wrong shape R", lambda: G.act_irreps(jnp.eye(2), _irreps()))
    add("act_irreps", "1e30 input", lambda: G.act_irreps(REFL, _irreps(1e30)), True,
        lambda y: _close(np.linalg.norm(y.array), np.linalg.norm(_irreps(1e30).array)))  # fmt: skip
    add("fibonacci_sphere", "zero points", lambda: G.fibonacci_sphere(0))
    add("fibonacci_sphere", "float count", lambda: G.fibonacci_sphere(2.5))  # type: ignore[arg-type]
    add("wigner_D", "negative l", lambda: G.wigner_D(-1, I3))
    add("wigner_D", "float l", lambda: G.wigner_D(1.5, I3))  # type: ignore[arg-type]
    add("wigner_D", "wrong shape R", lambda: G.wigner_D(1, jnp.eye(2)))
    add("wigner_D", "int R", lambda: G.wigner_D(1, jnp.eye(3, dtype=jnp.int32)))
    add("wigner_D", "identity", lambda: G.wigner_D(3, I3), True,
        lambda D: _close(D, np.eye(7)))  # fmt: skip
    add("act_vectors", "wrong shape", lambda: G.act_vectors(I3, jnp.ones(2)))
    add(
        "act_vectors", "vector element", lambda: G.act_vectors(jnp.ones(3), jnp.ones(3))
    )
    add("act_vectors", "int vectors", lambda: G.act_vectors(I3, jnp.ones(3, jnp.int32)))
    add("cloud_action", "not a group", lambda: G.cloud_action("O3"))
    add(
        "cloud_action",
        "points not clouds",
        lambda: G.cloud_action(G.O3)(I3, jnp.ones(3)),
    )
    for cls in ("EuclideanElement", "AffineElement"):
        add(
            cls,
            "wrong element to act",
            lambda cls=cls: G.E3.act(getattr(G, cls)(I3, jnp.ones(2)), X),
        )
    add("Group.validate", "reflection for SO3", lambda: G.SO3.validate(REFL))
    return c


def _axis_subgroup_cases() -> list[Case]:
    """``eq.groups.axis_subgroup`` (O_g(3), issue 17)."""
    c: list[Case] = []

    def add(name, kind, call, finite=True, check=None):
        c.append(Case("groups", name, kind, call, finite, check))

    Og = G.axis_subgroup((0, 0, 1))
    add("axis_subgroup", "zero vector", lambda: G.axis_subgroup((0, 0, 0)))
    add("axis_subgroup", "NaN", lambda: G.axis_subgroup((0, float("nan"), 1)))
    add("axis_subgroup", "wrong shape", lambda: G.axis_subgroup((0, 1)))
    add("axis_subgroup", "non-bool reflections",
        lambda: G.axis_subgroup((0, 0, 1), reflections=1))  # type: ignore[arg-type]  # fmt: skip
    add("axis_subgroup", "1e30", lambda: G.axis_subgroup((0, 0, 1e30)), True,
        lambda g: g is Og)  # fmt: skip
    add("axis_subgroup.sample", "float shape", lambda: Og.sample(K, (2.7,)))
    add("axis_subgroup.sample", "empty batch", lambda: Og.sample(K, (0,)), True,
        lambda g: g.shape == (0, 3, 3))  # fmt: skip
    add("axis_subgroup.act", "rotation off the axis",
        lambda: Og.act(G.so3_exp(jnp.array([1.0, 0, 0])), X))  # fmt: skip
    add("axis_subgroup.act", "-I (moves the axis)", lambda: Og.act(-I3, X))
    add("axis_subgroup.act", "wrong point shape", lambda: Og.act(I3, X[:, :2]))
    add("axis_subgroup.act", "reflection through the xz plane", lambda: Og.act(
        jnp.diag(jnp.array([1.0, -1.0, 1.0])), X), True,
        lambda y: _close(y, X * jnp.array([[1.0, -1.0, 1.0]])))  # fmt: skip
    return c


def _bodies_cases() -> list[Case]:
    """``eqjax.bodies`` (issue 17): SET, chordal means, piecewise frames, EM, APEN."""
    c: list[Case] = []
    BD = eq.bodies

    def add(name, kind, call, finite=True, check=None):
        c.append(Case("bodies", name, kind, call, finite, check))

    sp = BD.set_init(K, vector_in=2, scalar_in=3, vector_out=1, scalar_out=2,
                     hidden_vectors=4, hidden_scalars=8, num_layers=1)  # fmt: skip
    v, s, g = jnp.ones((5, 2, 3)), jnp.ones((5, 3)), jnp.array([0.0, 0.0, -9.81])
    finite_shapes = lambda y: all(np.isfinite(np.asarray(t)).all() for t in y)  # noqa: E731
    add("set_model", "zero gravity", lambda: BD.set_model(sp, v, s, jnp.zeros(3)))
    add(
        "set_model", "NaN gravity", lambda: BD.set_model(sp, v, s, jnp.full(3, jnp.nan))
    )
    add("set_model", "gravity (2,)", lambda: BD.set_model(sp, v, s, jnp.ones(2)))
    add("set_model", "int vectors", lambda: BD.set_model(sp, v.astype(int), s, g))
    add("set_model", "scalars mismatch", lambda: BD.set_model(sp, v, s[:4], g))
    add("set_model", "wrong channels", lambda: BD.set_model(sp, v[:, :1], s, g))
    add("set_model", "float mask", lambda: BD.set_model(sp, v, s, g, jnp.ones(5)))
    add("set_model", "1e6 inputs", lambda: BD.set_model(sp, 1e6 * v, s, 1e6 * g),
        True, finite_shapes)  # fmt: skip
    add("set_model", "1e-6 inputs", lambda: BD.set_model(sp, 1e-6 * v, s, 1e-6 * g),
        True, finite_shapes)  # fmt: skip
    add("set_model", "zero vectors", lambda: BD.set_model(sp, 0 * v, s, g), True,
        finite_shapes)  # fmt: skip
    add("set_init", "heads do not divide", lambda: BD.set_init(
        K, vector_in=1, scalar_in=1, vector_out=1, scalar_out=1, hidden_scalars=6,
        num_heads=4))  # fmt: skip
    add("set_init", "no outputs", lambda: BD.set_init(
        K, vector_in=1, scalar_in=1, vector_out=0, scalar_out=0))  # fmt: skip
    add("set_init", "float width", lambda: BD.set_init(
        K, vector_in=1.5, scalar_in=1, vector_out=1, scalar_out=1))  # fmt: skip
    lp = sp["layers"][0]
    add("set_layer", "NaN vectors", lambda: BD.set_layer(
        lp, jnp.full((5, 4, 3), jnp.nan), jnp.ones((5, 8)), g[None]), False)  # fmt: skip
    add("gram_invariants", "1e30 (float32)", lambda: BD.gram_invariants(
        jnp.full((2, 3), 1e30), g[None]), True, lambda y: np.abs(np.asarray(y)).max() <= 1)  # fmt: skip
    add("gram_invariants", "zeros", lambda: BD.gram_invariants(
        jnp.zeros((2, 3)), jnp.zeros((1, 3))), True, lambda y: not np.any(np.asarray(y)))  # fmt: skip
    R = jnp.broadcast_to(I3, (3, 3, 3))
    add("chordal_mean", "weights not summing to one",
        lambda: BD.chordal_mean(R, jnp.ones(3)))  # fmt: skip
    add("chordal_mean", "negative weights",
        lambda: BD.chordal_mean(R, jnp.array([1.5, -0.5, 0.0])))  # fmt: skip
    add("chordal_mean", "no anchors", lambda: BD.chordal_mean(R[:0], jnp.ones(0)))
    add(
        "chordal_mean",
        "wrong shape",
        lambda: BD.chordal_mean(R[:, :2], jnp.ones(3) / 3),
    )
    add("chordal_mean", "reflection anchors",
        lambda: BD.chordal_mean(jnp.broadcast_to(REFL, (3, 3, 3)), jnp.ones(3) / 3),
        True, lambda M: _orth(M) and np.linalg.det(np.asarray(M)) > 0)  # fmt: skip
    add("project_to_so3", "zero matrix", lambda: BD.project_to_so3(jnp.zeros((3, 3))),
        True, _orth)  # fmt: skip
    add("project_to_so3", "1e30 (float32)",
        lambda: BD.project_to_so3(1e30 * jnp.diag(jnp.array([1.0, 2, 3]))), True,
        lambda M: _close(M, I3))  # fmt: skip
    x = jnp.asarray(np.random.default_rng(0).normal(size=(12, 3)) * [3.0, 2.0, 1.0])
    parts = jax.nn.one_hot(jnp.arange(12) % 2, 2)
    f = lambda y, w: jnp.sum(w * y[:, 0])  # noqa: E731
    pfa = BD.piecewise_frame_average
    add("piecewise_frame_average", "rows not summing to one",
        lambda: pfa(f, x, 0.5 * parts))  # fmt: skip
    add("piecewise_frame_average", "empty part",
        lambda: pfa(f, x, jnp.concatenate([parts, 0 * parts[:, :1]], 1)))  # fmt: skip
    add("piecewise_frame_average", "int parts", lambda: pfa(f, x, parts.astype(int)))
    add("piecewise_frame_average", "no parts", lambda: pfa(f, x, parts[:, :0]))
    add("piecewise_frame_average", "wrong point shape", lambda: pfa(f, x[:, :2], parts))
    add("piecewise_frame_average", "unknown frame",
        lambda: pfa(f, x, parts, frame="svd"))  # fmt: skip
    add("part_outputs", "shape mismatch",
        lambda: BD.part_outputs(parts, jnp.ones((3, 12))))  # fmt: skip
    mix = BD.PartMixture(jnp.zeros((2, 3)), jnp.ones(2), jnp.full(2, 0.5),
                         jnp.ones(2, bool))  # fmt: skip
    add("PartMixture", "merge of coincident candidates",
        lambda: BD.merge_and_prune(mix, merge_distance=0.1), True,
        lambda m: abs(float(m.weights.sum()) - 1) < 1e-6 and int(m.active.sum()) == 1)  # fmt: skip
    add("merge_and_prune", "negative distance",
        lambda: BD.merge_and_prune(mix, merge_distance=-1.0))  # fmt: skip
    add("merge_and_prune", "min_weight 1.5",
        lambda: BD.merge_and_prune(mix, merge_distance=0.1, min_weight=1.5))  # fmt: skip
    add("mixture_init", "zero parts", lambda: BD.mixture_init(x, 0))
    add("mixture_init", "float mask", lambda: BD.mixture_init(x, 2, jnp.ones(12)))
    add("mixture_init", "coincident votes",
        lambda: BD.mixture_init(jnp.zeros((12, 3)), 2), True,
        lambda m: np.isfinite(np.asarray(m.variances)).all())  # fmt: skip
    add("em_step", "coincident votes",
        lambda: BD.em_step(BD.mixture_init(jnp.zeros((12, 3)), 2), jnp.zeros((12, 3))),
        True, lambda m: abs(float(m.weights.sum()) - 1) < 1e-5)  # fmt: skip
    add("em_step", "mask shape", lambda: BD.em_step(mix, x, jnp.ones(5, bool)))
    add("responsibilities", "mask shape",
        lambda: BD.responsibilities(mix, x, jnp.ones(5, bool)))  # fmt: skip
    add("mixture_log_likelihood", "NaN votes",
        lambda: BD.mixture_log_likelihood(mix, jnp.full((4, 3), jnp.nan)), False)  # fmt: skip
    add("straight_through_parts", "ties", lambda: BD.straight_through_parts(
        jnp.full((2, 2), 0.5)), True, lambda y: np.allclose(np.asarray(y).sum(-1), 1))  # fmt: skip
    ap = BD.apen_init(K, 3, hidden=8)
    add("apen_init", "zero classes", lambda: BD.apen_init(K, 0))
    add("apen", "zero parts", lambda: BD.apen(ap, x, num_parts=0))
    add("apen", "wrong point shape", lambda: BD.apen(ap, x[:, :2], num_parts=2))
    add("apen", "coincident points", lambda: BD.apen(ap, jnp.zeros((12, 3)), num_parts=2),
        True, finite_shapes)  # fmt: skip
    add("apen_votes", "NaN points", lambda: BD.apen_votes(ap, jnp.full((12, 3), jnp.nan)),
        False)  # fmt: skip
    ep = BD.arteq_init(K, 3, hidden=8)
    add("check_tree", "two roots", lambda: BD.check_tree([-1, -1, 0]))
    add("check_tree", "cycle", lambda: BD.check_tree([-1, 2, 1]))
    add("check_tree", "out of range", lambda: BD.check_tree([-1, 7]))
    add("check_tree", "float parents", lambda: BD.check_tree([-1.0, 0.0]))
    add("arteq_init", "zero parts", lambda: BD.arteq_init(K, 0))
    add("arteq", "parents not a tree", lambda: BD.arteq(ep, x, [1, 2, 0]))
    add("arteq", "parents count", lambda: BD.arteq(ep, x, [-1, 0]))
    add("arteq", "int points", lambda: BD.arteq(ep, x.astype(int), [-1, 0, 1]))
    add("arteq", "coincident points", lambda: BD.arteq(ep, jnp.zeros((12, 3)), [-1, 0, 1]),
        True, lambda y: _orth(y[1]))  # fmt: skip
    return c


def _irreps(scale=1.0):
    import e3nn_jax as e3nn

    return e3nn.IrrepsArray("1o + 2e", scale * jnp.ones(8))


def _describe(arg) -> str:
    a = arg[0] if isinstance(arg, tuple) else arg
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        return f"{a.dtype} {a.shape}"
    if a.size and np.isnan(a).any():
        return "NaN"
    if a.size == 0:
        return "empty"
    m = float(np.abs(a).max())
    if m == 0:
        return "zeros"
    if a.dtype == np.float16:
        return "float16"
    if m >= 1e20 or m <= 1e-15:
        return f"{m:.0e}"
    return f"shape {a.shape}"


def _testing_cases() -> list[Case]:
    c: list[Case] = []
    T = eq.testing

    def add(name, kind, call, finite=True, check=None):
        c.append(Case("testing", name, kind, call, finite, check))

    common = dict(act_in=G.O3.act, act_out=G.O3.act, key=K)
    ident = lambda p: p  # noqa: E731
    add("built_once", "not callable", lambda: T.built_once(3))  # type: ignore[arg-type]
    for nm in ("equivariance_error", "equivariance_errors", "equivariance_sides"):
        f = getattr(T, nm)
        add(
            nm,
            "float num_samples",
            lambda f=f: f(ident, G.O3, X, **common, num_samples=2.7),
        )
        add(
            nm,
            "zero num_samples",
            lambda f=f: f(ident, G.O3, X, **common, num_samples=0),
        )
        add(nm, "string group", lambda f=f: f(ident, "O3", X, **common))
    tin = dict(act_in=G.O3.act, key=K)
    add("transformed_inputs", "float num_samples",
        lambda: T.transformed_inputs(G.O3, X, **tin, num_samples=2.7))  # fmt: skip
    add("transformed_inputs", "zero num_samples",
        lambda: T.transformed_inputs(G.O3, X, **tin, num_samples=0))  # fmt: skip
    add("transformed_inputs", "string group",
        lambda: T.transformed_inputs("O3", X, **tin))  # type: ignore[arg-type]  # fmt: skip
    add("transformed_inputs", "NaN input",
        lambda: T.transformed_inputs(G.O3, jnp.full((4, 3), jnp.nan), **tin), False)  # fmt: skip
    add("transformed_inputs", "empty points", lambda: T.transformed_inputs(
        G.O3, jnp.zeros((0, 3)), **tin, num_samples=2), True,
        lambda r: r[1].shape == (3, 0, 3))  # fmt: skip
    gs2 = lambda: G.O3.sample(K, (2,))  # noqa: E731
    add("sides_from_outputs", "outputs without the x slot",
        lambda: T.sides_from_outputs(gs2(), jnp.ones((2, 4))))  # fmt: skip
    add("sides_from_outputs", "scalar outputs",
        lambda: T.sides_from_outputs(gs2(), jnp.ones(())))  # fmt: skip
    add("sides_from_outputs", "no elements",
        lambda: T.sides_from_outputs({}, jnp.ones((3, 4))))  # fmt: skip
    add("sides_from_outputs", "act_out not callable",
        lambda: T.sides_from_outputs(gs2(), jnp.ones((3, 4)), act_out="O3"))  # type: ignore[arg-type]  # fmt: skip
    add("sides_from_outputs", "invariant outputs", lambda: T.sides_from_outputs(
        gs2(), jnp.arange(3.0)), True,
        lambda s: s.lhs.shape == (2,) and bool((s.rhs == 0).all()))  # fmt: skip
    add("equivariance_error", "1e30 input", lambda: T.equivariance_error(ident, G.O3, 1e30 * X, **common),
        True, lambda e: float(e) < 1e-4)  # fmt: skip
    add("equivariance_error", "1e-30 input", lambda: T.equivariance_error(ident, G.O3, 1e-30 * X, **common),
        True, lambda e: float(e) < 1e-4)  # fmt: skip
    add("equivariance_error", "zero output", lambda: T.equivariance_error(lambda p: 0 * p, G.O3, X, **common),
        True, lambda e: float(e) == 0.0)  # fmt: skip
    add(
        "equivariance_error",
        "NaN input",
        lambda: T.equivariance_error(ident, G.O3, jnp.nan * X, **common),
        False,
    )
    add("equivariance_error", "empty input", lambda: T.equivariance_error(ident, G.O3, jnp.zeros((0, 3)), **common),
        True, lambda e: float(e) == 0.0)  # fmt: skip
    add("equivariance_error", "float16 input", lambda: T.equivariance_error(
        ident, G.O3, X.astype(jnp.float16), **common), True, lambda e: float(e) < 1e-2)  # fmt: skip
    add("assert_equivariant", "wrong-group sampler", lambda: T.assert_equivariant(
        ident, G.SO3, X, act_in=G.SO3.act, act_out=lambda g, y: y, key=K, num_samples=2,
        sample=lambda k, s: 2.0 * G.SO3.sample(k, s)))  # fmt: skip
    add(
        "assert_equivariant",
        "NaN tol",
        lambda: T.assert_equivariant(ident, G.O3, X, **common, tol=float("nan")),
    )
    add(
        "assert_invariant",
        "non-invariant",
        lambda: T.assert_invariant(ident, G.O3, X, act_in=G.O3.act, key=K),
    )
    add(
        "assert_sides_close",
        "not Sides",
        lambda: T.assert_sides_close((1, 2, 3), tol=1e-3),
    )
    add("cast_floating", "int target", lambda: T.cast_floating(X, jnp.int32),
        True, lambda y: True)  # fmt: skip
    add("default_tolerance", "int input", lambda: T.default_tolerance(jnp.ones(3, jnp.int32)),
        True, lambda t: t == 1e-4)  # fmt: skip
    add("degenerate_cloud", "unknown kind", lambda: T.degenerate_cloud("nope"))
    add("random_cloud", "float size", lambda: T.random_cloud(0, 2.5))
    add("random_cloud", "zero dim", lambda: T.random_cloud(0, 4, 0))
    add(
        "random_cloud",
        "empty cloud",
        lambda: T.random_cloud(0, 0),
        True,
        lambda x: x.shape == (0, 3),
    )
    add("random_graph", "int n_node", lambda: T.random_graph(0, 3))
    add(
        "random_graph",
        "n_edge mismatch",
        lambda: T.random_graph(0, (3, 2), n_edge=(1,)),
    )
    add(
        "random_graph",
        "edges in empty graph",
        lambda: T.random_graph(0, (0,), n_edge=(2,)),
    )
    add("registered", "string (one area)", lambda: T.registered("groups"),
        True, lambda rows: {r.name.split(".")[0] for r in rows} == {"groups"})  # fmt: skip
    add("registered", "unknown area", lambda: T.registered(["nope"]))
    add("registered", "non-string area", lambda: T.registered([3]))
    add(
        "discover_areas", "unknown package", lambda: T.discover_areas("no_such_pkg_xyz")
    )
    add("Transform", "missing fields", lambda: T.Transform(name="x"))  # type: ignore[call-arg]
    add("Sides", "wrong arity", lambda: T.Sides(1, 2))  # type: ignore[call-arg]
    return c


def _ppgn_cases() -> list[Case]:
    """PPGN / PPGN++ (``eqjax.graphs``): blocks, model, inits, input tensor."""
    c: list[Case] = []
    GR = eq.graphs

    def add(name, kind, call, finite=True, check=None):
        c.append(Case("graphs", name, kind, call, finite, check))

    bp = GR.ppgn_block_init(K, 2, 3, plus=True)
    mp = GR.ppgn_init(K, 2, 3, 1, 2)
    x, mask = jnp.ones((5, 5, 2)), jnp.arange(5) < 4
    k4 = GR.polynomial_pattern([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
    A = jnp.ones((5, 5)) - jnp.eye(5)

    def zero_pad(y):
        return not np.any(np.asarray(y)[4]) and not np.any(np.asarray(y)[:, 4])

    blk = GR.ppgn_block
    add("ppgn_block", "rank-2 x", lambda: blk(bp, x[..., 0], plus=True))
    add("ppgn_block", "non-square x", lambda: blk(bp, x[:, :4], plus=True))
    add("ppgn_block", "mask shape", lambda: blk(bp, x, mask[:4], plus=True))
    add("ppgn_block", "float mask", lambda: blk(bp, x, 1.0 * mask, plus=True))
    add("ppgn_block", "int x", lambda: blk(bp, x.astype(jnp.int32), plus=True))
    add("ppgn_block", "wrong channels", lambda: blk(bp, x[..., :1], plus=True))
    add("ppgn_block", "plus mismatch", lambda: blk(bp, x, plus=False))
    add("ppgn_block", "non-bool plus", lambda: blk(bp, x, plus=1))
    add(
        "ppgn_block",
        "unknown normalization",
        lambda: blk(bp, x, plus=True, normalization="max"),
    )
    add("ppgn_block", "NaN input", lambda: blk(bp, jnp.nan * x, plus=True), False)
    add(
        "ppgn_block", "1e30 (float32)", lambda: blk(bp, 1e30 * x, plus=True), False
    )  # products overflow
    add(
        "ppgn_block",
        "1e-30",
        lambda: blk(bp, 1e-30 * x, plus=True),
        True,
        lambda y: y.shape == (5, 5, 3),
    )
    add("ppgn_block", "padding", lambda: blk(bp, x, mask, plus=True), True, zero_pad)
    add("ppgn_block", "int mask", lambda: blk(bp, x, 0 * mask, plus=True))
    add(
        "ppgn_block",
        "empty mask (bool)",
        lambda: blk(bp, x, mask & False, plus=True),
        True,
        lambda y: not np.any(np.asarray(y)),
    )
    add(
        "ppgn_block",
        "float16",
        lambda: blk(bp, x.astype(jnp.float16), plus=True),
        True,
        lambda y: y.dtype == jnp.float16,
    )
    add(
        "ppgn_block",
        "empty batch",
        lambda: blk(bp, jnp.ones((0, 5, 5, 2)), plus=True),
        True,
        lambda y: y.shape == (0, 5, 5, 3),
    )
    add("ppgn_block", "not params", lambda: blk((1, 2), x))  # type: ignore[arg-type]
    add("ppgn", "block params", lambda: GR.ppgn(bp, x))  # type: ignore[arg-type]
    add("ppgn", "wrong channels", lambda: GR.ppgn(mp, x[..., :1]))
    add("ppgn", "plus mismatch", lambda: GR.ppgn(mp, x, plus=True))
    add(
        "ppgn",
        "one real node",
        lambda: GR.ppgn(mp, x, jnp.arange(5) < 1),
        True,
        lambda y: y.shape == (2,),
    )
    add(
        "ppgn",
        "empty mask",
        lambda: GR.ppgn(mp, x, mask & False),
        True,
        lambda y: y.shape == (2,),
    )
    add("ppgn", "NaN input", lambda: GR.ppgn(mp, jnp.nan * x), False)
    for name, init in (
        ("ppgn_block_init", GR.ppgn_block_init),
        ("ppgn_init", GR.ppgn_init),
    ):
        args = (3,) if name == "ppgn_block_init" else (3, 1, 2)
        add(name, "zero channels", lambda init=init, args=args: init(K, 0, *args))
        add(name, "float channels", lambda init=init, args=args: init(K, 2.5, *args))
        add(
            name,
            "non-bool plus",
            lambda init=init, args=args: init(K, 2, *args, plus="yes"),
        )
    add("ppgn_init", "zero blocks", lambda: GR.ppgn_init(K, 2, 3, 0, 2))
    inp = GR.ppgn_input
    add("ppgn_input", "int adjacency", lambda: inp(A.astype(jnp.int32)))
    add("ppgn_input", "non-square", lambda: inp(A[:4]))
    add("ppgn_input", "mask shape", lambda: inp(A, mask[:4]))
    add("ppgn_input", "node features shape", lambda: inp(A, mask, jnp.ones((4, 2))))
    add(
        "ppgn_input",
        "int node features",
        lambda: inp(A, mask, jnp.ones((5, 2), jnp.int32)),
    )
    add(
        "ppgn_input",
        "unknown poly_scale",
        lambda: inp(A, patterns=[k4], poly_scale="log"),
    )
    add(
        "ppgn_input",
        "unknown invariants",
        lambda: inp(A, patterns=[k4], invariants="x"),
    )
    add("ppgn_input", "one pattern, not a list", lambda: inp(A, patterns=k4))  # type: ignore[arg-type]
    add(
        "ppgn_input", "polynomials count", lambda: inp(A, patterns=[k4], polynomials=[])
    )
    add(
        "ppgn_input",
        "polynomials shape",
        lambda: inp(A, patterns=[k4], polynomials=[jnp.ones(5)]),
    )
    add("ppgn_input", "NaN adjacency", lambda: inp(jnp.nan * A, patterns=[k4]), False)
    add(
        "ppgn_input",
        "empty graph",
        lambda: inp(0 * A, patterns=[k4]),
        True,
        lambda y: not np.any(np.asarray(y)),
    )
    add("ppgn_input", "padding", lambda: inp(A, mask, patterns=[k4]), True, zero_pad)
    add(
        "ppgn_input",
        "1e30 (float32)",
        lambda: inp(1e30 * A, patterns=[k4], poly_scale="density"),
        True,
        lambda y: np.isfinite(np.asarray(y)).all(),
    )
    add("PPGNParams", "wrong arity", lambda: GR.PPGNParams(()))  # type: ignore[call-arg]
    add("PPGNBlockParams", "wrong arity", lambda: GR.PPGNBlockParams(1, 2))  # type: ignore[call-arg]
    add("ppgn_plus_patterns", "too many edges", lambda: GR.ppgn_plus_patterns(7))
    add("ppgn_plus_patterns", "zero edges", lambda: GR.ppgn_plus_patterns(0))
    add("ppgn_plus_patterns", "float", lambda: GR.ppgn_plus_patterns(6.0))  # type: ignore[arg-type]
    return c  # fmt: skip


def _spe_cases() -> list[Case]:
    """SPE and its baselines (``eqjax.graphs``): eigenpairs on the host and in
    jit, the encoders, their inits and records."""
    c: list[Case] = []
    GR = eq.graphs

    def add(name, kind, call, finite=True, check=None):
        c.append(Case("graphs", name, kind, call, finite, check))

    A = np.roll(np.eye(5), 1, 0) + np.roll(np.eye(5), -1, 0)  # C5
    Aj = jnp.asarray(A, jnp.float32)
    host = GR.laplacian_eigenpairs
    add("laplacian_eigenpairs", "asymmetric", lambda: host(np.triu(A), 2))
    add(
        "laplacian_eigenpairs",
        "NaN weight",
        lambda: host(np.where(A > 0, np.nan, 0), 2),
    )
    add(
        "laplacian_eigenpairs",
        "inf weight",
        lambda: host(np.where(A > 0, np.inf, 0.0), 2),
    )
    add("laplacian_eigenpairs", "negative weight", lambda: host(-A, 2))
    add("laplacian_eigenpairs", "more eigenpairs than nodes", lambda: host(A, 6))
    add("laplacian_eigenpairs", "non-square", lambda: host(A[:4], 2))
    add(
        "laplacian_eigenpairs",
        "cut inside an eigenspace (raise)",
        lambda: host(A, 2, partial_eigenspace="raise"),
    )
    add(
        "laplacian_eigenpairs",
        "unknown partial_eigenspace",
        lambda: host(A, 2, partial_eigenspace="cut"),
    )  # type: ignore[arg-type]
    add("laplacian_eigenpairs", "float num_eigvals", lambda: host(A, 2.0))  # type: ignore[arg-type]
    add("laplacian_eigenpairs", "string adjacency", lambda: host(np.array([["a"]]), 1))
    add(
        "laplacian_eigenpairs",
        "int adjacency",
        lambda: host(A.astype(np.int8), 3),
        True,
        lambda e: e.eigvecs.dtype == np.float32 and bool(e.mask.all()),
    )
    add(
        "laplacian_eigenpairs",
        "edgeless graph",
        lambda: host(np.zeros((4, 4)), 4),
        True,
        lambda e: np.allclose(e.eigvals, 1.0),
    )
    add(
        "laplacian_eigenpairs",
        "1e30 weights",
        lambda: host(1e30 * A, 3),
        True,
        lambda e: np.allclose(e.eigvals, host(A, 3).eigvals),
    )
    add(
        "laplacian_eigenpairs",
        "1e-30 weights",
        lambda: host(1e-30 * A, 3),
        True,
        lambda e: np.allclose(e.eigvals, host(A, 3).eigvals),
    )
    add(
        "laplacian_eigenpairs",
        "no real node, padded",
        lambda: host(np.zeros((0, 0)), 2, num_nodes=3),
        True,
        lambda e: not e.mask.any() and e.eigvecs.shape == (3, 2),
    )
    eigh = GR.laplacian_eigh
    add("laplacian_eigh", "more eigenpairs than nodes", lambda: eigh(Aj, 6))
    add("laplacian_eigh", "int adjacency", lambda: eigh(Aj.astype(jnp.int32), 2))
    add(
        "laplacian_eigh",
        "raise (host only)",
        lambda: eigh(Aj, 2, partial_eigenspace="raise"),
    )  # type: ignore[arg-type]
    add("laplacian_eigh", "mask shape", lambda: eigh(Aj, 2, jnp.ones(4, bool)))
    add("laplacian_eigh", "float mask", lambda: eigh(Aj, 2, jnp.ones(5)))
    add("laplacian_eigh", "non-square", lambda: eigh(Aj[:4], 2))
    add("laplacian_eigh", "NaN adjacency", lambda: eigh(jnp.nan * Aj, 2), False)
    add(
        "laplacian_eigh",
        "1e30 weights",
        lambda: eigh(1e30 * Aj, 3).eigvals,
        True,
        lambda y: np.allclose(np.asarray(y), host(A, 3).eigvals, atol=1e-4),
    )
    add(
        "laplacian_eigh",
        "edgeless graph",
        lambda: eigh(0 * Aj, 3).eigvals,
        True,
        lambda y: np.allclose(np.asarray(y), 1.0),
    )
    add(
        "laplacian_eigh",
        "no real node",
        lambda: eigh(Aj, 2, jnp.zeros(5, bool)),
        True,
        lambda e: not np.asarray(e.mask).any() and not np.any(np.asarray(e.eigvecs)),
    )
    add(
        "laplacian_eigh",
        "float16",
        lambda: eigh(Aj.astype(jnp.float16), 3),
        True,
        lambda e: e.eigvecs.dtype == jnp.float16,
    )
    add(
        "laplacian_eigh",
        "empty batch",
        lambda: eigh(jnp.zeros((0, 5, 5)), 2),
        True,
        lambda e: e.eigvecs.shape == (0, 5, 2),
    )
    nl = GR.normalized_laplacian
    add("normalized_laplacian", "int adjacency", lambda: nl(Aj.astype(jnp.int32)))
    add("normalized_laplacian", "rank-1", lambda: nl(Aj[0]))
    add("normalized_laplacian", "mask shape", lambda: nl(Aj, jnp.ones(3, bool)))
    add("normalized_laplacian", "NaN adjacency", lambda: nl(jnp.nan * Aj), False)
    add(
        "normalized_laplacian",
        "isolated node",
        lambda: nl(Aj.at[0].set(0).at[:, 0].set(0)),
        True,
        lambda L: float(L[0, 0]) == 1.0 and np.isfinite(np.asarray(L)).all(),
    )
    ps = GR.spe_init(K, 3, 2, num_channels=2, hidden=4)
    pe = GR.eigvec_pe_init(K, 3, 2, hidden=4)
    pn = GR.signnet_pe_init(K, 3, 2, phi_hidden=4, hidden=4)
    ep = host(A, 3, num_nodes=6, dtype=np.float32)
    lam, V = jnp.asarray(ep.eigvals), jnp.asarray(ep.eigvecs)
    s, r = np.nonzero(A)
    nm = jnp.arange(6) < 5
    spe = GR.spe
    add(
        "spe",
        "more eigenpairs than nodes",
        lambda: spe(ps, jnp.zeros(7), jnp.zeros((6, 7)), s, r),
    )
    add("spe", "eigvals length", lambda: spe(ps, lam[:2], V, s, r))
    add("spe", "int eigvecs", lambda: spe(ps, lam, V.astype(jnp.int32), s, r))
    add("spe", "dtype mismatch", lambda: spe(ps, lam.astype(jnp.float16), V, s, r))
    add("spe", "float senders", lambda: spe(ps, lam, V, s.astype(np.float32), r))
    add("spe", "edge count mismatch", lambda: spe(ps, lam, V, s, r[:-1]))
    add("spe", "float node mask", lambda: spe(ps, lam, V, s, r, 1.0 * nm))
    add("spe", "node mask shape", lambda: spe(ps, lam, V, s, r, nm[:5]))
    add(
        "spe",
        "eigval mask shape",
        lambda: spe(ps, lam, V, s, r, eigval_mask=jnp.ones(2, bool)),
    )
    add("spe", "wrong params", lambda: spe(pe, lam, V, s, r))  # type: ignore[arg-type]
    add(
        "spe",
        "batch mismatch",
        lambda: spe(ps, lam, jnp.stack([V, V]), np.stack([s] * 3), r),
    )
    add("spe", "NaN eigvecs", lambda: spe(ps, lam, jnp.nan * V, s, r), False)
    add(
        "spe",
        "1e30 eigvecs (float32 overflow)",
        lambda: spe(ps, lam, 1e30 * V, s, r),
        False,
    )
    add(
        "spe",
        "NaN in padding",
        lambda: spe(ps, lam, V.at[5].set(jnp.nan), s, r, nm),
        True,
        lambda y: np.isfinite(np.asarray(y)).all() and not np.any(np.asarray(y)[5]),
    )
    add(
        "spe",
        "zeros",
        lambda: spe(ps, 0 * lam, 0 * V, s, r),
        True,
        lambda y: np.isfinite(np.asarray(y)).all(),
    )
    add(
        "spe",
        "no real node",
        lambda: spe(ps, lam, V, s, r, nm & False),
        True,
        lambda y: not np.any(np.asarray(y)),
    )
    add(
        "spe",
        "float16",
        lambda: spe(ps, lam.astype(jnp.float16), V.astype(jnp.float16), s, r),
        True,
        lambda y: y.dtype == jnp.float16,
    )
    add(
        "spe",
        "empty batch",
        lambda: spe(ps, jnp.zeros((0, 3)), jnp.zeros((0, 6, 3)), s, r),
        True,
        lambda y: y.shape == (0, 6, 2),
    )
    for name, kw in (
        ("num_channels", {"num_channels": 0}),
        ("out_dim", {"out_dim": 0}),
        ("num_layers", {"num_layers": 0}),
        ("bool num_eigvals", {"num_eigvals": True}),
    ):
        args = {"num_eigvals": 3, "out_dim": 2, **kw}
        add("spe_init", f"bad {name}", lambda args=args: GR.spe_init(K, **args))
    add("eigvec_pe", "eigenvector count", lambda: GR.eigvec_pe(pe, V[:, :2]))
    add("eigvec_pe", "int eigvecs", lambda: GR.eigvec_pe(pe, V.astype(jnp.int32)))
    add("eigvec_pe", "mask shape", lambda: GR.eigvec_pe(pe, V, nm[:3]))
    add("eigvec_pe", "wrong params", lambda: GR.eigvec_pe(pn, V))  # type: ignore[arg-type]
    add("eigvec_pe", "NaN eigvecs", lambda: GR.eigvec_pe(pe, jnp.nan * V), False)
    add(
        "eigvec_pe",
        "NaN in padding",
        lambda: GR.eigvec_pe(pe, V.at[5].set(jnp.nan), nm),
        True,
        lambda y: np.isfinite(np.asarray(y)).all() and not np.any(np.asarray(y)[5]),
    )
    add("eigvec_pe_init", "zero hidden", lambda: GR.eigvec_pe_init(K, 3, 2, hidden=0))
    add("signnet_pe", "eigenvector count", lambda: GR.signnet_pe(pn, lam[:2], V[:, :2]))
    add(
        "signnet_pe",
        "dtype mismatch",
        lambda: GR.signnet_pe(pn, lam.astype(jnp.float16), V),
    )
    add("signnet_pe", "wrong params", lambda: GR.signnet_pe(ps, lam, V))  # type: ignore[arg-type]
    add("signnet_pe", "NaN eigvecs", lambda: GR.signnet_pe(pn, lam, jnp.nan * V), False)
    add(
        "signnet_pe",
        "sign flip",
        lambda: GR.signnet_pe(pn, lam, -V),
        True,
        lambda y: _close(y, GR.signnet_pe(pn, lam, V)),
    )
    add("signnet_pe_init", "zero out_dim", lambda: GR.signnet_pe_init(K, 3, 0))
    add("Eigenpairs", "wrong arity", lambda: GR.Eigenpairs(1, 2))  # type: ignore[call-arg]
    add("SPEParams", "wrong arity", lambda: GR.SPEParams(()))  # type: ignore[call-arg]
    add("EigvecPEParams", "wrong arity", lambda: GR.EigvecPEParams())  # type: ignore[call-arg]
    add("SignNetParams", "wrong arity", lambda: GR.SignNetParams(1))  # type: ignore[call-arg]
    return c  # fmt: skip


# ---------------------------------------------------------------------- rows


def _scale_input(row, x, f):
    """Apply ``f`` to the floating leaves of the row's input (for the groups'
    action rows ``(g, x)``, to ``x`` only: ``g`` must stay a group element)."""

    def on(t):
        return jax.tree_util.tree_map(
            lambda v: (
                f(v)
                if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating)
                else v
            ),
            t,
        )

    if row.name.startswith("groups.") and isinstance(x, tuple) and len(x) == 2:
        return (x[0], on(x[1]))
    return on(x)


def _float32_answer_exists(row, x32) -> bool:
    """Whether ``row.fn`` of the input scaled to 1e30 has a float32 answer: the
    same call in float64 is finite and within float32's range."""
    with jax.enable_x64(True):
        x64 = eq.testing.cast_floating(x32, jnp.float64)
        y = jax.jit(row.fn)(_scale_input(row, x64, lambda v: v * 1e30))
        big = float(np.finfo(np.float32).max)
        return all(
            np.all(np.abs(np.asarray(v, np.float64)) < big)
            for v in jax.tree_util.tree_leaves(y)
            if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.inexact)
        )


def _row_cases(rows) -> list[Case]:
    c: list[Case] = []
    for row in rows:
        area = row.name.split(".")[0]
        fn = jax.jit(row.fn)
        x32 = row.make_input(jax.random.key(1), jnp.float32)
        tol = max(row.tol32, 1e-4) * 10

        def equi(x, fn=fn, row=row, tol=tol):
            def check(_):
                err = eq.testing.equivariance_error(
                    fn, row.group, x, act_in=row.act_in, act_out=row.act_out,
                    key=jax.random.key(2), num_samples=2, sample=row.sample,
                )  # fmt: skip
                return (not np.isfinite(float(err))) or float(err) <= tol

            return check

        for kind, f, finite in [
            ("1e30 (float32)", lambda v: v * 1e30, _float32_answer_exists(row, x32)),
            ("1e-30 (float32)", lambda v: v * 1e-30, True),
            ("zeros", jnp.zeros_like, True),
            ("NaN", lambda v: jnp.full_like(v, jnp.nan), False),
        ]:
            xb = _scale_input(row, x32, f)
            c.append(
                Case(
                    area, row.name, kind, lambda fn=fn, xb=xb: fn(xb), finite, equi(xb)
                )
            )
        x16 = eq.testing.cast_floating(x32, jnp.float16)  # every leaf, g included
        c.append(Case(area, row.name, "float16", lambda fn=fn, xb=x16: fn(xb), True,
                      lambda y: all(v.dtype == jnp.float16 for v in jax.tree_util.tree_leaves(y)
                                    if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating))))  # fmt: skip
        xi = eq.testing.cast_floating(x32, jnp.int32)
        c.append(Case(area, row.name, "int32", lambda fn=fn, xb=xi: fn(xb), True, None))
    return c


# ---------------------------------------------------------------------- main


def public_callables(module) -> list[str]:
    """The names of ``module.__all__`` that a user calls: functions, factories and
    classes (not type aliases such as ``Action``, nor exception classes)."""
    out = []
    for n in module.__all__:
        obj = getattr(module, n)
        if not callable(obj) or type(obj).__module__ in ("typing", "collections.abc"):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue
        out.append(n)
    return out


def run(areas=None, *, rows: bool = True, progress: bool = True):
    _make_constants()
    cases = []
    if areas is None or "groups" in areas:
        cases += _group_cases()
        cases += _axis_subgroup_cases()
    if areas is None or "testing" in areas:
        cases += _testing_cases()
    if areas is None or "graphs" in areas:
        cases += _ppgn_cases()
        cases += _spe_cases()
    if areas is None or "bodies" in areas:
        cases += _bodies_cases()
    if rows:
        row_areas = None if areas is None else [a for a in areas if a != "testing"]
        cases += _row_cases(eq.testing.registered(row_areas))
    it = cases
    if progress:
        try:
            from tqdm import tqdm

            it = tqdm(cases, desc="bad_input_sweep", unit="case")
        except ImportError:
            pass
    results = []
    for case in it:
        outcome, why = classify(case)
        results.append((case, outcome, why))
    return results


def table(results) -> str:
    counts: dict[str, Counter] = {}
    for case, outcome, _ in results:
        counts.setdefault(case.area, Counter())[outcome] += 1
    lines = [
        "| area | inputs | " + " | ".join(OUTCOMES) + " |",
        "|---" * (len(OUTCOMES) + 2) + "|",
    ]
    total = Counter()
    for area, cnt in counts.items():
        total.update(cnt)
        lines.append(
            f"| {area} | {sum(cnt.values())} | "
            + " | ".join(str(cnt[o]) for o in OUTCOMES)
            + " |"
        )
    lines.append(
        f"| **all** | {sum(total.values())} | "
        + " | ".join(str(total[o]) for o in OUTCOMES)
        + " |"
    )
    bad = [
        f"| {c.area} | `{c.name}` | {c.kind} | {o} | {w.replace('|', '/')} |"
        for c, o, w in results
        if o in ("unclear", "silent", "nan", "limit")
    ]
    detail = ["", "Cases that are not clear errors or fine answers (``limit``: the "
              "documented limit it falls under):", "",
              "| area | callable | bad input | outcome | detail |", "|---|---|---|---|---|", *bad]  # fmt: skip
    return "\n".join(
        lines + (detail if bad else ["", "No unclear, silent or NaN case."])
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m experiments bad_input_sweep", description=DESCRIPTION
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="groups and testing only (callables and rows)",
    )
    p.add_argument("--areas", default=None, help="comma-separated areas (default: all)")
    p.add_argument(
        "--out", default=str(RESULTS), help="Markdown file for the counts table"
    )
    p.add_argument(
        "--data-dir", default="../shared/data", help="unused (no data needed)"
    )
    p.add_argument(
        "--results-dir", default=None, help="folder for the table (overrides --out)"
    )
    args = p.parse_args(argv)
    areas = (
        ["groups", "testing"]
        if args.quick
        else (args.areas.split(",") if args.areas else None)
    )
    results = run(areas)
    md = (
        "# Bad-input sweep\n\n"
        f"Command: `python -m experiments bad_input_sweep{' --quick' if args.quick else ''}`. "
        "Outcomes as in `experiments/bad_input_sweep.py`. Issue 12's first sweep: "
        "576 bad inputs, 339 clear, 77 unclear, 62 silently wrong; 8 avoidable NaN.\n\n"
        + table(results)
        + "\n"
    )
    out = (
        Path(args.results_dir) / "bad_input_sweep.md"
        if args.results_dir
        else Path(args.out)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(md)
    return 0
