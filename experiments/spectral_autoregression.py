r"""Diffusion as spectral autoregression (Dieleman 2024): radially averaged power spectra of
:math:`x_t` under white-noise VP and under heat dissipation, exactly and empirically.

    python -m experiments run spectral_autoregression --preset smoke   # ~7 s
    python -m experiments run spectral_autoregression                  # quick, ~30 s, 2-core CPU
    python -m experiments run spectral_autoregression --preset full
    python -m experiments run spectral_autoregression --set fashion_root=DIR  # IDX files in DIR

**Data.** (i) real images: scikit-learn's 8×8 digits (all 1,797; only 4 radial annuli, so
their fitted exponent is a 4-point fit), and Fashion-MNIST 28×28 (14 annuli) when the Debian
package ``dataset-fashion-mnist`` is installed (:func:`opdiff.images.fashion_mnist_available`;
otherwise the metric ``fashion_mnist`` says so and it is skipped); (ii) periodic power-law
fields :math:`\mathbb E|\hat u_k|^2=P(k)=c(|k|^2+k_0^2)^{-\alpha/2}`
(:class:`~opdiff.functions.PeriodicPowerLawField`, ``field_size``\ ², unit pointwise variance).

**RAPSD** (:func:`opdiff.spectra.rapsd`): power :math:`|\mathcal Fx(k)|^2/N` per DFT mode,
averaged over integer annuli of :math:`|k|` and over the images; white noise
:math:`N(0,s^2)` has the flat RAPSD :math:`s^2`. The field's expected RAPSD is the annulus
average of :math:`NP(k)\approx Cf^{-\alpha}`, :math:`C=Nc\,n^{-\alpha}` (:math:`f=|k|/n`
cycles/pixel, :math:`k_0` negligible; the first two annuli average 30 % / 17 % below the
continuum law: few lattice modes there).

**Processes**, both diagonal in the DFT (Hartley) basis, so mode by mode
:math:`\mathbb E|\mathcal Fx_t(k)|^2/N=a_t(k)^2|\mathcal Fx_0(k)|^2/N+s_t(k)^2` and the
expected RAPSD of :math:`x_t` given the clean images is exact:

- white-noise VP (``processes.vp(shape, basis="dft")``): :math:`a_t,s_t` scalars, so
  :math:`\mathbb E\,R[x_t](f)=a_t^2R[x_0](f)+s_t^2`: the clean spectrum scaled, over a flat
  floor that rises with t. The per-frequency SNR is :math:`a_t^2R[x_0](f)/s_t^2`; for a
  decaying spectrum the detectable band is :math:`f<f^*(t)`, with :math:`a_t^2R[x_0](f^*)=s_t^2`;
  for the power law :math:`f^*(t)=(Ca_t^2/s_t^2)^{1/\alpha}`. Noise is a low-pass filter whose
  cut-off falls as t grows.
- heat dissipation, periodic (``processes.heat_dissipation(shape, basis="dft")``: IHDM's
  schedule, :math:`\sigma_B` log-spaced from 0.5 px to the image side, constant noise
  :math:`\sigma=0.01`): :math:`a_t(k)=e^{-\lambda_k\tau(t)}`, :math:`\lambda_k=|\kappa_k|^2=
  (2\pi f)^2`, so :math:`\mathbb E\,R[x_t]=` annulus average of
  :math:`e^{-2\lambda_k\tau}|\mathcal Fx_0(k)|^2/N` :math:`+\sigma^2`. The cut-off is set by the
  blur, not by a rising floor: for the power law it is the root of
  :math:`e^{-2(2\pi f)^2\tau(t)}Cf^{-\alpha}=\sigma^2` (one decreasing function of
  :math:`\log f`, solved by bisection per t).

The cut-off where SNR = 1 is where the signal part of :math:`R[x_t]` equals the floor, i.e.
where :math:`R[x_t]=2s_t^2`: the empirical :math:`\hat f^*(t)` is found on the empirical RAPSD
and the expected one on the exact expectation (:func:`opdiff.spectra.snr_cutoff`, log-log
interpolation between annuli; :math:`+\infty` / 0 when the crossing is above / below the band).
Crossing the total spectrum with :math:`2s_t^2`, rather than the excess
:math:`\hat R-s_t^2` with :math:`s_t^2`, keeps the logarithm away from the near-zero (and,
empirically, noisy or negative) excess beyond the cut-off; for a power law over a flat floor
the extra interpolation error is :math:`\approx\alpha\Delta u^2/16` in :math:`\log f`
(:math:`\Delta u=\log(1+1/r)`: 1.3 % at the third annulus). One noise draw per image,
``times`` uniform on each process's :math:`[t_{\min},T]`.

**Claims** (each can fail):

1. per process, the empirical mean RAPSD of :math:`x_t` equals the exact expectation above:
   :math:`D_i=R[x_t^i]-\mathbb E[R[x_t^i]\mid x_0^i]` is a mean-zero i.i.d. variable per image,
   so :math:`z=\bar D/(\mathrm{sd}(D)/\sqrt n)`; max :math:`|z|` over annuli, times and data
   sets :math:`\le` the Bonferroni bound at family-wise level ``false_alarm``;
2. the field's fitted exponent (Dieleman's protocol: log-log, 20 log-spaced resampled
   points, least squares; :func:`opdiff.spectra.fit_spectral_exponent`) of the clean
   empirical RAPSD is within ``alpha_tol`` (0.3) of the true :math:`\alpha`;
3. (when installed) Fashion-MNIST's fitted exponent lies in [1, 4] (natural images: ~2;
   Dieleman measured 2.454 on Imagenette). Digits' exponent is reported only;
4. per process and data set, :math:`\hat f^*(t)` is non-increasing in t (ordering
   :math:`+\infty>f>0`);
5. per process, for the field: :math:`\hat f^*(t)` matches the closed form at every t whose
   closed-form cut-off lies in the band from the third annulus to Nyquist. VP: within
   ``cutoff_rtol`` = 0.1 in :math:`|\log(\hat f^*/f^*)|` (a power law crosses a flat floor
   linearly in log-log, so the interpolation is exact; what remains is the lattice: annulus
   averages from the third annulus on lie within 6 % of :math:`Cf^{-\alpha}`, i.e. 2.5 % in
   :math:`f^*`, and Monte-Carlo error). Heat: within ``cutoff_heat_annuli`` = 1 annulus
   spacing :math:`1/n`: the blurred spectrum falls like :math:`e^{-2(2\pi f)^2\tau}`, by
   orders of magnitude from one annulus to the next, so the annuli resolve the crossing only to
   their spacing.

**Figures**: ``spectral_autoregression_rapsd.png`` — RAPSD of :math:`x_t` for 6 times
(log-log, coloured by t; markers empirical, lines exact expectation, dashed the noise floor
:math:`s_t^2`), rows VP / heat, one column per data set; ``spectral_autoregression_cutoff.png``
— :math:`f^*(t)` for VP vs heat per data set (expected, empirical, closed form).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.stats

from opdiff import images, plotting, spectra
from opdiff.diffusion import processes
from opdiff.functions import PeriodicPowerLawField

from experiments._config import AtLeastTwo, Count, NonNegative, OpenUnit, Positive, Range, Seed
from experiments._report import Report

NAME = "spectral_autoregression"
DESCRIPTION = ("Diffusion as spectral autoregression: RAPSD of x_t under white VP and heat "
               "dissipation, fitted exponents, SNR = 1 cut-off f*(t) vs closed forms")
DTYPE = "float32"

PROCS = ("vp", "heat")
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
    alpha_tol: Positive = 0.3
    fashion_alpha_range: tuple[float, ...] = (1.0, 4.0)
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
        lo_hi = self.fashion_alpha_range
        if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
            raise ValueError(f"fashion_alpha_range must be (lo, hi), lo < hi, got {lo_hi}")
        if not (self.alpha_tol > 0 and self.cutoff_rtol > 0 and self.cutoff_heat_annuli > 0
                and self.fit_points >= 2):
            raise ValueError("alpha_tol, cutoff_rtol and cutoff_heat_annuli must be > 0, "
                             "fit_points >= 2")
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


def make_process(name: str, shape) -> processes.Process:
    if name == "vp":
        return processes.vp(shape, basis="dft")
    if name == "heat":
        return processes.heat_dissipation(shape, basis="dft")
    raise ValueError(name)


def power_per_mode(x: np.ndarray) -> np.ndarray:
    """:math:`|\\mathcal Fx(k)|^2/N` per image and mode, float64."""
    x = np.asarray(x, np.float64)
    return np.abs(np.fft.fft2(x)) ** 2 / (x.shape[-1] * x.shape[-2])


def sample_all(sample, x0: np.ndarray, t: float, key, chunk: int) -> np.ndarray:
    """One draw of :math:`x_t` per image through the jitted ``sample``, in fixed-size chunks
    (the last one padded), so each process and shape compiles once."""
    n = x0.shape[0]
    m = min(chunk, n)
    out = []
    for j, start in enumerate(range(0, n, m)):
        xb = x0[start:start + m]
        pad = m - xb.shape[0]
        if pad:
            xb = np.concatenate([xb, np.repeat(xb[:1], pad, axis=0)])
        x = sample(jax.random.fold_in(key, j), jnp.asarray(xb, jnp.float32), jnp.float32(t))
        out.append(np.asarray(x, np.float64)[: m - pad])
    return np.concatenate(out)


def heat_root(C: float, alpha: float, tau: float, sigma2: float) -> float:
    """The f > 0 solving :math:`e^{-2(2\\pi f)^2\\tau}Cf^{-\\alpha}=\\sigma^2` (in log f)."""
    def g(lf):  # strictly decreasing in lf = log f
        return (math.log(C) - alpha * lf - 2 * (2 * math.pi) ** 2 * tau * math.exp(2 * lf)
                - math.log(sigma2))

    return math.exp(scipy.optimize.brentq(g, -40.0, 10.0, xtol=1e-14))


def load_data(cfg: Config, key) -> tuple[dict, dict]:
    data, info = {}, {}
    digits, _ = images.load_digits()
    data["digits"] = digits[: cfg.n_digits].astype(np.float64)
    if images.fashion_mnist_available(cfg.fashion_root):
        fx, _ = images.load_fashion_mnist("train", root=cfg.fashion_root)
        data["fashion"] = fx[: cfg.n_fashion].astype(np.float64)
        info["fashion_mnist"] = (f"{data['fashion'].shape[0]} training images from "
                                 f"{cfg.fashion_root}")
    else:
        info["fashion_mnist"] = FASHION_MISSING
    field = PeriodicPowerLawField(n=(cfg.field_size, cfg.field_size), alpha=cfg.field_alpha,
                                  k0=cfg.field_k0)
    data["field"] = np.asarray(field.sample(cfg.n_field, key=key), np.float64)
    return data, dict(info, field=field)


def run(cfg: Config, out_dir: Path) -> Report:
    # rbg keys: threefry's normal takes seconds to compile on CPU, once per sampler shape
    key = jax.random.key(cfg.seed, impl="rbg")
    rep = Report()
    data, info = load_data(cfg, jax.random.fold_in(key, 0))
    field = info.pop("field")
    rep.metrics.update(info)
    n_f = cfg.field_size
    N = n_f * n_f
    # continuum power law of the field's expected RAPSD: N c (n f)^-alpha
    k_any = np.unravel_index(np.argmax(field.wavenumbers() == 1), field.shape)
    c = field.spectrum()[k_any] * (1 + cfg.field_k0**2) ** (cfg.field_alpha / 2)
    C = N * c * n_f ** (-cfg.field_alpha)
    rep.bounds["field_power_law_C"] = C

    res = {}  # (proc, dname) -> dict
    zs_all = {p: [] for p in PROCS}
    for dname, x0 in data.items():
        shape = x0.shape[1:]
        p0 = power_per_mode(x0)  # [n, H, W]
        freqs, r0_each = spectra.radial_average(p0)  # [n, bins]
        r0 = r0_each.mean(0)
        alpha_hat, intercept = spectra.fit_spectral_exponent(freqs, r0, n_points=cfg.fit_points)
        rep.metrics[f"{dname}_alpha_hat"] = alpha_hat
        rep.metrics[f"{dname}_fit_intercept"] = intercept
        rep.metrics[f"{dname}_n_images"] = x0.shape[0]
        rep.metrics[f"{dname}_freqs"] = freqs
        rep.metrics[f"{dname}_rapsd_clean"] = r0
        for ip, pname in enumerate(PROCS):
            proc = make_process(pname, shape)
            times = np.linspace(proc.t_min, proc.T, cfg.n_times)
            sample = jax.jit(proc.sample)
            k_pd = jax.random.fold_in(jax.random.fold_in(key, 1 + ip), list(data).index(dname))
            emp, expect, floor, z, f_emp, f_exp = [], [], [], [], [], []
            for i, t in enumerate(times):
                a = np.asarray(proc.scale(t), np.float64)
                s2 = np.asarray(proc.variance(t), np.float64)
                assert np.ptp(s2) == 0  # both processes have white noise
                xt = sample_all(sample, x0, float(t), jax.random.fold_in(k_pd, i), cfg.chunk)
                rt_each = spectra.radial_average(power_per_mode(xt), return_frequencies=False)
                ex_each = spectra.radial_average(p0 * a**2, return_frequencies=False) + s2.flat[0]
                d = rt_each - ex_each
                n = d.shape[0]
                z.append(d.mean(0) / (d.std(0, ddof=1) / math.sqrt(n)))
                emp.append(rt_each.mean(0))
                expect.append(ex_each.mean(0))
                floor.append(float(s2.flat[0]))
                # SNR = 1 <=> signal excess = floor <=> R[x_t] = 2 s_t^2 (see the docstring)
                f_emp.append(spectra.snr_cutoff(freqs, emp[-1], 2 * floor[-1], above=np.inf,
                                                below=0.0))
                f_exp.append(spectra.snr_cutoff(freqs, expect[-1], 2 * floor[-1], above=np.inf,
                                                below=0.0))
            r = dict(times=times, emp=np.stack(emp), expect=np.stack(expect),
                     floor=np.asarray(floor), z=np.stack(z), f_emp=np.asarray(f_emp),
                     f_exp=np.asarray(f_exp), freqs=freqs, clean=r0)
            if dname == "field":
                if pname == "vp":
                    a2 = np.array([float(np.asarray(proc.scale(t)).flat[0]) ** 2 for t in times])
                    r["f_closed"] = (C * a2 / r["floor"]) ** (1 / cfg.field_alpha)
                else:
                    taus = np.asarray([float(proc.heat_time(t)) for t in times])
                    r["f_closed"] = np.array([heat_root(C, cfg.field_alpha, tau, fl)
                                              for tau, fl in zip(taus, r["floor"])])
                    r["heat_time"] = taus
            res[pname, dname] = r
            zs_all[pname].append(r["z"].ravel())

    # ---------------------------------------------------------------- claims
    for pname in PROCS:
        zz = np.concatenate(zs_all[pname])
        bound = float(scipy.stats.norm.isf(cfg.false_alarm / (2 * zz.size)))
        zmax = float(np.abs(zz).max())
        formula = ("a_t^2 R[x0] + s_t^2" if pname == "vp"
                   else "annulus avg of e^(-2 lambda tau)|F x0|^2/N + sigma^2")
        rep.check(
            f"{PROC_LABELS[pname]}: empirical mean RAPSD of x_t = {formula} "
            f"({', '.join(data)}; {cfg.n_times} times; max |z| of {zz.size} <= Bonferroni "
            f"bound at family-wise level {cfg.false_alarm:g})",
            zmax, bound, zmax <= bound)
    a_f = rep.metrics["field_alpha_hat"]
    rep.check(
        f"power-law field {n_f}x{n_f} (alpha={cfg.field_alpha:g}, k0={cfg.field_k0:g}, "
        f"{cfg.n_field} samples): fitted exponent of the clean RAPSD (Dieleman's protocol) "
        f"within +-{cfg.alpha_tol:g} of alpha",
        a_f, [cfg.field_alpha - cfg.alpha_tol, cfg.field_alpha + cfg.alpha_tol],
        abs(a_f - cfg.field_alpha) <= cfg.alpha_tol)
    if "fashion" in data:
        a_fm = rep.metrics["fashion_alpha_hat"]
        lo, hi = cfg.fashion_alpha_range
        rep.check(f"Fashion-MNIST: fitted RAPSD exponent in [{lo:g}, {hi:g}]",
                  a_fm, [lo, hi], lo <= a_fm <= hi)
    for pname in PROCS:
        worst, where = 0.0, ""
        for dname in data:
            f = res[pname, dname]["f_emp"]
            # non-increasing with inf > f > 0: ratio of consecutive values (inf/inf, 0/0 ok)
            for i in range(len(f) - 1):
                a_, b_ = f[i], f[i + 1]
                if np.isinf(a_) or b_ == 0:
                    continue
                ratio = math.inf if (np.isinf(b_) or a_ == 0) else b_ / a_
                if ratio > worst:
                    worst, where = ratio, dname
        rep.metrics[f"{pname}_cutoff_worst_increase_data"] = where
        rep.check(
            f"{PROC_LABELS[pname]}: the empirical SNR=1 cut-off f*(t) is non-increasing in t "
            f"for every data set (max ratio f*(t_i+1)/f*(t_i) over finite pairs)",
            worst, 1.0, worst <= 1.0)
    for pname in PROCS:
        r = res[pname, "field"]
        f_lo, f_hi = 3 / n_f, r["freqs"][-1]
        inband = (r["f_closed"] >= f_lo) & (r["f_closed"] <= f_hi)
        fe, fc = r["f_emp"][inband], r["f_closed"][inband]
        if pname == "vp":
            err = np.abs(np.log(fe / fc))
            tol, unit = cfg.cutoff_rtol, "in log (max |log ratio|)"
            closed = "(C a_t^2/s_t^2)^(1/alpha)"
        else:
            err = np.abs(fe - fc) * n_f
            tol, unit = cfg.cutoff_heat_annuli, "annulus spacings 1/n (max |f - f*| n)"
            closed = "the root of e^(-2(2 pi f)^2 tau(t)) C f^-alpha = sigma^2"
        meas = float(err.max()) if err.size else math.nan
        rep.check(
            f"{PROC_LABELS[pname]}, power-law field: empirical f*(t) = {closed} within "
            f"{tol:g} {unit}, at the {int(inband.sum())} times whose cut-off lies in "
            f"[3/n, 1/2] cycles/pixel",
            meas, tol, bool(err.size) and meas <= tol)

    # ---------------------------------------------------------------- metrics
    for (pname, dname), r in res.items():
        pre = f"{pname}_{dname}"
        rep.metrics[f"{pre}_times"] = r["times"]
        rep.metrics[f"{pre}_noise_floor"] = r["floor"]
        rep.metrics[f"{pre}_cutoff_empirical"] = r["f_emp"]
        rep.metrics[f"{pre}_cutoff_expected"] = r["f_exp"]
        rep.metrics[f"{pre}_max_abs_z"] = float(np.abs(r["z"]).max())
        if "f_closed" in r:
            rep.bounds[f"{pre}_cutoff_closed_form"] = r["f_closed"]
        # per-frequency SNR a_t^2 P(f) / s_t^2 of the exact expectation, [times, annuli]
        rep.metrics[f"{pre}_snr"] = (r["expect"] - r["floor"][:, None]) / r["floor"][:, None]

    # ---------------------------------------------------------------- figures
    rep.figures += _plot_rapsd(cfg, data, res, out_dir)
    rep.figures += _plot_cutoff(cfg, data, res, out_dir)
    return rep


def _log_freq_axis(ax, f):
    """Log frequency axis with a few plain tick labels (no crowded minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    ax.set_xscale("log")
    ticks = [v for v in (0.02, 0.05, 0.1, 0.2, 0.5) if f[0] * 0.99 <= v <= f[-1] * 1.01]
    ticks = ticks if len(ticks) >= 2 else [f[0], f[-1]]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_formatter(NullFormatter())


def _plot_rapsd(cfg, data, res, out_dir) -> list[str]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    names = list(data)
    fig, axes = plotting.new_figure(len(PROCS), len(names), width=4.0, height=3.3)
    for ip, pname in enumerate(PROCS):
        for jd, dname in enumerate(names):
            ax = axes[ip, jd]
            r = res[pname, dname]
            f = r["freqs"]
            idx = np.unique(np.linspace(0, cfg.n_times - 1, cfg.n_curves).round().astype(int))
            ax.plot(f, r["clean"], "k-", lw=1.5, label="clean $x_0$")
            for i in idx:
                col = cmap(i / max(cfg.n_times - 1, 1))
                t = r["times"][i]
                ax.plot(f, r["emp"][i], "o", ms=3, color=col, label=f"t={t:.3g}")
                ax.plot(f, r["expect"][i], "-", lw=1, color=col)
                ax.axhline(r["floor"][i], color=col, ls="--", lw=0.8)
            _log_freq_axis(ax, f)
            ax.set_yscale("log")
            ax.set_xlabel("frequency (cycles/pixel)")
            ax.set_ylabel("RAPSD")
            alpha_hat = spectra.fit_spectral_exponent(f, r["clean"], n_points=cfg.fit_points)[0]
            ax.set_title(f"{PROC_LABELS[pname]}: {dname} ({len(f)} annuli, "
                         rf"$\hat\alpha$={alpha_hat:.2f})", fontsize=9)
            ax.grid(True, which="major", alpha=0.3)
            if jd == 0:  # one legend per process (its own time grid)
                ax.legend(fontsize=6, ncol=2, loc="lower left" if ip == 0 else "upper right")
    fig.suptitle("RAPSD of $x_t$: markers empirical, lines exact expectation, dashed the "
                 "noise floor $s_t^2$", fontsize=9)
    return plotting.save(fig, out_dir / "spectral_autoregression_rapsd.png")


def _plot_cutoff(cfg, data, res, out_dir) -> list[str]:
    names = list(data)
    fig, axes = plotting.new_figure(1, len(names), width=4.0, height=3.3)
    colours = {"vp": "C0", "heat": "C3"}
    for jd, dname in enumerate(names):
        ax = axes[0, jd]
        for pname in PROCS:
            r = res[pname, dname]
            fin = lambda v: np.where(np.isfinite(v) & (v > 0), v, np.nan)  # noqa: E731
            ax.plot(r["times"], fin(r["f_exp"]), "-", color=colours[pname],
                    label=f"{PROC_LABELS[pname]}: expected")
            ax.plot(r["times"], fin(r["f_emp"]), "o", ms=3.5, color=colours[pname],
                    label="empirical")
            if "f_closed" in r:
                ax.plot(r["times"], fin(r["f_closed"]), "--", color=colours[pname], lw=1,
                        label="closed form")
        f = res[PROCS[0], dname]["freqs"]
        for y in (f[0], f[-1]):
            ax.axhline(y, color="0.6", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("cut-off $f^*$ (cycles/pixel)")
        ax.set_title(f"{dname}: SNR=1 frequency (band dotted)", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=6, loc="upper right")
    return plotting.save(fig, out_dir / "spectral_autoregression_cutoff.png")
