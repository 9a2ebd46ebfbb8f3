r"""Sample designs for weighted least squares, compared on one target: quasi-optimality ratios,
the DPP interpolation identity, and the statistics that check the samplers.

Built on :mod:`opdiff.approx.sampling`. The four designs of :func:`design_ratios`, for
:math:`V_m` spanned by an orthonormal basis of :math:`L^2(\mu)`:

- ``iid``: i.i.d. :math:`\mu`-points, plain least squares;
- ``optimal``: i.i.d. from :math:`\rho=(k_m/m)d\mu`, weights :math:`m/k_m` (Cohen-Migliorati);
- ``volume_rescaled``: a projection DPP of size :math:`m` plus :math:`n-m` i.i.d.
  :math:`\rho`-points, weights :math:`m/k_m` (Dereziński-Warmuth-Hsu);
- ``volume``: the same DPP plus :math:`n-m` i.i.d. :math:`\mu`-points, plain least squares.

Each draw is made once at the largest :math:`n` and fitted on its prefixes (an i.i.d. prefix is
i.i.d.; a DPP-first prefix of length :math:`\ge m` is a volume-(rescaled) draw of that size), so
the curves over :math:`n` are correlated but each point is unbiased.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jaxtyping import Float, PRNGKeyArray

from opdiff import claims
from opdiff.approx import bases
from opdiff.approx import sampling as S

__all__ = [
    "DESIGNS",
    "design_ratios",
    "dpp_proposals_se",
    "hill_tail_index",
    "interpolation_study",
    "ks_statistics",
    "log_oversampling",
    "ratio_se",
    "sweep_sizes",
]

DESIGNS = ("iid", "optimal", "volume_rescaled", "volume")


def log_oversampling(m: int, c: float) -> int:
    r""":math:`n^*=\lceil c\,m\ln m\rceil`, at least :math:`m` (the sample count at which optimal
    weighted least squares is quasi-optimal, up to the constant ``c``)."""
    return max(m, math.ceil(c * m * math.log(m)))


def sweep_sizes(m: int, n_over_m: Sequence[float], c: float) -> list[int]:
    r"""Sorted distinct sample counts :math:`\max(m,\mathrm{round}(rm))` for every ratio
    :math:`r`, together with :func:`log_oversampling` and :math:`2m`."""
    return sorted({max(m, int(round(r * m))) for r in n_over_m} | {log_oversampling(m, c), 2 * m})


def design_ratios(key: PRNGKeyArray, basis: str, f: Callable, m: int,
                  dpp_x: Float[np.ndarray, "draws m"], ns: Sequence[int], *,
                  n_quad: int = 512) -> dict:
    r"""Quasi-optimality ratio :math:`\mathbb E\|f-\hat f\|^2/\|f-P_mf\|^2` of the four
    :data:`DESIGNS` at every :math:`n` in ``ns``, one draw per row of ``dpp_x``.

    An i.i.d. sequence cut into rows gives independent draws, so one call per law
    (:func:`~opdiff.approx.sampling.iid`, :func:`~opdiff.approx.sampling.sample_optimal`, keys
    split from ``key``) serves the i.i.d. designs *and* the top-ups of the two volume designs
    (DPP points first, so every prefix of length :math:`\ge m` is a draw of that size).
    Prefixes are fitted by zero weights (:func:`~opdiff.approx.sampling.fit_errors`).

    Returns:
        dict with ``best`` (:math:`\|f-P_mf\|^2`), ``ratio`` and ``sem`` (dicts design ->
        ``(len(ns),)`` Monte-Carlo mean and standard error), and ``uniform_points``
        (``(draws, m)``, the first ``m`` points of the ``iid`` design).
    """
    ns = [int(n) for n in ns]
    n_max, D = ns[-1], dpp_x.shape[0]
    k_iid, k_opt = jax.random.split(key)
    uni = np.asarray(S.iid(k_iid, basis, 2 * D * n_max).x).reshape(2, D, n_max)
    opt = S.ensure_ok(S.sample_optimal(k_opt, basis, m, 2 * D * n_max), f"optimal (m={m})")
    opt_x = np.asarray(opt.x).reshape(2, D, n_max)
    opt_w = np.asarray(opt.weights).reshape(2, D, n_max)
    top = n_max - m
    vr_x = np.concatenate([dpp_x, opt_x[1, :, :top]], axis=1)
    vr_w = np.concatenate([np.asarray(S.optimal_weights(basis, dpp_x, m)), opt_w[1, :, :top]],
                          axis=1)
    designs = {
        "iid": (uni[0], np.ones_like(uni[0])),
        "optimal": (opt_x[0], opt_w[0]),
        "volume_rescaled": (vr_x, vr_w),
        "volume": (np.concatenate([dpp_x, uni[1, :, :top]], axis=1), np.ones((D, n_max))),
    }
    best = S.best_error_sq(basis, f, m, n_quad=n_quad)
    ratio, sem = {}, {}
    for name in DESIGNS:
        sample = S.Sample(*designs[name], np.ones(D, bool))
        r = np.stack([np.asarray(S.fit_errors(basis, f, m, sample, n=n, n_quad=n_quad))
                      for n in ns]) / best
        ratio[name], sem[name] = claims.mean_se(r, axis=1)
    return dict(best=best, ratio=ratio, sem=sem, uniform_points=uni[0, :, :m])


def ratio_se(a: float, a_se: float, b: float, b_se: float) -> float:
    r"""Standard error of :math:`a/b` for independent Monte-Carlo means :math:`a,b>0`, by the
    delta method: :math:`(a/b)\sqrt{(s_a/a)^2+(s_b/b)^2}`.

    Two designs of :func:`design_ratios` that share draws (``optimal`` and the top-up of
    ``volume_rescaled``) are positively correlated, which makes this an over-estimate.

    Raises:
        ValueError: ``a`` or ``b`` not finite and > 0, or a negative or non-finite SE.
    """
    a, a_se, b, b_se = (float(v) for v in (a, a_se, b, b_se))
    if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
        raise ValueError(f"a and b must be finite and > 0, got {a!r}, {b!r}")
    if not (math.isfinite(a_se) and math.isfinite(b_se) and a_se >= 0 and b_se >= 0):
        raise ValueError(f"standard errors must be finite and >= 0, got {a_se!r}, {b_se!r}")
    return a / b * math.hypot(a_se / a, b_se / b)


def hill_tail_index(v: Float[np.ndarray, " n"]) -> float:
    r"""Hill estimate :math:`\hat\alpha=1/\overline{\log(X_{(i)}/X_{(k+1)})}` of the tail index
    from the top :math:`k` order statistics, :math:`k=\min(\max(20,n/100),n-1)` (for a Pareto
    law :math:`P(X>x)\propto x^{-\alpha}`; :math:`\alpha\le2` means infinite variance).
    ``inf`` when the top order statistics are all equal (no tail)."""
    s = np.sort(np.asarray(v))[::-1]
    k = min(max(20, len(s) // 100), len(s) - 1)
    with np.errstate(divide="ignore"):
        return float(1.0 / np.mean(np.log(s[:k] / s[k])))


def dpp_proposals_se(basis: str, m: int, draws: int) -> float:
    r"""Standard error of the mean HKPV proposal count over ``draws`` draws.

    Step :math:`i=1..m` accepts with probability :math:`p_i=(m-i+1)/(Cm)` (:math:`C` the
    envelope mass), so its proposal count is geometric with variance :math:`(1-p_i)/p_i^2`;
    the steps are independent: :math:`\mathrm{se}=\sqrt{\sum_i(1-p_i)/p_i^2/\mathrm{draws}}`.
    """
    p = (m - np.arange(m)) / (bases.get(basis).envelope_mass * m)
    return math.sqrt(np.sum((1 - p) / p**2) / draws)


def interpolation_study(basis: str, f: Callable, m: int, x: Float[np.ndarray, "draws m"],
                        proposals, *, integrate: int, n_quad: int = 512) -> dict:
    r"""The DPP interpolation identity :math:`\mathbb E\|f-I_Sf\|^2=(m+1)\|f-P_mf\|^2` measured
    three ways on the draws ``x`` (HKPV order), as ratios to :math:`\|f-P_mf\|^2`.

    ``plain``: the interpolation errors themselves (heavy-tailed: :func:`hill_tail_index`);
    ``rb1``, ``rb``: :func:`~opdiff.approx.sampling.interpolation_error_rb` with the last 1 and
    ``integrate`` points integrated out. Each comes with its Monte-Carlo mean and standard error.
    Also the mean HKPV proposal count with its exact expectation
    (:func:`~opdiff.approx.sampling.expected_dpp_proposals`) and standard error
    (:func:`dpp_proposals_se`).
    """
    n_draws = x.shape[0]
    best = S.best_error_sq(basis, f, m, n_quad=n_quad)
    sample = S.Sample(x, np.ones_like(x), np.ones(n_draws, bool))
    plain = np.asarray(S.fit_errors(basis, f, m, sample, n_quad=n_quad)) / best
    rb1 = np.asarray(S.interpolation_error_rb(basis, f, m, x, n_quad=n_quad)) / best
    rb = rb1 if integrate == 1 else np.asarray(
        S.interpolation_error_rb(basis, f, m, x, integrate=integrate, n_quad=n_quad)) / best
    out = dict(m=m, best=best, rb_points=integrate, plain_tail_index=hill_tail_index(plain),
               plain_max=plain.max(), rb_tail_index=hill_tail_index(rb),
               proposals=np.asarray(proposals).astype(float).mean(),
               proposals_expected=S.expected_dpp_proposals(basis, m),
               proposals_se=dpp_proposals_se(basis, m, n_draws))
    for name, v in (("plain", plain), ("rb", rb), ("rb1", rb1)):
        out[name], out[f"{name}_se"] = claims.mean_se(v)
    return out


def ks_statistics(basis: str, samples: Sequence[np.ndarray], m: int) -> list[float]:
    r"""Kolmogorov-Smirnov :math:`\sqrt N\sup_x|F_N(x)-F(x)|` of each point set against the CDF
    :math:`F` of :math:`\rho=(k_m/m)d\mu` (:func:`~opdiff.approx.sampling.optimal_cdf`, one
    call for all sets). For i.i.d. :math:`\rho`-points it is asymptotically Kolmogorov
    distributed (1 % critical value 1.628)."""
    xs = [np.sort(np.ravel(x)) for x in samples]
    F_all = np.asarray(S.optimal_cdf(basis, np.concatenate(xs), m))
    out, start = [], 0
    for x in xs:
        N = len(x)
        F = F_all[start:start + N]
        start += N
        i = np.arange(1, N + 1)
        out.append(float(math.sqrt(N) * max(np.max(i / N - F), np.max(F - (i - 1) / N))))
    return out
