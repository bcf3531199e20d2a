"""O_g(3) (``axis_subgroup``): group laws, membership, Haar sampling, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

G = eq.groups
AXIS = (1.0, 2.0, 2.0)


def test_axis_subgroup_group_laws_and_membership(key):
    grp = G.axis_subgroup(AXIS)
    u = jnp.array(AXIS) / 3.0
    exp, log = grp.exp, grp.log
    assert exp is not None and log is not None

    @jax.jit
    def program(key):
        k1, k2 = jax.random.split(key)
        g = grp.sample(k1, (3, 200))
        a, b, c = g[0], g[1], g[2]
        x = jax.random.normal(k2, (200, 3))
        e = grp.identity((200,))
        comp, inv = grp.compose, grp.inverse
        theta = jnp.linspace(-3.0, 3.0, 200)
        return {
            "assoc": (comp(comp(a, b), c), comp(a, comp(b, c))),
            "ident": (comp(e, a), a),
            "inv": (comp(a, inv(a)), e),
            "hom": (grp.act(comp(a, b), x), grp.act(a, grp.act(b, x))),
            "fix": (g @ u, jnp.broadcast_to(u, g.shape[:-1])),
            "orth": (
                jnp.swapaxes(g, -1, -2) @ g,
                jnp.broadcast_to(jnp.eye(3), g.shape),
            ),
            "exp_log": (log(exp(theta)), theta),
        }, jnp.linalg.det(g)

    with jax.enable_x64(True):
        checks, det = program(key)
        for name, (lhs, rhs) in checks.items():
            np.testing.assert_allclose(lhs, rhs, atol=1e-12, err_msg=name)
        # Haar on O(2): reflections (det -1) half the time
        assert abs(float(jnp.mean(det < 0)) - 0.5) < 0.1
        np.testing.assert_allclose(jnp.abs(det), 1.0, atol=1e-12)
        # eager membership: a reflection fixing the axis is accepted, a generic
        # rotation (control) is refused, and so is -I (a reflection moving the axis)
        refl = np.asarray(grp.sample(key, (400,)))
        refl = refl[np.linalg.det(refl) < 0][0]
        grp.validate(jnp.asarray(refl))
        with pytest.raises(ValueError, match="does not fix the axis"):
            grp.act(G.so3_exp(jnp.array([0.3, 0.0, 0.0])), jnp.ones((2, 3)))
        with pytest.raises(ValueError, match="does not fix the axis"):
            grp.validate(-jnp.eye(3))
        # the rotations-only subgroup refuses the reflection
        with pytest.raises(ValueError, match="det = -1"):
            G.axis_subgroup(AXIS, reflections=False).validate(jnp.asarray(refl))


def test_axis_subgroup_factory():
    assert G.axis_subgroup(AXIS, reflections=False) is G.axis_rotations(AXIS)
    assert G.axis_subgroup((0, 0, 2)) is G.axis_subgroup((0, 0, 1))
    assert G.axis_subgroup(AXIS).has_reflections
    assert not G.axis_subgroup(AXIS, reflections=False).has_reflections
    with pytest.raises(ValueError, match="non-zero"):
        G.axis_subgroup((0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="finite"):
        G.axis_subgroup((0.0, float("nan"), 1.0))
    with pytest.raises(ValueError, match="3-vector"):
        G.axis_subgroup((0.0, 1.0))
    with pytest.raises(TypeError, match="reflections must be a bool"):
        G.axis_subgroup(AXIS, reflections="yes")  # type: ignore[arg-type]
