"""Random-feature networks and least squares: laws of the hidden layer, exact fits, oracles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import opdiff
from opdiff.approx import fourier, lstsq
from opdiff.approx import random_features as rf


# ----------------------------------------------------------------------------- least squares
@pytest.mark.parametrize("method", lstsq.METHODS)
def test_lstsq_matches_numpy_weighted_and_ridge(x64, method):
    rng = np.random.default_rng(0)
    A, y, w = rng.normal(size=(60, 12)), rng.normal(size=(60, 2)), rng.uniform(0.1, 2, 60)
    sw = np.sqrt(w)
    ref = np.linalg.lstsq(A * sw[:, None], y * sw[:, None], rcond=None)[0]
    np.testing.assert_allclose(lstsq.solve(A, y, weights=w, method=method), ref, atol=1e-11)
    ridge = np.linalg.solve(A.T @ A + 0.7 * np.eye(12), A.T @ y[:, 0])
    np.testing.assert_allclose(lstsq.solve(A, y[:, 0], ridge=0.7, method=method), ridge,
                               atol=1e-11)


def test_lstsq_svd_is_minimum_norm_when_underdetermined(x64):
    rng = np.random.default_rng(1)
    A, y = rng.normal(size=(5, 9)), rng.normal(size=5)
    np.testing.assert_allclose(lstsq.solve(A, y, method="svd"), np.linalg.pinv(A) @ y, atol=1e-12)


def test_lstsq_vmaps_over_ridge(x64):
    rng = np.random.default_rng(2)
    A, y = rng.normal(size=(30, 6)), rng.normal(size=30)
    ridges = jnp.array([0.0, 0.1, 3.0])
    batched = jax.vmap(lambda r: lstsq.solve(A, y, ridge=r))(ridges)
    for r, c in zip(ridges, batched):
        np.testing.assert_allclose(c, np.linalg.solve(A.T @ A + float(r) * np.eye(6), A.T @ y),
                                   atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(A=np.ones((3, 5)), y=np.ones(3)), "at least as many samples as unknowns"),
        (dict(A=np.ones((5, 2)), y=np.ones(4)), "y must have shape (5,)"),
        (dict(A=np.ones(5), y=np.ones(5)), "A must be a 2-D"),
        (dict(A=np.ones((5, 2)), y=np.ones(5), ridge=-1.0), "ridge must be >= 0"),
        (dict(A=np.ones((5, 2)), y=np.ones(5), method="lu"), "method must be one of"),
        (dict(A=np.ones((5, 2)), y=np.ones(5), weights=np.ones(4)), "weights must have shape (5,)"),
    ],
)
def test_lstsq_bad_input(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        lstsq.solve(kwargs.pop("A"), kwargs.pop("y"), **kwargs)


# ------------------------------------------------------------------------------ hidden layer
@pytest.mark.parametrize("distribution", rf.DISTRIBUTIONS)
def test_hidden_weights_stay_in_the_bounded_domain(distribution):
    lam, d = 3.5, 3
    h = rf.sample_hidden(jax.random.key(0), 4000, d, bandwidth=lam, distribution=distribution)
    a, b = np.asarray(h.weights), np.asarray(h.biases)
    assert a.shape == (4000, d) and b.shape == (4000,)
    assert np.abs(b).max() <= lam
    if distribution == "ball":
        r = np.linalg.norm(a, axis=1)
        assert r.max() <= lam * (1 + 1e-6)
        # uniform in the 3-ball: P(|a| <= lam/2) = 1/8, with ~5 sigma slack at n = 4000
        assert abs(np.mean(r <= lam / 2) - 1 / 8) < 5 * np.sqrt(1 / 8 * 7 / 8 / 4000)
    else:
        assert np.abs(a).max() <= lam
        if distribution == "box":  # U[-lam, lam]: variance lam^2 / 3
            assert abs(a.var() / (lam**2 / 3) - 1) < 0.05
        else:  # N(0, (lam/2)^2) truncated at 2 sigma: variance factor 0.7737
            assert abs(a.var() / ((lam / 2) ** 2 * 0.77374) - 1) < 0.05


def test_integer_frequencies_are_uniform_on_the_lattice():
    h = rf.sample_hidden(jax.random.key(3), 20000, 1, bandwidth=3.7, integer=True, bias="phase")
    k = np.asarray(h.weights[:, 0])
    np.testing.assert_array_equal(k, np.round(k))
    counts = np.array([(k == j).sum() for j in range(-3, 4)])
    assert counts.sum() == 20000
    assert np.all(np.abs(counts / 20000 - 1 / 7) < 5 * np.sqrt(1 / 7 * 6 / 7 / 20000))
    b = np.asarray(h.biases)
    assert b.min() >= 0 and b.max() < 2 * np.pi


def test_same_key_same_features_different_key_different():
    a = rf.sample_hidden(jax.random.key(7), 16, 2, bandwidth=1.0)
    b = rf.sample_hidden(jax.random.key(7), 16, 2, bandwidth=1.0)
    c = rf.sample_hidden(jax.random.key(8), 16, 2, bandwidth=1.0)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.allclose(a.weights, c.weights)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(bandwidth=0.0), "bandwidth must be > 0"),
        (dict(bandwidth=-2.0), "bandwidth must be > 0"),
        (dict(bandwidth=1.0, n_features=0), "n_features must be an int >= 1"),
        (dict(bandwidth=1.0, distribution="cauchy"), "distribution must be one of"),
        (dict(bandwidth=1.0, bias="random"), "bias must be one of"),
        (dict(bandwidth=1.0, integer=True, distribution="ball"), "integer=True needs"),
    ],
)
def test_sample_hidden_bad_input(kwargs, fragment):
    kwargs.setdefault("n_features", 8)
    with pytest.raises(ValueError, match=fragment):
        rf.sample_hidden(jax.random.key(0), kwargs.pop("n_features"), 1, **kwargs)


def test_unknown_activation_is_refused():
    h = rf.sample_hidden(jax.random.key(0), 4, 1, bandwidth=1.0)
    with pytest.raises(ValueError, match="activation must be one of"):
        rf.design_matrix(h, jnp.zeros(3), "softsign")
    with pytest.raises(ValueError, match="activation must be one of"):
        rf.RandomFeatureNet(1, 4, bandwidth=1.0, key=jax.random.key(0), activation="swish")
    with pytest.raises(ValueError, match="x must have shape"):
        rf.design_matrix(h, jnp.zeros((3, 2)), "tanh")


@pytest.mark.parametrize("activation", sorted(rf.ACTIVATIONS))
def test_design_matrix_is_sigma_of_affine_map(x64, activation):
    h = rf.sample_hidden(jax.random.key(1), 5, 2, bandwidth=2.0)
    x = jax.random.normal(jax.random.key(2), (4, 2))
    ref = {"sigmoid": lambda t: 1 / (1 + np.exp(-t)), "tanh": np.tanh,
           "relu": lambda t: np.maximum(t, 0), "sin": np.sin, "cos": np.cos,
           "gaussian": lambda t: np.exp(-t * t)}[activation]
    t = np.asarray(x) @ np.asarray(h.weights).T - np.asarray(h.biases)
    np.testing.assert_allclose(rf.design_matrix(h, x, activation), ref(t), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------- fitting
def test_fit_equals_numpy_lstsq_on_the_design_matrix(x64):
    h = rf.sample_hidden(jax.random.key(4), 40, 1, bandwidth=8.0)
    x = jnp.linspace(0, 1, 200)
    y = jnp.exp(-((10 * x - 4) ** 2))
    A = np.asarray(rf.design_matrix(h, x))
    ref = np.linalg.lstsq(A, np.asarray(y), rcond=None)[0]
    res = lambda c: np.linalg.norm(A @ np.asarray(c) - np.asarray(y))  # noqa: E731
    # Sigmoid features are numerically rank-deficient, so coefficients are not unique: compare
    # residuals. The SVD method truncates like numpy (same rcond) and must agree with it; QR
    # solves the full problem and can only do better.
    # (1e-4: two SVD codes differ in the singular vectors near the cut-off)
    assert abs(res(rf.solve(h, x, y, method="svd")) / res(ref) - 1) < 1e-4
    assert res(rf.solve(h, x, y)) <= res(ref) * (1 + 1e-9)


def test_torus_fourier_features_hit_the_out_of_band_energy_exactly(x64):
    """cos(k x - b) with integer |k| <= Omega and random phases: once every k is drawn the
    least-squares error equals the Fourier tail of 1/(a - cos x) (closed form)."""
    a, omega = 1.5, 6
    h = rf.sample_hidden(jax.random.key(5), 200, 1, bandwidth=omega + 0.5, integer=True,
                         bias="phase")
    assert set(np.abs(np.asarray(h.weights[:, 0])).astype(int)) == set(range(omega + 1))
    x = jnp.asarray(fourier.grid(256))
    y = fourier.inverse_cosine(x, a)
    c = rf.solve(h, x, y, "cos", method="svd")
    mse = float(jnp.mean((rf.predict(h, c, x, "cos") - y) ** 2))
    tail = float(fourier.inverse_cosine_tail(a, omega))
    assert abs(mse / tail - 1) < 1e-8, (mse, tail)
    # the same bandwidth with real (non-integer) frequencies beats the "floor": it is not one
    hr = rf.sample_hidden(jax.random.key(5), 200, 1, bandwidth=omega + 0.5, bias="phase")
    cr = rf.solve(hr, x, y, "cos", method="svd")
    assert float(jnp.mean((rf.predict(hr, cr, x, "cos") - y) ** 2)) < 1e-3 * tail


def test_fit_sweep_matches_a_python_loop(x64):
    key = jax.random.key(11)
    x = jnp.linspace(0, 1, 120)
    y = jnp.sin(6 * x)
    xt = jnp.linspace(0.003, 0.997, 50)
    yt = jnp.sin(6 * xt)
    lams = jnp.array([1.0, 4.0, 20.0])
    errs = rf.solve_sweep(key, x, y, xt, yt, n_features=30, bandwidths=lams, n_seeds=2,
                        ridge=1e-12, relative_ridge=True)
    assert errs.shape == (3, 2)
    for i, lam in enumerate(lams):
        for s in range(2):
            h = rf.sample_hidden(jax.random.fold_in(key, s), 30, 1, bandwidth=lam)
            A = rf.design_matrix(h, x)
            c = lstsq.solve(A, y, ridge=1e-12 * float(jnp.sum(A * A)) / 30)
            e = float(jnp.sqrt(jnp.mean((rf.predict(h, c, xt) - yt) ** 2)))
            assert abs(float(errs[i, s]) / e - 1) < 1e-6


def test_bandlimited_sigmoid_features_plateau_at_small_bandwidth(x64):
    """The Li et al. phenomenon: with |a|, |b| <= 0.5 the fitted error of a sharp bump stays
    large however many features; with lambda = 100 it is 10x smaller at the same width."""
    x = jnp.linspace(0, 1, 400)
    f = lambda t: jnp.exp(-((40 * t - 20) ** 2))  # noqa: E731
    xt = jnp.linspace(0.001, 0.999, 97)
    errs = rf.solve_sweep(jax.random.key(0), x, f(x), xt, f(xt), n_features=150,
                        bandwidths=jnp.array([0.5, 100.0]), n_seeds=2, ridge=1e-10,
                        relative_ridge=True)
    small, large = np.asarray(errs).mean(axis=1)
    assert small > 10 * large, (small, large)


def test_net_solve_and_engine_training_agree(x64):
    """Training the output layer through opdiff.fit leaves the hidden layer frozen, never
    beats the exact least-squares solution on the training set, and approaches it."""
    key = jax.random.key(3)
    x = jnp.linspace(-1, 1, 64)[:, None]
    y = jnp.tanh(3 * x)
    net = rf.RandomFeatureNet(1, 16, bandwidth=3.0, key=key, activation="tanh",
                              param_dtype=jnp.float64)
    exact = rf.RandomFeatureNet(1, 16, bandwidth=3.0, key=key, activation="tanh",
                                param_dtype=jnp.float64).solve(x, y)
    mse = lambda m: float(jnp.mean((jax.vmap(m)(x) - y) ** 2))  # noqa: E731
    np.testing.assert_array_equal(net.weights[...], exact.weights[...])

    def loss(model, batch, _key):
        xb, yb = batch
        return jnp.mean((jax.vmap(model)(xb) - yb) ** 2)

    res = opdiff.fit(loss, net, optax.adam(1e-2), (x, y), steps=3000, key=key,
                     steps_per_call=500, progress=False)
    trained = res.params
    np.testing.assert_array_equal(trained.weights[...], net.weights[...])  # frozen
    assert mse(exact) <= mse(trained) * (1 + 1e-9)
    # ... and gets most of the way: the tanh features are ill-conditioned (the exact fit is
    # 5e-8, Adam after 3000 steps ~3e-4), so only the first decades are fast.
    assert mse(trained) < 1e-2 * float(jnp.mean(y**2)), mse(trained)
    with pytest.raises(ValueError, match="x must have shape"):
        exact(jnp.zeros(2))
    with pytest.raises(ValueError, match="at least as many samples"):
        net.solve(x[:8], y[:8])
