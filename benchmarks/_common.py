"""Helpers shared by the scripts in ``benchmarks/``.

Benchmarks are standalone scripts, not tests: they print numbers and never fail on a timing.
Every script prints the same header (:func:`print_header`), a table (:func:`print_table`) and
then one line per headline figure (:func:`headline`), in the form
``name: value unit (goal: ...)`` so that results are easy to grep and compare between runs.

The machine these run on is usually a small, noisy VM, so figures are taken as the median of
several interleaved rounds (:func:`median`) rather than from one long run.

Load and memory. :func:`print_header` prints the 1-minute load average on entry and returns it
as a :class:`Load`; :func:`print_footer` prints the load after, the peak resident memory of this
process and, on an accelerator, the device's peak memory. When the load on entry exceeds 0.5 per
core the run is *loaded*: the header says so and :func:`headline` marks every figure line
``[under load: ...]`` (such a figure is never quoted as a headline; ratios between variants are
still taken from interleaved rounds in one run, which load distorts less than absolute rates).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

__all__ = [
    "Load",
    "cpu_model",
    "device_peak_memory_mib",
    "device_description",
    "fmt_value",
    "headline",
    "load_average",
    "matmul_peak_gflops",
    "median",
    "peak_rss_mib",
    "print_footer",
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


def load_average() -> float:
    """The 1-minute load average of the machine (``nan`` where the OS has none)."""
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``: KiB on Linux,
    bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 ** 2 if sys.platform == "darwin" else 1024.0)


def device_peak_memory_mib() -> float | None:
    """Peak memory in use on the default jax device, in MiB, where the backend reports it (GPU,
    TPU); ``None`` on the CPU."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return None
    stats = dev.memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 1024.0**2


@dataclasses.dataclass(frozen=True)
class Load:
    """The 1-minute load average on entry to a benchmark and the machine's core count.

    A run is ``loaded`` when the load on entry exceeds 0.5 per core: other work shares the
    cores, so absolute rates are low and ratios between peers can be distorted.
    """

    entry: float
    cores: int

    @property
    def loaded(self) -> bool:
        return self.entry > 0.5 * self.cores

    def describe(self) -> str:
        return f"1-min load {self.entry:.2f} on {self.cores} cores"


def print_header(title: str, argv: Sequence[str] | None = None) -> Load:
    """Print the benchmark title, command line, versions, device and the load on entry.

    Returns:
        the :class:`Load` on entry, for :func:`headline` and :func:`print_footer`.
    """
    argv = sys.argv if argv is None else argv
    load = Load(load_average(), os.cpu_count() or 1)
    print(f"== {title} ==")
    print(f"command: {' '.join(argv)}")
    print(f"python {platform.python_version()}, jax {jax.__version__}")
    print(f"device: {device_description()}")
    print(f"load on entry: {load.describe()}" + (
        " -- LOADED (> 0.5 per core): the figures below are not headline figures"
        if load.loaded else " (quiet)"))
    print(flush=True)
    return load


def print_footer(load: Load | None = None) -> None:
    """Print the load average after the run (beside the load on entry), the peak resident
    memory of this process and the device's peak memory where there is a device."""
    after = load_average()
    entry = "" if load is None else f"{load.entry:.2f} on entry, "
    dev = device_peak_memory_mib()
    print(f"load: {entry}{after:.2f} after (1-min average, {os.cpu_count()} cores); "
          f"peak RSS {peak_rss_mib():.0f} MiB"
          + ("" if dev is None else f"; device peak memory {dev:.0f} MiB"), flush=True)


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


def headline(name: str, value: float, unit: str, goal: str, load: Load | None = None) -> str:
    """Format one headline figure: ``name: value unit (goal: goal)``, followed by
    ``[under load: ...]`` when ``load`` says the run was loaded."""
    mark = f" [under load: {load.describe()} on entry]" if load is not None and load.loaded else ""
    return f"{name}: {fmt_value(value)} {unit} (goal: {goal}){mark}"
