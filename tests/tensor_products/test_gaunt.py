"""Gaunt tensor products: exactness, agreement of methods, equivariance, errors."""

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eqjax as eq
from eqjax.tensor_products import _kernels as K
from eqjax.tensor_products import _tables as tb
from eqjax.tensor_products import (
    gaunt_power,
    gaunt_product,
    gaunt_self_interaction,
    gaunt_tensor_product,
    gaunt_vector_product,
)

METHODS = ("fourier_fft", "fourier_direct", "s2grid")
settings.register_profile(
    "eqjax_gaunt", derandomize=True, deadline=None, max_examples=4
)


_STATIC = ("lmax_out", "method", "normalization")
jgtp = jax.jit(gaunt_tensor_product, static_argnames=_STATIC)
jgvp = jax.jit(gaunt_vector_product, static_argnames=_STATIC)


def sh_irreps(L, p=1, mul=1):
    return e3nn.Irreps([(mul, (l, p * (-1) ** l)) for l in range(L + 1)])


def rand(irreps, seed, shape=(), dtype=jnp.float64):
    return e3nn.normal(irreps, jax.random.key(seed), shape, dtype=dtype)


def o3_samples(key, n, dtype):
    """Haar O(3) samples with the first half forced to be reflections."""
    R = eq.groups.O3.sample(key, (n,), dtype)
    det = jnp.linalg.det(R)
    flip = jnp.where(jnp.arange(n) < n // 2, -jnp.sign(det), jnp.sign(det))
    return R * flip[:, None, None]


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def eval_sh(c, L, xyz, normalization="integral"):
    """sum_i c_i Y_i(x) with e3nn-jax's harmonics."""
    y = e3nn.spherical_harmonics(
        e3nn.Irreps.spherical_harmonics(L), xyz, True, normalization=normalization
    ).array
    return jnp.einsum("...i,ni->...n", c, y)


@pytest.mark.parametrize(
    "L1,L2,Lo",
    [(0, 0, 0), (1, 1, 2), (2, 3, 1), (3, 3, 6), (5, 2, 4), (6, 6, 6), (10, 10, 10)],
)
def test_methods_agree_with_direct_gaunt(L1, L2, Lo):
    with jax.enable_x64(True):
        x1 = rand(sh_irreps(L1), 0, (2,))
        x2 = rand(sh_irreps(L2), 1, (2,))
        ref = K.direct_gaunt([x1.array, x2.array], [L1, L2], Lo)
        for method in METHODS + ("auto",):
            y = jgtp(x1, x2, lmax_out=Lo, method=method)
            assert y.irreps == sh_irreps(Lo)
            assert y.dtype == jnp.float64
            np.testing.assert_allclose(y.array, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("normalization", ["integral", "component"])
def test_product_of_functions_pointwise(normalization):
    """The defining property: sum c3 Y = (sum c1 Y)(sum c2 Y) at any point."""
    with jax.enable_x64(True):
        x1, x2 = rand(sh_irreps(3), 2), rand(sh_irreps(4), 3)
        pts = jax.random.normal(jax.random.key(4), (40, 3), jnp.float64)
        for method in METHODS:
            y = jgtp(x1, x2, method=method, normalization=normalization)
            lhs = eval_sh(y.array, 7, pts, normalization)
            rhs = eval_sh(x1.array, 3, pts, normalization) * eval_sh(
                x2.array, 4, pts, normalization
            )
            np.testing.assert_allclose(lhs, rhs, atol=1e-10, rtol=0)


def test_missing_degrees_and_parity_minus_one():
    with jax.enable_x64(True):
        x1 = rand("0o+2o", 5)  # p = -1, l = 1 missing
        x2 = rand("1o+3o", 6)  # p = +1, l = 0, 2 missing
        y = gaunt_tensor_product(x1, x2, lmax_out=3, method="s2grid")
        assert y.irreps == e3nn.Irreps("0o+1e+2o+3e")
        full1 = jnp.concatenate([x1.array[:1], jnp.zeros(3), x1.array[1:]])
        full2 = jnp.concatenate(
            [jnp.zeros(1), x2.array[:3], jnp.zeros(5), x2.array[3:]]
        )
        ref = K.direct_gaunt([full1, full2], [2, 3], 3)
        np.testing.assert_allclose(y.array, ref, atol=1e-12)


def test_channels_and_batch_broadcast():
    with jax.enable_x64(True):
        x1 = rand(sh_irreps(2, mul=4), 7, (3,))  # (3, 4 channels)
        x2 = rand(sh_irreps(2), 8, (5, 1))  # (5, 1) batch, one channel
        y = gaunt_tensor_product(x1, x2, lmax_out=2, method="fourier_fft")
        assert y.shape == (5, 3, 4 * 9) and y.irreps == sh_irreps(2, mul=4)
        a = x1.mul_to_axis().array  # (3, 4, 9)
        b = x2.array[:, :, None, :]  # (5, 1, 1, 9)
        ref = K.direct_gaunt([a, b], [2, 2], 2)  # (5, 3, 4, 9)
        np.testing.assert_allclose(y.mul_to_axis().array, ref, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_public_functions_broadcast_explicitly(method):
    """Batch axes of different ranks broadcast inside the library without NumPy rank
    promotion (the caller's ``jax_numpy_rank_promotion="raise"`` is honoured);
    results match the same call with rank promotion allowed."""
    x1 = rand(sh_irreps(2, mul=3), 1, (4,), jnp.float32)
    x2 = rand(sh_irreps(2), 2, (2, 1), jnp.float32)
    w = jnp.asarray([1.0, 0.5, 2.0])
    calls = {
        "tensor_product": lambda: gaunt_tensor_product(x1, x2, method=method),
        "product": lambda: gaunt_product([x1, x2, x1], lmax_out=2, method=method),
        "power": lambda: gaunt_power(x1, 3, lmax_out=2, method=method, weights=w),
        "self": lambda: gaunt_self_interaction(
            x1, weights1=jnp.ones((4, 1, 3)), weights2=w, method=method
        ),
        "many_body": lambda: eq.tensor_products.gaunt_many_body(
            x1, jnp.ones((2, 3)), jnp.ones((2, 4, 1, 3)), lmax_out=2, method=method
        ),
    }
    if method != "fourier_direct":
        calls["vector"] = lambda: gaunt_vector_product(x1, x2, method=method)
    for name, call in calls.items():
        with jax.numpy_rank_promotion("raise"):
            got = call()
        with jax.numpy_rank_promotion("allow"):
            ref = call()
        assert got.shape == ref.shape, name
        np.testing.assert_array_equal(got.array, ref.array, err_msg=name)


def test_gaunt_vs_clebsch_gordan_paths():
    """Gaunt path (l1,l2,l3) = e3nn CG path x gaunt_scale / sqrt(2 l3 + 1)."""
    with jax.enable_x64(True):
        for l1 in range(4):
            for l2 in range(4):
                a = rand(e3nn.Irrep(l1, (-1) ** l1), 10 + l1)
                b = rand(e3nn.Irrep(l2, (-1) ** l2), 20 + l2)
                y = jgtp(a, b, method="fourier_fft")
                cg = e3nn.tensor_product(a, b)
                for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                    ir = e3nn.Irrep(l3, (-1) ** (l1 + l2))
                    ours = y.array[l3 * l3 : (l3 + 1) ** 2]
                    if (l1 + l2 + l3) % 2:  # Gaunt cannot express odd paths
                        assert np.abs(ours).max() < 1e-14
                        continue
                    theirs = cg.filter(keep=[ir]).array
                    k = tb.gaunt_scale(l1, l2, l3) / np.sqrt(2 * l3 + 1)
                    np.testing.assert_allclose(ours, k * theirs, atol=1e-12)


def _equivariance_error(fn, xs, Rs):
    errs = []
    for R in Rs:
        lhs = fn(*[eq.groups.act_irreps(R, x) for x in xs])
        rhs = eq.groups.act_irreps(R, fn(*xs))
        errs.append(rel_err(lhs.array, rhs.array))
    return max(errs)


@settings(settings.get_profile("eqjax_gaunt"))
@given(
    method=st.sampled_from(METHODS + ("auto",)),
    seed=st.sampled_from([0, 1, 2]),
    p1=st.sampled_from([1, -1]),
    p2=st.sampled_from([1, -1]),
)
def test_equivariance_o3_float64_jit(method, seed, p1, p2):
    with jax.enable_x64(True):
        x1 = rand(sh_irreps(3, p1, 2), seed, (2,))
        x2 = rand(sh_irreps(2, p2, 2), seed + 10, (2,))
        fn = jax.jit(lambda a, b: gaunt_tensor_product(a, b, lmax_out=4, method=method))
        Rs = o3_samples(jax.random.key(seed), 4, jnp.float64)
        assert _equivariance_error(fn, (x1, x2), Rs) < 1e-9


@pytest.mark.parametrize("method", METHODS)
def test_equivariance_float32(method):
    x1 = rand(sh_irreps(4), 0, (3,), jnp.float32)
    x2 = rand(sh_irreps(4), 1, (3,), jnp.float32)
    fn = jax.jit(lambda a, b: gaunt_tensor_product(a, b, lmax_out=4, method=method))
    y = fn(x1, x2)
    assert y.dtype == jnp.float32
    Rs = o3_samples(jax.random.key(3), 4, jnp.float32)
    assert _equivariance_error(fn, (x1, x2), Rs) < 1e-4


def test_equivariance_under_vmap_and_grad():
    with jax.enable_x64(True):
        x1 = rand(sh_irreps(2), 0, (4,))
        x2 = rand(sh_irreps(3), 1, (4,))
        Rs = o3_samples(jax.random.key(5), 4, jnp.float64)

        # vmap over the rotation and the batch together
        def rotated(R, a, b):
            return gaunt_tensor_product(
                eq.groups.act_irreps(R, a),
                eq.groups.act_irreps(R, b),
                method="fourier_fft",
            ).array

        lhs = jax.vmap(
            lambda R, a, b: rotated(
                R, e3nn.IrrepsArray(x1.irreps, a), e3nn.IrrepsArray(x2.irreps, b)
            )
        )(Rs, x1.array, x2.array)
        y = gaunt_tensor_product(x1, x2, method="fourier_fft")
        rhs = jax.vmap(
            lambda R, yy: eq.groups.act_irreps(R, e3nn.IrrepsArray(y.irreps, yy)).array
        )(Rs, y.array)
        assert rel_err(lhs, rhs) < 1e-9

        # gradient of an invariant is equivariant: grad(R x) = R grad(x)
        def energy(a_arr, b, method):
            a = e3nn.IrrepsArray(x1.irreps, a_arr)
            y = gaunt_tensor_product(a, b, lmax_out=3, method=method)
            return jnp.sum(y.array**2)

        for method in METHODS:
            g = jax.jit(jax.grad(energy), static_argnums=2)
            for R in Rs[:2]:
                x1R = eq.groups.act_irreps(R, x1[0])
                lhs = g(x1R.array, eq.groups.act_irreps(R, x2[0]), method)
                gx = e3nn.IrrepsArray(x1.irreps, g(x1[0].array, x2[0], method))
                rhs = eq.groups.act_irreps(R, gx)
                assert np.all(np.isfinite(lhs))
                assert rel_err(lhs, rhs.array) < 1e-9


def test_control_non_equivariant_is_caught():
    """A wrong parity label (treating '0e+1e+2e' data as a spherical function by
    relabelling) must give a large error under reflections: the check bites."""
    with jax.enable_x64(True):
        x1, x2 = rand(sh_irreps(2), 0), rand(sh_irreps(2), 1)

        def wrong(a, b):
            y = gaunt_tensor_product(a, b, lmax_out=2)
            return e3nn.IrrepsArray("0e+1e+2e", y.array)  # parity dropped

        def also_wrong(a, b):  # breaks rotation symmetry: scale the m = 0 entries
            y = gaunt_tensor_product(a, b, lmax_out=2)
            return e3nn.IrrepsArray(
                y.irreps, y.array * jnp.asarray([1.0, 1, 2, 1, 1, 1, 2, 1, 1])
            )

        Rs = o3_samples(jax.random.key(0), 4, jnp.float64)
        assert _equivariance_error(wrong, (x1, x2), Rs) > 1e-2
        assert _equivariance_error(also_wrong, (x1, x2), Rs) > 1e-2


def test_degenerate_inputs_zero_and_finite_grads():
    with jax.enable_x64(True):
        z = e3nn.zeros(sh_irreps(2), (3,), jnp.float64)
        for method in METHODS:
            y = jgtp(z, z, method=method)
            assert np.all(np.asarray(y.array) == 0)

            def loss(a, m=method):
                a = e3nn.IrrepsArray(z.irreps, a)
                return jnp.sum(gaunt_tensor_product(a, a, method=m).array)

            g = jax.jit(jax.grad(loss))(z.array)
            assert np.all(np.isfinite(g))


def test_weights_and_self_interaction():
    with jax.enable_x64(True):
        x = rand(sh_irreps(2, mul=3), 0)
        w1 = jnp.array([1.0, -2.0, 0.5])
        w2 = jax.random.normal(jax.random.key(1), (3, 3), jnp.float64)  # per channel
        y = gaunt_tensor_product(x, x, weights1=w1, weights2=w2, lmax_out=2)
        c = x.mul_to_axis().array  # (3, 9)
        ls = np.repeat(np.arange(3), 2 * np.arange(3) + 1)
        ref = K.direct_gaunt([c * w1[ls], c * w2[:, ls]], [2, 2], 2)
        np.testing.assert_allclose(y.mul_to_axis().array, ref, atol=1e-12)
        s = gaunt_self_interaction(x, weights1=w1, weights2=w2)
        np.testing.assert_allclose(s.array, y.array, atol=1e-12)
        with pytest.raises(ValueError, match="one weight per degree"):
            gaunt_tensor_product(x, x, weights1=jnp.ones(2))


@pytest.mark.parametrize("nu", [2, 3, 4])
def test_power_stays_in_fourier_domain_and_is_exact(nu):
    with jax.enable_x64(True):
        x = rand(sh_irreps(2), nu)
        pts = jax.random.normal(jax.random.key(9), (30, 3), jnp.float64)
        f = eval_sh(x.array, 2, pts)
        for method in METHODS:
            y = jax.jit(gaunt_power, static_argnums=1, static_argnames="method")(
                x, nu, method=method
            )
            assert y.irreps == sh_irreps(2 * nu)
            np.testing.assert_allclose(eval_sh(y.array, 2 * nu, pts), f**nu, atol=1e-10)
        # truncated: equals the exact product truncated, not chained truncations
        yt = gaunt_power(x, nu, lmax_out=2)
        np.testing.assert_allclose(yt.array, y.array[:9], atol=1e-10)
        xs = [x, rand(sh_irreps(1), 30), rand(sh_irreps(3, -1), 31)][: min(nu, 3)]
        ym = gaunt_product(xs, method="fourier_fft")
        ys = gaunt_product(xs, method="s2grid")
        np.testing.assert_allclose(ym.array, ys.array, atol=1e-10)


def test_vector_product_cross_product_and_cg_paths():
    with jax.enable_x64(True):
        a, b = rand("1o", 0), rand("1o", 1)
        for method in ("fourier_fft", "s2grid", "auto"):
            y = gaunt_vector_product(a, b, method=method)
            assert y.irreps == e3nn.Irreps("0o+1e")
            k = np.sqrt(3 / (4 * np.pi))
            np.testing.assert_allclose(
                y.array[1:], k * np.cross(a.array, b.array), atol=1e-12
            )
            assert abs(float(y.array[0])) < 1e-13
        # every path: antisymmetric, zero for even l1+l2+l3, proportional to CG for odd
        for l1 in range(1, 4):
            for l2 in range(1, 4):
                a = rand(e3nn.Irrep(l1, (-1) ** l1), 40 + l1)
                b = rand(e3nn.Irrep(l2, (-1) ** l2), 50 + l2)
                y = jgvp(a, b, method="fourier_fft")
                y2 = jgvp(b, a, method="s2grid")
                np.testing.assert_allclose(y.array, -y2.array, atol=1e-12)
                cg = e3nn.tensor_product(a, b)
                for l3 in range(abs(l1 - l2), l1 + l2):
                    ours = y.array[l3 * l3 : (l3 + 1) ** 2]
                    if (l1 + l2 + l3) % 2 == 0:
                        assert np.abs(ours).max() < 1e-12
                        continue
                    ir = e3nn.Irrep(l3, (-1) ** (l1 + l2))
                    theirs = np.asarray(cg.filter(keep=[ir]).array)
                    k = float(ours @ theirs / (theirs @ theirs))
                    assert abs(k) > 1e-3
                    np.testing.assert_allclose(ours, k * theirs, atol=1e-12)


def test_vector_product_equivariant_with_reflections():
    with jax.enable_x64(True):
        x1, x2 = rand(sh_irreps(3), 0), rand(sh_irreps(2, -1), 1)
        Rs = o3_samples(jax.random.key(2), 4, jnp.float64)
        for method in ("fourier_fft", "s2grid"):
            fn = jax.jit(lambda a, b, m=method: gaunt_vector_product(a, b, method=m))
            assert _equivariance_error(fn, (x1, x2), Rs) < 1e-9


@pytest.mark.parametrize(
    "irreps,match",
    [
        ("0e+1e", "parity"),
        ("0e+2x1o", "same number of channels"),
        ("1o+1o", "appear once"),
        ("0o+1o", "parity"),
    ],
)
def test_bad_irreps_raise(irreps, match):
    x = e3nn.normal(irreps, jax.random.key(0))
    good = e3nn.normal("0e+1o", jax.random.key(1))
    with pytest.raises(ValueError, match=match):
        gaunt_tensor_product(x, good)
    with pytest.raises(ValueError, match=match):
        gaunt_vector_product(good, x)


def test_bad_arguments_raise():
    x = e3nn.normal("0e+1o", jax.random.key(1))
    with pytest.raises(ValueError, match="lmax_out"):
        gaunt_tensor_product(x, x, lmax_out=-1)
    with pytest.raises(ValueError, match="method"):
        gaunt_tensor_product(x, x, method="fft")
    with pytest.raises(ValueError, match="normalization"):
        gaunt_tensor_product(x, x, normalization="norm")
    with pytest.raises(TypeError, match="IrrepsArray"):
        gaunt_tensor_product(x.array, x)
    with pytest.raises(TypeError, match="dtype"):
        gaunt_tensor_product(x, x.astype(jnp.float16))
    with pytest.raises(ValueError, match="channel"):
        gaunt_tensor_product(
            e3nn.normal("2x0e", jax.random.key(0)),
            e3nn.normal("3x0e", jax.random.key(0)),
        )
    with pytest.raises(ValueError, match="nu"):
        gaunt_power(x, 0)


def test_many_body_equals_sum_of_weighted_powers():
    from eqjax.tensor_products import gaunt_many_body

    with jax.enable_x64(True):
        x = rand(sh_irreps(2, mul=2), 3, (2,))
        w_in = jax.random.normal(jax.random.key(0), (3, 2, 3), jnp.float64)
        w_out = jax.random.normal(jax.random.key(1), (3, 2, 2), jnp.float64)
        y = gaunt_many_body(x, w_in, w_out, lmax_out=1, method="s2grid")
        assert y.irreps == sh_irreps(1, mul=2)
        ls = np.array([0, 1, 1, 1])
        ref = 0
        for n in range(3):
            p = gaunt_power(x, n + 1, lmax_out=1, weights=w_in[n], method="fourier_fft")
            ref = ref + p.mul_to_axis().array * w_out[n][:, ls]
        np.testing.assert_allclose(y.mul_to_axis().array, ref, atol=1e-10)
        with pytest.raises(ValueError, match="p=\\+1"):
            gaunt_many_body(rand("0o+1e", 0), w_in[:, :1, :2], w_out[:, :1], lmax_out=1)


@pytest.mark.parametrize("layout", ["dense", "hemisphere", "quadrant", "factored"])
@pytest.mark.parametrize("chunk", [0, 3])
def test_s2grid_layouts_agree(layout, chunk):
    """Every grid layout, blocked (with a remainder block) or not, is the exact
    product: float64 against the direct Gaunt contraction."""
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for L1, L2, Lo in [
            (0, 0, 0),
            (0, 2, 2),
            (4, 3, 5),
            (1, 1, 3),
            (6, 6, 6),
            (10, 10, 10),
        ]:
            c1 = jnp.asarray(rng.normal(size=(7, (L1 + 1) ** 2)))
            c2 = jnp.asarray(rng.normal(size=(7, (L2 + 1) ** 2)))
            ref = K.direct_gaunt([c1, c2], [L1, L2], Lo)
            y = K.product_s2grid([c1, c2], [L1, L2], Lo, layout=layout, chunk=chunk)
            np.testing.assert_allclose(y, ref, atol=1e-10, rtol=0)
        # three factors, and broadcast batch axes (never blocked)
        c3 = jnp.asarray(rng.normal(size=(7, 9)))
        y3 = K.product_s2grid([c1, c2, c3], [10, 10, 2], 4, layout=layout, chunk=chunk)
        r3 = K.product_s2grid([c1, c2, c3], [10, 10, 2], 4, layout="dense", chunk=0)
        np.testing.assert_allclose(y3, r3, atol=1e-10, rtol=0)
        yb = K.product_s2grid(
            [c1[:, None], c2[None, :3]], [10, 10], 6, layout=layout, chunk=chunk
        )
        rb = K.direct_gaunt([c1[:, None], c2[None, :3]], [10, 10], 6)
        assert yb.shape == (7, 3, 49)
        np.testing.assert_allclose(yb, rb, atol=1e-10, rtol=0)


def test_s2grid_blocked_gradient_and_plan():
    """Blocking over the batch (lax.map) has the unblocked gradient; the plan blocks
    only large batches, in power-of-two blocks, and picks reduced grids as L grows."""
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        c1 = jnp.asarray(rng.normal(size=(10, 36)))
        c2 = jnp.asarray(rng.normal(size=(10, 36)))

        def loss(a, b, chunk):
            y = K.product_s2grid([a, b], [5, 5], 5, layout="quadrant", chunk=chunk)
            return jnp.sum(jnp.sin(y))

        g0 = jax.grad(loss, argnums=(0, 1))(c1, c2, 0)
        g4 = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(c1, c2, 4)
        for a, b in zip(g0, g4, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
    layouts = [K.s2grid_plan([L, L], L, 8)[0] for L in (1, 4, 6, 8, 10, 16, 40)]
    assert layouts == ["dense"] * 2 + ["hemisphere"] * 2 + ["quadrant"] * 2 + [
        "factored"
    ]
    assert K.s2grid_plan([8, 8], 8, 64)[1] == 0
    chunk = K.s2grid_plan([12, 12], 12, 8192)[1]
    assert chunk > 0 and chunk & (chunk - 1) == 0
    assert K.s2grid_plan([12, 12], 12, 8192, itemsize=8)[1] == chunk // 2


def test_s2grid_class_product_control(monkeypatch):
    """Control: multiplying the symmetry classes pairwise without combining them
    (class c times class c only) is not the product, so the layout test can fail."""

    def naive(A, B, n_cls):
        return [
            a * b if a is not None and b is not None else None
            for a, b in zip(A, B, strict=True)
        ]

    monkeypatch.setattr(K, "_class_product", naive)
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        c1 = jnp.asarray(rng.normal(size=(3, 16)))
        c2 = jnp.asarray(rng.normal(size=(3, 16)))
        ref = K.direct_gaunt([c1, c2], [3, 3], 3)
        y = K.product_s2grid([c1, c2], [3, 3], 3, layout="quadrant", chunk=0)
        assert rel_err(y, ref) > 1e-2


def test_irreps_layout_read_and_written_exactly():
    """Channels (mul > 1), degrees listed out of order and a missing degree are read
    into the per-channel layout and written back in e3nn's layout exactly."""
    with jax.enable_x64(True):
        x = rand("3x2e+3x0e", 0, (2,))  # degree 1 missing, out of order
        y = rand("3x0e+3x1o", 1, (2,))
        xa, ya = np.asarray(x.array), np.asarray(y.array)
        cx = np.zeros((2, 3, 9))
        cx[..., 0] = xa[:, 15:]
        cx[..., 4:] = xa[:, :15].reshape(2, 3, 5)
        cy = np.concatenate([ya[:, :3, None], ya[:, 3:].reshape(2, 3, 3)], axis=-1)
        ref_c = np.asarray(
            K.direct_gaunt([jnp.asarray(cx), jnp.asarray(cy)], [2, 1], 3)
        )
        ref = np.concatenate(
            [ref_c[..., l * l : (l + 1) ** 2].reshape(2, -1) for l in range(4)], axis=-1
        )
        for method in ("s2grid", "fourier_fft", "fourier_direct"):
            out = jgtp(x, y, lmax_out=3, method=method)
            assert out.irreps == sh_irreps(3, mul=3)
            np.testing.assert_allclose(out.array, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("dense", [0, 10**9])
def test_vector_product_grid_paths_agree(monkeypatch, dense):
    """The vector product's dense and factored-per-order grid conversions agree."""
    monkeypatch.setattr(K, "DENSE_GRID_MAX_ENTRIES", dense)
    with jax.enable_x64(True):
        a, b = rand("1o", 2), rand("1o", 3)
        v = gaunt_vector_product(a, b, method="s2grid")
        k = np.sqrt(3 / (4 * np.pi))
        np.testing.assert_allclose(
            v.array[1:], k * np.cross(a.array, b.array), atol=1e-12
        )
