"""Permutation specs derived from NNX modules and written by hand;
``apply_permutation`` leaves the function unchanged (float64 < 1e-12) and the
singular values of every layer unchanged; bad specs fail loudly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eqjax as eq
from eqjax.weights._testmodels import VOCAB, build

W = eq.weights
KINDS = ("mlp", "cnn", "cnn_flatten", "residual", "transformer")


def _np_perm(spec, seed):
    rng = np.random.default_rng(seed)
    return {
        k: jnp.asarray(rng.permutation(n), jnp.int32) for k, n in spec.sizes.items()
    }


def _inputs(kind, x, dtype):
    rng = np.random.default_rng(1)
    if kind == "transformer":
        return jnp.asarray(rng.integers(0, VOCAB, x.shape), jnp.int32)
    return jnp.asarray(rng.standard_normal(x.shape), dtype)


@pytest.fixture(scope="module")
def models64():
    with jax.enable_x64(True):
        out = {}
        for kind in KINDS:
            m, x = build(kind, seed=3, dtype=jnp.float64)
            out[kind] = (m, _inputs(kind, x, jnp.float64), W.permutation_spec(m))
        return out


def test_derived_specs_have_the_expected_structure(models64):
    mlp = models64["mlp"][2]
    assert sorted(mlp.sizes.values()) == [6, 8]
    h1 = mlp.axes["layers/0/kernel"][1]
    assert mlp.axes["layers/0/bias"] == (h1,) and mlp.axes["layers/2/kernel"][0] == h1
    assert mlp.axes["layers/4/kernel"][1] is None  # outputs stay put
    cnn = models64["cnn"][2]
    assert sorted(cnn.sizes.values()) == [4, 6]
    c2 = cnn.axes["layers/3/kernel"][3]  # through max pooling and the global mean
    assert cnn.axes["layers/7/kernel"] == (c2, None)
    assert cnn.axes["layers/3/kernel"][:2] == (None, None)  # spatial axes fixed
    flat = models64["cnn_flatten"][2]  # conv -> max pool -> flatten -> dense
    c2 = flat.axes["layers/3/kernel"][3]
    # the dense kernel (2*2*6, 5) is seen as (pixels, channels, out): the last
    # convolution's channel permutation acts on its channel factor
    assert flat.views == {"layers/7/kernel": (4, 6, 5)}
    h = flat.axes["layers/7/bias"][0]
    assert flat.axes["layers/7/kernel"] == (None, c2, h)
    assert flat.axes["layers/9/kernel"] == (h, None)
    assert sorted(flat.sizes.values()) == [4, 5, 6]
    res = models64["residual"][2]
    stream = res.axes["inp/kernel"][1]  # one permutation for the whole skip path
    for p in ("down/0/bias", "down/1/bias", "norms/0/scale", "norms/1/bias"):
        assert res.axes[p] == (stream,)
    assert res.axes["out/kernel"] == (stream, None)
    assert res.axes["up/0/kernel"][1] == res.axes["down/0/kernel"][0] != stream
    # each block's hidden units are their own class (relu is one cached jaxpr
    # called twice: its call sites must not be joined)
    assert res.axes["up/1/kernel"][1] not in (stream, res.axes["up/0/kernel"][1])
    assert len(res.sizes) == 3
    tr = models64["transformer"][2]
    heads = tr.axes["attn/query/kernel"][1]
    assert tr.sizes[heads] == 2  # heads are permuted as blocks
    for p in ("attn/key/kernel", "attn/value/kernel"):
        assert tr.axes[p][1] == heads
    assert tr.axes["attn/out/kernel"][0] == heads
    qk, v = tr.axes["attn/query/kernel"][2], tr.axes["attn/value/kernel"][2]
    assert tr.axes["attn/key/kernel"][2] == qk != v == tr.axes["attn/out/kernel"][1]
    res_stream = tr.axes["embed/embedding"][1]
    for p in ("norm1/scale", "norm2/scale", "norm2/bias", "attn/out/bias", "down/bias"):
        assert tr.axes[p] == (res_stream,)
    assert tr.axes["embed/embedding"][0] is None and tr.axes["head/kernel"][1] is None


def test_random_permutation_leaves_outputs_unchanged_float64(models64):
    """One compiled program for the four models: the outputs of the permuted
    models equal the originals to 1e-12 (the permutations are traced)."""
    with jax.enable_x64(True):
        graphs, states, xs, specs, perms = {}, {}, {}, {}, {}
        for kind, (m, x, spec) in models64.items():
            graphs[kind], states[kind] = nnx.split(m)
            xs[kind], specs[kind], perms[kind] = x, spec, _np_perm(spec, 7)

        @jax.jit
        def check(states, xs, perms):
            out = {}
            for kind in KINDS:
                f = lambda s: nnx.merge(graphs[kind], s)(xs[kind])  # noqa: B023
                sp = W.apply_permutation(specs[kind], perms[kind], states[kind])
                y0, y1 = f(states[kind]), f(sp)
                out[kind] = (jnp.max(jnp.abs(y0 - y1)), jnp.max(jnp.abs(y0)))
            return out

        res = check(states, xs, perms)
        for kind, (err, scale) in res.items():
            assert float(scale) > 0.1, kind
            assert float(err) < 1e-12, (kind, float(err))
            # the parameters really moved
            moved = W.apply_permutation(specs[kind], perms[kind], states[kind])
            assert W.l2_distance(moved, states[kind]) > 0.1, kind


def test_permutation_leaves_singular_values_unchanged(models64):
    m, _, spec = models64["transformer"]
    st = nnx.state(m)
    with jax.enable_x64(True):
        sp = W.apply_permutation(spec, _np_perm(spec, 2), st)
    a, b = W._spec._float_leaves(st), W._spec._float_leaves(sp)
    checked = 0
    for path, names in spec.axes.items():
        if len(names) < 2 or all(n is None for n in names):
            continue
        wa = np.asarray(a[path]).reshape(a[path].shape[0], -1)
        wb = np.asarray(b[path]).reshape(b[path].shape[0], -1)
        assert not np.allclose(wa, wb)
        np.testing.assert_allclose(
            np.linalg.svd(wa, compute_uv=False),
            np.linalg.svd(wb, compute_uv=False),
            rtol=1e-12,
            atol=1e-12,
        )
        checked += 1
    assert checked >= 6


def test_inverse_permutation_restores_the_state(models64):
    m, _, spec = models64["cnn"]
    st = nnx.state(m)
    p = _np_perm(spec, 4)
    with jax.enable_x64(True):
        back = W.apply_permutation(
            spec, W.invert_permutation(p), W.apply_permutation(spec, p, st)
        )
    assert W.l2_distance(back, st) == 0.0


def test_hand_written_spec_matches_the_derived_one(models64):
    m, _, derived = models64["mlp"]
    st = nnx.state(m)
    hand = W.spec_from_axes(
        {
            "layers/0/kernel": (None, "h1"),
            "layers/0/bias": ("h1",),
            "layers/2/kernel": ("h1", "h2"),
            "layers/2/bias": ("h2",),
            "layers/4/kernel": ("h2", None),
            "layers/4/bias": (None,),
        },
        st,
    )
    assert hand.sizes == {"h1": 8, "h2": 6}
    rename = {
        derived.axes["layers/0/bias"][0]: "h1",
        derived.axes["layers/2/bias"][0]: "h2",
    }
    assert {
        k: tuple(rename.get(n, n) if n else None for n in v)
        for k, v in derived.axes.items()
    } == dict(hand.axes)


def test_dense_rotation_of_hidden_units_is_not_a_symmetry(key):
    """The control: an orthogonal mixing of the hidden units (an invertible map
    that is not a permutation) changes a ReLU network, and the same
    ``eqjax.testing`` check that passes for permutations fails for it."""
    with jax.enable_x64(True):
        m, x = build("mlp", seed=5, dtype=jnp.float64)
        x = _inputs("mlp", x, jnp.float64)
        spec = W.permutation_spec(m)
        graph, st = nnx.split(m)
        f = lambda s: nnx.merge(graph, s)(x)
        G = W.permutation_group(spec)
        eq.testing.assert_invariant(
            f, G, st, act_in=G.act, key=key, num_samples=4, tol=1e-12
        )
        h1 = spec.axes["layers/0/bias"][0]

        def rotate(Q, s):
            def one(path, v):
                p = W.path_string(path)
                if p in ("layers/0/kernel", "layers/0/bias"):
                    return v @ Q
                return Q.T @ v if p == "layers/2/kernel" else v

            return jax.tree_util.tree_map_with_path(one, s)

        O = eq.groups.On(spec.sizes[h1])
        with pytest.raises(AssertionError):
            eq.testing.assert_invariant(
                f, O, st, act_in=rotate, key=key, num_samples=4, tol=1e-6
            )


def test_bad_specs_and_permutations_fail_loudly(models64):
    m, _, spec = models64["mlp"]
    st = nnx.state(m)
    partial = W.PermutationSpec(
        axes={k: v for k, v in spec.axes.items() if k != "layers/2/bias"},
        sizes=spec.sizes,
    )
    with pytest.raises(
        ValueError, match="does not cover the parameters.*layers/2/bias"
    ):
        W.apply_permutation(partial, W.identity_permutation(spec), st)
    wrong = W.PermutationSpec(
        axes=dict(spec.axes, **{"layers/2/bias": (spec.axes["layers/0/bias"][0],)}),
        sizes=spec.sizes,
    )
    with pytest.raises(ValueError, match="layers/2/bias.*axis 0 has size 6"):
        W.apply_permutation(wrong, W.identity_permutation(spec), st)
    with pytest.raises(ValueError, match="shape .* but the spec names 1 axes"):
        W.apply_permutation(
            W.PermutationSpec(
                axes=dict(spec.axes, **{"layers/0/kernel": (None,)}), sizes=spec.sizes
            ),
            W.identity_permutation(spec),
            st,
        )
    with pytest.raises(ValueError, match="acts on .* of size 8 and on 'layers/2/bias'"):
        W.spec_from_axes({"layers/0/bias": ("h",), "layers/2/bias": ("h",)}, st)
    with pytest.raises(ValueError, match="not a parameter"):
        W.spec_from_axes({"nope": ("h",)}, st)
    bad = dict(W.identity_permutation(spec))
    name = sorted(bad)[0]
    with pytest.raises(ValueError, match="must have shape"):
        W.apply_permutation(spec, dict(bad, **{name: bad[name][:-1]}), st)
    with pytest.raises(ValueError, match="missing"):
        W.apply_permutation(spec, {name: bad[name]}, st)
    with pytest.raises(ValueError, match="not a permutation"):
        W.apply_permutation(spec, dict(bad, **{name: jnp.zeros_like(bad[name])}), st)
    with pytest.raises(ValueError, match="could not call"):
        W.permutation_spec(m, jnp.zeros((2, 5)))


def test_a_flatten_after_a_convolution_permutes_its_channels(models64):
    """Flattening ``(H, W, C)`` into a dense layer: the channel permutation of the
    convolution reaches the dense kernel's ``H * W * C`` axis pixel by pixel; the
    hand-written spec with the same view is the derived one; a flatten of
    channels-first features (a transpose first) works the same way."""
    m = nnx.eval_shape(  # an abstract module: the spec needs shapes only
        lambda: nnx.Sequential(
            nnx.Conv(2, 4, (3, 3), rngs=nnx.Rngs(0)),
            nnx.relu,
            lambda h: h.reshape(h.shape[0], -1),
            nnx.Linear(8 * 8 * 4, 5, rngs=nnx.Rngs(0)),
            nnx.relu,
            nnx.Linear(5, 2, rngs=nnx.Rngs(0)),
        )
    )
    spec = W.permutation_spec(m)
    c, h = spec.axes["layers/0/bias"][0], spec.axes["layers/3/bias"][0]
    assert spec.sizes == {c: 4, h: 5}
    assert spec.views == {"layers/3/kernel": (64, 4, 5)}
    assert spec.axes["layers/3/kernel"] == (None, c, h)
    hand = W.spec_from_axes(
        {
            "layers/0/kernel": (None, None, None, "c"),
            "layers/0/bias": ("c",),
            "layers/3/kernel": (None, "c", "h"),
            "layers/3/bias": ("h",),
            "layers/5/kernel": ("h", None),
            "layers/5/bias": (None,),
        },
        nnx.state(m),
        views={"layers/3/kernel": (64, 4, 5)},
    )
    rename = {c: "c", h: "h"}
    assert hand.views == spec.views
    assert {
        k: tuple(rename.get(n, n) if n else None for n in v)
        for k, v in spec.axes.items()
    } == dict(hand.axes)
    with pytest.raises(ValueError, match="does not split its shape"):
        W.spec_from_axes(
            {"layers/3/kernel": (None, "c", "h")},
            nnx.state(m),
            views={"layers/3/kernel": (4, 64, 6)},
        )
    with pytest.raises(ValueError, match="has view .* but the spec names 2 axes"):
        W.spec_from_axes(
            {"layers/3/kernel": (None, "h")},
            nnx.state(m),
            views={"layers/3/kernel": (64, 4, 5)},
        )
    # channels first: (B, C, H, W) flattened; the view puts the channels outside
    cf = nnx.eval_shape(
        lambda: nnx.Sequential(
            nnx.Conv(2, 4, (3, 3), rngs=nnx.Rngs(0)),
            lambda h: jnp.moveaxis(h, -1, 1).reshape(h.shape[0], -1),
            nnx.Linear(4 * 8 * 8, 5, rngs=nnx.Rngs(0)),
        )
    )
    cspec = W.permutation_spec(cf)
    assert cspec.views == {"layers/2/kernel": (4, 64, 5)}
    assert cspec.axes["layers/2/kernel"] == (cspec.axes["layers/0/bias"][0], None, None)

    # a reshape that mixes the channels with the pixels fixes them: on a 6x6
    # grid, (6, 6, 4) -> (24, 6) has no common factorisation (4 does not divide
    # 6); a reshape that only splits the channel factor keeps a subgroup
    def conv_reshape(shape):
        return nnx.eval_shape(
            lambda: nnx.Sequential(
                nnx.Conv(2, 4, (3, 3), rngs=nnx.Rngs(0)),
                lambda h: h.reshape(h.shape[0], *shape).reshape(h.shape[0], -1),
                nnx.Linear(6 * 6 * 4, 5, rngs=nnx.Rngs(0)),
            )
        )

    x6 = jnp.zeros((1, 6, 6, 2))
    assert W.permutation_spec(conv_reshape((24, 6)), x6).sizes == {}
    halves = W.permutation_spec(conv_reshape((72, 2)), x6)  # C = 4 as (2, 2)
    assert sorted(halves.sizes.values()) == [2, 2]
    assert halves.views["layers/0/kernel"] == (3, 3, 2, 2, 2)


def test_reshaped_factors_are_symmetries_float64():
    """Two more reshapes the derivation keeps apart, checked on outputs (float64
    < 1e-12): attention written by hand (``H * D`` projections reshaped to
    ``(H, D)``: heads permuted as blocks, features within a head), and a feature
    map whose channels a reshape splits as ``(2, 2)`` (a subgroup of S4)."""

    class Attention(nnx.Module):
        def __init__(self, rngs, dtype):
            kw = {"param_dtype": dtype, "rngs": rngs}
            self.q, self.k, self.v, self.o = (nnx.Linear(8, 8, **kw) for _ in "qkvo")

        def __call__(self, x):
            b, n, _ = x.shape
            heads = lambda t: t.reshape(b, n, 2, 4)  # noqa: E731
            q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
            a = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), axis=-1)
            return self.o(jnp.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, n, 8))

    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        attn = Attention(nnx.Rngs(0), jnp.float64)
        halves = nnx.Sequential(
            nnx.Conv(2, 4, (3, 3), param_dtype=jnp.float64, rngs=nnx.Rngs(0)),
            nnx.relu,
            lambda h: h.reshape(h.shape[0], 72, 2).reshape(h.shape[0], -1),
            nnx.Linear(144, 3, param_dtype=jnp.float64, rngs=nnx.Rngs(0)),
        )
        cases = {}
        for name, m, shape in (
            ("attention", attn, (2, 3, 8)),
            ("halves", halves, (2, 6, 6, 2)),
        ):
            graph, st = nnx.split(m)
            st = jax.tree_util.tree_map(  # generic: no zero biases
                lambda v: jnp.asarray(rng.standard_normal(v.shape)), st
            )
            x = jnp.asarray(rng.standard_normal(shape))
            spec = W.permutation_spec(m, x)
            rev = {
                k: jnp.arange(n, dtype=jnp.int32)[::-1] for k, n in spec.sizes.items()
            }
            assert W.l2_distance(W.apply_permutation(spec, rev, st), st) > 0.1
            cases[name] = (graph, st, x, spec, rev)
        heads = cases["attention"][3]
        hq = heads.axes["q/kernel"]
        assert heads.views["q/kernel"] == (8, 2, 4) and hq[0] is None
        assert heads.axes["k/kernel"] == hq and heads.axes["v/kernel"][1] == hq[1]
        assert heads.axes["o/kernel"][:2] == heads.axes["v/kernel"][1:]
        assert sorted(heads.sizes.values()) == [2, 4, 4]
        assert sorted(cases["halves"][3].sizes.values()) == [2, 2]

        @jax.jit
        def errors(states, perms):
            out = {}
            for name, (graph, _, x, spec, _) in cases.items():
                f = lambda s: nnx.merge(graph, s)(x)  # noqa: B023
                y0 = f(states[name])
                y1 = f(W.apply_permutation(spec, perms[name], states[name]))
                out[name] = jnp.max(jnp.abs(y0 - y1)), jnp.max(jnp.abs(y0))
            return out

        res = errors(
            {k: c[1] for k, c in cases.items()}, {k: c[4] for k, c in cases.items()}
        )
        for name, (err, scale) in res.items():
            assert float(scale) > 0.1 and float(err) < 1e-12, (name, float(err))
