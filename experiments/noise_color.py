r"""Which noise for which data spectrum? Exact KL of every sampler under white, pink, brown, blue
and equal-SNR noise, heat dissipation and blurring, on power-law fields and on the digits.

    python -m experiments run noise_color --preset smoke   # ~13 s on a 2-core CPU
    python -m experiments run noise_color                  # quick, ~65 s

The seed question (on Dieleman's "diffusion is spectral autoregression"): *would pink noise be a
better prior? what about blur instead of noise?* Answered exactly for Gaussian data (power-law
fields, DFT basis; the digits as their moment-matched Gaussian in the DCT basis) under processes
diagonal in the data's basis (:mod:`opdiff.diffusion.processes`): white VP, pink/brown/blue
(gamma = 1, 2, -1) and equal-SNR coloured noise, heat dissipation (IHDM; and with
``heat_fine_blur_min``), blurring. Laws by :func:`~opdiff.diffusion.oracle.sampler_law` from the
prior, KL(output || data) by :func:`opdiff.diffusion.laws.kl` (diverged: inf), the best sampler
per NFE budget by :func:`~opdiff.diffusion.samplers.best_at_budget`.

Claims: (0) the oracle's ``pf_heun`` law on blurring matches 4,000 samples of the sampler code;
(a) equal-SNR noise makes the per-coefficient KL flat; (b) under white noise more of the KL than
the coefficient share sits at high frequencies (alpha >= 2); (c) pink (and brown) beat white for
alpha >= 2 at every budget; (d) heat dissipation beats white VP at every budget.

Figures: ``noise_color_kl.png``, ``noise_color_spectrum.png``, ``noise_color_table.png`` (the
least-KL process per data set and budget, also ``table_markdown``). Numbers: notes/diffusion.md.
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

from experiments._config import MAY_BE_EMPTY, AtLeastTwo, Count, Positive, Range, Seed

NAME = "noise_color"
DESCRIPTION = ("Exact KL of every sampler under white/pink/brown/blue/equal-SNR noise, heat "
               "dissipation and blurring, per data spectrum: which noise is best")
DTYPE = "float64"

PROCESSES = ("white", "pink", "brown", "blue", "equal_snr", "heat", "heat_fine", "blurring")
DATA_AGNOSTIC = ("white", "pink", "brown", "blue", "blurring")
FACTORIES = {"white": processes.vp, "heat": processes.heat_dissipation,
             "heat_fine": processes.heat_dissipation, "blurring": processes.blurring,
             **{c: functools.partial(processes.coloured, noise=c)
                for c in ("pink", "brown", "blue")}}
LABELS = {"white": "white VP", "pink": "pink VP (γ=1)", "brown": "brown VP (γ=2)",
          "blue": "blue VP (γ=-1)", "equal_snr": "equal-SNR VP", "heat": "heat (IHDM)",
          "heat_fine": "heat, fine σ_B,min", "blurring": "blurring"}
STYLE = {"white": ("k", "o"), "pink": ("tab:pink", "s"), "brown": ("tab:brown", "D"),
         "blue": ("tab:blue", "^"), "equal_snr": ("tab:green", "*"), "heat": ("tab:red", "v"),
         "heat_fine": ("tab:orange", "<"), "blurring": ("tab:purple", "P")}


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
    heat_fine_blur_min: Positive = 0.05
    flat_tol: Positive = 1e-6

    def __post_init__(self):
        if self.size < 4:
            raise ValueError(f"size must be >= 4, got {self.size}")
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
        if not (self.heat_fine_blur_min > 0 and self.flat_tol > 0):
            raise ValueError("heat_fine_blur_min and flat_tol must be > 0")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "size ** 2 * max(init_steps, max(steps), max(budgets))":
                self.size ** 2 * max(self.init_steps, max(self.steps), max(self.budgets)),
        }


PRESETS = {
    "smoke": Config(size=16, alphas=(2.0,), processes=("white", "pink", "equal_snr", "heat",
                                                       "blurring"),
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
    refs = [r for r in ("ancestral", "pf_heun") if r in cfg.samplers] or ["pf_heun"]
    shared, res, best_all = {}, {}, {}  # processes are static in the compiled law: share them
    for dname, field in data.items():
        rd = res[dname] = dict(kl={}, kl_spectrum={}, initialisation_kl={}, early_stopping_kl={},
                               best_sampler_kl={}, best_curve={}, radial_kl_spectrum={})
        freq = _transforms.radial_frequency(field.shape, field.basis)
        up = freq > freq.max() / 2
        rd["coefficient_fraction_upper_half"], best_all[dname] = float(up.mean()), {}
        for pname in cfg.processes:
            kw = dict(blur_min=cfg.heat_fine_blur_min) if pname == "heat_fine" else {}
            sk = (pname, field.shape, field.basis)
            if pname != "equal_snr" and sk not in shared:
                shared[sk] = FACTORIES[pname](field.shape, basis=field.basis, **kw)
            proc = shared.get(sk) or processes.coloured(field.shape, field.var, basis=field.basis)
            m0, v0 = (np.asarray(a) for a in field.marginal(proc, proc.t_min))
            rd["early_stopping_kl"][pname] = kl(m0, v0, field.mean, field.var)
            fine = samplers.log_snr_grid(proc, cfg.init_steps) if proc.schedule != "constant" \
                else np.linspace(proc.t_min, proc.T, cfg.init_steps + 1)
            rd["initialisation_kl"][pname] = {
                ref: kl(*oracle.sampler_law(ref, proc, field, fine), field.mean, field.var)
                for ref in refs}
            kls, spec = {}, {}
            for meth in cfg.samplers:
                kls[meth] = {}
                for n in samplers.steps_for_budgets(meth, (*cfg.steps, cfg.spectrum_steps),
                                                    cfg.budgets):
                    m, w = oracle.sampler_law(meth, proc, field, samplers.log_snr_grid(proc, n))
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
            rd["radial_kl_spectrum"][pname] = {m: spectra.radial_average(v, freq)[1]
                                               for m, v in spec.items()}
            rd["radial_frequency"] = spectra.radial_average(freq, freq)[0]
            if pname == "white":
                rd["kl_fraction_upper_half"] = {m: float(v[up].sum() / v.sum())
                                                for m, v in spec.items()}
        rd["ratios"] = {p: [rd["best_sampler_kl"][p][str(b)]["kl"] /
                            rd["best_sampler_kl"]["white"][str(b)]["kl"] for b in cfg.budgets]
                        for p in ("pink", "brown", "heat", "heat_fine") if p in cfg.processes}
    head, rows, table = ["data"] + [f"{b} NFE" for b in cfg.budgets], [], {}
    for dname, bests in best_all.items():
        table[dname] = {}
        for b in cfg.budgets:
            v, lab = samplers.least_at_budget({p: x[b] for p, x in bests.items()})
            va, laba = samplers.least_at_budget({p: x[b] for p, x in bests.items()
                                                 if p in DATA_AGNOSTIC})
            table[dname][str(b)] = dict(best=lab, kl=v, best_agnostic=laba, kl_agnostic=va)
        rows.append([dname] + [f"{c['best']}: {c['kl']:.3g}" + (
            "" if abs(c["kl_agnostic"] - c["kl"]) <= 1e-9 * abs(c["kl"]) else
            f"; agnostic: {c['best_agnostic']}: {c['kl_agnostic']:.3g}")
            for c in table[dname].values()])
    md = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                   + ["| " + " | ".join(r) + " |" for r in rows])
    return dict(monte_carlo=dict(z_max=mc[0], var_dev=mc[1], var_tol=mc[2]), data=res,
                table=table, table_markdown=md, table_cells=[head] + rows,
                budgets=list(cfg.budgets), spectrum_steps=cfg.spectrum_steps,
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
            # (max - min) / max: 0 for a flat spectrum, also when every KL_k is exactly 0
            # (the ODE samplers: the prior N(0, diag lambda) is then the data law itself)
            kmax = float(k.max())
            spread = float((kmax - k.min()) / kmax) if kmax > 1e-20 else 0.0  # round-off
            out.append(cl.upper_bound(
                f"(a) equal-SNR noise, alpha={a:g}, {meth} at {cfg.spectrum_steps} steps: "
                f"per-coefficient KL is flat, (max - min)/max <= {cfg.flat_tol:g} (max KL_k = "
                f"{kmax:.3g})", spread if np.isfinite(kmax) else math.inf, cfg.flat_tol))
    for a in (a for a in cfg.alphas if a >= 2):
        rd = res[f"alpha={a:g}"]
        coef = rd["coefficient_fraction_upper_half"]
        for meth in cfg.spectrum_samplers:
            frac = rd["kl_fraction_upper_half"][meth]  # NaN (inf/inf): fails
            out.append(cl.lower_bound(
                f"(b) white VP, alpha={a:g}, {meth} at {cfg.spectrum_steps} steps: fraction of "
                f"the KL at radial frequency > f_max/2 exceeds 0.5 and the fraction of "
                f"coefficients there ({coef:.3f})", -math.inf if math.isnan(frac) else frac,
                max(0.5, coef)))
        ratios = {p: [math.inf if math.isnan(x) else x for x in v]  # NaN (inf/inf): fails
                  for p, v in rd["ratios"].items()}
        if "pink" in ratios:
            for b, x in zip(cfg.budgets, ratios["pink"]):
                out.append(cl.upper_bound(
                    f"(c) alpha={a:g}, {b} NFE: pink noise (best sampler) has a lower KL than "
                    f"white noise (best sampler) (KL ratio pink/white)", x, 1.0))
        if "brown" in ratios:
            out.append(cl.upper_bound(
                f"(c) alpha={a:g}: brown noise (gamma=2, 2-D pink) beats white at every budget "
                f"{list(cfg.budgets)} (max KL ratio brown/white)", max(ratios["brown"]), 1.0))
    for dname, rd in res.items() if "heat" in cfg.processes else ():
        out.append(cl.upper_bound(
            f"(d) {dname}: heat dissipation (IHDM parameters, best sampler) has a lower KL than "
            f"white VP (best sampler) at every budget {list(cfg.budgets)} (KL ratios "
            f"heat/white)", [math.inf if math.isnan(x) else x for x in rd["ratios"]["heat"]],
            1.0))
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
    head, rows = r["table_cells"][0], r["table_cells"][1:]
    fig3, axes3 = plotting.new_figure(1, 1, width=1.2 + 3.3 * (len(head) - 1),
                                      height=1.0 + 0.62 * len(rows))
    (ax := axes3[0, 0]).axis("off")
    tab = ax.table(cellText=[[c.replace("; agnostic: ", "\nagnostic: ") for c in row]
                             for row in rows], colLabels=head, loc="center", cellLoc="center",
                   colWidths=[0.1] + [0.9 / (len(head) - 1)] * (len(head) - 1))
    tab.auto_set_font_size(False), tab.set_fontsize(8)
    tab.scale(1, 2.6)
    ax.set_title("least KL(output || data) at each budget: process (its best sampler): KL\n"
                 "'agnostic': the best process that uses no data statistics (white, pink, "
                 "brown, blue, blurring); 'a = b': tied", fontsize=9)
    out_dir = Path(out_dir)
    return (plotting.save(fig, out_dir / "noise_color_kl.png")
            + plotting.save(fig2, out_dir / "noise_color_spectrum.png")
            + plotting.save(fig3, out_dir / "noise_color_table.png"))
