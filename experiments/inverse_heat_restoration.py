r"""Deblurring and 2× super-resolution of held-out images with a heat-dissipation denoiser:
posterior mean and posterior samples against the naive inverse, bicubic, Wiener and the best
linear estimator — a PSNR/SSIM table in the form of the seed's super-resolution table.

    python -m experiments run inverse_heat_restoration --preset smoke   # ~15 s on a 2-core CPU
    python -m experiments run inverse_heat_restoration                  # quick, ~100 s
    python -m experiments run inverse_heat_restoration --preset full    # GPU (estimate below)

**The idea.** Heat dissipation (:func:`opdiff.diffusion.processes.heat_dissipation`, IHDM) is
diagonal in the DCT basis with marginal

.. math:: z_t=a_t(k)\,z_0+\sigma\,\varepsilon,\qquad a_t(k)=e^{-\lambda_k\tau(t)},\quad
          \tau(t)=\sigma_B(t)^2/2,\quad \sigma_B(t)=\sigma_{B,\min}(\sigma_{B,\max}/
          \sigma_{B,\min})^{t/T},

i.e. *the observation model of deblurring*: the image blurred by the heat semigroup
:math:`e^{\tau\Delta}` (a Gaussian blur of width :math:`\sigma_B` pixels, Neumann boundaries)
plus white noise of std :math:`\sigma=0.01` (on the :math:`[-1,1]` scale). Hence

1. the trained denoiser :math:`D(x_t,t)\approx E[x_0\mid x_t]` *is* the MMSE deblurring
   estimate (the posterior mean) for the blur of time :math:`t` — one network evaluation;
2. running a reverse sampler from :math:`t` (starting at the observation) down to
   :math:`t_{\min}` on the log-level grid :func:`~opdiff.diffusion.samplers.log_level_between`
   and denoising at the end (``denoise=True``) draws (with an exact denoiser) from
   :math:`p(x_0\mid x_t)` up to the tiny residual :math:`\mathrm{Var}(x_0\mid x_{t_{\min}})`
   and the sampler's discretisation; the mean of :math:`K` such samples tends to the posterior
   mean.

For an exact posterior sample :math:`\tilde x` (independent of :math:`x_0` given the
observation :math:`y`), :math:`E\|\tilde x-x_0\|^2=E\|\tilde x-m\|^2+E\|x_0-m\|^2=
2\,\mathrm{MMSE}` with :math:`m=E[x_0\mid y]`; with the final denoising step the sample is
:math:`E[x_0\mid x_{t_{\min}}]` and the identity reads :math:`2\,\mathrm{MMSE}_t-
\mathrm{MMSE}_{t_{\min}}` (law of total variance along the Markov chain). The ratio
sample-MSE / posterior-mean-MSE is therefore about 2 (claim 2). The mean of :math:`K` exact
samples has MSE :math:`\mathrm{MMSE}(1+1/K)` (reported).

**2× super-resolution.** The low-resolution image is the 2×2 average pooling of the test
image; it is upsampled back by nearest-neighbour replication (``upsample``; or bilinear).
Following the brief, the heat level whose blur best matches is chosen **from the training
data**: :math:`t^*=\arg\min_t\frac1N\sum_i\|e^{\tau(t)\Delta}x_i-U(P(x_i))\|^2` over training
images (:func:`match_heat_level`, exact per DCT coefficient from second moments, ``t_grid``
times); on digits :math:`t^*=0.156` (:math:`\sigma_B=0.77` px). *Used literally this fails*:
the mismatch :math:`U(P(x))-e^{\tau^*\Delta}x` has 0.078 per pixel — 780 times the process
noise :math:`\sigma^2=10^{-4}` — mostly at high frequencies, where the Wiener gain
:math:`\approx1/a_{t^*}` amplifies it: Wiener 8.4 dB, learned 8.3 dB, below the
upsampled image itself (13.2 dB) (kept in ``metrics[...]["tasks"]["SR 2x"]["literal_t_star"]``).
So the observation is blurred further (:func:`reblur`, the semigroup property: a heat blur
at :math:`t^*` becomes one at :math:`t_{\rm obs}`, while the mismatch is damped by
:math:`e^{-\lambda_k(\tau_{\rm obs}-\tau^*)}`) to the level :math:`t_{\rm obs}\ge t^*` at which
the Wiener (DCT) filter restores the *training* pairs best
(:func:`select_observation_level`, exact from moments, ``t_grid`` times; one choice for every
heat-model method, made without the learned model and without test images); on digits
:math:`t_{\rm obs}=0.408` (:math:`\sigma_B=1.55` px). Then denoise / sample from
:math:`t_{\rm obs}` exactly as for deblurring. No noise is added to the observation.

**Methods** (columns of the table; every estimate is clipped to the image range before
PSNR/SSIM, as SR evaluations do; MSE-based claims use the unclipped estimates):

- *Observation*: the blurred noisy image itself (deblurring) / the nearest-upsampled
  low-resolution image (SR) — doing nothing.
- *Naive inverse*: divide every DCT coefficient by :math:`a_t(k)` (:func:`naive_inverse`).
  Unbiased; its error is the amplified noise, :math:`E\|\hat x-x_0\|^2=\sigma^2\sum_k
  a_t(k)^{-2}` exactly (claim 4), which explodes for :math:`\sigma_B\gtrsim1` px
  (:math:`a_t\approx e^{-15\tau}` at the highest 8×8 DCT frequency).
- *Bicubic* (SR only): cubic-spline interpolation of the low-resolution image,
  ``scipy.ndimage.zoom(order=3, grid_mode=True, mode="reflect")`` (pixel areas aligned).
- *Wiener (DCT)*: the exact posterior mean of the moment-matched Gaussian that is diagonal in
  the DCT basis (the field of :func:`opdiff.diffusion.oracle.field_from_samples` on the
  training images and its ``denoiser(process)``, computed by their numpy twins
  :func:`dct_field`, :func:`wiener_coeffs` — equal to them in the tests — to spare JAX
  compilations) at :math:`t`, resp. :math:`t_{\rm obs}`: :math:`\mu+G_t(z-a_t\mu)`,
  :math:`G_t=a_t\lambda/(a_t^2\lambda+\sigma^2)` per coefficient — linear, with the same
  (heat-model) observation model the learned model uses.
- *LMMSE (full cov.)*: the best *linear* estimator under the true forward operator and the
  full training covariance :math:`\Sigma` (digits' DCT coefficients are correlated):
  :math:`\mu+\Sigma A^\top(A\Sigma A^\top+\sigma^2I)^{-1}(y-A\mu)` with :math:`A` the dense
  heat blur (deblurring), resp. the 2×2 pooling matrix and a ridge of
  :math:`10^{-6}\,\mathrm{tr}(A\Sigma A^\top)/m` instead of :math:`\sigma^2` (SR: the
  low-resolution image is exact) (:func:`lmmse`).
- *Ours*: the heat-dissipation U-Net (:func:`experiments._learned_common.make_unet_denoiser`,
  ``channels``, ``emb_dim``; or with ``model="deeponet"`` the operator denoiser of
  :func:`~experiments._learned_common.make_operator_denoiser`, ``deeponet_p`` trunk
  functions, branch width ``deeponet_width`` — the smoke preset uses it because it compiles
  in about half the time; the plumbing is the same), EDM-preconditioned, trained by :func:`opdiff.diffusion.training.train_denoiser` on the
  training images, EMA weights): *posterior mean* :math:`D(y,t)`; *posterior sample* (one of
  ``n_samples``, ``sampler`` on ``sample_steps`` steps from :math:`t` to :math:`t_{\min}`,
  then one denoising evaluation); *mean of K samples*.

**Data.** Held-out scikit-learn digits (8×8, :func:`experiments._learned_common.load_image_set`,
``n_test`` test images, the rest for training; :math:`x\in[-1,1]`); PSNR/SSIM on
:math:`u=(x+1)/2\in[0,1]` with data range 1. SSIM (:func:`opdiff.metrics.ssim`) uses the
Gaussian window :math:`\sigma=1.5` cropped to 7×7 on 8×8 images (the default 11×11 does not
fit). ``full`` adds Fashion-MNIST 28×28 (when the Debian package ``dataset-fashion-mnist`` is
installed; else skipped with a note in ``metrics["notes"]``). Observations for deblurring are
``process.sample(key, x0, t)`` — exactly the forward process — at the blur widths
``blur_widths`` (pixels; :math:`t=T\log(\sigma_B/\sigma_{B,\min})/\log(\sigma_{B,\max}/
\sigma_{B,\min})`, :func:`blur_time`). The library's heat process starts at
:math:`\sigma_{B,\min}=0.5` px, so "0.7 px" is the total blur width, not an increment.

**Claims** (per data set; none is tuned to pass, failures are reported as measured):

1. *Learned beats the Wiener filter* (per deblurring level, and SR): the test-mean PSNR of
   the learned posterior mean is at least the Wiener (DCT) PSNR minus ``mc_z`` standard errors
   of the paired per-image difference (for non-Gaussian data the MMSE estimator beats the best
   linear one; may fail with little training).
2. *Posterior samples cost a factor two* (per deblurring level): sample MSE / posterior-mean MSE
   lies in ``ratio_band`` around 2 (exact posterior: :math:`2-\mathrm{MMSE}_{t_{\min}}/
   \mathrm{MMSE}_t`). The same ratio for Gaussian data drawn from the moment-matched field and
   its exact denoiser through the same sampler is reported as a reference
   (``ratio_gaussian_reference``, with its theory ``ratio_gaussian_theory``).
3. *Bicubic is worse than Wiener* for 2× SR: test-mean PSNR of bicubic < Wiener (DCT, at
   :math:`t_{\rm obs}`); and *ours beats bicubic* (the seed's headline): learned posterior mean PSNR >
   bicubic PSNR.
4. *The naive inverse blows up as predicted* (per deblurring level): its measured unclipped
   MSE equals :math:`\sigma^2\sum_ka_t(k)^{-2}` within 5 standard errors (the exact chi-square
   SE :math:`\sqrt{2\sum_k\sigma^4a^{-4}/n}` per image); and where that prediction exceeds the
   data's total variance (a blow-up is predicted) its clipped PSNR is below that of the
   trivial estimate "the training mean image" (worse than ignoring the observation).

**Outputs.** ``metrics["table_markdown"]``: rows "This image" (test image ``image_index``) and
"Test mean (n)" per task, columns the methods, cells "PSNR / SSIM" (the seed's layout); the
same as ``inverse_heat_restoration_table.png``; ``inverse_heat_restoration_grid.png``: per task a
few test images, columns ground truth | observation | bicubic (SR) or naive inverse
(deblurring) | Wiener | posterior mean | three posterior samples;
``inverse_heat_restoration_psnr.png``: test-mean PSNR against blur width per method;
``metrics[dataset]``: every number (per task and method: PSNR, SSIM, unclipped squared
error, their SEs; :math:`t^*`, :math:`t_{\rm obs}`, the ratios, training loss, speed and
timings).

**Measured (quick, digits, seed 0; 1,500 training steps).** Test-mean PSNR (dB): deblurring
0.7 / 1.0 / 1.5 px — Wiener 31.15 / 22.10 / 16.44, LMMSE 32.36 / 24.42 / 19.42, learned
posterior mean 30.39 / 23.86 / 20.71; SR — bicubic 13.48, Wiener 14.09, LMMSE 17.13,
learned 16.24. The learned posterior mean loses to the linear filters at the mildest blur
(where they are nearly exact; claim 1 fails there) and beats the DCT Wiener filter at larger
blurs and for SR; the full-covariance LMMSE (which for SR knows the exact pooling operator)
stays ahead except at 1.5 px. Posterior samples cost more than the factor two of an exact
sampler at 1.0 and 1.5 px (ratios 2.94 and 2.78; the ancestral sampler on 20 steps gives
1.78 and 1.69 for Gaussian data): claim 2 fails there, as measured — the learned samples
carry error beyond the posterior spread. The naive inverse is fine at 0.7 px (28.8 dB, as
predicted) and explodes beyond (predicted MSE 500 and 6e10 per image, measured within 1 SE).

**Randomness.** One key, ``jax.random.key(seed, impl=prng)``, split by ``fold_in`` for the
model, training, observations and samplers. The default ``prng="rbg"`` (JAX's RBG
generator) instead of Threefry cuts the one-off XLA compilations of the U-Net's initialisers
from ~13 s to ~4 s of CPU (measured); it is reproducible on one platform and JAX version but,
unlike Threefry, its bits may differ across backends (``--set prng=threefry2x32`` to compare
a CPU run with a GPU run bit for bit).

**Run times** (measured on the 2-core CPU while it was ~3× oversubscribed by other jobs —
training ran at 7.3 steps/s against ~23 on a quiet machine — so the quiet-machine figures are
these scaled by that factor, i.e. *estimates*): smoke 47 s wall / 23 s CPU measured, ~15 s
quiet (it is mostly XLA compilation: the denoiser's initialisers, the training step, the
sampler and the jitted denoiser); quick 320 s wall measured (training 251 s, evaluation
62 s), ~100 s quiet, of which training 1,500 steps is ~65 s. ``full`` (digits 20,000 steps
of a (32, 64) U-Net, 1,000 test images, 16 posterior samples on 50 steps, plus Fashion-MNIST
28×28 40,000 steps) is meant for a GPU: an *estimate* from the CPU throughput and the usual
~50-100× GPU speed-up of such small convolutions is 15–30 minutes on one GPU (not run).
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
import scipy.fft
import scipy.ndimage

from opdiff import images, metrics, plotting
from opdiff.diffusion import oracle, samplers
from opdiff.diffusion.training import train_denoiser

from experiments import _learned_common as lc
from experiments._config import AtLeastTwo, Count, HalfOpenUnit, NonNegInt, Positive, Range, Seed
from experiments._report import Report

NAME = "inverse_heat_restoration"
DESCRIPTION = ("Deblurring and 2x super-resolution of held-out digits with a heat-dissipation "
               "denoiser (posterior mean, samples) vs naive, bicubic, Wiener, LMMSE: PSNR/SSIM")
DTYPE = "float32"

DATASETS = ("digits", "fashion")
UPSAMPLERS = ("nearest", "bilinear")
PRNGS = ("rbg", "threefry2x32", "unsafe_rbg")
MODELS = ("unet", "deeponet")
METHODS = ("observation", "naive", "bicubic", "wiener", "lmmse", "post_mean", "post_sample",
           "mean_k")
LABELS = {"observation": "Observation", "naive": "Naive inverse", "bicubic": "Bicubic",
          "wiener": "Wiener (DCT)", "lmmse": "LMMSE (full cov.)",
          "post_mean": "Ours: posterior mean", "post_sample": "Ours: posterior sample",
          "mean_k": "Ours: mean of K samples"}


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    datasets: tuple[str, ...] = ("digits",)
    n_test: AtLeastTwo = 297
    model: str = "unet"
    deeponet_p: Count = 64
    deeponet_width: Count = 256
    channels: tuple[Count, ...] = (16, 32)
    emb_dim: Count = 32
    train_steps: Count = 1500
    fashion_train_steps: Count = 40000
    batch_size: Count = 128
    lr: Positive = 1e-3
    ema_decay: HalfOpenUnit = 0.995
    blur_widths: tuple[Annotated[float, Range(lo=0.5, lo_open=True)], ...] = (0.7, 1.0, 1.5)
    upsample: str = "nearest"
    t_grid: Annotated[int, Range(lo=3)] = 2001
    n_samples: Count = 3
    sample_steps: Count = 20
    sampler: str = "ancestral"
    gaussian_reference: bool = True
    prng: str = "rbg"
    image_index: NonNegInt = 0
    n_show: Count = 3
    mc_z: Positive = 2.0
    ratio_band: tuple[Positive, ...] = (1.5, 2.5)

    def __post_init__(self):
        if not self.datasets or any(d not in DATASETS for d in self.datasets) \
                or len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"datasets must be distinct entries of {DATASETS}, got "
                             f"{self.datasets}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.prng not in PRNGS:
            raise ValueError(f"prng must be one of {PRNGS}, got {self.prng!r}")
        if self.upsample not in UPSAMPLERS:
            raise ValueError(f"upsample must be one of {UPSAMPLERS}, got {self.upsample!r}")
        if self.sampler not in samplers.SAMPLERS or self.sampler == "pc":
            raise ValueError(f"sampler must be a single-step method of {samplers.SAMPLERS}, "
                             f"got {self.sampler!r}")
        for name in ("n_test", "deeponet_p", "deeponet_width", "train_steps", "fashion_train_steps", "batch_size", "emb_dim",
                     "n_samples", "sample_steps", "n_show"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_test < 2:
            raise ValueError(f"n_test must be >= 2, got {self.n_test}")
        if self.t_grid < 3:
            raise ValueError(f"t_grid must be >= 3, got {self.t_grid}")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be positive ints, got {self.channels}")
        if not self.blur_widths or list(self.blur_widths) != sorted(set(self.blur_widths)):
            raise ValueError(f"blur_widths must be strictly increasing, got {self.blur_widths}")
        if self.blur_widths[0] <= 0.5:
            raise ValueError(f"blur_widths must exceed the heat process's blur_min = 0.5 px, "
                             f"got {self.blur_widths}")
        if not 0 <= self.image_index < self.n_test:
            raise ValueError(f"image_index must be in [0, n_test), got {self.image_index}")
        if not (self.lr > 0 and 0 <= self.ema_decay < 1 and self.mc_z > 0):
            raise ValueError("need lr > 0, ema_decay in [0, 1) and mc_z > 0")
        if len(self.ratio_band) != 2 or not 0 < self.ratio_band[0] < self.ratio_band[1]:
            raise ValueError(f"ratio_band must be (lo, hi) with 0 < lo < hi, got "
                             f"{self.ratio_band}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "len(blur_widths) * n_test * n_samples * 28 ** 2":
                (len(self.blur_widths) + 1) * self.n_test * self.n_samples * 28 ** 2,
            "batch_size * 28 ** 2 * max(channels)": self.batch_size * 28 ** 2 * max(self.channels),
            "t_grid * 28 ** 2": self.t_grid * 28 ** 2,
        }


PRESETS = {
    "smoke": Config(n_test=32, model="deeponet", deeponet_p=32, deeponet_width=64,
                    train_steps=40, batch_size=64,
                    ema_decay=0.9, blur_widths=(1.0,), t_grid=201, n_samples=2,
                    sample_steps=4, n_show=2, gaussian_reference=False),
    "quick": Config(),
    "full": Config(datasets=("digits", "fashion"), n_test=1000, channels=(32, 64),
                   emb_dim=64, train_steps=20000, ema_decay=0.999, n_samples=16,
                   sample_steps=50),
}


# ----------------------------------------------------------------------------- pure helpers


def to_unit(x):
    """Images on the :math:`[-1,1]` scale to :math:`u=(x+1)/2` on :math:`[0,1]`."""
    return (np.asarray(x, np.float64) + 1.0) / 2.0


def blur_time(process, width: float) -> float:
    r"""The time :math:`t` at which ``process`` (``blur="log"``) has blur width ``width`` px:
    :math:`t=T\log(\sigma_B/\sigma_{B,\min})/\log(\sigma_{B,\max}/\sigma_{B,\min})`, so that
    :math:`\tau(t)=\sigma_B^2/2`.

    Raises:
        ValueError: a process without a log blur schedule, or ``width`` outside
            :math:`[\sigma_{B,\min},\sigma_{B,\max}]`.
    """
    if getattr(process, "blur", None) != "log":
        raise ValueError("process must be a heat-dissipation process (blur='log')")
    w = float(width)
    if not (math.isfinite(w) and process.blur_min <= w <= process.blur_max):
        raise ValueError(f"width must lie in [blur_min={process.blur_min}, blur_max="
                         f"{process.blur_max}] px, got {width!r}")
    return process.T * math.log(w / process.blur_min) / math.log(process.blur_max
                                                                  / process.blur_min)


def _check_heat(process) -> None:
    if getattr(process, "blur", None) != "log" or process.schedule != "constant" \
            or process.basis != "dct" or process.d_min != 0:
        raise ValueError("process must be a heat-dissipation process in the DCT basis "
                         "(processes.heat_dissipation(shape))")


def heat_time(process, t) -> np.ndarray:
    r"""The process's heat time :math:`\tau(t)=\tfrac12\sigma_{B,\min}^2(\sigma_{B,\max}/
    \sigma_{B,\min})^{2t/T}` in float64 numpy (the formula of ``Process.heat_time``, without a
    JAX dispatch per call)."""
    _check_heat(process)
    t = np.asarray(t, np.float64)
    return 0.5 * (process.blur_min * (process.blur_max / process.blur_min) ** (t / process.T)) ** 2


def heat_scale(process, t) -> np.ndarray:
    r""":math:`a_t(k)=e^{-\lambda_k\tau(t)}` (float64) for a scalar ``t`` (``[*shape]``) or a
    1-D array of times (``[len(t), *shape]``)."""
    tau = heat_time(process, t)
    lam = np.asarray(process.eigenvalues, np.float64)
    return np.exp(-lam * tau[(...,) + (None,) * process.ndim])


def dct_field(process, x, *, floor: float = 1e-6) -> oracle.GaussianField:
    """The diagonal Gaussian moment-matched to ``x`` ``[n, *shape]`` in the DCT basis (the
    numpy twin of ``oracle.field_from_samples(x, "dct")``: variances floored at ``floor``
    times their mean)."""
    z = dct(process, x)
    var = z.var(axis=0)
    return oracle.GaussianField(process.shape, "dct", z.mean(axis=0),
                                np.maximum(var, floor * var.mean()))


def dct(process, x) -> np.ndarray:
    """Orthonormal DCT-II coefficients of ``x`` ``[..., *shape]`` (= ``process.to_basis``,
    in float64 numpy)."""
    axes = tuple(range(-process.ndim, 0))
    return scipy.fft.dctn(np.asarray(x, np.float64), type=2, norm="ortho", axes=axes)


def idct(process, z) -> np.ndarray:
    """The inverse of :func:`dct` (= ``process.from_basis``)."""
    axes = tuple(range(-process.ndim, 0))
    return scipy.fft.idctn(np.asarray(z, np.float64), type=2, norm="ortho", axes=axes)


def heat_blur(process, x, t) -> np.ndarray:
    r"""The noiseless heat blur :math:`e^{\tau(t)\Delta}x=B^\top(a_t\odot Bx)` of images
    ``x`` ``[n, *shape]``."""
    return idct(process, heat_scale(process, t) * dct(process, x))


def reblur(process, y, t_from, t_to) -> np.ndarray:
    r"""Blur further from level ``t_from`` to ``t_to >= t_from``: :math:`e^{(\tau(t_{\rm to})-
    \tau(t_{\rm from}))\Delta}y` (the semigroup property: a heat blur at ``t_from`` becomes one
    at ``t_to``)."""
    if t_to < t_from:
        raise ValueError(f"t_to must be >= t_from, got {t_to} < {t_from}")
    dtau = float(heat_time(process, t_to)) - float(heat_time(process, t_from))
    lam = np.asarray(process.eigenvalues, np.float64)
    return idct(process, np.exp(-lam * max(dtau, 0.0)) * dct(process, y))


def naive_inverse(process, y, t) -> np.ndarray:
    r"""Divide every coefficient by :math:`a_t(k)`: :math:`B^\top(By/a_t)` (float64)."""
    return idct(process, dct(process, y) / heat_scale(process, t))


def naive_mse_prediction(process, t) -> tuple[float, float]:
    r"""Exact per-image :math:`E\|\hat x-x_0\|^2=\sigma^2\sum_ka_t(k)^{-2}` of the naive
    inverse (summed over pixels), and the standard deviation of one image's squared error,
    :math:`\sqrt{2\sum_k\sigma^4a_t(k)^{-4}}` (a weighted chi-square)."""
    c = process.sigma**2 / heat_scale(process, t) ** 2
    return float(c.sum()), float(np.sqrt(2 * np.sum(c**2)))


def wiener_coeffs(field, process, z, t) -> np.ndarray:
    r"""The Wiener (exact Gaussian) posterior mean on DCT coefficients ``z`` at level ``t``:
    :math:`\mu+G_t(z-a_t\mu)`, :math:`G_t=a_t\lambda/(a_t^2\lambda+\sigma^2)` (numpy twin of
    ``field.denoiser(process)``)."""
    a = heat_scale(process, t)
    g = a * field.var / (a**2 * field.var + process.sigma**2)
    return field.mean + g * (np.asarray(z, np.float64) - a * field.mean)


def gaussian_mmse(field, process, t) -> float:
    r"""Total MMSE :math:`\sum_k\lambda_k\sigma^2/(a_t^2\lambda_k+\sigma^2)` of the Gaussian
    ``field`` at level ``t`` (numpy twin of ``oracle.mmse(...).sum()``)."""
    a = heat_scale(process, t)
    s2 = process.sigma**2
    return float(np.sum(field.var * s2 / (a**2 * field.var + s2)))


def avg_pool(x, factor: int = 2) -> np.ndarray:
    """``factor`` × ``factor`` average pooling of images ``[n, H, W]`` (H, W divisible)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must be images [n, H, W], got shape {x.shape}")
    n, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"image sides {h}x{w} must be divisible by factor={factor}")
    return x.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def upsample(lr, factor: int = 2, method: str = "nearest") -> np.ndarray:
    """Upsample low-resolution images ``[n, h, w]`` by ``factor``: ``"nearest"``
    (pixel replication: the pooled image as a piecewise-constant image), ``"bilinear"`` or
    ``"bicubic"`` (``scipy.ndimage.zoom`` of order 1 / 3 with pixel areas aligned,
    ``grid_mode=True``, reflective boundary)."""
    lr = np.asarray(lr, np.float64)
    if lr.ndim != 3:
        raise ValueError(f"lr must be images [n, h, w], got shape {lr.shape}")
    if method == "nearest":
        return np.repeat(np.repeat(lr, factor, axis=1), factor, axis=2)
    orders = {"bilinear": 1, "bicubic": 3}
    if method not in orders:
        raise ValueError(f"method must be 'nearest', 'bilinear' or 'bicubic', got {method!r}")
    return np.stack([scipy.ndimage.zoom(im, factor, order=orders[method], grid_mode=True,
                                        mode="reflect") for im in lr])


def match_heat_level(process, x, target, n_grid: int = 2001) -> tuple[float, np.ndarray,
                                                                       np.ndarray]:
    r"""The time :math:`t^*` whose heat blur best matches ``target`` on average:
    :math:`\arg\min_t\frac1N\sum_i\|e^{\tau(t)\Delta}x_i-\mathrm{target}_i\|^2` on ``n_grid``
    times uniform in :math:`[0,T]`.

    Exact from second moments per coefficient (orthonormal basis):
    :math:`\frac1N\sum_i\|a\odot z_i-w_i\|^2=\sum_k a_k^2\overline{z_k^2}-2a_k\overline{z_kw_k}
    +\overline{w_k^2}`, with :math:`z=Bx`, :math:`w=B\,\mathrm{target}`.

    Returns:
        ``(t_star, ts, err)``: the minimiser and the objective (mean squared error per image,
        summed over pixels) on the grid.
    """
    x = np.asarray(x, np.float64)
    target = np.asarray(target, np.float64)
    if x.shape != target.shape or x.ndim != process.ndim + 1:
        raise ValueError(f"x and target must both be [n, *{process.shape}], got {x.shape} "
                         f"and {target.shape}")
    if n_grid < 2:
        raise ValueError(f"n_grid must be >= 2, got {n_grid}")
    z, w = dct(process, x), dct(process, target)
    zz, zw, ww = (z * z).mean(0), (z * w).mean(0), (w * w).mean(0)
    ts = np.linspace(0.0, process.T, int(n_grid))
    a = heat_scale(process, ts)
    err = np.sum((a**2 * zz - 2 * a * zw + ww).reshape(len(ts), -1), axis=1)
    return float(ts[int(np.argmin(err))]), ts, err


def select_observation_level(process, field, x, y, t_from: float, n_grid: int = 201
                             ) -> tuple[float, np.ndarray, np.ndarray]:
    r"""The level :math:`t_{\rm obs}\in[t_{\rm from},T]` at which observations ``y`` (treated
    as heat blurs at ``t_from``), blurred further to :math:`t_{\rm obs}` (:func:`reblur`), are
    restored best by the Wiener filter of ``field``: :math:`\arg\min_t\frac1N\sum_i\|W_t(
    e^{(\tau(t)-\tau(t_{\rm from}))\Delta}y_i)-x_i\|^2` on ``n_grid`` times, from
    training pairs ``(x, y)``. Exact per DCT coefficient from the moments of :math:`(Bx, By)`:
    with :math:`c=e^{-\lambda(\tau-\tau_{\rm from})}`, :math:`\hat z=\alpha+gcw`,
    :math:`\alpha=\mu(1-ga_t)`, the error is :math:`\sum_k\overline{(\alpha+gcw-z)^2}`.

    Returns:
        ``(t_obs, ts, err)``: the minimiser, the grid and the mean squared error per image.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != process.ndim + 1:
        raise ValueError(f"x and y must both be [n, *{process.shape}], got {x.shape}, {y.shape}")
    if not 0 <= t_from < process.T:
        raise ValueError(f"t_from must be in [0, T), got {t_from}")
    if n_grid < 2:
        raise ValueError(f"n_grid must be >= 2, got {n_grid}")
    z, w = dct(process, x), dct(process, y)
    ez, ew, ezz, eww, ezw = z.mean(0), w.mean(0), (z * z).mean(0), (w * w).mean(0), \
        (z * w).mean(0)
    ts = np.linspace(t_from, process.T, int(n_grid))
    a = heat_scale(process, ts)
    lam = np.asarray(process.eigenvalues, np.float64)
    tau, tau0 = heat_time(process, ts), float(heat_time(process, t_from))
    c = np.exp(-lam * np.maximum(tau - tau0, 0.0)[(...,) + (None,) * process.ndim])
    g = a * field.var / (a**2 * field.var + process.sigma**2)
    alpha, gc = field.mean * (1 - g * a), g * c
    per = alpha**2 + 2 * alpha * (gc * ew - ez) + gc**2 * eww - 2 * gc * ezw + ezz
    err = per.reshape(len(ts), -1).sum(axis=1)
    return float(ts[int(np.argmin(err))]), ts, err


def dense_operator(fn, shape) -> np.ndarray:
    """The matrix ``[m, d]`` of a linear map ``fn`` on images ``[n, *shape]`` (columns are the
    images of the unit vectors), float64."""
    d = math.prod(shape)
    eye = np.eye(d).reshape(d, *shape)
    return np.asarray(fn(eye), np.float64).reshape(d, -1).T


def lmmse(mean, cov, A, noise_var, y) -> np.ndarray:
    r"""The linear MMSE estimate of :math:`x` from :math:`y=Ax+\eta`, :math:`E x=\mu`,
    :math:`\mathrm{Cov}\,x=\Sigma`, :math:`\eta\sim(0,\nu I)`:
    :math:`\hat x=\mu+\Sigma A^\top(A\Sigma A^\top+\nu I)^{-1}(y-A\mu)` — the exact posterior
    mean when :math:`x` and :math:`\eta` are Gaussian.

    Args:
        mean: :math:`\mu` ``[d]``. cov: :math:`\Sigma` ``[d, d]``. A: ``[m, d]``.
        noise_var: :math:`\nu\ge0` (a scalar). y: observations ``[n, m]``.

    Returns:
        ``[n, d]`` float64.
    """
    mean, cov, A = (np.asarray(v, np.float64) for v in (mean, cov, A))
    y = np.atleast_2d(np.asarray(y, np.float64))
    if not (mean.ndim == 1 and cov.shape == (mean.size, mean.size) and A.ndim == 2
            and A.shape[1] == mean.size and y.shape[1] == A.shape[0]):
        raise ValueError(f"inconsistent shapes: mean {mean.shape}, cov {cov.shape}, A "
                         f"{A.shape}, y {y.shape}")
    if not float(noise_var) >= 0:
        raise ValueError(f"noise_var must be >= 0, got {noise_var!r}")
    s = A @ cov @ A.T + float(noise_var) * np.eye(A.shape[0])
    gain = np.linalg.solve(s, A @ cov).T  # Sigma A^T S^{-1} (S symmetric)
    return mean + (y - A @ mean) @ gain.T


def posterior_samples(denoiser, process, y, t, key, *, k: int, steps: int,
                      method: str = "ancestral") -> np.ndarray:
    """``k`` draws from the model's :math:`p(x_0\\mid x_t=y)` for every observation ``y``
    ``[n, *shape]``: ``method`` on :func:`~opdiff.diffusion.samplers.log_level_between`
    ``(t_min, t)`` started at ``y``, then one denoising evaluation; draw ``j`` uses
    ``fold_in(key, j)`` (one batch of ``n`` per draw: one compilation, bounded memory).
    Returns ``[k, n, *shape]``."""
    y = np.asarray(y, np.float32)
    if not float(t) > process.t_min:
        raise ValueError(f"t must exceed t_min={process.t_min}, got {t}")
    ts = samplers.log_level_between(process, process.t_min, float(t), steps)
    x_t = jnp.asarray(y)
    return np.stack([np.asarray(samplers.sample(method, denoiser, process, x_t, ts,
                                                key=jax.random.fold_in(key, j), denoise=True),
                                np.float64) for j in range(int(k))])


def ssim_window(shape) -> int:
    """SSIM window side: the default 11 when it fits, else the largest odd side that does."""
    m = min(shape[-2:])
    return 11 if m >= 11 else (m if m % 2 else m - 1)


def image_scores(est, x0) -> dict:
    """Per-image PSNR and SSIM (clipped to [0, 1], data range 1) and unclipped squared error
    (summed over pixels, on the [-1, 1] scale) of estimates ``est`` of ``x0``."""
    est = np.asarray(est, np.float64)
    u_est, u0 = np.clip(to_unit(est), 0.0, 1.0), to_unit(x0)
    w = ssim_window(u0.shape)
    return {"psnr": np.atleast_1d(metrics.psnr(u_est, u0, data_range=1.0)),
            "ssim": np.atleast_1d(metrics.ssim(u_est, u0, data_range=1.0, window=w)),
            "sq_err": np.sum((est - np.asarray(x0, np.float64)) ** 2, axis=(-2, -1))}


def summarize(scores: dict) -> dict:
    """Test means and standard errors of per-image scores."""
    out = {}
    for name, v in scores.items():
        v = np.asarray(v, np.float64).ravel()
        out[name] = float(v.mean())
        out[f"{name}_se"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return out


def cell(psnr: float, ssim: float) -> str:
    """One table cell, "PSNR / SSIM" as in the seed's table."""
    return f"{psnr:.2f} / {ssim:.4f}"


def table_markdown(rows: list[tuple[str, dict]], methods) -> str:
    """A markdown table: one row per ``(label, {method: (psnr, ssim)})``, methods as columns
    ("–" where a method does not apply)."""
    head = "| | " + " | ".join(LABELS[m] for m in methods) + " |"
    lines = [head, "|---" * (len(methods) + 1) + "|"]
    for label, vals in rows:
        cells = [cell(*vals[m]) if m in vals else "–" for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the run


def _train(cfg: Config, data, process, key, steps: int):
    if cfg.model == "unet":
        model = lc.make_unet_denoiser(process, data.x_train, channels=cfg.channels,
                                      emb_dim=cfg.emb_dim, key=jax.random.fold_in(key, 0))
    else:
        model = lc.make_operator_denoiser(process, data.x_train, p=cfg.deeponet_p,
                                          width=cfg.deeponet_width,
                                          key=jax.random.fold_in(key, 0))
    return train_denoiser(model, process, data.x_train, steps=steps,
                          key=jax.random.fold_in(key, 1), batch_size=cfg.batch_size, lr=cfg.lr,
                          ema_decay=cfg.ema_decay, progress=False)


def _evaluate_task(cfg, den, process, field, x0, y, t, key, extra: dict) -> dict:
    """All estimates and their per-image scores for one task (observation ``y`` at ``t``);
    ``den`` is the learned denoiser ``(jitted, hashable)``."""
    jitted, hashable = den
    est = dict(extra)
    est["naive"] = naive_inverse(process, y, t)
    est["wiener"] = idct(process, wiener_coeffs(field, process, dct(process, y), t))
    est["post_mean"] = np.asarray(jitted(jnp.asarray(y, jnp.float32), t), np.float64)
    smp = posterior_samples(hashable, process, y, t, key, k=cfg.n_samples,
                            steps=cfg.sample_steps, method=cfg.sampler)
    est["post_sample"] = smp[0]
    est["mean_k"] = smp.mean(0)
    scores = {m: image_scores(v, x0) for m, v in est.items()}
    sample_sq_err = np.sum((smp - np.asarray(x0, np.float64)) ** 2, axis=(-2, -1))  # [K, n]
    return dict(est=est, samples=smp, scores=scores, sample_sq_err=sample_sq_err)


def _gaussian_reference(cfg, process, field, t, key, n: int) -> float:
    """Sample-MSE / posterior-mean-MSE for data from ``field`` with its exact denoiser through
    the same sampler (the reference for claim 2)."""
    x0 = np.asarray(field.sample(jax.random.fold_in(key, 0), n), np.float32)
    y = process.sample(jax.random.fold_in(key, 1), jnp.asarray(x0), t)
    den = field.denoiser(process)
    pm = idct(process, wiener_coeffs(field, process, dct(process, y), t))
    smp = posterior_samples(den, process, np.asarray(y), t, jax.random.fold_in(key, 2),
                            k=cfg.n_samples, steps=cfg.sample_steps, method=cfg.sampler)
    return float(np.mean((smp - x0) ** 2) / np.mean((pm - x0) ** 2))


def _load(cfg: Config, name: str):
    if name == "digits":
        return lc.load_image_set("digits", n_test=cfg.n_test, seed=cfg.seed), cfg.train_steps
    return (lc.load_image_set("fashion", n_test=cfg.n_test, seed=cfg.seed),
            cfg.fashion_train_steps)


@dataclasses.dataclass(frozen=True)
class _Ctx:
    """What every task of one data set shares."""

    process: object
    field: oracle.GaussianField
    den: tuple  # (jitted denoiser, hashable denoiser for the samplers)
    x_train: np.ndarray
    x0: np.ndarray
    mu: np.ndarray
    cov: np.ndarray


def _deblur_task(cfg: Config, c: _Ctx, width: float, key) -> dict:
    """Deblurring at blur width ``width``: the observation is exactly the forward process."""
    process, x0, n = c.process, c.x0, len(c.x0)
    t = blur_time(process, width)
    y = np.asarray(process.sample(jax.random.fold_in(key, 0), jnp.asarray(x0), t))
    A = dense_operator(lambda e: heat_blur(process, e, t), process.shape)
    extra = {"observation": y.astype(np.float64),
             "lmmse": lmmse(c.mu, c.cov, A, process.sigma**2, y.reshape(n, -1))
             .reshape(x0.shape)}
    r = _evaluate_task(cfg, c.den, process, c.field, x0, y, t, jax.random.fold_in(key, 1), extra)
    r.update(kind="deblur", width=float(width), t=float(t), obs=y,
             naive_pred=naive_mse_prediction(process, t))
    r["ratio_gauss_theory"] = 2 - gaussian_mmse(c.field, process, process.t_min) \
        / gaussian_mmse(c.field, process, t)
    r["ratio_gauss"] = (_gaussian_reference(cfg, process, c.field, t, jax.random.fold_in(key, 2),
                                            n) if cfg.gaussian_reference else None)
    return r


def _sr_task(cfg: Config, c: _Ctx, key) -> dict:
    """2x super-resolution: t* by blur matching on training images, the upsampled observation
    re-blurred to t_obs (chosen by the Wiener filter on training pairs)."""
    process, x0, n = c.process, c.x0, len(c.x0)
    d = math.prod(process.shape)
    up_tr = upsample(avg_pool(c.x_train), 2, cfg.upsample)
    t_star, _, err = match_heat_level(process, c.x_train, up_tr, cfg.t_grid)
    t_obs, _, sel_err = select_observation_level(process, c.field, c.x_train, up_tr, t_star,
                                                 cfg.t_grid)
    lr = avg_pool(x0)
    up = upsample(lr, 2, cfg.upsample)
    y = reblur(process, up, t_star, t_obs).astype(np.float32)
    P = dense_operator(avg_pool, process.shape)
    S = P @ c.cov @ P.T
    ridge = 1e-6 * np.trace(S) / S.shape[0]
    extra = {"observation": up, "bicubic": upsample(lr, 2, "bicubic"),
             "lmmse": lmmse(c.mu, c.cov, P, ridge, lr.reshape(n, -1)).reshape(x0.shape)}
    r = _evaluate_task(cfg, c.den, process, c.field, x0, y, t_obs, key, extra)
    # the literal reading: the upsampled image as an observation at t* (no re-blur)
    literal = {
        "wiener": summarize(image_scores(
            idct(process, wiener_coeffs(c.field, process, dct(process, up), t_star)), x0)),
        "post_mean": summarize(image_scores(c.den[0](jnp.asarray(up, jnp.float32), t_star),
                                            x0))}
    r.update(kind="sr", t=t_obs, width=float(np.sqrt(2 * heat_time(process, t_obs))),
             obs=up, t_star=t_star,
             width_star=float(np.sqrt(2 * heat_time(process, t_star))),
             t_star_residual_per_pixel=float(err.min() / d),
             selection_mse_per_pixel=float(sel_err.min() / d), literal=literal)
    return r


def _check_task(cfg: Config, rep: Report, label: str, r: dict, trivial: dict,
                total_var: float) -> dict:
    """The claims of one task; returns its summary row for the metrics."""
    sc = r["scores"]
    n = len(sc["post_mean"]["psnr"])
    summ = {m: summarize(s) for m, s in sc.items()}
    pm_mse = float(sc["post_mean"]["sq_err"].mean())
    ratio = float(r["sample_sq_err"].mean() / pm_mse)
    row = dict(kind=r["kind"], t=r["t"], blur_width_px=r["width"], methods=summ,
               sample_over_mean_mse=ratio,
               mean_k_over_mean_mse=float(sc["mean_k"]["sq_err"].mean() / pm_mse),
               this_image={m: [float(s["psnr"][cfg.image_index]),
                               float(s["ssim"][cfg.image_index])] for m, s in sc.items()})
    diff = sc["post_mean"]["psnr"] - sc["wiener"]["psnr"]
    bound = -cfg.mc_z * float(diff.std(ddof=1) / math.sqrt(n))
    rep.check(f"{label}: learned posterior-mean PSNR >= Wiener (DCT) PSNR - {cfg.mc_z:g} SE "
              f"(paired mean difference, dB; learned {summ['post_mean']['psnr']:.2f}, Wiener "
              f"{summ['wiener']['psnr']:.2f})", float(diff.mean()), bound,
              float(diff.mean()) >= bound)
    if r["kind"] == "deblur":
        lo, hi = cfg.ratio_band
        row.update(ratio_gaussian_reference=r["ratio_gauss"],
                   ratio_gaussian_theory=r["ratio_gauss_theory"])
        ref = ("" if r["ratio_gauss"] is None else
               f"; Gaussian data, exact denoiser, same sampler: {r['ratio_gauss']:.3f}")
        rep.check(f"{label}: posterior-sample MSE / posterior-mean MSE in [{lo:g}, {hi:g}] "
                  f"(exact posterior sampling of the Gaussian: {r['ratio_gauss_theory']:.3f}"
                  f"{ref})", ratio, [lo, hi], lo <= ratio <= hi)
        pred, sd1 = r["naive_pred"]
        meas = float(sc["naive"]["sq_err"].mean())
        z = (meas - pred) / (sd1 / math.sqrt(n))
        row.update(naive_mse_predicted=pred, naive_mse_measured=meas, naive_z=z)
        rep.check(f"{label}: naive-inverse MSE equals sigma^2 sum_k a_t(k)^-2 = {pred:.4g} "
                  f"within 5 SE (|z|; measured {meas:.4g})", abs(z), 5.0, abs(z) <= 5.0)
        if pred > total_var:
            p_naive, p_triv = summ["naive"]["psnr"], trivial["psnr"]
            rep.check(f"{label}: predicted blow-up (naive MSE {pred:.3g} > data variance "
                      f"{total_var:.3g}): naive PSNR below the PSNR of the training mean "
                      f"image (dB)", p_naive, p_triv, p_naive < p_triv)
    else:
        row.update(upsample=cfg.upsample, t_star=r["t_star"],
                   blur_width_star_px=r["width_star"],
                   t_star_residual_per_pixel=r["t_star_residual_per_pixel"],
                   selection_mse_per_pixel=r["selection_mse_per_pixel"],
                   literal_t_star=r["literal"])
        pb, pw, pl = (summ[m]["psnr"] for m in ("bicubic", "wiener", "post_mean"))
        rep.check(f"{label}: bicubic PSNR < Wiener (DCT) PSNR at t_obs={r['t']:.3f} "
                  f"(sigma_B={r['width']:.2f}px) (dB)", pb, pw, pb < pw)
        rep.check(f"{label}: learned posterior-mean PSNR > bicubic PSNR (dB)", pl, pb, pl > pb)
    return row


def run_dataset(cfg: Config, name: str, key, rep: Report) -> dict:
    """Train, restore, score and check one data set; returns its metrics (and, under keys
    starting with ``_``, what the figures need)."""
    data, steps = _load(cfg, name)
    process = lc.make_process("heat", data.shape)
    t0 = time.perf_counter()
    res = _train(cfg, data, process, jax.random.fold_in(key, 0), steps)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = res.ema_params
    flat = data.x_train.reshape(len(data.x_train), -1).astype(np.float64)
    c = _Ctx(process=process, field=dct_field(process, data.x_train),
             den=(jax.jit(model.batched), model.batched), x_train=data.x_train,
             x0=data.x_test, mu=flat.mean(0), cov=np.cov(flat, rowvar=False))
    total_var = float(np.trace(c.cov))
    trivial = summarize(image_scores(np.broadcast_to(c.mu.reshape(data.shape), c.x0.shape),
                                     c.x0))
    tasks = {f"deblur {w:g}px": _deblur_task(cfg, c, w, jax.random.fold_in(key, 100 + i))
             for i, w in enumerate(cfg.blur_widths)}
    tasks["SR 2x"] = _sr_task(cfg, c, jax.random.fold_in(key, 200))
    rows = {tname: _check_task(cfg, rep, f"{name} {tname}", r, trivial, total_var)
            for tname, r in tasks.items()}
    return dict(train_steps=steps, steps_per_s=float(res.steps_per_s),
                final_loss=float(np.mean(np.asarray(res.losses)[-max(1, steps // 20):])),
                n_train=int(len(data.x_train)), n_test=int(len(c.x0)),
                total_variance=total_var, trivial_mean_image=trivial, tasks=rows,
                timings_s=dict(train=t_train, evaluate=time.perf_counter() - t0),
                _tasks_raw=tasks, _x0=c.x0,
                _show=show_indices(data.y_test, cfg.n_show, cfg.image_index))


def _markdown_for(name: str, out: dict, cfg: Config) -> tuple[str, list]:
    rows = []
    n = out["n_test"]
    for tname, row in out["tasks"].items():
        methods = row["methods"]
        rows.append((f"{name} {tname}: This image",
                     {m: tuple(v) for m, v in row["this_image"].items()}))
        rows.append((f"{name} {tname}: Test mean ({n})",
                     {m: (s["psnr"], s["ssim"]) for m, s in methods.items()}))
    return table_markdown(rows, METHODS), rows


def _table_figure(rows, path):
    fig, axes = plotting.new_figure(1, 1, width=13, height=0.28 * len(rows) + 0.9)
    ax = axes[0, 0]
    ax.axis("off")
    text = [[cell(*r[m]) if m in r else "–" for m in METHODS] for _, r in rows]
    tab = ax.table(cellText=text, rowLabels=[lab for lab, _ in rows],
                   colLabels=[LABELS[m] for m in METHODS], loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1.0, 1.25)
    ax.set_title("PSNR (dB) / SSIM on held-out images", fontsize=10)
    return plotting.save(fig, path)


def show_indices(labels, n: int, first: int = 0) -> list[int]:
    """``first`` and then the first test image of each further class, up to ``n`` images (a
    spread of classes for the figure)."""
    labels = np.asarray(labels)
    out, seen = [int(first)], {int(labels[first])}
    for i, c in enumerate(labels):
        if len(out) >= n:
            break
        if int(c) not in seen:
            out.append(i)
            seen.add(int(c))
    return out


def _grid_figure(cfg, results, path):
    n_smp = min(3, cfg.n_samples)
    cols = ["ground truth", "observation", "bicubic / naive", "Wiener", "posterior mean"] + \
        [f"sample {i + 1}" for i in range(n_smp)]
    blocks = []
    for name, out in results.items():
        for tname, r in out["_tasks_raw"].items():
            blocks.append((f"{name} {tname}", out["_x0"], out["_show"], r))
    n_rows = sum(len(b[2]) for b in blocks)
    fig, axes = plotting.new_figure(n_rows, len(cols), width=1.0, height=1.0)
    row = 0
    for label, x0, show, r in blocks:
        est, smp = r["est"], r["samples"]
        third = est["bicubic"] if "bicubic" in est else est["naive"]
        for jj, j in enumerate(show):
            ims = [x0[j], r["obs"][j], third[j], est["wiener"][j], est["post_mean"][j]]
            ims += [smp[i, j] for i in range(n_smp)]
            lc.sample_grid(axes[row], np.asarray(ims))
            if jj == 0:
                axes[row, 0].set_ylabel(label, fontsize=5)
            row += 1
    for c, title in enumerate(cols):
        axes[0, c].set_title(title, fontsize=6)
    return plotting.save(fig, path)


def _psnr_figure(results, path):
    fig, axes = plotting.new_figure(1, len(results), width=4.6, height=3.4)
    for ax, (name, out) in zip(axes[0], results.items()):
        rows = [r for r in out["tasks"].values() if r["kind"] == "deblur"]
        wid = [r["blur_width_px"] for r in rows]
        for m in ("observation", "naive", "wiener", "lmmse", "post_mean", "post_sample",
                  "mean_k"):
            ax.plot(wid, [r["methods"][m]["psnr"] for r in rows], marker="o", label=LABELS[m])
        ax.axhline(out["trivial_mean_image"]["psnr"], color="gray", ls=":",
                   label="training mean image")
        ax.set_xlabel("blur width σ_B (px)")
        ax.set_ylabel("test-mean PSNR (dB, clipped)")
        ax.set_title(f"{name}: deblurring", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return plotting.save(fig, path)


def run(cfg: Config, out_dir: Path) -> Report:
    """Train, restore and score every data set of ``cfg``; the table, figures and claims."""
    rep = Report()
    key = jax.random.key(cfg.seed, impl=cfg.prng)
    results, notes, md_parts, all_rows = {}, [], [], []
    for i, name in enumerate(cfg.datasets):
        if name == "fashion" and not images.fashion_mnist_available():
            notes.append("fashion skipped: Fashion-MNIST is not installed (apt-get install "
                         "dataset-fashion-mnist)")
            continue
        out = run_dataset(cfg, name, jax.random.fold_in(key, i), rep)
        results[name] = out
        md, rows = _markdown_for(name, out, cfg)
        md_parts.append(md)
        all_rows.extend(rows)
    if not results:
        raise FileNotFoundError("; ".join(notes))
    rep.metrics["table_markdown"] = "\n\n".join(md_parts)
    rep.metrics["notes"] = notes
    for name, out in results.items():
        rep.metrics[name] = {k: v for k, v in out.items() if not k.startswith("_")}
    rep.bounds = {"mc_z": cfg.mc_z, "ratio_band": list(cfg.ratio_band), "naive_z": 5.0}
    rep.figures += _table_figure(all_rows, out_dir / "inverse_heat_restoration_table.png")
    rep.figures += _grid_figure(cfg, results, out_dir / "inverse_heat_restoration_grid.png")
    rep.figures += _psnr_figure(results, out_dir / "inverse_heat_restoration_psnr.png")
    return rep
