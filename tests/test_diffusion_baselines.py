"""opdiff.diffusion.baselines (float64 bases, exact Gaussian log-density and bits/dim, exact law
draws) and opdiff.diffusion.models (the untrained preconditioned U-Net is the exact denoiser of
wiener_start) against independent references: scipy's multivariate normal, the library's JAX
bases, sample moments, the oracle's affine denoiser."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from opdiff.diffusion import baselines, likelihood, models, oracle, transforms


def _basis_matrix(shape, name):
    """Rows: the basis vectors (B with z = B x), built by transforming unit images."""
    d = math.prod(shape)
    eye = np.eye(d).reshape(d, *shape)
    return baselines.to_basis64(eye, name, len(shape)).reshape(d, d).T


@pytest.mark.parametrize("name", ["identity", "dct", "dft"])
def test_to_basis64_matches_the_library_and_is_orthonormal(name):
    x = np.asarray(jax.random.normal(jax.random.key(0), (3, 6, 5)), np.float64)
    ref = np.asarray(transforms.to_basis(jnp.asarray(x, jnp.float32), name, 2), np.float64)
    np.testing.assert_allclose(baselines.to_basis64(x, name, 2), ref, atol=1e-5)
    b = _basis_matrix((6, 5), name)
    np.testing.assert_allclose(b @ b.T, np.eye(30), atol=1e-12)


@pytest.mark.parametrize("name", ["dct", "dft", "identity"])
def test_gaussian_log_density_matches_scipy_multivariate_normal(name):
    shape = (4, 4)
    rng = np.random.default_rng(1)
    mean, var = rng.normal(size=shape), rng.uniform(0.05, 2.0, size=shape)
    field = oracle.GaussianField(shape, name, mean, var)
    b = _basis_matrix(shape, name)  # z = b @ x (flattened)
    cov = b.T @ np.diag(var.ravel()) @ b
    mu_x = b.T @ mean.ravel()
    x = rng.normal(size=(7, *shape))
    ref = stats.multivariate_normal(mu_x, cov).logpdf(x.reshape(7, -1))
    np.testing.assert_allclose(baselines.gaussian_log_density(x, field), ref, rtol=1e-10,
                               atol=1e-9)
    # bits/dim: -(log p + d log w) / (d ln 2), by hand from scipy's log-density
    w = 2 / 16
    np.testing.assert_allclose(baselines.gaussian_bits_per_dim(x, field, bin_width=w),
                               -(ref + 16 * math.log(w)) / (16 * math.log(2)), rtol=1e-5)


def test_gaussian_log_density_rejects_bad_input():
    field = oracle.GaussianField((4, 4), "dct", 0.0, 1.0)
    with pytest.raises(ValueError, match="x must have shape"):
        baselines.gaussian_log_density(np.zeros((2, 4, 5)), field)
    with pytest.raises(TypeError, match="field"):
        baselines.gaussian_log_density(np.zeros((2, 4, 4)), (0.0, 1.0))


@pytest.mark.parametrize("kind", ["white", "pink", "heat"])
def test_untrained_unet_is_the_wiener_filter_of_the_start_field(kind):
    """The claim behind drawing the untrained start's samples from the oracle's law: the
    untrained preconditioned U-Net is exactly the affine denoiser of ``wiener_start``."""
    rng = np.random.default_rng(2)
    x_train = np.clip(rng.normal(size=(50, 8, 8)), -1, 1).astype(np.float32)
    process = models.make_process(kind, (8, 8))
    model = models.make_unet_denoiser(process, x_train, channels=(8, 16), emb_dim=16,
                                      key=jax.random.key(3))
    start = models.wiener_start(process, x_train)
    exact = start.denoiser(process)
    for t in (process.t_min * 3, 0.3 * process.T, 0.9 * process.T):
        x = jnp.asarray(rng.normal(size=(3, 8, 8)), jnp.float32)
        np.testing.assert_allclose(np.asarray(model.batched(x, t)), np.asarray(exact(x, t)),
                                   atol=2e-5, rtol=1e-4)


def test_make_process_kinds_and_data_scale():
    assert [models.make_process(k, (4, 4)).basis for k in models.PROCESS_KINDS] == [
        "identity", "dct", "dct", "dct", "identity"]
    with pytest.raises(ValueError, match="unknown process kind"):
        models.make_process("brown", (4, 4))
    x = np.random.default_rng(0).normal(size=(30, 4, 4)).astype(np.float32)
    sd, mean = models.data_scale(models.make_process("white", (4, 4)), x)
    assert sd == pytest.approx(float(np.std(x - x.mean(0))))
    np.testing.assert_array_equal(mean, x.mean(0))
    sd_k, _ = models.data_scale(models.make_process("pink", (4, 4)), x, spectral=True)
    z = baselines.to_basis64(x - x.mean(0), "dct", 2)
    np.testing.assert_allclose(sd_k, z.std(0), rtol=1e-4)


def test_law_samples_have_the_law_moments():
    m = np.linspace(-1, 1, 16).reshape(4, 4)
    w = np.linspace(0.1, 2.0, 16).reshape(4, 4)
    x = baselines.law_samples(jax.random.key(4), 20000, m, w, "dct")
    z = baselines.to_basis64(x, "dct", 2)
    n = len(z)
    assert np.all(np.abs(z.mean(0) - m) < 5 * np.sqrt(w / n))
    assert np.all(np.abs(z.var(0) / w - 1) < 5 * np.sqrt(2 / n))
    with pytest.raises(ValueError, match="finite"):
        baselines.law_samples(jax.random.key(4), 3, m, -w, "dct")


def test_dataset_bits_per_dim_of_the_exact_denoiser_is_the_exact_gaussian_value():
    """Through the probability-flow ODE with the exact denoiser of a Gaussian field, bits/dim
    equal the closed form (exact divergence up to the Hutchinson probe's noise, which is zero
    in expectation; 4x4 images, rtol 1e-5)."""
    field = oracle.GaussianField((4, 4), "identity", 0.1, 0.5)
    process = models.make_process("white", (4, 4))
    x = np.asarray(field.sample(jax.random.key(5), 64), np.float32)
    bpd, steps = likelihood.dataset_bits_per_dim(field.denoiser(process), process, x,
                                                 bin_width=2 / 16, key=jax.random.key(6))
    # the ODE starts at t_min: the law there is N(a mu, a^2 lambda + s^2)
    m, v = field.marginal(process, process.t_min)
    ref = baselines.gaussian_bits_per_dim(
        x, oracle.GaussianField((4, 4), "identity", np.asarray(m), np.asarray(v)),
        bin_width=2 / 16)
    assert steps > 0
    assert abs(float(np.mean(bpd)) - float(np.mean(ref))) < 0.02
