"""Batched sampling of a learned denoiser: many samples in fixed-size batches (one compiled
sampler for any number of samples), unconditional, conditional or guided."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float, PRNGKeyArray

from opdiff.diffusion import samplers
from opdiff.diffusion.guidance import guided_denoiser
from opdiff.diffusion.models import prior_draws
from opdiff.diffusion.processes import Process

__all__ = ["generate"]


def generate(model, process: Process, key: PRNGKeyArray, n: int, *,
             x_train: Float[np.ndarray, "m *shape"], steps: int = 20,
             method: str = "ancestral", y=None, gamma: float | None = None,
             batch: int = 4096) -> Float[np.ndarray, "n *shape"]:
    """``n`` samples of ``model`` by ``method`` with ``steps`` steps on the log-SNR grid
    (:func:`opdiff.diffusion.samplers.log_snr_grid`), in batches of at most ``batch``.

    The denoiser is ``model.batched`` (labels ``y`` if given), or the guided denoiser
    :func:`opdiff.diffusion.guidance.guided_denoiser` with scale ``gamma`` and labels ``y``.
    Batch ``i`` uses ``fold_in(key, i)``: prior draws (:func:`prior_draws`, whose informative
    priors take ``x_train``'s moments) from ``fold_in(., 0)``, sampler noise from
    ``fold_in(., 1)``.

    Returns:
        float32 numpy ``[n, *process.shape]``.
    """
    ts = samplers.log_snr_grid(process, steps)
    if gamma is not None:
        y = np.asarray(y)
    out = []
    for i, lo in enumerate(range(0, n, batch)):
        hi = min(n, lo + batch)
        k = jax.random.fold_in(key, i)
        x_T = prior_draws(process, jax.random.fold_in(k, 0), hi - lo, x_train)
        if gamma is not None:
            den = guided_denoiser(model, y[lo:hi], gamma)
        elif y is not None:
            yb = jnp.asarray(np.asarray(y)[lo:hi], jnp.int32)

            def den(x, t, yb=yb):
                return model.batched(x, t, yb)
        else:
            den = model.batched
        out.append(np.asarray(samplers.sample(method, den, process, x_T, ts,
                                              key=jax.random.fold_in(k, 1))))
    return np.concatenate(out).astype(np.float32)
