r"""Which noise for which data spectrum? Exact KL of every sampler under white, pink, brown, blue
and equal-SNR noise, heat dissipation and blurring, on power-law fields and on the digits.

    python -m experiments run noise_color --preset smoke   # ~13 s on a 2-core CPU
    python -m experiments run noise_color                  # quick, ~65 s
    python -m experiments run noise_color --preset full

The seed question (a Hacker News comment on Dieleman's "diffusion is spectral
autoregression"): *would pink noise be a better prior? what about blur instead of noise?*
Answered here exactly, for Gaussian data, where every quantity is closed form
(:mod:`opdiff.diffusion.oracle`; the law recursion runs through
:func:`~opdiff.diffusion.oracle.sampler_law`, checked against the sampler code run on samples
by claim 0).

**Data** (zero mean unless stated): power-law fields :math:`\lambda_k\propto(|k|^2+1)^
{-\alpha/2}`, :math:`\alpha\in` ``alphas``, DFT basis, ``size``² pixels, unit pointwise
variance (:func:`~opdiff.diffusion.oracle.power_law_field`); and the scikit-learn digits
(8×8, ``load_digits``) as the moment-matched diagonal Gaussian in the DCT basis
(:func:`~opdiff.diffusion.oracle.field_from_samples`; non-zero mean).

**Processes**, all diagonal in the data's basis:

=============  ==================================================================================
white          VP, :math:`a_t=e^{c(t)}`, :math:`s_t^2=1-a_t^2` (score_sde, :math:`\beta\in[0.1,20]`)
pink           VP with noise power :math:`c_k^2\propto(|k|^2+1)^{-1/2}` (``coloured(.., "pink")``:
               the library's pink is :math:`\gamma=1`, "1/f" radially)
brown          :math:`c_k^2\propto(|k|^2+1)^{-1}` (:math:`\gamma=2`: equal energy per octave
               in 2-D, what Dieleman calls 2-D pink; equal to the spectrum of the
               :math:`\alpha=2` field)
blue           :math:`c_k^2\propto(|k|^2+1)^{+1/2}`
equal_snr      :math:`c_k^2\propto\lambda_k` (Falck et al. 2025, EqualSNR): every coefficient
               has the same SNR at every time
heat           inverse heat dissipation (IHDM): :math:`a_t(k)=e^{-\lambda^\Delta_k\tau(t)}`,
               :math:`\sigma=0.01`, blur width log-spaced from 0.5 px to the image side; the
               prior :math:`N(a_T\mu,a_T^2\lambda+\sigma^2)` carries the data's moments
heat_fine      the same with :math:`\sigma_{B,\min}=` ``heat_fine_blur_min``: the library's
               heat process stops at :math:`\sigma_{B,\min}` (IHDM prepends
               :math:`\sigma_B=0`), so ``heat`` ends 0.5 px blurred
blurring       blurring diffusion (Hoogeboom & Salimans): :math:`a_t=\alpha_td_t(k)`, cosine
               log-SNR, :math:`\sigma_{B,\max}=` side/2
=============  ==================================================================================

(:math:`c_k^2` has mean one, so all coloured processes add the same total noise power.)
Samplers ``samplers``, steps ``steps`` on each process's log-level grid
(:func:`~opdiff.diffusion.samplers.log_snr_grid`: uniform log-SNR, or uniform log blur width
for heat), **from the prior** (``init="prior"``: the total error — a "better prior" means a
smaller total error), KL(output‖data). Per process also the initialisation-only KL (the
definition of :func:`~opdiff.diffusion.oracle.error_split`: ``ancestral`` resp. ``pf_heun``
on ``init_steps`` fine steps from the prior, exact score; the references among
``samplers``) and the early-stopping KL
:math:`\mathrm{KL}(p_{t_0}\|q)`. A diverged run (explicit Euler–Maruyama on the stiff high
frequencies of heat dissipation) has KL = inf or an astronomically large finite KL; it is
kept as measured and never wins a comparison. Budgets are in NFE
(:func:`~opdiff.diffusion.samplers.nfe`): the second-order samplers use half the steps.

**The degenerate point of Gaussian data.** For zero-mean Gaussian data the equal-SNR prior
:math:`N(0,\mathrm{diag}\,\lambda)` *is* the data law (the VP prior is the stationary law), and the
probability-flow drift :math:`f-\tfrac12g^2/v_t` vanishes identically, so every deterministic
sampler is exact at any budget: its KL is the :math:`10^{-9}`-per-coefficient truncation of the
prior. This is what "noise shaped like the data" buys in the exactly solvable case; for
non-Gaussian data it only matches second moments. The table therefore also lists the best
*data-agnostic* process (white, pink, brown, blue, blurring: no data statistics in the
process or prior).

**Claims** (each can fail; none is tuned to pass):

0. The oracle's law of ``pf_heun`` on a non-isotropic process (``blurring``, 8×8) agrees with
   4,000 samples drawn by :func:`~opdiff.diffusion.samplers.sample` (means within 5 standard
   errors, variances within :math:`6\sqrt{2/n}`).
(a) *Equal SNR makes the KL spectrum flat.* With noise power :math:`\propto\lambda_k` and zero
   mean every coefficient's problem is the same after scaling by :math:`\sqrt{\lambda_k}`,
   so the per-coefficient KL is the same for every :math:`k`: :math:`\max_k\mathrm{KL}_k/
   \min_k\mathrm{KL}_k-1\le` ``flat_tol`` (computed as :math:`(\max-\min)/\max`, taken as 0
   when every :math:`\mathrm{KL}_k` is below :math:`10^{-20}`, i.e. exact up to round-off), per :math:`\alpha` and ``spectrum_samplers`` at
   ``spectrum_steps``.
(b) *White noise errs at high frequencies.* Under white VP noise, for :math:`\alpha\ge2`, the
   fraction of the KL at ``spectrum_steps`` in the upper half of radial frequency
   (:math:`|f|>f_{\max}/2`) exceeds both 0.5 and the fraction of coefficients there (0.61
   for a 2-D DFT: a flat KL spectrum would already put 61 % of the KL there, so 0.5 alone
   would not show concentration).
(c) *The seed's question.* For :math:`\alpha\ge2`, at each budget, the best-sampler KL under
   pink noise is below that under white noise. Also "brown (2-D pink) below white at every
   budget", per :math:`\alpha`.
(d) *Blur instead of noise.* Heat dissipation (IHDM's parameters), best sampler, has a lower
   KL than white VP, best sampler, at every budget — per data set.

**Outputs.** ``noise_color_kl.png``: best-sampler KL vs NFE per process, one panel per data
set; ``noise_color_spectrum.png``: KL per coefficient vs radial frequency (mean over a
radial bin) at ``spectrum_steps``; ``noise_color_table.png`` and ``metrics["table_markdown"]``:
per data set (rows) and budget (columns) the process with the least KL for its best sampler,
with the KL, and the best data-agnostic process; every number in ``metrics["kl"]``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Annotated

import numpy as np

from opdiff import images, plotting
from opdiff.diffusion import basis as _basis
from opdiff.diffusion import oracle, processes, samplers

from experiments._config import MAY_BE_EMPTY, AtLeastTwo, Count, Positive, Range, Seed
from experiments._report import Report
from experiments._diffusion_common import exact_law, kl, monte_carlo_agreement, radial_mean

NAME = "noise_color"
DESCRIPTION = ("Exact KL of every sampler under white/pink/brown/blue/equal-SNR noise, heat "
               "dissipation and blurring, per data spectrum: which noise is best")
DTYPE = "float64"

PROCESSES = ("white", "pink", "brown", "blue", "equal_snr", "heat", "heat_fine", "blurring")
DATA_AGNOSTIC = ("white", "pink", "brown", "blue", "blurring")
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


# ----------------------------------------------------------------------------- setup


def datasets(cfg: Config) -> dict:
    out = {f"alpha={a:g}": oracle.power_law_field((cfg.size, cfg.size), "dft", alpha=a)
           for a in cfg.alphas}
    if cfg.digits:
        out["digits"] = oracle.field_from_samples(images.load_digits()[0], "dct")
    return out


def make_process(name: str, field, cfg: Config):
    """The process ``name`` on the field's shape and basis. Processes that do not depend on
    the data are shared between data sets of one shape (a process is a static argument of the
    compiled law: sharing it shares the compile)."""
    if name == "equal_snr":
        return processes.coloured(field.shape, field.var, basis=field.basis)
    return _shared_process(name, field.shape, field.basis, cfg.heat_fine_blur_min)


@functools.lru_cache(maxsize=None)
def _shared_process(name, shape, basis, heat_fine_blur_min):
    if name == "white":
        return processes.vp(shape, basis=basis)
    if name in ("pink", "brown", "blue"):
        return processes.coloured(shape, name, basis=basis)
    if name == "heat":
        return processes.heat_dissipation(shape, basis=basis)
    if name == "heat_fine":
        return processes.heat_dissipation(shape, basis=basis, blur_min=heat_fine_blur_min)
    if name == "blurring":
        return processes.blurring(shape, basis=basis)
    raise ValueError(name)


def grid(process, n: int) -> np.ndarray:
    return samplers.log_snr_grid(process, n)


def sampler_steps(cfg: Config, method: str) -> tuple[int, ...]:
    """``steps``, plus the step counts that hit every budget exactly, plus the spectrum's."""
    per = samplers.nfe(method, 1)
    extra = {b // per for b in cfg.budgets if b % per == 0}
    return tuple(sorted(set(cfg.steps) | extra | {cfg.spectrum_steps}))


def upper_half_mask(shape, basis) -> np.ndarray:
    f = _basis.radial_frequency(shape, basis)
    return f > f.max() / 2


# ----------------------------------------------------------------------------- compute


def evaluate(cfg: Config) -> dict:
    data = datasets(cfg)
    refs = [r for r in ("ancestral", "pf_heun") if r in cfg.samplers] or ["pf_heun"]
    res = {}
    for dname, field in data.items():
        procs = {p: make_process(p, field, cfg) for p in cfg.processes}
        rd = res[dname] = dict(field=field, processes=procs, kl={}, spectrum={}, init={},
                               early={})
        for pname, proc in procs.items():
            m0, v0 = (np.asarray(a) for a in field.marginal(proc, proc.t_min))
            rd["early"][pname] = kl(m0, v0, field.mean, field.var)
            fine = grid(proc, cfg.init_steps) if proc.schedule != "constant" else \
                np.linspace(proc.t_min, proc.T, cfg.init_steps + 1)
            rd["init"][pname] = {}
            for ref in refs:
                m, w = exact_law(ref, proc, field, fine)
                rd["init"][pname][ref] = kl(m, w, field.mean, field.var)
            rd["kl"][pname], rd["spectrum"][pname] = {}, {}
            for meth in cfg.samplers:
                ns = sampler_steps(cfg, meth)
                vals = {}
                for n in ns:
                    m, w = exact_law(meth, proc, field, grid(proc, n))
                    if n == cfg.spectrum_steps and meth in cfg.spectrum_samplers:
                        rd["spectrum"][pname][meth] = kl(m, w, field.mean, field.var,
                                                         per_coefficient=True)
                    vals[samplers.nfe(meth, n)] = kl(m, w, field.mean, field.var)
                rd["kl"][pname][meth] = vals
    return res


def best_at(rd: dict, pname: str, budget: int) -> tuple[float, str | None]:
    """Least KL over samplers at exactly ``budget`` NFE (inf if none runs at that budget)."""
    cands = [(v[budget], meth) for meth, v in rd["kl"][pname].items() if budget in v]
    finite = [c for c in cands if np.isfinite(c[0])]
    return min(finite) if finite else (math.inf, None)


def best_curve(rd: dict, pname: str) -> tuple[np.ndarray, np.ndarray]:
    nfes = sorted({b for v in rd["kl"][pname].values() for b in v})
    return np.array(nfes), np.array([best_at(rd, pname, b)[0] for b in nfes])


def _fmt(x: float) -> str:
    return "inf" if not np.isfinite(x) else f"{x:.3g}"


def winners(cfg: Config, rd: dict, budget: int, pool) -> tuple[float, str]:
    """The least best-sampler KL among the processes in ``pool`` at ``budget`` NFE, and the
    label "process (sampler)" — processes within 1e-9 relative of it are tied ("a = b")."""
    cands = [(best_at(rd, p, budget), p) for p in cfg.processes if p in pool]
    if not cands:
        return math.inf, "-"
    (v, _), _ = min(cands, key=lambda c: c[0][0])
    if not np.isfinite(v):
        return v, "none finite"
    tied = [(p, meth) for (x, meth), p in cands if abs(x - v) <= 1e-9 * abs(v)]
    meths = sorted({m for _, m in tied})
    return v, " = ".join(p for p, _ in tied) + f" ({'/'.join(meths)})"


def table_markdown(cfg: Config, res: dict) -> tuple[str, list[list[str]], dict]:
    head = ["data"] + [f"{b} NFE" for b in cfg.budgets]
    rows, best = [], {}
    for dname, rd in res.items():
        row = [dname]
        best[dname] = {}
        for b in cfg.budgets:
            v, lab = winners(cfg, rd, b, cfg.processes)
            va, laba = winners(cfg, rd, b, DATA_AGNOSTIC)
            best[dname][str(b)] = dict(best=lab, kl=v, best_agnostic=laba, kl_agnostic=va)
            cell = f"{lab}: {_fmt(v)}"
            if not abs(va - v) <= 1e-9 * abs(v):
                cell += f"; agnostic: {laba}: {_fmt(va)}"
            row.append(cell)
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines), [head] + rows, best


# ----------------------------------------------------------------------------- run


def run(cfg: Config, out_dir: Path) -> Report:
    rep = Report()

    # 0. the oracle's law against the sampler code run on samples, on a blurring process
    f0 = oracle.power_law_field((8, 8), "dft", alpha=2.0)
    p0 = processes.blurring(f0.shape, basis="dft")
    zmax, vdev, vtol = monte_carlo_agreement("pf_heun", p0, f0, grid(p0, 10), seed=cfg.seed)
    rep.check("pf_heun on blurring: samples from samplers.sample (8x8, 4000 draws, 10 steps) "
              "match the oracle law: max |z| of the means <= 5, max |var ratio - 1| <= "
              "6 sqrt(2/n)", [zmax, vdev], [5.0, vtol], zmax <= 5.0 and vdev <= vtol)

    res = evaluate(cfg)
    alphas_ge2 = [a for a in cfg.alphas if a >= 2]

    # (a) equal-SNR flatness
    if "equal_snr" in cfg.processes:
        for a in cfg.alphas:
            rd = res[f"alpha={a:g}"]
            for meth in cfg.spectrum_samplers:
                k = rd["spectrum"]["equal_snr"][meth]
                # (max - min) / max: 0 for a flat spectrum, also when every KL_k is exactly 0
                # (the ODE samplers: the prior N(0, diag lambda) is then the data law itself)
                kmax = float(k.max())
                spread = float((kmax - k.min()) / kmax) if kmax > 1e-20 else 0.0  # round-off
                if not np.isfinite(kmax):
                    spread = math.inf
                rep.check(f"(a) equal-SNR noise, alpha={a:g}, {meth} at {cfg.spectrum_steps} "
                          f"steps: per-coefficient KL is flat, (max - min)/max <= "
                          f"{cfg.flat_tol:g} (max KL_k = {kmax:.3g})",
                          spread, cfg.flat_tol, spread <= cfg.flat_tol)

    # (b) white noise errs at high frequencies
    fractions = {}
    for a in cfg.alphas:
        rd = res[f"alpha={a:g}"]
        up = upper_half_mask(rd["field"].shape, rd["field"].basis)
        for meth in cfg.spectrum_samplers:
            k = rd["spectrum"]["white"][meth]
            frac = float(k[up].sum() / k.sum())
            coef = float(up.mean())
            fractions[f"alpha={a:g}/{meth}"] = dict(kl_fraction=frac, coefficient_fraction=coef)
            if a >= 2:
                need = max(0.5, coef)
                rep.check(f"(b) white VP, alpha={a:g}, {meth} at {cfg.spectrum_steps} steps: "
                          f"fraction of the KL at radial frequency > f_max/2 exceeds 0.5 and "
                          f"the fraction of coefficients there ({coef:.3f})", frac, need,
                          frac > need)

    # (c) pink (and brown) vs white
    ratios = {}
    for a in alphas_ge2:
        rd = res[f"alpha={a:g}"]
        for colour in ("pink", "brown"):
            if colour not in cfg.processes:
                continue
            r = [best_at(rd, colour, b)[0] / best_at(rd, "white", b)[0] for b in cfg.budgets]
            ratios[f"alpha={a:g}/{colour}_over_white"] = r
            if colour == "pink":
                for b, x in zip(cfg.budgets, r):
                    rep.check(f"(c) alpha={a:g}, {b} NFE: pink noise (best sampler) has a lower "
                              f"KL than white noise (best sampler) (KL ratio pink/white)",
                              x, 1.0, x < 1)
            else:
                rep.check(f"(c) alpha={a:g}: brown noise (gamma=2, 2-D pink) beats white at "
                          f"every budget {list(cfg.budgets)} (max KL ratio brown/white)",
                          max(r), 1.0, max(r) < 1)

    # (d) heat vs white
    if "heat" in cfg.processes:
        for dname, rd in res.items():
            r = [best_at(rd, "heat", b)[0] / best_at(rd, "white", b)[0] for b in cfg.budgets]
            ratios[f"{dname}/heat_over_white"] = r
            rep.check(f"(d) {dname}: heat dissipation (IHDM parameters, best sampler) has a "
                      f"lower KL than white VP (best sampler) at every budget "
                      f"{list(cfg.budgets)} (KL ratios heat/white)", r, 1.0, max(r) < 1)
        if "heat_fine" in cfg.processes:
            for dname, rd in res.items():
                ratios[f"{dname}/heat_fine_over_white"] = [
                    best_at(rd, "heat_fine", b)[0] / best_at(rd, "white", b)[0]
                    for b in cfg.budgets]

    md, cells, best = table_markdown(cfg, res)
    rep.metrics.update(
        table_markdown=md, table=best,
        kl={d: {p: {m: {str(n): v for n, v in vals.items()} for m, vals in rd["kl"][p].items()}
                for p in cfg.processes} for d, rd in res.items()},
        best_sampler_kl={d: {p: {str(b): dict(zip(("kl", "sampler"), best_at(rd, p, b)))
                                 for b in cfg.budgets} for p in cfg.processes}
                         for d, rd in res.items()},
        initialisation_kl={d: rd["init"] for d, rd in res.items()},
        early_stopping_kl={d: rd["early"] for d, rd in res.items()},
        kl_fraction_upper_half=fractions, kl_ratios=ratios,
        radial_kl_spectrum={d: {p: {m: radial_mean(rd["spectrum"][p][m], rd["processes"][p])[1]
                                    for m in cfg.spectrum_samplers}
                                for p in cfg.processes} for d, rd in res.items()},
    )
    rep.figures += _figure_kl(cfg, res, out_dir)
    rep.figures += _figure_spectrum(cfg, res, out_dir)
    rep.figures += _figure_table(cfg, cells, out_dir)
    return rep


# ----------------------------------------------------------------------------- figures


def _figure_kl(cfg, res, out_dir):
    n = len(res)
    fig, axes = plotting.new_figure(1, n, width=3.7, height=3.6)
    for ax, (dname, rd) in zip(axes[0], res.items()):
        for p in cfg.processes:
            x, y = best_curve(rd, p)
            y = np.where(np.isfinite(y) & (y < 1e30), y, np.nan)
            c, mk = STYLE[p]
            ax.plot(x, y, color=c, marker=mk, markersize=4, linewidth=1.2, label=LABELS[p])
        for b in cfg.budgets:
            ax.axvline(b, color="0.85", linewidth=0.8, zorder=0)
        ax.set(xscale="log", yscale="log", xlabel="NFE", title=f"{dname} (d={rd['field'].size})")
        ax.grid(True, which="major", alpha=0.3)
    axes[0, 0].set_ylabel("KL(output || data), best sampler")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8,
               frameon=False)
    return plotting.save(fig, out_dir / "noise_color_kl.png")


def _figure_spectrum(cfg, res, out_dir):
    rows = len(cfg.spectrum_samplers)
    fig, axes = plotting.new_figure(rows, len(res), width=3.7, height=3.1)
    for j, (dname, rd) in enumerate(res.items()):
        for i, meth in enumerate(cfg.spectrum_samplers):
            ax = axes[i, j]
            for p in cfg.processes:
                f, y = radial_mean(rd["spectrum"][p][meth], rd["processes"][p])
                y = np.where(np.isfinite(y) & (y > 0) & (y < 1e30), y, np.nan)
                c, mk = STYLE[p]
                ax.plot(f, y, color=c, marker=mk, markersize=3, linewidth=1.1, label=LABELS[p])
            ax.set(yscale="log", title=f"{dname}, {meth}, {cfg.spectrum_steps} steps")
            ax.title.set_fontsize(9)
            ax.grid(True, which="major", alpha=0.3)
            if i == rows - 1:
                ax.set_xlabel("radial frequency (cycles/pixel)")
            if j == 0:
                ax.set_ylabel("KL per coefficient")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8,
               frameon=False)
    return plotting.save(fig, out_dir / "noise_color_spectrum.png")


def _figure_table(cfg, cells, out_dir):
    head, rows = cells[0], cells[1:]
    wrapped = [[c.replace("; agnostic: ", "\nagnostic: ") for c in r] for r in rows]
    fig, axes = plotting.new_figure(1, 1, width=1.2 + 3.3 * (len(head) - 1),
                                    height=1.0 + 0.62 * len(rows))
    ax = axes[0, 0]
    ax.axis("off")
    tab = ax.table(cellText=wrapped, colLabels=head, loc="center", cellLoc="center",
                   colWidths=[0.1] + [0.9 / (len(head) - 1)] * (len(head) - 1))
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 2.6)
    ax.set_title("least KL(output || data) at each budget: process (its best sampler): KL\n"
                 "'agnostic': the best process that uses no data statistics (white, pink, "
                 "brown, blue, blurring); 'a = b': tied", fontsize=9)
    return plotting.save(fig, out_dir / "noise_color_table.png")
