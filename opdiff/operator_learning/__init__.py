r"""Train and evaluate operator networks on operator datasets, with the opdiff engine.

Functions shared by the DeepONet experiments (no global state; randomness from explicit keys):

* :func:`train_deeponet` trains a :class:`~opdiff.nets.DeepONet` (or a
  :class:`~opdiff.nets.PODDeepONet`) on an :class:`~opdiff.data.AlignedDataset` or
  :class:`~opdiff.data.UnalignedDataset` with :func:`opdiff.fit` and Adam, the loss being the
  mean squared error over every output value of the batch. With ``eval_every`` it trains in
  segments (resuming the engine's checkpoint, so Adam's moments, the schedule and the step
  keys run on exactly as in one call) and evaluates the training set and an optional test set
  after each segment; the *best checkpoint* is the evaluation with the lowest training MSE,
  DeepXDE's rule (``TrainState.update_best`` compares the training loss; Lu et al. 2021's
  "best at step 46 000"). Selecting by the test error would tune on the test set. Each
  segment is one :func:`opdiff.fit` call, which compiles its step again (seconds on a CPU,
  about 1 s on a GPU): keep ``eval_every`` large against that. It returns the engine's
  :class:`opdiff.TrainResult` (``params``: the final model) with an :class:`Evaluations`
  record attached (``result.evaluations``: evaluation steps and errors, the best
  checkpoint's model). Its loss is :func:`mse_loss`, a loss factory usable with
  :func:`opdiff.fit` directly. With ``lbfgs_steps`` the Adam steps are followed by full-batch
  L-BFGS (:mod:`opdiff.operator_learning.recipes`: the recipes, and why this converges faster
  than Adam alone; ``train_deeponet(model, data, key=key, **recipes.recipe("adam_lbfgs"))``).
* :func:`predict` / :func:`evaluate`: predictions in the dataset's output layout, and the error
  metrics of :func:`error_metrics`.

**Metrics** (:func:`error_metrics`, plain NumPy in float64; ``e = pred - target``):

* ``mse``: mean of :math:`e^2` over every value (every function, point and component);
  ``rmse`` its root; ``max_abs_error``;
* ``mse_wo_outliers``: the MSE with the largest 0.1 % of the squared errors dropped (Lu et
  al.'s "MSE w/o outliers", ``utils.mean_squared_error_outlier``);
* ``rel_l2``: :math:`\|e\|_2/\|v\|_2` over all values (global; ``None`` if :math:`v=0`);
* ``rel_l2_mean``, ``rel_l2_std``, ``rel_l2_median``: over functions of the per-function
  relative error :math:`\|e_i\|_2/\|v_i\|_2` (discrete, unweighted 2-norm over that function's
  points and components: DeepXDE's "mean l2 relative error"). For an aligned dataset a function
  is a row; for an unaligned dataset a function is a block of ``group_size`` consecutive rows
  (:func:`opdiff.data.make_unaligned` writes ``points_per_func`` rows per function, in order, and
  records it in the metadata). With one point per function a per-function relative error is
  :math:`|e|/|v|` at one point, meaningless where :math:`v\approx0` (the antiderivative at
  ``x = 0``), so these three are ``None``.

Multi-output models (``n_outputs = K > 1``) add ``mse_per_output`` and ``rel_l2_per_output``.

The paper's problems as datasets and models: :mod:`opdiff.operator_learning.problems`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray

from opdiff import train as _train
from opdiff.data import AlignedDataset, UnalignedDataset
from opdiff.nets._compat import nnx
from opdiff.nets.deeponet import DeepONet, PODDeepONet
from opdiff.operator_learning import recipes as _recipes

__all__ = [
    "LR_SCHEDULES",
    "Evaluations",
    "make_schedule",
    "mse_loss",
    "train_deeponet",
    "predict",
    "evaluate",
    "error_metrics",
    "per_function_rel_l2",
    "zca_whitening",
]

LR_SCHEDULES = ("constant", "cosine", "exponential")
OUTLIER_FRACTION = 1e-3  # Lu et al.'s "MSE w/o outliers" drops the largest 0.1 %


# --- schedules -------------------------------------------------------------------------------


def make_schedule(lr: float, steps: int, schedule: str | Callable = "constant", *,
                  final_fraction: float = 1e-2, warmup: int = 0):
    """The learning rate as an optax schedule (or a float for ``"constant"`` without warm-up).

    Args:
        lr: the initial (peak) learning rate, > 0.
        steps: the training length the schedule spans.
        schedule: ``"constant"``; ``"cosine"`` (cosine decay from ``lr`` to
            ``lr * final_fraction`` at ``steps``); ``"exponential"`` (``lr *
            final_fraction ** (s / steps)``); or any callable ``step -> lr`` (an optax schedule),
            returned unchanged.
        final_fraction: the final learning rate over ``lr`` for the decaying schedules.
        warmup: steps of linear warm-up from 0 to ``lr`` first (``0 <= warmup < steps``); the
            named schedule then spans the remaining ``steps - warmup`` steps. A warm-up lets
            Adam start at a larger rate: its first steps, with poor second-moment estimates
            and a large gradient, are where a large rate diverges.

    Raises:
        ValueError: for a non-positive ``lr``/``steps``/``final_fraction``, a ``warmup``
            outside ``[0, steps)`` or an unknown name.
    """
    if callable(schedule):
        return schedule
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not 0 < final_fraction <= 1:
        raise ValueError(f"final_fraction must be in (0, 1], got {final_fraction!r}")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or not 0 <= warmup < steps:
        raise ValueError(f"warmup must be an int in [0, steps={steps}), got {warmup!r}")
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"schedule must be a callable or one of {LR_SCHEDULES}, got "
                         f"{schedule!r}")
    if schedule == "constant" and not warmup:
        return float(lr)
    n = steps - warmup
    decay = {"constant": lambda: optax.constant_schedule(lr),
             "cosine": lambda: optax.cosine_decay_schedule(lr, n, alpha=final_fraction),
             "exponential": lambda: optax.exponential_decay(lr, n, final_fraction)}[schedule]()
    if not warmup:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay], [warmup])


# --- forward passes and the loss -------------------------------------------------------------


def _is_aligned(dataset) -> bool:
    if isinstance(dataset, AlignedDataset):
        return True
    if isinstance(dataset, UnalignedDataset):
        return False
    raise TypeError(f"dataset must be an AlignedDataset or UnalignedDataset, got "
                    f"{type(dataset).__name__}")


def _forward(model, u, y, aligned: bool):
    """``[n, P, K]`` (aligned) or ``[n, K]`` (unaligned) predictions."""
    if isinstance(model, PODDeepONet):
        if not aligned:
            raise ValueError("a PODDeepONet predicts on its fixed points only: use an "
                             "AlignedDataset on the points its modes were computed on")
        return model.aligned(u)[..., None]
    return model.aligned(u, y) if aligned else model.unaligned(u, y)


def mse_loss(aligned: bool, points=None) -> Callable:
    r"""The loss factory of :func:`train_deeponet`: the engine loss ``loss(model, batch, key)``
    (:func:`opdiff.fit`), the mean squared error over every output value of the batch,

    .. math:: L(\theta) = \frac{1}{|B|}\sum_{(i,q,k)\in B}
        \big(\mathcal N_\theta(u_i)(y_q)_k - v_{i,q,k}\big)^2,

    ``B`` every (function, point, component) of the batch. The key is unused (no noise).

    Args:
        aligned: ``True``: ``batch`` is ``{"inputs" [B, m], "outputs" [B, P(, K)]}``, every
            function at the fixed ``points`` (:meth:`~opdiff.nets.DeepONet.aligned`; a
            :class:`~opdiff.nets.PODDeepONet` ignores the points); ``False``: ``batch`` is
            ``{"inputs" [B, m], "points" [B, d], "outputs" [B(, K)]}`` triplets
            (:meth:`~opdiff.nets.DeepONet.unaligned`).
        points: ``[P, d]`` the fixed query points of aligned data; ``None`` when unaligned.

    Returns:
        ``loss(model, batch, key) -> scalar``; outputs may omit the component axis when
        ``K = 1``.

    Example:
        >>> loss = mse_loss(True, dataset.points)
        >>> result = opdiff.fit(loss, model, optax.adam(1e-3), dataset.arrays(), steps=1000,
        ...                     key=key, batch_size=64)  # aligned: functions per batch
    """
    y_fixed = None if points is None else jnp.asarray(points)

    def loss(model, batch, key):
        del key
        y = y_fixed if aligned else batch["points"]
        pred = _forward(model, batch["inputs"], y, aligned)
        return jnp.mean((pred - batch["outputs"].reshape(pred.shape)) ** 2)

    return loss


def _param_dtype(model):
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    return leaves[0].dtype if leaves else jnp.float32


def _arrays(dataset, dtype) -> dict:
    return {k: jnp.asarray(np.asarray(v, dtype)) for k, v in dataset.arrays().items()}


# --- prediction ------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(0, 4))
def _predict_chunk(graphdef, state, u, y, aligned):
    return _forward(nnx.merge(graphdef, state), u, y, aligned)


def predict(model, dataset, *, chunk: int = 8192) -> np.ndarray:
    """The model's predictions for every input of ``dataset``, shaped like its outputs.

    Args:
        model: a :class:`~opdiff.nets.DeepONet` or :class:`~opdiff.nets.PODDeepONet`.
        dataset: an aligned (predictions ``[n, P]`` or ``[n, P, K]``) or unaligned
            (``[n]`` or ``[n, K]``) dataset; the component axis is dropped when the dataset's
            outputs have none.
        chunk: rows (unaligned) or functions (aligned) per compiled call; the compiled
            function is cached per model structure and chunk shape.

    Returns:
        float32/float64 NumPy array (the model's parameter dtype).
    """
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    aligned = _is_aligned(dataset)
    dtype = _param_dtype(model)
    graphdef, state = nnx.split(model)
    u = np.asarray(dataset.inputs)
    y = np.asarray(dataset.points)
    n = u.shape[0]
    if aligned:
        chunk = max(1, min(chunk, 2**20 // max(1, y.shape[0])))  # bound [chunk, P, K]
    # Every call has exactly ``chunk`` rows (the last one zero-padded), so one compilation
    # serves every dataset of this model (per point set, when aligned).
    chunk = min(chunk, _pow2_at_least(n))
    parts = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        uc = _pad_rows(u[start:stop], chunk, dtype)
        if aligned:
            yc = jnp.asarray(np.asarray(y, dtype))
        else:
            yc = _pad_rows(y[start:stop], chunk, dtype)
        parts.append(np.asarray(_predict_chunk(graphdef, state, uc, yc, aligned))[: stop - start])
    pred = np.concatenate(parts, axis=0)
    target_shape = np.shape(dataset.outputs)
    if pred.size != math.prod(target_shape):
        raise ValueError(f"the model predicts {pred.shape} values but the dataset's outputs have "
                         f"shape {target_shape}: does n_outputs match the output components?")
    return pred.reshape(target_shape)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def _pad_rows(x, rows: int, dtype):
    """``x`` with zero rows appended up to ``rows`` (on the host: no per-shape compilation)."""
    x = np.asarray(x)
    out = np.zeros((rows,) + x.shape[1:], np.dtype(dtype))
    out[: x.shape[0]] = x
    return jnp.asarray(out)


# --- preprocessing ---------------------------------------------------------------------------


def zca_whitening(inputs) -> np.ndarray:
    r"""ZCA whitening matrices :math:`W=V\Lambda^{-1/2}V^\top` of sample inputs.

    :math:`V\Lambda V^\top` is the empirical (uncentred) second moment :math:`X^\top X/n` of
    each group, eigenvalues floored at :math:`10^{-6}\lambda_{\max}` (a mode without variance,
    as the mean of a zero-mean periodic field, is not amplified without bound). For a linear
    branch the Hessian of the risk is that second moment; :math:`XW` has it equal to the
    identity where nothing was floored.

    Args:
        inputs: ``[C, n, N]``: ``C`` groups of ``n`` sample inputs.

    Returns:
        ``[C, N, N]`` float64, symmetric.
    """
    x = np.asarray(inputs, np.float64)
    out = []
    for xc in x:
        lam, v = np.linalg.eigh(xc.T @ xc / xc.shape[0])
        lam = np.maximum(lam, 1e-6 * lam.max())
        out.append((v / np.sqrt(lam)) @ v.T)
    return np.stack(out)


# --- metrics ---------------------------------------------------------------------------------


def per_function_rel_l2(pred, target) -> np.ndarray:
    r""":math:`\|e_i\|_2/\|v_i\|_2` per row of ``[n_functions, values]`` arrays (float64;
    ``inf`` or ``nan`` for a row whose target is zero)."""
    p = np.asarray(pred, np.float64)
    v = np.asarray(target, np.float64)
    if p.shape != v.shape or p.ndim != 2:
        raise ValueError(f"pred and target must be equal 2-D shapes, got {p.shape}, {v.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.linalg.norm(p - v, axis=1) / np.linalg.norm(v, axis=1)


def error_metrics(pred, target, *, per_function: bool = True) -> dict[str, Any]:
    """The metrics of the module docstring for ``pred``, ``target`` of shape
    ``[n_functions, values]`` (one row per function); ``per_function=False`` leaves the
    per-function statistics ``None``.

    Raises:
        ValueError: on mismatched or non-2-D shapes, or non-finite values.
    """
    p = np.asarray(pred, np.float64)
    v = np.asarray(target, np.float64)
    if p.shape != v.shape or p.ndim != 2 or p.size == 0:
        raise ValueError(f"pred and target must be equal non-empty 2-D shapes "
                         f"[n_functions, values], got {p.shape} and {v.shape}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(v))):
        raise ValueError("pred and target must be finite")
    sq = ((p - v) ** 2).ravel()
    norm2 = float(np.sum(v * v))
    drop = int(OUTLIER_FRACTION * sq.size)
    kept = np.sort(sq)[: sq.size - drop] if drop else sq
    out = {
        "mse": float(sq.mean()),
        "rmse": float(np.sqrt(sq.mean())),
        "mse_wo_outliers": float(kept.mean()),
        "max_abs_error": float(np.sqrt(sq.max())),
        "rel_l2": float(np.sqrt(sq.sum() / norm2)) if norm2 > 0 else None,
        "rel_l2_mean": None,
        "rel_l2_std": None,
        "rel_l2_median": None,
        "n_functions": int(p.shape[0]),
        "n_values": int(p.size),
    }
    if per_function:
        r = per_function_rel_l2(p, v)
        out.update(rel_l2_mean=float(r.mean()), rel_l2_std=float(r.std()),
                   rel_l2_median=float(np.median(r)))
    return out


def evaluate(model, dataset, *, group_size: int | None = None, chunk: int = 8192,
             pred: np.ndarray | None = None) -> dict[str, Any]:
    """Error metrics (module docstring) of ``model`` on ``dataset``.

    Args:
        model: a DeepONet or POD-DeepONet.
        dataset: aligned or unaligned.
        group_size: unaligned only: rows per function for the per-function relative errors
            (default: the ``points_per_func`` of the metadata, else 1 = no per-function stats).
        chunk: as :func:`predict`.
        pred: precomputed :func:`predict` output (skips the forward pass).
    """
    aligned = _is_aligned(dataset)
    if pred is None:
        pred = predict(model, dataset, chunk=chunk)
    target = np.asarray(dataset.outputs)
    pred = np.asarray(pred).reshape(target.shape)
    n = target.shape[0]
    k = target.shape[2] if aligned and target.ndim == 3 else (
        target.shape[1] if not aligned and target.ndim == 2 else 1)
    if aligned:
        g = 1
    else:
        g = group_size
        if g is None:
            g = int(dataset.metadata.get("points_per_func", 1))
        if not isinstance(g, (int, np.integer)) or g < 1 or n % g:
            raise ValueError(f"group_size must be a positive int dividing the {n} rows, got {g!r}")
    rows = n // g
    out = error_metrics(pred.reshape(rows, -1), target.reshape(rows, -1),
                        per_function=aligned or g > 1)
    if k > 1:
        pk, vk = pred.reshape(-1, k), target.reshape(-1, k)
        out["mse_per_output"] = [float(np.mean((pk[:, j] - vk[:, j]) ** 2)) for j in range(k)]
        out["rel_l2_per_output"] = [
            float(np.linalg.norm(pk[:, j] - vk[:, j]) / np.linalg.norm(vk[:, j]))
            for j in range(k)]
    return out


# --- training --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Evaluations:
    """The evaluations :func:`train_deeponet` made while training: the
    ``evaluations`` field of the :class:`opdiff.TrainResult` it returns.

    Attributes:
        eval_steps: ``[E]`` steps after which the model was evaluated (the last is ``steps``).
        train_mse: ``[E]`` the MSE over the whole training set at those steps.
        test: ``E`` metric dicts (:func:`evaluate`) on the test set, ``[]`` without one.
        best_index: index into ``eval_steps`` of the best checkpoint, the lowest
            ``train_mse`` (the last one on a tie).
        best_model: the module at that evaluation (DeepXDE's "best model"); the final model
            (``TrainResult.params``) when it was evaluated only at the end.
        wall_s: seconds for the whole :func:`train_deeponet` call (compilation and
            evaluations included).
        train_s: of those, the seconds inside :func:`opdiff.fit` and the L-BFGS phase
            (compilation included, evaluations excluded).
        train_s_at: ``[E]`` the training seconds (as ``train_s``) elapsed at each evaluation:
            time to an accuracy is ``train_s_at`` at the first evaluation reaching it.
    """

    eval_steps: np.ndarray
    train_mse: np.ndarray
    test: list
    best_index: int
    best_model: Any
    wall_s: float
    train_s: float
    train_s_at: np.ndarray | None = None

    @property
    def best_step(self) -> int:
        """The step of the best checkpoint."""
        return int(self.eval_steps[self.best_index])

    @property
    def test_mse(self) -> np.ndarray:
        """``[E]`` test MSE at every evaluation."""
        return np.array([t["mse"] for t in self.test])

    @property
    def final_test(self) -> dict | None:
        """Test metrics after the last step."""
        return self.test[-1] if self.test else None

    @property
    def best_test(self) -> dict | None:
        """Test metrics of the best (lowest training MSE) checkpoint."""
        return self.test[self.best_index] if self.test else None

    def summary(self) -> dict[str, Any]:
        """Everything but the model, as plain numbers and arrays (for saved results;
        :meth:`opdiff.TrainResult.summary` adds ``losses`` and ``steps_per_s``).

        Keys: ``eval_steps``, ``train_mse`` (curves), ``best_step``, ``train_mse_best``,
        ``wall_s``, ``train_s``; with a test set also ``test_mse`` (curve), ``test_best`` and
        ``test_last`` (:func:`evaluate` dicts), ``test_mse_min`` and ``test_mse_min_step``
        (the lowest test MSE of any evaluation -- reported, never selected on).
        """
        out = dict(eval_steps=self.eval_steps, train_mse=self.train_mse,
                   best_step=self.best_step,
                   train_mse_best=float(self.train_mse[self.best_index]), wall_s=self.wall_s,
                   train_s=self.train_s)
        if self.test:
            i_min = int(np.argmin(self.test_mse))
            out.update(test_mse=self.test_mse, test_best=dict(self.best_test),
                       test_last=dict(self.final_test),
                       test_mse_min=float(self.test_mse[i_min]),
                       test_mse_min_step=int(self.eval_steps[i_min]))
        return out


def train_deeponet(
    model,
    dataset,
    *,
    steps: int,
    key: PRNGKeyArray,
    lr: float = 1e-3,
    batch_size: int | None = None,
    steps_per_call: int = 100,
    schedule: str | Callable = "constant",
    final_lr_fraction: float = 1e-2,
    warmup_steps: int = 0,
    lbfgs_steps: int = 0,
    lbfgs_memory: int = 10,
    test_dataset=None,
    eval_every: int | None = None,
    workdir=None,
    progress: bool = False,
    mesh=None,
) -> _train.TrainResult:
    """Train ``model`` on ``dataset`` by Adam on the mean squared error, with :func:`opdiff.fit`,
    then optionally by L-BFGS on the whole training set (the ``"adam_lbfgs"`` recipe of
    :mod:`opdiff.operator_learning.recipes`, which says why it converges faster).

    Args:
        model: a :class:`~opdiff.nets.DeepONet` (or :class:`~opdiff.nets.PODDeepONet`, aligned
            data only); its parameter dtype sets the dtype of the data.
        dataset: an :class:`~opdiff.data.AlignedDataset` (batches are functions, every point of
            each) or an :class:`~opdiff.data.UnalignedDataset` (batches are triplets).
        steps: Adam steps.
        key: PRNG key of the engine (step ``s`` draws its batch from ``fold_in(key, s)``).
        lr, schedule, final_lr_fraction, warmup_steps: Adam's learning rate, see
            :func:`make_schedule` (``warmup_steps`` is its ``warmup``).
        lbfgs_steps: L-BFGS iterations after the Adam steps (0: none, Lu et al.'s recipe);
            full batch only (``batch_size=None``, no ``mesh``). Evaluations continue every
            ``eval_every`` iterations, counted on from ``steps``. Not checkpointed: the
            ``workdir`` holds the Adam phase.
        lbfgs_memory: the curvature pairs L-BFGS keeps.
        batch_size: rows (unaligned) or functions (aligned) per step, drawn with replacement;
            ``None``: the full dataset every step.
        steps_per_call: steps per compiled call of the engine.
        test_dataset: evaluated (:func:`evaluate`) at every evaluation, if given.
        eval_every: evaluate after every this many steps (and at the end), training in
            segments; ``None``: evaluate once, at the end.
        workdir: the engine's workdir (checkpoints, ``metrics.jsonl``); a temporary directory
            when segments need one and none is given.
        progress, mesh: passed to :func:`opdiff.fit`.

    Returns:
        The engine's :class:`opdiff.TrainResult` of the whole run: ``params`` the model after
        the last step, ``opt_state`` Adam's (L-BFGS's after ``lbfgs_steps``) state then,
        ``losses`` ``[steps + lbfgs_steps]`` the loss of every step (the batch MSE before the
        update; the full training MSE when training full batch), ``step`` the steps and
        iterations run, ``steps_per_s`` the mean over segments (compilation excluded), and
        ``evaluations`` an :class:`Evaluations` (the evaluation history and best checkpoint).

    Raises:
        ValueError: for bad sizes, schedule names, or a dataset the model cannot read.
    """
    aligned = _is_aligned(dataset)
    if test_dataset is not None and not isinstance(test_dataset,
                                                   (AlignedDataset, UnalignedDataset)):
        raise TypeError("test_dataset must be an AlignedDataset or UnalignedDataset")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise ValueError(f"eval_every must be a positive int or None, got {eval_every!r}")
    for name, value, low in (("lbfgs_steps", lbfgs_steps, 0), ("lbfgs_memory", lbfgs_memory, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if lbfgs_steps and (batch_size is not None or mesh is not None):
        raise ValueError(f"lbfgs_steps > 0 needs a deterministic full-batch objective: "
                         f"batch_size=None and mesh=None, got batch_size={batch_size!r}, "
                         f"mesh={mesh!r}")
    if not isinstance(model, (DeepONet, PODDeepONet)):
        raise TypeError(f"model must be a DeepONet or PODDeepONet, got {type(model).__name__}")
    dtype = _param_dtype(model)
    arrays = _arrays(dataset, dtype)
    if aligned:
        arrays.pop("points", None)
    points = jnp.asarray(np.asarray(dataset.points, dtype)) if aligned else None
    loss = mse_loss(aligned, points)
    tx = optax.adam(make_schedule(lr, steps, schedule, final_fraction=final_lr_fraction,
                                  warmup=warmup_steps))
    _check_shapes(model, dataset, dtype)

    t_start = time.perf_counter()
    ends = list(range(eval_every, steps, eval_every)) + [steps] if eval_every else [steps]
    eval_steps, train_mse, tests, train_s_at = [], [], [], []
    best_index, best_model, train_s = 0, model, 0.0

    def record(step, current):
        nonlocal best_index, best_model
        eval_steps.append(step)
        train_s_at.append(train_s)
        train_mse.append(evaluate(current, dataset)["mse"])
        if test_dataset is not None:
            tests.append(evaluate(current, test_dataset))
        if train_mse[-1] <= train_mse[best_index]:
            best_index, best_model = len(train_mse) - 1, current

    tmp = None
    if len(ends) > 1 and workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="opdiff-deeponet-")
        workdir = tmp.name
    try:
        current, results = model, []
        for i, end in enumerate(ends):
            t0 = time.perf_counter()
            res = _train.fit(loss, current, tx, arrays, steps=end, key=key, batch_size=batch_size,
                             steps_per_call=steps_per_call, workdir=workdir, resume=i > 0,
                             progress=progress, mesh=mesh)
            train_s += time.perf_counter() - t0
            results.append(res)
            current = res.params
            record(end, current)
    finally:
        if tmp is not None:
            tmp.cleanup()
    rates = [r.steps_per_s for r in results if math.isfinite(r.steps_per_s)]
    final = dataclasses.replace(results[-1], losses=np.concatenate([r.losses for r in results]),
                                start_step=results[0].start_step)
    if lbfgs_steps:
        t_seg = [time.perf_counter()]

        def on_segment(done, current):
            nonlocal train_s
            train_s += time.perf_counter() - t_seg[0]
            record(steps + done, current)
            t_seg[0] = time.perf_counter()

        current, state, lb_losses, lb_rate = _recipes.lbfgs_phase(
            loss, final.params, arrays, steps=lbfgs_steps, memory=lbfgs_memory,
            segment=eval_every or lbfgs_steps, on_segment=on_segment)
        rates += [lb_rate] if math.isfinite(lb_rate) else []
        final = dataclasses.replace(final, params=current, opt_state=state,
                                    losses=np.concatenate([final.losses, lb_losses]),
                                    step=final.step + lbfgs_steps)
    evaluations = Evaluations(eval_steps=np.asarray(eval_steps), train_mse=np.asarray(train_mse),
                              test=tests, best_index=best_index, best_model=best_model,
                              wall_s=time.perf_counter() - t_start, train_s=train_s,
                              train_s_at=np.asarray(train_s_at))
    return dataclasses.replace(final, evaluations=evaluations,
                               steps_per_s=float(np.mean(rates)) if rates else float("nan"))


def _check_shapes(model, dataset, dtype):
    """Fail early and readably when the model cannot read the dataset (tracing only)."""
    aligned = _is_aligned(dataset)
    u = jax.ShapeDtypeStruct((2,) + np.shape(dataset.inputs)[1:], dtype)
    y_shape = np.shape(dataset.points) if aligned else (2,) + np.shape(dataset.points)[1:]
    y = jax.ShapeDtypeStruct(y_shape, dtype)
    out = jax.eval_shape(lambda a, b: _forward(model, a, b, aligned), u, y)
    per_row = math.prod(np.shape(dataset.outputs)[1:])
    if math.prod(out.shape[1:]) != per_row:
        raise ValueError(f"the model predicts {out.shape[1:]} values per row but the dataset "
                         f"has {np.shape(dataset.outputs)[1:]}: does n_outputs match the output "
                         "components?")
