"""Registry rows for eqjax.frames: every frame, invariant and equivariant."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import frames as fr
from ..groups import E3, SO3, Sn, act_graph_tensors, act_set, cloud_action
from ..testing import Transform

_N = 7  # points per cloud
_G = 8  # nodes per graph


def _mlp(seed: int, din: int, dout: int, hidden: int = 24):
    """A fixed random MLP with biases and a non-odd activation (softplus), cast to
    the input dtype (an odd backbone would make invariant outputs trivially 0)."""
    rng = np.random.default_rng(seed)
    W1 = rng.normal(size=(din, hidden)) / np.sqrt(din)
    b1 = rng.normal(size=hidden)
    W2 = rng.normal(size=(hidden, dout)) / np.sqrt(hidden)
    b2 = rng.normal(size=dout)

    def f(z):
        dt = z.dtype
        h = jax.nn.softplus(z.reshape(-1) @ jnp.asarray(W1, dt) + jnp.asarray(b1, dt))
        return h @ jnp.asarray(W2, dt) + jnp.asarray(b2, dt)

    return f


def _phi(n, d=3):
    return _mlp(1, n * d, 4)


def _psi(n, d=3):
    net = _mlp(2, n * d, n * d)
    return lambda x: net(x).reshape(n, d)


def _cloud(key, dtype):
    shift = jnp.asarray([[0.5, -0.2, 0.1]], dtype)
    return jax.random.normal(key, (_N, 3), dtype) + shift


def _shapes(dtype, kinds):
    rng = np.random.default_rng(0)
    out = []
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    if "planar" in kinds:
        out.append(np.concatenate([rng.normal(size=(_N, 2)), np.zeros((_N, 1))], -1))
    if "coincident" in kinds:
        x = rng.normal(size=(4, 3))
        out.append(np.concatenate([x, x[:3]]))
    if "square" in kinds:
        sq = np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], float)
        out.append(np.concatenate([sq, 2 * sq[:3]]))
    if "tetrahedron" in kinds:
        t = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)
        out.append(np.concatenate([t, -2 * t[:3]]))
    if "collinear" in kinds:
        out.append(np.linspace(-1, 1, _N)[:, None] * np.array([[0.3, -0.5, 0.8]]))
    if "cylinder" in kinds:
        ang = 2 * np.pi * np.arange(_N) / _N
        out.append(np.stack([np.cos(ang), np.sin(ang), np.zeros(_N) + 0.3], -1))
    return [jnp.asarray(x @ rot.T + 0.2, dtype) for x in out]


def _cloud_row(name, frame, group, equivariant, degenerate, notes=""):
    act = cloud_action(group)
    if equivariant:
        fn = fr.frame_average(_psi(_N), frame, act_in=act, act_out=act)
    else:
        fn = fr.frame_average(_phi(_N), frame, act_in=act)
    return Transform(
        name=name,
        fn=fn,
        group=group,
        act_in=act,
        act_out=act if equivariant else None,
        make_input=_cloud,
        degenerate_inputs=lambda dtype: _shapes(dtype, degenerate),
        notes=notes,
    )


_PCA_NOTE = (
    "PCA frame blended with the point-pair frame by the eigen-gap: exact on every "
    "cloud (degenerate spectra, collinear and coincident points included); every "
    "other frame and group on the full cloud registry in tests/frames/test_clouds.py."
)
_PAIR_NOTE = "point-pair frame: exact on every cloud; frame size 2n² + 6n + 48 (O3/E3)."


def _graph_input(key, dtype):
    k1, k2 = jax.random.split(key)
    a = jax.random.bernoulli(k1, 0.4, (_G, _G))
    a = jnp.triu(a, 1)
    a = (a | a.T).astype(dtype)
    x = jax.nn.one_hot(
        jax.random.bernoulli(k2, 0.5, (_G,)).astype(jnp.int32), 2, dtype=dtype
    )
    return (x, a)


def _graph_degenerate(dtype):
    cyc = np.roll(np.eye(_G), 1, 0) + np.roll(np.eye(_G), -1, 0)
    c4 = np.roll(np.eye(4), 1, 0) + np.roll(np.eye(4), -1, 0)
    two = np.zeros((_G, _G))
    two[:4, :4], two[4:, 4:] = c4, c4
    # one colour for every node, one-hot like the generic input (same shapes: the
    # degenerate and generic inputs share one batched program)
    same = np.tile([[1.0, 0.0]], (_G, 1))
    return [(jnp.asarray(same, dtype), jnp.asarray(a, dtype)) for a in (cyc, two)]


def _graph_rows():
    g = Sn(_G)
    frame = fr.graph_frame(max_size=128)
    net = _mlp(3, _G * _G + 2 * _G, 3)
    node = _mlp(4, _G * _G + 2 * _G, 2 * _G)

    def flat(xa):
        x, a = xa
        x = jnp.pad(x, ((0, 0), (0, 2 - x.shape[1])))
        return jnp.concatenate([a.reshape(-1), x.reshape(-1)])

    inv = fr.frame_average(lambda xa: net(flat(xa)), frame, act_in=act_graph_tensors)
    eqv = fr.frame_average(
        lambda xa: node(flat(xa)).reshape(_G, 2),
        frame,
        act_in=act_graph_tensors,
        act_out=lambda p, y: act_set(p, y),
    )
    note = (
        "IR-tree permutation frame (NumPy via pure_callback), max_size=128: exact "
        "on these inputs (cycle: 16 leaves, two 4-cycles: 128); order-sensitive MLP."
    )
    return [
        Transform(
            name="frames.graph_frame_invariant",
            fn=inv,
            group=g,
            act_in=act_graph_tensors,
            act_out=None,
            make_input=_graph_input,
            degenerate_inputs=_graph_degenerate,
            tol64=1e-6,
            tol32=1e-4,
            tol_degenerate=1e-6,
            differentiable=True,
            notes=note,
        ),
        Transform(
            name="frames.graph_frame_node_equivariant",
            fn=eqv,
            group=g,
            act_in=act_graph_tensors,
            act_out=lambda p, y: act_set(p, y),
            make_input=_graph_input,
            degenerate_inputs=_graph_degenerate,
            tol64=1e-6,
            tol32=1e-4,
            tol_degenerate=1e-6,
            notes=note,
        ),
    ]


def _product_row():
    act = fr.product_act(act_set, cloud_action(E3))

    def dist(x):  # distances to the centroid, at unit scale (no overflow at 1e30)
        u = x - x.mean(0, keepdims=True)
        s = jax.lax.stop_gradient(jnp.max(jnp.abs(u)))
        return jnp.linalg.norm(u / jnp.where(s > 0, s, 1), axis=-1)

    frame = fr.product_frame(fr.sort_frame(dist), fr.plain_pca_frame(E3))

    def sample(key, shape=(), dtype=None):
        k1, k2 = jax.random.split(key)
        return fr.ProductElement(Sn(_N).sample(k1, shape), E3.sample(k2, shape, dtype))

    return Transform(
        name="frames.product_sn_e3_equivariant",
        fn=fr.frame_average(_psi(_N), frame, act_in=act, act_out=act),
        group=E3,
        act_in=act,
        act_out=act,
        make_input=_cloud,
        degenerate_inputs=lambda dtype: _shapes(dtype, ("planar",)),
        sample=sample,
        notes="S_n × E(3): distance-sorted node order × plain PCA frame (generic "
        "clouds only: both factors need distinct keys / a simple spectrum).",
    )


ROWS: list[Transform] = [
    _cloud_row(
        "frames.pca_E3_equivariant",
        fr.pca_frame(E3),
        E3,
        True,
        ("tetrahedron", "collinear", "coincident"),
        _PCA_NOTE,
    ),
    _cloud_row(
        "frames.plain_pca_SO3_equivariant",
        fr.plain_pca_frame(SO3),
        SO3,
        True,
        ("planar",),
        "plain PCA frame (Puny et al.): exact on simple spectra only (generic and "
        "planar clouds here); not equivariant on degenerate ones (its docstring).",
    ),
    _product_row(),
    *_graph_rows(),
]
