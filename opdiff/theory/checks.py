"""A measurement against a bound, as the ``{claim, measured, bound, holds}`` record that every
experiment writes to ``results.json``. Each function can fail: that is the point."""

from __future__ import annotations

import math

__all__ = ["lower_bound", "upper_bound", "within"]


def _finite(name, x):
    x = float(x)
    if math.isnan(x):
        raise ValueError(f"{name} must not be NaN")
    return x


def lower_bound(claim: str, measured: float, bound: float, *, rtol: float = 0.0) -> dict:
    """``holds`` iff ``measured >= bound * (1 - rtol)``: a floor never exceeds a measured error.

    ``rtol`` is the statistical slack of ``measured`` (e.g. a few Monte-Carlo standard errors,
    relative); it must be in [0, 1).
    """
    if not 0.0 <= rtol < 1.0:
        raise ValueError(f"rtol must be in [0, 1), got {rtol!r}")
    m, b = _finite("measured", measured), _finite("bound", bound)
    return {"claim": claim, "measured": m, "bound": b, "holds": bool(m >= b * (1.0 - rtol))}


def upper_bound(claim: str, measured: float, bound: float, *, rtol: float = 0.0) -> dict:
    """``holds`` iff ``measured <= bound * (1 + rtol)``."""
    if rtol < 0.0:
        raise ValueError(f"rtol must be >= 0, got {rtol!r}")
    m, b = _finite("measured", measured), _finite("bound", bound)
    return {"claim": claim, "measured": m, "bound": b, "holds": bool(m <= b * (1.0 + rtol))}


def within(claim: str, measured: float, target: float, *, atol: float) -> dict:
    """``holds`` iff ``|measured - target| <= atol`` (e.g. a fitted rate against theory)."""
    if not atol >= 0.0:
        raise ValueError(f"atol must be >= 0, got {atol!r}")
    m, t = _finite("measured", measured), _finite("target", target)
    return {"claim": claim, "measured": m, "bound": t, "holds": bool(abs(m - t) <= atol)}
