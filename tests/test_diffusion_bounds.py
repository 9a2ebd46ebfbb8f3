"""Fitting bound shapes with unknown constants, orders and log-log crossings
(opdiff.diffusion.bounds) against exact power laws; the fitted bounds judged by
opdiff.claims.upper_bound, as the experiments do."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opdiff import claims
from opdiff.diffusion import bounds as B


def _holds(r, measured) -> bool:
    """The fitted bound against the measurements at the other points (NaN counts as inf)."""
    o = r["others"]
    return claims.upper_bound("fitted bound", np.nan_to_num(measured, nan=np.inf)[o],
                              r["bound"][o]).holds


def test_fit_and_test_recovers_the_constant_of_an_exact_shape():
    h = np.geomspace(1e-3, 1e-1, 7)
    shape = h + h**2
    r = B.fit_and_test(shape, 2.5 * shape, np.ones(7, bool))
    assert r["at"] == 3 and math.isclose(r["C"], 2.5, rel_tol=1e-12)
    assert _holds(r, 2.5 * shape) and r["others"] == [0, 1, 2, 4, 5, 6]
    assert math.isclose(r["C_needed"], 2.5, rel_tol=1e-12)
    assert math.isclose(r["ratio_spread"], 1.0, rel_tol=1e-12)
    assert r["worst"] == pytest.approx(1.0, rel=1e-12)
    # a rigorous offset: only the excess is fitted
    off = 0.1 * np.ones(7)
    r = B.fit_and_test(shape, off + 3 * shape, np.ones(7, bool), off)
    assert math.isclose(r["C"], 3.0, rel_tol=1e-12)  # touching everywhere: held up to round-off
    assert r["worst"] == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(r["bound"], off + 3 * shape, rtol=1e-12)


def test_fit_and_test_fails_a_shape_with_the_wrong_rate():
    h = np.geomspace(1e-3, 1e-1, 7)
    r = B.fit_and_test(h**2, h, np.ones(7, bool))  # true rate h, claimed h^2
    assert not _holds(r, h) and r["worst"] > 1
    assert math.isclose(r["C_needed"], 1 / h.min(), rel_tol=1e-12)
    # the other way round (true rate h^2, claimed h) the fitted bound holds at the larger h
    # only: it is violated below the fit point, as a check that can fail must be
    r = B.fit_and_test(h, h**0.5, np.ones(7, bool))
    assert not _holds(r, h**0.5)
    with pytest.raises(ValueError, match="shape_vals must be > 0 at the fit point"):
        B.fit_and_test(np.zeros(3), np.ones(3), np.ones(3, bool))


def test_fit_and_test_admissible_points_and_diverged_runs():
    h = np.geomspace(1e-3, 1e-1, 5)
    meas = 2 * h
    meas[-1] = np.inf  # a diverged run, outside the admissible range
    r = B.fit_and_test(h, meas, h < 0.05)
    assert r["at"] in (0, 1, 2, 3) and math.isclose(r["C"], 2.0, rel_tol=1e-12)
    assert 4 not in r["others"] and _holds(r, meas)
    meas[1] = np.nan  # NaN counts as a violation
    assert not _holds(B.fit_and_test(h, meas, np.ones(5, bool)), meas)


def test_order_and_crossing_on_power_laws():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert B.order(x, 3 * x**2) == pytest.approx(2.0, abs=1e-12)
    assert B.order(x, 3 * x**-1.5, [1, 2, 3]) == pytest.approx(-1.5, abs=1e-12)
    assert math.isnan(B.order(x, [1.0, np.inf, np.nan, 0.0]))
    # unusable pairs (non-positive or non-finite h or error) are dropped
    h = 1 / np.array([8, 16, 32, 64, 128])
    h2, e2 = np.append(h, [0.5, 0.25, -1.0]), np.append(0.5 * h**2, [np.inf, 0.0, 1.0])
    assert B.order(h2, e2) == pytest.approx(2.0, abs=1e-9)
    assert math.isnan(B.order([0.1, 0.1], [1.0, 2.0]))  # all x equal
    with pytest.raises(ValueError, match="same length"):
        B.order([0.1, 0.2], [1.0])
    xs = np.array([1.0, 5.0, 20.0])
    assert B.loglog_crossing(xs, xs**-2.0, 0.01) == pytest.approx(10.0, rel=1e-12)
    assert B.loglog_crossing(xs, xs**-2.0, 2.0) == 1.0
    assert B.loglog_crossing(xs, xs**-2.0, 1e-6) == math.inf
    assert B.loglog_crossing(xs, [np.inf, 0.5, 0.1], 0.6) == 5.0


# ----------------------------------------------------------------------------- sweep helpers


def test_first_at_or_below_against_a_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = np.sort(rng.integers(1, 100, 8))
        y = rng.uniform(0, 1, 8)
        y[rng.uniform(size=8) < 0.2] = np.nan
        level = rng.uniform(0, 0.5)
        want = next((xi for xi, yi in zip(x, y) if yi <= level), math.inf)  # NaN <= l is False
        assert B.first_at_or_below(x, y, level) == want
    assert B.first_at_or_below([5, 10], [1.0, 2.0], 0.5) == math.inf


def test_curve_summary_of_an_exact_power_law():
    steps = np.array([5, 10, 20, 40, 80])
    h = 1.0 / steps
    curve = dict(nfe=2 * steps, w2=3.0 * h**2, kl_total_per_dim=0.1 * h)
    r = B.curve_summary(curve, steps, 3, 1e-3)
    assert r["fitted_order_w2"] == pytest.approx(2.0, abs=1e-12)
    assert r["min_nfe_to_target"] == math.inf  # 0.1 h >= 1.25e-3 on the grid
    r = B.curve_summary(curve, steps, 3, 0.1 / 25)
    assert r["min_nfe_to_target"] == 80  # n = 40 is the first below 0.1/25
    # a power law is a line in log-log: 0.1 / n = 0.1 / 25 at n = 25, NFE = 2n = 50
    assert r["min_nfe_to_target_interpolated"] == pytest.approx(50.0, rel=1e-12)


# ----------------------------------------------------------------------------- exact sweeps
# The exponential integrator on OU with the exact score, written out per coefficient here
# (independently of the oracle's affine-step table): from t down to s = t - h,
#   y <- e^h y + 2 (e^h - 1) grad log q_t(y) + sqrt(e^{2h} - 1) z,  grad log q_t = -(y - a mu)/v,
# a = e^{-t}, v = a^2 lam + 1 - a^2; the law N(m, w) maps affinely.


def _ei_law(grid, mu, lam, m, w):
    m, w = np.broadcast_to(m, mu.shape).astype(float), np.broadcast_to(w, mu.shape).astype(float)
    for t, s in zip(grid[::-1][:-1], grid[::-1][1:]):
        h, a = t - s, math.exp(-t)
        v = a**2 * lam + 1 - a**2
        A = math.exp(h) - 2 * math.expm1(h) / v
        m = A * m + 2 * math.expm1(h) * a * mu / v
        w = A**2 * w + math.expm1(2 * h)
    return m, w


def _kl(m1, w1, m2, w2):
    return 0.5 * float(np.sum(w1 / w2 - 1 - np.log(w1 / w2) + (m1 - m2) ** 2 / w2))


@pytest.fixture
def field(x64):
    from opdiff.diffusion import oracle

    return oracle.power_law_field((4, 4), "dft", alpha=2.0)


def test_chen_h_sweep_against_a_hand_written_integrator(field):
    T, t0, steps = 3.0, 1e-6, (20, 80, 320, 1280)
    r = B.chen_h_sweep(field, T, t0, steps)
    mu, lam = np.asarray(field.mean), np.asarray(field.var)
    for i, n in enumerate(steps):
        grid = np.linspace(t0, T, n + 1)
        m, w = _ei_law(grid, mu, lam, 0.0, 1.0)
        assert r["kl"][i] == pytest.approx(_kl(mu, lam, m, w), rel=1e-8)
        assert r["kl_out_vs_data"][i] == pytest.approx(_kl(m, w, mu, lam), rel=1e-8)
        a = math.exp(-T)  # from the exact q_T: discretisation only, against q_{t0}
        me, we = _ei_law(grid, mu, lam, a * mu, a**2 * lam + 1 - a**2)
        a0 = math.exp(-t0)
        assert r["kl_disc"][i] == pytest.approx(
            _kl(a0 * mu, a0**2 * lam + 1 - a0**2, me, we), rel=1e-6)
        assert r["h"][i] == pytest.approx((T - t0) / n, rel=1e-15)
    L = max(1.0, 1 / lam.min())
    assert r["L"] == pytest.approx(L) and np.array_equal(r["admissible"], r["h"] <= 1 / L)
    klq = _kl(mu, lam, np.zeros_like(mu), np.ones_like(lam))
    assert r["kl_prior"] == pytest.approx(klq, rel=1e-12)
    assert r["prior_kl"] == pytest.approx(klq * math.exp(-2 * T), rel=1e-12)
    assert r["prior_tv"] == pytest.approx(math.sqrt(r["prior_kl"] / 2), rel=1e-12)
    assert np.all((r["tv_lower"] <= r["tv_upper"]) & (r["tv_upper"] <= 1))
    adm = r["admissible"]
    assert adm.sum() >= 2
    # W2 is first order in h, so the KL of the discretisation is second order
    assert r["order_kl_disc"] == pytest.approx(np.polyfit(np.log(r["h"][adm]),
                                                          np.log(r["kl_disc"][adm]), 1)[0])
    assert r["order_kl_disc"] == pytest.approx(2.0, abs=0.2)
    assert r["fit_kl"]["bound"][r["fit_kl"]["at"]] == pytest.approx(r["kl"][r["fit_kl"]["at"]])


def test_chen_T_benton_and_dimension_sweeps_against_the_integrator(field):
    mu, lam = np.asarray(field.mean), np.asarray(field.var)
    r = B.chen_T_sweep(field, (1.0, 2.5), 0.05, 1e-6)
    for i, T in enumerate((1.0, 2.5)):
        n = round((T - 1e-6) / 0.05)
        m, w = _ei_law(np.linspace(1e-6, T, n + 1), mu, lam, 0.0, 1.0)
        assert r["kl"][i] == pytest.approx(_kl(mu, lam, m, w), rel=1e-8)
    assert list(r["T"]) == [1.0, 2.5] and r["fit"]["others"] == [0]
    from opdiff.diffusion import samplers

    T, delta = 3.0, 1e-3
    r = B.benton_sweep(field, T, delta, (20, 60))
    a = math.exp(-delta)
    for i, N in enumerate((20, 60)):
        grid, kappa = samplers.benton_grid(T, delta, N)
        m, w = _ei_law(grid, mu, lam, 0.0, 1.0)
        assert r["kl"][i] == pytest.approx(_kl(a * mu, a**2 * lam + 1 - a**2, m, w), rel=1e-8)
        m, w = _ei_law(np.linspace(delta, T, N + 1), mu, lam, 0.0, 1.0)
        assert r["kl_uniform"][i] == pytest.approx(_kl(a * mu, a**2 * lam + 1 - a**2, m, w),
                                                   rel=1e-8)
        assert r["kappa"][i] == kappa
    np.testing.assert_allclose(r["shape_kl"], r["kappa"] ** 2 * 16 * np.array([20, 60])
                               + r["kappa"] * 16 * T + 16 * math.exp(-2 * T), rtol=1e-12)
    from opdiff.diffusion import oracle

    r = B.dimension_sweep(2.0, (4, 8), 40, 3.0, 1e-6)
    assert list(r["d"]) == [16, 64]
    for i, size in enumerate((4, 8)):
        f = oracle.power_law_field((size, size), "dft", alpha=2.0)
        mu, lam = np.asarray(f.mean), np.asarray(f.var)
        m, w = _ei_law(np.linspace(1e-6, 3.0, 41), mu, lam, 0.0, 1.0)
        assert r["kl"][i] == pytest.approx(_kl(mu, lam, m, w), rel=1e-8)
        assert r["L2d"][i] == pytest.approx(max(1, 1 / lam.min()) ** 2 * size**2, rel=1e-12)
    assert r["exponent_d"] == pytest.approx(math.log(r["kl"][1] / r["kl"][0]) / math.log(4))
