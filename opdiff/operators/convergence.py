r"""Observed convergence orders of the reference solvers, each against an exact or a much finer
solution.

For step sizes :math:`h_i` and max-norm errors :math:`e_i`, the observed order is the
least-squares slope of :math:`\log e` on :math:`\log h` (:func:`opdiff.claims.loglog_slope`);
theory: 2 for the cumulative trapezoid, 4 for RK4, 2 (time) and 2 (space) for CNAB2 with
second-order finite differences, 4 for ETDRK4. Every study returns
``dict(h, err, order, theory)``.

* :func:`trapezoid_order`: :math:`u=\cos2\pi x+2x`, exact
  :math:`G(u)=\sin(2\pi x)/(2\pi)+x^2`.
* :func:`rk4_orders`: RK4 substeps refined inside each interval of a fixed grid (the input
  stays the same piecewise-linear function), against 16x the finest substep.
* :func:`dr_orders`: CNAB2 in time (fixed ``nx = 41``, against 32x the finest ``nt``) and in
  space (nested grids against a 4x finer one at the coarse nodes, ``nt = 2000``).
* :func:`burgers_order`: ETDRK4 in time against the exact Cole--Hopf solution
  (:func:`opdiff.operators.burgers.cole_hopf`) from :math:`u_0=\sin2\pi x`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from opdiff.claims import loglog_slope
from opdiff.operators import burgers, integral, ode, reaction_diffusion

__all__ = ["burgers_order", "dr_orders", "rk4_orders", "smooth_input", "trapezoid_order"]


def smooth_input(x):
    r""":math:`\sin2\pi x+\tfrac12\cos5x+x`: a smooth, non-periodic test input."""
    return np.sin(2 * np.pi * x) + 0.5 * np.cos(5 * x) + x


def _study(h, err, theory: float, **extra) -> dict:
    return dict(h=np.array(h), err=np.array(err), order=loglog_slope(h, err)[0], theory=theory,
                **extra)


def trapezoid_order(grids) -> dict:
    """The cumulative trapezoid (exact for the piecewise-linear input) on ``grids`` points."""
    errs, hs = [], []
    for n in grids:
        x = np.linspace(0.0, 1.0, n)
        u = np.cos(2 * np.pi * x) + 2 * x
        s = np.asarray(integral.antiderivative(jnp.asarray(u[None]), jnp.asarray(x)))[0]
        errs.append(np.max(np.abs(s - (np.sin(2 * np.pi * x) / (2 * np.pi) + x * x))))
        hs.append(1.0 / (n - 1))
    return _study(hs, errs, 2.0)


def rk4_orders(n_grid: int, substeps) -> dict:
    """RK4 for the nonlinear ODE and the pendulum from ``3 smooth_input`` on ``n_grid`` points,
    ``substeps`` steps per interval: ``{"nonlinear_ode": study, "pendulum": study}``."""
    x = np.linspace(0.0, 1.0, n_grid)
    u = jnp.asarray(3 * smooth_input(x)[None])
    grid = jnp.asarray(x)
    out = {}
    for name, solve in (("nonlinear_ode", ode.nonlinear_ode), ("pendulum", ode.pendulum)):
        ref = np.asarray(solve(u, grid, substeps=16 * max(substeps)))
        errs = [np.max(np.abs(np.asarray(solve(u, grid, substeps=m)) - ref)) for m in substeps]
        out[name] = _study([1.0 / ((n_grid - 1) * m) for m in substeps], errs, 4.0)
    return out


def dr_orders(nts, nxs) -> dict:
    """CNAB2 diffusion--reaction from ``smooth_input``: ``{"diffusion_reaction_time": study,
    "diffusion_reaction_space": study}`` over ``nts`` time steps and ``nxs`` grid sizes."""
    rd = reaction_diffusion
    x = np.asarray(rd.grid(41), np.float64)
    u = jnp.asarray(smooth_input(x)[None])
    ref = np.asarray(rd.diffusion_reaction(u, nt=32 * max(nts)))[0, -1]
    t_err = [np.max(np.abs(np.asarray(rd.diffusion_reaction(u, nt=m))[0, -1] - ref)) for m in nts]
    fine = 4 * (max(nxs) - 1) + 1

    def final(n):
        xs = np.asarray(rd.grid(n), np.float64)
        return np.asarray(rd.diffusion_reaction(jnp.asarray(smooth_input(xs)[None]),
                                                nt=2000))[0, -1]

    ref_x = final(fine)
    x_err = [np.max(np.abs(final(n) - ref_x[:: (fine - 1) // (n - 1)])) for n in nxs]
    return {"diffusion_reaction_time": _study([1.0 / m for m in nts], t_err, 2.0),
            "diffusion_reaction_space": _study([1.0 / (n - 1) for n in nxs], x_err, 2.0)}


def burgers_order(n: int, nu: float, t: float, nts) -> dict:
    """ETDRK4 Burgers from :math:`\\sin2\\pi x` on ``n`` points with ``nts`` steps to ``t``,
    against Cole--Hopf; also ``best_error``."""
    x = np.arange(n) / n
    u0 = np.sin(2 * np.pi * x)
    exact = burgers.cole_hopf(lambda z: (1 - np.cos(2 * np.pi * z)) / (2 * np.pi), nu, t, n)
    errs = [np.max(np.abs(np.asarray(burgers.burgers(jnp.asarray(u0[None]), nu=nu, t_final=t,
                                                     nt=m))[0] - exact)) for m in nts]
    return _study([t / m for m in nts], errs, 4.0, best_error=float(min(errs)))
