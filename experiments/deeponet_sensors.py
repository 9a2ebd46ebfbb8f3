r"""DeepONet error against the number of sensors ``m``, beside the sensor-error estimate of
Lu et al. (2021, Thm 1), its Gronwall bound, and the exact Bayes floor of the sensor values.

    python -m experiments run deeponet_sensors               # ~1 min on a 2-core CPU

Operator: :math:`G(u)(x)=\int_0^xu` on [0, 1], ``u`` an RBF GRF with small length scale
``l = 0.05`` (so that few sensors lose information), read at ``m`` equispaced sensors by
piecewise-linear interpolation of its fine-grid representation; labels exact on a fixed grid of
``n_points`` output points (aligned layout).

Theory drawn beside the measurement (all computable; reference §4.5):

* :math:`\kappa(m)=\mathbb E\max_x|u-I_mu|\approx c/((m-1)^2l^2)`, :math:`c\approx0.4`
  (:func:`opdiff.theory.deeponet.sensor_error_estimate`), measured on the test functions;
* the Gronwall bound :math:`c_g(b-a)\kappa e^{c_g(b-a)}` on :math:`\max_x|G(u)-G(I_mu)|`
  (:func:`~opdiff.theory.deeponet.gronwall_sensor_bound`; :math:`c_g=1` for the
  antiderivative), checked sample by sample with each function's own :math:`\kappa_i`;
* the **plug-in** error :math:`(\mathbb E\|G(u)-G(I_mu)\|^2)^{1/2}` of "interpolate the sensors,
  then apply G" (exact, population), which inherits the :math:`m^{-2}` rate;
* the **Bayes floor** :math:`(\mathbb E\|G(u)-\mathbb E[G(u)\mid u(x_1..x_m)]\|^2)^{1/2}`: no
  predictor that reads only the ``m`` sensor values (a DeepONet included) can do better. For a
  Gaussian input and a linear operator it is a matrix formula (exact, population). For the
  analytic RBF field it falls faster than any power of ``m`` once :math:`(m-1)l\gtrsim1`.

Errors are absolute Bochner :math:`L^2` errors (the units of :math:`\kappa`; :math:`L^2\le`
sup on [0, 1], so the sup-norm Gronwall bound also bounds them), relative ones are reported too.

The floors use the exact factor ``F`` of the sampler (:attr:`GaussianRandomField.factor`; a
truncated Karhunen–Loève expansion of rank ``r`` by default, so with ``m >= r`` sensors the field
is determined and the Bayes floor is 0 up to round-off).

Claims: the measured :math:`\kappa` has slope −2 in ``m − 1`` and constant ``c`` in
[0.3, 0.6] over :math:`(m-1)l\ge1`; the Gronwall bound holds for every test function; the
plug-in error has slope −2 there; the DeepONet error is ≥ the Bayes floor at every ``m`` (slack:
3 Monte-Carlo standard errors of the test set); over the *sensor-limited* range (Bayes floor ≥
twice the network error, estimated by the error at the largest ``m`` where the floor is ≈ 0; by
Pythagoras, error² = floor² + network part², the floor's residual being orthogonal to every
function of the sensor values) the error follows the Bayes floor (within ``track_factor``), and —
the paper's statement, tested as such — falls with slope −2 ± ``rate_tol`` in ``m − 1``; and
the error stays below Gronwall(κ estimate) + the network error at the largest ``m``.

What the quick preset shows: the sensor-limited range is the *pre-asymptotic* one
(:math:`(m-1)l<1`), where the information in the sensors, i.e. the Bayes floor, is not a
power law (flat while the sensors barely see the field, then faster than any power); the
DeepONet follows the floor, not :math:`m^{-2}`. By the time :math:`\kappa\propto m^{-2}` holds,
the network error dominates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import jax
import numpy as np

from opdiff import functions, plotting
from opdiff.nets import DeepONet
from opdiff.theory import checks
from opdiff.theory import deeponet as th

from experiments import _deeponet_common as C
from experiments._config import MAY_BE_EMPTY, AtLeastTwo, Count, NonNegative, Positive, Range, Seed
from experiments._report import Report

NAME = "deeponet_sensors"
DESCRIPTION = "DeepONet error vs sensors m beside kappa(m)~1/(m^2 l^2), Gronwall, Bayes floor"
DTYPE = "float32"


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    length_scale: Positive = 0.05
    m_values: tuple[AtLeastTwo, ...] = (4, 6, 8, 12, 16, 24, 32, 48)
    # theory only (numpy), on top of m_values
    kappa_m_values: Annotated[tuple[AtLeastTwo, ...], MAY_BE_EMPTY] = (64, 96, 128)
    n_seeds: Count = 2
    n_train: Count = 4000
    n_test: AtLeastTwo = 1000
    n_grid: AtLeastTwo = 1001
    n_points: Annotated[int, Range(lo=3)] = 101
    p: Count = 40
    width: Count = 64
    depth: Count = 2
    steps: Count = 3500
    batch_size: Count = 32
    lr: Positive = 3e-3
    steps_per_call: Count = 250
    kappa_c: Positive = 0.4  # the constant of sensor_error_estimate
    asymptotic_ml: NonNegative = 1.0  # kappa / plug-in slopes fitted where (m - 1) * l >= this
    slope_tol: Positive = 0.25
    c_range: tuple[Positive, ...] = (0.3, 0.6)
    sensor_limited: Positive = 2.0  # sensor-limited m: Bayes floor >= this * network error
    track_factor: Positive = 1.5  # error / Bayes floor allowed over the sensor-limited range
    rate_tol: Positive = 0.5  # |slope + 2| allowed for the DeepONet over that range
    mc_z: NonNegative = 3.0

    def __post_init__(self):
        if not self.m_values or min(self.m_values) < 2 or min(self.kappa_m_values, default=2) < 2:
            raise ValueError("m_values and kappa_m_values must be >= 2")
        if self.n_points < 3 or (self.n_grid - 1) % (self.n_points - 1):
            raise ValueError("n_points - 1 must divide n_grid - 1")
        if self.length_scale <= 0 or len(self.c_range) != 2:
            raise ValueError("length_scale must be > 0 and c_range a pair")
        if self.n_seeds < 1 or self.n_test < 2 or self.steps < 1:
            raise ValueError("n_seeds, steps must be >= 1 and n_test >= 2")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_grid ** 2": self.n_grid ** 2,
            "(n_train + n_test) * n_grid": (self.n_train + self.n_test) * self.n_grid,
            "len(m_values) * n_seeds * n_test * n_points":
                len(self.m_values) * self.n_seeds * self.n_test * self.n_points,
            "n_grid * max(m_values + kappa_m_values)":
                self.n_grid * max(self.m_values + self.kappa_m_values),
        }


PRESETS = {
    "smoke": Config(m_values=(4, 8), kappa_m_values=(24, 48), n_seeds=1, n_train=64,
                    n_test=64, n_grid=401, n_points=51, p=8, width=16, depth=1, steps=40,
                    batch_size=16, steps_per_call=20),
    "quick": Config(),
    "full": Config(m_values=(4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 100), n_seeds=4,
                   n_train=10000, n_test=5000, n_grid=2001, width=128, steps=40000,
                   batch_size=64, steps_per_call=1000),
}


def interp_back(m: int, grid) -> np.ndarray:
    """``[N, m]``: the piecewise-linear interpolant through ``m`` equispaced sensor values,
    evaluated on ``grid``."""
    return functions.sensor_matrix(functions.equispaced_sensors(m), grid, "linear")


def theory(m_values, grf, u_test, A, w, p: int) -> dict:
    """kappa, Gronwall, plug-in and Bayes floors for every m in ``m_values``; the PCA floor at
    ``p``."""
    x = grf.grid
    F = np.asarray(grf.factor)
    B = A @ F
    pop = C.gaussian_floors(B, w)
    h = np.diff(x)
    out = {k: [] for k in ("kappa", "gronwall_ratio", "plugin_test", "plugin_pop", "bayes_sq")}
    for m in m_values:
        m = int(m)
        S = functions.sensor_matrix(x, functions.equispaced_sensors(m), "linear")  # [m, N]
        P = interp_back(m, x)  # [N, m]
        d = u_test - (u_test @ S.T) @ P.T  # u - I_m u on the fine grid, [n, N]
        kappa_i = np.max(np.abs(d), axis=1)
        # G(u) - G(I_m u) on the fine grid: cumulative trapezoid of the difference
        gd = np.concatenate([np.zeros((d.shape[0], 1)),
                             np.cumsum(h * (d[:, 1:] + d[:, :-1]) / 2, axis=1)], axis=1)
        bound_i = th.gronwall_sensor_bound(kappa_i, 1.0, float(x[-1] - x[0]))
        out["kappa"].append(kappa_i.mean())
        out["gronwall_ratio"].append(np.max(np.max(np.abs(gd), axis=1) / bound_i))
        out["plugin_test"].append(C.bochner(C.sq_errors(d @ A.T, 0.0, w)))
        out["plugin_pop"].append(float(np.sqrt(np.sum(w[:, None] * (B - (A @ P) @ (S @ F)) ** 2))))
        out["bayes_sq"].append(C.gaussian_floors(B, w, SF=S @ F)["sensor_sq"])
    out = {k: np.asarray(v) for k, v in out.items()}
    out["bayes"] = np.sqrt(out.pop("bayes_sq"))
    out["second_moment"] = pop["second_moment"]
    out["pca_floor"] = float(np.sqrt(C.tail(pop["eigs"], p)))
    return out


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    l = cfg.length_scale
    grf = functions.GaussianRandomField(kernel="rbf", length_scale=l, n_grid=cfg.n_grid)
    x = grf.grid
    idx = C.subgrid(cfg.n_grid, cfg.n_points)
    A = C.cumulative_trapezoid_matrix(x)[idx]
    w = th.trapezoid_weights(x[idx])
    n = cfg.n_train
    u = np.asarray(grf.sample(n + cfg.n_test, key=jax.random.fold_in(key, 1)), np.float64)
    v = u @ A.T
    v_te = v[n:]

    # --- DeepONet(m) for every m and seed, zero-padded to m_max, trained at once ----------
    ms = np.asarray(cfg.m_values)
    m_max = int(ms.max())
    sensors = [functions.sensor_matrix(x, functions.equispaced_sensors(int(m)), "linear")
               for m in ms]
    inputs = np.zeros((len(ms), u.shape[0], m_max))
    for g, S in enumerate(sensors):
        inputs[g, :, : S.shape[0]] = u @ S.T
    in_scale = float(np.sqrt(np.sum(inputs[:, :n] ** 2) / (n * ms.sum())))  # padding excluded
    out_scale = float(np.sqrt(np.mean(v[:n] ** 2)))
    members = [(g, s) for g in range(len(ms)) for s in range(cfg.n_seeds)]
    keys = C.member_keys(jax.random.fold_in(key, 2), len(members))
    arch = dict(branch_width=cfg.width, branch_depth=cfg.depth, trunk_width=cfg.width,
                trunk_depth=cfg.depth)
    ens, params = C.stack_members(
        DeepONet(m_max, 1, cfg.p, key=keys[0], **arch),
        [DeepONet(int(ms[g]), 1, cfg.p, key=k, **arch) for (g, _), k in zip(members, keys)])
    sweep = C.Sweep(ens, params, C.deeponet_forward(2 * x[idx][:, None] - 1), None,
                    inputs=(inputs[:, :n] / in_scale).astype(np.float32),
                    outputs=np.broadcast_to(v[:n] / out_scale, (len(ms),) + v[:n].shape),
                    group=np.array([g for g, _ in members], np.int32),
                    n_train=np.full(len(members), n, np.int32), out_scale=out_scale)
    (trained,), losses = C.train([sweep], steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                 key=jax.random.fold_in(key, 3),
                                 steps_per_call=cfg.steps_per_call)
    pred = C.predict(sweep, trained, inputs[:, n:] / in_scale)  # [E, n_test, P]
    sq = C.sq_errors(pred, v_te[None], w).reshape(len(ms), cfg.n_seeds, -1)
    err_seeds = np.sqrt(sq.mean(-1))  # [n_m, n_seeds], absolute
    err = err_seeds.mean(1)
    rtol_mc = np.array([[C.mc_rtol(sq[i, s], cfg.mc_z) for s in range(cfg.n_seeds)]
                        for i in range(len(ms))])

    # --- theory ----------------------------------------------------------------------------
    km = np.asarray(sorted(set(cfg.kappa_m_values) | set(cfg.m_values)))
    at = {int(m): i for i, m in enumerate(km)}
    sel = np.array([at[int(m)] for m in ms])
    t = theory(km, grf, u[n:], A, w, cfg.p)
    bayes, plug = t["bayes"][sel], t["plugin_pop"][sel]
    kappa_est = th.sensor_error_estimate(km, l, cfg.kappa_c)
    gron_est = th.gronwall_sensor_bound(kappa_est, 1.0, 1.0)
    norm = np.sqrt(t["second_moment"])
    # the field is a rank-r expansion (grf.factor): with m >= r generic sensors it is known
    # exactly and the Bayes floor is 0 up to round-off
    resolved = bayes > 1e-10 * norm

    rep.metrics.update(
        m_values=ms, abs_l2_error=err, rel_l2_error=err / norm, abs_l2_error_seeds=err_seeds,
        kappa_m_values=km, kappa_measured=t["kappa"],
        kappa_constant=t["kappa"] * (km - 1.0) ** 2 * l**2,
        plugin_error_test=t["plugin_test"], final_train_loss_per_member=float(losses[-1]),
        error_over_bayes_floor=np.where(resolved, err / np.where(resolved, bayes, 1.0), np.nan),
        error_norm="absolute Bochner L2 over [0,1]: sqrt(mean_i ||v_i - pred_i||_w^2), "
                   "trapezoid weights; relative = divided by sqrt(E||v||^2) (population)",
    )
    rep.metrics["field_rank"] = grf.rank
    rep.bounds.update(kappa_estimate=kappa_est, gronwall_bound=gron_est,
                      plugin_error_population=t["plugin_pop"], bayes_sensor_floor=t["bayes"],
                      pca_floor_at_p=t["pca_floor"], output_norm=norm)

    # 1-2. kappa: slope -2 and constant c over the asymptotic range
    asym = (km - 1) * l >= cfg.asymptotic_ml
    if asym.sum() >= 2:
        k_slope = C.loglog_slope(km[asym] - 1, t["kappa"][asym])
        p_slope = C.loglog_slope(km[asym] - 1, t["plugin_test"][asym])
    else:
        k_slope = p_slope = float("nan")
    rep.metrics.update(kappa_slope=k_slope, plugin_slope=p_slope,
                       asymptotic_m=km[asym])
    ok = np.isfinite(k_slope)
    rep.check(f"kappa(m) = E max|u - I_m u| falls as (m-1)^-2 (Lu et al.: ~1/(m^2 l^2)): fitted "
              f"slope over (m-1)l >= {cfg.asymptotic_ml:g}, m={km[asym].tolist()}, within "
              f"{cfg.slope_tol} of -2",
              k_slope, -2.0, ok and checks.within("", k_slope, -2.0, atol=cfg.slope_tol)["holds"])
    c_meas = (t["kappa"] * (km - 1.0) ** 2 * l**2)[asym]
    lo, hi = cfg.c_range
    rep.check(f"kappa constant c = kappa (m-1)^2 l^2 in [{lo:g}, {hi:g}] over the same range "
              "(reference §4.5 [C]: 0.33-0.47 for l in [0.1, 0.4], growing as l shrinks)",
              c_meas, list(cfg.c_range),
              bool(c_meas.size and np.all((c_meas >= lo) & (c_meas <= hi))))
    # 3. Gronwall, sample by sample
    g_ratio = float(t["gronwall_ratio"].max())
    rep.check("Gronwall: max_x|G(u)-G(I_m u)| <= c(b-a) kappa_i e^{c(b-a)} (c=1) for every test "
              f"function and every m in {km.tolist()} (max ratio)",
              g_ratio, 1.0, checks.upper_bound("", g_ratio, 1.0)["holds"])
    # 4. plug-in error slope
    rep.check(f"plug-in error ||G(u) - G(I_m u)|| (test set) falls as (m-1)^-2 over the same "
              f"range (slope within {cfg.slope_tol} of -2)",
              p_slope, -2.0, np.isfinite(p_slope) and abs(p_slope + 2.0) <= cfg.slope_tol)
    # 5. DeepONet >= Bayes floor
    holds, recs = C.lower_bound_all(
        "error >= Bayes floor", err_seeds, np.repeat(bayes, cfg.n_seeds), rtol=rtol_mc,
        labels=[f"m={m} seed={s}" for m in ms for s in range(cfg.n_seeds)])
    rep.metrics["bayes_floor_checks"] = recs
    rep.check(f"DeepONet test error >= Bayes floor of the m sensor values at every m, every seed "
              f"(exact population floor; slack {cfg.mc_z:g} standard errors, max rtol "
              f"{rtol_mc.max():.3f}); min error/floor",
              float(np.min(err_seeds / bayes[:, None])), 1.0, holds)
    # 6-7. the sensor-limited range: does the error follow the Bayes floor, and kappa's m^-2?
    # Pythagoras: error^2 = Bayes floor^2 + E||E[s|z] - N(z)||^2 (the network's part), since the
    # Bayes residual is orthogonal to every function of the sensor values z. The network part
    # is estimated by the error at the largest m (where the floor is ~0); the sensors limit the
    # error where the floor is at least `sensor_limited` times that.
    network = float(err[-1])
    limited = bayes >= cfg.sensor_limited * network
    rep.metrics["sensor_limited_m"] = ms[limited]
    rep.metrics["network_error_estimate"] = network
    rep.metrics["network_part"] = np.sqrt(np.maximum(err**2 - bayes**2, 0.0))
    if limited.sum() >= 3:
        d_slope = C.loglog_slope(ms[limited] - 1, err[limited])
        b_slope = C.loglog_slope(ms[limited] - 1, bayes[limited])
        pl_slope = C.loglog_slope(ms[limited] - 1, plug[limited])
    else:
        d_slope = b_slope = pl_slope = float("nan")
    rep.metrics.update(deeponet_slope_sensor_limited=d_slope, bayes_slope_sensor_limited=b_slope,
                       plugin_slope_sensor_limited=pl_slope)
    track = (err / bayes)[limited]
    rep.check(f"the DeepONet error follows the Bayes floor where the sensors limit it (floor >= "
              f"{cfg.sensor_limited:g} x the error at m={int(ms[-1])}: m={ms[limited].tolist()}): "
              f"error/floor <= {cfg.track_factor:g} there (max ratio)",
              float(track.max()) if track.size else float("nan"), cfg.track_factor,
              bool(track.size and track.max() <= cfg.track_factor))
    rep.check(f"Lu et al.'s rate kappa ~ 1/(m^2 l^2) describes the sensor-limited DeepONet error: "
              f"fitted slope in m-1 over m={ms[limited].tolist()} (needs >= 3) within "
              f"{cfg.rate_tol:g} of -2 (Bayes floor slope {b_slope:.2f}, plug-in slope "
              f"{pl_slope:.2f} over the same m)",
              d_slope, -2.0, bool(np.isfinite(d_slope) and abs(d_slope + 2.0) <= cfg.rate_tol))
    # 7. error <= Gronwall(kappa estimate) + network error at the largest m
    upper = gron_est[sel] + err[-1]
    ratio = err / upper
    rep.metrics["error_over_gronwall_plus_network"] = ratio
    rep.check("DeepONet error <= Gronwall bound e*kappa_est(m) + network error (the error at the "
              f"largest m={int(ms[-1])}) at every m (max ratio; the bound is loose by "
              f"{1 / ratio.max():.0f}x or more)",
              float(ratio.max()), 1.0, all(checks.upper_bound("", e, b)["holds"]
                                           for e, b in zip(err, upper)))

    # --- figure ------------------------------------------------------------------------------
    fig, axes = plotting.new_figure(1, 3, width=4.6, height=3.8)
    ax = axes[0, 0]
    plotting.error_panel(
        ax, ms, {"DeepONet (mean of seeds)": err},
        {f"Bayes floor of the sensor values (field rank {grf.rank})": (km, t["bayes"]),
         r"$\sqrt{\mathrm{floor}^2+\mathrm{network}^2}$ (network = error at max m)":
             (km, np.sqrt(t["bayes"] ** 2 + network**2)),
         "plug-in G(I_m u)": (km, t["plugin_pop"]),
         r"Gronwall $e\,\kappa_{est}(m)$ (sup norm)": (km, gron_est)},
        title=f"antiderivative, RBF GRF l={l:g}", xlabel="sensors m",
        ylabel=r"absolute $L^2$ test error", logx=True)
    for s in range(cfg.n_seeds):
        ax.plot(ms, err_seeds[:, s], ".", color="C0", alpha=0.5)
    if limited.any():
        ax.axvspan(ms[limited].min(), ms[limited].max(), color="0.85", zorder=0,
                   label="sensor-limited")
    if np.isfinite(d_slope):
        mm = ms[limited]
        ax.plot(mm, err[limited][0] * ((mm - 1) / (mm[0] - 1)) ** -2.0, ":", color="k",
                label=r"slope $-2$ in $m-1$")
    ax.set_ylim(bottom=max(1e-7, 0.3 * min(err.min(), t["bayes"].min())))
    ax.legend(fontsize=6.5)
    plotting.error_panel(
        axes[0, 1], km, {r"measured $\kappa(m)=E\max|u-I_mu|$": t["kappa"]},
        {rf"$c/((m-1)^2l^2)$, c={cfg.kappa_c:g}": kappa_est},
        title=rf"sensor error $\kappa$: slope {k_slope:.2f} for $(m-1)l\geq{cfg.asymptotic_ml:g}$",
        xlabel="sensors m", ylabel="max-norm interpolation error", logx=True)
    ax = axes[0, 2]
    i_show = [0, min(len(ms) - 1, int(np.argmax(ms >= 16)) if (ms >= 16).any() else len(ms) - 1)]
    xo = x[idx]
    ax.plot(xo, v_te[0], "k-", lw=1.5, label="G(u) exact")
    for j, g in enumerate(dict.fromkeys(i_show)):
        ax.plot(xo, pred[g * cfg.n_seeds, 0], "--", color=f"C{j}", label=f"DeepONet, m={ms[g]}")
        sens = functions.equispaced_sensors(int(ms[g]))
        ax.plot(sens, np.zeros_like(sens) + v_te[0].min() - 0.05 * (j + 1), "|", color=f"C{j}")
    ax.set_title("one test function (ticks: sensors)", fontsize=10)
    ax.set_xlabel("x")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    rep.figures += plotting.save(fig, out_dir / "deeponet_sensors.png")
    return rep
