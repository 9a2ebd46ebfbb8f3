"""Crash-and-resume and multi-device equivalence, each in fresh interpreters."""

from __future__ import annotations

import signal

import numpy as np

from conftest import run_python

SCRIPT = "tests/_train_script.py"


def _load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _assert_same_params(a, b, rtol):
    keys = sorted(k for k in a if k.startswith("leaf"))
    assert keys and keys == sorted(k for k in b if k.startswith("leaf"))
    for k in keys:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=1e-7)


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    ref = run_python([SCRIPT, str(tmp_path / "ref.npz")])
    assert ref.returncode == 0, ref.stderr[-2000:]
    work = tmp_path / "run"
    killed = run_python([SCRIPT, str(tmp_path / "never.npz"), "--workdir", str(work),
                         "--kill-at", "30"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "never.npz").exists()
    resumed = run_python([SCRIPT, str(tmp_path / "resumed.npz"), "--workdir", str(work),
                          "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _load(tmp_path / "ref.npz"), _load(tmp_path / "resumed.npz")
    assert len(b["losses"]) == 40  # resumed from the step-20 checkpoint
    np.testing.assert_allclose(b["losses"], a["losses"][20:], rtol=1e-6)
    _assert_same_params(a, b, rtol=1e-6)


def test_eight_emulated_devices_match_one_device(tmp_path):
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    one = run_python([SCRIPT, str(tmp_path / "one.npz"), "--steps", "30"])
    eight = run_python([SCRIPT, str(tmp_path / "eight.npz"), "--steps", "30", "--mesh"], env=flags)
    assert one.returncode == 0, one.stderr[-2000:]
    assert eight.returncode == 0, eight.stderr[-2000:]
    a, b = _load(tmp_path / "one.npz"), _load(tmp_path / "eight.npz")
    assert int(a["n_devices"]) == 1 and int(b["n_devices"]) == 8
    assert int(b["param_devices"]) == 8  # parameters were replicated over the whole mesh
    np.testing.assert_allclose(b["losses"], a["losses"], rtol=1e-5)
    _assert_same_params(a, b, rtol=1e-4)
