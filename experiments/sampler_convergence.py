r"""Exact sampler convergence on Gaussian fields: KL and W2 vs steps, orders, bound shapes and
the error split.

    python -m experiments run sampler_convergence --preset smoke   # ~15 s on a 2-core CPU
    python -m experiments run sampler_convergence                  # quick, ~60 s
    python -m experiments run sampler_convergence --preset full

Every sampler's output law on a power-law field with the exact denoiser is Gaussian and exact
(:func:`~opdiff.diffusion.oracle.sampler_law`). Claims: the oracle against the sampler code;
the orders of :math:`W_2\approx Ch^p`; the NFE of the best sampler; Chen et al.'s and Benton et
al.'s bounds (constants unpublished) by their rates against the shapes, with the smallest valid
constant (:mod:`opdiff.diffusion.bounds`); KL vs :math:`d` with :math:`L` fixed and growing;
the :math:`n\to\infty` limit of the KL with a wrong score against the Girsanov path KL
(notes/diffusion.md).
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

from ._config import AboveOne, AtLeastTwo, Count, OpenUnit, Positive, Range, Seed

NAME = "sampler_convergence"
DESCRIPTION = ("Exact KL/W2 vs steps for every sampler on Gaussian fields: orders, Chen and "
               "Benton bound shapes, dimension, and the init/discretisation/score split")
DTYPE = "float64"

KL_PER_DIM_TARGET = 1e-3
TV_MAX = 0.5  # the TV rate is taken where the TV bracket's upper end is below this (TV <= 1)
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
    chen_T: Positive = 8.0
    chen_t_min: Positive = 1e-6
    chen_steps: tuple[Count, ...] = (20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480)
    tsweep_h: Positive = 0.01
    tsweep_T: tuple[Positive, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
    benton_T: AboveOne = 4.0
    benton_delta: OpenUnit = 1e-3
    benton_steps: tuple[Count, ...] = (20, 40, 80, 160, 320, 640, 1280)
    dim_sizes: tuple[Annotated[int, Range(lo=4)], ...] = (8, 16, 32, 64)
    dim_steps: Count = 640
    split_samplers: tuple[str, ...] = ("euler_maruyama", "ancestral", "ddim", "pf_heun",
                                       "dpm_solver_2")
    split_nfe: AtLeastTwo = 20
    score_delta: Positive = 0.1
    girsanov_steps: tuple[Count, ...] = (10, 40, 160, 640, 1280, 2560, 5120)  # last 4: ratio 2
    n_score_t: Annotated[int, Range(lo=10)] = 2000

    def __post_init__(self):  # per-field ranges are in the annotations (experiments/_config)
        for name in ("samplers", "split_samplers"):
            bad = [s for s in getattr(self, name) if s not in samplers.SAMPLERS]
            if bad or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty subset of {samplers.SAMPLERS}, "
                                 f"got {getattr(self, name)}")
        for name in ("steps", "chen_steps", "benton_steps", "dim_sizes", "tsweep_T",
                     "girsanov_steps"):
            v = getattr(self, name)
            if len(v) < 2 or list(v) != sorted(set(v)):
                raise ValueError(f"{name} must be >= 2 strictly increasing values, got {v}")
        if not 2 <= self.order_points <= len(self.steps):
            raise ValueError(f"order_points must be in [2, len(steps)], got {self.order_points}")
        if not (self.chen_t_min < min(self.tsweep_T) and self.chen_t_min < self.chen_T):
            raise ValueError("chen_t_min must be below chen_T and every tsweep_T")
        if self.tsweep_h >= min(self.tsweep_T):
            raise ValueError(f"tsweep_h must be below every tsweep_T, got {self.tsweep_h}")
        g = np.asarray(self.girsanov_steps[-4:], float)
        if len(g) < 4 or not np.allclose(g[1:] / g[:-1], g[1] / g[0], rtol=1e-12):
            raise ValueError(f"the last 4 girsanov_steps must be in a constant ratio (Richardson"
                             f"), got {self.girsanov_steps}")

    def array_sizes(self) -> dict[str, float]:
        """The largest arrays by expression (the size guard of ``experiments/_config.py``)."""
        return {"n_score_t * size ** 2": self.n_score_t * self.size ** 2,
                "max(size, max(dim_sizes)) ** 2 * len(samplers)":
                    max(self.size, max(self.dim_sizes)) ** 2 * len(self.samplers),
                "max(chen_steps + benton_steps + girsanov_steps + steps)":
                    max(self.chen_steps + self.benton_steps + self.girsanov_steps + self.steps)}


PRESETS = {
    "smoke": Config(size=16, samplers=("ancestral", "pf_heun", "pc"),
                    steps=(5, 10, 20, 40), order_points=3, chen_steps=(40, 160, 640, 2560),
                    tsweep_T=(0.5, 8.0), benton_steps=(20, 80, 320), dim_sizes=(8, 16),
                    dim_steps=160, split_samplers=("ancestral",), n_score_t=200,
                    girsanov_steps=(40, 80, 160, 320)),
    "quick": Config(),
    "full": Config(size=128, steps=tuple(5 * 2**k for k in range(10)), dim_steps=2560,
                   chen_steps=tuple(20 * 2**k for k in range(15)), dim_sizes=(8, 16, 32, 64, 128),
                   girsanov_steps=(10, 40, 160, *(640 * 2**k for k in range(5))),
                   benton_steps=tuple(20 * 2**k for k in range(9))),
}


def run(cfg: Config, key) -> dict:
    field = oracle.power_law_field((cfg.size, cfg.size), "dft", alpha=cfg.alpha)
    vp = processes.vp(field.shape, basis="dft")
    f8, v8 = oracle.power_law_field((8, 8), alpha=cfg.alpha), processes.vp((8, 8), basis="dft")
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
              **{f"dimension_{g}": bounds.dimension_sweep(
                  cfg.alpha, cfg.dim_sizes, cfg.dim_steps, cfg.chen_T, cfg.chen_t_min, growth=g)
                 for g in bounds.GROWTH})
    sp = oracle.score_error_split(field, vp, delta=cfg.score_delta, methods=cfg.split_samplers,
                                  nfe=cfg.split_nfe, girsanov_steps=cfg.girsanov_steps,
                                  n_t=cfg.n_score_t)
    model = dataclasses.replace(field, var=field.var * (1 + cfg.score_delta))  # as in the split
    sp["girsanov_quadrature_error"] = abs(sp["girsanov"] - oracle.girsanov_bound(  # n_t / 2
        field, model, vp, np.geomspace(vp.t_min, vp.T, cfg.n_score_t // 2))["girsanov"])
    sp["limit"] = {m: bounds.richardson(cfg.girsanov_steps, v, order=1, terms=2)
                   for m, v in sp["kl_pt0_vs_model_sampler"].items()}
    return dict(monte_carlo=mc, sweep=sweep, bounds=bd, split=sp, d=field.size,
                early_stopping_kl=kl(*field.marginal(vp, vp.t_min), field.mean, field.var),
                L=bd["chen"]["L"], kl_per_dim_target=KL_PER_DIM_TARGET,
                config=dataclasses.asdict(cfg))


def claims(cfg: Config, r: dict) -> list[cl.Claim]:
    out = [cl.upper_bound(
        f"{meth}: samples from samplers.sample (8x8, 4000 draws, 10 steps) match the oracle "
        "law: max |z| of the means <= 5 and max |var ratio - 1| <= 6 sqrt(2/n)",
        [v["z_max"], v["var_dev"]], [5.0, v["var_tol"]]) for meth, v in r["monte_carlo"].items()]
    sw, sp, bd = r["sweep"], r["split"], r["bounds"]
    ch, chT, bt, res, dom = (bd[k] for k in ("chen", "chen_T", "benton", "dimension_resolution",
                                              "dimension_domain"))
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
    tv = (adm := np.flatnonzero(ch["admissible"]))[ch["tv_disc_upper"][adm] < TV_MAX]  # TV<=1
    qT, falls = ("the exponential integrator on OU from the exact q_T (discretisation part)",
                 "falls at least as fast as the shape (fitted exponent in 1/shape <= -1 + 2 se)")
    for what, err, shape, idx, p in (
            (f"Chen et al. KL: {qT}, KL(q_t0 || p_hat) <= C (L^2 d h + L^2 m2^2 h^2) T over h <= "
             f"1/L (exponents in h: exact {ch['order_kl_disc']:.2f}, shape "
             f"{ch['order_shape']:.2f}): it {falls}", ch["kl_disc"], ch["shape_kl"], adm, -1),
            (f"Chen et al. TV: {qT}, the upper end of the exact TV bracket <= C (L sqrt(dh) + L m2 "
             f"h) sqrt(T) over h <= 1/L where it is < {TV_MAX:g}: it {falls}", ch["tv_disc_upper"],
             ch["shape_tv"], tv, -1),
            (f"Benton et al.: {qT}, KL(q_delta || p_hat) on their schedule <= C (kappa^2 d N + "
             f"kappa d T) over N = {list(cfg.benton_steps)}: it {falls}", bt["kl_disc"],
             bt["shape_disc"], np.arange(len(bt["N"])), -1),
            (f"Chen et al. KL over T at h = {cfg.tsweep_h:g}: {qT} grows with T no faster than the "
             "shape (L^2 d h + L^2 m2^2 h^2) T (fitted exponent in the shape <= 1 + 2 se)",
             chT["kl_disc"], chT["shape_kl"], np.arange(len(chT["T"])), 1)):
        out.append(cl.rate(what + "; tightness: the smallest valid C*", np.asarray(err)[idx],
                           np.asarray(shape)[idx] ** p, float(p)))
    out.append(cl.upper_bound(
        f"Chen et al.'s initialisation term (constant 1, log-Sobolev): exact KL(q_T || gamma^d) "
        f"<= KL(q || gamma^d) e^{{-2T}} at every T = {list(cfg.tsweep_T)}", chT["kl_init"],
        chT["prior_kl"]))
    dims = f"d = {[int(x) for x in res['d']]}, n = {cfg.dim_steps}, T = {cfg.chen_T:g}"
    for r_, what, x, v in ((dom, "fixed (a larger domain, same pixel size", "d", dom["d"]),
                           (res, "growing (the same domain sampled finer", "L^2 d", res["L2d"])):
        out.append(cl.rate(f"dimension, L {what}, L = {r_['L'].min():.2f}-{r_['L'].max():.2f}): "
                           f"exact KL(q || p_hat) <= C {x} ({dims}; fitted exponent in {x} <= 1 "
                           "+ 2 se)", r_["kl"], v, 1.0))
    out.append(cl.finding("dimension, L growing: fitted exponent of the exact KL in d alone "
                          "(refutes the old '<= 1.1': L = 1/lambda_min grows with resolution)",
                          res["exponent_d"], np.nan_to_num(res["se_d"], nan=0.0)))
    G, quad = sp["girsanov"], sp["girsanov_quadrature_error"]
    for meth, lim in sp["limit"].items():
        slack = lim["error"] + quad
        out.append(cl.upper_bound(
            f"{meth}, model score (var x {1 + cfg.score_delta:g}), exact p_T: the n -> infinity "
            f"limit of KL(p_t0 || p_hat) (Richardson on n = {[int(n) for n in lim['n_used'][-3:]]}"
            ") <= the Girsanov path KL 1/2 int beta E|s_hat - s|^2 dt of the continuous reverse "
            f"SDE (slack {slack:.1e}: extrapolation + quadrature error estimates)", lim["limit"],
            G, rtol=slack / G))
    return out


def plot(r: dict, out_dir: Path) -> list[str]:
    c, sw, sp, out_dir = r["config"], r["sweep"], r["split"], Path(out_dir)
    ch, chT, bt, res, dom = (r["bounds"][k] for k in ("chen", "chen_T", "benton",
                                                      "dimension_resolution", "dimension_domain"))
    fig, ax = plotting.new_figure(1, 3, width=4.8, height=4.3)
    h, ax, P = 1.0 / np.asarray(c["steps"], float), ax[0], plotting.error_panel
    for lab, s in sw.items():  # the last panel's legend: each run's NFE to the target
        kw = dict(marker="*", color="k", linestyle="--") if lab == "pc_snr" else dict(marker="o")
        fin = {k: np.where(np.isfinite(v), v, np.nan) for k, v in s.items() if np.ndim(v)}
        for a, x, y, lb in ((ax[0], s["nfe"], "kl_per_dim", lab),
                            (ax[1], h, "w2", f"{lab} (p = {s['fitted_order_w2']:.2f})"),
                            (ax[2], s["nfe"], "kl_total_per_dim",
                             f"{lab}: {s['min_nfe_to_target']:.0f} NFE")):
            a.plot(x, fin[y], markersize=3.5, label=lb, **kw)
    last = np.array([s["w2"][-1] for s in sw.values()])
    for p in (1, 2):  # through 0.4 x the least finest-grid W2
        ax[1].plot(h, 0.4 * np.min(last[np.isfinite(last)], initial=np.inf) * (h / h[-1]) ** p,
                   color="0.5", linestyle=("-.", ":")[p - 1], label=f"$h^{p}$ (reference)")
    for a, x, t in ((ax[0], "NFE", rf"discretisation only (exact $p_T$), d={c['size']}$^2$"),
                    (ax[1], "h = 1/n", f"$W_2$ vs h; order on the finest {c['order_points']}"),
                    (ax[2], "NFE", f"from the prior; best within {c['max_nfe_target']} NFE?")):
        if a is not ax[1]:
            a.axhline(r["kl_per_dim_target"], color="k", linewidth=0.8, linestyle=":")
        a.set(xscale="log", yscale="log", xlabel=x, title=t, ylabel=r"$W_2(\hat p, p_{t_0})$"
              if a is ax[1] else r"KL$(\hat p\,\|\,p_{t_0})/d$")
        a.legend(fontsize=6.5), a.grid(True, which="major", alpha=0.3), a.minorticks_off()
    files = plotting.save(fig, out_dir / "sampler_convergence.png")
    fig, axes = plotting.new_figure(2, 3, width=4.4, height=3.5)
    ax, adm, qT = axes.ravel(), np.asarray(ch["admissible"], bool), r"from the exact $q_T$"
    # per panel: x, measured, (claimed error, shape, range), extra lines, labels
    panels = [(ch["h"], {r"exact KL$(q\|\hat p)$ from $\gamma^d$": ch["kl"], qT: ch["kl_disc"]},
               (ch["kl_disc"], ch["shape_kl"], adm), {}, "h", "KL",
               f"Chen et al., EI on OU, T={c['chen_T']:g} (h > 1/L shaded)"),
              (ch["h"], {"exact TV, lower": ch["tv_lower"], "exact TV, upper": ch["tv_upper"],
                         f"{qT}, upper": ch["tv_disc_upper"]}, (ch["tv_disc_upper"], ch[
                  "shape_tv"], adm & (ch["tv_disc_upper"] < TV_MAX)), {}, "h", "TV",
               f"TV vs h (rate where the upper end < {TV_MAX:g})"),
              (chT["T"], {"exact KL": chT["kl"], qT: chT["kl_disc"], r"exact KL$(q_T\|\gamma^d)$":
                          chT["kl_init"]}, (chT["kl_disc"], chT["shape_kl"], slice(None)),
               {r"KL$(q\|\gamma^d)e^{-2T}$": chT["prior_kl"]}, "T", "KL",
               f"KL vs T at h={c['tsweep_h']:g}"),
              (bt["N"], {r"exact KL$(q_\delta\|\hat p)$, Benton grid": bt["kl"], "exact, uniform "
                         "grid": bt["kl_uniform"], f"Benton grid {qT}": bt["kl_disc"]},
               (bt["kl_disc"], bt["shape_disc"], slice(None)), {}, "N steps", "KL",
               rf"Benton et al., $\delta$={c['benton_delta']:g}, T={c['benton_T']:g}")]
    for j, (x, meas, (e, b, i), extra, xl, yl, t) in enumerate(panels):
        cs = float(np.max(e[i] / b[i]))  # C*: the smallest constant valid over the range
        P(ax[j], x, meas, {rf"$C^*\times$shape, $C^*$={cs:.2g}": cs * b} | extra, xlabel=xl,
          ylabel=yl, title=t)
        if j != 2:  # how loose: exact / (C* shape) over the claimed range, <= 1
            P(ax[5], (x if j < 2 else bt["kappa"])[i], {("Chen KL vs h", "Chen TV vs h", "",
                                                          r"Benton vs $\kappa$")[j]: e[i] / (
                cs * b[i])}, {}, xlabel=r"h or $\kappa$", ylabel=r"exact / ($C^*\times$shape)",
              title=r"$\leq 1$; falls: exact faster than shape")
    P(ax[4], res["d"], {f"finer grid, L grows (slope {res['exponent_d']:.2f})": res["kl"],
                        f"larger domain, L fixed (slope {dom['exponent_d']:.2f})": dom["kl"]},
      {rf"$\propto L^2d$ (slope in $L^2d$ {res['exponent_L2d']:.2f})": res["kl"][0] * res["L2d"]
       / res["L2d"][0], r"$\propto d$": dom["kl"][0] * dom["d"] / dom["d"][0]}, xlabel="d",
      ylabel="KL", title=f"dimension, n={c['dim_steps']}, T={c['chen_T']:g}")
    for a in ax:
        a.set(xscale="linear" if a is ax[2] else "log"), a.minorticks_off()
    for a in ax[:2] if not np.all(adm) else ():
        a.axvspan(1 / ch["L"], ch["h"].max() * 1.3, color="0.9", zorder=0)
    files += plotting.save(fig, out_dir / "sampler_convergence_bounds.png")
    fig, ax = plotting.new_figure(1, 3, width=4.7, height=3.9)
    ax, labs = ax[0], list(sp["samplers"])
    ns = [(m, sp["samplers"][m]["n_steps"]) for m in labs]
    for j, part in enumerate(SPLIT_PARTS):  # |value|; a negative part hatched
        v = np.array([sp["samplers"][m][part] for m in labs], float)
        for b, x in zip(ax[0].bar(np.arange(len(labs)) + (j - 2) * 0.16, np.where(
                v != 0, np.abs(v), np.nan), 0.16, label=part, color=f"C{j}"), v):
            b.set(hatch="xx" if x < 0 else None, facecolor="white" if x < 0 else f"C{j}",
                  edgecolor=f"C{j}")
    ax[0].set_xticks(range(len(labs)), [m.replace("_", "\n") + f"\n(n={n})" for m, n in ns])
    ax[0].set(yscale="log", ylabel="KL(output || data)", title=f"split at {c['split_nfe']} NFE, "
              f"model var x{1 + c['score_delta']:g}")
    ax[0].legend(fontsize=6.5, ncol=2, title="hatched: part < 0", title_fontsize=6.5)
    ax[1].plot(sp["t"], sp["score_error"])
    ax[1].set(xscale="log", yscale="log", xlabel="t", ylabel=r"$E_{p_t}\|\hat s-\nabla\log p_t"
              r"\|^2$", title=f"score error (integral over t: {sp['score_error_integral']:.3g})")
    plotting.error_panel(ax[2], c["girsanov_steps"], sp["kl_pt0_vs_model_sampler"], {
        rf"Girsanov $G$ = {sp['girsanov']:.6g}": [sp["girsanov"]] * len(c["girsanov_steps"])} | {
        f"{m}: n→∞ limit {v['limit']:.6g}": [v["limit"]] * len(c["girsanov_steps"]) for m, v in
        sp["limit"].items()},
        logx=True, xlabel="n steps (log-SNR grid)", ylabel=r"KL$(p_{t_0}\,\|\,\hat p)$, "
        r"model score, exact $p_T$", title="score error alone vs the path-KL bound")
    return files + plotting.save(fig, out_dir / "sampler_convergence_split.png")
