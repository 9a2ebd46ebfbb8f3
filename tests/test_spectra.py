"""Spectral analysis against oracles: white noise, exact power-law fields, pure cosines, and the
closed-form SNR cut-off of a power law over a flat floor.

Monte-Carlo tolerances are 5 standard deviations of the estimator, computed exactly: for a
mean-zero Gaussian image whose DFT modes are independent up to :math:`\\hat u_{-k}=
\\overline{\\hat u_k}` with expected power :math:`\\mu_k`, the annulus average of ``n`` images
has variance :math:`2\\sum_{k\\in r}\\mu_k^2/(n\\,m_r^2)` (:math:`m_r` modes in the annulus;
a complex pair is two identical modes with an exponential power, a self-conjugate mode has a
:math:`\\mu\\chi^2_1` power: the same formula). Keys are fixed, so every test is deterministic.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from opdiff import spectra as S
from opdiff.diffusion import transforms as B
from opdiff.functions import PeriodicPowerLawField

KEY = jax.random.key(314)


def _annulus_std(mu, n):
    """Exact std of the annulus averages of ``n`` Gaussian images with per-mode power ``mu``."""
    idx = S.annulus_index(mu.shape)
    counts = np.bincount(idx[idx >= 0])
    sq = np.bincount(idx[idx >= 0], weights=(mu**2)[idx >= 0])
    return np.sqrt(2 * sq / n) / counts


@pytest.mark.parametrize("shape", [(32, 32), (16, 24)])
def test_white_noise_is_flat_at_sigma2(shape):
    sigma, n = 1.7, 300
    rng = np.random.default_rng(0)
    u = sigma * rng.standard_normal((n, *shape))
    f, p = S.rapsd(u)
    m = min(shape)
    assert p.shape == f.shape == (m // 2,)
    np.testing.assert_allclose(f, np.arange(1, m // 2 + 1) / m)
    std = _annulus_std(np.full(shape, sigma**2), n)
    assert np.all(np.abs(p - sigma**2) <= 5 * std), (p, std)
    # per-image spectra keep the leading axes; their mean is the averaged spectrum
    per = S.rapsd(u.reshape(3, n // 3, *shape), return_frequencies=False, average=False)
    assert per.shape == (3, n // 3, m // 2)
    np.testing.assert_allclose(per.mean(axis=(0, 1)), p, rtol=1e-12)


def test_parseval_normalisation():
    # sum over all modes of |fft|^2 / N, divided by N, is the mean square of the image
    u = np.random.default_rng(1).standard_normal((20, 20))
    power = np.abs(np.fft.fft2(u)) ** 2 / u.size
    np.testing.assert_allclose(power.sum() / u.size, np.mean(u**2), rtol=1e-12)


def test_power_law_field_rapsd_and_fitted_exponent():
    # PeriodicPowerLawField: E|fft(u)/N|^2 = P(k), so E |fft(u)|^2 / N = N P(k) and the
    # expected RAPSD is the annulus average of N P(k) (state: mean power = variance = 1).
    n, alpha = 400, 2.5
    field = PeriodicPowerLawField(n=(64, 64), alpha=alpha, k0=0.1)
    u = np.asarray(field.sample(n, key=KEY))
    f, p = S.rapsd(u)
    mu = u[0].size * field.spectrum()
    f_exact, p_exact = S.radial_average(mu)
    np.testing.assert_array_equal(f, f_exact)
    std = _annulus_std(mu, n)
    z = (p - p_exact) / std
    assert np.abs(z).max() <= 5, z
    # Dieleman's fit: the exact expected RAPSD is a discretised power law whose lowest annulus
    # (|k| in {1, sqrt 2}) is flattened, which biases the fit by -0.09 at 64x64: tolerance 0.15.
    a_exact, _ = S.fit_spectral_exponent(f, p_exact)
    a_emp, _ = S.fit_spectral_exponent(f, p)
    assert abs(a_exact - alpha) <= 0.15, a_exact
    assert abs(a_emp - a_exact) <= 0.05, (a_emp, a_exact)  # MC error ~0.01 at n = 400
    # from the second annulus on, the fit is within 0.05 of alpha
    assert abs(S.fit_spectral_exponent(f, p_exact, f_min=2 / 64)[0] - alpha) <= 0.05


def test_rapsd_matches_the_hartley_basis_coefficients():
    # z_k^2 + z_{-k}^2 = 2 |fft(u)_k|^2 / N for the unitary Hartley transform, and annuli are
    # symmetric under k -> -k, so the annulus averages of z^2 equal the RAPSD image by image.
    u = np.random.default_rng(2).standard_normal((3, 12, 12)).astype(np.float32)
    z = np.asarray(B.to_basis(u, "dft", 2), dtype=np.float64)
    np.testing.assert_allclose(S.radial_average(z**2, return_frequencies=False),
                               S.rapsd(u, return_frequencies=False, average=False), rtol=2e-5)


def test_pure_cosine_lands_in_its_annulus():
    h = w = 32
    amp, k = 0.7, (3, 4)  # |k| = 5: annulus 5, frequency 5/32 cycles per pixel
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    u = amp * np.cos(2 * np.pi * (k[0] * y / h + k[1] * x / w))
    f, p = S.rapsd(u)
    assert int(np.argmax(p)) == 4 and f[4] == 5 / 32
    count = int(np.sum(S.annulus_index((h, w)) == 4))
    # two modes +-k, each |fft| = amp N / 2, power (amp N / 2)^2 / N
    np.testing.assert_allclose(p[4], 2 * (amp * h * w / 2) ** 2 / (h * w) / count, rtol=1e-12)
    assert np.all(np.delete(p, 4) < 1e-20)
    # 1-D: a cosine at k = 6 of 40 samples
    t = np.arange(40)
    f1, p1 = S.rapsd_1d(np.cos(2 * np.pi * 6 * t / 40))
    assert f1.shape == (20,) and f1[5] == 6 / 40
    np.testing.assert_allclose(p1[5], 40 / 4, rtol=1e-12)
    assert np.all(np.delete(p1, 5) < 1e-20)


def test_rapsd_1d_white_noise():
    sigma, n, m = 0.5, 500, 64
    u = sigma * np.random.default_rng(3).standard_normal((n, m))
    f, p = S.rapsd_1d(u)
    # modes 1..31 are complex (Exp power, std sigma^2/sqrt(n)); mode 32 is real (chi^2_1)
    std = sigma**2 * np.sqrt(np.r_[np.ones(31), 2.0] / n)
    assert np.all(np.abs(p - sigma**2) <= 5 * std)


def test_fit_recovers_exact_power_laws_and_subranges():
    f = np.arange(1, 33) / 64
    a, b = S.fit_spectral_exponent(f, 3.0 * f**-2.5)
    assert abs(a - 2.5) < 1e-12 and abs(b - np.log(3.0)) < 1e-12
    # a broken power law: f^-2 below 0.1, continuous f^-4 above
    p = np.where(f < 0.1, f**-2.0, 0.1**2 * f**-4.0)
    assert abs(S.fit_spectral_exponent(f, p, f_max=0.09)[0] - 2.0) < 1e-12
    assert abs(S.fit_spectral_exponent(f, p, f_min=0.11)[0] - 4.0) < 1e-12
    # log-spaced resampling: the many high-frequency annuli do not dominate
    a_all = S.fit_spectral_exponent(f, p, n_points=20)[0]
    a_ols = -np.polyfit(np.log(f), np.log(p), 1)[0]
    assert a_all < a_ols
    with pytest.raises(ValueError, match="positive"):
        S.fit_spectral_exponent(f, np.r_[0.0, p[1:]])


def test_snr_cutoff_matches_the_closed_form():
    f = np.arange(1, 33) / 64
    for c, alpha, s2 in [(3.0, 2.5, 100.0), (0.01, 2.0, 0.05), (1.0, 1.3, 10.0)]:
        want = (c / s2) ** (1 / alpha)
        assert f[0] < want < f[-1]
        got = S.snr_cutoff(f, c * f**-alpha, s2)
        assert isinstance(got, float) and abs(got / want - 1) < 1e-12
    # vectorised over noise levels, with the out-of-band fills
    sig = 3.0 * f**-2.5
    floors = np.array([[1e-9], [100.0], [1e9]])
    out = S.snr_cutoff(f, np.broadcast_to(sig, (3, f.size)), floors, above=np.inf, below=0.0)
    np.testing.assert_allclose(out, [np.inf, (3.0 / 100) ** 0.4, 0.0], rtol=1e-12)
    assert np.isnan(S.snr_cutoff(f, sig, 1e-9)) and np.isnan(S.snr_cutoff(f, sig, 1e9))
    # the largest crossing wins for a non-monotone spectrum; a noise spectrum works too
    bump = np.where(np.abs(f - 0.3) < 0.05, 10.0, 0.1)
    assert 0.3 < S.snr_cutoff(f, bump, 1.0) < 0.36
    np.testing.assert_allclose(S.snr_cutoff(f, sig, 3.0 * f**-1.5 / 0.2**1.0), 0.2, rtol=1e-12)


def test_input_validation():
    with pytest.raises(ValueError, match="H, W"):
        S.rapsd(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2x2"):
        S.rapsd(np.zeros((1, 8)))
    with pytest.raises(ValueError, match="increasing"):
        S.snr_cutoff(np.array([0.2, 0.1]), np.ones(2), 1.0)
    with pytest.raises(ValueError, match="positive"):
        S.snr_cutoff(np.array([0.1, 0.2]), np.ones(2), 0.0)


def test_power_per_mode_parseval_and_rapsd():
    u = np.random.default_rng(5).standard_normal((3, 12, 10))
    p = S.power_per_mode(u)
    assert p.shape == u.shape
    np.testing.assert_allclose(p.sum(axis=(-2, -1)) / 120, (u**2).mean(axis=(-2, -1)), rtol=1e-12)
    np.testing.assert_allclose(S.rapsd(u, return_frequencies=False),
                               S.radial_average(p.mean(0), return_frequencies=False), rtol=1e-12)


def test_power_law_rapsd_constant_matches_the_exact_expected_rapsd():
    n, alpha = 64, 2.5
    field = PeriodicPowerLawField(n=(n, n), alpha=alpha, k0=0.1)
    f, exact = S.radial_average(n * n * field.spectrum())
    C = S.power_law_rapsd_constant(field)
    ratio = exact / (C * f ** (-alpha))
    assert np.all(np.abs(ratio[2:] - 1) < 0.07)  # the lattice, from the third annulus on
    assert np.all(ratio[:2] < 1)  # few lattice modes: below the continuum law
    with pytest.raises(ValueError, match="square"):
        S.power_law_rapsd_constant(PeriodicPowerLawField(n=(8, 16), alpha=2.0))


def test_power_law_cutoff_solves_its_equation():
    C, alpha, floor = 3.0, 2.5, 1e-3
    f0 = S.power_law_cutoff(C, alpha, floor)
    assert np.isclose(C * f0 ** (-alpha), floor, rtol=1e-12)
    np.testing.assert_allclose(S.power_law_cutoff(np.array([C, 2 * C]), alpha, floor),
                               [f0, f0 * 2 ** (1 / alpha)], rtol=1e-12)
    for tau in (1e-6, 0.5, 20.0):
        f = S.power_law_cutoff(C, alpha, floor, heat_time=tau)
        lhs = np.exp(-2 * (2 * np.pi * f) ** 2 * tau) * C * f ** (-alpha)
        assert np.isclose(lhs, floor, rtol=1e-9) and f < f0
    assert np.isclose(S.power_law_cutoff(C, alpha, floor, heat_time=1e-12), f0, rtol=1e-6)


@pytest.mark.parametrize("f, worst", [
    ([np.inf, np.inf, 0.3, 0.2, 0.0, 0.0], 0.2 / 0.3),
    ([0.2, 0.3, 0.1], 1.5),
    ([0.0, 0.1], np.inf),
    ([0.1, np.inf], np.inf),
    ([np.inf, 0.2], 0.0),
    ([0.5], 0.0),
])
def test_cutoff_max_increase(f, worst):
    assert S.cutoff_max_increase(f) == pytest.approx(worst, rel=1e-12)


# ----------------------------------------------------------------------------- the one binning


@pytest.mark.parametrize("shape, basis", [((8, 8), "dft"), ((6, 10), "dct"), ((12,), "dct")])
def test_linear_bins_brute_force(shape, basis):
    # "linear": n_bins equal-width bins over [0, f_max], every coefficient kept (the DC too);
    # the mean and the sum per bin against a loop over the bins
    f = B.radial_frequency(shape, basis)
    v = np.random.default_rng(3).standard_normal((2, *shape))
    n_bins = max(shape) // 2
    centres, mean = S.radial_average(v, f)
    _, tot = S.radial_average(v, f, statistic="sum")
    width = f.max() * (1 + 1e-9) / n_bins
    np.testing.assert_allclose(centres, (np.arange(n_bins) + 0.5) * width, rtol=1e-12)
    for b in range(n_bins):
        inside = (f >= b * width) & (f < (b + 1) * width)
        np.testing.assert_allclose(tot[:, b], v[:, inside].sum(-1), rtol=1e-12, atol=1e-12)
        if inside.any():
            np.testing.assert_allclose(mean[:, b], v[:, inside].mean(-1), rtol=1e-12)
        else:
            assert np.all(np.isnan(mean[:, b]))
    np.testing.assert_allclose(tot.sum(-1), v.reshape(2, -1).sum(-1), rtol=1e-12)


def test_annuli_brute_force_and_the_fft_grid_default():
    h, w = 10, 14
    f = S.fft_radial_frequency((h, w))
    v = np.random.default_rng(4).standard_normal((h, w))
    freqs, avg = S.radial_average(v)
    assert np.array_equal(freqs, np.arange(1, 6) / 10)
    r = np.rint(f * 10)
    for b in range(5):
        np.testing.assert_allclose(avg[b], v[r == b + 1].mean(), rtol=1e-12)
    # the same grid given as frequencies with bins="annuli" and side = min(H, W)
    np.testing.assert_allclose(S.radial_average(v, f, bins="annuli")[1], avg, rtol=1e-14)
    # DFT-basis coefficients are an FFT grid: "linear" bins of the grid equal those of the
    # basis's frequencies
    g = np.random.default_rng(5).standard_normal((8, 8))
    np.testing.assert_allclose(S.radial_average(g, bins="linear")[1],
                               S.radial_average(g, B.radial_frequency((8, 8), "dft"))[1],
                               rtol=1e-12)


def test_binning_errors():
    with pytest.raises(ValueError, match="bins must be one of"):
        S.radial_bins(np.ones(4), bins="log")
    with pytest.raises(ValueError, match="needs side"):
        S.radial_bins(np.ones(4), bins="annuli")
    with pytest.raises(ValueError, match="needs n_bins"):
        S.radial_bins(np.ones(4), bins="linear")
    with pytest.raises(ValueError, match="statistic"):
        S.radial_average(np.ones((4, 4)), statistic="max")
    with pytest.raises(ValueError, match="to match freqs"):
        S.radial_average(np.ones((4, 5)), np.ones((4, 4)))


def test_fit_spectral_exponent_jackknife_against_explicit_deletion_and_replicates():
    rng = np.random.default_rng(3)
    f = np.arange(1, 33) / 64.0
    # exponential powers around a power law (one mode per frequency): an exact MC model
    psds = 2.0 * f**-2.5 * rng.exponential(size=(50, f.size))
    a, se = S.fit_spectral_exponent_jackknife(f, psds, n_points=12)
    assert a == S.fit_spectral_exponent(f, psds.mean(0), n_points=12)[0]
    # independent computation: the deletion loop written out with np.delete
    loo = np.array([S.fit_spectral_exponent(f, np.delete(psds, i, 0).mean(0), n_points=12)[0]
                    for i in range(50)])
    assert se == pytest.approx(np.sqrt(49 / 50 * np.sum((loo - loo.mean()) ** 2)), rel=1e-10)
    # and the spread of the exponent over 400 independent replicates (se of a std: ~4 %)
    reps = [S.fit_spectral_exponent(f, (2.0 * f**-2.5 * rng.exponential(size=(50, f.size))
                                        ).mean(0), n_points=12)[0] for _ in range(400)]
    ses = [S.fit_spectral_exponent_jackknife(
        f, 2.0 * f**-2.5 * rng.exponential(size=(50, f.size)), n_points=12)[1]
        for _ in range(40)]
    assert np.mean(ses) == pytest.approx(np.std(reps, ddof=1), rel=0.2)
    with pytest.raises(ValueError):
        S.fit_spectral_exponent_jackknife(f, psds[:1])


def test_the_exponent_claim_of_spectral_autoregression_is_falsifiable():
    # alpha_hat of samples equals the protocol on the exact expected RAPSD within 3.29 jackknife
    # se, and a field of another exponent (2.4 for 2.5) is caught
    fields = {a: PeriodicPowerLawField(n=(64, 64), alpha=a, k0=0.1) for a in (2.5, 2.4)}
    f, exact = S.radial_average(64 * 64 * fields[2.5].spectrum())
    a_exact = S.fit_spectral_exponent(f, exact)[0]
    for a, ok in ((2.5, True), (2.4, False)):
        u = np.asarray(fields[a].sample(300, key=KEY), np.float64)
        a_hat, se = S.fit_spectral_exponent_jackknife(f, S.radial_average(S.power_per_mode(u))[1])
        assert (abs(a_hat - a_exact) <= 3.29 * se) is ok, (a, a_hat, a_exact, se)
