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
* data parallel: with ``mesh`` given, the batch is sharded on the ``data`` axis and the
  parameters, optimizer state and dataset are replicated; XLA inserts the gradient all-reduce;
* flax nnx modules are split once into ``(graphdef, params, rest)`` and merged inside the jitted
  step (``nnx.jit`` adds ~0.8 ms of Python per call);
* checkpoints (orbax) every ``checkpoint_every`` steps and at the end, atomically;
  ``resume=True`` continues from the newest;
* a non-finite loss raises :class:`NonFiniteLossError` naming the step; nothing from the bad
  chunk is saved, so the last good checkpoint stays loadable.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray

from opdiff import checkpoint as ckpt
from opdiff import parallel

__all__ = ["fit", "TrainResult", "NonFiniteLossError", "array_batches"]

LossFn = Callable[[Any, Any, PRNGKeyArray], jax.Array]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss.

    Attributes:
        step: the first step whose loss was not finite.
        last_checkpoint: the step of the newest checkpoint on disk (``None`` if none).
    """

    def __init__(self, step: int, loss: float, last_checkpoint: int | None, workdir: str | None):
        self.step = step
        self.loss = loss
        self.last_checkpoint = last_checkpoint
        where = (
            f"; the last good checkpoint is step {last_checkpoint} in {workdir!r}"
            if last_checkpoint is not None
            else "; no checkpoint was written"
        )
        super().__init__(f"non-finite loss {loss} at step {step}{where}")


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What ``fit`` returns.

    Attributes:
        params: the trained parameters, or the trained nnx module if a module was passed.
        opt_state: the optimizer state.
        ema_params: the EMA of the parameters (module if a module was passed), or ``None``.
        losses: float64 array of the loss at every step run by this call, in order.
        step: the number of steps completed (``== steps``).
        start_step: the step training started from (> 0 after a resume).
        steps_per_s: measured throughput of this call, compilation excluded.
    """

    params: Any
    opt_state: Any
    ema_params: Any
    losses: np.ndarray
    step: int
    start_step: int
    steps_per_s: float


def array_batches(arrays: Any, batch_size: int | None) -> Callable[[PRNGKeyArray], Any]:
    """A data source that draws ``batch_size`` rows uniformly with replacement.

    Args:
        arrays: a pytree of arrays sharing their leading dimension ``N``.
        batch_size: rows per batch; ``None`` returns the whole pytree (full batch).

    Returns:
        ``data(key) -> batch``, a pure function usable inside ``jit``.

    Raises:
        ValueError: if the leaves disagree on ``N`` or ``batch_size`` is not positive.
    """
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
    if batch_size is None:
        return lambda key: arrays
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")

    def draw(key):
        idx = jax.random.randint(key, (batch_size,), 0, n)
        return jax.tree.map(lambda x: x[idx], arrays)

    return draw


def _is_nnx_module(obj: Any) -> bool:
    if "flax" not in sys.modules:
        return False
    from opdiff.nets._compat import nnx

    return isinstance(obj, nnx.Module)


def _check_positive_int(name: str, value: Any, allow_none: bool = False):
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


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
        workdir: directory for ``checkpoints/`` and ``metrics.jsonl``; ``None`` writes nothing.
        checkpoint_every: save every this many steps (and always at the end) when ``workdir``
            is set.
        resume: continue from the newest checkpoint in ``workdir`` if there is one.
        max_to_keep: checkpoints kept on disk (``None``: all).
        log_every: append a line to ``metrics.jsonl`` at least every this many steps
            (default: about 100 lines per run).
        progress: show a tqdm bar; ``None`` shows it only when stderr is a terminal.
        callback: ``callback(step, loss)`` called on the host after every jitted call, with the
            number of steps completed and the last loss.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: for bad arguments (non-positive sizes, a batch not divisible by the mesh,
            existing checkpoints without ``resume=True``, ...).
        NonFiniteLossError: when a loss is NaN or infinite; nothing from that chunk is saved.
    """
    _check_positive_int("steps", steps)
    _check_positive_int("steps_per_call", steps_per_call)
    _check_positive_int("checkpoint_every", checkpoint_every, allow_none=True)
    _check_positive_int("log_every", log_every, allow_none=True)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}"
        )
    if ema_decay is not None and not (0.0 <= float(ema_decay) < 1.0):
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay!r}")
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
        from opdiff.nets._compat import nnx

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

    get_batch = data if callable(data) else array_batches(data, batch_size)
    if mesh is not None and not callable(data):
        get_batch = array_batches(parallel.replicate(data, mesh), batch_size)

    def one_step(carry, _):
        s, p, opt_state, ema = carry
        data_key, loss_key = jax.random.split(jax.random.fold_in(key, s))
        batch = get_batch(data_key)
        if mesh is not None:
            batch = parallel.shard_batch(batch, mesh)
        loss, grads = jax.value_and_grad(loss_of)(p, batch, loss_key)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        p = optax.apply_updates(p, updates)
        if ema is not None:
            ema = jax.tree.map(lambda e, q: ema_decay * e + (1.0 - ema_decay) * q, ema, p)
        return (s + 1, p, opt_state, ema), loss

    compiled: dict[int, Callable] = {}

    def chunk_fn(n: int) -> Callable:
        """The jitted call running ``n`` steps; the step counter lives in the carry."""
        if n not in compiled:
            if n == 1:

                def run(carry):
                    carry, loss = one_step(carry, None)
                    return carry, loss[None]
            else:

                def run(carry):
                    return jax.lax.scan(one_step, carry, None, length=n)

            compiled[n] = jax.jit(run)
        return compiled[n]

    # --- state, checkpoints and resume -----------------------------------------------------
    state = {
        "step": np.asarray(0, np.int64),
        "params": theta,
        "opt_state": optimizer.init(theta),
        "ema": None if ema_decay is None else jax.tree.map(jnp.asarray, theta),
    }
    if mesh is not None:
        state = parallel.replicate(state, mesh)
    ckpt_dir = None if workdir is None else os.path.join(os.fspath(workdir), "checkpoints")
    metrics_path = None if workdir is None else os.path.join(os.fspath(workdir), "metrics.jsonl")
    last_ckpt = None if ckpt_dir is None else ckpt.latest_step(ckpt_dir)
    if last_ckpt is not None and not resume:
        raise ValueError(
            f"workdir {os.fspath(workdir)!r} already holds checkpoint {last_ckpt}; "
            "pass resume=True to continue it or choose another workdir"
        )
    if last_ckpt is not None:
        state = ckpt.restore(ckpt_dir, state, last_ckpt)
    start = int(state["step"])
    if start > steps:
        raise ValueError(f"steps={steps} is below the resumed checkpoint's step {start}")
    if metrics_path is not None:
        os.makedirs(os.fspath(workdir), exist_ok=True)
        _truncate_metrics(metrics_path, start)
    log_every = log_every or max(1, steps // 100)

    step_counter = jnp.asarray(start, jnp.int32)
    if mesh is not None:
        step_counter = parallel.replicate(step_counter, mesh)
    # ``carry`` is the state after ``step`` steps whose losses were checked on the host.
    carry = (step_counter, state["params"], state["opt_state"], state["ema"])
    step = start
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
    # made the new ``carry``) once its losses are known to be finite.
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
                out = chunk_fn(n)(pending[-1][2] if pending else carry)
                if new_first and t_timed is not None:
                    compile_s += time.perf_counter() - t0
                pending.append((dispatched, n, *out))
                dispatched += n
            at, n, new_carry, chunk_losses = pending.popleft()
            chunk_losses = np.asarray(jax.device_get(chunk_losses), np.float64)
            bad = np.flatnonzero(~np.isfinite(chunk_losses))
            if bad.size:
                pending.clear()
                losses.append(chunk_losses[: bad[0]])
                raise NonFiniteLossError(
                    at + int(bad[0]),
                    float(chunk_losses[bad[0]]),
                    None if ckpt_dir is None else ckpt.latest_step(ckpt_dir),
                    ckpt_dir,
                )
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
                _save(ckpt_dir, step, carry, max_to_keep)
            if callback is not None:
                callback(step, float(chunk_losses[-1]))
    except KeyboardInterrupt:
        if ckpt_dir is not None and step > start:
            _save(ckpt_dir, step, carry, max_to_keep)
        raise
    finally:
        if bar is not None:
            bar.close()

    _, p, opt_state, ema = carry
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
    """Drop metrics logged after ``step`` (they belong to a run that is being resumed)."""
    if jax.process_index() != 0 or not os.path.exists(path):
        return
    with open(path) as f:
        lines = [ln for ln in f if ln.strip()]
    keep = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
    if len(keep) != len(lines):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(keep)
        os.replace(tmp, path)
