r"""Random features measured on the host (numpy): feature matrices, Monte-Carlo and least-squares
errors, span dimension in a given precision.

The JAX model lives in :mod:`opdiff.nets.random_features`; this module evaluates the same
features with numpy, for one-off shapes that ``jit`` would compile one by one and for precision
studies (float32 in, float32 out, decomposed by numpy's LAPACK in float32). Every function is
pure; random draws are passed in (made from explicit keys by the caller).

Feature of a one-dimensional input :math:`x` with weight :math:`a_j` and offset :math:`b_j`:
:math:`\phi_j(x)=\sigma(a_jx-b_j)`, :math:`\sigma` from :data:`HOST_ACTIVATIONS` (the numpy
twins of :data:`opdiff.nets.random_features.ACTIVATIONS`; the sigmoid is written
:math:`\frac12(1+\tanh\frac t2)`, which cannot overflow).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from jaxtyping import Float, Int

__all__ = [
    "HOST_ACTIVATIONS",
    "abs_sin_cubed",
    "feature_matrix",
    "gauss_legendre_feature_matrix",
    "gauss_legendre_measure",
    "gaussian",
    "gaussian_sum",
    "least_squares_errors",
    "midpoint_grid",
    "monte_carlo_mse",
    "nsdim_native",
]

HOST_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda t: 0.5 * (1.0 + np.tanh(0.5 * t)),
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "relu": lambda t: np.maximum(t, 0),
    "gaussian": lambda t: np.exp(-t * t),
}


def feature_matrix(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"],
                   x: Float[np.ndarray, " n"], activation: str = "sigmoid",
                   sqrt_weights: Float[np.ndarray, " n"] | None = None) -> Float[np.ndarray, "n N"]:
    r""":math:`A_{ij}=\sigma(a_jx_i-b_j)`, times :math:`\sqrt{w_i}` when ``sqrt_weights`` is given.

    With quadrature weights :math:`w` of a measure :math:`\mu`, :math:`\|Ac\|_2^2=
    \sum_iw_i(\sum_jc_j\phi_j(x_i))^2\approx\|f_c\|^2_{L^2(\mu)}` (an :math:`L^2`-faithful
    geometry). The dtype of the inputs is kept (float32 in, float32 out).

    Raises:
        ValueError: for an unknown activation or inputs that are not 1-D.
    """
    if activation not in HOST_ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(HOST_ACTIVATIONS)}, got "
                         f"{activation!r}")
    a, b, x = np.asarray(a), np.asarray(b), np.asarray(x)
    if a.ndim != 1 or b.shape != a.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length and x 1-D, got shapes {a.shape}, "
                         f"{b.shape}, {x.shape}")
    A = HOST_ACTIVATIONS[activation](x[:, None] * a[None, :] - b[None, :])
    return A if sqrt_weights is None else A * np.asarray(sqrt_weights)[:, None]


def gauss_legendre_feature_matrix(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"], n: int,
                                  activation: str = "sigmoid", dtype=np.float64
                                  ) -> Float[np.ndarray, "n N"]:
    r""":math:`A_{ij}=\sqrt{w_i}\,\sigma(a_jx_i-b_j)` on the ``n`` Gauss-Legendre nodes
    :math:`x_i` of :math:`[-1,1]` with their Lebesgue weights :math:`w_i` (sum 2): the
    :math:`L^2([-1,1])` geometry of the span (its singular values give
    :func:`opdiff.approx.bounds.nsdim`). Nodes, weights, parameters and arithmetic all in
    ``dtype`` (float32 for precision studies)."""
    x, w = np.polynomial.legendre.leggauss(n)
    x, w = x.astype(dtype), w.astype(dtype)
    A = feature_matrix(np.asarray(a).astype(dtype), np.asarray(b).astype(dtype), x, activation,
                       np.sqrt(w))
    assert A.dtype == dtype, (A.dtype, dtype)
    return A


def gauss_legendre_measure(n: int, radius: float = 1.0
                           ) -> tuple[Float[np.ndarray, " n"], Float[np.ndarray, " n"]]:
    r"""Gauss-Legendre nodes on :math:`[-r,r]` and the weights of the uniform *probability*
    measure (they sum to 1); exact for polynomials of degree :math:`\le2n-1`."""
    t, w = np.polynomial.legendre.leggauss(n)
    return radius * t, 0.5 * w


def midpoint_grid(n: int, radius: float = 1.0
                  ) -> tuple[Float[np.ndarray, " n"], Float[np.ndarray, " n"]]:
    r"""Cell midpoints :math:`x_i=r(-1+(2i+1)/n)` of :math:`[-r,r]` and equal weights
    :math:`1/n` (no Gauss node: a held-out grid for :func:`gauss_legendre_measure` fits)."""
    return radius * (-1.0 + (2.0 * np.arange(n) + 1.0) / n), np.full(n, 1.0 / n)


def gaussian(x, s):
    r""":math:`e^{-x^2/(2s^2)}`, the target whose Monte-Carlo and Barron constants are exact
    (:func:`opdiff.approx.bounds.monte_carlo_gaussian_mse`,
    :func:`opdiff.approx.bounds.barron_norm_gaussian`)."""
    return np.exp(-x * x / (2.0 * s * s))


def gaussian_sum(x, terms):
    r""":math:`\sum_iA_ie^{-(k_ix-c_i)^2}` for ``terms`` = ((A, k, c), ...)."""
    x = np.asarray(x)
    return sum(a * np.exp(-((k * x - c) ** 2)) for a, k, c in terms)


def abs_sin_cubed(x):
    r""":math:`|\sin x|^3`: :math:`C^2` but not :math:`C^3` on the torus (Fourier coefficients
    :math:`O(k^{-4})`)."""
    return np.abs(np.sin(x)) ** 3


def monte_carlo_mse(omega: Float[np.ndarray, "S N"], x: Float[np.ndarray, " n"],
                    w: Float[np.ndarray, " n"], f: Float[np.ndarray, " n"], *,
                    chunk_elements: float = 4e6) -> Float[np.ndarray, " S"]:
    r"""Per draw :math:`s`, :math:`\sum_iw_i(f(x_i)-f_N(x_i))^2` with the Monte-Carlo estimator
    :math:`f_N(x)=\frac1N\sum_k\cos(\omega_{sk}x)` (equal weights :math:`1/N`).

    For :math:`f(x)=\mathbb E_\omega\cos\omega x` its mean over draws is
    :func:`opdiff.approx.bounds.monte_carlo_gaussian_mse` integrated against ``w``. Draws are
    evaluated in blocks of about ``chunk_elements`` numbers (the result does not depend on it).
    """
    omega, x = np.asarray(omega), np.asarray(x)
    n_draws, n = omega.shape
    chunk = max(1, int(chunk_elements // (n * x.size)))
    f_n = np.concatenate([np.cos(x[None, :, None] * omega[j:j + chunk, None, :]).mean(-1)
                          for j in range(0, n_draws, chunk)])  # (S, n_points)
    return ((np.asarray(f)[None, :] - f_n) ** 2) @ np.asarray(w)


def least_squares_errors(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"], activation: str,
                         fit: tuple, test: tuple) -> tuple[float, float]:
    r"""Minimum-norm weighted least squares on the features :math:`\sigma(a_jx-b_j)`.

    ``fit`` and ``test`` are ``(x, w, f)``: nodes, weights, target values.
    :math:`c=\arg\min\sum_iw_i(f_i-(Ac)_i)^2` of least norm (SVD, ``numpy.linalg.lstsq``) on
    ``fit``; returns the weighted mean-square errors
    :math:`(\|\sqrt w\odot(f-Ac)\|^2` on ``fit``, :math:`\sum_i w_i(f_i-(A_tc)_i)^2` on
    ``test``).
    """
    x, w, f = (np.asarray(v) for v in fit)
    xt, wt, ft = (np.asarray(v) for v in test)
    sw = np.sqrt(w)
    A = feature_matrix(a, b, x, activation, sw)
    c = np.linalg.lstsq(A, f * sw, rcond=None)[0]
    return (float(np.sum((f * sw - A @ c) ** 2)),
            float(wt @ (ft - feature_matrix(a, b, xt, activation) @ c) ** 2))


def nsdim_native(A: Float[np.ndarray, "m p"], taus) -> tuple[Int[np.ndarray, " t"],
                                                              Float[np.ndarray, " r"]]:
    r"""NSdim :math:`\#\{k:s_k/s_1>\tau\}` per ``tau``, with the singular values computed in
    ``A``'s own dtype (float32 stays float32, where
    :func:`opdiff.approx.bounds.nsdim` upcasts to float64); also returns :math:`s_k/s_1`.
    """
    s = np.linalg.svd(np.asarray(A), compute_uv=False)
    return np.sum((s / s[0])[:, None] > np.asarray(taus, s.dtype)[None, :], axis=0), s / s[0]
