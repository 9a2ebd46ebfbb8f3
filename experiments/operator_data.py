r"""The data side of operator learning: input spaces, reference operators, the heat inverse problem.

    python -m experiments run operator_data              # ~1 min on a 2-core CPU (float64)

1. **Samples** of every input space (RBF / Matérn GRFs, periodic power-law field, sinusoids)
   and their images under every reference operator (antiderivative, nonlinear ODE, pendulum,
   diffusion–reaction, Burgers, heat semigroup): ``operator_samples.png``.
2. **Solver convergence**: observed orders of the trapezoid antiderivative (2), RK4 for the
   nonlinear ODE and the pendulum (4), CNAB2 diffusion–reaction in time and space (2, 2) and
   ETDRK4 Burgers in time (4, against the exact Cole–Hopf solution): ``solver_orders.png``.
   Claim: each within 0.2 of theory.
3. **GRF covariances**: the sample covariance of every kernel within the statistical
   tolerance of the kernel (max entrywise z-score below 5).
4. **The heat operator forward and backward**: mode decay :math:`e^{-4\pi^2k^2\nu t}`, the
   naive inverse's amplification, and the mean-square errors of the naive, spectral-cutoff
   and Wiener estimators against :math:`K` and :math:`\delta`, exact and Monte Carlo:
   ``heat_inverse.png``. Claim: Wiener MSE <= best cutoff MSE <= naive MSE, and the Monte Carlo
   errors agree with the exact ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import functions, plotting
from opdiff.operators import burgers, heat, integral, ode, reaction_diffusion

from experiments._config import AtLeastTwo, Count, Positive, Range, Seed
from experiments._report import Report

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


def _slope(h, err) -> float:
    """Least-squares slope of log(err) against log(h)."""
    return float(np.polyfit(np.log(np.asarray(h, float)), np.log(np.asarray(err, float)), 1)[0])


# --- 2. convergence studies ----------------------------------------------------------------


def _smooth_input(x):
    return np.sin(2 * np.pi * x) + 0.5 * np.cos(5 * x) + x


def trapezoid_order(cfg: Config) -> dict:
    # G(u) for u = cos(2 pi x) + 2x is sin(2 pi x)/(2 pi) + x^2: the cumulative trapezoid
    # (exact for the piecewise-linear u) converges to it at order 2.
    errs, hs = [], []
    for n in cfg.trapezoid_grids:
        x = np.linspace(0.0, 1.0, n)
        u = np.cos(2 * np.pi * x) + 2 * x
        s = np.asarray(integral.antiderivative(jnp.asarray(u[None]), jnp.asarray(x)))[0]
        errs.append(np.max(np.abs(s - (np.sin(2 * np.pi * x) / (2 * np.pi) + x * x))))
        hs.append(1.0 / (n - 1))
    return dict(h=np.array(hs), err=np.array(errs), order=_slope(hs, errs), theory=2.0)


def rk4_orders(cfg: Config) -> dict:
    # Refine the RK4 step inside each interval of a fixed grid: the input stays the same
    # piecewise-linear function, so the reference is the same problem at 16x the finest step.
    x = np.linspace(0.0, 1.0, cfg.ode_grid)
    u = jnp.asarray(3 * _smooth_input(x)[None])
    grid = jnp.asarray(x)
    out = {}
    for name, solve in (("nonlinear_ode", ode.nonlinear_ode), ("pendulum", ode.pendulum)):
        ref = np.asarray(solve(u, grid, substeps=16 * max(cfg.ode_substeps)))
        errs = [np.max(np.abs(np.asarray(solve(u, grid, substeps=m)) - ref))
                for m in cfg.ode_substeps]
        hs = [1.0 / ((cfg.ode_grid - 1) * m) for m in cfg.ode_substeps]
        out[name] = dict(h=np.array(hs), err=np.array(errs), order=_slope(hs, errs), theory=4.0)
    return out


def dr_orders(cfg: Config) -> dict:
    # Time: fixed nx, refine nt against nt = 32x the finest. Space: nested grids
    # x_j = j/(nx-1), refine nx against a 4x finer grid sampled at the coarse nodes, with a
    # small time step so that the time error is negligible.
    nx = 41
    x = np.asarray(reaction_diffusion.grid(nx), np.float64)
    u = jnp.asarray(_smooth_input(x)[None])
    ref = np.asarray(reaction_diffusion.diffusion_reaction(u, nt=32 * max(cfg.dr_nt)))[0, -1]
    t_err = [np.max(np.abs(np.asarray(reaction_diffusion.diffusion_reaction(u, nt=m))[0, -1] - ref))
             for m in cfg.dr_nt]
    t_h = [1.0 / m for m in cfg.dr_nt]

    fine = 4 * (max(cfg.dr_nx) - 1) + 1
    nt_space = 2000

    def final(n):
        xs = np.asarray(reaction_diffusion.grid(n), np.float64)
        s = reaction_diffusion.diffusion_reaction(jnp.asarray(_smooth_input(xs)[None]), nt=nt_space)
        return np.asarray(s)[0, -1]

    ref_x = final(fine)
    x_err = []
    for n in cfg.dr_nx:
        stride = (fine - 1) // (n - 1)
        x_err.append(np.max(np.abs(final(n) - ref_x[::stride])))
    x_h = [1.0 / (n - 1) for n in cfg.dr_nx]
    return {
        "diffusion_reaction_time": dict(h=np.array(t_h), err=np.array(t_err),
                                        order=_slope(t_h, t_err), theory=2.0),
        "diffusion_reaction_space": dict(h=np.array(x_h), err=np.array(x_err),
                                         order=_slope(x_h, x_err), theory=2.0),
    }


def cole_hopf(u0_fn_integral, nu: float, t: float, n: int, n_fine: int = 4096) -> np.ndarray:
    r"""Exact Burgers solution :math:`u=-2\nu\phi_x/\phi` at time ``t`` on the ``n``-grid, with
    :math:`\phi` solving the heat equation from :math:`\phi_0=\exp(-\int_0^xu_0/(2\nu))`
    (periodic for zero-mean :math:`u_0`), each Fourier mode advanced exactly."""
    xf = np.arange(n_fine) / n_fine
    phi0 = np.exp(-u0_fn_integral(xf) / (2 * nu))
    c = np.fft.rfft(phi0)
    k = np.arange(c.size)
    c_t = c * np.exp(-nu * (2 * np.pi * k) ** 2 * t)
    phi = np.fft.irfft(c_t, n_fine)
    dphi = np.fft.irfft(c_t * (2j * np.pi * k), n_fine)
    u = -2 * nu * dphi / phi
    return u[:: n_fine // n]


def burgers_order(cfg: Config) -> dict:
    n, nu, t = cfg.burgers_n, cfg.burgers_nu, cfg.burgers_t
    x = np.arange(n) / n
    u0 = np.sin(2 * np.pi * x)
    exact = cole_hopf(lambda z: (1 - np.cos(2 * np.pi * z)) / (2 * np.pi), nu, t, n)
    errs = [np.max(np.abs(np.asarray(burgers.burgers(jnp.asarray(u0[None]), nu=nu, t_final=t,
                                                     nt=m))[0] - exact))
            for m in cfg.burgers_nt]
    hs = [t / m for m in cfg.burgers_nt]
    return dict(h=np.array(hs), err=np.array(errs), order=_slope(hs, errs), theory=4.0,
                best_error=float(min(errs)))


# --- 3. GRF covariance -----------------------------------------------------------------------


def grf_covariance_zscores(cfg: Config, key) -> dict:
    out = {}
    for i, kernel in enumerate(functions.KERNELS):
        grf = functions.GaussianRandomField(kernel=kernel, length_scale=cfg.grf_length_scale,
                                            n_grid=cfg.grf_grid)
        u = np.asarray(grf.sample(cfg.grf_samples, key=jax.random.fold_in(key, i),
                                  dtype=jnp.float64))
        emp = u.T @ u / cfg.grf_samples  # mean is known to be 0
        cov = grf.covariance()
        d = np.diag(cov)
        std = np.sqrt((np.outer(d, d) + cov**2) / cfg.grf_samples)  # of a product moment
        out[kernel] = dict(z_max=float(np.max(np.abs(emp - cov) / std)),
                           row_emp=emp[cfg.grf_grid // 2], row_exact=cov[cfg.grf_grid // 2],
                           grid=grf.grid)
    return out


# --- 4. heat forward/backward ----------------------------------------------------------------


def heat_study(cfg: Config, key) -> dict:
    n, nu, t, delta = cfg.heat_n, cfg.heat_nu, cfg.heat_t, cfg.heat_delta
    field = functions.PeriodicPowerLawField(n=n, alpha=cfg.heat_alpha, k0=1.0)
    # Per real Fourier coordinate, the prior variance of mode k is E|fft(u)/n|^2 = P(k).
    mu = np.asarray(field.spectrum())[: n // 2 + 1]
    k = heat.wavenumbers(n)
    prior_key, noise_key = jax.random.split(key)
    u = field.sample(cfg.heat_samples, key=prior_key, dtype=jnp.float64)

    # forward: the rFFT coefficients of e^{t nu Laplacian} u against e^{-4 pi^2 k^2 nu t} u_k
    times = (0.2 * t, t, 5 * t)
    c0 = np.fft.rfft(np.asarray(u[0]))
    decay, coef_dev = {}, {}
    for tau in times:
        ct = np.fft.rfft(np.asarray(heat.periodic(u[:1], tau, nu))[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            decay[tau] = np.abs(ct) / np.abs(c0)
        pred = heat.periodic_multiplier(k, tau, nu) * c0
        coef_dev[tau] = float(np.max(np.abs(ct - pred)) / np.max(np.abs(c0)))
    # backward
    f = heat.observe(u, t, nu, delta, key=noise_key)
    cutoffs = np.arange(0, n // 2 + 1)
    exact_cut = heat.cutoff_mse(n, mu, t, nu, delta, cutoffs)
    best_k = int(cutoffs[np.argmin(exact_cut)])

    def mc(est):
        per_sample = np.mean((np.asarray(est) - np.asarray(u)) ** 2, axis=1)
        return float(per_sample.mean()), float(per_sample.std(ddof=1) / np.sqrt(len(per_sample)))

    shown = sorted(set(int(c) for c in np.linspace(0, best_k + 6, 10).round()) | {best_k})
    mc_cut = {c: mc(heat.cutoff_inverse(f, t, nu, c)) for c in shown if c <= n // 2}
    mc_wiener = mc(heat.wiener_inverse(f, t, nu, delta, mu))
    by_delta = {
        "best_cutoff": [float(np.min(heat.cutoff_mse(n, mu, t, nu, d, cutoffs)))
                        for d in cfg.heat_deltas],
        "wiener": [heat.wiener_mse(n, mu, t, nu, d) for d in cfg.heat_deltas],
        "naive": [heat.naive_mse(n, t, nu, d) for d in cfg.heat_deltas],
    }
    return dict(k=k, mu=mu, decay=decay, coef_dev=coef_dev, times=times, cutoffs=cutoffs, exact_cut=exact_cut,
                best_k=best_k, mc_cut=mc_cut, wiener=heat.wiener_mse(n, mu, t, nu, delta),
                mc_wiener=mc_wiener, naive=heat.naive_mse(n, t, nu, delta),
                amplification=1.0 / heat.periodic_multiplier(k, t, nu), by_delta=by_delta,
                prior_energy=float(np.sum(heat.multiplicities(n) * mu)))


# --- 1. samples figure -----------------------------------------------------------------------


def samples_figure(cfg: Config, key, out_dir: Path) -> list[str]:
    keys = jax.random.split(key, 8)
    m = cfg.n_examples
    fig, axes = plotting.new_figure(2, 4, width=3.6, height=2.9)

    def show(ax, x, ys, title, style="-", label=None):
        for i, y in enumerate(ys):
            ax.plot(x, y, style, color=f"C{i}", linewidth=1.2,
                    label=label if (label and i == 0) else None)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)

    spaces = [
        ("GRF, RBF l=0.2", functions.GaussianRandomField(kernel="rbf", n_grid=400)),
        ("GRF, Matérn-1/2 l=0.2", functions.GaussianRandomField(kernel="matern12", n_grid=400)),
        ("sinusoids sin(2πfx), f<10", functions.Sinusoids(f_max=10.0, n_grid=400)),
    ]
    for ax, (title, space), k in zip(axes[0, :3], spaces, keys):
        show(ax, space.grid, np.asarray(space.sample(m, key=k, dtype=jnp.float64)), title)
        ax.set_xlabel("x")
    field2d = functions.PeriodicPowerLawField(n=(96, 96), alpha=3.0)
    img = np.asarray(field2d.sample(1, key=keys[3], dtype=jnp.float64))[0]
    axes[0, 3].imshow(img, cmap="RdBu_r", origin="lower", extent=(0, 1, 0, 1))
    axes[0, 3].set_title("2-D power-law field, α=3", fontsize=9)

    grf = functions.GaussianRandomField(kernel="rbf", n_grid=201)
    x = grf.grid
    u = grf.sample(m, key=keys[4], dtype=jnp.float64)
    s_anti = np.asarray(integral.antiderivative(u, jnp.asarray(x)))
    s_ode = np.asarray(ode.nonlinear_ode(u, jnp.asarray(x), substeps=4))
    s_pend = np.asarray(ode.pendulum(u, jnp.asarray(x), substeps=4))[..., 0]
    for ax, s, title in ((axes[1, 0], s_anti, "antiderivative  s' = u"),
                         (axes[1, 1], s_ode, "nonlinear ODE  s' = -s² + u"),
                         (axes[1, 2], s_pend, "pendulum  s₁'' = -sin s₁ + u")):
        show(ax, x, np.asarray(u), title, style=":", label="u (dotted)")
        show(ax, x, s, title, label="G(u)")
        ax.set_xlabel("x")
        ax.legend(fontsize=7)
    g100 = functions.GaussianRandomField(kernel="rbf", n_grid=100)
    dr = np.asarray(reaction_diffusion.diffusion_reaction(
        g100.sample(1, key=keys[5], dtype=jnp.float64), nt=100))[0]
    im = axes[1, 3].imshow(dr, origin="lower", aspect="auto", extent=(0, 1, 0, 1), cmap="viridis")
    axes[1, 3].set_title("diffusion–reaction s(x,t)", fontsize=9)
    axes[1, 3].set_xlabel("x")
    axes[1, 3].set_ylabel("t")
    fig.colorbar(im, ax=axes[1, 3], shrink=0.8)
    names = plotting.save(fig, out_dir / "operator_samples.png")

    # heat and Burgers on one periodic sample
    fig2, ax2 = plotting.new_figure(1, 2, width=4.2, height=3.0)
    field = functions.PeriodicPowerLawField(n=256, alpha=2.5)
    xp = np.arange(256) / 256
    u0 = field.sample(1, key=keys[6], dtype=jnp.float64)
    for j, tau in enumerate((0.0, 0.001, 0.005, 0.02)):
        ax2[0, 0].plot(xp, np.asarray(heat.periodic(u0, tau, 1.0))[0], color=f"C{j}",
                       label=f"νt = {tau}")
    ax2[0, 0].set_title("heat semigroup e^{tνΔ}u₀", fontsize=9)
    ax2[0, 0].legend(fontsize=7)
    u0b = 2 * u0 / np.max(np.abs(np.asarray(u0)))
    snaps = np.asarray(burgers.burgers(u0b, nu=0.01, t_final=0.3, nt=300, save_every=100))[0]
    for j, snap in enumerate(snaps):
        ax2[0, 1].plot(xp, snap, color=f"C{j}", label=f"t = {0.1 * j:.1f}")
    ax2[0, 1].set_title("viscous Burgers, ν = 0.01", fontsize=9)
    ax2[0, 1].legend(fontsize=7)
    for a in ax2[0]:
        a.set_xlabel("x")
        a.grid(alpha=0.3)
    names += plotting.save(fig2, out_dir / "periodic_operators.png")
    return names


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    rep.figures += samples_figure(cfg, jax.random.fold_in(key, 1), out_dir)

    orders = {"antiderivative": trapezoid_order(cfg), **rk4_orders(cfg), **dr_orders(cfg),
              "burgers_time": burgers_order(cfg)}
    for name, o in orders.items():
        rep.metrics[f"order_{name}"] = o["order"]
        rep.metrics[f"errors_{name}"] = o["err"]
        rep.bounds[f"order_{name}_theory"] = o["theory"]
        rep.check(f"{name}: observed convergence order within 0.2 of {o['theory']:g}",
                  o["order"], o["theory"], abs(o["order"] - o["theory"]) <= 0.2)
    rep.metrics["burgers_error_vs_cole_hopf"] = orders["burgers_time"]["best_error"]

    fig, axes = plotting.new_figure(1, 1, width=5.2, height=4.0)
    ax = axes[0, 0]
    for i, (name, o) in enumerate(orders.items()):
        h, e = o["h"], o["err"]
        ax.loglog(h, e, "o-", color=f"C{i}", label=f"{name}: {o['order']:.2f} (theory {o['theory']:g})")
        ax.loglog(h, e[-1] * (h / h[-1]) ** o["theory"], "--", color=f"C{i}", linewidth=0.8)
    ax.set_xlabel("step size h")
    ax.set_ylabel("max error")
    ax.set_title("observed orders (dashed: theoretical slope)", fontsize=9)
    ax.legend(fontsize=6.5)
    ax.grid(alpha=0.3, which="both")
    rep.figures += plotting.save(fig, out_dir / "solver_orders.png")

    cov = grf_covariance_zscores(cfg, jax.random.fold_in(key, 2))
    for kernel, c in cov.items():
        rep.metrics[f"grf_cov_zmax_{kernel}"] = c["z_max"]
        rep.check(f"GRF {kernel}: sample covariance within 5 standard errors of the kernel "
                  f"(max |z| over {cfg.grf_grid}^2 entries, {cfg.grf_samples} samples)",
                  c["z_max"], 5.0, c["z_max"] < 5.0)

    h = heat_study(cfg, jax.random.fold_in(key, 3))
    max_dev = max(h["coef_dev"].values())
    rep.metrics["heat_mode_decay_max_dev"] = max_dev
    rep.check("heat modes decay as exp(-4 pi^2 k^2 nu t): max_k |u_k(t) - e^(-4pi^2k^2 nu t) "
              "u_k(0)| / max_k |u_k(0)|", max_dev, 1e-12, max_dev < 1e-12)
    best = float(h["exact_cut"].min())
    rep.metrics.update(heat_best_cutoff=h["best_k"], heat_mse_best_cutoff=best,
                       heat_mse_wiener=h["wiener"], heat_mse_naive=h["naive"],
                       heat_mc_mse_wiener=h["mc_wiener"][0],
                       heat_prior_energy=h["prior_energy"])
    rep.bounds.update(heat_exact_cutoff_mse=h["exact_cut"])
    rep.check("Wiener MSE <= best spectral-cutoff MSE <= naive-inverse MSE (exact formulas)",
              [h["wiener"], best, h["naive"]], "nondecreasing",
              h["wiener"] <= best <= h["naive"])
    order_ok = all(w <= b <= nv for w, b, nv in zip(h["by_delta"]["wiener"],
                                                    h["by_delta"]["best_cutoff"],
                                                    h["by_delta"]["naive"]))
    rep.check(f"Wiener <= best cutoff <= naive for every delta in {list(cfg.heat_deltas)}",
              order_ok, True, order_ok)
    z_w = abs(h["mc_wiener"][0] - h["wiener"]) / h["mc_wiener"][1]
    z_c = max(abs(m - h["exact_cut"][c]) / se for c, (m, se) in h["mc_cut"].items())
    rep.metrics.update(heat_mc_z_wiener=z_w, heat_mc_z_cutoff_max=z_c)
    rep.check("Monte Carlo MSEs of the Wiener and cutoff estimators match the exact MSE "
              "(max |z|)", max(z_w, z_c), 5.0, max(z_w, z_c) < 5.0)

    fig, axes = plotting.new_figure(1, 4, width=3.6, height=3.1)
    for j, tau in enumerate(h["times"]):
        axes[0, 0].semilogy(h["k"][1:], h["decay"][tau][1:], "o", ms=2.5, color=f"C{j}",
                            label=f"measured, t={tau:g}")
        axes[0, 0].semilogy(h["k"][1:], heat.periodic_multiplier(h["k"][1:], tau, cfg.heat_nu),
                            "-", color=f"C{j}", linewidth=0.8)
    axes[0, 0].set_ylim(1e-17, 2)
    axes[0, 0].set_title(r"forward: $|\hat u_k(t)/\hat u_k(0)|$ vs $e^{-4\pi^2k^2\nu t}$", fontsize=9)
    axes[0, 0].set_xlabel("wavenumber k")
    axes[0, 0].legend(fontsize=6.5)
    axes[0, 1].semilogy(h["k"], h["amplification"], "-", label=r"naive inverse gain $e^{4\pi^2k^2\nu T}$")
    axes[0, 1].semilogy(h["k"][1:], np.sqrt(h["mu"][1:]), "-", label=r"prior std $\sqrt{\mu_k}$")
    axes[0, 1].axhline(cfg.heat_delta, color="k", linestyle=":", label="noise δ")
    axes[0, 1].set_title("backward: gain vs prior vs noise", fontsize=9)
    axes[0, 1].set_xlabel("wavenumber k")
    axes[0, 1].set_ylim(1e-8, 1e8)
    axes[0, 1].legend(fontsize=6.5)
    cs = sorted(h["mc_cut"])
    plotting.error_panel(
        axes[0, 2], h["cutoffs"][: max(cs) + 1],
        {}, {"cutoff MSE(K), exact": h["exact_cut"][: max(cs) + 1],
             "Wiener MSE (minimum)": np.full(max(cs) + 1, h["wiener"])},
        title=f"MSE vs cutoff K (δ={cfg.heat_delta:g})", xlabel="cutoff K", ylabel="MSE")
    axes[0, 2].errorbar(cs, [h["mc_cut"][c][0] for c in cs], [2 * h["mc_cut"][c][1] for c in cs],
                        fmt="o", ms=3, color="C0", label="cutoff, Monte Carlo")
    axes[0, 2].plot([0], [h["mc_wiener"][0]], "s", color="C1", ms=4, label="Wiener, Monte Carlo")
    axes[0, 2].axhline(h["prior_energy"], color="gray", linestyle=":", linewidth=0.8)
    axes[0, 2].legend(fontsize=6.5)
    plotting.error_panel(
        axes[0, 3], cfg.heat_deltas, {"best cutoff": h["by_delta"]["best_cutoff"],
                                      "Wiener (minimum)": h["by_delta"]["wiener"]},
        title="MSE vs noise level δ", xlabel="δ", ylabel="MSE", logx=True)
    axes[0, 3].text(0.03, 0.97, f"naive inverse: MSE {min(h['by_delta']['naive']):.0e}"
                    f"–{max(h['by_delta']['naive']):.0e}\n(off scale)",
                    transform=axes[0, 3].transAxes, va="top", fontsize=7)
    rep.figures += plotting.save(fig, out_dir / "heat_inverse.png")
    return rep
