"""Fitting and testing bound shapes with unknown constants, orders and log-log crossings
(opdiff.diffusion.bounds) against exact power laws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opdiff.diffusion import bounds as B


def test_fit_and_test_recovers_the_constant_of_an_exact_shape():
    h = np.geomspace(1e-3, 1e-1, 7)
    shape = h + h**2
    r = B.fit_and_test(shape, 2.5 * shape, np.ones(7, bool))
    assert r["at"] == 3 and math.isclose(r["C"], 2.5, rel_tol=1e-12)
    assert r["held"].all() and r["others"] == [0, 1, 2, 4, 5, 6]
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
    assert not r["held"].all() and r["worst"] > 1
    assert math.isclose(r["C_needed"], 1 / h.min(), rel_tol=1e-12)


def test_fit_and_test_admissible_points_and_diverged_runs():
    h = np.geomspace(1e-3, 1e-1, 5)
    meas = 2 * h
    meas[-1] = np.inf  # a diverged run, outside the admissible range
    r = B.fit_and_test(h, meas, h < 0.05)
    assert r["at"] in (0, 1, 2, 3) and math.isclose(r["C"], 2.0, rel_tol=1e-12)
    assert 4 not in r["others"] and r["held"].all()
    meas[1] = np.nan  # NaN counts as a violation
    assert not B.fit_and_test(h, meas, np.ones(5, bool))["held"].all()


def test_order_and_crossing_on_power_laws():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert B.order(x, 3 * x**2) == pytest.approx(2.0, abs=1e-12)
    assert B.order(x, 3 * x**-1.5, [1, 2, 3]) == pytest.approx(-1.5, abs=1e-12)
    assert math.isnan(B.order(x, [1.0, np.inf, np.nan, 0.0]))
    xs = np.array([1.0, 5.0, 20.0])
    assert B.loglog_crossing(xs, xs**-2.0, 0.01) == pytest.approx(10.0, rel=1e-12)
    assert B.loglog_crossing(xs, xs**-2.0, 2.0) == 1.0
    assert B.loglog_crossing(xs, xs**-2.0, 1e-6) == math.inf
    assert B.loglog_crossing(xs, [np.inf, 0.5, 0.1], 0.6) == 5.0
