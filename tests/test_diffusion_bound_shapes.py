"""The diffusion bound shapes and their Gaussian plug-ins (opdiff.diffusion.bound_shapes):
explicit arithmetic, scaling in h and T, a brute-force supremum, Monte Carlo, the dense KL."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opdiff.diffusion import bound_shapes as bs
from opdiff.diffusion import laws


CHEN = dict(kl_prior=2.0, L=3.0, d=16, m2=5.0, eps_score=0.01)


def test_chen_tv_bound_shape_in_h_and_t():
    hs = np.array([0.001, 0.01, 0.1])
    vals = bs.chen_tv_bound(**CHEN, h=hs, T=4.0)
    assert vals.shape == (3,) and np.all(np.diff(vals) > 0)
    # explicit arithmetic at one point
    h, T = 0.01, 4.0
    want = math.sqrt(2) * math.exp(-4) + (3 * math.sqrt(16 * h) + 3 * 5 * h) * 2 + 0.01 * 2
    assert bs.chen_tv_bound(**CHEN, h=h, T=T) == pytest.approx(want, rel=1e-14)
    # without the prior term the bound grows like sqrt(T) ...
    no_prior = {**CHEN, "kl_prior": 0.0}
    assert bs.chen_tv_bound(**no_prior, h=h, T=16.0) / bs.chen_tv_bound(**no_prior, h=h, T=4.0) \
        == pytest.approx(2.0, rel=1e-14)
    # ... and the prior term alone decays like e^{-T}
    only = dict(kl_prior=2.0, L=3.0, d=16, m2=5.0, eps_score=0.0, h=0.0)
    assert bs.chen_tv_bound(**only, T=3.0) / bs.chen_tv_bound(**only, T=1.0) == \
        pytest.approx(math.exp(-2), rel=1e-14)
    assert bs.chen_tv_bound(**CHEN, h=h, T=T, C=2.5) == pytest.approx(2.5 * want, rel=1e-14)


def test_kl_shapes_benton_and_li_yan():
    kw = dict(L=2.0, d=10, m2=4.0, T=3.0, eps_score=0.1)
    k = bs.chen_kl_bound(**kw, h=0.05)
    assert k == pytest.approx((0.01 + 4 * 10 * 0.05 + 4 * 16 * 0.0025) * 3, rel=1e-14)
    assert np.all(np.diff(bs.chen_kl_bound(**kw, h=np.geomspace(1e-4, 1e-1, 5))) > 0)
    assert bs.kl_prior_term(3.0, 2.0) == pytest.approx(3 * math.exp(-4), rel=1e-14)
    b = bs.benton_kl_bound(eps_score2=0.01, kappa=0.1, d=10, N=200, T=5.0)
    assert b == pytest.approx(0.01 + 0.01 * 10 * 200 + 0.1 * 10 * 5 + 10 * math.exp(-10), rel=1e-14)
    n = np.array([10, 100, 1000, 10_000])
    ly = bs.li_yan_tv_bound(d=4, n_steps=n, eps_score=0.0)
    np.testing.assert_allclose(ly, 4 * np.log(n) ** 3 / n, rtol=1e-14)
    assert np.all(np.diff(ly) < 0)  # decreasing once n is past e^3
    assert bs.li_yan_tv_bound(d=4, n_steps=100, eps_score=0.2) == pytest.approx(
        4 * math.log(100) ** 3 / 100 + 0.2 * math.sqrt(math.log(100)), rel=1e-14)


def test_gaussian_plug_ins():
    rng = np.random.default_rng(5)
    lam = np.array([0.25, 1.0, 3.0])
    mu = np.array([0.5, -1.0, 0.0])
    # L: brute force sup over t of 1 / (a^2 lam_min + s^2)
    a2 = np.exp(-2 * np.linspace(0, 20, 2001))
    assert bs.gaussian_lipschitz(lam) == pytest.approx(np.max(1 / (a2 * 0.25 + 1 - a2)), rel=1e-14)
    assert bs.gaussian_lipschitz([2.0, 5.0]) == 1.0
    # m2 against Monte Carlo E|x|^2
    x = mu + np.sqrt(lam) * rng.standard_normal((200_000, 3))
    sq = np.sum(x * x, 1)
    assert bs.gaussian_m2(mu, lam) ** 2 == pytest.approx(sq.mean(), abs=5 * sq.std() / 447)
    assert bs.gaussian_m2(0.0, lam) == pytest.approx(math.sqrt(4.25), rel=1e-15)
    # KL to N(0, I): the dense formula, and it contracts at least like e^{-2T} under OU
    kl0 = bs.kl_to_standard_normal(mu, lam)
    dense = laws.kl_gaussian(mu, np.diag(lam), np.zeros(3), np.eye(3))
    assert kl0 == pytest.approx(dense, rel=1e-12)
    for T in (0.1, 0.5, 1.0, 3.0):
        a = math.exp(-T)
        kl_t = laws.kl_diagonal(a * mu, a * a * lam + 1 - a * a, 0.0, 1.0)
        assert kl_t <= bs.kl_prior_term(kl0, T)
        # reference 4(d): initialisation KL per mode ~ e^{-4T}(lam-1)^2/4 + e^{-2T}mu^2/2
        if T >= 3.0:
            approx = np.sum(a**4 * (lam - 1) ** 2 / 4 + a * a * mu**2 / 2)
            assert kl_t == pytest.approx(approx, rel=1e-2)


@pytest.mark.parametrize("call,name", [
    (lambda: bs.chen_tv_bound(kl_prior=1, L=1, d=2, m2=1, h=-0.1, T=1, eps_score=0), "h"),
    (lambda: bs.chen_tv_bound(kl_prior=1, L=1, d=2, m2=1, h=0.1, T=-1, eps_score=0), "T"),
    (lambda: bs.chen_tv_bound(kl_prior=-1, L=1, d=2, m2=1, h=0.1, T=1, eps_score=0), "kl_prior"),
    (lambda: bs.chen_kl_bound(L=1, d=-2, m2=1, h=0.1, T=1, eps_score=0), "d"),
    (lambda: bs.chen_kl_bound(L=0, d=2, m2=1, h=0.1, T=1, eps_score=0), "L"),
    (lambda: bs.chen_kl_bound(L=1, d=2, m2=1, h=0.1, T=1, eps_score=-1), "eps_score"),
    (lambda: bs.chen_kl_bound(L=1, d=2, m2=1, h=0.1, T=1, eps_score=0, C=0.0), "C"),
    (lambda: bs.kl_prior_term(1.0, -2.0), "T"),
    (lambda: bs.benton_kl_bound(eps_score2=0, kappa=-0.1, d=2, N=10, T=1), "kappa"),
    (lambda: bs.benton_kl_bound(eps_score2=0, kappa=0.1, d=2, N=0, T=1), "N"),
    (lambda: bs.li_yan_tv_bound(d=2, n_steps=1, eps_score=0), "n_steps"),
    (lambda: bs.gaussian_lipschitz([1.0, 0.0]), "lam"),
    (lambda: bs.gaussian_m2(np.zeros(3), np.ones(2)), "mu"),
    (lambda: bs.kl_to_standard_normal(0.0, [-1.0]), "lam"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="lam"):
        bs.gaussian_m2(0.0, [1 + 1j])
