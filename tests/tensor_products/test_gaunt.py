"""Gaunt tensor products: exactness, agreement of methods, equivariance, errors.

Compilation dominates these tests, so the fast tier reuses a few jitted functions
and shapes, computes references in NumPy (``gaunt_helpers``) and checks trace-time
properties with ``jax.eval_shape``; the ``slow`` parameters sweep more sizes."""

import functools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gaunt_helpers import (
    direct_gaunt,
    equivariance_error,
    eval_sh,
    o3_samples,
    rand,
    rel_err,
    rotate,
    sh_irreps,
    wigner_D,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import eqjax as eq
from eqjax import tensor_products as _tp
from eqjax.tensor_products import _kernels as K
from eqjax.tensor_products import _tables as tb

# These tests compare with orthonormal references (gaunt_helpers.direct_gaunt,
# eval_sh): they call the products with normalization="integral". The default
# ("component") is checked against e3nn-jax in test_issue12.py.
gaunt_many_body = functools.partial(_tp.gaunt_many_body, normalization="integral")
gaunt_power = functools.partial(_tp.gaunt_power, normalization="integral")
gaunt_product = functools.partial(_tp.gaunt_product, normalization="integral")
gaunt_self_interaction = functools.partial(
    _tp.gaunt_self_interaction, normalization="integral"
)
gaunt_tensor_product = functools.partial(
    _tp.gaunt_tensor_product, normalization="integral"
)
gaunt_vector_product = functools.partial(
    _tp.gaunt_vector_product, normalization="integral"
)

METHODS = ("fourier_fft", "fourier_direct", "s2grid")
settings.register_profile(
    "eqjax_gaunt", derandomize=True, deadline=None, max_examples=4
)
slow = pytest.mark.slow

_STATIC = ("lmax_out", "method", "normalization")
jgtp = jax.jit(gaunt_tensor_product, static_argnames=_STATIC)
jgvp = jax.jit(gaunt_vector_product, static_argnames=_STATIC)
jpower = jax.jit(gaunt_power, static_argnums=1, static_argnames=_STATIC)
jproduct = jax.jit(gaunt_product, static_argnames=_STATIC)
jgrid = jax.jit(
    K.product_s2grid,
    static_argnums=(1, 2),
    static_argnames=("layout", "chunk", "signals_last"),
)


@pytest.mark.parametrize(
    "L1,L2,Lo",
    [
        (0, 0, 0),
        (2, 3, 1),
        pytest.param(3, 3, 6, marks=slow),
        pytest.param(1, 1, 2, marks=slow),
        pytest.param(5, 2, 4, marks=slow),
        pytest.param(6, 6, 6, marks=slow),
        pytest.param(10, 10, 10, marks=slow),
    ],
)
def test_methods_agree_with_direct_gaunt(L1, L2, Lo):
    with jax.enable_x64(True):
        x1 = rand(sh_irreps(L1), 0, (2,))
        x2 = rand(sh_irreps(L2), 1, (2,))
        ref = direct_gaunt([x1.array, x2.array], [L1, L2], Lo)
        # "auto" runs one of these (tests/test_plan.py; its registry row is checked
        # by tests/test_common.py)
        for method in METHODS:
            y = jgtp(x1, x2, lmax_out=Lo, method=method)
            assert y.irreps == sh_irreps(Lo)
            assert y.dtype == jnp.float64
            np.testing.assert_allclose(y.array, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "normalization,method",
    [
        ("integral", "fourier_fft"),
        ("component", "s2grid"),
        pytest.param("integral", "s2grid", marks=slow),
        pytest.param("integral", "fourier_direct", marks=slow),
        pytest.param("component", "fourier_fft", marks=slow),
        pytest.param("component", "fourier_direct", marks=slow),
    ],
)
def test_product_of_functions_pointwise(normalization, method):
    """The defining property: sum c3 Y = (sum c1 Y)(sum c2 Y) at any point."""
    with jax.enable_x64(True):
        x1, x2 = rand(sh_irreps(3), 2), rand(sh_irreps(4), 3)
        pts = np.random.default_rng(4).normal(size=(40, 3))
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
        y = jgtp(x1, x2, lmax_out=3, method="s2grid")
        assert y.irreps == e3nn.Irreps("0o+1e+2o+3e")
        full1 = np.concatenate([x1.array[:1], np.zeros(3), x1.array[1:]])
        full2 = np.concatenate([np.zeros(1), x2.array[:3], np.zeros(5), x2.array[3:]])
        ref = direct_gaunt([full1, full2], [2, 3], 3)
        np.testing.assert_allclose(y.array, ref, atol=1e-12)


def test_channels_and_batch_broadcast():
    with jax.enable_x64(True):
        x1 = rand(sh_irreps(2, mul=4), 7, (3,))  # (3, 4 channels)
        x2 = rand(sh_irreps(2), 8, (5, 1))  # (5, 1) batch, one channel
        y = jgtp(x1, x2, lmax_out=2, method="fourier_fft")
        assert y.shape == (5, 3, 4 * 9) and y.irreps == sh_irreps(2, mul=4)
        a = x1.mul_to_axis().array  # (3, 4, 9)
        b = x2.array[:, :, None, :]  # (5, 1, 1, 9)
        ref = direct_gaunt([a, b], [2, 2], 2)  # (5, 3, 4, 9)
        np.testing.assert_allclose(y.mul_to_axis().array, ref, atol=1e-12)


def _broadcast_calls(method, x1, x2):
    w = jnp.asarray([1.0, 0.5, 2.0])
    calls = {
        "tensor_product": lambda: gaunt_tensor_product(x1, x2, method=method),
        "product": lambda: gaunt_product([x1, x2, x1], lmax_out=2, method=method),
        "power": lambda: gaunt_power(x1, 3, lmax_out=2, method=method, weights=w),
        "self": lambda: gaunt_self_interaction(
            x1, weights1=jnp.ones((4, 1, 3)), weights2=w, method=method
        ),
        "many_body": lambda: gaunt_many_body(
            x1, jnp.ones((2, 3)), jnp.ones((2, 4, 1, 3)), lmax_out=2, method=method
        ),
    }
    if method != "fourier_direct":
        calls["vector"] = lambda: gaunt_vector_product(x1, x2, method=method)
    return calls


@pytest.mark.parametrize("method", METHODS)
def test_public_functions_broadcast_explicitly(method):
    """Batch axes of different ranks broadcast inside the library without NumPy rank
    promotion: every public function traces under
    ``jax_numpy_rank_promotion="raise"`` (checked at trace time, no compilation),
    with the broadcast output shape."""
    x1 = rand(sh_irreps(2, mul=3), 1, (4,), jnp.float32)
    x2 = rand(sh_irreps(2), 2, (2, 1), jnp.float32)
    for name, call in _broadcast_calls(method, x1, x2).items():
        with jax.numpy_rank_promotion("raise"):
            got = jax.eval_shape(call)
        with jax.numpy_rank_promotion("allow"):
            ref = jax.eval_shape(call)
        assert got.shape == ref.shape and got.dtype == jnp.float32, name


@slow
@pytest.mark.parametrize("method", METHODS)
def test_public_functions_broadcast_values(method):
    """... and the values equal the same call with rank promotion allowed."""
    x1 = rand(sh_irreps(2, mul=3), 1, (4,), jnp.float32)
    x2 = rand(sh_irreps(2), 2, (2, 1), jnp.float32)
    for name, call in _broadcast_calls(method, x1, x2).items():
        with jax.numpy_rank_promotion("raise"):
            got = call()
        with jax.numpy_rank_promotion("allow"):
            ref = call()
        assert got.shape == ref.shape, name
        np.testing.assert_array_equal(got.array, ref.array, err_msg=name)


def _path_inputs(ls, seed):
    """One input per degree ``l`` in ``ls`` (batch axis), each with only that degree
    non-zero, written in the full ``0..max(ls)`` irreps."""
    L = max(ls)
    x = np.zeros((len(ls), (L + 1) ** 2))
    rng = np.random.default_rng(seed)
    for i, l in enumerate(ls):
        x[i, l * l : (l + 1) ** 2] = rng.normal(size=2 * l + 1)
    return e3nn.IrrepsArray(sh_irreps(L), jnp.asarray(x))


def _cg_path(a, b, l1, l2, l3):
    """e3nn-jax's CG tensor-product path ``(l1, l2) -> l3`` of rows ``a[i]``,
    ``b[j]`` (``√(2l3+1) C a b``, its ``"component"`` path normalisation; checked
    against ``e3nn.tensor_product`` in the next test)."""
    C = np.asarray(e3nn.clebsch_gordan(l1, l2, l3))
    A = np.asarray(a.array)[:, l1 * l1 : (l1 + 1) ** 2]
    B = np.asarray(b.array)[:, l2 * l2 : (l2 + 1) ** 2]
    return np.sqrt(2 * l3 + 1) * np.einsum("ijk,ai,bj->abk", C, A, B)


def test_cg_path_reference_is_e3nn_tensor_product():
    with jax.enable_x64(True):
        a, b = rand("2e", 0, (1,)), rand("1o", 1, (1,))
        tp = jax.jit(lambda a, b: e3nn.tensor_product(a, b, filter_ir_out=["1o", "3o"]))
        y = tp(a, b)
        assert y.irreps == e3nn.Irreps("1o+3o")
        aa = e3nn.IrrepsArray(sh_irreps(2), jnp.pad(a.array, ((0, 0), (4, 0))))
        bb = e3nn.IrrepsArray(sh_irreps(1), jnp.pad(b.array, ((0, 0), (1, 0))))
        ref = np.concatenate([_cg_path(aa, bb, 2, 1, l3)[:, 0] for l3 in (1, 3)], -1)
        np.testing.assert_allclose(y.array, ref, atol=1e-12)


def test_gaunt_vs_clebsch_gordan_paths():
    """Gaunt path (l1,l2,l3) = e3nn CG path x gaunt_scale / sqrt(2 l3 + 1)."""
    with jax.enable_x64(True):
        a, b = _path_inputs(range(4), 10), _path_inputs(range(4), 20)
        y = np.asarray(jgtp(a[:, None], b[None, :], method="fourier_fft").array)
        for l1 in range(4):
            for l2 in range(4):
                for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                    ours = y[l1, l2, l3 * l3 : (l3 + 1) ** 2]
                    if (l1 + l2 + l3) % 2:  # Gaunt cannot express odd paths
                        assert np.abs(ours).max() < 1e-14
                        continue
                    theirs = _cg_path(a, b, l1, l2, l3)[l1, l2]
                    k = tb.gaunt_scale(l1, l2, l3) / np.sqrt(2 * l3 + 1)
                    np.testing.assert_allclose(ours, k * theirs, atol=1e-12)


def test_rotation_helper_is_an_o3_representation():
    """The NumPy Wigner-D helper used below is e3nn-jax's action: ``D^1(R) = R``
    (e3nn-jax orders l = 1 as x, y, z), so a ``1o`` vector moves like a vector and a
    ``1e`` one like a pseudovector; every ``D^l`` is orthogonal and a homomorphism.
    (tests/test_common.py checks the registry rows with ``eq.groups.act_irreps``.)"""
    R1, R2 = o3_samples(0, 2)  # a reflection and a rotation
    v = rand("1o+1e", 0, dtype=jnp.float32)
    for R in (R1, R2):
        got = np.asarray(rotate(R, v).array)
        det = np.linalg.det(R)
        np.testing.assert_allclose(got[:3], R @ np.asarray(v.array[:3]), atol=1e-6)
        np.testing.assert_allclose(
            got[3:], det * R @ np.asarray(v.array[3:]), atol=1e-6
        )
    P, Q = -R1, R2  # proper rotations
    for l in (2, 3, 5):
        D = wigner_D(P @ Q, l)
        np.testing.assert_allclose(D, wigner_D(P, l) @ wigner_D(Q, l), atol=1e-12)
        np.testing.assert_allclose(D @ D.T, np.eye(2 * l + 1), atol=1e-12)


def test_equivariance_o3_float64():
    """One deterministic case in the fast tier (every method's registry row is
    checked in float64 and float32 by tests/test_common.py); the property sweep
    below is in the slow tier."""
    with jax.enable_x64(True):
        x1 = rand(sh_irreps(3, -1, 2), 0, (2,))
        x2 = rand(sh_irreps(2, 1, 2), 10, (2,))

        def fn(a, b):
            return jgtp(a, b, lmax_out=4, method="s2grid")

        assert equivariance_error(fn, (x1, x2), o3_samples(0, 4)) < 1e-9


@slow
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
        Rs = o3_samples(seed, 4)

        def fn(a, b):
            return jgtp(a, b, lmax_out=4, method=method)

        assert equivariance_error(fn, (x1, x2), Rs) < 1e-9


@pytest.mark.parametrize(
    "method", ["fourier_fft", *(pytest.param(m, marks=slow) for m in METHODS[1:])]
)
def test_equivariance_float32(method):
    x1 = rand(sh_irreps(4), 0, (3,), jnp.float32)
    x2 = rand(sh_irreps(4), 1, (3,), jnp.float32)

    def fn(a, b):
        return jgtp(a, b, lmax_out=4, method=method)

    assert fn(x1, x2).dtype == jnp.float32
    assert equivariance_error(fn, (x1, x2), o3_samples(3, 4)) < 1e-4


def _energy(a_arr, b, method):
    a = e3nn.IrrepsArray(sh_irreps(2), a_arr)
    y = gaunt_tensor_product(a, b, lmax_out=3, method=method)
    return jnp.sum(y.array**2)


_energy_grad = jax.jit(jax.grad(_energy), static_argnums=2)


@pytest.mark.parametrize(
    "grad_methods",
    [("s2grid",), pytest.param(("fourier_fft", "fourier_direct"), marks=slow)],
)
def test_equivariance_under_vmap_and_grad(grad_methods):
    with jax.enable_x64(True):
        x1 = rand(sh_irreps(2), 0, (4,))
        x2 = rand(sh_irreps(3), 1, (4,))
        Rs = o3_samples(5, 4)

        # vmap over the rotated batch: one rotation per batch element
        def product(a, b):
            a = e3nn.IrrepsArray(x1.irreps, a)
            b = e3nn.IrrepsArray(x2.irreps, b)
            return gaunt_tensor_product(a, b, method="fourier_fft").array

        xr1 = jnp.stack([rotate(R, x1[i]).array for i, R in enumerate(Rs)])
        xr2 = jnp.stack([rotate(R, x2[i]).array for i, R in enumerate(Rs)])
        lhs = jax.jit(jax.vmap(product))(xr1, xr2)
        y = jgtp(x1, x2, method="fourier_fft")
        rhs = jnp.stack([rotate(R, y[i]).array for i, R in enumerate(Rs)])
        assert rel_err(lhs, rhs) < 1e-9

        # gradient of an invariant is equivariant: grad(R x) = R grad(x)
        for method in grad_methods:
            for R in Rs[1:3]:
                lhs = _energy_grad(rotate(R, x1[0]).array, rotate(R, x2[0]), method)
                gx = e3nn.IrrepsArray(
                    x1.irreps, _energy_grad(x1[0].array, x2[0], method)
                )
                assert np.all(np.isfinite(lhs))
                assert rel_err(lhs, rotate(R, gx).array) < 1e-9


def test_control_non_equivariant_is_caught():
    """A wrong parity label (treating '0e+1e+2e' data as a spherical function by
    relabelling) must give a large error under reflections: the check bites."""
    with jax.enable_x64(True):
        x1, x2 = rand(sh_irreps(2), 0), rand(sh_irreps(2), 1)

        def wrong(a, b):
            y = jgtp(a, b, lmax_out=2)
            return e3nn.IrrepsArray("0e+1e+2e", y.array)  # parity dropped

        def also_wrong(a, b):  # breaks rotation symmetry: scale the m = 0 entries
            y = jgtp(a, b, lmax_out=2)
            return e3nn.IrrepsArray(
                y.irreps, y.array * jnp.asarray([1.0, 1, 2, 1, 1, 1, 2, 1, 1])
            )

        Rs = o3_samples(0, 4)
        assert equivariance_error(wrong, (x1, x2), Rs) > 1e-2
        assert equivariance_error(also_wrong, (x1, x2), Rs) > 1e-2


def test_degenerate_inputs_zero_and_finite_grads():
    with jax.enable_x64(True):
        z1 = e3nn.zeros(sh_irreps(2), (), jnp.float64)
        z2 = e3nn.zeros(sh_irreps(3), (), jnp.float64)
        # forward at zero: the FFT route here (every method's registry row checks
        # its degenerate inputs in tests/test_common.py)
        for method in ("fourier_fft",):
            y = jgtp(z1, z2, lmax_out=3, method=method)
            assert np.all(np.asarray(y.array) == 0)
        # finite gradients at zero (every method's: tests/test_common.py's rows)
        assert np.all(np.isfinite(_energy_grad(z1.array, z2, "s2grid")))


def test_weights_and_self_interaction():
    with jax.enable_x64(True):
        x = rand(sh_irreps(2, mul=3), 0)
        w1 = jnp.array([1.0, -2.0, 0.5])
        w2 = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3)))  # per channel
        y = jax.jit(gaunt_tensor_product, static_argnames="lmax_out")(
            x, x, weights1=w1, weights2=w2, lmax_out=2
        )
        c = np.asarray(x.mul_to_axis().array)  # (3, 9)
        ls = np.repeat(np.arange(3), 2 * np.arange(3) + 1)
        ref = direct_gaunt([c * w1[ls], c * w2[:, ls]], [2, 2], 2)
        np.testing.assert_allclose(y.mul_to_axis().array, ref, atol=1e-12)
        s = jax.jit(gaunt_self_interaction)(x, weights1=w1, weights2=w2)
        np.testing.assert_allclose(s.array, y.array, atol=1e-12)
        with pytest.raises(ValueError, match="one weight per degree"):
            gaunt_tensor_product(x, x, weights1=jnp.ones(2))


@pytest.mark.parametrize(
    "nu", [3, pytest.param(2, marks=slow), pytest.param(4, marks=slow)]
)
def test_power_stays_in_fourier_domain_and_is_exact(nu):
    with jax.enable_x64(True):
        x = rand(sh_irreps(2), nu)
        pts = np.random.default_rng(9).normal(size=(30, 3))
        f = eval_sh(x.array, 2, pts)
        for method in METHODS:
            y = jpower(x, nu, method=method)
            assert y.irreps == sh_irreps(2 * nu)
            np.testing.assert_allclose(eval_sh(y.array, 2 * nu, pts), f**nu, atol=1e-10)
        # truncated: equals the exact product truncated, not chained truncations
        yt = jpower(x, nu, lmax_out=2, method="s2grid")
        np.testing.assert_allclose(yt.array, y.array[:9], atol=1e-10)
        xs = [x, rand(sh_irreps(1), 30), rand(sh_irreps(3, -1), 31)][: min(nu, 3)]
        ym = jproduct(xs, method="fourier_fft")
        ys = jproduct(xs, method="s2grid")
        np.testing.assert_allclose(ym.array, ys.array, atol=1e-10)


def test_vector_product_cross_product_and_cg_paths():
    with jax.enable_x64(True):
        a, b = rand("1o", 0), rand("1o", 1)
        for method in ("fourier_fft", "s2grid"):
            y = jgvp(a, b, method=method)
            assert y.irreps == e3nn.Irreps("0o+1e")
            k = np.sqrt(3 / (4 * np.pi))
            np.testing.assert_allclose(
                y.array[1:], k * np.cross(a.array, b.array), atol=1e-12
            )
            assert abs(float(y.array[0])) < 1e-13
        # every path: antisymmetric, zero for even l1+l2+l3, proportional to CG for
        # odd; all pairs (l1, l2) in one call (one non-zero degree per batch row)
        A, B = _path_inputs(range(1, 4), 40), _path_inputs(range(1, 4), 50)
        y = np.asarray(jgvp(A[:, None], B[None, :], method="fourier_fft").array)
        y2 = np.asarray(jgvp(B[None, :], A[:, None], method="s2grid").array)
        np.testing.assert_allclose(y, -y2, atol=1e-12)
        for i, l1 in enumerate(range(1, 4)):
            for j, l2 in enumerate(range(1, 4)):
                for l3 in range(abs(l1 - l2), l1 + l2):
                    ours = y[i, j, l3 * l3 : (l3 + 1) ** 2]
                    if (l1 + l2 + l3) % 2 == 0:
                        assert np.abs(ours).max() < 1e-12
                        continue
                    theirs = _cg_path(A, B, l1, l2, l3)[i, j]
                    k = float(ours @ theirs / (theirs @ theirs))
                    assert abs(k) > 1e-3
                    np.testing.assert_allclose(ours, k * theirs, atol=1e-12)


def test_vector_product_equivariant_with_reflections():
    with jax.enable_x64(True):
        x1, x2 = rand(sh_irreps(3), 0), rand(sh_irreps(2, -1), 1)
        Rs = o3_samples(2, 4)
        for method in ("fourier_fft", "s2grid"):

            def fn(a, b, m=method):
                return jgvp(a, b, method=m)

            assert equivariance_error(fn, (x1, x2), Rs) < 1e-9


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
    x = rand(irreps, 0, dtype=jnp.float32)
    good = rand("0e+1o", 1, dtype=jnp.float32)
    with pytest.raises(ValueError, match=match):
        gaunt_tensor_product(x, good)
    with pytest.raises(ValueError, match=match):
        gaunt_vector_product(good, x)
    with pytest.raises(ValueError, match=match):
        eq.tensor_products.signal_irreps(irreps)


def test_signal_irreps():
    s = eq.tensor_products.signal_irreps("3x2e+3x0e")
    assert s == eq.tensor_products.SignalIrreps(channels=3, lmax=2, parity=1)
    assert eq.tensor_products.signal_irreps("0o+1e+2o").parity == -1
    with pytest.raises(ValueError, match="irreps_in has no irreps"):
        eq.tensor_products.signal_irreps("", "irreps_in")


def test_bad_arguments_raise():
    x = rand("0e+1o", 1, dtype=jnp.float32)
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
            rand("2x0e", 0, dtype=jnp.float32), rand("3x0e", 0, dtype=jnp.float32)
        )
    with pytest.raises(ValueError, match="nu"):
        gaunt_power(x, 0)


def test_many_body_equals_sum_of_weighted_powers():
    with jax.enable_x64(True):
        x = rand(sh_irreps(2, mul=2), 3, (2,))
        rng = np.random.default_rng(0)
        w_in = jnp.asarray(rng.normal(size=(3, 2, 3)))
        w_out = jnp.asarray(rng.normal(size=(3, 2, 2)))
        many = jax.jit(gaunt_many_body, static_argnames=_STATIC)
        y = many(x, w_in, w_out, lmax_out=1, method="s2grid")
        assert y.irreps == sh_irreps(1, mul=2)
        # reference: each power from the direct contraction, weighted by hand
        c = np.asarray(x.mul_to_axis().array)  # (2, 2, 9)
        ls_in = np.repeat(np.arange(3), 2 * np.arange(3) + 1)
        ls = np.array([0, 1, 1, 1])
        ref = 0
        for n in range(3):
            xn = c * np.asarray(w_in[n])[:, ls_in]
            p, L = xn, 2
            for _ in range(n):
                p, L = direct_gaunt([p, xn], [L, 2], L + 2), L + 2
            ref = ref + p[..., :4] * np.asarray(w_out[n])[:, ls]
        np.testing.assert_allclose(y.mul_to_axis().array, ref, atol=1e-10)
        with pytest.raises(ValueError, match="p=\\+1"):
            gaunt_many_body(rand("0o+1e", 0), w_in[:, :1, :2], w_out[:, :1], lmax_out=1)


_LAYOUTS = ["dense", "hemisphere", "quadrant", "factored"]


def _check_layout(layout, shape, chunk, signals_last=False):
    L1, L2, Lo = shape
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        c1 = jnp.asarray(rng.normal(size=(7, (L1 + 1) ** 2)))
        c2 = jnp.asarray(rng.normal(size=(7, (L2 + 1) ** 2)))
        ref = direct_gaunt([c1, c2], [L1, L2], Lo)
        y = jgrid(
            [c1, c2],
            (L1, L2),
            Lo,
            layout=layout,
            chunk=chunk,
            signals_last=signals_last,
        )
        np.testing.assert_allclose(y, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("layout", _LAYOUTS)
def test_s2grid_layouts_agree(layout):
    """Every grid layout, blocked (with a remainder block) or not, with the signals
    on the major or (symmetry-split layouts) the minor axis, is the exact product:
    float64 against the direct Gaunt contraction."""
    _check_layout(layout, (0, 0, 0), 0)
    _check_layout(layout, (4, 3, 5), 3)
    if layout != "factored":
        _check_layout(layout, (4, 3, 5), 0, signals_last=True)
        _check_layout(layout, (4, 3, 5), 3, signals_last=True)
    else:
        with pytest.raises(ValueError, match="signals_last"):
            _check_layout(layout, (4, 3, 5), 0, signals_last=True)


@slow
@pytest.mark.parametrize("chunk", [0, 3])
@pytest.mark.parametrize(
    "shape", [(0, 0, 0), (0, 2, 2), (4, 3, 5), (1, 1, 3), (6, 6, 6), (10, 10, 10)]
)
@pytest.mark.parametrize("layout", _LAYOUTS)
def test_s2grid_layouts_agree_sweep(layout, shape, chunk):
    _check_layout(layout, shape, chunk)


@pytest.mark.parametrize(
    "layout",
    [
        "quadrant",
        pytest.param("dense", marks=slow),
        pytest.param("factored", marks=slow),
    ],
)
def test_s2grid_layouts_three_factors_and_broadcast(layout):
    """Three factors, and broadcast batch axes (never blocked)."""
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        c1 = jnp.asarray(rng.normal(size=(7, 36)))
        c2 = jnp.asarray(rng.normal(size=(7, 25)))
        c3 = jnp.asarray(rng.normal(size=(7, 9)))
        y3 = jgrid([c1, c2, c3], (5, 4, 2), 4, layout=layout, chunk=3)
        r = direct_gaunt([direct_gaunt([c1, c2], [5, 4], 9), c3], [9, 2], 4)
        np.testing.assert_allclose(y3, r, atol=1e-10, rtol=0)
        yb = jgrid([c1[:, None], c2[None, :3]], (5, 4), 6, layout=layout, chunk=3)
        rb = direct_gaunt([c1[:, None], c2[None, :3]], [5, 4], 6)
        assert yb.shape == (7, 3, 49)
        np.testing.assert_allclose(yb, rb, atol=1e-10, rtol=0)
        if layout != "factored":  # broadcast first, then signals on the minor axis
            y3 = jgrid([c1, c2, c3], (5, 4, 2), 4, layout=layout, signals_last=True)
            np.testing.assert_allclose(y3, r, atol=1e-10, rtol=0)
            yb = jgrid(
                [c1[:, None], c2[None, :3]], (5, 4), 6, layout=layout, signals_last=True
            )
            np.testing.assert_allclose(yb, rb, atol=1e-10, rtol=0)


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
        ref = direct_gaunt([c1, c2], [3, 3], 3)
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
        ref_c = direct_gaunt([cx, cy], [2, 1], 3)
        ref = np.concatenate(
            [ref_c[..., l * l : (l + 1) ** 2].reshape(2, -1) for l in range(4)], axis=-1
        )
        for method in ("s2grid",):  # the layout code is shared by every method
            out = jgtp(x, y, lmax_out=3, method=method)
            assert out.irreps == sh_irreps(3, mul=3)
            np.testing.assert_allclose(out.array, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("dense", [False, True])
def test_vector_product_grid_paths_agree(dense):
    """The vector product's dense and factored-per-order grid conversions agree."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        c1, c2 = (
            jnp.asarray(rng.normal(size=(2, 4))),
            jnp.asarray(rng.normal(size=(2, 4))),
        )
        y = jax.jit(
            lambda a, b: K.vector_product_s2grid(a, 1, b, 1, 1, dense=lambda *_: dense)
        )(c1, c2)
        assert abs(np.asarray(y[:, 0])).max() < 1e-13
        k = np.sqrt(3 / (4 * np.pi))
        cross = np.cross(np.asarray(c1)[:, 1:], np.asarray(c2)[:, 1:])
        np.testing.assert_allclose(y[:, 1:], k * cross, atol=1e-12)
