r"""Computable error floors and estimates for DeepONets.

**PCA reconstruction floor** (Lanthaler, Mishra, Karniadakis 2022, §3; reference/deeponet.md
§4.3). Every DeepONet output lies in an affine space :math:`\tau_0+\mathrm{span}\{\tau_1..
\tau_p\}`, so for every DeepONet with ``p`` trunk functions

.. math:: \Big(\mathbb E_u\|G(u)-\mathcal N(u)\|_{L^2}^2\Big)^{1/2}\ \ge\
          \Big(\sum_{k>p}\lambda_k\Big)^{1/2},

:math:`\lambda_k` the eigenvalues of the covariance operator of the outputs :math:`G(u)`, with
equality for :math:`\tau_0=` the mean and :math:`\tau_k=` the eigenfunctions (PCA). On a grid
with quadrature weights :math:`w` the operator is :math:`W^{1/2}CW^{1/2}`, :math:`C` the
(centred) covariance of the grid values. Computed in float64; with ``n`` samples the empirical
floor is biased low (estimate it on held-out outputs, or use an exact spectrum).

**Sensor count** (Lu et al. 2021, Thm 1 and reference §4.5): with ``m`` equispaced sensors and
piecewise-linear reconstruction of a GRF with RBF kernel of length scale ``l``,
:math:`\kappa(m)=\mathbb E\max|u-u_m|\approx c/((m-1)^2l^2)`, :math:`c\approx0.4`; for a
Lipschitz ODE right-hand side the operator error it causes is at most
:math:`c_g(b-a)\kappa e^{c_g(b-a)}` (Gronwall).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["PCA", "pca", "pca_floor", "relative_pca_floor", "project", "trapezoid_weights",
           "sensor_error_estimate", "gronwall_sensor_bound"]


def trapezoid_weights(grid) -> np.ndarray:
    """Trapezoid quadrature weights of a strictly increasing 1-D grid (float64)."""
    x = np.asarray(grid, np.float64)
    if x.ndim != 1 or x.size < 2 or np.any(np.diff(x) <= 0):
        raise ValueError(f"grid must be a strictly increasing 1-D array, got shape {x.shape}")
    h = np.diff(x)
    w = np.zeros_like(x)
    w[:-1] += h / 2
    w[1:] += h / 2
    return w


@dataclasses.dataclass(frozen=True)
class PCA:
    """Principal components of output functions in the weighted inner product.

    Attributes:
        mean: ``[P]`` mean output.
        modes: ``[r, P]`` eigenfunctions, orthonormal: ``modes @ diag(w) @ modes.T = I``.
        eigenvalues: ``[r]`` covariance eigenvalues, descending (``r = min(n, P)``).
        weights: ``[P]`` quadrature weights.
        second_moment: :math:`\\mathbb E\\|v\\|^2=\\sum\\lambda_k+\\|\\bar v\\|^2`.
    """

    mean: np.ndarray
    modes: np.ndarray
    eigenvalues: np.ndarray
    weights: np.ndarray
    second_moment: float


def pca(outputs, weights) -> PCA:
    """PCA of ``outputs [n, P]`` (rows are functions on ``P`` points) with weights ``[P]``.

    Uses the SVD of :math:`(V-\\bar v)W^{1/2}/\\sqrt n` in float64 (the centred covariance
    with the 1/n normalisation).

    Raises:
        ValueError: on shape mismatches, non-positive weights, fewer than 2 rows or NaN.
    """
    v = np.asarray(outputs, np.float64)
    w = np.asarray(weights, np.float64)
    if v.ndim != 2 or v.shape[0] < 2:
        raise ValueError(f"outputs must have shape (n, P) with n >= 2, got {v.shape}")
    if w.shape != (v.shape[1],):
        raise ValueError(f"weights must have shape ({v.shape[1]},) like the outputs' points, "
                         f"got {w.shape}")
    if np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and positive")
    if not np.all(np.isfinite(v)):
        raise ValueError("outputs contains NaN or infinite values")
    n = v.shape[0]
    mean = v.mean(axis=0)
    sw = np.sqrt(w)
    _, s, vt = np.linalg.svd((v - mean) * sw / np.sqrt(n), full_matrices=False)
    modes = vt / sw
    second = float(np.sum(s**2) + np.sum(w * mean**2))
    return PCA(mean=mean, modes=modes, eigenvalues=s**2, weights=w, second_moment=second)


def _check_p(p):
    ps = np.atleast_1d(np.asarray(p))
    if ps.size == 0 or not np.issubdtype(ps.dtype, np.integer) or np.any(ps < 1):
        raise ValueError(f"p must be a positive int or a sequence of them, got {p!r}")
    return ps


def pca_floor(eigenvalues, p):
    r""":math:`\sqrt{\sum_{k>p}\lambda_k}` for every ``p`` (an int gives a float).

    Raises:
        ValueError: if a ``p`` is not a positive int or an eigenvalue is negative beyond
            round-off.
    """
    lam = np.sort(np.asarray(eigenvalues, np.float64))[::-1]
    if lam.ndim != 1 or (lam.size and lam.min() < -1e-12 * max(lam.max(), 1e-300)):
        raise ValueError("eigenvalues must be a 1-D array of non-negative numbers")
    lam = np.clip(lam, 0.0, None)
    ps = _check_p(p)
    tail = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])  # tail[k] = sum_{j>=k} lam_j
    out = np.sqrt(tail[np.minimum(ps, lam.size)])
    return float(out[0]) if np.ndim(p) == 0 else out


def relative_pca_floor(result: PCA, p):
    r"""The floor divided by :math:`\sqrt{\mathbb E\|v\|^2}` (relative :math:`L^2` error floor)."""
    return pca_floor(result.eigenvalues, p) / np.sqrt(result.second_moment)


def project(result: PCA, outputs, p: int) -> np.ndarray:
    """Best reconstruction of ``outputs [n, P]`` from the mean and the first ``p`` modes
    (exact POD coefficients): what a POD-DeepONet with a perfect branch outputs."""
    (p,) = _check_p(p)
    v = np.asarray(outputs, np.float64)
    modes = result.modes[:p]
    coef = (v - result.mean) @ (modes * result.weights).T
    return result.mean + coef @ modes


def sensor_error_estimate(m, length_scale: float, c: float = 0.4):
    r""":math:`\kappa(m)\approx c/((m-1)^2l^2)`: the expected max error of the piecewise-linear
    interpolant through ``m`` equispaced sensors of an RBF GRF (``c``: 0.33-0.47 measured)."""
    m = np.asarray(m, np.float64)
    if np.any(m < 2):
        raise ValueError(f"m must be >= 2 sensors, got {m!r}")
    if not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale!r}")
    return c / ((m - 1.0) ** 2 * length_scale**2)


def gronwall_sensor_bound(kappa, lipschitz: float, length: float = 1.0):
    r""":math:`c(b-a)\kappa e^{c(b-a)}`: the operator error caused by a sensor error
    :math:`\kappa` for :math:`s'=g(s,u)` with :math:`g` ``lipschitz``-Lipschitz."""
    return lipschitz * length * np.asarray(kappa) * np.exp(lipschitz * length)
