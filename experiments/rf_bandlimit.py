r"""Bandlimited random weights: error vs bandwidth and width, and when an out-of-band floor exists.

    python -m experiments run rf_bandlimit               # ~1 min on a 2-core CPU (float64)
    python -m experiments run rf_bandlimit --preset full

In the spirit of Li, Sonoda, Cao, Wang, Liang (ICML 2023); their theorem could not be checked
(reference/approximation.md §1.2). :math:`f_c(x)=\sum_jc_j\,\mathrm{sigmoid}(a_jx-b_j)`,
:math:`a_j,b_j\sim U[-\lambda,\lambda]` frozen, :math:`c` by least squares with the relative
ridge :math:`10^{-10}\mathrm{tr}(A^\top A)/N` (:func:`opdiff.approx.random_features.solve_sweep`).

1. **Heat map** of the median test RMS over (:math:`\lambda`, :math:`N`), smooth and rough
   targets on :math:`[0,1]`; sanity claim: a QR refit of seed 0 reproduces the sweep.
2. **(a) Torus**, integer :math:`|k|\le\Omega` (:func:`opdiff.approx.features.torus_identity`):
   grid MSE = :math:`\sum_{|k|>\Omega}|\hat f_k|^2` to ``torus_rtol``, :math:`1/(a-\cos x)`
   and :math:`|\sin x|^3` (the only setting where the out-of-band energy is an exact floor).
3. **(b) Off the lattice it is no floor**: real :math:`\omega\sim U[-\Omega,\Omega]` go below
   the torus "floor" of :math:`1/(a-\cos x)` at every band (floor/MSE > 1; the factor reported).
4. **(c) Bounded-coefficient floor** (rigorous, :math:`B=\|c\|_2` of the fit;
   :func:`opdiff.approx.features.ridge_fit_floor`): it holds for every (target, :math:`\lambda`,
   :math:`N_{\min}`/:math:`N_{\max}`), and it is > 0 for the rough target at :math:`\lambda\le1`.
5. **(d) Plateau** (rough target; findings, no theorem): the error ratio :math:`N_{\max}` over
   :math:`N_{\min}` with its standard error over seeds at :math:`\lambda\le1` and at
   :math:`\lambda=100`. Drawn, not
   claimed: the ridgelet proxy :math:`(E_{\rm out}(\lambda)/E_{\rm out}(0))^{1/2}` over the
   relative error (``rf_bandlimit_lambda.png``). Numbers: ``notes/random_features.md``.
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

from ._config import AboveOne, AtLeastTwo, Count, OpenUnit, Positive, Seed

NAME = "rf_bandlimit"
DESCRIPTION = ("Bandlimited sigmoid random features: error over (bandwidth, width), torus "
               "out-of-band identity, its failure off the lattice, bounded-coefficient floor")
DTYPE = "float64"

# (amplitude, k, centre c) of A exp(-(k x - c)^2): the smooth target and the three-bump one.
SMOOTH = ((0.2, 10.0, 4.0),)
ROUGH = ((0.2, 10.0, 4.0), (0.5, 80.0, 40.0), (0.3, 80.0, 20.0))
TARGETS = {"smooth": SMOOTH, "rough": ROUGH}


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    bandwidths: tuple[Positive, ...] = (0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 200.0)
    widths: tuple[Count, ...] = (25, 50, 100, 200, 400)
    n_train: Count = 1000
    n_test: AtLeastTwo = 300
    n_seeds: Count = 3
    ridge: Positive = 1e-10  # relative: alpha = ridge * trace(A^T A) / N
    sweep_method: str = "cholesky"  # solve_sweep's solver; checked against a QR refit
    sweep_tolerance: OpenUnit = 1e-4  # max rel. deviation of the sweep from the QR refit
    plateau_max_bandwidth: Positive = 1.0  # (c), (d): the small-box bandwidths
    large_bandwidth: Positive = 100.0  # (d): the large-box bandwidth
    # torus part
    torus_a: AboveOne = 1.5
    torus_bands: tuple[Count, ...] = (2, 4, 6, 8)
    torus_features: Count = 150
    torus_grid: Count = 4096
    torus_fine_grid: Count = 2**16
    torus_rtol: OpenUnit = 1e-8
    # ridgelet proxy quadrature
    proxy_omega_max: Positive = 8.0
    proxy_quad: Count = 200

    def __post_init__(self):
        if not self.bandwidths or min(self.bandwidths) <= 0:
            raise ValueError(f"bandwidths must be non-empty and > 0, got {self.bandwidths}")
        if list(self.bandwidths) != sorted(set(self.bandwidths)):
            raise ValueError(f"bandwidths must be strictly increasing, got {self.bandwidths}")
        w = self.widths
        if len(w) < 2 or list(w) != sorted(set(w)) or min(w) < 1:
            raise ValueError(f"widths must be >= 2 strictly increasing ints >= 1, got {w}")
        if self.n_test < 2 or self.n_seeds < 2:  # (d)'s findings need a standard error
            raise ValueError(f"need n_test >= 2 and n_seeds >= 2, got {self.n_test}, "
                             f"{self.n_seeds}")
        if self.n_train < max(self.widths):
            raise ValueError(f"n_train ({self.n_train}) must be >= max(widths) "
                             f"({max(self.widths)})")
        if not self.ridge > 0:
            raise ValueError(f"ridge must be > 0, got {self.ridge}")
        if self.sweep_method not in ("qr", "cholesky", "svd"):
            raise ValueError(f"sweep_method must be 'qr', 'cholesky' or 'svd', got "
                             f"{self.sweep_method!r}")
        if not 0 < self.sweep_tolerance < 1:
            raise ValueError(f"sweep_tolerance must be in (0, 1), got {self.sweep_tolerance}")
        if not any(b <= self.plateau_max_bandwidth for b in self.bandwidths):
            raise ValueError(f"no bandwidth <= plateau_max_bandwidth={self.plateau_max_bandwidth}")
        if self.large_bandwidth not in self.bandwidths:
            raise ValueError(f"large_bandwidth={self.large_bandwidth} must be one of "
                             f"bandwidths {self.bandwidths}")
        if self.torus_a <= 1.0:
            raise ValueError(f"torus_a must be > 1, got {self.torus_a}")
        if not self.torus_bands or min(self.torus_bands) < 1:
            raise ValueError(f"torus_bands must be ints >= 1, got {self.torus_bands}")
        if self.torus_grid < 4 * (2 * max(self.torus_bands) + 1):
            raise ValueError(f"torus_grid={self.torus_grid} too coarse for band "
                             f"{max(self.torus_bands)}")
        if self.torus_features < 4 * (2 * max(self.torus_bands) + 1):
            raise ValueError(f"torus_features={self.torus_features} too few to draw every "
                             f"|k| <= {max(self.torus_bands)} twice")
        if self.torus_features > self.torus_grid:
            raise ValueError("torus_features must be <= torus_grid")
        if self.torus_fine_grid < self.torus_grid:
            raise ValueError("torus_fine_grid must be >= torus_grid")
        if not 0 < self.torus_rtol < 1:
            raise ValueError(f"torus_rtol must be in (0, 1), got {self.torus_rtol}")
        if self.proxy_omega_max <= 0 or self.proxy_quad < 1:
            raise ValueError("proxy_omega_max must be > 0 and proxy_quad >= 1")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_seeds * (n_train + n_test) * max(widths)":
                self.n_seeds * (self.n_train + self.n_test) * max(self.widths),
            "torus_fine_grid * torus_features": self.torus_fine_grid * self.torus_features,
            "proxy_quad ** 2": self.proxy_quad ** 2,
        }


PRESETS = {
    "smoke": Config(
        bandwidths=(0.5, 1.0, 100.0), widths=(25, 200), n_train=400, n_test=150, n_seeds=2,
        torus_bands=(2, 3), torus_features=100, torus_grid=1024, torus_fine_grid=2**14,
        proxy_quad=60,
    ),
    "quick": Config(),
    "full": Config(
        bandwidths=(0.5, 1.0, 5.0, 10.0, 30.0, 50.0, 100.0, 150.0, 200.0, 250.0),
        widths=(25, 50, 100, 200, 400, 800), n_train=2000, n_test=600, n_seeds=10,
        torus_bands=(2, 4, 6, 8, 10, 12), torus_features=300, torus_grid=8192,
        torus_fine_grid=2**18,
    ),
}


def run(cfg: Config, key) -> dict:
    f64 = jnp.float64
    lams, widths = np.asarray(cfg.bandwidths), np.asarray(cfg.widths)
    out = dict(bandwidths=lams, widths=widths, torus_bands=np.asarray(cfg.torus_bands),
               n_seeds=cfg.n_seeds)
    # 1. test RMS over (width, bandwidth, seed) by solve_sweep; train / test points iid U[0, 1]
    k_x, k_sweep = jax.random.split(jax.random.fold_in(key, 0))
    xx = jax.random.uniform(k_x, (cfg.n_train + cfg.n_test,), f64)
    x, xt = xx[: cfg.n_train], xx[cfg.n_train:]
    for name, terms in TARGETS.items():
        y, yt = features.gaussian_sum(x, terms), features.gaussian_sum(xt, terms)
        errs = np.stack([np.asarray(rf.solve_sweep(
            k_sweep, x, jnp.asarray(y), xt, jnp.asarray(yt), n_features=int(n),
            bandwidths=jnp.asarray(lams, f64), n_seeds=cfg.n_seeds, ridge=cfg.ridge,
            relative_ridge=True, method=cfg.sweep_method)) for n in widths])  # (W, L, S)
        rms_f = float(np.sqrt(np.mean(yt ** 2)))
        med = np.median(errs, axis=2)
        # seed 0 at N_min and N_max refitted in numpy (same keys and ridge) with its floor
        rows = features.refit_floors(jax.random.fold_in(k_sweep, 0), (widths[0], widths[-1]),
                                     lams, np.asarray(x), y, np.asarray(xt), yt, cfg.ridge)
        out.update({f"{name}_test_rms_median": med, f"{name}_test_rms_all": errs,
                    f"{name}_target_rms": rms_f,
                    f"{name}_relative_rms_at_max_width": med[-1] / rms_f,
                    f"{name}_floor": rows, f"{name}_refit_rel_dev": np.abs(rows["rms"] / np.stack(
                        [errs[0, :, 0], errs[-1, :, 0]]).ravel() - 1)})
        out[f"{name}_ridgelet_proxy_sqrt_Eout_ratio"] = bounds.gaussian_sum_ridgelet_proxy(
            terms, lams, omega_max=cfg.proxy_omega_max, n_quad=cfg.proxy_quad)
    out["refit_vs_sweep_max_rel_dev"] = float(max(out[f"{n}_refit_rel_dev"].max()
                                                  for n in TARGETS))
    # 2-3. torus [0, 2 pi): integer frequencies hit the out-of-band energy, real ones go below
    out["torus"] = features.torus_identity(jax.random.fold_in(key, 1), cfg.torus_bands,
                                           cfg.torus_features, cfg.torus_grid,
                                           cfg.torus_fine_grid, cfg.torus_a)
    # (c), (d): the rough target at small and at large bandwidth (floor rows: 2 widths x lams)
    fl, med, big = out["rough_floor"], out["rough_test_rms_median"], \
        list(lams).index(cfg.large_bandwidth)
    small, e_big = fl["lam"] <= cfg.plateau_max_bandwidth, out["rough_test_rms_all"][:, big, :]
    rms, rms0 = fl["rms"].reshape(2, -1)[:, big], fl["rms_no_ridge"].reshape(2, -1)[:, big]
    out.update(rough_small_lambda_floor_over_rms=fl["floor"][small] / fl["rms"][small],
               rough_rms_ratio_Nmax_over_Nmin=med[-1] / med[0],
               rough_ratio_per_seed=out["rough_test_rms_all"][-1] / out["rough_test_rms_all"][0],
               rough_large_lambda_ratio_per_seed=e_big[-1] / e_big[0],
               rough_large_lambda_seed0_ratio_with_ridge=rms[1] / rms[0],
               rough_large_lambda_seed0_ratio_no_ridge=rms0[1] / rms0[0])
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    r, lams, w = results, np.asarray(cfg.bandwidths), cfg.widths
    worst = float(max(t["rel_dev_from_tail"].max() for t in r["torus"].values()))
    covered = bool(np.all(r["torus"]["inverse_cosine"]["lattice_covered"]))
    gain = r["torus"]["inverse_cosine"]["floor_over_real_mse"]
    slack = min(float(np.min(r[f"{n}_floor"]["rms"] - r[f"{n}_floor"]["floor"]))
                for n in TARGETS)
    fl, small = r["rough_floor"], lams <= cfg.plateau_max_bandwidth
    ratio, ratio_se = cl.mean_se(r["rough_ratio_per_seed"], axis=1)  # per lambda, over seeds
    big = int(np.nonzero(lams == cfg.large_bandwidth)[0][0])
    return [
        cl.upper_bound(
            f"Sanity: the vmapped solve_sweep ({cfg.sweep_method}) reproduces an independent "
            "augmented-QR refit of seed 0 at N_min and N_max, every lambda and target "
            "(max rel. deviation of test RMS)", r["refit_vs_sweep_max_rel_dev"],
            cfg.sweep_tolerance),
        cl.upper_bound(  # an uncovered lattice (some |k| <= Omega not drawn twice) fails: inf
            f"(a) Torus [0,2pi), integer |k|<=Omega, cos(kx-b) least squares: grid MSE = "
            f"out-of-band energy sum_{{|k|>Omega}}|f_k|^2 for 1/({cfg.torus_a}-cos x) (closed "
            f"form) and |sin x|^3 (fine FFT), Omega in {list(cfg.torus_bands)} (max rel. "
            f"deviation)", worst if covered else float("inf"), cfg.torus_rtol),
        cl.lower_bound(  # strictly > 1: the next float above 1 is the bound
            f"(b) Same band with real frequencies on [0,2pi) (non-periodic use) goes below the "
            f"torus floor of 1/({cfg.torus_a}-cos x) at every Omega, so the out-of-band bound "
            "does not hold off the lattice (min floor/MSE > 1)",
            float(gain.min()), float(np.nextafter(1.0, 2.0))),
        cl.lower_bound(
            "(c) [0,1], sigmoid features: test RMS >= bounded-coefficient floor "
            "max_k[||(I-P_k)f|| - s_{k+1}B], B=||c||_2 of the fit, every (target, lambda, "
            "N in {N_min, N_max}), seed 0 (min RMS - floor)", slack, 0.0),
        cl.lower_bound(  # strictly > 0: the smallest positive float is the bound
            f"(c) the floor is non-trivial: > 0 for the rough target at every lambda <= "
            f"{cfg.plateau_max_bandwidth:g} (min floor)",
            float(fl["floor"][fl["lam"] <= cfg.plateau_max_bandwidth].min()),
            float(np.nextafter(0.0, 1.0))),
        cl.finding(
            f"(d) Rough target, lambda in {[float(v) for v in lams[small]]}: test RMS at N={w[-1]} over "
            f"N={w[0]}, mean over {cfg.n_seeds} seeds (a plateau: ratio near 1)",
            ratio[small], ratio_se[small]),
        cl.finding(
            f"(d) Rough target, lambda = {cfg.large_bandwidth:g}: test RMS at N={w[-1]} over "
            f"N={w[0]}, mean over {cfg.n_seeds} seeds (no plateau: ratio well below 1)",
            float(ratio[big]), float(ratio_se[big])),
    ]


def plot(results: dict, out_dir: Path) -> list[str]:
    from matplotlib.colors import LogNorm

    r = results
    lams, widths, names = r["bandwidths"], r["widths"], list(TARGETS)
    fig, axes = plotting.new_figure(1, 2, width=5.0)
    for ax, name in zip(axes[0], names):
        med = r[f"{name}_test_rms_median"]
        norm = LogNorm(vmin=float(med.min()), vmax=float(med.max()))
        im = ax.imshow(med, origin="lower", aspect="auto", cmap="viridis", norm=norm)
        ax.set_xticks(range(len(lams)), [f"{v:g}" for v in lams])
        ax.set_yticks(range(len(widths)), [str(v) for v in widths])
        for (i, j), v in np.ndenumerate(med):
            ax.text(j, i, f"{v:.1e}", ha="center", va="center", fontsize=5.5,
                    color="k" if norm(v) > 0.6 else "w")
        ax.set(xlabel=r"bandwidth $\lambda$ ($a,b\sim U[-\lambda,\lambda]$)", ylabel="width N")
        ax.set_title(r"smooth: $0.2e^{-(10x-4)^2}$" if name == "smooth"
                     else "rough: three bumps (k = 10, 80, 80)", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.85,
                     label=f"median test RMS over {r['n_seeds']} seeds (log)")
    files = plotting.save(fig, Path(out_dir) / "rf_bandlimit_heatmap.png")
    fig, axes = plotting.new_figure(1, 3)
    rel = {n: r[f"{n}_test_rms_median"] / r[f"{n}_target_rms"] for n in names}
    measured = {f"{n}, N={widths[-1]} (RMS/RMS(f))": rel[n][-1] for n in names}
    measured.update({f"{n}, N={widths[0]}": rel[n][0] for n in names})
    plotting.error_panel(
        axes[0, 0], lams, measured,
        {rf"proxy $\sqrt{{E_{{out}}(\lambda)/E_{{out}}(0)}}$, {n}":
         r[f"{n}_ridgelet_proxy_sqrt_Eout_ratio"] for n in names},
        title="relative error vs bandwidth (proxy: not a bound)", xlabel=r"$\lambda$",
        ylabel="relative RMS", logx=True,
    )
    axes[0, 0].tick_params(axis="x", labelrotation=45)
    tor = r["torus"]
    plotting.error_panel(
        axes[0, 1], r["torus_bands"],
        {f"integer k, {n}": t["integer_mse"] for n, t in tor.items()}
        | {f"real $\\omega$, {n}": t["real_mse"] for n, t in tor.items()},
        {f"out-of-band energy, {n}": t["out_of_band_energy"] for n, t in tor.items()},
        title=r"torus $[0,2\pi)$, $|k|\leq\Omega$", xlabel=r"band $\Omega$", ylabel="grid MSE",
    )
    ax = axes[0, 2]
    for name in names:
        fl = r[f"{name}_floor"]
        for n in (widths[0], widths[-1]):
            sel = fl["n"] == n
            line, = ax.plot(lams, fl["rms"][sel], marker="o", markersize=3,
                            label=f"{name} N={n}: RMS")
            ax.plot(lams, np.maximum(fl["floor"][sel], 1e-17), "--", color=line.get_color(),
                    label=f"{name} N={n}: floor")
    ax.set(xscale="log", yscale="log", xlabel=r"$\lambda$", ylabel="test RMS (seed 0)")
    ax.set_title(r"bounded-coefficient floor, $B=\|c\|_2$", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6)
    return files + plotting.save(fig, Path(out_dir) / "rf_bandlimit_lambda.png")
