"""Gaussian divergences and bound shapes (opdiff.theory.diffusion): independent oracles.

Divergences are checked against Monte Carlo, numerical integration, sorted-sample W2 and
closed forms that do not share code with the module; bounds against checks that can fail.
All numpy, float64, fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from opdiff.theory import diffusion as df


def _spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.3 * np.eye(d)


# ------------------------------------------------------------------ diagonal vs dense


def test_diagonal_divergences_match_the_dense_forms_on_diagonal_covariances():
    rng = np.random.default_rng(0)
    m1, m2 = rng.standard_normal(5), rng.standard_normal(5)
    w1, w2 = rng.uniform(0.1, 3.0, 5), rng.uniform(0.1, 3.0, 5)
    kl = df.kl_diagonal(m1, w1, m2, w2)
    assert kl == pytest.approx(df.kl_gaussian(m1, np.diag(w1), m2, np.diag(w2)), rel=1e-12)
    per = df.kl_diagonal(m1, w1, m2, w2, per_coefficient=True)
    assert per.shape == (5,) and np.all(per > 0) and per.sum() == pytest.approx(kl, rel=1e-14)
    # textbook formula, for well-separated variances where it is accurate
    r = w1 / w2
    naive = 0.5 * np.sum(r - 1 - np.log(r) + (m1 - m2) ** 2 / w2)
    assert kl == pytest.approx(naive, rel=1e-12)
    w2sq = df.w2_diagonal(m1, w1, m2, w2)
    assert w2sq == pytest.approx(df.w2_gaussian(m1, np.diag(w1), m2, np.diag(w2)), rel=1e-12)
    assert w2sq == pytest.approx(np.sum((m1 - m2) ** 2 + (np.sqrt(w1) - np.sqrt(w2)) ** 2),
                                 rel=1e-13)
    assert df.w2_distance(m1, w1, m2, w2) == pytest.approx(math.sqrt(w2sq), rel=1e-15)
    # broadcasting, any shape, scalars give floats
    grid = df.kl_diagonal(np.zeros((2, 3)), 2.0, 0.0, 1.0, per_coefficient=True)
    np.testing.assert_allclose(grid, 0.5 * (1 - math.log(2)), rtol=1e-14)
    assert isinstance(df.kl_diagonal(0.0, 2.0, 0.0, 1.0, per_coefficient=True), float)


def test_jax_arrays_are_accepted():
    import jax.numpy as jnp

    w = jnp.asarray([0.5, 2.0])
    assert df.kl_diagonal(jnp.zeros(2), w, 0.0, 1.0) == pytest.approx(
        df.kl_diagonal(np.zeros(2), [0.5, 2.0], 0.0, 1.0), rel=1e-7)


def test_kl_gaussian_against_monte_carlo_log_density_ratio():
    rng = np.random.default_rng(1)
    d = 3
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    c1, c2 = _spd(rng, d), _spd(rng, d)
    p, q = stats.multivariate_normal(m1, c1), stats.multivariate_normal(m2, c2)
    x = p.rvs(size=200_000, random_state=rng)
    ratio = p.logpdf(x) - q.logpdf(x)
    se = ratio.std(ddof=1) / math.sqrt(ratio.size)
    kl = df.kl_gaussian(m1, c1, m2, c2)
    assert kl > 0.1  # a non-trivial case
    assert abs(kl - ratio.mean()) < 5 * se


def test_w2_gaussian_commuting_closed_form_2x2_formula_and_symmetry():
    rng = np.random.default_rng(2)
    u, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    a, b = rng.uniform(0.1, 2.0, 4), rng.uniform(0.1, 2.0, 4)
    m1, m2 = rng.standard_normal(4), rng.standard_normal(4)
    got = df.w2_gaussian(m1, u @ np.diag(a) @ u.T, m2, u @ np.diag(b) @ u.T)
    want = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert got == pytest.approx(want, rel=1e-11)
    # non-commuting 2x2: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for 2x2 PSD M
    c1, c2 = _spd(rng, 2), _spd(rng, 2)
    assert not np.allclose(c1 @ c2, c2 @ c1)
    cross = math.sqrt(np.trace(c1 @ c2) + 2 * math.sqrt(np.linalg.det(c1) * np.linalg.det(c2)))
    want = np.trace(c1) + np.trace(c2) - 2 * cross
    assert df.w2_gaussian(np.zeros(2), c1, np.zeros(2), c2) == pytest.approx(want, rel=1e-11)
    # the formula is asymmetric in C1, C2; the distance is not
    c1, c2 = _spd(rng, 5), _spd(rng, 5)
    z = np.zeros(5)
    assert df.w2_gaussian(z, c1, z, c2) == pytest.approx(df.w2_gaussian(z, c2, z, c1), rel=1e-11)
    # singular (PSD) covariance: a point mass against N(0, 1)
    assert df.w2_gaussian(np.zeros(1), np.zeros((1, 1)), np.ones(1), np.eye(1)) == \
        pytest.approx(2.0, rel=1e-14)


def test_w2_in_1d_against_sorted_samples():
    rng = np.random.default_rng(3)
    n = 200_000
    for m1, w1, m2, w2 in [(0.0, 1.0, 1.0, 4.0), (0.5, 0.3, -0.5, 0.3), (0.0, 2.0, 0.2, 0.5)]:
        x = np.sort(m1 + math.sqrt(w1) * rng.standard_normal(n))
        y = np.sort(m2 + math.sqrt(w2) * rng.standard_normal(n))
        est = np.mean((x - y) ** 2)  # monotone coupling = optimal in 1-D
        assert df.w2_diagonal(m1, w1, m2, w2) == pytest.approx(est, rel=2e-2)


def test_near_equal_laws_keep_relative_accuracy():
    w = 1 + 1e-9  # (abs=0 below: pytest.approx's default abs=1e-12 would swamp 1e-19 values)
    delta = w - 1.0  # exact (Sterbenz)
    want = delta**2 / 4 - delta**3 / 6 + delta**4 / 8  # 1/2 (delta - log1p(delta))
    assert df.kl_diagonal(0.0, w, 0.0, 1.0) == pytest.approx(want, rel=1e-12, abs=0)
    # closer still, off 1: the textbook formula loses 3 of its digits, the series none
    w1, w2 = 3.0 * (1 + 1e-13), 3.0
    x = (w1 - w2) / w2  # w1 - w2 exact (Sterbenz), one rounding in the division
    want13 = x**2 / 4 - x**3 / 6
    assert df.kl_diagonal(0.0, w1, 0.0, w2) == pytest.approx(want13, rel=1e-12, abs=0)
    naive = 0.5 * (w1 / w2 - 1 - math.log(w1 / w2))
    assert abs(naive - want13) > 1e-4 * want13
    # dense form, same value per coordinate
    assert df.kl_gaussian(np.zeros(3), w * np.eye(3), np.zeros(3), np.eye(3)) == \
        pytest.approx(3 * want, rel=1e-12, abs=0)
    # the opposite direction, and a variance slightly below 1
    assert df.kl_diagonal(0.0, 1.0, 0.0, w) == pytest.approx(delta**2 / 4 - delta**3 / 3,
                                                             rel=1e-12, abs=0)
    wm = 1 - 1e-9
    dm = wm - 1.0
    assert df.kl_diagonal(0.0, wm, 0.0, 1.0) == pytest.approx(dm**2 / 4 - dm**3 / 6,
                                                              rel=1e-12, abs=0)
    # W2 variance part: (sqrt(w) - 1)^2 = (delta / (sqrt(w) + 1))^2
    assert df.w2_diagonal(0.0, w, 0.0, 1.0) == pytest.approx(
        (delta / (math.sqrt(w) + 1)) ** 2, rel=1e-12, abs=0)


def test_degenerate_variances():
    per = df.kl_diagonal([0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0],
                         [0.0, 0.0, 0.0, 1.0], per_coefficient=True)
    # same point mass, different point masses, density vs point mass, point mass vs density
    np.testing.assert_array_equal(per, [0.0, np.inf, np.inf, np.inf])
    assert df.kl_diagonal([0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]) == 0.0
    assert df.tv_bracket_diagonal([0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]) == (0.0, 0.0)
    assert df.tv_bracket_diagonal(0.0, 0.0, 1.0, 0.0) == (1.0, 1.0)
    assert df.tv_bracket_diagonal(0.0, 0.0, 0.0, 1.0) == (1.0, 1.0)
    assert df.w2_diagonal(0.0, 0.0, 1.0, 0.0) == 1.0


# ------------------------------------------------------------------ TV bracket and Pinsker


def _tv_1d(m1, s1, m2, s2):
    lo, hi = min(m1, m2) - 12 * max(s1, s2), max(m1, m2) + 12 * max(s1, s2)
    f = lambda x: 0.5 * abs(stats.norm.pdf(x, m1, s1) - stats.norm.pdf(x, m2, s2))  # noqa: E731
    val, _ = integrate.quad(f, lo, hi, points=sorted({m1, m2}), limit=200, epsabs=1e-12)
    return val


@pytest.mark.parametrize("m1,w1,m2,w2", [(0, 1, 0.3, 1), (0, 1, 0, 1.5), (0, 1, 2, 0.25),
                                         (1, 0.01, -1, 4), (0, 1, 0.01, 1.001)])
def test_tv_bracket_and_pinsker_contain_the_integrated_tv(m1, w1, m2, w2):
    tv = _tv_1d(m1, math.sqrt(w1), m2, math.sqrt(w2))
    lower, upper = df.tv_bracket_diagonal(m1, w1, m2, w2)
    assert lower <= tv + 1e-10 and tv <= upper + 1e-10
    assert lower < upper
    assert df.pinsker(df.kl_diagonal(m1, w1, m2, w2)) >= tv - 1e-10
    if w1 == w2:  # equal variances: TV = 2 Phi(|dm| / (2 s)) - 1 exactly
        exact = 2 * stats.norm.cdf(abs(m1 - m2) / (2 * math.sqrt(w1))) - 1
        assert tv == pytest.approx(exact, rel=1e-8)


def test_tv_bracket_in_3d_against_monte_carlo():
    rng = np.random.default_rng(4)
    m1, w1 = np.array([0.0, 0.5, -0.2]), np.array([1.0, 0.5, 2.0])
    m2, w2 = np.array([0.3, 0.0, 0.0]), np.array([1.5, 0.5, 1.0])
    x = m1 + np.sqrt(w1) * rng.standard_normal((100_000, 3))
    logp = stats.norm.logpdf(x, m1, np.sqrt(w1)).sum(1)
    logq = stats.norm.logpdf(x, m2, np.sqrt(w2)).sum(1)
    terms = np.maximum(0.0, 1.0 - np.exp(logq - logp))  # TV = E_p[(1 - q/p)_+]
    tv, se = terms.mean(), terms.std(ddof=1) / math.sqrt(terms.size)
    lower, upper = df.tv_bracket_diagonal(m1, w1, m2, w2)
    assert lower <= tv + 4 * se and tv - 4 * se <= upper
    # BC factorises: the product of the 1-D coefficients
    bc = np.prod([1 - df.tv_bracket_diagonal(a, b, c, e)[0] for a, b, c, e in zip(m1, w1, m2, w2)])
    assert 1 - lower == pytest.approx(bc, rel=1e-13)


def test_tv_bracket_high_dimension_no_underflow():
    n = 100_000  # BC_k ~ 0.9999 each: the product is exp(-sum), no underflow to 0 or 1
    lower, upper = df.tv_bracket_diagonal(np.zeros(n), np.ones(n), np.full(n, 1e-3), np.ones(n))
    bc = math.exp(-n * 1e-6 / 8)
    assert lower == pytest.approx(1 - bc, rel=1e-10, abs=0)
    assert upper == pytest.approx(math.sqrt(1 - bc**2), rel=1e-10, abs=0)


# ------------------------------------------------------------------ bound shapes


CHEN = dict(kl_prior=2.0, L=3.0, d=16, m2=5.0, eps_score=0.01)


def test_chen_tv_bound_shape_in_h_and_t():
    hs = np.array([0.001, 0.01, 0.1])
    vals = df.chen_tv_bound(**CHEN, h=hs, T=4.0)
    assert vals.shape == (3,) and np.all(np.diff(vals) > 0)
    # explicit arithmetic at one point
    h, T = 0.01, 4.0
    want = math.sqrt(2) * math.exp(-4) + (3 * math.sqrt(16 * h) + 3 * 5 * h) * 2 + 0.01 * 2
    assert df.chen_tv_bound(**CHEN, h=h, T=T) == pytest.approx(want, rel=1e-14)
    # without the prior term the bound grows like sqrt(T) ...
    no_prior = {**CHEN, "kl_prior": 0.0}
    assert df.chen_tv_bound(**no_prior, h=h, T=16.0) / df.chen_tv_bound(**no_prior, h=h, T=4.0) \
        == pytest.approx(2.0, rel=1e-14)
    # ... and the prior term alone decays like e^{-T}
    only = dict(kl_prior=2.0, L=3.0, d=16, m2=5.0, eps_score=0.0, h=0.0)
    assert df.chen_tv_bound(**only, T=3.0) / df.chen_tv_bound(**only, T=1.0) == \
        pytest.approx(math.exp(-2), rel=1e-14)
    assert df.chen_tv_bound(**CHEN, h=h, T=T, C=2.5) == pytest.approx(2.5 * want, rel=1e-14)


def test_kl_shapes_benton_and_li_yan():
    kw = dict(L=2.0, d=10, m2=4.0, T=3.0, eps_score=0.1)
    k = df.chen_kl_bound(**kw, h=0.05)
    assert k == pytest.approx((0.01 + 4 * 10 * 0.05 + 4 * 16 * 0.0025) * 3, rel=1e-14)
    assert np.all(np.diff(df.chen_kl_bound(**kw, h=np.geomspace(1e-4, 1e-1, 5))) > 0)
    assert df.kl_prior_term(3.0, 2.0) == pytest.approx(3 * math.exp(-4), rel=1e-14)
    b = df.benton_kl_bound(eps_score2=0.01, kappa=0.1, d=10, N=200, T=5.0)
    assert b == pytest.approx(0.01 + 0.01 * 10 * 200 + 0.1 * 10 * 5 + 10 * math.exp(-10), rel=1e-14)
    n = np.array([10, 100, 1000, 10_000])
    ly = df.li_yan_tv_bound(d=4, n_steps=n, eps_score=0.0)
    np.testing.assert_allclose(ly, 4 * np.log(n) ** 3 / n, rtol=1e-14)
    assert np.all(np.diff(ly) < 0)  # decreasing once n is past e^3
    assert df.li_yan_tv_bound(d=4, n_steps=100, eps_score=0.2) == pytest.approx(
        4 * math.log(100) ** 3 / 100 + 0.2 * math.sqrt(math.log(100)), rel=1e-14)


def test_gaussian_plug_ins():
    rng = np.random.default_rng(5)
    lam = np.array([0.25, 1.0, 3.0])
    mu = np.array([0.5, -1.0, 0.0])
    # L: brute force sup over t of 1 / (a^2 lam_min + s^2)
    a2 = np.exp(-2 * np.linspace(0, 20, 2001))
    assert df.gaussian_lipschitz(lam) == pytest.approx(np.max(1 / (a2 * 0.25 + 1 - a2)), rel=1e-14)
    assert df.gaussian_lipschitz([2.0, 5.0]) == 1.0
    # m2 against Monte Carlo E|x|^2
    x = mu + np.sqrt(lam) * rng.standard_normal((200_000, 3))
    sq = np.sum(x * x, 1)
    assert df.gaussian_m2(mu, lam) ** 2 == pytest.approx(sq.mean(), abs=5 * sq.std() / 447)
    assert df.gaussian_m2(0.0, lam) == pytest.approx(math.sqrt(4.25), rel=1e-15)
    # KL to N(0, I): the dense formula, and it contracts at least like e^{-2T} under OU
    kl0 = df.kl_to_standard_normal(mu, lam)
    assert kl0 == pytest.approx(df.kl_gaussian(mu, np.diag(lam), np.zeros(3), np.eye(3)), rel=1e-12)
    for T in (0.1, 0.5, 1.0, 3.0):
        a = math.exp(-T)
        kl_t = df.kl_diagonal(a * mu, a * a * lam + 1 - a * a, 0.0, 1.0)
        assert kl_t <= df.kl_prior_term(kl0, T)
        # reference 4(d): initialisation KL per mode ~ e^{-4T}(lam-1)^2/4 + e^{-2T}mu^2/2
        if T >= 3.0:
            approx = np.sum(a**4 * (lam - 1) ** 2 / 4 + a * a * mu**2 / 2)
            assert kl_t == pytest.approx(approx, rel=1e-2)


def test_fit_constant_and_a_bound_check_that_can_fail():
    h = np.geomspace(1e-4, 1e-1, 7)
    shape = np.sqrt(h)  # e.g. Chen's L sqrt(d h) term
    good = 0.3 * h**0.55  # converges faster than the shape
    c = df.fit_constant(shape, good, at=-1)
    assert c * shape[-1] == pytest.approx(good[-1], rel=1e-15, abs=0)
    assert np.all(df.bound_holds(good, c * shape, rtol=1e-12))  # equality at `at`
    wrong = 0.3 * h**0.1  # converges slower: the calibrated bound must be violated at small h
    c = df.fit_constant(shape, wrong, at=-1)
    held = df.bound_holds(wrong, c * shape, rtol=1e-12)
    assert held[-1] and not held[0] and not np.all(held)
    # calibrated at the other end it holds everywhere (the check is one-sided, as it should be)
    assert np.all(df.bound_holds(wrong, df.fit_constant(shape, wrong, at=0) * shape, rtol=1e-12))
    assert df.bound_holds(1.0, 0.99, rtol=0.02) is True
    assert df.bound_holds(1.0, 0.99) is False
    assert df.bound_holds(1.0, np.inf) is True


def test_convergence_order():
    h = 1 / np.array([8, 16, 32, 64, 128])
    assert df.convergence_order(h, 3 * h) == pytest.approx(1.0, abs=1e-9)
    assert df.convergence_order(h, 0.5 * h**2) == pytest.approx(2.0, abs=1e-9)
    # unusable entries are dropped
    h2 = np.append(h, [0.5, 0.25, -1.0])
    e2 = np.append(0.5 * h**2, [np.inf, 0.0, 1.0])
    assert df.convergence_order(h2, e2) == pytest.approx(2.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        df.convergence_order([0.1, 0.2, 0.3], [1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="h and err"):
        df.convergence_order([0.1, 0.2], [1.0])
    with pytest.raises(ValueError, match="h must not be all equal"):
        df.convergence_order([0.1, 0.1], [1.0, 2.0])


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("call,name", [
    (lambda: df.kl_diagonal(0.0, -1.0, 0.0, 1.0), "w1"),
    (lambda: df.kl_diagonal(0.0, 1.0, np.nan, 1.0), "m2"),
    (lambda: df.w2_diagonal(0.0, 1.0, 0.0, np.inf), "w2"),
    (lambda: df.kl_diagonal(np.zeros(2), np.ones(3), 0.0, 1.0), "m1, w1, m2, w2"),
    (lambda: df.tv_bracket_diagonal(0.0, 1.0, 0.0, -0.5), "w2"),
    (lambda: df.pinsker(-0.1), "kl"),
    (lambda: df.kl_gaussian(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2)), "m2"),
    (lambda: df.kl_gaussian(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), "C1"),
    (lambda: df.kl_gaussian(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, 0.0])), "C2"),
    (lambda: df.w2_gaussian(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]], np.zeros(2), np.eye(2)), "C1"),
    (lambda: df.w2_gaussian(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0])), "C2"),
    (lambda: df.chen_tv_bound(kl_prior=1, L=1, d=2, m2=1, h=-0.1, T=1, eps_score=0), "h"),
    (lambda: df.chen_tv_bound(kl_prior=1, L=1, d=2, m2=1, h=0.1, T=-1, eps_score=0), "T"),
    (lambda: df.chen_tv_bound(kl_prior=-1, L=1, d=2, m2=1, h=0.1, T=1, eps_score=0), "kl_prior"),
    (lambda: df.chen_kl_bound(L=1, d=-2, m2=1, h=0.1, T=1, eps_score=0), "d"),
    (lambda: df.chen_kl_bound(L=0, d=2, m2=1, h=0.1, T=1, eps_score=0), "L"),
    (lambda: df.chen_kl_bound(L=1, d=2, m2=1, h=0.1, T=1, eps_score=-1), "eps_score"),
    (lambda: df.chen_kl_bound(L=1, d=2, m2=1, h=0.1, T=1, eps_score=0, C=0.0), "C"),
    (lambda: df.kl_prior_term(1.0, -2.0), "T"),
    (lambda: df.benton_kl_bound(eps_score2=0, kappa=-0.1, d=2, N=10, T=1), "kappa"),
    (lambda: df.benton_kl_bound(eps_score2=0, kappa=0.1, d=2, N=0, T=1), "N"),
    (lambda: df.li_yan_tv_bound(d=2, n_steps=1, eps_score=0), "n_steps"),
    (lambda: df.gaussian_lipschitz([1.0, 0.0]), "lam"),
    (lambda: df.gaussian_m2(np.zeros(3), np.ones(2)), "mu"),
    (lambda: df.kl_to_standard_normal(0.0, [-1.0]), "lam"),
    (lambda: df.fit_constant([1.0, 0.0], [1.0, 1.0], at=1), r"shape_values\[at\]"),
    (lambda: df.fit_constant([1.0, 2.0], [1.0, 1.0], at=5), "at"),
    (lambda: df.fit_constant([1.0, 2.0], [1.0, -1.0], at=0), "measured"),
    (lambda: df.bound_holds([1.0, np.nan], 2.0), "measured"),
    (lambda: df.bound_holds(1.0, 2.0, rtol=-0.1), "rtol"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="w1"):
        df.kl_diagonal(0.0, "one", 0.0, 1.0)
    with pytest.raises(TypeError, match="at"):
        df.fit_constant([1.0, 2.0], [1.0, 1.0], at=1.0)
    with pytest.raises(TypeError, match="lam"):
        df.gaussian_m2(0.0, [1 + 1j])
