r"""DeepONet error against the number of training functions ``N`` at a fixed model and a fixed
step budget: the fitted rate and the generalization gap.

    python -m experiments run deeponet_data_size             # ~1 min on a 2-core CPU

Lu et al. 2021's benchmark: :math:`G(u)(x)=\int_0^xu`, ``u`` an RBF GRF, ``m`` equispaced
sensors, the unstacked DeepONet, exact labels on ``n_points`` output points. For every ``N`` and
seed one member trains on the first ``N`` functions of that seed's pool (nested training sets),
all members in one :func:`opdiff.deeponet_sweep.train_sweeps` call with the same budget. Errors
are relative Bochner :math:`L^2` errors, train and test divided by the same population
:math:`(\mathbb E\|v\|^2)^{1/2}`, so the generalization gap is their difference; the PCA and
Bayes sensor floors (:mod:`opdiff.deeponet_bounds`) are ≈ 0 here.

Claims (all findings, value ± standard error: no theorem fixes them at a fixed model and step
budget): the test error's fitted slope in ``N`` over all ``N`` and over the *data-limited* range
(gap ≥ training error; Lu et al. 2021 report orders 1/2 to 4); the mean log(train/test); the
generalization gap's slope. Numbers: notes/.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import jax
import numpy as np

from opdiff import claims as cl
from opdiff import deeponet_bounds as db
from opdiff import deeponet_sweep as ds
from opdiff import functions, plotting
from opdiff.nets import DeepONet

from ._config import AtLeastTwo, Count, Positive, Range, Seed

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


def run(cfg: Config, key) -> dict:
    grf = functions.GaussianRandomField(kernel="rbf", length_scale=cfg.length_scale,
                                        n_grid=cfg.n_grid)
    x = grf.grid
    idx = db.subgrid(cfg.n_grid, cfg.n_points)
    A = db.cumulative_trapezoid_matrix(x)[idx]
    w = db.trapezoid_weights(x[idx])
    ns = np.asarray(cfg.n_values)
    n_max, n_pool = int(ns.max()), cfg.n_seeds * int(ns.max())
    # one training pool per seed, one shared test set
    u = np.asarray(grf.sample(n_pool + cfg.n_test, key=jax.random.fold_in(key, 1)), np.float64)
    sens, v = u[:, idx], u @ A.T
    pool_u, pool_v = (a[:n_pool].reshape(cfg.n_seeds, n_max, -1) for a in (sens, v))
    test_u, test_v = sens[n_pool:], v[n_pool:]
    F = np.asarray(grf.factor)
    pop = db.gaussian_floors(A @ F, w, SF=F[idx])
    norm = np.sqrt(pop["second_moment"])

    # the small pools set the scales, as a user with N functions would
    in_scale = float(np.sqrt(np.mean(pool_u[0, : ns.min()] ** 2)))
    out_scale = float(np.sqrt(np.mean(pool_v[0, : ns.min()] ** 2)))
    members = [(int(nn), s) for nn in ns for s in range(cfg.n_seeds)]
    keys = ds.member_keys(jax.random.fold_in(key, 2), len(members))
    arch = dict(branch_width=cfg.width, branch_depth=cfg.depth, trunk_width=cfg.width,
                trunk_depth=cfg.depth)
    ens, params = ds.stack_members(DeepONet(cfg.n_points, 1, cfg.p, key=keys[0], **arch),
                                   [DeepONet(cfg.n_points, 1, cfg.p, key=k, **arch) for k in keys])
    sweep = ds.Sweep(ens, params, ds.deeponet_forward(2 * x[idx][:, None] - 1), None,
                     inputs=(pool_u / in_scale).astype(np.float32),
                     outputs=(pool_v / out_scale).astype(np.float32),
                     group=np.array([s for _, s in members], np.int32),
                     n_train=np.array([nn for nn, _ in members], np.int32), out_scale=out_scale)
    (trained,), losses = ds.train_sweeps([sweep], steps=cfg.steps, batch_size=cfg.batch_size,
                                         lr=cfg.lr, key=jax.random.fold_in(key, 3),
                                         steps_per_call=cfg.steps_per_call)
    pred_te = ds.predict_sweep(sweep, trained, np.broadcast_to(test_u / in_scale,
                                                               (cfg.n_seeds,) + test_u.shape))
    test, se = db.relative_bochner(db.sq_errors(pred_te, test_v[None], w), norm)  # [E]
    sq_tr = db.sq_errors(ds.predict_sweep(sweep, trained, pool_u / in_scale),
                         pool_v[np.asarray(sweep.group)], w)  # [E, n_max]
    train = np.array([np.sqrt(sq_tr[j, :nn].mean()) for j, (nn, _) in enumerate(members)]) / norm
    test, train = (a.reshape(len(ns), cfg.n_seeds) for a in (test, train))
    te, tr = test.mean(1), train.mean(1)
    te_se = np.sqrt(np.sum(se.reshape(len(ns), cfg.n_seeds) ** 2, axis=1)) / cfg.n_seeds
    gap = te - tr
    pos = gap > 2 * te_se  # gaps below 2 standard errors of the test error are noise
    limited = gap >= tr  # data-limited: the gap is at least the training error
    nan = float("nan")

    def fit(sel, y):  # slope and its regression SE (nan where fewer than 2 / 3 points)
        return cl.loglog_slope(ns[sel], y[sel]) if sel.sum() >= 2 else (nan, nan)

    (rate, rate_se), (rate_lim, rate_lim_se), (gap_rate, gap_rate_se) = (
        fit(np.ones(len(ns), bool), te), fit(limited, te), fit(pos, gap))
    return dict(
        n_values=ns, test_rel_error=te, train_rel_error=tr, generalization_gap=gap,
        test_rel_error_seeds=test, train_rel_error_seeds=train, test_rel_error_standard_error=te_se,
        fitted_rate=rate, fitted_rate_se=rate_se,
        local_rates=np.diff(np.log(te)) / np.diff(np.log(ns)),
        data_limited=limited, data_limited_n=ns[limited], gap_significant=pos,
        rate_data_limited=rate_lim, rate_data_limited_se=rate_lim_se,
        plateau_rel_error=float(te[~limited].mean()) if (~limited).any() else nan,
        gap_rate=gap_rate, gap_rate_se=gap_rate_se,
        final_train_loss_per_member=float(losses[-1]),
        error_norm="relative Bochner L2, train and test divided by the same population "
                   "sqrt(E||v||^2); trapezoid weights on the output grid",
        pca_floor_at_p=db.pca_floor(pop["eigs"], cfg.p) / norm,
        bayes_sensor_floor=float(np.sqrt(max(pop["sensor_sq"], 0.0)) / norm),
        literature_rate_range=list(cfg.literature_rate), length_scale=cfg.length_scale,
        steps=cfg.steps)


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    # None of these is a theorem: at a fixed model and step budget the error need not fall with
    # N, and Lu et al.'s "half to fourth order" is a range of reported fits, not a bound. They
    # are findings (value and standard error; a slope fitted on < 3 points has none and fails
    # as not measured). notes/deeponet.md, "Data size".
    r = results
    ns = np.asarray(r["n_values"])
    lim, pos = ns[np.asarray(r["data_limited"], bool)], ns[np.asarray(r["gap_significant"], bool)]
    lo, hi = cfg.literature_rate
    log_ratio = np.log(np.asarray(r["train_rel_error_seeds"], np.float64)
                       / np.asarray(r["test_rel_error_seeds"], np.float64)).ravel()
    ratio_mean, ratio_se = cl.mean_se(log_ratio)
    inf = {k + e: r[k + e] if np.isfinite(r[k + e]) else np.inf  # nan (not measured) fails
           for k in ("fitted_rate", "rate_data_limited", "gap_rate") for e in ("", "_se")}
    return [
        cl.finding(f"test error vs N at a fixed model and step budget: fitted log-log slope over "
                   f"N={ns.tolist()} (regression SE)", inf["fitted_rate"], inf["fitted_rate_se"]),
        cl.finding(f"slope in the data-limited range (gap >= train error: N={lim.tolist()}; "
                   f"Lu et al. 2021 report orders {-hi:g} to {-lo:g} [V], a range of fits, not a "
                   "bound)", inf["rate_data_limited"], inf["rate_data_limited_se"]),
        cl.finding("mean over N and seeds of log(train error / test error) (SE over the "
                   f"{log_ratio.size} values; per-N train/test "
                   f"{np.round(np.exp(np.mean(log_ratio.reshape(len(ns), -1), 1)), 2).tolist()})",
                   ratio_mean, ratio_se),
        cl.finding("generalization gap (test - train) vs N: fitted log-log slope over the N where "
                   f"it exceeds 2 standard errors of the test error ({pos.tolist()})",
                   inf["gap_rate"], inf["gap_rate_se"]),
    ]


def plot(results: dict, out_dir) -> list[str]:
    r = results
    ns, te, tr, gap = (np.asarray(r[k]) for k in ("n_values", "test_rel_error",
                                                  "train_rel_error", "generalization_gap"))
    limited, pos = (np.asarray(r[k], bool) for k in ("data_limited", "gap_significant"))
    # the least-squares line of slope s through (mean log N, mean log y) over the selection
    fit = lambda sel, y, s: np.exp(np.log(y[sel]).mean() + s * (np.log(ns[sel])  # noqa: E731
                                                                - np.log(ns[sel]).mean()))
    fig, axes = plotting.new_figure(1, 2, width=4.8, height=3.8)
    ax = axes[0, 0]
    lines = {f"all-N fit: slope {r['fitted_rate']:.2f}": fit(np.ones(len(ns), bool), te,
                                                             r["fitted_rate"])}
    if limited.sum() >= 2:
        lines[f"data-limited fit: slope {r['rate_data_limited']:.2f}"] = (
            ns[limited], fit(limited, te, r["rate_data_limited"]))
    lines.update({r"$N^{-1/2}$": te[0] * (ns / ns[0]) ** -0.5,
                  r"$N^{-1}$": te[0] * (ns / ns[0]) ** -1.0})
    plotting.error_panel(ax, ns, {"test": te, "train": tr}, lines,
                         title=f"DeepONet, antiderivative (RBF l={r['length_scale']:g}), "
                               f"{r['steps']} steps",
                         xlabel="training functions N", ylabel="relative L2 error", logx=True)
    if limited.any():
        ax.axvspan(ns[limited].min(), ns[limited].max(), color="0.9", zorder=0)
    ax.plot(ns, r["test_rel_error_seeds"], ".", color="C0", alpha=0.5)
    ax.plot(ns, r["train_rel_error_seeds"], ".", color="C1", alpha=0.5)
    plotting.error_panel(axes[0, 1], ns, {"test - train": np.where(gap > 0, gap, np.nan)},
                         {f"fit: slope {r['gap_rate']:.2f}": (ns[pos], fit(pos, gap, r["gap_rate"]))
                          if pos.sum() >= 2 else (ns[:0], ns[:0]),
                          "2 standard errors of the test error":
                              2 * np.asarray(r["test_rel_error_standard_error"])},
                         title="generalization gap", xlabel="training functions N",
                         ylabel="relative L2 error", logx=True)
    return plotting.save(fig, f"{out_dir}/deeponet_data_size.png")
