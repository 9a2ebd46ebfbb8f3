r"""Building blocks shared by several networks: non-trainable arrays and the time embedding.

- :class:`Frozen`: an array held by a model that the engine does not train (random Fourier
  frequencies, POD modes, a preconditioner's data scale, a random-feature hidden layer).
- :func:`time_embedding`: the sinusoidal embedding of a diffusion time that the U-Net and the
  operator denoiser read.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from opdiff.nets._compat import nnx

__all__ = ["Frozen", "avg_pool2", "time_embedding"]


class Frozen(nnx.Variable):
    """A non-trainable array (the engine trains ``nnx.Param`` only)."""


def time_embedding(t, dim: int) -> Float[Array, " 2*(dim//2)"]:
    r"""Sinusoidal embedding of a scalar time ``t`` (DDPM's, with the time scaled by 1,000).

    With :math:`K=\lfloor\mathrm{dim}/2\rfloor` frequencies spaced geometrically from 1 down to
    :math:`10^{-4}`,

    .. math:: \omega_k=10^{-4k/\max(K-1,1)},\quad k=0,\dots,K-1,\qquad
              e(t)=\big(\sin(1000\,t\,\omega_k)\big)_k\ \Vert\ \big(\cos(1000\,t\,\omega_k)\big)_k,

    so ``e(0)`` is ``K`` zeros then ``K`` ones, and the first entry :math:`\sin(1000t)` resolves
    times :math:`\sim10^{-3}` apart while the last varies on the scale :math:`t\sim10`.

    Args:
        t: the time, a scalar (traced under ``jit``/``vmap`` is fine); its dtype is kept.
        dim: the embedding size; an odd ``dim`` gives ``dim - 1`` entries.

    Returns:
        ``[2 K]``: the sines, then the cosines.
    """
    half = dim // 2
    t = jnp.asarray(t)
    dtype = t.dtype if jnp.issubdtype(t.dtype, jnp.floating) else jnp.result_type(float)
    freqs = jnp.exp(-math.log(1e4) * jnp.arange(half, dtype=dtype) / max(half - 1, 1))
    ang = 1000.0 * t * freqs
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)])


def avg_pool2(h: Float[Array, "H W C"]) -> Float[Array, "H//2 W//2 C"]:
    r"""Mean over non-overlapping 2x2 windows, :math:`h'_{ij}=\tfrac14\sum_{a,b\in\{0,1\}}
    h_{2i+a,2j+b}` (flax's ``avg_pool``; an odd trailing row or column is dropped).

    flax divides the window sum by a NumPy int64 window size, a mix that jax's strict dtype
    promotion refuses; the division runs under standard promotion here (the result keeps
    ``h``'s dtype either way), so the networks work in a strict-promotion program.
    """
    with jax.numpy_dtype_promotion("standard"):
        return nnx.avg_pool(h, (2, 2), strides=(2, 2))
