"""Training throughput of the N-body models through eqjax.training: 1 vs 4 forced
host devices (and 1 GPU when one is present), same global batch.

Each configuration runs in its own process (XLA_FLAGS / JAX_PLATFORMS must be set
before JAX starts). The step is the one ``python -m experiments nbody`` compiles;
the data are short simulations (throughput does not depend on their values).
Forced host devices share the machine's cores, so on a 2-core CPU no speed-up is
expected: the point of the CPU rows is that the sharded step is correct and
compiles once. Reported: steps/s after the first (compiling) step, samples/s,
the first step's seconds, and how often the step was traced.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DESCRIPTION = "nbody training throughput via eqjax.training: 1 vs 4 host devices (+GPU)"
NAME = "bench_training"
ROOT = Path(__file__).resolve().parents[1]


def _child(args) -> int:
    import jax
    import jax.numpy as jnp
    import optax

    from eqjax import training as T

    from . import nbody

    n = args.child_devices
    mesh = T.data_mesh(n)
    sims = nbody.simulate(args.batch * 2, 0, burn=10, horizon=10)
    init, apply = nbody.MODELS[args.model]
    f = nbody._batched(apply)

    def loss(p, b, key):
        xb, vb, qb, yb = b
        return jnp.mean((f(p, (xb, vb), qb) - yb) ** 2)

    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
    r = T.fit(
        loss,
        init(jax.random.key(0)),
        opt,
        T.ArrayLoader(sims, args.batch, seed=0),
        steps=args.steps,
        mesh=mesh,
        progress=False,
    )
    dev = jax.devices()[0]
    print(
        "RESULT "
        + json.dumps(
            {
                "platform": jax.default_backend(),
                "device": getattr(dev, "device_kind", str(dev)),
                "devices": mesh.devices.size,
                "steps_per_s": r.steps_per_second,
                "samples_per_s": r.steps_per_second * args.batch,
                "first_step_s": r.first_step_seconds,
                "compiles": r.compiles,
                "final_loss": r.log.column("train_loss")[1][-1],
            }
        ),
        flush=True,
    )
    return 0


def _run_child(platform: str, devices: int, args) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("XLA_FLAGS", None)
    if platform == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    else:
        env.pop("JAX_PLATFORMS", None)
    cmd = [sys.executable, "-m", "experiments", NAME, "--child-devices", str(devices)]
    cmd += [
        "--model",
        args.model,
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(
        f"{platform} x{devices} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog=f"python -m experiments {NAME}", description=__doc__
    )
    ap.add_argument("--quick", action="store_true", help="tiny run (tests)")
    ap.add_argument("--model", default="EGNN", choices=("FA-GNN", "EGNN", "GNN"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=100, help="global batch")
    ap.add_argument("--devices", default="1,4", help="host device counts (CPU rows)")
    ap.add_argument("--gpu", action="store_true", help="add a 1-GPU row (needs a GPU)")
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--child-devices", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_devices is not None:
        return _child(args)
    if args.quick:
        args.steps, args.batch, args.model = 3, 8, "GNN"
    counts = [int(c) for c in args.devices.split(",") if c]
    for c in counts:
        if args.batch % c:
            raise SystemExit(f"--batch {args.batch} is not divisible by {c} devices")
    configs = [("cpu", c) for c in counts] + ([("gpu", 1)] if args.gpu else [])
    from ._common import results_dir, write_table

    rows = []
    for platform, c in configs:
        t0 = time.perf_counter()
        r = _run_child(platform, c, args)
        rows.append(
            [
                r["platform"],
                r["device"],
                r["devices"],
                round(r["steps_per_s"], 3),
                round(r["samples_per_s"], 1),
                round(r["first_step_s"], 2),
                r["compiles"],
                r["final_loss"],
                round(time.perf_counter() - t0, 1),
            ]
        )
        print(rows[-1], flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    pre = (
        f"{args.model} (nbody), global batch {args.batch}, {args.steps} steps, "
        f"Adam; {os.cpu_count()} CPU core(s), 1-min load average {load:.1f} at the "
        "end (other jobs share the machine: absolute figures are noisy). Forced host "
        "devices share the same cores, so 4 of them are not expected to be faster; "
        "'final loss' equal across rows is the correctness check (same global batch). "
        "'compiles' = times the step was traced (1: compiled once). No paper "
        "figure: EGNN (Satorras et al., 2021) reports accuracy, not throughput; "
        "compute budget: the steps above per row."
        + (" (--quick: tiny sizes, numbers meaningless)" if args.quick else "")
    )
    out = Path(args.results_dir) if args.results_dir else results_dir(NAME)
    md = write_table(
        NAME,
        "quick" if args.quick else ("results_gpu" if args.gpu else "results"),
        [
            "platform",
            "device",
            "devices",
            "steps/s",
            "samples/s",
            "first step s",
            "compiles",
            "final loss",
            "wall s",
        ],
        rows,
        preamble=pre,
        out_dir=out,
    )
    print(md)
    return 0
