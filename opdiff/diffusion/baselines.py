r"""Exact Gaussian baselines for learned image models, in float64 numpy whatever JAX's
precision: the orthonormal basis transforms, the exact log-density of a diagonal Gaussian
field, and exact draws of a diagonal Gaussian law (e.g. a sampler's output law from
:func:`opdiff.diffusion.oracle.sampler_law`).

A field :math:`N(\mu,\Sigma)` with :math:`\Sigma=B^\top\mathrm{diag}(\lambda)B` in an
orthonormal basis :math:`B` has

.. math:: \log p(x)=-\tfrac12\sum_k\Big[\frac{(Bx-\mu)_k^2}{\lambda_k}+\log(2\pi\lambda_k)\Big]

(:math:`|\det B|=1`, so the density in coefficients is the density in pixels).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft
from jaxtyping import Float, PRNGKeyArray

from opdiff.diffusion import transforms as _transforms
from opdiff.diffusion import oracle

__all__ = ["gaussian_bits_per_dim", "gaussian_log_density", "law_samples", "to_basis64"]


def to_basis64(x, basis: str, ndim: int) -> np.ndarray:
    """:func:`opdiff.diffusion.transforms.to_basis` in float64 numpy over the last ``ndim`` axes:
    the orthonormal DCT-II (``scipy.fft.dctn``), the unitary Hartley transform
    :math:`(\\mathrm{Re}\\,F-\\mathrm{Im}\\,F)/\\sqrt N` (``dft``) or the identity."""
    x = np.asarray(x, np.float64)
    axes = tuple(range(-ndim, 0))
    if _transforms.check_basis(basis) == "identity" or ndim == 0:
        return x
    if basis == "dct":
        return scipy.fft.dctn(x, type=2, axes=axes, norm="ortho")
    f = np.fft.fftn(x, axes=axes)
    return (f.real - f.imag) / math.sqrt(math.prod(x.shape[-ndim:]))


def gaussian_log_density(x: Float[np.ndarray, "n *shape"], field: oracle.GaussianField
                         ) -> Float[np.ndarray, " n"]:
    r"""Exact :math:`\log N(x;\mu,\Sigma)` per image of a diagonal Gaussian field (formula in
    the module docstring), in nats.

    Raises:
        TypeError: ``field`` is not an :class:`opdiff.diffusion.oracle.GaussianField`.
        ValueError: ``x`` is not ``[n, *field.shape]``.
    """
    if not isinstance(field, oracle.GaussianField):
        raise TypeError(f"field must be an oracle.GaussianField, got {type(field).__name__}")
    x = np.asarray(x, np.float64)
    nd = len(field.shape)
    if x.ndim != nd + 1 or tuple(x.shape[1:]) != field.shape:
        raise ValueError(f"x must have shape [n, {', '.join(map(str, field.shape))}], got "
                         f"{x.shape}")
    z = to_basis64(x, field.basis, nd)
    r = (z - field.mean) ** 2 / field.var + np.log(2 * np.pi * field.var)
    return -0.5 * r.reshape(len(x), -1).sum(axis=1)


def gaussian_bits_per_dim(x: Float[np.ndarray, "n *shape"], field: oracle.GaussianField, *,
                          bin_width: float):
    """Exact bits/dim per (dequantised) image of ``x`` under the field:
    :func:`opdiff.diffusion.likelihood.bits_per_dim` of :func:`gaussian_log_density`."""
    from opdiff.diffusion.likelihood import bits_per_dim

    return bits_per_dim(gaussian_log_density(x, field), math.prod(field.shape),
                        bin_width=bin_width)


def law_samples(key: PRNGKeyArray, n: int, m, w, basis: str) -> Float[np.ndarray, "n *shape"]:
    r"""``n`` exact draws (float32) of :math:`B^\top z`, :math:`z\sim N(m,\mathrm{diag}\,w)`
    per coefficient in ``basis`` (``m``, ``w`` of one shape, the image shape).

    Raises:
        ValueError: shapes differ, or ``w`` is negative or non-finite.
    """
    m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
    if m.shape != w.shape or np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ValueError("m and w must have one shape and w must be finite and >= 0")
    z = m + np.sqrt(w) * np.asarray(jax.random.normal(key, (int(n), *m.shape)), np.float64)
    return np.asarray(_transforms.from_basis(jnp.asarray(z, jnp.float32), basis, m.ndim),
                      np.float32)
