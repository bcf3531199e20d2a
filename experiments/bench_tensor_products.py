"""Benchmark: Gaunt tensor products (each method and auto) vs e3nn-jax's CG product
and e3nn-jax's S²-grid product, L = 1 … 16, forward and forward+backward, jitted.

Paper claim (Luo et al., ICLR 2024): the Gaunt product costs O(L³) (FFT route)
against O(L⁶) for a full Clebsch–Gordan product. Goals, forward, batch 256 × 32
(64 × 32 at L = 16): Gaunt (auto) ≥ 20× faster than CG and ≥ 2× faster than the
exact S²-grid product at L = 8, ≥ 2× faster than the S²-grid product at L = 16,
fitted exponent in L over 4 … 16 ≤ 3.2.

Configurations are timed in two groups, each compiled and then timed in
interleaved rounds (each round times every configuration of the group once; the
tables report the median over rounds), so load from other processes spreads over
all rows of a group instead of a few:

- ``s2``: Gaunt's s2grid product and e3nn's S²-grid product, first, before any
  other program has run;
- ``cg``: every Gaunt method (s2grid again) and e3nn's CG product.

Every speed-up is a ratio within one group. The S² pair has its own group because
the CG and Fourier programs (tens to hundreds of MB of temporaries at L = 8) leave
the allocator in a state that slows the next small programs unevenly: on a 2-vCPU
AMD EPYC (1 MiB L2) the s2grid / S²-grid ratio at L = 8 was 1.58× with every
method in one group and 2.4-2.5× with the pair timed alone (issue 11).
``--tag`` writes the tables as ``<stem>_<tag>.*`` so a second host's run does not
replace the first's.

``--write-cost-model`` stores the Gaunt timings as the CPU table of
``method="auto"`` (``eqjax/tensor_products/_cost_model.json``, read by
``eqjax/tensor_products/_plan.py``). ``--plan-sweep`` times the s2grid layouts and
block sizes around the plan's choice (``eqjax.tensor_products._plan.s2grid_plan``)
at the given L and writes ``plan_sweep.md``; ``--l2-kib`` shows the plan for
another L2 size (an emulated smaller-cache CPU), which is not a measurement of one.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from eqjax.tensor_products import _kernels, _plan, choose_method, gaunt_tensor_product

from ._common import power_law_exponent, results_dir, time_call, write_table

DESCRIPTION = "Gaunt vs CG vs S2-grid tensor products: time vs L, fitted exponents"
NAME = "bench_tensor_products"
GAUNT = ("fourier_fft", "fourier_direct", "s2grid")
METHODS = [
    "gaunt_s2grid",
    "gaunt_fourier_fft",
    "gaunt_fourier_direct",
    "e3nn_s2grid",
    "e3nn_cg",
]
S2_PAIR = ("gaunt_s2grid", "e3nn_s2grid")


def _batch(L: int, quick: bool) -> int:
    if quick:
        return 8
    return 64 if L >= 16 else 256


def _fn(method: str, L: int):
    ir = e3nn.Irreps.spherical_harmonics(L)
    if method == "e3nn_s2grid":
        # exact Gauss–Legendre resolution; e3nn's FFT needs an odd res_alpha
        rb, ra = (3 * L) // 2 + 1, 3 * L + 1 + (3 * L) % 2

        def f(a, b):
            kw = dict(quadrature="gausslegendre", p_val=1, p_arg=-1)
            fa = e3nn.to_s2grid(a, rb, ra, **kw)
            fb = e3nn.to_s2grid(b, rb, ra, **kw)
            return e3nn.from_s2grid(fa * fb, ir)

        return f
    if method == "e3nn_cg":
        keep = [e3nn.Irrep(l, p) for l in range(L + 1) for p in (1, -1)]
        return lambda a, b: e3nn.tensor_product(a, b, filter_ir_out=keep)
    m = method.removeprefix("gaunt_")
    return lambda a, b: gaunt_tensor_product(a, b, lmax_out=L, method=m)


def _fwd_bwd(f):
    def loss(a, b):
        return jnp.sum(f(a, b).array ** 2)

    return jax.grad(loss, argnums=(0, 1))


def _f32_error(method: str, L: int) -> float:
    """Largest |f32 - f64| / max|f64| over a small batch (f64 = the same method)."""
    ir = e3nn.Irreps.spherical_harmonics(L)
    f = _fn(method, L)
    with jax.enable_x64(True):
        a = e3nn.normal(ir, jax.random.key(0), (16,), dtype=jnp.float64)
        b = e3nn.normal(ir, jax.random.key(1), (16,), dtype=jnp.float64)
        ref = np.asarray(jax.jit(f)(a, b).array)
        y32 = np.asarray(jax.jit(f)(a.astype(jnp.float32), b.astype(jnp.float32)).array)
    return float(np.abs(y32 - ref).max() / np.abs(ref).max())


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog=f"python -m experiments {NAME}", description=__doc__
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (tests)")
    p.add_argument("--lmax", type=int, default=16)
    p.add_argument(
        "--ls", type=str, default=None, help="L values (default 1-6,8,...,16)"
    )
    p.add_argument("--cg-lmax", type=int, default=8, help="largest L for e3nn CG")
    p.add_argument(
        "--write-cost-model",
        action="store_true",
        help="store the measured Gaunt timings as the cost model of method='auto'",
    )
    p.add_argument(
        "--direct-lmax", type=int, default=8, help="largest L, fourier_direct"
    )
    p.add_argument("--fft-lmax", type=int, default=16, help="largest L, fourier_fft")
    p.add_argument(
        "--repeats", type=int, default=5, help="interleaved timing rounds (median)"
    )
    p.add_argument(
        "--plan-sweep",
        action="store_true",
        help="time the s2grid layouts x block sizes around the plan at --ls",
    )
    p.add_argument(
        "--l2-kib",
        type=int,
        default=None,
        help="with --plan-sweep: plan for this L2 size instead of the host's",
    )
    p.add_argument(
        "--tag",
        default="",
        help="write every table as <stem>_<tag>.* (e.g. the CPU's name), so runs on "
        "two hosts keep their own files",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the stored measurements (raw.json) of the L values not run now and "
        "write the tables from the union; each row is labelled with its run",
    )
    args = p.parse_args(argv)
    if args.plan_sweep:
        return _plan_sweep(args)
    if args.quick:
        args.cg_lmax, args.direct_lmax, args.repeats = 2, 3, 2
    default_ls = "1,2,3" if args.quick else "1,2,3,4,5,6,8,10,12,14,16"
    Ls = [int(v) for v in (args.ls or default_ls).split(",") if int(v) <= args.lmax]
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None

    tag = f"_{args.tag}" if args.tag else ""
    modes = ((1, "fwd"), (32, "fwd"), (32, "fwd+bwd"))
    groups: dict[str, list] = {"s2": [], "cg": []}
    for L in Ls:
        groups["s2"] += [(L, m, C, mode) for m in S2_PAIR for C, mode in modes]
        methods = ["gaunt_s2grid"]
        if L <= args.fft_lmax:
            methods.append("gaunt_fourier_fft")
        if L <= args.direct_lmax:
            methods.append("gaunt_fourier_direct")
        if L <= args.cg_lmax:
            methods.append("e3nn_cg")
        groups["cg"] += [(L, m, C, mode) for m in methods for C, mode in modes]
    # times[group][(L, method, C, mode)]: median seconds; compiles likewise
    times: dict[str, dict] = {}
    compiles: dict[str, dict] = {}
    t_start = time.perf_counter()
    for g, configs in groups.items():
        bar = tqdm(configs, desc=f"{NAME} ({g}: compile)") if tqdm else configs
        calls: dict = {}
        compiles[g] = {}
        for L, method, C, mode in bar:
            B = _batch(L, args.quick)
            ir = e3nn.Irreps.spherical_harmonics(L)
            a = e3nn.normal(ir, jax.random.key(0), (B, C))
            b = e3nn.normal(ir, jax.random.key(1), (B, C))
            f = _fn(method, L)
            f = jax.jit(f if mode == "fwd" else _fwd_bwd(f))
            t0 = time.perf_counter()
            jax.block_until_ready(f(a, b))
            compiles[g][(L, method, C, mode)] = time.perf_counter() - t0
            calls[(L, method, C, mode)] = (f, a, b)
        times[g] = _interleaved(calls, args.repeats, desc=f"{NAME} ({g}: time)")
        del calls, f, a, b
        gc.collect()
    run = time.strftime("%Y-%m-%d %H:%M") + f" (L={','.join(map(str, Ls))})"
    f32 = {
        L: (_f32_error("gaunt_fourier_fft", L), _f32_error("gaunt_s2grid", L))
        for L in Ls
    }
    out = results_dir(NAME)
    device = f"{jax.default_backend()}: {jax.devices()[0].device_kind}"
    cpu = _plan._machine() if jax.default_backend() == "cpu" else ""
    runs = {L: run for L in Ls}
    raw_path = out / f"raw{tag}.json"
    if args.merge and raw_path.exists():
        raw = json.loads(raw_path.read_text())
        if raw["device"] != device:
            raise SystemExit(
                f"--merge: stored runs are on {raw['device']}, not {device}"
            )
        for r in raw["times"]:
            if r["L"] not in runs or runs[r["L"]] == r["run"]:
                key = (r["L"], r["method"], r["C"], r["mode"])
                # runs stored before the two groups timed every method together
                for g in [r["group"]] if "group" in r else _old_groups(r["method"]):
                    times[g][key], compiles[g][key] = r["s"], r["compile_s"]
                runs[r["L"]] = r["run"]
        for L, e in raw["f32"].items():
            f32.setdefault(int(L), tuple(e))
        Ls = sorted(runs)
    raw_path.write_text(
        json.dumps(
            {
                "device": device,
                "cpu": cpu,
                "times": [
                    dict(
                        group=g,
                        L=k[0],
                        method=k[1],
                        C=k[2],
                        mode=k[3],
                        s=v,
                        compile_s=compiles[g][k],
                        run=runs[k[0]],
                    )
                    for g in times
                    for k, v in sorted(times[g].items())
                ],
                "f32": {str(L): f32[L] for L in Ls},
            },
            indent=1,
        )
    )
    rows = []
    for g in times:
        for (L, method, C, mode), t in sorted(times[g].items()):
            B = _batch(L, args.quick)
            rows.append(
                [
                    g,
                    L,
                    method,
                    C,
                    mode,
                    B,
                    t * 1e3,
                    t / (B * C) * 1e6,
                    compiles[g][(L, method, C, mode)],
                ]
            )

    def home(method: str) -> str:
        """The group a method's own row (and plot curve) comes from."""
        return "s2" if method in S2_PAIR else "cg"

    # auto: the method choose_method picks, with that method's measured time
    auto = {}
    for L in Ls:
        B = _batch(L, args.quick)
        for C, mode in modes:
            m = "gaunt_" + choose_method([L, L], L, B * C)
            t = times[home(m)].get((L, m, C, mode))
            auto[(L, C, mode)] = (m, t)
            if t is not None:
                rows.append(
                    [home(m), L, f"gaunt_auto({m.removeprefix('gaunt_')})", C, mode]
                    + [B, t * 1e3, t / (B * C) * 1e6, 0.0]
                )
    header = [
        "group",
        "L",
        "method",
        "channels",
        "mode",
        "batch",
        "ms",
        "us_per_signal",
        "compile_s",
    ]
    host = f"Device: {device}" + (f" ({cpu})" if cpu else "")
    write_table(NAME, f"timings{tag}", header, rows, preamble=host)

    def speedup(L: int, ref: str) -> float | str:
        """ref's time over auto's, both from ref's group (C = 32, forward)."""
        g = home(ref)
        t_ref = times[g].get((L, ref, 32, "fwd"))
        t_auto = times[g].get((L, auto[(L, 32, "fwd")][0], 32, "fwd"))
        return t_ref / t_auto if t_ref and t_auto else "-"

    # summary: per L, C = 32 fwd, with speed-ups and float32 error
    srows = []
    for L in Ls:
        row = [L, auto[(L, 32, "fwd")][0].removeprefix("gaunt_")]
        for m in METHODS:
            t = times[home(m)].get((L, m, 32, "fwd"))
            row.append(t * 1e3 if t else "-")
        row += [speedup(L, "e3nn_s2grid"), speedup(L, "e3nn_cg")]
        row.extend(f32[L])
        row.append(runs[L])
        srows.append(row)
    sheader = (
        ["L", "auto picks"]
        + [f"{m} ms" for m in METHODS]
        + [
            "speedup vs e3nn_s2grid",
            "speedup vs e3nn_cg",
            "f32 err fourier_fft",
            "f32 err s2grid",
            "run",
        ]
    )
    fits = {}
    for m in METHODS + ["gaunt_auto"]:
        for C, mode in modes:
            if m == "gaunt_auto":
                pts = [(L, auto[(L, C, mode)][1]) for L in Ls]
                pts = [(L, t / (_batch(L, args.quick) * C)) for L, t in pts if t]
            else:
                tm = times[home(m)]
                pts = [
                    (L, tm[(L, m, C, mode)] / (_batch(L, args.quick) * C))
                    for L in Ls
                    if (L, m, C, mode) in tm
                ]
            if pts:
                fits[f"{m} C={C} {mode}"] = power_law_exponent(
                    *zip(*pts, strict=True), xmin=1 if args.quick else 4
                )
    fit_rows = [[k, v] for k, v in fits.items()]
    command = f"python -m experiments {NAME}" + "".join(
        f" {a}" for a in argv if a != "--write-cost-model"
    )
    md = write_table(
        NAME,
        f"summary{tag}",
        sheader,
        srows,
        preamble=(
            f"{host}. Forward, jitted, batch 256 x 32 channels (64 x 32 at "
            "L = 16), time per call in ms; each L's row timed in the run named in "
            "its last column. The s2grid and e3nn_s2grid columns and the S2-grid "
            "speed-up come from the group timed first with only that pair; the "
            "Fourier and CG columns and the CG speed-up from the group with every "
            "Gaunt method and e3nn's CG (module docstring). Paper: Gaunt O(L^3) "
            "vs CG O(L^6); issue goals: auto >= 20x CG and >= 2x S2-grid at "
            "L = 8, >= 2x S2-grid at L = 16, exponent over L = 4..16 <= 3.2. "
            f"Command: {command}"
        ),
    )
    md += "\n" + write_table(
        NAME,
        f"exponents{tag}",
        ["method / config", "fitted exponent (time per signal vs L, L>=4)"],
        fit_rows,
    )
    # cost-model material for method="auto": us per signal, C = 32, fwd, from the
    # group that times every Gaunt method together
    cost = {
        str(3 * L): {
            m.removeprefix("gaunt_"): times["cg"][(L, m, 32, "fwd")]
            / (_batch(L, args.quick) * 32)
            * 1e6
            for m in METHODS
            if m.startswith("gaunt_") and (L, m, 32, "fwd") in times["cg"]
        }
        for L in Ls
    }
    (out / f"cost_model{tag}.json").write_text(
        json.dumps({"device": device, "cpu": cpu, "D=3L": cost}, indent=1)
    )
    if args.write_cost_model and not args.quick:
        path = Path(_plan.__file__).with_name("_cost_model.json")
        model = json.loads(path.read_text()) if path.exists() else {}
        model[jax.default_backend()] = {"device": device, "times": cost}
        path.write_text(json.dumps(model, indent=1) + "\n")
        _plan.cost_model.cache_clear()
    md += "\n" + _table_build_times()
    _plot(out / f"time_vs_L{tag}.png", Ls, times, auto, home, args.quick)
    print(md)
    print(f"total {time.perf_counter() - t_start:.0f} s; results in {out}")
    return 0


def _old_groups(method: str) -> list[str]:
    """Groups a row of a run stored before the grouping stands for: that run timed
    every method in one group, so its S2 pair fills both."""
    return (
        ["s2", "cg"]
        if method == "gaunt_s2grid"
        else (["s2"] if method == "e3nn_s2grid" else ["cg"])
    )


def _table_build_times() -> str:
    """First-call (uncached) time of ``gaunt_coefficients(L, L, L)``; issue 12
    measured 23-41 s at L = 16 and 95-175 s at L = 20 before the quadrature."""
    from eqjax.tensor_products import _tables as tb

    rows = []
    for L in (8, 16, 20):
        tb._gaunt_cached.cache_clear()
        t = time.perf_counter()
        tb.gaunt_coefficients(L, L, L)
        rows.append([L, (time.perf_counter() - t) * 1e3])
    return write_table(
        NAME,
        "tables",
        ["L", "gaunt_coefficients(L, L, L) first call (ms)"],
        rows,
        preamble="Gaunt table construction (float64 NumPy, uncached).",
    )


def _interleaved(calls: dict, rounds: int, desc: str) -> dict:
    """Median seconds per call of each compiled ``(f, a, b)`` over ``rounds``
    interleaved rounds (each round: every configuration, median of 3 calls)."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    samples: dict = {k: [] for k in calls}
    it = range(rounds)
    for _ in tqdm(it, desc=desc) if tqdm else it:
        for k, (f, a, b) in calls.items():
            samples[k].append(time_call(f, a, b, repeats=3, min_time=0.0))
    return {k: float(np.median(v)) for k, v in samples.items()}


def _plan_sweep(args) -> int:
    """Forward s2grid product (batch 256 x 32, float32) for every layout and block
    size around the plan's, and e3nn's S2 grid, at each L of ``--ls``."""
    Ls = [int(v) for v in (args.ls or ("2" if args.quick else "4,8,12")).split(",")]
    B, C = (8, 4) if args.quick else (256, 32)
    n = B * C
    caches = _plan.cache_sizes()
    if args.l2_kib:
        caches = caches._replace(l2=args.l2_kib << 10)
    calls, planned, measured = {}, {}, {}
    for L in Ls:
        plan = _plan.s2grid_plan([L, L], L, n, 4, caches=caches)
        planned[L] = plan
        # what method="s2grid" runs here (timed now, or read from the plan file)
        t0 = time.perf_counter()
        measured[L] = _plan.planned_s2grid([L, L], L, n, "float32")
        measured_s = time.perf_counter() - t0
        print(f"L={L}: measured plan {measured[L]} ({measured_s:.1f} s)")
        unit = plan.chunk or _plan.s2grid_chunk([L, L], L, 1 << 30, 4, caches)
        chunks = {0, unit // 4, unit // 2, unit, 2 * unit, 4 * unit, measured[L].chunk}
        chunks = sorted(c for c in chunks if c == 0 or 16 <= c < n)
        ir = e3nn.Irreps.spherical_harmonics(L)
        a = e3nn.normal(ir, jax.random.key(0), (n,)).array
        b = e3nn.normal(ir, jax.random.key(1), (n,)).array
        for layout in ("dense", "hemisphere", "quadrant", "factored"):
            for last in (False, True) if layout != "factored" else (False,):
                for chunk in chunks:
                    f = jax.jit(
                        lambda x, y, L=L, lay=layout, c=chunk, s=last: (
                            _kernels.product_s2grid(
                                [x, y], [L, L], L, layout=lay, chunk=c, signals_last=s
                            )
                        )
                    )
                    jax.block_until_ready(f(a, b))
                    calls[(L, layout, chunk, last)] = (f, a, b)
        xa = e3nn.IrrepsArray(ir, a)
        xb = e3nn.IrrepsArray(ir, b)
        f = jax.jit(_fn("e3nn_s2grid", L))
        jax.block_until_ready(f(xa, xb))
        calls[(L, "e3nn_s2grid", 0, False)] = (f, xa, xb)
    times = _interleaved(calls, args.repeats, desc=f"{NAME} --plan-sweep")
    rows = []
    for L in Ls:
        ref = times[(L, "e3nn_s2grid", 0, False)]
        best = min(
            (k for k in times if k[0] == L and k[1] != "e3nn_s2grid"),
            key=times.get,
        )
        for k in sorted(k for k in times if k[0] == L):
            mark = []
            if k[1:] == tuple(planned[L]):
                mark.append("rule")
            if k[1:] == tuple(measured[L]):
                mark.append("measured plan")
            if k == best:
                mark.append("fastest")
            axis = "-" if k[1] == "e3nn_s2grid" else ("minor" if k[3] else "major")
            rows.append(
                [L, k[1], k[2], axis, times[k] * 1e3, ref / times[k], ",".join(mark)]
            )
    host = _plan.cache_sizes()
    md = write_table(
        NAME,
        "plan_sweep" + (f"_{args.tag}" if args.tag else ""),
        ["L", "layout", "chunk", "signals axis", "ms", "x e3nn_s2grid", "mark"],
        rows,
        preamble=(
            f"Forward s2grid product, batch {B} x {C} channels, float32, jitted; "
            f"median over {args.repeats} interleaved rounds. Host caches: L1d "
            f"{host.l1d >> 10} KiB, L2 {host.l2 >> 10} KiB, L3 {host.l3 >> 20} MiB; "
            f"'rule': the cache rule's plan (computed for L2 = {caches.l2 >> 10} "
            "KiB); 'measured plan': what method='s2grid' runs (the fastest "
            "candidate timed once per shape, eqjax.tensor_products.planned_s2grid). "
            f"Command: python -m "
            f"experiments {NAME} --plan-sweep --ls {','.join(map(str, Ls))} "
            f"--repeats {args.repeats}"
            + (f" --l2-kib {args.l2_kib}" if args.l2_kib else "")
            + (f" --tag {args.tag}" if args.tag else "")
        ),
    )
    # the plan itself for other cache sizes (computed, not measured)
    prow = []
    for L in (2, 4, 8, 12, 16):
        row = [L]
        for l2 in (256, 512, 1024, 2048, 4096):
            c = caches._replace(l2=l2 << 10)
            plan = _plan.s2grid_plan([L, L], L, 256 * 32, 4, caches=c)
            row.append(f"{plan.layout} / {plan.chunk}")
        prow.append(row)
    md += "\n" + write_table(
        NAME,
        "plan_by_cache",
        ["L"] + [f"L2 {k} KiB" for k in (256, 512, 1024, 2048, 4096)],
        prow,
        preamble=(
            "s2grid plan (layout / signals per block, 0 = unblocked) for batch "
            "256 x 32 float32 as the L2 size changes: what eqjax.tensor_products."
            "_plan.s2grid_plan picks on such a CPU (computed, not measured there)."
        ),
    )
    print(md)
    return 0


def _plot(path, Ls, times, auto, home, quick):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, mode in zip(axes, ("fwd", "fwd+bwd"), strict=True):
        for m in METHODS:
            tm = times[home(m)]
            pts = [
                (L, tm[(L, m, 32, mode)] / (_batch(L, quick) * 32) * 1e6)
                for L in Ls
                if (L, m, 32, mode) in tm
            ]
            if pts:
                x, y = zip(*pts, strict=True)
                ax.loglog(x, y, "o-", label=m)
        pts = [(L, auto[(L, 32, mode)][1]) for L in Ls if auto[(L, 32, mode)][1]]
        x = [p[0] for p in pts]
        y = [p[1] / (_batch(p[0], quick) * 32) * 1e6 for p in pts]
        ax.loglog(x, y, "k--", lw=2, label="gaunt auto")
        ax.set_xlabel("L")
        ax.set_ylabel("time per signal (us)")
        ax.set_title(f"{mode}, 32 channels")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
