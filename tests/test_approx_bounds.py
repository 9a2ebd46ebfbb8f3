"""Approximation bounds (opdiff.approx.bounds): oracles that can fail.

Every bound is checked on a case where it must hold and on a fake case where it must fail.
All numpy, float64; no JAX is touched.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from opdiff import claims
from opdiff.approx import bounds as ap
from opdiff.approx import fourier

A_INV = 1.5  # f = 1/(a - cos x): tail(5) = 1.8068e-5 (reference §7.2)


def _grid(n):
    return 2 * np.pi * np.arange(n) / n


def _trig_features(x, omega):
    """[1, cos kx, sin kx] for integer 1 <= k <= omega."""
    ks = np.arange(1, int(np.floor(omega)) + 1)
    return np.hstack([np.ones((x.size, 1)), np.cos(np.outer(x, ks)), np.sin(np.outer(x, ks))])


def _lstsq_mse(A, f):
    c = np.linalg.lstsq(A, f, rcond=None)[0]
    return float(np.mean(np.abs(f - A @ c) ** 2)), c


# ---------------------------------------------------------------------------------- torus


def test_torus_coefficients_and_frequencies_of_a_hand_built_polynomial():
    np.testing.assert_array_equal(ap.torus_frequencies(6, 1), [[0, 1, 2, -3, -2, -1]])
    k = ap.torus_frequencies(8, 2)
    assert k.shape == (2, 8, 8) and k.dtype == np.int64
    x = _grid(8)
    X, Y = np.meshgrid(x, x, indexing="ij")
    # 3 + 2 cos(2x - y) + sin(x + 3y) = 3 + e^{i(2x-y)} + e^{-i(2x-y)}
    #                                     + (e^{i(x+3y)} - e^{-i(x+3y)})/(2i)
    c = ap.torus_coefficients(3 + 2 * np.cos(2 * X - Y) + np.sin(X + 3 * Y))
    want = {(0, 0): 3, (2, -1): 1, (-2, 1): 1, (1, 3): -0.5j, (-1, -3): 0.5j}
    for (i, j), v in want.items():
        idx = np.nonzero((k[0] == i) & (k[1] == j))
        assert c[idx].item() == pytest.approx(v, abs=1e-14)
    assert np.sum(np.abs(c) ** 2) == pytest.approx(9 + 2 + 0.5, rel=1e-14)  # Parseval
    # energy out of the band: |(2,-1)| = sqrt5, |(1,3)| = sqrt10; linf: 2 and 3
    assert ap.out_of_band_energy(c, 2.0) == pytest.approx(2.5, rel=1e-14)
    assert ap.out_of_band_energy(c, math.sqrt(5)) == pytest.approx(0.5, rel=1e-14)
    assert ap.out_of_band_energy(c, 2.0, norm="linf") == pytest.approx(0.5, rel=1e-14)
    np.testing.assert_allclose(ap.out_of_band_energy(c, [0, 3.2, 10]), [2.5, 0, 0], atol=1e-14)


def test_inverse_cosine_out_of_band_is_the_fourier_tail_and_matches_the_reference():
    # reference §7.2: 1.806786741550e-5, 1.19441181e-9 (N = 5, 10) from a 4096-point FFT.
    c = ap.torus_coefficients(1 / (A_INV - np.cos(_grid(4096))))
    for om, ref in ((5, 1.806786741550e-5), (10, 1.19441181e-9)):
        exact = ap.inverse_cosine_out_of_band(A_INV, om)
        assert exact == pytest.approx(ref, rel=1e-9)
        assert ap.out_of_band_energy(c, om) == pytest.approx(exact, rel=1e-10)
        assert ap.inverse_cosine_out_of_band(A_INV, om + 0.7) == exact  # floor(omega)
        assert exact == pytest.approx(float(fourier.inverse_cosine_tail(A_INV, om)), rel=1e-15)


@pytest.mark.parametrize("omega", [3, 5, 5.5, 8])
def test_integer_frequency_least_squares_attains_the_out_of_band_energy(omega):
    # Torus, integer frequencies |k| <= omega: the least-squares MSE on the grid IS the tail
    # (discrete Parseval), and it equals the closed form of the 1/(a - cos x) part plus the
    # hand-computed energy of the out-of-band sin(7x) (|c_{+-7}|^2 gain 0.15^2 each, no cross
    # term: the sin part is imaginary, the 1/(a - cos) part real).
    x = _grid(512)
    f = 1 / (A_INV - np.cos(x)) + 0.5 + 2 * np.cos(3 * x) - np.sin(x) + 0.3 * np.sin(7 * x)
    mse, _ = _lstsq_mse(_trig_features(x, omega), f)
    tail = ap.out_of_band_energy(ap.torus_coefficients(f), omega)
    assert mse == pytest.approx(tail, rel=1e-10)
    exact = ap.inverse_cosine_out_of_band(A_INV, omega) + (2 * 0.15**2 if omega < 7 else 0.0)
    assert mse == pytest.approx(exact, rel=1e-10)
    assert claims.lower_bound("torus Parseval floor", mse, tail, rtol=1e-10).holds
    # fake: a measurement deflated by 1% is caught
    assert not claims.lower_bound("deflated", 0.99 * mse, tail).holds


def test_every_other_band_limited_function_is_worse_than_the_tail():
    x = _grid(256)
    f = 1 / (A_INV - np.cos(x))
    A = _trig_features(x, 5)
    mse, c = _lstsq_mse(A, f)
    tail = ap.inverse_cosine_out_of_band(A_INV, 5)
    rng = np.random.default_rng(0)
    for _ in range(50):
        g = A @ (c + 1e-3 * rng.normal(size=c.size))
        assert np.mean((f - g) ** 2) >= tail * (1 - 1e-12)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_two_dimensional_torus_identity(norm):
    n, omega, a, b = 40, 4.0, 1.5, 2.0
    x = _grid(n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    f = 1 / ((a - np.cos(X)) * (b - np.cos(Y))) + np.cos(X + 2 * Y)  # (1,2) is in band
    k = ap.torus_frequencies(n, 2).reshape(2, -1)
    size = np.hypot(k[0], k[1]) if norm == "l2" else np.max(np.abs(k), axis=0)
    band = k[:, size <= omega]
    A = np.exp(1j * (np.outer(X.ravel(), band[0]) + np.outer(Y.ravel(), band[1])))
    mse, _ = _lstsq_mse(A, f.ravel().astype(complex))
    tail = ap.out_of_band_energy(ap.torus_coefficients(f), omega, norm=norm)
    assert mse == pytest.approx(tail, rel=1e-10)
    # independent: exact coefficients c_j(a) c_k(b) on a big lattice
    j = np.arange(-60, 61)
    ca, cb = fourier.inverse_cosine_coefficients(a, 60), fourier.inverse_cosine_coefficients(b, 60)
    J, K = np.meshgrid(j, j, indexing="ij")
    big = np.hypot(J, K) if norm == "l2" else np.maximum(np.abs(J), np.abs(K))
    exact = np.sum((np.outer(ca, cb) ** 2)[big > omega])
    assert tail == pytest.approx(exact, rel=1e-9)


def test_real_frequencies_beat_the_tail_so_the_bound_fails_off_the_lattice():
    # reference §2.5(c) and §7.6: 400 real frequencies in [-5, 5] on 2000 points of [0, 2pi)
    # reach 4.7e-15; here 200 on 600 points reach 4.7e-15 too, far below the integer-lattice
    # tail 1.8e-5. Rounding the same frequencies to integers restores the floor.
    x = _grid(600)
    f = 1 / (A_INV - np.cos(x))
    tail = ap.inverse_cosine_out_of_band(A_INV, 5)
    rng = np.random.default_rng(0)
    om, b = rng.uniform(-5, 5, 200), rng.uniform(0, 2 * np.pi, 200)
    mse, _ = _lstsq_mse(np.cos(np.outer(x, om) + b), f)
    assert mse < 1e-3 * tail
    assert not claims.lower_bound("Parseval floor, real frequencies", mse, tail).holds
    mse_int, _ = _lstsq_mse(np.cos(np.outer(x, np.round(om)) + b), f)
    assert mse_int == pytest.approx(tail, rel=1e-8)  # all |k| <= 5 were drawn


# ---------------------------------------------------------------------------------- Barron


def _gauss(s):
    return lambda p: np.exp(-np.sum(p * p, axis=-1) / (2 * s * s))


def test_barron_norm_gaussian_closed_form_values():
    # reference §2.3: sqrt(2/pi)/s, 1.2533/s, 3.0843/s in d = 1, 2, 10
    assert ap.barron_norm_gaussian(1.0, 1) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-15)
    assert ap.barron_norm_gaussian(2.0, 2) == pytest.approx(math.sqrt(math.pi / 2) / 2, rel=1e-14)
    assert ap.barron_norm_gaussian(1.0, 10) == pytest.approx(3.0843, abs=1e-4)
    # E|omega| of N(0, I_3 / s^2) by quadrature of the chi density
    r = integrate.quad(lambda t: t**3 * np.exp(-t * t / 2) * np.sqrt(2 / np.pi), 0, np.inf)[0]
    assert ap.barron_norm_gaussian(0.5, 3) == pytest.approx(r / 0.5, rel=1e-12)


def test_barron_fft_matches_the_gaussian_closed_form_and_its_predicted_bias():
    s, L, n = 0.3, 40.0, 4096
    est, exact = ap.barron_norm_fft(_gauss(s), half_width=L, n=n), ap.barron_norm_gaussian(s, 1)
    assert est == pytest.approx(2.659492, abs=1e-6)  # reference §7.1
    assert est == pytest.approx(exact, rel=1e-4)
    # the error is the Euler-Maclaurin kink term -dw^2 |f~(0)| / 6, f~(0) = s / sqrt(2 pi)
    bias = -((np.pi / L) ** 2) * (s / np.sqrt(2 * np.pi)) / 6
    assert est - exact == pytest.approx(bias, rel=1e-3)
    # converged in n: the cut-off pi n / (2L) is far beyond the spectrum
    assert ap.barron_norm_fft(_gauss(s), half_width=L, n=2 * n) == pytest.approx(est, rel=1e-12)


def test_barron_fft_in_two_dimensions():
    est = ap.barron_norm_fft(_gauss(0.5), d=2, half_width=12.0, n=512)
    assert est == pytest.approx(ap.barron_norm_gaussian(0.5, 2), rel=1e-4)


def test_barron_fft_of_a_jump_diverges_linearly_in_the_cutoff():
    box = lambda p: (np.abs(p[..., 0]) <= 1).astype(float)  # noqa: E731
    est = [ap.barron_norm_fft(box, half_width=4.0, n=n) for n in (1024, 4096, 16384)]
    ratios = np.array(est[1:]) / np.array(est[:-1])
    np.testing.assert_allclose(ratios, 4.0, rtol=0.02)
    assert claims.loglog_slope([1024, 4096, 16384], est)[0] == pytest.approx(1.0, abs=0.01)


def test_barron_bound_and_a_sigmoidal_net_that_satisfies_it():
    # 2 r C_f / sqrt(n) exactly, rate -1/2
    ns = np.array([1, 4, 16, 64])
    b = ap.barron_bound(1.5, 2.0, ns)
    np.testing.assert_allclose(b, 6.0 / np.sqrt(ns), rtol=1e-15)
    assert claims.loglog_slope(ns, b)[0] == pytest.approx(-0.5, abs=1e-12)
    assert ap.barron_bound(np.inf, 1.0, 3) == np.inf
    # Gaussian s = 1 on B_1 = [-1, 1], mu uniform. A least-squares sigmoid net with n units
    # (random inner weights, so its error bounds the best n-term error from above) is below
    # the existence bound: evidence for, not a proof of, Thm 1 (Barron is loose in 1-D).
    x = np.linspace(-1, 1, 401)
    f, cf = np.exp(-x * x / 2), ap.barron_norm_gaussian(1.0, 1)
    rng = np.random.default_rng(0)
    for n in (1, 4, 16):
        a, t = rng.normal(scale=3, size=n), rng.uniform(-1, 1, n)
        A = np.hstack([np.ones((x.size, 1)), special.expit(np.outer(x, a) - a * t)])
        err = math.sqrt(_lstsq_mse(A, f)[0])
        assert claims.upper_bound("Barron Thm 1", err, ap.barron_bound(cf, 1.0, n)).holds
        if n == 1:  # err = 0.122 (the constant fit): fake, a bound deflated 100 times
            assert not claims.upper_bound("deflated", err, ap.barron_bound(cf, 1.0, n) / 100
                                          ).holds


# ------------------------------------------------------------------------------ Monte Carlo


def test_monte_carlo_gaussian_mse_matches_simulation():
    s, N, T = 0.8, 8, 20000
    x = np.array([0.3, 0.8, 1.5, 3.0])
    rng = np.random.default_rng(0)
    om = rng.normal(scale=1 / s, size=(T, N))
    fN = np.cos(om[:, :, None] * x).mean(axis=1)  # (T, len(x))
    sq = (np.exp(-x * x / (2 * s * s)) - fN) ** 2
    emp, se = sq.mean(0), sq.std(0, ddof=1) / math.sqrt(T)
    exact = ap.monte_carlo_gaussian_mse(x, s, N)
    assert np.all(np.abs(emp - exact) <= 4 * se)
    # fake: the cos/sin-pair variance (1 + k(2d) - 2k(d)^2)/N is a different law, off by >> 4 SE
    q = np.exp(-x * x / (s * s))
    wrong = (1 + q * q - 2 * q) / N
    assert np.all(np.abs(emp - wrong) > 4 * se)
    assert ap.monte_carlo_gaussian_mse(0.0, s, N) == 0.0  # cos(0) = 1 exactly
    np.testing.assert_allclose(ap.monte_carlo_gaussian_mse(1.0, 1.0, np.array([1, 10])),
                               ((1 + math.exp(-2)) / 2 - math.exp(-1)) / np.array([1, 10]))


def test_monte_carlo_bound_holds_for_the_right_features_and_fails_for_the_wrong_ones():
    # f = exp(-x^2/2) = E_{omega ~ N(0,1)} cos(omega x): alpha = p, ||f||_p = 1, |cos| <= 1.
    x = np.linspace(-3, 3, 121)  # mu = uniform on this grid
    f = np.exp(-x * x / 2)
    rng = np.random.default_rng(0)
    delta = 0.1
    for K in (16, 32, 64):  # K < len(x): least squares is overdetermined
        bound = ap.monte_carlo_bound(1.0, K, delta)
        fails = 0
        for _ in range(100):
            Phi = np.cos(np.outer(x, rng.normal(size=K)))
            mc = math.sqrt(np.mean((f - Phi.mean(1)) ** 2))
            ls = math.sqrt(_lstsq_mse(Phi, f)[0])
            assert ls <= mc + 1e-12  # least squares on the fitting measure never does worse
            fails += not claims.upper_bound("RR08", mc, bound).holds
        assert fails <= delta * 100
    assert ap.monte_carlo_bound(2.0, 16, math.exp(-2)) == pytest.approx(1.5, rel=1e-15)
    np.testing.assert_allclose(ap.monte_carlo_bound(1.0, np.array([1, 4]), 0.5),
                               (1 + math.sqrt(2 * math.log(2))) / np.array([1.0, 2.0]))
    # fake: features drawn from N(0, 4) with the unweighted estimator converge to
    # exp(-2x^2), not f: the error stays at ~0.26 while the claimed bound is 0.049.
    K = 4096
    bound = ap.monte_carlo_bound(1.0, K, delta)
    Phi = np.cos(np.outer(x, rng.normal(scale=2.0, size=K)))
    mc = math.sqrt(np.mean((f - Phi.mean(1)) ** 2))
    assert not claims.upper_bound("RR08, wrong p", mc, bound).holds
    assert mc > 4 * bound


# -------------------------------------------------------------------- bounded coefficients


def _ridge_at_norm(A, f, B):
    """The exact minimiser of ||f - Ac|| over ||c|| <= B (ridge with ||c_lambda|| = B)."""
    u, s, vt = np.linalg.svd(A, full_matrices=False)
    beta = u.T @ f

    def c_of(lam):
        return vt.T @ (s * beta / (s * s + lam))

    if np.linalg.norm(c_of(0.0)) <= B:
        return c_of(0.0)
    lo, hi = 0.0, 1.0
    while np.linalg.norm(c_of(hi)) > B:
        hi *= 10
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.linalg.norm(c_of(mid)) > B else (lo, mid)
    return c_of(hi)


def test_bounded_coefficient_floor_by_hand():
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    V = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    A = U[:, :3] @ np.diag([3.0, 1.0, 0.1]) @ V.T
    f = 2 * U[:, 0] + U[:, 1] + 0.5 * U[:, 3]
    curve = ap.bounded_coefficient_floor_curve(A, f, 0.5)
    np.testing.assert_allclose(
        curve, [math.sqrt(5.25) - 1.5, math.sqrt(1.25) - 0.5, 0.5 - 0.05, 0.5], atol=1e-14)
    floor = ap.bounded_coefficient_floor(A, f, 0.5)
    assert floor == pytest.approx(math.sqrt(5.25) - 1.5, abs=1e-14)
    best = np.linalg.norm(f - A @ _ridge_at_norm(A, f, 0.5))
    assert best >= floor
    assert ap.bounded_coefficient_floor(A, f, 100.0) == pytest.approx(0.5, abs=1e-14)  # LS level


def test_bounded_coefficient_floor_holds_for_bounded_and_fails_for_large_coefficients():
    rng = np.random.default_rng(1)
    m, p = 60, 30
    U = np.linalg.qr(rng.normal(size=(m, m)))[0]
    V = np.linalg.qr(rng.normal(size=(p, p)))[0]
    s = 10.0 ** (-np.arange(p) / 3)  # 1 .. 1e-9.7: an ill-conditioned feature matrix
    A = U[:, :p] @ np.diag(s) @ V.T
    c_true = V @ np.ones(p)  # ||c_true|| = sqrt(30), all along small singular directions too
    f = A @ c_true + 1e-8 * rng.normal(size=m)
    B = 0.5
    floor = ap.bounded_coefficient_floor(A, f, B)
    k = int(np.argmax(ap.bounded_coefficient_floor_curve(A, f, B)))
    assert floor > 0.1 and 0 <= k <= p
    c_ls = np.linalg.lstsq(A, f, rcond=None)[0]
    cands = [_ridge_at_norm(A, f, B), c_ls * B / np.linalg.norm(c_ls)]
    dirs = rng.normal(size=(2000, p))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    cands += list(dirs * B * rng.uniform(0, 1, (2000, 1)) ** (1 / p))
    errs = np.array([np.linalg.norm(f - A @ c) for c in cands])
    assert errs.min() >= floor
    assert errs[0] == errs.min() or errs[0] <= errs.min() * (1 + 1e-12)  # ridge is the best
    assert claims.lower_bound("bounded-coefficient floor", errs[0], floor).holds
    # fake: the least-squares solution has ||c|| >> B and beats the floor by orders
    assert np.linalg.norm(c_ls) > 10 * B
    err_ls = np.linalg.norm(f - A @ c_ls)
    assert not claims.lower_bound("unbounded coefficients", err_ls, floor).holds
    assert err_ls < 1e-3 * floor


# -------------------------------------------------------------------- NSdim, Landau-Widom


@pytest.mark.parametrize("k", [1, 5, 17, 40])
def test_nsdim_of_a_rank_k_product_is_k(k):
    rng = np.random.default_rng(k)
    A = rng.normal(size=(50, k)) @ rng.normal(size=(k, 40))
    assert ap.nsdim(A, 1e-8) == k
    np.testing.assert_array_equal(ap.nsdim(1e6 * A, [1e-10, 1e-6]), [k, k])
    if k < 40:  # numerically rank k plus a 1e-9 perturbation: full at 1e-12, k at 1e-6
        Ap = A + 1e-9 * rng.normal(size=A.shape)
        assert ap.nsdim(Ap, 1e-6) == k and ap.nsdim(Ap, 1e-13) == 40
    assert ap.nsdim(np.zeros((3, 4)), 0.5) == 0


def test_landau_widom_formula_by_hand():
    assert ap.landau_widom_count(20.0, 1e-8) == pytest.approx(
        40 / math.pi + math.log((1 - 1e-8) / 1e-8) * math.log(20) / math.pi**2, rel=1e-15)
    assert ap.landau_widom_count(20.0, 1e-8) == pytest.approx(18.3, abs=0.05)  # reference §3
    assert ap.landau_widom_count(7.0, 0.5) == pytest.approx(14 / math.pi, rel=1e-15)
    np.testing.assert_allclose(ap.landau_widom_count(np.array([20.0, 50.0]), 1e-16),
                               [23.9, 46.4], atol=0.05)


def _sinusoids(omega, n_features=300, n_points=300, seed=0):
    x, w = np.polynomial.legendre.leggauss(n_points)
    rng = np.random.default_rng(seed)
    om, b = rng.uniform(-omega, omega, n_features), rng.uniform(0, 2 * np.pi, n_features)
    return np.sqrt(w)[:, None] * np.cos(np.outer(x, om) + b), x, w


@pytest.mark.parametrize("omega", [20, 50, 100])
def test_nsdim_of_sinusoids_follows_landau_widom_at_eps_tau_squared(omega):
    # reference §3 (3000 x 4000): 21/27/32, 42/49/55, 75/83/91 for tau = 1e-4/1e-8/1e-12.
    # Here 300 x 300 gives 21/27/32, 41/49/55, 74/83/90: the count is the same property.
    A, x, w = _sinusoids(omega)
    taus = np.array([1e-4, 1e-8, 1e-12])
    counts = ap.nsdim(A, taus)
    pred = ap.landau_widom_count(float(omega), taus**2)
    assert np.all(np.abs(counts - pred) <= 4), (counts, pred)
    assert np.all(counts >= pred - 0.5)  # the o(ln c) term is positive here
    # fake: reading tau as the eigenvalue threshold (eps = tau) is off by > 5
    assert np.all(counts - ap.landau_widom_count(float(omega), taus) > 5)
    # eps = tau^2 directly: eigenvalues of the sinc kernel on [-1, 1] (Nystrom), tau = 1e-4
    d = x[:, None] - x[None, :]
    K = np.where(d == 0, omega / np.pi, np.sin(omega * d) / (np.pi * np.where(d == 0, 1, d)))
    lam = np.linalg.eigvalsh(np.sqrt(w)[:, None] * K * np.sqrt(w)[None, :])
    assert lam.max() == pytest.approx(1.0, abs=1e-10)
    assert abs(int(np.sum(lam > 1e-8)) - counts[0]) <= 1


# ------------------------------------------------------------------------------- ridgelet


def _ridgelet_gaussian_exact(s, lam):
    # rho^(w) = w e^{-w^2/2} (m = 1), f = exp(-x^2/(2 s^2)): by hand,
    # E_out = sqrt(pi) s (1 - s lam / sqrt(1 + s^2 lam^2)).
    return np.sqrt(np.pi) * s * (1 - s * lam / np.sqrt(1 + s * s * lam * lam))


def _rho_sq(w):
    return w * w * np.exp(-w * w)


def test_gaussian_band_tail_by_quadrature():
    s = 0.7
    fhat_sq = lambda xi: 2 * np.pi * s * s * np.exp(-s * s * xi * xi)  # noqa: E731
    for r in (0.0, 0.5, 2.0, 6.0):
        num = 2 * integrate.quad(fhat_sq, r, np.inf, epsabs=0, epsrel=1e-13)[0]
        assert ap.gaussian_band_tail(s, r) == pytest.approx(num, rel=1e-10)
    # Plancherel: T(0) = 2 pi ||f||^2 = 2 pi s sqrt(pi)
    assert ap.gaussian_band_tail(s, 0.0) == pytest.approx(2 * np.pi * s * math.sqrt(np.pi))


def test_ridgelet_proxy_matches_the_hand_closed_form():
    s = 1.3
    lam = np.array([0.0, 0.3, 1.0, 3.0])
    e = ap.ridgelet_out_energy(lambda r: ap.gaussian_band_tail(s, r), _rho_sq, lam,
                               omega_max=12.0, n_quad=80)
    np.testing.assert_allclose(e, _ridgelet_gaussian_exact(s, lam), rtol=1e-10)
    assert np.all(np.diff(e) < 0)
    e10 = ap.ridgelet_out_energy(lambda r: ap.gaussian_band_tail(s, r), _rho_sq, 10.0,
                                 omega_max=12.0, n_quad=400)
    assert e10 == pytest.approx(_ridgelet_gaussian_exact(s, 10.0), rel=1e-9)


def test_ridgelet_proxy_matches_the_ridgelet_transform_computed_from_its_definition():
    # E_out(lam) - E_out(A) = int_{lam<|a|<A} int |R f(a, b)|^2 db da, with
    # R f(a, b) = int f(x) conj(rho(a x - b)) dx and rho(t) = i t e^{-t^2/2} / sqrt(2 pi)
    # (so that rho^(w) = w e^{-w^2/2}). Brute force in x, b, a: checks the 1/(2 pi), the
    # |w|^{-m} and the Plancherel/slice step of the derivation.
    s, lam, a_max = 1.3, 0.4, 6.0
    x = np.linspace(-8, 8, 641)
    b = np.linspace(-50, 50, 335)
    t, wt = np.polynomial.legendre.leggauss(16)
    a = lam + (a_max - lam) * (t + 1) / 2
    wa = wt * (a_max - lam) / 2
    fx = np.exp(-x * x / (2 * s * s))
    arg = a[:, None, None] * x[None, None, :] - b[None, :, None]
    R = integrate.trapezoid(fx * arg * np.exp(-arg * arg / 2), x, axis=-1) / np.sqrt(2 * np.pi)
    brute = 2 * np.sum(wa * integrate.trapezoid(R * R, b, axis=-1))  # |a| > lam: both signs
    tail = lambda r: ap.gaussian_band_tail(s, r)  # noqa: E731
    e = ap.ridgelet_out_energy(tail, _rho_sq, np.array([lam, a_max]), omega_max=12.0, n_quad=120)
    assert brute == pytest.approx(e[0] - e[1], rel=1e-8)
    # fake: m = 2 (|w|^{-2}) is a different quantity
    e2 = ap.ridgelet_out_energy(tail, lambda w: w**4 * np.exp(-w * w), np.array([lam, a_max]),
                                m=2, omega_max=12.0, n_quad=120)
    assert abs(brute - (e2[0] - e2[1])) > 0.01 * brute


@pytest.mark.parametrize("m", [1, 2, 3])
def test_ridgelet_proxy_weight_is_omega_to_the_minus_m(m):
    # T = 1 and |rho^|^2 = |w|^(m+1) e^{-w^2}: (1/2pi) int 2 w e^{-w^2} dw = 1/(2pi) for all m
    e = ap.ridgelet_out_energy(lambda r: np.ones_like(r), lambda w: np.abs(w) ** (m + 1)
                               * np.exp(-w * w), 0.7, m=m, omega_max=10.0, n_quad=80)
    assert e == pytest.approx(1 / (2 * np.pi), rel=1e-12)


def test_ridgelet_proxy_vanishes_beyond_the_band():
    # |f^|^2 supported in |xi| <= W and rho^ supported in 1 <= |w| <= 2: E_out(lam) = 0 once
    # lam * 1 >= W, > 0 before (take-home (ii) of Li et al.).
    W = 5.0
    tail = lambda r: np.clip(W - r, 0, None) ** 3  # noqa: E731  any decreasing T with T(W) = 0
    rho = lambda w: np.where((np.abs(w) > 1) & (np.abs(w) < 2),  # noqa: E731
                             np.sin(np.pi * (np.abs(w) - 1)) ** 2, 0.0)
    e = ap.ridgelet_out_energy(tail, rho, np.array([0.0, 2.0, 4.9, 5.0, 8.0]), omega_max=3.0,
                               n_quad=200)
    assert np.all(e[:3] > 0) and np.all(e[3:] == 0)


# ------------------------------------------------------------------------------- bad input


def _c():
    return ap.torus_coefficients(np.ones(8))


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: ap.torus_coefficients(np.ones((4, 5))), ValueError, "values"),
        (lambda: ap.torus_coefficients(np.array([1.0, np.nan])), ValueError, "values"),
        (lambda: ap.torus_coefficients(np.ones(())), ValueError, "values"),
        (lambda: ap.torus_frequencies(4.0, 1), TypeError, "n"),
        (lambda: ap.torus_frequencies(4, 0), ValueError, "d"),
        (lambda: ap.out_of_band_energy(_c(), -1.0), ValueError, "omega"),
        (lambda: ap.out_of_band_energy(_c(), np.nan), ValueError, "omega"),
        (lambda: ap.out_of_band_energy(_c(), 1.0, norm="l1"), ValueError, "norm"),
        (lambda: ap.out_of_band_energy(np.ones((2, 3)), 1.0), ValueError, "coeffs"),
        (lambda: ap.inverse_cosine_out_of_band(1.0, 3), ValueError, "a"),
        (lambda: ap.inverse_cosine_out_of_band(1.5, -1), ValueError, "omega"),
        (lambda: ap.barron_norm_fft(_gauss(1.0), half_width=-1.0, n=64), ValueError,
         "half_width"),
        (lambda: ap.barron_norm_fft(_gauss(1.0), half_width=4.0, n=64.0), TypeError, "n"),
        (lambda: ap.barron_norm_fft(lambda p: p, half_width=4.0, n=64), ValueError, "f"),
        (lambda: ap.barron_norm_fft(3.0, half_width=4.0, n=64), TypeError, "f"),
        (lambda: ap.barron_norm_gaussian(0.0, 1), ValueError, "s"),
        (lambda: ap.barron_bound(-1.0, 1.0, 4), ValueError, "c_f"),
        (lambda: ap.barron_bound(1.0, 0.0, 4), ValueError, "radius"),
        (lambda: ap.barron_bound(1.0, 1.0, 0), ValueError, "n"),
        (lambda: ap.barron_bound(1.0, 1.0, 2.5), TypeError, "n"),
        (lambda: ap.monte_carlo_gaussian_mse(np.nan, 1.0, 4), ValueError, "x"),
        (lambda: ap.monte_carlo_gaussian_mse(1.0, -1.0, 4), ValueError, "s"),
        (lambda: ap.monte_carlo_bound(1.0, 4, 1.0), ValueError, "delta"),
        (lambda: ap.monte_carlo_bound(1.0, 4, 0.0), ValueError, "delta"),
        (lambda: ap.monte_carlo_bound(np.nan, 4, 0.1), ValueError, "norm_p"),
        (lambda: ap.bounded_coefficient_floor(np.ones((3, 2)), np.ones(4), 1.0), ValueError,
         "f"),
        (lambda: ap.bounded_coefficient_floor(np.ones(3), np.ones(3), 1.0), ValueError, "A"),
        (lambda: ap.bounded_coefficient_floor(np.ones((3, 2)), np.ones(3), -1.0), ValueError,
         "B"),
        (lambda: ap.nsdim(np.eye(3), 0.0), ValueError, "eps"),
        (lambda: ap.nsdim(np.eye(3), [0.1, 1.5]), ValueError, "eps"),
        (lambda: ap.nsdim(np.array([[1.0, np.inf]]), 0.1), ValueError, "A"),
        (lambda: ap.landau_widom_count(1.0, 0.1), ValueError, "c"),
        (lambda: ap.landau_widom_count(0.5, 0.1), ValueError, "c"),
        (lambda: ap.landau_widom_count(10.0, 1.0), ValueError, "eps"),
        (lambda: ap.ridgelet_out_energy(np.exp, _rho_sq, -1.0, omega_max=1.0, n_quad=8),
         ValueError, "lam"),
        (lambda: ap.ridgelet_out_energy(np.exp, _rho_sq, 1.0, omega_max=0.0, n_quad=8),
         ValueError, "omega_max"),
        (lambda: ap.ridgelet_out_energy(None, _rho_sq, 1.0, omega_max=1.0, n_quad=8),
         TypeError, "tail_energy"),
        (lambda: ap.ridgelet_out_energy(np.exp, lambda w: -w * w, 1.0, omega_max=1.0, n_quad=8),
         ValueError, "rho_hat_sq"),
        (lambda: ap.gaussian_band_tail(1.0, -0.1), ValueError, "r"),
    ],
)
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=rf"^{name} "):
        call()


def test_gaussian_sum_band_tail_one_term_closed_form_and_two_terms_by_quad():
    A, k, c = 0.3, 10.0, 4.0
    r = np.array([0.0, 5.0, 20.0, 40.0])
    exact = math.sqrt(2) * math.pi**1.5 * A * A / k * special.erfc(r / (math.sqrt(2) * k))
    np.testing.assert_allclose(ap.gaussian_sum_band_tail(((A, k, c),), r), exact, rtol=1e-7)
    terms = ((0.2, 10.0, 4.0), (0.5, 30.0, 10.0))

    def dens(xi):
        fh = sum(a * math.sqrt(math.pi) / kk * np.exp(-xi**2 / (4 * kk * kk) - 1j * xi * cc / kk)
                 for a, kk, cc in terms)
        return abs(fh) ** 2

    for rr in (0.0, 15.0, 60.0):
        ref = 2 * integrate.quad(dens, rr, np.inf, limit=200)[0]
        assert ap.gaussian_sum_band_tail(terms, rr) == pytest.approx(ref, rel=1e-6)


def test_gaussian_sum_ridgelet_proxy_is_the_normalised_gaussian_proxy():
    k = 10.0
    s = 1 / (math.sqrt(2) * k)  # A exp(-(k x - c)^2) = A exp(-(x - c/k)^2 / (2 s^2))
    lams = np.array([0.5, 5.0, 50.0])
    e = ap.ridgelet_out_energy(lambda r: ap.gaussian_band_tail(s, r),
                               lambda w: w * w * np.exp(-w * w), np.concatenate([[0.0], lams]),
                               omega_max=8.0, n_quad=200)
    got = ap.gaussian_sum_ridgelet_proxy(((0.7, k, 3.0),), lams, omega_max=8.0, n_quad=200)
    np.testing.assert_allclose(got, np.sqrt(e[1:] / e[0]), rtol=1e-6)
    assert np.all(np.diff(got) < 0) and np.all(got <= 1)


# ----------------------------------------- NSdim bounds: Chebyshev-Bernstein, ReLU kinks


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "sin", "cos"])
@pytest.mark.parametrize("rho", [1.05, 1.12])
def test_bernstein_sup_against_a_brute_force_maximum_on_the_ellipse(act, rho):
    # independent: |sigma(a z - b)| on the boundary of E_rho (max modulus) over a grid of a, b
    lam = 10.0
    sig = {"tanh": np.tanh, "sigmoid": lambda t: 1 / (1 + np.exp(-t)), "sin": np.sin,
           "cos": np.cos}[act]
    th = np.linspace(0, 2 * np.pi, 361)
    z = (rho * np.exp(1j * th) + np.exp(-1j * th) / rho) / 2
    a = np.linspace(-lam, lam, 21)
    b = np.linspace(-60, 60, 301)
    vals = np.abs(sig(a[:, None, None] * z[None, None, :] - b[None, :, None]))
    brute = float(np.max(vals))
    m = ap.bernstein_sup(act, lam, rho)
    assert brute <= m * (1 + 1e-9)
    assert brute >= 0.97 * m  # the formula is the supremum, not a loose bound
    with pytest.raises(ValueError, match="^activation "):
        ap.bernstein_sup("relu", lam, rho)
    assert not brute <= 0.9 * m  # a smaller "bound" would be violated


def test_bernstein_sup_is_infinite_once_the_pole_enters():
    beta = lambda r: (r - 1 / r) / 2  # noqa: E731
    rho_t = 1.0 + 1e-3
    while 10.0 * beta(rho_t) < np.pi / 2:
        rho_t += 1e-3
    assert ap.bernstein_sup("tanh", 10.0, rho_t) == np.inf
    assert np.isfinite(ap.bernstein_sup("sigmoid", 10.0, rho_t))  # sigmoid's pole is farther


def test_chebyshev_truncation_error_is_below_the_bernstein_estimate():
    # the ingredient of bernstein_nsdim_bound, checked with numpy's Chebyshev coefficients
    x = np.cos(np.pi * np.arange(2001) / 2000)
    for act, f in (("tanh", lambda t: np.tanh(10 * t - 3)), ("sin", lambda t: np.sin(10 * t + 1))):
        c = np.polynomial.chebyshev.chebinterpolate(f, 400)
        for rho in (1.08, 1.12):
            m = ap.bernstein_sup(act, 10.0, rho)
            for n in (20, 60, 120):
                err = np.max(np.abs(f(x) - np.polynomial.chebyshev.chebval(x, c[: n + 1])))
                assert err <= 2 * m * rho**-n / (rho - 1)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "sin"])
def test_bernstein_nsdim_bound_holds_and_does_not_grow_with_width(act):
    rng = np.random.default_rng(7)
    x, w = np.polynomial.legendre.leggauss(400)
    lam, tau = 8.0, 1e-8
    a, b = rng.uniform(-lam, lam, 1600), rng.uniform(-lam, lam, 1600)
    f = {"tanh": np.tanh, "sigmoid": lambda t: 0.5 * (1 + np.tanh(t / 2)), "sin": np.sin}[act]
    A = np.sqrt(w)[:, None] * f(np.outer(x, a) - b)
    ks = []
    for n in (25, 100, 400, 1600):
        s = np.linalg.svd(A[:, :n], compute_uv=False)
        k = ap.bernstein_nsdim_bound(act, lam, n, s[0], tau)
        assert ap.nsdim(A[:, :n], tau) <= k
        ks.append(k)
    assert max(ks[1:]) - min(ks[1:]) <= 2  # uniform in N (s_1 ~ sqrt N)
    # a rank bound cannot be below the count of singular values it bounds: a fake s_1 that
    # is 1e6 too large makes the "bound" smaller than the measured NSdim
    s = np.linalg.svd(A, compute_uv=False)
    assert ap.bernstein_nsdim_bound(act, lam, 1600, 1e-6 * s[0], tau) > ks[-1]
    with pytest.raises(ValueError, match="^tau "):
        ap.bernstein_nsdim_bound(act, lam, 10, 1.0, 1.5)
    with pytest.raises(ValueError, match="^s1 "):
        ap.bernstein_nsdim_bound(act, lam, 10, 0.0, 1e-8)


def test_relu_rank_bound_against_the_matrix_rank():
    rng = np.random.default_rng(2)
    x, w = np.polynomial.legendre.leggauss(300)
    a, b = rng.uniform(-10, 10, 80), rng.uniform(-10, 10, 80)
    A = np.sqrt(w)[:, None] * np.maximum(np.outer(x, a) - b, 0)
    inside = int(np.sum(np.abs(b / a) < 1))
    assert ap.relu_rank_bound(a, b) == inside + 2
    assert np.linalg.matrix_rank(A) <= ap.relu_rank_bound(a, b)
    # all kinks outside [-1, 1]: affine columns, rank <= 2 whatever the count
    a2, b2 = rng.uniform(1, 2, 30), rng.uniform(3, 4, 30) * rng.choice([-1, 1], 30)
    A2 = np.maximum(np.outer(x, a2) - b2, 0)
    assert np.linalg.matrix_rank(A2) <= 2 == ap.relu_rank_bound(a2, b2)
    with pytest.raises(ValueError, match="^a "):
        ap.relu_rank_bound(a, b[:3])


def test_rf_rates_slope_claim_fails_outside_z_monte_carlo_standard_errors():
    from experiments import rf_rates as exp

    cfg = exp.Config()

    def results(slope):
        return dict(mc_z_scores=np.array([0.5, -1.0]), mc_loglog_slope=slope,
                    mc_loglog_slope_mc_se=0.006, mc_fraction_within_rahimi_recht=np.ones(2),
                    ls_over_mc_max_ratio=np.array([0.1, 0.2]),
                    sigmoid_widths=np.array([2, 4]),
                    sigmoid_ls_heldout_mean_error=np.array([0.01, 0.015]),
                    sigmoid_ls_heldout_mean_error_se=np.array([0.001, 0.003]),
                    barron_bound_sigmoid_widths=np.array([0.5, 0.3]))

    assert all(c.holds for c in exp.claims(cfg, results(-0.51)))
    assert [c.holds for c in exp.claims(cfg, results(-0.52))] == [False, True, True, True, True]
    # Rahimi-Recht: a fraction 4 binomial SEs (0.0126 each at 300 draws) under 0.95 still holds
    # (a bound attained with probability exactly 0.95 reads below 0.95 half the time); 0.85 fails
    r = results(-0.5)
    r["mc_fraction_within_rahimi_recht"] = np.array([1.0, 0.90])
    assert exp.claims(cfg, r)[2].holds
    r["mc_fraction_within_rahimi_recht"] = np.array([1.0, 0.85])
    assert not exp.claims(cfg, r)[2].holds
    # Barron: a finding, the largest mean-error/bound ratio (n = 2nd width: 0.05 ± 0.01)
    barron = exp.claims(cfg, results(-0.5))[4]
    assert barron.kind == "finding" and barron.measured == pytest.approx(0.05)
    assert barron.detail["se"] == pytest.approx(0.01) and "n=4" in barron.statement
