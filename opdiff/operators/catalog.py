"""The reference operators as :class:`opdiff.data.OperatorSpec` objects, ready for datasets.

Each factory fixes the operator's parameters and the input grid, and says where its values
live (``output_points``, ``[P, d]``), so that :func:`opdiff.data.make_aligned` and
:func:`~opdiff.data.make_unaligned` can draw exact labels from it.
"""

from __future__ import annotations

import numpy as np

from opdiff._checks import check_increasing_grid
from opdiff.data import OperatorSpec
from opdiff.operators import burgers as _burgers
from opdiff.operators import heat as _heat
from opdiff.operators import integral as _integral
from opdiff.operators import ode as _ode
from opdiff.operators import reaction_diffusion as _rd

__all__ = [
    "antiderivative",
    "nonlinear_ode",
    "pendulum",
    "diffusion_reaction",
    "heat_periodic",
    "burgers",
]


def _grid(grid) -> np.ndarray:
    return check_increasing_grid("grid", grid)


def antiderivative(grid) -> OperatorSpec:
    """:math:`G(u)(x)=\\int_0^x u`, on ``grid`` (exact for the piecewise-linear input)."""
    grid = _grid(grid)
    return OperatorSpec("antiderivative", lambda u: _integral.antiderivative(u, grid),
                        grid[:, None])


def nonlinear_ode(grid, *, substeps: int = 4) -> OperatorSpec:
    """:math:`s'=-s^2+u`, :math:`s(0)=0`, by RK4 with ``substeps`` steps per grid interval."""
    grid = _grid(grid)
    return OperatorSpec("nonlinear_ode",
                        lambda u: _ode.nonlinear_ode(u, grid, substeps=substeps),
                        grid[:, None], {"substeps": substeps})


def pendulum(grid, *, k: float = 1.0, substeps: int = 4) -> OperatorSpec:
    """Gravity pendulum driven by ``u``; outputs ``[n, N, 2]`` (angle, angular velocity)."""
    grid = _grid(grid)
    return OperatorSpec("pendulum",
                        lambda u: _ode.pendulum(u, grid, k=k, substeps=substeps),
                        grid[:, None], {"k": k, "substeps": substeps})


def diffusion_reaction(nx: int = 100, nt: int = 100, *, D: float = 0.01, k: float = 0.01,
                       t_final: float = 1.0) -> OperatorSpec:
    """:math:`s_t=Ds_{xx}+ks^2+u(x)` on :math:`[0,1]^2`; the input space must use the
    ``nx``-point grid on [0, 1]; outputs at every ``(x_j, t_n)``, points ordered t-major."""
    x = np.linspace(0.0, 1.0, nx)  # _rd.grid(nx) in float64, exactly
    t = np.linspace(0.0, t_final, nt + 1)
    tt, xx = np.meshgrid(t, x, indexing="ij")
    points = np.stack([xx.ravel(), tt.ravel()], axis=1)

    def apply(u):
        s = _rd.diffusion_reaction(u, D=D, k=k, nt=nt, t_final=t_final)
        return s.reshape(s.shape[0], -1)

    return OperatorSpec("diffusion_reaction", apply, points,
                        {"nx": nx, "nt": nt, "D": D, "k": k, "t_final": t_final})


def heat_periodic(n: int, *, t: float, nu: float) -> OperatorSpec:
    """:math:`e^{t\\nu\\Delta}` on the periodic ``n``-point grid (exact)."""
    x = _heat.periodic_grid(n)
    return OperatorSpec("heat_periodic", lambda u: _heat.periodic(u, t, nu), x[:, None],
                        {"t": t, "nu": nu})


def burgers(n: int, *, nu: float, t_final: float, nt: int) -> OperatorSpec:
    """Viscous Burgers on the periodic ``n``-point grid: :math:`u_0\\mapsto u(\\cdot,T)`."""
    x = np.arange(n) / n
    return OperatorSpec("burgers", lambda u: _burgers.burgers(u, nu=nu, t_final=t_final, nt=nt),
                        x[:, None], {"nu": nu, "t_final": t_final, "nt": nt})
