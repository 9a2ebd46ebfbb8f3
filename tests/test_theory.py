"""Floors and claim checks: hand-computed cases, and checks that can fail."""

from __future__ import annotations

import numpy as np
import pytest

from opdiff.theory import checks
from opdiff.theory import deeponet as T


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
    res = T.pca(v, T.trapezoid_weights(x))
    np.testing.assert_allclose(res.eigenvalues[:3], [4.0, 1.0, 0.25], rtol=1e-5)
    assert res.eigenvalues[3] < 1e-20
    np.testing.assert_allclose(T.pca_floor(res.eigenvalues, [1, 2, 3]),
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
    w = T.trapezoid_weights(x)
    v = np.cumsum(rng.normal(size=(500, 101)), axis=1) / 10  # rough random walks
    res = T.pca(v, w)
    for p in (1, 5, 20):
        rec = T.project(res, v, p)
        mse = np.mean(np.sum(w * (rec - v) ** 2, axis=1))
        assert mse == pytest.approx(T.pca_floor(res.eigenvalues, p) ** 2, rel=1e-9)
        other = np.linalg.qr(rng.normal(size=(101, p)))[0].T / np.sqrt(w)  # some other basis
        coef = (v - res.mean) @ np.linalg.pinv(other)
        worse = np.mean(np.sum(w * (res.mean + coef @ other - v) ** 2, axis=1))
        assert worse >= mse


def test_floor_matches_the_reference_table_for_matern_antiderivative():
    # reference/deeponet.md §4.4 [C]: Matern-1/2 l=0.2 antiderivative, relative floor
    # p=10: 1.6e-2, p=40: 2.0e-3, from the exact output covariance J K J^T (Nystrom).
    x = np.linspace(0, 1, 1001)
    w = T.trapezoid_weights(x)
    K = np.exp(-np.abs(x[:, None] - x[None, :]) / 0.2)
    h = x[1] - x[0]
    J = np.tril(np.full((1001, 1001), h))  # row i: trapezoid weights of the integral to x_i
    J[:, 0] = h / 2
    J[np.arange(1001), np.arange(1001)] = h / 2
    J[0] = 0.0
    C = J @ K @ J.T
    lam = np.linalg.eigvalsh(np.sqrt(w)[:, None] * C * np.sqrt(w)[None, :])[::-1]
    rel = T.pca_floor(lam, [10, 40]) / np.sqrt(lam.sum())
    np.testing.assert_allclose(rel, [1.6e-2, 2.0e-3], rtol=0.05)


def test_lower_bound_check_can_fail():
    assert checks.lower_bound("c", measured=2e-3, bound=1e-3)["holds"] is True
    fake = checks.lower_bound("error >= floor", measured=0.5e-3, bound=1e-3)
    assert fake["holds"] is False and set(fake) == {"claim", "measured", "bound", "holds"}
    assert checks.lower_bound("c", measured=0.99e-3, bound=1e-3, rtol=0.02)["holds"] is True
    assert checks.upper_bound("c", measured=3.0, bound=2.0)["holds"] is False
    assert checks.within("slope", -1.7, -2.0, atol=0.2)["holds"] is False
    with pytest.raises(ValueError, match="measured must not be NaN"):
        checks.lower_bound("c", float("nan"), 1.0)


def test_sensor_estimate_scaling():
    k = T.sensor_error_estimate(np.array([11, 21, 41]), 0.2)
    np.testing.assert_allclose(k, 0.4 / (np.array([10, 20, 40]) ** 2 * 0.04))
    assert T.gronwall_sensor_bound(1e-3, 1.0) == pytest.approx(np.e * 1e-3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: T.pca_floor(np.ones(4), 0), "p must be a positive int"),
        (lambda: T.pca(np.ones((5, 3)), np.ones(4)), "weights must have shape"),
        (lambda: T.pca(np.ones((1, 3)), np.ones(3)), "outputs must have shape"),
        (lambda: T.trapezoid_weights(np.array([0.0, 0.0])), "strictly increasing"),
        (lambda: T.sensor_error_estimate(1, 0.2), "m must be >= 2"),
        (lambda: T.sensor_error_estimate(10, 0.0), "length_scale must be > 0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
