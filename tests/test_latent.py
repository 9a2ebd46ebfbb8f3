"""Latent diffusion's exact oracle (opdiff.diffusion.latent), against independent computations.

- the PCA autoencoder reconstructs rank-k data exactly (float64, 1e-10);
- the latent law the oracle gives for a sampler run on the latent matches Monte Carlo of that
  sampler, before and after decoding (z-scores of means and variances, |z| < 5);
- the end-to-end KL and W2^2 of the decoded law, and the split latent part + decoder floor,
  match a dense float64 NumPy computation on an 8x8 grid written here from scratch (the 2-D
  Hartley/DCT matrices built from their formulas, Gaussian KL by slogdet, W2 by eigh);
- bad input raises ValueError naming the argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.deeponet_bounds import pca_floor
from opdiff.diffusion import latent, oracle, processes, samplers, transforms


def test_pca_round_trip_is_exact_on_rank_k_data(x64):
    rng = np.random.default_rng(0)
    k, shape = 5, (6, 7)
    basis = np.linalg.qr(rng.normal(size=(42, k)))[0]  # an orthonormal 5-frame in R^42
    offset = rng.normal(size=42)
    x = (offset + rng.normal(size=(200, k)) * [3, 2, 1, 0.5, 0.1] @ basis.T).reshape(200, *shape)
    x_new = (offset + rng.normal(size=(30, k)) @ basis.T).reshape(30, *shape)
    for scaling in latent.SCALINGS:
        ae = latent.fit_pca(x[:100], k, scaling=scaling, dtype="float64")
        for data in (x, x_new):  # held-out points of the same subspace too
            rec = np.asarray(ae.decode(ae.encode(jnp.asarray(data))))
            assert np.abs(rec - data).max() <= 1e-10 * np.abs(data).max()
    ae = latent.fit_pca(x, k, scaling="whiten", dtype="float64")
    z = np.asarray(ae.encode(jnp.asarray(x)))
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(np.cov(z.T), np.eye(k), atol=1e-10)  # whitened latents
    # one component fewer cannot reconstruct: the error is the discarded direction
    ae4 = latent.fit_pca(x, k - 1, dtype="float64")
    assert np.abs(np.asarray(ae4.decode(ae4.encode(jnp.asarray(x)))) - x).max() > 1e-2


def _hartley_1d(n):
    j = np.arange(n)
    th = 2 * np.pi * np.outer(j, j) / n
    return (np.cos(th) + np.sin(th)) / np.sqrt(n)


def _dct_1d(n):
    j = np.arange(n)
    m = np.cos(np.pi * np.outer(j, j + 0.5) / n) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


def _dense_basis(shape, basis):
    """B [N, N] with coefficients c = B x (row-major flattening), built from the formulas.
    The 2-D Hartley kernel is cas(2 pi (k1 n1/N1 + k2 n2/N2)), not a Kronecker product."""
    if basis == "dct":
        return np.kron(_dct_1d(shape[0]), _dct_1d(shape[1]))
    k1, k2 = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    th = 2 * np.pi * (np.outer(k1.ravel(), k1.ravel()) / shape[0]
                      + np.outer(k2.ravel(), k2.ravel()) / shape[1])
    return (np.cos(th) + np.sin(th)) / np.sqrt(np.prod(shape))


def _dense_kl(m1, c1, m2, c2):
    d = len(m1)
    c2i = np.linalg.inv(c2)
    dm = m2 - m1
    return 0.5 * (np.trace(c2i @ c1) - d + dm @ c2i @ dm
                  + np.linalg.slogdet(c2)[1] - np.linalg.slogdet(c1)[1])


def _psd_sqrt(c):
    """Symmetric square root; eigenvalues below 1e-12 of the largest are round-off of exact
    zeros (a singular decoded covariance) and are set to 0, else their square roots (~1e-8)
    would dominate the comparison."""
    e, v = np.linalg.eigh(c)
    e = np.where(e > 1e-12 * e.max(), e, 0.0)
    return (v * np.sqrt(e)) @ v.T


def _dense_w2_sq(m1, c1, m2, c2):
    r2 = _psd_sqrt(c2)
    cross = _psd_sqrt(r2 @ c1 @ r2)
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * cross))


@pytest.mark.parametrize("basis,scaling", [("dft", "whiten"), ("dct", "global")])
def test_end_to_end_divergences_split_into_latent_part_and_floor(x64, basis, scaling):
    shape, k = (8, 8), 12
    field = oracle.power_law_field(shape, basis, alpha=3.0, mean=0.3)
    ae = latent.spectral_pca(field, k, scaling=scaling, dtype="float64")
    process = processes.vp((k,))
    res = latent.latent_error("ddim", process, field, ae, samplers.log_snr_grid(process, 6),
                              denoise=True)
    m, w = res["m"], res["w"]
    b = _dense_basis(shape, basis)
    assert np.abs(b @ b.T - np.eye(64)).max() < 1e-12
    # the test's basis reproduces the library's transform (so the field means one law)
    x = np.random.default_rng(1).normal(size=(3, *shape))
    np.testing.assert_allclose((x.reshape(3, -1) @ b.T).reshape(x.shape),
                               transforms.to_basis_host(x, basis, 2), atol=1e-12)
    mu_x = b.T @ field.mean.ravel()
    cov_x = b.T @ np.diag(field.var.ravel()) @ b
    c, s = ae.components, ae.scales
    p_sub = c.T @ c
    for noise_var in (0.0, latent.optimal_noise_var(field, ae), 0.05):
        mean_d = ae.mean.ravel() + c.T @ (s * m)
        cov_d = c.T @ np.diag(s**2 * w) @ c + noise_var * (np.eye(64) - p_sub)
        got = latent.latent_divergences(field, ae, m, w, noise_var=noise_var)
        w2 = _dense_w2_sq(mean_d, cov_d, mu_x, cov_x)
        np.testing.assert_allclose(got["w2_sq"], w2, rtol=1e-8)
        np.testing.assert_allclose(got["w2_sq_latent"] + got["w2_sq_floor"], w2, rtol=1e-8)
        if noise_var > 0:
            kl = _dense_kl(mean_d, cov_d, mu_x, cov_x)
            np.testing.assert_allclose(got["kl"], kl, rtol=1e-8)
            np.testing.assert_allclose(got["kl_latent"] + got["kl_floor"], kl, rtol=1e-8)
            assert got["kl"] >= got["kl_floor"] > 0
        else:  # a deterministic decoder's law is singular: infinite KL, finite W2
            assert got["kl"] == np.inf and got["kl_floor"] == np.inf
            # the floor is the discarded variance: the squared PCA floor of POD-DeepONet
            np.testing.assert_allclose(got["w2_sq_floor"], pca_floor(field.var.ravel(), k) ** 2,
                                       rtol=1e-12)
        # the latent part is the latent oracle's own divergence, computed densely in R^k
        lf = latent.latent_field(field, ae)
        kl_lat = _dense_kl(m, np.diag(w), lf.mean, np.diag(lf.var))
        np.testing.assert_allclose(got["kl_latent"], kl_lat, rtol=1e-8)
    # the optimal isotropic decoder variance minimises the KL floor
    best = latent.optimal_noise_var(field, ae)
    floors = [latent.decoder_floor(field, ae, noise_var=best * f)["kl"] for f in (0.8, 1, 1.25)]
    assert floors[1] < min(floors[0], floors[2])


@pytest.mark.parametrize("method", ["ddim", "ancestral"])
def test_latent_law_matches_monte_carlo(x64, method):
    field = oracle.power_law_field((8, 8), "dft", alpha=2.5)
    k, n = 6, 20000
    ae = latent.spectral_pca(field, k, scaling="global", dtype="float64")
    lf = latent.latent_field(field, ae)
    # the encoder maps field samples to the latent field (means 0, variances lam_K / s^2)
    z_data = np.asarray(ae.encode(field.sample(jax.random.key(0), n, jnp.float64)))
    zs = (z_data.mean(0) - lf.mean) / np.sqrt(lf.var / n)
    zv = (z_data.var(0) - lf.var) / (lf.var * np.sqrt(2 / n))
    assert np.abs(zs).max() < 5 and np.abs(zv).max() < 5
    process = processes.vp((k,))
    ts = samplers.log_snr_grid(process, 4)  # few steps: a law far from the data
    m, w = oracle.sampler_law(method, process, lf, ts)
    m, w = np.asarray(m), np.asarray(w)
    x_t = process.sample_prior(jax.random.key(1), n, dtype=jnp.float64)
    z = np.asarray(samplers.sample(method, lf.denoiser(process), process, x_t, ts,
                                   key=jax.random.key(2)))
    assert np.abs((z.mean(0) - m) / np.sqrt(w / n)).max() < 5
    assert np.abs((z.var(0) - w) / (w * np.sqrt(2 / n))).max() < 5
    assert np.abs(w - lf.var).max() > 0.05 * lf.var.max()  # the law differs from the data's
    # decoded through the Gaussian decoder: coefficient moments vs decoded_law
    sig2 = 0.02
    mean, var = latent.decoded_law(field, ae, m, w, noise_var=sig2)
    x = ae.decode_noisy(jax.random.key(3), jnp.asarray(z), sig2)
    c = transforms.to_basis_host(np.asarray(x), "dft", 2)
    assert np.abs((c.mean(0) - mean) / np.sqrt(var / n)).max() < 5
    assert np.abs((c.var(0) - var) / (var * np.sqrt(2 / n))).max() < 5


def test_bad_input_names_the_argument(x64):
    field = oracle.power_law_field((4, 4), "dft")
    ae = latent.spectral_pca(field, 3)
    with pytest.raises(ValueError, match="z must have shape"):
        ae.decode(jnp.zeros((2, 4), jnp.float32))
    with pytest.raises(ValueError, match="z must have dtype float32"):
        ae.decode(jnp.zeros((2, 3), jnp.float64))
    with pytest.raises(ValueError, match="z must have dtype float32"):
        ae.decode(np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="x must have shape"):
        ae.encode(jnp.zeros((2, 4, 5)))
    for k in (0, 17):
        with pytest.raises(ValueError, match=r"k must be in \[1, 16\]"):
            latent.spectral_pca(field, k)
    with pytest.raises(ValueError, match=r"k must be in \[1, 9\]"):
        latent.fit_pca(np.random.default_rng(0).normal(size=(10, 4, 4)), 10)
    with pytest.raises(TypeError, match="k must be an int"):
        latent.spectral_pca(field, 2.0)
    with pytest.raises(ValueError, match="scaling must be one of"):
        latent.spectral_pca(field, 2, scaling="unit")
    with pytest.raises(ValueError, match="m must have the latent shape"):
        latent.decoded_law(field, ae, np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="noise_var must be finite"):
        latent.decoder_floor(field, ae, noise_var=-1.0)
    with pytest.raises(ValueError, match="ae.shape"):
        latent.latent_field(oracle.power_law_field((4, 5), "dft"), ae)
    # an autoencoder fitted to samples is not aligned with the basis: no exact oracle
    x = np.asarray(field.sample(jax.random.key(0), 40, jnp.float64))
    with pytest.raises(ValueError, match="not diagonal"):
        latent.latent_field(field, latent.fit_pca(x, 3))


def test_sweep_entries_are_the_direct_computation_and_budgets_are_checked(x64):
    field = oracle.power_law_field((4, 4), "dft", alpha=2.0)
    sw = latent.pixel_latent_sweep(field, (3, 16), (2, 4), method="ddim")
    ae = latent.spectral_pca(field, 3, dtype="float64")
    lp = processes.vp((3,))
    direct = latent.latent_error("ddim", lp, field, ae, samplers.log_snr_grid(lp, 4),
                                 denoise=True)
    np.testing.assert_allclose(sw["w2_sq"][0, 1], direct["w2_sq"], rtol=1e-12)
    # full rank with whitening is pixel diffusion preconditioned by the spectrum: no floor
    assert np.all(sw["w2_sq_floor"][1] == 0) and np.all(sw["kl_floor"][1] == 0)
    with pytest.raises(ValueError, match="budgets must be positive multiples of 2"):
        latent.pixel_latent_sweep(field, (3,), (3,), method="pf_heun")


def _fake_results(cfg, *, break_floor=False, break_split=False, break_mc=False):
    """Results with the shape ``latent_diffusion.run`` writes (exact part only); each flag
    plants one violation."""
    nr, nb = len(cfg.ranks), len(cfg.budgets)
    floor = np.tile(np.linspace(3.0, 1.0, nr)[:, None], (1, nb))
    part = np.full((nr, nb), 0.5)
    sc = {}
    for q in ("kl", "w2_sq"):
        total = floor + part - (1.0 if break_floor else 0.0)
        sc.update({q: total + (1e-6 if break_split else 0.0), f"{q}_floor": floor,
                   f"{q}_latent": total - floor})
    g = {"budgets": list(cfg.budgets), "ranks": list(cfg.ranks), "pca_floor_sq": floor[:, 0],
         "pixel_kl": np.ones(nb), "pixel_w2_sq": np.ones(nb), "whiten": sc, "global": sc,
         "mc": {"z_mean": np.full(8, 9.0 if break_mc else 0.1), "z_var": np.zeros(8),
                "kl_exact": 1.0, "kl_moment": 1.0}}
    return {"gaussian": g}


def test_experiment_claims_fail_on_violating_values():
    from experiments import latent_diffusion as ld

    cfg = ld.PRESETS["smoke"]
    ok = ld.claims(cfg, _fake_results(cfg))
    assert all(c.holds for c in ok)
    for flag, words in (("break_floor", ">= the decoder floor"),
                        ("break_split", "+ the floor (computed apart"),
                        ("break_mc", "Monte Carlo")):
        bad = [c for c in ld.claims(cfg, _fake_results(cfg, **{flag: True})) if not c.holds]
        assert bad and all(words in c.statement for c in bad), (flag, bad)
