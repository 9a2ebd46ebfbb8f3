r"""Which noise for which data spectrum? Exact KL of every sampler under white, pink, brown, blue
and equal-SNR noise, heat dissipation and blurring, on power-law fields and on the digits.

    python -m experiments run noise_color --preset smoke   # ~15 s on a 2-core CPU
    python -m experiments run noise_color                  # quick, ~5 min

The seed question (on Dieleman's "diffusion is spectral autoregression"): *would pink noise be a
better prior? what about blur instead of noise?* Answered exactly for Gaussian data (power-law
fields, DFT basis; the digits as their moment-matched Gaussian, DCT basis) with laws from
:func:`~opdiff.diffusion.oracle.sampler_law`, the best sampler per NFE budget, and every process
at **equal terminal distortion**: each stops where KL(p_stop || data) equals the larger of white
VP's at t_min = 1e-3 and heat dissipation's with a ``heat_blur_floor`` px (unblurred) last level
(:func:`~opdiff.diffusion.oracle.match_terminal_distortion`: the t_min of a noise process, the
last blur of ``heat_matched``; ``heat`` keeps IHDM's 0.5 px; a process whose marginals are the
data law, distortion 0, keeps t_min = 1e-3). Each best run is split into initialisation,
discretisation and early stopping (:func:`~opdiff.diffusion.oracle.error_split`).

Claims: (0) the oracle's law matches the sampler code; (a) equal-SNR noise makes the KL flat
(theorem); (e) matched distortions equal the target. Findings (refuted predictions named in
notes/diffusion.md): (b) the white-VP KL share above f_max/2; (c) pink/white, brown/white, (d)
heat/white, blurring/white KL ratios per budget. Figures: noise_color_{kl,spectrum,split}.png.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Annotated

import numpy as np

from opdiff import claims as cl
from opdiff import images, plotting, spectra
from opdiff.diffusion import transforms as _transforms
from opdiff.diffusion import oracle, processes, samplers
from opdiff.diffusion.laws import kl

from ._config import MAY_BE_EMPTY, AtLeastTwo, Count, Positive, Range, Seed

NAME = "noise_color"
DESCRIPTION = ("Exact KL of every sampler under white/pink/brown/blue/equal-SNR noise, heat "
               "dissipation and blurring, per data spectrum: which noise is best")
DTYPE = "float64"

PROCESSES = ("white", "pink", "brown", "blue", "equal_snr", "heat", "heat_matched", "blurring")
DATA_AGNOSTIC = ("white", "pink", "brown", "blue", "blurring")
FACTORIES = {"white": processes.vp, "heat": processes.heat_dissipation,
             "heat_matched": processes.heat_dissipation, "blurring": processes.blurring,
             **{c: functools.partial(processes.coloured, noise=c)
                for c in ("pink", "brown", "blue")}}
LABELS = {"white": "white VP", "pink": "pink VP (γ=1)", "brown": "brown VP (γ=2)",
          "blue": "blue VP (γ=-1)", "equal_snr": "equal-SNR VP", "heat": "heat (IHDM)",
          "heat_matched": "heat, unblurred end", "blurring": "blurring"}
STYLE = {"white": ("k", "o"), "pink": ("tab:pink", "s"), "brown": ("tab:brown", "D"),
         "blue": ("tab:blue", "^"), "equal_snr": ("tab:green", "*"), "heat": ("tab:red", "v"),
         "heat_matched": ("tab:orange", "<"), "blurring": ("tab:purple", "P")}


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0  # unused: everything is exact (kept for the house pattern)
    size: Annotated[int, Range(lo=4)] = 32
    alphas: Annotated[tuple[float, ...], MAY_BE_EMPTY] = (1.0, 2.0, 2.5, 3.0)
    digits: bool = True
    processes: tuple[str, ...] = PROCESSES
    samplers: tuple[str, ...] = ("ancestral", "ddim", "pf_heun", "dpm_solver_2",
                                 "euler_maruyama")
    steps: tuple[Count, ...] = (5, 10, 20, 50, 100, 200)
    budgets: tuple[Count, ...] = (10, 50, 200)
    spectrum_steps: Count = 20
    spectrum_samplers: tuple[str, ...] = ("ancestral", "pf_heun")
    init_steps: AtLeastTwo = 4096
    heat_blur_floor: Positive = 1e-3
    flat_tol: Positive = 1e-6

    def __post_init__(self):
        if not self.alphas and not self.digits:
            raise ValueError("need at least one data set: alphas or digits")
        if any(not math.isfinite(a) for a in self.alphas):
            raise ValueError(f"alphas must be finite, got {self.alphas}")
        for name, allowed in (("processes", PROCESSES), ("samplers", samplers.SAMPLERS)):
            v = getattr(self, name)
            if not v or any(x not in allowed for x in v) or len(set(v)) != len(v):
                raise ValueError(f"{name} must be distinct entries of {allowed}, got {v}")
        if "white" not in self.processes:
            raise ValueError("processes must include 'white' (the reference)")
        if not self.spectrum_samplers or any(s not in self.samplers
                                             for s in self.spectrum_samplers):
            raise ValueError(f"spectrum_samplers must be a non-empty subset of samplers, got "
                             f"{self.spectrum_samplers}")
        for name in ("steps", "budgets"):
            v = getattr(self, name)
            if not v or list(v) != sorted(set(v)) or min(v) < 1:
                raise ValueError(f"{name} must be strictly increasing positive ints, got {v}")
        if self.spectrum_steps < 1 or self.init_steps < 2:
            raise ValueError("spectrum_steps must be >= 1 and init_steps >= 2")
        if not (0 < self.heat_blur_floor < 0.5 and self.flat_tol > 0):
            raise ValueError("heat_blur_floor must be in (0, 0.5) and flat_tol > 0")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays (the size guard of ``experiments/_config.py``)."""
        return {"size ** 2 * max(init_steps, max(steps), max(budgets))":
                self.size ** 2 * max(self.init_steps, max(self.steps), max(self.budgets))}


PRESETS = {
    "smoke": Config(size=16, alphas=(2.0,), processes=("white", "pink", "equal_snr", "heat",
                                                       "heat_matched", "blurring"),
                    samplers=("pf_heun",), steps=(5, 10), budgets=(10, 20),
                    spectrum_steps=10, spectrum_samplers=("pf_heun",), init_steps=256),
    "quick": Config(),
    "full": Config(size=64, steps=(5, 10, 20, 50, 100, 200, 500, 1000),
                   budgets=(10, 20, 50, 100, 200, 1000),
                   samplers=("ancestral", "ddim", "pf_heun", "dpm_solver_2", "euler_maruyama",
                             "pf_euler", "dpm_solver_1", "reverse_diffusion")),
}


def run(cfg: Config, key) -> dict:
    f0 = oracle.power_law_field((8, 8), "dft", alpha=2.0)
    p0 = processes.blurring(f0.shape, basis="dft")
    mc = oracle.monte_carlo_agreement("pf_heun", p0, f0, samplers.log_snr_grid(p0, 10),
                                      seed=cfg.seed)
    data = {f"alpha={a:g}": oracle.power_law_field((cfg.size, cfg.size), "dft", alpha=a)
            for a in cfg.alphas}
    if cfg.digits:
        data["digits"] = oracle.field_from_samples(images.load_digits()[0], "dct")
    shared, res, best_all = {}, {}, {}  # processes are static in the compiled law: share them
    for dname, field in data.items():
        rd = res[dname] = {k: {} for k in ("kl", "kl_spectrum", "early_stopping_kl", "split",
                                           "best_sampler_kl", "best_curve", "stop", "matched",
                                           "radial_kl_spectrum")}
        freq = _transforms.radial_frequency(field.shape, field.basis)
        up = freq > freq.max() / 2
        rd["coefficient_fraction_upper_half"], best_all[dname] = float(up.mean()), {}
        sh, b = field.shape, field.basis
        floor = processes.heat_dissipation(sh, basis=b, blur_min=cfg.heat_blur_floor)
        target = rd["target_distortion"] = max(oracle.terminal_distortion(
            field, processes.vp(sh, basis=b), 1e-3), oracle.terminal_distortion(field, floor, 0))
        for pname in cfg.processes:
            sk = (pname, sh, b)
            if pname not in ("equal_snr", "heat_matched") and sk not in shared:
                shared[sk] = FACTORIES[pname](sh, basis=b)
            proc = shared.get(sk) or (processes.coloured(sh, field.var, basis=b)
                                      if pname == "equal_snr" else floor)
            ok = rd["matched"][pname] = pname not in ("heat", "equal_snr")
            try:  # the stop at the target distortion: t_min, or heat's last blur width
                grid_proc = oracle.at_terminal_distortion(field, proc, target, **(dict(
                    param="blur_min", lo=cfg.heat_blur_floor) if proc is floor else {})) \
                    if ok else proc
            except ValueError:  # marginals equal to the data law: distortion 0 at every t_min
                grid_proc, rd["matched"][pname] = proc, False
            proc = grid_proc if pname == "heat_matched" else proc  # the law compiles per proc
            rd["stop"][pname] = grid_proc.blur_min if pname[:4] == "heat" else grid_proc.t_min
            rd["early_stopping_kl"][pname] = oracle.terminal_distortion(field, proc,
                                                                        grid_proc.t_min)
            kls, spec, grids = {}, {}, {}
            for meth in cfg.samplers:
                kls[meth] = {}
                for n in samplers.steps_for_budgets(meth, (*cfg.steps, cfg.spectrum_steps),
                                                    cfg.budgets):
                    g = grids[n] = samplers.log_snr_grid(grid_proc, n)
                    m, w = oracle.sampler_law(meth, proc, field, g)
                    if n == cfg.spectrum_steps and meth in cfg.spectrum_samplers:
                        spec[meth] = kl(m, w, field.mean, field.var, per_coefficient=True)
                    kls[meth][samplers.nfe(meth, n)] = kl(m, w, field.mean, field.var)
            nfes = sorted({b for v in kls.values() for b in v})
            best = best_all[dname][pname] = {b: samplers.best_at_budget(kls, b) for b in nfes}
            rd["kl"][pname] = {m: {str(n): v for n, v in vals.items()} for m, vals in kls.items()}
            rd["kl_spectrum"][pname] = spec
            rd["best_curve"][pname] = dict(nfe=np.array(nfes),
                                           kl=np.array([best[b][0] for b in nfes]))
            rd["best_sampler_kl"][pname] = {str(b): dict(kl=best[b][0], sampler=best[b][1])
                                            for b in cfg.budgets}
            rd["split"][pname] = {  # the best run at each budget, split by error source
                str(bud): dict(sampler=meth, steps=n, **oracle.error_split(
                    meth, proc, field, grids[n], n_reference=cfg.init_steps))
                for bud in cfg.budgets if (meth := best[bud][1]) is not None
                for n in grids if samplers.nfe(meth, n) == bud}
            rd["radial_kl_spectrum"][pname] = {m: spectra.radial_average(v, freq)[1]
                                               for m, v in spec.items()}
            rd["radial_frequency"] = spectra.radial_average(freq, freq)[0]
            if pname == "white":
                rd["kl_fraction_upper_half"] = {m: float(v[up].sum() / v.sum())
                                                for m, v in spec.items()}
        rd["ratios"] = {p: [rd["best_sampler_kl"][p][str(b)]["kl"] /
                            rd["best_sampler_kl"]["white"][str(b)]["kl"] for b in cfg.budgets]
                        for p in ("pink", "brown", "heat", "heat_matched", "blurring")
                        if p in cfg.processes}
    head, rows = ["data"] + [f"{b} NFE" for b in cfg.budgets], []
    for dname, bests in best_all.items():  # least KL per budget, and least data-agnostic one
        cells = [[samplers.least_at_budget({p: x[b] for p, x in bests.items() if p in procs})
                  for procs in (cfg.processes, DATA_AGNOSTIC)] for b in cfg.budgets]
        rows.append([dname] + [f"{lab}: {v:.3g}" + ("" if abs(va - v) <= 1e-9 * abs(v) else
                                                   f"; agnostic: {laba}: {va:.3g}")
                               for (v, lab), (va, laba) in cells])
    md = "\n".join(["| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows]])
    return dict(monte_carlo=dict(z_max=mc[0], var_dev=mc[1], var_tol=mc[2]), data=res,
                table_markdown=md, budgets=list(cfg.budgets), spectrum_steps=cfg.spectrum_steps,
                spectrum_samplers=list(cfg.spectrum_samplers), processes=list(cfg.processes),
                sizes={d: f.size for d, f in data.items()})


def claims(cfg: Config, r: dict) -> list[cl.Claim]:
    mc, res = r["monte_carlo"], r["data"]
    out = [cl.upper_bound(
        "pf_heun on blurring: samples from samplers.sample (8x8, 4000 draws, 10 steps) match the "
        "oracle law: max |z| of the means <= 5, max |var ratio - 1| <= 6 sqrt(2/n)",
        [mc["z_max"], mc["var_dev"]], [5.0, mc["var_tol"]])]
    for a in cfg.alphas if "equal_snr" in cfg.processes else ():
        for meth in cfg.spectrum_samplers:
            k = res[f"alpha={a:g}"]["kl_spectrum"]["equal_snr"][meth]
            kmax = float(k.max())  # spread 0 also when every KL_k is 0 (ODE: prior = data)
            spread = float((kmax - k.min()) / kmax) if kmax > 1e-20 else 0.0  # round-off
            out.append(cl.upper_bound(
                f"(a) equal-SNR noise, alpha={a:g}, {meth} at {cfg.spectrum_steps} steps: "
                f"per-coefficient KL is flat, (max - min)/max <= {cfg.flat_tol:g} (max KL_k = "
                f"{kmax:.3g})", spread if np.isfinite(kmax) else math.inf, cfg.flat_tol))
    for a in (a for a in cfg.alphas if a >= 2):
        rd = res[f"alpha={a:g}"]
        for meth in cfg.spectrum_samplers:
            frac = rd["kl_fraction_upper_half"][meth]  # exact: standard error 0
            out.append(cl.finding(
                f"(b) white VP, alpha={a:g}, {meth} at {cfg.spectrum_steps} steps: share of the "
                f"KL at radial frequency > f_max/2 (the share of coefficients there: "
                f"{rd['coefficient_fraction_upper_half']:.3f}; "
                f"the prediction: more than 0.5 and that share, refuted in notes)",
                math.inf if math.isnan(frac) else frac, 0.0))
    for dname, rd in res.items():
        target = rd["target_distortion"]
        m = {p: rd["early_stopping_kl"][p] for p, ok in rd["matched"].items() if ok}
        if m:
            out.append(cl.within(
                f"(e) {dname}: equal terminal distortion: KL(p_stop || data) of {list(m)} "
                f"equals the target {target:.3g} (the larger of white VP's at t_min = 1e-3 and "
                f"heat's with a {cfg.heat_blur_floor:g} px last blur)", list(m.values()), target,
                rtol=1e-6))
        for p in (p for p in ("pink", "brown", "heat_matched", "heat", "blurring")
                  if p in rd["ratios"]):
            out.append(cl.finding(
                f"({'c' if p in ('pink', 'brown') else 'd'}) {dname}: KL ratio {LABELS[p]} / "
                f"white VP, best sampler each, at {list(cfg.budgets)} NFE (< 1: {p} wins; "
                + ("equal terminal distortion)" if rd["matched"][p] else f"not matched: its "
                   f"distortion {rd['early_stopping_kl'][p]:.3g}, target {target:.3g})"),
                [math.inf if math.isnan(x) else x for x in rd["ratios"][p]], 0.0))
    return out


def plot(r: dict, out_dir: Path) -> list[str]:
    res, procs, samp = r["data"], r["processes"], r["spectrum_samplers"]
    fig, axes = plotting.new_figure(1, len(res), width=3.7, height=3.6)
    for ax, (dname, rd) in zip(axes[0], res.items()):
        for p in procs:
            y = rd["best_curve"][p]["kl"]
            ax.plot(rd["best_curve"][p]["nfe"], np.where(np.isfinite(y) & (y < 1e30), y, np.nan),
                    color=STYLE[p][0], marker=STYLE[p][1], markersize=4, linewidth=1.2,
                    label=LABELS[p])
        for b in r["budgets"]:
            ax.axvline(b, color="0.85", linewidth=0.8, zorder=0)
        ax.set(xscale="log", yscale="log", xlabel="NFE", title=f"{dname} (d={r['sizes'][dname]})")
        ax.grid(True, which="major", alpha=0.3)
    axes[0, 0].set_ylabel("KL(output || data), best sampler")
    fig2, axes2 = plotting.new_figure(len(samp), len(res), width=3.7, height=3.1)
    for j, (dname, rd) in enumerate(res.items()):
        for i, meth in enumerate(samp):
            ax = axes2[i, j]
            for p in procs:
                y = rd["radial_kl_spectrum"][p][meth]
                y = np.where(np.isfinite(y) & (y > 0) & (y < 1e30), y, np.nan)
                ax.plot(rd["radial_frequency"], y, color=STYLE[p][0], marker=STYLE[p][1],
                        markersize=3, linewidth=1.1, label=LABELS[p])
            ax.set(yscale="log", title=f"{dname}, {meth}, {r['spectrum_steps']} steps")
            ax.title.set_fontsize(9)
            ax.grid(True, which="major", alpha=0.3)
            if i == len(samp) - 1:
                ax.set_xlabel("radial frequency (cycles/pixel)")
            if j == 0:
                ax.set_ylabel("KL per coefficient")
    for f, a in ((fig, axes), (fig2, axes2)):
        handles, labels = a[0, 0].get_legend_handles_labels()
        f.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8,
                 frameon=False)
    fig3, axes3 = plotting.new_figure(1, len(res), width=3.7, height=3.6)
    for ax, (dname, rd) in zip(axes3[0], res.items()):  # the KL split of each best run
        for p, sp in rd["split"].items():
            for part, ls in (("discretisation", "-"), ("initialisation", ":")):
                y = np.array([v[part] for v in sp.values()])
                ax.plot([int(k) for k in sp], np.where(y > 1e-12, y, np.nan), ls,  # not round-off
                        c=STYLE[p][0], marker=STYLE[p][1], ms=4, label=f"{LABELS[p]}, {part[:4]}.")
        ax.axhline(rd["target_distortion"], color="0.5", linestyle="--", label="target distortion")
        ax.set(xscale="log", yscale="log", xlabel="NFE", title=dname)
    axes3[0, 0].set_ylabel("KL part (to p_stop; early stopping: dashed)")
    handles, labels = axes3[0, 0].get_legend_handles_labels()
    fig3.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=7, frameon=False)
    out_dir = Path(out_dir)
    return (plotting.save(fig, out_dir / "noise_color_kl.png")
            + plotting.save(fig2, out_dir / "noise_color_spectrum.png")
            + plotting.save(fig3, out_dir / "noise_color_split.png"))
