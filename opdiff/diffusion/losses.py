r"""Denoising score matching for any diagonal forward process (score_sde's weightings).

With :math:`z=Bx` the coefficients, :math:`t\sim U(t_{\min},T)`, :math:`\varepsilon\sim N(0,I)`
and :math:`z_t=a_t\odot z_0+s_t\odot\varepsilon`, the conditional score is
:math:`\nabla\log p_{t\mid0}(z_t\mid z_0)=-\varepsilon/s_t`, and the weighted loss

.. math:: \mathcal L(\theta)=E_{t,z_0,\varepsilon}\sum_k\lambda_k(t)\,
          \big|\hat s_\theta(z_t,t)_k+\varepsilon_k/s_{t,k}\big|^2

is minimised by the true score. Weightings (``weighting=``):

- ``"sigma2"``: :math:`\lambda=s_t^2`, score_sde's default, i.e.
  :math:`\|s_t\hat s+\varepsilon\|^2` (noise prediction);
- ``"likelihood"``: :math:`\lambda=g_t^2` (Song, Durkan, Murray, Ermon 2021), which makes the
  loss an upper bound on the negative log-likelihood up to constants;
- ``"denoiser"``: :math:`\lambda=s_t^4/a_t^2`, i.e. :math:`\|\hat D-z_0\|^2` (x0 prediction:
  :math:`\hat D-z_0=s_t^2(\hat s+\varepsilon/s_t)/a_t`), the natural loss of heat dissipation
  and of a denoiser network;
- ``"none"``: :math:`\lambda=1`.

**The minimum is known in closed form** for Gaussian data: given :math:`z_t`, the noise
:math:`\varepsilon_k` is :math:`N(s(z_t-a\mu)/v,\ 1-s^2/v)`, so at the exact score the loss is
:math:`\sum_k\lambda_k(t)\,(1-s_k^2/v_k)/s_k^2=\sum_k\lambda_ka_k^2\lambda^{\rm data}_k/(s_k^2v_k)`
per time (:func:`dsm_minimum`; for the ``"denoiser"`` weighting this is the MMSE
:math:`\sum_k\lambda^{\rm data}_ks_k^2/v_k`), and any other score adds exactly its weighted error
:math:`E\sum_k\lambda_k|\hat s_k-s^*_k|^2` (the usual DSM = ESM identity).

The model is a **score** ``score(x, t)`` or a **denoiser** ``denoiser(x, t)`` on a batch
``x`` ``[B, *shape]`` with one time per example ``t`` ``[B]`` (``parameterization=``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.diffusion.processes import Process

__all__ = ["WEIGHTINGS", "dsm_loss", "dsm_minimum", "weight"]

WEIGHTINGS = ("sigma2", "likelihood", "denoiser", "none")


def _check_weighting(weighting):
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


def weight(process: Process, t, weighting: str = "sigma2") -> Float[Array, "*shape"]:
    r""":math:`\lambda_k(t)` per coefficient for one scalar time."""
    _check_weighting(weighting)
    if weighting == "sigma2":
        return process.variance(t)
    if weighting == "likelihood":
        return process.diffusion2(t)
    if weighting == "denoiser":
        return process.variance(t) ** 2 / process.scale(t) ** 2
    return jnp.ones(process.shape, jnp.result_type(float))


def dsm_loss(
    model: Callable[[Array, Array], Array],
    process: Process,
    x0: Float[Array, "batch *shape"],
    key: PRNGKeyArray,
    *,
    weighting: str = "sigma2",
    parameterization: str = "score",
    t_min: float | None = None,
    t: Float[Array, " batch"] | None = None,
    reduce: str = "sum",
) -> Array:
    r"""The Monte-Carlo DSM loss of one batch: one :math:`(t,\varepsilon)` per example.

    Args:
        model: ``score(x, t)`` or ``denoiser(x, t)`` on ``[B, *shape]`` with ``t`` ``[B]``.
        process: the forward process.
        x0: a batch of data ``[B, *shape]``.
        key: PRNG key (split into the times and the noise).
        weighting: one of :data:`WEIGHTINGS`.
        parameterization: ``"score"`` or ``"denoiser"`` (converted to a score by Tweedie,
            per coefficient, before the loss).
        t_min: the smallest training time (default ``process.t_min``, or 1e-5 when that is 0
            and the process has no noise at 0).
        t: one time per example ``[B]`` instead of :math:`U(t_{\min},T)` draws (per-noise-level
            losses; then ``key`` only draws the noise).
        reduce: ``"sum"`` over coefficients, mean over the batch (score_sde's
            ``reduce_mean=False``); ``"mean"`` over both; ``"none"``: the per-example sums
            ``[B]``.
    """
    _check_weighting(weighting)
    if parameterization not in ("score", "denoiser"):
        raise ValueError(f"parameterization must be 'score' or 'denoiser', got "
                         f"{parameterization!r}")
    if reduce not in ("sum", "mean", "none"):
        raise ValueError(f"reduce must be 'sum', 'mean' or 'none', got {reduce!r}")
    x0 = process.check_sample("x0", x0)
    lo = process.t_min if t_min is None else float(t_min)
    if not 0 <= lo < process.T:
        raise ValueError(f"t_min must be in [0, T={process.T}), got {lo}")
    kt, ke = jax.random.split(key)
    n = x0.shape[0]
    if t is None:
        t = jax.random.uniform(kt, (n,), x0.dtype, minval=lo, maxval=process.T)
    else:
        t = jnp.asarray(t, x0.dtype)
        if t.shape != (n,):
            raise ValueError(f"t must have shape [{n}] (one time per example), got {t.shape}")
    a = jax.vmap(process.scale)(t).astype(x0.dtype)
    s = jax.vmap(process.std)(t).astype(x0.dtype)
    lam = jax.vmap(lambda u: weight(process, u, weighting))(t).astype(x0.dtype)
    eps = jax.random.normal(ke, x0.shape, x0.dtype)
    z0 = process.to_basis(x0)
    xt = process.from_basis(a * z0 + s * eps)
    out = process.to_basis(model(xt, t))
    zt = a * z0 + s * eps
    if weighting == "denoiser":  # ||D - z0||^2 directly: s^4/a^2 overflows where a underflows
        d = out if parameterization == "denoiser" else (zt + s**2 * out) / a
        sq = (d - z0) ** 2
    else:
        score = out if parameterization == "score" else (a * out - zt) / s**2
        sq = lam * (score + eps / s) ** 2
    per = jnp.sum(sq.reshape(n, -1), axis=1)
    if reduce == "none":
        return per
    if reduce == "mean":
        per = per / process.size
    return jnp.mean(per)


def dsm_minimum(process: Process, field, t, weighting: str = "sigma2") -> Array:
    r"""The DSM loss of the exact score at time ``t`` for Gaussian data ``field``
    (:class:`opdiff.diffusion.oracle.GaussianField`):
    :math:`\sum_k\lambda_k(t)\,a_k^2\lambda^{\rm data}_k/(s_k^2v_k)`."""
    field.check_process(process)
    a2, s2 = process.scale(t) ** 2, process.variance(t)
    v = a2 * field.var + s2
    if weighting == "denoiser":  # = the MMSE, sum lambda s^2 / v, without s^4/a^2
        return jnp.sum(field.var * s2 / v)
    return jnp.sum(weight(process, t, weighting) * a2 * field.var / (s2 * v))
