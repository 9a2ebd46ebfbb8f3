"""opdiff.deeponet_bounds: the exact linear-Gaussian floors against brute-force conditional
covariances, the cumulative trapezoid against scipy, the Bochner errors and their Monte-Carlo
slack against simulation, the sensor theory against a direct computation; the PCA floor of
three known modes by hand, the optimality of the PCA projection, the Matérn reference table."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import integrate

from opdiff import deeponet_bounds as db
from opdiff import functions


def test_cumulative_trapezoid_matrix_is_scipy_cumulative_trapezoid():
    rng = np.random.default_rng(0)
    x = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 30)]))  # non-uniform
    u = rng.normal(size=(4, x.size))
    J = db.cumulative_trapezoid_matrix(x)
    np.testing.assert_allclose(u @ J.T, integrate.cumulative_trapezoid(u, x, initial=0.0),
                               rtol=1e-13, atol=1e-15)


def test_subgrid():
    np.testing.assert_array_equal(db.subgrid(11, 6), [0, 2, 4, 6, 8, 10])
    np.testing.assert_array_equal(db.subgrid(5, 5), np.arange(5))
    with pytest.raises(ValueError, match="must divide"):
        db.subgrid(10, 5)


def _conditional(B, SF, w):
    """Brute force: Cov(s | y) and Cov(E[s | y]) for s = B z, y = SF z, z ~ N(0, I)."""
    C_sy = B @ SF.T
    explained = C_sy @ np.linalg.solve(SF @ SF.T, C_sy.T)
    return B @ B.T - explained, explained


def test_gaussian_floors_match_the_conditional_covariance_by_brute_force():
    rng = np.random.default_rng(1)
    B, SF = rng.normal(size=(6, 9)), rng.normal(size=(3, 9))
    w = rng.uniform(0.5, 2.0, 6)
    out = db.gaussian_floors(B, w, SF=SF)
    sw = np.sqrt(w)
    cov = sw[:, None] * (B @ B.T) * sw[None, :]
    np.testing.assert_allclose(out["eigs"], np.linalg.eigvalsh(cov)[::-1], rtol=1e-10,
                               atol=1e-12)
    assert out["second_moment"] == pytest.approx(np.trace(w[:, None] * (B @ B.T)), rel=1e-12)
    resid, explained = _conditional(B, SF, w)
    assert out["sensor_sq"] == pytest.approx(np.trace(w[:, None] * resid), rel=1e-10)
    ex = np.linalg.eigvalsh(sw[:, None] * explained * sw[None, :])[::-1]
    np.testing.assert_allclose(out["explained_eigs"], ex[: out["explained_eigs"].size],
                               rtol=1e-9, atol=1e-12)
    # Pythagoras: E||s||^2 = E||s - E[s|y]||^2 + E||E[s|y]||^2
    assert out["sensor_sq"] + out["explained_eigs"].sum() == pytest.approx(
        out["second_moment"], rel=1e-12)
    assert "sensor_sq" not in db.gaussian_floors(B, w)


def test_gaussian_sensor_floor_by_monte_carlo():
    # the residual of the best (linear) predictor from the sensor values, sampled
    rng = np.random.default_rng(2)
    B, SF, w = rng.normal(size=(4, 5)), rng.normal(size=(2, 5)), np.full(4, 0.25)
    z = rng.normal(size=(200_000, 5))
    s, y = z @ B.T, z @ SF.T
    coef, *_ = np.linalg.lstsq(y, s, rcond=None)
    mc = np.mean(np.sum(w * (s - y @ coef) ** 2, axis=1))
    assert mc == pytest.approx(db.gaussian_floors(B, w, SF=SF)["sensor_sq"], rel=0.02)


def test_pca_tail_is_the_squared_floor():
    lam = np.array([0.1, 4.0, 1.0, 0.5, -1e-18])
    np.testing.assert_allclose(db.pca_tail(lam, [0, 1, 2, 4, 9]), [5.6, 1.6, 0.6, 0.0, 0.0],
                               atol=1e-15)
    for p in (1, 2, 3):
        assert db.pca_tail(lam, p) == pytest.approx(db.pca_floor(lam, p) ** 2, rel=1e-14)


def test_sq_errors_and_bochner_by_hand():
    w = np.array([0.5, 1.0, 0.5])
    pred = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    sq = db.sq_errors(pred, np.array([1.0, 1.0, 1.0]), w)
    np.testing.assert_allclose(sq, [0 + 1.0 + 0.5 * 4, 0.5 + 1.0 + 0.5])
    assert db.bochner(sq) == pytest.approx(np.sqrt((3.0 + 2.0) / 2))


def test_relative_bochner_standard_error_by_simulation():
    # sq ~ 2 * Exponential: the spread of the relative error over replicates is the delta-method se
    rng = np.random.default_rng(3)
    sq = rng.exponential(2.0, size=(4000, 400))
    rel, se = db.relative_bochner(sq, 3.0)
    assert rel.shape == se.shape == (4000,)
    assert rel[0] == pytest.approx(np.sqrt(sq[0].mean()) / 3.0)
    assert se.mean() == pytest.approx(rel.std(ddof=1), rel=0.05)


def test_mc_rtol_formula_and_cap():
    sq = np.array([1.0, 2.0, 3.0, 4.0])
    rho = 3.0 * sq.std(ddof=1) / 2.0 / sq.mean()
    assert db.mc_rtol(sq) == pytest.approx(1 - np.sqrt(1 - rho))
    assert db.mc_rtol(np.array([0.0, 0.0, 0.0, 100.0]), z=10.0) == 0.9
    assert db.mc_rtol(np.full(5, 2.0)) == 0.0


def test_sensor_theory_against_a_direct_computation():
    grf = functions.GaussianRandomField(kernel="rbf", length_scale=0.1, n_grid=201)
    x = grf.grid
    idx = db.subgrid(201, 21)
    A = db.cumulative_trapezoid_matrix(x)[idx]
    w = db.trapezoid_weights(x[idx])
    u = np.asarray(grf.sample(300, key=jax.random.key(0)), np.float64)
    t = db.sensor_theory([5, 11, 41], x, grf.factor, u, A, w)
    for i, m in enumerate((5, 11, 41)):
        s = functions.equispaced_sensors(m)
        um = np.stack([np.interp(x, s, np.interp(s, x, row)) for row in u])  # I_m u
        d = u - um
        assert t["kappa"][i] == pytest.approx(np.abs(d).max(axis=1).mean(), rel=1e-10)
        gd = integrate.cumulative_trapezoid(d, x, initial=0.0)
        ratio = np.abs(gd).max(axis=1) / (np.abs(d).max(axis=1) * np.e)  # c = 1, b - a = 1
        assert t["gronwall_ratio"][i] == pytest.approx(ratio.max(), rel=1e-10)
        assert t["gronwall_ratio"][i] <= 1.0
        plug = np.sqrt(np.mean(np.sum(w * gd[:, idx] ** 2, axis=1)))
        assert t["plugin_test"][i] == pytest.approx(plug, rel=1e-10)
    # the population plug-in error is what the samples estimate; the Bayes floor is below it
    np.testing.assert_allclose(t["plugin_test"], t["plugin_pop"], rtol=0.15)
    assert np.all(t["bayes"] <= t["plugin_pop"] * (1 + 1e-9))
    assert np.all(np.diff(t["bayes"]) < 0)
    assert t["second_moment"] == pytest.approx(np.sum(t["eigs"]))


def test_joint_floor_by_brute_force():
    # best affine p-space predictor from the sensors: the rank-p PCA of E[s|y]
    rng = np.random.default_rng(5)
    B, SF, w = rng.normal(size=(6, 9)), rng.normal(size=(4, 9)), rng.uniform(0.5, 2, 6)
    fl = db.gaussian_floors(B, w, SF=SF)
    resid, explained = _conditional(B, SF, w)
    sw = np.sqrt(w)
    mu = np.linalg.eigvalsh(sw[:, None] * explained * sw[None, :])[::-1]
    for p in (0, 1, 2, 4, 6):
        want = np.sqrt(np.trace(w[:, None] * resid) + mu[p:].clip(0).sum())
        assert db.joint_floor(fl, p) == pytest.approx(want, rel=1e-9)
    assert db.joint_floor(fl, 0) == pytest.approx(np.sqrt(fl["second_moment"]), rel=1e-12)


def test_sinusoid_floors_match_the_closed_form_covariance():
    # E sin(af) sin(bf), f ~ U(0, F): [sin((a-b)F)/(a-b) - sin((a+b)F)/(a+b)] / (2F)
    f_max = 3.0
    x = np.linspace(0.0, 1.0, 41)
    w = db.trapezoid_weights(x)
    a = 2 * np.pi * x
    with np.errstate(invalid="ignore", divide="ignore"):
        dif, tot = a[:, None] - a[None, :], a[:, None] + a[None, :]
        sdif = np.where(dif == 0, f_max, np.sin(dif * f_max) / np.where(dif == 0, 1, dif))
        stot = np.where(tot == 0, f_max, np.sin(tot * f_max) / np.where(tot == 0, 1, tot))
        mean = np.where(a == 0, 0.0, (1 - np.cos(a * f_max)) / np.where(a == 0, 1, a) / f_max)
    second = (sdif - stot) / (2 * f_max)
    cov = second - np.outer(mean, mean)
    sw = np.sqrt(w)
    eigs = np.linalg.eigvalsh(sw[:, None] * cov * sw[None, :])[::-1]
    out = db.sinusoid_floors(x, w, f_max)
    np.testing.assert_allclose(out["eigs"][:10], eigs[:10], rtol=1e-9, atol=1e-13)
    assert out["second_moment"] == pytest.approx(np.sum(w * np.diag(second)), rel=1e-12)


def test_decoder_errors_against_np_interp_and_scipy():
    from opdiff.operators import integral

    grf = functions.GaussianRandomField(kernel="rbf", length_scale=0.2, n_grid=200)
    x = grf.grid
    sensors = functions.equispaced_sensors(12)
    u = np.asarray(grf.sample(20, key=jax.random.key(1)), np.float64)
    s = integrate.cumulative_trapezoid(u, x, initial=0.0)
    at = np.stack([np.interp(sensors, x, row) for row in u])
    out = db.decoder_errors(u, s, at, sensors, x, "linear",
                            lambda v: integral.antiderivative(v, x))
    um = np.stack([np.interp(x, sensors, row) for row in at])
    gerr = s - integrate.cumulative_trapezoid(um, x, initial=0.0)
    np.testing.assert_allclose(out["kappa"], np.abs(u - um).max(axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["sup"], np.abs(gerr).max(axis=1), rtol=1e-4, atol=1e-7)
    assert out["rms"] == pytest.approx(np.sqrt(np.mean(gerr**2)), rel=1e-4)
    assert np.all(out["sup"] <= db.gronwall_sensor_bound(out["kappa"], 1.0, 1.0))


# ------------------------------------------------------------------ PCA floors by hand


def _three_mode_outputs(n=200, seed=0):
    # v(x) = mean(x) + a1 sqrt2 sin(pi x) + a2 sqrt2 sin(2 pi x) + a3 sqrt2 sin(3 pi x) on [0,1]
    # with independent a_k of variances 4, 1, 0.25: covariance eigenvalues exactly 4, 1, 0.25.
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, 401)
    basis = np.stack([np.sqrt(2) * np.sin(k * np.pi * x) for k in (1, 2, 3)])
    a = rng.normal(size=(n, 3))
    a = (a - a.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(a.T, bias=True))).T  # whiten
    a = a * np.array([2.0, 1.0, 0.5])
    return x, 0.3 + x**2 + a @ basis


def test_floor_of_three_known_modes_is_computed_by_hand():
    x, v = _three_mode_outputs()
    res = db.pca(v, db.trapezoid_weights(x))
    np.testing.assert_allclose(res.eigenvalues[:3], [4.0, 1.0, 0.25], rtol=1e-5)
    assert res.eigenvalues[3] < 1e-20
    np.testing.assert_allclose(db.pca_floor(res.eigenvalues, [1, 2, 3]),
                               [np.sqrt(1.25), np.sqrt(0.25), 0.0], atol=1e-6)
    # weighted orthonormal modes
    w = res.weights
    np.testing.assert_allclose((res.modes[:3] * w) @ res.modes[:3].T, np.eye(3), atol=1e-10)
    # E||v||^2 = sum(lambda) + ||mean||^2
    mean_sq = np.sum(w * (0.3 + x**2) ** 2)
    assert res.second_moment == pytest.approx(5.25 + mean_sq, rel=1e-5)


def test_projection_with_exact_coefficients_attains_the_floor():
    # The PCA (POD) reconstruction is optimal: its mean-square error on the sample equals the
    # tail sum exactly, and any other p-dimensional affine reconstruction does worse.
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 101)
    w = db.trapezoid_weights(x)
    v = np.cumsum(rng.normal(size=(500, 101)), axis=1) / 10  # rough random walks
    res = db.pca(v, w)
    for p in (1, 5, 20):
        rec = db.project(res, v, p)
        mse = np.mean(np.sum(w * (rec - v) ** 2, axis=1))
        assert mse == pytest.approx(db.pca_floor(res.eigenvalues, p) ** 2, rel=1e-9)
        other = np.linalg.qr(rng.normal(size=(101, p)))[0].T / np.sqrt(w)  # some other basis
        coef = (v - res.mean) @ np.linalg.pinv(other)
        worse = np.mean(np.sum(w * (res.mean + coef @ other - v) ** 2, axis=1))
        assert worse >= mse


def test_floor_matches_the_reference_table_for_matern_antiderivative():
    # reference/deeponet.md §4.4 [C]: Matern-1/2 l=0.2 antiderivative, relative floor
    # p=10: 1.6e-2, p=40: 2.0e-3, from the exact output covariance J K J^T (Nystrom).
    x = np.linspace(0, 1, 1001)
    w = db.trapezoid_weights(x)
    K = np.exp(-np.abs(x[:, None] - x[None, :]) / 0.2)
    h = x[1] - x[0]
    J = np.tril(np.full((1001, 1001), h))  # row i: trapezoid weights of the integral to x_i
    J[:, 0] = h / 2
    J[np.arange(1001), np.arange(1001)] = h / 2
    J[0] = 0.0
    C = J @ K @ J.T
    lam = np.linalg.eigvalsh(np.sqrt(w)[:, None] * C * np.sqrt(w)[None, :])[::-1]
    rel = db.pca_floor(lam, [10, 40]) / np.sqrt(lam.sum())
    np.testing.assert_allclose(rel, [1.6e-2, 2.0e-3], rtol=0.05)


def test_sensor_estimate_scaling():
    k = db.sensor_error_estimate(np.array([11, 21, 41]), 0.2)
    np.testing.assert_allclose(k, 0.4 / (np.array([10, 20, 40]) ** 2 * 0.04))
    assert db.gronwall_sensor_bound(1e-3, 1.0) == pytest.approx(np.e * 1e-3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: db.pca_floor(np.ones(4), 0), "p must be a positive int"),
        (lambda: db.pca(np.ones((5, 3)), np.ones(4)), "weights must have shape"),
        (lambda: db.pca(np.ones((1, 3)), np.ones(3)), "outputs must have shape"),
        (lambda: db.trapezoid_weights(np.array([0.0, 0.0])), "strictly increasing"),
        (lambda: db.sensor_error_estimate(1, 0.2), "m must be >= 2"),
        (lambda: db.sensor_error_estimate(10, 0.0), "length_scale must be > 0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
