"""Faults a user's run must survive: kill -9 (also mid-save), a corrupted newest checkpoint, a
torn metrics line, a NaN gradient, Ctrl-C right after (and during) a save, two processes on one
workdir, and a retention setting that would delete every checkpoint.

Each test ends in a bitwise-equal resume (same losses, same parameters as an uninterrupted run)
or a clear refusal that leaves every file the user had in place.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import opdiff
from conftest import ROOT, run_python
from opdiff import checkpoint as ckpt
from opdiff.nets import MLP, nnx

SCRIPT = "tests/_train_script.py"


# --- in-process helpers: the same small run as tests/_train_script.py ----------------------


def _data(n=256):
    x = jnp.linspace(-1, 1, n)[:, None]
    return x, jnp.sin(3 * x)


def _loss(model, batch, key):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def _fit(steps, optimizer=None, **kw):
    key = jax.random.key(0)
    net = MLP(1, 1, width=16, depth=2, key=jax.random.fold_in(key, 1))
    return opdiff.fit(_loss, net, optimizer or optax.adam(1e-2), _data(), steps=steps, key=key,
                      batch_size=32, steps_per_call=5, progress=False, **kw)


def _params(result):
    return [np.asarray(v) for v in jax.tree.leaves(nnx.state(result.params, nnx.Param))]


def _assert_bitwise(resumed, reference):
    """A resumed run equals the uninterrupted one exactly: its losses and final parameters."""
    np.testing.assert_array_equal(resumed.losses, reference.losses[resumed.start_step:])
    for p, q in zip(_params(resumed), _params(reference), strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.fixture(scope="module")
def reference_60():
    return _fit(60)


def _files(root):
    return sorted(os.path.relpath(p, root) for p in glob.glob(f"{root}/**", recursive=True))


# --- kill -9 --------------------------------------------------------------------------------


def _load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


# (how, where): SIGKILL at random step boundaries (checkpoint steps or not), or in the middle
# of the K-th checkpoint save (of 20, 40, 60), just before orbax's R-th commit rename (1, 2: an
# item written, the checkpoint not committed; 3: all written, the directory not renamed).
_STEPS = np.random.default_rng(2).integers(1, 60, size=2)
KILLS = [("at", int(_STEPS[0])), ("at", int(_STEPS[1])), ("save", (1, 1)), ("save", (2, 2)),
         ("save", (2, 3)), ("save", (3, 3))]


def test_kill_9_at_random_steps_and_mid_save_resumes_bitwise(tmp_path):
    ref = run_python([SCRIPT, str(tmp_path / "ref.npz")])
    assert ref.returncode == 0, ref.stderr[-2000:]
    a = _load(tmp_path / "ref.npz")
    mid_save = 0
    for i, (how, where) in enumerate(KILLS):
        work = tmp_path / f"run{i}"
        args = [SCRIPT, str(tmp_path / "never.npz"), "--workdir", str(work)]
        if how == "at":
            args += ["--kill-at", str(where)]
        else:
            args += ["--kill-in-save", str(where[0]), "--kill-at-rename", str(where[1])]
        killed = run_python(args)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        # orbax writes into "<step>.orbax-checkpoint-tmp-*" and renames it on commit
        mid_save += bool(glob.glob(str(work / "checkpoints" / "*tmp*")))
        resumed = run_python([SCRIPT, str(tmp_path / f"resumed{i}.npz"), "--workdir", str(work),
                              "--resume"])
        assert resumed.returncode == 0, (how, where, resumed.stderr[-2000:])
        b = _load(tmp_path / f"resumed{i}.npz")
        start = int(b["start_step"])
        assert start in (0, 20, 40) and len(b["losses"]) == 60 - start
        np.testing.assert_array_equal(b["losses"], a["losses"][start:])
        keys = sorted(k for k in a if k.startswith("leaf"))
        for k in keys:
            np.testing.assert_array_equal(a[k], b[k])
    assert not (tmp_path / "never.npz").exists()
    assert mid_save == sum(how == "save" for how, _ in KILLS)  # each left a half-written one


# --- damaged checkpoints --------------------------------------------------------------------


def _corrupt(step_dir):
    """Flip the second half of every array data file of one checkpoint (as bit rot would)."""
    paths = [p for p in glob.glob(f"{step_dir}/state/**/d/*", recursive=True) if os.path.isfile(p)]
    assert paths
    for p in paths:
        raw = bytearray(open(p, "rb").read())
        for j in range(len(raw) // 2, len(raw)):
            raw[j] ^= 0x5A
        open(p, "wb").write(bytes(raw))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_corrupted_newest_checkpoint_falls_back_and_is_kept(tmp_path, reference_60):
    _fit(40, workdir=tmp_path, checkpoint_every=20)
    _corrupt(tmp_path / "checkpoints" / "40")
    with pytest.warns(RuntimeWarning) as caught:
        resumed = _fit(60, workdir=tmp_path, checkpoint_every=20, resume=True)
    said = [str(w.message) for w in caught]
    assert any("checkpoint 40" in m and "unreadable" in m for m in said), said
    assert any("checkpoint 40 was moved to" in m and "checkpoints_unreadable" in m for m in said)
    assert resumed.start_step == 20
    _assert_bitwise(resumed, reference_60)
    assert (tmp_path / "checkpoints_unreadable" / "40" / "state").is_dir()  # kept, not deleted
    assert ckpt.all_steps(tmp_path / "checkpoints") == [20, 40, 60]


def test_truncated_manifest_is_corruption_not_a_mismatch(tmp_path):
    _fit(40, workdir=tmp_path, checkpoint_every=20)
    (manifest,) = glob.glob(str(tmp_path / "checkpoints" / "40" / "manifest" / "*metadata*"))
    open(manifest, "r+b").truncate(7)
    template = _template()
    with pytest.raises(ckpt.CorruptCheckpointError, match="checkpoint 40 is unreadable"):
        ckpt.restore(tmp_path / "checkpoints", template, 40)
    with pytest.warns(RuntimeWarning, match="checkpoint 40"):
        step, _, skipped = ckpt.restore_newest(tmp_path / "checkpoints", template)
    assert step == 20 and [s for s, _ in skipped] == [40]


def _template(width=16):
    key = jax.random.key(0)
    net = MLP(1, 1, width=width, depth=2, key=jax.random.fold_in(key, 1))
    theta = nnx.state(net, nnx.Param)
    return {"step": np.asarray(0, np.int64), "params": theta,
            "opt_state": optax.adam(1e-2).init(theta), "ema": None}


def test_a_real_template_mismatch_is_not_called_corruption(tmp_path):
    _fit(20, workdir=tmp_path, checkpoint_every=10)
    before = _files(tmp_path / "checkpoints")
    with pytest.raises(ckpt.CheckpointMismatchError, match="a different model"):
        ckpt.restore(tmp_path / "checkpoints", _template(width=8))
    key = jax.random.key(0)
    other = MLP(1, 1, width=8, depth=2, key=key)
    with pytest.raises(ckpt.CheckpointMismatchError):
        opdiff.fit(_loss, other, optax.adam(1e-2), _data(), steps=30, key=key, batch_size=32,
                   workdir=tmp_path, checkpoint_every=10, resume=True)
    assert _files(tmp_path / "checkpoints") == before  # no fallback, nothing moved


def test_resume_step_picks_an_older_checkpoint_and_sets_newer_aside(tmp_path, reference_60):
    _fit(60, workdir=tmp_path, checkpoint_every=20)
    with pytest.warns(RuntimeWarning) as caught:
        resumed = _fit(60, workdir=tmp_path, checkpoint_every=20, resume_step=20)
    said = sorted(str(w.message) for w in caught)
    assert len(said) == 2 and all("was moved to" in m for m in said), said
    assert resumed.start_step == 20
    _assert_bitwise(resumed, reference_60)
    assert sorted(os.listdir(tmp_path / "checkpoints_superseded")) == ["40", "60"]
    with pytest.raises(ValueError, match="resume_step=30 is not a checkpoint"):
        _fit(60, workdir=tmp_path, checkpoint_every=20, resume_step=30)


def test_torn_metrics_line_is_dropped_on_resume(tmp_path, reference_60):
    _fit(40, workdir=tmp_path, checkpoint_every=20, log_every=5)
    with open(tmp_path / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 45, "loss": 0.0')  # what a kill or a full disk leaves
    with pytest.warns(RuntimeWarning, match="dropped 1 unreadable line"):
        resumed = _fit(60, workdir=tmp_path, checkpoint_every=20, log_every=5, resume=True)
    _assert_bitwise(resumed, reference_60)
    steps = [json.loads(line)["step"] for line in open(tmp_path / "metrics.jsonl")]
    assert steps == list(range(5, 65, 5))


# --- NaN ------------------------------------------------------------------------------------


def _nan_gradient_at(step: int) -> optax.GradientTransformation:
    """Replaces the gradient of optimizer step ``step`` by NaN (the loss stays finite)."""

    def init(params):
        return jnp.zeros((), jnp.int32)

    def update(updates, count, params=None):
        bad = count == step
        updates = jax.tree.map(lambda g: jnp.where(bad, jnp.nan, g), updates)
        return updates, count + 1

    return optax.GradientTransformation(init, update)


def test_nan_gradient_with_finite_loss_is_never_saved(tmp_path, reference_60):
    bad_opt = optax.chain(_nan_gradient_at(33), optax.adam(1e-2))
    with pytest.raises(opdiff.NonFiniteStateError, match="step 33") as info:
        _fit(60, optimizer=bad_opt, workdir=tmp_path, checkpoint_every=10)
    assert info.value.step == 33 and info.value.last_checkpoint == 30
    assert info.value.leaf.startswith("params")  # names the first non-finite leaf
    assert ckpt.all_steps(tmp_path / "checkpoints") == [10, 20, 30]
    # the checkpoint left on disk is finite and resumes (with a sane optimizer) bitwise
    resumed = _fit(60, optimizer=optax.chain(_nan_gradient_at(-1), optax.adam(1e-2)),
                   workdir=tmp_path, checkpoint_every=10, resume=True)
    assert resumed.start_step == 30
    _assert_bitwise(resumed, _fit(60, optimizer=optax.chain(_nan_gradient_at(-1),
                                                            optax.adam(1e-2))))


def test_non_finite_ema_is_caught(tmp_path):
    bad_opt = optax.chain(_nan_gradient_at(12), optax.sgd(1e-2))
    with pytest.raises(opdiff.NonFiniteStateError, match="step 12"):
        _fit(30, optimizer=bad_opt, ema_decay=0.9, workdir=tmp_path, checkpoint_every=5)
    assert ckpt.all_steps(tmp_path / "checkpoints")[-1] == 10


def test_checkpoint_save_refuses_non_finite_leaves(tmp_path):
    state = _template()
    state["params"] = jax.tree.map(lambda x: x.at[0].set(jnp.inf) if x.ndim else x,
                                   state["params"])
    with pytest.raises(ValueError, match="non-finite"):
        ckpt.save(tmp_path, 5, state)
    assert ckpt.all_steps(tmp_path) == []


# --- Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_right_after_a_checkpoint_propagates_and_resumes_bitwise(tmp_path, reference_60):
    def interrupt(step, loss):
        if step == 20:  # the callback runs right after checkpoint 20 was saved
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fit(60, workdir=tmp_path, checkpoint_every=20, callback=interrupt)
    assert ckpt.all_steps(tmp_path / "checkpoints") == [20]
    _assert_bitwise(_fit(60, workdir=tmp_path, checkpoint_every=20, resume=True), reference_60)


def test_ctrl_c_during_a_save_is_delivered_after_it(tmp_path, monkeypatch, reference_60):
    real_save = ckpt.save

    def save_with_sigint(directory, step, tree, **kw):
        if step == 40:
            signal.raise_signal(signal.SIGINT)  # arrives (in this thread) while it is written
        real_save(directory, step, tree, **kw)

    # In the full clean-clone run (not alone, not in any subset tried) an earlier test left
    # SIGINT undeliverable to this process's main thread and the interrupt never arrived:
    # start from Python's default state (unblocked, default handler), restored afterwards.
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    monkeypatch.setattr(ckpt, "save", save_with_sigint)
    try:
        with pytest.raises(KeyboardInterrupt):
            _fit(60, workdir=tmp_path, checkpoint_every=20)
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    monkeypatch.setattr(ckpt, "save", real_save)
    assert ckpt.all_steps(tmp_path / "checkpoints") == [20, 40]  # the save completed
    _assert_bitwise(_fit(60, workdir=tmp_path, checkpoint_every=20, resume=True), reference_60)


def test_cli_exits_130_with_one_line_on_ctrl_c(monkeypatch, capsys, tmp_path):
    import experiments.approx_classics as exp
    from experiments._runner import main

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(exp, "run", interrupted)
    assert main(["run", "approx_classics", "--preset", "smoke", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0]


# --- two writers, retention -----------------------------------------------------------------


def test_second_process_on_the_same_workdir_is_refused(tmp_path):
    work = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    first = subprocess.Popen(
        [sys.executable, SCRIPT, str(tmp_path / "first.npz"), "--workdir", str(work),
         "--sleep-per-call", "0.5"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (work / "metrics.jsonl").exists():  # the first run holds the lock and trains
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        second = run_python([SCRIPT, str(tmp_path / "second.npz"), "--workdir", str(work),
                             "--resume"])
        assert second.returncode != 0
        assert "WorkdirBusyError" in second.stderr and "in use by another" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        out, err = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    assert not (tmp_path / "second.npz").exists()
    steps = [json.loads(line)["step"] for line in open(work / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == 60  # no interleaved lines


def test_lock_is_held_within_one_process_too(tmp_path):
    import fcntl

    fd = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(opdiff.WorkdirBusyError, match="in use"):
            _fit(10, workdir=tmp_path)
    finally:
        os.close(fd)
    assert _fit(10, workdir=tmp_path).step == 10  # released with the descriptor


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (True, TypeError),
                                        (2.0, TypeError)])
def test_max_to_keep_zero_is_refused_and_nothing_deleted(tmp_path, bad, error):
    _fit(20, workdir=tmp_path, checkpoint_every=10)
    before = _files(tmp_path)
    with pytest.raises(error, match="max_to_keep must be a positive int"):
        _fit(40, workdir=tmp_path, checkpoint_every=10, resume=True, max_to_keep=bad)
    assert _files(tmp_path) == before
    assert ckpt.all_steps(tmp_path / "checkpoints") == [10, 20]
