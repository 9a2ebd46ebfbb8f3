"""Neural network models (flax nnx).

Every model is an ``nnx.Module`` built from an explicit key: ``MLP(..., key=key)``.
"""

from opdiff.nets._compat import nnx as nnx
from opdiff.nets.mlp import MLP as MLP

__all__ = ["MLP", "nnx"]
