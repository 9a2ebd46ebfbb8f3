"""The heat semigroup and its inverse problem against closed forms and hand computations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.operators import heat


@pytest.mark.parametrize("k", [1, 3, 7])
def test_periodic_modes_decay_exactly(x64, k):
    x = heat.periodic_grid(64)
    t, nu = 0.3, 0.01
    for mode in (np.sin, np.cos):
        u = mode(2 * np.pi * k * x)
        out = heat.periodic(jnp.asarray(u), t, nu)
        np.testing.assert_allclose(out, np.exp(-4 * np.pi**2 * k**2 * nu * t) * u, atol=1e-14)


def test_periodic_float32_and_batch_and_semigroup():
    x = heat.periodic_grid(32)
    u = jnp.asarray(np.stack([np.sin(2 * np.pi * x), np.cos(6 * np.pi * x)]), jnp.float32)
    out = heat.periodic(u, 0.5, 0.02)
    assert out.dtype == jnp.float32 and out.shape == (2, 32)
    np.testing.assert_allclose(out[0], np.exp(-4 * np.pi**2 * 0.01) * u[0], atol=1e-6)
    # e^{t A} e^{s A} = e^{(t+s) A}
    rng = np.random.default_rng(0)
    v = jnp.asarray(rng.normal(size=(3, 32)), jnp.float32)
    two = heat.periodic(heat.periodic(v, 0.1, 0.05), 0.2, 0.05)
    np.testing.assert_allclose(two, heat.periodic(v, 0.3, 0.05), atol=1e-5)
    np.testing.assert_allclose(heat.periodic(v, 0.0, 0.05), v, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 9])
def test_dirichlet_sine_modes_decay_exactly(x64, k):
    x = heat.dirichlet_grid(50)
    u = np.sin(np.pi * k * x)
    out = heat.dirichlet(jnp.asarray(u), 0.2, 0.03)
    np.testing.assert_allclose(out, np.exp(-np.pi**2 * k**2 * 0.03 * 0.2) * u, atol=1e-13)


def test_heat_multiplier_is_the_one_factor(x64):
    # exp(-lambda t) against the closed forms of both domains, NumPy and JAX (traced) inputs,
    # its log, and the heat-dissipation process's blur (its scale is exp(-lambda_k tau(t)))
    from opdiff.diffusion import processes

    k, t, nu = np.arange(5), 0.03, 0.7
    np.testing.assert_allclose(heat.periodic_multiplier(k, t, nu),
                               np.exp(-4 * np.pi**2 * k**2 * nu * t), rtol=1e-15)
    np.testing.assert_allclose(heat.dirichlet_multiplier(k, t, nu),
                               np.exp(-(np.pi**2) * k**2 * nu * t), rtol=1e-15)
    lam = np.array([0.0, 1.5, 40.0])
    out = heat.heat_multiplier(lam, 0.2)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, np.exp(-lam * 0.2), rtol=1e-15)
    np.testing.assert_array_equal(heat.heat_multiplier(lam, 0.2, log=True), -lam * 0.2)
    traced = jax.jit(lambda e, s: heat.heat_multiplier(e, s))(jnp.asarray(lam), 0.2)
    np.testing.assert_allclose(traced, out, rtol=1e-15)
    proc = processes.heat_dissipation((6, 6))
    tau = proc.heat_time(0.4)
    np.testing.assert_allclose(proc.scale(0.4), heat.heat_multiplier(proc.eigenvalues, float(tau)),
                               rtol=1e-13)


def test_dirichlet_matches_the_series_solution_of_a_parabola(x64):
    # u0 = x(1-x) = sum over odd k of 8/(pi^3 k^3) sin(pi k x); the PDE solution is the same
    # series with e^{-pi^2 k^2 nu t}. The grid operator is exact for the sine interpolant, which
    # differs from the series by aliasing of O(N^-3).
    n, t, nu = 255, 0.05, 0.1
    x = heat.dirichlet_grid(n)
    k = np.arange(1, 20001, 2)
    series = (8 / (np.pi**3 * k**3) * np.exp(-np.pi**2 * k**2 * nu * t)) @ np.sin(
        np.pi * np.outer(k, x))
    out = heat.dirichlet(jnp.asarray(x * (1 - x)), t, nu)
    np.testing.assert_allclose(out, series, atol=1e-7)


def _two_mode_setup(n=16):
    # Prior on modes 1 and 3 only, everything else zero.
    mu = np.zeros(n // 2 + 1)
    mu[1], mu[3] = 0.7, 0.2
    return mu


def test_wiener_is_the_bayes_posterior_mean_on_two_modes(x64):
    # Independent computation: Gaussian conditioning on the grid with dense matrices.
    n, t, nu, delta = 16, 0.05, 0.1, 0.05
    mu = _two_mode_setup(n)
    x = heat.periodic_grid(n)
    # Orthonormal (in L2(0,1)) basis functions on the grid: sqrt2 cos/sin of modes 1 and 3.
    phis, var = [], []
    for k in (1, 3):
        for f in (np.cos, np.sin):
            phis.append(np.sqrt(2) * f(2 * np.pi * k * x))
            var.append(mu[k])
    Phi = np.stack(phis, 1)                     # grid values of the basis, [n, 4]
    a = np.exp(-4 * np.pi**2 * nu * t * np.array([1, 1, 9, 9]))
    s2 = delta**2 * n                           # pointwise noise variance
    cov_u = Phi @ np.diag(var) @ Phi.T          # prior covariance of the grid values
    H = Phi @ np.diag(a) @ np.linalg.pinv(Phi)  # forward map on span(Phi)
    cov_f = H @ cov_u @ H.T + s2 * np.eye(n)
    gain = cov_u @ H.T @ np.linalg.inv(cov_f)   # E[u | f] = gain f
    rng = np.random.default_rng(3)
    f = rng.normal(size=(5, n))
    expected = f @ gain.T
    got = heat.wiener_inverse(jnp.asarray(f), t, nu, delta, mu)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # and the posterior covariance trace / n is the exact Wiener MSE
    post = cov_u - gain @ H @ cov_u
    assert heat.wiener_mse(n, mu, t, nu, delta) == pytest.approx(np.trace(post) / n, rel=1e-12)


def test_cutoff_mse_matches_the_reference_formula_and_orderings(x64):
    n, t, nu, delta = 65, 0.01, 0.05, 1e-3
    k = heat.wavenumbers(n)
    mu = (4 * np.pi**2 * k**2 + 25.0) ** -2.0
    K = np.arange(0, 33)
    # reference/deeponet.md §6.2: 2 sum_{k>K} mu_k + delta^2 (1 + 2 sum_{k<=K} e^{8 pi^2 nu T k^2})
    ref = np.array([2 * mu[kk + 1:].sum()
                    + delta**2 * (1 + 2 * np.sum(np.exp(8 * np.pi**2 * nu * t * k[1:kk + 1] ** 2)))
                    for kk in K])
    np.testing.assert_allclose(heat.cutoff_mse(n, mu, t, nu, delta, K), ref, rtol=1e-12)
    w = heat.wiener_mse(n, mu, t, nu, delta)
    cut = heat.cutoff_mse(n, mu, t, nu, delta, K)
    assert w <= cut.min() <= heat.naive_mse(n, t, nu, delta)
    assert heat.naive_mse(n, t, nu, delta) == pytest.approx(cut[-1], rel=1e-12)


def test_monte_carlo_errors_match_the_exact_mse():
    # Draw u from the prior in Fourier space, observe, invert; the empirical MSE over S samples
    # has relative standard error about sqrt(2 / (S * effective dof)); with S = 4000 and tens
    # of modes a 5 % tolerance is > 5 standard errors.
    n, t, nu, delta = 64, 0.02, 0.05, 2e-3
    k = heat.wavenumbers(n)
    mu = (4 * np.pi**2 * k**2 + 4.0) ** -1.5
    S = 4000
    kprior, knoise = jax.random.split(jax.random.key(0))
    # Build u = sum_i c_i phi_i from the real L2-orthonormal basis on the grid (independent of
    # the FFT conventions used by the estimators): 1, sqrt2 cos, sqrt2 sin, Nyquist (-1)^j.
    x = heat.periodic_grid(n)
    basis, var = [np.ones(n)], [mu[0]]
    for kk in range(1, n // 2):
        basis += [np.sqrt(2) * np.cos(2 * np.pi * kk * x), np.sqrt(2) * np.sin(2 * np.pi * kk * x)]
        var += [mu[kk], mu[kk]]
    basis.append(np.cos(np.pi * n * x))
    var.append(mu[n // 2])
    basis = np.stack(basis)                     # [n, n]
    np.testing.assert_allclose(basis @ basis.T / n, np.eye(n), atol=1e-9)
    c = jax.random.normal(kprior, (S, n)) * np.sqrt(np.array(var))
    u = c @ jnp.asarray(basis, jnp.float32)
    f = heat.observe(u, t, nu, delta, key=knoise)
    for est, exact in [
        (heat.wiener_inverse(f, t, nu, delta, mu), heat.wiener_mse(n, mu, t, nu, delta)),
        (heat.cutoff_inverse(f, t, nu, 6), heat.cutoff_mse(n, mu, t, nu, delta, 6)),
    ]:
        mse = float(jnp.mean((est - u) ** 2))
        assert mse == pytest.approx(exact, rel=0.05)


def test_mode_decay_of_two_modes_is_the_multiplier(x64):
    n, nu = 32, 0.1
    x = heat.periodic_grid(n)
    u0 = np.sin(2 * np.pi * 2 * x) + 0.5 * np.cos(2 * np.pi * 5 * x)
    out = heat.mode_decay(u0, (0.01, 0.05), nu)
    assert out["ratio"].shape == (2, n // 2 + 1) and np.all(out["deviation"] < 1e-13)
    for j, t in enumerate((0.01, 0.05)):
        for k in (2, 5):
            assert out["ratio"][j, k] == pytest.approx(np.exp(-4 * np.pi**2 * k**2 * nu * t),
                                                       rel=1e-12)


def test_harmonic_features_are_the_periodic_harmonics():
    z = heat.harmonic_features(8, 3)
    x = np.arange(8) / 8
    assert z.shape == (8, 6)
    np.testing.assert_allclose(z[:, 1], np.sin(4 * np.pi * x), atol=1e-15)
    np.testing.assert_allclose(z[:, 5], np.cos(6 * np.pi * x), atol=1e-15)


def test_forward_and_posterior_spectra_by_dense_gaussian_algebra(x64):
    # the same Gaussian conditioning as above, on every mode: the forward outputs' covariance
    # spectrum, and the spectrum of E[u|f] whose tail beyond p is the p-basis excess
    n, t, nu, delta = 12, 0.02, 0.3, 0.05
    k = heat.wavenumbers(n)
    mu = 1.0 / (1.0 + k**2.0) ** 1.5
    x = heat.periodic_grid(n)
    cols, var = [np.ones(n)], [mu[0]]
    for kk in range(1, n // 2):
        cols += [np.sqrt(2) * np.cos(2 * np.pi * kk * x), np.sqrt(2) * np.sin(2 * np.pi * kk * x)]
        var += [mu[kk]] * 2
    cols.append(np.cos(np.pi * n * x))
    var.append(mu[n // 2])
    Phi = np.stack(cols, 1)  # orthonormal in L2(0,1) on the grid: Phi^T Phi / n = I
    a = np.exp(-4 * np.pi**2 * nu * t * np.concatenate(
        [[0], np.repeat(np.arange(1, n // 2) ** 2, 2), [(n // 2) ** 2]]))
    cov_u = Phi @ np.diag(var) @ Phi.T
    H = Phi @ np.diag(a) @ Phi.T / n
    lam = np.linalg.eigvalsh(H @ cov_u @ H.T / n)[::-1]  # L2(0,1) covariance operator
    np.testing.assert_allclose(heat.forward_spectrum(n, mu, t, nu), lam, rtol=1e-9, atol=1e-14)
    gain = cov_u @ H.T @ np.linalg.inv(H @ cov_u @ H.T + delta**2 * n * np.eye(n))
    cov_f = H @ cov_u @ H.T + delta**2 * n * np.eye(n)
    post = np.linalg.eigvalsh(gain @ cov_f @ gain.T / n)[::-1]  # spectrum of E[u|f]
    np.testing.assert_allclose(np.sort(heat.posterior_mean_spectrum(n, mu, t, nu, delta))[::-1],
                               post, rtol=1e-9, atol=1e-14)
    o = heat.backward_oracles(n, mu, t, nu, delta)
    assert o["wiener"] == pytest.approx(heat.wiener_mse(n, mu, t, nu, delta))
    assert o["wiener"] <= o["best_cutoff"] <= o["naive"]
    cut = heat.cutoff_mse(n, mu, t, nu, delta, np.arange(n // 2 + 1))
    assert o["best_cutoff"] == cut.min() and o["best_k"] == int(np.argmin(cut))
    # Pythagoras: E||u - E[u|f]||^2 + E||E[u|f]||^2 = E||u||^2 (the prior energy)
    prior = np.sum(heat.multiplicities(n) * mu)
    assert o["wiener"] + post.sum() == pytest.approx(prior, rel=1e-12)


def test_make_pairs_backward_and_forward_cells():
    from opdiff.functions import PeriodicPowerLawField

    field = PeriodicPowerLawField(n=16, alpha=2.0, k0=1.0)
    cells = (("backward", 0.02, 0.1), ("forward", 0.01, 0.0))
    uk, nk = jax.random.key(0), jax.random.key(1)
    ins, outs = heat.make_pairs(field, cells, 0.5, uk, nk, 4)
    u = field.sample(4, key=uk)
    assert ins.shape == outs.shape == (2, 4, 16)
    np.testing.assert_allclose(outs[0], u, rtol=1e-6)
    np.testing.assert_allclose(ins[0], heat.observe(u, 0.02, 0.5, 0.1,
                                                    key=jax.random.fold_in(nk, 0)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(ins[1], u, rtol=1e-6)
    np.testing.assert_allclose(outs[1], heat.periodic(u, 0.01, 0.5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: heat.periodic(jnp.ones(8), -1.0, 0.1), "t must be"),
        (lambda: heat.periodic(jnp.ones(8), 1.0, float("nan")), "nu must be"),
        (lambda: heat.periodic(jnp.ones(()), 1.0, 0.1), "u must have shape"),
        (lambda: heat.periodic(jnp.array([1.0, jnp.nan]), 1.0, 0.1), "u contains NaN"),
        (lambda: heat.cutoff_inverse(jnp.ones(8), 1.0, 0.1, -1), "cutoff must be"),
        (lambda: heat.wiener_inverse(jnp.ones(8), 1.0, 0.1, 0.1, np.ones(3)), "mu must have"),
        (lambda: heat.wiener_mse(8, -np.ones(5), 1.0, 0.1, 0.1), "non-negative"),
        (lambda: heat.periodic_grid(1), "n must be"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
