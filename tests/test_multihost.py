"""Multi-process data parallelism for real: two CPU processes joined by ``jax.distributed``.

Each test starts ``tests/_multihost_script.py`` twice (process 0 hosts the coordinator on a free
port of 127.0.0.1; nothing else is contacted), each process with 2 emulated CPU devices, so the
``data`` mesh has 4 devices over 2 processes and the gradient all-reduce crosses processes (gloo
over TCP). Every process is killed if the pair is not done within ``PAIR_TIMEOUT_S`` or as soon
as one of them fails. If this jax cannot run a CPU multi-process computation, the script says so
and the tests are skipped with the error it raised.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_python

SCRIPT = "tests/_multihost_script.py"
PAIR_TIMEOUT_S = 240  # for both processes together (about 10 s when it works)
STEPS = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    # No persistent compilation cache: its key leaves out jax_cpu_collectives_implementation, so
    # a cross-process sum compiled with gloo was loaded by a process without collectives and
    # hung in XLA's rendezvous (40 s, then abort) instead of failing to compile.
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    return env


def _run_pair(tmp_path: Path, name: str, *args: str) -> list[dict]:
    """Run the script as processes 0 and 1 of one job; return both outputs."""
    port = _free_port()
    outs = [tmp_path / f"{name}{i}.npz" for i in range(2)]
    logs = [tmp_path / f"{name}{i}.log" for i in range(2)]
    procs: list[subprocess.Popen] = []
    try:
        for i in range(2):
            with open(logs[i], "w") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, SCRIPT, str(outs[i]), "--port", str(port),
                     "--process-id", str(i), *args],
                    cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                ))
        deadline = time.monotonic() + PAIR_TIMEOUT_S
        while any(p.poll() is None for p in procs):
            if any(p.returncode not in (None, 0) for p in procs):
                break  # one failed: the other would wait for it until a jax timeout
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    codes = [p.returncode for p in procs]
    if codes != [0, 0]:
        tails = "\n".join(f"--- process {i} (exit {codes[i]}):\n{logs[i].read_text()[-3000:]}"
                          for i in range(len(procs)))
        pytest.fail(f"two-process run {name!r} {' '.join(args)} failed or passed "
                    f"{PAIR_TIMEOUT_S} s (negative exit = killed):\n{tails}")
    return [_load(o) for o in outs]


def _load(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _skip_if_unsupported(outs: list[dict]):
    for o in outs:
        if str(o["status"]) == "unsupported":
            pytest.skip(f"jax {o['jax_version']} cannot run CPU multi-process collectives: "
                        f"{o['reason']}")


def _leaves(out: dict) -> list[str]:
    return sorted(k for k in out if k.startswith("leaf"))


def _assert_same_params(got: dict, want: dict):
    # Float32 sums of the per-device gradients in another order, compounded by 30 Adam steps:
    # the differences seen are <= 2e-7 absolute on parameters of size ~0.1-1 (jax 0.10.2 and
    # 0.12.1); Adam's normalisation turns that into large *relative* differences on entries
    # near 0, hence the absolute floor of 1e-6. A wrong reduction (a mean over one process's
    # half of the batch, a missing all-reduce) is off by ~1e-2.
    assert _leaves(got) and _leaves(got) == _leaves(want)
    for k in _leaves(want):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-6, err_msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The same training in one process on one device (no mesh), 30 steps."""
    path = tmp_path_factory.mktemp("multihost_ref") / "ref.npz"
    ref = run_python([SCRIPT, str(path), "--steps", str(STEPS)], env={"JAX_PLATFORMS": "cpu"},
                     timeout=PAIR_TIMEOUT_S)
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = _load(path)
    assert int(out["n_devices"]) == 1 and int(out["n_processes"]) == 1
    return out


def test_two_processes_match_one_process(tmp_path, reference):
    p0, p1 = _run_pair(tmp_path, "fit", "--steps", str(STEPS))
    _skip_if_unsupported([p0, p1])
    for i, o in enumerate((p0, p1)):
        assert int(o["process_index"]) == i
        assert int(o["n_processes"]) == 2 and int(o["n_devices"]) == 4
        assert int(o["param_devices"]) == 4 and bool(o["fully_replicated"])
    # The replicas of the parameters are the same numbers in both processes, bit for bit.
    for k in _leaves(p0):
        np.testing.assert_array_equal(p1[k], p0[k], err_msg=k)
    np.testing.assert_array_equal(p1["losses"], p0["losses"])
    # ... and the same training as one process with the same global batch of 64.
    assert len(p0["losses"]) == STEPS
    np.testing.assert_allclose(p0["losses"], reference["losses"], rtol=1e-5)
    _assert_same_params(p0, reference)
    # parallel.replicate on a multi-process mesh: committed arrays, typed keys, global leaves,
    # and processes that pass different values are refused.
    for o in (p0, p1):
        assert bool(o["replicate_ok"])
        assert "passed values different from process 0's" in str(o["mismatch"])


def test_two_processes_checkpoint_then_resume(tmp_path, reference):
    work = str(tmp_path / "work")
    first = _run_pair(tmp_path, "first", "--steps", "20", "--workdir", work)
    _skip_if_unsupported(first)
    assert {"10", "20"} <= set(os.listdir(os.path.join(work, "checkpoints")))
    p0, p1 = _run_pair(tmp_path, "resumed", "--steps", str(STEPS), "--workdir", work,
                       "--resume")
    assert len(p0["losses"]) == STEPS - 20  # continued from the step-20 checkpoint
    np.testing.assert_allclose(first[0]["losses"], reference["losses"][:20], rtol=1e-5)
    np.testing.assert_allclose(p0["losses"], reference["losses"][20:], rtol=1e-5)
    _assert_same_params(p0, reference)
    for k in _leaves(p0):
        np.testing.assert_array_equal(p1[k], p0[k], err_msg=k)


def test_missing_cpu_collectives_are_reported_not_crashed(tmp_path):
    """The skip path: with ``jax_cpu_collectives_implementation=None`` (a jax without CPU
    collectives), the cross-process sum raises and the script reports it instead of training."""
    outs = _run_pair(tmp_path, "nocoll", "--no-collectives")
    for o in outs:
        assert str(o["status"]) == "unsupported", "a CPU multi-process sum ran without collectives"
        assert str(o["reason"]).strip()  # jax 0.10-0.12: "INVALID_ARGUMENT: Multiprocess
        # computations aren't implemented on the CPU backend."
