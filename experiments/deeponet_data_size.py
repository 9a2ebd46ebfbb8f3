r"""DeepONet error against the number of training functions ``N`` at a fixed model and a fixed
step budget: the fitted rate and the generalization gap.

    python -m experiments run deeponet_data_size             # ~1 min on a 2-core CPU

The paper's benchmark (Lu et al. 2021): :math:`G(u)(x)=\int_0^xu`, ``u`` an RBF GRF with
``l = 0.2``, ``m = 101`` equispaced sensors, the paper's unstacked DeepONet (branch
``[m, 40, 40]``, trunk ``[1, 40, 40]``, ReLU, Glorot normal), aligned layout on ``n_points``
output points with exact labels. For every ``N`` and seed one member trains on the first ``N``
functions of that seed's pool (nested training sets), all members in one vmapped
``opdiff.fit`` call, the same steps, batch size and learning-rate schedule.

Errors are relative Bochner :math:`L^2` errors, train and test divided by the same
:math:`(\mathbb E\|v\|^2)^{1/2}` (population, exact), so the generalization gap is their
difference. Theory and literature beside it:

* the PCA floor at ``p = 40`` and the Bayes floor of the ``m`` sensors are both ≈ 0 here
  (reference §4.4: relative floor 8.7e-5 already at p = 10), so every bit of the measured error
  is approximation, optimisation and generalization error;
* Lu et al. 2021 (arXiv abstract [V], reference §1.3): "polynomial rates (from half order to
  fourth order) and even exponential convergence with respect to the training dataset size";
  which regime appears where is [R] (not checked against the figures).

Claims: the test error decreases with ``N`` (fitted log-log slope over all ``N`` < 0); in the
*data-limited* range (generalization gap ≥ training error) the fitted slope lies in the
literature's polynomial range [−4, −0.5]; the training error is ≤ the test error on average
over ``N``; the generalization gap decreases with ``N`` (slope < 0). Past the data-limited range
the error sits on the floor the fixed model and step budget reach (train ≈ test), which the
all-``N`` slope mixes in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import jax
import numpy as np

from opdiff import functions, plotting
from opdiff.nets import DeepONet
from opdiff.theory import deeponet as th

from experiments import _deeponet_common as C
from experiments._config import AtLeastTwo, Count, Positive, Range, Seed
from experiments._report import Report

NAME = "deeponet_data_size"
DESCRIPTION = "DeepONet error vs number of training functions N: fitted rate, generalization gap"
DTYPE = "float32"


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    n_values: tuple[Count, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)
    n_seeds: Count = 2
    n_test: AtLeastTwo = 1000
    length_scale: Positive = 0.2
    n_grid: AtLeastTwo = 1001
    n_points: Annotated[int, Range(lo=3)] = 101  # output points and sensors
    p: Count = 40
    width: Count = 40
    depth: Count = 1
    steps: Count = 8000
    batch_size: Count = 32
    lr: Positive = 3e-3
    steps_per_call: Count = 250
    literature_rate: tuple[float, ...] = (-4.0, -0.5)  # Lu et al. 2021: orders 1/2 to 4

    def __post_init__(self):
        if len(self.n_values) < 2 or min(self.n_values) < 1:
            raise ValueError("n_values needs at least two positive sizes")
        if self.n_points < 3 or (self.n_grid - 1) % (self.n_points - 1):
            raise ValueError("n_points - 1 must divide n_grid - 1")
        if self.n_seeds < 1 or self.n_test < 2 or self.steps < 1:
            raise ValueError("n_seeds, steps must be >= 1 and n_test >= 2")
        if len(self.literature_rate) != 2:
            raise ValueError("literature_rate must be a pair (low, high)")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_grid ** 2": self.n_grid ** 2,
            "(n_seeds * max(n_values) + n_test) * n_grid":
                (self.n_seeds * max(self.n_values) + self.n_test) * self.n_grid,
            "len(n_values) * n_seeds * n_test * n_points":
                len(self.n_values) * self.n_seeds * self.n_test * self.n_points,
        }


PRESETS = {
    "smoke": Config(n_values=(8, 32), n_seeds=1, n_test=64, n_grid=201, n_points=51, p=8,
                    width=16, steps=40, batch_size=16, steps_per_call=20),
    "quick": Config(),
    "full": Config(n_values=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384),
                   n_seeds=5, n_test=5000, steps=50000, steps_per_call=1000),
}


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    grf = functions.GaussianRandomField(kernel="rbf", length_scale=cfg.length_scale,
                                        n_grid=cfg.n_grid)
    x = grf.grid
    idx = C.subgrid(cfg.n_grid, cfg.n_points)
    A = C.cumulative_trapezoid_matrix(x)[idx]
    w = th.trapezoid_weights(x[idx])
    ns = np.asarray(cfg.n_values)
    n_max = int(ns.max())
    # one training pool per seed, one shared test set
    u = np.asarray(grf.sample(cfg.n_seeds * n_max + cfg.n_test, key=jax.random.fold_in(key, 1)),
                   np.float64)
    sens, v = u[:, idx], u @ A.T
    pool_u = sens[: cfg.n_seeds * n_max].reshape(cfg.n_seeds, n_max, -1)
    pool_v = v[: cfg.n_seeds * n_max].reshape(cfg.n_seeds, n_max, -1)
    test_u, test_v = sens[cfg.n_seeds * n_max:], v[cfg.n_seeds * n_max:]
    F = np.asarray(grf.factor)
    pop = C.gaussian_floors(A @ F, w, SF=F[idx])
    norm = np.sqrt(pop["second_moment"])

    # the small pools set the scales, as a user with N functions would
    in_scale = float(np.sqrt(np.mean(pool_u[0, : ns.min()] ** 2)))
    out_scale = float(np.sqrt(np.mean(pool_v[0, : ns.min()] ** 2)))
    members = [(int(nn), s) for nn in ns for s in range(cfg.n_seeds)]
    keys = C.member_keys(jax.random.fold_in(key, 2), len(members))
    arch = dict(branch_width=cfg.width, branch_depth=cfg.depth, trunk_width=cfg.width,
                trunk_depth=cfg.depth)
    m = cfg.n_points
    ens, params = C.stack_members(DeepONet(m, 1, cfg.p, key=keys[0], **arch),
                                  [DeepONet(m, 1, cfg.p, key=k, **arch) for k in keys])
    sweep = C.Sweep(ens, params, C.deeponet_forward(2 * x[idx][:, None] - 1), None,
                    inputs=(pool_u / in_scale).astype(np.float32),
                    outputs=(pool_v / out_scale).astype(np.float32),
                    group=np.array([s for _, s in members], np.int32),
                    n_train=np.array([nn for nn, _ in members], np.int32), out_scale=out_scale)
    (trained,), losses = C.train([sweep], steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                 key=jax.random.fold_in(key, 3),
                                 steps_per_call=cfg.steps_per_call)
    g = np.asarray(sweep.group)
    pred_te = C.predict(sweep, trained, np.broadcast_to(test_u / in_scale,
                                                        (cfg.n_seeds,) + test_u.shape))
    sq_te = C.sq_errors(pred_te, test_v[None], w)  # [E, n_test]
    test = np.sqrt(sq_te.mean(-1)) / norm  # [E]
    # standard error of the relative test error (delta method through the square root)
    se = (test * 0.5 * sq_te.std(-1, ddof=1) / (sq_te.mean(-1) * np.sqrt(sq_te.shape[1])))
    pred_tr = C.predict(sweep, trained, pool_u / in_scale)  # [E, n_max, P]
    sq_tr = C.sq_errors(pred_tr, pool_v[g], w)  # [E, n_max]
    train = np.array([np.sqrt(sq_tr[j, :nn].mean()) for j, (nn, _) in enumerate(members)]) / norm
    test = test.reshape(len(ns), cfg.n_seeds)
    train = train.reshape(len(ns), cfg.n_seeds)
    te, tr = test.mean(1), train.mean(1)
    te_se = np.sqrt(np.sum(se.reshape(len(ns), cfg.n_seeds) ** 2, axis=1)) / cfg.n_seeds
    gap = te - tr

    slope = C.loglog_slope(ns, te)
    local = np.diff(np.log(te)) / np.diff(np.log(ns))
    pos = gap > 2 * te_se  # gaps below 2 standard errors of the test error are noise
    gap_slope = C.loglog_slope(ns[pos], gap[pos]) if pos.sum() >= 2 else float("nan")
    # data-limited: the generalization gap is at least the training error (test >= 2 x train)
    limited = gap >= tr
    if limited.sum() >= 2:
        slope_limited = C.loglog_slope(ns[limited], te[limited])
    else:
        slope_limited = float("nan")
    rep.metrics.update(
        n_values=ns, test_rel_error=te, train_rel_error=tr, generalization_gap=gap,
        test_rel_error_seeds=test, train_rel_error_seeds=train, fitted_rate=slope,
        test_rel_error_standard_error=te_se,
        local_rates=local, data_limited_n=ns[limited], rate_data_limited=slope_limited,
        plateau_rel_error=float(te[~limited].mean()) if (~limited).any() else float("nan"),
        gap_rate=gap_slope, final_train_loss_per_member=float(losses[-1]),
        error_norm="relative Bochner L2, train and test divided by the same population "
                   "sqrt(E||v||^2); trapezoid weights on the output grid",
    )
    rep.bounds.update(
        pca_floor_at_p=float(np.sqrt(C.tail(pop["eigs"], cfg.p)) / norm),
        bayes_sensor_floor=float(np.sqrt(max(pop["sensor_sq"], 0.0)) / norm),
        literature_rate_range=list(cfg.literature_rate),
    )

    rep.check(f"test error decreases with N at a fixed model and step budget: fitted log-log "
              f"slope over N={ns.tolist()} < 0", slope, 0.0, slope < 0)
    lo, hi = cfg.literature_rate
    rep.check(f"rate in the data-limited range (gap >= train error: N={ns[limited].tolist()}, "
              f"needs >= 2) within the polynomial orders Lu et al. 2021 report (abstract [V]: "
              f"'from half order to fourth order'): slope in [{lo:g}, {hi:g}] (all-N fit "
              f"{slope:.2f})", slope_limited, list(cfg.literature_rate),
              bool(np.isfinite(slope_limited) and lo <= slope_limited <= hi))
    ratio = tr / te
    rep.check("training error <= test error on average over N (mean of log(train/test) <= 0; "
              f"per-N train/test {np.round(ratio, 2).tolist()})",
              float(np.mean(np.log(ratio))), 0.0, float(np.mean(np.log(ratio))) <= 0.0)
    rep.check("generalization gap (test - train) decreases with N: fitted log-log slope < 0 "
              f"(over the N where it exceeds 2 standard errors of the test error: "
              f"{ns[pos].tolist()}; needs >= 2)",
              gap_slope, 0.0, bool(np.isfinite(gap_slope) and gap_slope < 0))

    # --- figure --------------------------------------------------------------------------------
    fig, axes = plotting.new_figure(1, 2, width=4.8, height=3.8)
    ax = axes[0, 0]
    def fitted(sel):
        return np.exp(np.polyval(np.polyfit(np.log(ns[sel]), np.log(te[sel]), 1), np.log(ns[sel])))

    extra = {}
    if limited.sum() >= 2:
        extra[f"data-limited fit: slope {slope_limited:.2f}"] = (ns[limited], fitted(limited))
    plotting.error_panel(ax, ns, {"test": te, "train": tr},
                         {f"all-N fit: slope {slope:.2f}": fitted(np.ones(len(ns), bool)), **extra,
                          r"$N^{-1/2}$": te[0] * (ns / ns[0]) ** -0.5,
                          r"$N^{-1}$": te[0] * (ns / ns[0]) ** -1.0},
                         title=f"DeepONet, antiderivative (RBF l={cfg.length_scale:g}), "
                               f"{cfg.steps} steps",
                         xlabel="training functions N", ylabel="relative L2 error", logx=True)
    if limited.any():
        ax.axvspan(ns[limited].min(), ns[limited].max(), color="0.9", zorder=0)
    for s in range(cfg.n_seeds):
        ax.plot(ns, test[:, s], ".", color="C0", alpha=0.5)
        ax.plot(ns, train[:, s], ".", color="C1", alpha=0.5)
    gp = np.where(gap > 0, gap, np.nan)
    plotting.error_panel(axes[0, 1], ns, {"test - train": gp},
                         {f"fit: slope {gap_slope:.2f}": (ns[pos], np.exp(np.polyval(
                             np.polyfit(np.log(ns[pos]), np.log(gap[pos]), 1), np.log(ns[pos]))))
                          if pos.sum() >= 2 else (ns[:0], ns[:0]),
                          "2 standard errors of the test error": 2 * te_se},
                         title="generalization gap", xlabel="training functions N",
                         ylabel="relative L2 error", logx=True)
    rep.figures += plotting.save(fig, out_dir / "deeponet_data_size.png")
    return rep
