r"""Checking convergence-bound *shapes* whose constants are unpublished, and rates.

The bounds of Chen et al. (ICLR 2023) and Benton et al. (ICLR 2024)
(:mod:`opdiff.theory.diffusion`: ``chen_kl_bound``, ``chen_tv_bound``, ``benton_kl_bound``)
hold up to absolute constants. :func:`fit_and_test` fits the constant at one point and tests the
fitted bound at the others: for measurements :math:`e_i`, a shape :math:`b_i` and a rigorous
part :math:`o_i` with no unknown constant (the initialisation term),

.. math:: C=\frac{e_a-o_a}{b_a},\qquad \text{holds at } i\ne a \iff e_i\le o_i+Cb_i,

with :math:`a` the middle admissible point where the excess :math:`e-o` is positive. A shape
with the wrong rate fails this whichever way the mismatch goes. Also the smallest constant that
holds everywhere, :math:`\max_i(e_i-o_i)^+/b_i`, and the spread of :math:`(e-o)/b`.

:func:`order` is :func:`opdiff.theory.diffusion.convergence_order` (least-squares slope in
log-log) that returns NaN instead of raising when fewer than two usable points remain;
:func:`loglog_crossing` is where a piecewise log-log interpolant first falls to a level.
"""

from __future__ import annotations

import math

import numpy as np

from opdiff.theory import diffusion as _th

__all__ = ["fit_and_test", "loglog_crossing", "order"]


def fit_and_test(shape_vals, measured, admissible, offset=None) -> dict:
    r"""Fit ``offset + C * shape`` at one admissible point and test it at the others.

    Args:
        shape_vals: the shape with ``C = 1`` at every point, ``[n]``, ``> 0``.
        measured: the exact values ``[n]`` (``inf`` for a diverged run; NaN is treated as inf).
        admissible: bool ``[n]``: the points where the theorem applies (all, if none is).
        offset: the rigorous part :math:`o` (scalar or ``[n]``; default 0).

    Returns:
        ``at`` (the fit index), ``C``, ``bound`` (``[n]``), ``held`` (bool per other admissible
        point; ``[True]`` if there is none), ``others`` (their indices), ``C_needed`` (the
        smallest constant valid at every admissible point), ``ratio_spread`` (max/min of the
        positive :math:`(e-o)/b`), ``worst`` (max of measured/bound over the others).
    """
    shape_vals, measured = np.asarray(shape_vals, float), np.asarray(measured, float)
    offset = np.zeros_like(shape_vals) if offset is None else np.broadcast_to(
        np.asarray(offset, float), shape_vals.shape)
    idx = np.flatnonzero(admissible)
    if idx.size == 0:
        idx = np.arange(len(measured))
    excess = np.maximum(measured - offset, 0.0)
    informative = idx[excess[idx] > 0]  # where the data say something about C
    pool = informative if informative.size else idx
    at = int(pool[len(pool) // 2])
    fin = np.flatnonzero(np.isfinite(excess))
    c = _th.fit_constant(shape_vals[fin], excess[fin], at=int(np.searchsorted(fin, at))) \
        if np.isfinite(excess[at]) else math.inf
    bound = offset + c * shape_vals
    others = [int(i) for i in idx if i != at]
    held = np.asarray(_th.bound_holds(np.nan_to_num(measured, nan=np.inf)[others],
                                      bound[others])) if others else np.array([True])
    ratio = excess[idx] / shape_vals[idx]
    pos = ratio[ratio > 0]
    return dict(at=at, C=c, bound=bound, held=held, others=others,
                C_needed=float(np.max(ratio)),
                ratio_spread=float(pos.max() / pos.min()) if pos.size else math.nan,
                worst=float(np.max(measured[others] / bound[others])) if others else 0.0)


def order(x, y, idx=None) -> float:
    """Fitted order :math:`p` of :math:`y\\approx Cx^p` over ``idx`` (default all points), NaN
    when it cannot be fitted (fewer than two positive finite pairs)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if idx is not None:
        x, y = x[idx], y[idx]
    try:
        return _th.convergence_order(x, y)
    except ValueError:
        return math.nan


def loglog_crossing(x, y, level: float) -> float:
    """The first ``x`` where the piecewise log-log interpolant of ``y`` falls to ``level``
    (the first point if ``y[0] <= level`` or the previous value is not finite; inf if never)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    for i in range(len(x)):
        if y[i] <= level:
            if i == 0 or not np.isfinite(y[i - 1]):
                return float(x[i])
            lx0, lx1, ly0, ly1 = np.log(x[i - 1]), np.log(x[i]), np.log(y[i - 1]), np.log(y[i])
            return float(np.exp(lx0 + (np.log(level) - ly0) * (lx1 - lx0) / (ly1 - ly0)))
    return math.inf
