r"""Weighted least squares in Legendre polynomials: how the sample design sets the error.

    python -m experiments run wls_sampling                 # ~30 s on a 2-core CPU
    python -m experiments run wls_sampling --preset full   # adds m = 50 (minutes)

Target :math:`f` (Runge's :math:`1/(1+25x^2)` by default, Legendre coefficients decaying like
:math:`\rho^{-j}`, :math:`\rho\approx1.22`, so :math:`\|f-P_mf\|^2` stays far above round-off up
to :math:`m=50`), :math:`V_m` = polynomials of degree :math:`<m`, :math:`\mu=dx/2` on
:math:`[-1,1]`. For each :math:`m` and :math:`n` the quasi-optimality ratio
:math:`\mathbb E\|f-\hat f\|^2/\|f-P_mf\|^2` (:math:`L^2(\mu)` errors by 512-point
Gauss–Legendre) is estimated from ``draws`` Monte-Carlo draws (one fixed key) for four designs
(:mod:`opdiff.approx.sampling`):

- ``iid``: i.i.d. uniform points, plain least squares;
- ``optimal``: i.i.d. from :math:`(k_m/m)d\mu`, weights :math:`m/k_m` (Cohen–Migliorati);
- ``volume_rescaled``: a projection DPP of size :math:`m` + :math:`n-m` i.i.d. optimal points,
  weights :math:`m/k_m` (Dereziński–Warmuth–Hsu volume-rescaled sampling of the weighted
  features; that this is Nouy–Michel's generalized volume-rescaled sampling is a reading,
  tagged R in the reference notes §4.2);
- ``volume``: the same DPP + :math:`n-m` i.i.d. *uniform* points, plain least squares (volume
  sampling of :math:`\Phi` w.r.t. :math:`\mu`; same DPP key as ``volume_rescaled``).

Each draw is made once at the largest :math:`n` and fitted on its prefixes (an i.i.d. prefix is
i.i.d.; a DPP-first prefix of length :math:`\ge m` is a volume-(rescaled) draw of that size),
so the curves over :math:`n` are correlated but each point is unbiased. At :math:`n=m` the two
volume designs coincide (DPP interpolation). The DPPs come from
:func:`~opdiff.approx.sampling.projection_dpp_batch` (the law of ``vmap(projection_dpp)`` over
keys, compiled faster); i.i.d. draws are rows of one long i.i.d. sequence per law, which also
supplies the top-ups of the volume designs (``volume_rescaled(..., permute=False)`` assembled
from shared draws, so one compiled sampler serves every design).

Claims:

1. **DPP interpolation**, :math:`n=m`: :math:`\mathbb E\|f-I_Sf\|^2=(m+1)\|f-P_mf\|^2` (exact
   identity), checked within 10 % for each ``interp_ms`` with ``interp_draws`` draws. The plain
   Monte-Carlo mean of :math:`\|f-I_Sf\|^2` is heavy-tailed (a gap among the points makes the
   interpolant blow up; Hill tail index ~1.3–2, i.e. variance effectively infinite), so its
   standard error is unreliable and a fixed-key mean can miss by >30 % at m = 20 with 2·10⁴
   draws (seen for 1 of 8 seeds). The check therefore uses a Rao–Blackwellised estimator
   (:func:`~opdiff.approx.sampling.interpolation_error_rb`): the last :math:`j` HKPV points are
   integrated out exactly, :math:`Z_{m-j}=(j+1)(\|g\|^2+\|c^{(m-j)}\|^2)` with
   :math:`c^{(m-j)}` the minimum-norm fit of :math:`g=f-P_mf` on the first :math:`m-j` points,
   unbiased for the same expectation. :math:`j` = ``rb_points`` (3), at most m/5 and at least
   1. Relative standard errors at 2·10⁴ draws (Legendre/Runge): j = 1: 1.5 % (m=10), 5.6 %
   (m=20), 17 % (m=50); j = 3: 1.0 % (m=20), 1.4 % (m=50). The plain mean, the j = 1
   estimate, their standard errors and the plain tail index are reported beside it. What the
   check does not exercise (the law of the last j points) is covered by claims 5 and 6, which
   pool all points and all HKPV steps.
2. **Optimal sampling** at :math:`n^*=\lceil c\,m\ln m\rceil` (``log_factor`` c = 3): ratio
   ≤ 3. Justification: to first order :math:`\mathbb E\|f-\hat f\|^2\approx(1+m/n)\|f-P_mf\|^2`
   for optimal weights (the variance term is :math:`\frac1n\mathbb E_\rho[w^2\|\Phi\|^2g^2]=
   \frac mn\|g\|^2`), i.e. ≤ 1.21 at :math:`n^*` for m ≥ 5; 3 leaves room for the
   fluctuations of the Gram matrix. The Cohen–Migliorati theorem itself (constants R) needs
   :math:`n\gtrsim13(1+r)\,m\ln n`, well above :math:`n^*`: this is an empirical claim. (With
   c = 2 the m = 5 ratio was 5.6 at n = 17, from rare ill-conditioned draws.)
3. **Uniform i.i.d., unweighted**, at the same :math:`n^*` is worse (ratio larger, for every m):
   its Gram matrix concentrates only for :math:`n\gtrsim\sup k_m\ln m=m^2\ln m` (matrix
   Chernoff, R).
4. **Volume-rescaled** at :math:`n=2m` beats optimal i.i.d. at :math:`n=2m` (for every m): the
   DPP part alone already gives a well-posed fit, while :math:`2m` i.i.d. points are often
   nearly degenerate (Nouy–Michel: far fewer samples in practice).
5. The pooled DPP points have the one-point law :math:`(k_m/m)d\mu`: Kolmogorov–Smirnov
   :math:`\sqrt N D\le1.63` (the 1 % critical value for i.i.d. points). For one DPP draw the
   count in :math:`(-1,x]` has variance :math:`\sum\lambda_i-\sum\lambda_i^2\le
   \sum\lambda_i-(\sum\lambda_i)^2/m`, the i.i.d. value (:math:`\lambda_i` the eigenvalues of
   :math:`K` restricted to :math:`(-1,x]`), so the empirical CDF fluctuates less than for
   i.i.d. points and the threshold is conservative (pointwise exactly, for the supremum
   heuristically). The KS statistic of uniform points against the same law is reported to
   show the test's power.
6. HKPV proposal count: mean :math:`=C\,m\,H_m` (exact for correct acceptance probabilities;
   :math:`C=2` for the arcsine envelope) within 4 standard errors (exact geometric variances).

Figure ``wls_sampling.png``: ratio vs :math:`n/m` per design (log-log, one panel per m,
:math:`1+m/n` and the exact :math:`m+1` at :math:`n=m` for reference), and the histogram of
pooled DPP points against :math:`k_m/m` and its exact bin averages.
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
from opdiff.approx import bases
from opdiff.approx import sampling as S
from opdiff.theory import checks

from experiments._config import AtLeastTwo, Count, OpenUnit, Positive, Range, Seed
from experiments._report import Report

NAME = "wls_sampling"
DESCRIPTION = "Weighted LS: iid vs optimal vs projection-DPP / volume sampling, DPP (m+1) identity"
DTYPE = "float64"

BASIS = "legendre"
SAMPLERS = ("iid", "optimal", "volume_rescaled", "volume")
KS_CRITICAL_1PCT = 1.628  # Kolmogorov distribution: P(sqrt(N) D > 1.628) = 0.01 (iid, large N)


def _runge(x):
    return 1.0 / (1.0 + 25.0 * x * x)


def _exp_sin(x):
    return jnp.exp(x) * jnp.sin(3.0 * x)


TARGETS = {"runge": _runge, "exp_sin": _exp_sin}
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
    opt_ratio_bound: Positive = 3.0
    interp_ms: tuple[Count, ...] = (5, 10, 20)
    interp_draws: AtLeastTwo = 20000
    interp_rtol: OpenUnit = 0.1
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
        if not 0 < self.interp_rtol < 1:
            raise ValueError(f"interp_rtol must be in (0, 1), got {self.interp_rtol!r}")
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


def n_star(m: int, c: float) -> int:
    r""":math:`\lceil c\,m\ln m\rceil`, at least :math:`m`."""
    return max(m, math.ceil(c * m * math.log(m)))


def rb_points(cfg: Config, m: int) -> int:
    """DPP points integrated out in the checked estimator: ``rb_points``, at most m/5, >= 1."""
    return max(1, min(cfg.rb_points, m // 5))


def _hill(v: np.ndarray) -> float:
    """Hill estimate of the tail index from the top 1 % (at least 20) order statistics."""
    s = np.sort(np.asarray(v))[::-1]
    k = min(max(20, len(s) // 100), len(s) - 1)
    return float(1.0 / np.mean(np.log(s[:k] / s[k])))


def draw_dpps(cfg: Config, m: int, key) -> S.DPPSample:
    """The projection-DPP draws for ``m``, shared by the interpolation study and the sweep;
    NumPy arrays. (``projection_dpp_batch``: the law of ``vmap(projection_dpp)`` over keys,
    compiled faster.)"""
    count = max(cfg.draws if m in cfg.ms else 0, cfg.interp_draws if m in cfg.interp_ms else 0)
    dpp = S.ensure_ok(S.projection_dpp_batch(key, BASIS, m, count), f"projection_dpp (m={m})")
    return S.DPPSample(*(np.asarray(a) for a in dpp))


def sweep_part(cfg: Config, f, m: int, dpp: S.DPPSample, key) -> dict:
    ns = sorted({max(m, int(round(r * m))) for r in cfg.n_over_m}
                | {n_star(m, cfg.log_factor), 2 * m})
    n_max, D = ns[-1], cfg.draws
    k_iid, k_opt = jax.random.split(key)
    # An i.i.d. sequence cut into rows gives independent draws, so one call per law serves the
    # iid/optimal designs *and* the top-ups of the two volume designs (one compiled sampler).
    uni = np.asarray(S.iid(k_iid, BASIS, 2 * D * n_max).x).reshape(2, D, n_max)
    opt = S.ensure_ok(S.sample_optimal(k_opt, BASIS, m, 2 * D * n_max), f"optimal (m={m})")
    opt_x = np.asarray(opt.x).reshape(2, D, n_max)
    opt_w = np.asarray(opt.weights).reshape(2, D, n_max)
    # Volume designs: DPP points first, then the top-up -- volume_rescaled(..., permute=False)
    # assembled from the shared draws; every prefix of length >= m is a draw of that size.
    top = n_max - m
    dpp_x = dpp.x[:D]
    vr_x = np.concatenate([dpp_x, opt_x[1, :, :top]], axis=1)
    vr_w = np.concatenate([np.asarray(S.optimal_weights(BASIS, dpp_x, m)), opt_w[1, :, :top]],
                          axis=1)
    designs = {
        "iid": (uni[0], np.ones_like(uni[0])),
        "optimal": (opt_x[0], opt_w[0]),
        "volume_rescaled": (vr_x, vr_w),
        "volume": (np.concatenate([dpp_x, uni[1, :, :top]], axis=1), np.ones((D, n_max))),
    }
    best = S.best_error_sq(BASIS, f, m, n_quad=cfg.n_quad)
    ratio, sem = {}, {}
    for name in SAMPLERS:
        sample = S.Sample(*designs[name], np.ones(D, bool))
        # prefixes by zero weights: one compiled fit serves every n
        r = np.stack([np.asarray(S.fit_errors(BASIS, f, m, sample, n=n, n_quad=cfg.n_quad))
                      for n in ns]) / best
        ratio[name] = r.mean(axis=1)
        sem[name] = r.std(axis=1, ddof=1) / math.sqrt(D)
    return dict(m=m, ns=np.array(ns), best=best, ratio=ratio, sem=sem,
                uniform_points=uni[0, :, :m])


def interp_part(cfg: Config, f, m: int, dpp: S.DPPSample) -> dict:
    n_draws = cfg.interp_draws
    x = dpp.x[:n_draws]
    best = S.best_error_sq(BASIS, f, m, n_quad=cfg.n_quad)
    sample = S.Sample(x, np.ones_like(x), np.ones(n_draws, bool))
    plain = np.asarray(S.fit_errors(BASIS, f, m, sample, n_quad=cfg.n_quad)) / best
    rb1 = np.asarray(S.interpolation_error_rb(BASIS, f, m, x, n_quad=cfg.n_quad)) / best
    j = rb_points(cfg, m)
    rb = rb1 if j == 1 else np.asarray(
        S.interpolation_error_rb(BASIS, f, m, x, integrate=j, n_quad=cfg.n_quad)) / best
    props = dpp.proposals[:n_draws].astype(float)
    C = bases.get(BASIS).envelope_mass
    p = (m - np.arange(m)) / (C * m)  # acceptance rate of step i = 1..m
    return dict(
        m=m, best=best, x=x,
        plain=plain.mean(), plain_se=plain.std(ddof=1) / math.sqrt(n_draws),
        plain_tail_index=_hill(plain), plain_max=plain.max(),
        rb=rb.mean(), rb_se=rb.std(ddof=1) / math.sqrt(n_draws), rb_tail_index=_hill(rb),
        rb_points=j, rb1=rb1.mean(), rb1_se=rb1.std(ddof=1) / math.sqrt(n_draws),
        proposals=props.mean(), proposals_expected=S.expected_dpp_proposals(BASIS, m),
        proposals_se=math.sqrt(np.sum((1 - p) / p**2) / n_draws),
    )


def _ks(samples: list[np.ndarray], m: int) -> list[float]:
    """sqrt(N) sup |F_N - F| of each point set against the CDF of (k_m/m) dmu (one CDF call)."""
    xs = [np.sort(np.ravel(x)) for x in samples]
    F_all = np.asarray(S.optimal_cdf(BASIS, np.concatenate(xs), m))
    out, start = [], 0
    for x in xs:
        N = len(x)
        F = F_all[start:start + N]
        start += N
        i = np.arange(1, N + 1)
        out.append(float(math.sqrt(N) * max(np.max(i / N - F), np.max(F - (i - 1) / N))))
    return out


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    f = TARGETS[cfg.target]
    rep = Report()

    dpps = {m: draw_dpps(cfg, m, jax.random.fold_in(jax.random.fold_in(key, 0), m))
            for m in sorted(set(cfg.ms) | set(cfg.interp_ms))}
    sweeps = [sweep_part(cfg, f, m, dpps[m], jax.random.fold_in(jax.random.fold_in(key, 1), m))
              for m in cfg.ms]
    interps = [interp_part(cfg, f, m, dpps[m]) for m in cfg.interp_ms]

    # ---- metrics
    for sw in sweeps:
        m = sw["m"]
        rep.metrics[f"m{m}_n"] = sw["ns"]
        rep.bounds[f"m{m}_best_error_sq"] = sw["best"]
        for name in SAMPLERS:
            rep.metrics[f"m{m}_{name}_ratio"] = sw["ratio"][name]
            rep.metrics[f"m{m}_{name}_ratio_se"] = sw["sem"][name]
    for it in interps:
        m = it["m"]
        rep.metrics.update({
            f"interp_m{m}_ratio_rb": it["rb"], f"interp_m{m}_ratio_rb_se": it["rb_se"],
            f"interp_m{m}_rb_points": it["rb_points"],
            f"interp_m{m}_ratio_rb1": it["rb1"], f"interp_m{m}_ratio_rb1_se": it["rb1_se"],
            f"interp_m{m}_ratio_plain": it["plain"], f"interp_m{m}_ratio_plain_se": it["plain_se"],
            f"interp_m{m}_plain_tail_index": it["plain_tail_index"],
            f"interp_m{m}_rb_tail_index": it["rb_tail_index"],
            f"interp_m{m}_plain_max": it["plain_max"],
            f"dpp_m{m}_mean_proposals": it["proposals"],
        })
        rep.bounds[f"interp_m{m}_exact_ratio"] = m + 1
        rep.bounds[f"dpp_m{m}_expected_proposals"] = it["proposals_expected"]

    # ---- claims
    for it in interps:
        m, rel = it["m"], it["rb"] / (it["m"] + 1)
        rep.check(
            f"DPP interpolation n=m={m}: E||f-I_S f||^2/||f-P_m f||^2 = m+1 within "
            f"{cfg.interp_rtol:.0%} ({cfg.interp_draws} draws; last {it['rb_points']} point(s) "
            f"integrated out: {it['rb']:.3f} +- {it['rb_se']:.3f} SE; last one: "
            f"{it['rb1']:.3f} +- {it['rb1_se']:.3f}; plain MC {it['plain']:.3f} +- "
            f"{it['plain_se']:.3f}, tail index {it['plain_tail_index']:.2f}); measured/(m+1)",
            rel, 1.0, abs(rel - 1.0) <= cfg.interp_rtol,
        )
    at = {}
    for sw in sweeps:
        j = int(np.flatnonzero(sw["ns"] == n_star(sw["m"], cfg.log_factor))[0])
        k = int(np.flatnonzero(sw["ns"] == 2 * sw["m"])[0])
        at[sw["m"]] = {name: (sw["ratio"][name][j], sw["ratio"][name][k]) for name in SAMPLERS}
    opt = np.array([at[m]["optimal"][0] for m in cfg.ms])
    rep.metrics["nstar"] = [n_star(m, cfg.log_factor) for m in cfg.ms]
    rep.check(**checks.upper_bound(
        f"Optimal-weighted iid WLS at n = ceil({cfg.log_factor:g} m ln m): ratio <= "
        f"{cfg.opt_ratio_bound:g} (max over m = {list(cfg.ms)})",
        float(opt.max()), cfg.opt_ratio_bound))
    worse = np.array([at[m]["iid"][0] / at[m]["optimal"][0] for m in cfg.ms])
    rep.check(
        "Unweighted uniform iid at the same n has a larger ratio than optimal WLS "
        "(min over m of ratio_iid / ratio_optimal)", float(worse.min()), 1.0,
        bool(np.all(worse > 1.0)),
    )
    gain = np.array([at[m]["optimal"][1] / at[m]["volume_rescaled"][1] for m in cfg.ms])
    rep.check(
        "At n = 2m volume-rescaled (DPP + optimal top-up) beats optimal iid "
        "(min over m of ratio_optimal / ratio_volume_rescaled)", float(gain.min()), 1.0,
        bool(np.all(gain > 1.0)),
    )

    hist = next(it for it in interps if it["m"] == cfg.hist_m)
    uniform = next(sw for sw in sweeps if sw["m"] == cfg.hist_m)["uniform_points"]
    ks_dpp, ks_uniform = _ks([hist["x"], uniform], cfg.hist_m)
    from scipy import stats

    rep.metrics.update(ks_dpp_sqrtN_D=ks_dpp, ks_dpp_points=hist["x"].size,
                       ks_dpp_pvalue_if_iid=float(stats.kstwobign.sf(ks_dpp)),
                       ks_uniform_vs_rho_sqrtN_D=ks_uniform, ks_uniform_points=uniform.size)
    rep.check(
        f"Pooled projection-DPP points (m={cfg.hist_m}, {hist['x'].size} points) follow "
        "(k_m/m)dmu: KS sqrt(N)D <= 1.63 (1% level for iid, conservative for a DPP)",
        ks_dpp, KS_CRITICAL_1PCT, ks_dpp <= KS_CRITICAL_1PCT,
    )
    zs = [(it["proposals"] - it["proposals_expected"]) / it["proposals_se"] for it in interps]
    rep.metrics["dpp_proposals_z"] = zs
    rep.check(
        "HKPV mean proposals per draw = C m H_m (C=2) within 4 SE (max |z| over m)",
        float(np.max(np.abs(zs))), 4.0, bool(np.max(np.abs(zs)) <= 4.0),
    )

    # ---- figures: one panel per m (ratio vs n/m), then the DPP one-point density
    from matplotlib.ticker import FixedLocator

    labels = {"iid": "uniform iid, unweighted", "optimal": "optimal iid, weighted",
              "volume_rescaled": "DPP + optimal iid, weighted",
              "volume": "DPP + uniform iid, unweighted"}
    fig, axes = plotting.new_figure(1, len(sweeps) + 1, width=4.0)
    for ax, sw in zip(axes[0], sweeps):
        m = sw["m"]
        ax.plot([1.0], [m + 1.0], linestyle="none", marker="*", markersize=11, color="k",
                label="m + 1 (exact, DPP at n = m)", zorder=5)
        plotting.error_panel(
            ax, sw["ns"] / m, {labels[s]: sw["ratio"][s] for s in SAMPLERS},
            {"1 + m/n (first order, optimal)": 1.0 + m / sw["ns"]},
            title=f"{cfg.target}, Legendre m = {m} (clipped at 1e5)",
            xlabel="n / m", ylabel=r"$E\|f-\hat f\|^2 / \|f-P_mf\|^2$", logx=True,
        )
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(cfg.n_over_m))))
        ax.set_ylim(0.8, 1e5)
    ax = axes[0, -1]
    pts = np.ravel(hist["x"])
    edges = np.linspace(-1.0, 1.0, cfg.hist_bins + 1)
    counts, _ = np.histogram(pts, edges)
    ax.stairs(counts / (pts.size * np.diff(edges) / 2.0), edges,  # density w.r.t. mu = dx/2
              label=f"pooled DPP points ({pts.size})")
    mass = np.diff(np.asarray(S.optimal_cdf(BASIS, edges, cfg.hist_m)))
    ax.stairs(mass / (np.diff(edges) / 2.0), edges, linestyle=":", color="k",
              label=r"exact bin averages of $k_m/m$")
    xx = np.linspace(-1.0, 1.0, 801)
    ax.plot(xx, np.asarray(S.christoffel_density(BASIS, xx, cfg.hist_m)), "--",
            label=r"$k_m/m$")
    ax.set_title(f"projection-DPP one-point density, m = {cfg.hist_m}\n"
                 f"KS $\\sqrt{{N}}D$ = {ks_dpp:.2f} (uniform points: {ks_uniform:.0f})",
                 fontsize=10)
    ax.set_xlabel("x")
    ax.set_ylabel(r"density w.r.t. $\mu = dx/2$")
    ax.legend(fontsize=7)
    rep.figures += plotting.save(fig, out_dir / "wls_sampling.png")
    return rep
