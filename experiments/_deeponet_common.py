"""Legacy glue of the DeepONet experiments not yet converted (everything else moved to
:mod:`opdiff.deeponet_bounds` and :mod:`opdiff.deeponet_sweep`). Private: not an experiment."""

from __future__ import annotations

import numpy as np

from opdiff.deeponet_bounds import (bochner, cumulative_trapezoid_matrix,  # noqa: F401
                                    gaussian_floors, mc_rtol, sq_errors, subgrid)
from opdiff.deeponet_bounds import pca_tail as tail  # noqa: F401
from opdiff.deeponet_sweep import (Sweep, deeponet_forward, member_keys,  # noqa: F401
                                   pod_forward, stack_members)
from opdiff.deeponet_sweep import predict_sweep as predict  # noqa: F401
from opdiff.deeponet_sweep import train_sweeps as train  # noqa: F401
from opdiff.theory import checks


def lower_bound_all(claim: str, measured, bounds, *, rtol,
                    labels=None) -> tuple[bool, list[dict]]:
    """:func:`opdiff.theory.checks.lower_bound` for every pair; holds iff every one holds.

    Arrays are flattened; ``rtol`` is one number or one per pair; ``labels`` (one per pair)
    name the records. Returns the verdict and the per-pair records.
    """
    measured = np.ravel(np.asarray(measured, np.float64))
    bounds = np.ravel(np.asarray(bounds, np.float64))
    rtols = np.ravel(np.asarray(rtol, np.float64))
    if rtols.size == 1:
        rtols = np.full(measured.size, rtols[0])
    if not bounds.size == rtols.size == measured.size:
        raise ValueError(f"{measured.size} measurements, {bounds.size} bounds, {rtols.size} rtols")
    labels = [str(i) for i in range(measured.size)] if labels is None else list(labels)
    recs = [checks.lower_bound(f"{claim} [{lab}]", m, b, rtol=float(r))
            for lab, m, b, r in zip(labels, measured, bounds, rtols)]
    return all(r["holds"] for r in recs), recs


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])
