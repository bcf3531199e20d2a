"""Registry rows for :mod:`eqjax.bodies`: SET (O(3) with gravity transformed, O_g(3)
with gravity fixed).

The controls that must fail (an off-axis rotation with gravity fixed changes
SET's outputs) are in ``tests/bodies``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import bodies as B
from ..groups import E3, O3, SO3, EuclideanElement, act_vectors, axis_subgroup
from ..testing import Transform

_K, _V, _C = 5, 2, 3  # parts, vector channels, scalar channels
_GRAVITY = (0.0, 0.0, -9.81)
_OG = axis_subgroup(_GRAVITY)


def _numpy_params(init, seed):
    """``init``'s parameter pytree as NumPy float32 arrays (weights ``N(0,
    1/fan_in)``, small biases), built on first use: no JAX program is compiled
    for a row's constants (``built_once`` evaluates eagerly, and ``eval_shape``
    under compile-time evaluation runs the initialiser op by op: 7 s)."""

    @functools.cache
    def get():
        rng = np.random.default_rng(seed)

        def fill(leaf):
            fan = leaf.shape[0] if len(leaf.shape) > 1 else 10.0
            return (rng.normal(size=leaf.shape) / np.sqrt(fan)).astype(np.float32)

        return jax.tree_util.tree_map(fill, jax.eval_shape(init))

    return get


_set_params = _numpy_params(
    lambda: B.set_init(
        jax.random.key(0),
        vector_in=_V,
        scalar_in=_C,
        vector_out=2,
        scalar_out=2,
        hidden_vectors=4,
        hidden_scalars=8,
        num_layers=1,
    ),
    0,
)


def _set_input(key, dtype):
    k1, k2, k3 = jax.random.split(key, 3)
    return (
        jax.random.normal(k1, (_K, _V, 3), dtype),
        jax.random.normal(k2, (_K, _C), dtype),
        jax.random.normal(k3, (3,), dtype) + jnp.asarray([0.0, 0.0, -2.0], dtype),
    )


def _rot(g, v):
    return jnp.einsum("ij,...j->...i", g, v)


def _set_all(x):
    return B.set_model(_set_params(), *x)


def _set_gravity_fixed(x):
    v, s = x
    return B.set_model(_set_params(), v, s, jnp.asarray(_GRAVITY, v.dtype))


def _out(g, y):
    return (_rot(g, y[0]), y[1])


def _set_degenerate(dtype):
    g = jnp.asarray([0.0, 0.0, -9.81], dtype)
    s = jnp.ones((_K, _C), dtype)
    along = jnp.broadcast_to(g, (_K, _V, 3))  # every vector parallel to gravity
    return [(jnp.zeros((_K, _V, 3), dtype), s, g), (along, s, g)]


# ------------------------------------------------------------- chordal mean
_A = 4  # anchors


def _chordal(x):
    R, w = x
    return B.chordal_mean(R, w)


@functools.partial(jax.jit, static_argnums=1)
def _chordal_input(key, dtype):
    k1, k2 = jax.random.split(key)
    # anchors spread around one rotation (a mean of Haar samples is near-singular)
    base = SO3.sample(k1, (), dtype)
    small = SO3.exp(0.6 * jax.random.normal(k2, (_A, 3), dtype))  # type: ignore[misc]
    w = jax.nn.softmax(jax.random.normal(jax.random.fold_in(k2, 1), (_A,), dtype))
    return (jnp.einsum("ij,ajk->aik", base, small), w)


_ROT = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
_ROT = _ROT * np.sign(np.linalg.det(_ROT))  # a fixed rotation (det +1)


def _chordal_degenerate(dtype):
    R = jnp.asarray(_ROT, dtype)
    w = jnp.full((_A,), 1.0 / _A, dtype)
    # equal anchors (repeated singular values); one anchor with all the weight
    return [
        (jnp.broadcast_to(R, (_A, 3, 3)), w),
        (_chordal_input(jax.random.key(3), dtype)[0], jnp.eye(_A, dtype=dtype)[1]),
    ]


# ------------------------------------------------- piecewise frame averaging
_PARTS, _PER = 3, 6
_BOX = np.random.default_rng(0).uniform(size=(_PARTS, _PER, 3)) * np.array(
    [3.0, 1.6, 0.8]
)
_LABELS = np.repeat(np.arange(_PARTS), _PER)
_W1 = np.random.default_rng(1).normal(size=(3, 8))
_W2 = np.random.default_rng(2).normal(size=(8, 3)) / np.sqrt(8)


def _pointnet(x, w):
    """A weighted-pooling PointNet: per-part scalars (3,) and per-point vectors."""
    h = jnp.tanh(x @ jnp.asarray(_W1, x.dtype) + 0.3)
    pooled = jnp.sum(w[:, None] * h, 0) / jnp.sum(w)
    s = jnp.tanh(pooled @ jnp.asarray(_W2, x.dtype))
    gate = jnp.tanh(h @ jnp.asarray(_W2[:, :1], x.dtype) + jnp.sum(s) + 0.2)
    return s, x * gate


def _piecewise(x):
    parts = jax.nn.one_hot(jnp.asarray(_LABELS), _PARTS, dtype=x.dtype)
    s, v = B.piecewise_frame_average(
        _pointnet, x, parts, act_out=lambda g, y: (y[0], act_vectors(g, y[1]))
    )
    return s, B.part_outputs(parts, v)


def _per_part_sample(key, shape=(), dtype=None):
    """One E(3) element per part: ``(*shape, K)`` elements (reflections half the
    time)."""
    return E3.sample(key, (*shape, _PARTS), dtype)


def _per_part_act(g, x):
    lab = jnp.asarray(_LABELS)
    return jnp.einsum("nij,nj->ni", g.R[lab], x) + g.t[lab]


def _per_part_out(g, y):
    s, v = y
    return s, jnp.einsum("nij,nj->ni", g.R[jnp.asarray(_LABELS)], v)


@functools.partial(jax.jit, static_argnums=1)
def _body_input(key, dtype):
    g = _per_part_sample(key, (), dtype)
    return _per_part_act(g, jnp.asarray(_BOX.reshape(-1, 3), dtype))


_apen_params = _numpy_params(lambda: B.apen_init(jax.random.key(0), 4, hidden=16), 1)


def _apen(x):
    return B.apen(_apen_params(), x, num_parts=_PARTS, em_steps=4)


_arteq_params = _numpy_params(
    lambda: B.arteq_init(jax.random.key(0), _PARTS, hidden=16, anchors="grid"), 2
)
_arteq_frames_params = _numpy_params(
    lambda: B.arteq_init(jax.random.key(0), _PARTS, hidden=16), 3
)


def _arteq(x):
    return B.arteq(_arteq_params(), x, [-1, 0, 1])


def _arteq_frames(x):
    return B.arteq(_arteq_frames_params(), x, [-1, 0, 1])


def _grid_sample(key, shape=(), dtype=None):
    """Rotations (as E(3) elements without translation) uniform on the 24
    octahedral rotations. No translation: the rows also run on clouds scaled to
    1e-30, which a unit translation would collapse to one point in float32;
    translation invariance is checked at unit scale in tests/bodies."""
    from ..geometric import octahedral_rotations

    mats = octahedral_rotations(dtype=dtype)
    idx = jax.random.randint(key, shape, 0, mats.shape[0])
    return EuclideanElement(mats[idx], jnp.zeros((*shape, 3), mats.dtype))


def _rotation_sample(key, shape=(), dtype=None):
    """Haar rotations as E(3) elements without translation (see :func:`_grid_sample`)."""
    R = SO3.sample(key, shape, dtype)
    return EuclideanElement(R, jnp.zeros((*shape, 3), R.dtype))


ROWS: list[Transform] = [
    Transform(
        name="bodies.set_O3",
        fn=_set_all,
        group=O3,
        act_in=lambda g, x: (_rot(g, x[0]), x[1], _rot(g, x[2])),
        act_out=_out,
        make_input=_set_input,
        degenerate_inputs=_set_degenerate,
        notes="SET (Chen et al., ICML 2023): vectors and gravity rotate together "
        "(O(3), reflections included); degenerate: zero vectors, vectors ∥ gravity",
    ),
    Transform(
        name="bodies.set_Og3_gravity_fixed",
        fn=_set_gravity_fixed,
        group=_OG,
        act_in=lambda g, x: (_rot(g, x[0]), x[1]),
        act_out=_out,
        make_input=lambda key, dtype: _set_input(key, dtype)[:2],
        degenerate_inputs=lambda dt: [d[:2] for d in _set_degenerate(dt)],
        notes="gravity (0, 0, -9.81) fixed: O_g(3) = rotations about and "
        "reflections through planes containing the gravity axis (slow tier: "
        "tests/bodies checks it, with the off-axis control, in the fast tier)",
        slow=True,
    ),
    Transform(
        name="bodies.chordal_mean_left_SO3",
        fn=_chordal,
        group=SO3,
        act_in=lambda g, x: (jnp.einsum("ij,ajk->aik", g, x[0]), x[1]),
        act_out=lambda g, R: g @ R,
        make_input=_chordal_input,
        degenerate_inputs=_chordal_degenerate,
        notes="ArtEq's weighted chordal mean (SVD projection, det fix): "
        "mean(Q R_a) = Q mean(R_a); degenerate: equal anchors, one-hot weights "
        "(slow tier: tests/bodies/test_chordal.py checks it in the fast tier)",
        slow=True,
    ),
    Transform(
        name="bodies.piecewise_frame_average_per_part_E3",
        fn=_piecewise,
        group=E3,
        act_in=_per_part_act,
        act_out=_per_part_out,
        make_input=_body_input,
        sample=_per_part_sample,
        degenerate_inputs=None,
        tol64=1e-8,
        notes="APEN: a weighted PointNet frame-averaged per part (weighted PCA "
        "frames, 3 box parts with distinct covariance eigenvalues); each part "
        "moved by its own E(3) element: per-part scalars invariant, per-point "
        "vectors rotated by their part's rotation (slow tier: "
        "tests/bodies/test_piecewise.py checks it on a split partition)",
        slow=True,
    ),
    Transform(
        name="bodies.apen_global_E3",
        fn=_apen,
        group=E3,
        act_in=lambda g, x: E3.act(g, x),
        act_out=None,
        make_input=_body_input,
        degenerate_inputs=None,
        tol64=1e-8,
        notes="APEN with predicted parts (votes, EM, merge/prune, piecewise frame "
        "averaging): logits and soft parts invariant under a global E(3) motion "
        "(slow tier)",
        slow=True,
    ),
    Transform(
        name="bodies.arteq_octahedral",
        fn=_arteq,
        group=E3,
        act_in=lambda g, x: E3.act(g, x),
        act_out=lambda g, y: (y[0], g.R @ y[1]),
        make_input=_body_input,
        sample=_grid_sample,
        degenerate_inputs=None,
        notes="ArtEq-style model, anchors='grid' (scale normalisation, octahedral "
        "lifting, part pooling, kinematic conditioning, chordal mean of 24 "
        "residual-corrected anchors): exact under the 24 grid rotations: logits "
        "invariant, part rotations R -> q R (slow tier: tests/bodies/test_arteq.py "
        "checks it, with translations, scales 1e-4…1e4 and the off-grid control, "
        "in the fast tier)",
        slow=True,
    ),
    Transform(
        name="bodies.arteq_part_frames",
        fn=_arteq_frames,
        group=E3,
        act_in=lambda g, x: E3.act(g, x),
        act_out=lambda g, y: (y[0], g.R @ y[1]),
        make_input=_body_input,
        sample=_rotation_sample,
        degenerate_inputs=None,
        tol32=1e-3,
        notes="ArtEq-style model, anchors='part_frames' (the default: anchors in "
        "the body's and each soft part's weighted PCA frame): exact under every "
        "rotation on parts with distinct covariance eigenvalues: logits "
        "invariant, part rotations R -> q R; float32 to 1e-3 relative (the "
        "eigenvectors' rounding amplified by the eigen-gaps; float64 to 1e-9) "
        "(slow tier: tests/bodies/test_arteq.py checks it in the fast tier)",
        slow=True,
    ),
]
