r"""The one training engine: ``fit`` trains any model on any loss.

A training step at step index :math:`s` is

.. math::
    k_s = \mathrm{fold\_in}(k, s),\quad (k^{data}_s, k^{loss}_s) = \mathrm{split}(k_s),\quad
    b_s = \mathrm{data}(k^{data}_s),\quad
    \theta_{s+1} = \theta_s + \mathrm{optax}(\nabla_\theta L(\theta_s, b_s, k^{loss}_s)),

optionally followed by an EMA :math:`\bar\theta_{s+1} = \beta\bar\theta_s + (1-\beta)\theta_{s+1}`.
Because every random draw is a function of ``(key, s)`` only, the result is the same whether the
steps run one per call, ``steps_per_call`` at a time inside ``lax.scan``, on one device or on a
mesh, or in two processes with a resume in between.

Design points:

* one ``jax.jit`` per chunk length; a chunk of ``n > 1`` steps is a ``lax.scan`` (small models
  are dispatch-bound: at batch 1, 50 scanned steps per call run several times faster on a CPU);
  the step counter lives on the device and calls are dispatched one ahead of the host-side loss
  checks, so the host never stalls the device;
* array data reach the jitted step as an argument, not as a closed-over constant (jax
  embeds a closed-over array in the program: the training set compiled into every program,
  compiled anew for each data set, and missed by the persistent compilation cache);
* data parallel: with ``mesh`` given, the batch is sharded on the ``data`` axis and the
  parameters, optimizer state and dataset are replicated; XLA inserts the gradient all-reduce;
* flax nnx modules are split once into ``(graphdef, params, rest)`` and merged inside the jitted
  step (``nnx.jit`` adds ~0.8 ms of Python per call);
* checkpoints (orbax, verified by CRC-32, see :mod:`opdiff.checkpoint`) every
  ``checkpoint_every`` steps and at the end, atomically; ``resume=True`` continues from the
  newest *readable* one (an unreadable newer one is set aside with a warning, never deleted),
  ``resume_step=`` from a chosen one;
* a chunk is accepted only when every loss and every floating-point leaf of the parameters,
  optimizer state and EMA is finite (the state is checked on the device at the end of each
  chunk; a failed chunk is replayed step by step with one flag per leaf, so the check costs
  nothing per step); otherwise :class:`NonFiniteLossError` or :class:`NonFiniteStateError`
  names the first bad step (and leaf); nothing from the bad chunk is saved, so the last
  checkpoint on disk is the last finite state;
* a workdir is locked (an OS file lock, released by the kernel if the process dies) so a
  second process cannot interleave checkpoints or metrics; ``metrics.jsonl`` tolerates a torn
  last line (dropped on resume, with a warning);
* Ctrl-C: a checkpoint being written is finished first (SIGINT is deferred during saves),
  then at most one guarded final save of the last accepted step, then ``KeyboardInterrupt``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import math
import numbers
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray

from opdiff import checkpoint as ckpt
from opdiff import parallel

__all__ = [
    "fit",
    "TrainResult",
    "NonFiniteError",
    "NonFiniteLossError",
    "NonFiniteStateError",
    "WorkdirBusyError",
    "array_batches",
]

LossFn = Callable[[Any, Any, PRNGKeyArray], jax.Array]


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite value; nothing from that chunk was accepted.

    Attributes:
        step: the index of the first bad step (its loss, or the state after its update).
        last_checkpoint: the step of the newest checkpoint on disk (``None`` if none); it holds
            the last finite state.
    """

    def __init__(self, step: int, what: str, last_checkpoint: int | None, workdir: str | None):
        # ``what`` ends where the step number goes: "non-finite loss nan at step"
        self.step = step
        self.last_checkpoint = last_checkpoint
        where = (
            f"; the last good checkpoint is step {last_checkpoint} in {workdir!r}"
            if last_checkpoint is not None
            else "; no checkpoint was written"
        )
        super().__init__(f"{what} {step}{where}")


class NonFiniteLossError(NonFiniteError):
    """The loss of a step was NaN or infinite (attribute ``loss``: its value)."""

    def __init__(self, step: int, loss: float, last_checkpoint: int | None, workdir: str | None):
        self.loss = loss
        super().__init__(step, f"non-finite loss {loss} at step", last_checkpoint, workdir)


class NonFiniteStateError(NonFiniteError):
    """The update of a step (finite loss) made a parameter, optimizer state or EMA leaf NaN/inf,
    e.g. a NaN gradient. Attribute ``leaf``: the tree path of the first non-finite leaf."""

    def __init__(self, step: int, leaf: str, last_checkpoint: int | None, workdir: str | None):
        self.leaf = leaf
        super().__init__(step, f"non-finite {leaf} after the update of step", last_checkpoint,
                         workdir)


class WorkdirBusyError(RuntimeError):
    """Another live process (or another ``fit`` in this one) is training in the same workdir."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What ``fit`` returns, and every trainer built on it (one record of a training run).

    Attributes:
        params: the trained parameters, or the trained nnx module if a module was passed.
        opt_state: the optimizer state.
        ema_params: the EMA of the parameters (module if a module was passed), or ``None``.
        losses: float64 array of the loss at every step run by this call, in order.
        step: the number of steps completed (``== steps``).
        start_step: the step training started from (> 0 after a resume).
        steps_per_s: measured throughput of this call, compilation excluded.
        evaluations: what a trainer that evaluates while it trains measured (e.g. the
            :class:`opdiff.operator_learning.Evaluations` of ``train_deeponet``: evaluation
            steps, errors, the best checkpoint); ``None`` from :func:`fit` itself. Anything
            with a ``summary() -> dict`` method.
    """

    params: Any
    opt_state: Any
    ema_params: Any
    losses: np.ndarray
    step: int
    start_step: int
    steps_per_s: float
    evaluations: Any = None

    def summary(self) -> dict[str, Any]:
        """Everything but the parameters and optimizer state, as plain numbers and arrays
        (for saved results): ``losses``, ``steps_per_s`` and, when present, every key of
        ``evaluations.summary()``."""
        out = dict(losses=self.losses, steps_per_s=self.steps_per_s)
        if self.evaluations is not None:
            out.update(self.evaluations.summary())
        return out


def array_batches(arrays: Any, batch_size: int | None) -> Callable[[PRNGKeyArray], Any]:
    """A data source that draws ``batch_size`` rows uniformly with replacement.

    Args:
        arrays: a pytree of arrays sharing their leading dimension ``N``.
        batch_size: rows per batch; ``None`` returns the whole pytree (full batch).

    Returns:
        ``data(key) -> batch``, a pure function usable inside ``jit``.

    Raises:
        ValueError: if the leaves disagree on ``N`` or ``batch_size`` is not positive.
        TypeError: if ``batch_size`` is not an int (``True`` is refused) or ``None``.
    """
    arrays, draw = _row_sampler(arrays, batch_size)
    return lambda key: draw(arrays, key)


def _row_sampler(arrays: Any, batch_size: int | None) -> tuple[Any, Callable]:
    """``(arrays as jax arrays, draw)`` with ``draw(arrays, key) -> batch`` as in
    :func:`array_batches`, but the arrays an argument of ``draw``: :func:`fit` passes them to
    its jitted step instead of closing over them, since jax embeds a closed-over array in the
    compiled program as a constant (a copy of the training set in every program, compiled
    again for every data set and missed by the persistent compilation cache)."""
    leaves = jax.tree.leaves(arrays)
    if not leaves:
        raise ValueError("data must contain at least one array")
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"data arrays must share a leading dimension, got shapes "
            f"{[np.shape(x) for x in leaves]}"
        )
    (n,) = sizes
    arrays = jax.tree.map(jnp.asarray, arrays)  # numpy leaves cannot be indexed by tracers
    batch_size = _int_arg("batch_size", batch_size, allow_none=True)
    if batch_size is None:
        return arrays, lambda a, key: a

    def draw(a, key):
        idx = jax.random.randint(key, (batch_size,), 0, n)
        return jax.tree.map(lambda x: x[idx], a)

    return arrays, draw


def _is_nnx_module(obj: Any) -> bool:
    if "flax" not in sys.modules:
        return False
    from opdiff._compat import nnx

    return isinstance(obj, nnx.Module)


def _int_arg(name: str, value: Any, *, minimum: int = 1, allow_none: bool = False):
    """``value`` as an int ``>= minimum`` (numpy integers accepted, bools refused)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be an int{' or None' if allow_none else ''}, got "
            f"{type(value).__name__} {value!r}"
        )
    if value < minimum:
        what = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def _check_key(key: Any):
    ok = isinstance(key, (jax.Array, np.ndarray)) and (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == np.uint32 and key.shape == (2,))
    )
    if not ok:
        raise TypeError(
            f"key must be a PRNG key from jax.random.key(seed), got {type(key).__name__} "
            f"{getattr(key, 'dtype', '')}{list(getattr(key, 'shape', ()))}"
        )


def _leaf_names(params: Any, opt_state: Any, ema: Any) -> list[str]:
    """Names of the floating-point leaves that the finite-state flags cover, in their order."""
    names = []
    for top, tree in (("params", params), ("opt_state", opt_state), ("ema", ema)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
                names.append(top + jax.tree_util.keystr(path))
    return names


def _finite_flags(params: Any, opt_state: Any, ema: Any) -> jax.Array:
    """One bool per floating-point leaf of the state (traced): all its entries are finite."""
    flags = [
        jnp.all(jnp.isfinite(leaf))
        for tree in (params, opt_state, ema)
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    ]
    return jnp.stack(flags) if flags else jnp.ones((0,), bool)


class _WorkdirLock:
    """An exclusive ``flock`` on ``WORKDIR/.lock`` (the kernel drops it when the process dies,
    so a crash leaves no stale lock). Only process 0 of a multi-process run takes it."""

    def __init__(self, workdir: str):
        self.fd = None
        if jax.process_index() != 0:
            return
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        path = os.path.join(workdir, ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WorkdirBusyError(
                f"workdir {workdir!r} is in use by another training run (process {holder}); "
                f"wait for it to finish or choose another workdir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold back SIGINT while the block runs (a checkpoint save), then deliver it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt


def fit(
    loss_fn: LossFn,
    params: Any,
    optimizer: optax.GradientTransformation,
    data: Any,
    *,
    steps: int,
    key: PRNGKeyArray,
    batch_size: int | None = None,
    steps_per_call: int = 1,
    mesh: jax.sharding.Mesh | None = None,
    ema_decay: float | None = None,
    workdir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    resume_step: int | None = None,
    max_to_keep: int | None = 3,
    log_every: int | None = None,
    progress: bool | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> TrainResult:
    r"""Minimise ``loss_fn`` over ``params`` with ``optimizer`` for ``steps`` steps.

    Args:
        loss_fn: ``loss_fn(params, batch, key) -> scalar``. If ``params`` is an nnx module,
            ``loss_fn`` receives the module.
        params: a pytree of arrays, or a ``flax.nnx.Module`` (its ``nnx.Param`` leaves are
            trained; other state is held fixed).
        optimizer: an optax gradient transformation.
        data: either a pure function ``data(key) -> batch`` (generated data), or a pytree of
            arrays with a common leading dimension, sampled by :func:`array_batches`.
        steps: total number of steps (counting those before a resume).
        key: PRNG key; step ``s`` uses ``fold_in(key, s)``.
        batch_size: rows per batch when ``data`` is arrays (``None``: full batch).
        steps_per_call: steps per jitted call; ``> 1`` runs them in one ``lax.scan``.
        mesh: a mesh with a ``"data"`` axis (see :func:`opdiff.parallel.data_mesh`); the batch
            is sharded over it. ``None``: the default device.
        ema_decay: if given, keep :math:`\bar\theta \leftarrow \beta\bar\theta+(1-\beta)\theta`.
        workdir: directory for ``checkpoints/``, ``metrics.jsonl`` and the ``.lock`` held while
            training; ``None`` writes nothing.
        checkpoint_every: save every this many steps (and always at the end) when ``workdir``
            is set.
        resume: continue from the newest readable checkpoint in ``workdir`` if there is one.
            Unreadable newer checkpoints are moved to ``workdir/checkpoints_unreadable/`` with a
            warning (never deleted).
        resume_step: continue from exactly this checkpoint (implies ``resume``); newer ones are
            moved to ``workdir/checkpoints_superseded/``.
        max_to_keep: checkpoints kept on disk, a positive int (``None``: all).
        log_every: append a line to ``metrics.jsonl`` at least every this many steps
            (default: about 100 lines per run).
        progress: show a tqdm bar; ``None`` shows it only when stderr is a terminal.
        callback: ``callback(step, loss)`` called on the host after every jitted call, with the
            number of steps completed and the last loss.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TypeError: an argument of the wrong type (``steps=1.5``, ``batch_size=True``,
            ``ema_decay="0.5"``, a key that is not a PRNG key, ...).
        ValueError: for bad values (non-positive sizes, ``max_to_keep=0``, ``ema_decay``
            outside [0, 1), a batch not divisible by the mesh, existing checkpoints without
            ``resume=True``, a ``resume_step`` that does not exist, ...).
        WorkdirBusyError: another process is training in ``workdir``.
        NonFiniteLossError: a loss is NaN or infinite; nothing from that chunk is saved.
        NonFiniteStateError: an update (with a finite loss) made a parameter, optimizer-state
            or EMA leaf non-finite; nothing from that chunk is saved.
        opdiff.checkpoint.CheckpointMismatchError: the checkpoint belongs to another model.
    """
    steps = _int_arg("steps", steps)
    steps_per_call = _int_arg("steps_per_call", steps_per_call)
    checkpoint_every = _int_arg("checkpoint_every", checkpoint_every, allow_none=True)
    log_every = _int_arg("log_every", log_every, allow_none=True)
    batch_size = _int_arg("batch_size", batch_size, allow_none=True)
    resume_step = _int_arg("resume_step", resume_step, minimum=0, allow_none=True)
    max_to_keep = ckpt._check_max_to_keep(max_to_keep)
    _check_key(key)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}"
        )
    if ema_decay is not None:
        if isinstance(ema_decay, (bool, np.bool_)) or not isinstance(ema_decay, numbers.Real):
            raise TypeError(f"ema_decay must be a float in [0, 1) or None, got "
                            f"{type(ema_decay).__name__} {ema_decay!r}")
        if not (0.0 <= float(ema_decay) < 1.0):
            raise ValueError(f"ema_decay must be a float in [0, 1), got {ema_decay!r}")
        ema_decay = float(ema_decay)
    for name, value in (("resume", resume),):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be a bool or None, got {type(progress).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    if workdir is not None:
        if not isinstance(workdir, (str, os.PathLike)):
            raise TypeError(f"workdir must be a path or None, got {type(workdir).__name__}")
        if not os.fspath(workdir):
            raise ValueError("workdir must be a non-empty path or None, got ''")
    resume = bool(resume) or resume_step is not None
    if checkpoint_every is not None and workdir is None:
        raise ValueError("checkpoint_every needs a workdir to write checkpoints to")
    if resume and workdir is None:
        raise ValueError("resume=True needs the workdir of the run to resume")
    if mesh is not None and parallel.DATA_AXIS not in mesh.axis_names:
        raise ValueError(f"mesh must have a {parallel.DATA_AXIS!r} axis, got {mesh.axis_names}")
    n_dev = 1 if mesh is None else mesh.shape[parallel.DATA_AXIS]
    if mesh is not None and batch_size is not None and batch_size % n_dev:
        raise ValueError(
            f"batch_size must be divisible by the {n_dev} devices of the mesh, got {batch_size}"
        )

    # --- nnx modules: train their Param state, merge inside the jitted step --------------
    module_given = _is_nnx_module(params)
    if module_given:
        from opdiff._compat import nnx

        graphdef, theta, rest = nnx.split(params, nnx.Param, ...)

        def loss_of(p, batch, k):
            return loss_fn(nnx.merge(graphdef, p, rest), batch, k)

        def as_user(p):
            return nnx.merge(graphdef, p, rest)
    else:
        theta = params
        loss_of = loss_fn

        def as_user(p):
            return p

    # Arrays reach the jitted step as an argument (``data_arg``), a data function as itself.
    if callable(data):
        data_arg, draw = None, lambda _, k: data(k)
    else:
        data_arg, draw = _row_sampler(
            data if mesh is None else parallel.replicate(data, mesh), batch_size)

    def one_step(carry, d):
        s, p, opt_state, ema = carry
        data_key, loss_key = jax.random.split(jax.random.fold_in(key, s))
        batch = draw(d, data_key)
        if mesh is not None:
            batch = parallel.shard_batch(batch, mesh)
        loss, grads = jax.value_and_grad(loss_of)(p, batch, loss_key)
        # optax mixes Python floats with its int32 step count (e.g. Adam's bias correction),
        # which jax's strict dtype promotion refuses: the optimizer, third-party code, runs
        # under standard promotion; the loss keeps the caller's setting.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, p)
        p = optax.apply_updates(p, updates)
        if ema is not None:
            ema = jax.tree.map(lambda e, q: ema_decay * e + (1.0 - ema_decay) * q, ema, p)
        return (s + 1, p, opt_state, ema), loss

    def state_finite(carry) -> jax.Array:
        return jnp.all(_finite_flags(*carry[1:]))

    compiled: dict[int, Callable] = {}
    # Replicated outputs: on a multi-process mesh only those can be read on the host.
    out_sharding = None if mesh is None else parallel.replicated_sharding(mesh)

    def chunk_fn(n: int, carry_def) -> Callable:
        """The jitted call running ``n`` steps: ``leaves -> (leaves, (losses, state finite))``,
        on the leaves of the carry whose tree structure is ``carry_def``.

        The carry crosses the jit boundary as a flat list of arrays: an nnx state's leaves
        are ``Variable`` objects, and flattening and rebuilding some 200 of them in Python on
        every call cost 2-3 ms per call (a fifth of a small U-Net's training step on a CPU).
        The state is checked once, at the end of the chunk (checking it after every step cost
        up to half the throughput of small scanned models); :func:`replay` finds the step.
        """
        if n not in compiled:
            if n == 1:

                def run(leaves, d):
                    carry, loss = one_step(jax.tree.unflatten(carry_def, leaves), d)
                    return jax.tree.leaves(carry), (loss[None], state_finite(carry))
            else:

                def run(leaves, d):
                    carry, losses = jax.lax.scan(lambda c, _: one_step(c, d),
                                                 jax.tree.unflatten(carry_def, leaves), None,
                                                 length=n)
                    return jax.tree.leaves(carry), (losses, state_finite(carry))

            compiled[n] = jax.jit(run, out_shardings=out_sharding)
        return functools.partial(compiled[n], d=data_arg)

    def replay(carry, n: int) -> tuple[int, int | None] | None:
        """Run a failed chunk again from its first state, one step at a time with one finite
        flag per leaf: ``(i, None)`` if the loss of its step ``i`` is the first bad value,
        ``(i, leaf)`` if the state after step ``i`` is (``None`` if nothing fails again)."""

        def step(c, d):
            c, loss = one_step(c, d)
            return c, loss, _finite_flags(*c[1:])

        step = jax.jit(step, out_shardings=out_sharding)
        for i in range(n):
            carry, loss, flags = step(carry, data_arg)
            loss, flags = jax.device_get((loss, flags))
            if not np.isfinite(loss):
                return i, None
            if not np.all(flags):
                return i, int(np.flatnonzero(~np.asarray(flags))[0])
        return None

    # --- state, checkpoints and resume -----------------------------------------------------
    state = {
        "step": np.asarray(0, np.int64),
        "params": theta,
        "opt_state": optimizer.init(theta),
        "ema": None if ema_decay is None else jax.tree.map(jnp.asarray, theta),
    }
    leaf_names = _leaf_names(state["params"], state["opt_state"], state["ema"])
    if mesh is not None:  # "step" stays a host int64, the dtype _save writes and resume expects
        state = {"step": state["step"],
                 **parallel.replicate({k: v for k, v in state.items() if k != "step"}, mesh)}
    ckpt_dir = metrics_path = lock = None
    if workdir is not None:
        workdir = os.fspath(workdir)
        os.makedirs(workdir, exist_ok=True)
        ckpt_dir = os.path.join(workdir, "checkpoints")
        metrics_path = os.path.join(workdir, "metrics.jsonl")
        lock = _WorkdirLock(workdir)
    try:
        if ckpt_dir is not None:
            state = _resume(ckpt_dir, workdir, state, resume, resume_step)
        return _train_loop(
            state, steps, steps_per_call, checkpoint_every, log_every, max_to_keep, progress,
            callback, chunk_fn, replay, compiled, ckpt_dir, metrics_path, leaf_names, mesh,
            as_user,
        )
    finally:
        if lock is not None:
            lock.release()


def _resume(ckpt_dir: str, workdir: str, state: dict, resume: bool, resume_step: int | None):
    """The state to start from: fresh, the newest readable checkpoint, or ``resume_step``."""
    existing = ckpt.all_steps(ckpt_dir)
    if existing and not resume:
        raise ValueError(
            f"workdir {workdir!r} already holds checkpoint {existing[-1]}; "
            "pass resume=True to continue it or choose another workdir"
        )
    if not existing:
        if resume_step is not None:
            raise ValueError(f"resume_step={resume_step}: workdir {workdir!r} has no checkpoint")
        return state
    if resume_step is not None:
        if resume_step not in existing:
            raise ValueError(f"resume_step={resume_step} is not a checkpoint in {workdir!r}; it "
                             f"has steps {existing}")
        restored, at, skipped = ckpt.restore(ckpt_dir, state, resume_step), resume_step, []
    else:
        at, restored, skipped = ckpt.restore_newest(ckpt_dir, state)
    bad = {s for s, _ in skipped}
    if jax.process_index() == 0:
        for s in existing:
            if s > at:
                into = "checkpoints_unreadable" if s in bad else "checkpoints_superseded"
                moved = ckpt.set_aside(ckpt_dir, s, os.path.join(workdir, into))
                warnings.warn(f"resuming from step {at}: checkpoint {s} was moved to {moved}",
                              RuntimeWarning, stacklevel=3)
    return restored


def _train_loop(state, steps, steps_per_call, checkpoint_every, log_every, max_to_keep,
                progress, callback, chunk_fn, replay, compiled, ckpt_dir, metrics_path,
                leaf_names, mesh, as_user) -> TrainResult:
    start = int(state["step"])
    if start > steps:
        raise ValueError(f"steps={steps} is below the resumed checkpoint's step {start}")
    if metrics_path is not None:
        _truncate_metrics(metrics_path, start)
    log_every = log_every or max(1, steps // 100)

    step_counter = jnp.asarray(start, jnp.int32)
    if mesh is not None:
        step_counter = parallel.replicate(step_counter, mesh)
    # ``carry`` is the state after ``step`` steps whose losses were checked on the host, as
    # the flat list of its leaves (``tree`` rebuilds it; see ``chunk_fn``).
    carry_tree = (step_counter, state["params"], state["opt_state"], state["ema"])
    carry_def = jax.tree.structure(carry_tree)
    carry = jax.tree.leaves(carry_tree)

    def tree(leaves):
        return jax.tree.unflatten(carry_def, leaves)

    step = last_saved = start
    losses: list[np.ndarray] = []
    show = sys.stderr.isatty() if progress is None else progress
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, unit="step", dynamic_ncols=True)

    def chunk_length(at: int) -> int:
        n = min(steps_per_call, steps - at)
        if checkpoint_every is not None:
            n = min(n, checkpoint_every - at % checkpoint_every)
        return n

    # Calls are dispatched one ahead of the host-side checks, so the device never idles while
    # the host fetches losses, logs or checkpoints. A chunk is only accepted (logged, saved,
    # made the new ``carry``) once its losses and state flags are known to be finite.
    pending: collections.deque = collections.deque()
    dispatched = start
    compile_s = 0.0  # time spent compiling new chunk lengths after timing started
    t_timed, timed_from = None, start
    t_last = time.perf_counter()
    last_logged = start
    try:
        while step < steps:
            while len(pending) < 2 and dispatched < steps:
                n = chunk_length(dispatched)
                t0 = time.perf_counter()
                new_first = n not in compiled
                out = chunk_fn(n, carry_def)(pending[-1][2] if pending else carry)
                if new_first and t_timed is not None:
                    compile_s += time.perf_counter() - t0
                pending.append((dispatched, n, *out))
                dispatched += n
            at, n, new_carry, (chunk_losses, finite) = pending.popleft()
            chunk_losses, finite = jax.device_get((chunk_losses, finite))
            chunk_losses = np.asarray(chunk_losses, np.float64)
            bad_loss = np.flatnonzero(~np.isfinite(chunk_losses))
            if bad_loss.size or not finite:
                pending.clear()
                first = replay(tree(carry), n)
                if first is None:  # the replay did not fail again (float rounding): trust the chunk
                    flags = np.asarray(jax.device_get(_finite_flags(*tree(new_carry)[1:])))
                    first = ((int(bad_loss[0]), None) if bad_loss.size else
                             (n - 1, int(np.flatnonzero(~flags)[0]) if (~flags).any() else 0))
                i, leaf = first
                losses.append(chunk_losses[: i if leaf is None else i + 1])
                last = None if ckpt_dir is None else ckpt.latest_step(ckpt_dir)
                if leaf is None:
                    raise NonFiniteLossError(at + i, float(chunk_losses[i]), last, ckpt_dir)
                raise NonFiniteStateError(at + i, leaf_names[leaf], last, ckpt_dir)
            carry = new_carry
            step = at + n
            losses.append(chunk_losses)
            now = time.perf_counter()
            rate = n / (now - t_last) if now > t_last else float("inf")
            t_last = now
            if t_timed is None:  # throughput is timed from the end of the first call
                t_timed, timed_from = now, step
            if bar is not None:
                bar.update(n)
                bar.set_postfix(loss=f"{chunk_losses[-1]:.4g}", refresh=False)
            if metrics_path is not None and (step - last_logged >= log_every or step == steps):
                _append_metrics(
                    metrics_path,
                    {
                        "step": step,
                        "loss": float(chunk_losses[-1]),
                        "loss_mean": float(chunk_losses.mean()),
                        "steps_per_s": rate,
                    },
                )
                last_logged = step
            if ckpt_dir is not None and (
                step == steps or (checkpoint_every is not None and step % checkpoint_every == 0)
            ):
                with _interrupts_deferred():  # a Ctrl-C now lands after the save completes
                    _save(ckpt_dir, step, tree(carry), max_to_keep)
                    last_saved = step
            if callback is not None:
                callback(step, float(chunk_losses[-1]))
    except KeyboardInterrupt:
        if ckpt_dir is not None and step > last_saved:
            try:  # one guarded save of the last accepted step; the interrupt always propagates
                with _interrupts_deferred():
                    _save(ckpt_dir, step, tree(carry), max_to_keep)
            except Exception as err:  # noqa: BLE001
                warnings.warn(f"interrupted at step {step}; its checkpoint could not be written "
                              f"({type(err).__name__}: {err}); the newest on disk is step "
                              f"{last_saved}", RuntimeWarning, stacklevel=2)
        raise
    finally:
        if bar is not None:
            bar.close()

    _, p, opt_state, ema = tree(carry)
    elapsed = (time.perf_counter() - t_timed - compile_s) if t_timed is not None else 0.0
    return TrainResult(
        params=as_user(p),
        opt_state=opt_state,
        ema_params=None if ema is None else as_user(ema),
        losses=np.concatenate(losses) if losses else np.zeros(0),
        step=step,
        start_step=start,
        steps_per_s=(step - timed_from) / elapsed if elapsed > 0 else float("nan"),
    )


def _save(ckpt_dir: str, step: int, carry, max_to_keep):
    _, p, opt_state, ema = carry
    state = {"step": np.asarray(step, np.int64), "params": p, "opt_state": opt_state, "ema": ema}
    ckpt.save(ckpt_dir, step, state, max_to_keep=max_to_keep)


def _append_metrics(path: str, record: dict):
    if jax.process_index() != 0:
        return
    record = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
              for k, v in record.items()}
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_metrics(path: str, step: int):
    """Drop metrics logged after ``step`` (they belong to a run that is being resumed) and any
    line that does not parse (a torn write left by a crash or a full disk), with a warning."""
    if jax.process_index() != 0 or not os.path.exists(path):
        return
    with open(path, "rb") as f:
        raw = f.read()
    keep, torn = [], []
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            torn.append(number)
            continue
        if record.get("step", 0) <= step:
            keep.append(line + b"\n")
    if torn:
        warnings.warn(f"{path}: dropped {len(torn)} unreadable line(s) (line "
                      f"{', '.join(map(str, torn))}; a write torn by a crash or a full disk)",
                      RuntimeWarning, stacklevel=4)
    if b"".join(keep) != raw:
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.writelines(keep)
        os.replace(tmp, path)
