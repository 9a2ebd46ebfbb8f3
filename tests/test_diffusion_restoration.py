"""Oracle tests of opdiff.diffusion.restoration (heat-blur inverse problems, 2x SR, posterior
sampling, the PSNR/SSIM table) and of the inverse_heat_restoration config."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import inverse_heat_restoration as X
from opdiff.diffusion import oracle, processes
from opdiff.diffusion import restoration as E
from opdiff.diffusion.baselines import to_basis64


@pytest.fixture(scope="module")
def proc4():
    return processes.heat_dissipation((4, 4))


@pytest.fixture(scope="module")
def proc8():
    return processes.heat_dissipation((8, 8))


def _dense_dct(shape):
    """The orthonormal DCT matrix B (z = B x) built from numpy's definition, column by column."""
    d = int(np.prod(shape))
    eye = np.eye(d).reshape(d, *shape)
    import scipy.fft
    return scipy.fft.dctn(eye, type=2, norm="ortho", axes=(1, 2)).reshape(d, d).T


def _random_field(shape, seed=0):
    rng = np.random.default_rng(seed)
    return oracle.GaussianField(shape, "dct", rng.normal(size=shape) * 0.5,
                                rng.uniform(0.05, 2.0, size=shape))


def test_heat_scale_and_blur_time_match_the_process(proc8):
    for w in (0.5, 0.7, 1.0, 1.5, 8.0):
        t = E.blur_time(proc8, w)
        assert float(proc8.heat_time(t)) == pytest.approx(w * w / 2, rel=1e-5)
        np.testing.assert_allclose(E.heat_scale(proc8, t), np.asarray(proc8.scale(t)),
                                   rtol=2e-5, atol=1e-30)
    ts = np.array([0.0, 0.3, 1.0])
    assert E.heat_scale(proc8, ts).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="width"):
        E.blur_time(proc8, 0.2)
    with pytest.raises(ValueError, match="heat-dissipation"):
        E.heat_scale(processes.vp((8, 8)), 0.1)


def test_wiener_equals_dense_gaussian_posterior_mean(proc4):
    """Wiener (DCT) = m + S A^T (A S A^T + s^2 I)^-1 (y - A m) with dense S, A built from the DCT
    matrix: the exact posterior mean of the Gaussian, computed independently."""
    field = _random_field((4, 4))
    t = E.blur_time(proc4, 1.2)
    B = _dense_dct((4, 4))
    S = B.T @ np.diag(field.var.ravel()) @ B
    m = B.T @ field.mean.ravel()
    # the blur of the process's heat time tau(t) (float32, = 1.2^2 / 2 to ~1e-7: see
    # test_heat_scale_and_blur_time_match_the_process); the algebra is checked to 1e-8
    tau = float(proc4.heat_time(t))
    A = B.T @ np.diag(np.exp(-proc4.eigenvalues.ravel() * tau)) @ B
    s2 = proc4.sigma**2
    y = np.random.default_rng(1).normal(size=(5, 16))
    dense = m + (y - A @ m) @ np.linalg.solve(A @ S @ A.T + s2 * np.eye(16), A @ S).T
    z = to_basis64(y.reshape(5, 4, 4), "dct", 2)
    ours = E.idct64(proc4, E.wiener_coeffs(field, proc4, z, t))
    np.testing.assert_allclose(ours.reshape(5, 16), dense, atol=1e-8)
    lib = np.asarray(field.denoiser(proc4)(jnp.asarray(y.reshape(5, 4, 4), jnp.float32), t))
    np.testing.assert_allclose(lib.reshape(5, 16), dense, atol=2e-4)
    # the generic LMMSE helper with the dense heat operator gives the same estimate
    A_op = E.dense_operator(lambda e: E.heat_blur(proc4, e, t), (4, 4))
    np.testing.assert_allclose(A_op, A, atol=1e-12)
    np.testing.assert_allclose(E.lmmse(m, S, A_op, s2, y), dense, atol=1e-8)


def _mmse(field, process, t):
    return float(np.sum(oracle.mmse(field, process, t)))


def test_library_dct_field_matches_float64_moments(proc8):
    """oracle.field_from_samples (the field the experiment uses; its DCT runs in JAX's float32)
    equals the float64 scipy moments to float32 accuracy, and its MMSE the closed form."""
    x = np.random.default_rng(2).normal(size=(50, 8, 8))
    z = to_basis64(x, "dct", 2)
    lib = oracle.field_from_samples(x, "dct")
    np.testing.assert_allclose(lib.mean, z.mean(0), atol=1e-5)
    np.testing.assert_allclose(lib.var, np.maximum(z.var(0), 1e-6 * z.var(0).mean()), rtol=1e-4)
    a, s2 = E.heat_scale(proc8, 0.3), proc8.sigma**2
    assert _mmse(lib, proc8, 0.3) == pytest.approx(
        float(np.sum(lib.var * s2 / (a**2 * lib.var + s2))), rel=1e-4)


def test_t_star_recovers_the_level_of_a_heat_blur(proc8):
    x = np.asarray(_random_field((8, 8)).sample(jax.random.key(0), 400), np.float64)
    n_grid = 401
    ts = np.linspace(0, 1, n_grid)
    for t0 in (ts[37], 0.25, 0.61):  # on the grid and between grid points
        t_star, grid, err = E.match_heat_level(proc8, x, E.heat_blur(proc8, x, t0), n_grid)
        assert abs(t_star - t0) <= 0.5 * (grid[1] - grid[0]) + 1e-12
        assert err.min() >= -1e-9 and err.shape == grid.shape
    with pytest.raises(ValueError, match="target"):
        E.match_heat_level(proc8, x, x[:, :4], 11)


def test_observation_level_is_not_raised_for_consistent_observations(proc8):
    """Observations that *are* heat blurs plus the process noise need no further blur: the
    selected level is the given one (re-blurring only mis-states the noise)."""
    field = _random_field((8, 8), seed=3)
    x = np.asarray(field.sample(jax.random.key(1), 2000), np.float64)
    t0 = 0.3
    y = np.asarray(processes.heat_dissipation((8, 8)).sample(jax.random.key(2),
                                                             jnp.asarray(x, jnp.float32), t0))
    t_obs, grid, err = E.select_observation_level(proc8, field, x, y, t0, 141)
    assert t_obs <= t0 + 2 * (grid[1] - grid[0])
    # the objective at t0 is the Gaussian MMSE (the Wiener filter is exact here)
    assert err[0] == pytest.approx(_mmse(field, proc8, t0), rel=0.1)


def test_pooling_and_upsampling_shapes_and_consistency():
    x = np.random.default_rng(4).normal(size=(5, 8, 8))
    lr = E.avg_pool(x)
    assert lr.shape == (5, 4, 4)
    np.testing.assert_allclose(lr.mean(axis=(1, 2)), x.mean(axis=(1, 2)))
    for method in ("nearest", "bilinear", "bicubic"):
        assert E.upsample(lr, 2, method).shape == (5, 8, 8)
    np.testing.assert_allclose(E.avg_pool(E.upsample(lr, 2, "nearest")), lr)
    const = np.full((1, 4, 4), 0.3)
    for method in ("bilinear", "bicubic"):
        np.testing.assert_allclose(E.upsample(const, 2, method), 0.3, atol=1e-4)
    with pytest.raises(ValueError, match="factor"):
        E.avg_pool(np.zeros((1, 7, 8)))
    with pytest.raises(ValueError, match="method"):
        E.upsample(lr, 2, "lanczos")


def test_lmmse_is_consistent_with_an_exact_observation():
    """With no noise the LMMSE estimate reproduces the observation exactly: P x_hat = y."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 4, 4))
    flat = x.reshape(300, -1)
    P = E.dense_operator(E.avg_pool, (4, 4))
    assert P.shape == (4, 16)
    y = E.avg_pool(x[:7]).reshape(7, -1)
    est = E.lmmse(flat.mean(0), np.cov(flat, rowvar=False), P, 0.0, y)
    np.testing.assert_allclose(est @ P.T, y, atol=1e-10)
    with pytest.raises(ValueError, match="shapes"):
        E.lmmse(np.zeros(3), np.eye(3), P, 0.0, y)


def test_naive_inverse_is_exact_without_noise_and_its_error_is_predicted(proc8):
    x = np.random.default_rng(6).normal(size=(4, 8, 8))
    t = E.blur_time(proc8, 0.7)
    np.testing.assert_allclose(E.naive_inverse(proc8, E.heat_blur(proc8, x, t), t), x,
                               atol=1e-8)
    pred, sd1 = E.naive_mse_prediction(proc8, t)
    a = E.heat_scale(proc8, t)
    assert pred == pytest.approx(float(np.sum(proc8.sigma**2 / a**2)))
    assert sd1 > 0


def test_posterior_samples_cost_twice_the_mmse_on_gaussian_data(proc4):
    """Exact denoiser, Gaussian data: sample MSE / posterior-mean MSE is near
    2 - MMSE(t_min)/MMSE(t) (the ancestral sampler on a fine grid; it under-disperses on coarse
    grids: about 1.66 at 20 steps, 1.86 at 64, 1.95 at 200 for this field)."""
    field = _random_field((4, 4), seed=7)
    t = E.blur_time(proc4, 1.0)
    n = 3000
    x = np.asarray(field.sample(jax.random.key(3), n), np.float32)
    y = np.asarray(proc4.sample(jax.random.key(4), jnp.asarray(x), t))
    smp = E.posterior_samples(field.denoiser(proc4), proc4, y, t, jax.random.key(5), k=1,
                              steps=200)
    assert smp.shape == (1, n, 4, 4)
    pm = E.idct64(proc4, E.wiener_coeffs(field, proc4, to_basis64(y, "dct", 2), t))
    ratio = np.mean((smp[0] - x) ** 2) / np.mean((pm - x) ** 2)
    theory = 2 - _mmse(field, proc4, 0.0) / _mmse(field, proc4, t)
    assert ratio == pytest.approx(theory, abs=0.1)
    # the same measurement by the library helper (its own draws; the same compiled sampler)
    r, se = E.gaussian_sampling_ratio(proc4, field, t, jax.random.key(6), n, k=1, steps=200)
    assert r == pytest.approx(theory, abs=0.1) and 0 < se < 0.05


def test_sampler_ratio_exact_against_sampler_runs(proc4):
    """The exact expected ratio of the discretised sampler (its Gaussian law) against real
    sampler runs with the exact denoiser (3000 images, 2 draws each): within 4 standard errors
    at 20 steps, where it is far from the exact-sampling value; near that value at 400 steps."""
    field = _random_field((4, 4), seed=7)
    t = E.blur_time(proc4, 1.0)
    exact = E.sampler_ratio_exact(proc4, field, t, steps=20)
    r, se = E.gaussian_sampling_ratio(proc4, field, t, jax.random.key(8), 3000, k=2, steps=20)
    assert abs(r - exact) <= 4 * se
    theory = 2 - _mmse(field, proc4, proc4.t_min) / _mmse(field, proc4, t)
    assert theory - exact > 10 * se  # the 20-step sampler under-disperses: a real difference
    assert E.sampler_ratio_exact(proc4, field, t, steps=400) == pytest.approx(theory, abs=0.03)


def test_ratio_of_means_and_paired_difference():
    """The delta-method SE against the spread of the ratio over 2000 independent data sets."""
    rng = np.random.default_rng(3)
    def draw():
        v = rng.gamma(4.0, 1.0, size=200)
        return 2.0 * v + rng.normal(size=200), v
    r, se = E.ratio_of_means(*draw())
    reps = [E.ratio_of_means(*draw())[0] for _ in range(2000)]
    assert r == pytest.approx(2.0, abs=4 * se) and se == pytest.approx(np.std(reps), rel=0.2)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert E.paired_difference(a, b) == pytest.approx(
        ((a - b).mean(), (a - b).std(ddof=1) / np.sqrt(50)))
    with pytest.raises(ValueError, match="paired"):
        E.ratio_of_means([1.0, 2.0], [1.0])


def test_table_markdown_layout():
    rows = [("This image", {"wiener": (31.784, 0.85771), "post_mean": (32.0, 0.9)}),
            ("Test mean (3)", {"wiener": (28.43, 0.8114), "post_mean": (29.0, 0.85)})]
    md = E.table_markdown(rows, ("observation", "wiener", "post_mean"))
    lines = md.splitlines()
    assert lines[0].startswith("| | Observation | Wiener (DCT) | Ours: posterior mean |")
    assert "| This image | – | 31.78 / 0.8577 | 32.00 / 0.9000 |" in lines
    assert len(lines) == 4


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="upsample"):
        X.Config(upsample="lanczos")
    with pytest.raises(ValueError, match="blur_widths"):
        X.Config(blur_widths=(1.0, 0.7))
    with pytest.raises(ValueError, match="blur_min"):
        X.Config(blur_widths=(0.5, 1.0))
    with pytest.raises(ValueError, match="prng"):
        X.Config(prng="mt19937")
    with pytest.raises(ValueError, match="datasets"):
        X.Config(datasets=("mnist",))


def test_summarize_show_indices_and_table_rows():
    v = np.random.default_rng(8).normal(size=17)
    s = E.summarize({"a": v})
    assert s["a"] == pytest.approx(v.mean()) and s["a_se"] == pytest.approx(
        np.std(v, ddof=1) / np.sqrt(17))
    assert E.show_indices([3, 3, 1, 3, 7, 1, 2], 3, first=1) == [1, 2, 4]
    row = {"this_image": {"wiener": [30.0, 0.9]},
           "methods": {"wiener": {"psnr": 28.0, "ssim": 0.8}}}
    rows = E.table_rows("digits", {"SR 2x": row}, 5)
    assert rows == [("digits SR 2x: This image", {"wiener": (30.0, 0.9)}),
                    ("digits SR 2x: Test mean (5)", {"wiener": (28.0, 0.8)})]


@pytest.fixture(scope="module")
def gaussian_tasks(proc8):
    """Both tasks on Gaussian data with the field's exact denoiser standing in for the model."""
    field = _random_field((8, 8), seed=9)
    x_train = np.asarray(field.sample(jax.random.key(10), 400), np.float32)
    x0 = np.asarray(field.sample(jax.random.key(11), 40), np.float32)
    B = _dense_dct((8, 8))
    mu, cov = B.T @ field.mean.ravel(), B.T @ np.diag(field.var.ravel()) @ B
    exact = field.denoiser(proc8)
    den = (jax.jit(exact), exact)
    opts = dict(k=2, steps=4, method="ancestral")
    deb = E.deblur_task(den, proc8, field, mu, cov, x0, 1.0, jax.random.key(12),
                        gaussian_reference=False, **opts)
    sr = E.sr_task(den, proc8, field, mu, cov, x_train, x0, jax.random.key(13),
                   upsampler="nearest", t_grid=41, **opts)
    return deb, sr, x0


def test_deblur_task_with_the_exact_denoiser(gaussian_tasks, proc8):
    """With the true covariance the full-covariance LMMSE *is* the Wiener (DCT) filter, the
    exact denoiser's posterior mean equals it too (float32), and the naive inverse's error
    matches its prediction."""
    deb, _, x0 = gaussian_tasks
    est = deb["est"]
    np.testing.assert_allclose(est["lmmse"], est["wiener"], atol=1e-9)
    np.testing.assert_allclose(est["post_mean"], est["wiener"], atol=2e-4)
    assert deb["samples"].shape == (2, *x0.shape)
    assert deb["t"] == pytest.approx(E.blur_time(proc8, 1.0))
    row = E.task_summary(deb, 0)
    assert abs(row["naive_z"]) < 5
    assert abs(row["post_mean_minus_wiener_psnr"]) < 1e-3
    assert row["ratio_gaussian_reference"] is None
    assert row["ratio_gaussian_sampler"] == pytest.approx(
        E.sampler_ratio_exact(proc8, _random_field((8, 8), seed=9), deb["t"], steps=4))
    assert row["paired"]["wiener-lmmse"]["sq_err"][0] == pytest.approx(0.0, abs=1e-9)
    assert set(row["paired"]) == {"post_mean-wiener", "wiener-lmmse"}
    assert row["sample_over_mean_mse_se"] > 0
    assert row["ratio_gaussian_theory"] == pytest.approx(
        2 - _mmse(_random_field((8, 8), seed=9), proc8, proc8.t_min)
        / _mmse(_random_field((8, 8), seed=9), proc8, deb["t"]))
    assert row["methods"]["wiener"]["sq_err"] == pytest.approx(
        np.mean(np.sum((est["wiener"] - x0) ** 2, axis=(1, 2))))


def test_sr_task_levels_and_estimates(gaussian_tasks, proc8):
    _, sr, x0 = gaussian_tasks
    assert 0 <= sr["t_star"] <= sr["t"] <= proc8.T
    np.testing.assert_allclose(E.avg_pool(sr["obs"]), E.avg_pool(x0), atol=1e-6)
    # the LMMSE from the exact low-resolution image reproduces it (ridge 1e-6)
    np.testing.assert_allclose(E.avg_pool(sr["est"]["lmmse"]), E.avg_pool(x0), atol=1e-3)
    row = E.task_summary(sr, 1)
    assert set(row["literal_t_star"]) == {"wiener", "post_mean"}
    assert row["blur_width_px"] == pytest.approx(np.sqrt(2 * float(proc8.heat_time(sr["t"]))))


def _results(wiener_mse=2.0, ref=1.77):
    """A minimal results tree for the experiment's claims: one deblur task and SR."""
    def methods(**mse):
        return {m: {"psnr": 20.0, "psnr_se": 0.1, "sq_err": v} for m, v in mse.items()}
    paired = {k: {"psnr": [0.5, 0.1], "sq_err": [0.5, 0.05]} for k in (
        "post_mean-wiener", "wiener-lmmse", "bicubic-wiener", "bicubic-lmmse",
        "post_mean-bicubic")}
    deblur = dict(kind="deblur", t=0.25, blur_width_px=1.0, paired=paired,
                  methods=methods(wiener=wiener_mse, lmmse=1.2, post_mean=1.4, naive=500.0),
                  ratio_gaussian_theory=1.98, ratio_gaussian_sampler=1.76,
                  ratio_gaussian_reference=ref, ratio_gaussian_reference_se=0.02,
                  sample_over_mean_mse=2.6, sample_over_mean_mse_se=0.04,
                  naive_mse_predicted=500.0, naive_mse_measured=510.0, naive_mse_se=30.0)
    sr = dict(kind="sr", t=0.4, blur_width_px=1.5, paired=paired,
              methods=methods(wiener=11.0, lmmse=5.8, post_mean=7.0, bicubic=12.0))
    return {"datasets": {"digits": dict(trivial_mean_image={"psnr": 11.4, "psnr_se": 0.05},
                                        total_variance=18.8,
                                        tasks={"deblur 1px": deblur, "SR 2x": sr})}}


def test_the_experiment_claims_fail_on_violating_results():
    """Every bound and equality of the experiment can fail: Wiener below the LMMSE by more than
    2 paired SE, and a Gaussian-reference ratio 4+ SE off the sampler's exact one."""
    ok = X.claims(X.Config(), _results())
    assert all(c.holds for c in ok) and {c.kind for c in ok} == {
        "finding", "lower_bound", "equality"}
    bad = X.claims(X.Config(), _results(wiener_mse=1.0, ref=1.9))
    failed = [c.statement for c in bad if not c.holds]
    assert len(failed) == 2
    assert failed[0].startswith("digits deblur 1px: Wiener (DCT) MSE >= LMMSE")
    assert failed[1].startswith("digits deblur 1px: Gaussian data, exact denoiser")
