r"""Exact sampler convergence on Gaussian fields: KL and W2 vs steps, orders, bound shapes and
the error split.

    python -m experiments run sampler_convergence --preset smoke   # ~15 s on a 2-core CPU
    python -m experiments run sampler_convergence                  # quick, ~35 s
    python -m experiments run sampler_convergence --preset full

On a power-law field (:func:`opdiff.diffusion.oracle.power_law_field`) every sampler's output law
with the exact denoiser is Gaussian and exact (:func:`~opdiff.diffusion.oracle.sampler_law`):
KL, W2 and TV are closed forms, no Monte-Carlo error (claim 0: the oracle vs the sampler code).

1. Sweep (VP, log-SNR grids; :func:`~opdiff.diffusion.oracle.convergence_curve`): fitted order
   of :math:`W_2\approx Ch^p` is :func:`~opdiff.diffusion.samplers.order` :math:`\pm`
   ``order_tol``; the best sampler reaches KL/d :math:`\le10^{-3}` from the prior within
   ``max_nfe_target`` NFE (``pc_snr``: PC with score_sde's step rule, not claimed).
2. Bounds (:mod:`opdiff.diffusion.bounds`, exponential integrator on OU): Chen et al.'s KL/TV
   shapes over :math:`h` and :math:`T`, Benton et al.'s over :math:`N`, each fitted at one point
   and claimed :math:`\ge` the exact value at the others; KL vs :math:`d` exponent bounded.
3. Error split (:func:`~opdiff.diffusion.oracle.error_split`) with model variance
   :math:`\lambda(1+\delta)`; per stochastic sampler, KL(:math:`p_{t_0}`‖output) with the
   model's score is :math:`\le` the Girsanov path KL
   (:func:`~opdiff.diffusion.oracle.girsanov_bound`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated

import numpy as np

from opdiff import claims as cl
from opdiff import plotting
from opdiff.diffusion import bounds, oracle, processes, samplers
from opdiff.diffusion.laws import kl

from experiments._config import AboveOne, AtLeastTwo, Count, OpenUnit, Positive, Range, Seed

NAME = "sampler_convergence"
DESCRIPTION = ("Exact KL/W2 vs steps for every sampler on Gaussian fields: orders, Chen and "
               "Benton bound shapes, dimension, and the init/discretisation/score split")
DTYPE = "float64"

KL_PER_DIM_TARGET = 1e-3
SPLIT_PARTS = ("total", "discretisation", "initialisation", "score", "early_stopping")


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0  # unused: everything is exact (kept for the house pattern)
    size: Annotated[int, Range(lo=4)] = 64  # field side: d = size**2
    alpha: float = 2.5
    samplers: tuple[str, ...] = samplers.SAMPLERS
    steps: tuple[Count, ...] = (5, 10, 20, 40, 80, 160, 320, 640)
    order_points: AtLeastTwo = 4
    order_tol: Positive = 0.3
    pc_ratio: Positive = 1.0
    max_nfe_target: Count = 20
    # (2) bounds
    chen_T: Positive = 8.0
    chen_t_min: Positive = 1e-6
    chen_steps: tuple[Count, ...] = (20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240)
    tsweep_h: Positive = 0.01
    tsweep_T: tuple[Positive, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
    benton_T: AboveOne = 4.0
    benton_delta: OpenUnit = 1e-3
    benton_steps: tuple[Count, ...] = (20, 40, 80, 160, 320, 640, 1280)
    dim_sizes: tuple[Annotated[int, Range(lo=4)], ...] = (8, 16, 32, 64)
    dim_steps: Count = 640
    dim_exponent_max: Positive = 1.1
    # (3) split
    split_samplers: tuple[str, ...] = ("euler_maruyama", "ancestral", "ddim", "pf_heun",
                                       "dpm_solver_2")
    split_nfe: AtLeastTwo = 20
    score_delta: Positive = 0.1
    girsanov_steps: tuple[Count, ...] = (10, 40, 160, 640)
    n_score_t: Annotated[int, Range(lo=10)] = 2000

    def __post_init__(self):
        if self.size < 4:
            raise ValueError(f"size must be >= 4, got {self.size}")
        if not math.isfinite(self.alpha):
            raise ValueError(f"alpha must be finite, got {self.alpha}")
        for name in ("samplers", "split_samplers"):
            bad = [s for s in getattr(self, name) if s not in samplers.SAMPLERS]
            if bad or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty subset of {samplers.SAMPLERS}, "
                                 f"got {getattr(self, name)}")
        for name in ("steps", "chen_steps", "benton_steps", "dim_sizes", "tsweep_T",
                     "girsanov_steps"):
            v = getattr(self, name)
            if len(v) < 2 or list(v) != sorted(set(v)) or min(v) <= 0:
                raise ValueError(f"{name} must be >= 2 strictly increasing positive values, "
                                 f"got {v}")
        if not 2 <= self.order_points <= len(self.steps):
            raise ValueError(f"order_points must be in [2, len(steps)], got {self.order_points}")
        if min(self.dim_sizes) < 4:
            raise ValueError(f"dim_sizes must be >= 4, got {self.dim_sizes}")
        for name in ("order_tol", "pc_ratio", "chen_T", "chen_t_min", "tsweep_h",
                     "benton_delta", "score_delta", "dim_exponent_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not (self.chen_t_min < min(self.tsweep_T) and self.chen_t_min < self.chen_T):
            raise ValueError("chen_t_min must be below chen_T and every tsweep_T")
        if not self.benton_T > 1 or not 0 < self.benton_delta < 1:
            raise ValueError(f"need benton_T > 1 and 0 < benton_delta < 1, got "
                             f"{self.benton_T}, {self.benton_delta}")
        if self.tsweep_h >= min(self.tsweep_T):
            raise ValueError(f"tsweep_h must be below every tsweep_T, got {self.tsweep_h}")
        if self.max_nfe_target < 1 or self.split_nfe < 2 or self.dim_steps < 1:
            raise ValueError("max_nfe_target, dim_steps must be >= 1 and split_nfe >= 2")
        if self.n_score_t < 10:
            raise ValueError(f"n_score_t must be >= 10, got {self.n_score_t}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_score_t * size ** 2": self.n_score_t * self.size ** 2,
            "max(size, max(dim_sizes)) ** 2 * len(samplers)":
                max(self.size, max(self.dim_sizes)) ** 2 * len(self.samplers),
            "max(chen_steps + benton_steps + girsanov_steps + steps)":
                max(self.chen_steps + self.benton_steps + self.girsanov_steps + self.steps),
        }


PRESETS = {
    "smoke": Config(size=16, samplers=("ancestral", "pf_heun", "pc"),
                    steps=(5, 10, 20, 40), order_points=3, chen_steps=(40, 160, 640, 2560),
                    tsweep_T=(0.5, 8.0), benton_steps=(20, 80, 320), dim_sizes=(8, 16),
                    dim_steps=160, split_samplers=("ancestral",), n_score_t=200,
                    girsanov_steps=(10, 40)),
    "quick": Config(),
    "full": Config(size=128, steps=(5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560),
                   chen_steps=(20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480),
                   girsanov_steps=(10, 40, 160, 640, 2560),
                   dim_sizes=(8, 16, 32, 64, 128), dim_steps=2560,
                   benton_steps=(20, 40, 80, 160, 320, 640, 1280, 2560, 5120)),
}


def run(cfg: Config, key) -> dict:
    field = oracle.power_law_field((cfg.size, cfg.size), "dft", alpha=cfg.alpha)
    vp = processes.vp(field.shape, basis="dft")
    f8 = oracle.power_law_field((8, 8), "dft", alpha=cfg.alpha)
    v8 = processes.vp(f8.shape, basis="dft")
    mc = {meth: dict(zip(("z_max", "var_dev", "var_tol"), oracle.monte_carlo_agreement(
        meth, v8, f8, samplers.log_snr_grid(v8, 10), seed=cfg.seed)))
        for meth in ("ancestral", "dpm_solver_2")}
    # 1. sweep: every sampler, and PC with score_sde's snr rule as "pc_snr"
    runs = {m: (m, cfg.pc_ratio) for m in cfg.samplers} | (
        {"pc_snr": ("pc", None)} if "pc" in cfg.samplers else {})
    sweep = {lab: oracle.convergence_curve(m, vp, field, cfg.steps, pc_ratio=r)
             for lab, (m, r) in runs.items()}
    for r in sweep.values():
        r.update(bounds.curve_summary(r, cfg.steps, cfg.order_points, KL_PER_DIM_TARGET))
    bd = dict(chen=bounds.chen_h_sweep(field, cfg.chen_T, cfg.chen_t_min, cfg.chen_steps),
              chen_T=bounds.chen_T_sweep(field, cfg.tsweep_T, cfg.tsweep_h, cfg.chen_t_min),
              benton=bounds.benton_sweep(field, cfg.benton_T, cfg.benton_delta,
                                         cfg.benton_steps),
              dimension=bounds.dimension_sweep(cfg.alpha, cfg.dim_sizes, cfg.dim_steps,
                                               cfg.chen_T, cfg.chen_t_min))
    sp = oracle.score_error_split(field, vp, delta=cfg.score_delta, methods=cfg.split_samplers,
                                  nfe=cfg.split_nfe, girsanov_steps=cfg.girsanov_steps,
                                  n_t=cfg.n_score_t)
    return dict(monte_carlo=mc, sweep=sweep, bounds=bd, split=sp, d=field.size,
                early_stopping_kl=kl(*field.marginal(vp, vp.t_min), field.mean, field.var),
                L=bd["chen"]["L"], kl_per_dim_target=KL_PER_DIM_TARGET,
                config=dataclasses.asdict(cfg))


def claims(cfg: Config, r: dict) -> list[cl.Claim]:
    out = [cl.upper_bound(
        f"{meth}: samples from samplers.sample (8x8, 4000 draws, 10 steps) match the oracle "
        "law: max |z| of the means <= 5 and max |var ratio - 1| <= 6 sqrt(2/n)",
        [v["z_max"], v["var_dev"]], [5.0, v["var_tol"]]) for meth, v in r["monte_carlo"].items()]
    sw, bd, sp = r["sweep"], r["bounds"], r["split"]
    for meth, want in ((m, samplers.order(m)) for m in cfg.samplers):
        p = sw[meth]["fitted_order_w2"]  # NaN (not fittable) fails as inf
        out.append(cl.within(f"{meth}: fitted order of W2 ~ h^p on the VP log-SNR grid (finest "
                             f"{cfg.order_points} of n = {list(cfg.steps)}) is {want} +- "
                             f"{cfg.order_tol:g}", p if np.isfinite(p) else math.inf, want,
                             atol=cfg.order_tol))
    best = min(cfg.samplers, key=lambda s: sw[s]["min_nfe_to_target"])
    out.append(cl.upper_bound(
        f"the best sampler reaches KL(p_hat || p_t0)/d <= {KL_PER_DIM_TARGET:g} from the VP prior "
        f"within {cfg.max_nfe_target} NFE (minimum over the steps grid; best: {best})",
        sw[best]["min_nfe_to_target"], cfg.max_nfe_target))
    ch, chT, bt, dm = bd["chen"], bd["chen_T"], bd["benton"], bd["dimension"]
    for meas, fit, what in (
            (ch["kl"], ch["fit_kl"], "Chen et al. KL: KL(q||gamma) e^{-2T} + C (L^2 d h + L^2 "
             "m2^2 h^2) T vs exact KL(q || p_hat) of the exponential integrator over h (h <= "
             "1/L)"),
            (ch["tv_upper"], ch["fit_tv"], "Chen et al. TV: sqrt(KL(q||gamma) e^{-2T}/2) + C (L "
             "sqrt(dh) + L m2 h) sqrt(T) vs the upper end of the exact TV bracket over h (h <= "
             "1/L, TV < 1)"),
            (chT["kl"], chT["fit"], f"Chen et al. KL (as above) vs exact KL over T at h = "
             f"{cfg.tsweep_h:g}"),
            (bt["kl"], bt["fit"], "Benton et al. KL shape kappa^2 d N + kappa d T + d e^{-2T} "
             "vs exact KL(q_delta || p_hat) on their schedule over N")):
        o = np.asarray(fit["others"], int)  # none (no other admissible point): 0 <= 1, as before
        out.append(cl.upper_bound(f"{what}: with C fitted at the middle point, the bound is >= the "
                                  "exact value at every other point (max exact/bound)",
                                  np.nan_to_num(meas, nan=np.inf)[o] if o.size else 0.0,
                                  fit["bound"][o] if o.size else 1.0))
    out.append(cl.upper_bound(  # a NaN exponent (not fittable) fails as inf
        f"dimension: fitted exponent of the exact KL vs d at n = {cfg.dim_steps}, T = "
        f"{cfg.chen_T:g} (d = {[int(x) for x in dm['d']]}) is <= {cfg.dim_exponent_max:g}",
        float(np.nan_to_num(dm["exponent_d"], nan=np.inf)), cfg.dim_exponent_max))
    for meth, vals in sp["kl_pt0_vs_model_sampler"].items():
        out.append(cl.upper_bound(
            f"{meth} with the model's score (var x {1 + cfg.score_delta:g}) from the exact p_T, "
            f"n = {cfg.girsanov_steps[-1]} log-SNR steps: KL(p_t0 || p_hat) <= the Girsanov "
            f"path KL 1/2 int beta E_pt|s_hat - s|^2 dt of the continuous reverse SDE",
            float(vals[-1]), sp["girsanov"]))
    return out


def plot(r: dict, out_dir: Path) -> list[str]:
    c, sw, sp, out_dir = r["config"], r["sweep"], r["split"], Path(out_dir)
    ch, chT, bt, dm = (r["bounds"][k] for k in ("chen", "chen_T", "benton", "dimension"))
    fig, ax = plotting.new_figure(1, 3, width=4.8, height=4.3)
    h, ax, P = 1.0 / np.asarray(c["steps"], float), ax[0], plotting.error_panel
    for lab, s in sw.items():  # the last panel's legend: each run's NFE to the target
        kw = dict(marker="*", color="k", linestyle="--") if lab == "pc_snr" else dict(marker="o")
        fin = {k: np.where(np.isfinite(v), v, np.nan) for k, v in s.items() if np.ndim(v)}
        ax[0].plot(s["nfe"], fin["kl_per_dim"], markersize=3.5, label=lab, **kw)
        ax[1].plot(h, fin["w2"], markersize=3.5, label=f"{lab} (p = {s['fitted_order_w2']:.2f})",
                   **kw)
        ax[2].plot(s["nfe"], fin["kl_total_per_dim"], markersize=3.5,
                   label=f"{lab}: {s['min_nfe_to_target']:.0f} NFE", **kw)
    last = np.array([s["w2"][-1] for s in sw.values()])
    for p in (1, 2):  # through 0.4 x the least finest-grid W2
        ax[1].plot(h, 0.4 * np.min(last[np.isfinite(last)], initial=np.inf) * (h / h[-1]) ** p,
                   color="0.5", linestyle=("-.", ":")[p - 1], label=f"$h^{p}$ (reference)")
    for a, x, t in ((ax[0], "NFE", rf"discretisation only (exact $p_T$), d={c['size']}$^2$"),
                    (ax[1], "h = 1/n", f"$W_2$ vs h; order p fitted on the finest "
                     f"{c['order_points']} n"),
                    (ax[2], "NFE", f"from the prior; claim: the best within "
                     f"{c['max_nfe_target']} NFE")):
        if a is not ax[1]:
            a.axhline(r["kl_per_dim_target"], color="k", linewidth=0.8, linestyle=":")
        a.set(xscale="log", yscale="log", xlabel=x, title=t, ylabel=r"$W_2(\hat p, p_{t_0})$"
              if a is ax[1] else r"KL$(\hat p\,\|\,p_{t_0})/d$")
        a.legend(fontsize=6.5)
        a.grid(True, which="major", alpha=0.3)
        a.minorticks_off()
    files = plotting.save(fig, out_dir / "sampler_convergence.png")
    fig, axes = plotting.new_figure(2, 3, width=4.4, height=3.5)
    ax = axes.ravel()
    P(ax[0], ch["h"], {r"exact KL$(q\|\hat p)$": ch["kl"], "exact, discretisation only":
                       ch["kl_disc"]}, {"Chen shape, fitted": ch["fit_kl"]["bound"]}, xlabel="h",
      ylabel="KL", title=f"Chen et al., EI on OU, T={c['chen_T']:g} (h > 1/L shaded)")
    P(ax[1], ch["h"], {"exact TV, lower": ch["tv_lower"], "exact TV, upper": ch["tv_upper"]},
      {"Chen TV shape, fitted": ch["fit_tv"]["bound"]}, xlabel="h", ylabel="TV", title="TV vs h")
    P(ax[2], chT["T"], {"exact KL": chT["kl"]}, {"Chen shape, fitted": chT["fit"]["bound"]},
      xlabel="T", ylabel="KL", title=f"KL vs T at h={c['tsweep_h']:g}")
    P(ax[3], bt["N"], {r"exact KL$(q_\delta\|\hat p)$, Benton grid": bt["kl"],
                       "exact, uniform grid": bt["kl_uniform"]},
      {"Benton shape, fitted": bt["fit"]["bound"]}, xlabel="N steps", ylabel="KL",
      title=rf"Benton et al., $\delta$={c['benton_delta']:g}, T={c['benton_T']:g}")
    P(ax[4], dm["d"], {f"exact KL (exponent {dm['exponent_d']:.2f})": dm["kl"]},
      {r"$\propto d$": dm["kl"][0] * dm["d"] / dm["d"][0], rf"$\propto L^2d$ (exponent "
       rf"{dm['exponent_L2d']:.2f})": dm["kl"][0] * dm["L2d"] / dm["L2d"][0]}, xlabel="d",
      ylabel="KL", title=f"dimension, n={c['dim_steps']}, T={c['chen_T']:g}")
    for x, meas, fit, lab in ((ch["h"], ch["kl"], ch["fit_kl"], "Chen KL vs h"),
                              (ch["h"], ch["tv_upper"], ch["fit_tv"], "Chen TV vs h"),
                              (bt["kappa"], bt["kl"], bt["fit"], r"Benton vs $\kappa$")):
        P(ax[5], x, {lab: meas / fit["bound"]}, {}, xlabel=r"h or $\kappa$",
          ylabel="exact / fitted bound", title="> 1: the fitted bound fails")
    for a in ax:
        a.set_xscale("linear" if a is ax[2] else "log")
        a.minorticks_off()
    for a in ax[:2] if not np.all(ch["admissible"]) else ():
        a.axvspan(1 / ch["L"], ch["h"].max() * 1.3, color="0.9", zorder=0)
    files += plotting.save(fig, out_dir / "sampler_convergence_bounds.png")
    fig, ax = plotting.new_figure(1, 3, width=4.7, height=3.9)
    ax, labs = ax[0], list(sp["samplers"])
    for j, part in enumerate(SPLIT_PARTS):  # |value|; a negative part hatched
        v = np.array([sp["samplers"][m][part] for m in labs], float)
        for b, x in zip(ax[0].bar(np.arange(len(labs)) + (j - 2) * 0.16, np.where(
                v != 0, np.abs(v), np.nan), 0.16, label=part, color=f"C{j}"), v):
            b.set(hatch="xx" if x < 0 else None, facecolor="white" if x < 0 else f"C{j}",
                  edgecolor=f"C{j}")
    ax[0].set_xticks(range(len(labs)), [f"{m}\n(n={sp['samplers'][m]['n_steps']})"
                                        for m in labs], fontsize=7)
    ax[0].set(yscale="log", ylabel="KL(output || data)",
              title=f"split at {c['split_nfe']} NFE, model var x{1 + c['score_delta']:g}")
    ax[0].legend(fontsize=6.5, ncol=2, title="hatched: part < 0", title_fontsize=6.5)
    ax[1].plot(sp["t"], sp["score_error"])
    ax[1].set(xscale="log", yscale="log", xlabel="t", ylabel=r"$E_{p_t}\|\hat s-\nabla\log p_t"
              r"\|^2$", title=f"score error (integral over t: {sp['score_error_integral']:.3g})")
    plotting.error_panel(ax[2], c["girsanov_steps"], sp["kl_pt0_vs_model_sampler"], {
        rf"Girsanov $G$ = {sp['girsanov']:.3g}": [sp["girsanov"]] * len(c["girsanov_steps"])},
        logx=True, xlabel="n steps (log-SNR grid)", ylabel=r"KL$(p_{t_0}\,\|\,\hat p)$, "
        r"model score, exact $p_T$", title="score error alone vs the path-KL bound")
    return files + plotting.save(fig, out_dir / "sampler_convergence_split.png")
