"""Orthonormal bases, optimal (Christoffel) sampling, the projection DPP and volume-rescaled
sampling: exact identities and fixed-key statistical tests with stated thresholds."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from opdiff.approx import bases
from opdiff.approx import sampling as S

KS_P_MIN = 1e-3  # statistical tests: fixed keys, reject below this p-value


def _cdf_on_grid(name, m):
    """The CDF of (k_m/m) dmu on 8193 equispaced points of the domain (one compilation per basis
    and m)."""
    lo, hi = bases.get(name).domain
    grid = np.linspace(lo, hi, 8193)
    return grid, np.asarray(S.optimal_cdf(name, grid, m))


def _ks_p(x, name, m):
    """Kolmogorov-Smirnov p-value of the points ``x`` against (k_m/m) dmu.

    The CDF is interpolated linearly from :func:`_cdf_on_grid`: error <= h^2 max|F''|/8 ~ 1e-6,
    far below the KS resolution 1/sqrt(N) >= 5e-3 here.
    """
    grid, F = _cdf_on_grid(name, m)
    return stats.kstest(np.ravel(np.asarray(x)), lambda t: np.interp(t, grid, F)).pvalue


# ------------------------------------------------------------------------------------ bases


@pytest.mark.parametrize("name", bases.BASES)
def test_bases_are_orthonormal_by_gauss_quadrature(x64, name):
    x, w = bases.quadrature(name, 64)  # exact for products of degree <= 127 (trig: <= 63)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    for m in (1, 2, 30):
        P = np.asarray(bases.evaluate(name, x, m))
        assert P.shape == (64, m)
        np.testing.assert_allclose((P * w[:, None]).T @ P, np.eye(m), rtol=0, atol=1e-12)


def test_bases_match_closed_forms(x64):
    x = np.linspace(-1, 1, 101)
    for m in (7, 40):  # unrolled recurrence (m <= 8) and lax.scan
        j = np.arange(m)
        np.testing.assert_allclose(bases.legendre(x, m),
                                   np.sqrt(2 * j + 1) * special.eval_legendre(j, x[:, None]),
                                   rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(bases.chebyshev(x, m),
                                   np.where(j == 0, 1.0, np.sqrt(2))
                                   * np.cos(j * np.arccos(x[:, None])), atol=1e-12)
    t = np.linspace(0, 2 * np.pi, 50)[:, None]
    F = np.asarray(bases.fourier(t[:, 0], 5))
    expected = np.hstack([np.ones_like(t), np.sqrt(2) * np.cos(t), np.sqrt(2) * np.sin(t),
                          np.sqrt(2) * np.cos(2 * t), np.sqrt(2) * np.sin(2 * t)])
    np.testing.assert_allclose(F, expected, atol=1e-13)
    # batch shapes are kept
    assert bases.evaluate("legendre", jnp.zeros((3, 4)), 6).shape == (3, 4, 6)


@pytest.mark.parametrize("name", bases.BASES)
def test_sup_norms_and_the_rejection_envelope(x64, name):
    spec = bases.get(name)
    x = np.linspace(*spec.domain, 40001)
    P2 = np.asarray(bases.evaluate(name, x, 120)) ** 2
    # (attained at +-1 for the polynomials; on the grid to O(h^2) for sin kx)
    np.testing.assert_allclose(P2.max(axis=0), bases.sup_norm_sq(name, 120), rtol=1e-4)
    # phi_j^2 <= e(x) for every j (Bernstein's inequality for Legendre), and sharply so.
    ratio = P2 * np.asarray(spec.inv_envelope(jnp.asarray(x)))[:, None]
    assert ratio.max() <= 1.0 + 1e-12
    assert ratio.max() > 0.99
    # the envelope law has mass C: int e dmu = C (quadrature of 1/inv_envelope is singular for
    # Legendre, so check it through the proposal: E_nu[1/e] = 1/C)
    u = spec.proposal(jnp.linspace(0.5 / 4096, 1 - 0.5 / 4096, 4096))
    assert float(jnp.mean(spec.inv_envelope(u))) == pytest.approx(1 / spec.envelope_mass, rel=1e-6)


def test_reference_measures_are_sampled_correctly(x64):
    key = jax.random.key(0)
    cdfs = {"legendre": lambda x: (x + 1) / 2,
            "chebyshev": lambda x: np.arccos(-np.clip(x, -1, 1)) / np.pi,
            "fourier": lambda x: x / (2 * np.pi)}
    for i, name in enumerate(bases.BASES):
        x = np.asarray(bases.sample_measure(jax.random.fold_in(key, i), name, (4000,)))
        assert stats.kstest(x, cdfs[name]).pvalue > KS_P_MIN
    # for m = 1 the optimal law is mu itself
    for name in bases.BASES:
        grid, F = _cdf_on_grid(name, 1)
        np.testing.assert_allclose(F, cdfs[name](grid), atol=1e-12)


# ------------------------------------------------------------------ Christoffel and weights


@pytest.mark.parametrize("name", bases.BASES)
def test_inverse_christoffel_integrates_to_m(x64, name):
    x, w = bases.quadrature(name, 80)
    for m in (1, 6):
        k = np.asarray(S.inverse_christoffel(name, x, m))
        assert w @ k == pytest.approx(m, rel=1e-13)
        np.testing.assert_allclose(S.optimal_weights(name, x, m), m / k, rtol=1e-15)
        assert w @ np.asarray(S.christoffel_density(name, x, m)) == pytest.approx(1, rel=1e-13)
        _, F = _cdf_on_grid(name, m)
        assert F[0] == pytest.approx(0, abs=1e-14) and F[-1] == pytest.approx(1, abs=1e-12)
        assert np.all(np.diff(F) >= -1e-15)
    # Legendre closed form: k_m(1) = sum_j (2j + 1) = m^2; Fourier: k_m = m for odd m.
    assert float(S.inverse_christoffel("legendre", 1.0, 9)) == pytest.approx(81, rel=1e-13)
    np.testing.assert_allclose(S.inverse_christoffel("fourier", np.linspace(0, 6, 7), 7), 7.0,
                               rtol=1e-13)
    # a callable basis works too
    assert float(S.inverse_christoffel(bases.legendre, 1.0, 4)) == pytest.approx(16, rel=1e-13)


def test_optimal_sampler_matches_christoffel_density_and_weights(x64):
    m, n = M, 20000
    s = S.ensure_ok(S.sample_optimal(jax.random.key(1), "legendre", m, n))
    x, w = np.asarray(s.x), np.asarray(s.weights)
    assert x.shape == w.shape == (n,) and bool(s.ok)
    assert _ks_p(x, "legendre", m) > KS_P_MIN
    # the same test rejects uniform points (it has power at this n)
    u = np.asarray(bases.sample_measure(jax.random.key(2), "legendre", (n,)))
    assert _ks_p(u, "legendre", m) < 1e-6
    np.testing.assert_allclose(w, m / np.asarray(S.inverse_christoffel("legendre", x, m)),
                               rtol=1e-14)
    # E_rho[w phi phi^T] = I: every entry of the weighted Gram matrix within 5 standard errors
    phi = np.asarray(bases.legendre(x, m))
    terms = w[:, None, None] * phi[:, :, None] * phi[:, None, :]
    se = terms.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(terms.mean(axis=0) - np.eye(m)) <= 5 * se + 1e-12)
    # other bases (m = 6 even: the Fourier density is not constant)
    for name in ("chebyshev", "fourier"):
        s = S.sample_optimal(jax.random.key(3), name, 6, 5000)
        assert bool(s.ok) and _ks_p(s.x, name, 6) > KS_P_MIN


# --------------------------------------------------------------------------- projection DPP

M = 5  # Legendre dimension of the shared DPP draws
DRAWS = 4000


@pytest.fixture(scope="module")
def dpp_legendre():
    """4000 projection-DPP draws (Legendre, m = 5), float64, shared by the tests below."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        d = S.ensure_ok(S.projection_dpp_batch(jax.random.key(0), "legendre", M, DRAWS))
        return S.DPPSample(*(np.asarray(a) for a in d))
    finally:
        jax.config.update("jax_enable_x64", previous)


def test_dpp_one_point_density_is_christoffel(x64, dpp_legendre):
    # The one-point density of the projection DPP is K(x,x)/m = k_m/m w.r.t. mu. KS on the pooled
    # points (m per draw): with the iid critical values this is conservative, since the points
    # of one draw are negatively correlated.
    d = dpp_legendre
    assert d.x.shape == (DRAWS, M) and d.ok.all()
    assert _ks_p(d.x, "legendre", M) > KS_P_MIN
    # the first HKPV point alone is exactly rho-distributed (step 1 of the chain rule)
    assert _ks_p(d.x[:, 0], "legendre", M) > KS_P_MIN


def test_dpp_repulsion_points_distinct_and_unisolvent(x64, dpp_legendre):
    x = np.sort(dpp_legendre.x, axis=1)
    assert np.all((x >= -1) & (x <= 1))
    assert np.diff(x, axis=1).min() > 0
    cond = np.linalg.cond(np.asarray(bases.legendre(x, M)))
    assert np.all(np.isfinite(cond)) and cond.max() < 1e10
    # Two-point function: for a projection DPP, Var(sum_i h(x_i)) = tr(H2) - ||H||_F^2 with
    # H = int h phi phi^T dmu, H2 = int h^2 phi phi^T dmu. For h(x) = x and Legendre this is
    # a_m^2 = m^2/(4m^2-1), ~9x below the iid value m Var_rho(x) = tr(H2) - tr(H)^2/m.
    xq, wq = bases.quadrature("legendre", 64)
    P = np.asarray(bases.legendre(xq, M))
    H = (P * (wq * xq)[:, None]).T @ P
    H2 = (P * (wq * xq**2)[:, None]).T @ P
    exact = np.trace(H2) - np.sum(H * H)
    assert exact == pytest.approx(M * M / (4 * M * M - 1), rel=1e-12)
    lin = x.sum(axis=1)
    var = lin.var(ddof=1)
    se = math.sqrt(np.mean((lin - lin.mean()) ** 4) - var**2) / math.sqrt(len(lin))
    assert abs(var - exact) <= 5 * se
    assert np.trace(H2) - np.trace(H) ** 2 / M > 5 * exact


def test_dpp_proposal_count_and_vmap(x64, dpp_legendre):
    # step i accepts with probability (m-i+1)/(C m): E[#proposals] = C m H_m, geometric variances
    p = (M - np.arange(M)) / (2.0 * M)
    se = math.sqrt(np.sum((1 - p) / p**2) / DRAWS)
    mean = float(np.mean(dpp_legendre.proposals))
    assert abs(mean - S.expected_dpp_proposals("legendre", M)) <= 4 * se
    # the single-draw sampler vmaps over keys, and each lane is the single draw
    keys = jax.random.split(jax.random.key(7), 64)
    d = jax.vmap(lambda k: S.projection_dpp(k, "legendre", M))(keys)
    assert d.x.shape == (64, M) and bool(np.all(d.ok))
    for b in (0, 63):
        one = S.projection_dpp(keys[b], "legendre", M)
        np.testing.assert_array_equal(one.x, d.x[b])
        assert int(one.proposals) == int(d.proposals[b])


def test_dpp_interpolation_error_is_m_plus_1_times_best(x64, dpp_legendre):
    # E||f - I_S f||^2 = (m+1) ||f - P_m f||^2 for projection-DPP interpolation (n = m).
    # Legendre / Runge: the plain mean is heavy-tailed (tail index ~1.5-2); the Rao-Blackwellised
    # estimator (last point integrated out exactly) is unbiased with relative SE ~3 % here;
    # tolerance 10 %.
    g = lambda x: 1 / (1 + 25 * x * x)  # noqa: E731
    best = S.best_error_sq("legendre", g, M)
    rb = np.asarray(S.interpolation_error_rb("legendre", g, M, dpp_legendre.x))
    assert abs(rb.mean() / ((M + 1) * best) - 1) < 0.10
    assert rb.min() >= 2 * best * (1 - 1e-12)  # Z_{m-1} = 2(||g||^2 + ||c0||^2)
    # Fourier / exp(sin x): the plain Monte-Carlo mean has a light enough tail (relative SE ~2 %
    # at 4000 draws); tolerance 8 %. The batched sampler for Fourier is checked here too.
    f = lambda x: jnp.exp(jnp.sin(x))  # noqa: E731
    d = S.ensure_ok(S.projection_dpp_batch(jax.random.key(2), "fourier", M, DRAWS))
    best = S.best_error_sq("fourier", f, M)
    err = np.asarray(S.fit_errors("fourier", f, M, S.Sample(d.x, np.ones_like(d.x), d.ok)))
    assert abs(err.mean() / ((M + 1) * best) - 1) < 0.08
    # the martingale's end: Z_m (nothing integrated out) is the interpolation error itself
    np.testing.assert_allclose(S.interpolation_error_rb("fourier", f, M, d.x, integrate=0), err,
                               rtol=1e-8)
    assert _ks_p(d.x, "fourier", M) > KS_P_MIN  # k_m = m: uniform one-point law


def test_fits_are_exact_for_f_in_v_m(x64, dpp_legendre):
    c = np.random.default_rng(0).normal(size=M)
    f = lambda x: bases.legendre(x, M) @ jnp.asarray(c)  # noqa: E731
    assert S.best_error_sq("legendre", f, M) < 1e-24
    np.testing.assert_allclose(S.projection_coefficients("legendre", f, M), c, atol=1e-13)
    assert float(jnp.max(S.interpolation_error_rb("legendre", f, M, dpp_legendre.x))) < 1e-20
    # One (200, 13) design shape for all fits (one compilation): DPP interpolation (the first
    # m = 5 columns, n=5), weighted LS on optimal samples (iid rows of one long draw), and
    # weighted LS on a volume-rescaled draw.
    rows, n = 200, 13
    s = S.sample_optimal(jax.random.key(1), "legendre", M, 20000)
    opt = S.Sample(np.asarray(s.x)[: rows * n].reshape(rows, n),
                   np.asarray(s.weights)[: rows * n].reshape(rows, n), np.ones(rows, bool))
    dpp_x = np.concatenate([dpp_legendre.x[:rows], opt.x[:, M:]], axis=1)
    vr = S.volume_rescaled(jax.random.key(3), "legendre", M, n)
    for sample, n_fit in ((S.Sample(dpp_x, np.ones_like(dpp_x), opt.ok), M), (opt, n),
                          (S.Sample(*(np.broadcast_to(a, (rows, n)) for a in vr[:2]), opt.ok), n)):
        err = S.fit_errors("legendre", f, M, sample, n=n_fit)
        assert err.shape == (rows,) and float(jnp.max(err)) < 1e-20
    # a prefix (the rest weighted 0) is the fit on the sliced design
    g = lambda x: 1 / (1 + 25 * x * x)  # noqa: E731
    sliced = S.Sample(opt.x[:, :8], opt.weights[:, :8], opt.ok)
    np.testing.assert_allclose(S.fit_errors("legendre", g, M, opt, n=8),
                               S.fit_errors("legendre", g, M, sliced), rtol=1e-9)


def test_volume_rescaled_points_and_weights(x64):
    m, n = M, 13
    key = jax.random.key(11)
    s = S.ensure_ok(S.volume_rescaled(key, "legendre", m, n))
    assert s.x.shape == s.weights.shape == (n,)
    assert np.all(np.asarray(s.weights) > 0)
    np.testing.assert_allclose(s.weights, S.optimal_weights("legendre", s.x, m), rtol=1e-14)
    # permute=False: the DPP points come first (the same DPP as from the same key), and the
    # permuted draw is a permutation of it
    u = S.volume_rescaled(key, "legendre", m, n, permute=False)
    kd = jax.random.split(key, 3)[0]
    np.testing.assert_array_equal(u.x[:m], S.projection_dpp(kd, "legendre", m).x)
    np.testing.assert_array_equal(np.sort(u.x), np.sort(s.x))
    # unweighted top-up from mu around a given DPP draw
    given = S.projection_dpp(jax.random.key(13), "legendre", m)
    v = S.volume_rescaled(key, "legendre", m, n, top_up="measure", permute=False, dpp=given)
    np.testing.assert_array_equal(v.weights, np.ones(n))
    np.testing.assert_array_equal(v.x[:m], given.x)
    assert np.all(np.abs(np.asarray(v.x)) <= 1)
    # n = m is DPP interpolation
    assert S.volume_rescaled(key, "legendre", m, m, permute=False).x.shape == (m,)


def test_budget_exhaustion_is_flagged_and_raises(x64):
    # budget is a traced argument: this reuses the compiled sampler of the shared draws
    d = S.projection_dpp_batch(jax.random.key(0), "legendre", M, DRAWS, budget=8)
    assert not bool(np.all(d.ok))
    with pytest.raises(RuntimeError, match="budget exhausted"):
        S.ensure_ok(d, "projection_dpp")
    s = S.sample_optimal(jax.random.key(0), "legendre", M, 50, budget=50)  # needs all accepted
    assert not bool(s.ok)
    with pytest.raises(RuntimeError, match="budget"):
        S.ensure_ok(s)


def test_iid_sampler(x64):
    s = S.iid(jax.random.key(0), "fourier", 10)
    assert s.x.shape == (10,) and np.all(np.asarray(s.weights) == 1) and bool(s.ok)
    assert np.all((np.asarray(s.x) >= 0) & (np.asarray(s.x) < 2 * np.pi))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bases.legendre(np.zeros(3), 0), "m must be a positive int"),
        (lambda: bases.evaluate("hermite", np.zeros(3), 3), "basis must be one of"),
        (lambda: bases.sample_measure(jax.random.key(0), "laguerre", (3,)), "basis must be one of"),
        (lambda: bases.quadrature("legendre", 0), "n must be a positive int"),
        (lambda: S.inverse_christoffel("legendre", np.zeros(3), 2.5), "m must be an int >= 1"),
        (lambda: S.sample_optimal(jax.random.key(0), "legendre", 0, 5), "m must be an int >= 1"),
        (lambda: S.sample_optimal(jax.random.key(0), "nope", 3, 5), "basis must be one of"),
        (lambda: S.sample_optimal(jax.random.key(0), "legendre", 3, 5, budget=4),
         "budget must be an int >= 5"),
        (lambda: S.projection_dpp(jax.random.key(0), "legendre", 0), "m must be an int >= 1"),
        (lambda: S.projection_dpp(jax.random.key(0), "legendre", True), "m must be an int >= 1"),
        (lambda: S.projection_dpp(jax.random.key(0), "spline", 3), "basis must be one of"),
        (lambda: S.projection_dpp(jax.random.key(0), "legendre", 3, chunk=0),
         "chunk must be an int >= 1"),
        (lambda: S.volume_rescaled(jax.random.key(0), "legendre", 5, 4),
         r"n must be >= m.*n=4 < m=5"),
        (lambda: S.volume_rescaled(jax.random.key(0), "legendre", 5, 8, top_up="uniform"),
         "top_up must be"),
        (lambda: S.iid(jax.random.key(0), "legendre", 0), "n must be an int >= 1"),
        (lambda: S.fit("legendre", np.zeros(3), np.zeros(3), 5), r"n >= m.*n=3 < m=5"),
        (lambda: S.fit_errors("legendre", jnp.sin, 5, S.Sample(np.zeros((2, 3)), np.ones((2, 3)),
                                                               np.ones(2, bool))),
         r"m <= n <= 3"),
        (lambda: S.fit_errors("legendre", jnp.sin, 2, S.Sample(np.zeros((2, 3)), np.ones((2, 3)),
                                                               np.ones(2, bool)), n=4),
         r"m <= n <= 3"),
        (lambda: S.interpolation_error_rb("legendre", jnp.sin, 3, np.zeros((4, 2))),
         r"shape \(draws, m=3\)"),
        (lambda: S.interpolation_error_rb("legendre", jnp.sin, 3, np.zeros((4, 3)), integrate=4),
         r"integrate must be in \[0, m\] = \[0, 3\], got 4"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
