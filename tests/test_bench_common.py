"""benchmarks._common: the load label and the memory figures every benchmark prints."""

from __future__ import annotations

import os
import resource

from benchmarks import _common as c


def test_a_loaded_run_marks_every_figure_line():
    loaded, quiet = c.Load(3.0, 2), c.Load(0.9, 2)  # threshold: 0.5 per core
    assert loaded.loaded and not quiet.loaded and not c.Load(1.0, 2).loaded
    assert c.headline("x", 12.345, "it/s", "g", loaded) == (
        "x: 12.3 it/s (goal: g) [under load: 1-min load 3.00 on 2 cores on entry]")
    assert c.headline("x", 12.345, "it/s", "g", quiet) == "x: 12.3 it/s (goal: g)"
    assert c.headline("x", 12.345, "it/s", "g") == "x: 12.3 it/s (goal: g)"


def test_header_and_footer_print_the_load_and_memory(capsys):
    load = c.print_header("title", ["prog", "--flag"])
    assert load.cores == (os.cpu_count() or 1)
    assert abs(load.entry - os.getloadavg()[0]) < 5.0
    c.print_footer(load)
    out = capsys.readouterr().out
    assert "load on entry: 1-min load" in out and ("LOADED" in out) == load.loaded
    assert f"{load.entry:.2f} on entry" in out and "peak RSS" in out
    # the peak RSS is this process's ru_maxrss (KiB on Linux)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    assert abs(c.peak_rss_mib() - rss) <= 0.1 * rss + 16
    assert c.device_peak_memory_mib() is None  # the test suite runs on the CPU
