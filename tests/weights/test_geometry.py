"""Equiangular basis vectors, ETF/orthogonal heads, neural-collapse metrics, the
closed-form imbalanced geometry and the unconstrained-features model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqjax as eq

W = eq.weights


def _max_abs_cos(b):
    b = np.asarray(b, np.float64)
    c = b @ b.T
    np.fill_diagonal(c, 0.0)
    return np.abs(c).max()


def test_equiangular_basis_200_classes_in_64_dims(key):
    basis, ok, info = W.equiangular_basis(key, 200, 64, tol=0.15, return_info=True)
    assert basis.shape == (200, 64) and ok
    np.testing.assert_allclose(np.linalg.norm(basis, axis=-1), 1.0, atol=1e-5)
    assert _max_abs_cos(basis) <= 0.15 + 1e-6
    assert info["welch_bound"] < 0.15 and info["steps"] > 0
    # the same program with too few steps: the flag says so, no silent failure
    basis2, ok2, info2 = W.equiangular_basis(
        key, 200, 64, tol=0.105, max_steps=3, return_info=True
    )
    assert not ok2 and _max_abs_cos(basis2) > 0.105 and info2["steps"] == 3


def test_equiangular_basis_rejects_tolerances_below_the_welch_bound(key):
    with pytest.raises(ValueError, match="Welch bound is 0.1033"):
        W.equiangular_basis(key, 200, 64, tol=0.05)
    _, ok = W.equiangular_basis(
        key, 200, 64, tol=0.05, allow_infeasible=True, max_steps=2
    )
    assert not ok
    with pytest.raises(ValueError, match=">= 1"):
        W.equiangular_basis(key, 0, 64)


def test_fixed_frames_and_collapse_metrics():
    """ETF and orthogonal frames give NC2 = 0 against their own target and not
    the other's; zero within-class spread gives NC1 = 0; aligned classifier and
    means give NC3 = 0; every metric and the EBV loss are unchanged by one
    orthogonal map applied to features, classifier and basis together (float64,
    one compiled program)."""

    @jax.jit
    def metrics(key):
        k1, k2, k3 = jax.random.split(key, 3)
        etf = W.simplex_etf(5, 7, key=k1)
        of = W.orthogonal_frame(5, 7, key=k2)
        scale = jnp.arange(1.0, 6.0)
        labels = jnp.arange(15) % 5
        h = etf[labels]
        noisy = h + 0.1 * jax.random.normal(k3, h.shape)
        m, g = W.class_means(h, labels, 5)
        Q = eq.groups.On(7).sample(k3, ())
        perm = jnp.array([3, 0, 4, 1, 2])  # new row j holds old class perm[j]
        inv = jnp.argsort(perm)  # old class c sits at row inv[c]
        perm_inv = inv

        def all_metrics(h, w):
            mh, gh = W.class_means(h, labels, 5)
            return jnp.stack(
                [
                    W.nc1(h, labels, 5),
                    W.nc2_etf(w),
                    W.nc2_of(w),
                    W.nc3_etf(w, mh, gh),
                    W.ebv_loss(h, labels, w, 0.5),
                ]
            )

        return {
            "rotation": all_metrics(noisy, of) - all_metrics(noisy @ Q.T, of @ Q.T),
            "metrics": all_metrics(noisy, of),
            # the control: rotating the features alone changes NC3 and the loss
            "features_only": all_metrics(noisy, of) - all_metrics(noisy @ Q.T, of),
            # relabelling the classes (basis rows and labels) permutes the logits
            "relabel": W.ebv_logits(noisy, of[perm], 0.5)[:, inv]
            - W.ebv_logits(noisy, of, 0.5),
            "relabel_loss": W.ebv_loss(noisy, perm_inv[labels], of[perm], 0.5)
            - W.ebv_loss(noisy, labels, of, 0.5),
            "gram": etf @ etf.T,
            "etf_etf": W.nc2_etf(3.0 * etf),
            "etf_of": W.nc2_of(etf),
            "of_of": W.nc2_of(of),
            "of_etf": W.nc2_etf(of),
            "gof": W.nc2_gof(of * scale[:, None], scale**2),
            "nc1_zero": W.nc1(h, labels, 5),
            "nc1_noisy": W.nc1(noisy, labels, 5),
            "nc3_aligned": W.nc3_etf(2.0 * etf, m, g),
            "nc3_other": W.nc3_etf(of, m, g),
        }

    with jax.enable_x64(True):
        r = {k: np.asarray(v) for k, v in metrics(jax.random.key(1)).items()}
    np.testing.assert_allclose(r["gram"], (5 * np.eye(5) - 1) / 4, atol=1e-12)
    for name in ("etf_etf", "of_of", "gof", "nc1_zero", "nc3_aligned"):
        assert abs(float(r[name])) < 1e-10, name
    for name in ("etf_of", "of_etf", "nc1_noisy", "nc3_other"):
        assert float(r[name]) > 1e-3, name
    assert np.abs(r["rotation"]).max() < 1e-12 * max(1.0, np.abs(r["metrics"]).max())
    assert np.abs(r["features_only"][3:]).min() > 1e-3
    assert np.abs(r["relabel"]).max() < 1e-12 and abs(float(r["relabel_loss"])) < 1e-12
    with pytest.raises(ValueError, match="num_classes <= dim"):
        W.simplex_etf(8, 7)


def test_labels_out_of_range_and_bad_shapes_fail_loudly():
    h = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match=r"labels must lie in 0..2; got \[3\]"):
        W.nc1(h, jnp.array([0, 1, 2, 3]), 3)
    with pytest.raises(ValueError, match=r"labels must lie in 0..1"):
        W.ebv_loss(h, jnp.array([0, 1, -1, 0]), jnp.eye(2, 3))
    with pytest.raises(ValueError, match="must be \\(n, d\\)"):
        W.nc1(h, jnp.zeros(3, jnp.int32), 3)
    with pytest.raises(ValueError, match="end in one feature dimension"):
        W.ebv_logits(h, jnp.eye(2))
    with pytest.raises(ValueError, match="weight_decays"):
        W.imbalanced_geometry([3, 4], [], 1e-3)


def test_closed_form_root_by_bisection_is_the_minimiser():
    """For M = 3 layers, s_k beats a fine grid search of the scalar problem, and
    minority collapse happens where the theory predicts it."""
    counts, lam, lam_h = [50, 20, 8, 3], [1.2e-2] * 3, 1.2e-2
    g = W.imbalanced_geometry(counts, lam, lam_h)
    n_total, m = sum(counts), 3
    c = np.exp((np.log(lam).sum() + np.log(lam_h)) / (m + 1))
    for k, n in enumerate(counts):
        s = np.linspace(0, np.sqrt(n), 200001)
        obj = (s - np.sqrt(n)) ** 2 / (2 * n_total) + c * (m + 1) / 2 * s ** (
            2 / (m + 1)
        )
        best = s[np.argmin(obj)]
        assert abs(g["s"][k] - best) < 1e-4 * np.sqrt(n), k
    assert g["collapsed"].tolist() == [False, False, False, True]
    none = W.imbalanced_geometry(counts, [1e-5] * 3, 1e-5)
    assert not none["collapsed"].any()


@pytest.mark.slow  # ~3 CPU-s of compilation; the fast tier checks the closed form
def test_trained_ufm_matches_the_imbalanced_closed_form_with_minority_collapse():
    """Bias-free one-layer UFM, 4 imbalanced classes, decay 3e-2: the smallest
    class collapses (its classifier row and features vanish); the normalised
    diagonal of WWᵀ matches the closed form to 1e-4 and the Gram is diagonal."""
    counts, lam = [30, 20, 10, 2], 3e-2
    with jax.enable_x64(True):
        out = W.train_ufm(jax.random.key(0), counts, 8, [lam], lam, steps=600)
        geo = W.imbalanced_geometry(counts, [lam], lam)
        w = np.asarray(out["W"][0])
        gram = w @ w.T
        diag = np.diag(gram) / np.linalg.norm(gram)
        want = geo["last_gram"] / np.linalg.norm(geo["last_gram"])
        np.testing.assert_allclose(diag, want, atol=1e-4)
        assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-4
        assert geo["collapsed"].tolist() == [False, False, False, True]
        h = np.asarray(out["H"])
        assert np.abs(h[np.asarray(out["labels"]) == 3]).max() < 1e-6
        assert float(W.nc2_gof(out["W"][0], geo["last_gram"])) < 1e-4
        assert float(W.nc1(out["H"], out["labels"], 3 + 1)) < 1e-8


@pytest.mark.slow
def test_trained_deep_ufm_and_the_balanced_bias_etf():
    counts = [30, 20, 10, 2]
    with jax.enable_x64(True):
        out = W.train_ufm(
            jax.random.key(0),
            counts,
            8,
            [2e-2] * 2,
            2e-2,
            steps=3000,
            learning_rate=0.2,
            init_scale=0.5,
        )
        geo = W.imbalanced_geometry(counts, [2e-2] * 2, 2e-2)
        w = np.asarray(out["W"][-1])
        gram = w @ w.T
        np.testing.assert_allclose(
            np.diag(gram) / np.linalg.norm(gram),
            geo["last_gram"] / np.linalg.norm(geo["last_gram"]),
            atol=1e-4,
        )
        assert geo["collapsed"].tolist() == [False, False, False, True]
        bal = W.train_ufm(
            jax.random.key(1), [10] * 4, 8, [5e-3], 5e-3, bias=True, steps=3000
        )
        assert float(W.nc2_etf(bal["W"][0])) < 1e-4
        nob = W.train_ufm(jax.random.key(1), [10] * 4, 8, [5e-3], 5e-3, steps=3000)
        assert float(W.nc2_of(nob["W"][0])) < 1e-4


def test_metrics_and_ebv_are_scale_safe_and_refuse_integers():
    """float32 features and classifiers at 1e30 and 1e-30 give the metrics of
    unit scale (every metric is scale invariant), zeros give finite values, and
    integer features are refused by name."""

    @jax.jit
    def metrics(h, w, labels):
        m, g = W.class_means(h, labels, 4)
        return jnp.stack(
            [
                W.nc1(h, labels, 4),
                W.nc2_etf(w),
                W.nc2_of(w),
                W.nc3_etf(w, m, g),
                W.ebv_loss(h, labels, w, 1.0),
            ]
        )

    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.standard_normal((16, 6)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 6)), jnp.float32)
    labels = jnp.arange(16) % 4
    ref = np.asarray(metrics(h, w, labels))
    for s in (1e30, 1e-30):
        np.testing.assert_allclose(metrics(h * s, w * s, labels), ref, rtol=1e-4)
    assert np.isfinite(np.asarray(metrics(0 * h, 0 * w, labels))).all()
    with pytest.raises(TypeError, match="features must be a floating array"):
        W.nc1(jnp.ones((4, 3), jnp.int32), jnp.arange(4) % 2, 2)
    with pytest.raises(TypeError, match="features must be a floating array"):
        W.ebv_logits(jnp.ones((4, 3), jnp.int32), jnp.eye(2, 3))
