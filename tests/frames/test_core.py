import os

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from frames_util import equivariance_error, invariance_error, mlp, point_backbones

import eqjax as eq

ACT = eq.frames.cloud_action(eq.groups.E3)


def test_weights_are_honoured():
    phi, _ = point_backbones(jax.random.key(0), 5)
    x = jax.random.normal(jax.random.key(1), (5, 3))
    R = eq.groups.O3.sample(jax.random.key(2), (3,))
    w = jnp.array([0.5, 0.3, 0.2])
    frame = lambda x: eq.frames.Frame(R, w)
    f = eq.frames.frame_average(phi, frame, act_in=eq.frames.cloud_action(eq.groups.O3))
    manual = sum(w[i] * phi(x @ R[i]) for i in range(3))  # R_i^{-1} x = R_iᵀ x
    np.testing.assert_allclose(f(x), manual, rtol=1e-5)


def test_pytree_output_and_side_inputs():
    with jax.enable_x64(True):
        n = 6
        phi, psi = point_backbones(jax.random.key(0), n, dtype=jnp.float64)

        def fn(x, charges):
            return {"energy": phi(x) * charges.sum(), "pos": psi(x) * charges[:, None]}

        def act_out(g, y):
            return {"energy": y["energy"], "pos": ACT(g, y["pos"])}

        f = eq.frames.frame_average(
            fn, eq.frames.pca_frame("E3"), act_in=ACT, act_out=act_out
        )
        x = jax.random.normal(jax.random.key(1), (n, 3), jnp.float64)
        q = jnp.array([1.0, -1, 1, 1, -1, 2], jnp.float64)
        gs = eq.groups.E3.sample(jax.random.key(2), (4,), jnp.float64)
        assert equivariance_error(lambda x: f(x, q), ACT, act_out, gs, x) < 1e-9


def test_irreps_output():
    """Equivariant IrrepsArray outputs (Wigner-D with parity) under E(3)."""
    with jax.enable_x64(True):
        n = 5
        irreps = e3nn.Irreps("2x0e + 1o + 1e + 2e")
        net = mlp(jax.random.key(0), n * 3, irreps.dim, dtype=jnp.float64)
        fn = lambda x: e3nn.IrrepsArray(irreps, net(x))
        act_out = lambda g, y: eq.groups.act_irreps(g.R, y)
        f = eq.frames.frame_average(
            fn, eq.frames.pca_frame("E3"), act_in=ACT, act_out=act_out
        )
        x = jax.random.normal(jax.random.key(1), (n, 3), jnp.float64)
        gs = eq.groups.E3.sample(jax.random.key(2), (4,), jnp.float64)
        assert equivariance_error(f, ACT, act_out, gs, x) < 1e-9
        assert isinstance(f(x), e3nn.IrrepsArray)


def test_stochastic_frame_average_is_unbiased():
    phi, _ = point_backbones(jax.random.key(0), 5)
    x = jax.random.normal(jax.random.key(1), (5, 3))
    R = eq.groups.O3.sample(jax.random.key(2), (4,))
    w = jnp.array([0.1, 0.2, 0.3, 0.4])
    frame = lambda x: eq.frames.Frame(R, w)
    act = eq.frames.cloud_action(eq.groups.O3)
    exact = eq.frames.frame_average(phi, frame, act_in=act)(x)
    sfa = eq.frames.stochastic_frame_average(phi, frame, act_in=act, num_samples=1)
    keys = jax.random.split(jax.random.key(3), 4000)
    ys = jax.jit(jax.vmap(lambda k: sfa(x, key=k)))(keys)
    se = jnp.std(ys, axis=0) / np.sqrt(len(keys))
    assert bool(jnp.all(jnp.abs(ys.mean(0) - exact) < 5 * se + 1e-6))
    assert float(jnp.max(jnp.std(ys, axis=0))) > 1e-3  # really random
    # Zero-weight elements are never drawn.
    wz = jnp.array([0.0, 1.0, 0.0, 0.0])
    sfz = eq.frames.stochastic_frame_average(
        phi, lambda x: eq.frames.Frame(R, wz), act_in=act, num_samples=3
    )
    np.testing.assert_allclose(sfz(x, key=jax.random.key(0)), phi(x @ R[1]), rtol=1e-5)


def test_stochastic_is_exact_for_a_single_element_frame_and_jits():
    with jax.enable_x64(True):
        phi, _ = point_backbones(jax.random.key(0), 7, dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (7, 3), jnp.float64)
        frame = eq.frames.pca_frame("E3")
        sfa = jax.jit(
            eq.frames.stochastic_frame_average(phi, frame, act_in=ACT, num_samples=64)
        )
        y = sfa(x, key=jax.random.key(0))
        assert y.shape == (4,)
        full = eq.frames.frame_average(phi, frame, act_in=ACT)(x)
        assert float(jnp.max(jnp.abs(y - full))) < 0.5 * float(jnp.max(jnp.abs(full)))
        with pytest.raises(ValueError, match="num_samples"):
            eq.frames.stochastic_frame_average(phi, frame, act_in=ACT, num_samples=0)


def test_bad_frames():
    f = eq.frames.frame_average(
        lambda x: x, lambda x: (jnp.eye(3)[None], jnp.ones((1, 1))), act_in=ACT
    )
    with pytest.raises(ValueError, match="weights"):
        f(jnp.ones((4, 3)))
    g = eq.frames.frame_average(lambda x: x, lambda x: jnp.eye(3), act_in=ACT)
    with pytest.raises(TypeError, match="Frame"):
        g(jnp.ones((4, 3)))
    h = eq.frames.frame_average(
        lambda x: x, lambda x: (jnp.eye(3)[None], jnp.ones(2)), act_in=ACT
    )
    with pytest.raises(ValueError, match="frame axis"):
        h(jnp.ones((4, 3)))
    with pytest.raises(TypeError, match="inverse"):
        eq.frames.invert_elements(jnp.ones((3, 4)))


def test_product_frame_sn_times_e3():
    """S_n × E(3): an order-sensitive backbone becomes S_n- and E(3)-invariant."""
    with jax.enable_x64(True):
        n = 6
        phi, psi = point_backbones(jax.random.key(0), n, dtype=jnp.float64)
        dist = lambda x: jnp.linalg.norm(x - x.mean(0, keepdims=True), axis=-1)
        frame = eq.frames.product_frame(
            eq.frames.sort_frame(dist), eq.frames.pca_frame("E3")
        )
        act = eq.frames.product_act(eq.groups.act_set, ACT)
        f = eq.frames.frame_average(phi, frame, act_in=act)
        fe = eq.frames.frame_average(psi, frame, act_in=act, act_out=act)
        x = jax.random.normal(jax.random.key(1), (n, 3), jnp.float64)
        ks = jax.random.split(jax.random.key(2), 2)
        gs = eq.frames.ProductElement(
            eq.groups.Sn(n).sample(ks[0], (4,)),
            eq.groups.E3.sample(ks[1], (4,), jnp.float64),
        )
        assert invariance_error(f, act, gs, x) < 1e-9
        assert equivariance_error(fe, act, act, gs, x) < 1e-9
        # Control: the E(3) frame alone leaves the order-sensitive backbone
        # non-invariant under relabelling.
        f_e3 = eq.frames.frame_average(phi, eq.frames.pca_frame("E3"), act_in=ACT)
        assert invariance_error(f_e3, act, gs, x) > 1e-3


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 100])
def test_chunked_evaluation_matches_vmap(chunk_size):
    """``chunk_size`` (lax.map over the frame axis) changes the schedule, not the
    values: same outputs and parameter gradients as the one-vmap default, batched
    under jit/vmap, for invariant and equivariant outputs."""
    with jax.enable_x64(True):
        n = 6
        x = jax.random.normal(jax.random.key(1), (4, n, 3), jnp.float64)
        W = jax.random.normal(jax.random.key(2), (3, 3), jnp.float64)

        def psi(x, W):
            return jax.nn.softplus(x @ W + 0.3) - 0.2 * x

        def loss(W, xs, **kw):
            f = eq.frames.frame_average(
                psi, eq.frames.pca_frame("E3"), act_in=ACT, act_out=ACT, **kw
            )
            return jnp.sum(jnp.sin(jax.vmap(f, in_axes=(0, None))(xs, W)))

        ref, gref = jax.value_and_grad(lambda W, x: loss(W, x, chunk_size=None))(W, x)
        val, g = jax.jit(
            jax.value_and_grad(lambda W, x: loss(W, x, chunk_size=chunk_size))
        )(W, x)
        np.testing.assert_allclose(val, ref, rtol=1e-12)
        np.testing.assert_allclose(g, gref, rtol=1e-10, atol=1e-12)
        fc = eq.frames.frame_average(
            lambda x: psi(x, W),
            eq.frames.pca_frame("E3"),
            act_in=ACT,
            act_out=ACT,
            chunk_size=chunk_size,
        )
        gs = eq.groups.E3.sample(jax.random.key(3), (4,), jnp.float64)
        assert equivariance_error(fc, ACT, ACT, gs, x[0]) < 1e-9
        # stochastic: same draws, same values
        kw = dict(act_in=ACT, num_samples=5)
        phi = lambda x: jnp.sum(psi(x, W), axis=0)
        s0 = eq.frames.stochastic_frame_average(phi, eq.frames.pca_frame("E3"), **kw)
        s1 = eq.frames.stochastic_frame_average(
            phi, eq.frames.pca_frame("E3"), chunk_size=chunk_size, **kw
        )
        k = jax.random.key(4)
        np.testing.assert_allclose(s1(x[0], key=k), s0(x[0], key=k), rtol=1e-12)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_chunk_size_raises(bad):
    phi, _ = point_backbones(jax.random.key(0), 5)
    err = (
        ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    )
    with pytest.raises(err, match=str(bad)):
        eq.frames.frame_average(
            phi, eq.frames.pca_frame("E3"), act_in=ACT, chunk_size=bad
        )
    with pytest.raises(err, match=str(bad)):
        eq.frames.stochastic_frame_average(
            phi, eq.frames.pca_frame("E3"), act_in=ACT, num_samples=2, chunk_size=bad
        )


def test_public_contract_with_group_actions_directly():
    """Issue 4's contract: `act_in=eq.groups.E3.act` (no wrapper), under
    rank-promotion "raise", reflections and translations included."""
    with jax.enable_x64(True):
        key = jax.random.key(3)
        x = jax.random.normal(key, (9, 3)) * jnp.array([[2.0, 1.0, 0.5]])
        w1 = jax.random.normal(jax.random.fold_in(key, 1), (27, 16))
        w2 = jax.random.normal(jax.random.fold_in(key, 2), (16, 27))
        b = jnp.linspace(-1.0, 1.0, 16)

        def mlp(p):  # non-odd: biases and softplus
            return jax.nn.softplus(p.reshape(-1) @ w1 + b) @ w2

        frame = eq.frames.pca_frame("E3")
        phi = lambda p: jnp.sum(mlp(p) ** 2)[None]
        psi = lambda p: mlp(p).reshape(9, 3)
        f_inv = eq.frames.frame_average(phi, frame, act_in=eq.groups.E3.act)
        f_pts = eq.frames.frame_average(
            psi, frame, act_in=eq.groups.E3.act, act_out=eq.groups.E3.act
        )
        err_inv = eq.testing.assert_invariant(
            f_inv, eq.groups.E3, x, act_in=eq.groups.E3.act, key=key
        )
        err_eq = eq.testing.assert_equivariant(
            f_pts,
            eq.groups.E3,
            x,
            act_in=eq.groups.E3.act,
            act_out=eq.groups.E3.act,
            key=key,
        )
        assert err_inv < 1e-9 and err_eq < 1e-9
        # control: the backbone alone is not invariant
        with pytest.raises(AssertionError):
            eq.testing.assert_invariant(
                phi, eq.groups.E3, x, act_in=eq.groups.E3.act, key=key
            )


def _pointnet(key, width=16, dtype=jnp.float32):
    """A PointNet-style backbone ``(x (n, 3), params) -> (4,)`` with biases."""
    k1, k2, k3 = jax.random.split(key, 3)
    params = (
        jax.random.normal(k1, (3, width), dtype),
        jax.random.normal(k2, (width, width), dtype) / 4,
        jax.random.normal(k3, (width, 4), dtype) / 4,
    )

    def fn(x, p):
        h = jax.nn.softplus(x @ p[0] + 0.3)
        h = jax.nn.softplus(h @ p[1] - 0.1)
        return jnp.mean(h, axis=0) @ p[2]

    return fn, params


def test_plan_frame_schedule_rules():
    plan = eq.frames.plan_frame_schedule
    MiB = 2**20
    # all k calls fit: one vmap
    assert plan(8, 64, 40_000, budget_bytes=32 * MiB) == (None, False)
    # no batch-dependent residuals: one vmap
    assert plan(8, 10**6, 0) == (None, False)
    # stored residuals fit, the vmap's temporaries do not: lax.map, no remat
    assert plan(8, 128, 40_000, budget_bytes=32 * MiB) == (1, False)
    # nothing fits: checkpointed lax.map (then plan_stored_elements)
    assert plan(8, 256, 40_000, budget_bytes=32 * MiB) == (1, True)
    assert plan(8, 4096, 40_000) == (1, True)
    # each choice's estimated working set is within budget, the previous one's not
    for B in (64, 128):
        c, remat = plan(8, B, 40_000, budget_bytes=32 * MiB)
        step = 1.3 * B * 40_000
        est = 8 * step if c is None else 4 * B * 40_000 + step
        assert not remat and est <= 32 * MiB


def test_plan_stored_elements_rules():
    """The partly checkpointed schedule stores as many elements' residuals as its
    estimate fits in the budget, and one more would not fit."""
    stored = eq.frames.plan_stored_elements
    MiB = 2**20
    assert stored(8, 256, 42_000) == 2
    assert stored(8, 256, 42_000, budget_bytes=16 * MiB) == 0
    assert stored(8, 4096, 40_000) == 0  # not even one call's working set fits
    assert stored(8, 256, 0) == 8  # no batch-dependent residuals: keep all
    assert stored(4, 8, 1_000) == 4  # never more than the frame
    for B in (128, 256, 512):
        for r in (10_000, 40_000):
            s = stored(8, B, r, budget_bytes=32 * MiB)
            assert s == 0 or (0.6 * s + 1.4) * B * r <= 32 * MiB
            assert s == 8 or (0.6 * (s + 1) + 1.4) * B * r > 32 * MiB


def test_allocator_detection_and_auto_budget():
    """The auto budget is glibc's 32 MiB mmap ceiling unless the environment makes
    malloc retain large blocks (one arena, no mmap, a large trim threshold: all
    three needed), via GLIBC_TUNABLES or the legacy MALLOC_* variables."""
    import platform

    from eqjax.frames import _core

    retains = eq.frames.host_allocator_retains_memory
    budget = eq.frames.auto_budget_bytes
    MiB = 2**20
    good = {"GLIBC_TUNABLES": eq.frames.RETAINING_GLIBC_TUNABLES}
    legacy = {
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_MAX_": "0",
        "MALLOC_TRIM_THRESHOLD_": str(2**31),
    }
    assert not retains({}) and budget({}) == _core.AUTO_BUDGET_BYTES == 32 * MiB
    partial = [
        "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0",  # trimmed on free
        "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296",
        "glibc.malloc.arena_max=2:glibc.malloc.mmap_max=0:"
        "glibc.malloc.trim_threshold=4294967296",
        "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
        "glibc.malloc.trim_threshold=1048576",  # too small to keep a program's
        "glibc.malloc.arena_max=one:glibc.malloc.mmap_max=0:"
        "glibc.malloc.trim_threshold=4294967296",  # unparsable
        "glibc.malloc.hugetlb=1",
    ]
    for t in partial:
        assert not retains({"GLIBC_TUNABLES": t}), t
        assert budget({"GLIBC_TUNABLES": t}) == 32 * MiB, t
    if platform.libc_ver()[0] != "glibc":
        assert not retains(good) and budget(good) == 32 * MiB
        return
    assert retains(good) and retains(legacy)
    phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert budget(good) == max(32 * MiB, min(2**32, int(phys / 4)))
    assert budget(legacy) == max(32 * MiB, min(2**31, int(phys / 4)))
    # the planner turns the larger budget into one vmap for the benchmark's sizes
    assert eq.frames.plan_frame_schedule(8, 256, 42_000, budget_bytes=budget(good)) == (
        None,
        False,
    )


def test_auto_schedule_reads_the_environment(monkeypatch):
    """``chunk_size="auto"`` reads the allocator settings at trace time: a batch
    that gets checkpointed chunks under glibc's defaults gets one vmap in a
    process whose malloc retains memory (abstract tracing only)."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc malloc settings only")
    calls = _spy_plans(monkeypatch)
    fn, params = _pointnet(jax.random.key(0))
    f = eq.frames.frame_average(fn, eq.frames.pca_frame("E3"), act_in=ACT)

    def trace(p, xs):  # a fresh function per trace (make_jaxpr caches traces)
        def g(p, xs):
            return jax.grad(lambda p: jnp.mean(jax.vmap(f, (0, None))(xs, p) ** 2))(p)

        return str(jax.make_jaxpr(g)(p, xs))

    xs = jax.ShapeDtypeStruct((2048, 32, 3), jnp.float32)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    for v in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(v, raising=False)
    assert "scan" in trace(params, xs)
    assert calls[-1][3] == (1, True)
    monkeypatch.setenv("GLIBC_TUNABLES", eq.frames.RETAINING_GLIBC_TUNABLES)
    jaxpr = trace(params, xs)
    assert calls[-1][3] == (None, False)
    assert "scan" not in jaxpr and "remat" not in jaxpr


def _spy_plans(monkeypatch):
    from eqjax.frames import _core

    calls = []
    orig = _core.plan_frame_schedule

    def spy(k, batch, r, **kw):
        out = orig(k, batch, r, **kw)
        calls.append((k, batch, r, out))
        return out

    monkeypatch.setattr(_core, "plan_frame_schedule", spy)
    return calls


def test_auto_schedule_reads_batch_and_residuals(monkeypatch):
    """``chunk_size="auto"`` sees the product of the vmap sizes around the averaged
    function (also under grad and nested vmap) and the backbone's residual bytes,
    and turns the plan into the program: vmap at a small batch, checkpointed
    lax.map at a large one (abstract tracing only)."""
    calls = _spy_plans(monkeypatch)
    fn, params = _pointnet(jax.random.key(0))
    f = eq.frames.frame_average(fn, eq.frames.pca_frame("E3"), act_in=ACT)

    def loss(p, xs):
        return jnp.mean(jax.vmap(f, in_axes=(0, None))(xs, p) ** 2)

    def program(B, *batch):
        xs = jax.ShapeDtypeStruct((*batch, B, 32, 3), jnp.float32)
        g = jax.grad(loss)
        for _ in batch:
            g = jax.vmap(g, in_axes=(None, 0))
        return str(jax.make_jaxpr(jax.jit(g))(params, xs))

    small = program(4)
    assert calls[-1][:2] == (8, 4) and calls[-1][3] == (None, False)
    # residuals: 2 softplus layers of width 16 over 32 points, float32
    r = calls[-1][2]
    assert 2 * 32 * 16 * 4 <= r <= 8 * 32 * 16 * 4
    assert "scan" not in small and "remat" not in small
    big = program(2048)
    assert calls[-1][:2] == (8, 2048) and calls[-1][3][1] is True
    assert "scan" in big
    program(8, 3, 5)  # nested vmap around grad: 3 * 5 * 8 inputs
    assert calls[-1][1] == 120
    # grad w.r.t. the input inside vmap (forces): the JVP tracer is looked through
    fx = jax.vmap(jax.grad(lambda x: jnp.sum(f(x, params))))
    jax.make_jaxpr(fx)(jax.ShapeDtypeStruct((6, 32, 3), jnp.float32))
    assert calls[-1][1] == 6
    # an explicit chunk_size is never overridden
    calls.clear()
    f = eq.frames.frame_average(
        fn, eq.frames.pca_frame("E3"), act_in=ACT, chunk_size=None
    )
    assert "scan" not in program(2048) and not calls


def test_auto_schedule_falls_back_to_vmap_when_the_probe_fails(monkeypatch):
    """A backbone without a VJP (a host callback) cannot be probed: auto uses one
    vmap and the forward values are unchanged."""
    calls = _spy_plans(monkeypatch)

    def host_fn(x):
        return jax.pure_callback(
            lambda a: np.tanh(a).sum(0) + 0.3,
            jax.ShapeDtypeStruct((3,), x.dtype),
            x,
            vmap_method="sequential",
        )

    fr = eq.frames.pca_frame("E3")
    x = jax.random.normal(jax.random.key(1), (5, 7, 3))
    auto = jax.vmap(eq.frames.frame_average(host_fn, fr, act_in=ACT))(x)
    ref = jax.vmap(eq.frames.frame_average(host_fn, fr, act_in=ACT, chunk_size=None))
    np.testing.assert_allclose(auto, ref(x), rtol=1e-6)
    assert not calls


@pytest.mark.parametrize(
    "chunk_size,remat",
    [
        (None, True),
        (1, True),
        (3, True),
        (1, jax.checkpoint_policies.dots_saveable),
        ("auto", "auto"),  # forced to checkpointed chunks by a tiny budget
        (1, (True, 2)),  # the first 2 elements stored, the rest checkpointed
        (None, (True, 5)),
        (2, (jax.checkpoint_policies.dots_saveable, 1)),
    ],
)
def test_remat_matches_stored_residuals(monkeypatch, chunk_size, remat):
    """``remat`` (full or with a policy) and the auto schedule change the
    schedule, not the values: float64 outputs and parameter gradients equal the
    one-vmap evaluation, and exact E(3) equivariance holds, batched under jit."""
    from eqjax.frames import _core

    calls = _spy_plans(monkeypatch)
    monkeypatch.setattr(_core, "AUTO_BUDGET_BYTES", 1)
    remat, stored = remat if isinstance(remat, tuple) else (remat, "auto")
    with jax.enable_x64(True):
        fn, params = _pointnet(jax.random.key(0), dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (4, 10, 3), jnp.float64)

        def psi(x, p):  # equivariant: per-point vectors from invariant features
            return x * fn(x, p)[0] + jnp.mean(x, axis=0)[None, :] * fn(x, p)[1]

        def loss(p, xs, **kw):
            f = eq.frames.frame_average(
                psi, eq.frames.pca_frame("E3"), act_in=ACT, act_out=ACT, **kw
            )
            return jnp.sum(jnp.sin(jax.vmap(f, in_axes=(0, None))(xs, p)))

        ref, gref = jax.value_and_grad(lambda p, x: loss(p, x, chunk_size=None))(
            params, x
        )
        val, g = jax.jit(
            jax.value_and_grad(
                lambda p, x: loss(
                    p, x, chunk_size=chunk_size, remat=remat, stored_elements=stored
                )
            )
        )(params, x)
        np.testing.assert_allclose(val, ref, rtol=1e-12)
        for a, b in zip(g, gref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        if chunk_size == "auto":
            assert calls and calls[-1][3] == (1, True)
        f = eq.frames.frame_average(
            lambda x: psi(x, params),
            eq.frames.pca_frame("E3"),
            act_in=ACT,
            act_out=ACT,
            chunk_size=chunk_size,
            remat=remat,
            stored_elements=stored,
        )
        gs = eq.groups.E3.sample(jax.random.key(3), (4,), jnp.float64)
        assert equivariance_error(jax.jit(f), ACT, ACT, gs, x[0]) < 1e-9
        # stochastic: same draws, same values and gradients
        kw = dict(act_in=ACT, num_samples=3)
        phi = lambda x, p: jnp.sum(fn(x, p))
        s0 = eq.frames.stochastic_frame_average(
            phi, eq.frames.pca_frame("E3"), chunk_size=None, **kw
        )
        s1 = eq.frames.stochastic_frame_average(
            phi,
            eq.frames.pca_frame("E3"),
            chunk_size=chunk_size,
            remat=remat,
            stored_elements=stored,
            **kw,
        )
        k = jax.random.key(4)
        v0, g0 = jax.value_and_grad(lambda p: s0(x[0], p, key=k))(params)
        v1, g1 = jax.jit(jax.value_and_grad(lambda p: s1(x[0], p, key=k)))(params)
        np.testing.assert_allclose(v1, v0, rtol=1e-12)
        for a, b in zip(g1, g0, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [None, 1, "always"])
def test_bad_remat_raises(bad):
    phi, _ = point_backbones(jax.random.key(0), 5)
    with pytest.raises(TypeError, match="remat"):
        eq.frames.frame_average(phi, eq.frames.pca_frame("E3"), act_in=ACT, remat=bad)
    with pytest.raises(TypeError, match="remat"):
        eq.frames.stochastic_frame_average(
            phi, eq.frames.pca_frame("E3"), act_in=ACT, num_samples=2, remat=bad
        )


def test_stored_elements_split_the_frame_loop():
    """``stored_elements=s`` with ``remat`` evaluates the first ``s`` elements in a
    loop without checkpoint and the rest in a checkpointed one (two loops, one
    remat); ``s = 0`` or ``s >= k`` is one loop, with or without remat."""
    fn, params = _pointnet(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (10, 3))

    def program(stored):
        f = eq.frames.frame_average(
            fn,
            eq.frames.pca_frame("E3"),
            act_in=ACT,
            chunk_size=1,
            remat=True,
            stored_elements=stored,
        )
        return str(jax.make_jaxpr(lambda p: f(x, p))(params))

    split, none, full = program(3), program(0), program(8)
    assert split.count("scan[") == 2 and split.count("remat2[") == 1
    assert none.count("scan[") == 1 and none.count("remat2[") == 1
    assert full.count("scan[") == 1 and full.count("remat2[") == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "some"])
def test_bad_stored_elements_raises(bad):
    phi, _ = point_backbones(jax.random.key(0), 5)
    with pytest.raises(TypeError, match="stored_elements"):
        eq.frames.frame_average(
            phi, eq.frames.pca_frame("E3"), act_in=ACT, stored_elements=bad
        )
    with pytest.raises(TypeError, match="stored_elements"):
        eq.frames.stochastic_frame_average(
            phi,
            eq.frames.pca_frame("E3"),
            act_in=ACT,
            num_samples=2,
            stored_elements=bad,
        )
