r"""Exact convergence sweeps in the settings of the diffusion bounds, rates, and the
extrapolation of a converging sequence.

The bounds of Chen et al. (ICLR 2023) and Benton et al. (ICLR 2024)
(:mod:`opdiff.diffusion.bound_shapes`: ``chen_kl_bound``, ``chen_tv_bound``,
``benton_kl_bound``) hold up to absolute constants that the papers do not publish. Such a bound
is checked by its *rate* (:func:`opdiff.claims.rate`): over a range where the shape is the
leading term, the exact error must fall at least as fast as the shape, and the smallest
constant valid over the range, :math:`C^*=\max_i e_i/b_i`, is reported -- never a constant
fitted at one point (a one-point fit fails any shape whose rate is not the exact one, even a
valid, loose one). The sweeps below return each exact error beside its shape so that the rate
can be taken *against the shape itself* (``sizes`` = 1/shape, exponent -1).

:func:`order` is the least-squares slope in log-log (:func:`opdiff.claims.loglog_slope`) over
the positive finite points, NaN when fewer than two usable points remain;
:func:`loglog_crossing` is where a piecewise log-log interpolant first falls to a level,
:func:`first_at_or_below` the first grid point at or below it; :func:`richardson` the
:math:`n\to\infty` limit of a sequence with a known error expansion in :math:`1/n`.

**Exact sweeps in the bounds' settings.** Chen et al. and Benton et al. analyse the
exponential integrator on the OU process :math:`dX=-X\,dt+\sqrt2\,dB`
(:func:`opdiff.diffusion.processes.ou`) with the exact score, started from
:math:`\gamma^d=N(0,I)` (:data:`STANDARD_NORMAL`). On Gaussian data
(:class:`~opdiff.diffusion.oracle.GaussianField`) its output law :math:`\hat p` is exact
(:func:`~opdiff.diffusion.oracle.sampler_law`), and so is :math:`\mathrm{KL}(q\|\hat p)`
(data first, as in both theorems). Both bounds are a sum of an initialisation term
(:math:`\mathrm{KL}(q\|\gamma^d)e^{-2T}`, resp. :math:`de^{-2T}`) and a discretisation term;
the sweeps also run the sampler from the exact :math:`q_T`, which removes the first, so that
the discretisation term is compared with the error it bounds. :func:`chen_h_sweep`,
:func:`chen_T_sweep`, :func:`benton_sweep` and :func:`dimension_sweep` return these exact values
beside each theorem's shape with its Gaussian plug-ins :math:`L=\max(1,1/\lambda_{\min})`,
:math:`m_2^2=\sum\lambda+\|\mu\|^2`, :math:`\mathrm{KL}(q\|\gamma^d)`.
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
           "GROWTH", "curve_summary", "first_at_or_below", "loglog_crossing", "order", "richardson"]

STANDARD_NORMAL = (0.0, 1.0)  # gamma^d = N(0, I): Chen's and Benton's initial law (and OU's prior)


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


def richardson(n, values, *, order: int = 1, terms: int = 2) -> dict:
    r"""The :math:`n\to\infty` limit of a sequence :math:`K(n)=K_\infty+\sum_{j<\mathrm{terms}}
    a_jn^{-(p+j)}+O(n^{-(p+\mathrm{terms})})` (:math:`p` = ``order``) by Richardson's
    extrapolation (a Romberg table) on the last ``terms + 1`` points, which must be in a constant
    ratio :math:`r=n_{i+1}/n_i>1`.

    Each column eliminates one power: :math:`R_{j+1,i}=R_{j,i+1}+(R_{j,i+1}-R_{j,i})/(r^{p+j}-1)`.
    The error estimate is the change of the limit when the coarsest of the points is replaced by
    the next finer (the same table one level coarser); it needs ``terms + 2`` points, and is
    ``nan`` with only ``terms + 1``.

    Args:
        n: increasing positive step counts ``[m]``, the last ``terms + 1`` (or ``+ 2``) in
            a constant ratio.
        values: the sequence ``[m]`` (finite on those points).
        order: the leading power :math:`p\ge1` of the error in :math:`1/n`.
        terms: how many powers to eliminate, ``>= 1``.

    Returns:
        ``limit``, ``error`` (the estimate above), ``ratio`` :math:`r`, ``n_used``.

    Raises:
        ValueError: too few points, a ratio that is not constant, non-finite values, or an
            invalid ``order``/``terms``.
    """
    n, v = np.asarray(n, np.float64), np.asarray(values, np.float64)
    if not (isinstance(order, int) and order >= 1 and isinstance(terms, int) and terms >= 1):
        raise ValueError(f"order and terms must be ints >= 1, got {order!r}, {terms!r}")
    if n.ndim != 1 or n.shape != v.shape or n.size < terms + 1:
        raise ValueError(f"need 1-D n and values of equal length >= terms + 1 = {terms + 1}, "
                         f"got {n.shape} and {v.shape}")
    k = min(n.size, terms + 2)
    nn, vv = n[-k:], v[-k:]
    if not (np.all(np.isfinite(vv)) and np.all(nn > 0)):
        raise ValueError(f"the last {k} values must be finite and n > 0, got {vv}, {nn}")
    r = nn[1:] / nn[:-1]
    if not (np.all(r > 1) and np.allclose(r, r[0], rtol=1e-12)):
        raise ValueError(f"the last {k} n must be in a constant ratio > 1, got {nn}")
    r = float(r[0])

    def table(col):
        for j in range(terms):
            f = r ** (order + j) - 1.0
            col = col[1:] + (col[1:] - col[:-1]) / f
        return float(col[-1])

    limit = table(vv[-(terms + 1):])
    error = abs(limit - table(vv[:terms + 1])) if k == terms + 2 else math.nan
    return dict(limit=limit, error=error, ratio=r, n_used=nn.tolist())


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


def _marginal(field, process, t):
    return tuple(np.asarray(a) for a in field.marginal(process, t))


def _disc_law(field, process, grid):
    """The exponential integrator's law from the exact :math:`q_T` on ``grid``, and the target
    :math:`q_{t_0}` at the grid's first time."""
    m, w = _oracle.sampler_law("exponential", process, field, grid, init="exact")
    return (m, w), _marginal(field, process, grid[0])


def chen_h_sweep(field, T: float, t_min: float, steps) -> dict:
    r"""Chen et al.'s bound against the exact errors over the step :math:`h` at fixed :math:`T`.

    The exponential integrator on OU (square ``dft`` field, uniform grid of :math:`n` steps on
    :math:`[t_{\min},T]`, :math:`h=(T-t_{\min})/n`); per :math:`n`, from :math:`\gamma^d`:
    :math:`\mathrm{KL}(q\|\hat p)`, :math:`\mathrm{KL}(\hat p\|q)`, the TV bracket; from the
    exact :math:`q_T` (discretisation only, against :math:`q_{t_{\min}}`): ``kl_disc`` and the
    upper end of its TV bracket ``tv_disc_upper``. Shapes: KL :math:`(L^2dh+L^2m_2^2h^2)T`
    (:func:`~opdiff.diffusion.bound_shapes.chen_kl_bound`), TV
    :func:`~opdiff.diffusion.bound_shapes.chen_tv_bound` without the prior term; the theorems
    apply for :math:`h\le1/L` (``admissible``). ``prior_kl`` is the initialisation term
    :math:`\mathrm{KL}(q\|\gamma^d)e^{-2T}`, ``prior_tv`` its Pinsker value.

    Returns:
        ``L``, ``m2``, ``kl_prior``, ``h``, ``admissible``, ``kl``, ``kl_out_vs_data``,
        ``kl_disc``, ``tv_lower``, ``tv_upper``, ``tv_disc_upper``, ``shape_kl``, ``shape_tv``
        (``[n_runs]``), ``prior_kl``, ``prior_tv``, ``order_kl``, ``order_kl_disc``,
        ``order_shape`` (fitted orders in :math:`h` over the admissible points).
    """
    d, lam, mu = field.size, field.var, field.mean
    L, m2, klp = _plugins(field)
    ou = _ou(field.shape[0], T, t_min)
    hs, kl_qp, kl_pq, kl_disc, tv_lo, tv_hi, tv_disc = [], [], [], [], [], [], []
    for n in steps:
        ts = _samplers.uniform_grid(ou, n)
        hs.append((T - t_min) / n)
        m, w = _oracle.sampler_law("exponential", ou, field, ts, init=STANDARD_NORMAL)
        kl_qp.append(_kl(mu, lam, m, w))
        kl_pq.append(_kl(m, w, mu, lam))
        lo, hi = _tv_bracket(m, w, mu, lam)
        tv_lo.append(lo)
        tv_hi.append(hi)
        (me, we), (mt, vt) = _disc_law(field, ou, ts)
        kl_disc.append(_kl(mt, vt, me, we))
        tv_disc.append(_tv_bracket(me, we, mt, vt)[1])
    hs = np.array(hs)
    shape_kl = np.asarray(_shapes.chen_kl_bound(L=L, d=d, m2=m2, h=hs, T=T, eps_score=0.0))
    shape_tv = np.asarray(_shapes.chen_tv_bound(kl_prior=0.0, L=L, d=d, m2=m2, h=hs, T=T,
                                                eps_score=0.0))
    prior_kl = _shapes.kl_prior_term(klp, T)
    adm = hs <= 1 / L
    return dict(L=L, m2=m2, kl_prior=klp, h=hs, admissible=adm, kl=np.array(kl_qp),
                kl_out_vs_data=np.array(kl_pq), kl_disc=np.array(kl_disc),
                tv_lower=np.array(tv_lo), tv_upper=np.array(tv_hi),
                tv_disc_upper=np.array(tv_disc), shape_kl=shape_kl, shape_tv=shape_tv,
                prior_kl=prior_kl, prior_tv=_pinsker(prior_kl),
                order_kl=order(hs, kl_qp, adm), order_kl_disc=order(hs, kl_disc, adm),
                order_shape=order(hs, shape_kl, adm))


def chen_T_sweep(field, Ts, h: float, t_min: float) -> dict:
    r"""Chen et al.'s KL bound against the exact errors over the horizon :math:`T` at (about)
    fixed step: :math:`n=\max(1,\mathrm{round}((T-t_{\min})/h))` uniform steps, as in
    :func:`chen_h_sweep`.

    The bound's two terms are compared with the errors they bound: the initialisation term
    ``prior_kl`` :math:`=\mathrm{KL}(q\|\gamma^d)e^{-2T}` (constant 1, by the log-Sobolev
    inequality of :math:`\gamma^d`) with the exact ``kl_init`` :math:`=\mathrm{KL}(q_T\|\gamma^d)`,
    and the discretisation shape ``shape_kl`` :math:`(L^2dh+L^2m_2^2h^2)T` with ``kl_disc``
    (the sampler from the exact :math:`q_T`, against :math:`q_{t_{\min}}`); ``kl`` is the whole
    :math:`\mathrm{KL}(q\|\hat p)` from :math:`\gamma^d`.

    Returns:
        ``T``, ``kl``, ``kl_disc``, ``kl_init``, ``shape_kl``, ``prior_kl`` (``[n_T]``).
    """
    d, lam, mu = field.size, field.var, field.mean
    L, m2, klp = _plugins(field)
    out = {k: [] for k in ("T", "kl", "kl_disc", "kl_init", "shape_kl", "prior_kl")}
    for T in Ts:
        n = max(1, round((T - t_min) / h))
        p = _ou(field.shape[0], T, t_min)
        grid = _samplers.uniform_grid(p, n)
        m, w = _oracle.sampler_law("exponential", p, field, grid, init=STANDARD_NORMAL)
        (me, we), (mt, vt) = _disc_law(field, p, grid)
        out["T"].append(T)
        out["kl"].append(_kl(mu, lam, m, w))
        out["kl_disc"].append(_kl(mt, vt, me, we))
        out["kl_init"].append(_kl(*_marginal(field, p, T), *STANDARD_NORMAL))
        out["shape_kl"].append(float(_shapes.chen_kl_bound(L=L, d=d, m2=m2, h=(T - t_min) / n,
                                                           T=T, eps_score=0.0)))
        out["prior_kl"].append(_shapes.kl_prior_term(klp, T))
    return {k: np.array(v) for k, v in out.items()}


def benton_sweep(field, T: float, delta: float, steps) -> dict:
    r"""Benton et al.'s shape :math:`\kappa^2dN+\kappa dT+de^{-2T}`
    (:func:`~opdiff.diffusion.bound_shapes.benton_kl_bound`, exact score) against the exact
    :math:`\mathrm{KL}(q_\delta\|\hat p)` of the exponential integrator on OU on their schedule
    :func:`~opdiff.diffusion.samplers.benton_grid` (:math:`\kappa` measured on the grid): from
    :math:`\gamma^d` (``kl``; and on the uniform grid of as many steps, ``kl_uniform``) and from
    the exact :math:`q_T` (``kl_disc``, bounded by the discretisation part of the shape,
    ``shape_disc`` :math:`=\kappa^2dN+\kappa dT`).

    Returns:
        ``N``, ``kappa``, ``kl``, ``kl_uniform``, ``kl_disc``, ``shape_kl``, ``shape_disc``
        (``[n_runs]``), ``order_kappa`` and ``order_shape`` (fitted orders of ``kl`` and
        ``shape_kl`` in :math:`\kappa`).
    """
    ou_b = _ou(field.shape[0], T, delta)
    md, vd = _marginal(field, ou_b, delta)
    Ns, kappas, kls, klu, kld = [], [], [], [], []
    for N in steps:
        grid, kappa = _samplers.benton_grid(T, delta, N)
        m, w = _oracle.sampler_law("exponential", ou_b, field, grid, init=STANDARD_NORMAL)
        Ns.append(N)
        kappas.append(kappa)
        kls.append(_kl(md, vd, m, w))
        kld.append(_kl(md, vd, *_disc_law(field, ou_b, grid)[0]))
        mu_, wu = _oracle.sampler_law("exponential", ou_b, field,
                                      _samplers.uniform_grid(ou_b, N), init=STANDARD_NORMAL)
        klu.append(_kl(md, vd, mu_, wu))
    kappas, d = np.array(kappas), field.size
    shape_b = np.asarray(_shapes.benton_kl_bound(eps_score2=0.0, kappa=kappas, d=d,
                                                 N=np.array(Ns), T=T))
    return dict(N=np.array(Ns), kappa=kappas, kl=np.array(kls), kl_uniform=np.array(klu),
                kl_disc=np.array(kld), shape_kl=shape_b,
                shape_disc=shape_b - d * math.exp(-2.0 * T),
                order_kappa=order(kappas, kls), order_shape=order(kappas, shape_b))


GROWTH = ("resolution", "domain")


def dimension_sweep(alpha: float, sizes, n_steps: int, T: float, t_min: float, *,
                    growth: str = "resolution") -> dict:
    r"""The exact :math:`\mathrm{KL}(q\|\hat p)` of the exponential integrator on OU
    (``n_steps`` uniform steps, from :math:`\gamma^d`) for power-law fields
    (:func:`~opdiff.diffusion.oracle.power_law_field`, exponent ``alpha``) at ``sizes``\ :sup:`2`
    pixels, with Chen's factor :math:`L^2d` and the fitted exponents (with standard errors) of
    KL vs :math:`d` and vs :math:`L^2d`.

    ``growth`` says what a larger grid is:

    - ``"resolution"``: the same domain sampled finer (``k0 = 1`` cycle per side): the new
      modes are ever smaller-variance, so :math:`L=1/\lambda_{\min}` grows with :math:`d`;
    - ``"domain"``: a larger window at the same pixel size (``k0 = size/sizes[0]`` cycles per
      side: the spectrum is a function of the frequency in cycles per pixel), so the
      eigenvalues fill the same range at every :math:`d` and :math:`L` stays (about) fixed.

    Returns:
        ``d``, ``kl``, ``L``, ``L2d`` (``[n_sizes]``), ``exponent_d``, ``se_d``,
        ``exponent_L2d``, ``se_L2d``.
    """
    if growth not in GROWTH:
        raise ValueError(f"growth must be one of {GROWTH}, got {growth!r}")
    ds, kls, Ls = [], [], []
    for size in sizes:
        k0 = size / sizes[0] if growth == "domain" else 1.0
        f = _oracle.power_law_field((size, size), "dft", alpha=alpha, k0=k0)
        p = _ou(size, T, t_min)
        m, w = _oracle.sampler_law("exponential", p, f, _samplers.uniform_grid(p, n_steps),
                                   init=STANDARD_NORMAL)
        ds.append(f.size)
        kls.append(_kl(f.mean, f.var, m, w))
        Ls.append(_shapes.gaussian_lipschitz(f.var))
    ds, kls, Ls = np.array(ds), np.array(kls), np.array(Ls)
    (pd, sd), (pl, sl) = (_claims.loglog_slope(x, kls) for x in (ds, Ls**2 * ds))
    return dict(d=ds, kl=kls, L=Ls, L2d=Ls**2 * ds, exponent_d=pd, se_d=sd, exponent_L2d=pl,
                se_L2d=sl)
