"""Neural network models (flax nnx).

Every model is an ``nnx.Module`` built from an explicit key: ``MLP(..., key=key)``.
"""

from opdiff.nets._compat import nnx as nnx
from opdiff.nets.deeponet import DeepONet as DeepONet
from opdiff.nets.deeponet import PODDeepONet as PODDeepONet
from opdiff.nets.classifier import Classifier as Classifier
from opdiff.nets.ensemble import Ensemble as Ensemble
from opdiff.nets.mlp import MLP as MLP
from opdiff.nets.operator_denoiser import OperatorDenoiser as OperatorDenoiser
from opdiff.nets.preconditioned import Preconditioned as Preconditioned
from opdiff.nets.score_mlp import ScoreMLP as ScoreMLP
from opdiff.nets.unet import UNet as UNet

__all__ = ["Classifier", "DeepONet", "Ensemble", "MLP", "OperatorDenoiser", "PODDeepONet",
           "Preconditioned", "ScoreMLP", "UNet", "nnx"]
