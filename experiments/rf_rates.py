r"""Random-feature error vs width against the Monte-Carlo, Rahimi-Recht and Barron bounds.

    python -m experiments run rf_rates                   # ~1 min on a 2-core CPU (float64)
    python -m experiments run rf_rates --preset full

Target :math:`f(x)=e^{-x^2/(2s^2)}=\mathbb E_{\omega\sim N(0,s^{-2})}[\cos\omega x]` on
:math:`[-r,r]`, :math:`\mu` uniform, integrated by Gauss-Legendre quadrature
(:mod:`opdiff.approx.features`, bounds from :mod:`opdiff.approx.bounds`).

1. **Monte Carlo** :math:`f_N=\frac1N\sum_k\cos(\omega_kx)`, ``n_seeds`` draws per :math:`N`.
   Claims: the log-log slope of the RMS :math:`L^2(\mu)` error is :math:`-1/2` (exact: the MSE
   is :math:`c/N`) within ``slope_z`` Monte-Carlo standard errors;
   the seed-mean MSE matches the exact
   :math:`\frac1N\int[(1+e^{-2x^2/s^2})/2-e^{-x^2/s^2}]d\mu` within ``z_max`` standard errors.
2. **Rahimi-Recht (2008)**, :math:`\|f\|_p=1`: with probability :math:`\ge1-\delta` the error
   is at most :math:`(1+\sqrt{2\log(1/\delta)})/\sqrt N`. Claim: the fraction of draws within
   it is :math:`\ge1-\delta` less ``z_max`` binomial SEs at every :math:`N`.
3. **Least squares on the same features** (first ``n_seeds_ls`` draws, minimum norm, in the
   :math:`\mu`-weighted geometry): the weights :math:`1/N` are one feasible choice, so LS is
   never worse on the fitting measure (claim, with a relative round-off slack of 1e-9).
4. **Barron (1993)**: :math:`2rC_f/\sqrt n`, :math:`C_f=\sqrt{2/\pi}/s` (checked against an
   FFT estimate), is an *existence* bound for **trained** inner weights, not a theorem about
   least-squares sigmoid random features :math:`a,b\sim U[-\lambda,\lambda]`: their mean
   held-out error over the bound (largest over :math:`n`) is a finding with its SE.

Figure ``rf_rates.png``: error vs :math:`N` (log-log) with the exact MC curve, both bounds and
:math:`N^{-1/2}`; the spread of the MC draws times :math:`\sqrt N`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import claims as cl
from opdiff import plotting
from opdiff.approx import bounds, features
from opdiff.approx import random_features as rf

from ._config import AtLeastTwo, Count, OpenUnit, Positive, Range, Seed

NAME = "rf_rates"
DESCRIPTION = ("Random-feature error vs width: Monte-Carlo rate and exact constant, "
               "Rahimi-Recht and Barron bounds, least squares on the same features")
DTYPE = "float64"


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    s: Positive = 0.5  # Gaussian width
    radius: Positive = 1.0  # B_r = [-r, r]
    n_quad: Annotated[int, Range(lo=8)] = 96  # exact to round-off: |omega| < ~11 for every draw
    widths: tuple[Count, ...] = (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
    n_seeds: AtLeastTwo = 300
    n_seeds_ls: Count = 20
    delta: OpenUnit = 0.05
    slope_z: Positive = 3.0
    z_max: Positive = 4.0
    sigmoid_bandwidth: Positive = 10.0
    sigmoid_widths: tuple[Count, ...] = (2, 4, 8, 16, 32, 64, 128)
    barron_fft_n: Annotated[int, Range(lo=16)] = 2**14
    barron_fft_half_width: Positive = 40.0
    n_heldout: AtLeastTwo = 2000  # midpoint grid for the held-out L2(uniform) errors

    def __post_init__(self):
        if not (self.s > 0 and self.radius > 0 and self.sigmoid_bandwidth > 0):
            raise ValueError("s, radius and sigmoid_bandwidth must be > 0")
        for name in ("widths", "sigmoid_widths"):
            w = getattr(self, name)
            if len(w) < 2 or list(w) != sorted(set(w)) or min(w) < 1:
                raise ValueError(f"{name} must be >= 2 strictly increasing ints >= 1, got {w}")
        if self.n_quad < 8:
            raise ValueError(f"n_quad must be >= 8, got {self.n_quad}")
        if self.n_seeds < 2 or not 1 <= self.n_seeds_ls <= self.n_seeds:
            raise ValueError(f"need n_seeds >= 2 and 1 <= n_seeds_ls <= n_seeds, got "
                             f"{self.n_seeds}, {self.n_seeds_ls}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")
        if not (self.slope_z > 0 and self.z_max > 0):
            raise ValueError("slope_z and z_max must be > 0")
        if self.n_heldout < 2:
            raise ValueError(f"n_heldout must be >= 2, got {self.n_heldout}")
        if self.barron_fft_n < 16 or self.barron_fft_half_width <= 0:
            raise ValueError("barron_fft_n must be >= 16 and barron_fft_half_width > 0")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_seeds * sum(widths)": self.n_seeds * sum(self.widths),
            "max(widths) * max(n_quad, n_heldout)":
                max(self.widths) * max(self.n_quad, self.n_heldout),
            "n_seeds_ls * sum(sigmoid_widths) * max(n_quad, n_heldout)":
                self.n_seeds_ls * sum(self.sigmoid_widths) * max(self.n_quad, self.n_heldout),
            "barron_fft_n": self.barron_fft_n,
        }


PRESETS = {
    "smoke": Config(widths=(4, 16, 64, 256), n_seeds=100, n_seeds_ls=4,
                    sigmoid_widths=(2, 8, 32), n_quad=64, barron_fft_n=2**12),
    "quick": Config(),
    "full": Config(widths=tuple(2**k for k in range(2, 14)), n_seeds=2000, n_seeds_ls=50,
                   sigmoid_widths=(2, 4, 8, 16, 32, 64, 128, 256), n_quad=128),
}


def run(cfg: Config, key) -> dict:
    N, Ns = np.asarray(cfg.widths), np.asarray(cfg.sigmoid_widths)
    x, w = features.gauss_legendre_measure(cfg.n_quad, cfg.radius)
    xh, wh = features.midpoint_grid(cfg.n_heldout, cfg.radius)
    test = (xh, wh, features.gaussian(xh, cfg.s))
    fit = (x, w, features.gaussian(x, cfg.s))

    # Monte Carlo and least squares on the same cos features: one normal draw, a disjoint
    # block of columns per width (so the widths are independent)
    edges = np.concatenate([[0], np.cumsum(N)])
    omega_all = np.asarray(jax.random.normal(jax.random.fold_in(key, 0),
                                             (cfg.n_seeds, int(edges[-1])), jnp.float64)) / cfg.s
    mc, ls, ls_h = [], [], []
    for i in range(len(N)):
        omega = omega_all[:, edges[i]:edges[i + 1]]  # (S, N)
        mc.append(features.monte_carlo_mse(omega, *fit))
        e = [features.least_squares_errors(o, np.zeros_like(o), "cos", fit, test)
             for o in omega[:cfg.n_seeds_ls]]
        ls.append([v[0] for v in e])
        ls_h.append([v[1] for v in e])
    mc, ls, ls_h = np.stack(mc), np.asarray(ls), np.asarray(ls_h)  # (W, S), (W, S_ls) x2

    # least-squares sigmoid random features a, b ~ U[-lambda, lambda], fitted on Gauss nodes
    # (at least 4 per feature) and measured on the held-out grid; disjoint blocks of one draw
    xs, ws = features.gauss_legendre_measure(max(cfg.n_quad, 4 * cfg.sigmoid_widths[-1]),
                                             cfg.radius)
    h = rf.sample_hidden(jax.random.fold_in(key, 1), cfg.n_seeds_ls * int(Ns.sum()), 1,
                         bandwidth=cfg.sigmoid_bandwidth, dtype=jnp.float64)
    a_all, b_all = np.asarray(h.weights[:, 0]), np.asarray(h.biases)
    sg, pos = [], 0
    for n in cfg.sigmoid_widths:
        for _ in range(cfg.n_seeds_ls):
            sg.append(features.least_squares_errors(
                a_all[pos:pos + n], b_all[pos:pos + n], "sigmoid",
                (xs, ws, features.gaussian(xs, cfg.s)), test))
            pos += n
    sg = np.asarray(sg).reshape(len(Ns), cfg.n_seeds_ls, 2)

    exact = np.array([float(np.sum(w * bounds.monte_carlo_gaussian_mse(x, cfg.s, int(n))))
                      for n in N])
    c_f = bounds.barron_norm_gaussian(cfg.s, 1)
    c_f_fft = bounds.barron_norm_fft(lambda p: features.gaussian(p[..., 0], cfg.s), d=1,
                                     half_width=cfg.barron_fft_half_width, n=cfg.barron_fft_n)
    mse_mean, mse_se = cl.mean_se(mc, axis=1)
    rms = np.sqrt(mse_mean)
    mc_err, ls_err = np.sqrt(mc), np.sqrt(ls)  # per-draw L2(mu) errors
    rr = np.asarray(bounds.monte_carlo_bound(1.0, N, cfg.delta))
    ls_ratio = ls_err / mc_err[:, : cfg.n_seeds_ls]
    sig_fit, sig_err = np.sqrt(sg[..., 0]), np.sqrt(sg[..., 1])  # fitting / held-out measure
    return dict(
        widths=N, mc_rms=rms, mc_mse_mean=mse_mean, mc_mse_se=mse_se,
        mc_z_scores=(mse_mean - exact) / mse_se, mc_loglog_slope=cl.loglog_slope(N, rms)[0],
        mc_loglog_slope_mc_se=cl.loglog_slope_mc_se(N, rms, 0.5 * mse_se / mse_mean * rms),
        mc_median_error=np.median(mc_err, axis=1),
        mc_error_q05_q95=np.quantile(mc_err, [0.05, 0.95], axis=1),
        mc_fraction_within_rahimi_recht=(mc_err <= rr[:, None]).mean(axis=1),
        ls_same_features_median_error=np.median(ls_err, axis=1),
        ls_same_features_heldout_median_error=np.median(np.sqrt(ls_h), axis=1),
        ls_over_mc_max_ratio=ls_ratio.max(axis=1), ls_over_mc_median_ratio=np.median(ls_ratio, 1),
        sigmoid_widths=Ns, sigmoid_ls_heldout_median_error=np.median(sig_err, axis=1),
        sigmoid_ls_heldout_max_error=sig_err.max(1),
        sigmoid_ls_heldout_mean_error=cl.mean_se(sig_err, axis=1)[0],
        sigmoid_ls_heldout_mean_error_se=cl.mean_se(sig_err, axis=1)[1],
        sigmoid_ls_fit_measure_median_error=np.median(sig_fit, axis=1),
        barron_norm_fft=c_f_fft, barron_norm_fft_rel_dev=abs(c_f_fft / c_f - 1),
        mc_exact_mse=exact, mc_exact_rms=np.sqrt(exact), rahimi_recht=rr, barron_norm=c_f,
        barron_bound_sigmoid_widths=np.asarray(bounds.barron_bound(c_f, cfg.radius, Ns)),
        barron_bound_widths=np.asarray(bounds.barron_bound(c_f, cfg.radius, N)),
        s=cfg.s, radius=cfg.radius, delta=cfg.delta, sigmoid_bandwidth=cfg.sigmoid_bandwidth,
    )


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    r = results
    z_max, se = float(np.abs(r["mc_z_scores"]).max()), r["mc_loglog_slope_mc_se"]
    p = 1 - cfg.delta  # the theorem's probability; the fraction over n_seeds draws has binomial SE
    slack = cfg.z_max * float(np.sqrt(cfg.delta * p / cfg.n_seeds)) / p
    ratio, ratio_se = (np.asarray(r[k]) / np.asarray(r["barron_bound_sigmoid_widths"]) for k in
                       ("sigmoid_ls_heldout_mean_error", "sigmoid_ls_heldout_mean_error_se"))
    i = int(np.argmax(ratio))
    return [
        cl.within(
            f"Monte-Carlo random features: log-log slope of the RMS L2(mu) error vs N is "
            f"-1/2 (the MSE is exactly c/N) within {cfg.slope_z:g} Monte-Carlo SE "
            f"({r['mc_loglog_slope']:.4f} +- {se:.4f}; {cfg.n_seeds} draws per N)",
            r["mc_loglog_slope"], -0.5, atol=cfg.slope_z * se),
        cl.upper_bound(
            f"Monte-Carlo mean-square error matches the exact (1/N)int[(1+e^(-2x^2/s^2))/2 - "
            f"e^(-x^2/s^2)]dmu within {cfg.z_max:g} standard errors at every N (max |z|)",
            z_max, cfg.z_max),
        cl.lower_bound(
            f"Rahimi-Recht: (||f||_p/sqrt N)(1+sqrt(2 log(1/delta))) >= MC error with "
            f"probability >= 1-delta = {p:g}: fraction of {cfg.n_seeds} draws >= {p:g} less "
            f"{cfg.z_max:g} binomial SE, every N (min fraction)",
            float(r["mc_fraction_within_rahimi_recht"].min()), p, rtol=slack),
        cl.upper_bound(
            "Least squares on the same cos features never does worse than the Monte-Carlo "
            "weights 1/N on the fitting measure, every (N, draw) (max LS/MC ratio; round-off "
            "slack 1e-9 relative)",
            float(r["ls_over_mc_max_ratio"].max()), 1.0, rtol=1e-9),
        cl.finding(
            f"Barron's 2rC_f/sqrt(n) covers trained inner weights, not random features: the "
            f"held-out L2(uniform) error of least-squares sigmoid random features "
            f"(lambda={cfg.sigmoid_bandwidth:g}, mean over {cfg.n_seeds_ls} draws) over that "
            f"bound, at the n where the ratio is largest (n={int(r['sigmoid_widths'][i])})",
            float(ratio[i]), float(ratio_se[i])),
    ]


def plot(results: dict, out_dir: Path) -> list[str]:
    r = results
    N, Ns, rms, exact = r["widths"], r["sigmoid_widths"], r["mc_rms"], r["mc_exact_mse"]
    fig, axes = plotting.new_figure(1, 2, width=5.0)
    plotting.error_panel(
        axes[0, 0], N,
        {"Monte Carlo (RMS over draws)": rms,
         "least squares, same cos features (median)":
             np.maximum(r["ls_same_features_median_error"], 1e-17)},
        {"exact MC RMS": np.sqrt(exact),
         rf"Rahimi-Recht, $\delta={r['delta']:g}$": r["rahimi_recht"],
         r"Barron $2rC_f/\sqrt{n}$": r["barron_bound_widths"],
         r"$N^{-1/2}$": rms[0] * np.sqrt(N[0] / N)},
        title=rf"$e^{{-x^2/(2s^2)}}$, s={r['s']:g}, on $[-{r['radius']:g},{r['radius']:g}]$",
        xlabel="features N", ylabel=r"$L^2(\mu)$ error", logx=True,
    )
    axes[0, 0].plot(Ns, np.maximum(r["sigmoid_ls_heldout_median_error"], 1e-17), "s-",
                    markersize=4, label=rf"sigmoid RF least squares, "
                    rf"$\lambda={r['sigmoid_bandwidth']:g}$, held-out (median)")
    axes[0, 0].legend(fontsize=6.5, loc="lower left")
    ax = axes[0, 1]
    lo, hi = r["mc_error_q05_q95"]
    ax.fill_between(N, lo * np.sqrt(N), hi * np.sqrt(N), alpha=0.3, label="MC draws, 5-95%")
    ax.plot(N, rms * np.sqrt(N), "o-", label=r"MC RMS $\times\sqrt{N}$")
    ax.plot(N, np.sqrt(exact * N), "--", label=r"exact $\times\sqrt{N}$")
    ax.plot(N, r["rahimi_recht"] * np.sqrt(N), "--", label=r"Rahimi-Recht $\times\sqrt{N}$")
    ax.set_xscale("log")
    ax.set_xlabel("features N")
    ax.set_ylabel(r"error $\times\sqrt{N}$")
    ax.set_title("Monte-Carlo constant", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return plotting.save(fig, Path(out_dir) / "rf_rates.png")
