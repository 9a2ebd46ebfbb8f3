r"""An FNO denoiser and a U-Net trained at 32², measured against the exact MMSE at 32² and 64².

    python -m experiments run resolution_denoiser      # ~2 min on a 2-core CPU (float32)

Data: the diffusion power-law field :func:`opdiff.diffusion.oracle.power_law_field` (DFT basis,
:math:`\lambda_k\propto(|k|^2+k_0^2)^{-\alpha/2}` in cycles per side, unit pixel variance) at
each resolution; observations :math:`y=x+\sigma_t\varepsilon` with :math:`\sigma_t` the
variance-exploding schedule (:func:`opdiff.diffusion.processes.ve`) at a few times. The
posterior mean is linear per coefficient, so no denoiser has a per-pixel MSE below
:math:`N^{-1}\sum_k\lambda_k\sigma^2/(\lambda_k+\sigma^2)` (:func:`opdiff.diffusion.oracle.mmse`)
at that resolution. Both networks read the time ``t`` (the FNO as a constant input channel, the
U-Net through its embedding), are trained on 32² images only (Adam, the same batches; the
U-Net fewer steps: on a CPU its step costs ~30x the FNO's), and are evaluated zero-shot at
64²: the FNO with the same weights on the finer grid; the U-Net rebuilt at 64² with the same
weights (its 3x3 kernels then span half the physical width).
Claims: every measured MSE >= MMSE − 3 SE at both resolutions; the change of MSE/MMSE from 32²
to 64² per model (a finding).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import claims as cl
from opdiff import plotting
from opdiff.diffusion import oracle, processes
from opdiff.nets import UNet
from opdiff.nets.deeponet import n_params
from opdiff.nets.fno import FNO
from opdiff.operator_learning.zoo import at_shape, fit_aligned

from ._config import Count, NonNegative, Positive, Seed

NAME = "resolution_denoiser"
DESCRIPTION = "FNO and U-Net denoisers trained at 32^2, vs the exact MMSE at 32^2 and 64^2"
DTYPE = "float32"
MODELS = ("fno", "unet")


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    n: Count = 32
    factor: Count = 2
    alpha: Positive = 3.0
    k0: NonNegative = 1.0
    times: tuple[Positive, ...] = (0.3, 0.45, 0.6)
    n_train: Count = 1024
    n_test: Count = 128
    steps: Count = 800
    batch_size: Count = 16
    lr: Positive = 2e-3
    steps_per_call: Count = 100
    modes: Count = 8
    width: Count = 16
    depth: Count = 3
    projection: Count = 32
    unet_channels: tuple[Count, ...] = (8, 16)
    unet_steps: Count = 200  # the U-Net's step costs ~30x the FNO's on a CPU

    def __post_init__(self):
        if self.n < 2 * self.modes:
            raise ValueError(f"n must be >= 2 * modes = {2 * self.modes}")
        if self.factor < 2:
            raise ValueError("factor must be >= 2")
        if max(self.times) >= 1.0:
            raise ValueError("times must lie in (0, 1) (the VE schedule's range)")
        if self.n % 2 ** (len(self.unet_channels) - 1):
            raise ValueError("n must be divisible by 2^(len(unet_channels) - 1)")
        if self.n_test < 2:
            raise ValueError("n_test must be >= 2")

    def array_sizes(self) -> dict[str, float]:
        return {"n_train * n ** 2 * 2": self.n_train * self.n ** 2 * 2,
                "len(times) * n_test * (factor * n) ** 2":
                    len(self.times) * self.n_test * (self.factor * self.n) ** 2}


PRESETS = {
    "smoke": Config(n=16, times=(0.3, 0.6), n_train=64, n_test=32, steps=40, steps_per_call=20,
                    batch_size=8, modes=4, width=8, depth=2, projection=8,
                    unet_channels=(4, 8), unet_steps=20),
    "quick": Config(),
    "full": Config(n_train=8192, n_test=1024, steps=20000, batch_size=64, width=32, depth=4,
                   projection=128, modes=12, unet_channels=(32, 64, 128), unet_steps=20000,
                   times=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7)),
}


def run(cfg: Config, key) -> dict:
    shapes = [(cfg.n, cfg.n), (cfg.factor * cfg.n,) * 2]
    fields = [oracle.power_law_field(s, "dft", alpha=cfg.alpha, k0=cfg.k0) for s in shapes]
    procs = [processes.ve(s, basis="dft") for s in shapes]
    ts = np.asarray(cfg.times)

    sigma = [[float(np.sqrt(p.variance(float(t)).mean())) for t in ts] for p in procs]

    def noisy(field, sig, n, k):  # inputs [n, *shape, 2] = (y, t) at random levels, and x
        kx, ki, ke = jax.random.split(k, 3)
        x = field.sample(kx, n)
        i = jax.random.randint(ki, (n,), 0, len(ts))
        t, sd = (jnp.asarray(a, jnp.float32)[i][:, None, None] for a in (ts, sig))
        y = x + sd * jax.random.normal(ke, x.shape, x.dtype)
        return jnp.stack([y, jnp.broadcast_to(t, y.shape)], -1), x

    u_tr, v_tr = noisy(fields[0], sigma[0], cfg.n_train, jax.random.fold_in(key, 0))
    fwds = {"fno": lambda m, u: m.batched(u)[..., 0],
            "unet": lambda m, u: jax.vmap(m)(u[..., 0], u[:, 0, 0, 1])}
    makes = {"fno": lambda k, s: FNO(2, 1, (cfg.modes,) * 2, width=cfg.width, depth=cfg.depth,
                                     projection_width=cfg.projection, key=k),
             "unet": lambda k, s: UNet(s, channels=tuple(cfg.unet_channels), emb_dim=32, key=k)}
    out = dict(n=cfg.n, sizes=[s[0] for s in shapes], times=ts, n_test=cfg.n_test,
               sigma=sigma,
               mmse=[[float(np.mean(oracle.mmse(f, p, float(t)))) for t in ts]
                     for f, p in zip(fields, procs)], rows=[])
    for j, kind in enumerate(MODELS):
        km = jax.random.fold_in(key, 10 + j)
        model, wall = fit_aligned(makes[kind](km, shapes[0]), fwds[kind], u_tr, v_tr,
                                  steps=cfg.unet_steps if kind == "unet" else cfg.steps,
                                  batch_size=cfg.batch_size, lr=cfg.lr,
                                  steps_per_call=cfg.steps_per_call,
                                  key=jax.random.fold_in(km, 1))
        row = dict(model=kind, params=n_params(model), train_s=wall, mse=[], se=[])
        for r, (field, proc, s) in enumerate(zip(fields, procs, shapes)):
            m = model if kind == "fno" or r == 0 else at_shape(model, makes[kind](km, s))
            f = jax.jit(fwds[kind])
            mse, se = [], []
            for i, t in enumerate(ts):
                kx, ke = jax.random.split(jax.random.fold_in(key, 100 + 10 * r + i))
                x = field.sample(kx, cfg.n_test)
                y = x + out["sigma"][r][i] * jax.random.normal(ke, x.shape, x.dtype)
                u = jnp.stack([y, jnp.full_like(y, t)], -1)
                err = np.mean((np.asarray(f(m, u), np.float64)
                               - np.asarray(x, np.float64)) ** 2, axis=(1, 2))
                mse.append(float(err.mean()))
                se.append(float(err.std(ddof=1) / np.sqrt(err.size)))
            row["mse"].append(mse)
            row["se"].append(se)
        out["rows"].append(row)
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    out = []
    for r in results["rows"]:
        for i, size in enumerate(results["sizes"]):
            mse, se, floor = (np.asarray(x) for x in (r["mse"][i], r["se"][i],
                                                      results["mmse"][i]))
            out.append(cl.lower_bound(
                f"{r['model']} (trained at {results['n']}²) at {size}²: per-pixel MSE >= exact "
                f"MMSE - 3 SE at every noise level", mse, floor,
                rtol=np.minimum(3 * se / floor, 0.999)))
        ratio = [np.asarray(r["mse"][i]) / np.asarray(results["mmse"][i]) for i in (0, 1)]
        rse = [np.asarray(r["se"][i]) / np.asarray(results["mmse"][i]) for i in (0, 1)]
        out.append(cl.difference(
            f"{r['model']}: MSE/MMSE at {results['sizes'][1]}² minus at {results['sizes'][0]}² "
            f"(zero-shot), per noise level", ratio[1], rse[1], ratio[0], rse[0]))
    return out


def plot(results: dict, out_dir) -> list[str]:
    fig, axes = plotting.new_figure(1, 2, width=4.2, height=3.3)
    for i, size in enumerate(results["sizes"]):
        ax = axes[0, i]
        sig = np.asarray(results["sigma"][i])
        ax.plot(sig, results["mmse"][i], "k-", label="exact MMSE")
        for j, r in enumerate(results["rows"]):
            ax.errorbar(sig, r["mse"][i], 2 * np.asarray(r["se"][i]), fmt="o--",
                        color=f"C{j}", label=f"{r['model']} ({r['params']} params)")
        ax.set(xscale="log", yscale="log", xlabel="noise σ", ylabel="per-pixel MSE")
        ax.set_title(f"trained at {results['n']}², evaluated at {size}²", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return plotting.save(fig, f"{out_dir}/resolution_denoiser.png")
