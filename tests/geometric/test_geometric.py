"""eqjax.geometric: radius/kNN graphs, invariants, PONITA, EGNN, MDS."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest
from flax import nnx

import eqjax as eq

geo = eq.geometric
E3 = eq.groups.E3


def _rot(g, v):
    return v @ g.R.T


def _move(g, x):
    return x @ g.R.T + g.t[None, :]


def _batch(clouds, pad_nodes=2, **extra):
    """A padded batch (last graph = padding) of clouds, no edges yet."""
    pos = np.concatenate([*clouds, np.zeros((pad_nodes, 3))])
    n_node = np.array([len(c) for c in clouds] + [pad_nodes])
    nodes = {"positions": jnp.asarray(pos)}
    nodes.update(extra)
    return jraph.GraphsTuple(
        nodes=nodes,
        edges=None,
        senders=None,
        receivers=None,
        globals=None,
        n_node=jnp.asarray(n_node),
        n_edge=jnp.zeros(len(n_node), jnp.int32),
    )


# ------------------------------------------------------------------ graphs
def test_radius_and_knn_graph_match_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)) * 1.5
    gid = np.repeat([0, 1, 2], [5, 5, 2])
    mask = gid < 2
    e = geo.radius_graph(
        jnp.asarray(x), 1.7, max_edges=60, graph_index=jnp.asarray(gid),
        node_mask=jnp.asarray(mask),
    )  # fmt: skip
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    want = {
        (j, i)
        for i in range(12)
        for j in range(12)
        if i != j and gid[i] == gid[j] and mask[i] and d[i, j] < 1.7
    }
    m = np.asarray(e.mask)
    got = set(
        zip(
            np.asarray(e.senders)[m].tolist(),
            np.asarray(e.receivers)[m].tolist(),
            strict=True,
        )
    )
    assert got == want and int(e.num_edges) == len(want) and not bool(e.overflow)
    assert (np.asarray(e.senders)[~m] == 11).all() and (
        np.asarray(e.receivers)[~m] == 11
    ).all()
    k = geo.knn_graph(
        jnp.asarray(x), 2, graph_index=jnp.asarray(gid), node_mask=jnp.asarray(mask)
    )
    km = np.asarray(k.mask).reshape(12, 2)
    assert km[:10].all() and not km[10:].any()
    for i in range(10):
        cand = [j for j in range(10) if gid[j] == gid[i] and j != i]
        best = sorted(cand, key=lambda j: d[i, j])[:2]
        assert sorted(np.asarray(k.senders).reshape(12, 2)[i].tolist()) == sorted(best)


def test_overflow_raises_eagerly_and_is_flagged_under_jit():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(6, 3)) * 0.1)
    with pytest.raises(ValueError, match="max_edges"):
        geo.radius_graph(x, 10.0, max_edges=5)
    e = jax.jit(lambda p: geo.radius_graph(p, 10.0, max_edges=5))(x)
    assert bool(e.overflow) and int(e.num_edges) == 30 and bool(e.mask.all())
    e = jax.jit(lambda p: geo.radius_graph(p, 10.0, max_edges=40))(x)
    assert not bool(e.overflow) and int(e.mask.sum()) == 30


def test_bad_inputs_raise_clear_errors():
    x = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match="radius must be > 0"):
        geo.radius_graph(x, 0.0, max_edges=4)
    with pytest.raises(ValueError, match=r"positions must have shape \[N, 3\]"):
        geo.radius_graph(jnp.zeros((4, 5)), 1.0, max_edges=4)
    with pytest.raises(ValueError, match="O >= 2"):
        geo.sphere_grid(1)
    with pytest.raises(ValueError, match="kind must be one of"):
        geo.sphere_grid(8, kind="cube")
    with pytest.raises(ValueError, match="6 points"):
        geo.sphere_grid(8, kind="octahedral")
    s, r = jnp.array([0]), jnp.array([1])
    with pytest.raises(ValueError, match="unit vectors"):
        geo.ponita_invariants(x, s, r, 2 * geo.sphere_grid(8))
    with pytest.raises(ValueError, match="O >= 2"):
        geo.ponita_invariants(x, s, r, jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="unit vectors"):
        geo.invariants_r3s2_point_cloud(x, jnp.ones((4, 3)), s, r)
    with pytest.raises(ValueError, match="positions"):
        geo.ponita_invariants(jnp.zeros((4,)), s, r, geo.sphere_grid(8))
    with pytest.raises(ValueError, match="padded batch"):
        geo.with_radius_graph(
            jraph.GraphsTuple(nodes={"positions": x}, edges=None, senders=None,
                receivers=None, globals=None, n_node=jnp.array([4]),
                n_edge=jnp.array([0])), 1.0, max_edges=4)  # fmt: skip
    with pytest.raises(ValueError, match="mode must be"):
        eq.nn.PONITA(0, 4, 1, mode="r2", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="radius must be > 0"):
        eq.nn.PONITA(0, 4, 1, radius=-1.0, rngs=nnx.Rngs(0))


# ------------------------------------------------------------- invariants
def test_invariants_exact_under_e3_and_pythagoras(key):
    with jax.enable_x64(True):
        k1, k2, k3 = jax.random.split(key, 3)
        x = jax.random.normal(k1, (7, 3), jnp.float64)
        o = jax.random.normal(k2, (7, 3), jnp.float64)
        o = o / jnp.linalg.norm(o, axis=-1, keepdims=True)
        s, r = jnp.nonzero(1 - jnp.eye(7))
        grid = geo.sphere_grid(12, kind="repulsion", dtype=jnp.float64)

        @jax.jit
        def errs(k):
            g = E3.sample(k, (), jnp.float64)
            sp, fb = geo.ponita_invariants(x, s, r, grid)
            sp2, fb2 = geo.ponita_invariants(_move(g, x), s, r, _rot(g, grid))
            pc = geo.invariants_r3s2_point_cloud(x, o, s, r)
            pc2 = geo.invariants_r3s2_point_cloud(_move(g, x), _rot(g, o), s, r)
            r3 = geo.invariants_r3(x, s, r) - geo.invariants_r3(_move(g, x), s, r)
            # control: the raw displacement is not invariant
            d = x[s] - x[r]
            d2 = _move(g, x)[s] - _move(g, x)[r]
            pyth = jnp.sum(sp**2, -1) - jnp.sum(d**2, -1)[:, None]
            return jnp.stack([
                jnp.abs(sp - sp2).max(), jnp.abs(fb - fb2).max(),
                jnp.abs(pc - pc2).max(), jnp.abs(r3).max(), jnp.abs(pyth).max(),
                jnp.abs(d - d2).max(),
            ])  # fmt: skip

        e = np.asarray(jax.vmap(errs)(jax.random.split(k3, 4)))
        assert e[:, :5].max() < 1e-12, e
        assert e[:, 5].min() > 1e-3  # the control is caught


def test_r2s1_invariant_under_se2_not_reflections():
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(2).normal(size=(5, 2)))
        s, r = jnp.nonzero(1 - jnp.eye(5))
        grid = geo.circle_grid(8, dtype=jnp.float64)
        a = 0.7
        R = jnp.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        F = jnp.diag(jnp.array([1.0, -1.0]))  # reflections flip the signed part

        @jax.jit
        def run(x, grid):
            sp, fb = geo.invariants_r2s1(x, s, r, grid)
            sp2, fb2 = geo.invariants_r2s1(x @ R.T + 1.0, s, r, grid @ R.T)
            sp3, _ = geo.invariants_r2s1(x @ F.T, s, r, grid @ F.T)
            return jnp.stack([
                jnp.abs(sp - sp2).max(), jnp.abs(fb - fb2).max(), jnp.abs(sp - sp3).max()
            ])  # fmt: skip

        e = np.asarray(run(x, grid))
        assert e[0] < 1e-12 and e[1] < 1e-12 and e[2] > 1e-3


def test_sphere_grids():
    for kind, n in (("fibonacci", 20), ("repulsion", 20), ("octahedral", 6)):
        g = np.asarray(geo.sphere_grid(n, kind=kind))
        np.testing.assert_allclose(np.linalg.norm(g, axis=-1), 1.0, atol=1e-6)
    oct_ = np.asarray(geo.sphere_grid(6, kind="octahedral"))
    np.testing.assert_array_equal(oct_, np.concatenate([np.eye(3), -np.eye(3)]))

    def min_dist(g):
        d = np.linalg.norm(g[:, None] - g[None], axis=-1) + 9 * np.eye(len(g))
        return d.min()

    assert min_dist(np.asarray(geo.sphere_grid(20, kind="repulsion"))) > min_dist(
        np.asarray(geo.sphere_grid(20))
    )
    assert geo.polynomial_features(jnp.ones((4, 2)), 3).shape == (4, 14)


# ------------------------------------------------------------------ PONITA
def _cloud_graph(x, **nodes):
    n = x.shape[0]
    s, r = np.nonzero(1 - np.eye(n))
    return jraph.GraphsTuple(
        nodes={"positions": x, **nodes}, edges=None, senders=jnp.asarray(r),
        receivers=jnp.asarray(s), globals=None, n_node=jnp.asarray([n]),
        n_edge=jnp.asarray([len(s)]),
    )  # fmt: skip


def _fiber_model():
    return eq.nn.PONITA(
        0, 16, 2, scalar_outputs=1, num_ori=6, grid_kind="octahedral",
        layer_scale=None, rngs=nnx.Rngs(0),
    )  # fmt: skip


def _energy(model, p, grid):
    return model(_cloud_graph(p), grid=grid)[0, 0]


def test_ponita_fiber_exact_under_the_24_octahedral_rotations(key):
    model = _fiber_model()
    with jax.enable_x64(True):
        x = jax.random.normal(key, (6, 3), jnp.float64)
        rots = geo.octahedral_rotations(dtype=jnp.float64)
        assert rots.shape == (24, 3, 3)

        @jax.jit
        def octa(grids):
            def err(grid):
                e0 = _energy(model, x, grid)
                e = jax.vmap(lambda R: _energy(model, x @ R.T + 0.3, grid))(rots)
                return jnp.abs(e - e0).max() / jnp.abs(e0)

            return jax.vmap(err)(grids)

        exact = geo.sphere_grid(6, kind="octahedral", dtype=jnp.float64)
        other = geo.sphere_grid(6, dtype=jnp.float64)  # not permuted by them
        e_exact, e_control = np.asarray(octa(jnp.stack([exact, other])))
        assert e_exact < 1e-9
        assert e_control > 1e-6  # the control: the check bites


@pytest.mark.slow
def test_ponita_fiber_error_falls_as_O_grows(key):
    """Random rotations: relative RMS energy error on Fibonacci grids O = 8, 16,
    32 must fall by at least 20% at each doubling (measured, can fail)."""
    model = _fiber_model()
    with jax.enable_x64(True):
        x = jax.random.normal(key, (6, 3), jnp.float64)
        rand = eq.groups.SO3.sample(jax.random.fold_in(key, 1), (16,), jnp.float64)
        errs = []
        for o in (8, 16, 32):
            grid = geo.sphere_grid(o, dtype=jnp.float64)

            @jax.jit
            def err(grid):
                e0 = _energy(model, x, grid)
                e = jax.vmap(lambda R: _energy(model, x @ R.T, grid))(rand)
                return jnp.sqrt(jnp.mean((e - e0) ** 2)) / jnp.abs(e0)

            errs.append(float(err(grid)))
        assert errs[1] < 0.8 * errs[0] and errs[2] < 0.8 * errs[1], errs


def test_padding_edges_never_change_outputs(key):
    rng = np.random.default_rng(3)
    clouds = [rng.normal(size=(5, 3)), rng.normal(size=(4, 3))]
    feats = jnp.asarray(rng.normal(size=(11, 2)), jnp.float32)
    batch = _batch(clouds, features=feats)
    model = eq.nn.PONITA(2, 8, 2, num_ori=8, radius=2.5, rngs=nnx.Rngs(0))
    egnn = eq.nn.EGNN(2, 8, 1, num_layers=2, rngs=nnx.Rngs(1))

    @jax.jit
    def both(b):
        outs = []
        for cap in (40, 90):
            g, overflow = geo.with_radius_graph(b, 2.5, max_edges=cap)
            outs.append((model(g)[:2], egnn(g).graph_features[:2], overflow))
        same = jnp.all(jraph.get_edge_padding_mask(g) == g.edges["mask"])
        gk, _ = geo.with_radius_graph(b, 2.5, max_edges=0, k=3)
        return outs, same, gk.senders.shape[0], jnp.sum(gk.edges["mask"])

    ((a, ea, oa), (b, eb, ob)), same, n_knn, real_knn = both(batch)
    assert not bool(oa) and not bool(ob) and bool(same)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ea, eb, rtol=1e-6, atol=1e-6)
    assert n_knn == 33 and int(real_knn) > 0


def test_models_are_node_permutation_equivariant(key):
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(7, 3)), jnp.float32)
    v = jnp.asarray(rng.normal(size=(7, 1, 3)), jnp.float32)
    g = _cloud_graph(x, vectors=v, velocities=v[:, 0])
    ponita = eq.nn.PONITA(
        0, 8, 2, vector_inputs=1, vector_outputs=1, num_ori=8, readout="node",
        layer_scale=None, rngs=nnx.Rngs(0),
    )  # fmt: skip
    egnn = eq.nn.EGNN(0, 8, 1, num_layers=2, velocity=True, rngs=nnx.Rngs(1))
    perms = eq.groups.graph_node_permutations(g)

    def fn(graph):
        s, vec = ponita(graph)
        out = egnn(graph)
        return s, vec, out.node_features, out.positions, out.velocities

    eq.testing.assert_equivariant(
        fn, perms, g, act_in=perms.act,
        act_out=lambda p, y: tuple(eq.groups.act_set(p, t, axis=0) for t in y),
        key=key, num_samples=4, tol=1e-4,
    )  # fmt: skip


def test_full_and_separable_conv_agree_when_kernel_factorises(key):
    """With k[e, o, o'] = k_f[o, o'] k_s[e, o'] the full convolution equals the
    separable one (the separable conv is the factorised special case)."""
    k1, k2, k3 = jax.random.split(key, 3)
    x = jax.random.normal(k1, (4, 5, 3))
    ks = jax.random.normal(k2, (6, 5, 3))
    kf = jax.random.normal(k3, (5, 5, 3))
    s, r = jnp.array([0, 1, 2, 3, 0, 2]), jnp.array([1, 2, 3, 0, 2, 0])
    sep = geo.separable_conv(x, ks, kf, s, r)
    full = geo.fiber_bundle_conv(x, ks[:, None, :, :] * kf[None], s, r)
    np.testing.assert_allclose(sep, full, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------- MDS
def test_mds_distances_invariance_scaling_permutations(key):
    with jax.enable_x64(True):
        x = jax.random.normal(key, (9, 3), jnp.float64) * jnp.array([[3.0, 2.0, 1.0]])
        dist = lambda p: jnp.linalg.norm(
            p[:, None] - p[None] + jnp.eye(len(p))[..., None], axis=-1
        )

        @jax.jit
        def check(k):
            k1, k2 = jax.random.split(k)
            g = E3.sample(k1, (), jnp.float64)
            p = jax.random.permutation(k2, 9)
            z = geo.mds_representation(x, 3)
            zs = geo.mds_representation(2.5 * _move(g, x), 3, scale_invariant=True)
            z1 = geo.mds_representation(x, 3, scale_invariant=True)
            return jnp.stack([
                jnp.abs(dist(z) - dist(x)).max(),
                jnp.abs(geo.mds_representation(_move(g, x), 3) - z).max(),
                jnp.abs(zs - z1).max(),
                jnp.abs(geo.mds_representation(x[p], 3) - z[p]).max(),
                jnp.abs(_move(g, x) - x).max(),  # control: raw points move
            ])  # fmt: skip

        e = np.asarray(jax.vmap(check)(jax.random.split(key, 4)))
        assert e[:, 0].max() < 1e-10 and e[:, 1:4].max() < 1e-9, e
        assert e[:, 4].min() > 1e-2


def test_mds_repeated_eigenvalues_behaviour():
    """Regular tetrahedron: the spectrum is a triple eigenvalue. Distances and the
    Gram matrix z zᵀ are preserved (and invariant); z itself is only defined up to
    an orthogonal mixing of the three columns: z(gx) = z(x) Q with Q orthogonal.
    A planar cloud with k = 3 has a zero third eigenvalue and a zero column."""
    with jax.enable_x64(True):
        t = jnp.array([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
        R = eq.groups.SO3.sample(jax.random.key(0), (), jnp.float64)

        @jax.jit
        def run(t, R):
            z, lam = geo.mds_representation(t, 3, return_eigenvalues=True)
            z2 = geo.mds_representation(t @ R.T, 3)
            d = lambda p: jnp.linalg.norm(
                p[:, None] - p[None] + jnp.eye(4)[..., None], axis=-1
            )
            Q = jnp.linalg.lstsq(z, z2)[0]
            planar = t[:, :2] * jnp.array([[1.0, 2.0]])
            zp, lp = geo.mds_representation(planar, 3, return_eigenvalues=True)
            return dict(
                lam=jnp.abs(lam - 4.0).max(),
                dist=jnp.abs(d(z) - d(t)).max(),
                gram=jnp.abs(z2 @ z2.T - z @ z.T).max(),
                mix=jnp.abs(z @ Q - z2).max(),
                orth=jnp.abs(Q @ Q.T - jnp.eye(3)).max(),
                zero=jnp.maximum(lp[2], jnp.abs(zp[:, 2]).max()),
            )

        out = {k: float(v) for k, v in run(t, R).items()}
        assert out["lam"] < 1e-12 and out["dist"] < 1e-12 and out["gram"] < 1e-12
        assert out["mix"] < 1e-10 and out["orth"] < 1e-10 and out["zero"] == 0.0
