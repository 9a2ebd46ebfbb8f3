r"""Forward-process gallery: one image pushed through four forward processes, with the
empirical marginals tested against the analytic ones.

    python -m experiments run forward_gallery --preset smoke   # ~10 s (mostly compiling)
    python -m experiments run forward_gallery                  # quick, ~1 min on a 2-core CPU
    python -m experiments run forward_gallery --preset full

Keys are ``rbg`` (XLA's RngBitGenerator): with threefry, compiling the sampler takes over a
second per process and shape on CPU, and this experiment compiles eight.

Every process of :mod:`opdiff.diffusion.processes` is diagonal in an orthonormal basis
:math:`B`: with :math:`z=Bx`, :math:`z_t=a_t(k)z_0+s_t(k)\varepsilon`,
:math:`\varepsilon\sim N(0,I)`. The four shown:

==================  ===========  ==============================================================
process             basis        :math:`a_t(k)`, :math:`s_t(k)`
==================  ===========  ==============================================================
white-noise VP      DFT          :math:`e^{c(t)}`, :math:`\sqrt{1-e^{2c(t)}}` (score_sde VP)
heat dissipation    DCT          :math:`e^{-\lambda_k\tau(t)}`, :math:`\sigma=0.01` (IHDM)
blurring            DCT          :math:`\alpha_td_t(k)`, :math:`\sigma_t` (Hoogeboom & Salimans)
pink-noise VP       DFT          :math:`e^{c(t)}`, :math:`\sqrt{1-e^{2c(t)}}\,c_k`,
                                 :math:`c_k^2\propto(|k|^2+1)^{-1/2}`, mean one
==================  ===========  ==============================================================

(DFT = the unitary Hartley transform, :math:`\lambda_k=|\kappa_k|^2` the Laplacian eigenvalue,
:math:`\tau=\sigma_B^2/2` the heat time.) Data: one 8×8 scikit-learn digit (native
resolution: ``load_digits``, values in [0, 1]) and one sample of a periodic power-law field
(:class:`opdiff.functions.PeriodicPowerLawField`, ``field_size``\ ², exponent ``field_alpha``,
unit pointwise variance).

**Figure** ``forward_gallery.png``: rows = process × data, columns = the clean image and
``n_frames`` times uniform on each process's :math:`[t_{\min},T]`; one noise draw
:math:`\varepsilon` (one key) for the whole row, so a row is a path :math:`t\mapsto x_t`; one
colour scale per row (its 0.5–99.5 % quantiles).

**Claims** (each can fail):

(a) *Empirical marginals = analytic marginals.* For every process, data set and frame time,
    ``n_draws`` draws of :meth:`Process.sample` are transformed to coefficients with an
    independent NumPy/SciPy transform (``numpy.fft`` Hartley, ``scipy.fft.dctn``), giving
    :math:`e=(z_t-a_tz_0)/s_t`, which must be i.i.d. :math:`N(0,1)`. Per coefficient the
    z-score of the mean, :math:`\sqrt n\,\bar e`, is exactly :math:`N(0,1)`; the variance
    statistic :math:`\sum e^2\sim\chi^2_n` is turned into an exact normal z-score through its
    CDF. Claim per process: :math:`\max|z|` over coefficients, times, data and both statistics
    :math:`\le` the Bonferroni bound :math:`z_{1-p/(2M)}` (family-wise false-alarm
    probability ``false_alarm``, :math:`M` z-scores). An aggregate claim:
    :math:`(\sum z^2-M)/\sqrt{2M}\le` ``chi2_z_max`` (all z-scores of all processes).
    Also, for the digit (64 coefficients), *diagonality*: the off-diagonal empirical
    correlations :math:`\sqrt n\,\overline{e_ie_j}` over all pairs, Bonferroni bound again.
(b) *Heat dissipation keeps the mean.* The DC coefficient has :math:`\lambda=0`, so the
    pixel mean of :math:`\mathbb E[x_t]` (:meth:`Process.marginal`) equals that of
    :math:`x_0` for every t: max deviation :math:`\le10^{-5}`. (Blurring diffusion scales the
    DC by :math:`\alpha_t`; its drift is reported as a contrast.)
(c) *Blur removes high frequencies, monotonically.* For heat dissipation and blurring the
    energy of :math:`\mathbb E[x_t]` in the top half of the frequencies (coefficients of the
    process's DCT with radial frequency :math:`>1/4` cycle/pixel, measured with SciPy) is
    non-increasing in t: max ratio of consecutive energies :math:`\le1+10^{-4}` (float32
    round-off), over the frames whose energy exceeds ``energy_floor`` :math:`=10^{-9}` of
    :math:`\|x_0\|^2` (below that the float32 round-off floor, :math:`\sim10^{-13}`, can
    dominate: heat dissipation drives these energies to :math:`e^{-5000}`).

**Metrics**: per process the frame times, the scalar SNR :math:`\|a_t\odot z_0\|^2/\sum_k
s_t(k)^2` of each image per frame, the z-score summaries, the high-frequency energies.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft
import scipy.stats

from opdiff import images, plotting
from opdiff.diffusion import basis as _basis
from opdiff.diffusion import processes
from opdiff.functions import PeriodicPowerLawField

from experiments._config import AtLeastTwo, Count, NonNegative, OpenUnit, Positive, Range, Seed
from experiments._report import Report

NAME = "forward_gallery"
DESCRIPTION = ("Forward-process gallery (white VP, heat dissipation, blurring, pink VP) on a "
               "digit and a power-law field; empirical vs analytic marginals")
DTYPE = "float32"

PROCESSES = ("vp", "heat", "blurring", "pink")
LABELS = {"vp": "white-noise VP (DFT)", "heat": "heat dissipation (DCT)",
          "blurring": "blurring (DCT)", "pink": "pink-noise VP (DFT)"}
SHORT = {"vp": "white VP", "heat": "heat diss.", "blurring": "blurring", "pink": "pink VP"}


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    n_frames: AtLeastTwo = 10
    digit_index: Annotated[int, Range(0, 1797, hi_open=True)] = 0
    field_size: Annotated[int, Range(lo=8)] = 64
    field_alpha: float = 2.5
    field_k0: NonNegative = 1.0
    n_draws: Annotated[int, Range(lo=20)] = 2000
    false_alarm: OpenUnit = 1e-3  # family-wise false-alarm probability of the Bonferroni bounds
    chi2_z_max: Positive = 5.0
    mean_tol: Positive = 1e-5
    energy_floor: OpenUnit = 1e-9  # relative energy below which float32 round-off dominates
    chunk: Count = 500  # draws per sample() call (memory)

    def __post_init__(self):
        if self.n_frames < 2:
            raise ValueError(f"n_frames must be >= 2, got {self.n_frames}")
        if not 0 <= self.digit_index < 1797:
            raise ValueError(f"digit_index must be in [0, 1797), got {self.digit_index}")
        if self.field_size < 8:
            raise ValueError(f"field_size must be >= 8, got {self.field_size}")
        if not (math.isfinite(self.field_alpha) and self.field_k0 >= 0):
            raise ValueError("field_alpha must be finite and field_k0 >= 0")
        if self.n_draws < 20 or self.chunk < 1:
            raise ValueError(f"n_draws must be >= 20 and chunk >= 1, got {self.n_draws}, "
                             f"{self.chunk}")
        if not 0 < self.false_alarm < 1:
            raise ValueError(f"false_alarm must be in (0, 1), got {self.false_alarm}")
        if not (self.chi2_z_max > 0 and self.mean_tol > 0 and 0 < self.energy_floor < 1):
            raise ValueError("chi2_z_max and mean_tol must be > 0, energy_floor in (0, 1)")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "chunk * n_frames * field_size ** 2":
                min(self.chunk, self.n_draws) * self.n_frames * self.field_size ** 2,
            "n_draws * n_frames * 8 ** 2": self.n_draws * self.n_frames * 8 ** 2,
        }


PRESETS = {
    "smoke": Config(field_size=32, n_draws=200),
    "quick": Config(),
    "full": Config(n_draws=10000, field_size=128),
}


def make_process(name: str, shape) -> processes.Process:
    if name == "vp":
        return processes.vp(shape, basis="dft")
    if name == "heat":
        return processes.heat_dissipation(shape)
    if name == "blurring":
        return processes.blurring(shape)
    if name == "pink":
        return processes.coloured(shape, "pink")
    raise ValueError(name)


def frame_times(proc: processes.Process, n: int) -> np.ndarray:
    return np.linspace(proc.t_min, proc.T, n)


def coefficients(x: np.ndarray, basis: str) -> np.ndarray:
    """Coefficients over the last two axes, independently of :mod:`opdiff.diffusion.basis`:
    the unitary Hartley transform from ``numpy.fft``, the orthonormal DCT-II from SciPy."""
    x = np.asarray(x, dtype=np.float64)
    if basis == "dft":
        f = np.fft.fft2(x)
        return (f.real - f.imag) / math.sqrt(x.shape[-1] * x.shape[-2])
    if basis == "dct":
        return scipy.fft.dctn(x, type=2, axes=(-2, -1), norm="ortho")
    raise ValueError(basis)


def _chi2_z(stat: np.ndarray, dof: int) -> np.ndarray:
    """Exact normal z-score of a chi-square statistic (through its CDF, both tails accurate)."""
    lo = scipy.stats.norm.ppf(scipy.stats.chi2.cdf(stat, dof))
    hi = scipy.stats.norm.isf(scipy.stats.chi2.sf(stat, dof))
    return np.where(stat > dof, hi, lo)


class _Compiled:
    """One process's jitted ``sample``, ``marginal`` mean and ``(a_t, s_t)`` (t is traced, so
    each compiles once per shape; eager dispatch would compile every op of the DCT)."""

    def __init__(self, proc: processes.Process):
        self.proc = proc
        self.sample = jax.jit(proc.sample)
        self.mean = jax.jit(lambda x0, t: proc.marginal(x0, t)[0])
        self.coef = jax.jit(lambda t: (proc.scale(t), proc.std(t)))

    def scale_std(self, t):
        a, s = self.coef(jnp.float32(t))
        return np.asarray(a, np.float64), np.asarray(s, np.float64)


def marginal_stats(cp: _Compiled, x0, times, key, cfg: Config, *, correlations: bool) -> dict:
    """z-scores of the empirical coefficient means and variances (and pair correlations)."""
    proc, n = cp.proc, cfg.n_draws
    z0 = coefficients(x0, proc.basis)
    zm, zv, zc = [], [], []
    for i, t in enumerate(times):
        a, s = cp.scale_std(t)
        e_sum = np.zeros(proc.shape)
        e2_sum = np.zeros(proc.shape)
        cross = np.zeros((proc.size, proc.size)) if correlations else None
        k_t = jax.random.fold_in(key, i)
        for j, start in enumerate(range(0, n, cfg.chunk)):
            m = min(cfg.chunk, n - start)
            xb = jnp.broadcast_to(jnp.asarray(x0, jnp.float32), (m, *proc.shape))
            x = np.asarray(cp.sample(jax.random.fold_in(k_t, j), xb, jnp.float32(t)))
            e = (coefficients(x, proc.basis) - a * z0) / s
            e_sum += e.sum(0)
            e2_sum += (e**2).sum(0)
            if correlations:
                ef = e.reshape(m, -1)
                cross += ef.T @ ef
        zm.append(e_sum / math.sqrt(n))
        zv.append(_chi2_z(e2_sum, n))
        if correlations:
            iu = np.triu_indices(proc.size, 1)
            zc.append(cross[iu] / math.sqrt(n))
    out = dict(mean=np.stack(zm), var=np.stack(zv))
    if correlations:
        out["corr"] = np.stack(zc)
    return out


def high_frequency_energy(proc, means: np.ndarray) -> np.ndarray:
    """Energy of each E[x_t] ``[T, *shape]`` in the process-basis coefficients with radial
    frequency > 1/4 cycle/pixel (coefficients from SciPy, not from the process)."""
    mask = _basis.radial_frequency(proc.shape, proc.basis) > 0.25
    return (coefficients(means, proc.basis) ** 2 * mask).sum(axis=(-2, -1))


def bonferroni(m: int, level: float) -> float:
    return float(scipy.stats.norm.isf(level / (2 * m)))


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed, impl="rbg")
    rep = Report()
    digits, labels = images.load_digits()
    digit = digits[cfg.digit_index].astype(np.float64)
    field = PeriodicPowerLawField(n=(cfg.field_size, cfg.field_size), alpha=cfg.field_alpha,
                                  k0=cfg.field_k0)
    fimg = np.asarray(field.sample(1, key=jax.random.fold_in(key, 1))[0], np.float64)
    data = {"digit": digit, "field": fimg}

    strips, stats, snr, hf, dc_dev, times_all, energy = {}, {}, {}, {}, {}, {}, {}
    for ip, pname in enumerate(PROCESSES):
        for idata, (dname, x0) in enumerate(data.items()):
            proc = make_process(pname, x0.shape)
            cp = _Compiled(proc)
            times = frame_times(proc, cfg.n_frames)
            times_all[pname] = times
            k_pd = jax.random.fold_in(jax.random.fold_in(key, 10 + ip), idata)
            # the strip: one noise draw (one key) for every frame, so the row is a path; the
            # batch has the statistics' chunk size so that the compiled sampler is reused
            m = min(cfg.chunk, cfg.n_draws)
            x0b = jnp.broadcast_to(jnp.asarray(x0, jnp.float32), (m, *x0.shape))
            strips[pname, dname] = np.stack(
                [np.asarray(cp.sample(jax.random.fold_in(k_pd, 0), x0b, jnp.float32(t))[0])
                 for t in times])
            stats[pname, dname] = marginal_stats(cp, x0, times, jax.random.fold_in(k_pd, 1),
                                                 cfg, correlations=dname == "digit")
            z0 = coefficients(x0, proc.basis)
            snr[pname, dname] = np.array(
                [float(np.sum((cp.scale_std(t)[0] * z0) ** 2) / np.sum(cp.scale_std(t)[1] ** 2))
                 for t in times])
            if pname in ("heat", "blurring"):
                means = np.stack([np.asarray(cp.mean(jnp.asarray(x0, jnp.float32),
                                                     jnp.float32(t)), np.float64) for t in times])
                hf[pname, dname] = high_frequency_energy(proc, means)
                dc_dev[pname, dname] = np.abs(means.mean(axis=(-2, -1)) - x0.mean())
                energy[dname] = float(np.sum(x0**2))

    # ---------------------------------------------------------------- claims
    all_z = []
    for pname in PROCESSES:
        zs = np.concatenate([np.ravel(stats[pname, d][s]) for d in data for s in ("mean", "var")])
        all_z.append(zs)
        bound = bonferroni(zs.size, cfg.false_alarm)
        zmax = float(np.abs(zs).max())
        rep.check(
            f"{LABELS[pname]}: empirical per-coefficient mean and variance of x_t "
            f"({cfg.n_draws} draws, {cfg.n_frames} times, digit + field) match a_t z0 and "
            f"s_t^2 (max |z| of {zs.size} z-scores <= Bonferroni bound at family-wise level "
            f"{cfg.false_alarm:g})",
            zmax, bound, zmax <= bound)
    all_z = np.concatenate(all_z)
    chi = float((np.sum(all_z**2) - all_z.size) / math.sqrt(2 * all_z.size))
    rep.check(
        f"aggregate chi-square of all {all_z.size} marginal z-scores: (sum z^2 - M)/sqrt(2M) "
        f"within +-{cfg.chi2_z_max:g}",
        chi, cfg.chi2_z_max, abs(chi) <= cfg.chi2_z_max)
    zc = np.concatenate([np.ravel(stats[p, "digit"]["corr"]) for p in PROCESSES])
    bound_c = bonferroni(zc.size, cfg.false_alarm)
    rep.check(
        f"digit: the noise is diagonal in each process's basis: off-diagonal empirical "
        f"correlations of the standardised coefficients (all 4 processes, {zc.size} pairs x "
        f"times), max sqrt(n)|r| <= Bonferroni bound",
        float(np.abs(zc).max()), bound_c, float(np.abs(zc).max()) <= bound_c)
    dev = max(float(v.max()) for (p, _), v in dc_dev.items() if p == "heat")
    rep.check(
        "heat dissipation preserves the pixel mean of E[x_t] at every t (digit and field; "
        "max |mean E[x_t] - mean x0|)",
        dev, cfg.mean_tol, dev <= cfg.mean_tol)
    for pname in ("heat", "blurring"):
        ratios = []
        for dname in data:
            e = hf[pname, dname]
            # frames above the float32 round-off floor (~1e-13 of the image energy)
            ok = e[:-1] > cfg.energy_floor * energy[dname]
            ratios.append(e[1:][ok] / e[:-1][ok])
        r = float(np.concatenate(ratios).max())
        rep.check(
            f"{LABELS[pname]}: energy of E[x_t] above 1/4 cycle/pixel is non-increasing in t "
            f"(digit and field, frames above {cfg.energy_floor:g} of ||x0||^2; max ratio of "
            f"consecutive frames, float32 round-off slack 1e-4)",
            r, 1 + 1e-4, r <= 1 + 1e-4)

    # ---------------------------------------------------------------- metrics
    for pname in PROCESSES:
        rep.metrics[f"{pname}_times"] = times_all[pname]
        for dname in data:
            st = stats[pname, dname]
            rep.metrics[f"{pname}_{dname}_snr"] = snr[pname, dname]
            rep.metrics[f"{pname}_{dname}_max_abs_z_mean"] = float(np.abs(st["mean"]).max())
            rep.metrics[f"{pname}_{dname}_max_abs_z_var"] = float(np.abs(st["var"]).max())
            if (pname, dname) in hf:
                rep.metrics[f"{pname}_{dname}_high_freq_energy"] = hf[pname, dname]
                rep.metrics[f"{pname}_{dname}_mean_drift"] = dc_dev[pname, dname]
    rep.metrics["digit_label"] = int(labels[cfg.digit_index])
    rep.metrics["aggregate_chi2_z"] = chi
    rep.bounds["bonferroni_z_per_process"] = bonferroni(all_z.size // len(PROCESSES),
                                                        cfg.false_alarm)

    # ---------------------------------------------------------------- figure
    # one axes per row holding a montage of the frames (88 separate axes take seconds to lay out)
    ncol = cfg.n_frames + 1
    nrow = len(PROCESSES) * len(data)
    fig, axes = plotting.new_figure(nrow, 1, width=0.95 * ncol + 0.8, height=1.0)
    for ip, pname in enumerate(PROCESSES):
        for idata, (dname, x0) in enumerate(data.items()):
            ax = axes[ip * len(data) + idata, 0]
            frames = np.stack([x0, *strips[pname, dname]])
            lo, hi = np.quantile(frames, [0.005, 0.995])
            h, w = x0.shape
            gap = max(1, w // 8)
            canvas = np.full((h, ncol * (w + gap) - gap), np.nan)
            for c, img in enumerate(frames):
                canvas[:, c * (w + gap): c * (w + gap) + w] = img
            ax.imshow(np.ma.masked_invalid(canvas), cmap="gray", vmin=lo, vmax=hi,
                      interpolation="nearest", aspect="auto")
            ax.set_xticks([c * (w + gap) + (w - 1) / 2 for c in range(ncol)])
            ax.set_xticklabels(["$x_0$"] + [f"t={t:.3g}" for t in times_all[pname]], fontsize=6)
            ax.tick_params(length=0, pad=1)
            ax.set_yticks([])
            ax.set_ylabel(f"{SHORT[pname]}\n{dname}", fontsize=7)
            for side in ax.spines.values():
                side.set_visible(False)
    fig.suptitle(f"forward processes: {cfg.n_frames} times uniform on [t_min, T], one noise draw "
                 "per row (a path), grey scale per row (0.5-99.5% quantiles)", fontsize=9)
    rep.figures += plotting.save(fig, out_dir / "forward_gallery.png")
    return rep
