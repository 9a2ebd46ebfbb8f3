"""Test harness: strict dtype promotion, persistent compilation cache, a float64 fixture, a
subprocess helper, the number of pytest-xdist workers, and the shared smoke run.

Every test runs under ``jax.numpy_dtype_promotion("strict")`` (as diffrax's suite does): an
implicit float32/float64 mix, an int with a float, or a real with a complex array raises
instead of silently widening or narrowing, so a library function that loses precision or
doubles memory by accident fails here. A test that needs jax's standard promotion says why
with ``@pytest.mark.standard_promotion("reason")`` (or ``pytestmark`` for a whole file).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Compile once across runs (and across the subprocesses the tests start): short JAX tests are
# dominated by XLA compile time. The cache key covers jax version, flags and platform.
_CACHE = os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache" / "opdiff" / "jax")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture(autouse=True)
def _strict_dtype_promotion(request):
    """Strict dtype promotion for the test unless it is marked ``standard_promotion``."""
    marker = request.node.get_closest_marker("standard_promotion")
    if marker is not None:
        if not (marker.args and isinstance(marker.args[0], str) and marker.args[0].strip()):
            raise ValueError(f"{request.node.nodeid}: standard_promotion needs a reason")
        yield
        return
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def x64():
    """Run the test with ``jax_enable_x64`` on, and restore the previous value after."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def run_python(args: list[str], *, env: dict | None = None, timeout: float = 300, cwd=ROOT):
    """Run ``python ARGS`` in a fresh interpreter at the repo root; return CompletedProcess."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("XLA_FLAGS", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: no error without the plugin
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (the README's test command): one pytest-xdist worker per core, at most 4 (most
    tests are one Python thread compiling or waiting on a subprocess, so two workers keep a
    2-core machine busy; each worker holds its own jax, ~1 GiB). None (tests in this process)
    where jax would use an accelerator: every worker would reserve most of its memory."""
    from experiments._runner import _accelerator_installed

    if _accelerator_installed():
        return 0
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive advisory lock on ``lock_path`` (the pytest workers of one session
    take turns on a shared fixture)."""
    import fcntl

    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def smoke_all(tmp_path_factory):
    """``python -m experiments all --preset smoke --jobs 2`` once per test session, in a fresh
    interpreter with two spawned workers, under strict dtype promotion as every in-process
    test (the workers read it from ``JAX_NUMPY_DTYPE_PROMOTION``): ``(out folder,
    CompletedProcess)``. One run of every experiment through the real entry point, read by
    the per-experiment smoke tests (test_cli) and the browser test of its report
    (test_report); ~1.4x sooner than 25 in-process runs one after another. Under pytest-xdist
    the first worker that needs it runs it in the session's shared temporary folder and the
    others wait for it and read the same run."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by this session's workers (and only by them)
    shared = base / "smoke_all"
    out, record = shared / "res", shared / "process.json"
    shared.mkdir(exist_ok=True)
    with _exclusive(base / "smoke_all.lock"):
        if not record.exists():
            args = ["-m", "experiments", "all", "--preset", "smoke", "--out", str(out),
                    "--jobs", "2"]
            proc = run_python(args, env={"JAX_NUMPY_DTYPE_PROMOTION": "strict"},
                              timeout=1800)
            record.write_text(json.dumps({"args": proc.args, "returncode": proc.returncode,
                                          "stdout": proc.stdout, "stderr": proc.stderr}))
    done = json.loads(record.read_text())
    return out, subprocess.CompletedProcess(done["args"], done["returncode"], done["stdout"],
                                            done["stderr"])
