"""Solution operators with exact or high-order labels: the DeepONet benchmark operators.

Every operator maps a batch of input functions, given by their values on a grid (shape
``(n_funcs, N)``), to the solution on a grid; it is jit-compiled and vmapped over the batch,
computes in float32 by default and in float64 under ``jax_enable_x64``.

- :mod:`~opdiff.operators.integral`: the antiderivative, exact for the piecewise-linear input.
- :mod:`~opdiff.operators.ode`: input-driven ODEs by RK4 (nonlinear ODE, gravity pendulum).
- :mod:`~opdiff.operators.reaction_diffusion`: :math:`s_t=Ds_{xx}+ks^2+u(x)`, IMEX CNAB2.
- :mod:`~opdiff.operators.burgers`: periodic viscous Burgers, Fourier pseudo-spectral + ETDRK4.
- :mod:`~opdiff.operators.heat`: the heat semigroup, exact (periodic and Dirichlet), and the
  backward problem with naive, spectral-cutoff and Wiener estimators and their exact MSEs.
- :mod:`~opdiff.operators.catalog`: each of these as an :class:`opdiff.data.OperatorSpec`.
"""

from opdiff.operators import burgers as burgers
from opdiff.operators import heat as heat
from opdiff.operators import integral as integral
from opdiff.operators import ode as ode
from opdiff.operators import reaction_diffusion as reaction_diffusion

__all__ = ["burgers", "heat", "integral", "ode", "reaction_diffusion"]
