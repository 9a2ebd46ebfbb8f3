"""Moved to :mod:`opdiff.approx.bounds` (issue 14); these names are re-exported for old imports.

:func:`loglog_slope` is :func:`opdiff.claims.loglog_slope` without its standard error.
"""

from __future__ import annotations

from opdiff import claims as _claims
from opdiff.approx.bounds import *  # noqa: F401,F403
from opdiff.approx.bounds import __all__ as _bounds_all
from opdiff.approx.bounds import _out, _positive, _real_array  # noqa: F401  (metrics, diffusion)

__all__ = [*_bounds_all, "loglog_slope"]


def loglog_slope(x, y) -> float:
    r"""Least-squares slope of :math:`\log y` against :math:`\log x` (the fitted rate).

    Raises:
        ValueError: as :func:`opdiff.claims.loglog_slope`.
    """
    return _claims.loglog_slope(x, y)[0]
