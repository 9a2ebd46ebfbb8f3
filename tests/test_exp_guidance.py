"""The pure helpers of experiments/guidance.py: the per-example sweep denoiser equals the
library's guided denoiser row by row, the batched exact mixture denoisers equal the oracle's,
and the diversity, moment, Bayes-classifier and judge helpers on cases with known answers.
(The smoke preset itself runs in tests/test_cli.py.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import guidance as G
from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P
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
        return self.w[y][:, None, None] * x + t * self.c[y]


def test_sweep_denoiser_matches_guided_denoiser_per_row():
    m = Toy()
    x = jax.random.normal(jax.random.key(0), (6, 2, 2))
    y = np.array([0, 1, 2, 0, 1, 2])
    g = np.array([0.0, 1.0, 2.5, 4.0, 0.5, 1.0])
    out = np.asarray(G.sweep_denoiser(m, y, g)(x, 0.3))
    for i in range(6):
        ref = np.asarray(guided_denoiser(m, int(y[i]), float(g[i]))(x[i:i + 1], 0.3))[0]
        np.testing.assert_allclose(out[i], ref, rtol=1e-6, atol=1e-6)


def test_sweep_denoiser_bad_input():
    m = Toy()

    class Uncond:
        n_classes = None

    with pytest.raises(ValueError, match="class-conditional"):
        G.sweep_denoiser(Uncond(), [0], [1.0])
    with pytest.raises(ValueError, match="one scale per label"):
        G.sweep_denoiser(m, [0, 1], [1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        G.sweep_denoiser(m, [0, 1], [1.0, -1.0])
    with pytest.raises(ValueError, match=r"labels y must be in \[0, 2\]"):
        G.sweep_denoiser(m, [0, 3], [1.0, 1.0])
    with pytest.raises(ValueError, match="the batch has 3 examples"):
        G.sweep_denoiser(m, [0, 1], [1.0, 1.0])(jnp.zeros((3, 2, 2)), 0.5)


def test_mixture_model_equals_the_oracle_denoisers():
    mix = G.labelled_mixture(1.5, (0.8, 0.4))
    proc = P.vp((2,))
    model = G.MixtureModel(mix, proc)
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
    with pytest.raises(ValueError, match="does not match the mixture"):
        G.MixtureModel(mix, P.vp((3,)))


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
    pv, dec = G.within_class_diversity(x, np.zeros(3, int))
    assert abs(dec) < 1e-12 and pv > 0.1
    # an image and its negative: correlation -1
    pv, dec = G.within_class_diversity(np.stack([base, -base]), np.array([1, 1]))
    assert abs(dec - 2.0) < 1e-12
    np.testing.assert_allclose(pv, np.mean(base**2))
    # a class with one image is skipped; none with two is an error
    pv2, dec2 = G.within_class_diversity(np.stack([base, -base, base]), np.array([1, 1, 5]))
    assert (pv2, dec2) == (pv, dec)
    with pytest.raises(ValueError, match="two images"):
        G.within_class_diversity(np.stack([base, base]), np.array([0, 1]))


def test_moment_z_and_trace_ratio_on_exact_draws():
    cov = np.array([[1.0, 0.3], [0.3, 0.5]])
    x = np.random.default_rng(1).multivariate_normal([1.0, -1.0], cov, size=20000)
    assert G.moment_z(x, np.array([1.0, -1.0]), cov) < 5.0
    assert G.moment_z(x, np.array([1.1, -1.0]), cov) > 10.0  # a 0.1 shift is 14 SE
    r, se = G.trace_ratio(x, cov)
    assert abs(r - 1) < 5 * se and 0.005 < se < 0.02  # sqrt(2 tr S^2 / n) / tr Sigma = 0.0080
    assert G.strictly_decreasing([3, 2, 1]) and not G.strictly_decreasing([3, 3, 1])
    assert G.binomial_se(0.5, 100) == 0.05


def test_judge_matches_the_library_features_and_predictions():
    rng = np.random.default_rng(2)
    clf = clf_mod.Classifier((8, 8), 10, key=jax.random.key(3))
    x = rng.uniform(-1, 1, size=(37, 8, 8)).astype(np.float32)
    f, p = G.judge(clf, x, chunk=16)  # 37 = 2 full chunks + a padded one
    np.testing.assert_allclose(f, clf_mod.features(clf, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(p, clf_mod.predict(clf, x))


@pytest.mark.parametrize("bad, match", [
    (dict(gammas=(0.0, 2.0, 1.0)), "strictly increasing"),
    (dict(gammas=(0.0, 0.5, 2.0)), "contain 0 and 1"),
    (dict(gammas=(0.0, 1.0)), ">= 3"),
    (dict(grid_gammas=(5.0,)), "must be among gammas"),
    (dict(n_per_gamma=10), "n_per_gamma"),
    (dict(label_dropout=0.0), "label_dropout"),
    (dict(method="nope"), "among"),
    (dict(mixture_steps=(10,)), "one length"),
    (dict(mixture_methods=("ddim", "ddim")), "distinct"),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        G.Config(**bad)
