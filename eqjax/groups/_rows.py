"""Registry rows for the group actions of :mod:`eqjax.groups`.

An action ``act: G × X → X`` is itself equivariant when G acts on G by
conjugation: ``act(h g h⁻¹, h·x) = h·act(g, x)``. Each row checks that identity
for one action (it holds only if ``act`` is a homomorphism compatible with
``compose`` and ``inverse``), under the shared checks of ``tests/test_common.py``.

``ROWS`` holds one row per kind of action (orthogonal matrices with reflections,
Euclidean pytrees, non-orthogonal matrices, Wigner-D on irreps, permutations of
sets, relabelling of padded graphs): six rows keep the area's share of the fast
tier small. ``SLOW_ROWS`` holds the other groups' actions; ``tests/groups``
runs the same checks on them in the slow tier.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from .. import groups as G
from ..testing import Transform, cast_floating, random_graph


def _action_row(name, group, make_x, *, act=None, degenerate_x=(), notes="", **kw):
    act = group.act if act is None else act

    def fn(gx):
        return act(gx[0], gx[1])

    def act_in(h, gx):
        g, x = gx
        return group.compose(group.compose(h, g), group.inverse(h)), act(h, x)

    def make_input(key, dtype):
        k1, k2 = jax.random.split(key)
        return cast_floating(group.sample(k1, ()), dtype), make_x(k2, dtype)

    def degenerate_inputs(dtype):
        ident = cast_floating(group.identity(()), dtype)
        g = cast_floating(group.sample(jax.random.key(7), ()), dtype)
        return [(h, make(dtype)) for make in degenerate_x for h in (ident, g)]

    return Transform(
        name=name,
        fn=fn,
        group=group,
        act_in=act_in,
        act_out=act,
        make_input=make_input,
        degenerate_inputs=degenerate_inputs,
        notes=notes,
        **kw,
    )


def _points(n):
    return lambda key, dtype: jax.random.normal(key, (6, n), dtype)


def _zeros(n):
    return lambda dtype: jnp.zeros((6, n), dtype)


def _coincident(n):
    return lambda dtype: jnp.ones((6, n), dtype)


def _irreps_input(key, dtype):
    # one irrep of each l, with the parity that differs from (-1)^l at l = 1, 2
    return e3nn.normal("0e + 1e + 2o", key, (), dtype=dtype)


_GRAPH_TEMPLATE = random_graph(0, (4, 0, 3), pad_to=(10, 6, 4), dtype=np.float32)


def _graph_input(key, dtype):
    seed = int(jax.random.randint(key, (), 0, 2**30))
    return random_graph(seed, (4, 0, 3), pad_to=(10, 6, 4), dtype=np.dtype(dtype))


def _rows():
    rows = []
    for grp in (G.SO2, G.O2, G.SO3, G.O3, G.SOn(4), G.axis_rotations((1.0, 2.0, 2.0))):
        n = grp.dim
        rows.append(
            _action_row(
                f"groups.{grp.name}.act",
                grp,
                _points(n),
                degenerate_x=(_zeros(n), _coincident(n)),
            )
        )
    for grp in (G.SE3, G.E3):
        rows.append(
            _action_row(
                f"groups.{grp.name}.act",
                grp,
                _points(3),
                degenerate_x=(_zeros(3), _coincident(3)),
            )
        )
        rows.append(
            _action_row(
                f"groups.{grp.name}.act_vectors",
                grp,
                _points(3),
                act=G.act_vectors,
                degenerate_x=(_zeros(3),),
            )
        )
    for grp in (G.GLPlus(3), G.SL(3), G.Aff(3)):
        rows.append(
            _action_row(
                f"groups.{grp.name}.act",
                grp,
                _points(3),
                tol32=3e-4,
                degenerate_x=(_zeros(3), _coincident(3)),
                notes="non-orthogonal: conjugation uses a matrix inverse",
            )
        )
    rows.append(
        _action_row(
            "groups.act_irreps",
            G.O3,
            _irreps_input,
            act=G.act_irreps,
            degenerate_x=(lambda dtype: e3nn.zeros("0e + 1e + 2o", (), dtype),),
        )
    )
    rows.append(
        _action_row(
            "groups.Sn.act_set",
            G.Sn(7),
            lambda k, d: jax.random.normal(k, (7, 4), d),
            degenerate_x=(lambda d: jnp.ones((7, 4), d),),
        )
    )
    rows.append(
        _action_row(
            "groups.act_adjacency",
            G.Sn(6),
            lambda k, d: jax.random.normal(k, (6, 6), d),
            act=G.act_adjacency,
            degenerate_x=(lambda d: jnp.zeros((6, 6), d),),
        )
    )
    rows.append(
        _action_row(
            "groups.act_graph",
            G.graph_node_permutations(_GRAPH_TEMPLATE),
            _graph_input,
            act=G.act_graph,
            degenerate_x=(
                lambda d: random_graph(
                    1, (4, 0, 3), (0, 0, 0), pad_to=(10, 6, 4), dtype=np.dtype(d)
                ),
                lambda d: jax.tree_util.tree_map(
                    jnp.zeros_like,
                    random_graph(2, (4, 0, 3), pad_to=(10, 6, 4), dtype=np.dtype(d)),
                ),
            ),
            notes="batched GraphsTuple: 3 graphs (one empty) + jraph padding; "
            "degenerate: no edges, all-zero features",
        )
    )
    return rows


_FAST = (
    "groups.O3.act",
    "groups.E3.act",
    "groups.GLPlus(3).act",
    "groups.act_irreps",
    "groups.Sn.act_set",
    "groups.act_graph",
)
_ALL = _rows()
ROWS = [r for r in _ALL if r.name in _FAST]
SLOW_ROWS = [r for r in _ALL if r.name not in _FAST]
