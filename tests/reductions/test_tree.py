"""tree_reduce / tree_reduce_dense against NumPy references (Ong & Veličković,
LoG 2022): exact monoids, invariance, padding, trace count, jit/vmap/grad, bad input.

The fast tests share a few fixed shapes (every new shape recompiles), each jitted
function compiled once; the hypothesis runs over many sizes are marked slow."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eqjax as eq
from eqjax.reductions import (
    logsumexp_monoid,
    max_monoid,
    min_monoid,
    num_levels,
    product_monoid,
    sum_monoid,
    tree_reduce,
    tree_reduce_dense,
)

SETTINGS = settings(derandomize=True, deadline=None, max_examples=12)

MONOIDS = {
    "sum": sum_monoid(),
    "max": max_monoid(),
    "min": min_monoid(),
    "logsumexp": logsumexp_monoid(),
    "product": product_monoid(),
}

# the fast tier's ragged layout: 40 items in 12 segments, four of them empty, the
# largest of 12 items (a tree of 16 slots with padding at every level)
COUNTS = np.array([0, 12, 3, 0, 9, 1, 7, 0, 4, 0, 2, 2])
S, E, LARGEST = len(COUNTS), int(COUNTS.sum()), int(COUNTS.max())


def layout(seed, dtype=jnp.float64):
    """Data [E, 3] and shuffled ids with the segment sizes ``COUNTS``."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.repeat(np.arange(S), COUNTS))
    x = rng.normal(size=(E, 3)).astype(dtype)  # host cast: no conversion kernel
    return jnp.asarray(x), jnp.asarray(ids.astype(np.int32))


def ragged(seed, E, S, dtype=jnp.float64):
    """Random data [E, 3] and ids with some empty segments (S > #used ids)."""
    rng = np.random.default_rng(seed)
    used = rng.choice(S, size=max(1, S // 2), replace=False)
    ids = rng.choice(used, size=E)
    x = rng.normal(size=(E, 3))
    return jnp.asarray(x, dtype), jnp.asarray(ids, jnp.int32)


def reference(name, x, ids, num_segments):
    """Segment-wise reduction in NumPy (identity for empty segments)."""
    x, ids = np.asarray(x, np.float64), np.asarray(ids)
    ufunc = {
        "sum": np.add,
        "product": np.multiply,
        "max": np.maximum,
        "min": np.minimum,
        "logsumexp": np.logaddexp,
    }[name]
    e = float(MONOIDS[name].identity)
    out = []
    for s in range(num_segments):
        v = x[ids == s]
        out.append(ufunc.reduce(v, axis=0) if len(v) else np.full(x.shape[1:], e))
    return np.stack(out)


@partial(jax.jit, static_argnames=("size", "num_segments"))
def reduce_all(x, ids, size, num_segments=S):
    """Every exact monoid's tree reduction (one compilation per shape)."""
    return {
        name: tree_reduce(
            m.op, x, ids, num_segments, identity=m.identity, max_segment_size=size
        )
        for name, m in MONOIDS.items()
    }


def max_count(ids, S):
    return int(np.bincount(np.asarray(ids), minlength=S).max())


def test_exact_monoids_match_numpy_float64():
    """Every exact monoid equals its segment reduction, with empty segments and
    padding at every tree level (12 items in 16 slots). The padded size changing
    nothing is checked here for a non-neutral identity (test_padding_...) and for
    every exact monoid in the slow tier."""
    with jax.enable_x64(True):
        for seed in (0, 1):
            x, ids = layout(seed)
            got = reduce_all(x, ids, LARGEST)
            for name, y in got.items():
                assert y.dtype == jnp.float64 and y.shape == (S, 3)
                np.testing.assert_allclose(
                    y, reference(name, x, ids, S), rtol=1e-12, atol=1e-12
                )


def test_exact_monoids_invariant_to_permuting_items():
    """Permuting the items (data and ids jointly) permutes them within segments."""
    with jax.enable_x64(True):
        x, ids = layout(2)
        want = reduce_all(x, ids, LARGEST)
        xn, idn = np.asarray(x), np.asarray(ids)
        for seed in (3, 4):
            p = np.random.default_rng(seed).permutation(E)
            got = reduce_all(xn[p], idn[p], LARGEST)
            for name in MONOIDS:
                np.testing.assert_allclose(
                    got[name], want[name], rtol=1e-12, atol=1e-12
                )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MONOIDS))
@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    E=st.sampled_from([1, 7, 40]),
    S=st.sampled_from([1, 5, 12]),
    slack=st.sampled_from([0, 3]),
)
def test_matches_segment_ops_float64_slow(name, seed, E, S, slack):
    with jax.enable_x64(True):
        monoid = MONOIDS[name]
        x, ids = ragged(seed, E, S)
        size = max_count(ids, S) + slack  # slack: padding never changes the result
        got = tree_reduce(
            monoid.op, x, ids, S, identity=monoid.identity, max_segment_size=size
        )
        assert got.dtype == jnp.float64 and got.shape == (S, 3)
        np.testing.assert_allclose(
            got, reference(name, x, ids, S), rtol=1e-12, atol=1e-12
        )


@pytest.mark.slow
@SETTINGS
@given(seed=st.integers(0, 10_000), E=st.sampled_from([5, 33]))
def test_invariant_to_permuting_items_slow(seed, E):
    with jax.enable_x64(True):
        S = 4
        x, ids = ragged(seed, E, S)
        p = jnp.asarray(np.random.default_rng(seed).permutation(E))
        xp = eq.groups.act_set(p, x, axis=0)
        idsp = eq.groups.act_set(p, ids, axis=0)
        size = max_count(ids, S)
        for m in (sum_monoid(), max_monoid(), logsumexp_monoid()):
            a = tree_reduce(m.op, x, ids, S, identity=m.identity, max_segment_size=size)
            b = tree_reduce(
                m.op, xp, idsp, S, identity=m.identity, max_segment_size=size
            )
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_control_non_commutative_op_is_not_invariant():
    """Control that must fail the invariance check: subtraction is no monoid."""
    with jax.enable_x64(True):
        x, ids = map(np.asarray, layout(0))
        p = np.random.default_rng(1).permutation(E)
        f = jax.jit(
            lambda x, i: tree_reduce(
                jnp.subtract, x, i, S, identity=0.0, max_segment_size=LARGEST
            )
        )
        assert np.abs(np.asarray(f(x, ids)) - np.asarray(f(x[p], ids[p]))).max() > 0.1


def test_pytree_leaves_and_identities():
    with jax.enable_x64(True):
        x, ids = layout(3)
        data = {"a": x, "b": 2.0 * np.asarray(x)[:, 0]}
        out = jax.jit(
            lambda d, i: tree_reduce(
                lambda u, v: {"a": jnp.maximum(u["a"], v["a"]), "b": u["b"] + v["b"]},
                d,
                i,
                S,
                identity={"a": -jnp.inf, "b": 0.0},
                max_segment_size=LARGEST,
            )
        )(data, ids)
        np.testing.assert_allclose(out["a"], reference("max", x, ids, S), atol=1e-12)
        np.testing.assert_allclose(
            out["b"], reference("sum", 2 * x[:, :1], ids, S)[:, 0], atol=1e-12
        )


def test_trace_count_is_ceil_log2():
    calls = []

    def op(a, b):
        calls.append(a.shape)
        return a + b

    for size in (1, 2, 3, 4, 5, 16, 17, 100):
        calls.clear()
        jax.eval_shape(  # traces without compiling
            lambda x, size=size: tree_reduce(
                op,
                x,
                jnp.zeros(size, jnp.int32),
                1,
                identity=0.0,
                max_segment_size=size,
            ),
            jax.ShapeDtypeStruct((size, 2), jnp.float32),
        )
        assert len(calls) == num_levels(size) == int(np.ceil(np.log2(size)))
        calls.clear()
        jax.eval_shape(
            lambda x: tree_reduce_dense(op, x, identity=0.0),
            jax.ShapeDtypeStruct((3, size, 2), jnp.float32),
        )
        assert len(calls) == int(np.ceil(np.log2(size)))


def test_jit_vmap_grad():
    with jax.enable_x64(True):
        x, ids = layout(5)
        used = (COUNTS > 0)[:, None]
        xn, idn = np.asarray(x), np.asarray(ids)
        xs = np.stack([xn, 2 * xn, -xn])
        # vmap over segment ids as well (permutations keep the segment sizes)
        idss = np.stack([idn, np.roll(idn, 1), idn[::-1]])

        def reduce(monoid, x, ids=ids):
            return tree_reduce(
                monoid.op,
                x,
                ids,
                S,
                identity=monoid.identity,
                max_segment_size=LARGEST,
            )

        @jax.jit
        def everything(x, xs, idss):
            f = partial(reduce, max_monoid())
            h = partial(reduce, logsumexp_monoid())
            masked = lambda g: lambda x: jnp.sum(jnp.where(used, g(x), 0.0))
            return (
                jax.vmap(f)(xs),
                jax.vmap(partial(reduce, sum_monoid()))(xs, idss),
                jax.grad(masked(f))(x),  # one-hot at each segment's argmax
                jax.grad(masked(h))(x),  # softmax, finite despite empty segments
            )

        vmapped, vmapped_ids, grad_max, grad_lse = everything(x, xs, idss)
        for v, want in zip(vmapped, xs, strict=True):
            np.testing.assert_array_equal(v, reference("max", want, ids, S))
        np.testing.assert_allclose(
            vmapped_ids,
            np.stack(
                [reference("sum", v, i, S) for v, i in zip(xs, idss, strict=True)]
            ),
            atol=1e-12,
        )
        want = np.zeros_like(xn)
        for s in np.flatnonzero(COUNTS):
            rows = np.flatnonzero(idn == s)
            want[rows[np.argmax(xn[rows], axis=0)], np.arange(3)] = 1.0
        np.testing.assert_allclose(grad_max, want, atol=1e-12)
        assert np.isfinite(np.asarray(grad_lse)).all()
        lse_ref = reference("logsumexp", x, ids, S)
        np.testing.assert_allclose(grad_lse, np.exp(xn - lse_ref[idn]), atol=1e-12)


@pytest.mark.slow
def test_no_jit_equals_jit_slow():
    """One eager call (op by op, ~10 s): the same as the compiled reduction. The
    fast tier's registry checks run every row with and without jit."""
    with jax.enable_x64(True):
        x, ids = layout(6)
        eager = tree_reduce(
            jnp.maximum, x, ids, S, identity=-jnp.inf, max_segment_size=LARGEST
        )
        np.testing.assert_array_equal(eager, reduce_all(x, ids, LARGEST)["max"])


def test_indices_sorted_path_and_empty_inputs():
    with jax.enable_x64(True):
        x, ids = layout(9)
        order = np.argsort(np.asarray(ids), stable=True)
        xs, ss = np.asarray(x)[order], np.asarray(ids)[order]
        a = jax.jit(
            lambda x, i: tree_reduce(
                jnp.add,
                x,
                i,
                S,
                identity=0.0,
                max_segment_size=LARGEST,
                indices_are_sorted=True,
            )
        )(xs, ss)
        np.testing.assert_allclose(a, reference("sum", x, ids, S), atol=1e-12)
        # no items at all: every segment is the identity
        e = jax.jit(
            lambda x, i: tree_reduce(
                jnp.maximum, x, i, 3, identity=-jnp.inf, max_segment_size=4
            )
        )(np.zeros((0, 2), np.float32), np.zeros((0,), np.int32))
        assert e.shape == (3, 2) and (np.asarray(e) == -np.inf).all()


def test_learnable_identity_returned_for_empty_segments():
    """An identity that is not neutral for op still comes back for empty segments."""
    e = np.array([0.5, -1.0], np.float32)
    out = jax.jit(
        lambda x, e: tree_reduce(
            lambda a, b: a * b + 1.0,
            x,
            jnp.array([0, 0, 2]),
            3,
            identity=e,
            max_segment_size=2,
        )
    )(np.ones((3, 2), np.float32), e)
    np.testing.assert_array_equal(np.asarray(out)[1], e)


def test_dtype_in_dtype_out():
    ids = jnp.array([0, 1, 0, 1, 1, 3])
    dtypes = (jnp.float32, jnp.bfloat16, jnp.int32)

    @jax.jit
    def f(xs):
        return [
            tree_reduce(
                max_monoid(x.dtype).op,
                x,
                ids,
                4,
                identity=max_monoid(x.dtype).identity,
                max_segment_size=3,
            )
            for x in xs
        ]

    outs = f([np.arange(6).astype(dt).reshape(6, 1) for dt in dtypes])
    for dt, out in zip(dtypes, outs, strict=True):
        assert out.dtype == dt
        np.testing.assert_array_equal(np.asarray(out, np.float32)[:2, 0], [2, 4])


# ------------------------------------------------------------------ bad input


def test_bad_input_eager_raises():
    x = jnp.ones((4, 2))
    with pytest.raises(ValueError, match="segment id 5 at position 2"):
        tree_reduce(
            jnp.add, x, jnp.array([0, 1, 5, 1]), 3, identity=0.0, max_segment_size=4
        )
    with pytest.raises(ValueError, match="segment id -1"):
        tree_reduce(
            jnp.add, x, jnp.array([0, -1, 2, 1]), 3, identity=0.0, max_segment_size=4
        )
    with pytest.raises(ValueError, match="segment 1 has 3 items, more than"):
        tree_reduce(
            jnp.add, x, jnp.array([0, 1, 1, 1]), 3, identity=0.0, max_segment_size=2
        )
    with pytest.raises(ValueError, match=r"identity of shape \(3,\)"):
        tree_reduce(
            jnp.add,
            x,
            jnp.array([0, 1, 1, 1]),
            3,
            identity=jnp.zeros(3),
            max_segment_size=4,
        )
    with pytest.raises(ValueError, match="leading axis 3"):
        tree_reduce(
            jnp.add, x, jnp.array([0, 1, 1]), 3, identity=0.0, max_segment_size=4
        )
    with pytest.raises(TypeError, match="integer"):
        tree_reduce(jnp.add, x, jnp.zeros(4), 3, identity=0.0, max_segment_size=4)
    with pytest.raises(ValueError, match="max_segment_size"):
        tree_reduce(jnp.add, x, jnp.zeros(4, int), 3, identity=0.0, max_segment_size=0)
    with pytest.raises(ValueError, match="same structure and shapes"):
        jax.eval_shape(
            lambda x: tree_reduce(
                lambda a, b: a[:, :1],
                x,
                jnp.zeros(4, int),
                1,
                identity=0.0,
                max_segment_size=4,
            ),
            x,
        )


def test_sizes_must_be_static():
    """Over-full segments and out-of-range ids under jit: test_padding.py."""
    x, ids = jnp.ones((5, 1)), jnp.array([0, 2, 1, 1, 2])
    with pytest.raises(TypeError, match="static"):
        jax.jit(
            lambda s: tree_reduce(jnp.add, x, ids, s, identity=0.0, max_segment_size=2)
        )(3)


# ------------------------------------------------------------------ dense form


@jax.jit
def _dense_all(x, mask, p):
    xp = eq.groups.act_set(p, x, axis=-2)
    mp = eq.groups.act_set(p, mask, axis=-1)
    return (
        tree_reduce_dense(jnp.add, x, identity=0.0, mask=mask),
        tree_reduce_dense(jnp.maximum, x, identity=-jnp.inf, mask=mask),
        tree_reduce_dense(jnp.logaddexp, x, identity=-jnp.inf, mask=mask),
        tree_reduce_dense(jnp.add, xp, identity=0.0, mask=mp),
    )


def _check_dense(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 3, n, 4))
    mask = rng.random((2, 3, n)) < 0.6
    mask[0, 0] = False  # one empty set
    p = jnp.asarray([[rng.permutation(n) for _ in range(3)] for _ in range(2)])
    s, mx, lse, sp = _dense_all(jnp.asarray(x), jnp.asarray(mask), p)
    m = mask[..., None]
    np.testing.assert_allclose(s, np.where(m, x, 0.0).sum(-2), atol=1e-12)
    np.testing.assert_array_equal(mx, np.where(m, x, -np.inf).max(-2))
    np.testing.assert_allclose(
        lse, np.logaddexp.reduce(np.where(m, x, -np.inf), axis=-2), atol=1e-12
    )
    np.testing.assert_allclose(sp, s, atol=1e-12)  # permutation invariance


def test_dense_matches_masked_reductions():
    """Masked dense sets (13 items: padded to 16, an empty set) against NumPy, and
    invariant to permuting the items with their mask."""
    with jax.enable_x64(True):
        for seed in (0, 1):
            _check_dense(seed, 13)


@pytest.mark.slow
@SETTINGS
@given(seed=st.integers(0, 10_000), n=st.sampled_from([1, 3, 8, 13]))
def test_dense_matches_masked_reductions_slow(seed, n):
    with jax.enable_x64(True):
        _check_dense(seed, n)


def test_dense_bad_mask_and_axis():
    x = jnp.ones((2, 5, 3))
    with pytest.raises(ValueError, match="mask must be boolean"):
        tree_reduce_dense(jnp.add, x, identity=0.0, mask=jnp.ones((2, 4), bool))
    out = jax.jit(lambda x: tree_reduce_dense(jnp.add, x, identity=0.0, axis=0))(
        np.ones((5, 2), np.float32)
    )
    np.testing.assert_array_equal(out, [5.0, 5.0])


def test_padding_skipped_for_non_neutral_identity():
    """Padding never reaches a non-empty segment's result, even when the identity
    is not neutral for op (a learnable identity): results do not depend on the
    identity's value or on the padded size, gradients w.r.t. the identity vanish
    there, and the dense form ignores masked items. Control: feeding the identity
    as a real item does change the result."""
    op = lambda a, b: jnp.tanh(a * b + a + b + 1.0)  # commutative, not associative
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    ids = jnp.array([0, 0, 0, 2, 2])
    e1 = np.array([0.5, -1.0, 2.0], np.float32)
    e2 = np.array([-3.0, 0.0, 1.0], np.float32)

    xd = rng.normal(size=(2, 6, 3)).astype(np.float32)
    mask = np.array([[1, 0, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]], bool)
    junk = np.where(mask[..., None], xd, np.float32(7.0))

    @jax.jit
    def everything(x, e1, e2):
        f = lambda x, ids, e, size: tree_reduce(
            op, x, ids, 3, identity=e, max_segment_size=size
        )
        # control: the identity as a real item of segment 0 (in place of the last
        # item of segment 2, same shapes) changes the result
        bad = f(x.at[4].set(e1), ids.at[4].set(0), e1, 4)
        grad = jax.grad(lambda e: jnp.sum(f(x, ids, e, 16)[::2] ** 2))(e1)
        # dense: masked items and their values are skipped, vmap over the identity
        dense = lambda x, e: tree_reduce_dense(op, x, identity=e, mask=mask)
        d = jax.vmap(dense)(jnp.stack([xd, junk]), jnp.stack([e1, e2]))
        return f(x, ids, e1, 4), f(x, ids, e2, 16), grad, bad, d

    ref, out, g, bad, d = map(np.asarray, everything(x, e1, e2))
    np.testing.assert_array_equal(out[1], e2)  # empty segment
    np.testing.assert_allclose(out[::2], ref[::2], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(g, np.zeros(3))
    assert np.abs(bad[0] - ref[0]).max() > 1e-2
    np.testing.assert_allclose(d[1], d[0], rtol=1e-6, atol=1e-6)
