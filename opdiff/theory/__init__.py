"""Bounds, floors and rates that experiments put beside their measurements.

- :mod:`opdiff.theory.deeponet`: the PCA reconstruction floor of the output distribution
  (Lanthaler, Mishra, Karniadakis 2022), quadrature weights, the sensor-count estimate;
- :mod:`opdiff.theory.approximation`: random features and approximation: the torus out-of-band
  energy (an exact floor on the integer lattice only), Barron norm and bound, Monte-Carlo rates,
  the bounded-coefficient floor, numerical span dimension and Landau–Widom, the ridgelet proxy;
- :mod:`opdiff.theory.diffusion`: exact divergences between Gaussians (KL, W2, the TV
  bracket) and the shapes of the Chen et al., Benton et al. and Li–Yan diffusion bounds;
- :mod:`opdiff.theory.checks`: the comparison of a measurement with a bound, as a claim record.

The inverse-heat oracles (naive, spectral-cutoff and Wiener mean-square errors) live with the
operator in :mod:`opdiff.operators.heat` and are re-exported here.
"""

from opdiff.operators.heat import cutoff_mse as heat_cutoff_mse
from opdiff.operators.heat import naive_mse as heat_naive_mse
from opdiff.operators.heat import wiener_mse as heat_wiener_mse
from opdiff.theory import approximation as approximation
from opdiff.theory import checks as checks
from opdiff.theory import deeponet as deeponet
from opdiff.theory import diffusion as diffusion

__all__ = ["approximation", "checks", "deeponet", "diffusion", "heat_cutoff_mse", "heat_naive_mse", "heat_wiener_mse"]
