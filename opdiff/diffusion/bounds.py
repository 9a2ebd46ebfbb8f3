r"""Checking convergence-bound *shapes* whose constants are unpublished, and rates.

The bounds of Chen et al. (ICLR 2023) and Benton et al. (ICLR 2024)
(:mod:`opdiff.diffusion.bound_shapes`: ``chen_kl_bound``, ``chen_tv_bound``,
``benton_kl_bound``) hold up to absolute constants. :func:`fit_and_test` fits the constant at
one point, to test the fitted bound at the others: for measurements :math:`e_i`, a shape
:math:`b_i` and a rigorous part :math:`o_i` with no unknown constant (the initialisation term),

.. math:: C=\frac{e_a-o_a}{b_a},\qquad \text{holds at } i\ne a \iff e_i\le o_i+Cb_i,

with :math:`a` the middle admissible point where the excess :math:`e-o` is positive. A shape
with the wrong rate fails this whichever way the mismatch goes. Also the smallest constant that
holds everywhere, :math:`\max_i(e_i-o_i)^+/b_i`, and the spread of :math:`(e-o)/b`. The
verdict, bound against exact value at the other points, is a :func:`opdiff.claims.upper_bound`.

:func:`order` is the least-squares slope in log-log (:func:`opdiff.claims.loglog_slope`) over
the positive finite points, NaN when fewer than two usable points remain;
:func:`loglog_crossing` is where a piecewise log-log interpolant first falls to a level,
:func:`first_at_or_below` the first grid point at or below it.

**Exact sweeps in the bounds' settings.** Chen et al. and Benton et al. analyse the
exponential integrator on the OU process :math:`dX=-X\,dt+\sqrt2\,dB`
(:func:`opdiff.diffusion.processes.ou`) with the exact score, started from
:math:`\gamma^d=N(0,I)` (:data:`STANDARD_NORMAL`). On Gaussian data
(:class:`~opdiff.diffusion.oracle.GaussianField`) its output law :math:`\hat p` is exact
(:func:`~opdiff.diffusion.oracle.sampler_law`), and so is :math:`\mathrm{KL}(q\|\hat p)`
(data first, as in both theorems). :func:`chen_h_sweep`, :func:`chen_T_sweep`,
:func:`benton_sweep` and :func:`dimension_sweep` return these exact values beside each
theorem's shape with its Gaussian plug-ins :math:`L=\max(1,1/\lambda_{\min})`,
:math:`m_2^2=\sum\lambda+\|\mu\|^2`, :math:`\mathrm{KL}(q\|\gamma^d)`, and the one-point fits
of :func:`fit_and_test`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from opdiff import claims as _claims
from opdiff.diffusion import bound_shapes as _shapes
from opdiff.diffusion import oracle as _oracle
from opdiff.diffusion import processes as _processes
from opdiff.diffusion import samplers as _samplers
from opdiff.diffusion.laws import kl as _kl
from opdiff.diffusion.laws import pinsker as _pinsker
from opdiff.diffusion.laws import tv_bracket as _tv_bracket

__all__ = ["STANDARD_NORMAL", "benton_sweep", "chen_T_sweep", "chen_h_sweep", "dimension_sweep",
           "curve_summary", "first_at_or_below", "fit_and_test", "loglog_crossing", "order"]

STANDARD_NORMAL = (0.0, 1.0)  # gamma^d = N(0, I): Chen's and Benton's initial law (and OU's prior)


def fit_and_test(shape_vals, measured, admissible, offset=None) -> dict:
    r"""Fit ``offset + C * shape`` at one admissible point and test it at the others.

    Args:
        shape_vals: the shape with ``C = 1`` at every point, ``[n]``, ``> 0``.
        measured: the exact values ``[n]`` (``inf`` for a diverged run; NaN is treated as inf).
        admissible: bool ``[n]``: the points where the theorem applies (all, if none is).
        offset: the rigorous part :math:`o` (scalar or ``[n]``; default 0).

    Returns:
        ``at`` (the fit index), ``C``, ``bound`` (``[n]``), ``others`` (the other admissible
        points, where ``measured <= bound`` is to be claimed with
        :func:`opdiff.claims.upper_bound`), ``C_needed`` (the smallest constant valid at every
        admissible point), ``ratio_spread`` (max/min of the positive :math:`(e-o)/b`),
        ``worst`` (max of measured/bound over the others).

    Raises:
        ValueError: if the shape at the fit point is not ``> 0``.
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
    if not shape_vals[at] > 0:
        raise ValueError(f"shape_vals must be > 0 at the fit point {at}, got {shape_vals[at]!r}")
    c = float(excess[at] / shape_vals[at]) if np.isfinite(excess[at]) else math.inf
    bound = offset + c * shape_vals
    others = [int(i) for i in idx if i != at]
    ratio = excess[idx] / shape_vals[idx]
    pos = ratio[ratio > 0]
    return dict(at=at, C=c, bound=bound, others=others,
                C_needed=float(np.max(ratio)),
                ratio_spread=float(pos.max() / pos.min()) if pos.size else math.nan,
                worst=float(np.max(measured[others] / bound[others])) if others else 0.0)


def order(x, y, idx=None) -> float:
    r"""Fitted order :math:`p` of :math:`y\approx Cx^p` over ``idx`` (default all points): the
    least-squares slope of :math:`\log y` on :math:`\log x` (:func:`opdiff.claims.loglog_slope`)
    over the pairs where both are positive and finite (a diverged run or an exact zero is
    dropped); NaN when it cannot be fitted (fewer than two such pairs, or all ``x`` equal).

    Raises:
        ValueError: if ``x`` and ``y`` are not 1-D of the same length.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if idx is not None:
        x, y = x[idx], y[idx]
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and "
                         f"{y.shape}")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if np.count_nonzero(keep) < 2:
        return math.nan
    try:
        return _claims.loglog_slope(x[keep], y[keep])[0]
    except ValueError:  # all x equal
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


def first_at_or_below(x, y, level: float) -> float:
    """The first ``x[i]`` with ``y[i] <= level`` (``inf`` if none; NaN never qualifies)."""
    ok = np.flatnonzero(np.asarray(y, float) <= level)
    return np.asarray(x)[ok[0]].item() if ok.size else math.inf


def curve_summary(curve: dict, steps, order_points: int, level: float) -> dict:
    r"""Order and cost of one sampler's convergence curve
    (:func:`opdiff.diffusion.oracle.convergence_curve`).

    Returns:
        ``fitted_order_w2``: :func:`order` of :math:`W_2\approx Ch^p`, :math:`h=1/n`, over the
        ``order_points`` largest ``steps``; ``min_nfe_to_target``: the first NFE of the grid with
        ``kl_total_per_dim <= level`` (:func:`first_at_or_below`);
        ``min_nfe_to_target_interpolated``: the log-log crossing (:func:`loglog_crossing`).
    """
    h = 1.0 / np.asarray(steps, float)
    tail = np.arange(len(steps) - order_points, len(steps))
    x, y = curve["nfe"], curve["kl_total_per_dim"]
    return dict(fitted_order_w2=order(h, curve["w2"], tail),
                min_nfe_to_target=first_at_or_below(x, y, level),
                min_nfe_to_target_interpolated=loglog_crossing(x, y, level))


# ----------------------------------------------------------------------------- exact sweeps


@functools.lru_cache(maxsize=None)
def _ou(size: int, T: float, t_min: float):
    """One OU process per (size, T, t_min): processes are static arguments of the compiled law,
    so reusing the object reuses the compile."""
    return _processes.ou((size, size), basis="dft", T=T, t_min=t_min)


def _plugins(field) -> tuple[float, float, float]:
    lam, mu = field.var, field.mean
    return (_shapes.gaussian_lipschitz(lam), _shapes.gaussian_m2(mu, lam),
            _shapes.kl_to_standard_normal(mu, lam))


def chen_h_sweep(field, T: float, t_min: float, steps) -> dict:
    r"""Chen et al.'s bound against the exact KL over the step :math:`h` at fixed :math:`T`.

    The exponential integrator on OU (square ``dft`` field, uniform grid of :math:`n` steps on
    :math:`[t_{\min},T]`, :math:`h=(T-t_{\min})/n`) from :math:`\gamma^d`; per :math:`n`:
    :math:`\mathrm{KL}(q\|\hat p)`, :math:`\mathrm{KL}(\hat p\|q)`, the TV bracket, and the
    discretisation-only :math:`\mathrm{KL}(q_{t_{\min}}\|\hat p_{\rm exact})` (from the exact
    :math:`q_T`). Shapes: KL :math:`(L^2dh+L^2m_2^2h^2)T`
    (:func:`~opdiff.diffusion.bound_shapes.chen_kl_bound`), TV
    :func:`~opdiff.diffusion.bound_shapes.chen_tv_bound` (no prior term); the
    rigorous initialisation parts :math:`\mathrm{KL}(q\|\gamma^d)e^{-2T}` and its Pinsker
    value are the offsets of the fits, on the admissible points :math:`h\le1/L` (for TV also
    where the TV upper end is :math:`<1`).

    Returns:
        ``L``, ``m2``, ``kl_prior``, ``h``, ``admissible``, ``kl``, ``kl_out_vs_data``,
        ``kl_disc``, ``tv_lower``, ``tv_upper``, ``shape_kl``, ``shape_tv`` (``[n_runs]``),
        ``prior_kl``, ``prior_tv``, ``fit_kl``, ``fit_tv`` (:func:`fit_and_test`), ``order_kl``,
        ``order_kl_disc``, ``order_shape`` (fitted orders in :math:`h` over the admissible
        points).
    """
    d, lam, mu = field.size, field.var, field.mean
    L, m2, klp = _plugins(field)
    ou = _ou(field.shape[0], T, t_min)
    hs, kl_qp, kl_pq, kl_disc, tv_lo, tv_hi = [], [], [], [], [], []
    for n in steps:
        ts = _samplers.uniform_grid(ou, n)
        hs.append((T - t_min) / n)
        m, w = _oracle.sampler_law("exponential", ou, field, ts, init=STANDARD_NORMAL)
        kl_qp.append(_kl(mu, lam, m, w))
        kl_pq.append(_kl(m, w, mu, lam))
        lo, hi = _tv_bracket(m, w, mu, lam)
        tv_lo.append(lo)
        tv_hi.append(hi)
        me, we = _oracle.sampler_law("exponential", ou, field, ts, init="exact")
        mt, vt = (np.asarray(a) for a in field.marginal(ou, ts[0]))
        kl_disc.append(_kl(mt, vt, me, we))
    hs = np.array(hs)
    shape_kl = np.asarray(_shapes.chen_kl_bound(L=L, d=d, m2=m2, h=hs, T=T, eps_score=0.0))
    shape_tv = np.asarray(_shapes.chen_tv_bound(kl_prior=0.0, L=L, d=d, m2=m2, h=hs, T=T,
                                                eps_score=0.0))
    prior_kl = _shapes.kl_prior_term(klp, T)
    prior_tv = _pinsker(prior_kl)
    adm = hs <= 1 / L
    return dict(L=L, m2=m2, kl_prior=klp, h=hs, admissible=adm, kl=np.array(kl_qp),
                kl_out_vs_data=np.array(kl_pq), kl_disc=np.array(kl_disc),
                tv_lower=np.array(tv_lo), tv_upper=np.array(tv_hi), shape_kl=shape_kl,
                shape_tv=shape_tv, prior_kl=prior_kl, prior_tv=prior_tv,
                fit_kl=fit_and_test(shape_kl, kl_qp, adm, prior_kl),
                fit_tv=fit_and_test(shape_tv, tv_hi, adm & (np.array(tv_hi) < 1), prior_tv),
                order_kl=order(hs, kl_qp, adm), order_kl_disc=order(hs, kl_disc, adm),
                order_shape=order(hs, shape_kl, adm))


def chen_T_sweep(field, Ts, h: float, t_min: float) -> dict:
    r"""Chen et al.'s KL bound against the exact :math:`\mathrm{KL}(q\|\hat p)` over the horizon
    :math:`T` at (about) fixed step: :math:`n=\max(1,\mathrm{round}((T-t_{\min})/h))` uniform
    steps, as in :func:`chen_h_sweep`; the prior term :math:`\mathrm{KL}(q\|\gamma^d)e^{-2T}`
    is the offset of a fit on every point.

    Returns:
        ``T``, ``kl``, ``shape_kl``, ``prior_kl`` (``[n_T]``) and ``fit`` (:func:`fit_and_test`).
    """
    d, lam, mu = field.size, field.var, field.mean
    L, m2, klp = _plugins(field)
    out_T, kls, shapes, priors = [], [], [], []
    for T in Ts:
        n = max(1, round((T - t_min) / h))
        p = _ou(field.shape[0], T, t_min)
        m, w = _oracle.sampler_law("exponential", p, field, _samplers.uniform_grid(p, n),
                                   init=STANDARD_NORMAL)
        hn = (T - t_min) / n
        out_T.append(T)
        kls.append(_kl(mu, lam, m, w))
        shapes.append(float(_shapes.chen_kl_bound(L=L, d=d, m2=m2, h=hn, T=T, eps_score=0.0)))
        priors.append(_shapes.kl_prior_term(klp, T))
    return dict(T=np.array(out_T), kl=np.array(kls), shape_kl=np.array(shapes),
                prior_kl=np.array(priors),
                fit=fit_and_test(shapes, kls, np.ones(len(out_T), bool), priors))


def benton_sweep(field, T: float, delta: float, steps) -> dict:
    r"""Benton et al.'s shape :math:`\kappa^2dN+\kappa dT+de^{-2T}`
    (:func:`~opdiff.diffusion.bound_shapes.benton_kl_bound`, exact score) against the exact
    :math:`\mathrm{KL}(q_\delta\|\hat p)` of the exponential integrator on OU from
    :math:`\gamma^d`, on their schedule :func:`~opdiff.diffusion.samplers.benton_grid`
    (:math:`\kappa` measured on the grid) and, for comparison, on the uniform grid of as many
    steps; one constant fitted on every point.

    Returns:
        ``N``, ``kappa``, ``kl``, ``kl_uniform``, ``shape_kl`` (``[n_runs]``), ``fit``,
        ``order_kappa`` and ``order_shape`` (fitted orders in :math:`\kappa`).
    """
    ou_b = _ou(field.shape[0], T, delta)
    md, vd = (np.asarray(a) for a in field.marginal(ou_b, delta))
    Ns, kappas, kls, klu = [], [], [], []
    for N in steps:
        grid, kappa = _samplers.benton_grid(T, delta, N)
        m, w = _oracle.sampler_law("exponential", ou_b, field, grid, init=STANDARD_NORMAL)
        Ns.append(N)
        kappas.append(kappa)
        kls.append(_kl(md, vd, m, w))
        mu_, wu = _oracle.sampler_law("exponential", ou_b, field,
                                      _samplers.uniform_grid(ou_b, N), init=STANDARD_NORMAL)
        klu.append(_kl(md, vd, mu_, wu))
    kappas = np.array(kappas)
    shape_b = np.asarray(_shapes.benton_kl_bound(eps_score2=0.0, kappa=kappas, d=field.size,
                                                 N=np.array(Ns), T=T))
    return dict(N=np.array(Ns), kappa=kappas, kl=np.array(kls), kl_uniform=np.array(klu),
                shape_kl=shape_b, fit=fit_and_test(shape_b, kls, np.ones(len(Ns), bool)),
                order_kappa=order(kappas, kls), order_shape=order(kappas, shape_b))


def dimension_sweep(alpha: float, sizes, n_steps: int, T: float, t_min: float) -> dict:
    r"""The exact :math:`\mathrm{KL}(q\|\hat p)` of the exponential integrator on OU
    (``n_steps`` uniform steps, from :math:`\gamma^d`) for the power-law field
    (:func:`~opdiff.diffusion.oracle.power_law_field`, exponent ``alpha``) at ``sizes``\ :sup:`2`
    pixels, with Chen's factor :math:`L^2d` and the fitted exponents of KL vs :math:`d` and vs
    :math:`L^2d`.

    Returns:
        ``d``, ``kl``, ``L2d`` (``[n_sizes]``), ``exponent_d``, ``exponent_L2d``.
    """
    ds, kls, l2d = [], [], []
    for size in sizes:
        f = _oracle.power_law_field((size, size), "dft", alpha=alpha)
        p = _ou(size, T, t_min)
        m, w = _oracle.sampler_law("exponential", p, f, _samplers.uniform_grid(p, n_steps),
                                   init=STANDARD_NORMAL)
        ds.append(f.size)
        kls.append(_kl(f.mean, f.var, m, w))
        l2d.append(_shapes.gaussian_lipschitz(f.var) ** 2 * f.size)
    return dict(d=np.array(ds), kl=np.array(kls), L2d=np.array(l2d),
                exponent_d=order(ds, kls), exponent_L2d=order(l2d, kls))
