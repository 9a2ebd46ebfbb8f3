"""Score-based diffusion as the inverse heat operator.

- :mod:`~opdiff.diffusion.transforms`: the orthonormal transforms (identity, DFT via Hartley,
  DCT) whose coefficients the processes act on, one by one (not to be confused with
  :mod:`opdiff.approx.bases`, function bases on an interval for least squares).
- :mod:`~opdiff.diffusion.processes`: forward processes diagonal in a basis (VP, VE, sub-VP,
  OU, heat dissipation, blurring, coloured noise).
- :mod:`~opdiff.diffusion.marginals`: Monte-Carlo checks of forward marginals (z-scores,
  paths, empirical vs exact RAPSD).
- :mod:`~opdiff.diffusion.samplers`: reverse samplers generic over a denoiser; time grids
  (log-SNR, Karras, Benton et al.'s), NFE, orders.
- :mod:`~opdiff.diffusion.oracle`: Gaussian fields and mixtures — exact scores, denoisers and
  the exact output law of every sampler; convergence curves, error splits, Girsanov bounds.
- :mod:`~opdiff.diffusion.laws`: exact KL, W2 and the TV bracket between Gaussian laws
  (diagonal and dense), and their versions that score diverged (non-finite) laws as the worst.
- :mod:`~opdiff.diffusion.bound_shapes`: the shapes of the Chen et al., Benton et al. and Li–Yan
  convergence bounds (unknown constants), and their plug-ins for Gaussian data.
- :mod:`~opdiff.diffusion.bounds`: exact sweeps (over h, T, N, d) to set beside those shapes
  (by their rates), Richardson extrapolation, orders and crossings.
- :mod:`~opdiff.diffusion.likelihood`: log-likelihood and bits/dim through the
  probability-flow ODE (exact or Hutchinson divergence, diffrax).
- :mod:`~opdiff.diffusion.losses`: denoising score matching with score_sde's weightings and its
  closed-form minimum on Gaussian data.
- :mod:`~opdiff.diffusion.training`: DSM training of a denoiser through the engine (label
  dropout, EMA, checkpoints, resume, meshes).

Imported on demand (networks, sample metrics and data are only loaded when used;
:mod:`opdiff.metrics` takes its Gaussian divergences from :mod:`~opdiff.diffusion.laws`, so the
modules that measure samples with it are not imported here):

- :mod:`~opdiff.diffusion.preconditioned`: the preconditioned denoiser ``Preconditioned`` that
  wraps any network and starts as the Wiener filter.
- :mod:`~opdiff.diffusion.score_mlp`: ``ScoreMLP``, a preconditioned MLP denoiser for
  low-dimensional data.
- :mod:`~opdiff.diffusion.guidance`: classifier-free guidance of a conditional denoiser; exact
  guidance on a labelled Gaussian mixture.
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

from opdiff.diffusion import transforms as transforms
from opdiff.diffusion import bound_shapes as bound_shapes
from opdiff.diffusion import bounds as bounds
from opdiff.diffusion import laws as laws
from opdiff.diffusion import likelihood as likelihood
from opdiff.diffusion import losses as losses
from opdiff.diffusion import marginals as marginals
from opdiff.diffusion import oracle as oracle
from opdiff.diffusion import processes as processes
from opdiff.diffusion import samplers as samplers
from opdiff.diffusion import training as training

__all__ = ["bound_shapes", "bounds", "laws", "likelihood", "losses", "marginals", "oracle",
           "processes", "samplers", "training", "transforms"]
