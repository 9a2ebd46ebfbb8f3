r"""Truncated Fourier series on the torus :math:`[0,2\pi)` and an exact tail.

With :math:`f(x)=\sum_j c_j e^{ijx}` and :math:`S_Nf=\sum_{|j|\le N}c_je^{ijx}`, Parseval gives

.. math:: \|f-S_Nf\|^2_{L^2(dx/2\pi)} = \sum_{|j|>N}|c_j|^2 .

For :math:`f(x)=1/(a-\cos x)`, :math:`a>1`, the coefficients are
:math:`c_j=r^{|j|}/\sqrt{a^2-1}` with :math:`r=a-\sqrt{a^2-1}=e^{-\operatorname{arccosh}a}`,
so the tail is :math:`2r^{2(N+1)}/((a^2-1)(1-r^2))`: geometric, with the rate set by the
width :math:`\operatorname{arccosh} a` of the strip of analyticity.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

__all__ = [
    "grid",
    "coefficients",
    "evaluate",
    "inverse_cosine",
    "inverse_cosine_coefficients",
    "inverse_cosine_tail",
    "truncation_sq_errors",
]


def _check_a(a):
    if not a > 1.0:
        raise ValueError(f"a must be > 1 (f = 1/(a - cos x) has a pole otherwise), got {a!r}")


def grid(m: int, dtype=jnp.float64) -> Float[Array, " m"]:
    r"""``m`` equispaced points :math:`2\pi k/m` on the torus."""
    if not isinstance(m, int) or m < 1:
        raise ValueError(f"m must be a positive int, got {m!r}")
    return 2 * jnp.pi * jnp.arange(m, dtype=dtype) / m


def coefficients(values: Float[Array, " m"], n_max: int) -> Complex[Array, " 2*n_max+1"]:
    r"""Coefficients :math:`c_{-N..N}` from samples on :func:`grid` (trapezoid rule = FFT).

    Exact up to aliasing, :math:`\hat c_j=\sum_l c_{j+lm}`.

    Raises:
        ValueError: if ``values`` is not 1-D or ``2*n_max+1 > len(values)``.
    """
    values = jnp.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    m = values.shape[0]
    if not isinstance(n_max, int) or n_max < 0 or 2 * n_max + 1 > m:
        raise ValueError(f"n_max must be an int in [0, (m-1)/2] = [0, {(m - 1) // 2}], got {n_max!r}")
    return _coefficients(values, n_max)


@partial(jax.jit, static_argnums=1)
def _coefficients(values, n_max):
    m = values.shape[0]
    c = jnp.fft.fft(values) / m
    return jnp.concatenate([c[m - n_max :], c[: n_max + 1]])


def evaluate(coeffs: Complex[Array, " 2*n+1"], x: Float[Array, " p"]) -> Float[Array, " p"]:
    r"""Real part of :math:`\sum_{|j|\le N} c_j e^{ijx}` at arbitrary points ``x``."""
    coeffs = jnp.asarray(coeffs)
    if coeffs.ndim != 1 or coeffs.shape[0] % 2 == 0:
        raise ValueError(f"coeffs must have shape (2N+1,), got {coeffs.shape}")
    return _evaluate(coeffs, jnp.asarray(x))


@jax.jit
def _evaluate(coeffs, x):
    n = (coeffs.shape[0] - 1) // 2
    j = jnp.arange(-n, n + 1)
    phase = x[:, None] * j[None, :].astype(x.dtype)  # real
    # e^{i phase} in the coefficients' complex dtype (x's precision when they are real)
    ctype = coeffs.dtype if jnp.iscomplexobj(coeffs) else jnp.result_type(phase, jnp.complex64)
    ph = phase.astype(ctype)
    return jnp.real(jnp.exp(1j * ph) @ coeffs.astype(ctype))


def inverse_cosine(x, a: float):
    r""":math:`f(x)=1/(a-\cos x)`."""
    _check_a(a)
    return 1.0 / (a - jnp.cos(x))


def inverse_cosine_coefficients(a: float, n_max: int) -> np.ndarray:
    r"""Exact :math:`c_j=r^{|j|}/\sqrt{a^2-1}` for :math:`j=-N..N`."""
    _check_a(a)
    r = a - np.sqrt(a * a - 1.0)
    j = np.arange(-n_max, n_max + 1)
    return r ** np.abs(j) / np.sqrt(a * a - 1.0)


def inverse_cosine_tail(a: float, n) -> np.ndarray:
    r"""Exact :math:`\|f-S_Nf\|^2_{L^2(dx/2\pi)}=2r^{2(N+1)}/((a^2-1)(1-r^2))`, over ``n``."""
    _check_a(a)
    r = a - np.sqrt(a * a - 1.0)
    n = np.asarray(n, dtype=np.float64)
    return 2.0 * r ** (2.0 * (n + 1.0)) / ((a * a - 1.0) * (1.0 - r * r))


def truncation_sq_errors(f, orders, n_samples: int, *, oversample: int = 8) -> np.ndarray:
    r"""Mean squared error :math:`\|f-S_Nf\|^2` of the truncated Fourier series, per order
    :math:`N` in ``orders``, with coefficients from ``n_samples`` equispaced samples of ``f``.

    The error is measured on a grid ``oversample`` times finer, shifted by half a sample
    spacing so no evaluation point is a sample point; for :math:`N<n/2` and a smooth periodic
    :math:`f` it approximates :math:`\frac1{2\pi}\int_0^{2\pi}|f-S_Nf|^2`.

    Args:
        f: a :math:`2\pi`-periodic function, vectorised.
        orders: truncation orders :math:`N \ge 0`.
        n_samples: number of samples (at least :math:`2\max N+1`).
        oversample: refinement of the measuring grid.

    Returns:
        float64 array of squared errors, one per order.
    """
    values = f(grid(n_samples))
    x = grid(oversample * n_samples) + 0.5 / n_samples
    fx = np.asarray(f(x))
    out = []
    for n in np.asarray(orders):
        s_n = evaluate(coefficients(values, int(n)), x)
        out.append(float(np.mean((fx - np.asarray(s_n)) ** 2)))
    return np.asarray(out)
