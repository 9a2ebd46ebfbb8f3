r"""Log-likelihood through the probability-flow ODE (score_sde's ``likelihood.py``, restated).

Along the probability-flow ODE :math:`\dot z=\tilde f(z,t)=f_tz-\tfrac12g_t^2\hat s(z,t)`
(coefficients of the process's basis; the basis is orthonormal, so divergences and densities
are the same in sample space), the density obeys
:math:`\frac{d}{dt}\log p_t(z_t)=-\nabla\cdot\tilde f(z_t,t)`, hence

.. math:: \log p_{t_0}(x)=\log\pi(z_T)+\int_{t_0}^T\nabla\cdot\tilde f(z_t,t)\,dt,

with :math:`z_T` the ODE solution from :math:`z_{t_0}=Bx` and :math:`\pi` the prior. The
divergence is exact (``divergence="exact"``: the Jacobian's trace, :math:`d` forward-mode
passes — small :math:`d` only) or the Hutchinson–Skilling estimate
:math:`\varepsilon^\top J\varepsilon` with a Rademacher probe :math:`\varepsilon` fixed along
the path (one Jacobian-vector product per evaluation; unbiased). The ODE is solved by diffrax
(Dopri5, PID control).

:func:`bits_per_dim` turns a continuous log-density into bits per dimension of data quantised
to bins of width ``bin_width`` (uniform dequantisation: :math:`-\log P\le-\log p-d\log w`
up to the dequantisation gap), e.g. ``1/256`` for 8-bit images scaled to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.diffusion import _ode
from opdiff.diffusion.processes import Process

__all__ = ["bits_per_dim", "dataset_bits_per_dim", "dequantize", "log_likelihood"]


def log_likelihood(
    denoiser: Callable[[Array, Array], Array],
    process: Process,
    x: Float[Array, "batch *shape"],
    *,
    prior: tuple | None = None,
    divergence: str = "hutchinson",
    key: PRNGKeyArray | None = None,
    t0: float | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
) -> tuple[Array, dict]:
    r""":math:`\log p_{t_0}(x)` per sample (nats) through the probability-flow ODE.

    Args:
        denoiser: :math:`D(x,t)` on a batch ``[B, *shape]`` with a scalar ``t``.
        process: the forward process.
        x: the points ``[B, *shape]``.
        prior: the prior :math:`\pi` as per-coefficient ``(mean, var)`` (default
            :meth:`Process.prior`; heat dissipation needs it given, e.g.
            ``process.prior(data_mean, data_var)``).
        divergence: ``"exact"`` or ``"hutchinson"`` (needs ``key``).
        key: PRNG key for the Rademacher probes.
        t0: the starting time (default ``process.t_min``; it must carry noise).
        rtol, atol, max_steps: the diffrax controller.

    Returns:
        ``(log_p [B], stats)`` with ``stats["num_steps"]``.
    """
    import diffrax

    from opdiff.diffusion.samplers import check_grid

    x = process.check_sample("x", x)
    if divergence not in ("exact", "hutchinson"):
        raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {divergence!r}")
    if divergence == "hutchinson" and key is None:
        raise ValueError("divergence='hutchinson' needs key=")
    t_start = float(process.t_min if t0 is None else t0)
    check_grid(process, [t_start, process.T])
    if prior is None:
        m_T, w_T = process.prior()
    else:
        try:
            m_T, w_T = prior
        except (TypeError, ValueError):
            raise ValueError(f"prior must be a pair (mean, var), got {prior!r}") from None
    m_T, w_T = jnp.asarray(m_T, x.dtype), jnp.asarray(w_T, x.dtype)
    n = x.shape[0]
    axes = tuple(range(1, x.ndim))

    def drift(z, t):
        xs = process.from_basis(z)
        d = process.to_basis(denoiser(xs, t))
        a, s2 = process.scale(t).astype(z.dtype), process.variance(t).astype(z.dtype)
        f, g2 = process.drift(t).astype(z.dtype), process.diffusion2(t).astype(z.dtype)
        return f * z - 0.5 * g2 * (a * d - z) / s2

    if divergence == "hutchinson":
        eps = jax.random.rademacher(key, x.shape, x.dtype)

        def div(z, t):
            _, jv = jax.jvp(lambda u: drift(u, t), (z,), (eps,))
            return jnp.sum(eps * jv, axis=axes)
    else:
        def div(z, t):
            def single(zi):
                flat = zi.reshape(-1)

                def fn(u):
                    return drift(u.reshape((1, *zi.shape)), t).reshape(-1)

                return jnp.trace(jax.jacfwd(fn)(flat))

            return jax.vmap(single)(z)

    def vf(t, state, args):
        z, _ = state
        return drift(z, t), div(z, t)

    @jax.jit
    def solve(z0):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), diffrax.Dopri5(), t0=t_start, t1=float(process.T),
            dt0=(process.T - t_start) / 64, y0=(z0, jnp.zeros((n,), z0.dtype)),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_steps, saveat=diffrax.SaveAt(t1=True), throw=False)
        zT, delta = sol.ys
        return zT[0], delta[0], _ode.status(sol)

    zT, delta, st = solve(process.to_basis(x))  # throw=False: see opdiff.diffusion._ode
    steps = _ode.check("the probability-flow ODE solve", st, max_steps=max_steps, rtol=rtol,
                       atol=atol)
    log_prior = -0.5 * jnp.sum((zT - m_T) ** 2 / w_T + jnp.log(2 * jnp.pi * w_T), axis=axes)
    return log_prior + delta, {"num_steps": steps}


def bits_per_dim(log_p, dim: int, *, bin_width: float = 1 / 256) -> Array:
    r"""Bits per dimension :math:`-(\log p+d\log w)/(d\ln2)` of data quantised to bins of
    width :math:`w` (8-bit data in [0, 1]: :math:`w=1/256`, adding 8 bits to :math:`-\log_2p/d`)."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    if not bin_width > 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width!r}")
    return -(jnp.asarray(log_p) + dim * math.log(bin_width)) / (dim * math.log(2))


def dequantize(key: PRNGKeyArray, x, bin_width: float) -> Array:
    r"""Uniform dequantisation: :math:`x+u`, :math:`u\sim U[0,w)^d` per value, for data on a
    grid of spacing :math:`w` whose bins are :math:`[x, x+w)`. By Jensen,
    :math:`\log P(x)\ge E_u\log p(x+u)+d\log w`, so :func:`bits_per_dim` of
    :math:`\log p(x+u)` with ``bin_width=w`` is an upper bound on the discrete model's
    bits/dim (in expectation over :math:`u`; score_sde omits :math:`u`, issue #24, which can
    give negative bits/dim)."""
    if not bin_width > 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width!r}")
    x = jnp.asarray(x)
    return x + bin_width * jax.random.uniform(key, x.shape, x.dtype)


def dataset_bits_per_dim(denoiser: Callable[[Array, Array], Array], process: Process,
                         x: Float[Array, "batch *shape"], *, bin_width: float,
                         prior: tuple | None = None, key: PRNGKeyArray, rtol: float = 1e-5
                         ) -> tuple[Array, int]:
    r"""Bits/dim of each (dequantised) image of ``x`` under the model's probability-flow ODE:
    :func:`bits_per_dim` of :func:`log_likelihood` (Hutchinson divergence with ``key``,
    ``rtol = atol``, the ``prior`` as there).

    Returns:
        ``(bits/dim [batch], number of ODE steps)``.
    """
    log_p, stats = log_likelihood(denoiser, process, jnp.asarray(x), prior=prior, key=key,
                                  rtol=rtol, atol=rtol)
    dim = math.prod(process.shape)
    return bits_per_dim(log_p, dim, bin_width=bin_width), stats["num_steps"]
