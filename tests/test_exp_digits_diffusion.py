"""Pure helpers of experiments/digits_diffusion.py against independent references (the
experiment itself runs at --preset smoke in tests/test_cli.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from experiments import _learned_common as lc
from experiments import digits_diffusion as dd
from opdiff.diffusion import basis, oracle


def _basis_matrix(shape, name):
    """Rows: the basis vectors (B with z = B x), built by transforming unit images."""
    d = math.prod(shape)
    eye = np.eye(d).reshape(d, *shape)
    return dd.to_basis64(eye, name, len(shape)).reshape(d, d).T


@pytest.mark.parametrize("name", ["identity", "dct", "dft"])
def test_to_basis64_matches_the_library_and_is_orthonormal(name):
    x = np.asarray(jax.random.normal(jax.random.key(0), (3, 6, 5)), np.float64)
    ref = np.asarray(basis.to_basis(jnp.asarray(x, jnp.float32), name, 2), np.float64)
    np.testing.assert_allclose(dd.to_basis64(x, name, 2), ref, atol=1e-5)
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
    np.testing.assert_allclose(dd.gaussian_log_density(x, field), ref, rtol=1e-10, atol=1e-9)


def test_gaussian_log_density_rejects_bad_input():
    field = oracle.GaussianField((4, 4), "dct", 0.0, 1.0)
    with pytest.raises(ValueError, match="x must have shape"):
        dd.gaussian_log_density(np.zeros((2, 4, 5)), field)
    with pytest.raises(TypeError, match="field"):
        dd.gaussian_log_density(np.zeros((2, 4, 4)), (0.0, 1.0))


@pytest.mark.parametrize("kind", ["white", "pink", "heat"])
def test_untrained_unet_is_the_wiener_filter_of_the_start_field(kind):
    """The claim behind drawing the untrained start's samples from the oracle's law: the
    untrained preconditioned U-Net is exactly the affine denoiser of ``wiener_start``."""
    rng = np.random.default_rng(2)
    x_train = np.clip(rng.normal(size=(50, 8, 8)), -1, 1).astype(np.float32)
    process = lc.make_process(kind, (8, 8))
    model = lc.make_unet_denoiser(process, x_train, channels=(8, 16), emb_dim=16,
                                  key=jax.random.key(3))
    start = dd.wiener_start(process, x_train)
    exact = start.denoiser(process)
    for t in (process.t_min * 3, 0.3 * process.T, 0.9 * process.T):
        x = jnp.asarray(rng.normal(size=(3, 8, 8)), jnp.float32)
        np.testing.assert_allclose(np.asarray(model.batched(x, t)), np.asarray(exact(x, t)),
                                   atol=2e-5, rtol=1e-4)


def test_law_samples_have_the_law_moments():
    m = np.linspace(-1, 1, 16).reshape(4, 4)
    w = np.linspace(0.1, 2.0, 16).reshape(4, 4)
    x = dd.law_samples(jax.random.key(4), 20000, m, w, "dct")
    z = dd.to_basis64(x, "dct", 2)
    n = len(z)
    assert np.all(np.abs(z.mean(0) - m) < 5 * np.sqrt(w / n))
    assert np.all(np.abs(z.var(0) / w - 1) < 5 * np.sqrt(2 / n))
    with pytest.raises(ValueError, match="finite"):
        dd.law_samples(jax.random.key(4), 3, m, -w, "dct")


def test_chance_bound_and_mean_se():
    assert dd.chance_bound(100) == pytest.approx(0.1 + 5 * 0.03)
    m, se = dd.mean_se([1.0, 2.0, 3.0])
    assert m == 2.0 and se == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(dd.mean_se([1.0])[1])


@pytest.mark.parametrize("bad, match", [
    (dict(processes=("white", "white")), "processes"),
    (dict(processes=("brown",)), "processes"),
    (dict(n_samples=55), "n_samples"),
    (dict(sampler="nope"), "sampler"),
    (dict(ema_decay=1.0), "ema_decay"),
    (dict(acc_min=1.5), "acc_min"),
    (dict(train_steps=0), "train_steps"),
    (dict(lr=-1.0), "lr"),
])
def test_config_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        dd.Config(**bad)


def _fake_results(cfg, rng):
    """A results dict of the shape ``study`` returns, with made-up numbers and images."""
    def metrics(fd):
        return {"fd": fd, "fd_same_n": fd + 1, "fd_data": 5.0, "sliced_w2": 0.1,
                "sliced_w2_data": 0.05, "spectrum_distance": 0.05,
                "spectrum_distance_data": 0.01}

    imgs = {k: rng.uniform(-1, 1, (40, 8, 8)).astype(np.float32)
            for k in ("data", "gaussian", "conditional")}
    models = {}
    for i, kind in enumerate(cfg.processes):
        models[kind] = {**metrics(10.0 + 20 * i), "untrained": metrics(200.0), "bpd": 3.0 + i,
                        "bpd_se": 0.05}
        imgs[kind] = imgs[f"{kind}_untrained"] = imgs["data"]
    models["conditional"] = {**metrics(12.0), "accuracy": 0.9, "n": 40}
    imgs["conditional_labels"] = np.tile(np.arange(10), 4)
    return {"_samples": imgs, "n_test": 297, "n_same": 40, "classifier_test_accuracy": 0.97,
            "gaussian": {**metrics(80.0), "bpd": 3.9}, "models": models,
            "exact_kl": {"white": 2.7, "pink": 2.7, "heat": 42.3},
            "ranking_fd": list(cfg.processes)}


def test_checks_and_figures_on_made_up_results(tmp_path):
    cfg = dd.Config(n_samples=40)
    res = _fake_results(cfg, np.random.default_rng(5))
    rep = dd.Report()
    dd.add_checks(rep, res, cfg, "digits")
    by_claim = {}
    for c in rep.checks:
        by_claim.setdefault(c.claim.split(". ")[0].split("] ")[1], []).append(c.holds)
    # 1: three processes; 2: Gaussian + 3 + conditional; 3: two; 4: one; 5: three; 6: four
    assert {k: len(v) for k, v in by_claim.items()} == {"1": 3, "2": 5, "3": 2, "4": 1,
                                                       "5": 3, "6": 4}
    assert by_claim["4"] == [True]  # heat FD 50 > white FD 10
    assert by_claim["5"] == [True, False, False]  # bpd 3, 4, 5 vs 3.9: only the first holds
    names = dd.figures(res, cfg, tmp_path, "x")
    assert names == ["x_samples.png", "x_conditional.png", "x_metrics.png", "x_rapsd.png"]
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)


def test_mosaic_places_images_row_by_row():
    x = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    m = dd.mosaic(x, 2, 3, pad=1, fill=-9)
    assert m.shape == (2 * 3 - 1, 3 * 4 - 1)
    np.testing.assert_array_equal(m[0:2, 4:7], x[1])
    np.testing.assert_array_equal(m[3:5, 4:7], x[4])
    assert np.all(m[3:5, 8:11] == -9) and np.all(m[2] == -9)
    with pytest.raises(ValueError, match="images"):
        dd.mosaic(x[0], 1, 1)
