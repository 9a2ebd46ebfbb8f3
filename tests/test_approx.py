"""Classical approximation anchors against closed forms and brute force."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.approx import chebyshev, fourier, relu


def test_chebyshev_interpolation_reproduces_polynomials(x64):
    # The degree-n interpolant of a degree-<=n polynomial is the polynomial itself.
    coeffs = np.array([0.3, -1.0, 2.0, 0.5, -0.25, 1.5])
    x = np.linspace(-1, 1, 301)
    for n in (5, 9):
        nodes = np.asarray(chebyshev.points(n))
        p = chebyshev.interpolate(np.polyval(coeffs, nodes), x)
        np.testing.assert_allclose(p, np.polyval(coeffs, x), rtol=0, atol=1e-12)
    # Evaluating exactly at the nodes returns the data.
    nodes = np.asarray(chebyshev.points(7))
    np.testing.assert_array_equal(chebyshev.interpolate(np.sin(nodes), nodes), np.sin(nodes))


def test_runge_error_tracks_rho_and_stays_below_bernstein_bound(x64):
    # ATAP Thm 8.2 gives the rate rho^-n; for Runge the sup error is ~0.95 rho^-n (verified in
    # shared/reference/approximation.md for n = 20..120). The rigorous bound with rho' < rho
    # must hold for every n.
    rho = chebyshev.RUNGE_RHO
    assert rho == pytest.approx(chebyshev.bernstein_rho(0.2j), rel=1e-14)
    x = np.linspace(-1, 1, 4001)
    M = chebyshev.ellipse_max(chebyshev.runge, 1.2)
    for n in (20, 40, 80, 120):
        nodes = np.asarray(chebyshev.points(n))
        err = np.max(np.abs(np.asarray(chebyshev.interpolate(chebyshev.runge(nodes), x))
                            - chebyshev.runge(x)))
        assert 0.9 < err * rho**n < 1.0
        assert err <= chebyshev.interpolation_bound(M, 1.2, n)


def test_inverse_cosine_fourier_coefficients_and_tail(x64):
    a = 1.25
    values = fourier.inverse_cosine(fourier.grid(512), a)
    c = fourier.coefficients(values, 30)
    np.testing.assert_allclose(c, fourier.inverse_cosine_coefficients(a, 30), atol=1e-14)
    # The tail sum of the exact coefficients is the closed form.
    j = np.arange(31, 400)
    r = a - np.sqrt(a * a - 1)
    direct = 2 * np.sum(r ** (2 * j)) / (a * a - 1)
    assert fourier.inverse_cosine_tail(a, 30) == pytest.approx(direct, rel=1e-12)
    # The measured squared L2 error of S_N f matches the tail.
    x = fourier.grid(4096) + 1e-3
    for n in (0, 4, 12):
        err = np.mean((np.asarray(fourier.inverse_cosine(x, a))
                       - np.asarray(fourier.evaluate(fourier.coefficients(values, n), x))) ** 2)
        assert err == pytest.approx(fourier.inverse_cosine_tail(a, n), rel=1e-9)


def test_trig_polynomial_is_reproduced_exactly(x64):
    x = fourier.grid(64)
    f = 1.0 + 2 * jnp.cos(3 * x) - 0.5 * jnp.sin(5 * x)
    c = fourier.coefficients(f, 6)
    y = np.linspace(0, 2 * np.pi, 77)
    np.testing.assert_allclose(fourier.evaluate(c, y),
                               1 + 2 * np.cos(3 * y) - 0.5 * np.sin(5 * y), atol=1e-13)


@pytest.mark.parametrize("m", [1, 3, 6, 10])
def test_yarotsky_interpolates_square_with_exact_error(x64, m):
    nodes = np.linspace(0, 1, 2**m + 1)
    np.testing.assert_allclose(relu.yarotsky_square(nodes, m), nodes**2, atol=1e-15)
    x = np.linspace(0, 1, 2 ** (m + 4) + 1)
    err = np.max(np.abs(x**2 - np.asarray(relu.yarotsky_square(x, m))))
    assert err == pytest.approx(2.0 ** (-2 * m - 2), rel=1e-12)
    # the s-fold sawtooth has 2^(s-1) teeth: values alternate 0, 1 on the grid of step 2^-s
    g = np.asarray(relu.sawtooth(np.linspace(0, 1, 2**m + 1), m))
    np.testing.assert_allclose(g, np.arange(2**m + 1) % 2, atol=1e-15)


def test_segment_sse_matches_polyfit_residuals():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-1, 1, 30))
    y = np.sin(4 * x) + 0.1 * rng.normal(size=30)
    cost = relu.segment_sse(x, y)
    for i, j in [(0, 30), (3, 17), (10, 13), (5, 7)]:
        coef = np.polyfit(x[i:j], y[i:j], 1)
        resid = np.sum((np.polyval(coef, x[i:j]) - y[i:j]) ** 2)
        assert cost[i, j] == pytest.approx(resid, abs=1e-12)
    assert np.isinf(cost[4, 4])


def test_piecewise_floor_equals_brute_force_over_partitions():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 8)
    y = rng.normal(size=8)
    cost = relu.segment_sse(x, y)
    for k in (1, 2, 3):
        best = np.inf
        for cuts in itertools.combinations(range(1, 8), k - 1):
            edges = (0, *cuts, 8)
            best = min(best, sum(cost[a, b] for a, b in zip(edges[:-1], edges[1:])))
        assert relu.best_piecewise_linear_sse(x, y, k)[0] == pytest.approx(best, abs=1e-12)
    assert relu.best_piecewise_linear_sse(x, y, 4)[0] == 0.0  # 4 groups of 2 points fit exactly


def test_no_random_relu_net_beats_the_piece_floor():
    # Random shallow ReLU nets of width W are CPwL with <= W+1 pieces: their grid SSE can
    # never fall below the floor for W+1 groups (a lower bound never exceeds a measurement).
    x = np.linspace(-1, 1, 200)
    y = 1 / (1 + 25 * x**2)
    key = jax.random.key(0)
    for w in (1, 3, 8):
        floor = relu.best_piecewise_linear_sse(x, y, w + 1)[0]
        for trial in range(20):
            k1, k2 = jax.random.split(jax.random.fold_in(key, 100 * w + trial))
            a = np.asarray(jax.random.normal(k1, (w,)))
            b = np.asarray(jax.random.uniform(k2, (w,), minval=-1, maxval=1))
            # least-squares-optimal outer weights make the test as hard as possible
            feats = np.concatenate([np.maximum(a * (x[:, None] - b), 0), np.ones((200, 1))], 1)
            coef, *_ = np.linalg.lstsq(feats, y, rcond=None)
            sse = np.sum((feats @ coef - y) ** 2)
            assert sse >= floor * (1 - 1e-9)


def test_max_pieces_bounds_a_deep_net():
    # Count the linear pieces of a random depth-2, width-3 ReLU net on a fine grid.
    key = jax.random.key(5)
    ks = jax.random.split(key, 6)
    w1, b1 = jax.random.normal(ks[0], (3,)), jax.random.normal(ks[1], (3,))
    w2, b2 = jax.random.normal(ks[2], (3, 3)), jax.random.normal(ks[3], (3,))
    w3 = jax.random.normal(ks[4], (3,))
    x = np.linspace(-4, 4, 80001)
    h = np.maximum(x[:, None] * np.asarray(w1) + np.asarray(b1), 0)
    h = np.maximum(h @ np.asarray(w2) + np.asarray(b2), 0)
    y = h @ np.asarray(w3)
    slopes = np.diff(y) / np.diff(x)
    kinks = np.sum(np.abs(np.diff(slopes)) > 1e-6 * (1 + np.abs(slopes[1:])))
    assert kinks + 1 <= relu.max_pieces(3, 2) == 16


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: chebyshev.points(0), "n must be a positive int"),
        (lambda: chebyshev.interpolate(np.ones((2, 2)), np.ones(3)), "values must have shape"),
        (lambda: chebyshev.interpolation_bound(1.0, 0.9, 3), "rho must be > 1"),
        (lambda: fourier.inverse_cosine(np.ones(3), 1.0), "a must be > 1"),
        (lambda: fourier.coefficients(np.ones(8), 4), "n_max must be"),
        (lambda: relu.yarotsky_square(np.ones(3), -1), "m must be a non-negative int"),
        (lambda: relu.best_piecewise_linear_sse(np.array([0.0, 0.0]), np.ones(2), 1),
         "strictly increasing"),
        (lambda: relu.max_pieces(0, 1), "width must be a positive int"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sup_errors_and_geometric_rate_against_direct_computation(x64):
    x = np.linspace(-1, 1, 501)
    degrees = [4, 8, 12, 16]
    errs = chebyshev.sup_errors(chebyshev.runge, degrees, x)
    for n, e in zip(degrees, errs):
        nodes = np.cos(np.pi * np.arange(n + 1) / n)  # second-kind points, by formula
        p = np.polynomial.chebyshev.Chebyshev.fit(nodes, chebyshev.runge(nodes), n)
        assert e == pytest.approx(np.max(np.abs(p(x) - chebyshev.runge(x))), rel=1e-9)
    # an exactly geometric sequence gives back its ratio; round-off floors are ignored
    n = np.arange(2, 40, 2.0)
    assert chebyshev.geometric_rate(n, 3.0 * 1.3**-n) == pytest.approx(1.3, rel=1e-12)
    assert chebyshev.geometric_rate(np.r_[n, 80, 90], np.r_[3.0 * 1.3**-n, 1e-16, 1e-16]) == \
        pytest.approx(1.3, rel=1e-12)
    with pytest.raises(ValueError, match="at least two errors"):
        chebyshev.geometric_rate([1, 2], [1e-15, 1e-16])


def test_truncation_sq_errors_equal_the_parseval_tail(x64):
    a = 2.0
    orders = np.arange(0, 8)
    measured = fourier.truncation_sq_errors(lambda t: fourier.inverse_cosine(t, a), orders, 64)
    np.testing.assert_allclose(measured, fourier.inverse_cosine_tail(a, orders), rtol=1e-9)


def test_yarotsky_sup_errors_and_the_piece_floor(x64):
    np.testing.assert_allclose(relu.yarotsky_sup_errors([1, 2, 5]), relu.yarotsky_error([1, 2, 5]),
                               rtol=1e-12)
    # a |x| target: 2 pieces fit it exactly, 1 piece leaves the least-squares line's residual
    x = np.linspace(-1, 1, 101)
    y = np.abs(x)
    resid = y - np.polyval(np.polyfit(x, y, 1), x)
    one_piece = relu.best_piecewise_linear_sse(x, y, [1])[0]
    assert one_piece == pytest.approx(np.sum(resid**2), rel=1e-12)
    floor = relu.piece_floor_rms(x, y, [1, 3], depth=1)  # (W+1)^1 = 2 and 4 pieces
    np.testing.assert_allclose(floor, [0.0, 0.0], atol=1e-12)
    assert relu.piece_floor_rms(x, x**2, [1], depth=2)[0] == pytest.approx(  # 4 pieces
        np.sqrt(relu.best_piecewise_linear_sse(x, x**2, [4])[0] / x.size), rel=1e-12)


def test_fit_relu_mlp_beats_its_start_and_respects_the_floor(x64):
    import jax
    import jax.numpy as jnp

    x = jnp.linspace(-1.0, 1.0, 64)[:, None]
    y = jnp.abs(x)
    key = jax.random.key(0)
    rms = relu.fit_relu_mlp(x, y, 4, 1, steps=300, lr=1e-2, steps_per_call=100, key=key)
    assert rms == relu.fit_relu_mlp(x, y, 4, 1, steps=300, lr=1e-2, steps_per_call=100, key=key)
    assert rms < 0.2 * float(jnp.sqrt(jnp.mean(y**2)))  # |x| is two pieces: it learns it
    floor = relu.piece_floor_rms(np.asarray(x[:, 0]), np.asarray(y[:, 0]), [4], 1)[0]
    assert rms >= floor
