"""Exact guidance baselines of opdiff.diffusion.guidance (labelled mixture, its batched exact
denoisers against the oracle's per-point ones, the Bayes classifier, the measured sweep), the
per-row guided denoiser against scalar calls, the sample statistics of opdiff.metrics
(within-class diversity, moment z, spread ratio) on cases with known answers, and the
classifier's one-pass features and predictions against the library's separate calls."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P
from opdiff import metrics as M
from opdiff.diffusion import guidance as G
from opdiff.diffusion.guidance import guided_denoiser
from opdiff.nets import classifier as clf_mod


class Toy:
    """``D(x, t, y) = w_y x + t c_y``; label ``K`` = no label."""

    n_classes = 3

    def __init__(self):
        rng = np.random.default_rng(0)
        self.w = jnp.asarray(rng.uniform(0.2, 1.0, 4), jnp.float32)
        self.c = jnp.asarray(rng.normal(size=(4, 2, 2)), jnp.float32)

    def batched(self, x, t, y):
        y = jnp.broadcast_to(jnp.asarray(y), x.shape[:1])
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])[:, None, None]
        return self.w[y][:, None, None] * x + t * self.c[y]


def test_guided_denoiser_with_one_gamma_per_row_equals_the_scalar_calls():
    m = Toy()
    x = jax.random.normal(jax.random.key(0), (6, 2, 2))
    y = np.array([0, 1, 2, 0, 1, 2])
    g = np.array([0.0, 1.0, 2.5, 4.0, 0.5, 1.0])
    out = np.asarray(guided_denoiser(m, y, g)(x, 0.3))
    for i in range(6):
        ref = np.asarray(guided_denoiser(m, int(y[i]), float(g[i]))(x[i:i + 1], 0.3))[0]
        np.testing.assert_allclose(out[i], ref, rtol=1e-6, atol=1e-6)
    # a time per example gives the same as the scalar time
    t = jnp.full(6, 0.3)
    np.testing.assert_allclose(np.asarray(guided_denoiser(m, y, g)(x, t)), out, rtol=1e-6)


def test_mixture_model_equals_the_oracle_denoisers():
    mix = G.labelled_mixture(1.5, (0.8, 0.4))
    proc = P.vp((2,))
    model = G.MixtureLabelModel(mix, proc)
    comps = [O.GaussianMixture(np.ones(1), mix.means[j:j + 1], mix.covs[j:j + 1])
             for j in range(3)]

    @jax.jit
    def both(x, t):  # [4, B, d]: the model and the oracle for every label, one compilation
        mine = jnp.stack([model.batched(x, t, jnp.full(x.shape[0], j)) for j in range(4)])
        ref = jnp.stack([jax.vmap(lambda xi, g=g: g.denoise(proc, xi, t))(x)
                         for g in (*comps, mix)])
        return mine, ref

    x = 2 * jax.random.normal(jax.random.key(1), (5, 2))
    for t in (0.01, 0.3, 0.9):
        mine, ref = both(x, t)
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-5)
    # one time per example: each row as if alone
    ts = jnp.array([0.01, 0.3, 0.9, 0.5, 0.2])
    y = jnp.array([0, 1, 2, 3, 3])
    per = model.batched(x, ts, y)
    for i in range(5):
        np.testing.assert_allclose(per[i], model.batched(x[i:i + 1], ts[i], y[i:i + 1])[0],
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="does not match the mixture"):
        G.MixtureLabelModel(mix, P.vp((3,)))


def test_labelled_mixture_and_bayes_classifier():
    mix = G.labelled_mixture(2.0, (0.8, 0.4))
    np.testing.assert_allclose(np.linalg.norm(mix.means, axis=1), 2.0)
    np.testing.assert_allclose(mix.means.mean(0), 0.0, atol=1e-12)
    for j in range(3):  # the long axis points along the radius
        w, v = np.linalg.eigh(mix.covs[j])
        np.testing.assert_allclose(w, [0.16, 0.64], rtol=1e-12)
        assert abs(abs(v[:, 1] @ mix.means[j]) / 2.0 - 1) < 1e-12
    np.testing.assert_array_equal(G.bayes_predict(mix, mix.means), [0, 1, 2])


def test_within_class_diversity_known_cases():
    base = np.random.default_rng(0).normal(size=(8, 8))
    # contrast-scaled copies are perfectly correlated: decorrelation 0, pixel variance not
    x = np.stack([base, 2 * base + 1, 0.5 * base])
    pv, dec = M.within_class_diversity(x, np.zeros(3, int))
    assert abs(dec) < 1e-12 and pv > 0.1
    # an image and its negative: correlation -1
    pv, dec = M.within_class_diversity(np.stack([base, -base]), np.array([1, 1]))
    assert abs(dec - 2.0) < 1e-12
    np.testing.assert_allclose(pv, np.mean(base**2))
    # a class with one image is skipped; none with two is an error
    pv2, dec2 = M.within_class_diversity(np.stack([base, -base, base]), np.array([1, 1, 5]))
    assert (pv2, dec2) == (pv, dec)
    with pytest.raises(ValueError, match="two images"):
        M.within_class_diversity(np.stack([base, base]), np.array([0, 1]))


def test_moment_z_and_trace_ratio_on_exact_draws():
    cov = np.array([[1.0, 0.3], [0.3, 0.5]])
    x = np.random.default_rng(1).multivariate_normal([1.0, -1.0], cov, size=20000)
    assert M.gaussian_moment_z(x, np.array([1.0, -1.0]), cov) < 5.0
    assert M.gaussian_moment_z(x, np.array([1.1, -1.0]), cov) > 10.0  # a 0.1 shift is 14 SE
    r, se = M.spread_ratio(x, cov)
    assert abs(r - 1) < 5 * se and 0.005 < se < 0.02  # sqrt(2 tr S^2 / n) / tr Sigma = 0.0080
    assert M.binomial_se(0.5, 100) == 0.05


def test_judge_matches_the_library_features_and_predictions():
    rng = np.random.default_rng(2)
    clf = clf_mod.Classifier((8, 8), 10, key=jax.random.key(3))
    x = rng.uniform(-1, 1, size=(37, 8, 8)).astype(np.float32)
    f, p = clf_mod.features_and_predictions(clf, x, chunk=16)  # 2 full chunks + a padded one
    np.testing.assert_allclose(f, clf_mod.features(clf, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(p, clf_mod.predict(clf, x))


def test_mixture_guidance_sweep_gamma_one_is_the_component_law_and_zero_is_chance():
    """E1/E3 of the guidance experiment as a library property: at gamma = 1 each class's samples
    have the component's moments (|z| < 5), at gamma = 0 the Bayes accuracy is chance 1/3
    within 5 binomial SE; the reference accuracy is the Bayes accuracy of exact draws."""
    mix = G.labelled_mixture(1.5, (0.8, 0.4))
    out = G.mixture_guidance_sweep(mix, P.vp((2,)), "ancestral", 100, (0.0, 1.0, 4.0), 400,
                                   key=jax.random.key(7), ref_n=4000)
    assert out["n"] == 1200 and out["k"] == 3 and out["ref_n"] == 12000
    assert set(out["per_gamma"]) == {"0", "1", "4"}
    assert max(out["per_gamma"]["1"]["moment_z"]) < 5.0
    assert abs(out["per_gamma"]["0"]["accuracy"] - 1 / 3) < 5 * M.binomial_se(1 / 3, 1200)
    ref = np.mean([np.mean(G.bayes_predict(mix, np.random.default_rng(j).multivariate_normal(
        mix.means[j], mix.covs[j], 20000)) == j) for j in range(3)])
    assert abs(out["ref_accuracy"] - ref) < 0.02
    x4 = out["samples"]["4"]["x"]
    assert x4.shape == (1200, 2) and max(out["per_gamma"]["4"]["spread_ratio"]) < 1.0
