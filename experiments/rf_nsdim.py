r"""Numerical span dimension of bounded random features: saturation, Landau-Widom, precision.

    python -m experiments run rf_nsdim                   # ~1 min on a 2-core CPU (float64)
    python -m experiments run rf_nsdim --preset full

NSdim as in reference/approximation.md §3 (Liu, Yu, Yong 2024; their exact definition could not
be checked): :math:`A_{ij}=\sqrt{w_i}\,\sigma(a_jx_i-b_j)` on Gauss-Legendre nodes of
:math:`[-1,1]` (:func:`opdiff.approx.features.gauss_legendre_feature_matrix`),
:math:`\mathrm{NSdim}_\tau=\#\{k:s_k/s_1>\tau\}` (:func:`opdiff.approx.bounds.nsdim`).

1. **Saturation** (panel 1): :math:`a,b\sim U[-\lambda,\lambda]`, nested widths, :math:`\tau=
   10^{-8}`. Claims: for analytic activations NSdim grows by at most ``saturation_tol`` from
   :math:`N_{\max}/4` to :math:`N_{\max}` and moves by at most that when the quadrature doubles;
   for ReLU it grows by at least ``relu_growth`` times the added features.
2. **Landau-Widom** (panel 2): :math:`\cos(\omega x-b)`, :math:`|\omega|\le\Omega`. Claim:
   :math:`|\mathrm{NSdim}_\tau-\mathrm{LW}(\Omega,\tau^2)|\le` ``lw_tol``
   (:func:`opdiff.approx.bounds.landau_widom_count`, an eigenvalue threshold).
3. **NSdim vs bandwidth** (panel 3, metrics only): roughly linear in :math:`\lambda`.
4. **float32 vs float64** (panel 4), singular values in the matrix's own precision
   (:func:`opdiff.approx.features.nsdim_native`). Claims: the counts agree within
   ``saturation_tol`` at :math:`\tau=10^{-4}`; and the reference's prediction that at
   :math:`\tau=10^{-8}<\varepsilon_{32}` float32 counts rounding noise as dimension
   (NSdim32 > NSdim64). It fails for sigmoid and tanh: the rounding perturbation of smooth
   features is well below :math:`\varepsilon_{32}s_1`; the float32 floor shows at
   :math:`\tau=10^{-12}`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import claims as cl
from opdiff import plotting
from opdiff.approx import bounds, features
from opdiff.approx import random_features as rf

from experiments._config import (
    AboveOne, AtLeastTwo, Count, NonNegInt, NonNegative, OpenUnit, Positive, Seed,
)

NAME = "rf_nsdim"
DESCRIPTION = ("Numerical span dimension of bounded random features: saturation in width, "
               "Landau-Widom for sinusoids, growth in bandwidth, float32 vs float64")
DTYPE = "float64"

ANALYTIC = ("sigmoid", "tanh", "sin")


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    bandwidth: Positive = 10.0
    tau: OpenUnit = 1e-8
    widths: tuple[Count, ...] = (10, 20, 50, 100, 250, 500, 1000)
    n_quad: AtLeastTwo = 1000
    activations: tuple[str, ...] = ("sigmoid", "tanh", "sin", "relu")
    saturation_tol: NonNegInt = 2
    relu_growth: OpenUnit = 0.1
    lw_bands: tuple[AboveOne, ...] = (20.0, 50.0, 100.0)
    lw_taus: tuple[OpenUnit, ...] = (1e-4, 1e-8, 1e-12)
    lw_features: Count = 1000
    lw_quad: AtLeastTwo = 500
    lw_tol: NonNegative = 5.0
    sweep_bandwidths: tuple[Positive, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 40.0)
    sweep_features: Count = 600
    sweep_quad: AtLeastTwo = 500
    precision_taus: tuple[OpenUnit, ...] = (1e-2, 1e-4, 1e-6, 1e-8, 1e-12)
    precision_features: Count = 400

    def __post_init__(self):
        if not self.bandwidth > 0 or not self.sweep_bandwidths or min(self.sweep_bandwidths) <= 0:
            raise ValueError("bandwidth and sweep_bandwidths must be > 0")
        for name in ("tau",):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        for name in ("lw_taus", "precision_taus"):
            v = getattr(self, name)
            if not v or not all(0 < t < 1 for t in v):
                raise ValueError(f"{name} must be non-empty, each in (0, 1), got {v}")
        if 1e-4 not in self.precision_taus or 1e-8 not in self.precision_taus:
            raise ValueError("precision_taus must contain 1e-4 and 1e-8 (the float32 claims)")
        w = self.widths
        if len(w) < 2 or list(w) != sorted(set(w)) or min(w) < 1:
            raise ValueError(f"widths must be >= 2 strictly increasing ints >= 1, got {w}")
        if w[-1] % 4 or w[-1] // 4 not in w:
            raise ValueError(f"widths must contain max(widths)/4 = {w[-1] / 4}, got {w}")
        bad = [a for a in self.activations if a not in features.HOST_ACTIVATIONS]
        if bad or not self.activations:
            raise ValueError(f"activations must be among {sorted(features.HOST_ACTIVATIONS)}, "
                             f"got {bad}")
        if not any(a in ANALYTIC for a in self.activations):
            raise ValueError(f"activations must include one of {ANALYTIC}")
        if min(self.n_quad, self.lw_quad, self.sweep_quad) < 2:
            raise ValueError("quadrature sizes must be >= 2")
        if min(self.lw_features, self.sweep_features, self.precision_features) < 1:
            raise ValueError("feature counts must be >= 1")
        if self.precision_features > w[-1]:
            raise ValueError("precision_features must be <= max(widths)")
        if self.saturation_tol < 0 or not 0 < self.relu_growth < 1 or self.lw_tol < 0:
            raise ValueError("need saturation_tol >= 0, 0 < relu_growth < 1, lw_tol >= 0")
        if not self.lw_bands or min(self.lw_bands) <= 1:
            raise ValueError(f"lw_bands must be > 1 (Landau-Widom needs ln c > 0), got "
                             f"{self.lw_bands}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "2 * n_quad * max(widths)": 2 * self.n_quad * max(self.widths),
            "lw_quad * lw_features": self.lw_quad * self.lw_features,
            "sweep_quad * sweep_features": self.sweep_quad * self.sweep_features,
            "n_quad * precision_features": self.n_quad * self.precision_features,
        }


PRESETS = {
    "smoke": Config(
        bandwidth=3.0, widths=(10, 25, 50, 100, 200), n_quad=250, lw_bands=(20.0,),
        lw_taus=(1e-4, 1e-8), lw_features=200, lw_quad=150, sweep_bandwidths=(2.0, 4.0, 8.0),
        sweep_features=150, sweep_quad=150, precision_features=100,
    ),
    "quick": Config(),
    "full": Config(
        widths=(10, 20, 50, 100, 250, 500, 1000, 2000, 4000), n_quad=3000,
        lw_bands=(10.0, 20.0, 50.0, 100.0, 200.0), lw_taus=(1e-4, 1e-6, 1e-8, 1e-10, 1e-12),
        lw_features=3000, lw_quad=1500,
        sweep_bandwidths=(1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0),
        sweep_features=3000, sweep_quad=2000, precision_features=1000,
    ),
}


def run(cfg: Config, key) -> dict:
    n_all = max(cfg.widths[-1], cfg.lw_features, cfg.sweep_features, cfg.precision_features)

    def draw(k, bandwidth, n, bias="box"):  # leading n units of one draw of n_all (one shape)
        h = rf.sample_hidden(k, n_all, 1, bandwidth=jnp.float64(bandwidth), bias=bias,
                             dtype=jnp.float64)
        return np.asarray(h.weights[:n, 0]), np.asarray(h.biases[:n])

    matrix = features.gauss_legendre_feature_matrix
    analytic = [a for a in cfg.activations if a in ANALYTIC]
    out = dict(widths=np.asarray(cfg.widths), bandwidth=cfg.bandwidth, tau=cfg.tau,
               n_quad=cfg.n_quad, activations=list(cfg.activations))
    # 1. saturation in width (nested: the first N columns of one draw)
    a, b = draw(jax.random.fold_in(key, 0), cfg.bandwidth, cfg.widths[-1])
    for act in cfg.activations:
        A = matrix(a, b, cfg.n_quad, act)
        out[f"nsdim_{act}"] = np.array([bounds.nsdim(A[:, :n], cfg.tau) for n in cfg.widths])
        if act in ANALYTIC:  # ReLU's count is resolution-bound by design
            out[f"nsdim_{act}_double_quadrature"] = bounds.nsdim(
                matrix(a, b, 2 * cfg.n_quad, act), cfg.tau)
    # 2. Landau-Widom for sinusoids cos(w x - b), |w| <= Omega, b ~ U[0, 2 pi)
    taus = np.asarray(cfg.lw_taus)
    meas = []
    for i, om in enumerate(cfg.lw_bands):
        a, b = draw(jax.random.fold_in(jax.random.fold_in(key, 1), i), om, cfg.lw_features,
                    bias="phase")
        meas.append(bounds.nsdim(matrix(a, b, cfg.lw_quad, "cos"), taus))
    pred = np.array([bounds.landau_widom_count(om, taus ** 2) for om in cfg.lw_bands])
    out.update(lw_bands=np.asarray(cfg.lw_bands), lw_taus=taus, lw_nsdim=np.array(meas),
               landau_widom_count=pred, lw_nsdim_minus_prediction=np.array(meas) - pred)
    # 3. NSdim vs bandwidth
    lams = np.asarray(cfg.sweep_bandwidths)
    sweep = {act: [] for act in analytic}
    for i, lam in enumerate(cfg.sweep_bandwidths):
        a, b = draw(jax.random.fold_in(jax.random.fold_in(key, 2), i), lam, cfg.sweep_features)
        for act in analytic:
            sweep[act].append(bounds.nsdim(matrix(a, b, cfg.sweep_quad, act), cfg.tau))
    out.update({f"sweep_nsdim_{act}": np.asarray(v) for act, v in sweep.items()})
    out.update(sweep_bandwidths=lams, sweep_features=cfg.sweep_features, sweep_linear_slopes={
        act: float(np.polyfit(lams, v, 1)[0]) for act, v in sweep.items()} if len(lams) >= 2
        else {}, sweep_landau_widom_sin=np.array(
            [bounds.landau_widom_count(lam, cfg.tau**2) if lam > 1 else np.nan for lam in lams]))
    # 4. float32 vs float64, singular values in the matrix's own dtype
    a, b = draw(jax.random.fold_in(key, 3), cfg.bandwidth, cfg.precision_features)
    out.update(precision_taus=np.asarray(cfg.precision_taus),
               precision_features=cfg.precision_features)
    for act in analytic:
        for bits, dtype in ((64, np.float64), (32, np.float32)):
            d, s = features.nsdim_native(matrix(a, b, cfg.n_quad, act, dtype), cfg.precision_taus)
            out[f"precision_{act}_nsdim_float{bits}"] = d
            out[f"precision_{act}_float{bits}_sv_ratios"] = s
            out[f"precision_{act}_float{bits}_min_sv_ratio"] = float(s[-1])
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    r, w = results, cfg.widths
    q = list(w).index(w[-1] // 4)
    out = []
    for act in cfg.activations:
        d = r[f"nsdim_{act}"]
        growth = int(d[-1] - d[q])
        if act in ANALYTIC:
            dq = int(r[f"nsdim_{act}_double_quadrature"])
            out += [cl.upper_bound(
                f"{act} (analytic), lambda={cfg.bandwidth:g}, tau={cfg.tau:g}: NSdim saturates, "
                f"NSdim(N={w[-1]}) - NSdim(N={w[q]}) <= {cfg.saturation_tol} "
                f"(NSdim {d[q]} -> {d[-1]})", growth, cfg.saturation_tol),
                cl.upper_bound(
                f"{act}: NSdim(N={w[-1]}) is resolved by the quadrature: it moves by <= "
                f"{cfg.saturation_tol} from {cfg.n_quad} to {2 * cfg.n_quad} Gauss nodes "
                f"({d[-1]} vs {dq})", abs(dq - int(d[-1])), cfg.saturation_tol)]
        else:
            out.append(cl.lower_bound(
                f"{act} (not analytic), lambda={cfg.bandwidth:g}: NSdim does not saturate, "
                f"NSdim(N={w[-1]}) - NSdim(N={w[q]}) >= {cfg.relu_growth:g} x added features "
                f"(NSdim {d[q]} -> {d[-1]}; {cfg.n_quad} Gauss nodes)",
                growth, cfg.relu_growth * (w[-1] - w[q])))
    out.append(cl.upper_bound(
        f"Sinusoids cos(wx-b), |w|<=Omega on [-1,1]: NSdim_tau = Landau-Widom count at "
        f"eps=tau^2 within +-{cfg.lw_tol:g}, Omega in {list(cfg.lw_bands)}, tau in "
        f"{list(cfg.lw_taus)} (max |NSdim - LW|)",
        float(np.abs(r["lw_nsdim_minus_prediction"]).max()), cfg.lw_tol))
    taus = list(cfg.precision_taus)
    i4, i8 = taus.index(1e-4), taus.index(1e-8)
    diff = {act: r[f"precision_{act}_nsdim_float32"].astype(int)
            - r[f"precision_{act}_nsdim_float64"].astype(int)
            for act in cfg.activations if act in ANALYTIC}
    out.append(cl.upper_bound(
        f"float32 and float64 NSdim agree within {cfg.saturation_tol} at tau=1e-4 "
        f"(>> eps32), every analytic activation (max |difference|)",
        max(abs(int(v[i4])) for v in diff.values()), cfg.saturation_tol))
    out.append(cl.lower_bound(  # integer counts: "excess > 0" is "excess >= 1"
        "Reference prediction: at tau=1e-8 (< eps32 ~ 1.2e-7) float32 counts rounding noise as "
        "dimension, NSdim32 > NSdim64 (>= 1 more), every analytic activation (min float32 - "
        "float64)", min(int(v[i8]) for v in diff.values()), 1))
    return out


def plot(results: dict, out_dir: Path) -> list[str]:
    r = results
    widths, acts = r["widths"], r["activations"]
    analytic = [a for a in acts if a in ANALYTIC]
    fig, axes = plotting.new_figure(2, 2, width=4.6)
    plotting.error_panel(
        axes[0, 0], widths, {act: r[f"nsdim_{act}"] for act in acts},
        {"N (all features independent)": widths.astype(float)},
        title=rf"NSdim vs width, $\lambda={r['bandwidth']:g}$, $\tau={r['tau']:g}$",
        xlabel="width N", ylabel=r"NSdim$_\tau$", logx=True,
    )
    taus = r["lw_taus"]
    plotting.error_panel(
        axes[0, 1], r["lw_bands"],
        {rf"NSdim, $\tau$={t:g}": r["lw_nsdim"][:, j] for j, t in enumerate(taus)},
        {rf"Landau-Widom, $\varepsilon=\tau^2$={t * t:g}": r["landau_widom_count"][:, j]
         for j, t in enumerate(taus)},
        title=r"sinusoids on $[-1,1]$, $|\omega|\leq\Omega$", xlabel=r"band $\Omega$ (= c)",
        ylabel="count", logy=False,
    )
    plotting.error_panel(
        axes[1, 0], r["sweep_bandwidths"], {a: r[f"sweep_nsdim_{a}"] for a in analytic},
        {r"Landau-Widom$(\lambda,\tau^2)$ (sinusoids)": r["sweep_landau_widom_sin"]},
        title=rf"NSdim vs bandwidth, N={r['sweep_features']}, $\tau={r['tau']:g}$",
        xlabel=r"$\lambda$", ylabel=r"NSdim$_\tau$", logy=False,
    )
    ax = axes[1, 1]
    for act in analytic:
        line, = ax.plot(r[f"precision_{act}_float64_sv_ratios"], label=f"{act}, float64")
        ax.plot(r[f"precision_{act}_float32_sv_ratios"], "--", color=line.get_color(),
                label=f"{act}, float32")
    for t in r["precision_taus"]:
        ax.axhline(t, color="grey", linewidth=0.5, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("index k")
    ax.set_ylabel(r"$s_k/s_1$")
    ax.set_title(rf"spectrum, $\lambda={r['bandwidth']:g}$, N={r['precision_features']}",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return plotting.save(fig, Path(out_dir) / "rf_nsdim.png")
