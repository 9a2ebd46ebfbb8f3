r"""The heat semigroup :math:`e^{t\nu\Delta}`, exact, forward and backward.

**Periodic domain** :math:`[0,1)`, grid :math:`x_j=j/N`. A grid function is identified with
its trigonometric interpolant :math:`u=\sum_k \hat u_k e^{2\pi i k x}`, and the semigroup acts
diagonally,

.. math:: e^{t\nu\Delta}u=\sum_k e^{-4\pi^2k^2\nu t}\,\hat u_k e^{2\pi ikx},

so :func:`periodic` is exact on that representation (one rFFT, a multiply, one inverse rFFT).

**Dirichlet boundaries** on :math:`[0,1]`, interior grid :math:`x_j=j/(N+1)`,
:math:`j=1..N`, zero at both ends: the sine series :math:`u=\sum_{k=1}^N b_k\sin(\pi kx)`
decays as :math:`e^{-\pi^2k^2\nu t}` (:func:`dirichlet`, via a type-I discrete sine transform).

**Backward problem.** Observe :math:`f=e^{T\nu\Delta}u+\eta` where, in the real orthonormal
Fourier basis :math:`\{1,\sqrt2\cos2\pi kx,\sqrt2\sin2\pi kx\}` of :math:`L^2(0,1)`, every
coordinate of the noise has variance :math:`\delta^2` (on the grid: i.i.d. pointwise noise of
standard deviation :math:`\delta\sqrt N`), and the prior is :math:`u\sim N(0,C)` with
:math:`C` diagonal in the same basis, eigenvalue :math:`\mu_k` per coordinate of mode
:math:`k`. With :math:`a_k=e^{-4\pi^2\nu Tk^2}` and :math:`m_k` coordinates per mode (1 for
:math:`k=0` and the Nyquist mode, else 2), the mean-square errors in :math:`L^2(0,1)` are

.. math::
    \mathrm{MSE}_{\rm naive} &= \delta^2\sum_k m_k a_k^{-2},\\
    \mathrm{MSE}_{\rm cut}(K) &= \sum_{k>K} m_k\mu_k + \delta^2\sum_{k\le K} m_k a_k^{-2},\\
    \mathrm{MSE}_{\rm Wiener} &= \sum_k m_k\,\frac{\mu_k\delta^2}{a_k^2\mu_k+\delta^2}.

The Wiener estimator :math:`\hat u_k=\mu_ka_k f_k/(a_k^2\mu_k+\delta^2)` is the posterior mean,
so no estimator has a smaller mean-square error: it lower-bounds the other two for every
:math:`K`. The cutoff formula is that of ``shared/reference/deeponet.md`` §6.2 when all modes
:math:`k\ge1` have :math:`m_k=2`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff._checks import check_finite_scalar

__all__ = [
    "periodic",
    "dirichlet",
    "heat_multiplier",
    "periodic_multiplier",
    "dirichlet_multiplier",
    "periodic_grid",
    "dirichlet_grid",
    "wavenumbers",
    "multiplicities",
    "observe",
    "naive_inverse",
    "cutoff_inverse",
    "wiener_inverse",
    "naive_mse",
    "cutoff_mse",
    "wiener_mse",
    "backward_oracles",
    "forward_spectrum",
    "harmonic_features",
    "make_pairs",
    "mode_decay",
    "posterior_mean_spectrum",
]


def _check_positive(name, value, allow_zero=False):
    cond = ">= 0" if allow_zero else "> 0"
    check_finite_scalar(name, value, low=0.0, low_open=not allow_zero,
                        what=f"be finite and {cond}")


def _check_field(u, min_points=2):
    u = jnp.asarray(u)
    if u.ndim < 1 or u.shape[-1] < min_points:
        raise ValueError(
            f"u must have shape (..., N) with N >= {min_points} grid values, got {u.shape}"
        )
    if not isinstance(u, jax.core.Tracer) and bool(jnp.any(jnp.isnan(u))):
        raise ValueError("u contains NaN")
    return u


def periodic_grid(n: int) -> np.ndarray:
    """The periodic grid :math:`x_j=j/n`, ``j = 0..n-1``."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    return np.arange(n) / n


def dirichlet_grid(n: int) -> np.ndarray:
    """The interior grid :math:`x_j=j/(n+1)`, ``j = 1..n`` (the boundary values are 0)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return np.arange(1, n + 1) / (n + 1)


def wavenumbers(n: int) -> np.ndarray:
    """The non-negative wavenumbers ``0..n//2`` of the rFFT of an ``n``-point grid function."""
    return np.arange(n // 2 + 1)


def multiplicities(n: int) -> np.ndarray:
    """Real coordinates per rFFT bin: 1 for k = 0 and (n even) the Nyquist bin, else 2."""
    m = np.full(n // 2 + 1, 2.0)
    m[0] = 1.0
    if n % 2 == 0:
        m[-1] = 1.0
    return m


def heat_multiplier(eigenvalue, t, *, log: bool = False):
    r"""The heat semigroup on an eigenfunction of :math:`-\Delta`: :math:`e^{-\lambda t}` for
    eigenvalue :math:`\lambda` (``eigenvalue``, any shape) at time ``t`` (broadcast), or its
    logarithm :math:`-\lambda t` when ``log`` (no underflow: the blur of a diffusion process
    works in log scale). NumPy in, NumPy out (float64); a JAX array in (also traced), JAX out.

    The one place opdiff writes this factor: :func:`periodic_multiplier` (:math:`\lambda=
    4\pi^2k^2\nu`), :func:`dirichlet_multiplier` (:math:`\lambda=\pi^2k^2\nu`), the
    Laplacian eigenvalues of the diffusion bases (:mod:`opdiff.diffusion.processes`,
    :mod:`opdiff.diffusion.restoration`).
    """
    if isinstance(eigenvalue, jax.Array) or isinstance(t, jax.Array):
        return -eigenvalue * t if log else jnp.exp(-eigenvalue * t)
    e = -np.asarray(eigenvalue, np.float64) * t
    return e if log else np.exp(e)


def periodic_multiplier(k, t: float, nu: float):
    r""":math:`e^{-4\pi^2k^2\nu t}`, the factor of mode ``k`` on the periodic unit interval."""
    return heat_multiplier(4.0 * np.pi**2 * np.asarray(k, np.float64) ** 2 * nu, t)


def dirichlet_multiplier(k, t: float, nu: float):
    r""":math:`e^{-\pi^2k^2\nu t}`, the factor of :math:`\sin(\pi kx)` on :math:`[0,1]`."""
    return heat_multiplier(np.pi**2 * np.asarray(k, np.float64) ** 2 * nu, t)


def _apply_rfft_multiplier(u, mult):
    n = u.shape[-1]
    spec = jnp.fft.rfft(u, axis=-1)
    # a real factor per mode, cast to the spectrum's complex dtype (u's precision)
    return jnp.fft.irfft(spec * mult.astype(u.dtype).astype(spec.dtype), n=n, axis=-1)


def periodic(u: Float[Array, "... n"], t: float, nu: float) -> Float[Array, "... n"]:
    r""":math:`e^{t\nu\Delta}u` on the periodic unit interval, exact for the trigonometric
    interpolant of ``u`` (grid :func:`periodic_grid`).

    Args:
        u: grid values, any leading batch shape.
        t: time, ``>= 0``.
        nu: diffusivity, ``>= 0``.

    Raises:
        ValueError: if ``t`` or ``nu`` is negative or not finite, or ``u`` is malformed.
    """
    _check_positive("t", t, allow_zero=True)
    _check_positive("nu", nu, allow_zero=True)
    u = _check_field(u)
    mult = jnp.asarray(periodic_multiplier(wavenumbers(u.shape[-1]), t, nu))
    return _apply_rfft_multiplier(u, mult)


def _dst1(v):
    """Type-I DST over the last axis: :math:`V_k=\\sum_{j=1}^N v_j\\sin(\\pi kj/(N+1))`."""
    n = v.shape[-1]
    zeros = jnp.zeros(v.shape[:-1] + (1,), v.dtype)
    w = jnp.concatenate([zeros, v, zeros, -jnp.flip(v, axis=-1)], axis=-1)
    return -jnp.imag(jnp.fft.fft(w, axis=-1))[..., 1 : n + 1] / 2.0


def dirichlet(u: Float[Array, "... n"], t: float, nu: float) -> Float[Array, "... n"]:
    r""":math:`e^{t\nu\Delta}u` on :math:`[0,1]` with zero boundary values, exact for the sine
    interpolant :math:`\sum_{k=1}^N b_k\sin(\pi kx)` of the interior values ``u``
    (grid :func:`dirichlet_grid`).

    Raises:
        ValueError: if ``t`` or ``nu`` is negative or not finite, or ``u`` is malformed.
    """
    _check_positive("t", t, allow_zero=True)
    _check_positive("nu", nu, allow_zero=True)
    u = _check_field(u, min_points=1)
    n = u.shape[-1]
    mult = jnp.asarray(dirichlet_multiplier(np.arange(1, n + 1), t, nu), u.dtype)
    coeffs = _dst1(u) * mult
    return _dst1(coeffs) * (2.0 / (n + 1))


# --- the backward problem --------------------------------------------------------------------


def observe(
    u: Float[Array, "... n"], t: float, nu: float, delta: float, *, key: PRNGKeyArray
) -> Float[Array, "... n"]:
    r""":math:`f=e^{t\nu\Delta}u+\eta`, pointwise noise of std :math:`\delta\sqrt N` (so every
    :math:`L^2`-orthonormal Fourier coordinate of :math:`\eta` has variance :math:`\delta^2`)."""
    _check_positive("delta", delta, allow_zero=True)
    u = _check_field(u)
    noise = jax.random.normal(key, u.shape, u.dtype) * (delta * np.sqrt(u.shape[-1]))
    return periodic(u, t, nu) + noise


def _mode_arrays(n, t, nu, mu=None):
    _check_positive("t", t, allow_zero=True)
    _check_positive("nu", nu, allow_zero=True)
    k = wavenumbers(n)
    a = periodic_multiplier(k, t, nu)
    if mu is not None:
        mu = np.asarray(mu, np.float64)
        if mu.shape != k.shape:
            raise ValueError(
                f"mu must have one prior eigenvalue per rFFT bin, shape ({n // 2 + 1},), "
                f"got {mu.shape}"
            )
        if np.any(mu < 0) or not np.all(np.isfinite(mu)):
            raise ValueError("mu must be finite and non-negative")
    return k, a, mu


def naive_inverse(f: Float[Array, "... n"], t: float, nu: float) -> Float[Array, "... n"]:
    r""":math:`e^{-t\nu\Delta}f`: every mode multiplied by :math:`e^{+4\pi^2k^2\nu t}`."""
    f = _check_field(f)
    _, a, _ = _mode_arrays(f.shape[-1], t, nu)
    return _apply_rfft_multiplier(f, jnp.asarray(1.0 / a))


def cutoff_inverse(
    f: Float[Array, "... n"], t: float, nu: float, cutoff: int
) -> Float[Array, "... n"]:
    r"""Spectral cutoff: invert the modes :math:`k\le K` = ``cutoff``, zero the rest."""
    f = _check_field(f)
    if not isinstance(cutoff, (int, np.integer)) or cutoff < 0:
        raise ValueError(f"cutoff must be a non-negative int, got {cutoff!r}")
    k, a, _ = _mode_arrays(f.shape[-1], t, nu)
    return _apply_rfft_multiplier(f, jnp.asarray(np.where(k <= cutoff, 1.0 / a, 0.0)))


def wiener_inverse(
    f: Float[Array, "... n"], t: float, nu: float, delta: float, mu
) -> Float[Array, "... n"]:
    r"""Posterior mean :math:`\hat u_k=\mu_ka_kf_k/(a_k^2\mu_k+\delta^2)` under the prior
    :math:`\mu` (one eigenvalue per rFFT bin) and noise level :math:`\delta`."""
    f = _check_field(f)
    _check_positive("delta", delta)
    _, a, mu = _mode_arrays(f.shape[-1], t, nu, mu)
    return _apply_rfft_multiplier(f, jnp.asarray(mu * a / (a * a * mu + delta**2)))


def naive_mse(n: int, t: float, nu: float, delta: float) -> float:
    r"""Exact :math:`\mathrm{MSE}_{\rm naive}=\delta^2\sum_k m_ka_k^{-2}` on an ``n``-point grid."""
    _check_positive("delta", delta, allow_zero=True)
    _, a, _ = _mode_arrays(n, t, nu)
    return float(delta**2 * np.sum(multiplicities(n) / a**2))


def cutoff_mse(n: int, mu, t: float, nu: float, delta: float, cutoff) -> np.ndarray:
    r"""Exact :math:`\mathrm{MSE}_{\rm cut}(K)` on an ``n``-point grid, for every ``K`` in
    ``cutoff`` (an int gives a float, a sequence an array); ``mu`` has ``n//2+1`` entries."""
    _check_positive("delta", delta, allow_zero=True)
    k, a, mu = _mode_arrays(n, t, nu, mu)
    m = multiplicities(n)
    ks = np.atleast_1d(np.asarray(cutoff))
    if np.any(ks < 0):
        raise ValueError(f"cutoff must be non-negative, got {cutoff!r}")
    kept = k[None, :] <= ks[:, None]
    bias = np.sum(np.where(kept, 0.0, m * mu), axis=1)
    var = delta**2 * np.sum(np.where(kept, m / a**2, 0.0), axis=1)
    out = bias + var
    return out if np.ndim(cutoff) else out[0]


def wiener_mse(n: int, mu, t: float, nu: float, delta: float) -> float:
    r"""Exact :math:`\mathrm{MSE}_{\rm Wiener}=\sum_km_k\mu_k\delta^2/(a_k^2\mu_k+\delta^2)`,
    the smallest mean-square error of any estimator of ``u`` from ``f``."""
    _check_positive("delta", delta)
    _, a, mu = _mode_arrays(n, t, nu, mu)
    return float(np.sum(multiplicities(n) * mu * delta**2 / (a * a * mu + delta**2)))


# --- learning the semigroup: data, spectra and floors --------------------------------------


def harmonic_features(n: int, harmonics: int) -> np.ndarray:
    r"""The grid points :math:`x_j=j/N` as the harmonics
    :math:`(\sin2\pi lx_j)_{l\le J},(\cos2\pi lx_j)_{l\le J}`, shape ``[N, 2J]``: query points
    for a trunk whose every function is exactly 1-periodic."""
    x = periodic_grid(n)
    j = np.arange(1, harmonics + 1)
    z = 2 * np.pi * x[:, None] * j[None, :]
    return np.concatenate([np.sin(z), np.cos(z)], axis=1)


def forward_spectrum(n: int, mu, t: float, nu: float) -> np.ndarray:
    r"""Eigenvalues of the covariance of :math:`e^{t\nu\Delta}u`, :math:`u\sim N(0,C)`, one per
    real Fourier coordinate: :math:`\mu_ka_k^2` repeated by multiplicity, descending. Their
    tail beyond ``p`` is the squared PCA floor of any ``p``-basis operator network."""
    a = periodic_multiplier(wavenumbers(n), t, nu)
    lam = np.repeat(mu * a**2, multiplicities(n).astype(int))
    return np.sort(lam)[::-1]


def posterior_mean_spectrum(n: int, mu, t: float, nu: float, delta: float) -> np.ndarray:
    r"""Variances of the posterior mean :math:`\mathbb E[u\mid f]` per real Fourier coordinate,
    :math:`\lambda^{\rm post}_k=\mu_k^2a_k^2/(a_k^2\mu_k+\delta^2)` repeated by multiplicity.

    An estimator whose outputs lie in an affine ``p``-space (a ``p``-basis operator network) has
    MSE at least :math:`\mathrm{MSE}_{\rm Wiener}+\sum_{i>p}\lambda^{\rm post}_{(i)}`
    (Pythagoras: the error splits into the posterior-mean error and the distance from the
    posterior mean, at least the PCA tail of the latter,
    :func:`opdiff.deeponet_bounds.pca_floor` squared).
    """
    a = periodic_multiplier(wavenumbers(n), t, nu)
    post = mu**2 * a**2 / (a**2 * mu + delta**2)  # posterior-mean variance per coordinate
    return np.repeat(post, multiplicities(n).astype(int))


def backward_oracles(n: int, mu, t: float, nu: float, delta: float) -> dict:
    r"""Exact mean-square errors of the backward problem: ``wiener`` (:func:`wiener_mse`),
    ``best_cutoff`` and ``best_k`` (:math:`\min_K` :func:`cutoff_mse`), ``naive``
    (:func:`naive_mse`)."""
    cut = cutoff_mse(n, mu, t, nu, delta, np.arange(n // 2 + 1))
    return dict(wiener=wiener_mse(n, mu, t, nu, delta), best_cutoff=float(cut.min()),
                best_k=int(np.argmin(cut)), naive=naive_mse(n, t, nu, delta))


def _make_pairs(field, cells, nu, u_key, noise_key, n_funcs, dtype=jnp.float32):
    u = field.sample(n_funcs, key=u_key, dtype=dtype)
    ins, outs = [], []
    for i, (kind, t, delta) in enumerate(cells):
        if kind == "backward":
            ins.append(observe(u, t, nu, delta, key=jax.random.fold_in(noise_key, i)))
            outs.append(u)
        else:
            ins.append(u)
            outs.append(periodic(u, t, nu))
    return jnp.stack(ins), jnp.stack(outs)


make_pairs = jax.jit(_make_pairs, static_argnames=("field", "cells", "nu", "n_funcs", "dtype"))
make_pairs.__doc__ = r"""Inputs and targets ``[C, n_funcs, N]`` for every cell ``(kind, t, delta)``.

``kind == "backward"``: input :math:`f=e^{t\nu\Delta}u+\eta` (:func:`observe`, noise key
``fold_in(noise_key, c)``), target :math:`u`; ``kind == "forward"``: input :math:`u`, target
:math:`e^{t\nu\Delta}u`. The cells share the prior draws ``field.sample(n_funcs, key=u_key)``.
``field`` (hashable) and ``cells`` (a tuple) are static: one compilation per cell set."""


def mode_decay(u0: Float[Array, " n"], times, nu: float) -> dict:
    r"""The measured decay of every Fourier mode of ``u0`` under :func:`periodic`.

    Returns ``ratio [T, n//2+1]``, :math:`|\hat u_k(t)|/|\hat u_k(0)|` (``nan``/``inf`` where
    :math:`\hat u_k(0)=0`), and ``deviation [T]``,
    :math:`\max_k|\hat u_k(t)-e^{-4\pi^2k^2\nu t}\hat u_k(0)|/\max_k|\hat u_k(0)|`: round-off
    for an exact semigroup.
    """
    u0 = jnp.asarray(u0)
    k = wavenumbers(u0.shape[-1])
    c0 = np.fft.rfft(np.asarray(u0))
    ratio, dev = [], []
    for tau in times:
        ct = np.fft.rfft(np.asarray(periodic(u0[None], tau, nu))[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio.append(np.abs(ct) / np.abs(c0))
        pred = periodic_multiplier(k, tau, nu) * c0
        dev.append(float(np.max(np.abs(ct - pred)) / np.max(np.abs(c0))))
    return dict(ratio=np.stack(ratio), deviation=np.array(dev))
