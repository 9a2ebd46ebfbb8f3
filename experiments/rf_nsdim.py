r"""Numerical span dimension of bounded random features: saturation, Landau-Widom, precision.

    python -m experiments run rf_nsdim                   # ~1 min on a 2-core CPU (float64)
    python -m experiments run rf_nsdim --preset full

NSdim as in reference/approximation.md §3 (Liu, Yu, Yong 2024; their exact definition could not
be checked): :math:`A_{ij}=\sqrt{w_i}\,\sigma(a_jx_i-b_j)` on Gauss-Legendre nodes of
:math:`[-1,1]` (:func:`opdiff.approx.features.gauss_legendre_feature_matrix`),
:math:`\mathrm{NSdim}_\tau=\#\{k:s_k/s_1>\tau\}` (:func:`opdiff.approx.bounds.nsdim`).

1. **Saturation** (panel 1): :math:`a,b\sim U[-\lambda,\lambda]`, nested widths, ``tau``,
   ``n_draws`` draws. Bound (explicit constants): NSdim <= the Chebyshev-Bernstein bound for
   analytic activations (:func:`opdiff.approx.bounds.bernstein_nsdim_bound`, uniform in N: the
   saturation theorem), <= interior kinks + 2 for ReLU (:func:`~opdiff.approx.bounds.
   relu_rank_bound`). Finding: the growth from N_max/4 to N_max (no theorem says at which N
   the bounded count stops moving; "within 2 by N = 250" is refuted for tanh, notes/). Claim:
   NSdim(N_max) moves by <= ``saturation_tol`` when the quadrature doubles.
2. **Landau-Widom** (panel 2): :math:`\cos(\omega x-b)`, :math:`|\omega|\le\Omega`:
   :math:`|\mathrm{NSdim}_\tau-\mathrm{LW}(\Omega,\tau^2)|\le` ``lw_tol``.
3. **NSdim vs bandwidth** (panel 3, metrics only).
4. **float32 vs float64** (panel 4, :func:`opdiff.approx.features.precision_spectra`). Claim:
   counts agree within ``saturation_tol`` at :math:`\tau=10^{-4}`. Findings: the float32 error
   of the small singular values / :math:`s_1` and NSdim32 - NSdim64 at :math:`\tau=10^{-8}`
   (the reference's "float32 over-counts below eps32" is refuted for sigmoid and tanh).
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

from ._config import (
    AboveOne, AtLeastTwo, Count, NonNegInt, NonNegative, OpenUnit, Positive, Seed,
)

NAME = "rf_nsdim"
DESCRIPTION = ("Numerical span dimension of bounded random features: saturation in width, "
               "Landau-Widom for sinusoids, growth in bandwidth, float32 vs float64")
DTYPE = "float64"

ANALYTIC = bounds.BERNSTEIN_ACTIVATIONS  # sigmoid, tanh, sin, cos; and relu


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    bandwidth: Positive = 10.0
    tau: OpenUnit = 1e-8
    widths: tuple[Count, ...] = (10, 20, 50, 100, 250, 500, 1000)
    n_quad: AtLeastTwo = 1000
    activations: tuple[str, ...] = ("sigmoid", "tanh", "sin", "relu")
    saturation_tol: NonNegInt = 2
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
    n_draws: AtLeastTwo = 3  # independent feature draws for the findings' standard errors

    def __post_init__(self):
        if not self.bandwidth > 0 or not self.sweep_bandwidths or min(self.sweep_bandwidths) <= 0:
            raise ValueError("bandwidth and sweep_bandwidths must be > 0")
        if not 0 < self.tau < 1:
            raise ValueError(f"tau must be in (0, 1), got {self.tau}")
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
        bad = [a for a in self.activations if a not in ANALYTIC + ("relu",)]
        if bad or not self.activations:
            raise ValueError(f"activations must be among {ANALYTIC + ('relu',)}, got {bad}")
        if not any(a in ANALYTIC for a in self.activations):
            raise ValueError(f"activations must include one of {ANALYTIC}")
        if min(self.n_quad, self.lw_quad, self.sweep_quad) < 2 or min(
                self.lw_features, self.sweep_features, self.precision_features) < 1:
            raise ValueError("quadrature sizes must be >= 2 and feature counts >= 1")
        if self.precision_features > w[-1]:
            raise ValueError("precision_features must be <= max(widths)")
        if self.saturation_tol < 0 or self.lw_tol < 0 or self.n_draws < 2:
            raise ValueError("need saturation_tol >= 0, lw_tol >= 0, n_draws >= 2")
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
        bandwidth=3.0, widths=(10, 25, 50, 100, 200), n_quad=250, lw_bands=(20.0,), n_draws=2,
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
    q = cfg.widths.index(cfg.widths[-1] // 4)
    draw_key = lambda k, d: jax.random.fold_in(k, d) if d else k  # noqa: E731 (0: as before)
    # 1. saturation in width (nested: the first N columns of one draw), beside the bounds; draw
    # 0 at every width, draws >= 1 at N_max / 4 and N_max only
    for d in range(cfg.n_draws):
        a, b = draw(draw_key(jax.random.fold_in(key, 0), d), cfg.bandwidth, cfg.widths[-1])
        ws = cfg.widths if d == 0 else (cfg.widths[-1] // 4, cfg.widths[-1])
        for act in cfg.activations:
            c, k = features.nsdim_widths(a, b, cfg.n_quad, act, ws, cfg.tau, cfg.bandwidth)
            if d == 0:
                out[f"nsdim_{act}"], out[f"bound_{act}"] = c, k
                if act in ANALYTIC:  # ReLU's count is resolution-bound by design
                    out[f"nsdim_{act}_double_quadrature"] = bounds.nsdim(
                        matrix(a, b, 2 * cfg.n_quad, act), cfg.tau)
            i = [q, -1] if d == 0 else [0, 1]
            out.setdefault(f"growth_pair_nsdim_{act}", []).append(c[i])
            out.setdefault(f"growth_pair_bound_{act}", []).append(k[i])
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
    # 4. float32 vs float64, singular values in the matrix's own dtype, n_draws draws
    out.update(precision_taus=np.asarray(cfg.precision_taus),
               precision_features=cfg.precision_features)
    for d in range(cfg.n_draws):
        a, b = draw(draw_key(jax.random.fold_in(key, 3), d), cfg.bandwidth, cfg.precision_features)
        for act in analytic:
            p = features.precision_spectra(a, b, cfg.n_quad, act, cfg.precision_taus)
            for bits in (64, 32):
                out.setdefault(f"precision_{act}_nsdim_float{bits}_draws", []).append(
                    p[f"nsdim{bits}"])
                if d == 0:
                    out[f"precision_{act}_float{bits}_sv_ratios"] = p[f"ratios{bits}"]
            out.setdefault(f"precision_{act}_float32_small_sv_error_draws", []).append(
                p["small_sv_error"])
    out.update({k: np.asarray(v) for k, v in out.items() if k.endswith("_draws")
                or k.startswith("growth_pair_")})
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    r, w, nd, out = results, cfg.widths, cfg.n_draws, []
    q = list(w).index(w[-1] // 4)
    for act in cfg.activations:
        pn, pb = r[f"growth_pair_nsdim_{act}"], r[f"growth_pair_bound_{act}"]  # [draws, 2]
        d0 = r[f"nsdim_{act}"]
        meas = np.concatenate([d0, pn[1:].ravel()])  # draw 0 every N; others N_max/4, N_max
        kb = np.concatenate([r[f"bound_{act}"], pb[1:].ravel()])
        if act in ANALYTIC:
            dq = int(r[f"nsdim_{act}_double_quadrature"])
            out += [cl.upper_bound(
                f"{act} (analytic), lambda={cfg.bandwidth:g}, tau={cfg.tau:g}: NSdim(N) <= the "
                f"Chebyshev-Bernstein bound (Trefethen Thm 8.2 + Eckart-Young; uniform in N: "
                f"{int(kb.min())}-{int(kb.max())}) at N in {list(w)} (draw 0), N={w[q]}, "
                f"{w[-1]} ({nd} draws) (max ratio; NSdim(N={w[-1]}) {int(d0[-1])})", meas, kb),
                cl.upper_bound(
                f"{act}: NSdim(N={w[-1]}) is resolved by the quadrature: it moves by <= "
                f"{cfg.saturation_tol} from {cfg.n_quad} to {2 * cfg.n_quad} Gauss nodes "
                f"({d0[-1]} vs {dq})", abs(dq - int(d0[-1])), cfg.saturation_tol)]
        else:
            out.append(cl.upper_bound(
                f"{act} (not analytic): NSdim(N) <= #kinks inside [-1,1] + 2 (the rank of the "
                f"features on [-1,1]) at N in {list(w)} (draw 0), N={w[q]}, {w[-1]} ({nd} "
                "draws) (max ratio; no N-uniform bound)", meas, kb))
        out.append(cl.finding(
            f"{act}: NSdim growth from N={w[q]} to N={w[-1]} (lambda={cfg.bandwidth:g}, "
            f"tau={cfg.tau:g}; mean and SE over {nd} draws, draw 0: {int(d0[q])} -> "
            f"{int(d0[-1])}); no theorem fixes the N where the bounded count stops moving",
            *cl.mean_se((pn[:, 1] - pn[:, 0]).astype(float))))
    out.append(cl.upper_bound(
        f"Sinusoids cos(wx-b), |w|<=Omega on [-1,1]: NSdim_tau = Landau-Widom count at "
        f"eps=tau^2 within +-{cfg.lw_tol:g}, Omega in {list(cfg.lw_bands)}, tau in "
        f"{list(cfg.lw_taus)} (max |NSdim - LW|)",
        float(np.abs(r["lw_nsdim_minus_prediction"]).max()), cfg.lw_tol))
    taus = list(cfg.precision_taus)
    i4, i8 = taus.index(1e-4), taus.index(1e-8)
    analytic = [a for a in cfg.activations if a in ANALYTIC]
    diff = {act: r[f"precision_{act}_nsdim_float32_draws"].astype(int)
            - r[f"precision_{act}_nsdim_float64_draws"].astype(int) for act in analytic}
    out.append(cl.upper_bound(
        f"float32 and float64 NSdim agree within {cfg.saturation_tol} at tau=1e-4 "
        f"(>> the float32 singular-value error), every analytic activation, {nd} draws "
        f"(max |difference|)", max(int(np.abs(v[:, i4]).max()) for v in diff.values()),
        cfg.saturation_tol))
    for act in analytic:
        out += [cl.finding(
            f"{act}: float32 error of the small singular values, max |s32_k - s64_k| / s64_1 "
            f"over s64_k <= 1e-6 s64_1 ({nd} draws, N={cfg.precision_features}; eps32 = "
            f"1.2e-7)", *cl.mean_se(r[f"precision_{act}_float32_small_sv_error_draws"])),
            cl.finding(
            f"{act}: NSdim32 - NSdim64 at tau=1e-8 < eps32 ({nd} draws; the reference's "
            f"'float32 over-counts there' holds only where the error above exceeds 1e-8)",
            *cl.mean_se(diff[act][:, i8].astype(float)))]
    return out


def plot(results: dict, out_dir: Path) -> list[str]:
    r = results
    widths, acts = r["widths"], r["activations"]
    analytic = [a for a in acts if a in ANALYTIC]
    fig, axes = plotting.new_figure(2, 2, width=4.6)
    plotting.error_panel(
        axes[0, 0], widths, {act: r[f"nsdim_{act}"] for act in acts},
        {"N (all features independent)": widths.astype(float),
         **{f"{act}: bound (Bernstein; ReLU: kinks + 2)": r[f"bound_{act}"].astype(float)
            for act in acts}},
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
    ax.set(yscale="log", xlabel="index k", ylabel=r"$s_k/s_1$")
    ax.set_title(rf"spectrum, $\lambda={r['bandwidth']:g}$, N={r['precision_features']}",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return plotting.save(fig, Path(out_dir) / "rf_nsdim.png")
