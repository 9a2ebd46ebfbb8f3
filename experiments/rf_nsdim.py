r"""Numerical span dimension of bounded random features: saturation, Landau-Widom, precision.

    python -m experiments run rf_nsdim                   # ~1 min on a 2-core CPU (float64)
    python -m experiments run rf_nsdim --preset full

NSdim is operationalised as in reference/approximation.md §3 (Liu, Yu, Yong 2024, whose exact
definition could not be checked): on Gauss-Legendre nodes :math:`x_i` with weights :math:`w_i` on
:math:`[-1,1]` form :math:`A_{ij}=\sqrt{w_i}\,\sigma(a_jx_i-b_j)` (an :math:`L^2`-faithful
geometry) and count :math:`\mathrm{NSdim}_\tau=\#\{k:s_k/s_1>\tau\}`
(:func:`opdiff.theory.approximation.nsdim`, a singular-value threshold).

1. **Saturation** (``rf_nsdim.png``, panel 1): :math:`a,b\sim U[-\lambda,\lambda]` at fixed
   :math:`\lambda`, nested widths :math:`N` (the first :math:`N` of one draw),
   :math:`\tau=10^{-8}`, activations sigmoid, tanh, sin and ReLU. Claims: for each analytic
   activation :math:`\mathrm{NSdim}(N_{\max})-\mathrm{NSdim}(N_{\max}/4)\le` ``saturation_tol``,
   and the count at :math:`N_{\max}` moves by at most ``saturation_tol`` when the quadrature is
   doubled; for ReLU (not analytic) it keeps growing: the increase from :math:`N_{\max}/4` to
   :math:`N_{\max}` is at least ``relu_growth`` times the number of added features (every
   ReLU with a kink inside the interval is a new direction, up to the quadrature resolution).
2. **Landau-Widom** (panel 2): :math:`\cos(\omega x-b)`, :math:`\omega\sim U[-\Omega,\Omega]`,
   :math:`b\sim U[0,2\pi)`, so :math:`AA^\top\propto` the sinc kernel of time-frequency limiting
   with :math:`c=\Omega` (:math:`T=1`). Claim: :math:`|\mathrm{NSdim}_\tau-
   \mathrm{LW}(c,\tau^2)|\le` ``lw_tol`` for every :math:`(\Omega,\tau)`, where
   :math:`\mathrm{LW}(c,\varepsilon)=2c/\pi+\pi^{-2}\ln\frac{1-\varepsilon}\varepsilon\ln c`
   (:func:`~opdiff.theory.approximation.landau_widom_count`; eigenvalue threshold
   :math:`\varepsilon=\tau^2`, the :math:`o(\ln c)` remainder dropped).
3. **NSdim vs bandwidth** (panel 3, metrics only): grows roughly linearly in :math:`\lambda`;
   sinusoids near Landau-Widom (slope :math:`2/\pi` plus the log term), sigmoid and tanh
   faster (their poles sit at distance :math:`\pi/|a|` and :math:`\pi/(2|a|)` from the real
   axis, so tanh needs about twice the modes of sigmoid); fitted slopes in the metrics.
4. **float32 vs float64** (panel 4): the same matrices formed and decomposed in float32
   (``numpy`` ``sgesdd``; :func:`~opdiff.theory.approximation.nsdim` upcasts to float64, so the
   float32 count is taken by hand). Claims: the counts agree within ``saturation_tol`` at
   :math:`\tau=10^{-4}\gg\varepsilon_{32}`; and the reference's prediction (§3, and its
   "ranks set by :math:`\varepsilon_{\rm machine}\approx1.2\cdot10^{-7}`") that at
   :math:`\tau=10^{-8}<\varepsilon_{32}` the float32 count exceeds the float64 one because
   rounding noise is counted as dimension. It fails for sigmoid and tanh: the rounding
   perturbation of smooth features has spectral norm about
   :math:`\varepsilon_{32}s_1(n^{-1/2}+N^{-1/2})`, well below :math:`\varepsilon_{32}s_1`, so
   float32 resolves :math:`s_k/s_1` to about :math:`10^{-9}` there; sin (arguments up to
   :math:`2\lambda`) is noisier. The float32 floor shows at :math:`\tau=10^{-12}`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import plotting
from opdiff.nets import random_features as rf
from opdiff.theory import approximation as th

from experiments._config import (
    AboveOne, AtLeastTwo, Count, NonNegInt, NonNegative, OpenUnit, Positive, Seed,
)
from experiments._report import Report

NAME = "rf_nsdim"
DESCRIPTION = ("Numerical span dimension of bounded random features: saturation in width, "
               "Landau-Widom for sinusoids, growth in bandwidth, float32 vs float64")
DTYPE = "float64"

ANALYTIC = ("sigmoid", "tanh", "sin")

# numpy twins of rf.ACTIVATIONS (dtype-preserving: float32 in, float32 out)
NP_ACTIVATIONS = {
    "sigmoid": lambda t: 0.5 * (1.0 + np.tanh(0.5 * t)),
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "relu": lambda t: np.maximum(t, 0),
    "gaussian": lambda t: np.exp(-t * t),
}


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
        bad = [a for a in self.activations if a not in NP_ACTIVATIONS]
        if bad or not self.activations:
            raise ValueError(f"activations must be among {sorted(NP_ACTIVATIONS)}, got {bad}")
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


def quadrature(n: int, dtype=np.float64):
    x, w = np.polynomial.legendre.leggauss(n)
    return x.astype(dtype), w.astype(dtype)


def feature_matrix(hidden: rf.Hidden, n_quad: int, activation: str, dtype=np.float64):
    r""":math:`A_{ij}=\sqrt{w_i}\sigma(a_jx_i-b_j)` on ``n_quad`` Gauss-Legendre nodes, in
    ``dtype`` throughout (nodes, weights, parameters, activation). Host-side numpy: these are
    one-off evaluations, where eager JAX would compile every new shape."""
    x, w = quadrature(n_quad, dtype)
    a = np.asarray(hidden.weights[:, 0]).astype(dtype)
    b = np.asarray(hidden.biases).astype(dtype)
    A = NP_ACTIVATIONS[activation](x[:, None] * a[None, :] - b[None, :]) * np.sqrt(w)[:, None]
    assert A.dtype == dtype, (A.dtype, dtype)
    return A


def draw(cfg: Config, key, bandwidth: float, bias: str = "box") -> rf.Hidden:
    """One draw of the largest width any part uses (parts take leading columns), so every
    :func:`~opdiff.nets.random_features.sample_hidden` call has the same shape."""
    n = max(cfg.widths[-1], cfg.lw_features, cfg.sweep_features, cfg.precision_features)
    return rf.sample_hidden(key, n, 1, bandwidth=jnp.float64(bandwidth), bias=bias,
                            dtype=jnp.float64)


def head(h: rf.Hidden, n: int) -> rf.Hidden:
    return rf.Hidden(h.weights[:n], h.biases[:n])


def nsdim_native(A: np.ndarray, taus) -> np.ndarray:
    """NSdim counted from singular values computed in ``A``'s own dtype (float32 stays float32;
    :func:`~opdiff.theory.approximation.nsdim` would upcast)."""
    s = np.linalg.svd(A, compute_uv=False)
    return np.sum((s / s[0])[:, None] > np.asarray(taus, s.dtype)[None, :], axis=0), s


def saturation_part(cfg: Config, key) -> dict:
    h = head(draw(cfg, key, cfg.bandwidth), cfg.widths[-1])
    out = {}
    for act in cfg.activations:
        A = feature_matrix(h, cfg.n_quad, act)
        dims = np.array([th.nsdim(A[:, :n], cfg.tau) for n in cfg.widths])
        # quadrature check (analytic only; ReLU's count is resolution-bound by design)
        dq = th.nsdim(feature_matrix(h, 2 * cfg.n_quad, act), cfg.tau) if act in ANALYTIC \
            else None
        out[act] = dict(nsdim=dims, nsdim_double_quad=dq)
    return out


def landau_widom_part(cfg: Config, key) -> dict:
    meas, pred = [], []
    for i, om in enumerate(cfg.lw_bands):
        h = head(draw(cfg, jax.random.fold_in(key, i), om, bias="phase"), cfg.lw_features)
        A = feature_matrix(h, cfg.lw_quad, "cos")
        meas.append(th.nsdim(A, np.asarray(cfg.lw_taus)))
        pred.append(th.landau_widom_count(om, np.asarray(cfg.lw_taus) ** 2))
    return dict(measured=np.array(meas), predicted=np.array(pred))  # (bands, taus)


def bandwidth_part(cfg: Config, key) -> dict:
    acts = [a for a in cfg.activations if a in ANALYTIC]
    out = {a: [] for a in acts}
    for i, lam in enumerate(cfg.sweep_bandwidths):
        h = head(draw(cfg, jax.random.fold_in(key, i), lam), cfg.sweep_features)
        for a in acts:
            out[a].append(th.nsdim(feature_matrix(h, cfg.sweep_quad, a), cfg.tau))
    lams = np.asarray(cfg.sweep_bandwidths)
    res = {a: np.asarray(v) for a, v in out.items()}
    lw = np.array([th.landau_widom_count(lam, cfg.tau**2) if lam > 1 else np.nan for lam in lams])
    slopes = {a: float(np.polyfit(lams, v, 1)[0]) for a, v in res.items()} if len(lams) >= 2 \
        else {}
    return dict(nsdim=res, landau_widom=lw, slopes=slopes)


def precision_part(cfg: Config, key) -> dict:
    h = head(draw(cfg, key, cfg.bandwidth), cfg.precision_features)
    out = {}
    for act in [a for a in cfg.activations if a in ANALYTIC]:
        d64, s64 = nsdim_native(feature_matrix(h, cfg.n_quad, act, np.float64),
                                cfg.precision_taus)
        d32, s32 = nsdim_native(feature_matrix(h, cfg.n_quad, act, np.float32),
                                cfg.precision_taus)
        out[act] = dict(nsdim64=d64, nsdim32=d32, s64=s64 / s64[0], s32=s32 / s32[0])
    return out


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    sat = saturation_part(cfg, jax.random.fold_in(key, 0))
    lw = landau_widom_part(cfg, jax.random.fold_in(key, 1))
    bw = bandwidth_part(cfg, jax.random.fold_in(key, 2))
    pr = precision_part(cfg, jax.random.fold_in(key, 3))
    widths = np.asarray(cfg.widths)
    quarter = list(cfg.widths).index(cfg.widths[-1] // 4)

    rep.metrics["widths"] = widths
    for act, r in sat.items():
        rep.metrics[f"nsdim_{act}"] = r["nsdim"]
        if r["nsdim_double_quad"] is not None:
            rep.metrics[f"nsdim_{act}_double_quadrature"] = r["nsdim_double_quad"]
    rep.metrics["lw_bands"] = np.asarray(cfg.lw_bands)
    rep.metrics["lw_taus"] = np.asarray(cfg.lw_taus)
    rep.metrics["lw_nsdim"] = lw["measured"]
    rep.bounds["landau_widom_count"] = lw["predicted"]
    rep.metrics["sweep_bandwidths"] = np.asarray(cfg.sweep_bandwidths)
    for act, v in bw["nsdim"].items():
        rep.metrics[f"sweep_nsdim_{act}"] = v
    rep.metrics["sweep_linear_slopes"] = bw["slopes"]
    rep.bounds["sweep_landau_widom_sin"] = bw["landau_widom"]
    rep.metrics["precision_taus"] = np.asarray(cfg.precision_taus)
    for act, r in pr.items():
        rep.metrics[f"precision_{act}_nsdim_float64"] = r["nsdim64"]
        rep.metrics[f"precision_{act}_nsdim_float32"] = r["nsdim32"]
        rep.metrics[f"precision_{act}_float32_min_sv_ratio"] = float(r["s32"][-1])
        rep.metrics[f"precision_{act}_float64_min_sv_ratio"] = float(r["s64"][-1])

    # ---- saturation claims
    for act, r in sat.items():
        d = r["nsdim"]
        growth = int(d[-1] - d[quarter])
        if act in ANALYTIC:
            rep.check(
                f"{act} (analytic), lambda={cfg.bandwidth:g}, tau={cfg.tau:g}: NSdim saturates, "
                f"NSdim(N={widths[-1]}) - NSdim(N={widths[quarter]}) <= {cfg.saturation_tol} "
                f"(NSdim {d[quarter]} -> {d[-1]})",
                growth, cfg.saturation_tol, growth <= cfg.saturation_tol,
            )
            dq = int(abs(r["nsdim_double_quad"] - d[-1]))
            rep.check(
                f"{act}: NSdim(N={widths[-1]}) is resolved by the quadrature: it moves by <= "
                f"{cfg.saturation_tol} from {cfg.n_quad} to {2 * cfg.n_quad} Gauss nodes "
                f"({d[-1]} vs {r['nsdim_double_quad']})",
                dq, cfg.saturation_tol, dq <= cfg.saturation_tol,
            )
        else:
            need = cfg.relu_growth * (widths[-1] - widths[quarter])
            rep.check(
                f"{act} (not analytic), lambda={cfg.bandwidth:g}: NSdim does not saturate, "
                f"NSdim(N={widths[-1]}) - NSdim(N={widths[quarter]}) >= {cfg.relu_growth:g} x "
                f"added features (NSdim {d[quarter]} -> {d[-1]}; {cfg.n_quad} Gauss nodes)",
                growth, need, growth >= need,
            )
    # ---- Landau-Widom
    dev = lw["measured"] - lw["predicted"]
    worst = float(np.abs(dev).max())
    rep.metrics["lw_nsdim_minus_prediction"] = dev
    rep.check(
        f"Sinusoids cos(wx-b), |w|<=Omega on [-1,1]: NSdim_tau = Landau-Widom count at "
        f"eps=tau^2 within +-{cfg.lw_tol:g}, Omega in {list(cfg.lw_bands)}, tau in "
        f"{list(cfg.lw_taus)} (max |NSdim - LW|)",
        worst, cfg.lw_tol, worst <= cfg.lw_tol,
    )
    # ---- precision
    taus = list(cfg.precision_taus)
    i4, i8 = taus.index(1e-4), taus.index(1e-8)
    agree = max(abs(int(r["nsdim32"][i4]) - int(r["nsdim64"][i4])) for r in pr.values())
    rep.check(
        f"float32 and float64 NSdim agree within {cfg.saturation_tol} at tau=1e-4 "
        f"(>> eps32), every analytic activation (max |difference|)",
        agree, cfg.saturation_tol, agree <= cfg.saturation_tol,
    )
    excess = min(int(r["nsdim32"][i8]) - int(r["nsdim64"][i8]) for r in pr.values())
    rep.check(
        "Reference prediction: at tau=1e-8 (< eps32 ~ 1.2e-7) float32 counts rounding noise as "
        "dimension, NSdim32 > NSdim64, every analytic activation (min float32 - float64)",
        excess, 0, excess > 0,
    )

    # ---- figure
    fig, axes = plotting.new_figure(2, 2, width=4.6)
    plotting.error_panel(
        axes[0, 0], widths, {act: r["nsdim"] for act, r in sat.items()},
        {"N (all features independent)": widths.astype(float)},
        title=rf"NSdim vs width, $\lambda={cfg.bandwidth:g}$, $\tau={cfg.tau:g}$",
        xlabel="width N", ylabel=r"NSdim$_\tau$", logx=True,
    )
    bands = np.asarray(cfg.lw_bands)
    plotting.error_panel(
        axes[0, 1], bands,
        {rf"NSdim, $\tau$={t:g}": lw["measured"][:, j] for j, t in enumerate(cfg.lw_taus)},
        {rf"Landau-Widom, $\varepsilon=\tau^2$={t * t:g}": lw["predicted"][:, j]
         for j, t in enumerate(cfg.lw_taus)},
        title=r"sinusoids on $[-1,1]$, $|\omega|\leq\Omega$", xlabel=r"band $\Omega$ (= c)",
        ylabel="count", logy=False,
    )
    lams = np.asarray(cfg.sweep_bandwidths)
    plotting.error_panel(
        axes[1, 0], lams, {a: v for a, v in bw["nsdim"].items()},
        {r"Landau-Widom$(\lambda,\tau^2)$ (sinusoids)": bw["landau_widom"]},
        title=rf"NSdim vs bandwidth, N={cfg.sweep_features}, $\tau={cfg.tau:g}$",
        xlabel=r"$\lambda$", ylabel=r"NSdim$_\tau$", logy=False,
    )
    ax = axes[1, 1]
    for act, r in pr.items():
        line, = ax.plot(r["s64"], label=f"{act}, float64")
        ax.plot(r["s32"], "--", color=line.get_color(), label=f"{act}, float32")
    for t in taus:
        ax.axhline(t, color="grey", linewidth=0.5, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("index k")
    ax.set_ylabel(r"$s_k/s_1$")
    ax.set_title(rf"spectrum, $\lambda={cfg.bandwidth:g}$, N={cfg.precision_features}",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    rep.figures += plotting.save(fig, out_dir / "rf_nsdim.png")
    return rep
