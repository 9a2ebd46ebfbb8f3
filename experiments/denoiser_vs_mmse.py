r"""Learned denoisers (U-Net, DeepONet with and without skip path) against the exact MMSE on
Gaussian power-law fields, the DeepONet's rank-p (PCA) floor, and their sample KL vs the exact's.

    python -m experiments run denoiser_vs_mmse --preset smoke   # ~9 s (2-core CPU, shared)
    python -m experiments run denoiser_vs_mmse                  # quick, ~105-135 s CPU
    python -m experiments run denoiser_vs_mmse --preset full    # GPU, ~20-40 min (estimate)

Maths: :mod:`opdiff.diffusion.denoiser_error`. Models: a U-Net or a DeepONet preconditioned
with a scalar data scale. Claims: 0a/0b the exact and the untrained denoiser equal their closed
forms (4 SE); 1 MSE >= MMSE and 3 MSE >= rank-p floor (3 SE); 2 MSE/MMSE <= ``goal``, 4 training
halves the untrained excess (targets); 5a the exact score's sample KL = its sampler law's (4 sd);
5 finding: learned - exact-score sample KL. Numbers: notes/learned_diffusion.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Annotated

import jax
import numpy as np

from opdiff import plotting, spectra
from opdiff.claims import finding, lower_bound, upper_bound, within
from opdiff.diffusion import denoiser_error as de, oracle, processes, samplers
from opdiff.diffusion.training import train_denoiser

from ._config import (MAY_BE_EMPTY, AboveOne, AtLeastTwo, Count, HalfOpenUnit,
                                 Positive, Seed)

NAME = "denoiser_vs_mmse"
DESCRIPTION = ("Learned denoisers (U-Net, DeepONet with/without skip) vs the exact Wiener MMSE "
               "per noise level on power-law fields, the DeepONet PCA floor, and sample KL vs "
               "the exact-score KL")
DTYPE = "float32"

WEIGHTINGS = ("denoiser", "sigma2", "likelihood", "none")
STYLE = {"unet": ("tab:blue", "o"), "operator_skip": ("tab:orange", "s"),
         "operator_noskip": ("tab:green", "^"), "untrained": ("0.4", "."), "exact": ("k", "x")}
LABELS = {"unet": "U-Net", "operator_skip": "DeepONet (skip)",
          "operator_noskip": "DeepONet (no skip)", "untrained": "untrained (scalar Wiener)",
          "exact": "exact score"}


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


def run(cfg: Config, key) -> dict:
    marks, trained = [("start", time.perf_counter())], {}
    field = oracle.power_law_field((cfg.size, cfg.size), "dft", alpha=cfg.alpha)
    process = processes.vp(field.shape, basis="dft")
    x_train, x_test = np.split(np.asarray(field.sample(jax.random.fold_in(key, 1), cfg.n_train
                                                       + cfg.n_test)), [cfg.n_train])
    sigma_data = float(x_train.std())
    lv = de.noise_levels(field, process, cfg.n_levels, sigma_data)
    ts, mmse, k_eval = lv["t"], lv["mmse"], jax.random.fold_in(key, 3)  # k_eval: every model's
    errors = functools.partial(de.evaluate_levels, process=process, x_test=x_test, key=k_eval,
                               ts=ts, chunk=cfg.eval_batch, mmse=mmse)
    lv["exact_mc"] = errors(de.exact_denoiser(field, process))
    models = de.scalar_scale_denoisers(
        process, sigma_data, jax.random.fold_in(key, 4), unet_emb_dim=cfg.unet_emb_dim,
        unet_channels=cfg.unet_channels if cfg.unet else None, operator_skips=cfg.operator_skips,
        p=cfg.operator_p, width=cfg.operator_width, depth=cfg.operator_depth)
    first = next((n for n in ("unet", "operator_skip") if n in models), "")
    if first:  # 0b. an untrained model with the skip path is the scalar Wiener filter
        lv["untrained_mc"] = errors(de.batched_denoiser(models[first]))
    marks.append(("exact_and_untrained_eval", time.perf_counter()))
    out = dict(size=cfg.size, alpha=cfg.alpha, d=field.size, sigma_data=sigma_data, levels=lv,
               models=list(models), untrained_model=first, training={}, spectra={},
               worst=int(np.argmax(lv["untrained_ratio"])), x_test_shown=x_test[:cfg.n_show],
               test_sd=float(np.std(x_test)), config=dataclasses.asdict(cfg),
               kl_data_vs_data=de.kl_bias_at_zero(field.size, cfg.n_samples))
    for i, (name, model) in enumerate(models.items()):
        unet = name == "unet"
        steps, lr = (cfg.unet_steps, cfg.unet_lr) if unet else (cfg.operator_steps, cfg.operator_lr)
        t0 = time.perf_counter()
        res = train_denoiser(model, process, x_train, steps=steps,
                             key=jax.random.fold_in(key, 10 + i), batch_size=cfg.batch_size,
                             lr=lr, weighting=cfg.weighting, ema_decay=cfg.ema_decay,
                             progress=False)
        losses, k, trained[name] = np.asarray(res.losses), min(100, len(res.losses)), res.ema_params
        out["training"][name] = dict(steps=steps, lr=lr, seconds=time.perf_counter() - t0,
                                     steps_per_s=res.steps_per_s, loss_first=float(
                                         losses[:k].mean()), loss_last=float(losses[-k:].mean()))
        r = lv[name] = errors(de.batched_denoiser(res.ema_params))
        if not unet:  # rank-p floor, with the skip path's gain or without
            r["floor"] = de.rank_p_floors(field, process, ts, cfg.operator_p, sigma_data
                                          if name == "operator_skip" else None)
            r["floor_over_mmse"], r["mse_over_floor"] = r["floor"] / mmse, r["mse"] / r["floor"]
        marks.append((f"train_and_eval_{name}", time.perf_counter()))
    for j in sorted({out["worst"], 0}):  # error spectra at the untrained worst level, t_min
        out["spectra"][str(j)] = de.error_spectrum(
            trained, field, process, x_test, jax.random.fold_in(k_eval, 1000 + j), ts[j],
            sigma_data, cfg.eval_batch)
    marks.append(("spectra", time.perf_counter()))
    out.update(de.learned_sample_kl(  # 5. sample KL vs the exact score's (5a: exact samples)
        {**trained, "exact": de.exact_model(field, process)}, process, field, x_train, cfg.samplers, cfg.sample_steps, cfg.n_samples, key,
        cfg.n_boot, batch=min(cfg.n_samples, cfg.eval_batch), n_show=cfg.n_show))
    marks.append(("sampling", time.perf_counter()))
    out["timings_s"] = {n: t - p for (_, p), (n, t) in zip(marks, marks[1:])}
    return out


def claims(cfg: Config, results: dict) -> list:
    lv, w, lab = results["levels"], results["worst"], LABELS
    mmse, lsnr, first = lv["mmse"], lv["log_snr"], results["untrained_model"]
    out, ex, u0 = [], lv["exact_mc"], lv.get("untrained_mc")
    out.append(within("0a. the exact Wiener denoiser through the Monte-Carlo evaluation: MSE = the "
                      "closed-form MMSE at every level (4 SE)", ex["mse"], mmse, atol=4 * ex["se"]))
    if first:
        out.append(within(f"0b. the untrained {lab[first]}: MSE = the closed-form error of the "
                          f"scalar Wiener filter c_skip z at every level (4 SE)", u0["mse"],
                          lv["untrained_mse"], atol=4 * u0["se"]))
    for name in results["models"]:
        r = lv[name]
        out.append(lower_bound(f"1. {lab[name]}: MSE + 3 SE >= MMSE at every level (min z "
                               f"{np.min(r['z']):.2f})", r["mse"] + 3 * r["se"], mmse))
        if "floor" in r:
            out.append(lower_bound(f"3. {lab[name]} (p={cfg.operator_p}): MSE + 3 SE >= the "
                                   f"rank-p PCA floor at every level", r["mse"] + 3 * r["se"],
                                   r["floor"]))
        if name != "operator_noskip":
            ru, rt = float(lv["untrained_mse"][w] / mmse[w]), float(r["ratio"][w])
            out.append(upper_bound(f"2. {lab[name]}: MSE/MMSE <= {cfg.goal:g} at every level (a "
                                   f"training target; max at log-SNR "
                                   f"{lsnr[int(np.argmax(r['ratio']))]:.2f})",
                                   float(np.max(r["ratio"])), cfg.goal))
            out.append(upper_bound(
                f"4. {lab[name]}: training removes at least half the untrained scalar Wiener "
                f"filter's excess at its worst level (a training target; log-SNR {lsnr[w]:.2f}; "
                f"untrained ratio {ru:.3f}): trained ratio - 1 <= (untrained - 1)/2", rt - 1,
                0.5 * (ru - 1)))
    for meth, row in results["kl"].items():
        head = f"{meth} {cfg.sample_steps} steps ({row['nfe']} NFE), {cfg.n_samples} samples"
        out.append(within(f"5a. exact score, {head}: estimated KL = the estimator's mean at the "
                          f"sampler's exact law (KL {row['exact']:.4g}; 4 sd)", row["models"][
                              "exact"]["kl_hat"], row["null_mean"], atol=4 * row["null_sd"]))
        out += [finding(f"5. {lab[name]}, {head}: learned-score KL - exact-score KL "
                        f"(bias-corrected {q['kl_corrected']:.4g} vs {row['exact']:.4g}; no "
                        f"theorem orders them after discretisation)", q["excess"], q["kl_se"])
                for name, q in row["models"].items() if name != "exact"]
    return out


def plot(results: dict, out_dir) -> list[str]:
    out_dir, lv, cfg, size = Path(out_dir), results["levels"], results["config"], results["size"]
    lsnr, mmse, goal = lv["log_snr"], lv["mmse"], cfg["goal"]
    fig, axes = plotting.new_figure(1, 2, width=4.6, height=3.6)
    for k, ax in enumerate(axes[0]):  # MSE/MMSE: the skip-path models (+-2 SE); all, log scale
        for name in [n for n in results["models"] if k or n != "operator_noskip"]:
            (c, mk), r = STYLE[name], lv[name]
            ax.errorbar(lsnr, r["ratio"], yerr=None if k else 2 * r["ratio_se"], color=c,
                        marker=mk, markersize=4, linewidth=1.3, capsize=2,
                        label=LABELS[name] + ("" if k else " (trained)"))
            if "floor" in r and k == (name == "operator_noskip"):
                ax.plot(lsnr, r["floor"] / mmse, color=c, linestyle="--", linewidth=1.1,
                        label=f"PCA floor, p={cfg['operator_p']} ({'no skip' if k else 'skip'})")
        ax.axhline(goal, color="tab:red", linewidth=0.9, label=None if k else f"goal {goal:g}")
        ax.set(xlabel="log-SNR  log(a²/s²)", ylabel="MSE / MMSE", yscale="log" if k else "linear",
               title="every model, log scale" if k else
               f"{size}×{size} power-law field, α={results['alpha']:g}")
    axes[0, 0].plot(lsnr, lv["untrained_mse"] / mmse, color="0.4", linestyle=":", marker=".",
                    linewidth=1.2, label="untrained: scalar Wiener filter")
    axes[0, 0].axhline(1.0, color="k", linewidth=0.8)
    for ax in axes[0]:
        ax.title.set_fontsize(9), ax.legend(fontsize=7), ax.grid(True, which="major", alpha=0.3)
    names = plotting.save(fig, out_dir / "denoiser_vs_mmse_ratio.png")
    fig, axes = plotting.new_figure(1, len(results["spectra"]), width=4.4, height=3.4)
    for ax, (j, s) in zip(axes[0], results["spectra"].items()):  # error / MMSE per radial bin
        f, base = spectra.radial_average(s["mmse"], bins="linear", statistic="sum")
        for name, e in [*s["models"].items(), ("untrained", s["untrained"])]:
            with np.errstate(invalid="ignore", divide="ignore"):
                ax.plot(f, spectra.radial_average(e, bins="linear", statistic="sum")[1] / base,
                        color=STYLE[name][0], marker=STYLE[name][1], markersize=3, lw=1.2,
                        label=LABELS[name], linestyle=":" if name == "untrained" else "-")
        ax.axhline(1.0, color="k", linewidth=0.8)
        ax.set(yscale="log", xlabel="radial frequency (cycles/pixel)",
               ylabel="error / MMSE in the bin", title=f"log-SNR {lsnr[int(j)]:.2f}")
        ax.title.set_fontsize(9), ax.grid(True, which="major", alpha=0.3), ax.legend(fontsize=7)
    names += plotting.save(fig, out_dir / "denoiser_vs_mmse_spectrum.png")
    meths, lim = cfg["samplers"], 2.5 * results["test_sd"]  # test fields and samples
    rows = [("test fields", results["x_test_shown"])] + [
        (f"{LABELS[n]} ({meths[0]})", x) for n, x in results["shown"].items()]
    fig, axes = plotting.new_figure(len(rows), cfg["n_show"], width=1.3, height=1.35)
    for (title, xs), axs in zip(rows, axes):
        for ax, x in zip(axs, xs):
            ax.imshow(np.asarray(x), cmap="RdBu_r", vmin=-lim, vmax=lim)
        [(ax.set_xticks([]), ax.set_yticks([])) for ax in axs]
        axs[0].set_title(title, fontsize=7, loc="left")
    names += plotting.save(fig, out_dir / "denoiser_vs_mmse_samples.png")
    fig, axes = plotting.new_figure(1, len(meths), width=4.2, height=3.4)
    for ax, meth in zip(axes[0], meths):  # sample variance / lambda_k per radial bin
        row = results["kl"][meth]
        ax.plot(*spectra.radial_average(row["exact_var_ratio"], bins="linear"), color="k",
                linestyle="--", linewidth=1.2, label=f"exact score (KL {row['exact']:.3g})")
        for name, v in results["sample_var"].get(meth, {}).items():
            ax.plot(*spectra.radial_average(v, bins="linear"), color=STYLE[name][0],
                    marker=STYLE[name][1], markersize=3, linewidth=1.2,
                    label=f"{LABELS[name]} (KL≈{row['models'][name]['kl_corrected']:.3g})")
        ax.axhline(1.0, color="0.5", linewidth=0.8)
        ax.set(yscale="log", xlabel="radial frequency (cycles/pixel)", ylabel="sample variance / "
               "λ_k (bin mean)", title=f"{meth}, {cfg['sample_steps']} steps ({row['nfe']} NFE)")
        ax.title.set_fontsize(9), ax.legend(fontsize=7), ax.grid(True, which="major", alpha=0.3)
    return names + plotting.save(fig, out_dir / "denoiser_vs_mmse_sample_spectrum.png")
