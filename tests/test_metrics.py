"""Oracles for opdiff.metrics: hand computations, exact identities, an independent sqrtm,
scikit-image reference numbers, and Monte-Carlo limits with stated tolerances."""

import jax
import numpy as np
import pytest
from scipy import linalg, special

from opdiff import metrics
from opdiff.diffusion import laws
from opdiff.metrics import (
    frechet_distance,
    moment_kl_diagonal,
    psnr,
    sliced_wasserstein,
    spectrum_distance,
    ssim,
)


def _pattern():
    """Deterministic smooth-ish 16x20 test pair (no RNG, so the reference numbers are stable)."""
    i, j = np.meshgrid(np.arange(16.0), np.arange(20.0), indexing="ij")
    x = 0.5 + 0.4 * np.sin(0.7 * i + 0.3 * j * j / 7)
    y = x + 0.1 * np.cos(1.3 * i * j / 5 + 0.2)
    return x, y


# ------------------------------------------------------------------------------------ PSNR


def test_psnr_hand_2x2():
    x = np.array([[0.0, 0.5], [1.0, 0.25]])
    y = np.array([[0.1, 0.5], [0.8, 0.25]])
    mse = (0.1**2 + 0.2**2) / 4  # = 0.0125
    assert psnr(x, y, data_range=1.0) == pytest.approx(10 * np.log10(1 / mse), rel=1e-14)
    assert psnr(x, y, data_range=2.0) == pytest.approx(10 * np.log10(4 / 0.0125), rel=1e-14)


def test_psnr_batch_and_identical():
    x = np.random.default_rng(0).uniform(size=(3, 4, 5))
    y = x.copy()
    y[1] += 0.1
    out = psnr(x, y, data_range=1.0)
    assert out.shape == (3,)
    assert np.isinf(out[0]) and np.isinf(out[2])
    assert out[1] == pytest.approx(20.0, rel=1e-12)  # 10 log10(1 / 0.01)
    assert np.isinf(psnr(x[0], x[0], data_range=1.0))


# ------------------------------------------------------------------------------------ SSIM


def test_ssim_identity_symmetry_noise():
    x, y = _pattern()
    assert ssim(x, x, data_range=1.0) == pytest.approx(1.0, abs=1e-12)
    assert ssim(x, y, data_range=1.0) == pytest.approx(ssim(y, x, data_range=1.0), abs=1e-15)
    noisy = x + 0.2 * np.random.default_rng(1).normal(size=x.shape)
    assert ssim(x, noisy, data_range=1.0) < 0.9


def test_ssim_constant_images_luminance_only():
    a, b, r = 0.3, 0.7, 1.0
    c1 = (0.01 * r) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # sigmas are 0: contrast term = C2/C2
    x, y = np.full((2, 12, 12), a), np.full((2, 12, 12), b)
    # rtol 1e-11: the local variances E[x^2] - mu^2 carry ~1e-17 round-off against C2 ~ 1e-3.
    np.testing.assert_allclose(ssim(x, y, data_range=r), expected, rtol=1e-11)
    np.testing.assert_allclose(ssim(x, y, data_range=r, gaussian=False), expected, rtol=1e-11)


def test_ssim_matches_scikit_image():
    # Reference numbers from scikit-image 0.26.0 (one-off cross-check, not a dependency):
    #   skimage.metrics.structural_similarity(x, y, data_range=R, use_sample_covariance=False,
    #       gaussian_weights=True, sigma=1.5)                     -> 0.9653054273427232
    #       gaussian_weights=False, win_size=7                    -> 0.9674591815893633
    #       gaussian_weights=True, sigma=1.0 (R = 2)              -> 0.9497155348627739
    x, y = _pattern()
    assert ssim(x, y, data_range=1.0) == pytest.approx(0.9653054273427232, abs=1e-12)
    assert ssim(x, y, data_range=1.0, gaussian=False) == pytest.approx(0.9674591815893633,
                                                                        abs=1e-12)
    assert ssim(x, y, data_range=2.0, sigma=1.0) == pytest.approx(0.9497155348627739,
                                                                  abs=1e-12)


# ------------------------------------------------------------------------- sliced Wasserstein


def test_sw_1d_shift_is_exact():
    x = np.random.default_rng(2).normal(size=(500, 1))
    for p in (1, 2, 3):
        assert sliced_wasserstein(x, x + 0.7, key=jax.random.key(0), p=p) == pytest.approx(
            0.7, rel=1e-12)


def test_sw_scaled_set_identity_and_unequal_sizes():
    x = np.random.default_rng(3).normal(size=(300, 2, 3))  # trailing dims flattened: d = 6
    key = jax.random.key(1)
    base = sliced_wasserstein(x, np.zeros((1, 2, 3)), key=key)  # n != m path (m = 1)
    # Same directions, monotone map t -> 2.5 t per slice: SW(x, 2.5 x) = 1.5 SW(x, 0) exactly.
    assert sliced_wasserstein(x, 2.5 * x, key=key) == pytest.approx(1.5 * base, rel=1e-12)
    # Every sample duplicated: the same empirical law, exactly 0 through quantile matching.
    assert sliced_wasserstein(x, np.repeat(x, 2, axis=0), key=key) == pytest.approx(0, abs=1e-12)
    # Symmetric, and deterministic in the key.
    y = x[:200] + 0.3
    assert sliced_wasserstein(x, y, key=key) == pytest.approx(
        sliced_wasserstein(y, x, key=key), rel=1e-12)
    assert sliced_wasserstein(x, y, key=key) == sliced_wasserstein(x, y, key=key)


def test_sw_shift_in_d_dims_and_same_law():
    rng = np.random.default_rng(4)
    d, c = 8, 2.0
    x = rng.normal(size=(400, d))
    u = np.zeros(d)
    u[0] = 1.0
    # W_2 per slice is |c theta.u| exactly; E(theta.u)^2 = 1/d, so SW_2 -> |c|/sqrt(d). With
    # L = 4096 directions the relative MC sd of SW_2 is ~ sqrt(2/L)/2 ~ 1.1%: tolerance 5%.
    sw = sliced_wasserstein(x, x + c * u, key=jax.random.key(5), n_projections=4096)
    assert sw == pytest.approx(c / np.sqrt(d), rel=0.05)
    # Two samples of the same law: the empirical floor is ~0.05 at n ~ 2000-3000 in d = 4
    # (measured over 10 seeds: max 0.056); a 0.5 shift of one coordinate gives ~0.25.
    a, b = rng.normal(size=(2000, 4)), rng.normal(size=(3000, 4))
    key = jax.random.key(6)
    assert sliced_wasserstein(a, b, key=key) < 0.1
    assert sliced_wasserstein(a, b + 0.5 * np.eye(4)[0], key=key) > 0.15


# ------------------------------------------------------------------------- Fréchet distance


def test_fd_zero_and_exact_shift():
    f = np.random.default_rng(7).normal(size=(500, 6)) @ np.diag([1, 2, 0.5, 1, 3, 0.1])
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-10)
    shift = np.array([0.3, -1.0, 0.0, 2.0, 0.5, 0.1])
    # Equal covariances: the trace term vanishes, FD = ||shift||^2 (round-off only).
    assert frechet_distance(f, f + shift) == pytest.approx(shift @ shift, abs=1e-10)
    assert frechet_distance(f, f + 2 * shift) == pytest.approx(4 * shift @ shift, abs=1e-10)


def test_fd_vs_scipy_sqrtm():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(400, 5))
    b = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 0.4
    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((ma - mb) ** 2) + np.trace(ca + cb - 2 * np.real(linalg.sqrtm(ca @ cb)))
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


# ------------------------------------------------------------------------ spectrum distance


def test_spectrum_distance_exact_and_white_noise():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(64, 32, 32))
    assert spectrum_distance(x, x) == 0.0
    # Scaling by c multiplies every power by c^2: exactly |log10 c^2|.
    assert spectrum_distance(x, 3.0 * x) == pytest.approx(np.log10(9.0), rel=1e-12)
    # Independent white noise, variances 1 and 4: |log10 4| in expectation. Per-annulus
    # estimates over 64-128 images have relative sd <= ~9% (annulus 1) and far less above;
    # the RMS over 16 annuli is within 0.01 decades of log10 4 (measured error ~1e-4).
    y = 2.0 * rng.normal(size=(128, 32, 32))
    assert spectrum_distance(x, y) == pytest.approx(np.log10(4.0), abs=0.01)


# ------------------------------------------------------------------- moment-matched KL


def test_moment_kl_bias_formula():
    # Samples from the target itself: E[KL_hat] = d/(2n) + d/2 [ln((n-1)/2) - psi((n-1)/2)].
    rng = np.random.default_rng(10)
    n, d = 20, 4000
    mean, var = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    z = mean + np.sqrt(var) * rng.normal(size=(n, d))
    h = (n - 1) / 2
    expected = d / (2 * n) + d / 2 * (np.log(h) - special.digamma(h))
    # Sum of d iid terms each with sd ~ 0.05 at n = 20: sd of the sum ~ 3.2 (~3% of ~205).
    assert moment_kl_diagonal(z, mean, var) == pytest.approx(expected, rel=0.08)
    # Known mismatch dominates the bias: a mean offset of 1 sd in every coordinate.
    big = moment_kl_diagonal(z, mean - np.sqrt(var), var)
    assert big == pytest.approx(d / 2 + expected, rel=0.05)
    # Broadcasting scalars over image-shaped samples.
    imgs = rng.normal(size=(50, 4, 4))
    assert moment_kl_diagonal(imgs, 0.0, 1.0) == pytest.approx(
        moment_kl_diagonal(imgs.reshape(50, 16), np.zeros(16), np.ones(16)), rel=1e-14)


# ------------------------------------------------------------------------------ bad input


def test_bad_input_names_the_argument():
    x = np.zeros((2, 8, 8))
    with pytest.raises(ValueError, match="x and y"):
        psnr(x, np.zeros((2, 8, 9)), data_range=1.0)
    with pytest.raises(ValueError, match="x must"):
        ssim(np.zeros(8), np.zeros(8), data_range=1.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, data_range=0.0)
    with pytest.raises(TypeError, match="x must be real"):
        psnr(x + 1j, x, data_range=1.0)
    with pytest.raises(TypeError, match="y must"):
        ssim(x, x.astype(bool), data_range=1.0)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x, x, data_range=1.0)
    with pytest.raises(ValueError, match="window must be odd"):
        ssim(x, x, data_range=1.0, window=4)
    with pytest.raises(ValueError, match="x must be finite"):
        psnr(np.full((4, 4), np.nan), np.zeros((4, 4)), data_range=1.0)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="trailing shape"):
        sliced_wasserstein(np.zeros((5, 3)), np.zeros((5, 4)), key=key)
    with pytest.raises(ValueError, match="y must have shape"):
        sliced_wasserstein(np.zeros((5, 3)), np.zeros(3), key=key)
    with pytest.raises(ValueError, match="p must be >= 1"):
        sliced_wasserstein(np.zeros((5, 3)), np.zeros((5, 3)), key=key, p=0.5)
    with pytest.raises(TypeError, match="n_projections"):
        sliced_wasserstein(np.zeros((5, 3)), np.zeros((5, 3)), key=key, n_projections=2.0)
    with pytest.raises(ValueError, match="feature dimension"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="feat_x must have shape"):
        frechet_distance(np.zeros((5, 3, 1)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="feat_y must have shape"):
        frechet_distance(np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="image size"):
        spectrum_distance(np.ones((3, 8, 8)), np.ones((3, 8, 10)))
    with pytest.raises(ValueError, match="zero power"):
        spectrum_distance(np.ones((3, 8, 8)), np.random.default_rng(0).normal(size=(3, 8, 8)))
    with pytest.raises(ValueError, match="var must broadcast"):
        moment_kl_diagonal(np.zeros((5, 3)), 0.0, np.ones(4))
    with pytest.raises(ValueError, match="z must have shape"):
        moment_kl_diagonal(np.zeros((1, 3)), 0.0, 1.0)


def test_all_exports():
    assert set(metrics.__all__) == {"psnr", "ssim", "sliced_wasserstein", "frechet_distance",
                                    "spectrum_distance", "moment_kl_diagonal", "knn_kl",
                                    "image_metrics", "binomial_se", "chance_bound",
                                    "conditional_sample_metrics", "within_class_diversity",
                                    "gaussian_moment_z", "spread_ratio", "class_diversities",
                                    "frechet_distance_se"}
    assert all(callable(getattr(metrics, name)) for name in metrics.__all__)


def test_knn_kl_against_the_exact_gaussian_kl():
    # KL(N(0, I) || N(0.5, 1.3^2 I)) in 2-D, exact 0.2644; 4000 samples each, fixed seed.
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (4000, 2))
    y = rng.normal(0.5, 1.3, (4000, 2))
    exact = laws.kl_diagonal(0.0, 1.0, np.full(2, 0.5), np.full(2, 1.69))
    assert exact == pytest.approx(0.26437, abs=1e-4)
    assert abs(metrics.knn_kl(x, y) - exact) <= 0.05
    # two samples of one law: near 0 (the estimator can go negative)
    assert abs(metrics.knn_kl(x, rng.normal(0.0, 1.0, (4000, 2)))) <= 0.05
    with pytest.raises(ValueError, match="same dimension"):
        metrics.knn_kl(x, y[:, :1])
    with pytest.raises(ValueError, match="more than k=5"):
        metrics.knn_kl(x[:5], y)
    with pytest.raises(TypeError, match="k must be an int"):
        metrics.knn_kl(x, y, k=2.5)


# ------------------------------------------------------------------ learned image models


def test_image_metrics_is_the_stated_composition_with_clipping():
    rng = np.random.default_rng(7)
    x_train = rng.uniform(-1, 1, (60, 8, 8)).astype(np.float32)
    x_test = rng.uniform(-1, 1, (40, 8, 8)).astype(np.float32)
    samples = (2.0 * rng.normal(size=(50, 8, 8))).astype(np.float32)  # some beyond +-1.5
    proj = rng.normal(size=(64, 5))

    def feats(x):
        return np.asarray(x, np.float64).reshape(len(x), -1) @ proj

    key = jax.random.key(0)
    got = metrics.image_metrics(samples, x_train, x_test, feats, key=key)
    s = np.clip(samples, -1.5, 1.5)
    assert got["n_samples"] == 50
    assert got["fd"] == frechet_distance(feats(s), feats(x_train))
    assert got["fd_same_n"] == frechet_distance(feats(s[:40]), feats(x_train))
    assert got["fd_data"] == frechet_distance(feats(x_test), feats(x_train))
    assert got["sliced_w2"] == sliced_wasserstein(s[:40], x_test, key=key)
    assert got["sliced_w2_data"] == sliced_wasserstein(x_train[:40], x_test, key=key)
    assert got["spectrum_distance"] == spectrum_distance(s, x_test)
    assert got["spectrum_distance_data"] == spectrum_distance(x_train, x_test)
    for name, fx in (("fd", feats(s)), ("fd_same_n", feats(s[:40])), ("fd_data", feats(x_test))):
        kb = jax.random.fold_in(key, {"fd": 1, "fd_data": 2, "fd_same_n": 3}[name])
        assert got[f"{name}_se"] == metrics.frechet_distance_se(fx, feats(x_train), key=kb)


def test_binomial_se_and_chance_bound_by_hand():
    assert metrics.binomial_se(0.2, 100) == pytest.approx(0.04)
    assert metrics.binomial_se(1.0, 10) == 0.0
    assert metrics.chance_bound(100) == pytest.approx(0.1 + 5 * 0.03)
    assert metrics.chance_bound(48, n_classes=4, z=2.0) == pytest.approx(0.25 + 2 * 0.0625)


def test_within_class_diversity_against_numpy_corrcoef():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(23, 4, 5))
    y = rng.integers(0, 3, 23)
    y[0] = 3  # a class with one image: skipped
    pv, dec = [], []
    for c in range(3):
        xc = x[y == c].reshape(-1, 20)
        r = np.corrcoef(xc)
        m = len(xc)
        pv.append(np.var(xc, axis=0).mean())
        dec.append(1 - (r.sum() - m) / (m * (m - 1)))
    got = metrics.within_class_diversity(x, y)
    assert got == pytest.approx((np.mean(pv), np.mean(dec)), rel=1e-12)
    # contrast invariance of the decorrelation: an affine map of each image's grey levels
    a = rng.uniform(0.5, 2.0, (23, 1, 1))
    assert metrics.within_class_diversity(a * x + 3.0, y)[1] == pytest.approx(got[1], rel=1e-10)
    with pytest.raises(ValueError, match="two images"):
        metrics.within_class_diversity(x[:3], np.arange(3))
    cls, pvc, decc = metrics.class_diversities(x, y)  # the per-class values behind the mean
    assert cls.tolist() == [0, 1, 2]
    np.testing.assert_allclose(pvc, pv, rtol=1e-12)
    np.testing.assert_allclose(decc, dec, rtol=1e-12)


def test_frechet_distance_se_matches_the_spread_over_independent_draws():
    # The oracle: the standard deviation of FD over 300 independent sample sets (n = 200,
    # k = 3, a Gaussian off the reference's mean and scale) against a fixed reference. The
    # bootstrap SE of one sample set estimates it; averaged over 20 sets it must agree within
    # 20 % (the bootstrap's own spread over sets is ~15 % per set at n_boot = 100, and the
    # bootstrap of a biased estimator is slightly conservative).
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(2000, 3))

    def draw(r):
        return 0.3 + 1.2 * r.normal(size=(200, 3))

    sd = np.std([frechet_distance(draw(rng), ref) for _ in range(300)], ddof=1)
    boot = np.mean([metrics.frechet_distance_se(draw(rng), ref, key=jax.random.key(i))
                    for i in range(20)])
    assert boot == pytest.approx(sd, rel=0.2)
    # deterministic in the key; a different key gives a different estimate
    x = draw(rng)
    k = jax.random.key(5)
    assert metrics.frechet_distance_se(x, ref, key=k) == metrics.frechet_distance_se(x, ref,
                                                                                      key=k)
    with pytest.raises(ValueError, match="n_boot"):
        metrics.frechet_distance_se(x, ref, key=k, n_boot=1)
    with pytest.raises(ValueError, match="same feature dimension"):
        metrics.frechet_distance_se(x, ref[:, :2], key=k)


def test_conditional_sample_metrics_is_the_stated_composition():
    rng = np.random.default_rng(9)
    x = (1.5 * rng.normal(size=(40, 8, 8))).astype(np.float32)
    y = np.tile(np.arange(4), 10)
    pred = y.copy()
    pred[:6] = (pred[:6] + 1) % 4
    f_x, f_train = rng.normal(size=(40, 3)), rng.normal(size=(70, 3))
    x_test = rng.uniform(-1, 1, (30, 8, 8))
    key = jax.random.key(1)
    got = metrics.conditional_sample_metrics(x, y, pred, f_x, f_train, x_test, key=key)
    xc = np.clip(x, -1.5, 1.5)
    assert got["accuracy"] == 34 / 40 and got["accuracy_se"] == metrics.binomial_se(0.85, 40)
    assert got["fd"] == frechet_distance(f_x, f_train)
    assert got["fd_se"] == metrics.frechet_distance_se(f_x, f_train,
                                                       key=jax.random.fold_in(key, 1))
    assert got["decorrelation_per_class"] == metrics.class_diversities(x, y)[2].tolist()
    assert got["sliced_w2"] == sliced_wasserstein(xc[:30], x_test, key=key)
    assert got["spectrum_distance"] == spectrum_distance(xc, x_test)
    assert (got["pixel_var"], got["decorrelation"]) == metrics.within_class_diversity(x, y)
    assert got["overshoot"] == pytest.approx(np.mean(np.maximum(np.abs(x) - 1, 0)), rel=1e-6)
