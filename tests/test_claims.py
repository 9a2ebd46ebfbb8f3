"""opdiff.claims: every constructor computes its verdict, and fails on a violating value."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from opdiff import claims


def test_upper_bound_holds_fails_and_reports_tightness():
    ok = claims.upper_bound("err <= bound", [0.5, 0.9], [1.0, 1.0])
    assert ok.holds and ok.kind == "upper_bound" and ok.tightness == pytest.approx(0.9)
    bad = claims.upper_bound("err <= bound", [0.5, 1.1], 1.0)
    assert not bad.holds and bad.tightness == pytest.approx(1.1)
    assert claims.upper_bound("MC slack", 1.04, 1.0, rtol=0.05).holds
    assert not claims.upper_bound("diverged", math.inf, 1.0).holds
    slope = claims.upper_bound("slope <= 0", -0.4, 0.0)
    assert slope.holds and slope.tightness is None
    assert not claims.upper_bound("slope <= 0", 0.1, 0.0).holds


def test_lower_bound_holds_fails_and_reports_tightness():
    ok = claims.lower_bound("mse >= floor", [2.0, 1.5], [1.0, 1.5])
    assert ok.holds and ok.tightness == pytest.approx(1.0)
    bad = claims.lower_bound("mse >= floor", 0.98, 1.0)
    assert not bad.holds and bad.tightness == pytest.approx(0.98)
    assert claims.lower_bound("within 3 SE", 0.98, 1.0, rtol=0.03).holds
    per_pair = claims.lower_bound("per-pair slack", [0.98, 0.9], 1.0, rtol=[0.03, 0.05])
    assert not per_pair.holds  # 0.9 < 1 - 0.05
    assert claims.lower_bound("per-pair slack", [0.98, 0.96], 1.0, rtol=[0.03, 0.05]).holds
    with pytest.raises(ValueError, match="rtol must be finite and >= 0 and < 1"):
        claims.lower_bound("x", 1.0, 1.0, rtol=1.0)


def test_within_is_an_equality_to_a_tolerance():
    ok = claims.within("order 2", [1.98, 2.03], 2.0, atol=0.05)
    assert ok.holds and ok.kind == "equality" and ok.tightness == pytest.approx(0.6)
    assert not claims.within("order 2", 1.9, 2.0, atol=0.05).holds
    assert claims.within("rel", 101.0, 100.0, rtol=0.02).holds
    assert not claims.within("exact", 1.0 + 1e-12, 1.0).holds  # zero tolerance means exact


def test_loglog_slope_matches_scipy_linregress():
    rng = np.random.default_rng(0)
    x = np.geomspace(4, 4096, 11)
    y = 3.0 * x**-0.5 * np.exp(0.05 * rng.standard_normal(x.size))
    slope, se = claims.loglog_slope(x, y)
    ref = stats.linregress(np.log(x), np.log(y))
    assert slope == pytest.approx(ref.slope, rel=1e-12)
    assert se == pytest.approx(ref.stderr, rel=1e-10)
    s2, se2 = claims.loglog_slope([1, 10], [1, 0.01])
    assert s2 == pytest.approx(-2.0) and math.isnan(se2)
    with pytest.raises(ValueError, match="> 0"):
        claims.loglog_slope([1, 2], [1, 0])
    with pytest.raises(ValueError, match="distinct"):
        claims.loglog_slope([2, 2], [1, 3])


def test_rate_checks_the_exponent_not_a_one_point_constant():
    n = np.array([10, 20, 40, 80, 160.0])
    faster = 5.0 * n**-1.0  # decays faster than the n^-1/2 of the theory: holds
    c = claims.rate("MC rate", faster, n, -0.5)
    assert c.holds and c.measured == pytest.approx(-1.0)
    assert c.detail["constant"] == pytest.approx(np.max(faster * n**0.5))
    slower = 5.0 * n**-0.25  # a wrong-rate series must violate the n^-1/2 shape
    assert not claims.rate("MC rate", slower, n, -0.5).holds
    # within z standard errors of the theory's exponent: holds; a z of 0 is strict
    rng = np.random.default_rng(1)
    noisy = n**-0.5 * np.exp(0.1 * rng.standard_normal(n.size))
    slope, se = claims.loglog_slope(n, noisy)
    assert claims.rate("noisy", noisy, n, slope - 1.5 * se, z=2.0).holds
    assert not claims.rate("noisy", noisy, n, slope - 1.5 * se, z=1.0).holds


def test_finding_records_value_and_standard_error():
    f = claims.finding("KL ratio", 0.41, 0.02)
    assert f.holds and f.kind == "finding" and f.bound is None and f.detail["se"] == 0.02
    assert not claims.finding("no measurement", math.inf, 0.1).holds
    assert not claims.finding("no error bar", 1.0, math.inf).holds


def test_difference_is_a_finding_with_the_combined_standard_error():
    d = claims.difference("model - baseline", 3.0, 0.3, 5.0, 0.4)
    assert d.holds and d.kind == "finding" and d.measured == -2.0
    assert d.detail["se"] == pytest.approx(0.5)
    v = claims.difference("per class", [1.0, 2.0], [0.1, 0.2], [0.5, 0.5], [0.0, 0.0])
    assert v.measured == [0.5, 1.5] and v.detail["se"] == pytest.approx([0.1, 0.2])
    # a diverged measurement (NaN or inf on either side, or in an SE) fails, never raises
    assert not claims.difference("diverged", math.nan, 0.1, 1.0, 0.1).holds
    assert not claims.difference("both inf", math.inf, 0.1, math.inf, 0.1).holds
    assert not claims.difference("no error bar", 1.0, math.nan, 1.0, 0.1).holds


def test_mean_se():
    mean, se = claims.mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    m, s = claims.mean_se(np.arange(12.0).reshape(4, 3), axis=0)
    np.testing.assert_allclose(m, [4.5, 5.5, 6.5])
    np.testing.assert_allclose(s, np.full(3, np.std([0, 3, 6, 9], ddof=1) / 2))
    with pytest.raises(ValueError, match="at least 2 samples"):
        claims.mean_se([1.0])


def test_records_are_json_and_bad_input_is_named():
    rec = claims.upper_bound("x", [1.0, math.inf], 2.0).as_record()
    assert json.loads(json.dumps(rec, allow_nan=False))["measured"] == [1.0, "inf"]
    assert set(rec) == {"claim", "kind", "measured", "bound", "tightness", "holds", "detail"}
    with pytest.raises(ValueError, match="measured must not contain NaN"):
        claims.upper_bound("x", math.nan, 1.0)
    with pytest.raises(TypeError, match="measured must be a number"):
        claims.upper_bound("x", "1.0", 1.0)
    with pytest.raises(ValueError, match="exponent must be finite"):
        claims.rate("x", [1, 2], [1, 2], math.nan)


# --------------------------------------------------------------------------------------------
# Monte-Carlo standard error of a log-log slope.


def test_loglog_slope_mc_se_matches_the_spread_of_simulated_slopes():
    # independent computation: refit the slope on 20,000 simulated data sets whose log y_i have
    # the stated standard deviations, and compare the spread of the slopes with the formula
    rng = np.random.default_rng(0)
    x = np.array([64.0, 256.0, 1024.0, 4096.0])
    y = 2.0 / np.sqrt(x)
    rel = np.array([0.02, 0.05, 0.01, 0.08])
    se = claims.loglog_slope_mc_se(x, y, rel * y)
    slopes = [claims.loglog_slope(x, y * np.exp(rel * rng.standard_normal(4)))[0]
              for _ in range(20_000)]
    assert abs(np.std(slopes) / se - 1.0) < 0.03
    assert abs(np.mean(slopes) + 0.5) < 4 * se / math.sqrt(20_000)


def test_loglog_slope_mc_se_two_points_and_zero_noise():
    # two points: slope = (log y2 - log y1)/(log x2 - log x1), se = sqrt(r1^2 + r2^2)/log(x2/x1)
    se = claims.loglog_slope_mc_se([1.0, math.e], [1.0, 2.0], [0.03, 0.08])
    assert se == pytest.approx(math.hypot(0.03, 0.04), rel=1e-12)
    assert claims.loglog_slope_mc_se([1.0, 2.0, 4.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]) == 0.0


@pytest.mark.parametrize("args", [([1.0], [1.0], [0.1]), ([1.0, 1.0], [1.0, 2.0], [0.1, 0.1]),
                                  ([1.0, 2.0], [1.0, -2.0], [0.1, 0.1]),
                                  ([1.0, 2.0], [1.0, 2.0], [0.1, -0.1]),
                                  ([1.0, 2.0], [1.0, 2.0], [0.1])])
def test_loglog_slope_mc_se_rejects_bad_input(args):
    with pytest.raises(ValueError):
        claims.loglog_slope_mc_se(*args)


def test_finding_shift_in_combined_standard_errors():
    a = claims.finding("x", [1.0, -2.0, 5.0], [0.3, 0.1, 0.0]).as_record()
    b = claims.finding("x", [1.4, -2.5, 5.0], [0.4, 0.2, 0.0]).as_record()
    got = claims.finding_shift(a, b)
    # |1-1.4|/0.5 = 0.8, |-2+2.5|/sqrt(0.05) = 2.236; the third entry has no SE
    assert got["entries"] == 2 and got["same_sign"] is True
    assert got["z"] == pytest.approx(0.5 / math.sqrt(0.05), rel=1e-12)
    flipped = claims.finding_shift(a, claims.finding("x", [-1.0, -2.0, 5.0],
                                                     [0.3, 0.1, 0.0]).as_record())
    assert flipped["same_sign"] is False and flipped["z"] == pytest.approx(2 / math.hypot(.3, .3))
    # the same scalar difference through `difference`: se = hypot of both
    d1 = claims.difference("d", 3.0, 0.3, 1.0, 0.4).as_record()  # 2 +- 0.5
    d2 = claims.difference("d", 2.0, 0.3, 1.0, 0.4).as_record()  # 1 +- 0.5
    assert claims.finding_shift(d1, d2)["z"] == pytest.approx(1 / math.sqrt(0.5), rel=1e-12)


def test_finding_shift_none_when_not_comparable():
    f = claims.finding("x", 1.0, 0.1).as_record()
    assert claims.finding_shift(f, claims.upper_bound("u", 1.0, 2.0).as_record()) is None
    assert claims.finding_shift(f, claims.finding("x", [1.0, 2.0], [0.1, 0.1]).as_record()) is None
    assert claims.finding_shift(claims.finding("x", 1.0, 0.0).as_record(),
                                claims.finding("x", 2.0, 0.0).as_record()) is None
