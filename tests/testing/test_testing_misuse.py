"""Misuse of eqjax.testing raises clear errors naming the argument (issue 12 §5)."""

import jax
import jax.numpy as jnp
import pytest

import eqjax as eq
from eqjax.testing import RegistryError

G = eq.groups
X = jnp.ones((4, 3))


def _err(**kw):
    args = dict(act_in=G.O3.act, act_out=G.O3.act, key=jax.random.key(0))
    return eq.testing.equivariance_error(lambda p: p, G.O3, X, **{**args, **kw})


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: _err(num_samples=2.7), TypeError, r"num_samples must be an int.*2\.7"),
        (lambda: _err(num_samples="4"), TypeError, r"num_samples must be an int"),
        (lambda: _err(num_samples=0), ValueError, r"num_samples must be >= 1"),
        (
            lambda: eq.testing.equivariance_error(
                lambda p: p, "O3", X, act_in=G.O3.act, key=jax.random.key(0)
            ),
            TypeError,
            r"group must be an eqjax.groups.Group, got str",
        ),
        (lambda: eq.testing.registered([3]), TypeError, r"areas must be names"),
        (lambda: eq.testing.registered("no_area"), RegistryError, r"unknown areas"),
        (lambda: eq.testing.random_cloud(0, 2.5), TypeError, r"random_cloud: n"),
        (lambda: eq.testing.random_cloud(0, 4, 0), ValueError, r"dim must be >= 1"),
        (lambda: eq.testing.random_graph(0, 3), TypeError, r"n_node must be a tuple"),
        (
            lambda: eq.testing.random_graph(0, (3, 2), n_edge=(1,)),
            ValueError,
            r"one entry per graph",
        ),
        (
            lambda: eq.testing.degenerate_cloud("nope"),
            ValueError,
            r"unknown degenerate",
        ),
    ],
)
def test_testing_misuse(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_registered_string_is_one_area():
    assert {r.name.split(".")[0] for r in eq.testing.registered("groups")} == {"groups"}


def test_invalid_sampled_elements_are_named_in_the_failure(key):
    """A custom sampler drawing non-group elements: the failure says so (the
    group's eager validate runs on the error path only)."""
    with pytest.raises(AssertionError, match=r"not valid elements of SO3.*orthogonal"):
        eq.testing.assert_equivariant(
            lambda p: p,
            G.SO3,
            X,
            act_in=G.SO3.act,
            act_out=lambda g, y: y,
            key=key,
            num_samples=2,
            sample=lambda k, s: 2.0 * G.SO3.sample(k, s),
        )
    with pytest.raises(ValueError, match="tol"):
        eq.testing.assert_invariant(
            jnp.sum, G.O3, X, act_in=G.O3.act, key=key, tol=float("nan")
        )
