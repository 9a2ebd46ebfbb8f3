r"""Learned diffusion on the scikit-learn digits: white VP, pink VP and heat dissipation U-Nets
at one training and sampling budget, a class-conditional model, an exact Gaussian baseline.

    python -m experiments run digits_diffusion --preset smoke   # ~50 s CPU (one model)
    python -m experiments run digits_diffusion                  # quick: ~210 s CPU
    python -m experiments run digits_diffusion --preset full    # GPU, ~1-2 h (estimate)

Per process one preconditioned U-Net (:mod:`opdiff.diffusion.models`; untrained it is the
Wiener filter of ``wiener_start``, so its samples come from the exact law of
:func:`opdiff.diffusion.oracle.sampler_law`), trained by
:func:`opdiff.diffusion.training.train_denoiser` with the same weights, batches and noise,
sampled by :func:`opdiff.diffusion.generate.generate` at one NFE. Baseline: the DCT-diagonal
Gaussian moment-matched to the training images (exact samples and bits/dim,
:mod:`opdiff.diffusion.baselines`; its exact sampler KL per process predicts the ranking).
Metrics: :func:`opdiff.metrics.image_metrics` on the library classifier's features, each with
its data-vs-data floor; bits/dim of dequantised test digits by the probability-flow ODE.
``full`` adds Fashion-MNIST when installed. Claims: 3 conditional accuracy above chance (and
``acc_min``, a target). A learned model has no theorem against an untrained one, a baseline or
the data floor at a fixed budget, so the rest are findings with SEs: 1 FD trained - untrained;
2 FD - data floor; 4 heat's FD - white's; 5 bits/dim and 6 FD - the Gaussian's. Numbers:
notes/learned_diffusion.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import images, metrics, plotting, spectra
from opdiff.claims import difference, lower_bound, mean_se
from opdiff.diffusion import baselines, likelihood, models, oracle, samplers
from opdiff.diffusion.generate import generate
from opdiff.diffusion.training import loss_summary, train_denoiser
from opdiff.nets import classifier as clf_mod

from . import _learned_common as lc
from ._config import (
    Count, HalfOpenUnit, NonNegInt, OpenUnit, Positive, Probability, Range, Seed, validate,
)

NAME = "digits_diffusion"
DESCRIPTION = ("Learned U-Net diffusion on the digits: white vs pink VP vs heat dissipation "
               "at one budget, class-conditional samples, FD/SW/spectrum/bits-dim against an "
               "exact Gaussian baseline")
DTYPE = "float32"

PROCESS_KINDS = models.PROCESS_KINDS
LABELS = {"gaussian": "Gaussian baseline", "white": "white VP", "pink": "pink VP",
          "heat": "heat dissipation", "blurring": "blurring", "ve": "VE",
          "conditional": "conditional white VP"}
COLOURS = {"gaussian": "tab:grey", "white": "k", "pink": "tab:pink", "heat": "tab:red",
           "blurring": "tab:purple", "ve": "tab:blue", "conditional": "tab:green"}

@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    processes: tuple[str, ...] = ("white", "pink", "heat")
    conditional: bool = True
    channels: tuple[Count, ...] = (16, 32)
    emb_dim: Count = 32
    train_steps: Count = 500
    batch_size: Count = 64
    lr: Positive = 2e-3
    ema_decay: HalfOpenUnit = 0.99
    label_dropout: HalfOpenUnit = 0.1
    sampler: str = "ancestral"
    sample_steps: Count = 20
    n_samples: Annotated[int, Range(lo=20)] = 500
    n_bpd: NonNegInt = 32
    bpd_rtol: OpenUnit = 1e-4
    classifier_steps: Count = 500
    acc_min: Probability = 0.5
    fashion: bool = False
    fashion_channels: tuple[Count, ...] = (32, 64, 128)
    fashion_train_steps: Count = 20000
    fashion_batch_size: Count = 128
    fashion_max_train: Count = 60000
    fashion_n_bpd: NonNegInt = 297

    def __post_init__(self):
        if not self.processes or len(set(self.processes)) != len(self.processes) or any(
                p not in PROCESS_KINDS for p in self.processes):
            raise ValueError(f"processes must be distinct entries of {PROCESS_KINDS}, got "
                             f"{self.processes}")
        validate(self)  # every field by its annotation (counts, rates, probabilities)
        if self.sampler not in samplers.SAMPLERS:
            raise ValueError(f"sampler must be one of {samplers.SAMPLERS}, got {self.sampler!r}")
        if self.n_samples % 10:
            raise ValueError(f"n_samples must be a multiple of 10 (ten classes), got "
                             f"{self.n_samples}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_samples * 8 ** 2 * max(channels)": self.n_samples * 8 ** 2 * max(self.channels),
            "batch_size * 8 ** 2 * max(channels)": self.batch_size * 8 ** 2 * max(self.channels),
            "(n_samples + fashion_batch_size) * 28 ** 2 * max(fashion_channels) (fashion)":
                (self.fashion * (self.n_samples + self.fashion_batch_size) * 28 ** 2
                 * max(self.fashion_channels)),
        }


PRESETS = {
    "smoke": Config(processes=("white",), conditional=False, channels=(8, 16), emb_dim=16,
                    train_steps=20, batch_size=32, sample_steps=5, n_samples=100, n_bpd=0,
                    classifier_steps=50),
    "quick": Config(),
    "full": Config(channels=(32, 64), emb_dim=64, train_steps=20000, batch_size=128,
                   ema_decay=0.999, n_samples=2000, n_bpd=297, bpd_rtol=1e-5,
                   classifier_steps=2000, fashion=True),
}

def run(cfg: Config, key) -> dict:
    out: dict = {}
    sets = [("digits", cfg, lc.load_image_set("digits"))]
    if cfg.fashion and images.fashion_mnist_available():
        sets.append(("fashion", dataclasses.replace(
            cfg, channels=cfg.fashion_channels, train_steps=cfg.fashion_train_steps,
            batch_size=cfg.fashion_batch_size, n_bpd=cfg.fashion_n_bpd),
            lc.load_image_set("fashion", max_train=cfg.fashion_max_train)))
    elif cfg.fashion:
        out["fashion"] = "not installed (apt install dataset-fashion-mnist); part skipped"
    for i, (tag, c, data) in enumerate(sets):
        k_clf, k_gauss, k_deq, kp, k_cond = (jax.random.fold_in(jax.random.fold_in(key, i), j)
                                             for j in range(5))
        clf = clf_mod.train_classifier(data.x_train, data.y_train, data.n_classes, key=k_clf,
                                       steps=c.classifier_steps, noise=0.05)
        feats = functools.partial(clf_mod.features, clf)
        im = functools.partial(metrics.image_metrics, x_train=data.x_train, x_test=data.x_test,
                               features=feats)
        res = out[tag] = {"processes": list(c.processes), "acc_min": c.acc_min, "samples": {},
                          "n_test": len(data.x_test), "n_same": min(c.n_samples, len(data.x_test)),
                          "classifier_test_accuracy": clf_mod.accuracy(clf, data.x_test,
                                                                       data.y_test)}
        s = res["samples"]
        field = oracle.field_from_samples(data.x_train, "dct")
        n_bpd = min(c.n_bpd, len(data.x_test))
        x_deq = np.asarray(likelihood.dequantize(
            k_deq, jnp.asarray(data.x_test[:max(n_bpd, 1)]), data.bin_width))
        s["gaussian"] = xg = np.asarray(field.sample(k_gauss, c.n_samples))
        g = res["gaussian"] = im(xg, key=jax.random.fold_in(k_gauss, 1))
        g_bpd = baselines.gaussian_bits_per_dim(x_deq, field, bin_width=data.bin_width)
        g["bpd"], g["bpd_se"] = (mean_se(g_bpd) if len(g_bpd) > 1
                                 else (float(g_bpd[0]), math.nan))
        g["bpd_all_test"] = mean_se(baselines.gaussian_bits_per_dim(np.asarray(
            likelihood.dequantize(jax.random.fold_in(k_deq, 1), jnp.asarray(data.x_test),
                                  data.bin_width)), field, bin_width=data.bin_width))[0]
        res["exact_kl"], res["models"] = {}, {}
        y = np.tile(np.arange(data.n_classes), c.n_samples // data.n_classes)  # balanced prefixes
        for kind in [*c.processes, *(["conditional"] if c.conditional else [])]:
            cond = kind == "conditional"  # the same weights, batches, noise (kp) per process
            kk, yk = (k_cond, y) if cond else (kp, None)
            process = models.make_process("white" if cond else kind, data.shape)
            r = res["models"][kind] = {}
            if not cond:
                ts = samplers.log_snr_grid(process, c.sample_steps)
                m, w = oracle.sampler_law(c.sampler, process, field, ts)
                res["exact_kl"][kind] = oracle.divergences(m, w, field)["kl"]
                m0, w0 = oracle.sampler_law(c.sampler, process, field, ts,
                                            model=models.wiener_start(process, data.x_train))
                s[f"{kind}_untrained"] = x0 = baselines.law_samples(
                    jax.random.fold_in(kp, 0), c.n_samples, m0, w0, "dct")
                r["untrained"] = im(x0, key=jax.random.fold_in(kp, 1))
            model = models.make_unet_denoiser(
                process, data.x_train, channels=c.channels, emb_dim=c.emb_dim,
                n_classes=data.n_classes if cond else None, key=jax.random.fold_in(kk, 2))
            tr = train_denoiser(model, process, data.x_train, data.y_train if cond else None,
                                steps=c.train_steps, key=jax.random.fold_in(kk, 3),
                                batch_size=c.batch_size, lr=c.lr, ema_decay=c.ema_decay,
                                label_dropout=c.label_dropout, progress=False)
            r.update(loss_summary(tr.losses), train_steps_per_s=float(tr.steps_per_s))
            s[kind] = xs = generate(tr.ema_params, process, jax.random.fold_in(kk, 4),
                                    c.n_samples, x_train=data.x_train, steps=c.sample_steps,
                                    method=c.sampler, y=yk)
            r.update(nfe=samplers.nfe(c.sampler, c.sample_steps),
                     **im(xs, key=jax.random.fold_in(kk, 1)))
            if cond:
                s["conditional_labels"] = y
                r.update(accuracy=clf_mod.accuracy(clf, xs, y), n=int(len(y)),
                         chance_plus_5se=metrics.chance_bound(len(y)))
            if n_bpd and not cond:
                bpd, r["ode_steps"] = likelihood.dataset_bits_per_dim(
                    tr.ema_params.batched, process, x_deq, bin_width=data.bin_width,
                    prior=process.prior(field.mean, field.var) if process.informative_prior
                    else None, key=jax.random.fold_in(kp, 5), rtol=c.bpd_rtol)
                r["bpd"], r["bpd_se"] = mean_se(bpd)
                # paired with the baseline on the same dequantised images
                r["bpd_minus_gaussian"], r["bpd_minus_gaussian_se"] = mean_se(
                    np.asarray(bpd) - np.asarray(g_bpd))
        s["data"] = data.x_test
        fds = {k: v["fd"] for k, v in res["models"].items() if k in c.processes}
        res["ranking_fd"] = sorted(fds, key=fds.get)
    return out


def claims(cfg: Config, results: dict) -> list:
    """Claims 1-6 of the module docstring, per image set (FD SEs: bootstrap; bits/dim: paired)."""
    out = []
    for tag in [t for t in ("digits", "fashion") if isinstance(results.get(t), dict)]:
        res = results[tag]
        g, mods, procs, t = res["gaussian"], res["models"], res["processes"], f"[{tag}]"
        fd = {k: (r["fd"], r["fd_se"]) for k, r in [("gaussian", g), *mods.items()]}
        out += [difference(f"{t} 1. {LABELS[k]}: FD trained - FD untrained (Wiener start)",
                           *fd[k], mods[k]["untrained"]["fd"], mods[k]["untrained"]["fd_se"])
                for k in procs]
        out += [difference(f"{t} 2. {LABELS[k]}: FD ({res['n_same']} samples) - data-vs-data "
                           f"FD ({res['n_test']} test images)", r["fd_same_n"],
                           r["fd_same_n_se"], r["fd_data"], r["fd_data_se"])
                for k, r in [("gaussian", g), *mods.items()]]
        if "conditional" in mods:
            r = mods["conditional"]
            out.append(lower_bound(f"{t} 3. reproduction target, not a theorem: conditional "
                                   f"samples' classifier accuracy >= acc_min (classifier on "
                                   f"real test images: {res['classifier_test_accuracy']:.3g})",
                                   r["accuracy"], res["acc_min"]))
            out.append(lower_bound(f"{t} 3. conditional accuracy > chance 0.1 + 5 binomial SE "
                                   f"(n={r['n']})", r["accuracy"], r["chance_plus_5se"]))
        if "heat" in procs and "white" in procs:
            ex = res["exact_kl"]
            out.append(difference(
                f"{t} 4. FD heat dissipation - FD white VP (the exact Gaussian KL predicts heat "
                f"worse: {ex['heat']:.3g} vs {ex['white']:.3g}); FD ranking "
                f"{' < '.join(res['ranking_fd'])}", *fd["heat"], *fd["white"]))
        out += [difference(f"{t} 5. {LABELS[k]}: bits/dim - the exact Gaussian baseline's, "
                           f"paired on the same dequantised test images ({mods[k]['bpd']:.4g} "
                           f"vs {g['bpd']:.4g})", mods[k]["bpd_minus_gaussian"],
                           mods[k]["bpd_minus_gaussian_se"], 0.0, 0.0)
                for k in procs if "bpd" in mods[k]]
        out += [difference(f"{t} 6. {LABELS[k]}: FD - the Gaussian baseline's FD", *fd[k],
                           *fd["gaussian"]) for k in mods]
    return out


def plot(results: dict, out_dir) -> list[str]:
    names: list[str] = []
    for tag in [t for t in ("digits", "fashion") if isinstance(results.get(t), dict)]:
        res = results[tag]
        prefix = NAME if tag == "digits" else f"{NAME}_{tag}"
        s, procs = res["samples"], res["processes"]
        blocks = [("data (test)", s["data"]), (LABELS["gaussian"], s["gaussian"])] + [
            b for k in procs for b in ((f"{LABELS[k]}: untrained start", s[f"{k}_untrained"]),
                                       (f"{LABELS[k]}: trained", s[k]))]
        fig, axes = plotting.new_figure(len(blocks), 1, width=6.4, height=1.1)
        for ax, (title, x) in zip(axes[:, 0], blocks):
            images.show_mosaic(ax, x, 2, 16, title)
        names += plotting.save(fig, Path(out_dir) / f"{prefix}_samples.png")
        if "conditional" in s:
            fig, axes = plotting.new_figure(1, 1, width=4.0, height=4.2)
            images.show_by_class(axes[0, 0], s["conditional"], s["conditional_labels"],
                                 min(10, len(s["conditional"]) // 10),
                                 title=f"conditional white VP, rows y = 0..9 (classifier accuracy"
                                 f" {res['models']['conditional']['accuracy']:.2f})")
            names += plotting.save(fig, Path(out_dir) / f"{prefix}_conditional.png")
        order = ["gaussian", *res["models"]]
        rows = {"gaussian": res["gaussian"], **res["models"]}
        fig, axes = plotting.new_figure(1, 3, width=4.0, height=3.4)
        for ax, (key, floor, title) in zip(axes[0], [
                ("fd_same_n", "fd_data", f"FD, {res['n_same']} samples (classifier features)"),
                ("sliced_w2", "sliced_w2_data", "sliced W2 vs test"),
                ("spectrum_distance", "spectrum_distance_data", "spectrum distance (decades)")]):
            xs = np.arange(len(order))
            ax.bar(xs, [rows[o][key] for o in order], color=[COLOURS[o] for o in order])
            if key == "fd_same_n":
                ax.scatter([xs[i] for i, o in enumerate(order) if o in procs],
                           [rows[o]["untrained"]["fd_same_n"] for o in order if o in procs],
                           marker="x", color="tab:orange", label="untrained start", zorder=3)
            ax.axhline(rows["gaussian"][floor], color="tab:blue", linestyle="--",
                       label="data vs data (floor)")
            ax.set_xticks(xs, [LABELS[o] for o in order], rotation=35, ha="right", fontsize=7)
            ax.set_yscale("log"), ax.set_title(title, fontsize=9)
            ax.legend(fontsize=7)
        names += plotting.save(fig, Path(out_dir) / f"{prefix}_metrics.png")
        fig, axes = plotting.new_figure(1, 1, width=4.6, height=3.6)
        ax = axes[0, 0]
        f, p = spectra.rapsd(s["data"])
        ax.plot(f, p, color="tab:blue", linewidth=2.5, alpha=0.5, label="data (test)")
        for o in order:
            f, p = spectra.rapsd(np.clip(s[o], -1.5, 1.5))
            ax.plot(f, p, color=COLOURS[o], marker="o", markersize=3, label=LABELS[o])
        ax.set(xscale="log", yscale="log", xlabel="frequency (cycles / pixel)", ylabel="RAPSD")
        ax.grid(True, alpha=0.3), ax.legend(fontsize=7)
        names += plotting.save(fig, Path(out_dir) / f"{prefix}_rapsd.png")
    return names
