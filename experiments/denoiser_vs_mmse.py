r"""Learned denoisers against the exact MMSE on Gaussian power-law fields: a U-Net and an
operator denoiser (DeepONet), the DeepONet's PCA floor, and the KL of their samples against the
exact-score sampler at the same budget.

    python -m experiments run denoiser_vs_mmse --preset smoke   # ~9 s (2-core CPU, shared)
    python -m experiments run denoiser_vs_mmse                  # quick, ~135 s shared / ~90 s quiet
    python -m experiments run denoiser_vs_mmse --preset full    # for a GPU (see "Cost")

**Why Gaussian fields.** For data :math:`z_0\sim N(\mu,\mathrm{diag}\,\lambda)` in the DFT
basis (a stationary field on the torus) and the VP process :math:`z_t=a_tz_0+s_t\varepsilon`,
the best denoiser is the Wiener filter and its error is closed form
(:mod:`opdiff.diffusion.oracle`):

.. math:: D^*(z)=\mu+G_t(z-a_t\mu),\quad G_{t,k}=\frac{a_t\lambda_k}{v_{t,k}},\quad
          v_{t,k}=a_t^2\lambda_k+s_t^2,\qquad
          \mathrm{MMSE}(t)=\sum_k\frac{\lambda_ks_t^2}{v_{t,k}}.

Any denoiser :math:`D` has :math:`E\|D(x_t)-x_0\|^2=\mathrm{MMSE}(t)+E\|D-D^*\|^2`, so a
learned denoiser's mean squared error, measured on held-out fields, can be compared with the
exact optimum at every noise level — no reference model, no proxy metric.

**Data.** :func:`~opdiff.diffusion.oracle.power_law_field` ``((size, size), "dft",
alpha=alpha)``: :math:`\lambda_k\propto(|k|^2+1)^{-\alpha/2}`, zero mean, unit pointwise
variance. ``n_train`` training fields and ``n_test`` held-out fields, drawn once from
independent keys. Process: :func:`~opdiff.diffusion.processes.vp` in the ``"dft"`` basis
(score_sde's :math:`\beta\in[0.1,20]`, :math:`t_{\min}=10^{-3}`).

**Models** (both wrapped in :class:`opdiff.nets.Preconditioned`, the EDM preconditioning, with
the *scalar* data scale :math:`\sigma_d` = the training fields' pixel standard deviation and
mean 0):

* ``unet``: :class:`opdiff.nets.UNet` ``(channels=unet_channels, residual=False)``. With the
  scalar :math:`\sigma_d` the untrained model (the net outputs zero) is the *scalar* Wiener
  filter :math:`c_{\rm skip}z`, :math:`c_{\rm skip}=a\sigma_d^2/(a^2\sigma_d^2+s^2)`: the
  same gain for every frequency. Preconditioning with the field's exact spectrum
  :math:`\sigma_{d,k}^2=\lambda_k` would make the untrained model *equal* to :math:`D^*`
  and the comparison empty, so it is not used.
* ``operator_skip`` / ``operator_noskip``: :class:`opdiff.nets.OperatorDenoiser` (branch: the
  noisy field and a time embedding, ``operator_width`` × ``operator_depth``; trunk: grid
  coordinates through random Fourier features; ``operator_p`` trunk functions), with and
  without the skip path (``operator_skips``). Both are run because they answer different
  questions. With the skip path the DeepONet only learns the correction
  :math:`D-c_{\rm skip}z`; without it the output :math:`\mu+\sigma_d\sum_{i\le p}b_i(x,t)
  \tau_i+\sigma_db_0` lies in a fixed ``p``-dimensional affine space, and the **PCA floor**
  (Lanthaler, Mishra & Karniadakis 2022; :mod:`opdiff.theory.deeponet`) applies.

**PCA floor** (:func:`pca_floor`). If :math:`D(x)-c\,x` lies in a ``p``-dimensional affine
space :math:`V` for every input (:math:`c=0` without the skip path, :math:`c=c_{\rm skip}`
with it), then with :math:`Y=D^*(x_t)-c\,x_t`

.. math:: E\|x_0-D\|^2=\mathrm{MMSE}+E\|Y-(D-c\,x_t)\|^2\ \ge\ \mathrm{MMSE}
          +\min_{\dim V=p}E\,\mathrm{dist}(Y,V)^2=\mathrm{MMSE}+\sum_{j>p}\nu_j,

:math:`\nu_1\ge\nu_2\ge\dots` the eigenvalues of :math:`\mathrm{Cov}(Y)`; the minimum is
attained by the projection of :math:`Y` on its top-``p`` principal subspace (a rank-``p``
affine map of :math:`x_t`). Here :math:`\mathrm{Cov}(Y)` is diagonal in the DFT basis with
:math:`\nu_k=(G_{t,k}-c)^2v_{t,k}` (for :math:`c=0`:
:math:`a^2\lambda_k^2/(a^2\lambda_k+s^2)`, the variance of :math:`D^*_k`). The floor holds
for *any* map (linear or not) whose outputs lie in such a space, so it bounds the trained
DeepONet whatever its branch learns; with :math:`p\ge d` it is the MMSE. Without the skip
path it is huge at low noise (the output must carry the :math:`d-p` smallest-variance modes
of :math:`x_0`, which it cannot); with it the floor is small but not zero at mid noise,
because the scalar skip gain is wrong in more than ``p`` modes.

**Training.** :func:`opdiff.diffusion.training.train_denoiser` (Adam, warm-up + cosine decay,
clip 1, EMA ``ema_decay``), batch ``batch_size``, DSM weighting ``weighting``. The EMA
weights are evaluated and sampled. Choices measured in development runs (8×8, otherwise the
quick settings):

* ``size=8`` at quick: a ``(16, 32)`` U-Net at 16×16 trains ~4 × slower per step, so the
  1,000 steps it needs would take the whole quick budget alone.

* ``weighting="sigma2"`` (score_sde's noise-prediction loss, :math:`\frac{a^2}{s^2}
  \|D-x_0\|^2`) rather than ``"denoiser"`` (:math:`\|D-x_0\|^2`): the denoiser weighting
  gives the low-noise levels (MMSE :math:`\approx ds^2/a^2\to0`) almost no weight, and the
  U-Net after 1,000 steps was 8.4 % above the MMSE at :math:`t_{\min}` (max over levels;
  sigma2: 4.1 %, at the highest noise level instead, whose weight :math:`a^2/s^2` is tiny).
  The operator denoiser after 4,000 steps: 6.3 % (denoiser) vs 5.1 % (sigma2).
* ``ema_decay=0.995`` (a ~200-step window): with 0.999 the average still carries the early
  weights after 1,000-1,500 steps (U-Net 1,500 steps, max ratio 1.064 with 0.999).

**Evaluation.** ``n_levels`` times uniform in log-SNR from :math:`t_{\min}` to :math:`T`
(:func:`~opdiff.diffusion.samplers.log_snr_grid`); at each, one noise draw per test field
(:func:`~opdiff.diffusion.training.per_level_mse`): the mean :math:`\widehat{\mathrm{MSE}}`
and its standard error SE (std/√n over test fields).

**Claims.**

0. *Evaluation pipeline.* (a) The exact Wiener denoiser, run through the same Monte-Carlo
   evaluation on the test fields, matches the closed-form MMSE at every level: max
   :math:`|\widehat{\mathrm{MSE}}-\mathrm{MMSE}|/\mathrm{SE}\le4` (a level set of ``n_levels``
   z-scores). (b) The untrained U-Net (:class:`Preconditioned` with a zero-output net) matches
   the closed-form error of the scalar Wiener filter,
   :math:`\sum_k(c_{\rm skip}a-1)^2\lambda_k+c_{\rm skip}^2s^2` (:func:`linear_filter_mse`),
   within 4 SE at every level.
1. *Learned ≥ optimal* (each model): :math:`\widehat{\mathrm{MSE}}\ge\mathrm{MMSE}-3\,
   \mathrm{SE}` at every level (a theorem; the check guards the evaluation).
2. *The goal* (U-Net and ``operator_skip``): :math:`\widehat{\mathrm{MSE}}/\mathrm{MMSE}\le`
   ``goal`` (1.1) at every level; the max ratio is the measured value, every per-level ratio is
   in the metrics. Not claimed for ``operator_noskip``, whose PCA floor exceeds the goal by
   orders of magnitude at low noise (next claim).
3. *PCA floor* (each operator model): floor :math:`\le\widehat{\mathrm{MSE}}+3\,\mathrm{SE}`
   at every level (a lower bound never exceeds a measured error); the gap
   :math:`\widehat{\mathrm{MSE}}/\mathrm{floor}` is reported.
4. *Training did something* (U-Net and ``operator_skip``): at the level where the untrained
   model (the scalar Wiener filter, closed form) is worst, training removes at least half of
   its excess: :math:`r_{\rm trained}-1\le\frac12(r_{\rm untrained}-1)`,
   :math:`r=\mathrm{MSE}/\mathrm{MMSE}`.
5. *Sample KL* (each model, each sampler of ``samplers``): ``n_samples`` fields from the prior
   :math:`N(0,I)`, ``sample_steps`` steps on the log-SNR grid with the learned (EMA) denoiser,
   mapped to the DFT basis;
   :math:`\widehat{\mathrm{KL}}` = :func:`opdiff.metrics.moment_kl_diagonal` (the KL of the
   moment-matched diagonal Gaussian to the data law). The same sampler on the same grid with the
   exact denoiser has an exactly Gaussian, diagonal output law
   (:func:`~opdiff.diffusion.oracle.sampler_law`), whose KL is exact. The estimator is biased
   up (metrics docstring: :math:`\approx d/n` at KL = 0); its law for ``n_samples`` draws from
   the exact-score output law is simulated exactly from its sufficient statistics
   (:func:`kl_estimator_null`: per coefficient :math:`\hat m\sim N(m,w/n)`,
   :math:`(n-1)\hat w/w\sim\chi^2_{n-1}`, ``n_boot`` replicates), giving its mean
   :math:`\bar K` and standard deviation :math:`\sigma_K`. Claim: the learned
   :math:`\widehat{\mathrm{KL}}\ge\bar K-3\sigma_K`, i.e. the learned score does not beat the
   exact score at the same budget. Reported: the bias-corrected learned KL
   :math:`\widehat{\mathrm{KL}}-(\bar K-\mathrm{KL}_{\rm exact})`, its ratio to
   :math:`\mathrm{KL}_{\rm exact}` and the excess. *Not a theorem*: a wrong score can offset a
   sampler's own discretisation bias (see ``sampler_convergence``, error split), so for a
   sampler with a large discretisation KL (``ancestral``) the claim can fail without a bug;
   ``pf_heun`` at the same steps has almost no discretisation KL, so there the learned KL is
   the model's own. The moment-matched diagonal KL never exceeds the true KL (a Gaussian target:
   :math:`\mathrm{KL}(P\|Q)=\mathrm{KL}(P\|N_P)+\mathrm{KL}(N_P\|Q)`, and Hadamard's
   inequality for the diagonal), so it measures the error visible in the per-coefficient
   means and variances only.

**Outputs.** ``denoiser_vs_mmse_ratio.png``: MSE/MMSE vs log-SNR per model (±2 SE), the
scalar Wiener filter (untrained), the PCA floors (as floor/MMSE) and the goal line; the
no-skip operator on a log scale beside its floor. ``denoiser_vs_mmse_spectrum.png``: the
error per radial-frequency bin divided by the MMSE in that bin, at the untrained model's worst
level and at :math:`t_{\min}`. ``denoiser_vs_mmse_samples.png``: test fields and samples of
each model; ``denoiser_vs_mmse_sample_spectrum.png``: sample variance / :math:`\lambda_k` per
radial bin (the exact-score law beside). Metrics: every per-level number (``levels``), the
training summaries (first/last-100-step loss, steps/s, seconds), the KL table (``kl``) and
the phase timings (``timings_s``).

**Measured** (quick preset, seed 0; 8×8, :math:`d=64`; SE/MMSE 0.4-0.7 % per level).

* MSE/MMSE at log-SNR 9.1 … −10.1: U-Net 1.007, 0.996, 1.007, 1.014, 1.013, 1.001, 1.021,
  1.020 (max 1.021); DeepONet with skip 1.008, 0.997, 1.012, 1.048, 1.022, 1.013, 1.029, 1.047
  (max 1.048 at log-SNR 0.9, where its PCA floor is 1.036 × MMSE: MSE/floor ≤ 1.047 at every
  level); the untrained scalar Wiener filter peaks at 1.261 (log-SNR 0.9). Claims 0-4 hold.
* DeepONet without skip: 1654 × MMSE at :math:`t_{\min}` against a floor of 1334 × (the 32
  discarded modes); MSE/floor 1.12-1.34 at every level. The floor, not training, is what
  separates it from the goal; the skip path removes that floor.
* Sample KL, 1,000 samples (estimator mean at the exact-score law: 0.065 ± 0.008 for pf_heun,
  the data-vs-data value 0.064). ``pf_heun``, 20 steps (40 NFE): exact score 0.0008; learned,
  bias-corrected: U-Net 0.41, DeepONet (skip) 3.9, (no skip) 33.8. Total-MSE ratios within
  2-5 % still allow KLs 500-5000 × the exact one: the KL weighs each coefficient's error
  relative to :math:`\lambda_k`, the total MSE is dominated by the large low-frequency
  coefficients, and the DeepONet's excess sits at high frequency (spectrum figure: ≈1.1 × the
  MMSE in the 0.44 cycles/pixel bin at log-SNR 0.9; sample variances up to 1.7
  :math:`\lambda_k` there). ``ancestral``, 20 steps: exact score 2.70 — a uniform variance
  deficit, sample variance ≈ 0.65 :math:`\lambda_k` in every radial bin — and learned U-Net
  2.23, DeepONet (skip) 1.94: **claim 5 fails for these two** (z = −7.3 and −11.9): their
  excess variance at high frequencies offsets part of the sampler's deficit, the case the claim
  warned about. No-skip 17.9.

**Cost.** Quick, shared 2-core CPU at load ~4 (wall 135 s): U-Net training 77 s (1,000 steps at
13 steps/s; ~23 steps/s on a quiet machine), the two DeepONets 12-13 s each (2,000 steps at
220-250 steps/s), sampling 16 s, evaluation and figures ~15 s; ~90 s on a quiet machine
(estimate). Smoke runs one small DeepONet (no U-Net: its construction and train-step compilation
alone exceed the CI budget). Full (32×32, :math:`d=1024`, ``operator_p=768`` so that the
skip-path floor stays ≤ 1.04 × MMSE; at ``p=128`` it would be 1.48 ×): on this CPU the U-Net
``(32, 64, 128)`` trains at 0.3 steps/s and the DeepONet (width 1024) at ~14 steps/s. On one
GPU, *if* the U-Net runs 15-30 steps/s (50-100 × this CPU), its 20,000 steps take 10-25 min,
the DeepONets 1-3 min each, sampling (20,000 fields, 3 samplers, 50 steps) and evaluation a few
minutes: ~20-40 min in all — an estimate from CPU throughput, not measured on a GPU.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from opdiff import metrics, plotting
from opdiff.diffusion import oracle, processes, samplers
from opdiff.diffusion.training import per_level_mse, train_denoiser
from opdiff.nets import OperatorDenoiser, Preconditioned, UNet
from opdiff.nets._compat import nnx
from opdiff.theory.diffusion import kl_diagonal

from experiments._diffusion_common import radial_mean
from experiments._learned_common import generate
from experiments._config import (
    MAY_BE_EMPTY, AboveOne, AtLeastTwo, Count, HalfOpenUnit, Positive, Seed,
)
from experiments._report import Report

NAME = "denoiser_vs_mmse"
DESCRIPTION = ("Learned denoisers (U-Net, DeepONet with/without skip) vs the exact Wiener MMSE "
               "per noise level on power-law fields, the DeepONet PCA floor, and sample KL vs "
               "the exact-score KL")
DTYPE = "float32"

WEIGHTINGS = ("denoiser", "sigma2", "likelihood", "none")
STYLE = {"unet": ("tab:blue", "o"), "operator_skip": ("tab:orange", "s"),
         "operator_noskip": ("tab:green", "^")}
LABELS = {"unet": "U-Net", "operator_skip": "DeepONet (skip)",
          "operator_noskip": "DeepONet (no skip)"}


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    size: AtLeastTwo = 8
    unet: bool = True
    alpha: float = 2.5
    n_train: Count = 20000
    n_test: AtLeastTwo = 2000
    n_levels: AtLeastTwo = 8
    weighting: str = "sigma2"
    batch_size: Count = 128
    ema_decay: HalfOpenUnit = 0.995
    unet_channels: tuple[Count, ...] = (16, 32)
    unet_emb_dim: Count = 32
    unet_steps: Count = 1000
    unet_lr: Positive = 2e-3
    operator_skips: Annotated[tuple[bool, ...], MAY_BE_EMPTY] = (True, False)
    operator_p: Count = 32
    operator_width: Count = 256
    operator_depth: Count = 2
    operator_steps: Count = 2000
    operator_lr: Positive = 2e-3
    n_samples: AtLeastTwo = 1000
    samplers: tuple[str, ...] = ("pf_heun", "ancestral")
    sample_steps: Count = 20
    n_boot: Count = 2000
    goal: AboveOne = 1.1
    eval_batch: Count = 2048
    n_show: Count = 6

    def __post_init__(self):
        for name in ("size", "n_train", "n_test", "n_levels", "batch_size", "unet_emb_dim",
                     "unet_steps", "operator_p", "operator_width", "operator_depth",
                     "operator_steps", "n_samples", "sample_steps", "n_boot", "eval_batch",
                     "n_show"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        down = 2 ** (len(self.unet_channels) - 1)
        if not self.unet_channels or any(c < 1 for c in self.unet_channels) or \
                self.size % down:
            raise ValueError(f"unet_channels must be positive ints with size divisible by "
                             f"2^(len-1); got {self.unet_channels} for size {self.size}")
        if self.unet_emb_dim % 2:
            raise ValueError(f"unet_emb_dim must be even, got {self.unet_emb_dim}")
        if self.n_levels < 2 or self.n_test < 2 or self.n_samples < 2:
            raise ValueError("n_levels, n_test and n_samples must be >= 2")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not math.isfinite(self.alpha):
            raise ValueError(f"alpha must be finite, got {self.alpha}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not (self.unet_lr > 0 and self.operator_lr > 0 and self.goal > 1):
            raise ValueError("unet_lr and operator_lr must be > 0 and goal > 1")
        if len(set(self.operator_skips)) != len(self.operator_skips):
            raise ValueError(f"operator_skips must be distinct, got {self.operator_skips}")
        if not self.unet and not self.operator_skips:
            raise ValueError("no model: set unet=True or give operator_skips")
        if not self.samplers or len(set(self.samplers)) != len(self.samplers) or any(
                s not in samplers.SAMPLERS or s in ("pc", "exponential") for s in self.samplers):
            raise ValueError(f"samplers must be distinct entries of {samplers.SAMPLERS} "
                             f"(not pc/exponential), got {self.samplers}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "(n_train + n_test) * size ** 2": (self.n_train + self.n_test) * self.size ** 2,
            "size ** 4": self.size ** 4,
            "n_boot * size ** 2": self.n_boot * self.size ** 2,
            "n_samples * size ** 2": self.n_samples * self.size ** 2,
            "max(batch_size, eval_batch) * size ** 2 * max(unet_channels)":
                max(self.batch_size, self.eval_batch) * self.size ** 2 * max(self.unet_channels),
            "max(operator_width, operator_p) * size ** 2":
                max(self.operator_width, self.operator_p) * self.size ** 2,
        }


PRESETS = {
    # smoke: one small operator denoiser (the U-Net's construction and train-step compilation
    # alone exceed the CI budget); branch width = the trunk's width shares initialiser compiles
    "smoke": Config(unet=False, n_train=1024, n_test=256, n_levels=4, operator_skips=(True,),
                    operator_p=16, operator_width=128, operator_steps=60, n_samples=256,
                    samplers=("pf_heun",), sample_steps=4, n_boot=200, n_show=4),
    "quick": Config(),
    "full": Config(size=32, n_train=200000, n_test=10000, n_levels=12,
                   unet_channels=(32, 64, 128), unet_emb_dim=64, unet_steps=20000,
                   unet_lr=1e-3, ema_decay=0.999, operator_p=768, operator_width=1024,
                   operator_steps=20000, operator_lr=1e-3, n_samples=20000,
                   samplers=("pf_heun", "ancestral", "ddim"), sample_steps=50, n_show=8),
}


# ----------------------------------------------------------------------------- oracle pieces


def _a_s2(process, t):
    """Per-coefficient :math:`(a_t, s_t^2)` as float64 arrays."""
    return (np.asarray(process.scale(t), np.float64), np.asarray(process.variance(t), np.float64))


def log_snr(process, t) -> float:
    r""":math:`\log(a_t^2/s_t^2)` averaged over coefficients (one number for white VP)."""
    a, s2 = _a_s2(process, t)
    return float(np.mean(np.log(a**2 / s2)))


def scalar_wiener_gain(process, t, sigma_data: float) -> np.ndarray:
    r"""The skip gain of :class:`Preconditioned` with a scalar data scale:
    :math:`c_{\rm skip}=a\sigma_d^2/(a^2\sigma_d^2+s^2)` per coefficient (the Wiener filter of
    white data of variance :math:`\sigma_d^2`)."""
    if not sigma_data > 0:
        raise ValueError(f"sigma_data must be > 0, got {sigma_data!r}")
    a, s2 = _a_s2(process, t)
    return a * sigma_data**2 / (a**2 * sigma_data**2 + s2)


def linear_filter_mse(field: oracle.GaussianField, process, t, gain, *, model_mean=None
                      ) -> np.ndarray:
    r"""Per-coefficient MSE of the affine denoiser :math:`D=m+g\,(z-a_tm)` on ``field``:

    .. math:: E(D_k-z_{0,k})^2=(g_ka_t-1)^2\big(\lambda_k+(\mu_k-m_k)^2\big)+g_k^2s_t^2.

    Args:
        field: the data law (diagonal in the process's basis).
        process: the forward process; ``t`` a scalar time.
        gain: :math:`g`, a scalar or per-coefficient array.
        model_mean: :math:`m` in the basis (default: the field's mean).

    Returns:
        float64 array of the field's shape (sum it for the total). With
        ``gain = field.gain(process, t)`` it is :func:`opdiff.diffusion.oracle.mmse`.
    """
    field.check_process(process)
    a, s2 = _a_s2(process, t)
    g = np.broadcast_to(np.asarray(gain, np.float64), field.shape)
    m = field.mean if model_mean is None else np.broadcast_to(
        np.asarray(model_mean, np.float64), field.shape)
    return (g * a - 1) ** 2 * (field.var + (field.mean - m) ** 2) + g**2 * s2


def pca_floor(field: oracle.GaussianField, process, t, p: int, *, skip_gain=0.0) -> float:
    r"""Least :math:`E\|x_0-D(x_t)\|^2` over all maps whose correction :math:`D-c\,x_t` takes
    values in a ``p``-dimensional affine space (module docstring):

    .. math:: \mathrm{MMSE}(t)+\sum_{j>p}\nu_j,\qquad \nu_k=(G_{t,k}-c_k)^2\,v_{t,k}
              \ \text{sorted decreasingly},

    :math:`G` the Wiener gain, :math:`v=a^2\lambda+s^2`, :math:`c` = ``skip_gain`` (0: no skip
    path, the DeepONet bound of :func:`opdiff.theory.deeponet.pca_floor` applied to
    :math:`D^*`). Equals the MMSE when ``p >= d``.

    Raises:
        ValueError: if ``p`` is not a positive int or ``skip_gain`` does not broadcast.
    """
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"p must be a positive int, got {p!r}")
    field.check_process(process)
    try:
        c = np.broadcast_to(np.asarray(skip_gain, np.float64), field.shape)
    except ValueError:
        raise ValueError(f"skip_gain must be a scalar or have shape {field.shape}, got shape "
                         f"{np.shape(skip_gain)}") from None
    a, s2 = _a_s2(process, t)
    v = a**2 * field.var + s2
    nu = np.sort(((a * field.var / v - c) ** 2 * v).ravel())[::-1]
    mmse = float(np.sum(field.var * s2 / v))
    return mmse + float(np.sum(nu[int(p):]))


def kl_bias_at_zero(d: int, n: int) -> float:
    r"""Exact mean of :func:`opdiff.metrics.moment_kl_diagonal` for ``n`` draws from the target
    itself in ``d`` coordinates: :math:`\frac d{2n}+\frac d2[\ln\frac{n-1}2-
    \psi(\frac{n-1}2)]` (the data-vs-data floor of the estimator)."""
    if n < 2 or d < 1:
        raise ValueError(f"need d >= 1 and n >= 2, got d={d}, n={n}")
    h = 0.5 * (n - 1)
    return d / (2 * n) + 0.5 * d * (math.log(h) - float(special.digamma(h)))


def kl_estimator_null(m, w, mean, var, n: int, key, reps: int) -> np.ndarray:
    r"""``reps`` draws of :func:`opdiff.metrics.moment_kl_diagonal` for ``n`` samples of
    :math:`N(m,\mathrm{diag}\,w)` against :math:`N(\text{mean},\mathrm{diag}\,\text{var})`,
    simulated from the sufficient statistics (exact in law): per coefficient
    :math:`\hat m=m+\sqrt{w/n}\,\xi` and :math:`\hat w=w\,\chi^2_{n-1}/(n-1)`, independent.

    Returns:
        float64 ``[reps]``.
    """
    if n < 2 or reps < 1:
        raise ValueError(f"need n >= 2 and reps >= 1, got n={n}, reps={reps}")
    m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
    if np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("w must be finite and > 0")
    # a numpy stream fixed by the key (jax.random.gamma costs seconds of compilation)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    xi = rng.standard_normal((reps, *m.shape))
    chi2 = rng.chisquare(n - 1, (reps, *m.shape))
    m_hat = m + np.sqrt(w / n) * xi
    w_hat = w * chi2 / (n - 1)
    per = kl_diagonal(m_hat, w_hat, np.asarray(mean, np.float64), np.asarray(var, np.float64),
                      per_coefficient=True)
    return per.reshape(reps, -1).sum(axis=1)


# ----------------------------------------------------------------------------- models


def build_models(cfg: Config, process, sigma_data: float, key) -> dict:
    """The untrained models by name (``unet``, ``operator_skip``, ``operator_noskip``)."""
    out = {}
    if cfg.unet:
        out["unet"] = Preconditioned(
            UNet(process.shape, channels=tuple(cfg.unet_channels), emb_dim=cfg.unet_emb_dim,
                 residual=False, key=jax.random.fold_in(key, 0)),
            process, sigma_data=sigma_data, mean=0.0)
    for i, skip in enumerate(cfg.operator_skips):
        net = OperatorDenoiser(process.shape, p=cfg.operator_p, branch_width=cfg.operator_width,
                               branch_depth=cfg.operator_depth, key=jax.random.fold_in(key, 1 + i))
        out["operator_skip" if skip else "operator_noskip"] = Preconditioned(
            net, process, sigma_data=sigma_data, mean=0.0, skip=skip)
    return out


_BATCHED = nnx.jit(lambda m, x, t: m.batched(x, t))  # one compile per model structure


def jitted_denoiser(model):
    """``D(x, t)`` for :func:`per_level_mse` (``t`` one time per example); models of one
    structure (untrained and trained U-Net) share the compiled function."""
    return lambda x, t: _BATCHED(model, x, t)


def exact_denoiser(field, process):
    """The Wiener denoiser with the batch-of-times signature of :func:`per_level_mse`."""
    d = field.denoiser(process)
    return jax.jit(lambda x, t: d(x, t[0]))


def level_errors(den, process, x_test: np.ndarray, key, ts, chunk: int) -> np.ndarray:
    """``[len(ts), n_test]`` squared errors per test field (sum over pixels), in chunks."""
    out = []
    for i, lo in enumerate(range(0, len(x_test), chunk)):
        out.append(per_level_mse(den, process, jnp.asarray(x_test[lo:lo + chunk]),
                                 jax.random.fold_in(key, i), ts))
    return np.concatenate(out, axis=1)


def coefficient_errors(den, process, x_test: np.ndarray, key, t: float, chunk: int
                       ) -> np.ndarray:
    """Mean squared error per coefficient (in the process basis) at one time, float64."""
    tot = np.zeros(process.shape)
    for i, lo in enumerate(range(0, len(x_test), chunk)):
        x0 = jnp.asarray(x_test[lo:lo + chunk])
        xt = process.sample(jax.random.fold_in(key, i), x0, float(t))
        err = den(xt, jnp.full((x0.shape[0],), t, x0.dtype)) - x0
        tot += np.sum(np.asarray(process.to_basis(err), np.float64) ** 2, axis=0)
    return tot / len(x_test)


def summarise(err: np.ndarray, mmse: np.ndarray) -> dict:
    """Per-level mean, SE, ratio to the MMSE and z-score from ``[levels, n]`` errors."""
    mse = err.mean(axis=1)
    se = err.std(axis=1, ddof=1) / math.sqrt(err.shape[1])
    return dict(mse=mse, se=se, ratio=mse / mmse, ratio_se=se / mmse, z=(mse - mmse) / se)


# ----------------------------------------------------------------------------- run


def run(cfg: Config, out_dir: Path) -> Report:
    rep = Report()
    timings = {}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    key = jax.random.key(cfg.seed)
    shape = (cfg.size, cfg.size)
    field = oracle.power_law_field(shape, "dft", alpha=cfg.alpha)
    process = processes.vp(shape, basis="dft")
    x_all = np.asarray(field.sample(jax.random.fold_in(key, 1), cfg.n_train + cfg.n_test))
    x_train, x_test = x_all[:cfg.n_train], x_all[cfg.n_train:]
    sigma_data = float(x_train.std())
    ts = samplers.log_snr_grid(process, cfg.n_levels - 1)
    lsnr = np.array([log_snr(process, t) for t in ts])
    mmse = np.array([float(np.sum(oracle.mmse(field, process, t))) for t in ts])
    untrained = np.array([float(np.sum(linear_filter_mse(
        field, process, t, scalar_wiener_gain(process, t, sigma_data), model_mean=0.0)))
        for t in ts])
    k_eval = jax.random.fold_in(key, 3)  # the same noise draws for every model

    # 0a. the pipeline on the exact denoiser
    exact = summarise(level_errors(exact_denoiser(field, process), process, x_test, k_eval, ts,
                                   cfg.eval_batch), mmse)
    zmax = float(np.max(np.abs(exact["z"])))
    rep.check("0a. the exact Wiener denoiser through the Monte-Carlo evaluation matches the "
              "closed-form MMSE at every level: max |MSE - MMSE| / SE", zmax, 4.0, zmax <= 4.0)
    lap("exact_eval")

    models = build_models(cfg, process, sigma_data, jax.random.fold_in(key, 4))
    # 0b. an untrained model with the skip path is the scalar Wiener filter
    first = next((n for n in ("unet", "operator_skip") if n in models), None)
    u0 = None
    if first is not None:
        u0 = summarise(level_errors(jitted_denoiser(models[first]), process, x_test, k_eval, ts,
                                    cfg.eval_batch), mmse)
        z0 = float(np.max(np.abs((u0["mse"] - untrained) / u0["se"])))
        rep.check(f"0b. the untrained {LABELS[first]} matches the closed-form error of the "
                  f"scalar Wiener filter c_skip z at every level: max |MSE - closed form| / SE",
                  z0, 4.0, z0 <= 4.0)
    lap("untrained_eval")

    results, trained = {}, {}
    for i, (name, model) in enumerate(models.items()):
        is_unet = name == "unet"
        steps = cfg.unet_steps if is_unet else cfg.operator_steps
        lr = cfg.unet_lr if is_unet else cfg.operator_lr
        t0 = time.perf_counter()
        res = train_denoiser(model, process, x_train, steps=steps,
                             key=jax.random.fold_in(key, 10 + i), batch_size=cfg.batch_size,
                             lr=lr, weighting=cfg.weighting, ema_decay=cfg.ema_decay,
                             progress=False)
        train_s = time.perf_counter() - t0
        ema = res.ema_params
        trained[name] = ema
        lap(f"train_{name}")
        r = summarise(level_errors(jitted_denoiser(ema), process, x_test, k_eval, ts,
                                   cfg.eval_batch), mmse)
        losses = np.asarray(res.losses)
        k = min(100, len(losses))
        r["train"] = dict(steps=steps, lr=lr, seconds=train_s, steps_per_s=res.steps_per_s,
                          loss_first=float(losses[:k].mean()), loss_last=float(losses[-k:].mean()))
        if name != "unet":
            c = [scalar_wiener_gain(process, t, sigma_data) if name == "operator_skip" else 0.0
                 for t in ts]
            r["floor"] = np.array([pca_floor(field, process, t, cfg.operator_p, skip_gain=cj)
                                   for t, cj in zip(ts, c)])
        results[name] = r
        lap(f"eval_{name}")

    # claims 1-4
    worst = int(np.argmax(untrained / mmse))
    for name, r in results.items():
        lab = LABELS[name]
        zmin = float(np.min(r["z"]))
        rep.check(f"1. {lab}: MSE >= MMSE - 3 SE at every level (min (MSE - MMSE)/SE)", zmin,
                  -3.0, zmin >= -3.0)
        if name != "operator_noskip":
            rmax = float(np.max(r["ratio"]))
            at = float(lsnr[int(np.argmax(r["ratio"]))])
            rep.check(f"2. {lab}: MSE/MMSE <= {cfg.goal:g} at every level (max ratio; at "
                      f"log-SNR {at:.2f})", rmax, cfg.goal, rmax <= cfg.goal)
        if "floor" in r:
            zf = float(np.max((r["floor"] - r["mse"]) / r["se"]))
            gap = r["mse"] / r["floor"]
            rep.check(f"3. {lab} (p={cfg.operator_p}): PCA floor <= MSE + 3 SE at every level "
                      f"(max (floor - MSE)/SE; MSE/floor from {gap.min():.3g} to "
                      f"{gap.max():.3g})", zf, 3.0, zf <= 3.0)
        if name != "operator_noskip":
            ru, rt = float(untrained[worst] / mmse[worst]), float(r["ratio"][worst])
            rep.check(f"4. {lab}: training removes at least half the untrained scalar Wiener "
                      f"filter's excess at its worst level (log-SNR {lsnr[worst]:.2f}; "
                      f"untrained ratio {ru:.3f}): trained ratio - 1 <= (untrained - 1)/2",
                      rt - 1, 0.5 * (ru - 1), rt - 1 <= 0.5 * (ru - 1))
    lap("claims")

    # spectra at the untrained model's worst level and at t_min
    spec_levels = sorted({worst, 0})
    spectra = {}
    for j in spec_levels:
        kj = jax.random.fold_in(k_eval, 1000 + j)
        spectra[j] = dict(mmse=np.asarray(oracle.mmse(field, process, ts[j]), np.float64),
                          untrained=linear_filter_mse(
                              field, process, ts[j], scalar_wiener_gain(process, ts[j],
                                                                        sigma_data),
                              model_mean=0.0),
                          models={n: coefficient_errors(jitted_denoiser(m), process, x_test, kj,
                                                        ts[j], cfg.eval_batch)
                                  for n, m in trained.items()})
    lap("spectra")

    # 5. sample KL vs the exact-score KL
    grid = samplers.log_snr_grid(process, cfg.sample_steps)
    d = field.size
    kl_rows, sample_var, shown = {}, {}, {}
    for si, meth in enumerate(cfg.samplers):
        m, w = (np.asarray(a, np.float64) for a in oracle.sampler_law(meth, process, field, grid))
        kl_exact = float(oracle.divergences(m, w, field)["kl"])
        null = kl_estimator_null(m, w, field.mean, field.var, cfg.n_samples,
                                 jax.random.fold_in(key, 500 + si), cfg.n_boot)
        kbar, ksd = float(null.mean()), float(null.std(ddof=1))
        kl_rows[meth] = dict(exact=kl_exact, null_mean=kbar, null_sd=ksd,
                             bias=kbar - kl_exact, nfe=samplers.nfe(meth, cfg.sample_steps),
                             exact_var_ratio=w / field.var, models={})
        for mi, (name, model) in enumerate(trained.items()):
            x = generate(model, process, jax.random.fold_in(key, 600 + 10 * si + mi),
                         cfg.n_samples, x_train=x_train, steps=cfg.sample_steps, method=meth,
                         batch=min(cfg.n_samples, cfg.eval_batch))
            z = np.asarray(process.to_basis(jnp.asarray(x)), np.float64)
            finite = bool(np.all(np.isfinite(z)))
            k_hat = metrics.moment_kl_diagonal(z, field.mean, field.var) if finite else math.inf
            corr = k_hat - (kbar - kl_exact)
            kl_rows[meth]["models"][name] = dict(
                kl_hat=k_hat, kl_corrected=corr, excess=corr - kl_exact,
                ratio=corr / kl_exact if kl_exact > 0 else math.inf,
                z=(k_hat - kbar) / ksd)
            if finite:
                sample_var.setdefault(meth, {})[name] = z.var(axis=0, ddof=1) / field.var
            if si == 0:
                shown[name] = x[:cfg.n_show]
            lab = LABELS[name]
            rep.check(f"5. {lab}, {meth} {cfg.sample_steps} steps ({kl_rows[meth]['nfe']} NFE), "
                      f"{cfg.n_samples} samples: estimated KL >= the estimator's mean at the "
                      f"exact-score law - 3 sd (exact KL {kl_exact:.4g}; bias-corrected learned "
                      f"KL {corr:.4g})", k_hat, kbar - 3 * ksd, k_hat >= kbar - 3 * ksd)
        lap(f"sample_{meth}")

    # metrics and bounds
    levels = dict(t=ts, log_snr=lsnr, mmse=mmse, untrained_mse=untrained,
                  untrained_ratio=untrained / mmse, exact_mc=exact, untrained_mc=u0)
    for name, r in results.items():
        levels[name] = {k: v for k, v in r.items() if k != "train"}
        if "floor" in r:
            levels[name]["floor_over_mmse"] = r["floor"] / mmse
            levels[name]["mse_over_floor"] = r["mse"] / r["floor"]
    rep.metrics.update(
        d=d, sigma_data=sigma_data, levels=levels,
        max_ratio={n: float(np.max(r["ratio"])) for n, r in results.items()},
        untrained_max_ratio=float(np.max(untrained / mmse)),
        training={n: r["train"] for n, r in results.items()},
        kl={meth: {k: v for k, v in row.items() if k != "exact_var_ratio"}
            for meth, row in kl_rows.items()},
        kl_data_vs_data=kl_bias_at_zero(d, cfg.n_samples),
        timings_s=timings)
    rep.bounds.update(
        mmse=mmse, goal=cfg.goal,
        pca_floor={n: r["floor"] for n, r in results.items() if "floor" in r},
        exact_score_kl={meth: row["exact"] for meth, row in kl_rows.items()})

    rep.figures += _figure_ratio(cfg, lsnr, mmse, untrained, results, out_dir)
    rep.figures += _figure_spectrum(process, lsnr, spectra, out_dir)
    rep.figures += _figure_samples(cfg, x_test, shown, out_dir)
    rep.figures += _figure_sample_spectrum(cfg, process, kl_rows, sample_var, out_dir)
    lap("figures")
    return rep


# ----------------------------------------------------------------------------- figures


def _figure_ratio(cfg, lsnr, mmse, untrained, results, out_dir):
    fig, axes = plotting.new_figure(1, 2, width=4.6, height=3.6)
    ax = axes[0, 0]
    for name, r in results.items():
        if name == "operator_noskip":
            continue
        c, mk = STYLE[name]
        ax.errorbar(lsnr, r["ratio"], yerr=2 * r["ratio_se"], color=c, marker=mk, markersize=4,
                    linewidth=1.3, capsize=2, label=f"{LABELS[name]} (trained)")
        if "floor" in r:
            ax.plot(lsnr, r["floor"] / mmse, color=c, linestyle="--", linewidth=1.1,
                    label=f"PCA floor, p={cfg.operator_p} (skip)")
    ax.plot(lsnr, untrained / mmse, color="0.4", linestyle=":", marker=".", linewidth=1.2,
            label="untrained: scalar Wiener filter")
    ax.axhline(cfg.goal, color="tab:red", linewidth=0.9, label=f"goal {cfg.goal:g}")
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set(xlabel="log-SNR  log(a²/s²)", ylabel="MSE / MMSE",
           title=f"{cfg.size}×{cfg.size} power-law field, α={cfg.alpha:g}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    ax = axes[0, 1]
    for name, r in results.items():
        c, mk = STYLE[name]
        ax.plot(lsnr, r["ratio"], color=c, marker=mk, markersize=4, linewidth=1.3,
                label=LABELS[name])
        if name == "operator_noskip":
            ax.plot(lsnr, r["floor"] / mmse, color=c, linestyle="--", linewidth=1.1,
                    label=f"PCA floor, p={cfg.operator_p} (no skip)")
    ax.axhline(cfg.goal, color="tab:red", linewidth=0.9)
    ax.set(yscale="log", xlabel="log-SNR  log(a²/s²)", ylabel="MSE / MMSE",
           title="every model, log scale")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    return plotting.save(fig, out_dir / "denoiser_vs_mmse_ratio.png")


def _figure_spectrum(process, lsnr, spectra, out_dir):
    fig, axes = plotting.new_figure(1, len(spectra), width=4.4, height=3.4)
    for ax, (j, sp) in zip(axes[0], spectra.items()):
        f, base = oracle.radial_profile(sp["mmse"], process)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, e in sp["models"].items():
                c, mk = STYLE[name]
                ax.plot(f, oracle.radial_profile(e, process)[1] / base, color=c, marker=mk,
                        markersize=3, linewidth=1.2, label=LABELS[name])
            ax.plot(f, oracle.radial_profile(sp["untrained"], process)[1] / base, color="0.4",
                    linestyle=":", marker=".", label="untrained (scalar Wiener)")
        ax.axhline(1.0, color="k", linewidth=0.8)
        ax.set(yscale="log", xlabel="radial frequency (cycles/pixel)",
               ylabel="error / MMSE in the bin", title=f"log-SNR {lsnr[j]:.2f}")
        ax.title.set_fontsize(9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    return plotting.save(fig, out_dir / "denoiser_vs_mmse_spectrum.png")


def _figure_samples(cfg, x_test, shown, out_dir):
    rows = [("test fields", x_test[:cfg.n_show])] + [(f"{LABELS[n]} ({cfg.samplers[0]})", x)
                                                     for n, x in shown.items()]
    fig, axes = plotting.new_figure(len(rows), cfg.n_show, width=1.3, height=1.35)
    lim = 2.5 * float(np.std(x_test))
    for i, (title, xs) in enumerate(rows):
        for j, ax in enumerate(axes[i]):
            if j < len(xs):
                ax.imshow(np.asarray(xs[j]), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_title(title, fontsize=7, loc="left")
    return plotting.save(fig, out_dir / "denoiser_vs_mmse_samples.png")


def _figure_sample_spectrum(cfg, process, kl_rows, sample_var, out_dir):
    fig, axes = plotting.new_figure(1, len(cfg.samplers), width=4.2, height=3.4)
    for ax, meth in zip(axes[0], cfg.samplers):
        row = kl_rows[meth]
        f, y = radial_mean(row["exact_var_ratio"], process)
        ax.plot(f, y, color="k", linestyle="--", linewidth=1.2,
                label=f"exact score (KL {row['exact']:.3g})")
        for name, v in sample_var.get(meth, {}).items():
            c, mk = STYLE[name]
            f, y = radial_mean(v, process)
            kc = row["models"][name]["kl_corrected"]
            ax.plot(f, y, color=c, marker=mk, markersize=3, linewidth=1.2,
                    label=f"{LABELS[name]} (KL≈{kc:.3g})")
        ax.axhline(1.0, color="0.5", linewidth=0.8)
        ax.set(yscale="log", xlabel="radial frequency (cycles/pixel)",
               ylabel="sample variance / λ_k (bin mean)",
               title=f"{meth}, {cfg.sample_steps} steps ({row['nfe']} NFE)")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
        ax.grid(True, which="major", alpha=0.3)
    return plotting.save(fig, out_dir / "denoiser_vs_mmse_sample_spectrum.png")
