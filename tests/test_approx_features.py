"""Host-side random features (opdiff.approx.features) against independent computations."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from scipy import integrate

from opdiff.approx import bounds, features
from opdiff.approx import random_features as rf


@pytest.mark.parametrize("activation", sorted(features.HOST_ACTIVATIONS))
def test_host_activations_are_the_jax_ones_and_keep_the_dtype(x64, activation):
    t = np.linspace(-40.0, 40.0, 2001)
    np.testing.assert_allclose(features.HOST_ACTIVATIONS[activation](t),
                               np.asarray(rf.ACTIVATIONS[activation](jnp.asarray(t))),
                               rtol=1e-13, atol=1e-15)
    assert features.HOST_ACTIVATIONS[activation](t.astype(np.float32)).dtype == np.float32


def test_feature_matrix_entry_by_entry():
    rng = np.random.default_rng(0)
    a, b, x, w = rng.normal(size=7), rng.normal(size=7), rng.uniform(-1, 1, 11), rng.uniform(
        0.1, 1, 11)
    A = features.feature_matrix(a, b, x, "tanh", np.sqrt(w))
    for i in range(11):
        for j in range(7):
            assert A[i, j] == pytest.approx(math.tanh(a[j] * x[i] - b[j]) * math.sqrt(w[i]),
                                            rel=1e-14)
    A32 = features.feature_matrix(a.astype(np.float32), b.astype(np.float32),
                                  x.astype(np.float32), "sigmoid")
    assert A32.dtype == np.float32
    with pytest.raises(ValueError, match="activation must be one of"):
        features.feature_matrix(a, b, x, "softplus")
    with pytest.raises(ValueError, match="1-D"):
        features.feature_matrix(a, b[:3], x)


def test_quadrature_measures_integrate_against_the_uniform_probability():
    r = 2.5
    x, w = features.gauss_legendre_measure(8, r)
    assert w.sum() == pytest.approx(1.0, abs=1e-15) and np.all(np.abs(x) < r)
    for k in range(16):  # exact up to degree 2n - 1
        exact = integrate.quad(lambda t: t**k / (2 * r), -r, r)[0]
        assert w @ x**k == pytest.approx(exact, rel=1e-12, abs=1e-12)
    xm, wm = features.midpoint_grid(400, r)
    assert np.all(np.diff(xm) == pytest.approx(2 * r / 400)) and wm.sum() == pytest.approx(1.0)
    assert wm @ xm**2 == pytest.approx(r * r / 3, rel=1e-5)  # midpoint rule, error O(h^2)


def test_targets():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(features.gaussian(x, 0.7), np.exp(-x**2 / 0.98), rtol=1e-15)
    terms = ((0.2, 10.0, 4.0), (0.5, 80.0, 40.0))
    np.testing.assert_allclose(features.gaussian_sum(x, terms),
                               0.2 * np.exp(-(10 * x - 4) ** 2) + 0.5 * np.exp(-(80 * x - 40) ** 2))
    np.testing.assert_allclose(features.abs_sin_cubed(x), np.abs(np.sin(x)) ** 3)


def test_monte_carlo_mse_by_brute_force_and_its_exact_mean():
    rng = np.random.default_rng(1)
    s, n_features, draws = 0.5, 8, 4000
    x, w = features.gauss_legendre_measure(32)
    f = features.gaussian(x, s)
    omega = rng.normal(scale=1 / s, size=(draws, n_features))
    got = features.monte_carlo_mse(omega, x, w, f, chunk_elements=1000)  # many chunks
    for d in (0, 17, draws - 1):
        brute = sum(w[i] * (f[i] - np.mean(np.cos(omega[d] * x[i]))) ** 2 for i in range(32))
        assert got[d] == pytest.approx(brute, rel=1e-12)
    exact = float(np.sum(w * bounds.monte_carlo_gaussian_mse(x, s, n_features)))
    se = got.std(ddof=1) / math.sqrt(draws)
    assert abs(got.mean() - exact) < 4 * se


def test_least_squares_errors_against_scipy_and_the_monte_carlo_weights():
    rng = np.random.default_rng(2)
    s = 0.5
    x, w = features.gauss_legendre_measure(40)
    xt, wt = features.midpoint_grid(300)
    f, ft = features.gaussian(x, s), features.gaussian(xt, s)
    omega = rng.normal(scale=1 / s, size=6)
    fit_mse, test_mse = features.least_squares_errors(omega, np.zeros(6), "cos", (x, w, f),
                                                      (xt, wt, ft))
    A = np.cos(np.outer(x, omega))
    c = scipy.linalg.lstsq(np.sqrt(w)[:, None] * A, np.sqrt(w) * f, lapack_driver="gelsy")[0]
    assert fit_mse == pytest.approx(np.sum(w * (f - A @ c) ** 2), rel=1e-9)
    assert test_mse == pytest.approx(np.sum(wt * (ft - np.cos(np.outer(xt, omega)) @ c) ** 2),
                                     rel=1e-9)
    mc = features.monte_carlo_mse(omega[None, :], x, w, f)[0]
    assert fit_mse <= mc  # the weights 1/N are feasible
    assert not fit_mse <= 0.5 * fit_mse  # and the comparison can fail


def test_nsdim_native_counts_and_dtype():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 30))  # rank 4
    counts, ratios = features.nsdim_native(A, [1e-1, 1e-8])
    assert counts[1] == 4 and counts[0] <= 4
    np.testing.assert_array_equal(counts, bounds.nsdim(A, np.array([1e-1, 1e-8])))
    assert ratios[0] == 1.0 and np.all(np.diff(ratios) <= 0)
    c32, r32 = features.nsdim_native(A.astype(np.float32), [1e-8])
    assert r32.dtype == np.float32 and c32[0] > 4  # float32 counts its rounding noise
    c, r, s1 = features.nsdim_native(A, [1e-8], return_s1=True)
    assert s1 == pytest.approx(np.linalg.norm(A, 2), rel=1e-12) and c[0] == 4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gauss_legendre_feature_matrix_is_the_l2_geometry(dtype):
    rng = np.random.default_rng(4)
    a, b = rng.uniform(-3, 3, 5), rng.uniform(-3, 3, 5)
    A = features.gauss_legendre_feature_matrix(a, b, 40, "sin", dtype)
    assert A.dtype == dtype and A.shape == (40, 5)
    # A^T A is the Gram matrix int_{-1}^{1} sin(a_j x - b_j) sin(a_k x - b_k) dx
    gram = np.array([[integrate.quad(lambda t: math.sin(a[j] * t - b[j]) * math.sin(
        a[k] * t - b[k]), -1, 1)[0] for k in range(5)] for j in range(5)])
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(A.astype(np.float64).T @ A.astype(np.float64), gram, atol=tol)


def test_lattice_covered():
    assert features.lattice_covered(np.array([0, 1, -1, 2, -2]), 2)
    assert not features.lattice_covered(np.array([0, 1, -1, 2]), 2)  # |k| = 2 drawn once
    assert not features.lattice_covered(np.array([1, -1, 2, -2]), 2)  # no k = 0


def test_grid_lstsq_mse_is_the_residual_of_the_pseudoinverse_fit():
    rng = np.random.default_rng(5)
    x = 2 * np.pi * np.arange(64) / 64
    a, b, Y = rng.uniform(-3, 3, 9), rng.uniform(0, 6, 9), rng.normal(size=(64, 2))
    A = np.cos(np.outer(x, a) - b)
    resid = A @ np.linalg.pinv(A) @ Y - Y
    np.testing.assert_allclose(features.grid_lstsq_mse(a, b, x, Y), np.mean(resid**2, axis=0),
                               rtol=1e-10)


def test_ridge_fit_floor_against_the_normal_equations(x64):
    rng = np.random.default_rng(6)
    a, b = rng.uniform(-5, 5, 5), rng.uniform(-5, 5, 5)  # well conditioned: oracles agree
    x, xt = rng.uniform(0, 1, 80), rng.uniform(0, 1, 30)
    y, yt = np.sin(6 * x), np.sin(6 * xt)
    out = features.ridge_fit_floor(a, b, x, y, xt, yt, 1e-3)
    A = 0.5 * (1 + np.tanh(0.5 * (np.outer(x, a) - b)))
    At = 0.5 * (1 + np.tanh(0.5 * (np.outer(xt, a) - b)))
    alpha = 1e-3 * np.trace(A.T @ A) / 5
    c = np.linalg.solve(A.T @ A + alpha * np.eye(5), A.T @ y)
    assert out["rms"] == pytest.approx(np.sqrt(np.mean((yt - At @ c) ** 2)), rel=1e-8)
    assert out["B"] == pytest.approx(np.linalg.norm(c), rel=1e-8)
    c0 = np.linalg.pinv(A) @ y
    assert out["rms_no_ridge"] == pytest.approx(np.sqrt(np.mean((yt - At @ c0) ** 2)), rel=1e-6)
    assert 0 <= out["floor"] <= out["rms"]  # a floor over ||c|| <= B, attained-or-beaten by c


def test_refit_floors_reproduce_fit_sweep_seed_zero(x64):
    import jax
    import jax.numpy as jnp

    key = jax.random.key(7)
    x, xt = jax.random.uniform(jax.random.key(8), (2, 120), jnp.float64)
    y, yt = jnp.sin(5 * x), jnp.sin(5 * xt)
    lams = jnp.array([1.0, 20.0])
    sweep = np.asarray(rf.solve_sweep(key, x, y, xt, yt, n_features=15, bandwidths=lams,
                                    n_seeds=2, ridge=1e-8, relative_ridge=True, method="qr"))
    rows = features.refit_floors(jax.random.fold_in(key, 0), (15,), np.asarray(lams),
                                 np.asarray(x), np.asarray(y), np.asarray(xt), np.asarray(yt),
                                 1e-8)
    np.testing.assert_array_equal(rows["lam"], [1.0, 20.0])
    np.testing.assert_allclose(rows["rms"], sweep[:, 0], rtol=1e-6)


def test_torus_identity_hits_the_tail_on_the_lattice_only(x64):
    import jax

    out = features.torus_identity(jax.random.key(9), (2, 3), 60, 256, 4096, 1.5)
    for name, t in out.items():
        assert np.all(t["lattice_covered"])
        np.testing.assert_allclose(t["integer_mse"], t["out_of_band_energy"], rtol=1e-6)
        np.testing.assert_allclose(t["rel_dev_from_tail"],
                                   np.abs(t["integer_mse"] / t["out_of_band_energy"] - 1))
    ic = out["inverse_cosine"]
    np.testing.assert_allclose(ic["grid_out_of_band_energy"], ic["out_of_band_energy"],
                               rtol=1e-10)
    assert np.all(ic["real_mse"] < ic["out_of_band_energy"] / 100)  # off the lattice: no floor


def test_nsdim_widths_counts_and_bounds_against_direct_computations():
    rng = np.random.default_rng(11)
    a, b = rng.uniform(-6, 6, 120), rng.uniform(-6, 6, 120)
    widths = (15, 60, 120)
    for act in ("tanh", "relu"):
        counts, bound = features.nsdim_widths(a, b, 200, act, widths, 1e-8, 6.0)
        A = features.gauss_legendre_feature_matrix(a, b, 200, act)
        direct = [bounds.nsdim(A[:, :w], 1e-8) for w in widths]
        np.testing.assert_array_equal(counts, direct)
        assert np.all(counts <= bound)
        if act == "relu":
            np.testing.assert_array_equal(bound, [bounds.relu_rank_bound(a[:w], b[:w])
                                                  for w in widths])
        else:
            s1 = np.linalg.norm(A[:, :60], 2)
            assert bound[1] == bounds.bernstein_nsdim_bound("tanh", 6.0, 60, s1, 1e-8)
    with pytest.raises(ValueError, match="^activation "):
        features.nsdim_widths(a, b, 50, "gaussian", widths, 1e-8, 6.0)


def test_precision_spectra_against_a_direct_float32_svd():
    rng = np.random.default_rng(12)
    a, b = rng.uniform(-10, 10, 80), rng.uniform(-10, 10, 80)
    p = features.precision_spectra(a, b, 300, "sin", [1e-4, 1e-8])
    s64 = np.linalg.svd(features.gauss_legendre_feature_matrix(a, b, 300, "sin"),
                        compute_uv=False)
    s32 = np.linalg.svd(features.gauss_legendre_feature_matrix(a, b, 300, "sin", np.float32),
                        compute_uv=False).astype(np.float64)
    small = s64 <= 1e-6 * s64[0]
    assert small.any()
    assert p["small_sv_error"] == pytest.approx(np.max(np.abs(s32 - s64)[small]) / s64[0],
                                                rel=1e-5)
    np.testing.assert_array_equal(p["nsdim64"], bounds.nsdim(
        features.gauss_legendre_feature_matrix(a, b, 300, "sin"), np.array([1e-4, 1e-8])))
    assert p["ratios32"].dtype == np.float32 and p["nsdim32"][1] > p["nsdim64"][1]  # sin: noise
