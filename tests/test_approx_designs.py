"""Least-squares sample designs (opdiff.approx.designs) against independent computations."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from numpy.polynomial import legendre as npleg
from scipy import stats

from opdiff.approx import chebyshev, designs
from opdiff.approx import sampling as S


def test_sample_counts():
    assert designs.log_oversampling(5, 3.0) == math.ceil(15 * math.log(5)) == 25
    assert designs.log_oversampling(2, 0.1) == 2  # never below m
    assert designs.sweep_sizes(5, (1.0, 1.5, 2.0), 3.0) == [5, 8, 10, 25]


def test_hill_tail_index_of_pareto_samples():
    rng = np.random.default_rng(0)
    for alpha in (1.3, 2.0, 3.0):
        x = rng.pareto(alpha, 200_000) + 1.0  # P(X > x) = x^-alpha, x >= 1
        assert designs.hill_tail_index(x) == pytest.approx(alpha, rel=0.1)


def test_dpp_proposals_se_is_the_geometric_variance():
    m, draws = 7, 400
    p = np.array([(m - i + 1) / (2.0 * m) for i in range(1, m + 1)])  # Legendre envelope C = 2
    var = sum(stats.geom(pi).var() for pi in p)
    assert designs.dpp_proposals_se("legendre", m, draws) == pytest.approx(
        math.sqrt(var / draws), rel=1e-12)


def test_ks_statistics_match_scipy(x64):
    m = 4
    rng = np.random.default_rng(1)
    sets = [rng.uniform(-1, 1, 300), rng.uniform(-1, 1, (20, 4))]
    got = designs.ks_statistics("legendre", sets, m)
    cdf = lambda t: np.asarray(S.optimal_cdf("legendre", np.atleast_1d(t), m))  # noqa: E731
    for x, g in zip(sets, got):
        x = np.ravel(x)
        assert g == pytest.approx(math.sqrt(x.size) * stats.kstest(x, cdf).statistic, rel=1e-9)


def _numpy_ratio(x, m, f):
    """Mean over draws of ||f - LS fit on x||^2 / ||f - P_m f||^2, orthonormal Legendre, numpy."""
    scale = np.sqrt(2 * np.arange(m) + 1)
    t, w = npleg.leggauss(512)
    w = w / 2
    Vq = npleg.legvander(t, m - 1) * scale
    best = w @ (f(t) - Vq @ (Vq.T @ (w * f(t)))) ** 2
    errs = [w @ (f(t) - Vq @ np.linalg.lstsq(npleg.legvander(xi, m - 1) * scale, f(xi),
                                            rcond=None)[0]) ** 2 for xi in x]
    return np.mean(errs) / best


def test_design_ratios_iid_against_numpy_least_squares(x64):
    m, draws, ns = 4, 30, [4, 8, 12]
    key = jax.random.key(3)
    dpp = S.ensure_ok(S.projection_dpp_batch(jax.random.key(4), "legendre", m, draws))
    out = designs.design_ratios(key, "legendre", chebyshev.runge, m, np.asarray(dpp.x), ns)
    assert set(out["ratio"]) == set(designs.DESIGNS) and out["ratio"]["iid"].shape == (3,)
    k_iid, _ = jax.random.split(key)
    uni = np.asarray(S.iid(k_iid, "legendre", 2 * draws * 12).x).reshape(2, draws, 12)[0]
    for j, n in enumerate(ns):
        assert out["ratio"]["iid"][j] == pytest.approx(
            _numpy_ratio(uni[:, :n], m, chebyshev.runge), rel=1e-8)
    np.testing.assert_array_equal(out["uniform_points"], uni[:, :m])
    # at n = m both volume designs interpolate on the same DPP points: weights do not matter
    assert out["ratio"]["volume"][0] == pytest.approx(out["ratio"]["volume_rescaled"][0],
                                                      rel=1e-8)
    assert out["ratio"]["volume"][0] == pytest.approx(_numpy_ratio(np.asarray(dpp.x), m,
                                                                   chebyshev.runge), rel=1e-8)


def test_interpolation_study_identity(x64):
    m, draws = 3, 4000
    dpp = S.ensure_ok(S.projection_dpp_batch(jax.random.key(5), "legendre", m, draws))
    x = np.asarray(dpp.x)
    full = designs.interpolation_study("legendre", chebyshev.runge, m, x, dpp.proposals,
                                       integrate=m)
    # every point integrated out: the constant (m + 1), no Monte-Carlo error left
    assert full["rb"] == pytest.approx(m + 1, rel=1e-12) and full["rb_se"] < 1e-10
    assert full["rb_tail_index"] == np.inf
    one = designs.interpolation_study("legendre", chebyshev.runge, m, x, dpp.proposals,
                                      integrate=1)
    assert abs(one["rb"] - (m + 1)) < 4 * one["rb_se"]
    assert one["plain"] == pytest.approx(_numpy_ratio(x, m, chebyshev.runge), rel=1e-8)
    assert abs(one["proposals"] - one["proposals_expected"]) < 4 * one["proposals_se"]


def test_ratio_se_matches_the_spread_of_simulated_ratios():
    # independent computation: the spread of a/b over 200,000 draws of two independent normal
    # means with small relative errors
    rng = np.random.default_rng(0)
    a = 3.0 + 0.06 * rng.standard_normal(200_000)
    b = 1.5 + 0.015 * rng.standard_normal(200_000)
    se = designs.ratio_se(3.0, 0.06, 1.5, 0.015)
    assert abs(np.std(a / b) / se - 1.0) < 0.02
    assert designs.ratio_se(2.0, 0.0, 1.0, 0.0) == 0.0
    for bad in [(0.0, 0.1, 1.0, 0.1), (1.0, -0.1, 1.0, 0.1), (1.0, 0.1, math.inf, 0.1)]:
        with pytest.raises(ValueError):
            designs.ratio_se(*bad)


def test_wls_sampling_claims_fail_on_violating_results():
    # the DPP identity is an equality within interp_z SEs: an estimate 4 SEs off must fail,
    # one 2 SEs off must hold; the findings hold whatever the value
    from experiments import wls_sampling as exp

    cfg = exp.Config(ms=(5,), interp_ms=(5,), hist_m=5)
    n = np.array(designs.sweep_sizes(5, cfg.n_over_m, cfg.log_factor))

    def results(rb):
        r = {f"interp_m5_{k}": v for k, v in dict(rb_points=1, plain_tail_index=2.5).items()}
        r.update({f"interp_m5_ratio_{k}": v for k, v in dict(
            rb=rb, rb_se=0.1, rb1=rb, rb1_se=0.1, plain=rb, plain_se=0.3).items()})
        r.update({f"m5_{d}_ratio": np.full(n.size, 2.0) for d in designs.DESIGNS})
        r.update({f"m5_{d}_ratio_se": np.full(n.size, 0.1) for d in designs.DESIGNS})
        return dict(r, m5_n=n, ks_dpp_points=1000, ks_dpp_sqrtN_D=0.5, dpp_proposals_z=[0.3])

    ok = exp.claims(cfg, results(6.2))
    assert all(c.holds for c in ok) and [c.kind for c in ok].count("finding") == 3
    bad = exp.claims(cfg, results(6.4))
    assert [c.holds for c in bad] == [False] + [True] * (len(bad) - 1)
