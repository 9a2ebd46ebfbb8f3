"""Score-based diffusion as the inverse heat operator.

- :mod:`~opdiff.diffusion.basis`: orthonormal real bases (identity, DFT via Hartley, DCT).
- :mod:`~opdiff.diffusion.processes`: forward processes diagonal in a basis (VP, VE, sub-VP,
  OU, heat dissipation, blurring, coloured noise).
- :mod:`~opdiff.diffusion.marginals`: Monte-Carlo checks of forward marginals (z-scores,
  paths, empirical vs exact RAPSD).
- :mod:`~opdiff.diffusion.samplers`: reverse samplers generic over a denoiser; time grids
  (log-SNR, Karras, Benton et al.'s), NFE, orders.
- :mod:`~opdiff.diffusion.oracle`: Gaussian fields and mixtures — exact scores, denoisers and
  the exact output law of every sampler; convergence curves, error splits, Girsanov bounds.
- :mod:`~opdiff.diffusion.laws`: KL, W2 and TV between diagonal Gaussian laws that tolerate
  diverged (non-finite) laws.
- :mod:`~opdiff.diffusion.bounds`: convergence-bound shapes with unknown constants (Chen et
  al., Benton et al.) fitted and tested against exact sweeps; orders and crossings.
- :mod:`~opdiff.diffusion.likelihood`: log-likelihood and bits/dim through the
  probability-flow ODE (exact or Hutchinson divergence, diffrax).
- :mod:`~opdiff.diffusion.losses`: denoising score matching with score_sde's weightings and its
  closed-form minimum on Gaussian data.
- :mod:`~opdiff.diffusion.training`: DSM training of a denoiser through the engine (label
  dropout, EMA, checkpoints, resume, meshes).
- :mod:`~opdiff.diffusion.guidance`: classifier-free guidance of a conditional denoiser; exact
  guidance on a labelled Gaussian mixture.

Imported on demand (they build networks from :mod:`opdiff.nets`, which imports this package):

- :mod:`~opdiff.diffusion.models`: processes by name and preconditioned U-Net / DeepONet
  denoisers that start as the Wiener filter.
- :mod:`~opdiff.diffusion.generate`: batched sampling with a model.
- :mod:`~opdiff.diffusion.baselines`: float64 bases, exact Gaussian log-densities and bits/dim,
  exact law draws.
- :mod:`~opdiff.diffusion.denoiser_error`: per-noise-level errors of denoisers against the
  exact MMSE, the PCA floor of rank-p denoisers, the sampled-KL estimator and its null law.
- :mod:`~opdiff.diffusion.restoration`: heat blur and pooling degradations, naive / Wiener /
  LMMSE / learned restoration, the PSNR/SSIM table.
"""

from opdiff.diffusion import basis as basis
from opdiff.diffusion import bounds as bounds
from opdiff.diffusion import guidance as guidance
from opdiff.diffusion import laws as laws
from opdiff.diffusion import likelihood as likelihood
from opdiff.diffusion import losses as losses
from opdiff.diffusion import marginals as marginals
from opdiff.diffusion import oracle as oracle
from opdiff.diffusion import processes as processes
from opdiff.diffusion import samplers as samplers
from opdiff.diffusion import training as training

__all__ = ["basis", "bounds", "guidance", "laws", "likelihood", "losses", "marginals", "oracle",
           "processes", "samplers", "training"]
