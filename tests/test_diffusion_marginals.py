"""Monte-Carlo marginal tests of forward processes (opdiff.diffusion.marginals) and the host
float64 transform (opdiff.diffusion.transforms.to_basis_host), against independent computations:
explicit basis matrices, scipy's chi-square and normal laws, closed-form marginals."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft
import scipy.stats

from opdiff.diffusion import transforms as B
from opdiff.diffusion import marginals as M
from opdiff.diffusion import processes as P


def _basis_matrix(basis, shape):
    """The orthonormal basis as an explicit [N, N] matrix over the flattened sample."""
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    j = np.stack([g.ravel() for g in grids], -1)  # [N, ndim] multi-indices
    if basis == "identity":
        return np.eye(len(j))
    if basis == "dft":  # cas(2 pi sum_i k_i j_i / n_i) / sqrt(N): not separable
        arg = 2 * np.pi * (j[:, None, :] * j[None, :, :] / np.asarray(shape)).sum(-1)
        return (np.cos(arg) + np.sin(arg)) / math.sqrt(len(j))
    mats = [scipy.fft.dct(np.eye(n), type=2, norm="ortho", axis=0) for n in shape]
    out = mats[0]
    for m in mats[1:]:
        out = np.kron(out, m)
    return out


@pytest.mark.parametrize("basis", ["identity", "dft", "dct"])
@pytest.mark.parametrize("shape", [(6,), (5, 8)])
def test_to_basis_host_equals_the_jax_transform_and_the_basis_matrix(x64, basis, shape):
    x = np.random.default_rng(0).standard_normal((3, *shape))
    z = B.to_basis_host(x, basis, len(shape))
    assert z.dtype == np.float64 and z.shape == x.shape
    np.testing.assert_allclose(z, np.asarray(B.to_basis(jnp.asarray(x), basis, len(shape))),
                               atol=1e-12)
    brute = (x.reshape(3, -1) @ _basis_matrix(basis, shape).T).reshape(x.shape)
    np.testing.assert_allclose(z, brute, atol=1e-12)


def test_chi2_z_is_the_exact_normal_transform_in_both_tails():
    dof = 50
    z = np.array([-7.0, -2.0, 0.0, 1.5, 9.0])
    stat = np.where(z < 0, scipy.stats.chi2.ppf(scipy.stats.norm.cdf(z), dof),
                    scipy.stats.chi2.isf(scipy.stats.norm.sf(z), dof))
    np.testing.assert_allclose(M.chi2_z(stat, dof), z, atol=1e-9)


def test_bonferroni_z_has_family_wise_level():
    for m, level in ((1, 0.05), (1000, 1e-3)):
        b = M.bonferroni_z(m, level)
        assert math.isclose(m * 2 * scipy.stats.norm.sf(b), level, rel_tol=1e-10)


@pytest.mark.parametrize("make", [lambda s: P.vp(s, basis="dft"), P.heat_dissipation,
                                  lambda s: P.coloured(s, "pink")])
def test_z_scores_of_the_true_sampler_are_standard_normal(make):
    proc = make((6, 6))
    x0 = np.random.default_rng(1).standard_normal((6, 6))
    times = [proc.t_min, 0.5 * proc.T, proc.T]
    z = M.z_scores(proc, x0, times, jax.random.key(0), n_draws=400, chunk=150,
                   correlations=True)
    assert z["mean"].shape == z["var"].shape == (3, 6, 6) and z["corr"].shape == (3, 36 * 35 // 2)
    for name in ("mean", "var", "corr"):
        v = np.ravel(z[name])
        assert scipy.stats.kstest(v, "norm").pvalue > 1e-3, name
        assert np.abs(v).max() <= M.bonferroni_z(v.size, 1e-3)


def test_z_scores_detect_a_wrong_law(monkeypatch):
    proc = P.vp((4, 4), basis="dft")
    x0 = np.zeros((4, 4))
    right = M._sample
    z_ok = M.z_scores(proc, x0, [0.5], jax.random.key(0), n_draws=2000, chunk=1000)
    assert np.abs(z_ok["var"]).max() < 5 and np.abs(z_ok["mean"]).max() < 5
    # a sampler whose noise is 20 % too large (x0 = 0: x_t = s_t eps): every variance z > 5
    monkeypatch.setattr(M, "_sample", lambda p, k, x, t: 1.2 * right(p, k, x, t))
    z_bad = M.z_scores(proc, x0, [0.5], jax.random.key(0), n_draws=2000, chunk=1000)
    assert z_bad["var"].min() > 5
    np.testing.assert_allclose(z_bad["mean"], 1.2 * z_ok["mean"], rtol=1e-5)


def test_paths_means_and_snr_against_closed_forms(x64):
    shape = (8, 8)
    x0 = np.random.default_rng(2).random(shape)
    heat, vp = P.heat_dissipation(shape), P.vp(shape, basis="dft")
    times = np.linspace(heat.t_min, heat.T, 5)
    means = M.mean_path(heat, x0, times)
    z0 = scipy.fft.dctn(x0, norm="ortho")
    for t, m in zip(times, means):
        a, _ = M.scale_std(heat, t)
        np.testing.assert_allclose(m, scipy.fft.idctn(a * z0, norm="ortho"), atol=1e-5)
    np.testing.assert_allclose(means.mean(axis=(1, 2)), x0.mean(), atol=1e-6)  # DC kept
    vt = np.linspace(vp.t_min, vp.T, 4)
    snr = M.snr_path(vp, x0, vt)
    path = M.sample_path(vp, x0, vt, jax.random.key(3), batch=2)
    eps = []
    for t, r, x in zip(vt, snr, path):
        a, s = (float(v.flat[0]) for v in M.scale_std(vp, t))
        assert math.isclose(r, a**2 * np.sum(x0**2) / (x0.size * s**2), rel_tol=1e-5)
        eps.append((x - a * x0) / s)
    for e in eps[1:]:  # one noise draw for the whole path
        np.testing.assert_allclose(e, eps[0], atol=2e-3)


def test_high_frequency_energy_of_single_dct_modes():
    for (i, j), above in (((0, 0), False), ((1, 2), False), ((7, 5), True), ((3, 4), False), ((10, 3), True)):
        c = np.zeros((16, 16))
        c[i, j] = 2.0
        img = scipy.fft.idctn(c, norm="ortho")
        f = math.hypot(i, j) / 32  # DCT-II mode (i, j): pi m / n per axis -> m / (2n) cycles
        assert (f > 0.25) == above
        np.testing.assert_allclose(M.high_frequency_energy(img[None], "dct"), [4.0 * above],
                                   atol=1e-12)


def test_sample_batch_draws_one_sample_per_image_in_padded_chunks():
    proc = P.vp((6, 6), basis="dft")
    x0 = np.random.default_rng(4).standard_normal((7, 6, 6))
    x = M.sample_batch(proc, x0, 0.3, jax.random.key(1), chunk=3)
    assert x.shape == x0.shape and x.dtype == np.float64
    a, s = (float(v.flat[0]) for v in M.scale_std(proc, 0.3))
    e = (x - a * x0) / s
    assert scipy.stats.kstest(e.ravel(), "norm").pvalue > 1e-3
    assert not np.allclose(e[0], e[3])  # chunks get different keys
    np.testing.assert_array_equal(M.sample_batch(proc, x0, 0.3, jax.random.key(1), chunk=3), x)


def test_rapsd_z_scores_against_the_closed_form_expectation():
    from opdiff import spectra

    proc = P.vp((16, 16), basis="dft")
    x0 = np.random.default_rng(6).standard_normal((300, 16, 16)).cumsum(-1) / 4
    times = np.linspace(proc.t_min, proc.T, 4)
    r = M.rapsd_z_scores(proc, x0, times, jax.random.key(2), chunk=128)
    assert r["z"].shape == r["emp"].shape == r["expect"].shape == (4, 8)
    for i, t in enumerate(times):
        a = float(np.asarray(proc.scale(t)).flat[0])
        s2 = float(np.asarray(proc.variance(t)).flat[0])
        assert np.isclose(r["floor"][i], s2, rtol=1e-6)
        np.testing.assert_allclose(r["expect"][i],
                                   a**2 * spectra.rapsd(x0, return_frequencies=False) + s2,
                                   rtol=1e-5)
    assert np.abs(r["z"]).max() < M.bonferroni_z(r["z"].size, 1e-3)
    assert np.all(r["f_exp"][1:] <= r["f_exp"][:-1])  # the cut-off falls as t grows
    with pytest.raises(ValueError, match="dft"):
        M.rapsd_z_scores(P.heat_dissipation((16, 16)), x0, times, jax.random.key(2), chunk=64)
    with pytest.raises(ValueError, match="white"):
        M.rapsd_z_scores(P.coloured((16, 16), "pink"), x0, times, jax.random.key(2), chunk=64)
