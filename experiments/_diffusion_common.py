"""Shared pieces of the diffusion experiments: the exact law and divergences that tolerate a
diverged sampler (non-finite moments score inf)."""

from __future__ import annotations

import math

import numpy as np

from opdiff.diffusion import oracle
from opdiff.theory import diffusion as th


def exact_law(method: str, process, field, ts, *, model=None, init="prior", corrector_eps=None,
              predictor: str = "ancestral", n_corrector: int = 1, snr: float = 0.16):
    """:func:`opdiff.diffusion.oracle.sampler_law` as float64 numpy arrays."""
    m, w = oracle.sampler_law(method, process, field, ts, model=model, init=init,
                              corrector_eps=corrector_eps, predictor=predictor,
                              n_corrector=n_corrector, snr=snr)
    return np.asarray(m, np.float64), np.asarray(w, np.float64)


def finite_law(m, w) -> bool:
    return bool(np.all(np.isfinite(m)) and np.all(np.isfinite(w)) and np.all(w >= 0))


def kl(m1, w1, m2, w2, per_coefficient=False):
    """``theory.diffusion.kl_diagonal``, with ``inf`` for a diverged law (non-finite or NaN
    moments: ``kl_diagonal`` scores infinite moments inf itself but refuses NaN)."""
    m1, w1, m2, w2 = (np.asarray(a, np.float64) for a in (m1, w1, m2, w2))
    if per_coefficient:
        m1, w1, m2, w2 = np.broadcast_arrays(m1, w1, m2, w2)
        ok = np.isfinite(m1) & np.isfinite(w1) & (w1 >= 0) & np.isfinite(m2) & np.isfinite(w2)
        out = np.full(m1.shape, np.inf)
        if ok.any():
            out[ok] = th.kl_diagonal(m1[ok], w1[ok], m2[ok], w2[ok], per_coefficient=True)
        return out
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return math.inf
    try:
        return th.kl_diagonal(m1, w1, m2, w2)
    except ValueError:
        return math.inf


def w2_sq(m1, w1, m2, w2) -> float:
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return math.inf
    return th.w2_diagonal(m1, w1, m2, w2)


def tv_bracket(m1, w1, m2, w2) -> tuple[float, float]:
    if not (finite_law(m1, w1) and finite_law(m2, w2)):
        return 1.0, 1.0
    return th.tv_bracket_diagonal(m1, w1, m2, w2)


def monte_carlo_agreement(method: str, process, field, ts, *, n: int = 4000, seed: int = 0):
    """Run the sampler itself (:func:`opdiff.diffusion.samplers.sample`, on samples, with the
    exact denoiser) from prior draws and compare with the oracle's law, per coefficient.

    Returns ``(max |z| of the sample means, max |sample var / w - 1|, its tolerance
    6 sqrt(2/n))``: two independent computations of the same law.
    """
    import jax
    import jax.numpy as jnp

    from opdiff.diffusion import samplers

    key = jax.random.key(seed)
    m0, w0 = process.prior(field.mean, field.var)
    z0 = jnp.asarray(m0) + jnp.sqrt(jnp.asarray(w0)) * jax.random.normal(
        jax.random.fold_in(key, 0), (n, *field.shape), jnp.float64)
    x = samplers.sample(method, field.denoiser(process), process, process.from_basis(z0), ts,
                        key=jax.random.fold_in(key, 1))
    z = np.asarray(process.to_basis(x), np.float64)
    m, w = exact_law(method, process, field, ts)
    zmax = float(np.max(np.abs(z.mean(0) - m) / np.sqrt(w / n)))
    vdev = float(np.max(np.abs(z.var(0) / w - 1)))
    return zmax, vdev, 6 * math.sqrt(2 / n)


def radial_mean(values, process):
    """Mean per coefficient in each radial-frequency bin (NaN for empty bins)."""
    f, tot = oracle.radial_profile(values, process)
    _, cnt = oracle.radial_profile(np.ones(process.shape), process)
    with np.errstate(invalid="ignore", divide="ignore"):
        return f, np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
