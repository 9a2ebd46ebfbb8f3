r"""Classifier-free guidance (Ho & Salimans 2022) for a label-dropout-trained denoiser.

The guided score with scale :math:`\gamma` is

.. math:: \nabla\log p_\gamma(x_t\mid y)=(1-\gamma)\nabla\log p_t(x_t)
          +\gamma\nabla\log p_t(x_t\mid y)
          =\nabla\log p_t(x_t)+\gamma\nabla\log p_t(y\mid x_t),

the score of :math:`p_t(x)\,p_t(y\mid x)^\gamma` (up to normalisation): :math:`\gamma=0` is
unconditional, :math:`\gamma=1` conditional, :math:`\gamma>1` sharpens the classifier
implied by the two models. Since a score is affine in the denoiser,
:math:`\hat s=(a_t\odot D-z)/s_t^2`, the same combination of **denoisers**,
:math:`D_\gamma=(1-\gamma)D(x,t,\varnothing)+\gamma D(x,t,y)`, gives exactly that score, for
every process (noise or blur); the samplers of :mod:`opdiff.diffusion.samplers` take
:math:`D_\gamma` unchanged.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from opdiff._checks import check_labels

__all__ = ["guided_denoiser"]


def guided_denoiser(model, y, gamma: float):
    r"""The guided denoiser :math:`D_\gamma(x,t)` on a batch, for labels ``y``.

    Args:
        model: a class-conditional denoiser (``model.n_classes`` set, trained with label
            dropout) with ``batched(x, t, y)``; label ``n_classes`` is the no-label token.
        y: the class of every sample, an int, or ``[B]`` ints in ``[0, n_classes)``.
        gamma: the guidance scale :math:`\gamma\ge0` (0: unconditional, 1: conditional), or
            one per sample ``[B]`` (a whole sweep in one sampler call, compiled once).

    Returns:
        ``denoiser(x, t)`` for :func:`opdiff.diffusion.samplers.sample` (one closure per call:
        the samplers compile once per denoiser).

    Raises:
        ValueError: for an unconditional model, labels out of range, or ``gamma < 0``.
    """
    n_classes = getattr(model, "n_classes", None)
    if n_classes is None:
        raise ValueError("classifier-free guidance needs a class-conditional model trained with "
                         "label dropout (n_classes set); this model is unconditional")
    if not hasattr(model, "batched"):
        raise TypeError(f"model must have batched(x, t, y), got {type(model).__name__}")
    g = np.asarray(gamma, np.float64)
    if g.ndim > 1 or not np.all(g >= 0):
        raise ValueError(f"gamma must be >= 0 (a scalar or one value per sample), got {gamma!r}")
    y_arr = jnp.asarray(y)
    check_labels("labels y", y_arr.reshape(-1), y_arr.size, n_classes)
    scalar = g.ndim == 0
    gamma_v = float(g) if scalar else jnp.asarray(g, jnp.float32)

    def denoiser(x, t):
        yb = jnp.broadcast_to(y_arr, x.shape[:1])
        if scalar and gamma_v == 1.0:
            return model.batched(x, t, yb)
        null = jnp.full(x.shape[:1], n_classes, jnp.int32)
        if scalar and gamma_v == 0.0:
            return model.batched(x, t, null)
        # one batched call on [uncond; cond] (the usual 2B trick)
        both = model.batched(jnp.concatenate([x, x]), jnp.concatenate(
            [jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])] * 2),
            jnp.concatenate([null, yb.astype(jnp.int32)]))
        d_u, d_c = both[: x.shape[0]], both[x.shape[0]:]
        gb = jnp.asarray(gamma_v, x.dtype)
        gb = gb.reshape(gb.shape + (1,) * (x.ndim - gb.ndim)) if gb.ndim else gb
        return (1.0 - gb) * d_u + gb * d_c

    return denoiser
