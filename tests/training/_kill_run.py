"""Train an MLP 40 steps with async checkpoints every 5 steps; SIGKILL itself
after step KILL_AT (0: never). Run by test_scale_out.py:
``_kill_run.py OUT CKPT|- KILL_AT [--resume]``."""

import os
import signal
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eqjax import training as T

out, ckpt, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
resume = "--resume" in sys.argv
rng = np.random.default_rng(1)
X = rng.normal(size=(96, 6)).astype(np.float32)
Y = np.cos(X @ rng.normal(size=(6, 3))).astype(np.float32)
ks = jax.random.split(jax.random.key(1), 2)
params = {
    "w1": jax.random.normal(ks[0], (6, 32)) * 0.4,
    "w2": jax.random.normal(ks[1], (32, 3)) * 0.2,
}


def loss(p, b, key):
    h = jax.nn.gelu(b["x"] @ p["w1"])
    h = h * jax.random.bernoulli(key, 0.9, h.shape) / 0.9  # dropout: uses the key
    return jnp.mean((h @ p["w2"] - b["y"]) ** 2)


def hook(step):
    if step == kill_at:
        print(f"killing at step {step}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


r = T.fit(
    loss,
    params,
    optax.adamw(3e-3),
    T.ArrayLoader({"x": X, "y": Y}, 24, seed=2),
    steps=40,
    key=7,
    progress=False,
    checkpoint_dir=None if ckpt == "-" else ckpt,
    checkpoint_every=5,
    resume=resume,
    on_step=hook,
)
print(f"done: resumed_from {r.resumed_from}, step {r.step}")
np.savez(out, **{k: np.asarray(v) for k, v in r.params.items()})
