"""Registry rows for eqjax.geometric: PONITA invariants and models, EGNN, MDS."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jraph
import numpy as np

from .. import geometric as geo
from ..groups import E3, EuclideanElement
from ..testing import Transform, built_once

_N = 6  # nodes per cloud
_S, _R = (np.nonzero(1 - np.eye(_N))[1], np.nonzero(1 - np.eye(_N))[0])
_SENDERS = jnp.asarray(_S, jnp.int32)  # complete graph, 30 edges
_RECEIVERS = jnp.asarray(_R, jnp.int32)


def _cloud(key, dtype):
    return jax.random.normal(key, (_N, 3), dtype) + jnp.asarray(
        [[0.3, -0.2, 0.1]], dtype
    )


def _unit(key, dtype):
    v = jax.random.normal(key, (_N, 3), dtype)
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def _move(g, x):
    return x @ g.R.T + g.t[None, :]


def _rot(g, v):
    return v @ g.R.T


def _coincident(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3))
    return np.concatenate([x, x[:2]])  # two pairs of coincident points


# --------------------------------------------------------------- invariants
def _fiber_invariants(inputs):
    pos, grid = inputs
    return geo.ponita_invariants(pos, _SENDERS, _RECEIVERS, grid)


def _fiber_input(key, dtype):
    grid = geo.sphere_grid(8, dtype=dtype)
    return (_cloud(key, dtype), grid)


def _point_cloud_invariants(inputs):
    pos, ori = inputs
    return geo.invariants_r3s2_point_cloud(pos, ori, _SENDERS, _RECEIVERS)


def _pc_input(key, dtype):
    k1, k2 = jax.random.split(key)
    return (_cloud(k1, dtype), _unit(k2, dtype))


def _pc_degenerate(dtype):
    x = _coincident(dtype)
    d = x[1] - x[0]
    ori = np.tile(d / np.linalg.norm(d), (_N, 1))  # orientations along an edge
    return [(jnp.asarray(x, dtype), jnp.asarray(ori, dtype))]


# ------------------------------------------------------------------- models
def _graph(pos, **nodes):
    return jraph.GraphsTuple(
        nodes={"positions": pos, **nodes},
        edges=None,
        senders=_SENDERS,
        receivers=_RECEIVERS,
        globals=None,
        n_node=jnp.asarray([_N]),
        n_edge=jnp.asarray([_SENDERS.shape[0]]),
    )


def _nnx_built(make):
    """An NNX model built on first use in one compiled program (op by op: one
    program per parameter shape), with ``rbg`` keys (cheaper to compile)."""

    def build():
        from flax import nnx

        return nnx.jit(lambda: make(nnx))()

    return built_once(build)


_egnn_model = _nnx_built(
    lambda nnx: _nn().EGNNLayer(
        4, 8, velocity=True, coord_scale=1.0, rngs=nnx.Rngs(_rbg(0))
    )
)
_pc_model = _nnx_built(
    lambda nnx: _nn().PONITA(
        0,
        8,
        2,
        scalar_outputs=2,
        vector_outputs=1,
        vector_inputs=1,
        mode="point_cloud",
        layer_scale=None,
        rngs=nnx.Rngs(_rbg(1)),
    )  # fmt: skip
)
_fb_model = _nnx_built(
    lambda nnx: _nn().PONITA(
        0,
        8,
        2,
        scalar_outputs=2,
        vector_outputs=1,
        num_ori=6,
        grid_kind="octahedral",
        layer_scale=None,
        rngs=nnx.Rngs(_rbg(2)),
    )  # fmt: skip
)
_lifted_model = _nnx_built(
    lambda nnx: _nn().PONITA(
        1,
        8,
        1,
        scalar_outputs=1,
        vector_outputs=1,
        vector_inputs=1,
        mode="point_cloud",
        readout="node",
        layer_scale=None,
        rngs=nnx.Rngs(_rbg(3)),
    )  # fmt: skip
)
_LIFT = geo.edge_lift(_S, _R, _N)  # 30 lifted nodes, 900 lifted edges
_H0 = np.random.default_rng(1).normal(size=(_N, 4))


def _nn():
    from .. import nn

    return nn


def _rbg(seed):
    return jax.random.key(seed, impl="rbg")


def _egnn(inputs):
    h, x, v = inputs
    return _egnn_model()(h, x, _SENDERS, _RECEIVERS, v=v)


def _egnn_input(key, dtype):
    k1, k2, k3 = jax.random.split(key, 3)
    return (
        jax.random.normal(k1, (_N, 4), dtype),
        _cloud(k2, dtype),
        jax.random.normal(k3, (_N, 3), dtype),
    )


def _egnn_act(g, hxv):
    h, x, v = hxv
    return (h, _move(g, x), _rot(g, v))


def _egnn_degenerate(dtype):
    x = _coincident(dtype)
    return [
        (
            jnp.asarray(_H0, dtype),
            jnp.asarray(x, dtype),
            jnp.zeros((_N, 3), dtype),
        )
    ]


def _ponita_pc(inputs):
    pos, ori, vec = inputs
    return _pc_model()(_graph(pos, orientations=ori, vectors=vec[:, None, :]))


def _pc_model_input(key, dtype):
    k1, k2, k3 = jax.random.split(key, 3)
    return (_cloud(k1, dtype), _unit(k2, dtype), jax.random.normal(k3, (_N, 3), dtype))


def _pc_model_act(g, inputs):
    pos, ori, vec = inputs
    return (_move(g, pos), _rot(g, ori), _rot(g, vec))


def _out_act(g, out):
    scalars, vectors = out
    return (scalars, jnp.einsum("ij,nvj->nvi", g.R, vectors))


def _ponita_fb(pos):
    return _fb_model()(_graph(pos))


def _octahedral_sample(key, shape=(), dtype=None):
    """E(3) elements with ``R`` uniform on the 48-element full octahedral group."""
    k1, k2 = jax.random.split(key)
    mats = geo.octahedral_rotations(reflections=True, dtype=dtype)
    idx = jax.random.randint(k1, shape, 0, mats.shape[0])
    t = jax.random.normal(k2, (*shape, 3), mats.dtype)
    return EuclideanElement(mats[idx], t)


def _ponita_lifted(inputs):
    pos, vec = inputs
    q = jnp.ones((_N, 1), pos.dtype)
    lifted = geo.lift_to_edges(_graph(pos, features=q, vectors=vec[:, None]), _LIFT)
    scalars, vectors = _lifted_model()(lifted)
    return (
        geo.lower_from_edges(scalars, _LIFT),
        geo.lower_from_edges(vectors, _LIFT),
    )


def _lifted_input(key, dtype):
    k1, k2 = jax.random.split(key)
    return (_cloud(k1, dtype), jax.random.normal(k2, (_N, 3), dtype))


def _mds(x):
    return geo.mds_representation(x, 3)


ROWS: list[Transform] = [
    Transform(
        name="geometric.ponita_invariants_fiber_bundle",
        fn=_fiber_invariants,
        group=E3,
        act_in=lambda g, pg: (_move(g, pg[0]), _rot(g, pg[1])),
        act_out=None,
        make_input=_fiber_input,
        degenerate_inputs=lambda dt: [
            (jnp.asarray(_coincident(dt), dt), geo.sphere_grid(8, dtype=dt))
        ],
        notes="spatial [E, O, 2] and fiber [O, O, 1]; positions and grid move together",
    ),
    Transform(
        name="geometric.invariants_r3s2_point_cloud",
        fn=_point_cloud_invariants,
        group=E3,
        act_in=lambda g, po: (_move(g, po[0]), _rot(g, po[1])),
        act_out=None,
        make_input=_pc_input,
        degenerate_inputs=_pc_degenerate,
        notes="[o_i·d, |d⊥|, o_i·o_j]; degenerate: coincident points, o ∥ d",
    ),
    Transform(
        name="geometric.egnn_layer_velocity",
        fn=_egnn,
        group=E3,
        act_in=_egnn_act,
        act_out=_egnn_act,
        make_input=_egnn_input,
        degenerate_inputs=_egnn_degenerate,
        notes="EGNNLayer (h, x, v); degenerate: coincident points, zero velocities",
    ),
    Transform(
        name="geometric.ponita_point_cloud",
        fn=_ponita_pc,
        group=E3,
        act_in=_pc_model_act,
        act_out=_out_act,
        make_input=_pc_model_input,
        degenerate_inputs=lambda dt: [(*_pc_degenerate(dt)[0], jnp.zeros((_N, 3), dt))],
        notes="nn.PONITA(mode='point_cloud'): graph scalars invariant, node vectors "
        "equivariant",
    ),
    Transform(
        name="geometric.ponita_fiber_octahedral",
        fn=_ponita_fb,
        group=E3,
        act_in=_move,
        act_out=_out_act,
        make_input=_cloud,
        degenerate_inputs=lambda dt: [jnp.asarray(_coincident(dt), dt)],
        sample=_octahedral_sample,
        notes="nn.PONITA fiber bundle on the 6-point octahedral grid: exact under "
        "the 48 octahedral elements (× translations), which permute the grid",
    ),
    Transform(
        name="geometric.ponita_point_cloud_edge_lifted",
        fn=_ponita_lifted,
        group=E3,
        act_in=lambda g, pv: (_move(g, pv[0]), _rot(g, pv[1])),
        act_out=_out_act,
        make_input=_lifted_input,
        degenerate_inputs=lambda dt: [
            (jnp.asarray(_H0[:, :3], dt), jnp.zeros((_N, 3), dt))
        ],  # zero velocities (coincident points have no edge direction)
        slow=True,
        notes="edge_lift + lift_to_edges + nn.PONITA(mode='point_cloud') + "
        "lower_from_edges (PONITA's num_ori=-1 mode); slow tier: "
        "tests/geometric/test_lifting.py checks it in float64",
    ),
    Transform(
        name="geometric.mds_representation",
        fn=_mds,
        group=E3,
        act_in=_move,
        act_out=None,
        make_input=_cloud,
        degenerate_inputs=None,
        tol64=1e-8,
        notes="generic clouds (simple spectrum); repeated eigenvalues are tested in "
        "tests/geometric (z defined up to an orthogonal mix; eigh has no gradient)",
    ),
]
