"""Run every registry row with its batch sharded over 4 forced host devices.

Executed in its own process by tests/test_sharding.py (XLA_FLAGS must be set
before JAX is imported).
"""

import os
import sys

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import eqjax as eq  # noqa: E402


def main(areas):
    assert jax.device_count() == 4, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    failures = []
    rows = eq.testing.registered(areas or None)
    for area in dict.fromkeys(r.name.split(".")[0] for r in rows):
        print(f"area {area}: {sum(r.name.startswith(area + '.') for r in rows)} rows")
    for row in rows:
        keys = jax.random.split(jax.random.key(0, impl="rbg"), 4)
        xs = [row.make_input(k, jnp.float32) for k in keys]
        stacked = jax.tree_util.tree_map(lambda *v: jnp.stack(v), *xs)
        sharded = jax.device_put(stacked, NamedSharding(mesh, P("batch")))
        fn = jax.jit(jax.vmap(row.fn))  # one object: the g·x call below reuses it
        out = fn(sharded)
        # the reference: the same program on one device (eager vmap would
        # dispatch, and compile, every primitive of the model on its own)
        ref = fn(jax.device_put(stacked, jax.devices()[0]))
        # agreement within the row's stated float32 accuracy (at least 1e-5): the two
        # programs round differently (ArtEq's chordal mean of 24 anchors amplifies
        # that to 1.6e-5; a sharding bug gives O(1) differences)
        tol = max(1e-5, row.tol32)
        for a, b in zip(
            jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(ref), strict=True
        ):
            if not np.allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol):
                diff = float(np.abs(np.asarray(a, float) - np.asarray(b, float)).max())
                failures.append(f"{row.name}: sharded result differs by {diff:.2e}")
                break

        # equivariance on the sharded batch: one sampled element acting on all items
        # (each piece jitted on its own: XLA:CPU crashed compiling sampling, Wigner-D
        # and the Gaunt kernels as a single program)
        draw = row.sample if row.sample is not None else row.group.sample
        g = eq.testing.cast_floating(
            draw(jax.random.key(1, impl="rbg"), ()), jnp.float32
        )
        moved = jax.jit(jax.vmap(row.act_in, in_axes=(None, 0)))(g, sharded)
        moved = jax.device_put(moved, NamedSharding(mesh, P("batch")))
        lhs = fn(moved)
        rhs = (
            out
            if row.act_out is None
            else jax.jit(jax.vmap(row.act_out, in_axes=(None, 0)))(g, out)
        )
        pairs = zip(
            jax.tree_util.tree_leaves(lhs), jax.tree_util.tree_leaves(rhs), strict=True
        )
        num = sum(
            float(np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
            for a, b in pairs
        )
        den = sum(
            float(np.sum(np.asarray(b, np.float64) ** 2))
            for b in jax.tree_util.tree_leaves(rhs)
        )
        err = (num / max(den, 1e-30)) ** 0.5
        if not err < row.tol32:
            failures.append(f"{row.name}: sharded equivariance error {err:.2e}")
        print(
            f"ok {row.name}"
            if not failures or not failures[-1].startswith(row.name)
            else failures[-1]
        )
    if failures:
        print("\n".join(failures))
        return 1
    print(f"{len(rows)} rows sharded over {jax.device_count()} devices")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
