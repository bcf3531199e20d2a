"""Small helpers shared by the frame tests: a non-odd MLP backbone and error checks."""

import jax
import jax.numpy as jnp
import numpy as np


def mlp(key, din, dout, hidden=32, dtype=jnp.float32):
    """A random 2-layer MLP with biases and a non-odd activation (softplus)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    W1 = (jax.random.normal(k1, (din, hidden)) / np.sqrt(din)).astype(dtype)
    b1 = jax.random.normal(k2, (hidden,)).astype(dtype)
    W2 = (jax.random.normal(k3, (hidden, dout)) / np.sqrt(hidden)).astype(dtype)
    b2 = jax.random.normal(k4, (dout,)).astype(dtype)

    def f(z):
        return jax.nn.softplus(z.reshape(-1) @ W1 + b1) @ W2 + b2

    return f


def point_backbones(key, n, d=3, dtype=jnp.float32):
    """phi: points[n, d] -> (4,) and psi: points[n, d] -> points[n, d]."""
    phi = mlp(key, n * d, 4, dtype=dtype)
    psi0 = mlp(jax.random.fold_in(key, 1), n * d, n * d, dtype=dtype)
    return phi, lambda x: psi0(x).reshape(n, d)


def rel_err(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    num = max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(la, lb, strict=True))
    den = max(float(jnp.max(jnp.abs(u))) for u in la)
    return num / max(den, 1e-30)


def _elements(gs):
    k = jax.tree_util.tree_leaves(gs)[0].shape[0]
    return [jax.tree_util.tree_map(lambda e, i=i: e[i], gs) for i in range(k)]


def invariance_error(f, act, gs, x):
    y = f(x)
    return max(rel_err(f(act(g, x)), y) for g in _elements(gs))


def equivariance_error(f, act_in, act_out, gs, x):
    y = f(x)
    errs = []
    for g in _elements(gs):
        errs.append(rel_err(f(act_in(g, x)), act_out(g, y)))
    return max(errs)
