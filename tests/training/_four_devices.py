"""nbody's GNN trained 20 steps on 1 and on 4 forced host devices in one process
(XLA_FLAGS before JAX starts); run by test_scale_out.py."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from eqjax import training as T  # noqa: E402
from experiments import nbody  # noqa: E402

assert jax.device_count() == 4, jax.devices()
sims = nbody.simulate(64 + 32 + 32, 0, burn=100, horizon=1000)
data = {
    "train": tuple(s[:64] for s in sims),
    "val": tuple(s[64:96] for s in sims),
    "test": tuple(s[96:] for s in sims),
}
data["test_moved"] = data["test"]
runs = {}
for n in (1, 4):
    runs[n] = nbody.train(
        "GNN",
        data,
        epochs=10,
        batch=32,
        lr=1e-3,
        seed=0,
        mesh=T.data_mesh(n),
        progress=False,
    )
    print(f"devices {n}: compiles {runs[n]['compiles']}, steps {runs[n]['steps']}")
    assert runs[n]["compiles"] == 1, runs[n]["compiles"]
    assert runs[n]["steps"] == 20
s1, l1 = runs[1]["log"].column("train_loss")
s4, l4 = runs[4]["log"].column("train_loss")
assert s1 == s4 == list(range(1, 21))
diff = np.abs(np.array(l1) - np.array(l4))
print(f"max |loss_1 - loss_4| over 20 steps: {diff.max():.3g} (loss {l1[-1]:.4f})")
assert diff.max() <= 1e-5, diff
pdiff = max(
    float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    for a, b in zip(
        jax.tree.leaves(runs[1]["params"]),
        jax.tree.leaves(runs[4]["params"]),
        strict=True,
    )
)
print(f"max |params_1 - params_4|: {pdiff:.3g}")
assert pdiff <= 1e-5

# the params really are replicated and the batch split: 4 shards of 8 samples
mesh = T.data_mesh(4)
gb = T.shard_batch(data["train"], mesh)
assert [s.data.shape[0] for s in gb[0].addressable_shards] == [16] * 4
# bad configuration: a global batch of 30 does not split over 4 devices
try:
    T.fit(
        lambda p, b, k: jnp.mean((b - p) ** 2),
        jnp.zeros(3),
        optax.sgd(0.1),
        T.ArrayLoader(np.zeros((60, 3), np.float32), 30),
        steps=2,
        mesh=mesh,
        progress=False,
    )
except ValueError as e:
    assert "batch size 30 is not divisible by the 4 devices" in str(e), e
    print(f"bad batch: {e}")
else:
    raise AssertionError("a batch of 30 on 4 devices did not fail")
print("FOUR DEVICES OK")
