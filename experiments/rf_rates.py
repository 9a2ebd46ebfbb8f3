r"""Random-feature error vs width against the Monte-Carlo, Rahimi-Recht and Barron bounds.

    python -m experiments run rf_rates                   # ~1 min on a 2-core CPU (float64)
    python -m experiments run rf_rates --preset full

Target :math:`f(x)=e^{-x^2/(2s^2)}=\mathbb E_{\omega\sim N(0,s^{-2})}[\cos\omega x]` on
:math:`B_r=[-r,r]` with :math:`\mu` uniform, integrated by Gauss-Legendre quadrature (the
fitting measure: the quadrature measure is itself a probability measure on :math:`B_r`).

1. **Monte Carlo** :math:`f_N=\frac1N\sum_k\cos(\omega_kx)`, :math:`\omega_k\sim N(0,s^{-2})`
   i.i.d., ``n_seeds`` independent draws per :math:`N`. Claims: the log-log slope of the RMS
   :math:`L^2(\mu)` error (root of the seed-mean MSE) is :math:`-1/2\pm` ``slope_tol``; the
   seed-mean MSE matches the exact :math:`\frac1N\int[(1+e^{-2x^2/s^2})/2-e^{-x^2/s^2}]d\mu`
   (:func:`opdiff.theory.approximation.monte_carlo_gaussian_mse`) within ``z_max`` standard
   errors at every :math:`N`.
2. **Rahimi-Recht (2008)**: :math:`\|f\|_p=\sup|\alpha/p|=1` (here :math:`\alpha=p`), so with
   probability :math:`\ge1-\delta` the Monte-Carlo error is at most
   :math:`(1+\sqrt{2\log(1/\delta)})/\sqrt N`
   (:func:`~opdiff.theory.approximation.monte_carlo_bound`). Claim: the fraction of draws
   within the bound is :math:`\ge1-\delta` at every :math:`N`.
3. **Least squares on the same features** (first ``n_seeds_ls`` draws; minimum-norm SVD
   solve, ``numpy.linalg.lstsq``, in the :math:`\mu`-weighted geometry). The Monte-Carlo
   coefficients :math:`1/N` are one feasible choice, so on the fitting measure the
   least-squares error is never larger.
   Claim: LS :math:`\le` MC :math:`(1+10^{-9})+10^{-13}` for every (N, draw) (round-off slack).
4. **Barron (1993)**: :math:`\|f-f_n\|_{L^2(\mu)}\le2rC_f/\sqrt n` for every probability
   measure :math:`\mu` on :math:`B_r`,
   :math:`C_f=\sqrt{2/\pi}/s` (:func:`~opdiff.theory.approximation.barron_norm_gaussian`,
   checked against :func:`~opdiff.theory.approximation.barron_norm_fft`). Barron's theorem is
   an *existence* result with **trained** inner weights; sigmoid random features
   :math:`a,b\sim U[-\lambda,\lambda]` with least-squares outputs are not covered by it, so the
   claim "bound :math:`\ge` measured (median over draws) at every :math:`n`" is an empirical
   comparison, not a test of the theorem. Measured: fitted on Gauss nodes (at least 4 per
   feature), error on a held-out uniform midpoint grid.

Figure ``rf_rates.png``: error vs :math:`N` (log-log) with the exact MC curve, both bounds and
a :math:`N^{-1/2}` reference; the spread of the MC draws; the per-draw LS/MC ratio.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import plotting
from opdiff.nets import random_features as rf
from opdiff.theory import approximation as th

from experiments._config import AtLeastTwo, Count, OpenUnit, Positive, Range, Seed
from experiments._report import Report

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
    slope_tol: Positive = 0.1
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
        if not (self.slope_tol > 0 and self.z_max > 0):
            raise ValueError("slope_tol and z_max must be > 0")
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


def gaussian(x, s):
    return np.exp(-x * x / (2.0 * s * s))


def measure(cfg: Config, n: int | None = None):
    """Gauss-Legendre nodes and probability weights of the uniform measure on [-r, r]."""
    t, w = np.polynomial.legendre.leggauss(n or cfg.n_quad)
    return cfg.radius * t, 0.5 * w


def heldout(cfg: Config):
    """A uniform grid of cell midpoints on [-r, r] (no Gauss node), equal weights."""
    m = cfg.n_heldout
    return cfg.radius * (-1.0 + (2.0 * np.arange(m) + 1.0) / m), np.full(m, 1.0 / m)


def mc_part(cfg: Config, key) -> dict:
    """Monte Carlo MSE per (N, draw) and, for the first n_seeds_ls draws, least squares.

    All frequencies come from one ``jax.random.normal`` call (disjoint column blocks per
    width, so the widths are independent); the arithmetic is host-side numpy (one-off shapes,
    which jit would compile one by one)."""
    x, w = measure(cfg)
    f = gaussian(x, cfg.s)
    sw = np.sqrt(w)
    total = int(sum(cfg.widths))
    omega_all = np.asarray(jax.random.normal(key, (cfg.n_seeds, total), jnp.float64)) / cfg.s
    edges = np.concatenate([[0], np.cumsum(cfg.widths)])
    xh, wh = heldout(cfg)
    fh = gaussian(xh, cfg.s)
    mc, ls, ls_h = [], [], []
    for i, n in enumerate(cfg.widths):
        omega = omega_all[:, edges[i]:edges[i + 1]]  # (S, N)
        chunk = max(1, int(4e6 // (n * cfg.n_quad)))
        fN = np.concatenate([np.cos(x[None, :, None] * omega[j:j + chunk, None, :]).mean(-1)
                             for j in range(0, cfg.n_seeds, chunk)])  # (S, n_quad)
        mc.append(((f[None, :] - fN) ** 2) @ w)
        errs, errs_h = [], []
        for j in range(cfg.n_seeds_ls):  # weighted least squares, minimum norm (SVD)
            A = np.cos(x[:, None] * omega[j][None, :]) * sw[:, None]
            c = np.linalg.lstsq(A, f * sw, rcond=None)[0]
            errs.append(float(np.sum((f * sw - A @ c) ** 2)))
            errs_h.append(float(wh @ (fh - np.cos(xh[:, None] * omega[j][None, :]) @ c) ** 2))
        ls.append(errs)
        ls_h.append(errs_h)
    # (W, S), (W, S_ls), (W, S_ls) squared errors
    return dict(mc=np.stack(mc), ls=np.asarray(ls), ls_heldout=np.asarray(ls_h))


def sigmoid_part(cfg: Config, key) -> dict:
    """Least-squares sigmoid random features, a,b ~ U[-lambda, lambda], fitted on Gauss nodes
    (at least 4 per feature, so never an interpolation) and measured on the held-out grid.

    One :func:`~opdiff.nets.random_features.sample_hidden` draw of all units, split into
    disjoint blocks of ``n`` per (width, draw)."""
    x, w = measure(cfg, max(cfg.n_quad, 4 * cfg.sigmoid_widths[-1]))
    f = gaussian(x, cfg.s)
    xh, wh = heldout(cfg)
    fh = gaussian(xh, cfg.s)
    sig = lambda t: 0.5 * (1.0 + np.tanh(0.5 * t))  # noqa: E731  (overflow-free sigmoid)
    sw = np.sqrt(w)
    total = cfg.n_seeds_ls * int(sum(cfg.sigmoid_widths))
    h = rf.sample_hidden(key, total, 1, bandwidth=cfg.sigmoid_bandwidth, dtype=jnp.float64)
    a_all, b_all = np.asarray(h.weights[:, 0]), np.asarray(h.biases)
    out, out_h, pos = [], [], 0
    for n in cfg.sigmoid_widths:
        errs, errs_h = [], []
        for _ in range(cfg.n_seeds_ls):
            a, b = a_all[pos:pos + n], b_all[pos:pos + n]
            pos += n
            A = sig(x[:, None] * a[None, :] - b[None, :])
            c = np.linalg.lstsq(A * sw[:, None], f * sw, rcond=None)[0]
            errs.append(float(np.sum(w * (f - A @ c) ** 2)))
            errs_h.append(float(wh @ (fh - sig(xh[:, None] * a[None, :] - b[None, :]) @ c) ** 2))
        out.append(errs)
        out_h.append(errs_h)
    return dict(mse=np.asarray(out), mse_heldout=np.asarray(out_h))  # (W_sig, S_ls) each


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    N = np.asarray(cfg.widths)
    mc = mc_part(cfg, jax.random.fold_in(key, 0))
    sg = sigmoid_part(cfg, jax.random.fold_in(key, 1))
    x, w = measure(cfg)

    # exact MC mean-square error and the two bounds
    exact = np.array([float(np.sum(w * th.monte_carlo_gaussian_mse(x, cfg.s, int(n))))
                      for n in N])
    rr = np.asarray(th.monte_carlo_bound(1.0, N, cfg.delta))
    c_f = th.barron_norm_gaussian(cfg.s, 1)
    c_f_fft = th.barron_norm_fft(lambda p: gaussian(p[..., 0], cfg.s), d=1,
                                 half_width=cfg.barron_fft_half_width, n=cfg.barron_fft_n)
    Ns = np.asarray(cfg.sigmoid_widths)
    barron = np.asarray(th.barron_bound(c_f, cfg.radius, Ns))
    barron_on_N = np.asarray(th.barron_bound(c_f, cfg.radius, N))

    mse_mean = mc["mc"].mean(axis=1)
    mse_se = mc["mc"].std(axis=1, ddof=1) / math.sqrt(cfg.n_seeds)
    rms = np.sqrt(mse_mean)
    z = (mse_mean - exact) / mse_se
    slope = th.loglog_slope(N, rms)
    mc_err = np.sqrt(mc["mc"])  # per-draw L2(mu) errors
    within_rr = (mc_err <= rr[:, None]).mean(axis=1)
    ls_err = np.sqrt(mc["ls"])
    mc_err_ls = mc_err[:, : cfg.n_seeds_ls]
    ls_ratio = ls_err / mc_err_ls
    sig_fit = np.sqrt(sg["mse"])  # on the fitting (Gauss) measure
    sig_err = np.sqrt(sg["mse_heldout"])  # held-out uniform grid: the claimed quantity
    sig_med = np.median(sig_err, axis=1)

    rep.metrics.update(
        widths=N, mc_rms=rms, mc_mse_mean=mse_mean, mc_mse_se=mse_se, mc_z_scores=z,
        mc_loglog_slope=slope, mc_median_error=np.median(mc_err, axis=1),
        mc_fraction_within_rahimi_recht=within_rr,
        ls_same_features_median_error=np.median(ls_err, axis=1),
        ls_same_features_heldout_median_error=np.median(np.sqrt(mc["ls_heldout"]), axis=1),
        ls_over_mc_max_ratio=ls_ratio.max(axis=1), ls_over_mc_median_ratio=np.median(ls_ratio, 1),
        sigmoid_widths=Ns, sigmoid_ls_heldout_median_error=sig_med,
        sigmoid_ls_heldout_max_error=sig_err.max(1),
        sigmoid_ls_fit_measure_median_error=np.median(sig_fit, axis=1),
        barron_norm_fft=c_f_fft, barron_norm_fft_rel_dev=abs(c_f_fft / c_f - 1),
    )
    rep.bounds.update(
        mc_exact_mse=exact, mc_exact_rms=np.sqrt(exact), rahimi_recht=rr, barron_norm=c_f,
        barron_bound_sigmoid_widths=barron, barron_bound_widths=barron_on_N,
    )

    rep.check(
        f"Monte-Carlo random features: log-log slope of the RMS L2(mu) error vs N is "
        f"-1/2 +- {cfg.slope_tol:g} ({cfg.n_seeds} draws per N)",
        slope, -0.5, abs(slope + 0.5) <= cfg.slope_tol,
    )
    zmax = float(np.abs(z).max())
    rep.check(
        f"Monte-Carlo mean-square error matches the exact (1/N)int[(1+e^(-2x^2/s^2))/2 - "
        f"e^(-x^2/s^2)]dmu within {cfg.z_max:g} standard errors at every N (max |z|)",
        zmax, cfg.z_max, zmax <= cfg.z_max,
    )
    frac = float(within_rr.min())
    rep.check(
        f"Rahimi-Recht: (||f||_p/sqrt N)(1+sqrt(2 log(1/delta))) >= MC error for a fraction "
        f">= 1-delta = {1 - cfg.delta:g} of draws, every N (min fraction)",
        frac, 1 - cfg.delta, frac >= 1 - cfg.delta,
    )
    gap = float(np.max(ls_err - (mc_err_ls * (1 + 1e-9) + 1e-13)))
    rep.check(
        "Least squares on the same cos features never does worse than the Monte-Carlo "
        "weights 1/N on the fitting measure, every (N, draw) (max LS/MC ratio)",
        float(ls_ratio.max()), 1.0, gap <= 0.0,
    )
    ratio_b = sig_med / barron
    rep.check(
        f"Empirical comparison (Barron's theorem covers trained inner weights, not random "
        f"features): Barron 2rC_f/sqrt(n) >= median held-out L2(uniform) error of "
        f"least-squares sigmoid random features (lambda={cfg.sigmoid_bandwidth:g}) at every n "
        f"(max measured/bound)",
        float(ratio_b.max()), 1.0, bool(np.all(ratio_b <= 1.0)),
    )

    fig, axes = plotting.new_figure(1, 2, width=5.0)
    ref = rms[0] * np.sqrt(N[0] / N)
    plotting.error_panel(
        axes[0, 0], N,
        {"Monte Carlo (RMS over draws)": rms,
         "least squares, same cos features (median)": np.maximum(np.median(ls_err, 1), 1e-17)},
        {"exact MC RMS": np.sqrt(exact),
         rf"Rahimi-Recht, $\delta={cfg.delta:g}$": rr,
         r"Barron $2rC_f/\sqrt{n}$": barron_on_N,
         r"$N^{-1/2}$": ref},
        title=rf"$e^{{-x^2/(2s^2)}}$, s={cfg.s:g}, on $[-{cfg.radius:g},{cfg.radius:g}]$",
        xlabel="features N", ylabel=r"$L^2(\mu)$ error", logx=True,
    )
    axes[0, 0].plot(Ns, np.maximum(sig_med, 1e-17), "s-", markersize=4,
                    label=rf"sigmoid RF least squares, $\lambda={cfg.sigmoid_bandwidth:g}$, "
                          "held-out (median)")
    axes[0, 0].legend(fontsize=6.5, loc="lower left")
    ax = axes[0, 1]
    lo, hi = np.quantile(mc_err, [0.05, 0.95], axis=1)
    ax.fill_between(N, lo * np.sqrt(N), hi * np.sqrt(N), alpha=0.3, label="MC draws, 5-95%")
    ax.plot(N, rms * np.sqrt(N), "o-", label=r"MC RMS $\times\sqrt{N}$")
    ax.plot(N, np.sqrt(exact * N), "--", label=r"exact $\times\sqrt{N}$")
    ax.plot(N, rr * np.sqrt(N), "--", label=r"Rahimi-Recht $\times\sqrt{N}$")
    ax.set_xscale("log")
    ax.set_xlabel("features N")
    ax.set_ylabel(r"error $\times\sqrt{N}$")
    ax.set_title("Monte-Carlo constant", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    rep.figures += plotting.save(fig, out_dir / "rf_rates.png")
    return rep
