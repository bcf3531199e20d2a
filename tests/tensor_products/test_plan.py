"""The planning module: ``method="auto"`` per backend, the s2grid layout and the
cache-derived blocking (on this host, on forced caches, and from a fake sysfs)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gaunt_helpers import direct_gaunt, rand, sh_irreps

from eqjax.tensor_products import _kernels as K
from eqjax.tensor_products import _plan as P
from eqjax.tensor_products import (
    choose_method,
    gaunt_tensor_product,
    gaunt_vector_product,
)

SMALL = P.CacheSizes(l1d=32 << 10, l2=512 << 10, l3=16 << 20)
BIG = P.CacheSizes(l1d=48 << 10, l2=2 << 20, l3=32 << 20)


def test_auto_rule_per_backend(monkeypatch):
    table = P.cost_model()
    assert "cpu" in table
    for Ls, Lo in [([1, 1], 1), ([8, 8], 8), ([16, 16], 16)]:
        assert choose_method(Ls, Lo, 8192, backend="cpu") in table["cpu"]["times"]["24"]
        for backend in ("gpu", "tpu", "cuda", "rocm"):
            assert choose_method(Ls, Lo, 8192, backend=backend) == "s2grid"
    # a backend with its own table uses it (not the CPU one)
    fake = dict(table, gpu={"device": "x", "times": {"3": {"fourier_fft": 1.0}}})
    monkeypatch.setattr(P, "cost_model", lambda: fake)
    assert choose_method([1, 1], 1, 1, backend="gpu") == "fourier_fft"
    assert choose_method([1, 1], 1, 1, backend="tpu") == "s2grid"


def test_auto_follows_the_plan_on_this_backend(monkeypatch):
    """``method="auto"`` runs what choose_method says (here forced to fourier_fft)."""
    calls = []

    def spy(Ls, lmax_out, n, backend=None):
        calls.append((tuple(Ls), lmax_out, n))
        return "fourier_direct"

    monkeypatch.setattr(P, "choose_method", spy)
    with jax.enable_x64(True):
        x = rand(sh_irreps(1, mul=3), 0, (2,))
        y = jax.jit(lambda a: gaunt_tensor_product(a, a, normalization="integral"))(x)
        ref = direct_gaunt([x.mul_to_axis().array] * 2, [1, 1], 2)
        np.testing.assert_allclose(y.mul_to_axis().array, ref, atol=1e-12)
        assert calls == [((1, 1), 2, 6)]
        # the vector product asks the same rule (fourier_direct is routed to FFT)
        out = jax.eval_shape(lambda: gaunt_vector_product(x, x))
    assert calls[-1] == ((1, 1), 1, 6) and out.shape == (2, 3 * 4)


def test_layouts_grow_with_L():
    layouts = [P.s2grid_layout([L, L], L) for L in (1, 4, 6, 8, 10, 16, 40)]
    assert layouts == ["dense"] * 2 + ["hemisphere"] + ["quadrant"] * 3 + ["factored"]


def test_blocking_follows_the_cache():
    """Blocks are powers of two whose grids fill about L2_SHARE of L2; a smaller L2 (an
    emulated smaller-cache CPU) gives proportionally smaller blocks, float64 half
    the signals of float32, and a batch that fits one block is not blocked."""
    for L in (4, 8, 12):
        big = P.s2grid_plan([L, L], L, 8192, caches=BIG).chunk
        small = P.s2grid_plan([L, L], L, 8192, caches=SMALL).chunk
        assert big & (big - 1) == 0 and small & (small - 1) == 0
        assert small == max(big // 4, P.MIN_CHUNK)
        per_block = P.LIVE_GRIDS * P.grid_points([L, L], L) * 4 * big
        assert BIG.l2 * P.L2_SHARE / 2 < per_block <= BIG.l2 * P.L2_SHARE
        f64 = P.s2grid_plan([L, L], L, 8192, itemsize=8, caches=BIG).chunk
        assert f64 == max(big // 2, P.MIN_CHUNK)
    assert P.s2grid_plan([8, 8], 8, 64, caches=BIG).chunk == 0
    assert P.s2grid_plan([8, 8], 8, 8192, caches=BIG).layout == "quadrant"
    # the default is this host's caches
    assert P.s2grid_plan([8, 8], 8, 8192) == P.s2grid_plan(
        [8, 8], 8, 8192, caches=P.cache_sizes()
    )


def _fake_cache_dir(root, entries):
    for i, (level, kind, size) in enumerate(entries):
        d = root / f"index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    return root


def test_cache_sizes_from_sysfs_and_fallback(tmp_path, monkeypatch):
    amd = _fake_cache_dir(
        tmp_path / "amd",
        [(1, "Data", "64K"), (1, "Instruction", "32K"), (2, "Unified", "1024K")]
        + [(3, "Unified", "32768K")],
    )
    assert P._read_caches(amd) == P.CacheSizes(64 << 10, 1 << 20, 32 << 20)
    # no sysfs and no sysconf: the documented fallback, level by level
    monkeypatch.setattr(P.os, "sysconf", lambda name: 0)
    assert P._read_caches(tmp_path / "missing") == P.FALLBACK_CACHES
    partial = _fake_cache_dir(tmp_path / "partial", [(2, "Unified", "2048K")])
    got = P._read_caches(partial)
    assert got.l2 == 2 << 20 and got.l1d == P.FALLBACK_CACHES.l1d
    broken = _fake_cache_dir(tmp_path / "broken", [(2, "Unified", "lots")])
    assert P._read_caches(broken) == P.FALLBACK_CACHES
    host = P.cache_sizes()
    assert all(v > 0 for v in host)


def test_planned_blocking_is_exact():
    """The planned (blocked, ``lax.map`` with a remainder block) product and its
    gradient equal the unblocked ones (float64)."""
    L, n = 2, 150
    tiny = P.CacheSizes(1 << 10, 16 << 10, 1 << 20)
    plan = P.s2grid_plan([L, L], L, n, 8, caches=tiny)
    assert 0 < plan.chunk < n and n % plan.chunk

    def loss(a, b, chunk):
        y = K.product_s2grid([a, b], [L, L], L, layout=plan.layout, chunk=chunk)
        return jnp.sum(jnp.sin(y))

    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), static_argnums=2)
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        c1 = jnp.asarray(rng.normal(size=(n, 9)))
        c2 = jnp.asarray(rng.normal(size=(n, 9)))
        (v, g), (v0, g0) = vg(c1, c2, plan.chunk), vg(c1, c2, 0)
    np.testing.assert_allclose(v, v0, atol=1e-10, rtol=0)
    for a, b in zip(g, g0, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)


def _gaunt_s2grid(x):
    return gaunt_tensor_product(x, x, method="s2grid", normalization="integral")


def test_measured_plan_is_the_fastest_and_remembered(tmp_path, monkeypatch):
    """The planner keeps the fastest timed candidate (two rounds: every layout and
    signal axis at the rule's block, then the winner's other blocks), times a
    shape once per process, reads it back from the plan file in a new process
    (memo cleared), times again when the file is corrupt (with a warning), and
    uses the rule when told to, off CPU, or for small products."""
    Ls, Lo, n = [8, 8], 8, 8192
    cands = P.s2grid_candidates(Ls, Lo, n, 4)
    rule = P.s2grid_plan(Ls, Lo, n, 4)
    assert cands[0] == rule and len(cands) == len(set(cands)) >= 12
    # the fastest: unblocked, signals on the minor axis, another layout than the rule
    target = next(
        p for p in cands if p.chunk == 0 and p.signals_last and p.layout != rule.layout
    )
    calls = []

    def fake_measure(Ls_, Lo_, n_, dtype, plans, **kw):
        calls.append(tuple(plans))
        same_kind = lambda p: (
            (p.layout, p.signals_last)
            == (  # noqa: E731
                target.layout,
                target.signals_last,
            )
        )
        return {p: 1.0 - 0.3 * same_kind(p) - 0.2 * (p == target) for p in plans}

    monkeypatch.setattr(P, "measure_s2grid_plans", fake_measure)
    path = tmp_path / "plans.json"
    try:
        P.set_s2grid_planning("measure", plan_file=path)
        assert P.planned_s2grid(Ls, Lo, n, "float32", backend="cpu") == target
        assert P.planned_s2grid(Ls, Lo, n, "float32", backend="cpu") == target
        first, second = calls  # two rounds, once
        assert first[0] == rule and {p.chunk for p in first} == {rule.chunk}
        assert target in second and set(first) | set(second) <= set(cands)
        assert len(first) + len(second) < len(cands)
        P.set_s2grid_planning("measure", plan_file=path)  # a new process
        assert P.planned_s2grid(Ls, Lo, n, "float32", backend="cpu") == target
        assert len(calls) == 2
        # another dtype is another shape
        P.planned_s2grid(Ls, Lo, n, "float64", backend="cpu")
        assert len(calls) == 4
        path.write_text("{not json")
        P.set_s2grid_planning("measure", plan_file=path)
        with pytest.warns(RuntimeWarning, match="ignoring the s2grid plan file"):
            assert P.planned_s2grid(Ls, Lo, n, "float32", backend="cpu") == target
        assert len(calls) == 6
        assert P.planned_s2grid(Ls, Lo, n, "float32", backend="gpu") == rule
        assert P.planned_s2grid([1, 1], 1, 4, "float32", backend="cpu") == (
            P.s2grid_plan([1, 1], 1, 4, 4)
        )
        P.set_s2grid_planning("rule")
        assert P.planned_s2grid(Ls, Lo, n, "float32", backend="cpu") == rule
        assert len(calls) == 6
        with pytest.raises(ValueError, match="mode must be one of"):
            P.set_s2grid_planning("fastest")
    finally:
        P.set_s2grid_planning("measure", plan_file=P._default_plan_file())


def test_measured_plan_while_tracing(tmp_path, monkeypatch):
    """A real measurement (small shape, threshold lowered) runs while the caller is
    being traced by jit, times every candidate, and the planned product equals the
    rule's to rounding."""
    monkeypatch.setattr(P, "MEASURE_MIN_WORK", 0)
    seen = {}
    real = P.measure_s2grid_plans

    def spy(*args, **kw):
        seen.update(real(*args, **kw))
        return seen

    monkeypatch.setattr(P, "measure_s2grid_plans", spy)
    x = rand(sh_irreps(2, mul=4), 0, (40,), jnp.float32)
    try:
        P.set_s2grid_planning("measure", plan_file=tmp_path / "plans.json")
        y = jax.jit(_gaunt_s2grid)(x)
        P.set_s2grid_planning("rule")
        y0 = jax.jit(_gaunt_s2grid)(x)
    finally:
        P.set_s2grid_planning("measure", plan_file=P._default_plan_file())
    cands = P.s2grid_candidates([2, 2], 4, 160, 4)
    assert cands[0] in seen and set(seen) <= set(cands)
    assert all(t > 0 for t in seen.values())
    np.testing.assert_allclose(y.array, y0.array, atol=2e-5, rtol=0)
    assert "Ls=2,2 L_out=4 n=160 float32" in (tmp_path / "plans.json").read_text()
