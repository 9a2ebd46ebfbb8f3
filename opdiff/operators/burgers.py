r"""Viscous Burgers :math:`u_t+uu_x=\nu u_{xx}` on the periodic unit interval, ETDRK4.

**Space.** Fourier pseudo-spectral on the grid :math:`x_j=j/N`: with
:math:`\hat u_\kappa` the rFFT coefficients and :math:`\xi=2\pi\kappa`,

.. math:: \partial_t\hat u=\underbrace{-\nu\xi^2}_{L}\hat u
          \underbrace{-\tfrac{i\xi}2\,P\,\widehat{u^2}}_{N(\hat u)},

where the product :math:`u^2` is formed on the grid and :math:`P` zeroes the modes
:math:`|\kappa|>N/3` (Orszag's 2/3 rule: the aliases of the kept modes land on the zeroed
ones). The Nyquist mode is always zeroed in :math:`N`.

**Time.** ETDRK4 of Cox–Matthews with the coefficients of Kassam–Trefethen (SIAM J. Sci.
Comput. 26, 2005): :math:`E=e^{hL}`, :math:`E_2=e^{hL/2}` and

.. math:: Q=h\,\varphi\!\left(\tfrac{hL}2\right)\!/2,\quad
          f_1=h\frac{-4-z+e^z(4-3z+z^2)}{z^3},\quad
          f_2=h\frac{2+z+e^z(z-2)}{z^3},\quad
          f_3=h\frac{-4-3z-z^2+e^z(4-z)}{z^3},\quad z=hL,

each evaluated as the mean over 64 points of a unit circle around :math:`z` (no cancellation
for small :math:`|z|`), in float64 numpy on the host and then cast to the working precision.
Fourth order in time; the stiff diffusion is integrated exactly.

**Exact solution** (tests): Cole–Hopf :math:`u=-2\nu\varphi_x/\varphi` with
:math:`\varphi_t=\nu\varphi_{xx}`, :math:`\varphi_0=\exp(-\frac1{2\nu}\int_0^xu_0)`; for
:math:`u_0=\sin2\pi x`, :math:`\varphi_0=e^{-a}\,e^{a\cos2\pi x}`, :math:`a=1/(4\pi\nu)`, whose
Fourier coefficients are the modified Bessel values :math:`I_n(a)`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from opdiff.operators._validate import check_batch, check_int, check_real, float_dtype, is_tracer

__all__ = ["burgers", "cole_hopf", "grid", "etdrk4_coefficients", "dealias_mask"]

_CONTOUR_POINTS = 64


def grid(n: int, dtype=None) -> Float[Array, " n"]:
    """The periodic grid :math:`x_j=j/n`, ``j = 0..n-1``; ``dtype`` defaults to the default
    float (float32, or float64 under x64)."""
    n = check_int("n", n, minimum=4)
    return jnp.arange(n, dtype=dtype if dtype is not None else float_dtype()) / n


def dealias_mask(n: int) -> np.ndarray:
    """1.0 for the rFFT bins ``kappa <= n/3`` kept by the 2/3 rule, else 0.0 (Nyquist: 0)."""
    kappa = np.arange(n // 2 + 1)
    keep = 3 * kappa <= n
    if n % 2 == 0:
        keep[-1] = False
    return keep.astype(np.float64)


def etdrk4_coefficients(lin: np.ndarray, h: float) -> dict[str, np.ndarray]:
    r"""Kassam–Trefethen ETDRK4 coefficients for a diagonal linear part ``lin`` (real, <= 0)
    and step ``h``, in float64: ``E, E2, Q, f1, f2, f3`` (see the module docstring)."""
    lin = np.asarray(lin, np.float64)
    z = h * lin
    r = np.exp(1j * np.pi * (np.arange(1, _CONTOUR_POINTS + 1) - 0.5) / _CONTOUR_POINTS)
    lr = z[:, None] + r[None, :]
    elr = np.exp(lr)
    return {
        "E": np.exp(z),
        "E2": np.exp(z / 2),
        "Q": h * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1)),
        "f1": h * np.real(np.mean((-4 - lr + elr * (4 - 3 * lr + lr**2)) / lr**3, axis=1)),
        "f2": h * np.real(np.mean((2 + lr + elr * (lr - 2)) / lr**3, axis=1)),
        "f3": h * np.real(np.mean((-4 - 3 * lr - lr**2 + elr * (4 - lr)) / lr**3, axis=1)),
    }


def burgers(
    u0: Float[Array, "n_funcs n"],
    *,
    nu: float,
    t_final: float,
    nt: int,
    save_every: int | None = None,
) -> Float[Array, "n_funcs ..."]:
    r"""Solve :math:`u_t+uu_x=\nu u_{xx}` on :math:`[0,1)` periodic from ``u0`` on :func:`grid`.

    Args:
        u0: initial values on :math:`x_j=j/n`, shape ``(n_funcs, n)``, ``n >= 4``.
        nu: viscosity, ``> 0`` (a Python number: the ETDRK4 coefficients are computed on the
            host).
        t_final: final time, ``> 0`` (a Python number).
        nt: ETDRK4 steps, ``>= 1``; :math:`h=` ``t_final / nt``.
        save_every: ``None`` returns only :math:`u(\cdot,T)`, shape ``(n_funcs, n)``; an int
            dividing ``nt`` returns the snapshots every ``save_every`` steps including
            :math:`t=0`, shape ``(n_funcs, nt // save_every + 1, n)``.

    Raises:
        ValueError: if ``u0`` is not a finite 2-D batch with ``n >= 4``, ``nu`` or ``t_final``
            is not a finite positive number, ``nt < 1``, or ``save_every`` does not divide ``nt``.
    """
    u0 = check_batch(u0, "u0", min_points=4, size="n")
    for name, value in (("nu", nu), ("t_final", t_final)):
        if is_tracer(value):
            raise ValueError(f"{name} must be a concrete Python number (not traced), got {value!r}")
        check_real(name, value, low=0.0, strict=True)
    nt = check_int("nt", nt)
    if save_every is not None:
        save_every = check_int("save_every", save_every)
        if nt % save_every:
            raise ValueError(f"save_every must divide nt = {nt}, got {save_every}")
    dtype = float_dtype(u0)
    n = u0.shape[1]
    xi = 2 * np.pi * np.arange(n // 2 + 1)
    coef = etdrk4_coefficients(-float(nu) * xi**2, float(t_final) / nt)
    # The multipliers act on complex spectra: hold them in the spectrum's complex dtype (no
    # implicit real-by-complex promotion; a real factor c is c + 0i, so the products are equal).
    cdtype = jnp.complex64 if dtype == jnp.float32 else jnp.complex128
    coef = {key: jnp.asarray(jnp.asarray(v, dtype), cdtype) for key, v in coef.items()}
    # -i xi / 2 * P: the nonlinear multiplier, with the 2/3-rule mask folded in.
    nl = jnp.asarray(jnp.asarray(-0.5 * xi * dealias_mask(n), dtype), cdtype) * 1j
    return _burgers(u0.astype(dtype), coef, nl, nt, save_every)


@partial(jax.jit, static_argnames=("nt", "save_every"))
def _burgers(u0, coef, nl, nt, save_every):
    return jax.vmap(_etdrk4_one, in_axes=(0, None, None, None, None))(u0, coef, nl, nt, save_every)


def _etdrk4_one(u0, c, nl, nt, save_every):
    n = u0.shape[0]

    def nonlinear(v):
        w = jnp.fft.rfft(jnp.fft.irfft(v, n=n) ** 2)
        return nl * w  # = -(i xi / 2) P (u^2)^

    def step(v, _):
        nv = nonlinear(v)
        a = c["E2"] * v + c["Q"] * nv
        na = nonlinear(a)
        b = c["E2"] * v + c["Q"] * na
        nb = nonlinear(b)
        cc = c["E2"] * a + c["Q"] * (2 * nb - nv)
        nc = nonlinear(cc)
        v = c["E"] * v + c["f1"] * nv + 2 * c["f2"] * (na + nb) + c["f3"] * nc
        return v, None

    v0 = jnp.fft.rfft(u0)
    if save_every is None:
        v, _ = lax.scan(step, v0, None, length=nt)
        return jnp.fft.irfft(v, n=n)

    def chunk(v, _):
        v, _ = lax.scan(step, v, None, length=save_every)
        return v, jnp.fft.irfft(v, n=n)

    _, snaps = lax.scan(chunk, v0, None, length=nt // save_every)
    return jnp.concatenate([u0[None], snaps], axis=0)


def cole_hopf(u0_integral, nu: float, t: float, n: int, n_fine: int = 4096) -> np.ndarray:
    r"""Exact periodic Burgers solution at time ``t`` on the ``n``-point grid, by Cole--Hopf.

    :math:`u=-2\nu\phi_x/\phi` with :math:`\phi` solving the heat equation
    :math:`\phi_t=\nu\phi_{xx}` from :math:`\phi_0=\exp(-\int_0^xu_0/(2\nu))` (periodic for a
    zero-mean :math:`u_0`); each Fourier mode of :math:`\phi` on ``n_fine`` points is advanced
    exactly, :math:`\hat\phi_k(t)=e^{-\nu(2\pi k)^2t}\hat\phi_k(0)`, and the grid is every
    ``n_fine // n``-th fine point.

    Args:
        u0_integral: :math:`x\mapsto\int_0^xu_0`, vectorised (NumPy).
    """
    xf = np.arange(n_fine) / n_fine
    phi0 = np.exp(-u0_integral(xf) / (2 * nu))
    c = np.fft.rfft(phi0)
    k = np.arange(c.size)
    c_t = c * np.exp(-nu * (2 * np.pi * k) ** 2 * t)
    phi = np.fft.irfft(c_t, n_fine)
    dphi = np.fft.irfft(c_t * (2j * np.pi * k), n_fine)
    u = -2 * nu * dphi / phi
    return u[:: n_fine // n]
