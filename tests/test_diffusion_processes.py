"""Forward processes and bases (opdiff.diffusion.transforms / .processes) against independent oracles.

Oracles: explicit transform matrices (the cas kernel, scipy's DCT), numpy FFT heat solutions,
the closed forms of score_sde's VP / sub-VP / VE SDEs, Chen et al.'s OU process, IHDM and
blurring diffusion, central finite differences of the schedules (Fokker–Planck moment ODEs)
and Monte-Carlo marginals with z-score bounds. Float64 throughout (``x64`` fixture) except
where a dtype is the point. Fixed keys and seeds.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft

from opdiff.diffusion import transforms as tr
from opdiff.diffusion import processes as P

SHAPES = [(6,), (4, 6)]


def _basis_matrix(shape, basis):
    """B with z = B x on flattened samples: column j is the transform of the unit vector e_j."""
    n = math.prod(shape)
    eye = jnp.eye(n, dtype=jnp.float64).reshape(n, *shape)
    return np.asarray(tr.to_basis(eye, basis, len(shape))).reshape(n, n).T


def _cas_matrix(shape):
    """The unitary multi-dimensional Hartley matrix cas(2 pi k.j / n) / sqrt(N), written out."""
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    idx = np.stack([g.ravel() for g in grids], 1)  # [N, ndim]
    phase = 2 * np.pi * (idx / np.asarray(shape)) @ idx.T  # sum_i k_i j_i / n_i
    return (np.cos(phase) + np.sin(phase)) / math.sqrt(math.prod(shape))


# ----------------------------------------------------------------------------- bases


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("basis", tr.BASES)
def test_basis_round_trip_orthonormal_and_parseval(x64, shape, basis):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((3, *shape)))
    z = tr.to_basis(x, basis, len(shape))
    assert z.shape == x.shape and z.dtype == x.dtype
    np.testing.assert_allclose(tr.from_basis(z, basis, len(shape)), x, atol=1e-13)
    # Parseval per sample (batch axis untouched)
    np.testing.assert_allclose(np.sum(np.asarray(z) ** 2, axis=tuple(range(1, z.ndim))),
                               np.sum(np.asarray(x) ** 2, axis=tuple(range(1, x.ndim))),
                               rtol=1e-13)
    B = _basis_matrix(shape, basis)
    n = math.prod(shape)
    np.testing.assert_allclose(B @ B.T, np.eye(n), atol=1e-13)
    np.testing.assert_allclose(B.T @ B, np.eye(n), atol=1e-13)
    # from_basis is the transpose
    zz = rng.standard_normal(shape)
    back = np.asarray(tr.from_basis(jnp.asarray(zz), basis, len(shape)))
    np.testing.assert_allclose(back.ravel(), B.T @ zz.ravel(), atol=1e-13)


@pytest.mark.parametrize("shape", SHAPES)
def test_dft_basis_is_the_explicit_hartley_and_dct_is_scipy(x64, shape):
    np.testing.assert_allclose(_basis_matrix(shape, "dft"), _cas_matrix(shape), atol=1e-13)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(tr.to_basis(jnp.asarray(x), "dct", len(shape)),
                               scipy.fft.dctn(x, type=2, norm="ortho"), atol=1e-13)
    np.testing.assert_allclose(_basis_matrix(shape, "identity"), np.eye(math.prod(shape)))
    # the Hartley transform is an involution
    np.testing.assert_allclose(tr.to_basis(tr.to_basis(jnp.asarray(x), "dft", len(shape)), "dft",
                                           len(shape)), x, atol=1e-13)


@pytest.mark.parametrize("shape", [(8,), (4, 6)])
def test_hartley_diagonalises_symmetric_circulant_covariances(x64, shape):
    # A stationary covariance on the torus: C[j, l] = c(j - l mod n), c = ifftn(P) with a
    # symmetric spectrum P(k) = P(-k). Its eigenvalues are the spectrum itself.
    freqs = np.meshgrid(*[np.fft.fftfreq(n, 1.0 / n) for n in shape], indexing="ij")
    k2 = sum(f**2 for f in freqs)
    spec = (1.0 + k2) ** -1.3 + 0.05 * np.cos(freqs[0]) ** 2
    kernel = np.fft.ifftn(spec).real
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    idx = np.stack([g.ravel() for g in grids], 1)
    diff = (idx[:, None, :] - idx[None, :, :]) % np.asarray(shape)
    C = kernel[tuple(diff[..., i] for i in range(len(shape)))]
    np.testing.assert_allclose(C, C.T, atol=1e-15)
    B = _basis_matrix(shape, "dft")
    D = B @ C @ B.T
    np.testing.assert_allclose(D - np.diag(np.diag(D)), 0, atol=1e-13)
    np.testing.assert_allclose(np.diag(D), spec.ravel(), rtol=1e-12)
    # the DCT does not diagonalise a periodic covariance: the check can fail
    Bc = _basis_matrix(shape, "dct")
    Dc = Bc @ C @ Bc.T
    assert np.max(np.abs(Dc - np.diag(np.diag(Dc)))) > 1e-2


def test_laplacian_eigenvalues_and_radial_frequency():
    n1, n2 = 4, 6
    i, j = np.meshgrid(np.arange(n1), np.arange(n2), indexing="ij")
    # IHDM: lambda_{n,m} = pi^2 (n^2/N1^2 + m^2/N2^2) (= pi^2 (n^2+m^2)/N^2 when square)
    np.testing.assert_allclose(tr.laplacian_eigenvalues((n1, n2), "dct"),
                               np.pi**2 * (i**2 / n1**2 + j**2 / n2**2), rtol=1e-14)
    np.testing.assert_allclose(tr.laplacian_eigenvalues((8, 8), "dct")[3, 5],
                               np.pi**2 * (9 + 25) / 64, rtol=1e-14)
    k1 = np.fft.fftfreq(n1, 1 / n1)[:, None]
    k2 = np.fft.fftfreq(n2, 1 / n2)[None, :]
    lam = (2 * np.pi * k1 / n1) ** 2 + (2 * np.pi * k2 / n2) ** 2
    np.testing.assert_allclose(tr.laplacian_eigenvalues((n1, n2), "dft"), lam, rtol=1e-14)
    np.testing.assert_allclose(tr.radial_frequency((n1, n2), "dft"), np.sqrt(lam) / (2 * np.pi),
                               rtol=1e-14)
    assert np.all(tr.laplacian_eigenvalues((n1, n2), "identity") == 0)
    # the dft eigenvalue is that of the periodic spectral Laplacian: check on a cas mode
    x = np.arange(16)
    mode = np.cos(2 * np.pi * 3 * x / 16) + np.sin(2 * np.pi * 3 * x / 16)
    second = np.fft.ifft(-(2 * np.pi * np.fft.fftfreq(16)) ** 2 * np.fft.fft(mode)).real
    np.testing.assert_allclose(-second, tr.laplacian_eigenvalues((16,), "dft")[3] * mode,
                               atol=1e-12)


def test_basis_bad_input():
    with pytest.raises(ValueError, match="basis must be one of"):
        tr.check_basis("fft")
    with pytest.raises(ValueError, match="basis must be one of"):
        tr.to_basis(jnp.ones(4), "wavelet", 1)
    with pytest.raises(ValueError, match="basis must be one of"):
        tr.angular_frequencies((4,), "dst")


# ----------------------------------------------------------------------------- closed forms

TS = np.array([0.01, 0.3, 0.7, 1.0])


def _vp_log_a(t, bmin, bmax):
    return -0.25 * t**2 * (bmax - bmin) - 0.5 * t * bmin


def _evaluate(proc, t):
    t = jnp.asarray(t, jnp.float64)
    return (np.asarray(proc.scale(t)), np.asarray(proc.std(t)), np.asarray(proc.drift(t)),
            np.asarray(proc.diffusion2(t)))


@pytest.mark.parametrize("bmin, bmax", [(0.1, 20.0), (0.5, 7.0)])
def test_vp_and_sub_vp_closed_forms(x64, bmin, bmax):
    vp = P.vp((3,), beta_min=bmin, beta_max=bmax)
    sub = P.sub_vp((3,), beta_min=bmin, beta_max=bmax)
    for t in TS:
        beta = bmin + t * (bmax - bmin)
        a = math.exp(_vp_log_a(t, bmin, bmax))
        integral = bmin * t + 0.5 * (bmax - bmin) * t**2  # = -2 log a
        sc, sd, dr, g2 = _evaluate(vp, t)
        np.testing.assert_allclose(sc, a, rtol=1e-13)
        np.testing.assert_allclose(sd, math.sqrt(1 - a * a), rtol=1e-13)
        np.testing.assert_allclose(dr, -beta / 2, rtol=1e-12)
        np.testing.assert_allclose(g2, beta, rtol=1e-10)
        sc, sd, dr, g2 = _evaluate(sub, t)
        np.testing.assert_allclose(sc, a, rtol=1e-13)
        np.testing.assert_allclose(sd, 1 - math.exp(-integral), rtol=1e-12)
        np.testing.assert_allclose(dr, -beta / 2, rtol=1e-12)
        np.testing.assert_allclose(g2, beta * (1 - math.exp(-2 * integral)), rtol=1e-10)
        assert float(vp.level(t)) == pytest.approx(math.sqrt(1 - a * a) / a, rel=1e-12)


def test_ve_and_ou_closed_forms(x64):
    smin, smax, T = 0.02, 30.0, 2.0
    ve = P.ve((3,), sigma_min=smin, sigma_max=smax, T=T)
    ou = P.ou((3,))
    for t in TS * T:
        sigma = smin * (smax / smin) ** (t / T)
        sc, sd, dr, g2 = _evaluate(ve, t)
        np.testing.assert_allclose(sc, 1.0, rtol=0, atol=0)
        np.testing.assert_allclose(sd, sigma, rtol=1e-13)
        np.testing.assert_allclose(dr, 0.0, atol=0)
        np.testing.assert_allclose(g2, 2 * sigma**2 * math.log(smax / smin) / T, rtol=1e-11)
        sc, sd, dr, g2 = _evaluate(ou, t)
        np.testing.assert_allclose(sc, math.exp(-t), rtol=1e-13)
        np.testing.assert_allclose(sd**2, 1 - math.exp(-2 * t), rtol=1e-12)
        np.testing.assert_allclose(dr, -1.0, rtol=1e-12)
        np.testing.assert_allclose(g2, 2.0, rtol=1e-10)
    assert ou.T == 5.0
    m, w = ve.prior()
    np.testing.assert_allclose(m, 0)
    np.testing.assert_allclose(w, smax**2, rtol=1e-12)


@pytest.mark.parametrize("basis", ["dct", "dft"])
def test_heat_dissipation_mode_decay_and_sde(x64, basis):
    shape, bmin, bmax, sigma = (4, 6), 0.5, 6.0, 0.02
    proc = P.heat_dissipation(shape, basis=basis, sigma=sigma, blur_min=bmin, blur_max=bmax)
    lam = tr.laplacian_eigenvalues(shape, basis)
    for t in TS:
        sb = bmin * (bmax / bmin) ** t
        tau, dtau = 0.5 * sb**2, sb**2 * math.log(bmax / bmin)
        assert float(proc.heat_time(t)) == pytest.approx(tau, rel=1e-13)
        sc, sd, dr, g2 = _evaluate(proc, t)
        np.testing.assert_allclose(sc, np.exp(-lam * tau), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(sd, sigma, rtol=1e-14)
        np.testing.assert_allclose(dr, -lam * dtau, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(g2, 2 * lam * dtau * sigma**2, rtol=1e-9, atol=1e-15)
        assert float(proc.level(t)) == pytest.approx(tau, rel=1e-13)
    assert sc.flat[0] == 1.0  # the DC coefficient never decays
    with pytest.raises(ValueError, match="needs the data's coefficient mean and var"):
        proc.prior()
    m, w = proc.prior(np.ones(shape), 2 * np.ones(shape))
    aT = np.exp(-lam * 0.5 * bmax**2)
    np.testing.assert_allclose(m, aT, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(w, 2 * aT**2 + sigma**2, rtol=1e-12)


@pytest.mark.parametrize("shape", [(16,), (8, 6)])
def test_heat_mean_is_the_fft_heat_semigroup_and_keeps_the_image_mean(x64, shape):
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(shape) + 0.7
    proc = P.heat_dissipation(shape, basis="dft", blur_min=0.3, blur_max=3.0)
    procc = P.heat_dissipation(shape, basis="dct", blur_min=0.3, blur_max=3.0)
    kappa2 = sum(g**2 for g in np.meshgrid(
        *[2 * np.pi * np.fft.fftfreq(n) for n in shape], indexing="ij"))
    mcos2 = sum(g**2 for g in np.meshgrid(*[np.pi * np.arange(n) / n for n in shape],
                                          indexing="ij"))
    for t in (0.0, 0.4, 1.0):
        tau = 0.5 * (0.3 * 10.0**t) ** 2
        ref = np.fft.ifftn(np.fft.fftn(x0) * np.exp(-tau * kappa2)).real  # periodic e^{tau Lap}
        mean, std = proc.marginal(jnp.asarray(x0), t)
        np.testing.assert_allclose(mean, ref, atol=1e-12)
        np.testing.assert_allclose(std, 0.01)
        assert float(jnp.mean(mean)) == pytest.approx(x0.mean(), abs=1e-13)
        refc = scipy.fft.idctn(scipy.fft.dctn(x0, norm="ortho") * np.exp(-tau * mcos2),
                               norm="ortho")  # reflective boundaries
        meanc, _ = procc.marginal(jnp.asarray(x0), t)
        np.testing.assert_allclose(meanc, refc, atol=1e-12)
        assert float(jnp.mean(meanc)) == pytest.approx(x0.mean(), abs=1e-13)
    # the semigroup actually smooths: total variation of the signal decreases strictly
    m1, _ = proc.marginal(jnp.asarray(x0), 0.5)
    assert np.abs(np.diff(np.asarray(m1), axis=0)).sum() < np.abs(np.diff(x0, axis=0)).sum()


def test_blurring_closed_form_and_d_min_floor(x64):
    shape, bmax, dmin, lmax = (8, 8), 4.0, 1e-3, 10.0
    proc = P.blurring(shape, basis="dct", blur_max=bmax, d_min=dmin, logsnr_max=lmax)
    lam = tr.laplacian_eigenvalues(shape, "dct")
    b = math.atan(math.exp(-0.5 * lmax))
    a = math.atan(math.exp(0.5 * lmax)) - b
    for t in TS:
        logsnr = -2 * math.log(math.tan(a * t + b))
        alpha2 = 1 / (1 + math.exp(-logsnr))
        tau = 0.5 * (bmax * math.sin(0.5 * math.pi * t) ** 2) ** 2
        d = (1 - dmin) * np.exp(-lam * tau) + dmin
        sc, sd, _, g2 = _evaluate(proc, t)
        np.testing.assert_allclose(sc, math.sqrt(alpha2) * d, rtol=1e-12)
        np.testing.assert_allclose(sd**2, 1 - alpha2, rtol=1e-12)
        assert np.all(g2 >= 0)
    assert float(proc.level(0.0)) == pytest.approx(math.exp(-5.0), rel=1e-10)  # logsnr(0) = 10
    assert float(proc.level(1.0)) == pytest.approx(math.exp(5.0), rel=1e-10)  # logsnr(T) = -10
    # the floor: d_T = a_T / alpha_T >= d_min, and it is reached at the highest frequency
    dT = np.asarray(proc.scale(1.0)) / math.sqrt(1 / (1 + math.exp(lmax)))
    assert np.all(dT >= dmin * (1 - 1e-12))
    assert dT.flat[-1] == pytest.approx(dmin, rel=1e-9)
    assert dT.flat[0] == pytest.approx(1.0, rel=1e-12)
    nofloor = P.Process("b0", shape, "dct", "cosine", blur="sin2", blur_max=bmax, d_min=0.0)
    lam_max = lam.flat[-1]
    np.testing.assert_allclose(nofloor.scale(1.0).ravel()[-1],
                               math.sqrt(1 / (1 + math.exp(lmax)))
                               * math.exp(-lam_max * bmax**2 / 2),
                               rtol=1e-10)


@pytest.mark.parametrize("noise, gamma",
                         [("pink", 1.0), ("brown", 2.0), ("blue", -1.0), (0.5, 0.5)])
def test_coloured_noise_spectrum(x64, noise, gamma):
    shape = (8, 8)
    proc = P.coloured(shape, noise, basis="dft", k0=1.0)
    vp = P.vp(shape, basis="dft")
    np.testing.assert_allclose(proc.noise_power.mean(), 1.0, rtol=1e-14)
    k = np.meshgrid(*[np.fft.fftfreq(n, 1 / n) for n in shape], indexing="ij")
    p = (k[0] ** 2 + k[1] ** 2 + 1.0) ** (-gamma / 2)
    for t in (0.2, 0.9):
        std = np.asarray(proc.std(t))
        # the std ratio between any two frequencies is the power-law ratio
        np.testing.assert_allclose(std / std[0, 0], np.sqrt(p / p[0, 0]), rtol=1e-12)
        np.testing.assert_allclose(np.mean(std**2), float(vp.variance(t)[0, 0]), rtol=1e-12)
        np.testing.assert_allclose(proc.scale(t), vp.scale(t), rtol=1e-14)
    m, w = proc.prior()
    # the prior is the stationary law N(0, diag c^2) (score_sde's N(0, I) for white noise)
    np.testing.assert_allclose(w, proc.noise_power, rtol=1e-12)
    # a custom array is normalised to mean one
    custom = P.coloured(shape, 3.0 * p)
    np.testing.assert_allclose(custom.noise_power, p / p.mean(), rtol=1e-13)
    assert not custom.isotropic and vp.isotropic


# ----------------------------------------------------------------------------- SDE consistency


def _all_processes():
    return {
        "vp": P.vp((4, 4), basis="dft"),
        "sub_vp": P.sub_vp((4, 4)),
        "ou": P.ou((4, 4)),
        "ve": P.ve((4, 4)),
        "heat": P.heat_dissipation((4, 4), basis="dct", blur_max=3.0),
        "blurring": P.blurring((4, 4), basis="dft"),
        "coloured": P.coloured((4, 4), "pink"),
        "cosine": P.Process("cos", (4, 4), "dft", "cosine"),
    }


@pytest.mark.parametrize("name", list(_all_processes()))
def test_moment_odes_by_finite_differences(x64, name):
    # z_t = a z_0 + s eps solves dz = f z dt + g dW iff d log a/dt = f and ds^2/dt = 2 f s^2 + g^2.
    proc = _all_processes()[name]
    eps = 1e-5 * proc.T
    for frac in (0.15, 0.5, 0.85):
        t = frac * proc.T
        f, g2 = np.asarray(proc.drift(t)), np.asarray(proc.diffusion2(t))
        dlog_a = (np.asarray(proc.log_scale(t + eps))
                  - np.asarray(proc.log_scale(t - eps))) / (2 * eps)
        ds2 = (np.asarray(proc.variance(t + eps)) - np.asarray(proc.variance(t - eps))) / (2 * eps)
        s2 = np.asarray(proc.variance(t))
        np.testing.assert_allclose(f, dlog_a, rtol=1e-6, atol=1e-6 * np.max(np.abs(f)) + 1e-12)
        scale = np.max(np.abs(2 * f * s2)) + np.max(np.abs(g2))
        np.testing.assert_allclose(ds2, 2 * f * s2 + g2, rtol=1e-6, atol=1e-6 * scale)
        assert np.all(g2 >= -1e-12 * scale)  # the SNR never increases: the SDE exists
        assert float(proc.level(t + 0.01 * proc.T)) > float(proc.level(t))


# ----------------------------------------------------------------------------- marginals by MC


@pytest.mark.parametrize("name, t", [("vp", 0.4), ("heat", 0.5), ("coloured", 0.6)])
def test_forward_sample_matches_the_marginal(x64, name, t):
    shape, n = (8, 8), 4000
    proc = {"vp": P.vp(shape, basis="dft"),
            "heat": P.heat_dissipation(shape, basis="dct", sigma=0.05, blur_max=2.0),
            "coloured": P.coloured(shape, "pink", basis="dft")}[name]
    rng = np.random.default_rng(4)
    x0 = jnp.asarray(rng.standard_normal(shape) + 0.5)
    z0 = np.asarray(proc.to_basis(x0))
    x = proc.sample(jax.random.key(5), jnp.broadcast_to(x0, (n, *shape)), t)
    z = np.asarray(proc.to_basis(x))
    a, s = np.asarray(proc.scale(t)), np.asarray(proc.std(t))
    zscore = (z.mean(0) - a * z0) / (s / math.sqrt(n))
    assert np.max(np.abs(zscore)) <= 4.5
    assert np.sum(zscore**2) <= 64 + 5 * math.sqrt(128)  # chi^2_64
    ratio = z.var(0) / s**2
    assert np.max(np.abs(ratio - 1)) <= 5 * math.sqrt(2 / n)
    assert abs(ratio.mean() - 1) <= 5 * math.sqrt(2 / (64 * n))
    # marginal() agrees with the same moments (sample space mean)
    mean, std = proc.marginal(x0, t)
    np.testing.assert_allclose(np.asarray(proc.to_basis(mean)), a * z0, atol=1e-12)
    np.testing.assert_allclose(std, s, rtol=1e-14)
    # one time per sample: the two halves follow their own marginals
    ts = jnp.where(jnp.arange(n) < n // 2, 0.25, 0.75)
    zt = np.asarray(proc.to_basis(proc.sample(jax.random.key(6), jnp.broadcast_to(x0, (n, *shape)),
                                              ts)))
    for half, tt in ((slice(0, n // 2), 0.25), (slice(n // 2, n), 0.75)):
        a, s = np.asarray(proc.scale(tt)), np.asarray(proc.std(tt))
        zs = (zt[half].mean(0) - a * z0) / (s / math.sqrt(n // 2))
        assert np.max(np.abs(zs)) <= 4.5
        assert np.max(np.abs(zt[half].var(0) / s**2 - 1)) <= 5 * math.sqrt(2 / (n // 2))


def test_sample_prior_moments_and_dtype(x64):
    proc = P.coloured((8, 8), "brown")
    x = proc.sample_prior(jax.random.key(7), 4000, dtype=jnp.float64)
    assert x.shape == (4000, 8, 8) and x.dtype == jnp.float64
    z = np.asarray(proc.to_basis(x))
    m, w = proc.prior()
    assert np.max(np.abs(z.mean(0) / np.sqrt(np.asarray(w) / 4000))) <= 4.5
    assert np.max(np.abs(z.var(0) / np.asarray(w) - 1)) <= 5 * math.sqrt(2 / 4000)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: P.heat_dissipation((8,), sigma=-1.0), "sigma must be finite and positive"),
        (lambda: P.vp((8,), beta_min=-0.1), "beta_min must be finite and positive"),
        (lambda: P.vp((8,), beta_min=5.0, beta_max=1.0), "beta_max must be >= beta_min"),
        (lambda: P.ve((8,), sigma_min=5.0, sigma_max=1.0), "sigma_max must be > sigma_min"),
        (lambda: P.vp((8,), t_min=1.0, T=1.0), "t_min must be < T"),
        (lambda: P.vp((8,), t_min=2.0), "t_min must be < T"),
        (lambda: P.vp((8,), T=float("nan")), "T must be finite"),
        (lambda: P.heat_dissipation((8,), basis="identity"), "needs basis 'dft' or 'dct'"),
        (lambda: P.blurring((8,), basis="identity"), "needs basis 'dft' or 'dct'"),
        (lambda: P.blurring((8,), d_min=1.0), r"d_min must be in \[0, 1\)"),
        (lambda: P.heat_dissipation((8,), blur_min=3.0, blur_max=2.0),
         "blur_max must be > blur_min"),
        (lambda: P.coloured((8,), np.ones(7)), r"noise_power must have the sample shape \(8,\)"),
        (lambda: P.coloured((8,), -np.ones(8)), "noise_power must be finite and positive"),
        (lambda: P.coloured((8,), "purple"), "noise must be one of"),
        (lambda: P.vp((8,), basis="wavelet"), "basis must be one of"),
        (lambda: P.Process("x", (8,), schedule="linear"), "schedule must be one of"),
        (lambda: P.Process("x", (8,), blur="box", basis="dct"), "blur must be one of"),
        (lambda: P.vp(()), "shape must be a non-empty tuple"),
        (lambda: P.vp((4, 0)), "shape must be a non-empty tuple"),
    ],
)
def test_process_bad_input(make, fragment):
    with pytest.raises(ValueError, match=fragment):
        make()


def test_process_type_errors():
    with pytest.raises(TypeError, match="beta_min must be a real number"):
        P.vp((8,), beta_min="fast")
    with pytest.raises(TypeError, match="shape must be an int or a tuple"):
        P.vp(None)


def test_sample_and_marginal_shape_and_dtype_errors():
    proc = P.vp((8, 8), basis="dft")
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"x0 must have shape \[batch, 8, 8\].*got \(4, 8, 7\)"):
        proc.sample(key, jnp.zeros((4, 8, 7)), 0.5)
    with pytest.raises(ValueError, match=r"x0 must have shape \[batch, 8, 8\].*got \(8, 8\)"):
        proc.sample(key, jnp.zeros((8, 8)), 0.5)
    with pytest.raises(ValueError, match=r"x0 must have shape \(8, 8\).*got \(4, 8, 8\)"):
        proc.marginal(jnp.zeros((4, 8, 8)), 0.5)
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \[4\]"):
        proc.sample(key, jnp.zeros((4, 8, 8)), jnp.full(3, 0.5))
    with pytest.raises(TypeError, match="x0 must be a floating-point array"):
        proc.sample(key, jnp.zeros((4, 8, 8), jnp.int32), 0.5)
    with pytest.raises(TypeError, match="x0 must be a floating-point array"):
        proc.marginal(np.zeros((8, 8), dtype=int), 0.5)
