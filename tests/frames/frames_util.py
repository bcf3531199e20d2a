"""Small helpers shared by the frame tests: inputs, group elements and non-odd MLP
backbones drawn in NumPy (no eager JAX op, hence no compilation, per new shape),
and error checks that evaluate ``f`` on every transformed input in one jitted
``vmap`` (one compilation per check)."""

import jax
import jax.numpy as jnp
import numpy as np

import eqjax as eq


def normal(seed, shape, dtype=np.float32, shift=0.0):
    """A standard normal array drawn in NumPy."""
    rng = np.random.default_rng(seed)
    return jnp.asarray((rng.normal(size=shape) + shift).astype(dtype))


def elements(group, k, seed=0, dtype=np.float32):
    """``k`` elements of O(d), SO(d), E(d), SE(d) or S_n drawn in NumPy: Haar
    rotations (QR with the sign fix), alternately reflected where the group has
    reflections, translations ``N(0, I)``; uniform permutations for S_n."""
    rng = np.random.default_rng(seed)
    d = group.dim
    if group.name.startswith("Sn"):
        return jnp.asarray(np.stack([rng.permutation(d) for _ in range(k)]), jnp.int32)
    q, r = np.linalg.qr(rng.normal(size=(k, d, d)))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
    det = np.sign(np.linalg.det(q))
    if group.has_reflections:
        det = det * np.where(np.arange(k) % 2 == 0, 1.0, -1.0)
    q[..., :, 0] *= det[:, None]
    R = jnp.asarray(q.astype(dtype))
    if group.name.startswith(("E", "SE")):
        t = jnp.asarray(rng.normal(size=(k, d)).astype(dtype))
        return eq.groups.EuclideanElement(R, t)
    return R


def mlp(seed, din, dout, hidden=32, dtype=np.float32):
    """A random 2-layer MLP with biases and a non-odd activation (softplus)."""
    rng = np.random.default_rng(seed)
    W1 = jnp.asarray((rng.normal(size=(din, hidden)) / np.sqrt(din)).astype(dtype))
    b1 = jnp.asarray(rng.normal(size=hidden).astype(dtype))
    W2 = jnp.asarray((rng.normal(size=(hidden, dout)) / np.sqrt(hidden)).astype(dtype))
    b2 = jnp.asarray(rng.normal(size=dout).astype(dtype))

    def f(z):
        return jax.nn.softplus(z.reshape(-1) @ W1 + b1) @ W2 + b2

    return f


def point_backbones(seed, n, d=3, dtype=np.float32):
    """phi: points[n, d] -> (4,) and psi: points[n, d] -> points[n, d]."""
    phi = mlp(seed, n * d, 4, dtype=dtype)
    psi0 = mlp(seed + 1, n * d, n * d, dtype=dtype)
    return phi, lambda x: psi0(x).reshape(n, d)


def rel_err(a, b):
    """``max |a - b| / max |a|`` over the leaves of two pytrees."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    num = max(float(np.max(np.abs(u - v))) for u, v in zip(la, lb, strict=True))
    den = max(float(np.max(np.abs(u))) for u in la)
    return num / max(den, 1e-30)


def errors(checks, act_in, gs, x, extra=None):
    """``{name: max_g rel_err(f(g·x), g·f(x))}`` for ``checks = {name: (f,
    act_out)}`` (``act_out=None``: invariance) over the leading axis of ``gs``,
    all in one jitted program, which also returns ``extra(x)`` if given."""

    @jax.jit
    def outputs(gs, x):
        out = {}
        for name, (f, act_out) in checks.items():
            y = f(x)
            ys = jax.vmap(lambda g, f=f: f(act_in(g, x)))(gs)
            want = jax.vmap(lambda g, a=act_out, y=y: y if a is None else a(g, y))(gs)
            out[name] = (ys, want)
        return out, None if extra is None else extra(x)

    out, more = jax.tree_util.tree_map(np.asarray, outputs(gs, x))
    k = jax.tree_util.tree_leaves(gs)[0].shape[0]
    row = lambda t, i: jax.tree_util.tree_map(lambda e: e[i], t)
    errs = {
        name: max(rel_err(row(ys, i), row(want, i)) for i in range(k))
        for name, (ys, want) in out.items()
    }
    return errs if extra is None else (errs, more)


def equivariance_error(f, act_in, act_out, gs, x):
    """``max_g rel_err(f(g·x), g·f(x))`` over the leading axis of ``gs``
    (``act_out=None``: invariance)."""
    return errors({"f": (f, act_out)}, act_in, gs, x)["f"]


def invariance_error(f, act, gs, x):
    """``max_g rel_err(f(g·x), f(x))`` over the leading axis of ``gs``."""
    return equivariance_error(f, act, None, gs, x)
