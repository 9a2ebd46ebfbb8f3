"""Approximation theory: classical approximants, least squares, sampling, kernels.

- :mod:`~opdiff.approx.chebyshev`, :mod:`~opdiff.approx.fourier`, :mod:`~opdiff.approx.relu`:
  classical approximants and their exact error formulas;
- :mod:`~opdiff.approx.bases`: orthonormal Legendre, Chebyshev and Fourier bases;
- :mod:`~opdiff.approx.sampling`: Christoffel-optimal weighted sampling, projection DPPs (HKPV),
  volume-rescaled sampling;
- :mod:`~opdiff.approx.lstsq`: (weighted, ridge) least squares by QR, SVD, normal equations or
  a Gram-preconditioned LSQR (`cholesky_lsqr`: least-squares accuracy near the Gram's cost);
- :mod:`~opdiff.approx.ntk`: empirical and analytic (infinite-width) neural tangent kernels;
- :mod:`~opdiff.approx.ntk_dynamics`: the empirical NTK of many seeds at init and during
  full-batch gradient descent (drift, distance from the linearised model);
- :mod:`~opdiff.approx.bounds`: computable bounds for bandlimited and random-feature models
  (torus out-of-band energy, Barron, Monte Carlo / Rahimi-Recht, bounded-coefficient floor,
  numerical span dimension, Landau-Widom, the ridgelet proxy);
- :mod:`~opdiff.approx.features`: random features evaluated on the host (numpy): feature
  matrices, Monte-Carlo and least-squares errors, span dimension in a given precision;
- :mod:`~opdiff.approx.designs`: least-squares sample designs compared (quasi-optimality
  ratios, the DPP interpolation identity, KS and proposal-count checks of the samplers).
"""

from opdiff.approx import bases as bases
from opdiff.approx import bounds as bounds
from opdiff.approx import chebyshev as chebyshev
from opdiff.approx import designs as designs
from opdiff.approx import features as features
from opdiff.approx import fourier as fourier
from opdiff.approx import lstsq as lstsq
from opdiff.approx import ntk as ntk
from opdiff.approx import ntk_dynamics as ntk_dynamics
from opdiff.approx import relu as relu
from opdiff.approx import sampling as sampling

__all__ = ["bases", "bounds", "chebyshev", "designs", "features", "fourier", "lstsq", "ntk",
           "ntk_dynamics", "relu", "sampling"]
