"""Inf-tolerant Gaussian divergences (opdiff.diffusion.laws), the radial mean and the Monte-Carlo
agreement of the oracle (opdiff.diffusion.oracle), and the budget/grid helpers of
opdiff.diffusion.samplers, against closed forms and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
