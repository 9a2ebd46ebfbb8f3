"""Generic neural network models (flax nnx), and the layers they share (:mod:`.layers`).

Every model is an ``nnx.Module`` built from an explicit key: ``MLP(..., key=key)``. The
diffusion models that wrap these networks for a forward process (``Preconditioned``,
``ScoreMLP``) live in :mod:`opdiff.diffusion`.
"""

from opdiff.nets._compat import nnx as nnx
from opdiff.nets.deeponet import DeepONet as DeepONet
from opdiff.nets.deeponet import PODDeepONet as PODDeepONet
from opdiff.nets.classifier import Classifier as Classifier
from opdiff.nets.ensemble import Ensemble as Ensemble
from opdiff.nets.fno import FNO as FNO
from opdiff.nets.layers import Frozen as Frozen
from opdiff.nets.layers import GroupNorm as GroupNorm
from opdiff.nets.layers import time_embedding as time_embedding
from opdiff.nets.mlp import MLP as MLP
from opdiff.nets.operator_denoiser import OperatorDenoiser as OperatorDenoiser
from opdiff.nets.unet import UNet as UNet

__all__ = ["Classifier", "DeepONet", "Ensemble", "FNO", "Frozen", "GroupNorm", "MLP",
           "OperatorDenoiser", "PODDeepONet", "UNet", "nnx", "time_embedding"]
