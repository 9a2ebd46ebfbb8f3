r"""Weighted least squares in Legendre polynomials: how the sample design sets the error.

    python -m experiments run wls_sampling                 # ~30 s on a 2-core CPU
    python -m experiments run wls_sampling --preset full   # adds m = 50 (minutes)

Target :math:`f` (Runge's :math:`1/(1+25x^2)` by default), :math:`V_m` = polynomials of degree
:math:`<m`, :math:`\mu=dx/2` on :math:`[-1,1]`. For each :math:`m` and :math:`n` the
quasi-optimality ratio :math:`\mathbb E\|f-\hat f\|^2/\|f-P_mf\|^2` of four designs (uniform
i.i.d.; optimal i.i.d. from :math:`(k_m/m)d\mu` with weights :math:`m/k_m`; volume-rescaled =
projection DPP + optimal top-up; volume = DPP + uniform top-up) from ``draws`` draws
(:func:`opdiff.approx.designs.design_ratios`, samplers in :mod:`opdiff.approx.sampling`).

Claims:

1. **DPP interpolation**, :math:`n=m`: :math:`\mathbb E\|f-I_Sf\|^2=(m+1)\|f-P_mf\|^2` within
   ``interp_z`` standard errors, by the Rao-Blackwellised estimator with the last
   ``rb_points`` (at most m/5, at least 1) HKPV points integrated out
   (:func:`opdiff.approx.designs.interpolation_study`; the plain mean is heavy-tailed, its
   Hill tail index is reported beside it).
2-4. Findings (no theorem with these constants; value ± SE, :func:`designs.ratio_se`):
   **optimal sampling**'s ratio at :math:`n^*=\lceil c\,m\ln m\rceil` (max over m);
   **uniform i.i.d., unweighted** / optimal at :math:`n^*`, and optimal / **volume-rescaled**
   at :math:`n=2m` (min over m).
5. Pooled DPP points follow :math:`(k_m/m)d\mu`: KS :math:`\sqrt ND\le1.63` (1 % level for
   i.i.d. points; a projection DPP's interval counts have variance :math:`\sum\lambda_i
   (1-\lambda_i)\le mp(1-p)`, the i.i.d. one).
6. HKPV proposal count: mean :math:`=C\,m\,H_m` within 4 exact standard errors.

Figure ``wls_sampling.png``: ratio vs :math:`n/m` per design (one panel per m), and the
histogram of pooled DPP points against :math:`k_m/m`. Numbers: ``notes/random_features.md``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from opdiff import claims as cl
from opdiff import plotting
from opdiff.approx import chebyshev, designs
from opdiff.approx import sampling as S

from ._config import AtLeastTwo, Count, Positive, Range, Seed

NAME = "wls_sampling"
DESCRIPTION = "Weighted LS: iid vs optimal vs projection-DPP / volume sampling, DPP (m+1) identity"
DTYPE = "float64"

BASIS = "legendre"
KS_CRITICAL_1PCT = 1.628  # Kolmogorov distribution: P(sqrt(N) D > 1.628) = 0.01 (iid, large N)
TARGETS = {"runge": chebyshev.runge,
           "exp_sin": lambda x: jnp.exp(x) * jnp.sin(3.0 * x)}
# e^x sin 3x is entire: ||f - P_m f||^2 ~ 1e-11 at m = 10 and below round-off soon after.
_TARGET_MAX_M = {"runge": 60, "exp_sin": 12}


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    target: str = "runge"
    ms: tuple[AtLeastTwo, ...] = (5, 10, 20)
    n_over_m: tuple[Annotated[float, Range(lo=1)], ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
    draws: AtLeastTwo = 2000
    log_factor: Positive = 3.0
    interp_ms: tuple[Count, ...] = (5, 10, 20)
    interp_draws: AtLeastTwo = 20000
    interp_z: Positive = 3.0
    rb_points: Count = 3
    hist_m: Count = 10
    hist_bins: AtLeastTwo = 40
    n_quad: Annotated[int, Range(lo=64)] = 512

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {tuple(TARGETS)}, got {self.target!r}")
        if not self.ms or min(self.ms) < 2:
            raise ValueError(f"ms must be non-empty with every m >= 2, got {self.ms!r}")
        top = _TARGET_MAX_M[self.target]
        if max(self.ms + self.interp_ms) > top:
            raise ValueError(f"for target {self.target!r} every m must be <= {top} (the best "
                             f"error must stay above round-off), got {self.ms + self.interp_ms}")
        if not self.n_over_m or min(self.n_over_m) < 1.0:
            raise ValueError(f"n_over_m must be non-empty with values >= 1, got {self.n_over_m!r}")
        if self.draws < 2 or self.interp_draws < 2:
            raise ValueError(f"draws and interp_draws must be >= 2, got {self.draws}, "
                             f"{self.interp_draws}")
        if not self.log_factor > 0:
            raise ValueError(f"log_factor must be > 0, got {self.log_factor!r}")
        if not self.interp_ms or min(self.interp_ms) < 1:
            raise ValueError(
                f"interp_ms must be non-empty with every m >= 1, got {self.interp_ms!r}")
        if self.hist_m not in self.interp_ms or self.hist_m not in self.ms:
            raise ValueError(f"hist_m must be in both ms {self.ms} and interp_ms "
                             f"{self.interp_ms}, got {self.hist_m}")
        if self.rb_points < 1:
            raise ValueError(f"rb_points must be >= 1, got {self.rb_points}")
        if not self.interp_z > 0:
            raise ValueError(f"interp_z must be > 0, got {self.interp_z!r}")
        if self.hist_bins < 2 or self.n_quad < 64:
            raise ValueError(f"hist_bins must be >= 2 and n_quad >= 64, got {self.hist_bins}, "
                             f"{self.n_quad}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "draws * max(ms) ** 2 * max(n_over_m)":
                self.draws * max(self.ms) ** 2 * max(self.n_over_m),
            "interp_draws * max(interp_ms) ** 2": self.interp_draws * max(self.interp_ms) ** 2,
            "n_quad * max(ms + interp_ms)": self.n_quad * max(self.ms + self.interp_ms),
        }


PRESETS = {
    "smoke": Config(ms=(5,), n_over_m=(1.0, 2.0, 4.0), draws=200, interp_ms=(5,),
                    interp_draws=4000, hist_m=5, hist_bins=20),
    "quick": Config(),
    "full": Config(ms=(5, 10, 20, 50), n_over_m=(1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0),
                   draws=2000, interp_ms=(5, 10, 20, 50), interp_draws=30000, hist_m=20,
                   hist_bins=60),
}


def run(cfg: Config, key) -> dict:
    f = TARGETS[cfg.target]
    out = dict(target=cfg.target, ms=list(cfg.ms), interp_ms=list(cfg.interp_ms),
               n_over_m=list(cfg.n_over_m), hist_m=cfg.hist_m,
               nstar=[designs.log_oversampling(m, cfg.log_factor) for m in cfg.ms])
    uniform = hist_x = None  # the points at hist_m (uniform iid, pooled DPP)
    for m in sorted(set(cfg.ms) | set(cfg.interp_ms)):
        # projection-DPP draws shared by the sweep and the interpolation study
        count = max(cfg.draws if m in cfg.ms else 0, cfg.interp_draws if m in cfg.interp_ms else 0)
        dpp = S.ensure_ok(S.projection_dpp_batch(jax.random.fold_in(jax.random.fold_in(key, 0), m),
                                                 BASIS, m, count), f"projection_dpp (m={m})")
        dpp = S.DPPSample(*(np.asarray(a) for a in dpp))
        if m in cfg.ms:
            ns = designs.sweep_sizes(m, cfg.n_over_m, cfg.log_factor)
            sw = designs.design_ratios(jax.random.fold_in(jax.random.fold_in(key, 1), m), BASIS,
                                       f, m, dpp.x[:cfg.draws], ns, n_quad=cfg.n_quad)
            out[f"m{m}_n"], out[f"m{m}_best_error_sq"] = np.array(ns), sw["best"]
            for name in designs.DESIGNS:
                out[f"m{m}_{name}_ratio"] = sw["ratio"][name]
                out[f"m{m}_{name}_ratio_se"] = sw["sem"][name]
            if m == cfg.hist_m:
                uniform = sw["uniform_points"]
        if m in cfg.interp_ms:
            x = dpp.x[:cfg.interp_draws]
            it = designs.interpolation_study(
                BASIS, f, m, x, dpp.proposals[:cfg.interp_draws],
                integrate=max(1, min(cfg.rb_points, m // 5)), n_quad=cfg.n_quad)
            out.update({f"interp_m{m}_{k}": it[k] for k in (
                "rb_points", "plain_tail_index", "rb_tail_index", "plain_max")})
            out.update({f"interp_m{m}_ratio_{k}": it[k] for k in (
                "rb", "rb_se", "rb1", "rb1_se", "plain", "plain_se")})
            out.update({f"interp_m{m}_exact_ratio": m + 1,
                        f"dpp_m{m}_mean_proposals": it["proposals"],
                        f"dpp_m{m}_expected_proposals": it["proposals_expected"],
                        f"dpp_m{m}_proposals_z":
                            (it["proposals"] - it["proposals_expected"]) / it["proposals_se"]})
            if m == cfg.hist_m:
                hist_x = x
    ks_dpp, ks_uniform = designs.ks_statistics(BASIS, [hist_x, uniform], cfg.hist_m)
    edges = np.linspace(-1.0, 1.0, cfg.hist_bins + 1)
    xx = np.linspace(-1.0, 1.0, 801)
    out.update(
        dpp_proposals_z=[out[f"dpp_m{m}_proposals_z"] for m in cfg.interp_ms],
        ks_dpp_sqrtN_D=ks_dpp, ks_dpp_points=hist_x.size,
        ks_dpp_pvalue_if_iid=float(stats.kstwobign.sf(ks_dpp)),
        ks_uniform_vs_rho_sqrtN_D=ks_uniform, ks_uniform_points=uniform.size,
        hist_edges=edges, hist_counts=np.histogram(np.ravel(hist_x), edges)[0],
        hist_exact_mass=np.diff(np.asarray(S.optimal_cdf(BASIS, edges, cfg.hist_m))),
        density_x=xx, density=np.asarray(S.christoffel_density(BASIS, xx, cfg.hist_m)))
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    r = results
    out = []
    for m in cfg.interp_ms:
        p = f"interp_m{m}_ratio_"
        out.append(cl.within(
            f"DPP interpolation n=m={m}: E||f-I_S f||^2/||f-P_m f||^2 = m+1 within "
            f"{cfg.interp_z:g} SE ({cfg.interp_draws} draws; last "
            f"{r[f'interp_m{m}_rb_points']} point(s) integrated out: {r[p + 'rb']:.3f} +- "
            f"{r[p + 'rb_se']:.3f} SE; last one: {r[p + 'rb1']:.3f} +- {r[p + 'rb1_se']:.3f}; "
            f"plain MC {r[p + 'plain']:.3f} +- {r[p + 'plain_se']:.3f}, tail index "
            f"{r[f'interp_m{m}_plain_tail_index']:.2f})",
            r[p + "rb"], m + 1.0, atol=cfg.interp_z * r[p + "rb_se"]))
    at = {}  # (ratio, SE) at n* and at 2m, per design
    for m in cfg.ms:
        j = int(np.flatnonzero(r[f"m{m}_n"] == designs.log_oversampling(m, cfg.log_factor))[0])
        k = int(np.flatnonzero(r[f"m{m}_n"] == 2 * m)[0])
        at[m] = {d: [(r[f"m{m}_{d}_ratio"][i], r[f"m{m}_{d}_ratio_se"][i]) for i in (j, k)]
                 for d in designs.DESIGNS}
    ms = list(cfg.ms)
    worst = max(ms, key=lambda m: at[m]["optimal"][0][0])
    out.append(cl.finding(
        f"Optimal-weighted iid WLS at n = ceil({cfg.log_factor:g} m ln m): largest ratio over "
        f"m = {ms} (at m = {worst}; first order 1 + m/n; Cohen-Migliorati's guarantee is for "
        "a conditioned estimator and larger n)", *map(float, at[worst]["optimal"][0])))
    for text, num, den, i in (
            ("Unweighted uniform iid vs optimal WLS at n = ceil(c m ln m): min over m of "
             "ratio_iid / ratio_optimal (> 1: iid is worse)", "iid", "optimal", 0),
            ("At n = 2m optimal iid vs volume-rescaled (DPP + optimal top-up): min over m of "
             "ratio_optimal / ratio_volume_rescaled (> 1: the DPP design is better)",
             "optimal", "volume_rescaled", 1)):
        q = {m: at[m][num][i][0] / at[m][den][i][0] for m in ms}
        m = min(ms, key=q.get)
        out.append(cl.finding(f"{text}; at m = {m}", float(q[m]), designs.ratio_se(
            *at[m][num][i], *at[m][den][i])))
    out.append(cl.upper_bound(
        f"Pooled projection-DPP points (m={cfg.hist_m}, {r['ks_dpp_points']} points) follow "
        "(k_m/m)dmu: KS sqrt(N)D <= 1.63 (1% level for iid points; DPP interval counts "
        "fluctuate less)",
        r["ks_dpp_sqrtN_D"], KS_CRITICAL_1PCT))
    out.append(cl.upper_bound(
        "HKPV mean proposals per draw = C m H_m (C=2) within 4 SE (max |z| over m)",
        float(np.max(np.abs(r["dpp_proposals_z"]))), 4.0))
    return out


def plot(results: dict, out_dir: Path) -> list[str]:
    from matplotlib.ticker import FixedLocator

    r = results
    labels = {"iid": "uniform iid, unweighted", "optimal": "optimal iid, weighted",
              "volume_rescaled": "DPP + optimal iid, weighted",
              "volume": "DPP + uniform iid, unweighted"}
    fig, axes = plotting.new_figure(1, len(r["ms"]) + 1, width=4.0)
    for ax, m in zip(axes[0], r["ms"]):
        ns = r[f"m{m}_n"]
        ax.plot([1.0], [m + 1.0], linestyle="none", marker="*", markersize=11, color="k",
                label="m + 1 (exact, DPP at n = m)", zorder=5)
        plotting.error_panel(
            ax, ns / m, {labels[d]: r[f"m{m}_{d}_ratio"] for d in designs.DESIGNS},
            {"1 + m/n (first order, optimal)": 1.0 + m / ns},
            title=f"{r['target']}, Legendre m = {m} (clipped at 1e5)",
            xlabel="n / m", ylabel=r"$E\|f-\hat f\|^2 / \|f-P_mf\|^2$", logx=True,
        )
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(r["n_over_m"]))))
        ax.set_ylim(0.8, 1e5)
    ax = axes[0, -1]
    edges, counts, n_pts = r["hist_edges"], r["hist_counts"], r["ks_dpp_points"]
    ax.stairs(counts / (n_pts * np.diff(edges) / 2.0), edges,  # density w.r.t. mu = dx/2
              label=f"pooled DPP points ({n_pts})")
    ax.stairs(r["hist_exact_mass"] / (np.diff(edges) / 2.0), edges, linestyle=":", color="k",
              label=r"exact bin averages of $k_m/m$")
    ax.plot(r["density_x"], r["density"], "--", label=r"$k_m/m$")
    ax.set_title(f"projection-DPP one-point density, m = {r['hist_m']}\n"
                 f"KS $\\sqrt{{N}}D$ = {r['ks_dpp_sqrtN_D']:.2f} (uniform points: "
                 f"{r['ks_uniform_vs_rho_sqrtN_D']:.0f})", fontsize=10)
    ax.set_xlabel("x")
    ax.set_ylabel(r"density w.r.t. $\mu = dx/2$")
    ax.legend(fontsize=7)
    return plotting.save(fig, Path(out_dir) / "wls_sampling.png")
