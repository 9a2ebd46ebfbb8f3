r"""Exact divergences between Gaussian laws (host-side NumPy/SciPy, float64), and the same
divergences for diagonal laws that a diverged sampler may have produced.

Every function is small and pure; JAX arrays are accepted (converted with
:func:`numpy.asarray`). Reference: diffusion.md §4(c)-(d).

- **Diagonal Gaussians, per coefficient** (:func:`kl_diagonal`, :func:`w2_diagonal`,
  :func:`w2_distance`, :func:`tv_bracket_diagonal`): the errors of a linear-score sampler on
  stationary Gaussian data, one Fourier/DCT mode at a time, then summed (§4(d)):

  .. math:: \mathrm{KL}=\tfrac12\sum_k\Big[\frac{w_{1,k}}{w_{2,k}}-1-\ln\frac{w_{1,k}}{w_{2,k}}
            +\frac{(m_{1,k}-m_{2,k})^2}{w_{2,k}}\Big],\qquad
            W_2^2=\sum_k(m_{1,k}-m_{2,k})^2+(\sqrt{w_{1,k}}-\sqrt{w_{2,k}})^2.

  They refuse NaN and a non-finite *second* law, and score an infinite *first* law ``inf``.
- **Dense Gaussians** (:func:`kl_gaussian`, :func:`w2_gaussian`): the full-covariance closed
  forms, for small ``d`` (validation).
- **Converters**: Pinsker :math:`\mathrm{TV}\le\sqrt{\mathrm{KL}/2}` (:func:`pinsker`) and the
  Bhattacharyya bracket :math:`1-BC\le\mathrm{TV}\le\sqrt{1-BC^2}`.
- **Diverged laws** (:func:`kl`, :func:`w2_sq`, :func:`tv_bracket`, :func:`finite_law`): the
  exact output law :math:`N(m,\mathrm{diag}\,w)` of a sampler
  (:func:`opdiff.diffusion.oracle.sampler_law`) is non-finite when the sampler diverges
  (explicit Euler--Maruyama on the stiff high frequencies of heat dissipation: infinite or NaN
  moments). These score every diverged law, on either side, as the worst value
  (:math:`\mathrm{KL}=W_2^2=\infty`, :math:`\mathrm{TV}\in[1,1]`), so a diverged run is kept
  as measured and never wins a comparison; for finite laws they return exactly the closed
  forms above.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from jaxtyping import Float
from scipy import linalg

from opdiff._checks import check_positive_array, check_real_array, scalar_or_array

__all__ = [
    "kl_diagonal",
    "w2_diagonal",
    "w2_distance",
    "tv_bracket_diagonal",
    "pinsker",
    "kl_gaussian",
    "w2_gaussian",
    "w2_gaussian_batch",
    "finite_law",
    "kl",
    "w2_sq",
    "tv_bracket",
]


# --------------------------------------------------------------------------------------------
# Argument checks and the stable kernel x - log1p(x).


def _finite(name: str, x) -> np.ndarray:
    arr = check_real_array(name, x)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return arr


def _broadcast(names: tuple[str, ...], *arrays: np.ndarray) -> list[np.ndarray]:
    try:
        return list(np.broadcast_arrays(*arrays))
    except ValueError:
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrays))
        raise ValueError(f"{', '.join(names)} must broadcast together, got shapes {shapes}"
                         ) from None


def _not_nan(name: str, x) -> np.ndarray:
    arr = check_real_array(name, x)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not be NaN, got {x!r}")
    return arr


def _moments(m1, w1, m2, w2) -> list[np.ndarray]:
    # The first law may be infinite (a sampler that diverged): its divergences are +inf.
    names = ("m1", "w1", "m2", "w2")
    arrs = [_not_nan("m1", m1), check_positive_array("w1", w1, allow_zero=True, allow_inf=True),
            _finite("m2", m2), check_positive_array("w2", w2, allow_zero=True)]
    return _broadcast(names, *arrs)


def _diverged(a1: np.ndarray, v1: np.ndarray) -> np.ndarray:
    return ~(np.isfinite(a1) & np.isfinite(v1))


def _quiet(fn):
    """Silence numpy's inf - inf warnings: diverged modes are masked to inf afterwards."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(invalid="ignore", over="ignore"):
            return fn(*args, **kwargs)

    return wrapper


_SERIES_CUT = 0.1
_SERIES_TERMS = 20  # |x| < 0.1: the truncation is below 0.1**18 relative


def _x_minus_log1p(x: np.ndarray) -> np.ndarray:
    r""":math:`\phi(x)=x-\log(1+x)\ge0` for :math:`x\ge-1`, without cancellation near 0.

    For :math:`|x|<0.1` the series :math:`\sum_{k\ge2}(-1)^kx^k/k` (Horner, 20 terms); else the
    direct formula (at most a ~20-ulp loss). :math:`\phi(-1)=+\infty`.
    """
    x = np.asarray(x, np.float64)
    small = np.abs(x) < _SERIES_CUT
    xs = np.where(small, x, 0.0)
    acc = np.zeros_like(xs)
    for k in range(_SERIES_TERMS, 1, -1):
        acc = (-1.0) ** k / k + xs * acc
    series = xs * xs * acc
    with np.errstate(divide="ignore"):
        direct = np.where(small, 0.0, x) - np.log1p(np.where(small, 0.0, x))
    return np.where(small, series, direct)


# --------------------------------------------------------------------------------------------
# Diagonal Gaussians, one coefficient at a time.


@_quiet
def kl_diagonal(m1, w1, m2, w2, per_coefficient: bool = False):
    r"""KL divergence :math:`\mathrm{KL}(N(m_1,\mathrm{diag}\,w_1)\,\|\,N(m_2,\mathrm{diag}\,w_2))`.

    Per coefficient, with :math:`x=(w_1-w_2)/w_2`,

    .. math:: \mathrm{KL}_k=\tfrac12\Big[\frac{w_1}{w_2}-1-\ln\frac{w_1}{w_2}
              +\frac{(m_1-m_2)^2}{w_2}\Big]=\tfrac12\Big[x-\log(1+x)+\frac{(m_1-m_2)^2}{w_2}\Big],

    and :math:`x-\log(1+x)` is evaluated by its series near :math:`x=0`, so e.g.
    ``kl_diagonal(0, 1 + 1e-9, 0, 1)`` returns :math:`\approx2.5\cdot10^{-19}` to ~1e-15
    relative, where the naive formula returns round-off. Degenerate modes: where
    :math:`w_2=0` the contribution is 0 if :math:`w_1=0` and :math:`m_1=m_2` (both are the same
    point mass), else :math:`+\infty`; :math:`w_1=0<w_2` gives :math:`+\infty`.

    Args:
        m1, w1: mean and variance of the first law (the KL's "from" argument).
        m2, w2: mean and variance of the second law. All four broadcast together; variances
            are :math:`\ge0`.
        per_coefficient: return the per-coefficient array instead of the sum.

    Returns:
        the sum (float, possibly ``inf``), or the per-coefficient float64 array of the
        broadcast shape (a float when every input is a scalar).

    Raises:
        ValueError: on non-finite means, negative/non-finite variances, or shapes that do not
            broadcast.
    """
    a1, v1, a2, v2 = _moments(m1, w1, m2, w2)
    dm2 = (a1 - a2) ** 2
    live = v2 > 0
    safe = np.where(live, v2, 1.0)
    kl = 0.5 * (_x_minus_log1p((v1 - safe) / safe) + dm2 / safe)
    point = (v1 == 0) & (dm2 == 0)
    kl = np.where(live, kl, np.where(point, 0.0, np.inf))
    kl = np.where(_diverged(a1, v1), np.inf, kl)
    if per_coefficient:
        return scalar_or_array(kl, m1, w1, m2, w2)
    return float(np.sum(kl))


@_quiet
def w2_diagonal(m1, w1, m2, w2, per_coefficient: bool = False):
    r"""**Squared** 2-Wasserstein distance between diagonal Gaussians.

    .. math:: W_2^2=\sum_k(m_{1,k}-m_{2,k})^2+(\sqrt{w_{1,k}}-\sqrt{w_{2,k}})^2,

    exact because the covariances commute. The variance part is computed as
    :math:`(w_1-w_2)^2/(\sqrt{w_1}+\sqrt{w_2})^2` (no cancellation when :math:`w_1\approx w_2`).
    See :func:`w2_distance` for the distance itself.

    Returns:
        the sum :math:`W_2^2` (float), or the per-coefficient array (``per_coefficient=True``).

    Raises:
        ValueError: as :func:`kl_diagonal`.
    """
    a1, v1, a2, v2 = _moments(m1, w1, m2, w2)
    den = np.sqrt(v1) + np.sqrt(v2)
    var = np.where(den > 0, (v1 - v2) / np.where(den > 0, den, 1.0), 0.0) ** 2
    out = np.where(_diverged(a1, v1), np.inf, (a1 - a2) ** 2 + var)
    if per_coefficient:
        return scalar_or_array(out, m1, w1, m2, w2)
    return float(np.sum(out))


def w2_distance(m1, w1, m2, w2) -> float:
    r""":math:`W_2=\sqrt{W_2^2}` between diagonal Gaussians (the square root of
    :func:`w2_diagonal`)."""
    return float(np.sqrt(w2_diagonal(m1, w1, m2, w2)))


@_quiet
def tv_bracket_diagonal(m1, w1, m2, w2) -> tuple[float, float]:
    r"""Bracket :math:`1-BC\le\mathrm{TV}\le\sqrt{1-BC^2}` between diagonal Gaussians.

    The Bhattacharyya coefficient :math:`BC=\int\sqrt{pq}` factorises over coefficients,
    :math:`BC=\prod_kBC_k` with (:math:`s=\sqrt w`)

    .. math:: BC_k=\sqrt{\frac{2s_1s_2}{s_1^2+s_2^2}}\exp\Big(-\frac{(m_1-m_2)^2}
              {4(w_1+w_2)}\Big),\qquad \ln\frac{2s_1s_2}{w_1+w_2}
              =\log\Big(1-\frac{(s_1-s_2)^2}{w_1+w_2}\Big),

    and :math:`\ln BC` is accumulated as a sum (no underflow in high dimension). The bracket is
    the Hellinger one, :math:`H^2\le\mathrm{TV}\le H\sqrt{2-H^2}` with :math:`H^2=1-BC`. A mode
    with :math:`w_1=w_2=0` has :math:`BC_k=1` if :math:`m_1=m_2`, else 0.

    Returns:
        ``(lower, upper)`` as floats in [0, 1].

    Raises:
        ValueError: as :func:`kl_diagonal`.
    """
    a1, v1, a2, v2 = _moments(m1, w1, m2, w2)
    tot = v1 + v2
    live = tot > 0
    safe = np.where(live, tot, 1.0)
    shape_part = (np.sqrt(v1) - np.sqrt(v2)) ** 2 / safe  # in [0, 1]
    with np.errstate(divide="ignore"):
        log_bc = 0.5 * np.log1p(-np.minimum(shape_part, 1.0)) - (a1 - a2) ** 2 / (4.0 * safe)
    log_bc = np.where(live, log_bc, np.where(a1 == a2, 0.0, -np.inf))
    log_bc = np.where(_diverged(a1, v1), -np.inf, log_bc)
    total = float(np.sum(log_bc))
    lower = float(max(-np.expm1(total), 0.0))
    upper = float(np.sqrt(max(-np.expm1(2.0 * total), 0.0)))
    return lower, upper


def pinsker(kl):
    r"""Pinsker's inequality :math:`\mathrm{TV}\le\sqrt{\mathrm{KL}/2}` (not clipped at 1).

    Raises:
        ValueError: on a negative or NaN ``kl`` (``inf`` is allowed).
    """
    k = check_positive_array("kl", kl, allow_zero=True, allow_inf=True)
    return scalar_or_array(np.sqrt(k / 2.0), kl)


# --------------------------------------------------------------------------------------------
# Dense Gaussians (small d, validation).


def _mean_vector(name: str, m) -> np.ndarray:
    arr = _finite(name, m)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {arr.shape}")
    return arr


def _covariance(name: str, c, d: int, *, definite: bool) -> np.ndarray:
    arr = _finite(name, c)
    if arr.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {arr.shape}")
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    if np.max(np.abs(arr - arr.T)) > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric, got {arr!r}")
    arr = 0.5 * (arr + arr.T)
    if definite:
        try:
            np.linalg.cholesky(arr)
        except np.linalg.LinAlgError:
            raise ValueError(f"{name} must be positive definite, got {arr!r}") from None
    elif np.min(np.linalg.eigvalsh(arr)) < -1e-12 * max(scale, 1e-300):
        raise ValueError(f"{name} must be positive semi-definite, got {arr!r}")
    return arr


def _two_gaussians(m1, C1, m2, C2, *, definite: bool):
    """Validated ``(m1, C1, m2, C2)`` of two d-dimensional Gaussians (float64)."""
    a1 = _mean_vector("m1", m1)
    d = a1.size
    a2 = _mean_vector("m2", m2)
    if a2.shape != (d,):
        raise ValueError(f"m2 must have shape ({d},) like m1, got {a2.shape}")
    return (a1, _covariance("C1", C1, d, definite=definite), a2,
            _covariance("C2", C2, d, definite=definite))


def kl_gaussian(m1: Float[np.ndarray, " d"], C1: Float[np.ndarray, "d d"],
                m2: Float[np.ndarray, " d"], C2: Float[np.ndarray, "d d"]) -> float:
    r""":math:`\mathrm{KL}(N(m_1,C_1)\,\|\,N(m_2,C_2))` for full covariances.

    .. math:: \mathrm{KL}=\tfrac12\big[\mathrm{tr}(C_2^{-1}C_1)-d-\ln\det(C_2^{-1}C_1)
              +(m_1-m_2)^\top C_2^{-1}(m_1-m_2)\big]
              =\tfrac12\Big[\sum_i\big(x_i-\log(1+x_i)\big)+\|L_2^{-1}(m_1-m_2)\|^2\Big],

    where :math:`C_2=L_2L_2^\top` (Cholesky) and :math:`x_i` are the eigenvalues of
    :math:`L_2^{-1}(C_1-C_2)L_2^{-\top}` (those of :math:`C_2^{-1}C_1` minus one). Forming
    :math:`C_1-C_2` first keeps full relative accuracy when :math:`C_1\approx C_2`.

    Raises:
        ValueError: on shape mismatches, non-finite entries, or a covariance that is not
            symmetric positive definite.
    """
    a1, c1, a2, c2 = _two_gaussians(m1, C1, m2, C2, definite=True)
    l2 = np.linalg.cholesky(c2)
    half = linalg.solve_triangular(l2, c1 - c2, lower=True)
    x = linalg.solve_triangular(l2, half.T, lower=True)  # L2^{-1} (C1 - C2) L2^{-T}
    x = np.linalg.eigvalsh(0.5 * (x + x.T))
    z = linalg.solve_triangular(l2, a1 - a2, lower=True)
    return float(0.5 * (np.sum(_x_minus_log1p(np.maximum(x, -1.0))) + z @ z))


def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
    lam, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.maximum(lam, 0.0))) @ v.T


def w2_gaussian(m1: Float[np.ndarray, " d"], C1: Float[np.ndarray, "d d"],
                m2: Float[np.ndarray, " d"], C2: Float[np.ndarray, "d d"]) -> float:
    r"""**Squared** Bures-Wasserstein distance :math:`W_2^2(N(m_1,C_1),N(m_2,C_2))`.

    .. math:: W_2^2=\|m_1-m_2\|^2+\mathrm{tr}\Big(C_1+C_2
              -2\big(C_2^{1/2}C_1C_2^{1/2}\big)^{1/2}\Big),

    with symmetric square roots from ``eigh`` (negative round-off eigenvalues clipped to 0;
    the result is clipped at 0). Covariances may be singular (positive semi-definite). The
    trace difference cancels when :math:`C_1\approx C_2`: the absolute error is about
    :math:`10^{-16}\,\mathrm{tr}(C_1+C_2)`; use :func:`w2_diagonal` for commuting covariances.

    Raises:
        ValueError: on shape mismatches, non-finite entries, or a covariance that is not
            symmetric positive semi-definite.
    """
    a1, c1, a2, c2 = _two_gaussians(m1, C1, m2, C2, definite=False)
    r2 = _sqrtm_psd(c2)
    m = r2 @ c1 @ r2
    cross = np.linalg.eigvalsh(0.5 * (m + m.T))
    bures = np.trace(c1) + np.trace(c2) - 2.0 * np.sum(np.sqrt(np.maximum(cross, 0.0)))
    return float(np.sum((a1 - a2) ** 2) + max(bures, 0.0))


def w2_gaussian_batch(m1: Float[np.ndarray, "B d"], C1: Float[np.ndarray, "B d d"],
                      m2: Float[np.ndarray, " d"], C2: Float[np.ndarray, "d d"]
                      ) -> Float[np.ndarray, " B"]:
    r""":func:`w2_gaussian` of ``B`` Gaussians :math:`N(m_1^{(b)},C_1^{(b)})` against one
    :math:`N(m_2,C_2)`, with :math:`C_2^{1/2}` computed once and the ``B`` eigenvalue problems
    of :math:`C_2^{1/2}C_1^{(b)}C_2^{1/2}` solved as one stacked call — the same arithmetic
    as ``B`` calls of :func:`w2_gaussian` (bootstrap replicates against a fixed reference).

    Raises:
        ValueError: on shape mismatches, non-finite entries, a non-symmetric or a not positive
            semi-definite covariance (the index ``b`` is named).
    """
    a2 = _mean_vector("m2", m2)
    d = a2.size
    c2 = _covariance("C2", C2, d, definite=False)
    a1 = _finite("m1", m1)
    c1 = _finite("C1", C1)
    if a1.ndim != 2 or a1.shape[1] != d or c1.shape != (a1.shape[0], d, d):
        raise ValueError(f"m1 and C1 must have shapes (B, {d}) and (B, {d}, {d}), got "
                         f"{a1.shape} and {c1.shape}")
    scale = np.max(np.abs(c1), axis=(1, 2), keepdims=True)
    asym = np.max(np.abs(c1 - np.swapaxes(c1, 1, 2)) - 1e-10 * scale, axis=(1, 2))
    if np.any(asym > 0):
        raise ValueError(f"C1 must be symmetric, C1[{int(np.argmax(asym))}] is not")
    c1 = 0.5 * (c1 + np.swapaxes(c1, 1, 2))
    # positive semi-definite up to the tolerance of w2_gaussian (eigenvalues >= -1e-12 scale):
    # a Cholesky factorisation of C1 + 1e-12 scale I exists (a third of an eigvalsh's cost)
    jitter = 1e-12 * np.maximum(scale, 1e-300) * np.eye(d)
    try:
        np.linalg.cholesky(c1 + jitter)
    except np.linalg.LinAlgError:
        bad = [b for b in range(len(c1)) if np.min(np.linalg.eigvalsh(c1[b] + jitter[b])) <= 0]
        raise ValueError(f"C1 must be positive semi-definite, C1[{bad[0] if bad else '?'}] is "
                         f"not") from None
    r2 = _sqrtm_psd(c2)
    m = r2 @ c1 @ r2
    cross = np.linalg.eigvalsh(0.5 * (m + np.swapaxes(m, 1, 2)))
    bures = (np.trace(c1, axis1=1, axis2=2) + np.trace(c2)
             - 2.0 * np.sum(np.sqrt(np.maximum(cross, 0.0)), axis=1))
    return np.sum((a1 - a2) ** 2, axis=1) + np.maximum(bures, 0.0)


# --------------------------------------------------------------------------------------------
# Diverged laws: the worst value instead of an error.


def finite_law(m, w) -> bool:
    """Whether ``N(m, diag w)`` is a law: finite means, finite variances ``>= 0``."""
    m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
    return bool(np.all(np.isfinite(m)) and np.all(np.isfinite(w)) and np.all(w >= 0))


def kl(m1, w1, m2, w2, per_coefficient: bool = False):
    r""":math:`\mathrm{KL}(N(m_1,w_1)\,\|\,N(m_2,w_2))` (:func:`kl_diagonal`), ``inf`` where
    either law is not finite.

    Returns:
        the sum (a float), or with ``per_coefficient`` the float64 array of the broadcast shape
        with ``inf`` at the coefficients where either law is not finite (or :math:`w_1<0`).

    Raises:
        ValueError: if the shapes do not broadcast together.
    """
    m1, w1, m2, w2 = (np.asarray(a, np.float64) for a in (m1, w1, m2, w2))
    if per_coefficient:
        m1, w1, m2, w2 = _broadcast(("m1", "w1", "m2", "w2"), m1, w1, m2, w2)
        ok = np.isfinite(m1) & np.isfinite(w1) & (w1 >= 0) & np.isfinite(m2) & np.isfinite(w2)
        out = np.full(m1.shape, np.inf)
        if ok.any():
            out[ok] = kl_diagonal(m1[ok], w1[ok], m2[ok], w2[ok], per_coefficient=True)
        return out
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return math.inf
    return kl_diagonal(m1, w1, m2, w2)


def w2_sq(m1, w1, m2, w2) -> float:
    r"""Squared :math:`W_2` (:func:`w2_diagonal`), ``inf`` for a law that is not finite."""
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return math.inf
    return w2_diagonal(m1, w1, m2, w2)


def tv_bracket(m1, w1, m2, w2) -> tuple[float, float]:
    r"""The bracket :math:`1-BC\le\mathrm{TV}\le\sqrt{1-BC^2}` (:func:`tv_bracket_diagonal`),
    ``(1, 1)`` for a law that is not finite."""
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return 1.0, 1.0
    return tv_bracket_diagonal(m1, w1, m2, w2)
