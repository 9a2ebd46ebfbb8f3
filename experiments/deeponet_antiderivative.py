r"""DeepONet on the antiderivative :math:`G(u)(x)=\int_0^xu`, the paper's default run, beside
Lu et al.'s published number, the PCA floor and the sensor (encoding) error.

    python -m experiments run deeponet_antiderivative            # ~1 min on a 2-core CPU
    python -m experiments run deeponet_antiderivative --preset full   # the paper's 50 000 steps

**Setup (Lu et al. 2021, ``lululxvi/deeponet`` defaults; reference §0, §1.2 [V]).** Inputs: a
GRF with RBF kernel, :math:`l=0.2`, variance 1, on 1000 points of [0, 1], sampled by opdiff's
default truncated Karhunen–Loève expansion (16 modes: the dropped eigenvalues are below 1e-10
of the largest; DeepXDE factors the kernel by Cholesky with a 1e-13 jitter); the branch
reads ``m = 100`` equispaced sensors, obtained by **cubic** (not-a-knot) interpolation from the
1000-point grid, as DeepXDE's ``GRF(interp="cubic")``. Labels are the *exact* antiderivative of
the piecewise-linear sampled function at the grid points (cumulative trapezoid), not the
paper's RK45 labels, which carry an MSE of about 4.4e-7 against the exact ones (reference §7
[C]): half of the paper's headline number is label noise, absent here. Unstacked DeepONet,
branch [100, 40, 40], trunk [1, 40, 40] (ReLU also on the trunk's last layer), output bias,
Glorot normal: 7 401 parameters. 10 000 training triplets (one random grid point per function),
Adam, loss MSE.

**Presets.**

* ``full``: the paper's run: full batch, Adam lr 1e-3 constant, 50 000 steps, evaluated every
  1000 steps, 100 000 test triplets. Claim: test MSE <= 1e-6 (paper: **9.27e-7** at its best
  checkpoint, step 46 000 [V]). As in DeepXDE, the *best checkpoint* is the evaluation with
  the lowest **training** loss; its test MSE is the claimed number, the last step's is
  reported beside it (reference §7: with a constant rate the last step was 2.5–3x worse).
  Meant for a GPU; run once on a shared 2-core CPU (13 min), seed 0: best checkpoint
  (step 44 000) **1.27e-6**, last step 4.0e-6 (the test MSE oscillates between 1.3e-6 and
  2e-5 over the last 15 000 constant-rate steps), so **the 1e-6 claim fails** by 27 % for
  this seed, as reference §7's DeepXDE rerun with exact labels (1.2e-6 best). The paper's
  9.27e-7 was scored against RK45 labels; it is not a threshold we can promise.
* ``quick``: claim test MSE <= 1e-5 in about a minute on a 2-core CPU. Plain full-batch Adam
  1e-3 cannot: measured here, it reaches 3.9e-5 after 3000 steps (~60 s at ~60 full-batch
  steps/s), and at 3000 steps a higher constant rate (2e-3: 3.0e-5) or a cosine/exponential
  decay of a full-batch run is no better (1e-4 to 2.5e-4). What works is many cheaper steps:
  **minibatches of 1000 triplets** (sampled with replacement from the same 10 000) and a
  **cosine decay from 3e-3 to 3e-5** over 20 000 steps: measured **3.8e-6** (about 35 s of
  training; the whole preset about 70 s on a shared 2-core CPU). Both deviations from the
  paper are in the config. 20 000 test triplets instead of 100 000 (data time).
* ``smoke``: a few seconds; the claims use loose levels that only say the pipeline learns.

**Aligned variant** (DeepXDE's ``antiderivative_aligned``, reference §2.3 [V]): 150 training
and 1000 test functions, each on 100 points (the grid points drawn once, without replacement,
separately for train and test), ``DeepONet.aligned`` (branch once per function, trunk once per
point), full batch, Adam 1e-3, 10 000 steps (DeepXDE's example), the same at every preset but
smoke. DeepXDE reports the "mean l2 relative error"; both it and the MSE are recorded
(DeepXDE's own aligned files carry a 1.4 % label error, reference §7, so their published
errors cannot be compared below ~1 %). With 150 training functions the error is
generalisation-limited (training MSE ~1.5e-5, test ~5e-5); measured, seed 0: mean relative
L2 2.4e-2 after 10 000 steps (2.8e-2 at step 7500, where a run evaluated every 2500 steps had
its lowest training MSE). Claim: <= 5e-2 (a factor ~2 for other seeds; no published number
to compare with).

**Theory beside the measurement.**

* **PCA floor** (Lanthaler–Mishra–Karniadakis 2022; :mod:`opdiff.theory.deeponet`): every
  DeepONet output lies in an affine space of dimension ``p``, so on any set of functions its
  Bochner error :math:`(\frac1n\sum_i\|G(u_i)-\mathcal N(u_i)\|_{L^2}^2)^{1/2}` is at least
  :math:`(\sum_{k>p}\hat\lambda_k)^{1/2}`, :math:`\hat\lambda_k` the eigenvalues of the (1/n)
  covariance of those outputs in the trapezoid inner product (Eckart–Young for the empirical
  measure: exact, no sampling slack). Computed on ``floor_funcs`` held-out functions on the full
  1000-point grid. For the RBF input with :math:`l=0.2` the floor at ``p = 40`` is at float32
  round-off (reference §4.4: negligible beyond p ≈ 20; here the 16-mode input makes the
  linear output rank at most 16), so the claim holds by a wide margin:
  the measured error is approximation, optimisation and generalisation error, not basis size.
  The figure shows the floor against ``p``, where it crosses the measured error.
* **Sensor error** (Lu et al. 2021, Thm 1; reference §4.5): with :math:`u_m` the
  piecewise-linear interpolant through the ``m`` sensor values, :math:`\kappa=\max|u-u_m|` and
  for :math:`s'=g(s,u)` with a ``c``-Lipschitz ``g`` (antiderivative: ``c = 1``, ``b - a = 1``)
  :math:`\max|G(u)-G(u_m)|\le c(b-a)\kappa e^{c(b-a)}`. Checked per held-out function with its
  measured :math:`\kappa`; the mean :math:`\kappa` is put beside the estimate
  :math:`0.4/((m-1)^2l^2)` (reference §4.5 [C]: constant 0.36–0.40 for :math:`l=0.2`, so the
  claim allows 0.7–1.3). The RMS of :math:`G(u)-G(u_m)` (piecewise-linear and cubic decoders)
  is what a perfect network reading these sensors through that decoder would still get wrong:
  recorded beside the network's RMSE.

Figure ``deeponet_antiderivative.png``: training and test MSE against the step with the paper's
9.27e-7, the claim level and the RK45 label error; the PCA floor against ``p`` with the
measured error and the sensor errors; three test functions, exact :math:`G(u)` and prediction;
the aligned variant's curves.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import data, functions, plotting
from opdiff import operator_learning as ol
from opdiff.nets import DeepONet, nnx
from opdiff.operators import catalog, integral
from opdiff.theory import checks
from opdiff.theory import deeponet as th

from experiments._config import AtLeastTwo, Count, NonNegInt, Positive, Range, Seed
from experiments._report import Report

NAME = "deeponet_antiderivative"
DESCRIPTION = "DeepONet antiderivative (Lu et al.'s run): test MSE vs 9.27e-7, PCA floor, sensors"
DTYPE = "float32"

PAPER_TEST_MSE = 9.27e-7  # lululxvi/deeponet README, best checkpoint (step 46 000) [V]
PAPER_TEST_MSE_WO_OUTLIERS = 6.97e-7  # same README [V]
PAPER_PARAMS = 7401  # [V]
RK45_LABEL_MSE = 4.4e-7  # the paper's RK45 training labels vs exact ones, reference §7 [C]
SENSOR_CONSTANT = 0.4  # E max|u - u_m| ~ c / ((m-1)^2 l^2), reference §4.5 [C]


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    length_scale: Positive = 0.2
    n_grid: Annotated[int, Range(lo=4)] = 1000
    n_sensors: AtLeastTwo = 100
    interp: str = "cubic"
    # unaligned (triplet) run
    n_train: Count = 10000
    n_test: Count = 100000
    p: Count = 40
    width: Count = 40
    branch_depth: Count = 1
    trunk_depth: Count = 1
    steps: Count = 50000
    lr: Positive = 1e-3
    schedule: str = "constant"
    final_lr_fraction: Annotated[float, Range(0, 1, lo_open=True)] = 1e-2
    batch_size: NonNegInt = 0  # 0: full batch
    eval_every: Count = 1000
    steps_per_call: Count = 100
    mse_threshold: Positive = 1e-6
    # aligned run (DeepXDE's antiderivative_aligned)
    aligned_train_funcs: Count = 150
    aligned_test_funcs: Count = 1000
    aligned_points: Count = 100
    aligned_steps: Count = 10000
    aligned_eval_every: Count = 1000
    aligned_rel_l2_threshold: Positive = 5e-2
    # held-out functions on the full grid: PCA floor and sensor error
    floor_funcs: AtLeastTwo = 2000
    floor_max_p: Count = 60
    n_examples: Count = 3

    def __post_init__(self):
        for name in ("n_train", "n_test", "p", "width", "branch_depth", "trunk_depth", "steps",
                     "eval_every", "steps_per_call", "aligned_train_funcs", "aligned_test_funcs",
                     "aligned_points", "aligned_steps", "aligned_eval_every", "n_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.batch_size < 0:
            raise ValueError("batch_size must be >= 0 (0: full batch)")
        if self.n_sensors < 2 or self.n_grid < 4:
            raise ValueError("n_sensors must be >= 2 and n_grid >= 4")
        if self.aligned_points > self.n_grid:
            raise ValueError("aligned_points must be <= n_grid")
        if self.floor_funcs < 2 or self.floor_max_p < self.p:
            raise ValueError("floor_funcs must be >= 2 and floor_max_p >= p")
        if self.interp not in functions.SENSOR_METHODS:
            raise ValueError(f"interp must be one of {functions.SENSOR_METHODS}")
        if self.schedule not in ol.SCHEDULES:
            raise ValueError(f"schedule must be one of {ol.SCHEDULES}")
        if not (self.lr > 0 and self.mse_threshold > 0 and self.aligned_rel_l2_threshold > 0):
            raise ValueError("lr and the thresholds must be > 0")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_grid ** 2": self.n_grid ** 2,
            "max(n_train, n_test) * max(n_sensors, width)":
                max(self.n_train, self.n_test) * max(self.n_sensors, self.width),
            "floor_funcs * n_grid": self.floor_funcs * self.n_grid,
            "max(aligned_train_funcs, aligned_test_funcs) * aligned_points * width":
                (max(self.aligned_train_funcs, self.aligned_test_funcs) * self.aligned_points
                 * self.width),
        }


PRESETS = {
    "smoke": Config(n_train=1000, n_test=2000, steps=400, batch_size=200, lr=3e-3,
                    schedule="cosine", eval_every=400, mse_threshold=1e-2,
                    aligned_train_funcs=50, aligned_test_funcs=100, aligned_steps=300,
                    aligned_eval_every=300, aligned_rel_l2_threshold=0.5, floor_funcs=200,
                    n_grid=500),
    "quick": Config(n_test=20000, steps=20000, batch_size=1000, lr=3e-3, schedule="cosine",
                    eval_every=10000, mse_threshold=1e-5, aligned_eval_every=5000,
                    floor_funcs=1000),
    "full": Config(),
}


def _model(cfg: Config, key) -> DeepONet:
    return DeepONet(cfg.n_sensors, 1, cfg.p, branch_width=cfg.width, branch_depth=cfg.branch_depth,
                    trunk_width=cfg.width, trunk_depth=cfg.trunk_depth, activation="relu",
                    kernel_init="glorot_normal", key=key)


def _n_params(model) -> int:
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def _train(cfg: Config, model, train, test, *, steps, lr, schedule, batch_size, eval_every, key):
    return ol.train_deeponet(model, train, steps=steps, key=key, lr=lr, schedule=schedule,
                             final_lr_fraction=cfg.final_lr_fraction,
                             batch_size=batch_size or None, steps_per_call=cfg.steps_per_call,
                             test_dataset=test, eval_every=min(eval_every, steps))


def held_out_grid_set(cfg: Config, grf, sensors, key) -> dict:
    """Held-out functions on the full grid: inputs at the sensors, exact outputs, and the
    sensor-reconstruction (decoder) errors."""
    grid = grf.grid
    u = grf.sample(cfg.floor_funcs, key=key)
    s = integral.antiderivative(u, grid)
    at_sensors = functions.interpolate(u, grid, sensors, cfg.interp)
    ds = data.AlignedDataset(np.asarray(at_sensors), sensors, grid[:, None], np.asarray(s),
                             {"operator": "antiderivative", "layout": "aligned"})
    out = {"dataset": ds, "u": np.asarray(u)}
    for decoder in ("linear", "cubic"):
        u_m = np.asarray(functions.interpolate(at_sensors, sensors, grid, decoder))
        kappa = np.max(np.abs(np.asarray(u) - u_m), axis=1)
        g_err = np.asarray(s) - np.asarray(integral.antiderivative(jnp.asarray(u_m), grid))
        out[decoder] = dict(kappa=kappa, sup=np.max(np.abs(g_err), axis=1),
                            rms=float(np.sqrt(np.mean(g_err.astype(np.float64) ** 2))))
    return out


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    k_train, k_test, k_al_train, k_al_test, k_floor, k_init, k_fit, k_al_init, k_al_fit = (
        jax.random.fold_in(key, i) for i in range(9))
    rep = Report()
    grf = functions.GaussianRandomField(kernel="rbf", length_scale=cfg.length_scale,
                                        n_grid=cfg.n_grid)
    sensors = functions.equispaced_sensors(cfg.n_sensors)
    op = catalog.antiderivative(grf.grid)
    kw = dict(sensors=sensors, interp=cfg.interp)
    train = data.make_unaligned(grf, op, n_funcs=cfg.n_train, key=k_train, **kw)
    test = data.make_unaligned(grf, op, n_funcs=cfg.n_test, key=k_test, **kw)

    # --- 1. the paper's unaligned run ------------------------------------------------------
    model = _model(cfg, k_init)
    n_params = _n_params(model)
    fit = _train(cfg, model, train, test, steps=cfg.steps, lr=cfg.lr, schedule=cfg.schedule,
                 batch_size=cfg.batch_size, eval_every=cfg.eval_every, key=k_fit)
    best, last = fit.best_test, fit.final_test
    i_min = int(np.argmin(fit.test_mse))
    rep.metrics.update(
        n_params=n_params,
        test_mse_best_checkpoint=best["mse"], best_step=fit.best_step,
        test_mse_last_step=last["mse"],
        test_mse_min_over_evaluations=float(fit.test_mse[i_min]),
        test_mse_min_step=int(fit.eval_steps[i_min]),
        test_mse_wo_outliers_best_checkpoint=best["mse_wo_outliers"],
        test_rel_l2_best_checkpoint=best["rel_l2"],
        test_max_abs_error_best_checkpoint=best["max_abs_error"],
        train_mse_best_checkpoint=float(fit.train_mse[fit.best_index]),
        eval_steps=fit.eval_steps, train_mse_curve=fit.train_mse, test_mse_curve=fit.test_mse,
        train_wall_s=fit.wall_s, steps_per_s=fit.steps_per_s,
    )
    rep.bounds.update(paper_test_mse=PAPER_TEST_MSE,
                      paper_test_mse_wo_outliers=PAPER_TEST_MSE_WO_OUTLIERS,
                      rk45_label_mse=RK45_LABEL_MSE, mse_threshold=cfg.mse_threshold)
    rep.check(f"unaligned test MSE <= {cfg.mse_threshold:g} on {cfg.n_test} triplets (best "
              f"checkpoint = lowest training MSE, DeepXDE's rule; paper: {PAPER_TEST_MSE:g} [V])",
              best["mse"], cfg.mse_threshold, best["mse"] <= cfg.mse_threshold)
    rep.check("DeepONet [100,40,40]x[1,40,40] with output bias has the paper's 7401 parameters",
              n_params, PAPER_PARAMS,
              n_params == PAPER_PARAMS or (cfg.p, cfg.width, cfg.n_sensors) != (40, 40, 100))

    # --- 2. PCA floor and sensor error on held-out functions on the full grid --------------
    held = held_out_grid_set(cfg, grf, sensors, k_floor)
    grid_ds = held["dataset"]
    w = th.trapezoid_weights(grf.grid)
    pca = th.pca(grid_ds.outputs, w)
    ps = np.arange(1, cfg.floor_max_p + 1)
    floor_curve = th.pca_floor(pca.eigenvalues, ps)  # Bochner L2, absolute
    floor_p = float(floor_curve[cfg.p - 1])
    pred_grid = ol.predict(fit.best_model, grid_ds)
    sq = np.sum(w * (pred_grid.astype(np.float64) - grid_ds.outputs) ** 2, axis=1)
    bochner = float(np.sqrt(sq.mean()))
    grid_metrics = ol.evaluate(fit.best_model, grid_ds, pred=pred_grid)
    rep.metrics.update(grid_bochner_l2_error=bochner, grid_mse=grid_metrics["mse"],
                       grid_rel_l2_mean=grid_metrics["rel_l2_mean"])
    rep.bounds.update(pca_floor_p=floor_p, pca_floor_curve=floor_curve,
                      pca_relative_floor_p=float(th.relative_pca_floor(pca, cfg.p)),
                      output_second_moment=pca.second_moment)
    c = checks.lower_bound(
        f"PCA floor (p={cfg.p}, {cfg.floor_funcs} held-out outputs, trapezoid weights) <= "
        "the DeepONet's Bochner L2 error on the same functions (float32 slack 1e-3)",
        bochner, floor_p, rtol=1e-3)
    rep.check(**c)
    # where the floor would bind: the smallest p whose floor is below the measured error
    below = np.flatnonzero(floor_curve <= bochner)
    rep.metrics["smallest_p_with_floor_below_error"] = int(ps[below[0]]) if below.size else None

    kappa_est = float(th.sensor_error_estimate(cfg.n_sensors, cfg.length_scale,
                                               c=SENSOR_CONSTANT))
    lin = held["linear"]
    gronwall = th.gronwall_sensor_bound(lin["kappa"], lipschitz=1.0, length=1.0)
    ratio_kappa = float(lin["kappa"].mean() / kappa_est)
    worst = float(np.max(lin["sup"] / gronwall))
    rep.metrics.update(sensor_kappa_mean=float(lin["kappa"].mean()),
                       sensor_kappa_over_estimate=ratio_kappa,
                       sensor_error_rms_linear_decoder=lin["rms"],
                       sensor_error_rms_cubic_decoder=held["cubic"]["rms"],
                       sensor_sup_over_gronwall_max=worst,
                       network_rmse_best_checkpoint=best["rmse"])
    rep.bounds.update(sensor_kappa_estimate=kappa_est,
                      sensor_gronwall_bound_at_estimate=float(
                          th.gronwall_sensor_bound(kappa_est, 1.0, 1.0)))
    rep.check(f"mean sensor interpolation error E max|u-u_m| (m={cfg.n_sensors}, piecewise "
              f"linear) within [0.7, 1.3] x {SENSOR_CONSTANT}/((m-1)^2 l^2) [C]",
              ratio_kappa, [0.7, 1.3], 0.7 <= ratio_kappa <= 1.3)
    rep.check("sensor-induced operator error max|G(u)-G(u_m)| <= Gronwall c(b-a) kappa e^{c(b-a)} "
              "for every held-out function (max ratio)", worst, 1.0, worst <= 1.0)

    # --- 3. the aligned variant ---------------------------------------------------------------
    al_train = data.make_aligned(grf, op, n_funcs=cfg.aligned_train_funcs, key=k_al_train,
                                 n_points=cfg.aligned_points, **kw)
    al_test = data.make_aligned(grf, op, n_funcs=cfg.aligned_test_funcs, key=k_al_test,
                                n_points=cfg.aligned_points, **kw)
    al_fit = _train(cfg, _model(cfg, k_al_init), al_train, al_test, steps=cfg.aligned_steps,
                    lr=1e-3, schedule="constant", batch_size=0,
                    eval_every=cfg.aligned_eval_every, key=k_al_fit)
    al_best = al_fit.best_test
    al_grid_pred = ol.predict(al_fit.best_model, grid_ds)
    al_bochner = float(np.sqrt(np.mean(np.sum(
        w * (al_grid_pred.astype(np.float64) - grid_ds.outputs) ** 2, axis=1))))
    rep.metrics.update(aligned_test_mse=al_best["mse"],
                       aligned_test_rel_l2_mean=al_best["rel_l2_mean"],
                       aligned_test_rel_l2_std=al_best["rel_l2_std"],
                       aligned_test_mse_last_step=al_fit.final_test["mse"],
                       aligned_test_rel_l2_mean_last_step=al_fit.final_test["rel_l2_mean"],
                       aligned_best_step=al_fit.best_step, aligned_eval_steps=al_fit.eval_steps,
                       aligned_test_mse_curve=al_fit.test_mse,
                       aligned_train_mse_curve=al_fit.train_mse,
                       aligned_grid_bochner_l2_error=al_bochner, aligned_train_wall_s=al_fit.wall_s)
    rep.check(f"aligned ({cfg.aligned_train_funcs} training functions x {cfg.aligned_points} "
              f"points): mean relative L2 test error <= {cfg.aligned_rel_l2_threshold:g}",
              al_best["rel_l2_mean"], cfg.aligned_rel_l2_threshold,
              al_best["rel_l2_mean"] <= cfg.aligned_rel_l2_threshold)
    rep.check(**checks.lower_bound(
        f"aligned model: PCA floor (p={cfg.p}) <= its Bochner L2 error on the held-out grid set",
        al_bochner, floor_p, rtol=1e-3))

    # --- figure ------------------------------------------------------------------------------
    fig, axes = plotting.new_figure(2, 2, width=5.0, height=3.7)
    ax = axes[0, 0]
    steps_axis = np.arange(1, fit.losses.size + 1)
    thin = max(1, fit.losses.size // 2000)
    ax.loglog(steps_axis[::thin], fit.losses[::thin], color="C0", alpha=0.35, linewidth=0.8,
              label="training loss (batch)" if cfg.batch_size else "training loss")
    ax.loglog(fit.eval_steps, fit.train_mse, "o-", color="C0", ms=3, label="training MSE (all)")
    ax.loglog(fit.eval_steps, fit.test_mse, "s-", color="C1", ms=3, label="test MSE")
    ax.axhline(PAPER_TEST_MSE, color="k", linestyle="--", linewidth=1,
               label=f"Lu et al. test MSE {PAPER_TEST_MSE:g} [V]")
    ax.axhline(RK45_LABEL_MSE, color="gray", linestyle=":", linewidth=1,
               label=f"paper's RK45 label error {RK45_LABEL_MSE:g} [C]")
    if cfg.mse_threshold != PAPER_TEST_MSE:
        ax.axhline(cfg.mse_threshold, color="C3", linestyle="-.", linewidth=1,
                   label=f"claim: test MSE ≤ {cfg.mse_threshold:g}")
    ax.axvline(fit.best_step, color="C2", linewidth=0.8,
               label=f"best checkpoint (step {fit.best_step})")
    floor_mse = floor_p**2
    ax.set_ylim(bottom=min(np.min(fit.test_mse), RK45_LABEL_MSE) / 5)
    ax.text(0.02, 0.02, f"PCA floor p={cfg.p}: MSE {floor_mse:.1e} (off scale)",
            transform=ax.transAxes, fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel("MSE")
    ax.set_title(f"unaligned, {cfg.n_train} triplets, {cfg.schedule} lr {cfg.lr:g}, "
                 f"batch {cfg.batch_size or 'full'}", fontsize=9)
    ax.legend(fontsize=6.5)
    ax.grid(alpha=0.3)

    ax = axes[0, 1]
    ax.semilogy(ps, floor_curve**2, "-", color="k",
                label=r"PCA floor $\sum_{k>p}\hat\lambda_k$ (held-out)")
    ax.axhline(bochner**2, color="C1", linestyle="--", label="DeepONet error² (unaligned model)")
    ax.axhline(al_bochner**2, color="C4", linestyle="--", label="DeepONet error² (aligned model)")
    ax.axhline(lin["rms"] ** 2, color="C2", linestyle=":", label="sensor error², PL decoder")
    ax.axhline(held["cubic"]["rms"] ** 2, color="C5", linestyle=":",
               label="sensor error², cubic decoder")
    ax.axvline(cfg.p, color="gray", linewidth=0.8)
    ax.set_ylim(max(1e-16, np.min(floor_curve**2)) / 10, pca.second_moment * 2)
    ax.set_xlabel("number of basis functions p")
    ax.set_ylabel("squared L2 error (mean over functions)")
    ax.set_title(f"floor vs p (trapezoid, {cfg.floor_funcs} functions); p={cfg.p} marked",
                 fontsize=9)
    ax.legend(fontsize=6.5)
    ax.grid(alpha=0.3, which="both")

    ax = axes[1, 0]
    rel = ol.per_function_rel_l2(pred_grid, grid_ds.outputs)
    for j in range(min(cfg.n_examples, cfg.floor_funcs)):
        ax.plot(grf.grid, grid_ds.outputs[j], "-", color=f"C{j}", linewidth=1.5,
                label=f"G(u) exact  (rel. L2 {rel[j]:.1e})")
        ax.plot(grf.grid, pred_grid[j], "--", color="k", linewidth=0.9,
                label="DeepONet" if j == 0 else None)
        ax.plot(grf.grid, held["u"][j], ":", color=f"C{j}", linewidth=0.8, alpha=0.6)
    ax.set_xlabel("x")
    ax.set_title("held-out functions: u (dotted), G(u) (solid), prediction (dashed)", fontsize=9)
    ax.legend(fontsize=6.5)
    ax.grid(alpha=0.3)

    ax = axes[1, 1]
    thin = max(1, al_fit.losses.size // 2000)
    ax.semilogy(np.arange(1, al_fit.losses.size + 1)[::thin], al_fit.losses[::thin], color="C0",
                alpha=0.5, linewidth=0.8, label="training loss")
    ax.semilogy(al_fit.eval_steps, al_fit.test_mse, "s-", color="C1", ms=3, label="test MSE")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE")
    ax.set_title(f"aligned: {cfg.aligned_train_funcs}×{cfg.aligned_points} → mean rel. L2 "
                 f"{al_best['rel_l2_mean']:.2e} (test, {cfg.aligned_test_funcs} functions)",
                 fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    rep.figures += plotting.save(fig, out_dir / "deeponet_antiderivative.png")
    return rep
