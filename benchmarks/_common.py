"""Helpers shared by the scripts in ``benchmarks/``.

Benchmarks are standalone scripts, not tests: they print numbers and never fail on a timing.
Every script prints the same header (:func:`print_header`), a table (:func:`print_table`) and
then one line per headline figure (:func:`headline`), in the form
``name: value unit (goal: ...)`` so that results are easy to grep and compare between runs.

The machine these run on is usually a small, noisy VM, so figures are taken as the median of
several interleaved rounds (:func:`median`) rather than from one long run.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

__all__ = [
    "cpu_model",
    "device_description",
    "fmt_value",
    "headline",
    "matmul_peak_gflops",
    "median",
    "print_header",
    "print_table",
    "time_call",
]


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (or ``platform.processor()``), or ``"?"``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def device_description() -> str:
    """One line naming the default jax device, e.g. ``cpu (AMD EPYC, 2 cores)``."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"cpu ({cpu_model()}, {os.cpu_count()} cores, {jax.device_count()} device(s))"
    return f"{dev.platform} ({dev.device_kind}, {jax.device_count()} device(s))"


def print_header(title: str, argv: Sequence[str] | None = None) -> None:
    """Print the benchmark title, command line, versions and device."""
    argv = sys.argv if argv is None else argv
    print(f"== {title} ==")
    print(f"command: {' '.join(argv)}")
    print(f"python {platform.python_version()}, jax {jax.__version__}")
    print(f"device: {device_description()}")
    print(flush=True)


def median(values: Sequence[float]) -> float:
    """Median of ``values`` (the robust summary used for every timing here)."""
    return float(statistics.median(values))


def time_call(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` (which must block until done)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def matmul_peak_gflops(n: int = 2048, dtype=jnp.float32, repeats: int = 7) -> float:
    """Achieved GFLOP/s of a jitted ``a @ b`` with ``n x n`` operands (median of ``repeats``).

    One warm-up call compiles and faults in memory first; each timed call blocks on its result.
    A matmul costs ``2 n^3`` FLOPs. This is the practical f32 peak that a dense, well-shaped
    workload reaches with this jax/XLA build, the yardstick for the other figures.
    """
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), dtype)
    b = jax.random.normal(kb, (n, n), dtype)
    mm = jax.jit(jnp.matmul)
    mm(a, b).block_until_ready()
    times = time_call(lambda: mm(a, b).block_until_ready(), repeats)
    return 2.0 * n**3 / median(times) / 1e9


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain-text table; the first column is left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row):
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        )

    print(fmt(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(fmt(row))
    print(flush=True)


def fmt_value(value: float) -> str:
    """Format a figure with about three significant digits, never in exponent notation."""
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def headline(name: str, value: float, unit: str, goal: str) -> str:
    """Format one headline figure: ``name: value unit (goal: goal)``."""
    return f"{name}: {fmt_value(value)} {unit} (goal: {goal})"
