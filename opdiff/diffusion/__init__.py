"""Score-based diffusion as the inverse heat operator.

- :mod:`~opdiff.diffusion.basis`: orthonormal real bases (identity, DFT via Hartley, DCT).
- :mod:`~opdiff.diffusion.processes`: forward processes diagonal in a basis (VP, VE, sub-VP,
  OU, heat dissipation, blurring, coloured noise).
- :mod:`~opdiff.diffusion.samplers`: reverse samplers generic over a denoiser; time grids.
- :mod:`~opdiff.diffusion.oracle`: Gaussian fields and mixtures — exact scores, denoisers and
  the exact output law of every sampler.
- :mod:`~opdiff.diffusion.likelihood`: log-likelihood and bits/dim through the
  probability-flow ODE (exact or Hutchinson divergence, diffrax).
- :mod:`~opdiff.diffusion.losses`: denoising score matching with score_sde's weightings and its
  closed-form minimum on Gaussian data.
- :mod:`~opdiff.diffusion.training`: DSM training of a denoiser through the engine (label
  dropout, EMA, checkpoints, resume, meshes).
- :mod:`~opdiff.diffusion.guidance`: classifier-free guidance of a conditional denoiser.
"""

from opdiff.diffusion import basis as basis
from opdiff.diffusion import guidance as guidance
from opdiff.diffusion import likelihood as likelihood
from opdiff.diffusion import losses as losses
from opdiff.diffusion import oracle as oracle
from opdiff.diffusion import processes as processes
from opdiff.diffusion import samplers as samplers
from opdiff.diffusion import training as training

__all__ = ["basis", "guidance", "likelihood", "losses", "oracle", "processes", "samplers",
           "training"]
