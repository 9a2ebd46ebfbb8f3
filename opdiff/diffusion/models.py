r"""Learned image denoisers ready to train: a forward process by name, a preconditioned U-Net or
DeepONet denoiser scaled to the data, the prior draws of a process, and the Gaussian whose exact
denoiser *is* the untrained model.

**Preconditioning at initialisation.** :class:`~opdiff.diffusion.preconditioned.Preconditioned`
wraps a network
:math:`F` whose output starts at zero; the denoiser is then exactly the Wiener filter of
:math:`N(\bar x,\sigma_d^2 I)`, with :math:`\bar x` the mean training image and
:math:`\sigma_d` the data scale of :func:`data_scale` (the scalar pixel standard deviation, or
one per coefficient of the process basis). :func:`wiener_start` returns that Gaussian as an
:class:`opdiff.diffusion.oracle.GaussianField`, so the oracle gives the untrained model's
sampler output law in closed form.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Float, PRNGKeyArray

from opdiff.diffusion import oracle, processes
from opdiff.diffusion.baselines import to_basis64
from opdiff.diffusion.preconditioned import Preconditioned
from opdiff.nets import OperatorDenoiser, UNet

__all__ = ["PROCESS_KINDS", "data_scale", "make_operator_denoiser", "make_process",
           "make_unet_denoiser", "prior_draws", "wiener_start"]

PROCESS_KINDS = ("white", "pink", "heat", "blurring", "ve")


def make_process(kind: str, shape, *, heat_sigma: float = 0.01) -> processes.Process:
    r"""A forward process by name: ``white`` (VP, identity basis), ``pink`` (VP with
    :math:`1/|k|` noise power in the DCT basis), ``heat`` (heat dissipation, DCT, noise
    ``heat_sigma``), ``blurring`` (DCT) or ``ve`` (:math:`\sigma_{\max}=20`).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "white":
        return processes.vp(shape)
    if kind == "pink":
        return processes.coloured(shape, "pink", basis="dct")
    if kind == "heat":
        return processes.heat_dissipation(shape, sigma=heat_sigma)
    if kind == "blurring":
        return processes.blurring(shape)
    if kind == "ve":
        return processes.ve(shape, sigma_max=20.0)
    raise ValueError(f"unknown process kind {kind!r}; choose from {PROCESS_KINDS}")


def data_scale(process: processes.Process, x: Float[np.ndarray, "n *shape"], *,
               spectral: bool = False):
    r"""``(sigma_data, mean)`` for :class:`~opdiff.diffusion.preconditioned.Preconditioned`.

    ``mean`` is the pixel mean image :math:`\bar x`; ``sigma_data`` the scalar
    :math:`\sigma_d=\mathrm{sd}(x-\bar x)` over all pixels (default), or, with
    ``spectral=True``, the per-coefficient standard deviation of :math:`B(x-\bar x)` in the
    process basis :math:`B`, floored at :math:`10^{-3}` times the root mean variance.
    """
    mean = x.mean(axis=0)
    if not spectral:
        return float((x - mean).std()), mean
    z = np.asarray(process.to_basis(jnp.asarray(x - mean)), np.float64)
    sd = np.sqrt(np.maximum(z.var(axis=0), 1e-6 * z.var(axis=0).mean()))
    return sd, mean


def make_unet_denoiser(process: processes.Process, x_train: Float[np.ndarray, "n *shape"], *,
                       channels=(16, 32), emb_dim: int = 32, n_classes: int | None = None,
                       key: PRNGKeyArray, spectral_scale: bool = False) -> Preconditioned:
    """A :class:`Preconditioned` :class:`UNet` (no residual path; zero output at init, so it
    starts as the Wiener filter of the data's mean and scale, :func:`wiener_start`)."""
    sd, mean = data_scale(process, x_train, spectral=spectral_scale)
    net = UNet(process.shape, channels=tuple(channels), emb_dim=emb_dim, n_classes=n_classes,
               residual=False, key=key)
    return Preconditioned(net, process, sigma_data=sd, mean=mean, n_classes=n_classes)


def make_operator_denoiser(process: processes.Process, x_train: Float[np.ndarray, "n *shape"],
                           *, p: int = 64, width: int = 256, depth: int = 2, skip: bool = True,
                           n_classes: int | None = None, key: PRNGKeyArray,
                           spectral_scale: bool = False) -> Preconditioned:
    """A :class:`Preconditioned` DeepONet denoiser (:class:`OperatorDenoiser` with ``p`` basis
    functions and a branch MLP of ``depth`` layers of ``width``; ``skip`` keeps the
    preconditioner's skip path)."""
    sd, mean = data_scale(process, x_train, spectral=spectral_scale)
    net = OperatorDenoiser(process.shape, p=p, branch_width=width, branch_depth=depth,
                           n_classes=n_classes, key=key)
    return Preconditioned(net, process, sigma_data=sd, mean=mean, skip=skip,
                          n_classes=n_classes)


def prior_draws(process: processes.Process, key: PRNGKeyArray, n: int,
                x_train: Float[np.ndarray, "m *shape"]):
    r"""``n`` prior samples ``[n, *shape]``; an informative prior (heat dissipation,
    :math:`N(a_T\mu,a_T^2\Lambda+\sigma^2)`) gets the mean and variance of ``x_train`` in the
    process basis."""
    if process.informative_prior:
        z = np.asarray(process.to_basis(jnp.asarray(x_train)), np.float64)
        return process.sample_prior(key, n, z.mean(0), z.var(0))
    return process.sample_prior(key, n)


def wiener_start(process: processes.Process, x_train: Float[np.ndarray, "n *shape"]
                 ) -> oracle.GaussianField:
    r"""The Gaussian whose exact denoiser is an untrained :func:`make_unet_denoiser` (zero
    network output): mean :math:`B\bar x` (the mean training image in the DCT basis :math:`B`),
    variance :math:`\sigma_d^2` in every coefficient (the scalar ``sigma_data`` of
    :func:`data_scale`), DCT basis — valid for the DCT processes and, the variance being
    isotropic, for the pixel-basis ones."""
    sd, mean = data_scale(process, np.asarray(x_train))
    mu = to_basis64(mean, "dct", mean.ndim)
    return oracle.GaussianField(tuple(mean.shape), "dct", mu, sd**2)
