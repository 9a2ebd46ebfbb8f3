"""Approximation theory: classical approximants, least squares, sampling, kernels.

- :mod:`~opdiff.approx.chebyshev`, :mod:`~opdiff.approx.fourier`, :mod:`~opdiff.approx.relu`:
  classical approximants and their exact error formulas;
- :mod:`~opdiff.approx.lstsq`: (weighted, ridge) least squares by QR, SVD or normal equations;
- :mod:`~opdiff.approx.ntk`: empirical and analytic (infinite-width) neural tangent kernels.
"""

from opdiff.approx import chebyshev as chebyshev
from opdiff.approx import fourier as fourier
from opdiff.approx import lstsq as lstsq
from opdiff.approx import ntk as ntk
from opdiff.approx import relu as relu

__all__ = ["chebyshev", "fourier", "lstsq", "ntk", "relu"]
