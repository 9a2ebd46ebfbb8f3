r"""Claims: a measurement set against what theory says, with the verdict computed here.

Every experiment states its results as :class:`Claim`\ s made by one of five constructors, so a
verdict is never written by hand:

==================  ========================================================  ===============
constructor         holds iff                                                 tightness
==================  ========================================================  ===============
:func:`upper_bound` :math:`m_i \le b_i(1+\mathrm{rtol})` for every i          :math:`\max m_i/b_i` (≤ 1)
:func:`lower_bound` :math:`m_i \ge b_i(1-\mathrm{rtol})` for every i          :math:`\min m_i/b_i` (≥ 1)
:func:`within`      :math:`|m_i-e_i| \le \mathrm{atol}+\mathrm{rtol}|e_i|`    worst error / tolerance (≤ 1)
:func:`rate`        fitted exponent :math:`\hat p \le p+z\,\mathrm{se}(\hat p)` smallest valid constant
:func:`finding`     value and standard error are finite (a measured fact)     —
==================  ========================================================  ===============

A bound known only up to a constant, :math:`e(n)\le C n^{p}`, is checked by its *rate*: the
least-squares slope of :math:`\log e` on :math:`\log n` must not be larger (slower decay) than
:math:`p` by more than ``z`` standard errors, and the smallest constant that makes the bound hold
over the whole range, :math:`C^*=\max_i e_i n_i^{-p}`, is reported -- never a constant fitted
at one point.

:func:`difference` is the finding of :math:`a-b` with the two SEs combined. Also here, once
for the whole library: :func:`loglog_slope` (with its standard error),
:func:`loglog_slope_mc_se` (its Monte-Carlo standard error from per-point errors),
:func:`mean_se`, and :func:`finding_shift`: how far one finding moved between two runs (two
seeds), in units of the two standard errors combined.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = [
    "KINDS",
    "Claim",
    "difference",
    "finding",
    "finding_shift",
    "loglog_slope",
    "loglog_slope_mc_se",
    "lower_bound",
    "mean_se",
    "rate",
    "upper_bound",
    "within",
]

KINDS = ("upper_bound", "lower_bound", "equality", "rate", "finding")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One statement an experiment makes, with its computed verdict.

    Attributes:
        statement: the claim in words ("test MSE >= PCA floor at every p").
        kind: one of :data:`KINDS`.
        measured: the measured value(s) (a float, or a list of floats).
        bound: what theory says (bound, floor, exact value, theoretical exponent; ``None`` for a
            finding).
        tightness: how close the measurement is to the bound (see the module table).
        holds: the verdict.
        detail: extra numbers (standard error, fitted slope, constant, tolerances).
    """

    statement: str
    kind: str
    measured: Any
    bound: Any
    tightness: float | None
    holds: bool
    detail: dict = dataclasses.field(default_factory=dict)

    def as_record(self) -> dict:
        """A JSON-ready dict (floats as floats, non-finite as strings)."""
        return {
            "claim": self.statement,
            "kind": self.kind,
            "measured": _plain(self.measured),
            "bound": _plain(self.bound),
            "tightness": _plain(self.tightness),
            "holds": bool(self.holds),
            "detail": {k: _plain(v) for k, v in self.detail.items()},
        }


def _plain(x: Any) -> Any:
    if x is None or isinstance(x, (bool, str)):
        return x
    arr = np.asarray(x, dtype=float)
    if arr.ndim:
        return [_plain(v) for v in arr.tolist()]
    v = float(arr)
    return v if math.isfinite(v) else repr(v)


def _values(name: str, x: Any) -> np.ndarray:
    """``x`` as a 1-D float64 array without NaN (``inf`` is allowed: a diverged measurement)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a number or an array of numbers, got {x!r}")
    arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D array, got shape "
                         f"{np.shape(x)}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not contain NaN, got {x!r}")
    return arr


def _scalar_or_list(arr: np.ndarray, like: Any) -> Any:
    return float(arr[0]) if np.ndim(like) == 0 else arr.tolist()


def _tol(name: str, value, *, below_one: bool = False):
    """A tolerance: a float, or (for the bounds) an array of per-element tolerances."""
    arr = np.asarray(value, dtype=np.float64)
    if not (np.all(np.isfinite(arr)) and np.all(arr >= 0) and (np.all(arr < 1) or not below_one)):
        raise ValueError(f"{name} must be finite and >= 0{' and < 1' if below_one else ''}, "
                         f"got {value!r}")
    return float(arr) if arr.ndim == 0 else arr


def _extreme_ratio(m: np.ndarray, b: np.ndarray, pick) -> float | None:
    """``pick`` (max or min) of ``m / b`` over the entries with ``b != 0``; ``None`` if none."""
    nz = b != 0
    if not nz.any():
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return float(pick(m[nz] / b[nz]))


def upper_bound(statement: str, measured, bound, *, rtol=0.0) -> Claim:
    r"""``measured <= bound`` (elementwise, ``bound`` broadcast), with relative slack ``rtol``
    (a float, or one per element).

    Use for a bound with explicit constants (an error never above its ceiling). ``rtol`` is the
    statistical slack of a Monte-Carlo measurement (a few standard errors, relative), not room
    to make a failing claim pass.

    Returns:
        A :class:`Claim` of kind ``upper_bound``; tightness :math:`\max_i m_i/b_i` over the
        nonzero bounds (``None`` if every bound is 0, e.g. "slope <= 0").
    """
    rtol = _tol("rtol", rtol)
    m = _values("measured", measured)
    b = np.broadcast_to(_values("bound", bound), m.shape)
    holds = bool(np.all(m <= b * (1.0 + rtol)))
    return Claim(statement, "upper_bound", _scalar_or_list(m, measured),
                 _scalar_or_list(b, bound), _extreme_ratio(m, b, np.max), holds,
                 {"rtol": _plain(rtol)})


def lower_bound(statement: str, measured, floor, *, rtol=0.0) -> Claim:
    r"""``measured >= floor`` (elementwise, ``floor`` broadcast), with relative slack ``rtol``
    (a float, or one per element, e.g. each pair's Monte-Carlo standard errors).

    Use for floors: no estimator beats the MMSE, no rank-p model beats the PCA floor.

    Returns:
        A :class:`Claim` of kind ``lower_bound``; tightness :math:`\min_i m_i/b_i`.
    """
    rtol = _tol("rtol", rtol, below_one=True)
    m = _values("measured", measured)
    b = np.broadcast_to(_values("floor", floor), m.shape)
    holds = bool(np.all(m >= b * (1.0 - rtol)))
    return Claim(statement, "lower_bound", _scalar_or_list(m, measured),
                 _scalar_or_list(b, floor), _extreme_ratio(m, b, np.min), holds,
                 {"rtol": _plain(rtol)})


def within(statement: str, measured, exact, *, rtol: float = 0.0, atol: float = 0.0) -> Claim:
    r"""``|measured - exact| <= atol + rtol |exact|`` elementwise: an equality to a tolerance.

    Returns:
        A :class:`Claim` of kind ``equality``; tightness = worst error / its tolerance (``inf``
        when both tolerances are 0 and the values differ).
    """
    rtol, atol = _tol("rtol", rtol), _tol("atol", atol)
    m = _values("measured", measured)
    e = np.broadcast_to(_values("exact", exact), m.shape)
    err = np.abs(m - e)
    tol = atol + rtol * np.abs(e)
    holds = bool(np.all(err <= tol))
    tight = float(np.max(np.where(tol > 0, err / np.where(tol > 0, tol, 1.0),
                                  np.where(err > 0, np.inf, 0.0))))
    return Claim(statement, "equality", _scalar_or_list(m, measured), _scalar_or_list(e, exact),
                 tight, holds, {"rtol": rtol, "atol": atol, "max_abs_error": float(err.max())})


def loglog_slope(x, y) -> tuple[float, float]:
    r"""Least-squares slope of :math:`\log y` on :math:`\log x` and its standard error.

    .. math:: \hat p=\frac{\sum(u_i-\bar u)(v_i-\bar v)}{\sum(u_i-\bar u)^2},\qquad
        \mathrm{se}(\hat p)=\sqrt{\frac{\sum r_i^2/(n-2)}{\sum(u_i-\bar u)^2}}

    with :math:`u=\log x`, :math:`v=\log y`, residuals :math:`r`; the standard error is ``nan``
    for two points.

    Raises:
        ValueError: fewer than two points, shapes that differ, non-positive or non-finite
            values, or all ``x`` equal.
    """
    x, y = _values("x", x), _values("y", y)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"x and y must be 1-D of equal length >= 2, got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and x.min() > 0 and y.min() > 0):
        raise ValueError("x and y must be finite and > 0 for a log-log fit")
    u, v = np.log(x), np.log(y)
    du = u - u.mean()
    sxx = float(du @ du)
    if sxx == 0.0:
        raise ValueError("x must take at least two distinct values")
    slope = float(du @ (v - v.mean())) / sxx
    if x.size == 2:
        return slope, float("nan")
    resid = v - v.mean() - slope * du
    return slope, math.sqrt(float(resid @ resid) / (x.size - 2) / sxx)


def loglog_slope_mc_se(x, y, y_se) -> float:
    r"""Monte-Carlo standard error of the least-squares log-log slope of ``y`` on ``x``.

    Each :math:`y_i` is a Monte-Carlo mean with standard error :math:`s_i`, independent across
    :math:`i`. The slope :math:`\hat p=\sum_iw_i\log y_i`, :math:`w_i=(u_i-\bar u)/
    \sum_j(u_j-\bar u)^2`, :math:`u=\log x`, is linear in :math:`\log y`; by the delta method
    (:math:`\mathrm{sd}(\log y_i)\approx s_i/y_i`)

    .. math:: \mathrm{se}(\hat p)=\Big(\sum_iw_i^2\,s_i^2/y_i^2\Big)^{1/2}.

    Unlike the residual standard error of :func:`loglog_slope`, this one does
    not absorb a misfit of the power law, and it exists for two points: it is the tolerance of
    an *exact* exponent (a Monte-Carlo or CLT rate, where :math:`\mathbb E e^2=c/n` holds
    exactly or asymptotically), :math:`|\hat p-p|\le z\,\mathrm{se}`.

    Raises:
        ValueError: shapes that differ, fewer than two points, non-positive ``x`` or ``y``,
            negative or non-finite standard errors, or all ``x`` equal.
    """
    x, y, s = (np.asarray(v, dtype=np.float64) for v in (x, y, y_se))
    if not (x.ndim == 1 and x.shape == y.shape == s.shape and x.size >= 2):
        raise ValueError(f"x, y, y_se must be 1-D of equal length >= 2, got shapes {x.shape}, "
                         f"{y.shape}, {s.shape}")
    if not (np.all(np.isfinite(x) & np.isfinite(y) & np.isfinite(s)) and x.min() > 0
            and y.min() > 0 and s.min() >= 0):
        raise ValueError("x, y must be finite and > 0, y_se finite and >= 0")
    du = np.log(x) - np.log(x).mean()
    sxx = float(du @ du)
    if sxx == 0.0:
        raise ValueError("x must take at least two distinct values")
    w = du / sxx
    return float(np.sqrt(np.sum(w * w * (s / y) ** 2)))


def rate(statement: str, errors, sizes, exponent: float, *, z: float = 2.0) -> Claim:
    r"""A bound :math:`e(n)\le C n^{p}` with an unknown constant, checked by its rate.

    Holds iff the fitted exponent is no larger than :math:`p` (``exponent``) by more than ``z``
    standard errors: :math:`\hat p\le p+z\,\mathrm{se}(\hat p)` (with two points, ``se`` is
    unknown and :math:`\hat p\le p` is required). For a rate of decay :math:`p<0`: the error
    decays at least as fast as the theory says. Reports the smallest valid constant
    :math:`C^*=\max_i e_i n_i^{-p}` (the tightness) -- never a constant fitted at one point.

    Returns:
        A :class:`Claim` of kind ``rate``: ``measured`` = fitted exponent, ``bound`` = ``p``,
        ``detail`` with ``se``, ``constant``, ``z``.
    """
    z = _tol("z", z)
    exponent = float(exponent)
    if not math.isfinite(exponent):
        raise ValueError(f"exponent must be finite, got {exponent!r}")
    e, n = _values("errors", errors), _values("sizes", sizes)
    slope, se = loglog_slope(n, e)
    slack = 0.0 if math.isnan(se) else z * se
    constant = float(np.max(e * n ** (-exponent)))
    return Claim(statement, "rate", slope, exponent, constant, bool(slope <= exponent + slack),
                 {"se": se, "z": z, "constant": constant})


def finding(statement: str, value, se) -> Claim:
    """A measured fact without a theorem behind it: the value and its standard error.

    It holds when both are finite (a measurement was made); whether it is stable is shown by
    repeating it with another seed, not by a threshold here.

    Returns:
        A :class:`Claim` of kind ``finding`` with ``bound=None``.
    """
    v, s = _values("value", value), _values("se", se)
    holds = bool(np.all(np.isfinite(v)) and np.all(np.isfinite(s)) and np.all(s >= 0))
    return Claim(statement, "finding", _scalar_or_list(v, value), None, None, holds,
                 {"se": _scalar_or_list(s, se)})


def difference(statement: str, a, se_a, b, se_b) -> Claim:
    r"""The :func:`finding` :math:`a-b` of two independent measurements, with
    :math:`\mathrm{se}=\sqrt{\mathrm{se}_a^2+\mathrm{se}_b^2}` (a learned model against a
    baseline, or one setting against another, where no theorem orders them).

    Returns:
        A :class:`Claim` of kind ``finding``; it fails when a value or an SE is not finite
        (a NaN, e.g. a diverged model's metric, is read as ``inf``: a failed measurement).
    """
    va, vb, sa, sb = (_values(n, np.where(np.isnan(np.asarray(x, np.float64)), np.inf, x))
                      for n, x in (("a", a), ("b", b), ("se_a", se_a), ("se_b", se_b)))
    with np.errstate(invalid="ignore"):
        d = va - vb
    d[np.isnan(d)] = np.inf  # inf - inf
    return finding(statement, _scalar_or_list(d, a), _scalar_or_list(np.hypot(sa, sb), se_a))


def finding_shift(a: dict, b: dict) -> dict | None:
    r"""How far a finding moved between two runs, e.g. two seeds: for the saved records
    (:meth:`Claim.as_record`) of the same finding,

    .. math:: z=\max_i\frac{|a_i-b_i|}{\sqrt{\mathrm{se}_{a,i}^2+\mathrm{se}_{b,i}^2}}

    over the entries with a finite, positive combined SE. If each SE covered every source of
    randomness of its run, :math:`|z|` would exceed 3 rarely (0.3 % per entry, for Gaussian
    estimates); an SE computed over test functions at one trained model leaves the training
    seed out, and ``z`` then measures how much that matters.

    Returns:
        ``{"z", "entries", "same_sign"}`` (``same_sign``: every compared entry has the same
        sign in both runs), or ``None`` when the two cannot be compared (not both findings,
        different shapes, no entry with a finite positive SE).
    """
    if a.get("kind") != "finding" or b.get("kind") != "finding":
        return None
    try:
        va, vb = (np.atleast_1d(np.asarray(r["measured"], np.float64)) for r in (a, b))
        sa, sb = (np.atleast_1d(np.asarray((r.get("detail") or {}).get("se"), np.float64))
                  for r in (a, b))
    except (TypeError, ValueError, KeyError):
        return None
    if not va.shape == vb.shape == sa.shape == sb.shape:
        return None
    se = np.hypot(sa, sb)
    ok = np.isfinite(va) & np.isfinite(vb) & np.isfinite(se) & (se > 0)
    if not ok.any():
        return None
    z = np.abs(va - vb)[ok] / se[ok]
    return {"z": float(z.max()), "entries": int(ok.sum()),
            "same_sign": bool(np.all(np.sign(va[ok]) == np.sign(vb[ok])))}


def mean_se(samples, axis: int = 0) -> tuple[np.ndarray | float, np.ndarray | float]:
    r"""Sample mean and its standard error :math:`s/\sqrt n` (``ddof=1``) along ``axis``.

    Raises:
        ValueError: fewer than two samples along ``axis``.
    """
    a = np.asarray(samples, dtype=np.float64)
    n = a.shape[axis] if a.ndim else 1
    if n < 2:
        raise ValueError(f"mean_se needs at least 2 samples along axis {axis}, got {n}")
    mean = a.mean(axis=axis)
    se = a.std(axis=axis, ddof=1) / math.sqrt(n)
    return (float(mean), float(se)) if np.ndim(mean) == 0 else (mean, se)
