"""Least squares by Cholesky-preconditioned LSQR (``lstsq.solve(method="cholesky_lsqr")``).

Oracles: NumPy's ``lstsq`` (LAPACK ``dgelsd``), designs built from an SVD with chosen singular
values (so the condition number and the optimal residual are known in closed form), the exact
coefficients of a consistent system, and the existing ``"qr"`` method for weights and ridge.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.approx import lstsq
from opdiff.approx import random_features as rf

METHOD = "cholesky_lsqr"


def svd_design(rng, n, m, kappa):
    """``A = U diag(s) V^T`` with ``s`` log-spaced from 1 to ``1/kappa``, and ``U`` (n, n)."""
    u, _ = np.linalg.qr(rng.normal(size=(n, n)))
    v, _ = np.linalg.qr(rng.normal(size=(m, m)))
    s = np.logspace(0.0, -np.log10(kappa), m)
    return (u[:, :m] * s) @ v.T, u


def test_matches_numpy_lstsq_on_a_random_design(x64):
    rng = np.random.default_rng(0)
    A, y = rng.normal(size=(200, 30)), rng.normal(size=(200, 3))
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    c = np.asarray(lstsq.solve(A, y, method=METHOD))
    np.testing.assert_allclose(c, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
    np.testing.assert_allclose(lstsq.solve(A, y[:, 0], method=METHOD), ref[:, 0], rtol=0,
                               atol=1e-13 * np.abs(ref).max())


def test_well_conditioned_design_converges_in_a_few_iterations(x64):
    # With the Gram's Cholesky factor R, A R^-1 has orthonormal columns up to rounding and the
    # tiny shift: LSQR needs 1-3 iterations (the bound 4 allows one spare).
    rng = np.random.default_rng(1)
    A, _ = svd_design(rng, 300, 40, 1e3)
    y = jnp.asarray(rng.normal(size=300))
    _, iters = lstsq._cholesky_lsqr(jnp.asarray(A), y, jnp.zeros(()), augment=False,
                                    tol=50 * float(jnp.finfo(jnp.float64).eps), maxiter=200)
    assert 1 <= int(iters) <= 4


@pytest.mark.parametrize("kappa", [1e6, 1e7, 1e8])
def test_residual_within_10x_of_numpy_on_an_ill_conditioned_design(x64, kappa):
    # y = A c0 + e with e orthogonal to range(A), |e| = 1e-10 |A c0|: the optimal residual is
    # e itself. The normal equations' error, u kappa^2 in c, i.e. ~u kappa |y| in A c, exceeds
    # |e| for kappa >= 1e7 (checked below), so this test separates the routes.
    rng = np.random.default_rng(int(np.log10(kappa)))
    n, m = 300, 40
    A, u = svd_design(rng, n, m, kappa)
    c0 = rng.normal(size=m)
    e = u[:, m:] @ rng.normal(size=n - m)
    e *= 1e-10 * np.linalg.norm(A @ c0) / np.linalg.norm(e)
    y = A @ c0 + e
    r_opt = np.linalg.norm(e)
    r_np = np.linalg.norm(A @ np.linalg.lstsq(A, y, rcond=None)[0] - y)
    assert r_np < 2 * r_opt  # the oracle itself is accurate here
    c = np.asarray(lstsq.solve(A, y, method=METHOD))
    r = np.linalg.norm(A @ c - y)
    assert r <= 10 * r_np
    assert r <= 2 * r_opt
    if kappa >= 1e7:  # the same check fails for the normal equations: the test has teeth
        c_ne = np.asarray(lstsq.solve(A, y, method="cholesky"))
        assert np.linalg.norm(A @ c_ne - y) > 10 * r_np


@pytest.mark.parametrize("kappa", [1e3, 1e6, 1e8])
def test_coefficients_of_a_consistent_system(x64, kappa):
    # y = A c0 (up to rounding): the error in c is at most a small multiple of u kappa |c0|,
    # as for Householder QR (both are compared with the same bound).
    rng = np.random.default_rng(10 + int(np.log10(kappa)))
    A, _ = svd_design(rng, 250, 30, kappa)
    c0 = rng.normal(size=30)
    y = A @ c0
    bound = 30 * np.finfo(np.float64).eps * kappa * np.linalg.norm(c0)
    err = np.linalg.norm(np.asarray(lstsq.solve(A, y, method=METHOD)) - c0)
    err_qr = np.linalg.norm(np.asarray(lstsq.solve(A, y, method="qr")) - c0)
    assert err_qr <= bound  # the bound is one QR meets
    assert err <= bound


def test_rank_deficient_design_reaches_the_least_squares_residual(x64):
    # Rank 12 of 30 columns: the solution is not unique, the residual is; the small shift
    # lets the Cholesky factorisation of the singular Gram succeed.
    rng = np.random.default_rng(3)
    A = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 30))
    y = rng.normal(size=200)
    r_np = np.linalg.norm(A @ np.linalg.lstsq(A, y, rcond=None)[0] - y)
    c = np.asarray(lstsq.solve(A, y, method=METHOD))
    assert np.all(np.isfinite(c))
    assert abs(np.linalg.norm(A @ c - y) / r_np - 1) < 1e-10


@pytest.mark.parametrize("bandwidth", [2.0, 4.0])
def test_numerically_rank_deficient_features_reach_numpys_residual(x64, bandwidth):
    # 40 cos features of bandwidth 2 on 200 points have about 9 singular values above 1e-8 s_1
    # and the rest down to 1e-17 s_1, with coefficients of norm up to 1e7: the regime where a
    # guard that stops LSQR too early (or too late) leaves 40x numpy's residual (or 1e4x).
    x = jnp.linspace(-1.0, 1.0, 200)[:, None]
    y = np.sin(3.0 * np.asarray(x[:, 0]))
    for seed in range(3):
        h = rf.sample_hidden(jax.random.fold_in(jax.random.key(0), seed), 40, 1,
                             bandwidth=bandwidth, distribution="gaussian", bias="phase",
                             dtype=jnp.float64)
        A = np.asarray(rf.design_matrix(h, x, "cos"))
        r_np = np.linalg.norm(A @ np.linalg.lstsq(A, y, rcond=None)[0] - y)
        c = np.asarray(lstsq.solve(A, y, method=METHOD))
        assert np.linalg.norm(A @ c - y) <= 1.5 * r_np, seed


def test_weights_and_ridge_match_qr(x64):
    rng = np.random.default_rng(4)
    A, y, w = rng.normal(size=(80, 10)), rng.normal(size=(80, 2)), rng.uniform(0.1, 2.0, 80)
    for kw in (dict(weights=w), dict(ridge=0.3), dict(weights=w, ridge=0.3)):
        ref = np.asarray(lstsq.solve(A, y, method="qr", **kw))
        np.testing.assert_allclose(lstsq.solve(A, y, method=METHOD, **kw), ref, rtol=0,
                                   atol=1e-13 * np.abs(ref).max(), err_msg=str(kw.keys()))


def test_small_ridge_on_an_ill_conditioned_design_keeps_qr_accuracy(x64):
    # The ridge enters as sqrt(alpha) I rows of the LSQR operator, not only through the Gram,
    # so an ill-conditioned design with a small ridge is solved to QR's accuracy.
    rng = np.random.default_rng(5)
    A, _ = svd_design(rng, 200, 25, 1e8)
    y = A @ rng.normal(size=25)
    ridge = 1e-14
    ref = np.linalg.lstsq(np.vstack([A, np.sqrt(ridge) * np.eye(25)]),
                          np.concatenate([y, np.zeros(25)]), rcond=None)[0]
    aug = np.vstack([A, np.sqrt(ridge) * np.eye(25)])
    c = np.asarray(lstsq.solve(A, y, method=METHOD, ridge=ridge))
    c_qr = np.asarray(lstsq.solve(A, y, method="qr", ridge=ridge))
    err = np.linalg.norm(aug @ (c - ref)) / np.linalg.norm(y)
    err_qr = np.linalg.norm(aug @ (c_qr - ref)) / np.linalg.norm(y)
    assert err <= max(10 * err_qr, 1e-13)


def test_vmap_over_a_stack_and_over_the_ridge(x64):
    rng = np.random.default_rng(6)
    As, ys = rng.normal(size=(4, 60, 8)), rng.normal(size=(4, 60))
    batched = jax.vmap(lambda a, b: lstsq.solve(a, b, method=METHOD))(As, ys)
    for a, b, c in zip(As, ys, batched):
        np.testing.assert_allclose(c, np.linalg.lstsq(a, b, rcond=None)[0], atol=1e-13)
    ridges = jnp.array([0.0, 0.1, 3.0])
    by_ridge = jax.vmap(lambda r: lstsq.solve(As[0], ys[0], ridge=r, method=METHOD))(ridges)
    for r, c in zip(ridges, by_ridge):
        exact = np.linalg.solve(As[0].T @ As[0] + float(r) * np.eye(8), As[0].T @ ys[0])
        np.testing.assert_allclose(c, exact, atol=1e-12)


def test_jit_and_float32(x64):
    rng = np.random.default_rng(7)
    A, y = rng.normal(size=(120, 16)), rng.normal(size=120)
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    jitted = jax.jit(lambda a, b: lstsq.solve(a, b, method=METHOD))
    np.testing.assert_allclose(jitted(A, y), ref, atol=1e-13)
    c32 = lstsq.solve(A.astype(np.float32), y.astype(np.float32), method=METHOD)
    assert c32.dtype == jnp.float32
    np.testing.assert_allclose(c32, ref, atol=1e-4 * np.abs(ref).max())


def test_gram_is_the_symmetric_product(x64):
    rng = np.random.default_rng(8)
    A = rng.normal(size=(50, 7))
    g = np.asarray(lstsq.gram(A))
    np.testing.assert_allclose(g, A.T @ A, rtol=1e-14, atol=1e-13)
    np.testing.assert_array_equal(g, g.T)
    stack = rng.normal(size=(3, 20, 4))
    gs = jax.jit(jax.vmap(lstsq.gram))(stack)
    np.testing.assert_allclose(gs, np.einsum("bij,bik->bjk", stack, stack), atol=1e-13)
    with pytest.raises(TypeError, match="A must be float32 or float64, got int"):
        lstsq.gram(jnp.ones((3, 2), jnp.int32))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(tol=0.0), "tol must be in (0, 1), got 0.0"),
        (dict(tol=1.5), "tol must be in (0, 1), got 1.5"),
        (dict(maxiter=0), "maxiter must be an int >= 1, got 0"),
        (dict(maxiter=2.5), "maxiter must be an int >= 1, got 2.5"),
        (dict(maxiter=True), "maxiter must be an int >= 1, got True"),
    ],
)
def test_bad_input(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        lstsq.solve(np.ones((5, 2)), np.ones(5), method=METHOD, **kwargs)


def test_underdetermined_without_ridge_is_refused():
    with pytest.raises(ValueError, match="at least as many samples as unknowns"):
        lstsq.solve(np.ones((3, 5)), np.ones(3), method=METHOD)
