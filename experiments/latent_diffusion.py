r"""Latent diffusion (encode, diffuse the latent, decode) against pixel diffusion: exactly on
Gaussian power-law fields with the PCA autoencoder, then learned on the digits.

    python -m experiments run latent_diffusion [--preset smoke|quick|full]  # ~30 s | ~2 min

**Exact part** (:mod:`opdiff.diffusion.latent`, float64): white VP in pixel space (DFT basis)
vs white VP on the latent of the rank-k PCA autoencoder (``whiten`` and LDM's ``global``
scaling), exact denoisers, ``sampler`` at equal NFE, a final denoising step; end-to-end KL
(KL-optimal Gaussian decoder) and W2^2 (deterministic decoder) of the decoded law. Claims:
end-to-end >= the decoder floor everywhere; end-to-end = latent oracle + floor (computed apart);
the W2^2 floor = the squared PCA floor (:func:`opdiff.deeponet_bounds.pca_floor`); Monte Carlo
of the sampler, decoded, = the exact decoded law; finding: pixel minus best-latent W2^2 per NFE.

**Learned part** (digits; Fashion-MNIST at ``full`` when installed): a U-Net on pixels for
``train_steps`` vs the conv autoencoder (:mod:`opdiff.nets.autoencoder`, unit-variance
latents) for ``ae_steps`` + the same U-Net recipe on its latents for the rest (equal optimiser
steps and batch). Findings: FD (classifier features) minus the data floor, latent minus pixel,
latent minus the AE's reconstruction FD (its decoder floor), sliced W2, images/s; and whether
the coarse-to-fine order survives encoding: the latents' RAPSD slope vs the pixels', and the
log-SNR window over which the SNR = 1 cut-off sweeps the band. Numbers: notes/latent_diffusion.md.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import images, metrics, plotting, spectra
from opdiff.claims import difference, finding, lower_bound, mean_se, upper_bound, within
from opdiff.deeponet_bounds import pca_floor
from opdiff.diffusion import latent, marginals, models, oracle, processes, samplers
from opdiff.diffusion.generate import generate
from opdiff.diffusion.training import train_denoiser
from opdiff.nets import classifier as clf_mod
from opdiff.nets.autoencoder import decode_latents, encode_images, train_autoencoder

from . import _learned_common as lc
from ._config import AtLeastTwo, Count, OpenUnit, Positive, Seed, validate

NAME = "latent_diffusion"
DESCRIPTION = ("Latent vs pixel diffusion: exact PCA-latent oracle on power-law fields "
               "(end-to-end = latent part + decoder floor), learned conv-AE latents on digits")
DTYPE = "float32"
SCALINGS = ("whiten", "global")


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    field_size: AtLeastTwo = 16
    alpha: Positive = 3.0
    ranks: tuple[Count, ...] = (32, 128, 256)
    budgets: tuple[Count, ...] = (2, 4, 8, 16, 32, 64)
    sampler: str = "ddim"
    mc_samples: AtLeastTwo = 4000
    mc_rank: Count = 8
    mc_steps: Count = 4
    false_alarm: OpenUnit = 1e-3
    ae_steps: Count = 200
    latent_channels: Count = 2
    train_steps: Count = 600
    batch_size: Count = 64
    channels: tuple[Count, ...] = (16, 32)
    emb_dim: Count = 32
    lr: Positive = 2e-3
    sample_steps: Count = 20
    n_samples: AtLeastTwo = 500
    classifier_steps: Count = 300
    strip_steps: AtLeastTwo = 11
    fashion: bool = False
    fashion_ae_steps: Count = 2000
    fashion_train_steps: Count = 10000
    fashion_max_train: Count = 20000

    def __post_init__(self):
        validate(self)
        n = self.field_size ** 2
        if max(self.ranks) > n or self.mc_rank > n:
            raise ValueError(f"ranks and mc_rank must be <= field_size**2 = {n}, got "
                             f"{self.ranks}, {self.mc_rank}")
        if self.sampler not in samplers.SAMPLERS:
            raise ValueError(f"sampler must be one of {samplers.SAMPLERS}, got {self.sampler!r}")
        if any(b % (per := samplers.nfe(self.sampler, 1)) for b in self.budgets):
            raise ValueError(f"budgets must be multiples of {per} (NFE per {self.sampler} step),"
                             f" got {self.budgets}")
        if self.ae_steps >= self.train_steps or self.fashion_ae_steps >= self.fashion_train_steps:
            raise ValueError("ae_steps must be < train_steps (the latent model trains the rest)")

    def array_sizes(self) -> dict[str, float]:  # the size guard of experiments/_config.py
        return {"mc_samples * field_size ** 2": self.mc_samples * self.field_size ** 2,
                "n_samples * 8 ** 2 * max(channels)": self.n_samples * 64 * max(self.channels),
                "field_size ** 4 (basis matrix)": self.field_size ** 4}


PRESETS = {
    "smoke": Config(field_size=8, ranks=(4, 64), budgets=(4, 16), mc_samples=500, mc_rank=4,
                    ae_steps=20, train_steps=40, channels=(8, 16), emb_dim=16, sample_steps=5,
                    n_samples=100, classifier_steps=50, strip_steps=5),
    "quick": Config(),
    "full": Config(field_size=32, ranks=(16, 64, 256, 512), budgets=(4, 8, 16, 32, 64, 128, 256),
                   mc_samples=20000, ae_steps=2000, train_steps=20000, batch_size=128, emb_dim=64,
                   channels=(32, 64), n_samples=2000, classifier_steps=2000, fashion=True),
}


def run(cfg: Config, key) -> dict:
    with jax.enable_x64(True):  # the exact part in float64
        field = oracle.power_law_field((cfg.field_size,) * 2, "dft", alpha=cfg.alpha)
        g = {"budgets": list(cfg.budgets), "ranks": list(cfg.ranks),
             "pca_floor_sq": pca_floor(field.var.ravel(), np.asarray(cfg.ranks)) ** 2}
        for sc in SCALINGS:
            g[sc] = latent.pixel_latent_sweep(field, cfg.ranks, cfg.budgets, method=cfg.sampler,
                                              scaling=sc)
            g["pixel_kl"], g["pixel_w2_sq"] = g[sc].pop("pixel_kl"), g[sc].pop("pixel_w2_sq")
        ae = latent.spectral_pca(field, cfg.mc_rank, scaling="global", dtype="float64")
        g["mc"] = latent.decoded_monte_carlo(cfg.sampler, field, ae, cfg.mc_steps,
                                             cfg.mc_samples, jax.random.fold_in(key, 0),
                                             noise_var=latent.optimal_noise_var(field, ae))
    out = {"gaussian": g}

    def learned(c: Config, data, key) -> dict:
        ks = [jax.random.fold_in(key, j) for j in range(8)]
        clf = clf_mod.train_classifier(data.x_train, data.y_train, data.n_classes, key=ks[0],
                                       steps=c.classifier_steps, noise=0.05)
        im = functools.partial(metrics.image_metrics, x_train=data.x_train, x_test=data.x_test,
                               features=functools.partial(clf_mod.features, clf), key=ks[1])
        out, sam = {"n_train": len(data.x_train)}, {}
        ae, ae_res = train_autoencoder(data.x_train, key=ks[2], steps=c.ae_steps, lr=c.lr,
                                       batch_size=c.batch_size, latent_channels=c.latent_channels)
        z_train = encode_images(ae, data.x_train)
        out["ae_train_s"] = c.ae_steps / ae_res.steps_per_s
        rec = decode_latents(ae, encode_images(ae, data.x_test))
        out["recon_mse"] = float(np.mean((rec - data.x_test) ** 2))
        out["recon"], sam["recon"] = im(rec), rec
        for tag, x, steps in (("pixel", data.x_train, c.train_steps),
                              ("latent", z_train, c.train_steps - c.ae_steps)):
            proc = processes.vp(x.shape[1:])
            model = models.make_unet_denoiser(proc, x, channels=c.channels, emb_dim=c.emb_dim,
                                              key=ks[3])
            tr = train_denoiser(model, proc, x, steps=steps, key=ks[4], batch_size=c.batch_size,
                                lr=c.lr, progress=False)
            gen = functools.partial(generate, tr.ema_params, proc, ks[5], c.n_samples, x_train=x,
                                    steps=c.sample_steps, method=c.sampler)
            for _ in range(2):  # the second call is timed (the first compiles)
                t0 = time.perf_counter()
                sam[tag] = xs = gen() if tag == "pixel" else decode_latents(ae, gen())
            out[tag] = {**im(xs), "train_steps": steps, "train_s": steps / float(tr.steps_per_s),
                        "sample_images_per_s": c.n_samples / (time.perf_counter() - t0)}
        # the spectral question: RAPSD of the latents (each channel an image) vs the pixels
        for tag, x in (("pixel", data.x_train), ("latent", np.moveaxis(z_train, -1, 1))):
            f, p = spectra.rapsd(x.reshape(-1, *x.shape[-2:]), average=False)
            slope, pm = -np.log(p[:, -1] / p[:, 0]) / np.log(f[-1] / f[0]), p.mean(0)
            out[f"{tag}_rapsd"] = {"freqs": f, "psd": pm, "slope": mean_se(slope),
                                   "logsnr_window": float(np.log(pm[0] / pm[-1]))}
            out["logsnr"] = lsnr = np.linspace(-8, 8, 81)  # VP: SNR(f) = e^logsnr P(f); f*(logsnr)
            out[f"{tag}_rapsd"]["cutoff"] = spectra.snr_cutoff(f, np.exp(lsnr)[:, None] * pm, 1.0,
                                                               above=np.inf, below=0.0)
        # the forward strip: one test digit's latent at t_0..t_10, decoded (and pixel-space)
        lp, pp = processes.vp(z_train.shape[1:]), processes.vp(data.shape)
        times = np.linspace(lp.t_min, lp.T, c.strip_steps)
        z0, x0, kz = encode_images(ae, data.x_test[:1]), data.x_test[:1], jax.random.fold_in(key, 9)
        zt, out["strip_times"] = jnp.concatenate([lp.sample(kz, z0, t) for t in times]), times
        sam["strip_latent"] = decode_latents(ae, zt)
        sam["strip_latent_ch0"] = np.asarray(zt[..., 0])
        sam["strip_pixel"] = np.asarray(jnp.concatenate([pp.sample(kz, x0, t) for t in times]))
        sam["data"], out["samples"] = data.x_test, sam
        return out

    out["digits"] = learned(cfg, lc.load_image_set("digits"), jax.random.fold_in(key, 1))
    if cfg.fashion and images.fashion_mnist_available():  # 28x28 -> 14x14 latents
        c = dataclasses.replace(cfg, ae_steps=cfg.fashion_ae_steps,
                                train_steps=cfg.fashion_train_steps)
        fashion = lc.load_image_set("fashion", max_train=cfg.fashion_max_train)
        out["fashion"] = learned(c, fashion, jax.random.fold_in(key, 2))
    elif cfg.fashion:
        out["fashion_status"] = "not installed (apt install dataset-fashion-mnist); part skipped"
    return out


def claims(cfg: Config, results: dict) -> list:
    g, out = results["gaussian"], []
    n, sc0, where = cfg.field_size, SCALINGS[0], f"ranks {g['ranks']} x NFE {g['budgets']}"
    for sc, q in [(sc, q) for sc in SCALINGS for q in ("w2_sq", "kl")]:
        r, dec = g[sc], "deterministic" if q == "w2_sq" else "KL-optimal Gaussian"
        out.append(lower_bound(f"[{n}x{n} power law a={cfg.alpha:g}, {sc}, {dec} decoder] "
                               f"end-to-end {q} >= the decoder floor at {where}",
                               np.ravel(r[q]), np.ravel(r[f"{q}_floor"])))
        out.append(within(f"[{sc}] end-to-end {q} (decoded law vs data) = the latent oracle's "
                          f"{q} + the floor (computed apart; rtol 1e-9)", np.ravel(r[q]),
                          np.ravel(np.add(r[f"{q}_latent"], r[f"{q}_floor"])), rtol=1e-9))
    out.append(within(
        "the W2^2 decoder floor = the squared PCA floor sum_{j>k} lambda_j "
        "(deeponet_bounds.pca_floor, the POD-DeepONet bound) at every rank",
        np.asarray(g[sc0]["w2_sq_floor"])[:, 0], g["pca_floor_sq"], rtol=1e-12))
    mc = g["mc"]
    zz = np.concatenate([np.ravel(mc["z_mean"]), np.ravel(mc["z_var"])])
    out.append(upper_bound(
        f"Monte Carlo ({cfg.mc_samples} runs of {cfg.sampler}, {cfg.mc_steps} steps, rank "
        f"{cfg.mc_rank}, decoded): coefficient means and variances = the exact decoded law "
        f"(max |z| of {zz.size} <= Bonferroni at level {cfg.false_alarm:g}; exact KL "
        f"{mc['kl_exact']:.4g}, moment estimate {mc['kl_moment']:.4g})",
        float(np.abs(zz).max()), marginals.bonferroni_z(zz.size, cfg.false_alarm)))
    for sc, q in [(sc, q) for sc in SCALINGS for q in ("kl", "w2_sq")]:
        lat = np.asarray(g[sc][q])
        out.append(finding(
            f"[{sc}] pixel {q} - best latent {q} per NFE {g['budgets']} (> 0: latent wins; best "
            f"rank {[g['ranks'][i] for i in lat.argmin(0)]}; floors "
            f"{np.round(np.asarray(g[sc][q + '_floor'])[:, 0], 3).tolist()})",
            np.asarray(g[f"pixel_{q}"]) - lat.min(0), np.zeros(lat.shape[1])))
    for tag in [t for t in ("digits", "fashion") if isinstance(results.get(t), dict)]:
        r, t = results[tag], f"[{tag}]"
        fd = {k: (r[k]["fd_same_n"], r[k]["fd_same_n_se"]) for k in ("pixel", "latent", "recon")}
        out += [difference(f"{t} {k}: FD - data-vs-data FD", *fd[k], r[k]["fd_data"],
                           r[k]["fd_data_se"]) for k in fd]
        px, lt = r["pixel"], r["latent"]
        out.append(difference(
            f"{t} FD latent - FD pixel at equal optimiser steps ({px['train_steps']} = AE + "
            f"{lt['train_steps']} latent; training {px['train_s']:.3g} s vs "
            f"{r['ae_train_s'] + lt['train_s']:.3g} s; sampling {px['sample_images_per_s']:.4g}"
            f" vs {lt['sample_images_per_s']:.4g} images/s; sliced W2 {px['sliced_w2']:.3g} vs "
            f"{lt['sliced_w2']:.3g}, data {px['sliced_w2_data']:.3g})",
            *fd["latent"], *fd["pixel"]))
        out.append(difference(f"{t} FD latent - FD of the AE's reconstructions (its decoder "
                              f"floor; reconstruction MSE {r['recon_mse']:.3g})",
                              *fd["latent"], *fd["recon"]))
        lat, pix = r["latent_rapsd"], r["pixel_rapsd"]
        out.append(difference(
            f"{t} RAPSD slope (lowest to highest annulus) of the latents - of the pixels "
            f"({lat['slope'][0]:.3g} vs {pix['slope'][0]:.3g}); log-SNR window of the cut-off "
            f"sweep {lat['logsnr_window']:.3g} vs {pix['logsnr_window']:.3g}: near 0 means every "
            f"latent frequency drowns at once (no coarse-to-fine order)",
            *lat["slope"], *pix["slope"]))
    return out


def plot(results: dict, out_dir) -> list[str]:
    names, g, b = [], results["gaussian"], np.asarray(results["gaussian"]["budgets"])
    fig, axes = plotting.new_figure(1, 2, width=4.4, height=3.4)
    for ax, q, title in ((axes[0, 0], "w2_sq", "W2^2 (deterministic decoder)"),
                         (axes[0, 1], "kl", "KL (Gaussian decoder); pixel = global k=N")):
        ax.plot(b, g[f"pixel_{q}"], "k-o", label="pixel")
        for i, k in enumerate(g["ranks"]):
            for sc, ls in zip(SCALINGS, ("-", ":")):
                ax.plot(b, g[sc][q][i], ls, marker="s", color=f"C{i}",
                        label=f"latent k={k} ({sc})")
            ax.axhline(g[SCALINGS[0]][f"{q}_floor"][i][0], color=f"C{i}", ls="--", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel="NFE", title=title), ax.legend(fontsize=6)
        ax.set_xticks(b, [str(v) for v in b])
        ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
    names += plotting.save(fig, Path(out_dir) / f"{NAME}_gaussian.png")
    for tag in [t for t in ("digits", "fashion") if isinstance(results.get(t), dict)]:
        r, s = results[tag], results[tag]["samples"]
        for fname, blocks, rows in (
                ("samples", [("data (test)", "data"), ("pixel", "pixel"),
                             ("latent, decoded", "latent"), ("AE reconstruction", "recon")], 2),
                ("forward_strip", [("pixel x_t", "strip_pixel"), ("latent z_t (channel 0)",
                                   "strip_latent_ch0"), ("latent z_t, decoded", "strip_latent")],
                 1)):
            fig, axes = plotting.new_figure(len(blocks), 1, width=6.4, height=0.6 + 0.5 * rows)
            for ax, (title, k) in zip(axes[:, 0], blocks):
                images.show_mosaic(ax, s[k], rows, 16 if rows > 1 else len(s[k]), title)
            names += plotting.save(fig, Path(out_dir) / f"{NAME}_{tag}_{fname}.png")
        fig, axes = plotting.new_figure(1, 2, width=4.0, height=3.2)
        for tg, col in (("pixel", "k"), ("latent", "tab:red")):
            rr = r[f"{tg}_rapsd"]
            axes[0, 0].plot(rr["freqs"], rr["psd"], "-o", color=col, label=tg)
            axes[0, 1].plot(r["logsnr"], np.clip(rr["cutoff"], 0, 0.55), color=col, label=tg)
        axes[0, 0].set(xscale="log", yscale="log", xlabel="cycles / pixel (latent: / latent "
                       "pixel)", title="RAPSD")
        axes[0, 1].set(xlabel="log SNR (VP)", ylabel="f* (SNR = 1)", title="cut-off")
        axes[0, 0].legend(fontsize=7)  # below: f* = 0 all drowned; above: clipped at 0.55
        names += plotting.save(fig, Path(out_dir) / f"{NAME}_{tag}_spectra.png")
    return names
