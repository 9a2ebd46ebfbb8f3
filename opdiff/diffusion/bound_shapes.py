r"""The shapes of the diffusion convergence bounds, and their plug-ins for Gaussian data
(host-side NumPy, float64).

- **Bound shapes**: Chen et al. (ICLR 2023, :func:`chen_tv_bound`, :func:`chen_kl_bound` and
  the initialisation term :func:`kl_prior_term`), Benton et al. (ICLR 2024,
  :func:`benton_kl_bound`), Li & Yan (ICLR 2025, :func:`li_yan_tv_bound`). The papers state
  them up to *unspecified absolute constants* (":math:`\lesssim`"), so every shape takes a
  nominal constant ``C=1``; :mod:`opdiff.diffusion.bounds` compares them with exact sweeps and
  :mod:`opdiff.claims` states the verdicts. Every argument broadcasts (for sweeps); scalars
  give a float.
- **Gaussian plug-ins** for Chen et al. under the OU process :math:`a_t=e^{-t}`,
  :math:`s_t^2=1-e^{-2t}` and data :math:`q=N(\mu,\mathrm{diag}\,\lambda)`:
  :func:`gaussian_lipschitz` (:math:`L`), :func:`gaussian_m2` (:math:`m_2`) and
  :func:`kl_to_standard_normal` (:math:`\mathrm{KL}(q\|\gamma^d)`, by
  :func:`opdiff.diffusion.laws.kl_diagonal`).

Reference: diffusion.md §4(c)-(d).
"""

from __future__ import annotations

import numpy as np

from opdiff._checks import check_positive_array, check_real_array, scalar_or_array
from opdiff.diffusion.laws import kl_diagonal

__all__ = [
    "chen_tv_bound",
    "chen_kl_bound",
    "kl_prior_term",
    "benton_kl_bound",
    "li_yan_tv_bound",
    "gaussian_lipschitz",
    "gaussian_m2",
    "kl_to_standard_normal",
]


# --------------------------------------------------------------------------------------------
# Bound shapes (constants unpublished: nominal C = 1).


def _chen_args(L, d, m2, h, T, eps_score, C):
    """The checked arguments of Chen et al.'s shapes: ``L, d, C > 0``; the rest ``>= 0``."""
    return (check_positive_array("L", L), check_positive_array("d", d),
            check_positive_array("m2", m2, allow_zero=True),
            check_positive_array("h", h, allow_zero=True),
            check_positive_array("T", T, allow_zero=True),
            check_positive_array("eps_score", eps_score, allow_zero=True),
            check_positive_array("C", C))


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
    kl = check_positive_array("kl_prior", kl_prior, allow_zero=True)
    lip, dim, mom, hh, tt, eps, c = _chen_args(L, d, m2, h, T, eps_score, C)
    root_t = np.sqrt(tt)
    out = c * (np.sqrt(kl) * np.exp(-tt) + (lip * np.sqrt(dim * hh) + lip * mom * hh) * root_t
               + eps * root_t)
    return scalar_or_array(out, kl_prior, L, d, m2, h, T, eps_score, C)


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
    lip, dim, mom, hh, tt, eps, c = _chen_args(L, d, m2, h, T, eps_score, C)
    out = c * (eps * eps + lip * lip * dim * hh + lip * lip * mom * mom * hh * hh) * tt
    return scalar_or_array(out, L, d, m2, h, T, eps_score, C)


def kl_prior_term(kl_prior, T):
    r"""Initialisation term :math:`\mathrm{KL}(q\|\gamma^d)\,e^{-2T}`.

    Under the OU process :math:`\mathrm{KL}(q_T\|\gamma^d)\le\mathrm{KL}(q\|\gamma^d)e^{-2T}`
    (exponential decay of relative entropy, the standard Gaussian satisfies a log-Sobolev
    inequality with constant 1), and starting the sampler at :math:`\gamma^d` instead of
    :math:`q_T` costs at most this much KL (data processing).

    Raises:
        ValueError: on a negative/NaN/infinite ``kl_prior`` or ``T``.
    """
    kl = check_positive_array("kl_prior", kl_prior, allow_zero=True)
    tt = check_positive_array("T", T, allow_zero=True)
    return scalar_or_array(kl * np.exp(-2.0 * tt), kl_prior, T)


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
    e2 = check_positive_array("eps_score2", eps_score2, allow_zero=True)
    k = check_positive_array("kappa", kappa)
    dim = check_positive_array("d", d)
    n = check_positive_array("N", N)
    tt = check_positive_array("T", T, allow_zero=True)
    c = check_positive_array("C", C)
    out = c * (e2 + k * k * dim * n + k * dim * tt + dim * np.exp(-2.0 * tt))
    return scalar_or_array(out, eps_score2, kappa, d, N, T, C)


def li_yan_tv_bound(*, d, n_steps, eps_score, C=1.0):
    r"""Shape of Li & Yan (ICLR 2025) for the DDPM sampler with :math:`\eta_t=\sigma_t^2=
    1-\alpha_t` and their :math:`\beta` schedule.

    .. math:: \mathrm{TV}\le c\,\frac{d\log^3n}{n}+c\,\varepsilon_{\rm score}\sqrt{\log n},

    returned with :math:`c=` ``C``; :math:`n` is the number of steps (:math:`T` in the paper).

    Raises:
        ValueError: if ``n_steps <= 1`` (the shape needs :math:`\log n>0`), ``d <= 0``,
            ``eps_score < 0`` or ``C <= 0`` (or NaN/inf).
    """
    dim = check_positive_array("d", d)
    n = check_real_array("n_steps", n_steps)
    if not np.all(np.isfinite(n)) or np.any(n <= 1):
        raise ValueError(f"n_steps must be finite and > 1, got {n_steps!r}")
    eps = check_positive_array("eps_score", eps_score, allow_zero=True)
    c = check_positive_array("C", C)
    ln = np.log(n)
    return scalar_or_array(c * (dim * ln**3 / n + eps * np.sqrt(ln)), d, n_steps, eps_score, C)


# --------------------------------------------------------------------------------------------
# Plug-ins for a diagonal Gaussian target N(mu, diag lam) under the OU process.


def _eigenvalues(lam) -> np.ndarray:
    arr = check_positive_array("lam", lam)
    if arr.size == 0:
        raise ValueError("lam must be non-empty")
    return arr


def _mean_like(mu, lam: np.ndarray) -> np.ndarray:
    arr = check_real_array("mu", mu)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"mu must be finite, got {mu!r}")
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
