r"""An MLP denoiser for low-dimensional data: :math:`D_\theta(x,t)\approx E[x_0\mid x_t=x]`.

The network sees the input scaled to unit variance and the noise level, and predicts the
clean sample in the EDM-style preconditioned form (Karras et al. 2022), written for a
process with scalar :math:`(a_t,s_t)`:

.. math:: D_\theta(x,t)=c_{\rm skip}\,x+c_{\rm out}\,F_\theta\big(c_{\rm in}x,\ 
          \phi(\log(s_t/a_t))\big),\quad c_{\rm in}=\frac1{\sqrt{a_t^2\sigma_d^2+s_t^2}},\
          c_{\rm skip}=\frac{a_t\sigma_d^2}{a_t^2\sigma_d^2+s_t^2},\
          c_{\rm out}=\frac{s_t\sigma_d}{\sqrt{a_t^2\sigma_d^2+s_t^2}},

with :math:`\sigma_d` the data scale and :math:`\phi` random Fourier features of the
log noise-to-signal ratio. :math:`c_{\rm skip}x` is the Wiener filter of data with variance
:math:`\sigma_d^2`, so an untrained network already denoises a Gaussian of that scale, and
:math:`F_\theta` only learns the correction. One example at a time; ``vmap`` over a batch (:meth:`batched`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.diffusion.processes import Process
from opdiff.nets._compat import nnx
from opdiff.nets.layers import Frozen
from opdiff.nets.mlp import MLP

__all__ = ["ScoreMLP"]


class ScoreMLP(nnx.Module):
    """A preconditioned MLP denoiser for ``dim``-dimensional samples.

    Args:
        process: the forward process (isotropic, sample shape ``(dim,)``); the network reads
            :math:`a_t, s_t` from it, so ``net(x, t)`` is the denoiser at time ``t``.
        width, depth: the MLP's hidden width and number of hidden layers.
        n_freq: random Fourier features of the noise level (``2 n_freq`` inputs).
        sigma_data: :math:`\\sigma_d`, the data's standard deviation per coordinate.
        key: PRNG key.
    """

    def __init__(self, process: Process, *, width: int = 128, depth: int = 3, n_freq: int = 16,
                 sigma_data: float = 1.0, activation: str = "silu", key: PRNGKeyArray):
        if not isinstance(process, Process):
            raise TypeError(f"process must be an opdiff Process, got {type(process).__name__}")
        if len(process.shape) != 1 or not process.isotropic:
            raise ValueError(f"ScoreMLP needs an isotropic process on vectors (shape (dim,)), "
                             f"got {process.name!r} with shape {process.shape}")
        dim = process.shape[0]
        if not isinstance(n_freq, int) or n_freq < 1:
            raise ValueError(f"n_freq must be a positive int, got {n_freq!r}")
        if not (isinstance(sigma_data, (int, float)) and sigma_data > 0):
            raise ValueError(f"sigma_data must be > 0, got {sigma_data!r}")
        k_net, k_freq = jax.random.split(key)
        self.process, self.dim, self.sigma_data = process, dim, float(sigma_data)
        # fixed (non-trainable) frequencies of the noise-level embedding
        self.freqs = Frozen(jax.random.normal(k_freq, (n_freq,)) * 2.0)
        self.net = MLP(dim + 2 * n_freq, dim, width=width, depth=depth, activation=activation,
                       key=k_net)

    def __call__(self, x: Float[Array, " dim"], t) -> Float[Array, " dim"]:
        """The denoiser at one point ``x`` and a scalar time ``t``."""
        if x.shape != (self.dim,):
            raise ValueError(f"x must have shape ({self.dim},) (one example), got {x.shape}")
        a = self.process.scale(t)[0].astype(x.dtype)
        s = self.process.std(t)[0].astype(x.dtype)
        sd2 = self.sigma_data**2
        var = a**2 * sd2 + s**2
        c_in, c_skip = 1 / jnp.sqrt(var), a * sd2 / var
        c_out = s * self.sigma_data / jnp.sqrt(var)
        level = jnp.log(s / a) / 4
        emb = 2 * math.pi * level * self.freqs[...]
        h = jnp.concatenate([c_in * x, jnp.sin(emb), jnp.cos(emb)])
        return c_skip * x + c_out * self.net(h)

    def batched(self, x: Float[Array, "batch dim"], t) -> Float[Array, "batch dim"]:
        """The denoiser on a batch, with one time per example (``[B]``) or one for all."""
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
        return jax.vmap(self)(x, t)
