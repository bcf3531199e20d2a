"""eqjax.testing: the checks bite on non-equivariant controls, and work under jit
and with batched and pytree inputs."""

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq
from eqjax.testing import assert_equivariant, assert_invariant, equivariance_error

G = eq.groups


def test_known_equivariant_near_zero(key):
    with jax.enable_x64(True):
        x = jax.random.normal(key, (7, 3))
        err = equivariance_error(
            lambda p: p - p.mean(0, keepdims=True),
            G.E3,
            x,
            act_in=G.E3.act,
            act_out=G.act_vectors,
            key=key,
        )
        assert float(err) < 1e-12


def test_planted_non_equivariant_control_is_large(key):
    x = jax.random.normal(key, (7, 3))
    shift = jnp.array([[1.0, 0.0, 0.0]])
    err = equivariance_error(
        lambda p: p + shift, G.O3, x, act_in=G.O3.act, act_out=G.O3.act, key=key
    )
    assert float(err) > 0.1
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(
            lambda p: p + shift, G.O3, x, act_in=G.O3.act, act_out=G.O3.act, key=key
        )


def test_reflection_sensitive_control(key):
    """A chirality detector is SO(3)- but not O(3)-invariant: sampling reflections bites."""
    with jax.enable_x64(True):
        x = jax.random.normal(key, (4, 3))
        chiral = lambda p: jnp.linalg.det(p[1:] - p[:1])
        assert_invariant(chiral, G.SO3, x, act_in=G.SO3.act, key=key)
        with pytest.raises(AssertionError, match="not invariant"):
            assert_invariant(chiral, G.O3, x, act_in=G.O3.act, key=key)


def test_permutation_control(key):
    x = jax.random.normal(key, (6, 2))
    assert_invariant(lambda s: jnp.sum(s, 0), G.Sn(6), x, act_in=G.Sn(6).act, key=key)
    err = equivariance_error(
        lambda s: s[0], G.Sn(6), x, act_in=G.Sn(6).act, act_out=None, key=key
    )
    assert float(err) > 0.1


def test_graph_message_passing_equivariant_and_control(key):
    g = eq.testing.random_graph(0, (5, 0, 3), pad_to=(10, 8, 4), dtype=np.float32)
    grp = G.graph_node_permutations(g)

    def mp(graph):
        msg = graph.nodes[graph.senders]
        return (
            jax.ops.segment_sum(msg, graph.receivers, graph.nodes.shape[0])
            + graph.nodes
        )

    def act_nodes(p, y):
        return G.act_set(p, y, axis=0)

    assert_equivariant(mp, grp, g, act_in=grp.act, act_out=act_nodes, key=key)
    bad = lambda graph: mp(graph) + jnp.arange(10.0)[:, None]
    with pytest.raises(AssertionError):
        assert_equivariant(bad, grp, g, act_in=grp.act, act_out=act_nodes, key=key)


def test_irreps_equivariance_and_parity_control(key):
    x = e3nn.normal("1o + 1o", key, ())

    def cross(v):
        a, b = v.array[:3], v.array[3:]
        return e3nn.IrrepsArray("1e", jnp.cross(a, b))

    def cross_wrong_parity(v):
        return e3nn.IrrepsArray("1o", cross(v).array)

    assert_equivariant(
        cross, G.O3, x, act_in=G.act_irreps, act_out=G.act_irreps, key=key
    )
    with pytest.raises(AssertionError):
        assert_equivariant(
            cross_wrong_parity,
            G.O3,
            x,
            act_in=G.act_irreps,
            act_out=G.act_irreps,
            key=key,
        )


def test_works_under_jit_and_batched_inputs(key):
    x = jax.random.normal(key, (3, 7, 3))  # a batch of clouds

    def f(x):
        return equivariance_error(
            lambda p: jnp.linalg.norm(p, axis=-1), G.O3, x, act_in=G.O3.act, key=key
        )

    assert float(jax.jit(f)(x)) < 1e-5
    errs = eq.testing.equivariance_errors(
        lambda p: p * 2.0,
        G.O3,
        x,
        act_in=G.O3.act,
        act_out=G.O3.act,
        key=key,
        num_samples=5,
    )
    assert errs.shape == (5,)


def test_zero_outputs_give_zero_error(key):
    x = jax.random.normal(key, (4, 3))
    err = equivariance_error(
        jnp.zeros_like, G.O3, x, act_in=G.O3.act, act_out=G.O3.act, key=key
    )
    assert float(err) == 0.0


def test_structure_mismatch_reported(key):
    x = jax.random.normal(key, (4, 3))
    with pytest.raises(ValueError, match="structure"):
        equivariance_error(
            lambda p: p, G.O3, x, act_in=G.O3.act, act_out=lambda g, y: (y, y), key=key
        )


def test_default_tolerances():
    assert eq.testing.default_tolerance(jnp.ones(2, jnp.float32)) == 1e-4
    with jax.enable_x64(True):
        assert eq.testing.default_tolerance(jnp.ones(2, jnp.float64)) == 1e-9


def test_failure_names_the_function_element_and_deviation(key):
    """The chex-based assertion says what failed: the name, the group, the worst
    sampled element (with its determinant) and where the largest deviation is."""
    x = jax.random.normal(key, (4, 3))
    chiral = lambda p: p * jnp.linalg.det(p[1:])  # bites under reflections only
    with pytest.raises(AssertionError) as info:
        assert_equivariant(
            chiral, G.O3, x, act_in=G.O3.act, act_out=G.O3.act, key=key, name="row.x"
        )
    msg = str(info.value)
    assert msg.startswith("row.x is not equivariant under O3")
    assert "worst element #" in msg and "det -1.000" in msg
    assert "largest deviation |Δ| =" in msg and "at output[" in msg
    # the same function passes on SO(3): the failure came from reflections
    assert_equivariant(chiral, G.SO3, x, act_in=G.SO3.act, act_out=G.SO3.act, key=key)


def test_shape_and_dtype_mismatch_and_dtype_claim(key):
    x = jax.random.normal(key, (4, 3))
    with pytest.raises(AssertionError, match="shape or dtype"):
        assert_equivariant(
            lambda p: p, G.O3, x, act_in=G.O3.act, act_out=lambda g, y: y[:2], key=key
        )
    with pytest.raises(AssertionError, match="output dtype"):
        assert_equivariant(
            lambda p: p.astype(jnp.float16),
            G.O3,
            x,
            act_in=G.O3.act,
            act_out=lambda g, y: y,
            key=key,
            dtype=jnp.float32,
            tol=1.0,
        )


def test_elementwise_check_bites_where_the_norm_hides_an_entry(key):
    """A deviation in one small entry of a large output passes a relative-norm
    check but not chex's elementwise one (atol scaled by the output's max)."""
    big = jnp.concatenate([jnp.full((999,), 1.0), jnp.zeros((1,))])

    def f(p):
        y = big * jnp.sum(p**2)  # invariant ...
        return y.at[-1].set(1e-3 * p[0, 0])  # ... except one entry

    x = jax.random.normal(key, (4, 3))
    err = float(equivariance_error(f, G.O3, x, act_in=G.O3.act, key=key))
    assert err < 1e-4  # the relative norm error alone would accept it
    with pytest.raises(AssertionError, match="not invariant"):
        assert_invariant(f, G.O3, x, act_in=G.O3.act, key=key, tol=1e-4, atol=1e-6)


def test_jit_false_and_fake_jit_run_eagerly(key):
    """``fn`` (traced once, under the check's ``vmap`` over ``[x, g·x, ...]``) sees
    batched concrete arrays when the check runs eagerly (``jit=False``, or under
    ``chex.fake_jit``), staged tracers when jitted."""
    import chex

    x = jax.random.normal(key, (4, 3))
    first_call_traced = []

    def staged(p):  # unwrap vmap's tracers (their batched value is ``.val``)
        while type(p).__name__ == "BatchTracer":
            p = p.val
        return isinstance(p, jax.core.Tracer)

    def check(**kw):
        seen = []

        def f(p):
            seen.append(staged(p))
            return 2.0 * p

        assert_equivariant(f, G.O3, x, act_in=G.O3.act, act_out=G.O3.act, key=key, **kw)
        first_call_traced.append(seen[0])

    check(jit=False)
    with chex.fake_jit():
        check()
    check()
    assert first_call_traced == [False, False, True]
