"""A small MLP trained by one process, or by two processes on localhost (gloo),
with the same global batch; process 0 writes the parameters. Run by
test_scale_out.py: ``_two_process.py OUT [PORT PROCESS_ID CKPT]``."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eqjax import training as T

out = sys.argv[1]
ckpt = None
if len(sys.argv) > 2:
    port, pid, ckpt = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    assert T.initialize(f"127.0.0.1:{port}", 2, pid, timeout_s=60)
    assert jax.process_count() == 2

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 4)).astype(np.float32)
Y = np.sin(X @ rng.normal(size=(4, 2))).astype(np.float32)
k1, k2 = jax.random.split(jax.random.key(0))
params = {
    "w1": jax.random.normal(k1, (4, 16)) * 0.5,
    "w2": jax.random.normal(k2, (16, 2)) * 0.25,
}


def predict(p, x):
    return jnp.tanh(x @ p["w1"]) @ p["w2"]


def loss(p, b, key):
    y = b["y"] + 0.01 * jax.random.normal(key, b["y"].shape)
    return jnp.mean((predict(p, b["x"]) - y) ** 2)


ev = T.Evaluator(
    lambda p, b: {"mse": jnp.mean((predict(p, b["x"]) - b["y"]) ** 2, -1)},
    {"x": X, "y": Y},
    24,
)
mesh = T.data_mesh()
r = T.fit(
    loss,
    params,
    optax.adam(1e-2),
    T.ArrayLoader({"x": X, "y": Y}, 16, seed=0),
    steps=20,
    key=5,
    mesh=mesh,
    eval_fn=ev,
    eval_every=5,
    progress=False,
    checkpoint_dir=ckpt,
    checkpoint_every=10,
)
print(
    f"process {jax.process_index()}/{jax.process_count()}: mesh {mesh.devices.size} "
    f"devices, compiles {r.compiles}, eval {r.eval}"
)
assert r.compiles == 1
if jax.process_index() == 0:
    np.savez(out, eval=r.eval["mse"], **{k: T.to_host(v) for k, v in r.params.items()})
