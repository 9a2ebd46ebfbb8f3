r"""Time grids optimised against the exact oracle.

For a deterministic sampler (:data:`opdiff.diffusion.steps.METHODS` without noise) and Gaussian
data diagonal in the process's basis (:class:`~opdiff.diffusion.oracle.GaussianField`), every
state along a grid :math:`t_0<\dots<t_N` is affine in :math:`z_T` per coefficient, so the output
law from :math:`N(m_T,w_T)` is :math:`N(Am_T+B,\,A^2w_T)` with :math:`A,B` smooth functions of
the grid (:mod:`opdiff.diffusion.oracle`). The exact divergence

.. math:: L(t_{1:N-1})=\frac1d\mathrm{KL}\big(N(Am_T+B,A^2w_T)\,\big\|\,p_{t_0}\big)

is therefore differentiable in the interior times, and :func:`optimise_grid` minimises
:math:`\log L` by gradient at a fixed number of steps :math:`N`, ends fixed at
:math:`t_0=t_{\min}` and :math:`t_N=T`.

**Parametrisation.** With :math:`\ell(t)=\log\mathrm{level}(t)` (:meth:`Process.level`: the
log inverse SNR of a noise process), the grid is

.. math:: \ell_i=\ell(t_{\min})+\big(\ell(T)-\ell(t_{\min})\big)\sum_{j\le i}
          \mathrm{softmax}(\theta)_j,\qquad t_i=\ell^{-1}(\ell_i),

so any :math:`\theta\in\mathbb R^N` gives a strictly increasing grid inside
:math:`[t_{\min},T]`; :math:`\theta=0` is the log-SNR grid
(:func:`~opdiff.diffusion.samplers.log_snr_grid`). :math:`\ell^{-1}` is the linear interpolation
of a table of 20,001 times (as the log-SNR grid's), differentiable almost everywhere.

**Optimiser.** Adam (optax) on :math:`\theta` for a fixed number of iterations from
:math:`\theta=0`; the best iterate is returned. Deterministic: no randomness, the same inputs
give the same grid.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from opdiff.diffusion import oracle as _oracle
from opdiff.diffusion import samplers as _samplers
from opdiff.diffusion import steps as _steps
from opdiff.diffusion.processes import Process

__all__ = ["OptimisedGrid", "grid_from_logits", "grid_kl", "optimise_grid"]


class OptimisedGrid(NamedTuple):
    """The result of :func:`optimise_grid`.

    Attributes:
        ts: the optimised increasing times ``[n_steps + 1]`` (float64 numpy).
        kl_per_dim: its exact KL(output ‖ :math:`p_{t_0}`)/d (:func:`grid_kl`).
        kl_per_dim_start: the same for the log-SNR grid it started from.
        losses: :math:`\\log L` along the iterations ``[iters]``.
    """

    ts: np.ndarray
    kl_per_dim: float
    kl_per_dim_start: float
    losses: np.ndarray


def _check_deterministic(method: str, process: Process):
    spec = _steps.check_method(method, process)
    if spec.stochastic:
        det = tuple(m for m, s in _steps.METHODS.items() if not s.stochastic)
        raise ValueError(f"method must be deterministic (one of {det}): a stochastic sampler's "
                         f"law is not an affine image of z_T, got {method!r}")
    return spec


def _log_level_table(process: Process):
    t, lev = _samplers._level_table(process)
    if lev[0] <= 0:
        raise ValueError(f"grid optimisation needs noise at t_min; {process.name!r} has none at "
                         f"t_min={process.t_min}")
    return jnp.asarray(np.log(lev)), jnp.asarray(t)


def grid_from_logits(process: Process, theta, table=None) -> jax.Array:
    r"""The grid of logits :math:`\theta` ``[n_steps]`` (module docstring): increasing times
    ``[n_steps + 1]`` from ``t_min`` to ``T``; :math:`\theta=0` is the log-SNR grid.
    ``table``: the ``(log level, t)`` table, computed here if not given (pass it under jit)."""
    theta = jnp.asarray(theta)
    loglev, t = _log_level_table(process) if table is None else table
    frac = jnp.concatenate([jnp.zeros(1, theta.dtype), jnp.cumsum(jax.nn.softmax(theta))])
    target = loglev[0] + (loglev[-1] - loglev[0]) * frac
    ts = jnp.interp(target, loglev, t)
    return ts.at[0].set(process.t_min).at[-1].set(process.T)


def _init_law(process: Process, field, init: str):
    if init == "prior":
        return process.prior(field.mean, field.var)
    if init == "exact":
        return field.marginal(process, process.T)
    raise ValueError(f"init must be 'prior' or 'exact', got {init!r}")


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _loss(method, process, n, theta, table, mean, var, m_T, w_T, m0, v0):
    ts = grid_from_logits(process, theta, table)
    model = _oracle._Moments(mean, var)
    m, w = _oracle._affine_run(method, process, model, ts, n, m_T, w_T, loop="scan")
    x = w / v0 - 1
    kl = 0.5 * jnp.sum(x - jnp.log1p(x) + (m - m0) ** 2 / v0)
    return jnp.log(kl / m.size)


def grid_kl(method: str, process: Process, field, ts, *, init: str = "prior") -> float:
    """Exact KL(output ‖ :math:`p_{t_0}`)/d of ``method`` on the grid ``ts`` (``t_0 = ts[0]``),
    by :func:`opdiff.diffusion.oracle.sampler_law` (which validates the grid)."""
    m, w = _oracle.sampler_law(method, process, field, ts, init=init)
    m0, v0 = field.marginal(process, jnp.asarray(ts[0], jnp.result_type(float)))
    return float(_oracle.divergences(m, w, m0, v0)["kl"]) / field.size


def optimise_grid(method: str, process: Process, field, n_steps: int, *, iters: int = 300,
                  learning_rate: float = 0.05, init: str = "prior") -> OptimisedGrid:
    r"""The ``n_steps``-step grid on :math:`[t_{\min},T]` that minimises the exact
    KL(output ‖ :math:`p_{t_{\min}}`)/d of the deterministic sampler ``method`` on ``field``.

    Args:
        method: a deterministic sampler of :data:`opdiff.diffusion.steps.METHODS`.
        process: the forward process (noise at ``t_min``: :meth:`Process.level` > 0).
        field: the Gaussian data (:class:`~opdiff.diffusion.oracle.GaussianField`); its exact
            denoiser is the model.
        n_steps: the number of steps :math:`N\ge2` (NFE is
            :func:`opdiff.diffusion.samplers.nfe` of it).
        iters: Adam iterations (fixed; the best iterate is kept).
        learning_rate: Adam's step on the logits.
        init: ``"prior"`` (:meth:`Process.prior`, as the samplers start) or ``"exact"`` (the
            marginal at :math:`T`: discretisation error only).

    Returns:
        :class:`OptimisedGrid`; its ``kl_per_dim`` is never above ``kl_per_dim_start`` (the
        log-SNR grid is the first iterate).

    Raises:
        ValueError: for a stochastic or unknown method, ``n_steps < 2``, ``iters < 1``, a
            non-positive ``learning_rate`` or a bad ``init``.
    """
    _check_deterministic(method, process)
    field.check_process(process)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise ValueError(f"n_steps must be an int >= 2, got {n_steps!r}")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 1:
        raise ValueError(f"iters must be a positive int, got {iters!r}")
    if not (isinstance(learning_rate, (int, float)) and np.isfinite(learning_rate)
            and learning_rate > 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    dtype = jnp.result_type(float)
    m_T, w_T = (jnp.broadcast_to(jnp.asarray(a, dtype), field.shape)
                for a in _init_law(process, field, init))
    m0, v0 = (jnp.asarray(a, dtype) for a in field.marginal(process, process.t_min))
    args = (_log_level_table(process), jnp.asarray(field.mean, dtype),
            jnp.asarray(field.var, dtype), m_T, w_T, m0, v0)
    grad = jax.jit(jax.value_and_grad(_loss, argnums=3), static_argnums=(0, 1, 2))
    opt = optax.adam(learning_rate)
    theta = jnp.zeros(int(n_steps), dtype)
    state = opt.init(theta)
    best, best_theta, losses = np.inf, theta, []
    for _ in range(int(iters)):
        val, g = grad(method, process, int(n_steps), theta, *args)
        val = float(val)
        losses.append(val)
        if np.isfinite(val) and val < best:
            best, best_theta = val, theta
        if not np.all(np.isfinite(np.asarray(g))):
            break
        with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: float ** int
            upd, state = opt.update(g, state)
        theta = optax.apply_updates(theta, upd)
    ts = np.asarray(grid_from_logits(process, best_theta), np.float64)
    start = _samplers.log_snr_grid(process, int(n_steps))
    return OptimisedGrid(ts, grid_kl(method, process, field, ts, init=init),
                         grid_kl(method, process, field, start, init=init), np.asarray(losses))
