"""Approximation theory: classical approximants and the bounds they are measured against."""

from opdiff.approx import chebyshev as chebyshev
from opdiff.approx import fourier as fourier
from opdiff.approx import relu as relu

__all__ = ["chebyshev", "fourier", "relu"]
