r"""The data side of operator learning: input spaces, reference operators, the heat inverse problem.

    python -m experiments run operator_data              # ~1 min on a 2-core CPU (float64)

1. **Samples** of every input space and their images under every reference operator:
   ``operator_samples.png``, ``periodic_operators.png``.
2. **Solver convergence** (:mod:`opdiff.operators.convergence`): observed orders of the
   trapezoid antiderivative (2), RK4 (4), CNAB2 diffusion–reaction in time and space (2, 2) and
   ETDRK4 Burgers against Cole–Hopf (4): ``solver_orders.png``. Claim: each within 0.2.
3. **GRF covariances** (:func:`opdiff.functions.covariance_z_scores`): the sample covariance of
   every kernel against the kernel: max |z| over the distinct entries <= the Bonferroni bound at
   family-wise level ``level`` (:func:`opdiff.diffusion.marginals.bonferroni_z`).
4. **The heat operator forward and backward** (:mod:`opdiff.operators.heat`): mode decay, the
   naive inverse's amplification, the exact and Monte-Carlo mean-square errors of the naive,
   spectral-cutoff and Wiener estimators against :math:`K` and :math:`\delta`:
   ``heat_inverse.png``. Claims: Wiener ≤ best cutoff ≤ naive; Monte Carlo matches exact.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import claims as cl
from opdiff import functions, plotting
from opdiff.diffusion import marginals
from opdiff.operators import burgers, convergence, heat, integral, ode, reaction_diffusion

from ._config import AtLeastTwo, Count, OpenUnit, Positive, Range, Seed

NAME = "operator_data"
DESCRIPTION = "input spaces, reference operators and their convergence orders, heat forward/backward"
DTYPE = "float64"


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    n_examples: Count = 3
    grf_grid: AtLeastTwo = 40
    grf_samples: Annotated[int, Range(lo=100)] = 20000
    grf_length_scale: Positive = 0.2
    ode_grid: AtLeastTwo = 41
    ode_substeps: tuple[Count, ...] = (1, 2, 4, 8)
    trapezoid_grids: tuple[AtLeastTwo, ...] = (17, 33, 65, 129, 257)
    dr_nt: tuple[Count, ...] = (10, 20, 40, 80)
    dr_nx: tuple[Annotated[int, Range(lo=3)], ...] = (11, 21, 41, 81)
    burgers_nu: Positive = 0.05
    burgers_n: Annotated[int, Range(lo=4)] = 256
    burgers_t: Positive = 0.25
    burgers_nt: tuple[Count, ...] = (20, 40, 80, 160)
    heat_n: Annotated[int, Range(lo=4)] = 128
    heat_nu: Positive = 0.05
    heat_t: Positive = 0.02
    heat_alpha: float = 3.0
    heat_delta: Positive = 1e-3
    heat_deltas: tuple[Positive, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    heat_samples: Annotated[int, Range(lo=10)] = 2000
    level: OpenUnit = 1e-3  # family-wise level of the max-|z| claims (Bonferroni)

    def __post_init__(self):
        if self.grf_samples < 100 or self.heat_samples < 10:
            raise ValueError("grf_samples must be >= 100 and heat_samples >= 10")
        for name in ("ode_substeps", "trapezoid_grids", "dr_nt", "dr_nx", "burgers_nt"):
            if len(getattr(self, name)) < 2:
                raise ValueError(f"{name} needs at least two values to fit an order")
        if self.heat_delta <= 0 or min(self.heat_deltas) <= 0:
            raise ValueError("heat_delta and heat_deltas must be positive")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "grf_samples * grf_grid": self.grf_samples * self.grf_grid,
            "grf_grid ** 2": self.grf_grid ** 2,
            "heat_samples * heat_n": self.heat_samples * self.heat_n,
            "16 * ode_grid * max(ode_substeps)": 16 * self.ode_grid * max(self.ode_substeps),
            "max(trapezoid_grids)": max(self.trapezoid_grids),
            "128 * max(dr_nx) * max(dr_nt)": 128 * max(self.dr_nx) * max(self.dr_nt),
            "burgers_n * max(burgers_nt)": self.burgers_n * max(self.burgers_nt),
        }


PRESETS = {
    "smoke": Config(grf_samples=2000, grf_grid=20, heat_samples=200, heat_n=64,
                    burgers_n=128, burgers_nt=(20, 40, 80), dr_nt=(10, 20, 40),
                    dr_nx=(11, 21, 41), trapezoid_grids=(17, 33, 65), ode_substeps=(1, 2, 4)),
    "quick": Config(),
    "full": Config(grf_grid=80, grf_samples=200000, heat_n=512, heat_samples=20000,
                   burgers_n=512, burgers_nt=(40, 80, 160, 320, 640)),
}


def run(cfg: Config, key) -> dict:
    # 1. samples (the keys of the legacy figure: split(fold_in(key, 1), 8))
    keys, m, f64 = jax.random.split(jax.random.fold_in(key, 1), 8), cfg.n_examples, jnp.float64
    spaces = (functions.GaussianRandomField(kernel="rbf", n_grid=400),
              functions.GaussianRandomField(kernel="matern12", n_grid=400),
              functions.Sinusoids(f_max=10.0, n_grid=400))
    grf = functions.GaussianRandomField(kernel="rbf", n_grid=201)
    x = jnp.asarray(grf.grid)
    u = grf.sample(m, key=keys[4], dtype=f64)
    u0 = functions.PeriodicPowerLawField(n=256, alpha=2.5).sample(1, key=keys[6], dtype=f64)
    samples = dict(
        space_grid=spaces[0].grid, spaces=[np.asarray(s.sample(m, key=k, dtype=f64))
                                           for s, k in zip(spaces, keys)],
        field2d=np.asarray(functions.PeriodicPowerLawField(n=(96, 96), alpha=3.0).sample(
            1, key=keys[3], dtype=f64))[0], x=grf.grid, u=np.asarray(u),
        antiderivative=np.asarray(integral.antiderivative(u, x)),
        nonlinear_ode=np.asarray(ode.nonlinear_ode(u, x, substeps=4)),
        pendulum=np.asarray(ode.pendulum(u, x, substeps=4))[..., 0],
        diffusion_reaction=np.asarray(reaction_diffusion.diffusion_reaction(
            functions.GaussianRandomField(kernel="rbf", n_grid=100).sample(
                1, key=keys[5], dtype=f64), nt=100))[0],
        heat_times=[0.0, 0.001, 0.005, 0.02],
        heat=np.stack([np.asarray(heat.periodic(u0, tau, 1.0))[0] for tau in (0.0, 0.001, 0.005,
                                                                               0.02)]),
        burgers=np.asarray(burgers.burgers(2 * u0 / np.max(np.abs(np.asarray(u0))), nu=0.01,
                                           t_final=0.3, nt=300, save_every=100))[0])
    # 2. convergence orders
    orders = {"antiderivative": convergence.trapezoid_order(cfg.trapezoid_grids),
              **convergence.rk4_orders(cfg.ode_grid, cfg.ode_substeps),
              **convergence.dr_orders(cfg.dr_nt, cfg.dr_nx),
              "burgers_time": convergence.burgers_order(cfg.burgers_n, cfg.burgers_nu,
                                                        cfg.burgers_t, cfg.burgers_nt)}
    # 3. GRF covariances
    grf_cov, mid, kkey = {}, cfg.grf_grid // 2, jax.random.fold_in(key, 2)
    for i, kernel in enumerate(functions.KERNELS):
        g = functions.GaussianRandomField(kernel=kernel, length_scale=cfg.grf_length_scale,
                                          n_grid=cfg.grf_grid)
        s = np.asarray(g.sample(cfg.grf_samples, key=jax.random.fold_in(kkey, i), dtype=f64))
        cov = g.covariance()
        grf_cov[kernel] = dict(z_max=float(np.max(np.abs(functions.covariance_z_scores(s, cov)))),
                               row_emp=(s.T @ s / cfg.grf_samples)[mid], row_exact=cov[mid],
                               grid=g.grid)
    # 4. heat forward and backward
    n, nu, t, delta = cfg.heat_n, cfg.heat_nu, cfg.heat_t, cfg.heat_delta
    field = functions.PeriodicPowerLawField(n=n, alpha=cfg.heat_alpha, k0=1.0)
    mu = np.asarray(field.spectrum())[: n // 2 + 1]  # prior variance per real coordinate
    prior_key, noise_key = jax.random.split(jax.random.fold_in(key, 3))
    uh = field.sample(cfg.heat_samples, key=prior_key, dtype=f64)
    times = [0.2 * t, t, 5 * t]
    decay = heat.mode_decay(uh[0], times, nu)
    f = heat.observe(uh, t, nu, delta, key=noise_key)
    cutoffs = np.arange(0, n // 2 + 1)
    exact_cut = heat.cutoff_mse(n, mu, t, nu, delta, cutoffs)
    best_k = int(cutoffs[np.argmin(exact_cut)])
    mc = lambda est: cl.mean_se(np.mean((np.asarray(est) - np.asarray(uh)) ** 2,  # noqa: E731
                                        axis=1))
    shown = [c for c in sorted(set(int(c) for c in np.linspace(0, best_k + 6, 10).round())
                               | {best_k}) if c <= n // 2]
    mc_cut = np.array([mc(heat.cutoff_inverse(f, t, nu, c)) for c in shown])  # [K, 2]
    mc_wiener = mc(heat.wiener_inverse(f, t, nu, delta, mu))
    wiener = heat.wiener_mse(n, mu, t, nu, delta)
    heat_out = dict(
        k=heat.wavenumbers(n), mu=mu, times=times, decay=decay["ratio"],
        mode_decay_max_dev=float(decay["deviation"].max()), cutoffs=cutoffs,
        exact_cut=exact_cut, best_k=best_k, best_cutoff_mse=float(exact_cut.min()),
        mc_cut_k=shown, mc_cut=mc_cut, wiener=wiener, mc_wiener=list(mc_wiener),
        naive=heat.naive_mse(n, t, nu, delta), prior_energy=float(np.sum(
            heat.multiplicities(n) * mu)), amplification=1.0 / heat.periodic_multiplier(
            heat.wavenumbers(n), t, nu), deltas=list(cfg.heat_deltas), delta=delta, nu=nu,
        mc_z_wiener=abs(mc_wiener[0] - wiener) / mc_wiener[1],
        mc_z_cutoff_max=max(abs(mse - exact_cut[c]) / se for c, (mse, se) in zip(shown, mc_cut)),
        by_delta={"best_cutoff": [float(np.min(heat.cutoff_mse(n, mu, t, nu, d, cutoffs)))
                                  for d in cfg.heat_deltas],
                  "wiener": [heat.wiener_mse(n, mu, t, nu, d) for d in cfg.heat_deltas],
                  "naive": [heat.naive_mse(n, t, nu, d) for d in cfg.heat_deltas]})
    return dict(samples=samples, orders=orders, grf=grf_cov, heat=heat_out,
                burgers_error_vs_cole_hopf=orders["burgers_time"]["best_error"])


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    out = [cl.within(f"{name}: observed convergence order within 0.2 of {o['theory']:g}",
                     o["order"], o["theory"], atol=0.2) for name, o in results["orders"].items()]
    m_cov = cfg.grf_grid * (cfg.grf_grid + 1) // 2  # distinct entries of a symmetric matrix
    out += [cl.upper_bound(f"GRF {kernel}: sample covariance matches the kernel (max |z| of the "
                           f"{m_cov} distinct entries, {cfg.grf_samples} samples, <= Bonferroni "
                           f"bound at family-wise level {cfg.level:g})", c["z_max"],
                           marginals.bonferroni_z(m_cov, cfg.level))
            for kernel, c in results["grf"].items()]
    h, bd = results["heat"], results["heat"]["by_delta"]
    return out + [
        cl.upper_bound("heat modes decay as exp(-4 pi^2 k^2 nu t): max_k |u_k(t) - "
                       "e^(-4pi^2k^2 nu t) u_k(0)| / max_k |u_k(0)|", h["mode_decay_max_dev"],
                       1e-12),
        cl.upper_bound("Wiener MSE <= best spectral-cutoff MSE <= naive-inverse MSE (exact "
                       "formulas; measured: Wiener, best cutoff)", [h["wiener"],
                       h["best_cutoff_mse"]], [h["best_cutoff_mse"], h["naive"]]),
        cl.upper_bound(f"Wiener <= best cutoff <= naive for every delta in {list(cfg.heat_deltas)}"
                       " (measured: Wiener and best cutoff per delta)",
                       bd["wiener"] + bd["best_cutoff"], bd["best_cutoff"] + bd["naive"]),
        cl.upper_bound(f"Monte Carlo MSEs of the Wiener and {len(h['mc_cut_k'])} cutoff estimators "
                       f"match the exact MSE (max |z| <= Bonferroni bound at family-wise level "
                       f"{cfg.level:g})", max(h["mc_z_wiener"], h["mc_z_cutoff_max"]),
                       marginals.bonferroni_z(len(h["mc_cut_k"]) + 1, cfg.level)),
    ]


def plot(results: dict, out_dir) -> list[str]:
    s, h = results["samples"], results["heat"]
    fig, axes = plotting.new_figure(2, 4, width=3.6, height=2.9)
    titles = ("GRF, RBF l=0.2", "GRF, Matérn-1/2 l=0.2", "sinusoids sin(2πfx), f<10")
    for ax, title, ys in zip(axes[0, :3], titles, s["spaces"]):
        ax.plot(s["space_grid"], np.asarray(ys).T, "-", linewidth=1.2)
        ax.set(title=title, xlabel="x")
    axes[0, 3].imshow(s["field2d"], cmap="RdBu_r", origin="lower", extent=(0, 1, 0, 1))
    axes[0, 3].set(title="2-D power-law field, α=3")
    for ax, name, title in ((axes[1, 0], "antiderivative", "antiderivative  s' = u"),
                            (axes[1, 1], "nonlinear_ode", "nonlinear ODE  s' = -s² + u"),
                            (axes[1, 2], "pendulum", "pendulum  s₁'' = -sin s₁ + u")):
        for i, (ui, si) in enumerate(zip(s["u"], s[name])):
            ax.plot(s["x"], ui, ":", color=f"C{i}", label="u (dotted)" if i == 0 else None)
            ax.plot(s["x"], si, "-", color=f"C{i}", label="G(u)" if i == 0 else None)
        ax.set(title=title, xlabel="x")
        ax.legend(fontsize=7)
    im = axes[1, 3].imshow(s["diffusion_reaction"], origin="lower", aspect="auto",
                           extent=(0, 1, 0, 1), cmap="viridis")
    axes[1, 3].set(title="diffusion–reaction s(x,t)", xlabel="x", ylabel="t")
    fig.colorbar(im, ax=axes[1, 3], shrink=0.8)
    for ax in axes[:, :3].flat:
        ax.grid(alpha=0.3)
    names = plotting.save(fig, f"{out_dir}/operator_samples.png")

    fig, ax = plotting.new_figure(1, 2, width=4.2, height=3.0)
    xp = np.arange(s["heat"].shape[1]) / s["heat"].shape[1]
    for j, (tau, y) in enumerate(zip(s["heat_times"], s["heat"])):
        ax[0, 0].plot(xp, y, color=f"C{j}", label=f"νt = {tau}")
    for j, snap in enumerate(s["burgers"]):
        ax[0, 1].plot(xp, snap, color=f"C{j}", label=f"t = {0.1 * j:.1f}")
    for a, title in zip(ax[0], ("heat semigroup e^{tνΔ}u₀", "viscous Burgers, ν = 0.01")):
        a.set(title=title, xlabel="x")
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    names += plotting.save(fig, f"{out_dir}/periodic_operators.png")

    fig, axes = plotting.new_figure(1, 1, width=5.2, height=4.0)
    for i, (name, o) in enumerate(results["orders"].items()):
        hh, e = np.asarray(o["h"]), np.asarray(o["err"])
        axes[0, 0].loglog(hh, e, "o-", color=f"C{i}",
                          label=f"{name}: {o['order']:.2f} (theory {o['theory']:g})")
        axes[0, 0].loglog(hh, e[-1] * (hh / hh[-1]) ** o["theory"], "--", color=f"C{i}",
                          linewidth=0.8)
    axes[0, 0].set(xlabel="step size h", ylabel="max error",
                   title="observed orders (dashed: theoretical slope)")
    axes[0, 0].legend(fontsize=6.5)
    axes[0, 0].grid(alpha=0.3, which="both")
    names += plotting.save(fig, f"{out_dir}/solver_orders.png")

    fig, axes = plotting.new_figure(1, 4, width=3.6, height=3.1)
    k = np.asarray(h["k"])
    for j, tau in enumerate(h["times"]):
        axes[0, 0].semilogy(k[1:], h["decay"][j][1:], "o", ms=2.5, color=f"C{j}",
                            label=f"measured, t={tau:g}")
        axes[0, 0].semilogy(k[1:], heat.periodic_multiplier(k[1:], tau, h["nu"]), "-",
                            color=f"C{j}", linewidth=0.8)
    axes[0, 0].set(ylim=(1e-17, 2), xlabel="wavenumber k",
                   title=r"forward: $|\hat u_k(t)/\hat u_k(0)|$ vs $e^{-4\pi^2k^2\nu t}$")
    axes[0, 1].semilogy(k, h["amplification"], "-",
                        label=r"naive inverse gain $e^{4\pi^2k^2\nu T}$")
    axes[0, 1].semilogy(k[1:], np.sqrt(h["mu"][1:]), "-", label=r"prior std $\sqrt{\mu_k}$")
    axes[0, 1].axhline(h["delta"], color="k", linestyle=":", label="noise δ")
    axes[0, 1].set(title="backward: gain vs prior vs noise", xlabel="wavenumber k",
                   ylim=(1e-8, 1e8))
    cs, kmax = np.asarray(h["mc_cut_k"]), max(h["mc_cut_k"]) + 1
    plotting.error_panel(
        axes[0, 2], h["cutoffs"][:kmax], {}, {"cutoff MSE(K), exact": h["exact_cut"][:kmax],
                                              "Wiener MSE (minimum)": np.full(kmax, h["wiener"])},
        title=f"MSE vs cutoff K (δ={h['delta']:g})", xlabel="cutoff K", ylabel="MSE")
    axes[0, 2].errorbar(cs, h["mc_cut"][:, 0], 2 * h["mc_cut"][:, 1], fmt="o", ms=3, color="C0",
                        label="cutoff, Monte Carlo")
    axes[0, 2].plot([0], [h["mc_wiener"][0]], "s", color="C1", ms=4, label="Wiener, Monte Carlo")
    axes[0, 2].axhline(h["prior_energy"], color="gray", linestyle=":", linewidth=0.8)
    plotting.error_panel(
        axes[0, 3], h["deltas"], {"best cutoff": h["by_delta"]["best_cutoff"],
                                  "Wiener (minimum)": h["by_delta"]["wiener"]},
        title="MSE vs noise level δ", xlabel="δ", ylabel="MSE", logx=True)
    naive = h["by_delta"]["naive"]
    axes[0, 3].text(0.03, 0.97, f"naive inverse: MSE {min(naive):.0e}–{max(naive):.0e}\n(off "
                    "scale)", transform=axes[0, 3].transAxes, va="top", fontsize=7)
    for ax in axes.flat:
        ax.legend(fontsize=6.5)
    return names + plotting.save(fig, f"{out_dir}/heat_inverse.png")
