"""opdiff.diffusion.denoiser_error (the maths of experiments/denoiser_vs_mmse.py) against
independent computations.

- ``rank_p_floor`` against a brute-force eigendecomposition of the dense sample-space covariance
  of :math:`D^*(x_t)-c\\,x_t` (no use of the diagonal formula), against the dense error of the
  explicit rank-``p`` map that attains it, and against the direct tail sum without the square
  root of ``deeponet_bounds.pca_floor``; ``p >= d`` gives the MMSE; monotone in ``p``.
- ``linear_filter_mse`` with the Wiener gain is the oracle's MMSE; ``scalar_wiener_gain`` is the
  skip gain of :class:`opdiff.diffusion.preconditioned.Preconditioned`, and an untrained
  ``scalar_scale_denoisers`` model is the scalar Wiener filter.
- ``evaluate_levels`` / ``error_spectrum`` on the exact Wiener denoiser agree with the closed-form
  MMSE (total and per coefficient) within Monte-Carlo error.
- ``kl_estimator_null`` against ``metrics.moment_kl_diagonal`` run on real Gaussian samples and
  ``kl_bias_at_zero`` (the closed form of the estimator's mean at KL = 0); ``sample_kl`` is the
  estimator read against its reference; ``learned_sample_kl`` with the exact denoiser lands
  inside the simulated null law of ``sample_kl_reference``.

Nothing here trains a network. Float64 (``x64`` fixture) where stated; tolerances where used.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff import metrics
from opdiff.diffusion import denoiser_error as de
from opdiff.diffusion import oracle, processes
from opdiff.diffusion.preconditioned import Preconditioned

SHAPE = (4, 6)
D = math.prod(SHAPE)


def _setup(t=0.3):
    field = oracle.power_law_field(SHAPE, "dft", alpha=2.0, mean=0.3)
    proc = processes.vp(SHAPE, basis="dft")
    a = float(np.asarray(proc.scale(t)).ravel()[0])
    s2 = float(np.asarray(proc.variance(t)).ravel()[0])
    return field, proc, a, s2


def _dense(field, proc, a, s2, c):
    """Sample-space covariance of x0, of x_t, the Wiener matrix W and Cov(W x_t - c x_t)."""
    eye = np.eye(D).reshape(D, *SHAPE)
    B = np.asarray(proc.to_basis(jnp.asarray(eye)), np.float64).reshape(D, D).T  # z = B x
    np.testing.assert_allclose(B @ B.T, np.eye(D), atol=1e-12)  # orthonormal
    S0 = B.T @ np.diag(field.var.ravel()) @ B
    C = a**2 * S0 + s2 * np.eye(D)
    W = a * S0 @ np.linalg.inv(C)
    M = W - c * np.eye(D)
    return S0, C, W, M @ C @ M.T


@pytest.mark.parametrize("t", [0.02, 0.3, 0.8])
@pytest.mark.parametrize("skip", [False, True])
def test_rank_p_floor_matches_dense_eigendecomposition_and_is_attained(x64, t, skip):
    field, proc, a, s2 = _setup(t)
    c = float(de.scalar_wiener_gain(proc, t, 1.0).ravel()[0]) if skip else 0.0
    S0, C, W, cov_y = _dense(field, proc, a, s2, c)
    mmse_dense = np.trace(S0 - a * S0 @ np.linalg.inv(C) @ S0 * a)
    nu, U = np.linalg.eigh(cov_y)
    nu, U = nu[::-1], U[:, ::-1]
    for p in (1, 3, 7, D - 1):
        want = mmse_dense + nu[p:].sum()
        got = de.rank_p_floor(field, proc, t, p, skip_gain=c)
        assert got == pytest.approx(want, rel=1e-9)
        # the map c x + P_p (W - c) x attains it: dense error trace
        P = U[:, :p] @ U[:, :p].T
        Mp = c * np.eye(D) + P @ (W - c * np.eye(D))
        R = np.eye(D) - a * Mp
        err = np.trace(R @ S0 @ R.T) + s2 * np.trace(Mp @ Mp.T)
        assert err == pytest.approx(want, rel=1e-9)


def test_rank_p_floor_is_the_direct_tail_sum_to_round_off():
    """Through deeponet_bounds.pca_floor (a square root, then squared) the floor equals the
    direct sum of the sorted tail to a few ulps."""
    field, proc, _, _ = _setup()
    for t in (1e-3, 0.07, 0.6, 1.0):
        a, s2 = (np.asarray(f(t), np.float64) for f in (proc.scale, proc.variance))
        v = a**2 * field.var + s2
        for c in (0.0, np.asarray(de.scalar_wiener_gain(proc, t, 0.9))):
            nu = np.sort(((a * field.var / v - c) ** 2 * v).ravel())[::-1]
            for p in (1, 5, 16):
                direct = float(np.sum(field.var * s2 / v)) + float(np.sum(nu[p:]))
                assert de.rank_p_floor(field, proc, t, p, skip_gain=c) == pytest.approx(
                    direct, rel=1e-13)
    floors = de.rank_p_floors(field, proc, [0.1, 0.5], 3, 0.9)
    assert floors.shape == (2,) and floors[1] == de.rank_p_floor(
        field, proc, 0.5, 3, skip_gain=de.scalar_wiener_gain(proc, 0.5, 0.9))


def test_rank_p_floor_is_the_mmse_for_p_at_least_d_and_decreases_in_p(x64):
    field, proc, _, _ = _setup(0.3)
    mmse = float(np.sum(oracle.mmse(field, proc, 0.3)))
    for c in (0.0, 0.7):
        assert de.rank_p_floor(field, proc, 0.3, D, skip_gain=c) == pytest.approx(mmse, rel=1e-12)
        assert de.rank_p_floor(field, proc, 0.3, 5 * D, skip_gain=c) == pytest.approx(mmse,
                                                                                     rel=1e-12)
        floors = [de.rank_p_floor(field, proc, 0.3, p, skip_gain=c) for p in range(1, D + 1)]
        assert np.all(np.diff(floors) <= 1e-12 * mmse) and floors[0] > mmse


@pytest.mark.parametrize("p", [0, -1, 1.5, True, "3"])
def test_rank_p_floor_rejects_bad_p(p):
    field, proc, _, _ = _setup()
    with pytest.raises(ValueError, match="p must be a positive int"):
        de.rank_p_floor(field, proc, 0.3, p)


def test_rank_p_floor_rejects_bad_skip_gain_shape():
    field, proc, _, _ = _setup()
    with pytest.raises(ValueError, match="skip_gain"):
        de.rank_p_floor(field, proc, 0.3, 2, skip_gain=np.ones((3, 3)))


def test_linear_filter_mse_is_the_mmse_at_the_wiener_gain_and_adds_the_mean_error(x64):
    field, proc, a, s2 = _setup(0.4)
    g = np.asarray(field.gain(proc, 0.4), np.float64)
    np.testing.assert_allclose(de.linear_filter_mse(field, proc, 0.4, g),
                               np.asarray(oracle.mmse(field, proc, 0.4)), rtol=1e-12)
    # a wrong model mean m adds (g a - 1)^2 (mu - m)^2 per coefficient
    extra = de.linear_filter_mse(field, proc, 0.4, g, model_mean=0.0) - \
        de.linear_filter_mse(field, proc, 0.4, g)
    np.testing.assert_allclose(extra, (g * a - 1) ** 2 * field.mean**2, rtol=1e-12, atol=1e-15)
    c = de.scalar_wiener_gain(proc, 0.4, 0.8)
    np.testing.assert_array_equal(de.scalar_wiener_mse(field, proc, 0.4, 0.8),
                                  de.linear_filter_mse(field, proc, 0.4, c, model_mean=0.0))


def test_scalar_wiener_gain_is_the_preconditioned_skip_gain():
    _, proc, _, _ = _setup()
    model = Preconditioned(lambda x, t: jnp.zeros_like(x), proc, sigma_data=0.8)
    for t in (1e-3, 0.2, 0.9):
        np.testing.assert_allclose(de.scalar_wiener_gain(proc, t, 0.8),
                                   np.asarray(model.coefficients(t)[1]), rtol=1e-5)
    with pytest.raises(ValueError, match="sigma_data"):
        de.scalar_wiener_gain(proc, 0.2, 0.0)


def test_untrained_scalar_scale_denoisers_are_the_scalar_wiener_filter_or_zero():
    proc = processes.vp((4, 4), basis="dft")
    models = de.scalar_scale_denoisers(proc, 0.9, jax.random.key(0), operator_skips=(True, False),
                                       p=4, width=16, depth=1)
    assert list(models) == ["operator_skip", "operator_noskip"]
    x = jax.random.normal(jax.random.key(1), (3, 4, 4))
    t = jnp.full((3,), 0.3)
    gain = float(np.asarray(de.scalar_wiener_gain(proc, 0.3, 0.9)).ravel()[0])
    np.testing.assert_allclose(de.batched_denoiser(models["operator_skip"])(x, t),
                               gain * np.asarray(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(de.batched_denoiser(models["operator_noskip"])(x, t), 0.0,
                               atol=1e-6)


def test_exact_denoiser_through_the_evaluation_matches_the_closed_form_mmse():
    """Monte-Carlo errors of the Wiener denoiser: every level's z within 4, and the
    per-coefficient spectrum within 5 relative SE of oracle.mmse (chi-square with n dof)."""
    field = oracle.power_law_field((4, 4), "dft", alpha=2.5)
    proc = processes.vp((4, 4), basis="dft")
    x = np.asarray(field.sample(jax.random.key(0), 600))
    lv = de.noise_levels(field, proc, 4, float(x.std()))
    assert lv["t"].shape == (4,) and np.all(lv["untrained_ratio"] >= 1 - 1e-6)
    np.testing.assert_array_equal(
        lv["mmse"], [float(np.sum(oracle.mmse(field, proc, t))) for t in lv["t"]])
    r = de.evaluate_levels(de.exact_denoiser(field, proc), proc, x, jax.random.key(1), lv["t"],
                           256, lv["mmse"])
    assert np.max(np.abs(r["z"])) <= 4.0
    np.testing.assert_allclose(r["ratio"], r["mse"] / lv["mmse"])
    spec = de.error_spectrum({}, field, proc, x, jax.random.key(2), float(lv["t"][1]), 0.9, 256)
    got = de.coefficient_errors(de.exact_denoiser(field, proc), proc, x, jax.random.key(2),
                                float(lv["t"][1]), 256)
    assert np.max(np.abs(got / spec["mmse"] - 1)) <= 5 * math.sqrt(2 / len(x))


def test_kl_estimator_null_matches_the_estimator_on_real_samples_and_the_closed_form():
    """Means within 5 standard errors: the sufficient-statistics simulation (4000 replicates)
    against moment_kl_diagonal on 400 real sample sets of n = 40 in d = 12, both at a law
    that is not the target, and at the target against kl_bias_at_zero."""
    rng = np.random.default_rng(0)
    d, n = 12, 40
    mean, var = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    m, w = mean + 0.3 * rng.normal(size=d), var * rng.uniform(0.7, 1.4, size=d)
    sim = de.kl_estimator_null(m, w, mean, var, n, jax.random.key(1), 4000)
    real = np.array([metrics.moment_kl_diagonal(m + np.sqrt(w) * rng.normal(size=(n, d)),
                                                mean, var) for _ in range(400)])
    se = math.hypot(sim.std() / math.sqrt(sim.size), real.std() / math.sqrt(real.size))
    assert abs(sim.mean() - real.mean()) <= 5 * se
    assert sim.std() == pytest.approx(real.std(), rel=0.2)
    zero = de.kl_estimator_null(mean, var, mean, var, n, jax.random.key(2), 4000)
    assert abs(zero.mean() - de.kl_bias_at_zero(d, n)) <= 5 * zero.std() / math.sqrt(zero.size)
    assert de.kl_bias_at_zero(d, 10**6) == pytest.approx(d / 10**6, rel=1e-3)  # ~ d/n


def test_kl_bootstrap_se_matches_the_spread_over_independent_sample_sets():
    """The bootstrap standard error of one sample set (mean over 6 sets) against the sd of the
    estimator over 300 independent sets of the same law (not the target): within 25 %."""
    field = oracle.GaussianField((6,), "identity", np.zeros(6), np.linspace(0.5, 2.0, 6))
    rng = np.random.default_rng(4)
    m, w, n = 0.3 * rng.normal(size=6), field.var * rng.uniform(0.6, 1.5, size=6), 200
    sets = [m + np.sqrt(w) * rng.normal(size=(n, 6)) for _ in range(300)]
    sd = np.std([metrics.moment_kl_diagonal(z, field.mean, field.var) for z in sets], ddof=1)
    boot = [de.kl_bootstrap_se(z, field, jax.random.key(i), 300) for i, z in enumerate(sets[:6])]
    assert np.mean(boot) == pytest.approx(sd, rel=0.25)
    bad = sets[0].copy()
    bad[0, 0] = np.inf
    assert de.kl_bootstrap_se(bad, field, jax.random.key(0), 10) == math.inf
    with pytest.raises(ValueError, match="reps >= 2"):
        de.kl_bootstrap_se(sets[0], field, jax.random.key(0), 1)


def test_sample_kl_reads_the_estimator_against_its_reference():
    field = oracle.power_law_field((4, 4), "dft", alpha=2.0)
    z = np.asarray(field.sample(jax.random.key(0), 50), np.float64)  # here: coefficients
    ref = dict(exact=0.5, null_mean=0.8, null_sd=0.1)
    q = de.sample_kl(z, field, ref)
    k = metrics.moment_kl_diagonal(z, field.mean, field.var)
    assert q["kl_hat"] == k and q["kl_corrected"] == k - (0.8 - 0.5)
    assert q["z"] == pytest.approx((k - 0.8) / 0.1) and q["ratio"] == q["kl_corrected"] / 0.5
    assert "kl_se" not in q
    q = de.sample_kl(z, field, ref, key=jax.random.key(1), reps=50)
    assert q["kl_se"] == de.kl_bootstrap_se(z, field, jax.random.key(1), 50) > 0
    z[0, 0, 0] = np.nan
    assert de.sample_kl(z, field, ref)["kl_hat"] == math.inf


def test_learned_sample_kl_of_the_exact_denoiser_lies_in_the_null_law():
    """Real sampler runs with the exact Wiener denoiser (wrapped as a model) against the
    simulated null law of the exact-score output: |z| <= 4."""
    field = oracle.power_law_field((4, 4), "dft", alpha=2.0)
    proc = processes.vp((4, 4), basis="dft")
    model = de.exact_model(field, proc)  # samplers pass a scalar t
    x = np.asarray(field.sample(jax.random.key(0), 10))
    out = de.learned_sample_kl({"exact": model}, proc, field, x, ("pf_heun",), 4, 400,
                               jax.random.key(3), 500, batch=400, n_show=2)
    row = out["kl"]["pf_heun"]
    assert row["nfe"] == 8 and row["bias"] == pytest.approx(row["null_mean"] - row["exact"])
    assert abs(row["models"]["exact"]["z"]) <= 4.0
    assert 0 < row["models"]["exact"]["kl_se"] < math.inf
    assert out["shown"]["exact"].shape == (2, 4, 4)
    assert out["sample_var"]["pf_heun"]["exact"].shape == (4, 4)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="n >= 2"):
        de.kl_estimator_null(np.zeros(3), np.ones(3), 0.0, 1.0, 1, jax.random.key(0), 5)
    with pytest.raises(ValueError, match="w must be"):
        de.kl_estimator_null(np.zeros(3), np.zeros(3), 0.0, 1.0, 5, jax.random.key(0), 5)
    with pytest.raises(ValueError, match="d >= 1"):
        de.kl_bias_at_zero(0, 5)


def test_the_experiment_config_refuses_what_the_library_cannot_run():
    from experiments import denoiser_vs_mmse as E

    with pytest.raises(ValueError, match="weighting"):
        E.Config(weighting="edm")
    with pytest.raises(ValueError, match="unet_channels"):
        E.Config(size=6, unet_channels=(8, 16, 32))
    with pytest.raises(ValueError, match="samplers"):
        E.Config(samplers=("pc",))
    with pytest.raises(ValueError, match="n_test"):
        E.Config(n_test=1)


def _experiment_results(exact_kl_hat=2.76, mse_scale=1.02):
    """A minimal results tree for denoiser_vs_mmse's claims: one U-Net, one sampler."""
    mmse = np.array([0.1, 1.0, 10.0])
    se = 0.01 * mmse
    r = dict(mse=mmse * mse_scale, se=se, z=(mmse * mse_scale - mmse) / se,
             ratio=np.full(3, mse_scale))
    lv = dict(mmse=mmse, log_snr=np.array([5.0, 0.0, -5.0]), exact_mc=dict(mse=mmse, se=se),
              untrained_mc=dict(mse=1.2 * mmse, se=se), untrained_mse=1.2 * mmse, unet=r)
    q = dict(kl_hat=2.3, kl_corrected=2.25, excess=-0.45, kl_se=0.06)
    kl = {"ancestral": dict(nfe=20, exact=2.7, null_mean=2.75, null_sd=0.06, models=dict(
        unet=q, exact=dict(q, kl_hat=exact_kl_hat)))}
    return dict(levels=lv, worst=1, models=["unet"], untrained_model="unet", kl=kl)


def test_the_experiment_claims_fail_on_violating_results():
    """The floor (a U-Net 10 SE below the MMSE) and the exact-score equality (5a, 5 sd off)
    can fail; the finding (learned - exact KL) holds whatever its sign."""
    from experiments import denoiser_vs_mmse as E

    cfg = E.Config(operator_skips=())
    ok = E.claims(cfg, _experiment_results())
    assert all(c.holds for c in ok) and [c.kind for c in ok] == [
        "equality", "equality", "lower_bound", "upper_bound", "upper_bound", "equality",
        "finding"]
    bad = E.claims(cfg, _experiment_results(exact_kl_hat=3.1, mse_scale=0.9))
    assert [c.statement[:3] for c in bad if not c.holds] == ["1. ", "5a."]
