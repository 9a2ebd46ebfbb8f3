r"""The neural tangent kernel of a finite ReLU network: convergence at init, laziness in training.

    python -m experiments run ntk                 # ~1 min on a 2-core CPU (float64)
    python -m experiments run ntk --preset full

Network: :func:`opdiff.approx.ntk.apply` in NTK parameterisation, ``depth`` hidden layers of
width :math:`n`, scalar output; ``n_train`` (+ ``n_test``) inputs uniform on :math:`S^{d-1}`;
every quantity averaged over ``seeds`` networks (:mod:`opdiff.approx.ntk_dynamics`).

1. **Convergence at initialisation.** :math:`\epsilon(n)=\|\hat\Theta_n-\Theta^\infty\|_F/
   \|\Theta^\infty\|_F` on the training inputs. At depth 1 :math:`\hat\Theta_n` is a mean of
   :math:`n` i.i.d. per-neuron terms with mean :math:`\Theta^\infty`: :math:`\mathbb E
   \epsilon^2=c/n` exactly; at depth 2 the fluctuations are :math:`n^{-1/2}` (CLT, Hanin &
   Nica). Claims (exact exponent): the fitted log-log slope is :math:`-1/2` within ``slope_z``
   Monte-Carlo standard errors (:func:`opdiff.claims.loglog_slope_mc_se`), depth 1 and
   (over ``depth2_seeds`` networks) depth 2. Finding: :math:`\sqrt n\,\epsilon(n_{max})`
   (the reference's 2.2 was measured at one width; it is not a bound).
2. **Kernel drift during training**, for each of ``train_activations`` (same initial
   parameters): full-batch GD (``optax.sgd`` through :func:`opdiff.fit`) on
   :math:`y=\sin(3x_1)+x_2x_3` for ``train_steps`` steps, :math:`\eta=` ``lr_scale``
   :math:`\cdot N/\lambda_{max}(\Theta^\infty)`. Measured: the kernel drift
   :math:`\|\hat\Theta_T-\hat\Theta_0\|_F/\|\hat\Theta_0\|_F` and the gap to the exactly
   linearised model :math:`\|f_T-f^{lin}_T\|/\|f^{lin}_T\|` on the test points. Lee et al.
   (2019, Thm 2.1; :math:`\phi'` Lipschitz) bound both by :math:`O(n^{-1/2})`: for erf two
   :func:`opdiff.claims.rate` claims (``rate_z`` SEs, smallest valid constant reported); ReLU
   is outside the theorem, its two slopes are findings. Far from tight (about :math:`n^{-1}`,
   Dyer & Gur-Ari 2020); numbers in ``notes/random_features.md``.

Figure ``ntk.png``: both parts with :math:`n^{-1/2}` (and :math:`n^{-1}`) reference lines.
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
from opdiff.approx import ntk
from opdiff.approx import ntk_dynamics as nd
from opdiff.approx.ntk_dynamics import check_width_sweep as _positive_ints

from ._config import MAY_BE_EMPTY, Count, NonNegative, Positive, Range, Seed

NAME = "ntk"
DESCRIPTION = "empirical vs analytic NTK of a ReLU net vs width (n^-1/2), kernel drift in training"
DTYPE = "float64"

REFERENCE_CONSTANT = 2.2  # sqrt(n) eps(n) measured in the reference (§5.1), one width: no bound


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    input_dim: Count = 5
    n_train: Count = 20
    n_test: Count = 50
    activation: str = "relu"
    sigma_w: Positive = 1.0
    sigma_b: NonNegative = 0.0
    seeds: Count = 5
    widths: tuple[Count, ...] = (64, 256, 1024, 4096, 16384)
    depth2_seeds: Count = 8
    depth2_widths: Annotated[tuple[Count, ...], MAY_BE_EMPTY] = (128, 512, 2048)
    train_activations: tuple[str, ...] = ("relu", "erf")
    train_widths: tuple[Count, ...] = (64, 256, 1024, 4096)
    train_steps: Count = 500
    lr_scale: Annotated[float, Range(0, 2, lo_open=True, hi_open=True)] = 1.0
    slope_z: Positive = 3.0  # exact exponent: |slope + 1/2| <= slope_z Monte-Carlo SEs
    rate_z: Positive = 2.0  # claims.rate: slope <= -1/2 + rate_z residual SEs

    def __post_init__(self):
        for name in ("input_dim", "n_train", "n_test", "seeds", "depth2_seeds", "train_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.activation not in ntk.ACTIVATIONS:
            raise ValueError(f"activation must be one of {ntk.ACTIVATIONS}, got "
                             f"{self.activation!r}")
        if not self.train_activations or any(a not in ntk.ACTIVATIONS
                                             for a in self.train_activations):
            raise ValueError(f"train_activations must be a non-empty tuple from "
                             f"{ntk.ACTIVATIONS}, got {self.train_activations!r}")
        if not self.sigma_w > 0:
            raise ValueError(f"sigma_w must be > 0, got {self.sigma_w!r}")
        if not self.sigma_b >= 0:
            raise ValueError(f"sigma_b must be >= 0, got {self.sigma_b!r}")
        _positive_ints("widths", self.widths)
        _positive_ints("depth2_widths", self.depth2_widths, allow_empty=True)
        _positive_ints("train_widths", self.train_widths)
        if not 0.0 < self.lr_scale < 2.0:
            raise ValueError(f"lr_scale must be in (0, 2) (stable linearised GD), got "
                             f"{self.lr_scale!r}")
        for name in ("slope_z", "rate_z"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "seeds * (n_train + n_test) * max(widths + train_widths) * (input_dim + 2)":
                (self.seeds * (self.n_train + self.n_test) * max(self.widths + self.train_widths)
                 * (self.input_dim + 2)),
            "depth2_seeds * max(depth2_widths) ** 2":
                self.depth2_seeds * max(self.depth2_widths, default=0) ** 2,
            "(n_train + n_test) ** 2": (self.n_train + self.n_test) ** 2,
        }


PRESETS = {
    "smoke": Config(seeds=8, widths=(256, 4096), depth2_widths=(), train_activations=("relu",),
                    train_widths=(256, 4096), train_steps=100),
    "quick": Config(),
    "full": Config(seeds=10, widths=(64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768),
                   depth2_seeds=10, depth2_widths=(128, 256, 512, 1024, 2048, 4096),
                   train_widths=(64, 128, 256, 512, 1024, 2048, 4096, 8192), train_steps=2000),
}


def run(cfg: Config, key) -> dict:
    points = nd.sphere_points(jax.random.fold_in(key, 0), cfg.n_train + cfg.n_test,
                              cfg.input_dim)
    x, x_test = points[: cfg.n_train], points[cfg.n_train:]
    y = jax.vmap(nd.smooth_target)(x)
    sigmas = dict(sigma_w=cfg.sigma_w, sigma_b=cfg.sigma_b)
    net = {a: nd.scalar_network(a, cfg.sigma_w, cfg.sigma_b)
           for a in {cfg.activation, *cfg.train_activations}}
    fn = net[cfg.activation]
    stats = lambda v: (cl.mean_se(v, axis=1) if v.shape[1] > 1  # noqa: E731  (mean, se)/width
                       else (v.mean(axis=1), 0 * v[:, 0]))
    slope = lambda w, v: cl.loglog_slope(w, v)[0] if len(w) > 1 else float("nan")  # noqa: E731
    mc_se = lambda w, v, e: (cl.loglog_slope_mc_se(w, v, e)  # noqa: E731
                             if len(w) > 1 else float("nan"))

    # depth 1: one set of networks per width serves both parts (same keys, same init; every
    # training activation starts from the same parameters)
    inits, kernels = {a: {} for a in cfg.train_activations}, {}
    for n in sorted(set(cfg.widths) | set(cfg.train_widths)):
        keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, 2), n), cfg.seeds)
        widths = (cfg.input_dim, n, 1)
        if n not in cfg.train_widths:
            kernels[n] = nd.init_kernels(keys, x, widths, fn)
            continue
        params0, state0 = nd.init_state(keys, x, x_test, widths, fn)
        kernels[n] = state0["theta"]
        for a in cfg.train_activations:
            inits[a][n] = (params0, state0 if a == cfg.activation
                           else nd.kernel_state(params0, x, x_test, net[a]))
    theta_inf = ntk.analytic_ntk(x, depth=1, activation=cfg.activation, **sigmas)[1]
    w1 = np.asarray(cfg.widths)
    mean, sem = stats(np.stack([np.asarray(nd.relative_frobenius(kernels[n], theta_inf))
                                for n in cfg.widths]))
    out = dict(
        widths=w1, init_rel_error=mean, init_rel_error_sem=sem,
        init_error_times_sqrt_n=mean * np.sqrt(w1.astype(float)),
        init_error_times_sqrt_n_sem=sem * np.sqrt(w1.astype(float)), init_slope=slope(w1, mean),
        init_slope_mc_se=mc_se(w1, mean, sem),
        train_widths=np.asarray(cfg.train_widths), initial_train_loss=float(0.5 * jnp.mean(y**2)),
        slope_theory=-0.5, reference_constant=REFERENCE_CONSTANT, activation=cfg.activation,
        n_train=cfg.n_train, input_dim=cfg.input_dim, train_steps=cfg.train_steps,
        train_activations=list(cfg.train_activations))
    if cfg.depth2_widths:
        theta_inf2 = ntk.analytic_ntk(x, depth=2, activation=cfg.activation, **sigmas)[1]
        w2 = np.asarray(cfg.depth2_widths)
        mean2, sem2 = stats(np.stack([np.asarray(nd.relative_frobenius(nd.init_kernels(
            jax.random.split(jax.random.fold_in(jax.random.fold_in(key, 3), n),
                             cfg.depth2_seeds), x, (cfg.input_dim, n, n, 1), fn), theta_inf2))
            for n in cfg.depth2_widths]))
        out.update(depth2_widths=w2, depth2_init_rel_error=mean2, depth2_init_rel_error_sem=sem2,
                   depth2_error_times_sqrt_n=mean2 * np.sqrt(w2.astype(float)),
                   depth2_init_slope=slope(w2, mean2),
                   depth2_init_slope_mc_se=mc_se(w2, mean2, sem2))
    tw = np.asarray(cfg.train_widths, float)
    for a in cfg.train_activations:
        lam_max = float(jnp.linalg.eigvalsh(
            ntk.analytic_ntk(x, depth=1, activation=a, **sigmas)[1])[-1])
        eta = cfg.lr_scale * cfg.n_train / lam_max
        tr = nd.train_drift({n: inits[a][n] for n in cfg.train_widths}, x, y, x_test, eta,
                            cfg.train_steps, jax.random.fold_in(key, 4), net[a])
        (drift, drift_sem), (gap, gap_sem) = stats(tr["drift"]), stats(tr["gap"])
        out.update({
            f"{a}_ntk_drift": drift, f"{a}_ntk_drift_sem": drift_sem,
            f"{a}_ntk_drift_times_sqrt_n": drift * np.sqrt(tw),
            f"{a}_ntk_drift_times_n": drift * tw, f"{a}_drift_slope": slope(tw, drift),
            f"{a}_drift_slope_mc_se": mc_se(tw, drift, drift_sem),
            f"{a}_linearisation_gap": gap, f"{a}_linearisation_gap_sem": gap_sem,
            f"{a}_gap_slope": slope(tw, gap), f"{a}_gap_slope_mc_se": mc_se(tw, gap, gap_sem),
            f"{a}_final_train_loss": stats(tr["final_loss"])[0],
            f"{a}_learning_rate": eta, f"{a}_lambda_max_theta_inf": lam_max})
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    r, out, z = results, [], cfg.slope_z
    exact = ("depth-{d} {act} empirical NTK at init -> analytic NTK: fitted log-log slope of the "
             "relative Frobenius error over widths {w} ({k} seeds) is -1/2 within {z:g} "
             "Monte-Carlo SE ({slope:.3f} +- {se:.3f}; {why})")
    for d, w, k, key, why in (
            (1, cfg.widths, cfg.seeds, "init", "E eps^2 = c/n exactly"),
            (2, cfg.depth2_widths, cfg.depth2_seeds, "depth2_init", "CLT, Hanin & Nica")):
        if len(w) > 1:
            slope, se = r[f"{key}_slope"], r[f"{key}_slope_mc_se"]
            out.append(cl.within(exact.format(d=d, act=cfg.activation, w=list(w), k=k, z=z,
                                              slope=slope, se=se, why=why),
                                 slope, -0.5, atol=z * se))
    n_max = cfg.widths[-1]
    out.append(cl.finding(
        f"depth-1 sqrt(n) x relative Frobenius error at width {n_max} (the reference measured "
        f"{REFERENCE_CONSTANT} at one width; no bound has this constant)",
        r["init_error_times_sqrt_n"][-1], r["init_error_times_sqrt_n_sem"][-1]))
    if len(cfg.train_widths) > 1:
        tw = cfg.train_widths
        what = {"drift": (f"NTK drift ||Theta_T - Theta_0||_F/||Theta_0||_F after "
                          f"{cfg.train_steps} GD steps (eta = {cfg.lr_scale:g} N/lambda_max)",
                          "ntk_drift", "drift_slope"),
                "gap": (f"trained net vs its linearisation at init (relative L2 gap on "
                        f"{cfg.n_test} test points)", "linearisation_gap", "gap_slope")}
        for a in cfg.train_activations:
            for text, values, slope in what.values():
                if a == "erf":  # Lee et al. (2019), Thm 2.1: phi' Lipschitz
                    out.append(cl.rate(
                        f"erf: {text} is O(n^-1/2) (Lee et al. 2019, Thm 2.1): fitted slope "
                        f"over widths {list(tw)} <= -1/2 + {cfg.rate_z:g} SE",
                        r[f"{a}_{values}"], tw, -0.5, z=cfg.rate_z))
                else:  # ReLU: phi' is a step, outside the theorem
                    out.append(cl.finding(
                        f"{a}: fitted log-log slope of the {text} over widths {list(tw)} "
                        f"(Lee et al.'s O(n^-1/2) needs a Lipschitz phi'; no theorem for {a})",
                        r[f"{a}_{slope}"], r[f"{a}_{slope}_mc_se"]))
    return out


def plot(results: dict, out_dir: Path) -> list[str]:
    r = results
    w1, tw, c = r["widths"].astype(float), r["train_widths"].astype(float), REFERENCE_CONSTANT
    fig, axes = plotting.new_figure(1, 2)
    plotting.error_panel(
        axes[0, 0], r["widths"], {"depth 1": r["init_rel_error"]},
        {r"$n^{-1/2}$ through the first point": r["init_rel_error"][0] * np.sqrt(w1[0] / w1),
         rf"${c}\,n^{{-1/2}}$ (reference, depth 1)": c / np.sqrt(w1)},
        title=rf"NTK at init, {r['activation']}, {r['n_train']} points on "
              rf"$S^{{{r['input_dim'] - 1}}}$",
        xlabel="width n", ylabel=r"$\|\hat\Theta-\Theta^\infty\|_F/\|\Theta^\infty\|_F$",
        logx=True)
    if "depth2_widths" in r:
        axes[0, 0].plot(r["depth2_widths"], r["depth2_init_rel_error"], label="depth 2",
                        **{**plotting.MEASURED_STYLE, "marker": "s"})
        axes[0, 0].legend(fontsize=7)
    measured = {}
    for a in r["train_activations"]:
        measured[rf"{a}: kernel drift $\|\hat\Theta_T-\hat\Theta_0\|_F/\|\hat\Theta_0\|_F$"] = \
            r[f"{a}_ntk_drift"]
        measured[rf"{a}: net vs linearised, $\|f_T-f^{{lin}}_T\|/\|f^{{lin}}_T\|$"] = \
            r[f"{a}_linearisation_gap"]
    first = r[f"{r['train_activations'][0]}_ntk_drift"]
    plotting.error_panel(
        axes[0, 1], tw, measured,
        {r"$n^{-1/2}$ (Lee et al. bound)": first[0] * np.sqrt(tw[0] / tw),
         r"$n^{-1}$": first[0] * (tw[0] / tw)},
        title=f"{r['train_steps']} full-batch GD steps, depth 1", xlabel="width n",
        ylabel="relative change", logx=True)
    return plotting.save(fig, Path(out_dir) / "ntk.png")
