"""Gaussian divergences (opdiff.diffusion.laws): the exact closed forms against independent
oracles (Monte Carlo, numerical integration, sorted samples, dense forms), their inf-tolerant
versions for diverged laws; the radial mean and the Monte-Carlo agreement of the oracle
(opdiff.diffusion.oracle), and the budget/grid helpers of opdiff.diffusion.samplers, against
closed forms and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from opdiff.diffusion import laws as L
from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P
from opdiff.diffusion import samplers as S


def test_laws_equal_the_closed_forms_for_finite_laws_and_score_diverged_ones_worst():
    rng = np.random.default_rng(0)
    m1, m2 = rng.standard_normal(5), rng.standard_normal(5)
    w1, w2 = rng.random(5) + 0.1, rng.random(5) + 0.1
    brute = 0.5 * np.sum(w1 / w2 - 1 - np.log(w1 / w2) + (m1 - m2) ** 2 / w2)
    assert math.isclose(L.kl(m1, w1, m2, w2), brute, rel_tol=1e-12)
    np.testing.assert_allclose(L.kl(m1, w1, m2, w2, per_coefficient=True).sum(), brute,
                               rtol=1e-12)
    w2sq = np.sum((m1 - m2) ** 2 + (np.sqrt(w1) - np.sqrt(w2)) ** 2)
    assert math.isclose(L.w2_sq(m1, w1, m2, w2), w2sq, rel_tol=1e-12)
    lo, hi = L.tv_bracket(m1, w1, m2, w2)
    assert 0 < lo <= hi < 1
    for bad in (np.nan, np.inf):
        mb, wb = m1.copy(), w1.copy()
        wb[2] = bad
        assert L.kl(mb, wb, m2, w2) == math.inf and L.kl(m2, w2, mb, wb) == math.inf
        assert L.w2_sq(mb, wb, m2, w2) == math.inf and L.tv_bracket(mb, wb, m2, w2) == (1, 1)
        per = L.kl(mb, wb, m2, w2, per_coefficient=True)
        assert per[2] == math.inf and np.all(np.isfinite(np.delete(per, 2)))
    assert not L.finite_law(m1, -w1) and L.finite_law(m1, w1)
    with pytest.raises(ValueError, match="must broadcast together"):  # bad input is not inf
        L.kl(m1, w1, m2[:3], w2[:3])
    with pytest.raises(ValueError, match="must broadcast together"):
        L.kl(m1, w1, m2[:3], w2[:3], per_coefficient=True)


def test_monte_carlo_agreement_holds(x64):
    field = O.power_law_field((4, 4), "dft", alpha=2.0)
    p4 = P.vp((4, 4), basis="dft")
    zmax, vdev, tol = O.monte_carlo_agreement("ancestral", p4, field, S.log_snr_grid(p4, 5),
                                              n=2000)
    assert zmax < 5 and vdev < tol and math.isclose(tol, 6 * math.sqrt(2 / 2000))


def test_steps_for_budgets_hit_every_budget_exactly():
    for meth in ("ancestral", "pf_heun", "pc"):
        steps = S.steps_for_budgets(meth, (5, 10), (10, 20, 21))
        assert list(steps) == sorted(set(steps)) and {5, 10} <= set(steps)
        nfes = {S.nfe(meth, n) for n in steps}
        assert {b for b in (10, 20, 21) if b % S.nfe(meth, 1) == 0} <= nfes


def test_best_and_least_at_budget():
    kls = {"a": {10: 0.5, 20: math.inf}, "b": {10: 0.2}, "c": {10: 0.2, 20: 3.0}}
    assert S.best_at_budget(kls, 10) == (0.2, "b")  # tie broken by name
    assert S.best_at_budget(kls, 20) == (3.0, "c")
    assert S.best_at_budget(kls, 50) == (math.inf, None)
    assert S.least_at_budget({"x": (0.2, "b"), "y": (0.2 * (1 + 1e-12), "a"),
                              "z": (1.0, "b")}) == (0.2, "x = y (a/b)")
    assert S.least_at_budget({}) == (math.inf, "-")
    assert S.least_at_budget({"x": (math.inf, None)}) == (math.inf, "none finite")


def test_pc_corrector_eps_is_the_transition_variance(x64):
    proc = P.vp((4,), basis="identity")
    ts = S.log_snr_grid(proc, 6)
    eps = S.pc_corrector_eps(proc, ts, 0.5)
    assert eps[0] == 0 and eps.shape == (7,)
    for j in range(1, 7):
        a1, a0 = (float(np.asarray(proc.scale(t))[0]) for t in (ts[j], ts[j - 1]))
        s1, s0 = (float(np.asarray(proc.variance(t))[0]) for t in (ts[j], ts[j - 1]))
        assert math.isclose(eps[j], 0.5 * (s1 - (a1 / a0) ** 2 * s0), rel_tol=1e-9)
        # the VP transition from t_{j-1} to t_j has variance 1 - (a1/a0)^2
        assert math.isclose(eps[j], 0.5 * (1 - (a1 / a0) ** 2), rel_tol=1e-9)


@pytest.mark.parametrize("N", [20, 80, 320])
def test_benton_grid_steps_are_at_most_kappa_min_1_t(N):
    T, delta = 4.0, 1e-3
    grid, kappa = S.benton_grid(T, delta, N)
    assert grid.shape == (N + 1,) and grid[0] == pytest.approx(delta) and grid[-1] == T
    assert np.all(np.diff(grid) > 0)
    assert np.all(np.diff(grid) <= kappa * np.minimum(1.0, grid[:-1]) * (1 + 1e-12))
    # kappa roughly solves log(1/delta)/log(1+kappa) + (T-1)/kappa = N (rounding the counts)
    assert math.log(1 / delta) / math.log1p(kappa) + (T - 1) / kappa == pytest.approx(N, rel=0.15)
    with pytest.raises(ValueError):
        S.benton_grid(0.5, delta, N)


# ------------------------------------------------------------------ the closed forms
# against Monte Carlo, numerical integration, sorted-sample W2 and closed forms that do not share
# code with the module (numpy, float64, fixed seeds)


def _spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.3 * np.eye(d)


def test_diagonal_divergences_match_the_dense_forms_on_diagonal_covariances():
    rng = np.random.default_rng(0)
    m1, m2 = rng.standard_normal(5), rng.standard_normal(5)
    w1, w2 = rng.uniform(0.1, 3.0, 5), rng.uniform(0.1, 3.0, 5)
    kl = L.kl_diagonal(m1, w1, m2, w2)
    assert kl == pytest.approx(L.kl_gaussian(m1, np.diag(w1), m2, np.diag(w2)), rel=1e-12)
    per = L.kl_diagonal(m1, w1, m2, w2, per_coefficient=True)
    assert per.shape == (5,) and np.all(per > 0) and per.sum() == pytest.approx(kl, rel=1e-14)
    # textbook formula, for well-separated variances where it is accurate
    r = w1 / w2
    naive = 0.5 * np.sum(r - 1 - np.log(r) + (m1 - m2) ** 2 / w2)
    assert kl == pytest.approx(naive, rel=1e-12)
    w2sq = L.w2_diagonal(m1, w1, m2, w2)
    assert w2sq == pytest.approx(L.w2_gaussian(m1, np.diag(w1), m2, np.diag(w2)), rel=1e-12)
    assert w2sq == pytest.approx(np.sum((m1 - m2) ** 2 + (np.sqrt(w1) - np.sqrt(w2)) ** 2),
                                 rel=1e-13)
    assert L.w2_distance(m1, w1, m2, w2) == pytest.approx(math.sqrt(w2sq), rel=1e-15)
    # broadcasting, any shape, scalars give floats
    grid = L.kl_diagonal(np.zeros((2, 3)), 2.0, 0.0, 1.0, per_coefficient=True)
    np.testing.assert_allclose(grid, 0.5 * (1 - math.log(2)), rtol=1e-14)
    assert isinstance(L.kl_diagonal(0.0, 2.0, 0.0, 1.0, per_coefficient=True), float)


def test_jax_arrays_are_accepted():
    import jax.numpy as jnp

    w = jnp.asarray([0.5, 2.0])
    assert L.kl_diagonal(jnp.zeros(2), w, 0.0, 1.0) == pytest.approx(
        L.kl_diagonal(np.zeros(2), [0.5, 2.0], 0.0, 1.0), rel=1e-7)


def test_kl_gaussian_against_monte_carlo_log_density_ratio():
    rng = np.random.default_rng(1)
    d = 3
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    c1, c2 = _spd(rng, d), _spd(rng, d)
    p, q = stats.multivariate_normal(m1, c1), stats.multivariate_normal(m2, c2)
    x = p.rvs(size=200_000, random_state=rng)
    ratio = p.logpdf(x) - q.logpdf(x)
    se = ratio.std(ddof=1) / math.sqrt(ratio.size)
    kl = L.kl_gaussian(m1, c1, m2, c2)
    assert kl > 0.1  # a non-trivial case
    assert abs(kl - ratio.mean()) < 5 * se


def test_w2_gaussian_commuting_closed_form_2x2_formula_and_symmetry():
    rng = np.random.default_rng(2)
    u, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    a, b = rng.uniform(0.1, 2.0, 4), rng.uniform(0.1, 2.0, 4)
    m1, m2 = rng.standard_normal(4), rng.standard_normal(4)
    got = L.w2_gaussian(m1, u @ np.diag(a) @ u.T, m2, u @ np.diag(b) @ u.T)
    want = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert got == pytest.approx(want, rel=1e-11)
    # non-commuting 2x2: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for 2x2 PSD M
    c1, c2 = _spd(rng, 2), _spd(rng, 2)
    assert not np.allclose(c1 @ c2, c2 @ c1)
    cross = math.sqrt(np.trace(c1 @ c2) + 2 * math.sqrt(np.linalg.det(c1) * np.linalg.det(c2)))
    want = np.trace(c1) + np.trace(c2) - 2 * cross
    assert L.w2_gaussian(np.zeros(2), c1, np.zeros(2), c2) == pytest.approx(want, rel=1e-11)
    # the formula is asymmetric in C1, C2; the distance is not
    c1, c2 = _spd(rng, 5), _spd(rng, 5)
    z = np.zeros(5)
    assert L.w2_gaussian(z, c1, z, c2) == pytest.approx(L.w2_gaussian(z, c2, z, c1), rel=1e-11)
    # singular (PSD) covariance: a point mass against N(0, 1)
    assert L.w2_gaussian(np.zeros(1), np.zeros((1, 1)), np.ones(1), np.eye(1)) == \
        pytest.approx(2.0, rel=1e-14)


def test_w2_in_1d_against_sorted_samples():
    rng = np.random.default_rng(3)
    n = 200_000
    for m1, w1, m2, w2 in [(0.0, 1.0, 1.0, 4.0), (0.5, 0.3, -0.5, 0.3), (0.0, 2.0, 0.2, 0.5)]:
        x = np.sort(m1 + math.sqrt(w1) * rng.standard_normal(n))
        y = np.sort(m2 + math.sqrt(w2) * rng.standard_normal(n))
        est = np.mean((x - y) ** 2)  # monotone coupling = optimal in 1-D
        assert L.w2_diagonal(m1, w1, m2, w2) == pytest.approx(est, rel=2e-2)


def test_near_equal_laws_keep_relative_accuracy():
    w = 1 + 1e-9  # (abs=0 below: pytest.approx's default abs=1e-12 would swamp 1e-19 values)
    delta = w - 1.0  # exact (Sterbenz)
    want = delta**2 / 4 - delta**3 / 6 + delta**4 / 8  # 1/2 (delta - log1p(delta))
    assert L.kl_diagonal(0.0, w, 0.0, 1.0) == pytest.approx(want, rel=1e-12, abs=0)
    # closer still, off 1: the textbook formula loses 3 of its digits, the series none
    w1, w2 = 3.0 * (1 + 1e-13), 3.0
    x = (w1 - w2) / w2  # w1 - w2 exact (Sterbenz), one rounding in the division
    want13 = x**2 / 4 - x**3 / 6
    assert L.kl_diagonal(0.0, w1, 0.0, w2) == pytest.approx(want13, rel=1e-12, abs=0)
    naive = 0.5 * (w1 / w2 - 1 - math.log(w1 / w2))
    assert abs(naive - want13) > 1e-4 * want13
    # dense form, same value per coordinate
    assert L.kl_gaussian(np.zeros(3), w * np.eye(3), np.zeros(3), np.eye(3)) == \
        pytest.approx(3 * want, rel=1e-12, abs=0)
    # the opposite direction, and a variance slightly below 1
    assert L.kl_diagonal(0.0, 1.0, 0.0, w) == pytest.approx(delta**2 / 4 - delta**3 / 3,
                                                             rel=1e-12, abs=0)
    wm = 1 - 1e-9
    dm = wm - 1.0
    assert L.kl_diagonal(0.0, wm, 0.0, 1.0) == pytest.approx(dm**2 / 4 - dm**3 / 6,
                                                              rel=1e-12, abs=0)
    # W2 variance part: (sqrt(w) - 1)^2 = (delta / (sqrt(w) + 1))^2
    assert L.w2_diagonal(0.0, w, 0.0, 1.0) == pytest.approx(
        (delta / (math.sqrt(w) + 1)) ** 2, rel=1e-12, abs=0)


def test_degenerate_variances():
    per = L.kl_diagonal([0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0],
                         [0.0, 0.0, 0.0, 1.0], per_coefficient=True)
    # same point mass, different point masses, density vs point mass, point mass vs density
    np.testing.assert_array_equal(per, [0.0, np.inf, np.inf, np.inf])
    assert L.kl_diagonal([0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]) == 0.0
    assert L.tv_bracket_diagonal([0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]) == (0.0, 0.0)
    assert L.tv_bracket_diagonal(0.0, 0.0, 1.0, 0.0) == (1.0, 1.0)
    assert L.tv_bracket_diagonal(0.0, 0.0, 0.0, 1.0) == (1.0, 1.0)
    assert L.w2_diagonal(0.0, 0.0, 1.0, 0.0) == 1.0


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
    lower, upper = L.tv_bracket_diagonal(m1, w1, m2, w2)
    assert lower <= tv + 1e-10 and tv <= upper + 1e-10
    assert lower < upper
    assert L.pinsker(L.kl_diagonal(m1, w1, m2, w2)) >= tv - 1e-10
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
    lower, upper = L.tv_bracket_diagonal(m1, w1, m2, w2)
    assert lower <= tv + 4 * se and tv - 4 * se <= upper
    # BC factorises: the product of the 1-D coefficients
    bc = np.prod([1 - L.tv_bracket_diagonal(a, b, c, e)[0] for a, b, c, e in zip(m1, w1, m2, w2)])
    assert 1 - lower == pytest.approx(bc, rel=1e-13)


def test_tv_bracket_high_dimension_no_underflow():
    n = 100_000  # BC_k ~ 0.9999 each: the product is exp(-sum), no underflow to 0 or 1
    lower, upper = L.tv_bracket_diagonal(np.zeros(n), np.ones(n), np.full(n, 1e-3), np.ones(n))
    bc = math.exp(-n * 1e-6 / 8)
    assert lower == pytest.approx(1 - bc, rel=1e-10, abs=0)
    assert upper == pytest.approx(math.sqrt(1 - bc**2), rel=1e-10, abs=0)


@pytest.mark.parametrize("call,name", [
    (lambda: L.kl_diagonal(0.0, -1.0, 0.0, 1.0), "w1"),
    (lambda: L.kl_diagonal(0.0, 1.0, np.nan, 1.0), "m2"),
    (lambda: L.w2_diagonal(0.0, 1.0, 0.0, np.inf), "w2"),
    (lambda: L.kl_diagonal(np.zeros(2), np.ones(3), 0.0, 1.0), "m1, w1, m2, w2"),
    (lambda: L.tv_bracket_diagonal(0.0, 1.0, 0.0, -0.5), "w2"),
    (lambda: L.pinsker(-0.1), "kl"),
    (lambda: L.kl_gaussian(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2)), "m2"),
    (lambda: L.kl_gaussian(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), "C1"),
    (lambda: L.kl_gaussian(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, 0.0])), "C2"),
    (lambda: L.w2_gaussian(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]], np.zeros(2), np.eye(2)), "C1"),
    (lambda: L.w2_gaussian(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0])), "C2"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="w1"):
        L.kl_diagonal(0.0, "one", 0.0, 1.0)


def test_w2_gaussian_batch_equals_one_call_each_and_checks_its_input():
    """The stacked form against B separate w2_gaussian calls (relative 1e-12), including a
    singular (rank-deficient) covariance; bad C1 entries are named by index."""
    rng = np.random.default_rng(7)
    d, nb = 6, 5
    m2 = rng.standard_normal(d)
    a = rng.standard_normal((d, d))
    c2 = a @ a.T
    m1 = rng.standard_normal((nb, d))
    c1 = np.stack([(lambda x: x @ x.T)(rng.standard_normal((d, d - (b % 3)))) for b in range(nb)])
    got = L.w2_gaussian_batch(m1, c1, m2, c2)
    want = np.array([L.w2_gaussian(m1[b], c1[b], m2, c2) for b in range(nb)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    bad = c1.copy()
    bad[3] = -np.eye(d)
    with pytest.raises(ValueError, match=r"C1\[3\]"):
        L.w2_gaussian_batch(m1, bad, m2, c2)
    asym = c1.copy()
    asym[1, 0, 1] += 1.0
    with pytest.raises(ValueError, match=r"C1\[1\].*|symmetric"):
        L.w2_gaussian_batch(m1, asym, m2, c2)
    with pytest.raises(ValueError, match="shapes"):
        L.w2_gaussian_batch(m1[:, :3], c1, m2, c2)
