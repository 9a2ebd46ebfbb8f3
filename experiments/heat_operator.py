r"""DeepONet learns the heat semigroup forward and backward, measured against the exact oracles.

    python -m experiments run heat_operator              # ~1 min on a 2-core CPU (float32)

Periodic grid :math:`x_j=j/N`, prior :math:`u\sim N(0,C)` the periodic power-law field
(:class:`opdiff.functions.PeriodicPowerLawField`), heat multiplier
:math:`a_k=e^{-4\pi^2k^2\nu t}` (:mod:`opdiff.operators.heat`).

1. **Backward** (ill-posed): recover :math:`u` from :math:`f=e^{t\nu\Delta}u+\eta` for every
   :math:`(t,\delta)` cell. The Wiener filter is the posterior mean, so its MSE is the smallest
   any estimator reaches; the best spectral cutoff and the naive inverse are the classical
   competitors; a ``p``-basis network has the floor Wiener + the PCA tail of the posterior mean
   (:func:`~opdiff.operators.heat.backward_oracles`). Claim per cell: learned test MSE ≥
   Wiener MMSE − 3 SE (Monte-Carlo standard error of the test mean).
2. **Forward** (compact): :math:`u\mapsto e^{t\nu\Delta}u`, Gaussian outputs with eigenvalues
   :math:`\mu_ka_k^2` (:func:`~opdiff.operators.heat.forward_spectrum`), so a ``p``-basis
   network has RMS error ≥ the PCA floor. Claim per (t, p): learned MSE ≥ floor² − 3 SE.

Model (:func:`opdiff.deeponet_sweep.train_fresh_stack`): an unstacked DeepONet (GELU) reading
the ``N`` grid values, aligned on the grid points; a periodic trunk (harmonics
:math:`\sin2\pi jx,\cos2\pi jx`, :func:`~opdiff.operators.heat.harmonic_features`); a fixed ZCA
whitening of the branch input (the ill-posedness is the condition number of the risk's
Hessian); fresh data every step (the loss is the population risk, minimised by the posterior
mean); all cells of a kind as one vmapped stack. Numbers: notes/deeponet.md.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import jax
import numpy as np

from opdiff import claims as cl
from opdiff import deeponet_bounds as db
from opdiff import deeponet_sweep as ds
from opdiff import functions, plotting
from opdiff.nets import DeepONet
from opdiff.nets.mlp import ACTIVATIONS
from opdiff.operators import heat

from ._config import Count, NonNegative, Positive, Range, Seed

NAME = "heat_operator"
DESCRIPTION = "DeepONet on the heat semigroup: forward vs PCA floor, backward vs Wiener MMSE"
DTYPE = "float32"


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    n: Annotated[int, Range(lo=8)] = 64  # grid points = sensors = query points
    alpha: float = 3.0
    k0: NonNegative = 1.0
    nu: Positive = 0.05
    times: tuple[Positive, ...] = (0.005, 0.02)
    deltas: tuple[Positive, ...] = (1e-3, 1e-2, 1e-1)
    p_backward: Count = 48
    p_forward: tuple[Count, ...] = (4, 8, 12)
    branch_width: Count = 128
    branch_depth: Count = 2
    trunk_width: Count = 64
    trunk_depth: Count = 2
    trunk_harmonics: Count = 16
    whiten: bool = True
    activation: str = "gelu"
    steps: Count = 3000
    forward_steps: Count = 1500
    batch_size: Count = 128
    lr: Positive = 3e-3
    steps_per_call: Count = 100
    n_test: Count = 2000

    def __post_init__(self):
        if self.n < 8 or self.n % 2:
            raise ValueError(f"n must be an even int >= 8, got {self.n}")
        if not self.times or min(self.times) <= 0:
            raise ValueError("times must be a non-empty tuple of positive times")
        if not self.deltas or min(self.deltas) <= 0:
            raise ValueError("deltas must be a non-empty tuple of positive noise levels")
        if self.nu <= 0:
            raise ValueError("nu must be > 0")
        for name in ("p_backward", "branch_width", "branch_depth", "trunk_width", "trunk_depth",
                     "trunk_harmonics", "steps", "forward_steps", "batch_size",
                     "steps_per_call"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not self.p_forward or min(self.p_forward) < 1:
            raise ValueError("p_forward must be a non-empty tuple of positive ints")
        if self.n_test < 2 * self.n:
            raise ValueError(f"n_test must be >= 2 n = {2 * self.n} (it also sizes the "
                             "sample that estimates the whitening)")
        if self.lr <= 0:
            raise ValueError("lr must be > 0")
        if self.trunk_harmonics > self.n // 2:
            raise ValueError(f"trunk_harmonics must be <= n/2 = {self.n // 2}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "len(times) * len(deltas) * n_test * n":
                len(self.times) * len(self.deltas) * self.n_test * self.n,
            "len(times) * len(deltas) * n ** 2": len(self.times) * len(self.deltas) * self.n ** 2,
            "batch_size * max(branch_width, trunk_width) * n":
                self.batch_size * max(self.branch_width, self.trunk_width) * self.n,
        }


PRESETS = {
    "smoke": Config(n=32, times=(0.02,), deltas=(1e-2, 1e-1), p_backward=16, p_forward=(6,),
                    trunk_harmonics=8, branch_width=32, trunk_width=32, steps=200,
                    forward_steps=200, batch_size=32, n_test=500),
    "quick": Config(),
    "full": Config(n=128, times=(0.002, 0.005, 0.02), deltas=(1e-4, 1e-3, 1e-2, 1e-1),
                   p_backward=96, p_forward=(4, 8, 12, 16, 24), trunk_harmonics=32,
                   branch_width=256, branch_depth=3, trunk_width=128, trunk_depth=3,
                   steps=50000, forward_steps=20000, batch_size=512, n_test=20000),
}


def run(cfg: Config, key) -> dict:
    field = functions.PeriodicPowerLawField(n=cfg.n, alpha=cfg.alpha, k0=cfg.k0)
    mu = np.asarray(field.spectrum())[: cfg.n // 2 + 1]  # one eigenvalue per rFFT bin
    test_u_key, test_noise_key = jax.random.split(jax.random.fold_in(key, 1))
    make = lambda p: lambda k: DeepONet(  # noqa: E731
        cfg.n, 2 * cfg.trunk_harmonics, p, branch_width=cfg.branch_width,
        branch_depth=cfg.branch_depth, trunk_width=cfg.trunk_width, trunk_depth=cfg.trunk_depth,
        activation=cfg.activation, kernel_init="glorot_normal", key=k)
    train_kw = dict(n=cfg.n, lr=cfg.lr, batch_size=cfg.batch_size, whiten=cfg.whiten,
                    steps_per_call=cfg.steps_per_call, n_whiten=cfg.n_test,
                    points=heat.harmonic_features(cfg.n, cfg.trunk_harmonics))
    out = dict(n=cfg.n, nu=cfg.nu, times=list(cfg.times), deltas=list(cfg.deltas),
               p_forward=list(cfg.p_forward), n_test=cfg.n_test, backward=[], forward=[])
    for kind, cells, ps, steps, k in (
            ("backward", tuple(("backward", t, d) for t in cfg.times for d in cfg.deltas),
             None, cfg.steps, 2),
            ("forward", tuple(("forward", t, 0.0) for p in cfg.p_forward for t in cfg.times),
             [p for p in cfg.p_forward for _ in cfg.times], cfg.forward_steps, 3)):
        pairs = lambda uk, nk, m, cells=cells: heat.make_pairs(  # noqa: E731
            field, cells, cfg.nu, uk, nk, m)
        ps = ps or [cfg.p_backward] * len(cells)
        predict, losses, wall = ds.train_fresh_stack(make, ps, pairs, steps=steps,
                                                     key=jax.random.fold_in(key, k), **train_kw)
        f_test, v_test = pairs(test_u_key, test_noise_key, cfg.n_test)
        pred = np.asarray(predict(f_test), np.float64)
        f_test, v_test = np.asarray(f_test, np.float64), np.asarray(v_test, np.float64)
        out[f"{kind}_train_s"] = wall
        for i, ((_, t, d), p) in enumerate(zip(cells, ps)):
            err = np.mean((pred[i] - v_test[i]) ** 2, axis=-1)  # per-function L2(0,1) errors
            mse, se = cl.mean_se(err)
            ex = dict(u=f_test[i, 0] if kind == "forward" else v_test[i, 0], learned=pred[i, 0])
            if kind == "backward":
                o = heat.backward_oracles(cfg.n, mu, t, cfg.nu, d)
                post = heat.posterior_mean_spectrum(cfg.n, mu, t, cfg.nu, d)
                o["floor_p"] = o["wiener"] + db.pca_floor(post, min(cfg.p_backward, post.size)) ** 2
                wiener = np.asarray(heat.wiener_inverse(f_test[i], t, cfg.nu, d, mu), np.float64)
                err_w = np.mean((wiener - v_test[i]) ** 2, axis=-1)
                excess, excess_se = cl.mean_se(err - err_w)
                out["backward"].append(dict(
                    t=t, delta=d, mse=mse, se=se, **o, ratio_wiener=mse / o["wiener"],
                    ratio_best_cutoff=mse / o["best_cutoff"], mc_wiener=float(err_w.mean()),
                    excess=excess, excess_se=excess_se,
                    example=dict(f=f_test[i, 0], wiener=wiener[0], **ex)))
            else:
                lam = heat.forward_spectrum(cfg.n, mu, t, cfg.nu)
                floor = db.pca_floor(lam, p)
                out["forward"].append(dict(
                    t=t, p=p, mse=mse, se=se, floor=floor, energy=float(lam.sum()),
                    rms=np.sqrt(mse), relative_rms=np.sqrt(mse / float(lam.sum())),
                    ratio_floor=np.sqrt(mse) / floor, example=dict(out=v_test[i, 0], **ex)))
        if kind == "backward":
            out["backward_final_loss"] = float(np.mean(losses[-max(1, len(losses) // 20):]))
    # the exact oracles on fine grids (smooth in delta and p), for the figures
    dd = np.geomspace(min(cfg.deltas) / 1.5, max(cfg.deltas) * 1.5, 60)
    pp = np.arange(1, max(2 * max(cfg.p_forward), 24) + 1)
    out["curves"] = dict(delta=dd, p=pp, wiener=np.array([[heat.wiener_mse(
        cfg.n, mu, t, cfg.nu, x) for x in dd] for t in cfg.times]), best_cutoff=np.array([[
            float(np.min(heat.cutoff_mse(cfg.n, mu, t, cfg.nu, x, np.arange(cfg.n // 2 + 1))))
            for x in dd] for t in cfg.times]), forward_floor=np.array([db.pca_floor(
                heat.forward_spectrum(cfg.n, mu, t, cfg.nu), pp) for t in cfg.times]))
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    out = []
    for b in results["backward"]:
        out.append(cl.lower_bound(
            f"backward t={b['t']:g},delta={b['delta']:g}: learned test MSE >= Wiener MMSE - 3 SE "
            f"(SE = {b['se']:.2g}, {cfg.n_test} test functions)", b["mse"], b["wiener"],
            rtol=min(3.0 * b["se"] / b["wiener"], 0.999)))
    for f in results["forward"]:
        out.append(cl.lower_bound(
            f"forward t={f['t']:g},p={f['p']}: learned test MSE >= PCA floor^2 - 3 SE (floor "
            f"{f['floor']:.3g} from the exact spectrum)", f["mse"], f["floor"] ** 2,
            rtol=min(3.0 * f["se"] / f["floor"] ** 2, 0.999)))
    return out


def plot(results: dict, out_dir) -> list[str]:
    r, c = results, results["curves"]
    times, deltas, nu = r["times"], np.asarray(r["deltas"], float), r["nu"]
    back = {(b["t"], b["delta"]): b for b in r["backward"]}
    fwd = {(f["t"], f["p"]): f for f in r["forward"]}
    x, nt = heat.periodic_grid(r["n"]), len(times)
    fig, axes = plotting.new_figure(1, nt + 1, width=3.9, height=3.3)
    for j, t in enumerate(times):
        ax, cells = axes[0, j], [back[(t, d)] for d in r["deltas"]]
        ax.errorbar(deltas, [b["mse"] for b in cells], [2 * b["se"] for b in cells], fmt="o",
                    ms=5, color="C0", label="DeepONet (test MSE ± 2 SE)", zorder=3)
        ax.plot(c["delta"], c["wiener"][j], "-", color="C1", label="Wiener MMSE (exact)")
        ax.plot(c["delta"], c["best_cutoff"][j], "--", color="C2",
                label="best spectral cutoff (exact)")
        ax.set(xscale="log", yscale="log", xlabel="noise level δ", ylabel="MSE in L²(0,1)")
        ax.set_title(f"backward, νt = {nu * t:g}", fontsize=10)
        naive = [b["naive"] for b in cells]
        ax.text(0.97, 0.03, f"naive inverse: MSE {min(naive):.0e}–{max(naive):.0e}\n(off scale)",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
        ax.legend(fontsize=6.5, loc="upper left")
        for key, style, what in (("ratio_wiener", "o-", "Wiener"),
                                 ("ratio_best_cutoff", "s--", "best cutoff")):
            axes[0, nt].plot(deltas, [b[key] for b in cells], style, color=f"C{j}",
                             label=f"learned / {what}, νt={nu * t:g}")
    ax = axes[0, nt]
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set(xscale="log", xlabel="noise level δ", ylabel="MSE ratio")
    ax.set_title("learned MSE relative to the oracles", fontsize=10)
    ax.legend(fontsize=6.5)
    for ax in axes.flat:
        ax.grid(alpha=0.3, which="both")
    names = plotting.save(fig, f"{out_dir}/heat_operator_mse.png")

    fig, axes = plotting.new_figure(nt, len(deltas), width=3.5, height=2.7)
    for i, t in enumerate(times):
        for j, d in enumerate(r["deltas"]):
            ax, ex = axes[i, j], back[(t, d)]["example"]
            for key, style, color, lw, text in (
                    ("f", "-", "0.6", 0.8, "observed f"), ("u", "-", "k", 1.6, "true u"),
                    ("wiener", "--", "C1", 1.2, "Wiener (posterior mean)"),
                    ("learned", "-", "C0", 1.0, "DeepONet")):
                ax.plot(x, ex[key], style, color=color, linewidth=lw, label=text)
            ax.set_title(f"νt = {nu * t:g}, δ = {d:g}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.set_xlabel("x" if i == nt - 1 else "")
    axes[0, 0].legend(fontsize=6.5)
    names += plotting.save(fig, f"{out_dir}/heat_operator_examples.png")

    fig, axes = plotting.new_figure(1, nt + 1, width=3.9, height=3.3)
    ps = np.asarray(r["p_forward"])
    for j, t in enumerate(times):
        ax = axes[0, j]
        ax.plot(c["p"], c["forward_floor"][j], "--", color="C1",
                label="PCA floor (exact spectrum)")
        rms = np.array([fwd[(t, p)]["rms"] for p in ps])
        # 2 SE of the MSE, carried to the RMS: d sqrt(m) = dm / (2 sqrt(m))
        ax.errorbar(ps, rms, np.array([fwd[(t, p)]["se"] for p in ps]) / rms, fmt="o", ms=5,
                    color="C0", label="DeepONet (test RMS ± 2 SE)")
        ax.set(yscale="log", xlabel="trunk functions p", ylabel="RMS error in L²(0,1)")
        ax.set_title(f"forward e^(tνΔ), νt = {nu * t:g}", fontsize=10)
    ax, t, p = axes[0, nt], times[-1], int(ps[-1])
    ex = fwd[(t, p)]["example"]
    ax.plot(x, ex["u"], "-", color="0.6", linewidth=0.8, label="input u")
    ax.plot(x, ex["out"], "-", color="k", linewidth=1.6, label="e^(tνΔ)u (exact)")
    ax.plot(x, ex["learned"], "--", color="C0", linewidth=1.2, label=f"DeepONet, p={p}")
    ax.set(title=f"forward example, νt = {nu * t:g}", xlabel="x")
    for ax in axes.flat:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6.5)
    return names + plotting.save(fig, f"{out_dir}/heat_operator_forward.png")
