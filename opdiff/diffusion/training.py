r"""Training a denoiser by denoising score matching, through the one engine.

:func:`train_denoiser` is :func:`opdiff.fit` with the DSM loss of
:mod:`opdiff.diffusion.losses` for any forward process (VP, VE, sub-VP, heat dissipation,
blurring, coloured noise): EMA, atomic checkpoints, exact resume and data-parallel meshes
come from the engine. The model is a denoiser :math:`D(x,t[,y])` with a ``batched`` method
(:class:`~opdiff.diffusion.preconditioned.Preconditioned`,
:class:`~opdiff.diffusion.score_mlp.ScoreMLP`, ...).

**Label dropout** (classifier-free guidance, Ho & Salimans 2022): with probability
``label_dropout`` a training label is replaced by the no-label token ``n_classes``, so one
network learns both :math:`D(x,t,y)` and :math:`D(x,t,\varnothing)`
(:mod:`opdiff.diffusion.guidance` combines them).

The default loss is the :math:`x_0`-prediction weighting ``"denoiser"``
(:math:`\|D-x_0\|^2`, :math:`\lambda=s^4/a^2`): finite under heat dissipation, where
:math:`a_t` underflows; any of score_sde's weightings can be chosen.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray

from opdiff.diffusion.losses import dsm_loss
from opdiff.diffusion.processes import Process
from opdiff._checks import check_images, check_labels

__all__ = ["default_optimizer", "denoiser_loss", "drop_labels", "loss_summary", "per_level_mse",
           "train_denoiser"]


def drop_labels(key: PRNGKeyArray, y, p: float, n_classes: int):
    """Replace each label by the no-label token ``n_classes`` with probability ``p``."""
    return jnp.where(jax.random.uniform(key, jnp.shape(y)) < p, n_classes, y)


def denoiser_loss(process: Process, *, weighting: str = "denoiser", t_min: float | None = None,
                  label_dropout: float = 0.0, n_classes: int | None = None):
    """The engine's ``loss_fn(model, batch, key)`` for a denoiser model: ``batch`` is ``x`` or
    ``(x, y)``; ``model.batched(x, t[, y])`` is the denoiser."""
    if not 0.0 <= float(label_dropout) < 1.0:
        raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout!r}")

    def loss(model, batch, key):
        if isinstance(batch, (tuple, list)):
            x, y = batch
            k_drop, key = jax.random.split(key)
            if label_dropout > 0:
                y = drop_labels(k_drop, y, label_dropout, n_classes)

            def den(xt, t):
                return model.batched(xt, t, y)
        else:
            x, den = batch, model.batched
        return dsm_loss(den, process, x, key, weighting=weighting, parameterization="denoiser",
                        t_min=t_min)

    return loss


def default_optimizer(lr: float = 1e-3, steps: int = 1000, warmup: int | None = None,
                      clip: float = 1.0) -> optax.GradientTransformation:
    """Adam with gradient clipping, linear warm-up and cosine decay to 5 % (score_sde uses Adam
    2e-4, warm-up 5,000, clip 1 for CIFAR-10 scale; small problems train faster with more)."""
    warmup = max(1, min(steps // 10, 500)) if warmup is None else int(warmup)
    sched = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1),
                                               end_value=0.05 * lr)
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(sched))


def train_denoiser(model, process: Process, images, labels=None, *, steps: int,
                   key: PRNGKeyArray, batch_size: int = 128, optimizer=None, lr: float = 1e-3,
                   label_dropout: float = 0.1, weighting: str = "denoiser",
                   t_min: float | None = None, ema_decay: float | str | None = "auto",
                   steps_per_call: int = 1, workdir=None, checkpoint_every: int | None = None,
                   resume: bool = False, mesh=None, progress: bool | None = None,
                   callback=None):
    r"""Train ``model`` (a denoiser) by DSM on ``images`` for ``process``.

    Args:
        model: an nnx module with ``batched(x, t[, y])``; conditional models carry
            ``n_classes``.
        process: the forward process; ``images`` must have its sample shape.
        images: ``[N, *process.shape]`` floating data (already scaled/centred as the model
            expects).
        labels: ``[N]`` integer labels in ``[0, n_classes)`` for a conditional model.
        steps: total optimisation steps (counting those before a resume).
        key: PRNG key: step ``s`` uses ``fold_in(key, s)`` (batches, times, noise, dropout).
        batch_size: images per step (sharded over ``mesh``'s data axis when given).
        optimizer: an optax transformation (default :func:`default_optimizer` with ``lr``).
        label_dropout: probability of the no-label token per training label.
        weighting, t_min: the DSM loss (:func:`opdiff.diffusion.losses.dsm_loss`).
        ema_decay: EMA of the weights (``None``: none); sample from ``result.ema_params``.
            The engine's EMA starts at the initial weights, which keep a weight
            :math:`\beta^{\rm steps}` (0.999 over 500 steps: 61 % untrained), so ``"auto"``
            uses :math:`\min(0.999,\,1-10/\text{steps})` (initial weights' share
            :math:`\le e^{-10}`).
        steps_per_call: steps per jitted call. Keep 1 for conv nets on a CPU: XLA:CPU runs
            convolutions inside ``lax.scan`` about 10x slower (measured, notes/benchmarks.md).
        workdir, checkpoint_every, resume, mesh, progress, callback: as in :func:`opdiff.fit`.

    Returns:
        :class:`opdiff.train.TrainResult` (``params`` and ``ema_params`` are modules).
    """
    from opdiff.train import fit

    if not isinstance(process, Process):
        raise TypeError(f"process must be an opdiff Process, got {type(process).__name__}")
    if not hasattr(model, "batched"):
        raise TypeError(f"model must have a batched(x, t[, y]) method, got "
                        f"{type(model).__name__}")
    images = check_images("images", images, process.shape)
    n_classes = getattr(model, "n_classes", None)
    if labels is None:
        data = images
    else:
        labels = check_labels("labels", labels, images.shape[0], n_classes)
        data = (images, labels)
    if labels is None and label_dropout and n_classes is not None:
        raise ValueError("a class-conditional model (n_classes set) needs labels=; for an "
                         "unconditional model build it with n_classes=None")
    if optimizer is None:
        optimizer = default_optimizer(lr, steps)
    if ema_decay == "auto":
        ema_decay = min(0.999, 1.0 - 10.0 / max(steps, 11))
    elif isinstance(ema_decay, str):
        raise ValueError(f"ema_decay must be a float in (0, 1), None or 'auto', got {ema_decay!r}")
    loss = denoiser_loss(process, weighting=weighting, t_min=t_min,
                         label_dropout=label_dropout if labels is not None else 0.0,
                         n_classes=n_classes)
    return fit(loss, model, optimizer, data, steps=steps, key=key, batch_size=batch_size,
               steps_per_call=steps_per_call, mesh=mesh, ema_decay=ema_decay, workdir=workdir,
               checkpoint_every=checkpoint_every, resume=resume, progress=progress,
               callback=callback)


def per_level_mse(denoiser, process: Process, x0, key: PRNGKeyArray, ts) -> np.ndarray:
    r"""Monte-Carlo :math:`E\|D(x_t,t)-x_0\|^2` at each time in ``ts`` (one noise draw per
    image per time): ``[len(ts), N]`` per-image squared errors (sum over pixels), float64."""
    x0 = process.check_sample("x0", x0)
    out = []
    for i, t in enumerate(np.asarray(ts, np.float64)):
        xt = process.sample(jax.random.fold_in(key, i), x0, float(t))
        d = denoiser(xt, jnp.full((x0.shape[0],), t, x0.dtype))
        err = np.asarray(d, np.float64) - np.asarray(x0, np.float64)
        out.append(np.sum((err**2).reshape(x0.shape[0], -1), axis=1))
    return np.stack(out)


def loss_summary(losses, parts: int = 10) -> dict:
    """``{"loss_first", "loss_last"}``: the mean training loss over the first and the last
    ``max(1, steps // parts)`` steps (float64): how far training moved the loss."""
    losses = np.asarray(losses, np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D array, got shape {losses.shape}")
    k = max(1, len(losses) // parts)
    return {"loss_first": float(losses[:k].mean()), "loss_last": float(losses[-k:].mean())}
