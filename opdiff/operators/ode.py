r"""ODEs driven by a sampled input: :math:`s'(x)=g(s,u(x),x)`, :math:`s(x_0)=s_0`.

The input :math:`u` is given on a grid :math:`x_0<\dots<x_{N-1}` and is its piecewise-linear
interpolant. Each grid interval :math:`[x_i,x_{i+1}]` is split into ``substeps`` classical
RK4 steps of size :math:`h=(x_{i+1}-x_i)/m`, with :math:`u` evaluated by linear interpolation
inside the interval (at the stage points :math:`x,\ x+h/2,\ x+h`). The right-hand side is
then smooth within every step (the kinks of :math:`I_hu` fall on step boundaries), so the
scheme keeps order 4 for the PL-driven ODE: the global error against the exact solution of
:math:`s'=g(s,I_hu(x),x)` is :math:`O(h^4)=O((\Delta x/m)^4)`. Refining ``substeps`` converges
to the exact label for the sampled representation.

DeepONet's ODE benchmarks (Lu et al. 2021, §1.2 of the reference notes), all with
:math:`s(0)=0`:

- :func:`nonlinear_ode`: :math:`s'=-s^2+u`;
- :func:`pendulum`: :math:`s_1'=s_2,\ s_2'=-k\sin s_1+u`, :math:`k=1`;
- the antiderivative :math:`s'=u` (RK4 is exact for it: Simpson's rule on a linear
  integrand; :mod:`opdiff.operators.integral` computes it directly).

One ``lax.scan`` over the intervals, vmapped over the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from opdiff.operators._validate import (
    check_batch,
    check_grid,
    check_int,
    check_real,
    float_dtype,
    is_tracer,
)

__all__ = ["solve_driven_ode", "nonlinear_ode", "pendulum"]

# Substep loops up to this length are unrolled into the scan body; longer ones use fori_loop.
_UNROLL_MAX = 4


def solve_driven_ode(
    rhs: Callable,
    s0,
    u: Float[Array, "n_funcs N"],
    grid: Float[Array, " N"],
    *,
    substeps: int = 1,
    args: tuple = (),
) -> Float[Array, "n_funcs N ..."]:
    r"""Solve :math:`s'=\mathrm{rhs}(s,u(x),x,*\mathrm{args})`, :math:`s(x_0)=s_0`, for every
    input function of the batch, by RK4 with ``substeps`` steps per grid interval.

    Args:
        rhs: ``rhs(s, u, x, *args) -> ds/dx`` for one function: ``s`` has the shape of ``s0``,
            ``u`` and ``x`` are scalars. It is a static argument of a jitted function: pass
            the same (module-level) function to reuse the compiled solver.
        s0: initial state, an array of any shape (a scalar for a scalar ODE); cast to the
            float dtype of ``u`` and ``grid``.
        u: input values on ``grid``, shape ``(n_funcs, N)``, ``N >= 2``.
        grid: strictly increasing nodes, shape ``(N,)``.
        substeps: RK4 steps per grid interval, ``>= 1``.
        args: extra (traced) arguments passed to ``rhs``, e.g. model parameters.

    Returns:
        :math:`s(x_i)`, shape ``(n_funcs, N) + s0.shape``; ``[:, 0]`` is ``s0``.

    Raises:
        ValueError: on a malformed ``u``/``grid`` (as
            :func:`opdiff.operators.integral.antiderivative`), a non-finite ``s0`` or
            ``substeps < 1``.
    """
    if not callable(rhs):
        raise ValueError(f"rhs must be callable rhs(s, u, x, *args), got {rhs!r}")
    u = check_batch(u)
    grid = check_grid(grid, u.shape[1])
    substeps = check_int("substeps", substeps)
    s0 = jnp.asarray(s0)
    if not jnp.issubdtype(s0.dtype, jnp.floating) and not jnp.issubdtype(s0.dtype, jnp.integer):
        raise ValueError(f"s0 must be a real array, got dtype {s0.dtype}")
    if not is_tracer(s0) and not np.all(np.isfinite(np.asarray(s0))):
        raise ValueError(f"s0 must be finite, got {s0}")
    dtype = float_dtype(u, grid)  # s0 is cast to the precision of the data
    return _solve(rhs, s0.astype(dtype), u.astype(dtype), grid.astype(dtype), tuple(args),
                  substeps)


@partial(jax.jit, static_argnames=("rhs", "substeps"))
def _solve(rhs, s0, u, grid, args, substeps):
    return jax.vmap(_rk4_path, in_axes=(None, None, 0, None, None, None))(
        rhs, s0, u, grid, args, substeps
    )


def _rk4_path(rhs, s0, u, grid, args, m):
    """RK4 for one input function: one scan step per grid interval, ``m`` RK4 steps in it."""
    dtype = s0.dtype

    def interval(s, data):
        xa, xb, ua, ub = data
        h = (xb - xa) / m

        def g(s, theta):  # theta = position in the interval, 0..1
            return rhs(s, ua + theta * (ub - ua), xa + theta * (xb - xa), *args)

        def step(j, s):
            t0 = j / m
            th = (j + 0.5) / m
            t1 = (j + 1) / m
            k1 = g(s, t0)
            k2 = g(s + (0.5 * h) * k1, th)
            k3 = g(s + (0.5 * h) * k2, th)
            k4 = g(s + h * k3, t1)
            return (s + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)).astype(dtype)

        if m <= _UNROLL_MAX:
            for j in range(m):
                s = step(jnp.asarray(j, dtype), s)
        else:
            s = lax.fori_loop(0, m, lambda j, s: step(j.astype(dtype), s), s)
        return s, s

    _, path = lax.scan(interval, s0, (grid[:-1], grid[1:], u[:-1], u[1:]))
    return jnp.concatenate([s0[None], path], axis=0)


def _nonlinear_rhs(s, u, x):
    return -s * s + u


def _pendulum_rhs(s, u, x, k):
    return jnp.stack([s[1], -k * jnp.sin(s[0]) + u])


def nonlinear_ode(
    u: Float[Array, "n_funcs N"], grid: Float[Array, " N"], *, substeps: int = 1
) -> Float[Array, "n_funcs N"]:
    r""":math:`s'=-s^2+u(x)`, :math:`s(x_0)=0` (DeepONet's nonlinear ODE), at the grid nodes.

    RK4 with ``substeps`` steps per grid interval, error :math:`O((\Delta x/m)^4)` against the
    exact solution for the piecewise-linear input. Shapes and errors as in
    :func:`solve_driven_ode`.
    """
    return solve_driven_ode(_nonlinear_rhs, 0.0, u, grid, substeps=substeps)


def pendulum(
    u: Float[Array, "n_funcs N"],
    grid: Float[Array, " N"],
    *,
    k: float = 1.0,
    substeps: int = 1,
) -> Float[Array, "n_funcs N 2"]:
    r"""Forced gravity pendulum :math:`s_1'=s_2,\ s_2'=-k\sin s_1+u(x)`, :math:`s(x_0)=(0,0)`.

    Returns shape ``(n_funcs, N, 2)``: ``[..., 0]`` the angle :math:`s_1`, ``[..., 1]`` the
    angular velocity :math:`s_2`. ``k`` is traced (changing it does not recompile).

    Raises:
        ValueError: as :func:`solve_driven_ode`, or if ``k`` is not a finite real.
    """
    check_real("k", k)
    return solve_driven_ode(_pendulum_rhs, jnp.zeros(2), u, grid, substeps=substeps, args=(k,))
