"""Misuse of eqjax.groups: each raises a clear error naming what is wrong (issue 12
§5), eagerly; under ``jit`` the same calls cost nothing extra (shape checks only)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

G = eq.groups
I3 = jnp.eye(3)
REFLECTION = jnp.diag(jnp.array([1.0, 1.0, -1.0]))
SINGULAR = jnp.diag(jnp.array([1.0, 1.0, 0.0]))
GRAPH = eq.testing.random_graph(0, (3, 2), n_edge=(2, 1), dtype=np.float32)

MISUSES = {
    # static arguments
    "Sn float size": (lambda: G.Sn(2.7), TypeError, r"Sn: n must be an int.*2\.7"),
    "Sn string size": (lambda: G.Sn("4"), TypeError, r"Sn: n must be an int.*'4'"),
    "Sn zero size": (lambda: G.Sn(0), ValueError, r"Sn: n must be >= 1"),
    "SOn negative": (lambda: G.SOn(-2), ValueError, r"SOn: n must be >= 1"),
    "On float": (lambda: G.On(3.0), TypeError, r"On: n must be an int"),
    "GLPlus zero": (lambda: G.GLPlus(0), ValueError, r"GLPlus: n must be >= 1"),
    "SL bool": (lambda: G.SL(True), TypeError, r"SL: n must be an int"),
    "Aff float": (lambda: G.Aff(2.5), TypeError, r"Aff: n must be an int"),
    "En string": (lambda: G.En("3"), TypeError, r"En: n must be an int"),
    "SEn zero": (lambda: G.SEn(0), ValueError, r"SEn: n must be >= 1"),
    "sample float shape": (
        lambda: G.SO3.sample(jax.random.key(0), (2.5,)),
        TypeError,
        r"shape .* must be an int",
    ),
    "sample negative shape": (
        lambda: G.O3.sample(jax.random.key(0), -1),
        ValueError,
        r"shape must be >= 0",
    ),
    "sample string shape": (
        lambda: G.Sn(3).sample(jax.random.key(0), "4"),
        TypeError,
        r"shape must be an int or a tuple",
    ),
    "act_set axis out of range": (
        lambda: G.act_set(jnp.arange(3), jnp.ones((3, 2, 2)), axis=5),
        ValueError,
        r"act_set: axis=5 is out of range.*3 axes",
    ),
    "act_set float axis": (
        lambda: G.act_set(jnp.arange(3), jnp.ones((3, 2)), axis=0.0),
        TypeError,
        r"act_set: axis must be an int",
    ),
    "act_adjacency negative feature axes": (
        lambda: G.act_adjacency(jnp.arange(3), jnp.ones((3, 3)), num_feature_axes=-1),
        ValueError,
        r"num_feature_axes must be >= 0",
    ),
    "polar iterations zero": (
        lambda: G.polar_decomposition(I3, iterations=0),
        ValueError,
        r"iterations must be >= 1",
    ),
    "polar iterations float": (
        lambda: G.polar_decomposition(I3, iterations=2.7),
        TypeError,
        r"iterations must be an int",
    ),
    "Sn item_axis float": (
        lambda: G.Sn(3, item_axis=1.5),
        TypeError,
        r"item_axis must be an int",
    ),
    "axis_rotations nan axis": (
        lambda: G.axis_rotations((0.0, float("nan"), 1.0)),
        ValueError,
        r"finite axis",
    ),
    "axis_rotations string": (
        lambda: G.axis_rotations("z"),
        TypeError,
        r"3-vector axis",
    ),
    # elements of the wrong group (eager)
    "reflection to SO3.act": (
        lambda: G.SO3.act(REFLECTION, jnp.ones(3)),
        ValueError,
        r"SO3.act \(g\).*det = -1 \(a reflection\)",
    ),
    "reflection in a batch to SE3.act": (
        lambda: G.SE3.act(
            G.EuclideanElement(jnp.stack([I3, REFLECTION]), jnp.zeros((2, 3))),
            jnp.ones(3),
        ),
        ValueError,
        r"SE3.act \(g\) R.*reflection.*batch index \(1,\)",
    ),
    "non-orthogonal to O3.inverse": (
        lambda: G.O3.inverse(2.0 * I3),
        ValueError,
        r"O3.inverse \(g\).*not an orthogonal matrix.*= 3",
    ),
    "non-orthogonal to E3.inverse": (
        lambda: G.E3.inverse(G.EuclideanElement(2.0 * I3, jnp.zeros(3))),
        ValueError,
        r"E3.inverse \(g\) R.*not an orthogonal",
    ),
    "non-orthogonal to O3.compose": (
        lambda: G.O3.compose(I3, I3 + 0.1),
        ValueError,
        r"O3.compose \(h\).*not an orthogonal",
    ),
    "NaN element": (
        lambda: G.O3.act(jnp.full((3, 3), jnp.nan), jnp.ones(3)),
        ValueError,
        r"O3.act \(g\).*NaN",
    ),
    "so3_log of a reflection": (
        lambda: G.so3_log(REFLECTION),
        ValueError,
        r"so3_log \(R\).*reflection",
    ),
    "so3_log of -I": (
        lambda: G.so3_log(-I3),
        ValueError,
        r"so3_log \(R\).*det = -1",
    ),
    "act_irreps non-orthogonal": (
        lambda: G.act_irreps(
            2.0 * I3,
            eq.testing.cast_floating(
                __import__("e3nn_jax").IrrepsArray("1o", jnp.ones(3)), jnp.float32
            ),
        ),
        ValueError,
        r"act_irreps \(R\).*not an orthogonal",
    ),
    "generic rotation to axis_rotations.act": (
        lambda: G.axis_rotations((0, 0, 1)).act(
            G.so3_exp(jnp.array([1.0, 0.0, 0.0])), jnp.ones(3)
        ),
        ValueError,
        r"does not fix the axis",
    ),
    "duplicate permutation entries": (
        lambda: G.Sn(3).act(jnp.array([0, 0, 1]), jnp.ones((3, 2))),
        ValueError,
        r"Sn\(3\): p is not a permutation.*duplicate entries \[0\]",
    ),
    "out-of-range permutation entries": (
        lambda: G.Sn(3).inverse(jnp.array([0, 1, 3])),
        ValueError,
        r"out of range 0..2: \[3\]",
    ),
    "permutation_inverse of a non-permutation": (
        lambda: G.permutation_inverse(jnp.array([[0, 1, 2], [2, 2, 0]])),
        ValueError,
        r"permutation_inverse: p is not a permutation.*batch index \(1,\)",
    ),
    "act_graph across graphs": (
        lambda: G.act_graph(jnp.array([3, 1, 2, 0, 4]), GRAPH),
        ValueError,
        r"act_graph: p moves node 0 of graph 0 to position 3 in graph 1",
    ),
    "GLPlus det < 0": (
        lambda: G.GLPlus(3).act(REFLECTION, jnp.ones(3)),
        ValueError,
        r"GLPlus\(3\).act \(g\).*det = -1 <= 0",
    ),
    "SL det != 1": (
        lambda: G.SL(3).compose(2.0 * I3, I3),
        ValueError,
        r"SL\(3\).compose \(g\).*det = 8, not 1",
    ),
    # singular inputs
    "GLPlus.inverse of a singular matrix": (
        lambda: G.GLPlus(3).inverse(SINGULAR),
        ValueError,
        r"GLPlus\(3\).inverse \(g\).*singular",
    ),
    "Aff.inverse of a singular matrix": (
        lambda: G.Aff(3).inverse(G.AffineElement(SINGULAR, jnp.zeros(3))),
        ValueError,
        r"Aff\(3\).inverse \(g\) A.*singular",
    ),
    "polar of a singular matrix": (
        lambda: G.polar_decomposition(SINGULAR),
        ValueError,
        r"polar_decomposition \(A\).*singular",
    ),
    "iwasawa of a singular matrix": (
        lambda: G.iwasawa_decomposition(jnp.zeros((2, 2))),
        ValueError,
        r"iwasawa_decomposition \(A\).*singular",
    ),
    # shapes
    "skew of a 2-vector": (
        lambda: G.skew(jnp.array([1.0, 2.0])),
        ValueError,
        r"skew expects .*\(\.\.\., 3\); got shape \(2,\)",
    ),
    "vee of a 2x2": (
        lambda: G.vee(jnp.eye(2)),
        ValueError,
        r"vee expects elements of shape \(\.\.\., 3, 3\)",
    ),
    "act_vectors of a vector element": (
        lambda: G.act_vectors(jnp.ones(3), jnp.ones(3)),
        ValueError,
        r"act_vectors \(g\) expects elements of shape",
    ),
}


@pytest.mark.parametrize("name", list(MISUSES))
def test_misuse_raises_a_clear_error(name):
    fn, error, match = MISUSES[name]
    with pytest.raises(error, match=match):
        fn()


def test_validate_is_public_and_checks_membership_eagerly_only():
    G.O3.validate(REFLECTION)  # a valid O(3) element
    with pytest.raises(ValueError, match="SO3.*reflection"):
        G.SO3.validate(REFLECTION)
    with pytest.raises(ValueError, match=r"Sn\(4\).*duplicate"):
        G.Sn(4).validate(jnp.array([0, 1, 1, 2]))
    with pytest.raises(ValueError, match=r"SL\(2\).*not 1"):
        G.SL(2).validate(2.0 * jnp.eye(2))
    # under jit only shapes are checked: no host round trip, no extra cost
    y = jax.jit(G.SO3.act)(REFLECTION, jnp.ones(3))
    np.testing.assert_allclose(y, jnp.array([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match=r"SO3.act \(g\) expects elements of shape"):
        jax.jit(G.SO3.act)(jnp.eye(2), jnp.ones(3))


def test_valid_elements_within_tolerance_are_accepted(key):
    # float32 products of many rotations drift by ~1e-6: still accepted
    R = G.SO3.sample(key, (64,)).astype(jnp.float32)
    R = R @ R @ R @ R
    G.SO3.act(R, jnp.ones(3))
    G.SO3.inverse(R)
    G.act_graph(jnp.array([2, 0, 1, 4, 3]), GRAPH)  # each node in its own graph
    # empty batches are fine
    G.SO3.act(jnp.zeros((0, 3, 3)), jnp.zeros((0, 3)))
