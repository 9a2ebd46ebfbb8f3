r"""Monte-Carlo tests of a forward process's marginals against the analytic ones.

Every process of :mod:`opdiff.diffusion.processes` is diagonal in an orthonormal basis
:math:`B`: with :math:`z=Bx`, :math:`z_t=a_t(k)z_0+s_t(k)\varepsilon`,
:math:`\varepsilon\sim N(0,I)`. So for draws of :meth:`Process.sample <opdiff.diffusion.
processes.Process.sample>` the standardised coefficients

.. math:: e=\frac{z_t-a_tz_0}{s_t}

must be i.i.d. :math:`N(0,1)`. :func:`z_scores` turns ``n`` draws into exact normal z-scores per
coefficient: :math:`\sqrt n\,\bar e\sim N(0,1)` for the mean, the CDF transform
:math:`\Phi^{-1}(F_{\chi^2_n}(\sum e^2))` (:func:`chi2_z`) for the variance, and optionally
:math:`\sqrt n\,\overline{e_ie_j}` for every pair :math:`i<j` (diagonality, asymptotically
:math:`N(0,1)`). Against many z-scores the family-wise test is the Bonferroni bound
:func:`bonferroni_z`. The coefficients are computed on the host in float64 with NumPy/SciPy
(:func:`opdiff.diffusion.transforms.to_basis_host`), independently of the process's own transform.

**Spectra.** For a process diagonal in the ``dft`` (Hartley) basis with white noise
(:math:`s_t` the same for every coefficient), the power per DFT mode
(:func:`opdiff.spectra.power_per_mode`) has :math:`\mathbb E[|\mathcal Fx_t(k)|^2/N\mid x_0]=
a_t(k)^2|\mathcal Fx_0(k)|^2/N+s_t^2`, so the expected RAPSD of every image given its clean
version is exact, and :func:`rapsd_z_scores` tests the empirical one against it.

The process's ``sample``, ``marginal`` mean and :math:`(a_t,s_t)` are compiled once per process
and shape (the process is a static argument; ``t`` is traced): eager dispatch would compile
every operation of the DCT again.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from jaxtyping import Float, PRNGKeyArray

from opdiff import claims as _claims
from opdiff import spectra as _spectra
from opdiff.diffusion import transforms as _transforms
from opdiff.diffusion.processes import Process

__all__ = [
    "bonferroni_z",
    "rapsd_z_scores",
    "sample_batch",
    "chi2_z",
    "high_frequency_energy",
    "mean_path",
    "sample_path",
    "scale_std",
    "snr_path",
    "z_scores",
]


def chi2_z(stat, dof: int) -> np.ndarray:
    r"""Exact normal z-score of a :math:`\chi^2_{\rm dof}` statistic: :math:`\Phi^{-1}(F(x))`.

    Computed as ``norm.ppf(chi2.cdf)`` below the mean and ``norm.isf(chi2.sf)`` above it, so
    both tails keep full relative accuracy.

    Args:
        stat: statistic values (any shape), :math:`\ge0`.
        dof: degrees of freedom :math:`\ge1`.

    Returns:
        float64 z-scores of ``stat``'s shape: :math:`N(0,1)` when ``stat`` is
        :math:`\chi^2_{\rm dof}`.
    """
    stat = np.asarray(stat, np.float64)
    lo = scipy.stats.norm.ppf(scipy.stats.chi2.cdf(stat, dof))
    hi = scipy.stats.norm.isf(scipy.stats.chi2.sf(stat, dof))
    return np.where(stat > dof, hi, lo)


def bonferroni_z(m: int, level: float) -> float:
    r"""Bonferroni bound :math:`z_{1-p/(2m)}` for :math:`\max|z|` of ``m`` standard normal
    z-scores: the probability that any exceeds it is at most ``level`` :math:`=p`."""
    return float(scipy.stats.norm.isf(level / (2 * m)))


@functools.partial(jax.jit, static_argnums=0)
def _sample(process, key, x0, t):
    return process.sample(key, x0, t)


@functools.partial(jax.jit, static_argnums=0)
def _mean(process, x0, t):
    return process.marginal(x0, t)[0]


@functools.partial(jax.jit, static_argnums=0)
def _scale_std(process, t):
    return process.scale(t), process.std(t)


def scale_std(process: Process, t: float) -> tuple[np.ndarray, np.ndarray]:
    """:math:`(a_t, s_t)` per coefficient (computed in float32, returned as float64)."""
    a, s = _scale_std(process, jnp.float32(t))
    return np.asarray(a, np.float64), np.asarray(s, np.float64)


def mean_path(process: Process, x0, times) -> Float[np.ndarray, "T *shape"]:
    r""":math:`\mathbb E[x_t\mid x_0]` (sample space, float32 computation) at every time."""
    x = jnp.asarray(x0, jnp.float32)
    return np.stack([np.asarray(_mean(process, x, jnp.float32(t)), np.float64) for t in times])


def sample_path(process: Process, x0, times, key: PRNGKeyArray, *, batch: int = 1
                ) -> Float[np.ndarray, "T *shape"]:
    r"""One path :math:`t\mapsto x_t=B^\top(a_tz_0+s_t\varepsilon)` with one noise draw
    :math:`\varepsilon` (one key) for every time.

    ``batch`` copies of ``x0`` are drawn and the first is returned: pass the batch size of other
    :func:`z_scores` calls on this process to reuse their compiled sampler.
    """
    xb = jnp.broadcast_to(jnp.asarray(x0, jnp.float32), (batch, *np.shape(x0)))
    return np.stack([np.asarray(_sample(process, key, xb, jnp.float32(t))[0]) for t in times])


def snr_path(process: Process, x0, times) -> np.ndarray:
    r"""Scalar SNR :math:`\|a_t\odot z_0\|^2/\sum_ks_t(k)^2` of ``x0`` at every time."""
    z0 = _transforms.to_basis_host(x0, process.basis, process.ndim)
    out = []
    for t in times:
        a, s = scale_std(process, t)
        out.append(float(np.sum((a * z0) ** 2) / np.sum(s**2)))
    return np.array(out)


def z_scores(process: Process, x0, times, key: PRNGKeyArray, *, n_draws: int, chunk: int,
             correlations: bool = False) -> dict[str, np.ndarray]:
    r"""Exact z-scores of ``n_draws`` draws of :math:`x_t\mid x_0` against the analytic law.

    At every time ``times[i]`` the draws are made in chunks of ``chunk`` with the keys
    ``fold_in(fold_in(key, i), j)`` (chunk ``j``) and standardised in float64 on the host:
    :math:`e=(Bx_t-a_tBx_0)/s_t` (module docstring).

    Args:
        process: the forward process; ``x0`` one clean sample of its shape.
        times: the times :math:`t_i`.
        correlations: also the pair statistics :math:`\sqrt n\,\overline{e_ie_j}`, :math:`i<j`
            (a ``size x size`` accumulator: small images only).

    Returns:
        ``{"mean": [T, *shape], "var": [T, *shape]}`` (and ``"corr": [T, size(size-1)/2]``),
        each entry :math:`N(0,1)` under the analytic marginal.
    """
    n = int(n_draws)
    z0 = _transforms.to_basis_host(x0, process.basis, process.ndim)
    zm, zv, zc = [], [], []
    for i, t in enumerate(times):
        a, s = scale_std(process, t)
        e_sum = np.zeros(process.shape)
        e2_sum = np.zeros(process.shape)
        cross = np.zeros((process.size, process.size)) if correlations else None
        k_t = jax.random.fold_in(key, i)
        for j, start in enumerate(range(0, n, chunk)):
            m = min(chunk, n - start)
            xb = jnp.broadcast_to(jnp.asarray(x0, jnp.float32), (m, *process.shape))
            x = np.asarray(_sample(process, jax.random.fold_in(k_t, j), xb, jnp.float32(t)))
            e = (_transforms.to_basis_host(x, process.basis, process.ndim) - a * z0) / s
            e_sum += e.sum(0)
            e2_sum += (e**2).sum(0)
            if correlations:
                ef = e.reshape(m, -1)
                cross += ef.T @ ef
        zm.append(e_sum / math.sqrt(n))
        zv.append(chi2_z(e2_sum, n))
        if correlations:
            zc.append(cross[np.triu_indices(process.size, 1)] / math.sqrt(n))
    out = dict(mean=np.stack(zm), var=np.stack(zv))
    if correlations:
        out["corr"] = np.stack(zc)
    return out


def high_frequency_energy(means, basis: str, cutoff: float = 0.25) -> np.ndarray:
    r"""Energy :math:`\sum_{k:f_k>\mathrm{cutoff}}z_k^2` of images ``[..., H, W]`` in the
    coefficients of ``basis`` whose radial frequency :math:`f_k`
    (:func:`~opdiff.diffusion.transforms.radial_frequency`, cycles/pixel) exceeds ``cutoff``."""
    means = np.asarray(means, np.float64)
    mask = _transforms.radial_frequency(means.shape[-2:], basis) > cutoff
    return (_transforms.to_basis_host(means, basis, 2) ** 2 * mask).sum(axis=(-2, -1))


def sample_batch(process: Process, x0, t: float, key: PRNGKeyArray, chunk: int) -> np.ndarray:
    r"""One draw of :math:`x_t\mid x_0` per image of ``x0`` ``[n, *shape]`` (float64 result),
    in chunks of ``min(chunk, n)`` images (chunk ``j`` with key ``fold_in(key, j)``; the last
    chunk padded with copies of its first image), so each process and shape compiles once."""
    n = x0.shape[0]
    m = min(chunk, n)
    out = []
    for j, start in enumerate(range(0, n, m)):
        xb = x0[start:start + m]
        pad = m - xb.shape[0]
        if pad:
            xb = np.concatenate([xb, np.repeat(xb[:1], pad, axis=0)])
        x = _sample(process, jax.random.fold_in(key, j), jnp.asarray(xb, jnp.float32),
                    jnp.float32(t))
        out.append(np.asarray(x, np.float64)[: m - pad])
    return np.concatenate(out)


def rapsd_z_scores(process: Process, x0, times, key: PRNGKeyArray, *, chunk: int) -> dict:
    r"""Empirical vs exactly expected RAPSD of :math:`x_t` for clean images ``x0`` ``[n, H, W]``.

    At each ``times[i]`` one draw per image (:func:`sample_batch`, key ``fold_in(key, i)``).
    Per image :math:`D=R[x_t]-\mathbb E[R[x_t]\mid x_0]` (:math:`R` the annulus averages of
    :func:`opdiff.spectra.radial_average`, :math:`\mathbb E[R[x_t]\mid x_0]` = the annulus
    average of :math:`a_t^2|\mathcal Fx_0|^2/N` plus :math:`s_t^2`) is a mean-zero i.i.d.
    variable, so :math:`z=\bar D/\mathrm{se}(\bar D)` (:func:`opdiff.claims.mean_se`) is
    asymptotically :math:`N(0,1)` per annulus. The SNR = 1 cut-off is where the signal part
    equals the floor, i.e. where the RAPSD equals :math:`2s_t^2` (:func:`opdiff.spectra.
    snr_cutoff`, ``above=inf``, ``below=0``).

    Args:
        process: a process diagonal in the ``dft`` basis with white noise, of shape ``(H, W)``.
        x0: clean images ``[n, H, W]``, ``n >= 2``.
        times: the times :math:`t_i`.
        chunk: images per sampler call.

    Returns:
        ``emp``, ``expect``, ``z`` (``[T, n_bins]``: empirical mean RAPSD, its exact
        expectation, the z-scores), ``floor`` (:math:`s_t^2`, ``[T]``), ``f_emp``, ``f_exp``
        (the cut-offs of the empirical and the expected RAPSD, ``[T]``).

    Raises:
        ValueError: if the process is not in the ``dft`` basis or its noise is not white.
    """
    if process.basis != "dft":
        raise ValueError(f"the process must be diagonal in the dft basis, got {process.basis!r}")
    p0 = _spectra.power_per_mode(x0)
    freqs, _ = _spectra.radial_average(p0[:1])
    emp, expect, floor, z, f_emp, f_exp = [], [], [], [], [], []
    for i, t in enumerate(times):
        a = np.asarray(process.scale(t), np.float64)
        s2 = np.asarray(process.variance(t), np.float64)
        if np.ptp(s2) != 0:
            raise ValueError("the process's noise must be white (one s_t for every coefficient)")
        xt = sample_batch(process, x0, float(t), jax.random.fold_in(key, i), chunk)
        rt_each = _spectra.radial_average(_spectra.power_per_mode(xt), return_frequencies=False)
        ex_each = _spectra.radial_average(p0 * a**2, return_frequencies=False) + s2.flat[0]
        mean, se = _claims.mean_se(rt_each - ex_each)
        z.append(mean / se)
        emp.append(rt_each.mean(0))
        expect.append(ex_each.mean(0))
        floor.append(float(s2.flat[0]))
        f_emp.append(_spectra.snr_cutoff(freqs, emp[-1], 2 * floor[-1], above=np.inf, below=0.0))
        f_exp.append(_spectra.snr_cutoff(freqs, expect[-1], 2 * floor[-1], above=np.inf,
                                         below=0.0))
    return dict(emp=np.stack(emp), expect=np.stack(expect), z=np.stack(z),
                floor=np.asarray(floor), f_emp=np.asarray(f_emp), f_exp=np.asarray(f_exp))
