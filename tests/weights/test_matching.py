"""Weight matching recovers planted permutations exactly and never lowers its
objective; barriers, merging, the STE and the singular-vector statistic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq
from eqjax.weights._testmodels import build

W = eq.weights


def _np_perm(spec, seed):
    rng = np.random.default_rng(seed)
    return {
        k: jnp.asarray(rng.permutation(n), jnp.int32) for k, n in spec.sizes.items()
    }


@pytest.mark.parametrize(
    "kind", ["mlp", "cnn", "cnn_flatten", "residual", "transformer"]
)
def test_weight_matching_recovers_a_planted_permutation_exactly(kind, key):
    m, _ = build(kind, seed=11)
    spec = W.permutation_spec(m)
    a = nnx.state(m)
    planted = _np_perm(spec, 3)
    b = W.apply_permutation(spec, planted, a)
    perm, objectives = W.weight_matching(key, spec, a, b, return_objectives=True)
    inv = W.invert_permutation(planted)
    for name in spec.sizes:
        np.testing.assert_array_equal(perm[name], inv[name], err_msg=name)
    assert W.l2_distance(W.apply_permutation(spec, perm, b), a) == 0.0
    assert np.all(np.diff(objectives) >= 0)


def test_matching_objective_never_decreases_on_independent_models(key):
    a = nnx.state(build("residual", seed=1)[0])
    m, _ = build("residual", seed=2)
    spec = W.permutation_spec(m)
    b = nnx.state(m)
    perm, objectives = W.weight_matching(key, spec, a, b, return_objectives=True)
    assert np.all(np.diff(objectives) >= 0) and objectives[-1] > objectives[0]
    assert W.matching_objective(spec, perm, a, b) == pytest.approx(objectives[-1])
    d0, d1 = W.l2_distance(a, b), W.l2_distance(a, W.apply_permutation(spec, perm, b))
    assert d1 < d0


def test_ste_matching_recovers_a_planted_permutation_and_flattens_the_barrier(key):
    """The straight-through estimator from the identity on a planted problem
    (``b`` is a permuted, slightly perturbed copy of ``a``; the loss is the
    distance to ``a``'s outputs): it returns the planted permutation's inverse,
    its midpoint loss and loss barrier fall far below no matching's, and the
    permutation it returns is the one with the lowest midpoint loss it saw."""
    m, x = build("mlp", seed=8)
    spec = W.permutation_spec(m)
    graph, a = nnx.split(m)
    rng = np.random.default_rng(1)
    noisy = jax.tree_util.tree_map(  # NumPy: no small programs compiled
        lambda v: np.asarray(v) + 0.02 * rng.standard_normal(v.shape).astype(v.dtype),
        a,
    )
    planted = _np_perm(spec, 5)
    b = W.apply_permutation(spec, planted, noisy)
    xs = jnp.asarray(rng.standard_normal((64, x.shape[1])), jnp.float32)
    target = jax.jit(lambda s: nnx.merge(graph, s)(xs))(a)
    mse = lambda s, xb: jnp.mean((nnx.merge(graph, s)(xb) - target) ** 2)  # noqa: E731
    ident = W.identity_permutation(spec)
    perm, losses = W.ste_matching(
        key, spec, a, b, mse, [xs] * 6, learning_rate=1e-2, init=ident
    )
    for name in spec.sizes:
        np.testing.assert_array_equal(perm[name], np.argsort(planted[name]), name)
    assert len(losses) == 6 and np.all(np.isfinite(losses))
    lam = jnp.linspace(0.0, 1.0, 9)

    @jax.jit
    def mid_and_barrier(p, q):
        c = W.interpolation_curve(lambda s: mse(s, xs), p, q, lam)
        return c[4], W.barrier(c, lam)

    ste = mid_and_barrier(a, W.apply_permutation(spec, perm, b))
    naive = mid_and_barrier(a, b)
    assert float(ste[0]) == pytest.approx(min(losses), rel=1e-4)  # the best seen
    assert float(ste[0]) < 0.05 * float(naive[0])
    assert float(ste[1]) < 0.05 * float(naive[1])
    assert W.matching_objective(spec, perm, a, b) > W.matching_objective(
        spec, ident, a, b
    )


def test_merge_three_models_undoes_their_permutations(key):
    m, _ = build("mlp", seed=4)
    spec = W.permutation_spec(m)
    a = nnx.state(m)
    rng = np.random.default_rng(0)
    noisy = [
        jax.tree_util.tree_map(
            lambda v: v + 0.01 * rng.standard_normal(v.shape).astype(np.float32), a
        )
        for _ in range(3)
    ]
    states = [
        W.apply_permutation(spec, _np_perm(spec, s), n) for s, n in enumerate(noisy)
    ]
    merged, perms = W.merge_models(key, spec, states)
    assert len(perms) == 3
    # the merge is a's function up to one common permutation
    ref = W.weight_matching(key, spec, merged, a)
    aligned = W.apply_permutation(spec, ref, a)
    assert W.l2_distance(merged, aligned) < 0.02 * W.l2_distance(
        a, jax.tree_util.tree_map(jnp.zeros_like, a)
    )
    with pytest.raises(ValueError, match="two or more"):
        W.merge_models(key, spec, states[:1])


def test_interpolation_curve_and_barriers():
    @jax.jit
    def run(lam):
        f = lambda s: {
            "loss": 3.0 - jnp.sum(s["w"] ** 2),
            "acc": jnp.sum(s["w"] ** 2) / 2,
        }
        curve = W.interpolation_curve(f, {"w": -jnp.ones(2)}, {"w": jnp.ones(2)}, lam)
        return curve, {
            "bump": W.barrier(curve["loss"], lam),
            "acc": W.barrier(curve["acc"], lam, higher_is_better=True),
            "convex": W.barrier(-curve["loss"], lam),
        }

    lam = jnp.linspace(0.0, 1.0, 5)
    curve, b = run(lam)
    np.testing.assert_allclose(curve["loss"], 3 - 2 * (2 * lam - 1) ** 2, rtol=1e-6)
    assert float(b["bump"]) == pytest.approx(2.0)
    assert float(b["acc"]) == pytest.approx(1.0)
    assert float(b["convex"]) == pytest.approx(0.0, abs=1e-6)  # no barrier
    with pytest.raises(ValueError, match="one-dimensional"):
        W.barrier(jnp.ones(3), jnp.ones(4))


def test_singular_vector_alignment_after_matching(key):
    m, _ = build("mlp", seed=6)
    spec = W.permutation_spec(m)
    a = nnx.state(m)
    b = W.apply_permutation(spec, _np_perm(spec, 1), a)
    wa = a["layers"][2]["kernel"][...]
    perm = W.weight_matching(key, spec, a, b)
    wb = b["layers"][2]["kernel"][...]
    wm = W.apply_permutation(spec, perm, b)["layers"][2]["kernel"][...]
    align = jax.jit(lambda u, v: W.singular_vector_alignment(u, v, 3))
    before, after = align(wa, wb), align(wa, wm)
    np.testing.assert_allclose(after, 1.0, atol=1e-5)
    assert float(before.mean()) < 0.9
    with pytest.raises(ValueError, match="k must be"):
        W.singular_vector_alignment(wa, wa, 7)


def test_weight_matching_rejects_mismatched_states(key):
    m, _ = build("mlp", seed=1)
    spec = W.permutation_spec(m)
    a = nnx.state(m)
    other = nnx.state(build("cnn", seed=1)[0])
    with pytest.raises(ValueError, match="state_b: the spec does not cover"):
        W.weight_matching(key, spec, a, other)
