import functools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from frames_util import (
    elements,
    equivariance_error,
    errors,
    invariance_error,
    mlp,
    normal,
    point_backbones,
)

import eqjax as eq

E3 = eq.groups.E3
ACT = eq.groups.cloud_action(E3)
RETAINING = (
    "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
    "glibc.malloc.trim_threshold=4294967296"
)


def test_weights_are_honoured():
    phi, _ = point_backbones(0, 5)
    x = normal(1, (5, 3))
    R = elements(eq.groups.O3, 3, 2)
    w = jnp.array([0.5, 0.3, 0.2])
    act = eq.groups.cloud_action(eq.groups.O3)
    manual = sum(w[i] * phi(x @ R[i]) for i in range(3))  # R_i^{-1} x = R_iᵀ x
    # the group said by the frame, or by frame_average's group= for a bare pair
    for frame, kw in [
        (lambda x: eq.frames.Frame(R, w, eq.groups.O3), {}),
        (lambda x: (R, w), {"group": eq.groups.O3}),
        (lambda x: eq.frames.Frame(R, w), {"inverse": lambda g: g.swapaxes(-1, -2)}),
    ]:
        f = jax.jit(eq.frames.frame_average(phi, frame, act_in=act, **kw))
        np.testing.assert_allclose(f(x), manual, rtol=1e-5)


def test_frames_say_their_group():
    """Every frame factory returns frames that carry their group (through jit and
    vmap as static metadata); string names are aliases of the groups."""
    G = eq.groups
    for name in ("O3", "SO3", "E3", "SE3", "SO2", "E(2)"):
        group = getattr(G, name) if hasattr(G, name) else G.En(2)
        for factory in (eq.frames.pca_frame, eq.frames.point_pair_frame):
            assert factory(group).group is group and factory(name).group is group
    assert eq.frames.plain_pca_frame("SE(5)").group is G.SEn(5)
    assert eq.frames.plain_pca_frame(G.On(2)).size == 4
    assert eq.frames.pca_frame(G.On(2)).size_for(5) == 4 + 2 * 5 + 8
    assert eq.frames.pca_frame("SE3").size_for(5) == 4 + 25 + 15 + 24
    assert eq.frames.point_pair_frame("O3").size_for(5) == 2 * 25 + 30 + 48
    x = normal(0, (2, 6, 3))
    batched = jax.jit(jax.vmap(eq.frames.plain_pca_frame(E3)))(x)
    assert batched.group is E3 and batched.elements.R.shape == (2, 8, 3, 3)
    elements_, weights = batched  # unpacks like the pair it holds
    assert weights.shape == (2, 8) and elements_ is batched.elements
    assert batched._replace(group=None).group is None
    perm = eq.frames.permutation_frame(None, np.array([0, 1, 0]), max_size=2)
    assert perm.group is G.Sn(3)
    A = jnp.asarray(np.roll(np.eye(5), 1, 0) + np.roll(np.eye(5), -1, 0))
    assert eq.frames.graph_frame(4)((jnp.ones((5, 1)), A)).group is G.Sn(5)
    dist = lambda x: jnp.linalg.norm(x, axis=-1)
    prod = eq.frames.product_frame(
        eq.frames.sort_frame(dist), eq.frames.plain_pca_frame(E3)
    )
    fp = jax.jit(prod)(x[0])
    assert fp.group.name == "Sn(6)×E3" and fp.weights.shape == (8,)
    ident = jax.jit(lambda e: fp.group.compose(e, fp.group.inverse(e)))(fp.elements)
    np.testing.assert_array_equal(ident.first, np.broadcast_to(np.arange(6), (8, 6)))
    np.testing.assert_allclose(
        ident.second.R, np.broadcast_to(np.eye(3), (8, 3, 3)), atol=1e-5
    )
    np.testing.assert_allclose(ident.second.t, np.zeros((8, 3)), atol=1e-5)
    # invert_elements goes through the group, never through dtype or shape
    np.testing.assert_array_equal(
        eq.frames.invert_elements(perm), G.permutation_inverse(perm.elements)
    )
    R = elements(G.O3, 2, 1)
    np.testing.assert_allclose(eq.frames.invert_elements(R, G.O3), R.swapaxes(-1, -2))
    M = jnp.array([[[2.0, 1.0], [0.0, 1.0]]])  # GL+(2): not its transpose
    np.testing.assert_allclose(
        eq.frames.invert_elements(M, G.GLPlus(2)), np.linalg.inv(M), rtol=1e-6
    )


def test_frames_without_a_group_raise():
    """No guessing of the inverse: a bare frame needs group= or inverse=."""
    phi, _ = point_backbones(0, 5)
    R = jnp.eye(3)[None]
    f = eq.frames.frame_average(phi, lambda x: (R, jnp.ones(1)), act_in=ACT)
    with pytest.raises(TypeError, match="group="):
        f(jnp.ones((5, 3)))
    with pytest.raises(TypeError, match="group="):
        eq.frames.invert_elements(jnp.array([2, 0, 1]))
    with pytest.raises(TypeError, match="Group"):
        eq.frames.pca_frame(3)
    for bad in (eq.groups.Sn(3), eq.groups.axis_rotations(), eq.groups.GLPlus(3)):
        with pytest.raises(ValueError, match="supports"):
            eq.frames.pca_frame(bad)
        with pytest.raises(ValueError, match="supports"):
            eq.frames.point_pair_frame(bad)
    with pytest.raises(ValueError, match="unknown group name"):
        eq.frames.point_pair_frame("SU2")


def test_cloud_action_lives_in_groups():
    assert eq.frames.cloud_action is eq.groups.cloud_action
    x = normal(0, (2, 5, 3))
    g = elements(E3, 2, 1)
    want = jnp.einsum("bij,bnj->bni", g.R, x) + g.t[:, None, :]
    np.testing.assert_allclose(ACT(g, x), want, rtol=1e-6)
    R = elements(eq.groups.O3, 1, 2)[0]
    np.testing.assert_allclose(
        eq.groups.cloud_action(eq.groups.O3)(R, x[0]), x[0] @ R.T, rtol=1e-6
    )
    with pytest.raises(ValueError, match="n, d"):
        ACT(g, x[0, 0])
    with pytest.raises(TypeError, match="Group"):
        eq.groups.cloud_action("E3")


def test_pytree_output_and_side_inputs():
    with jax.enable_x64(True):
        n = 6
        phi, psi = point_backbones(0, n, dtype=jnp.float64)

        def fn(x, charges):
            return {"energy": phi(x) * charges.sum(), "pos": psi(x) * charges[:, None]}

        def act_out(g, y):
            return {"energy": y["energy"], "pos": ACT(g, y["pos"])}

        f = eq.frames.frame_average(
            fn, eq.frames.plain_pca_frame(E3), act_in=ACT, act_out=act_out
        )
        x = normal(1, (n, 3), jnp.float64)
        q = jnp.array([1.0, -1, 1, 1, -1, 2], jnp.float64)
        gs = elements(E3, 4, 2, jnp.float64)
        assert equivariance_error(lambda x: f(x, q), ACT, act_out, gs, x) < 1e-9


def _irreps_average(irreps, act_out):
    """An E(3) frame average with IrrepsArray outputs, an input and elements."""
    n = 5
    net = mlp(0, n * 3, irreps.dim, dtype=jnp.float64)
    fn = lambda x: e3nn.IrrepsArray(irreps, net(x))
    f = eq.frames.frame_average(
        fn, eq.frames.plain_pca_frame(E3), act_in=ACT, act_out=act_out
    )
    return f, normal(1, (n, 3), jnp.float64), elements(E3, 4, 2, jnp.float64)


def test_irreps_output_invariant():
    """IrrepsArray outputs keep their type and irreps through the average."""
    with jax.enable_x64(True):
        irreps = e3nn.Irreps("2x0e + 1o + 2e")
        f, x, gs = _irreps_average(irreps, None)
        assert invariance_error(f, ACT, gs, x) < 1e-9
        out = jax.eval_shape(f, x)
        assert isinstance(out, e3nn.IrrepsArray) and out.irreps == irreps


@pytest.mark.slow
def test_irreps_output():
    """Equivariant IrrepsArray outputs (Wigner-D with parity) under E(3)."""
    with jax.enable_x64(True):
        act_out = lambda g, y: eq.groups.act_irreps(g.R, y)
        f, x, gs = _irreps_average(e3nn.Irreps("2x0e + 1o + 1e + 2e"), act_out)
        assert equivariance_error(f, ACT, act_out, gs, x) < 1e-9


def test_stochastic_frame_average_is_unbiased():
    phi, _ = point_backbones(0, 5)
    x = normal(1, (5, 3))
    R = elements(eq.groups.O3, 4, 2)
    w = jnp.array([0.1, 0.2, 0.3, 0.4])
    frame = lambda x: eq.frames.Frame(R, w, eq.groups.O3)
    act = eq.groups.cloud_action(eq.groups.O3)
    exact = jax.jit(eq.frames.frame_average(phi, frame, act_in=act))(x)
    sfa = eq.frames.stochastic_frame_average(phi, frame, act_in=act, num_samples=1)
    keys = jax.random.split(jax.random.key(3), 4000)
    ys = jax.jit(jax.vmap(lambda k: sfa(x, key=k)))(keys)
    se = jnp.std(ys, axis=0) / np.sqrt(len(keys))
    assert bool(jnp.all(jnp.abs(ys.mean(0) - exact) < 5 * se + 1e-6))
    assert float(jnp.max(jnp.std(ys, axis=0))) > 1e-3  # really random
    # Zero-weight elements are never drawn.
    wz = jnp.array([0.0, 1.0, 0.0, 0.0])
    sfz = eq.frames.stochastic_frame_average(
        phi, lambda x: (R, wz), act_in=act, num_samples=3, group=eq.groups.O3
    )
    y = jax.jit(lambda x, k: sfz(x, key=k))(x, jax.random.key(0))
    np.testing.assert_allclose(y, phi(x @ R[1]), rtol=1e-5)


def test_stochastic_is_exact_for_a_single_element_frame_and_jits():
    with jax.enable_x64(True):
        phi, _ = point_backbones(0, 7, dtype=jnp.float64)
        x = normal(1, (7, 3), jnp.float64)
        frame = eq.frames.plain_pca_frame(E3)
        sfa = jax.jit(
            eq.frames.stochastic_frame_average(phi, frame, act_in=ACT, num_samples=64)
        )
        y = sfa(x, key=jax.random.key(0))
        assert y.shape == (4,)
        full = jax.jit(eq.frames.frame_average(phi, frame, act_in=ACT))(x)
        assert float(jnp.max(jnp.abs(y - full))) < 0.5 * float(jnp.max(jnp.abs(full)))
        with pytest.raises(ValueError, match="num_samples"):
            eq.frames.stochastic_frame_average(phi, frame, act_in=ACT, num_samples=0)


def test_bad_frames():
    kw = dict(act_in=ACT, group=E3)
    f = eq.frames.frame_average(
        lambda x: x, lambda x: (jnp.eye(3)[None], jnp.ones((1, 1))), **kw
    )
    with pytest.raises(ValueError, match="weights"):
        f(jnp.ones((4, 3)))
    g = eq.frames.frame_average(lambda x: x, lambda x: jnp.eye(3), **kw)
    with pytest.raises(TypeError, match="Frame"):
        g(jnp.ones((4, 3)))
    h = eq.frames.frame_average(
        lambda x: x, lambda x: (jnp.eye(3)[None], jnp.ones(2)), **kw
    )
    with pytest.raises(ValueError, match="frame axis"):
        h(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="no frame"):
        eq.frames.frame_average(lambda x: x, None, **kw)(jnp.ones((4, 3)))
    # invalid weights: integer, not summing to one, negative, NaN
    avg = eq.frames.frame_average(lambda x: jnp.sum(x), None, **kw)
    R2 = jnp.stack([jnp.eye(3)] * 2)
    E2 = eq.groups.EuclideanElement(R2, jnp.zeros((2, 3)))
    for w, err, msg in [
        (jnp.ones(2, jnp.int32), TypeError, "floating"),
        (jnp.ones(2), ValueError, "sum to one"),
        (jnp.array([1.5, -0.5]), ValueError, ">= 0"),
        (jnp.array([jnp.nan, 0.5]), ValueError, "NaN"),
    ]:
        with pytest.raises(err, match=msg):
            avg(jnp.ones((4, 3)), frame=eq.frames.Frame(E2, w, E3))
    # an equivariant average whose backbone output act_out cannot act on
    bad = eq.frames.frame_average(
        lambda x: x.reshape(-1),
        eq.frames.plain_pca_frame(E3),
        act_in=ACT,
        act_out=ACT,
    )
    with pytest.raises(ValueError, match="backbone's output y of shape"):
        bad(jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32))


def test_product_frame_sn_times_e3():
    """S_n × E(3): an order-sensitive backbone becomes S_n- and E(3)-invariant."""
    with jax.enable_x64(True):
        n = 6
        phi, psi = point_backbones(0, n, dtype=jnp.float64)
        dist = lambda x: jnp.linalg.norm(x - x.mean(0, keepdims=True), axis=-1)
        frame = eq.frames.product_frame(
            eq.frames.sort_frame(dist), eq.frames.plain_pca_frame(E3)
        )
        act = eq.frames.product_act(eq.groups.act_set, ACT)
        f = eq.frames.frame_average(phi, frame, act_in=act)
        fe = eq.frames.frame_average(psi, frame, act_in=act, act_out=act)
        x = normal(1, (n, 3), jnp.float64)
        gs = eq.frames.ProductElement(
            elements(eq.groups.Sn(n), 4, 2), elements(E3, 4, 3, jnp.float64)
        )
        # Control: the E(3) frame alone leaves the order-sensitive backbone
        # non-invariant under relabelling.
        f_e3 = eq.frames.frame_average(phi, eq.frames.plain_pca_frame(E3), act_in=ACT)
        checks = {"inv": (f, None), "eqv": (fe, act), "control": (f_e3, None)}
        errs = errors(checks, act, gs, x)
        assert errs["inv"] < 1e-9 and errs["eqv"] < 1e-9
        assert errs["control"] > 1e-3


def _pointnet(key, width=16, dtype=jnp.float32):
    """A PointNet-style backbone ``(x (n, 3), params) -> (4,)`` with biases."""
    params = (
        normal(key, (3, width), dtype),
        normal(key + 1, (width, width), dtype) / 4,
        normal(key + 2, (width, 4), dtype) / 4,
    )

    def fn(x, p):
        h = jax.nn.softplus(x @ p[0] + 0.3)
        h = jnp.tanh(h @ p[1] - 0.1)  # the one tanh of the program
        return jnp.mean(h, axis=0) @ p[2]

    return fn, params


def _train_step_jaxpr(f, params, batch):
    """The jaxpr of a batched training gradient through ``f`` (abstract inputs)."""

    def loss(p, xs):
        return jnp.mean(jax.vmap(f, in_axes=(0, None))(xs, p) ** 2)

    xs = jax.ShapeDtypeStruct((batch, 32, 3), jnp.float32)
    return str(jax.make_jaxpr(jax.grad(loss))(params, xs))


@pytest.mark.parametrize("tunables", [None, RETAINING])
def test_default_is_one_vmap_whatever_the_environment(monkeypatch, tunables):
    """The default frame average is one vmap over the frame (the backbone's tanh
    appears once, batched over the 8 elements, no loop, no checkpoint) on every
    backend and batch size, and neither its program nor its value depends on
    environment variables (the allocator settings of the README's tip)."""
    fn, params = _pointnet(0)
    if tunables is None:
        monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    else:
        monkeypatch.setenv("GLIBC_TUNABLES", tunables)
    f = eq.frames.frame_average(fn, eq.frames.plain_pca_frame(E3), act_in=ACT)
    x = normal(1, (32, 3))
    jaxpr = str(jax.make_jaxpr(f)(x, params))
    assert jaxpr.count("tanh") == 1 and "f32[8,32,16] = tanh" in jaxpr
    for word in ("scan", "while", "remat", "checkpoint"):
        assert word not in jaxpr
    for batch in (4, 4096):  # the batch size never changes the schedule
        big = _train_step_jaxpr(f, params, batch)
        assert f"f32[{batch},8,32,16] = tanh" in big
        for word in ("scan", "while", "remat", "checkpoint"):
            assert word not in big
    y = jax.jit(f)(x, params)
    # identical to the environment-free reference, bit for bit
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    g = eq.frames.frame_average(fn, eq.frames.plain_pca_frame(E3), act_in=ACT)
    assert str(jax.make_jaxpr(g)(x, params)) == jaxpr
    np.testing.assert_array_equal(jax.jit(g)(x, params), y)


def test_chunks_at_least_the_frame_are_the_default_program():
    fn, params = _pointnet(0)
    x = normal(1, (32, 3))
    jaxprs = {
        c: str(
            jax.make_jaxpr(
                eq.frames.frame_average(
                    fn, eq.frames.plain_pca_frame(E3), act_in=ACT, chunk_size=c
                )
            )(x, params)
        )
        for c in (None, 8, 100, 3, 1)
    }
    assert jaxprs[8] == jaxprs[100] == jaxprs[None]
    assert "scan" in jaxprs[3] and "scan" in jaxprs[1]


_DOTS = jax.checkpoint_policies.dots_saveable
_SLOW = pytest.mark.slow
SCHEDULES = [
    # fast tier: lax.map, a checkpoint policy and the stored/recomputed split in
    # one program (the jaxpr tests below check the other programs' structure)
    pytest.param(1, _DOTS, 2, id="chunk1-policy-2stored"),
    pytest.param(1, True, 2, id="chunk1-remat-2stored", marks=_SLOW),
    pytest.param(3, _DOTS, 0, id="chunk3-policy", marks=_SLOW),
    pytest.param(1, False, 0, id="chunk1", marks=_SLOW),
    pytest.param(3, False, 0, id="chunk3", marks=_SLOW),
    pytest.param(3, True, 0, id="chunk3-remat", marks=_SLOW),
    pytest.param(None, True, 0, id="vmap-remat", marks=_SLOW),
    pytest.param(None, _DOTS, 0, id="vmap-policy", marks=_SLOW),
    pytest.param(1, True, 0, id="chunk1-remat", marks=_SLOW),
    pytest.param(None, True, 5, id="vmap-remat-5stored", marks=_SLOW),
    pytest.param(2, _DOTS, 1, id="chunk2-policy-1stored", marks=_SLOW),
]


def _psi(fn):
    """An equivariant head: per-point vectors from invariant features."""

    def psi(x, p):
        return x * fn(x, p)[0] + jnp.mean(x, axis=0)[None, :] * fn(x, p)[1]

    return psi


def _schedule_loss(**kw):
    fn, _ = _pointnet(0, dtype=jnp.float64)
    f = eq.frames.frame_average(
        _psi(fn), eq.frames.plain_pca_frame(E3), act_in=ACT, act_out=ACT, **kw
    )
    return lambda p, xs: jnp.sum(jnp.sin(jax.vmap(f, in_axes=(0, None))(xs, p)))


@functools.cache
def _default_value_and_grad():
    """Loss and parameter gradients of the default one-vmap schedule (float64)."""
    _, params = _pointnet(0, dtype=jnp.float64)
    x = normal(1, (4, 10, 3), jnp.float64)
    return params, x, jax.jit(jax.value_and_grad(_schedule_loss()))(params, x)


@pytest.mark.parametrize("chunk_size,remat,stored", SCHEDULES)
def test_schedules_change_the_program_not_the_values(chunk_size, remat, stored):
    """``chunk_size``, ``remat`` and ``stored_elements`` change the schedule, not
    the values: float64 outputs and parameter gradients of a batched,
    E(3)-equivariant frame average equal the one-vmap default, under jit."""
    with jax.enable_x64(True):
        params, x, (ref, gref) = _default_value_and_grad()
        loss = _schedule_loss(
            chunk_size=chunk_size, remat=remat, stored_elements=stored
        )
        val, g = jax.jit(jax.value_and_grad(loss))(params, x)
        np.testing.assert_allclose(val, ref, rtol=1e-12)
        for a, b in zip(g, gref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_stochastic_schedule_same_draws_same_values():
    """The stochastic average shares the schedules (one evaluation path with
    frame_average): same key, same values and gradients with a split
    checkpointed lax.map as with one vmap."""
    with jax.enable_x64(True):
        fn, params = _pointnet(0, dtype=jnp.float64)
        x = normal(1, (10, 3), jnp.float64)
        phi = lambda x, p: jnp.sum(fn(x, p))
        kw = dict(chunk_size=1, remat=True, stored_elements=1)
        s0, s1 = (
            eq.frames.stochastic_frame_average(
                phi, eq.frames.plain_pca_frame(E3), act_in=ACT, num_samples=3, **k
            )
            for k in ({}, kw)
        )
        k = jax.random.key(4)
        both = jax.jit(
            lambda p: (
                jax.value_and_grad(lambda p: s0(x, p, key=k))(p),
                jax.value_and_grad(lambda p: s1(x, p, key=k))(p),
            )
        )
        (v0, g0), (v1, g1) = both(params)
        np.testing.assert_allclose(v1, v0, rtol=1e-12)
        for a, b in zip(g1, g0, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_stored_elements_split_the_frame_loop():
    """``stored_elements=s`` with ``remat`` evaluates the first ``s`` elements in a
    loop without checkpoint and the rest in a checkpointed one (two loops, one
    remat); ``s = 0`` or ``s >= k`` is one loop, with or without remat; without
    remat it changes nothing."""
    fn, params = _pointnet(0)
    x = normal(1, (10, 3))

    def program(stored, remat=True):
        f = eq.frames.frame_average(
            fn,
            eq.frames.plain_pca_frame(E3),
            act_in=ACT,
            chunk_size=1,
            remat=remat,
            stored_elements=stored,
        )
        return str(jax.make_jaxpr(lambda p: f(x, p))(params))

    split, none, full = program(3), program(0), program(8)
    assert split.count("scan[") == 2 and split.count("remat2[") == 1
    assert none.count("scan[") == 1 and none.count("remat2[") == 1
    assert full.count("scan[") == 1 and full.count("remat2[") == 0
    assert program(3, remat=False) == program(0, remat=False)


@pytest.mark.parametrize(
    "option,bad,err",
    [
        ("chunk_size", 0, ValueError),
        ("chunk_size", -2, ValueError),
        ("chunk_size", 1.5, TypeError),
        ("chunk_size", True, TypeError),
        ("chunk_size", "auto", TypeError),  # the CPU planner is gone
        ("remat", None, TypeError),
        ("remat", 1, TypeError),
        ("remat", "auto", TypeError),
        ("stored_elements", -1, TypeError),
        ("stored_elements", 1.5, TypeError),
        ("stored_elements", True, TypeError),
        ("stored_elements", "auto", TypeError),
    ],
)
def test_bad_schedule_options_raise(option, bad, err):
    phi, _ = point_backbones(0, 5)
    frame = eq.frames.plain_pca_frame(E3)
    with pytest.raises(err, match=option):
        eq.frames.frame_average(phi, frame, act_in=ACT, **{option: bad})
    with pytest.raises(err, match=option):
        eq.frames.stochastic_frame_average(
            phi, frame, act_in=ACT, num_samples=2, **{option: bad}
        )


def test_public_contract_with_group_actions_directly():
    """Issue 4's contract: `act_in=eq.groups.E3.act` (no wrapper), under
    rank-promotion "raise", reflections and translations included."""
    with jax.enable_x64(True):
        key = jax.random.key(3)
        x = normal(3, (9, 3), np.float64) * np.array([[2.0, 1.0, 0.5]])
        w1 = normal(4, (27, 16), np.float64)
        w2 = normal(5, (16, 27), np.float64)
        b = jnp.asarray(np.linspace(-1.0, 1.0, 16))

        def mlp(p):  # non-odd: biases and softplus
            return jax.nn.softplus(p.reshape(-1) @ w1 + b) @ w2

        frame = eq.frames.plain_pca_frame(E3)
        phi = lambda p: jnp.sum(mlp(p) ** 2)[None]
        psi = lambda p: mlp(p).reshape(9, 3)
        f_inv = eq.frames.frame_average(phi, frame, act_in=E3.act)
        f_pts = eq.frames.frame_average(psi, frame, act_in=E3.act, act_out=E3.act)
        err = lambda f, act_out=None: eq.testing.equivariance_error(
            f, E3, x, act_in=E3.act, act_out=act_out, key=key, num_samples=8
        )
        # one program; the bare backbone is the control (not invariant)
        errs = jax.jit(lambda: (err(f_inv), err(f_pts, E3.act), err(phi)))()
        assert errs[0] < 1e-9 and errs[1] < 1e-9 and errs[2] > 1e-3
