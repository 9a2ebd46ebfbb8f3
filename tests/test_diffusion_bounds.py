"""Orders, log-log crossings and Richardson's extrapolation (opdiff.diffusion.bounds) against
exact power laws and expansions; the exact sweeps against a hand-written integrator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opdiff.diffusion import bounds as B


def test_richardson_recovers_the_limit_of_an_exact_expansion():
    n = np.array([10, 20, 40, 80, 160])
    K = 3.0 + 5.0 / n - 7.0 / n**2 + 11.0 / n**3
    r = B.richardson(n, K, order=1, terms=3)  # three powers removed: exact
    assert r["limit"] == pytest.approx(3.0, abs=1e-12) and r["error"] < 1e-10
    assert r["ratio"] == 2.0 and r["n_used"] == [10, 20, 40, 80, 160]
    r = B.richardson(n, K, order=1, terms=2)  # the n^-3 term is left: error O(n^-3)
    assert abs(r["limit"] - 3.0) < 11.0 / 40**3 and r["error"] > abs(r["limit"] - 3.0)
    # against numpy's least squares: the limit of the last three points is the constant of the
    # interpolating a + b/n + c/n^2
    A = np.stack([np.ones(3), 1 / n[-3:], 1 / n[-3:] ** 2], axis=1)
    assert r["limit"] == pytest.approx(np.linalg.solve(A, K[-3:])[0], rel=1e-12)
    # an order-2 expansion (ratio 3)
    m = np.array([5, 15, 45, 135])
    r = B.richardson(m, 1.0 + 2.0 / m**2 + 4.0 / m**3, order=2, terms=2)
    assert r["limit"] == pytest.approx(1.0, abs=1e-13)
    assert math.isnan(B.richardson(m[:3], (1.0 + 2.0 / m**2)[:3], order=2, terms=2)["error"])
    # a sequence that does not follow the assumed order is not extrapolated to its limit, and
    # the error estimate says so
    r = B.richardson(n, 3.0 + 5.0 / np.sqrt(n), order=1, terms=2)
    assert abs(r["limit"] - 3.0) > 0.05 and r["error"] > 0.01


def test_richardson_refuses_bad_input():
    with pytest.raises(ValueError, match="constant ratio"):
        B.richardson([10, 20, 30], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="length"):
        B.richardson([10, 20], [1.0, 2.0], terms=2)
    with pytest.raises(ValueError, match="finite"):
        B.richardson([10, 20, 40], [1.0, np.inf, 3.0])
    with pytest.raises(ValueError, match="ints >= 1"):
        B.richardson([10, 20, 40], [1.0, 2.0, 3.0], order=0)


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


def _bc(m1, w1, m2, w2):  # Bhattacharyya coefficient of two diagonal Gaussians
    return float(np.prod(np.sqrt(2 * np.sqrt(w1 * w2) / (w1 + w2))
                         * np.exp(-((m1 - m2) ** 2) / (4 * (w1 + w2)))))


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
        assert r["tv_disc_upper"][i] == pytest.approx(math.sqrt(1 - _bc(
            a0 * mu, a0**2 * lam + 1 - a0**2, me, we) ** 2), rel=1e-6)
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


def test_chen_T_benton_and_dimension_sweeps_against_the_integrator(field):
    mu, lam = np.asarray(field.mean), np.asarray(field.var)
    r = B.chen_T_sweep(field, (1.0, 2.5), 0.05, 1e-6)
    for i, T in enumerate((1.0, 2.5)):
        n = round((T - 1e-6) / 0.05)
        m, w = _ei_law(np.linspace(1e-6, T, n + 1), mu, lam, 0.0, 1.0)
        assert r["kl"][i] == pytest.approx(_kl(mu, lam, m, w), rel=1e-8)
        a = math.exp(-T)  # from the exact q_T; and the initialisation error KL(q_T || gamma)
        me, we = _ei_law(np.linspace(1e-6, T, n + 1), mu, lam, a * mu, a**2 * lam + 1 - a**2)
        a0 = math.exp(-1e-6)
        assert r["kl_disc"][i] == pytest.approx(
            _kl(a0 * mu, a0**2 * lam + 1 - a0**2, me, we), rel=1e-6)
        assert r["kl_init"][i] == pytest.approx(
            _kl(a * mu, a**2 * lam + 1 - a**2, np.zeros_like(mu), np.ones_like(lam)), rel=1e-8)
    assert list(r["T"]) == [1.0, 2.5] and np.all(r["kl_init"] <= r["prior_kl"])
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
        m, w = _ei_law(grid, mu, lam, math.exp(-T) * mu, math.exp(-2 * T) * (lam - 1) + 1)
        assert r["kl_disc"][i] == pytest.approx(_kl(a * mu, a**2 * lam + 1 - a**2, m, w),
                                                rel=1e-6)
    np.testing.assert_allclose(r["shape_kl"], r["kappa"] ** 2 * 16 * np.array([20, 60])
                               + r["kappa"] * 16 * T + 16 * math.exp(-2 * T), rtol=1e-12)
    np.testing.assert_allclose(r["shape_disc"], r["shape_kl"] - 16 * math.exp(-2 * T),
                               rtol=1e-12)
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
    # a larger domain at the same pixel size: the spectrum is a function of k / size, so the
    # 8x8 eigenvalues are those of the 4x4 field at every other frequency; L is unchanged
    r = B.dimension_sweep(2.0, (4, 8), 40, 3.0, 1e-6, growth="domain")
    f4 = oracle.power_law_field((4, 4), "dft", alpha=2.0)
    f8 = oracle.power_law_field((8, 8), "dft", alpha=2.0, k0=2.0)
    lam4, lam8 = np.asarray(f4.var), np.asarray(f8.var)
    np.testing.assert_allclose(lam8[::2, ::2] / lam8[::2, ::2].sum(), lam4 / lam4.sum(),
                               rtol=1e-12)
    assert r["L"][1] == pytest.approx(max(1, 1 / lam8.min()), rel=1e-12)
    m, w = _ei_law(np.linspace(1e-6, 3.0, 41), np.zeros_like(lam8), lam8, 0.0, 1.0)
    assert r["kl"][1] == pytest.approx(_kl(np.zeros_like(lam8), lam8, m, w), rel=1e-8)
    with pytest.raises(ValueError, match="growth"):
        B.dimension_sweep(2.0, (4, 8), 40, 3.0, 1e-6, growth="both")


def test_a_rate_against_the_shape_reports_the_smallest_constant_and_can_fail():
    # the experiment's statement: error <= C * shape with C unknown, checked as the rate of the
    # error in 1/shape (shape -> 0) or in the shape (shape growing); tightness = max error/shape
    from opdiff import claims

    h = np.geomspace(1e-3, 1e-1, 6)
    shape = 4.0 * h + h**2  # Chen-like: leading term linear in h
    ok = claims.rate("faster", 0.3 * h**2, 1 / shape, -1.0)
    assert ok.holds and ok.tightness == pytest.approx(np.max(0.3 * h**2 / shape), rel=1e-12)
    assert not claims.rate("slower", 0.3 * h**0.5, 1 / shape, -1.0).holds
    T = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    assert claims.rate("saturates", 1 - np.exp(-T), 3.0 * T, 1.0).holds
    assert not claims.rate("grows faster", T**2, 3.0 * T, 1.0).holds
