r"""Orthonormal real transforms (bases of the sample grid) in which the forward processes are
diagonal. (:mod:`opdiff.approx.bases` holds function bases on an interval, for least squares.)

A forward process acts on a sample :math:`x` of a fixed shape (a vector, a 1-D signal, an
image) through its coefficients :math:`z=Bx` in an orthonormal basis :math:`B`:

- ``"identity"``: :math:`z=x` (pixels; for isotropic processes and for dense data);
- ``"dft"``: the unitary **Hartley** transform
  :math:`z=N^{-1/2}(\mathrm{Re}\,\mathcal F x-\mathrm{Im}\,\mathcal F x)`, :math:`N` the number
  of points. It is real, orthonormal and its own inverse, and its basis functions
  :math:`\operatorname{cas}(2\pi k\cdot j/n)=\cos+\sin` are eigenvectors of every symmetric
  circulant matrix — the covariance of a stationary field on the torus and the periodic heat
  semigroup — with the same eigenvalue as the Fourier mode :math:`k` (which equals that of
  :math:`-k`). So it diagonalises exactly what the DFT does, without complex numbers;
- ``"dct"``: the orthonormal DCT-II along every axis (reflective / Neumann boundaries, the
  basis of inverse heat dissipation and blurring diffusion).

:func:`angular_frequencies` gives each coefficient's angular wavenumber per pixel
:math:`\kappa` (``dft``: :math:`2\pi k_i/n_i` with :math:`k_i` in ``fftfreq`` order; ``dct``:
:math:`\pi m_i/n_i`), so the Laplacian eigenvalue (grid spacing 1) is :math:`|\kappa|^2` — for
the DCT this is IHDM's :math:`\lambda_{n,m}=\pi^2(n^2+m^2)/N^2`. The radial frequency in cycles
per pixel is :math:`|\kappa|/2\pi` (:func:`radial_frequency`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import jax.scipy.fft as jsfft
import numpy as np
import scipy.fft
from jaxtyping import Array

__all__ = [
    "BASES",
    "angular_frequencies",
    "check_basis",
    "cycles_squared",
    "from_basis",
    "laplacian_eigenvalues",
    "radial_frequency",
    "to_basis",
    "to_basis_host",
]

BASES = ("identity", "dft", "dct")


def check_basis(basis: str) -> str:
    if not isinstance(basis, str) or basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    return basis


def _axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


def to_basis(x: Array, basis: str, ndim: int) -> Array:
    """Coefficients of ``x`` in ``basis`` over its last ``ndim`` axes (leading axes are batch).

    Args:
        x: real array ``[..., *shape]``.
        basis: ``"identity"``, ``"dft"`` (unitary Hartley) or ``"dct"`` (orthonormal DCT-II).
        ndim: the number of trailing (spatial) axes transformed.
    """
    if basis == "identity" or ndim == 0:
        return x
    axes = _axes(ndim)
    if basis == "dft":
        n = math.prod(x.shape[-ndim:])
        f = jnp.fft.fftn(x, axes=axes)
        return ((f.real - f.imag) / math.sqrt(n)).astype(x.dtype)
    if basis == "dct":
        return jsfft.dctn(x, type=2, axes=axes, norm="ortho")
    raise ValueError(f"basis must be one of {BASES}, got {basis!r}")


def to_basis_host(x, basis: str, ndim: int) -> np.ndarray:
    """:func:`to_basis` on the host in float64, with NumPy/SciPy (``numpy.fft.fftn`` for the
    Hartley transform, ``scipy.fft.dctn`` for the DCT-II): float64 statistics of float32
    samples whatever JAX's x64 setting, and a transform independent of the JAX one.

    Args:
        x: real array ``[..., *shape]`` (numpy or jax; cast to float64).
        basis: ``"identity"``, ``"dft"`` or ``"dct"``.
        ndim: the number of trailing axes transformed.
    """
    check_basis(basis)
    x = np.asarray(x, dtype=np.float64)
    if basis == "identity" or ndim == 0:
        return x
    axes = _axes(ndim)
    if basis == "dft":
        f = np.fft.fftn(x, axes=axes)
        return (f.real - f.imag) / math.sqrt(math.prod(x.shape[-ndim:]))
    return scipy.fft.dctn(x, type=2, axes=axes, norm="ortho")


def from_basis(z: Array, basis: str, ndim: int) -> Array:
    """The inverse of :func:`to_basis` (its transpose: every basis is orthonormal)."""
    if basis == "identity" or ndim == 0:
        return z
    if basis == "dft":  # the unitary Hartley transform is an involution
        return to_basis(z, basis, ndim)
    if basis == "dct":
        return jsfft.idctn(z, type=2, axes=_axes(ndim), norm="ortho")
    raise ValueError(f"basis must be one of {BASES}, got {basis!r}")


def angular_frequencies(shape: tuple[int, ...], basis: str) -> np.ndarray:
    r"""Per-axis angular wavenumbers :math:`\kappa_i` of every coefficient: ``[*shape, ndim]``.

    ``identity`` has no frequencies (zeros).
    """
    check_basis(basis)
    if basis == "dft":
        ks = [2 * np.pi * np.fft.fftfreq(n, 1.0 / n) / n for n in shape]
    elif basis == "dct":
        ks = [np.pi * np.arange(n) / n for n in shape]
    else:
        ks = [np.zeros(n) for n in shape]
    return np.stack(np.meshgrid(*ks, indexing="ij"), axis=-1)


def laplacian_eigenvalues(shape: tuple[int, ...], basis: str) -> np.ndarray:
    r""":math:`\lambda=|\kappa|^2` per coefficient (float64, ``shape``): :math:`-\Delta` in the basis."""
    return np.sum(angular_frequencies(shape, basis) ** 2, axis=-1)


def radial_frequency(shape: tuple[int, ...], basis: str) -> np.ndarray:
    r"""Radial frequency :math:`|\kappa|/2\pi` in cycles per pixel, per coefficient (``shape``)."""
    return np.sqrt(laplacian_eigenvalues(shape, basis)) / (2 * np.pi)


def cycles_squared(shape: tuple[int, ...], basis: str) -> np.ndarray:
    r""":math:`|k|^2` per coefficient with :math:`|k|` in cycles per *longest* image side,
    :math:`\lambda\,(\max_i n_i/2\pi)^2`: the same physical frequency gets the same value on
    any grid (integers :math:`k_1^2+k_2^2` on a square DFT grid, up to rounding)."""
    return laplacian_eigenvalues(shape, basis) * (max(shape) / (2 * np.pi)) ** 2
