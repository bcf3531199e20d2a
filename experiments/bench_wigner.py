"""act_irreps (Wigner-D from spherical harmonics at fixed points) against e3nn-jax's
``IrrepsArray.transform_by_matrix`` (Wigner-D from Euler angles), in one run.

For each irreps string: the compile time and the median time per call of one
jit-compiled program that applies the action to a batch of O(3) elements and
differentiates a scalar of the result with respect to the rotations, and the
largest difference between the two results (float64). No paper reports these
figures (the reference is e3nn-jax's own implementation); the budget is a few
seconds of CPU per irreps string.
"""

from __future__ import annotations

import argparse
import time

DESCRIPTION = (
    "act_irreps (harmonics at fixed points) vs e3nn transform_by_matrix (angles)"
)
NAME = "bench_wigner"
IRREPS = ("0e + 1o + 2e", "0e + 1e + 2o + 3o", "1o + 2e + 3o + 4e + 5o + 6e")


def _programs(batch: int):
    import jax
    import jax.numpy as jnp

    import eqjax as eq

    def ours(R, x):
        return eq.groups.act_irreps(R, x).array

    def ref(R, x):
        return jax.vmap(lambda r, v: v.transform_by_matrix(r))(R, x).array

    def program(act):
        def f(R, x):
            y = act(R, x)
            g = jax.grad(lambda R: jnp.sum(jnp.sin(act(R, x))))(R)
            return y, g

        return jax.jit(f)

    return {"eqjax act_irreps": program(ours), "e3nn transform_by_matrix": program(ref)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m experiments {NAME}", description=DESCRIPTION
    )
    parser.add_argument("--batch", type=int, default=64, help="O(3) elements per call")
    parser.add_argument(
        "--quick", action="store_true", help="the first irreps string only"
    )
    args = parser.parse_args(argv)

    import e3nn_jax as e3nn
    import jax

    import eqjax as eq

    from ._common import time_call, write_table

    with jax.enable_x64(True):  # scoped: callers in the same process keep float32
        rows = _measure(args, e3nn, eq, time_call)
    header = ["irreps", "compile ours (s)", "compile e3nn (s)", "compile ratio",
              "call ours (ms)", "call e3nn (ms)", "call ratio", "max |diff| (float64)"]  # fmt: skip
    pre = (
        f"# {DESCRIPTION}\n\nOne jit program per row: the action on {args.batch} O(3) "
        "elements (reflections included) plus the gradient of a scalar of it with "
        f"respect to the rotations; float64; backend {jax.default_backend()}. Ratios are "
        "e3nn / eqjax (above 1: eqjax faster). No paper figure exists for this; budget: "
        "seconds of CPU."
    )
    print(write_table(NAME, NAME, header, rows, pre))
    return 0


def _measure(args, e3nn, eq, time_call):
    """One row per irreps string: compile and call times of both programs."""
    import jax
    import numpy as np

    rows = []
    for irreps in IRREPS[:1] if args.quick else IRREPS:
        key = jax.random.key(0)
        R = eq.groups.O3.sample(key, (args.batch,))
        x = e3nn.normal(irreps, jax.random.fold_in(key, 1), (args.batch,))
        results = {}
        for name, prog in _programs(args.batch).items():
            t0 = time.perf_counter()
            compiled = prog.lower(R, x).compile()
            compile_s = time.perf_counter() - t0
            results[name] = (compile_s, time_call(compiled, R, x), compiled(R, x))
        (c_ours, t_ours, (y_ours, _)), (c_ref, t_ref, (y_ref, _)) = results.values()
        diff = float(np.max(np.abs(np.asarray(y_ours) - np.asarray(y_ref))))
        rows.append(
            [
                irreps,
                c_ours,
                c_ref,
                c_ref / c_ours,
                1e3 * t_ours,
                1e3 * t_ref,
                t_ref / t_ours,
                diff,
            ]
        )
        print(f"{irreps}: compile {c_ours:.2f} s vs {c_ref:.2f} s; call {1e3 * t_ours:.3f} ms "
              f"vs {1e3 * t_ref:.3f} ms; max |difference| {diff:.1e}")  # fmt: skip
    return rows
