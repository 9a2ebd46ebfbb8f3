r"""Forward-process gallery: one digit and one power-law field pushed through four forward
processes (white-noise VP, heat dissipation, blurring, pink-noise VP; each diagonal in its basis,
:mod:`opdiff.diffusion.processes`), with the empirical marginals tested against the analytic ones
(:mod:`opdiff.diffusion.marginals`).

    python -m experiments run forward_gallery --preset smoke   # ~10 s (mostly compiling)
    python -m experiments run forward_gallery                  # quick, ~1 min on a 2-core CPU

Keys are ``rbg`` (the runner's threefry seed, tiled): with threefry, compiling the sampler takes
over a second per process and shape on CPU, and this experiment compiles eight.

Claims: (a) per process, ``n_draws`` draws at ``n_frames`` times give per-coefficient z-scores of
the standardised coefficients' means and variances whose max |z| is below the Bonferroni bound at
family-wise level ``false_alarm``; their aggregate chi-square z (one N(0,1) statistic) within its two-sided bound at the same
level; for the
digit the off-diagonal correlations too (diagonality). (b) Heat dissipation keeps the pixel mean
of E[x_t]. (c) Heat dissipation and blurring remove high frequencies monotonically: the energy of
E[x_t] above 1/4 cycle/pixel does not increase in t (frames above ``energy_floor`` of the image
energy; float32 round-off slack 1e-4).

Figure ``forward_gallery.png``: rows = process x data, columns = the clean image and the frames;
one noise draw per row (a path), one grey scale per row. Numbers: ``notes/diffusion.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Annotated

import jax
import numpy as np

from opdiff import claims as cl
from opdiff import images, plotting
from opdiff.diffusion import marginals, processes
from opdiff.functions import PeriodicPowerLawField

from ._config import AtLeastTwo, Count, NonNegative, OpenUnit, Positive, Range, Seed

NAME = "forward_gallery"
DESCRIPTION = ("Forward-process gallery (white VP, heat dissipation, blurring, pink VP) on a "
               "digit and a power-law field; empirical vs analytic marginals")
DTYPE = "float32"
PRNG = "rbg"  # the runner's key generator: threefry's normal compiles slowly on a CPU

PROCESSES = {"vp": functools.partial(processes.vp, basis="dft"),
             "heat": processes.heat_dissipation, "blurring": processes.blurring,
             "pink": functools.partial(processes.coloured, noise="pink")}
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
        if not (self.mean_tol > 0 and 0 < self.energy_floor < 1):
            raise ValueError("mean_tol must be > 0, energy_floor in (0, 1)")

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


def run(cfg: Config, key) -> dict:
    digits, labels = images.load_digits()
    field = PeriodicPowerLawField(n=(cfg.field_size, cfg.field_size), alpha=cfg.field_alpha,
                                  k0=cfg.field_k0)
    data = {"digit": digits[cfg.digit_index].astype(np.float64),
            "field": np.asarray(field.sample(1, key=jax.random.fold_in(key, 1))[0], np.float64)}
    batch = min(cfg.chunk, cfg.n_draws)  # one compiled sampler per process and shape
    out = {}
    for ip, pname in enumerate(PROCESSES):
        rp = out[pname] = {}
        for idata, (dname, x0) in enumerate(data.items()):
            proc = PROCESSES[pname](x0.shape)
            times = rp["times"] = np.linspace(proc.t_min, proc.T, cfg.n_frames)
            k_pd = jax.random.fold_in(jax.random.fold_in(key, 10 + ip), idata)
            r = rp[dname] = dict(
                strip=marginals.sample_path(proc, x0, times, jax.random.fold_in(k_pd, 0),
                                            batch=batch),
                z=marginals.z_scores(proc, x0, times, jax.random.fold_in(k_pd, 1),
                                     n_draws=cfg.n_draws, chunk=cfg.chunk,
                                     correlations=dname == "digit"),
                snr=marginals.snr_path(proc, x0, times))
            r["max_abs_z"] = {s: float(np.abs(r["z"][s]).max()) for s in ("mean", "var")}
            if pname in ("heat", "blurring"):
                means = marginals.mean_path(proc, x0, times)
                r["high_freq_energy"] = marginals.high_frequency_energy(means, proc.basis)
                r["mean_drift"] = np.abs(means.mean(axis=(-2, -1)) - x0.mean())
    return dict(processes=out, data=data, energy={d: float(np.sum(x**2)) for d, x in data.items()},
                digit_label=int(labels[cfg.digit_index]), n_draws=cfg.n_draws)


def claims(cfg: Config, r: dict) -> list[cl.Claim]:
    res, data = r["processes"], list(r["data"])
    out, all_z = [], []
    for pname in PROCESSES:
        zs = np.concatenate([np.ravel(res[pname][d]["z"][s]) for d in data for s in ("mean", "var")])
        all_z.append(zs)
        out.append(cl.upper_bound(
            f"{LABELS[pname]}: empirical per-coefficient mean and variance of x_t "
            f"({cfg.n_draws} draws, {cfg.n_frames} times, digit + field) match a_t z0 and "
            f"s_t^2 (max |z| of {zs.size} z-scores <= Bonferroni bound at family-wise level "
            f"{cfg.false_alarm:g})",
            float(np.abs(zs).max()), marginals.bonferroni_z(zs.size, cfg.false_alarm)))
    all_z = np.concatenate(all_z)
    chi = float((np.sum(all_z**2) - all_z.size) / math.sqrt(2 * all_z.size))
    chi_bound = marginals.bonferroni_z(1, cfg.false_alarm)  # one N(0,1) statistic, two-sided
    out.append(cl.within(
        f"aggregate chi-square of all {all_z.size} marginal z-scores (independent draws per "
        f"process, data and time): (sum z^2 - M)/sqrt(2M) within +-{chi_bound:.3g}, the "
        f"two-sided N(0,1) bound at level {cfg.false_alarm:g}", chi, 0.0, atol=chi_bound))
    zc = np.concatenate([np.ravel(res[p]["digit"]["z"]["corr"]) for p in PROCESSES])
    out.append(cl.upper_bound(
        f"digit: the noise is diagonal in each process's basis: off-diagonal empirical "
        f"correlations of the standardised coefficients (all 4 processes, {zc.size} pairs x "
        f"times), max sqrt(n)|r| <= Bonferroni bound",
        float(np.abs(zc).max()), marginals.bonferroni_z(zc.size, cfg.false_alarm)))
    out.append(cl.upper_bound(
        "heat dissipation preserves the pixel mean of E[x_t] at every t (digit and field; "
        "max |mean E[x_t] - mean x0|)",
        max(float(res["heat"][d]["mean_drift"].max()) for d in data), cfg.mean_tol))
    for pname in ("heat", "blurring"):
        e = [res[pname][d]["high_freq_energy"] for d in data]
        ok = [v[:-1] > cfg.energy_floor * r["energy"][d] for v, d in zip(e, data)]
        ratio = float(np.concatenate([v[1:][k] / v[:-1][k] for v, k in zip(e, ok)]).max())
        out.append(cl.upper_bound(
            f"{LABELS[pname]}: energy of E[x_t] above 1/4 cycle/pixel is non-increasing in t "
            f"(digit and field, frames above {cfg.energy_floor:g} of ||x0||^2; max ratio of "
            f"consecutive frames, float32 round-off slack 1e-4)", ratio, 1.0, rtol=1e-4))
    return out


def plot(r: dict, out_dir: Path) -> list[str]:
    # one axes per row holding a montage of the frames (88 separate axes take seconds to lay out)
    res, data = r["processes"], r["data"]
    n_frames = len(res["vp"]["times"])
    ncol = n_frames + 1
    fig, axes = plotting.new_figure(len(res) * len(data), 1, width=0.95 * ncol + 0.8, height=1.0)
    for ip, pname in enumerate(res):
        for idata, (dname, x0) in enumerate(data.items()):
            ax = axes[ip * len(data) + idata, 0]
            frames = np.stack([x0, *res[pname][dname]["strip"]])
            lo, hi = np.quantile(frames, [0.005, 0.995])
            h, w = x0.shape
            gap = max(1, w // 8)
            canvas = np.full((h, ncol * (w + gap) - gap), np.nan)
            for c, img in enumerate(frames):
                canvas[:, c * (w + gap): c * (w + gap) + w] = img
            ax.imshow(np.ma.masked_invalid(canvas), cmap="gray", vmin=lo, vmax=hi,
                      interpolation="nearest", aspect="auto")
            ax.set_xticks([c * (w + gap) + (w - 1) / 2 for c in range(ncol)])
            ax.set_xticklabels(["$x_0$"] + [f"t={t:.3g}" for t in res[pname]["times"]],
                               fontsize=6)
            ax.tick_params(length=0, pad=1)
            ax.set_yticks([])
            ax.set_ylabel(f"{SHORT[pname]}\n{dname}", fontsize=7)
            for side in ax.spines.values():
                side.set_visible(False)
    fig.suptitle(f"forward processes: {n_frames} times uniform on [t_min, T], one noise draw "
                 "per row (a path), grey scale per row (0.5-99.5% quantiles)", fontsize=9)
    return plotting.save(fig, Path(out_dir) / "forward_gallery.png")
