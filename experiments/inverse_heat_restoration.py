r"""Deblurring and 2× super-resolution of held-out digits with a heat-dissipation denoiser:
posterior mean and posterior samples against the naive inverse, bicubic, Wiener (DCT) and the
full-covariance LMMSE — a PSNR/SSIM table in the form of the seed's super-resolution table.

    python -m experiments run inverse_heat_restoration --preset smoke   # ~15 s on a 2-core CPU
    python -m experiments run inverse_heat_restoration                  # quick, ~140 s
    python -m experiments run inverse_heat_restoration --preset full    # GPU (15-30 min, estimate)

The heat-dissipation marginal *is* the observation model of deblurring (a Gaussian blur of
width :math:`\sigma_B` plus white noise), so the trained denoiser at the blur's level is the
learned posterior mean and a reverse sampler started at the observation draws posterior
samples (:mod:`opdiff.diffusion.restoration`: the degradations, the estimators, the level
selection for 2× SR, the scores). The model is a preconditioned U-Net (or, ``model="deeponet"``,
the operator denoiser; :mod:`opdiff.diffusion.models`) trained by
:func:`opdiff.diffusion.training.train_denoiser` on held-out-split digits (``full`` adds
Fashion-MNIST when installed). The runner builds the key with ``impl=prng``
(``"rbg"`` by default: the U-Net compiles faster than with Threefry).

Claims per data set and task (bounds with ``mc_z`` paired SE): Wiener (DCT) and, for SR,
bicubic MSE >= the full-covariance LMMSE's (best linear); on Gaussian data the sampler's
sample/mean MSE ratio = its exact law's (4 SE); the naive inverse's MSE = sigma^2 sum a^-2
(5 SE); findings: learned - Wiener PSNR, the learned sample/mean ratio, naive and SR PSNR gaps.
Numbers: notes/learned_diffusion.md.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated

import jax
import numpy as np

from opdiff import images, plotting
from opdiff.claims import finding, lower_bound, within
from opdiff.diffusion import models, oracle, samplers
from opdiff.diffusion import restoration as R
from opdiff.diffusion.training import train_denoiser

from . import _learned_common as lc
from ._config import AtLeastTwo, Count, HalfOpenUnit, NonNegInt, Positive, Range, Seed

NAME = "inverse_heat_restoration"
DESCRIPTION = ("Deblurring and 2x super-resolution of held-out digits with a heat-dissipation "
               "denoiser (posterior mean, samples) vs naive, bicubic, Wiener, LMMSE: PSNR/SSIM")
DTYPE = "float32"

DATASETS = ("digits", "fashion")
UPSAMPLERS = ("nearest", "bilinear")
PRNGS = ("rbg", "threefry2x32", "unsafe_rbg")
MODELS = ("unet", "deeponet")


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
        if self.n_test < 2 or self.t_grid < 3:
            raise ValueError(f"need n_test >= 2 and t_grid >= 3, got {self.n_test}, {self.t_grid}")
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


def run(cfg: Config, key) -> dict:
    out: dict = {"notes": [], "mc_z": cfg.mc_z, "naive_z": 5.0, "n_samples": cfg.n_samples, "datasets": {}}
    opts = dict(k=cfg.n_samples, steps=cfg.sample_steps, method=cfg.sampler)
    for i, name in enumerate(cfg.datasets):
        if name == "fashion" and not images.fashion_mnist_available():
            out["notes"].append("fashion skipped: Fashion-MNIST is not installed (apt-get "
                                "install dataset-fashion-mnist)")
            continue
        dkey = jax.random.fold_in(key, i)
        k_model = jax.random.fold_in(dkey, 0)
        data = lc.load_image_set(name, n_test=cfg.n_test, seed=cfg.seed)
        steps = cfg.train_steps if name == "digits" else cfg.fashion_train_steps
        process = models.make_process("heat", data.shape)
        t0 = time.perf_counter()
        if cfg.model == "unet":
            net = models.make_unet_denoiser(process, data.x_train, channels=cfg.channels,
                                            emb_dim=cfg.emb_dim, key=jax.random.fold_in(k_model, 0))
        else:
            net = models.make_operator_denoiser(process, data.x_train, p=cfg.deeponet_p,
                                                width=cfg.deeponet_width,
                                                key=jax.random.fold_in(k_model, 0))
        res = train_denoiser(net, process, data.x_train, steps=steps,
                             key=jax.random.fold_in(k_model, 1), batch_size=cfg.batch_size,
                             lr=cfg.lr, ema_decay=cfg.ema_decay, progress=False)
        t_train, t0 = time.perf_counter() - t0, time.perf_counter()
        den = (jax.jit(res.ema_params.batched), res.ema_params.batched)
        x0, flat = data.x_test, data.x_train.reshape(len(data.x_train), -1).astype(np.float64)
        field = oracle.field_from_samples(data.x_train, "dct")
        mu, cov = flat.mean(0), np.cov(flat, rowvar=False)
        trivial = R.summarize(R.image_scores(np.broadcast_to(mu.reshape(data.shape), x0.shape),
                                             x0))
        tasks = {f"deblur {w:g}px": R.deblur_task(
            den, process, field, mu, cov, x0, w, jax.random.fold_in(dkey, 100 + j),
            gaussian_reference=cfg.gaussian_reference, **opts)
            for j, w in enumerate(cfg.blur_widths)}
        tasks["SR 2x"] = R.sr_task(den, process, field, mu, cov, data.x_train, x0,
                                   jax.random.fold_in(dkey, 200), upsampler=cfg.upsample,
                                   t_grid=cfg.t_grid, **opts)
        rows = {t: R.task_summary(r, cfg.image_index) for t, r in tasks.items()}
        rows["SR 2x"]["upsample"] = cfg.upsample
        show = R.show_indices(data.y_test, cfg.n_show, cfg.image_index)
        n_smp = min(3, cfg.n_samples)
        out["datasets"][name] = dict(
            train_steps=steps, steps_per_s=float(res.steps_per_s),
            final_loss=float(np.mean(np.asarray(res.losses)[-max(1, steps // 20):])),
            n_train=int(len(data.x_train)), n_test=int(len(x0)),
            total_variance=float(np.trace(cov)), trivial_mean_image=trivial, tasks=rows,
            timings_s=dict(train=t_train, evaluate=time.perf_counter() - t0),
            x0_show=x0[show], show={t: {
                "observation": r["obs"][show], "wiener": r["est"]["wiener"][show],
                "third": r["est"]["bicubic" if "bicubic" in r["est"] else "naive"][show],
                "post_mean": r["est"]["post_mean"][show],
                "samples": r["samples"][:n_smp][:, show]} for t, r in tasks.items()})
    if not out["datasets"]:
        raise FileNotFoundError("; ".join(out["notes"]))
    out["table_markdown"] = "\n\n".join(R.table_markdown(R.table_rows(name, ds["tasks"],
                                                                    ds["n_test"]))
                                         for name, ds in out["datasets"].items())
    return out


def claims(cfg: Config, results: dict) -> list:
    out, z = [], cfg.mc_z
    for name, ds in results["datasets"].items():
        triv = ds["trivial_mean_image"]
        for tname, row in ds["tasks"].items():
            label, s, pd = f"{name} {tname}", row["methods"], row["paired"]
            mse = {m: v["sq_err"] for m, v in s.items()}
            out.append(finding(
                f"{label}: learned posterior-mean PSNR - Wiener (DCT) PSNR (paired, dB; "
                f"{s['post_mean']['psnr']:.2f} vs {s['wiener']['psnr']:.2f}; MSE "
                f"{mse['post_mean']:.3g} vs {mse['wiener']:.3g}; no theorem at a finite "
                f"training budget)", *pd["post_mean-wiener"]["psnr"]))
            out.append(lower_bound(
                f"{label}: Wiener (DCT) MSE >= LMMSE (full cov.) MSE, the best linear estimator "
                f"(training-set moments; {z:g} paired SE slack)", mse["wiener"], mse["lmmse"],
                rtol=z * pd["wiener-lmmse"]["sq_err"][1] / mse["lmmse"]))
            if row["kind"] == "deblur":
                exact, samp = row["ratio_gaussian_theory"], row["ratio_gaussian_sampler"]
                if row["ratio_gaussian_reference"] is not None:
                    out.append(within(
                        f"{label}: Gaussian data, exact denoiser, {cfg.sampler} "
                        f"{cfg.sample_steps} steps: posterior-sample MSE / posterior-mean MSE = "
                        f"this sampler's exact expected ratio (4 SE; exact posterior sampling: "
                        f"{exact:.3f})", row["ratio_gaussian_reference"], samp,
                        atol=4 * row["ratio_gaussian_reference_se"]))
                out.append(finding(
                    f"{label}: learned denoiser, {cfg.sampler} {cfg.sample_steps} steps: "
                    f"posterior-sample MSE / posterior-mean MSE (exact posterior sampling "
                    f"{exact:.3f}; this sampler with the exact Gaussian denoiser {samp:.3f})",
                    row["sample_over_mean_mse"], row["sample_over_mean_mse_se"]))
                pred, meas = row["naive_mse_predicted"], row["naive_mse_measured"]
                out.append(within(
                    f"{label}: naive-inverse MSE = sigma^2 sum_k a_t(k)^-2 = {pred:.4g} (5 SE)",
                    meas, pred, atol=5 * row["naive_mse_se"]))
                if pred > ds["total_variance"]:
                    out.append(finding(
                        f"{label}: naive PSNR - training-mean-image PSNR (dB; predicted < 0: "
                        f"naive MSE {pred:.3g} > data variance {ds['total_variance']:.3g}; "
                        f"clipped PSNR, no theorem)", s["naive"]["psnr"] - triv["psnr"],
                        float(np.hypot(s["naive"]["psnr_se"], triv["psnr_se"]))))
            else:
                out.append(lower_bound(
                    f"{label}: bicubic MSE >= LMMSE (full cov.) MSE from the low-resolution "
                    f"image (bicubic is linear in it; {z:g} paired SE slack)", mse["bicubic"],
                    mse["lmmse"], rtol=z * pd["bicubic-lmmse"]["sq_err"][1] / mse["lmmse"]))
                out.append(finding(f"{label}: bicubic PSNR - Wiener (DCT) PSNR at t_obs="
                                   f"{row['t']:.3f} (sigma_B={row['blur_width_px']:.2f}px; "
                                   f"paired, dB)", *pd["bicubic-wiener"]["psnr"]))
                out.append(finding(f"{label}: learned posterior-mean PSNR - bicubic PSNR "
                                   f"(paired, dB)", *pd["post_mean-bicubic"]["psnr"]))
    return out


def plot(results: dict, out_dir) -> list[str]:
    out_dir, sets = Path(out_dir), results["datasets"]
    rows = [r for name, ds in sets.items() for r in R.table_rows(name, ds["tasks"], ds["n_test"])]
    fig, axes = plotting.new_figure(1, 1, width=13, height=0.28 * len(rows) + 0.9)
    ax = axes[0, 0]
    ax.axis("off")
    tab = ax.table(cellText=[[f"{r[m][0]:.2f} / {r[m][1]:.4f}" if m in r else "–"
                              for m in R.METHODS] for _, r in rows],
                   rowLabels=[lab for lab, _ in rows], colLabels=[R.LABELS[m] for m in R.METHODS],
                   loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1.0, 1.25)
    ax.set_title("PSNR (dB) / SSIM on held-out images", fontsize=10)
    names = plotting.save(fig, out_dir / "inverse_heat_restoration_table.png")
    n_smp = min(3, results["n_samples"])
    cols = ["ground truth", "observation", "bicubic / naive", "Wiener", "posterior mean"] + \
        [f"sample {i + 1}" for i in range(n_smp)]
    blocks = [(f"{name} {t}", ds["x0_show"], sh) for name, ds in sets.items()
              for t, sh in ds["show"].items()]
    fig, axes = plotting.new_figure(sum(len(b[1]) for b in blocks), len(cols), width=1.0,
                                    height=1.0)
    row = 0
    for label, x0, sh in blocks:
        for j in range(len(x0)):
            ims = [x0[j]] + [sh[m][j] for m in ("observation", "third", "wiener", "post_mean")]
            images.show_grid(axes[row], np.asarray(ims + [sh["samples"][i, j]
                                                          for i in range(n_smp)]))
            if j == 0:
                axes[row, 0].set_ylabel(label, fontsize=5)
            row += 1
    for c, title in enumerate(cols):
        axes[0, c].set_title(title, fontsize=6)
    names += plotting.save(fig, out_dir / "inverse_heat_restoration_grid.png")
    fig, axes = plotting.new_figure(1, len(sets), width=4.6, height=3.4)
    for ax, (name, ds) in zip(axes[0], sets.items()):
        deb = [r for r in ds["tasks"].values() if r["kind"] == "deblur"]
        for m in ("observation", "naive", "wiener", "lmmse", "post_mean", "post_sample",
                  "mean_k"):
            ax.plot([r["blur_width_px"] for r in deb], [r["methods"][m]["psnr"] for r in deb],
                    marker="o", label=R.LABELS[m])
        ax.axhline(ds["trivial_mean_image"]["psnr"], color="gray", ls=":",
                   label="training mean image")
        ax.set(xlabel="blur width σ_B (px)", ylabel="test-mean PSNR (dB, clipped)")
        ax.set_title(f"{name}: deblurring", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return names + plotting.save(fig, out_dir / "inverse_heat_restoration_psnr.png")
