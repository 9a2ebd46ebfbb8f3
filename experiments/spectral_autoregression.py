r"""Diffusion as spectral autoregression (Dieleman 2024): radially averaged power spectra
(RAPSD, :func:`opdiff.spectra.rapsd`) of :math:`x_t` under white-noise VP and periodic heat
dissipation, empirically and exactly (:func:`opdiff.diffusion.marginals.rapsd_z_scores`), and the
frequency :math:`f^*(t)` where the SNR falls to 1.

    python -m experiments run spectral_autoregression --preset smoke   # ~7 s
    python -m experiments run spectral_autoregression                  # quick, ~30 s, 2-core CPU
    python -m experiments run spectral_autoregression --set fashion_root=DIR  # IDX files in DIR

Data: the 8x8 digits, Fashion-MNIST when installed, and periodic power-law fields
(:class:`~opdiff.functions.PeriodicPowerLawField`) whose expected RAPSD follows
:math:`Cf^{-\alpha}` (:func:`opdiff.spectra.power_law_rapsd_constant`). Both processes are
diagonal in the DFT basis: under VP the noise is a low-pass filter whose cut-off falls as t grows
(:math:`f^*=(Ca_t^2/s_t^2)^{1/\alpha}`), under heat dissipation the blur sets it
(:func:`opdiff.spectra.power_law_cutoff`).

Claims: (1) per process the empirical mean RAPSD equals the exact expectation (max |z| under the
Bonferroni bound); (2) the field's fitted exponent (Dieleman's protocol,
:func:`opdiff.spectra.fit_spectral_exponent`) equals the same fit of the exact expected RAPSD
within its jackknife standard errors, and that fit's bias from alpha is reported (a finding: the
flattened lowest annulus reads -0.09 at 64x64); (3) Fashion-MNIST's exponent is reported with
its jackknife se (a finding; it was "in [1, 4]"); (4) the empirical cut-off is non-increasing in
t; (5) for the field it matches the closed form (VP within ``cutoff_rtol`` in log, heat within
``cutoff_heat_annuli`` annulus spacings) at the times whose cut-off lies in [3/n, 1/2].

Figures: ``spectral_autoregression_rapsd.png`` (RAPSD of x_t, markers empirical, lines exact,
dashed the floor), ``spectral_autoregression_cutoff.png`` (f*(t)). Numbers: ``notes/diffusion.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Annotated

import jax
import numpy as np

from opdiff import claims as cl
from opdiff import images, plotting, spectra
from opdiff.diffusion import marginals, processes
from opdiff.functions import PeriodicPowerLawField

from ._config import AtLeastTwo, Count, NonNegative, OpenUnit, Positive, Range, Seed

NAME = "spectral_autoregression"
DESCRIPTION = ("Diffusion as spectral autoregression: RAPSD of x_t under white VP and heat "
               "dissipation, fitted exponents, SNR = 1 cut-off f*(t) vs closed forms")
DTYPE = "float32"
PRNG = "rbg"  # the runner's key generator: threefry's normal compiles slowly on a CPU

PROCS = {"vp": functools.partial(processes.vp, basis="dft"),
         "heat": functools.partial(processes.heat_dissipation, basis="dft")}
PROC_LABELS = {"vp": "white-noise VP", "heat": "heat dissipation (periodic)"}
FASHION_MISSING = "not installed (apt-get install dataset-fashion-mnist)"


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    n_times: Annotated[int, Range(lo=3)] = 20
    n_curves: AtLeastTwo = 6
    n_digits: Annotated[int, Range(20, 1797)] = 1797
    n_fashion: Annotated[int, Range(lo=20)] = 2000
    fashion_root: str = images.FASHION_MNIST_ROOT
    field_size: Annotated[int, Range(lo=16)] = 64
    n_field: Annotated[int, Range(lo=20)] = 500
    field_alpha: Positive = 2.5
    field_k0: NonNegative = 0.1
    cutoff_rtol: Positive = 0.1
    cutoff_heat_annuli: Positive = 1.0
    false_alarm: OpenUnit = 1e-3
    fit_points: AtLeastTwo = 20
    chunk: Count = 500

    def __post_init__(self):
        if self.n_times < 3 or not 2 <= self.n_curves <= self.n_times:
            raise ValueError(f"need n_times >= 3 and 2 <= n_curves <= n_times, got "
                             f"{self.n_times}, {self.n_curves}")
        if not 20 <= self.n_digits <= 1797:
            raise ValueError(f"n_digits must be in [20, 1797], got {self.n_digits}")
        if self.n_fashion < 20 or self.n_field < 20 or self.chunk < 1:
            raise ValueError("n_fashion and n_field must be >= 20, chunk >= 1")
        if self.field_size < 16:
            raise ValueError(f"field_size must be >= 16, got {self.field_size}")
        if not (self.field_alpha > 0 and self.field_k0 >= 0):
            raise ValueError("field_alpha must be > 0 and field_k0 >= 0")
        if not (self.cutoff_rtol > 0 and self.cutoff_heat_annuli > 0 and self.fit_points >= 2):
            raise ValueError("cutoff_rtol and cutoff_heat_annuli must be > 0, fit_points >= 2")
        if not 0 < self.false_alarm < 1:
            raise ValueError(f"false_alarm must be in (0, 1), got {self.false_alarm}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_field * field_size ** 2": self.n_field * self.field_size ** 2,
            "n_fashion * 28 ** 2": self.n_fashion * 28 ** 2,
            "n_times * min(chunk, n_field) * field_size ** 2":
                self.n_times * min(self.chunk, self.n_field) * self.field_size ** 2,
        }


PRESETS = {
    "smoke": Config(n_times=8, n_digits=300, n_fashion=200, field_size=32, n_field=200,
                    chunk=300),
    "quick": Config(),
    "full": Config(n_times=40, n_fashion=10000, n_field=1000, field_size=128),
}


def run(cfg: Config, key) -> dict:
    data = {"digits": images.load_digits()[0][: cfg.n_digits].astype(np.float64)}
    fashion = FASHION_MISSING
    if images.fashion_mnist_available(cfg.fashion_root):
        data["fashion"] = images.load_fashion_mnist("train", root=cfg.fashion_root)[0][
            : cfg.n_fashion].astype(np.float64)
        fashion = f"{data['fashion'].shape[0]} training images from {cfg.fashion_root}"
    field = PeriodicPowerLawField(n=(cfg.field_size, cfg.field_size), alpha=cfg.field_alpha,
                                  k0=cfg.field_k0)
    data["field"] = np.asarray(field.sample(cfg.n_field, key=jax.random.fold_in(key, 0)),
                               np.float64)
    C = spectra.power_law_rapsd_constant(field)
    out = dict(fashion_mnist=fashion, field_power_law_C=C, field_size=cfg.field_size,
               n_times=cfg.n_times, n_curves=cfg.n_curves, fit_points=cfg.fit_points, data={})
    for idata, (dname, x0) in enumerate(data.items()):
        freqs, r_img = spectra.radial_average(spectra.power_per_mode(x0))
        r0 = r_img.mean(0)
        alpha_hat, intercept = spectra.fit_spectral_exponent(freqs, r0, n_points=cfg.fit_points)
        rd = out["data"][dname] = dict(alpha_hat=alpha_hat, fit_intercept=intercept,
                                       n_images=x0.shape[0], freqs=freqs, rapsd_clean=r0)
        if dname in ("field", "fashion"):  # alpha_hat's se; the protocol on the exact RAPSD
            rd["alpha_se"] = spectra.fit_spectral_exponent_jackknife(
                freqs, r_img, n_points=cfg.fit_points)[1]
        if dname == "field":
            rd["alpha_protocol"] = spectra.fit_spectral_exponent(
                freqs, spectra.radial_average(x0[0].size * field.spectrum())[1],
                n_points=cfg.fit_points)[0]
        for ip, (pname, make) in enumerate(PROCS.items()):
            proc = make(x0.shape[1:])
            times = np.linspace(proc.t_min, proc.T, cfg.n_times)
            k_pd = jax.random.fold_in(jax.random.fold_in(key, 1 + ip), idata)
            r = rd[pname] = marginals.rapsd_z_scores(proc, x0, times, k_pd, chunk=cfg.chunk)
            r.update(times=times, max_abs_z=float(np.abs(r["z"]).max()),
                     snr=(r["expect"] - r["floor"][:, None]) / r["floor"][:, None],
                     cutoff_max_increase=spectra.cutoff_max_increase(r["f_emp"]))
            if dname == "field" and pname == "vp":
                a2 = np.array([float(np.asarray(proc.scale(t)).flat[0]) ** 2 for t in times])
                r["f_closed"] = spectra.power_law_cutoff(C * a2, cfg.field_alpha, r["floor"])
            elif dname == "field":
                r["heat_time"] = np.asarray([float(proc.heat_time(t)) for t in times])
                r["f_closed"] = np.array([
                    spectra.power_law_cutoff(C, cfg.field_alpha, fl, heat_time=tau)
                    for tau, fl in zip(r["heat_time"], r["floor"])])
    return out


def claims(cfg: Config, r: dict) -> list[cl.Claim]:
    data, n_f, out = r["data"], cfg.field_size, []
    for pname in PROCS:
        zz = np.concatenate([data[d][pname]["z"].ravel() for d in data])
        formula = ("a_t^2 R[x0] + s_t^2" if pname == "vp"
                   else "annulus avg of e^(-2 lambda tau)|F x0|^2/N + sigma^2")
        out.append(cl.upper_bound(
            f"{PROC_LABELS[pname]}: empirical mean RAPSD of x_t = {formula} "
            f"({', '.join(data)}; {cfg.n_times} times; max |z| of {zz.size} <= Bonferroni "
            f"bound at family-wise level {cfg.false_alarm:g})",
            float(np.abs(zz).max()), marginals.bonferroni_z(zz.size, cfg.false_alarm)))
    fd, z1 = data["field"], marginals.bonferroni_z(1, cfg.false_alarm)
    out.append(cl.within(
        f"power-law field {n_f}x{n_f} (alpha={cfg.field_alpha:g}, k0={cfg.field_k0:g}, "
        f"{cfg.n_field} samples): fitted exponent of the clean RAPSD (Dieleman's protocol) = "
        f"the same fit of the exact expected RAPSD, within {z1:.3g} jackknife standard errors "
        f"(two-sided, level {cfg.false_alarm:g})",
        fd["alpha_hat"], fd["alpha_protocol"], atol=z1 * fd["alpha_se"]))
    out.append(cl.finding(
        f"the protocol's bias on the exact expected RAPSD: fitted exponent minus alpha="
        f"{cfg.field_alpha:g} at {n_f}x{n_f} (deterministic; se is alpha_hat's)",
        fd["alpha_protocol"] - cfg.field_alpha, fd["alpha_se"]))
    if "fashion" in data:  # no theorem fixes natural images' exponent: a finding
        out.append(cl.finding("Fashion-MNIST: fitted RAPSD exponent (Dieleman's protocol; "
                              "jackknife se)", data["fashion"]["alpha_hat"],
                              data["fashion"]["alpha_se"]))
    for pname in PROCS:
        out.append(cl.upper_bound(
            f"{PROC_LABELS[pname]}: the empirical SNR=1 cut-off f*(t) is non-increasing in t "
            f"for every data set (max ratio f*(t_i+1)/f*(t_i) over finite pairs)",
            max(data[d][pname]["cutoff_max_increase"] for d in data), 1.0))
    for pname in PROCS:
        rf = data["field"][pname]
        inband = (rf["f_closed"] >= 3 / n_f) & (rf["f_closed"] <= data["field"]["freqs"][-1])
        fe, fc = rf["f_emp"][inband], rf["f_closed"][inband]
        if pname == "vp":
            err = np.abs(np.log(fe / fc))
            tol, unit = cfg.cutoff_rtol, "in log (max |log ratio|)"
            closed = "(C a_t^2/s_t^2)^(1/alpha)"
        else:
            err = np.abs(fe - fc) * n_f
            tol, unit = cfg.cutoff_heat_annuli, "annulus spacings 1/n (max |f - f*| n)"
            closed = "the root of e^(-2(2 pi f)^2 tau(t)) C f^-alpha = sigma^2"
        out.append(cl.upper_bound(  # no time in the band: inf (fails)
            f"{PROC_LABELS[pname]}, power-law field: empirical f*(t) = {closed} within "
            f"{tol:g} {unit}, at the {int(inband.sum())} times whose cut-off lies in "
            f"[3/n, 1/2] cycles/pixel", float(err.max()) if err.size else math.inf, tol))
    return out


def plot(r: dict, out_dir: Path) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.ticker import FixedLocator, NullFormatter

    cmap, data, n_times = colormaps["viridis"], r["data"], r["n_times"]
    fig, axes = plotting.new_figure(len(PROCS), len(data), width=4.0, height=3.3)
    fig2, axes2 = plotting.new_figure(1, len(data), width=4.0, height=3.3)
    colours = {"vp": "C0", "heat": "C3"}
    for jd, (dname, rd) in enumerate(data.items()):
        f = rd["freqs"]
        ticks = [v for v in (0.02, 0.05, 0.1, 0.2, 0.5) if f[0] * 0.99 <= v <= f[-1] * 1.01]
        for ip, pname in enumerate(PROCS):
            ax, rp = axes[ip, jd], rd[pname]
            ax.plot(f, rd["rapsd_clean"], "k-", lw=1.5, label="clean $x_0$")
            for i in np.unique(np.linspace(0, n_times - 1, r["n_curves"]).round().astype(int)):
                col = cmap(i / max(n_times - 1, 1))
                ax.plot(f, rp["emp"][i], "o", ms=3, color=col, label=f"t={rp['times'][i]:.3g}")
                ax.plot(f, rp["expect"][i], "-", lw=1, color=col)
                ax.axhline(rp["floor"][i], color=col, ls="--", lw=0.8)
            ax.set_xscale("log")  # a few plain tick labels (no crowded minor labels)
            ax.xaxis.set_major_locator(FixedLocator(ticks if len(ticks) >= 2 else [f[0], f[-1]]))
            ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set(yscale="log", xlabel="frequency (cycles/pixel)", ylabel="RAPSD")
            ax.set_title(f"{PROC_LABELS[pname]}: {dname} ({len(f)} annuli, "
                         rf"$\hat\alpha$={rd['alpha_hat']:.2f})", fontsize=9)
            ax.grid(True, which="major", alpha=0.3)
            if jd == 0:  # one legend per process (its own time grid)
                ax.legend(fontsize=6, ncol=2, loc="lower left" if ip == 0 else "upper right")
            ax2 = axes2[0, jd]
            for key, style, lab in (("f_exp", "-", f"{PROC_LABELS[pname]}: expected"),
                                    ("f_emp", "o", "empirical"), ("f_closed", "--", "closed form")):
                if key in rp:
                    v = rp[key]
                    ax2.plot(rp["times"], np.where(np.isfinite(v) & (v > 0), v, np.nan), style,
                             color=colours[pname], ms=3.5, lw=1 if key == "f_closed" else 1.5,
                             label=lab)
        for y in (f[0], f[-1]):
            axes2[0, jd].axhline(y, color="0.6", lw=0.8, ls=":")
        axes2[0, jd].set(yscale="log", xlabel="t", ylabel="cut-off $f^*$ (cycles/pixel)")
        axes2[0, jd].set_title(f"{dname}: SNR=1 frequency (band dotted)", fontsize=9)
        axes2[0, jd].grid(True, which="major", alpha=0.3)
        axes2[0, jd].legend(fontsize=6, loc="upper right")
    fig.suptitle("RAPSD of $x_t$: markers empirical, lines exact expectation, dashed the "
                 "noise floor $s_t^2$", fontsize=9)
    return (plotting.save(fig, Path(out_dir) / "spectral_autoregression_rapsd.png")
            + plotting.save(fig2, Path(out_dir) / "spectral_autoregression_cutoff.png"))
