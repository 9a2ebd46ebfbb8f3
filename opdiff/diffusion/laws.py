r"""Divergences between diagonal Gaussian laws that a diverged sampler may have produced.

The exact output law :math:`N(m,\mathrm{diag}\,w)` of a sampler
(:func:`opdiff.diffusion.oracle.sampler_law`) is non-finite when the sampler diverges
(explicit Euler--Maruyama on the stiff high frequencies of heat dissipation: infinite or NaN
moments). The closed forms of :mod:`opdiff.theory.diffusion` score an infinite *first* law
``inf`` but refuse NaN; the functions here score every diverged law as the worst value
(:math:`\mathrm{KL}=W_2^2=\infty`, :math:`\mathrm{TV}\in[1,1]`), so a diverged run is kept as
measured and never wins a comparison. For finite laws they return exactly what the closed forms
return:

.. math:: \mathrm{KL}=\tfrac12\sum_k\Big[\frac{w_{1,k}}{w_{2,k}}-1-\ln\frac{w_{1,k}}{w_{2,k}}
          +\frac{(m_{1,k}-m_{2,k})^2}{w_{2,k}}\Big],\qquad
          W_2^2=\sum_k(m_{1,k}-m_{2,k})^2+(\sqrt{w_{1,k}}-\sqrt{w_{2,k}})^2.
"""

from __future__ import annotations

import math

import numpy as np

from opdiff.theory import diffusion as _th

__all__ = ["finite_law", "kl", "tv_bracket", "w2_sq"]


def finite_law(m, w) -> bool:
    """Whether ``N(m, diag w)`` is a law: finite means, finite variances ``>= 0``."""
    m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
    return bool(np.all(np.isfinite(m)) and np.all(np.isfinite(w)) and np.all(w >= 0))


def kl(m1, w1, m2, w2, per_coefficient: bool = False):
    r""":math:`\mathrm{KL}(N(m_1,w_1)\,\|\,N(m_2,w_2))` (:func:`opdiff.theory.diffusion.
    kl_diagonal`), ``inf`` where either law is not finite.

    Returns:
        the sum (a float), or with ``per_coefficient`` the float64 array of the broadcast shape
        with ``inf`` at the coefficients where either law is not finite (or :math:`w_1<0`).
    """
    m1, w1, m2, w2 = (np.asarray(a, np.float64) for a in (m1, w1, m2, w2))
    if per_coefficient:
        m1, w1, m2, w2 = np.broadcast_arrays(m1, w1, m2, w2)
        ok = np.isfinite(m1) & np.isfinite(w1) & (w1 >= 0) & np.isfinite(m2) & np.isfinite(w2)
        out = np.full(m1.shape, np.inf)
        if ok.any():
            out[ok] = _th.kl_diagonal(m1[ok], w1[ok], m2[ok], w2[ok], per_coefficient=True)
        return out
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return math.inf
    try:
        return _th.kl_diagonal(m1, w1, m2, w2)
    except ValueError:
        return math.inf


def w2_sq(m1, w1, m2, w2) -> float:
    r"""Squared :math:`W_2` (:func:`opdiff.theory.diffusion.w2_diagonal`), ``inf`` for a law that
    is not finite."""
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return math.inf
    return _th.w2_diagonal(m1, w1, m2, w2)


def tv_bracket(m1, w1, m2, w2) -> tuple[float, float]:
    r"""The bracket :math:`1-BC\le\mathrm{TV}\le\sqrt{1-BC^2}` (:func:`opdiff.theory.diffusion.
    tv_bracket_diagonal`), ``(1, 1)`` for a law that is not finite."""
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return 1.0, 1.0
    return _th.tv_bracket_diagonal(m1, w1, m2, w2)
