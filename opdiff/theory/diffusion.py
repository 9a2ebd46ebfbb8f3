r"""Gaussian divergences and diffusion convergence-bound shapes (host-side numpy, float64).

Every function is a small pure numpy/scipy function; none touches global state. JAX arrays
are accepted (they are converted with :func:`numpy.asarray`). Reference: diffusion.md §4(c)-(d).

- **Diagonal Gaussians, per coefficient** (:func:`kl_diagonal`, :func:`w2_diagonal`,
  :func:`w2_distance`, :func:`tv_bracket_diagonal`): the errors of a linear-score sampler on
  stationary Gaussian data, one Fourier/DCT mode at a time, then summed (§4(d)).
- **Dense Gaussians** (:func:`kl_gaussian`, :func:`w2_gaussian`): the full-covariance closed
  forms, for small ``d`` (validation).
- **Converters**: Pinsker :math:`\mathrm{TV}\le\sqrt{\mathrm{KL}/2}` (:func:`pinsker`) and the
  Bhattacharyya bracket :math:`1-BC\le\mathrm{TV}\le\sqrt{1-BC^2}`.
- **Bound shapes**: Chen et al. (ICLR 2023), Benton et al. (ICLR 2024), Li & Yan (ICLR 2025).
  The papers state them up to *unspecified absolute constants* (":math:`\lesssim`"), so every
  shape takes a nominal constant ``C=1``; :func:`fit_constant` calibrates ``C`` on one
  measurement and :func:`bound_holds` tests the rest.
- **Gaussian plug-ins** for Chen et al. under the OU process :math:`a_t=e^{-t}`,
  :math:`s_t^2=1-e^{-2t}` (:func:`gaussian_lipschitz`, :func:`gaussian_m2`,
  :func:`kl_to_standard_normal`) and the rate fit :func:`convergence_order`.
"""

from __future__ import annotations

import functools

import numpy as np
from jaxtyping import Float
from scipy import linalg

from opdiff.theory.approximation import _out, _positive, _real_array, loglog_slope

__all__ = [
    "kl_diagonal",
    "w2_diagonal",
    "w2_distance",
    "tv_bracket_diagonal",
    "pinsker",
    "kl_gaussian",
    "w2_gaussian",
    "chen_tv_bound",
    "chen_kl_bound",
    "kl_prior_term",
    "benton_kl_bound",
    "li_yan_tv_bound",
    "gaussian_lipschitz",
    "gaussian_m2",
    "kl_to_standard_normal",
    "fit_constant",
    "bound_holds",
    "convergence_order",
]


# --------------------------------------------------------------------------------------------
# Argument checks and the stable kernel x - log1p(x).


def _finite(name: str, x) -> np.ndarray:
    arr = _real_array(name, x)
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
    arr = _real_array(name, x)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not be NaN, got {x!r}")
    return arr


def _moments(m1, w1, m2, w2) -> list[np.ndarray]:
    # The first law may be infinite (a sampler that diverged): its divergences are +inf.
    names = ("m1", "w1", "m2", "w2")
    arrs = [_not_nan("m1", m1), _positive("w1", w1, allow_zero=True, allow_inf=True),
            _finite("m2", m2), _positive("w2", w2, allow_zero=True)]
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
        return _out(kl, m1, w1, m2, w2)
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
        return _out(out, m1, w1, m2, w2)
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
    k = _positive("kl", kl, allow_zero=True, allow_inf=True)
    return _out(np.sqrt(k / 2.0), kl)


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


# --------------------------------------------------------------------------------------------
# Bound shapes (constants unpublished: nominal C = 1).


def chen_tv_bound(*, kl_prior, L, d, m2, h, T, eps_score, C=1.0):
    r"""Shape of Chen et al. (ICLR 2023), Theorem 2, for the exponential integrator (OU).

    .. math:: \mathrm{TV}(p_T,q)\lesssim\sqrt{\mathrm{KL}(q\|\gamma^d)}\,e^{-T}
              +\big(L\sqrt{dh}+Lm_2h\big)\sqrt T+\varepsilon_{\rm score}\sqrt T,

    returned times ``C``. Assumptions: the scores :math:`\nabla\ln q_t` are :math:`L`-Lipschitz
    (the paper takes :math:`L\ge1`), :math:`m_2^2=\mathbb E\|x\|^2`, the score error in
    :math:`L^2(q_{kh})` is at most :math:`\varepsilon_{\rm score}`, and :math:`h\lesssim1/L`.
    The absolute constant hidden in ":math:`\lesssim`" is not published. All arguments
    broadcast (for sweeps).

    Args:
        kl_prior: :math:`\mathrm{KL}(q\|N(0,I_d))\ge0` (see :func:`kl_to_standard_normal`).
        L: Lipschitz constant :math:`>0` (see :func:`gaussian_lipschitz`).
        d: dimension :math:`>0`.
        m2: root second moment :math:`\sqrt{\mathbb E\|x\|^2}\ge0` (see :func:`gaussian_m2`).
        h: step size :math:`\ge0`.
        T: horizon :math:`\ge0`.
        eps_score: root-mean-square score error :math:`\ge0`.
        C: the constant, :math:`>0`.

    Raises:
        ValueError: naming the first argument that is negative (or non-positive where ``> 0``
            is needed), NaN or infinite.
    """
    kl = _positive("kl_prior", kl_prior, allow_zero=True)
    lip = _positive("L", L)
    dim = _positive("d", d)
    mom = _positive("m2", m2, allow_zero=True)
    hh = _positive("h", h, allow_zero=True)
    tt = _positive("T", T, allow_zero=True)
    eps = _positive("eps_score", eps_score, allow_zero=True)
    c = _positive("C", C)
    root_t = np.sqrt(tt)
    out = c * (np.sqrt(kl) * np.exp(-tt) + (lip * np.sqrt(dim * hh) + lip * mom * hh) * root_t
               + eps * root_t)
    return _out(out, kl_prior, L, d, m2, h, T, eps_score, C)


def chen_kl_bound(*, L, d, m2, h, T, eps_score, C=1.0):
    r"""Shape of Chen et al. (ICLR 2023), Theorem 9 (path-measure KL), score and
    discretisation part only.

    .. math:: \mathrm{TV}^2\le\mathrm{KL}\lesssim\big(\varepsilon_{\rm score}^2+L^2dh
              +L^2m_2^2h^2\big)\,T,

    returned times ``C``. The initialisation error adds a term of the type
    :math:`\mathrm{KL}(q\|\gamma^d)e^{-2T}` (:func:`kl_prior_term`), which is not included
    here. Arguments as in :func:`chen_tv_bound`.

    Raises:
        ValueError: as :func:`chen_tv_bound`.
    """
    lip = _positive("L", L)
    dim = _positive("d", d)
    mom = _positive("m2", m2, allow_zero=True)
    hh = _positive("h", h, allow_zero=True)
    tt = _positive("T", T, allow_zero=True)
    eps = _positive("eps_score", eps_score, allow_zero=True)
    c = _positive("C", C)
    out = c * (eps * eps + lip * lip * dim * hh + lip * lip * mom * mom * hh * hh) * tt
    return _out(out, L, d, m2, h, T, eps_score, C)


def kl_prior_term(kl_prior, T):
    r"""Initialisation term :math:`\mathrm{KL}(q\|\gamma^d)\,e^{-2T}`.

    Under the OU process :math:`\mathrm{KL}(q_T\|\gamma^d)\le\mathrm{KL}(q\|\gamma^d)e^{-2T}`
    (exponential decay of relative entropy, the standard Gaussian satisfies a log-Sobolev
    inequality with constant 1), and starting the sampler at :math:`\gamma^d` instead of
    :math:`q_T` costs at most this much KL (data processing).

    Raises:
        ValueError: on a negative/NaN/infinite ``kl_prior`` or ``T``.
    """
    kl = _positive("kl_prior", kl_prior, allow_zero=True)
    tt = _positive("T", T, allow_zero=True)
    return _out(kl * np.exp(-2.0 * tt), kl_prior, T)


def benton_kl_bound(*, eps_score2, kappa, d, N, T, C=1.0):
    r"""Shape of Benton, De Bortoli, Doucet, Deligiannidis (ICLR 2024), Theorem 1.

    .. math:: \mathrm{KL}(q_\delta\|p_{t_N})\lesssim\varepsilon_{\rm score}^2+\kappa^2dN
              +\kappa dT+d\,e^{-2T},

    returned times ``C``, for step sizes :math:`\gamma_k\le\kappa\min(1,T-t_{k+1})` (linear on
    :math:`[0,T-1]`, exponentially shrinking near the early-stopping time :math:`\delta`). The
    theorem assumes :math:`\mathrm{Cov}(q)=I_d` (general covariances: their App. C).

    Args:
        eps_score2: the *squared* step-weighted score error :math:`\varepsilon^2_{\rm score}
            \ge0`.
        kappa: step-size parameter :math:`\kappa>0`.
        d: dimension :math:`>0`.
        N: number of steps :math:`>0`.
        T: horizon :math:`\ge0`.
        C: the constant, :math:`>0`.

    Raises:
        ValueError: naming the first invalid argument.
    """
    e2 = _positive("eps_score2", eps_score2, allow_zero=True)
    k = _positive("kappa", kappa)
    dim = _positive("d", d)
    n = _positive("N", N)
    tt = _positive("T", T, allow_zero=True)
    c = _positive("C", C)
    out = c * (e2 + k * k * dim * n + k * dim * tt + dim * np.exp(-2.0 * tt))
    return _out(out, eps_score2, kappa, d, N, T, C)


def li_yan_tv_bound(*, d, n_steps, eps_score, C=1.0):
    r"""Shape of Li & Yan (ICLR 2025) for the DDPM sampler with :math:`\eta_t=\sigma_t^2=
    1-\alpha_t` and their :math:`\beta` schedule.

    .. math:: \mathrm{TV}\le c\,\frac{d\log^3n}{n}+c\,\varepsilon_{\rm score}\sqrt{\log n},

    returned with :math:`c=` ``C``; :math:`n` is the number of steps (:math:`T` in the paper).

    Raises:
        ValueError: if ``n_steps <= 1`` (the shape needs :math:`\log n>0`), ``d <= 0``,
            ``eps_score < 0`` or ``C <= 0`` (or NaN/inf).
    """
    dim = _positive("d", d)
    n = _real_array("n_steps", n_steps)
    if not np.all(np.isfinite(n)) or np.any(n <= 1):
        raise ValueError(f"n_steps must be finite and > 1, got {n_steps!r}")
    eps = _positive("eps_score", eps_score, allow_zero=True)
    c = _positive("C", C)
    ln = np.log(n)
    return _out(c * (dim * ln**3 / n + eps * np.sqrt(ln)), d, n_steps, eps_score, C)


# --------------------------------------------------------------------------------------------
# Plug-ins for a diagonal Gaussian target N(mu, diag lam) under the OU process.


def _eigenvalues(lam) -> np.ndarray:
    arr = _positive("lam", lam)
    if arr.size == 0:
        raise ValueError("lam must be non-empty")
    return arr


def _mean_like(mu, lam: np.ndarray) -> np.ndarray:
    arr = _finite("mu", mu)
    try:
        return np.broadcast_to(arr, lam.shape)
    except ValueError:
        raise ValueError(f"mu must broadcast to the shape {lam.shape} of lam, got {arr.shape}"
                         ) from None


def gaussian_lipschitz(lam) -> float:
    r""":math:`L=\sup_{t\ge0}\|C_t^{-1}\|=\max(1,1/\lambda_{\min})` for :math:`q=N(\mu,\Sigma)`.

    Under OU, :math:`C_t=a_t^2\Sigma+s_t^2I` with :math:`a_t^2+s_t^2=1`, so
    :math:`\|C_t^{-1}\|=1/(a_t^2\lambda_{\min}+1-a_t^2)` interpolates between
    :math:`1/\lambda_{\min}` (:math:`t=0`) and 1 (:math:`t\to\infty`).

    Args:
        lam: eigenvalues of :math:`\Sigma` (any shape), all :math:`>0`.

    Raises:
        ValueError: if ``lam`` is empty or has a non-positive/non-finite entry.
    """
    return float(max(1.0, 1.0 / float(np.min(_eigenvalues(lam)))))


def gaussian_m2(mu, lam) -> float:
    r"""Root second moment :math:`m_2=\sqrt{\mathbb E\|x\|^2}=\sqrt{\sum\lambda+\sum\mu^2}`.

    ``mu`` broadcasts to the shape of ``lam`` (e.g. ``mu=0``).

    Raises:
        ValueError: on invalid ``lam`` (as :func:`gaussian_lipschitz`) or a non-finite or
            non-broadcastable ``mu``.
    """
    v = _eigenvalues(lam)
    m = _mean_like(mu, v)
    return float(np.sqrt(np.sum(v) + np.sum(m * m)))


def kl_to_standard_normal(mu, lam) -> float:
    r""":math:`\mathrm{KL}(N(\mu,\mathrm{diag}\,\lambda)\,\|\,N(0,I_d))
    =\tfrac12\big[\sum\lambda+\sum\mu^2-d-\sum\ln\lambda\big]`.

    Evaluated as :func:`kl_diagonal` ``(mu, lam, 0, 1)`` (stable when :math:`\lambda\approx1`).

    Raises:
        ValueError: as :func:`gaussian_m2`.
    """
    v = _eigenvalues(lam)
    m = _mean_like(mu, v)
    return kl_diagonal(m, v, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Calibration and rates.


def fit_constant(shape_values, measured, *, at: int) -> float:
    r"""The constant :math:`C=\text{measured}[at]/\text{shape}[at]` that makes ``C * shape``
    touch the measurement at index ``at``.

    ``shape_values`` is a bound evaluated with ``C=1``. After calibration the bound is a
    *prediction* at every other index; :func:`bound_holds` tests it there.

    Raises:
        ValueError: if the arrays are not 1-D of the same length, ``at`` is out of range, a
            value is NaN/infinite, ``measured`` is negative or ``shape_values[at] <= 0``.
        TypeError: if ``at`` is not an int.
    """
    s = _finite("shape_values", shape_values)
    m = _finite("measured", measured)
    if s.ndim != 1 or s.shape != m.shape or s.size == 0:
        raise ValueError(f"shape_values and measured must be 1-D of the same non-zero length, "
                         f"got shapes {s.shape} and {m.shape}")
    if isinstance(at, bool) or not isinstance(at, (int, np.integer)):
        raise TypeError(f"at must be an int, got {at!r}")
    if not -s.size <= at < s.size:
        raise ValueError(f"at must index an array of length {s.size}, got {at!r}")
    if np.any(m < 0):
        raise ValueError(f"measured must be >= 0, got {m!r}")
    if s[at] <= 0:
        raise ValueError(f"shape_values[at] must be > 0, got {s[at]!r} at at={at}")
    return float(m[at] / s[at])


def bound_holds(measured, bound, *, rtol: float = 0.0):
    r"""Elementwise ``measured <= bound * (1 + rtol)`` (an upper bound holds).

    ``rtol`` is the relative statistical slack of ``measured``. Arrays broadcast; a bool is
    returned for scalars, else a bool array. ``inf`` bounds always hold.

    Raises:
        ValueError: on NaN entries, a negative ``rtol`` or shapes that do not broadcast.
    """
    m = _real_array("measured", measured)
    b = _real_array("bound", bound)
    if np.any(np.isnan(m)):
        raise ValueError(f"measured must not be NaN, got {measured!r}")
    if np.any(np.isnan(b)):
        raise ValueError(f"bound must not be NaN, got {bound!r}")
    r = float(_positive("rtol", rtol, allow_zero=True))
    m, b = _broadcast(("measured", "bound"), m, b)
    held = m <= b * (1.0 + r)
    return bool(held) if held.ndim == 0 else held


def convergence_order(h, err) -> float:
    r"""Fitted order :math:`p` in :math:`\text{err}\approx Ch^p` (least-squares slope in log-log).

    Entries with a non-positive, NaN or infinite ``h`` or ``err`` are dropped (e.g. a run that
    diverged or hit exactly zero error); the rest go to
    :func:`opdiff.theory.approximation.loglog_slope`.

    Raises:
        ValueError: if ``h`` and ``err`` are not 1-D of the same length, fewer than 2 usable
            pairs remain, or all usable ``h`` are equal.
    """
    hs, es = _real_array("h", h), _real_array("err", err)
    if hs.ndim != 1 or hs.shape != es.shape:
        raise ValueError(f"h and err must be 1-D of the same length, got shapes {hs.shape} "
                         f"and {es.shape}")
    keep = np.isfinite(hs) & np.isfinite(es) & (hs > 0) & (es > 0)
    if int(np.sum(keep)) < 2:
        raise ValueError(f"h and err need at least 2 positive finite pairs, got "
                         f"{int(np.sum(keep))} of {hs.size}")
    try:
        return loglog_slope(hs[keep], es[keep])
    except ValueError:
        raise ValueError(f"h must not be all equal, got {hs[keep]!r}") from None
