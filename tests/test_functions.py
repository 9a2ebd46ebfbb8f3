"""Input-function spaces against closed forms, and sample laws within stated statistical bounds.

Statistical tolerances are 5 standard deviations of the estimator, computed from the sample
size and the exact law; keys are fixed, so every test is deterministic.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.interpolate
import scipy.linalg
import scipy.stats

from opdiff import functions as F

KEY = jax.random.key(20240601)


def _kernel(kernel, r, length_scale, variance=1.0):
    """The closed forms, written out independently of the library."""
    s = np.abs(r) / length_scale
    if kernel == "rbf":
        return variance * np.exp(-(r**2) / (2 * length_scale**2))
    if kernel == "matern12":
        return variance * np.exp(-s)
    if kernel == "matern32":
        return variance * (1 + np.sqrt(3) * s) * np.exp(-np.sqrt(3) * s)
    return variance * (1 + np.sqrt(5) * s + 5 * s**2 / 3) * np.exp(-np.sqrt(5) * s)


# ----------------------------------------------------------------------------- GRF


@pytest.mark.parametrize("kernel", F.KERNELS)
def test_covariance_is_the_closed_form_kernel(kernel):
    grf = F.GaussianRandomField(kernel=kernel, length_scale=0.3, n_grid=57, domain=(-1.0, 2.0),
                                variance=2.5)
    x = np.linspace(-1.0, 2.0, 57)
    np.testing.assert_array_equal(grf.grid, x)
    k = grf.covariance()
    assert k.dtype == np.float64 and k.shape == (57, 57)
    np.testing.assert_allclose(k, _kernel(kernel, x[:, None] - x[None, :], 0.3, 2.5),
                               rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(np.diag(k), 2.5)


@pytest.mark.parametrize("method", F.METHODS)
@pytest.mark.parametrize("kernel", F.KERNELS)
def test_sample_covariance_matches_kernel(kernel, method):
    # Known mean 0, so S = U^T U / n is unbiased for K, and for a Gaussian field each entry
    # has std sqrt((K_ii K_jj + K_ij^2) / n). We require |S - K| < 5 std at every entry
    # (40*41/2 = 820 distinct entries, P(|Z| > 5) = 6e-7 each) and the sample mean within
    # 5 sqrt(K_ii / n). Sampling in the default float32.
    n = 20_000
    grf = F.GaussianRandomField(kernel=kernel, method=method, n_grid=40)
    u = np.asarray(grf.sample(n, key=jax.random.fold_in(KEY, F.KERNELS.index(kernel))),
                   dtype=np.float64)
    assert u.shape == (n, 40)
    k = grf.covariance()
    s = u.T @ u / n
    std = np.sqrt((np.outer(np.diag(k), np.diag(k)) + k**2) / n)
    assert np.max(np.abs(s - k) / std) < 5.0
    assert np.max(np.abs(u.mean(0)) / np.sqrt(np.diag(k) / n)) < 5.0


@pytest.mark.parametrize("method", F.METHODS)
@pytest.mark.parametrize("kernel", F.KERNELS)
def test_factor_meets_its_stated_sampling_error(kernel, method):
    # Deterministic: ||F F^T - K||_2 equals sampling_error() up to float64 rounding,
    # O(eps ||K||_2) with ||K||_2 <~ N; we allow 1e-13 ||K||_2.
    grf = F.GaussianRandomField(kernel=kernel, method=method, n_grid=100)
    k = grf.covariance()
    f = grf.factor
    err = np.linalg.norm(f @ f.T - k, 2)
    slack = 1e-13 * np.linalg.norm(k, 2)
    assert abs(err - grf.sampling_error()) < slack
    lam_max = np.linalg.eigvalsh(k)[-1]
    if method == "cholesky":
        assert grf.sampling_error() == grf.jitter
        assert grf.sampling_error("trace") == pytest.approx(100 * grf.jitter, rel=1e-12)
        assert grf.rank == 100
    else:
        assert grf.sampling_error() <= grf.kl_tol * lam_max
        assert grf.sampling_error() <= grf.sampling_error("trace")
        # trace norm of the dropped part = trace(K) - trace(F F^T) when no eigenvalue is negative
        assert grf.sampling_error("trace") >= np.trace(k) - np.sum(f * f) - slack
    if kernel == "rbf" and method == "kl":
        assert grf.rank == 16  # RBF, l = 0.2: only 16 eigenvalues above 1e-10 lambda_max


def test_rbf_cholesky_jitter():
    # The RBF matrix is numerically indefinite: jitter 0 must fail with a ValueError that
    # names jitter; the default 1e-10 factors N = 1000, l = 0.2. (DeepXDE's 1e-13 also does
    # with OpenBLAS, but only just: the smallest computed eigenvalue is -1.8e-13.)
    with pytest.raises(ValueError, match="^jitter"):
        _ = F.GaussianRandomField(method="cholesky", jitter=0.0, n_grid=200).factor
    assert F.GaussianRandomField(method="cholesky").rank == 1000
    assert F.GaussianRandomField().rank == 16  # the default KL keeps 16 modes here


def test_gaussian_sampling_keys_and_dtypes(x64):
    grf = F.GaussianRandomField(kernel="matern32", n_grid=64)
    a = grf.sample(8, key=KEY)
    assert a.shape == (8, 64) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, grf.sample(8, key=KEY))
    assert not np.allclose(a, grf.sample(8, key=jax.random.fold_in(KEY, 1)))
    b = grf.sample(8, key=KEY, dtype=jnp.float64)
    assert b.dtype == jnp.float64 and b.shape == (8, 64)
    # equal instances share the law; hashable (frozen)
    assert hash(grf) == hash(F.GaussianRandomField(kernel="matern32", n_grid=64))


def test_sampling_does_not_recompile_for_a_new_key():
    # Sampling is one jitted matmul of standard normals with the factor; a new key must reuse
    # the compiled function (the speed itself is measured in benchmarks/data.py, not here).
    grf = F.GaussianRandomField(kernel="rbf", length_scale=0.2, n_grid=200)
    grf.sample(100, key=KEY).block_until_ready()
    compiled = F._gaussian_sample._cache_size()
    for i in range(2):
        grf.sample(100, key=jax.random.fold_in(KEY, i)).block_until_ready()
    assert F._gaussian_sample._cache_size() == compiled


def test_pl_sensor_error_scales_like_inverse_m_squared_l_squared(x64):
    # Lu et al.: E max|u - u_m| ~ c / ((m-1)^2 l^2) for piecewise-linear interpolation through
    # m equispaced sensors; c ~ 0.36-0.40 at l = 0.2 (shared/reference/deeponet.md §4.5).
    # Grid of 641 points: every sensor set (m-1 | 640) is on the grid, and so is every midpoint
    # between sensors, where the error peaks. 500 samples (common to all m) give a ~2 %
    # relative error on each mean (CV of the max ~ 0.3), so the slope is known to ~0.02; the
    # window 0.2 is for the pre-asymptotic drift of c, not for noise.
    ell = 0.2
    grf = F.GaussianRandomField(length_scale=ell, n_grid=641)
    x = grf.grid
    u = grf.sample(500, key=KEY, dtype=jnp.float64)
    ms = np.array([11, 21, 41, 81])
    errs = []
    for m in ms:
        sensors = F.equispaced_sensors(m)
        u_m = F.interpolate(F.interpolate(u, x, sensors), sensors, x)
        errs.append(np.mean(np.max(np.abs(np.asarray(u) - np.asarray(u_m)), axis=1)))
    errs = np.array(errs)
    slope = np.polyfit(np.log(ms - 1), np.log(errs), 1)[0]
    assert abs(slope + 2) < 0.2, slope
    c = errs * (ms - 1) ** 2 * ell**2
    assert np.all((0.25 <= c) & (c <= 0.6)), c


# ----------------------------------------------------------------------------- periodic field


def test_periodic_spectrum_and_covariance_closed_form():
    field = F.PeriodicPowerLawField(n=64, alpha=3.0, k0=2.0, variance=1.7)
    p = field.spectrum()
    k = np.fft.fftfreq(64, 1 / 64)
    assert p[0] == 0.0 and p.sum() == pytest.approx(1.7, rel=1e-14)
    ratio = p[1:] / (k[1:] ** 2 + 4.0) ** -1.5
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-13)
    c = field.covariance()
    np.testing.assert_allclose(c, scipy.linalg.circulant(np.real(64 * np.fft.ifft(p))),
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.diag(c), 1.7, rtol=1e-14)
    np.testing.assert_array_equal(field.grid, np.arange(64) / 64)
    p2 = F.PeriodicPowerLawField(n=(8, 12), alpha=2.5).spectrum()
    k1, k2 = np.meshgrid(np.fft.fftfreq(8, 1 / 8), np.fft.fftfreq(12, 1 / 12), indexing="ij")
    expected = np.where(k1**2 + k2**2 > 0, (k1**2 + k2**2 + 1.0) ** -1.25, 0.0)
    np.testing.assert_allclose(p2, expected / expected.sum(), rtol=1e-13)


def test_power_law_spectrum_dc_conventions_and_normalisation():
    k2 = np.array([[0.0, 1.0], [4.0, 2.0]])
    raw = (k2 + 0.25) ** -1.5
    keep = F.power_law_spectrum(k2, alpha=3.0, k0=0.5, dc="keep")
    np.testing.assert_allclose(keep, raw, rtol=1e-15)  # c = 1 without a total
    assert keep[0, 0] == pytest.approx(0.5**-3.0)  # lambda_0 = c k0^-alpha
    drop = F.power_law_spectrum(k2, alpha=3.0, k0=0.5, total=2.0)
    assert drop[0, 0] == 0.0 and drop.sum() == pytest.approx(2.0, rel=1e-15)
    np.testing.assert_allclose(drop[k2 > 0], 2.0 * raw[k2 > 0] / raw[k2 > 0].sum(), rtol=1e-15)
    # k0 = 0 is fine when the DC is dropped (no infinite power)
    assert np.all(np.isfinite(F.power_law_spectrum(k2, alpha=2.0, k0=0.0, total=1.0)))
    with pytest.raises(ValueError, match="dc must be one of"):
        F.power_law_spectrum(k2, alpha=2.0, k0=1.0, dc="zero")


def test_the_oracle_field_and_the_periodic_field_share_the_spectrum(x64):
    # on a square DFT grid the two differ only at DC (kept vs dropped) and in normalisation
    from opdiff.diffusion import oracle

    n, alpha, k0 = 8, 2.5, 1.0
    p = F.PeriodicPowerLawField(n=(n, n), alpha=alpha, k0=k0).spectrum()
    lam = oracle.power_law_field((n, n), "dft", alpha=alpha, k0=k0).var
    assert p[0, 0] == 0 and lam[0, 0] == pytest.approx(lam[0, 1] * 2 ** (alpha / 2), rel=1e-12)
    np.testing.assert_allclose(lam.ravel()[1:] / p.ravel()[1:], lam[0, 1] / p[0, 1], rtol=1e-12)


@pytest.mark.parametrize("shape", [(64,), (16, 24)])
def test_periodic_empirical_spectrum_and_variance(shape):
    # |fft(u)_k / N|^2 / P(k) is Exp(1) (complex modes) or chi^2_1 (self-conjugate modes), so
    # its mean over n samples has std <= sqrt(2/n): we require all modes within 5 sqrt(2/n).
    # The grand mean of u^2 over samples and points has variance 2 sum_k P(k)^2 / n exactly
    # (the eigenvalues of the covariance are N P(k)); we require it within 5 std of the variance.
    n = 4000
    field = F.PeriodicPowerLawField(n=shape[0] if len(shape) == 1 else shape, alpha=2.5,
                                    variance=2.0)
    u = field.sample(n, key=jax.random.fold_in(KEY, len(shape)))
    assert u.shape == (n, *shape) and u.dtype == jnp.float32
    assert jnp.isrealobj(u)
    u = np.asarray(u, dtype=np.float64)
    npts = np.prod(shape)
    axes = tuple(range(1, len(shape) + 1))
    emp = np.mean(np.abs(np.fft.fftn(u, axes=axes) / npts) ** 2, axis=0)
    p = field.spectrum()
    assert emp.flat[0] < 1e-10  # the k = 0 mode is absent: every sample has mean zero
    nz = p > 0
    assert np.max(np.abs(emp[nz] / p[nz] - 1)) < 5 * np.sqrt(2 / n)
    std = np.sqrt(2 * np.sum(p**2) / n)
    assert abs(np.mean(u**2) - 2.0) < 5 * std
    if len(shape) == 2:
        assert field.grid.shape == (*shape, 2)
        np.testing.assert_array_equal(field.grid[3, 5], [3 / 16, 5 / 24])


def test_periodic_sample_covariance_1d():
    # Same entrywise 5-std bound as for the GRF.
    n = 10_000
    field = F.PeriodicPowerLawField(n=32, alpha=2.0)
    u = np.asarray(field.sample(n, key=KEY), dtype=np.float64)
    c = field.covariance()
    std = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / n)
    assert np.max(np.abs(u.T @ u / n - c) / std) < 5.0


def test_periodic_keys_and_dtype(x64):
    field = F.PeriodicPowerLawField(n=(8, 8))
    a = field.sample(3, key=KEY, dtype=jnp.float64)
    assert a.dtype == jnp.float64
    np.testing.assert_array_equal(a, field.sample(3, key=KEY, dtype=jnp.float64))
    assert not np.allclose(a, field.sample(3, key=jax.random.fold_in(KEY, 1), dtype=jnp.float64))


# ----------------------------------------------------------------------------- sinusoids


def test_sinusoids_values_and_frequency_law(x64):
    # f ~ U[0, 10): mean 5 with std 10/sqrt(12 n); sample variance 100/12 with std
    # 100/sqrt(180 n) (uniform: mu_4 - sigma^4 = a^4/80 - a^4/144 = a^4/180). Both 5 std;
    # and a KS test against U[0, 10) at level 1e-3.
    n = 20_000
    space = F.Sinusoids(f_max=10.0, n_grid=101, domain=(0.0, 2.0))
    s, f = space.sample_with_frequencies(n, key=KEY, dtype=jnp.float64)
    assert s.shape == (n, 101) and f.shape == (n,) and s.dtype == jnp.float64
    f = np.asarray(f)
    x = np.linspace(0.0, 2.0, 101)
    np.testing.assert_allclose(s, np.sin(2 * np.pi * f[:, None] * x), rtol=0, atol=1e-12)
    assert f.min() >= 0.0 and f.max() < 10.0
    assert abs(f.mean() - 5.0) < 5 * 10 / np.sqrt(12 * n)
    assert abs(f.var() - 100 / 12) < 5 * 100 / np.sqrt(180 * n)
    assert scipy.stats.kstest(f, scipy.stats.uniform(0, 10).cdf).pvalue > 1e-3
    np.testing.assert_array_equal(space.sample(n, key=KEY, dtype=jnp.float64), s)
    assert space.sample(4, key=KEY).dtype == jnp.float32
    other = space.sample(4, key=jax.random.fold_in(KEY, 1))
    assert not np.allclose(space.sample(4, key=KEY), other)


def test_every_space_is_a_function_space():
    for space in (F.GaussianRandomField(n_grid=16), F.PeriodicPowerLawField(n=16),
                  F.Sinusoids(n_grid=16)):
        assert isinstance(space, F.FunctionSpace)
        assert space.sample(2, key=KEY).shape == (2, *space.grid.shape)


# ----------------------------------------------------------------------------- sensors


def _nonuniform_grid(n=40):
    rng = np.random.default_rng(0)
    return np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, n - 2)]))


def test_linear_sensor_matrix_is_np_interp(x64):
    grid = _nonuniform_grid()
    points = np.concatenate([[0.0, 1.0, grid[7]], np.random.default_rng(1).uniform(0, 1, 50)])
    s = F.sensor_matrix(grid, points, "linear")
    assert s.shape == (53, 40)
    np.testing.assert_allclose(s.sum(1), 1.0, atol=1e-15)
    np.testing.assert_allclose(s @ (0.3 - 2.0 * grid), 0.3 - 2.0 * points, atol=1e-14)
    values = np.random.default_rng(2).normal(size=(5, 40))
    np.testing.assert_allclose(values @ s.T, np.stack([np.interp(points, grid, v) for v in values]),
                               atol=1e-14)
    np.testing.assert_array_equal(F.equispaced_sensors(5, (1.0, 3.0)), [1.0, 1.5, 2.0, 2.5, 3.0])


def test_cubic_sensor_matrix_is_scipy_not_a_knot_spline(x64):
    grid = _nonuniform_grid()
    points = np.random.default_rng(3).uniform(0, 1, 50)
    s = F.sensor_matrix(grid, points, "cubic")
    cubic = lambda x: 1.0 - 2.0 * x + 3.0 * x**2 - 4.0 * x**3  # noqa: E731
    np.testing.assert_allclose(s @ cubic(grid), cubic(points), atol=1e-12)
    values = np.random.default_rng(4).normal(size=(5, 40))
    ref = scipy.interpolate.interp1d(grid, values, kind="cubic")(points)
    np.testing.assert_allclose(values @ s.T, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(F.interpolate(values, grid, points, "cubic"), ref, atol=1e-12)


def test_interpolate_batches_jits_and_keeps_dtype():
    grid = np.linspace(0, 1, 30)
    points = F.equispaced_sensors(7)
    values = jax.random.normal(KEY, (2, 3, 30))
    out = F.interpolate(values, grid, points)
    assert out.shape == (2, 3, 7) and out.dtype == jnp.float32
    expected = np.asarray(values, np.float64) @ F.sensor_matrix(grid, points).T
    np.testing.assert_allclose(out, expected, atol=1e-6)
    jitted = jax.jit(lambda v: F.interpolate(v, grid, points, "cubic"))
    np.testing.assert_allclose(jitted(values), F.interpolate(values, grid, points, "cubic"),
                               atol=1e-6)
    # NaN is only checked on concrete values: under jit it propagates instead of raising
    bad = np.array(values)
    bad[0, 0, 0] = np.nan
    assert np.isnan(np.asarray(jitted(bad))).any()


# ----------------------------------------------------------------------------- bad input

_GRID = np.linspace(0, 1, 10)
_BAD = [
    ("length_scale", lambda: F.GaussianRandomField(length_scale=0.0)),
    ("length_scale", lambda: F.GaussianRandomField(length_scale=-0.1)),
    ("n_grid", lambda: F.GaussianRandomField(n_grid=0)),
    ("variance", lambda: F.GaussianRandomField(variance=0.0)),
    ("variance", lambda: F.GaussianRandomField(variance=-1.0)),
    ("kernel", lambda: F.GaussianRandomField(kernel="matern")),
    ("method", lambda: F.GaussianRandomField(method="svd")),
    ("jitter", lambda: F.GaussianRandomField(jitter=-1e-10)),
    ("kl_tol", lambda: F.GaussianRandomField(kl_tol=1.0)),
    ("domain", lambda: F.GaussianRandomField(domain=(1.0, 0.0))),
    ("n", lambda: F.GaussianRandomField(n_grid=8).sample(0, key=KEY)),
    ("n", lambda: F.GaussianRandomField(n_grid=8).sample(-2, key=KEY)),
    ("dtype", lambda: F.GaussianRandomField(n_grid=8).sample(2, key=KEY, dtype=jnp.int32)),
    ("norm", lambda: F.GaussianRandomField(n_grid=8).sampling_error("fro")),
    ("n", lambda: F.PeriodicPowerLawField(n=0)),
    ("n", lambda: F.PeriodicPowerLawField(n=(16,))),
    ("n", lambda: F.PeriodicPowerLawField(n=(16, 0))),
    ("n", lambda: F.PeriodicPowerLawField(n=(8, 8)).covariance()),
    ("variance", lambda: F.PeriodicPowerLawField(variance=0.0)),
    ("k0", lambda: F.PeriodicPowerLawField(k0=-1.0)),
    ("alpha", lambda: F.PeriodicPowerLawField(alpha=float("nan"))),
    ("n_samples", lambda: F.PeriodicPowerLawField(n=8).sample(0, key=KEY)),
    ("f_max", lambda: F.Sinusoids(f_max=0.0)),
    ("n_grid", lambda: F.Sinusoids(n_grid=-5)),
    ("n", lambda: F.Sinusoids(n_grid=8).sample(0, key=KEY)),
    ("n", lambda: F.Sinusoids(n_grid=8).sample_with_frequencies(0, key=KEY)),
    ("points", lambda: F.sensor_matrix(_GRID, [0.5, 1.5])),
    ("points", lambda: F.sensor_matrix(_GRID, [-0.1])),
    ("points", lambda: F.sensor_matrix(_GRID, np.zeros((2, 2)))),
    ("method", lambda: F.sensor_matrix(_GRID, [0.5], method="quadratic")),
    ("grid", lambda: F.sensor_matrix(_GRID[::-1], [0.5])),
    ("grid", lambda: F.sensor_matrix(np.zeros((3, 3)), [0.5])),
    ("grid", lambda: F.sensor_matrix(_GRID[:3], [0.5], method="cubic")),
    ("values", lambda: F.interpolate(np.zeros((4, 9)), _GRID, [0.5])),
    ("values", lambda: F.interpolate(np.full(10, np.nan), _GRID, [0.5])),
    ("values", lambda: F.interpolate(jnp.full(10, jnp.nan), _GRID, [0.5])),
    ("points", lambda: F.interpolate(np.zeros(10), _GRID, [2.0])),
    ("m", lambda: F.equispaced_sensors(0)),
    ("domain", lambda: F.equispaced_sensors(5, (0.0, 0.0))),
]


@pytest.mark.parametrize("name,call", _BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(_BAD)])
def test_bad_input_raises_value_error_naming_the_argument(name, call):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


def test_covariance_z_scores_are_standard_normal_for_a_correct_sampler():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    cov = a @ a.T / 6 + np.eye(6)
    x = rng.multivariate_normal(np.zeros(6), cov, size=(400, 2000)).reshape(400, 2000, 6)
    z = np.stack([F.covariance_z_scores(xi, cov) for xi in x])  # 400 independent replicates
    assert z.shape == (400, 6, 6)
    assert abs(z.mean()) < 0.05 and z.std(axis=0).mean() == pytest.approx(1.0, abs=0.05)
    # a wrong covariance is seen: doubling it puts the variances' z-scores far below zero
    assert np.max(np.diag(F.covariance_z_scores(x[0], 2 * cov))) < -5
