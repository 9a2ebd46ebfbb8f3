"""The test harness itself: how many pytest-xdist workers ``-n auto`` starts, and the lock
under which the workers share the smoke ``all`` run."""

from __future__ import annotations

import fcntl
import os

import pytest

import conftest


@pytest.mark.parametrize("platforms, want_workers", [("cpu", True), ("cuda", False),
                                                     ("tpu", False)])
def test_auto_workers_one_per_core_at_most_4_and_none_with_an_accelerator(
        monkeypatch, platforms, want_workers):
    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    n = conftest.pytest_xdist_auto_num_workers(config=None)
    cores = len(os.sched_getaffinity(0))
    assert n == (min(cores, 4) if want_workers else 0)


def test_the_shared_fixture_lock_excludes_a_second_holder(tmp_path):
    lock = tmp_path / "x.lock"
    with conftest._exclusive(lock):
        with open(lock, "a") as other:  # a second open file description, as another worker
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock, "a") as other:  # released on exit
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_UN)


def test_plain_pytest_runs_without_the_xdist_plugin():
    # a machine with pytest alone (the lent GPU machine has no registry): the conftest's
    # xdist hook is optional and pyproject's addopts name no xdist option
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
                           "-k", "auto_workers", "tests/test_harness.py"], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "3 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr
