r"""Preconditioning of any denoiser network for any diagonal forward process.

For a process :math:`z_t=a_t\odot z_0+s_t\odot\varepsilon` in its basis :math:`z=Bx` and data
with mean :math:`\mu` and per-coefficient scale :math:`\sigma_{d,k}` (a scalar, or a spectrum),
the denoiser is written, per coefficient :math:`k` (Karras et al. 2022, generalised from a
scalar noise level to a diagonal process):

.. math:: D(x,t,y)=\mu+c_{\rm skip}\odot(z-a_t\mu)
          +c_{\rm out}\odot B\,F_\theta\!\big(B^\top[c_{\rm in}\odot(z-a_t\mu)],\,t,\,y\big),

.. math:: v_k=a_k^2\sigma_{d,k}^2+s_k^2,\quad c_{\rm in}=v^{-1/2},\quad
          c_{\rm skip}=a\sigma_d^2/v,\quad c_{\rm out}=s\,\sigma_d\,v^{-1/2}.

:math:`\mu+c_{\rm skip}(z-a\mu)` is the Wiener filter (the exact denoiser) of the Gaussian with
mean :math:`\mu` and variances :math:`\sigma_d^2`, so an untrained network whose output starts
at zero is already that linear denoiser, the network's input has unit variance per
coefficient, and its target :math:`(z_0-\mu-c_{\rm skip}(z-a\mu))/c_{\rm out}` too. Under heat
dissipation :math:`a_k` underflows at high frequencies: there :math:`c_{\rm skip}\to0` and
:math:`c_{\rm out}\to\sigma_d`, i.e. the network predicts the lost detail, as IHDM does.

With ``skip=False`` the skip path is dropped, :math:`D=\mu+\sigma_d\odot BF_\theta`: pure
:math:`x_0`-prediction, the form in which an operator network's output lies in the span of
its trunk functions (the PCA floor of :mod:`opdiff.deeponet_bounds` then applies).

The wrapped network is ``net(x_in, t)`` or ``net(x_in, t, y)`` on one example (e.g.
:class:`opdiff.nets.UNet` with ``residual=False``, or
:class:`opdiff.nets.OperatorDenoiser`); ``vmap`` is in :meth:`Preconditioned.batched`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from opdiff._checks import check_images, check_labels
from opdiff.diffusion.processes import Process
from opdiff.nets._compat import nnx
from opdiff.nets.layers import Frozen

__all__ = ["Preconditioned"]


class Preconditioned(nnx.Module):
    r"""A denoiser :math:`D(x,t[,y])` from a network :math:`F_\theta` and a process.

    Args:
        net: the network ``net(x, t[, y])`` on one example of the process's sample shape;
            it should output zero at initialisation (then ``D`` starts as the Wiener filter).
        process: the forward process (the basis and :math:`a_t, s_t` per coefficient).
        sigma_data: :math:`\sigma_d`, a positive scalar or per-coefficient array of the
            process's shape (the data's standard deviation in the process basis).
        mean: :math:`\mu`, the data mean: a scalar or an image of the sample shape (pixels).
        skip: keep the skip path (default) or predict :math:`x_0` only (see module docstring).
        n_classes: classes of ``net``'s label input (``None``: unconditional); label
            ``n_classes`` is the no-label token of classifier-free guidance.
    """

    def __init__(self, net, process: Process, *, sigma_data=1.0, mean=0.0, skip: bool = True,
                 n_classes: int | None = None):
        if not isinstance(process, Process):
            raise TypeError(f"process must be an opdiff Process, got {type(process).__name__}")
        sd = np.asarray(sigma_data, np.float64)
        if sd.ndim and sd.shape != process.shape:
            raise ValueError(f"sigma_data must be a scalar or have the process shape "
                             f"{process.shape}, got shape {sd.shape}")
        if not (np.all(np.isfinite(sd)) and np.all(sd > 0)):
            raise ValueError("sigma_data must be finite and > 0")
        mu = np.asarray(mean, np.float64)
        if mu.ndim and mu.shape != process.shape:
            raise ValueError(f"mean must be a scalar or an image of shape {process.shape}, got "
                             f"shape {mu.shape}")
        if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(n_classes, int)
                                      or n_classes < 1):
            raise ValueError(f"n_classes must be a positive int or None, got {n_classes!r}")
        self.net, self.process, self.skip, self.n_classes = net, process, bool(skip), n_classes
        self.shape = tuple(process.shape)
        self.sigma_data = Frozen(jnp.asarray(np.broadcast_to(sd, process.shape), jnp.float32))
        mu_z = process.to_basis(jnp.asarray(np.broadcast_to(mu, process.shape), jnp.float32))
        self.mean_z = Frozen(jnp.asarray(mu_z, jnp.float32))

    def coefficients(self, t) -> tuple[Array, Array, Array]:
        r""":math:`(c_{\rm in}, c_{\rm skip}, c_{\rm out})` per coefficient at time ``t``."""
        a = self.process.scale(t).astype(jnp.float32)
        s = self.process.std(t).astype(jnp.float32)
        sd = self.sigma_data[...]
        v = a**2 * sd**2 + s**2
        c_in = jax.lax.rsqrt(v)
        if not self.skip:
            return c_in, jnp.zeros_like(v), sd
        return c_in, a * sd**2 / v, s * sd * c_in

    def __call__(self, x: Float[Array, "*shape"], t, y=None) -> Float[Array, "*shape"]:
        """The denoiser at one sample ``x``, scalar time ``t`` and optional label ``y``."""
        if tuple(x.shape) != self.shape:
            raise ValueError(f"x must have shape {self.shape} (one sample; vmap over a batch, "
                             f"or use .batched), got {tuple(x.shape)}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x must be floating-point, got dtype {x.dtype}")
        if y is not None and self.n_classes is None:
            raise ValueError("labels y were given to an unconditional model (n_classes=None)")
        dtype = x.dtype
        c_in, c_skip, c_out = self.coefficients(t)
        a = self.process.scale(t).astype(jnp.float32)
        mu = self.mean_z[...]
        zc = self.process.to_basis(x.astype(jnp.float32)) - a * mu
        x_in = self.process.from_basis(c_in * zc).astype(dtype)
        t = jnp.asarray(t, dtype)
        out = self.net(x_in, t) if self.n_classes is None else self.net(
            x_in, t, self.n_classes if y is None else y)
        z = mu + c_skip * zc + c_out * self.process.to_basis(out.astype(jnp.float32))
        return self.process.from_basis(z).astype(dtype)

    def batched(self, x: Float[Array, "B *shape"], t, y=None) -> Float[Array, "B *shape"]:
        """The denoiser on a batch, with one time per example (``[B]``) or one for all, and
        optional labels ``[B]`` (or one for all)."""
        x = check_images("x", x, self.shape)
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
        if y is None:
            return jax.vmap(lambda xi, ti: self(xi, ti))(x, t)
        y = check_labels("labels y", y, x.shape[0], self.n_classes, allow_null=True)
        return jax.vmap(self)(x, t, y)
