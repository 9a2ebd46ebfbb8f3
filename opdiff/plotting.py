"""Figures: arrays in, matplotlib ``Figure`` out. No global style changes, no ``plt.show``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["new_figure", "error_panel", "save"]

MEASURED_STYLE = dict(marker="o", markersize=4, linewidth=1.5)
BOUND_STYLE = dict(linestyle="--", linewidth=1.2)


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.2, height: float = 3.4):
    """A figure with an ``nrows x ncols`` grid of axes (always a 2-D array)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def error_panel(
    ax,
    x: Sequence[float],
    measured: Mapping[str, Sequence[float]],
    bounds: Mapping[str, tuple[Sequence[float], Sequence[float]] | Sequence[float]] = {},
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "error",
    logx: bool = False,
    logy: bool = True,
):
    """Measured errors (markers) beside bounds or rates (dashed lines) on one axes.

    Args:
        ax: a matplotlib axes.
        x: abscissae of the measurements.
        measured: label -> values at ``x``.
        bounds: label -> values at ``x``, or label -> ``(x_b, values)`` on its own abscissae.
    """
    x = np.asarray(x, dtype=float)
    for label, y in measured.items():
        ax.plot(x, np.asarray(y, float), label=label, **MEASURED_STYLE)
    for label, b in bounds.items():
        if isinstance(b, tuple) and len(b) == 2:
            xb, yb = b
        else:
            xb, yb = x, b
        ax.plot(np.asarray(xb, float), np.asarray(yb, float), label=label, **BOUND_STYLE)
    if logy:
        ax.set_yscale("log")
    if logx:
        from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(x))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def save(fig, path, *, pdf: bool = False) -> list[str]:
    """Write ``fig`` to ``path`` (PNG, 150 dpi) and optionally a PDF beside it; return names.

    Each file is written atomically: to a temporary file in the same folder, then renamed over
    ``path``, so a failed or interrupted write (a full disk, an exception while drawing) leaves
    the previous file, or none, never a truncated one.
    """
    from pathlib import Path

    path = Path(path)
    # the format of the name (PNG for .png), as savefig would infer it from a path
    _save_atomic(fig, path, format=path.suffix.lstrip(".").lower() or "png", dpi=150)
    names = [path.name]
    if pdf:
        _save_atomic(fig, path.with_suffix(".pdf"), format="pdf")
        names.append(path.with_suffix(".pdf").name)
    return names


def _save_atomic(fig, path, *, format: str, **kwargs) -> None:
    import os
    import secrets

    # not tempfile.mkstemp: its files are private (0600); this one gets the usual umask
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            fig.savefig(f, format=format, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
