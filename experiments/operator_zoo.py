r"""DeepONet, POD-DeepONet and the FNO on the same problems, measured against the same floors.

    python -m experiments run operator_zoo              # ~2 min on a 2-core CPU (float32)

Periodic grid :math:`x_j=j/n`, inputs from the periodic power-law field
(:class:`opdiff.functions.PeriodicPowerLawField`; Burgers: the FNO/CMAME measure of
:func:`opdiff.operator_learning.problems.burgers_problem`), every output on the same grid:

* ``antiderivative``: :math:`s(x)=\int_0^xu` (periodic, the field having mean zero), exact for
  the trigonometric interpolant;
* ``heat_forward``: :math:`u\mapsto e^{t\nu\Delta}u` (exact, :mod:`opdiff.operators.heat`),
  every ``t`` of ``times``;
* ``heat_backward``: :math:`e^{t\nu\Delta}u+\eta\mapsto u`, noise :math:`\delta` per
  :math:`L^2` coordinate, every ``(t, delta)`` of ``times x deltas``;
* ``burgers``: viscous Burgers at time :math:`T` (ETDRK4);
* ``diffusion_reaction``: :math:`s_t=Ds_{xx}+ks^2+u(x)` on :math:`[0,1]` (not periodic, GRF
  inputs), outputs on the whole :math:`(x,t)` grid (the FNO's output channels are time slices).

Models at comparable parameter counts, all trained the same way (Adam, cosine decay, the same
steps, batches and training set): the unstacked DeepONet (GELU, trunk reading :math:`x`),
POD-DeepONet (the first ``p`` principal components of the training outputs) and the FNO
(:class:`opdiff.nets.fno.FNO`, positional channel). Floors: the Wiener MMSE for the backward problem
(every estimator, :func:`opdiff.operators.heat.wiener_mse`); the PCA floor of the test outputs
for the ``p``-basis networks (their outputs lie in a ``p``-dimensional affine space; exact for the
empirical measure); the linear-FNO floor (:mod:`opdiff.operator_learning.fno_bounds`) is
recorded for the forward heat problem as a reference, not as a bound (a nonlinear FNO can beat
it). Wiring: :mod:`opdiff.operator_learning.zoo`. Numbers: notes/operator_zoo.md.
"""

from __future__ import annotations

import dataclasses
import types

import jax
import numpy as np

from opdiff import claims as cl
from opdiff import plotting
from opdiff.nets.deeponet import n_params
from opdiff.operator_learning.zoo import fit_aligned, floors, make_data, make_model, score

from ._config import Count, NonNegative, Positive, Seed

NAME = "operator_zoo"
DESCRIPTION = "DeepONet, POD-DeepONet and FNO on four operators, beside the Wiener and PCA floors"
DTYPE = "float32"
PROBLEMS = ("antiderivative", "heat_forward", "heat_backward", "burgers", "diffusion_reaction",
            "heat2d_backward")
MODELS = ("deeponet", "pod_deeponet", "fno")


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    problems: tuple[str, ...] = PROBLEMS[:-1]  # heat2d (with the U-Net): smoke and full
    n: Count = 64
    alpha: Positive = 2.5
    k0: NonNegative = 1.0
    nu: Positive = 0.05
    times: tuple[Positive, ...] = (0.005, 0.02)  # heat: every t (forward), every (t, delta)
    deltas: tuple[Positive, ...] = (1e-2, 1e-1)  # (backward)
    burgers_nu: Positive = 0.05
    burgers_t: Positive = 0.5
    burgers_nt: Count = 100
    dr_nt: Count = 20
    dr_length_scale: Positive = 0.2
    n_train: Count = 1000
    n_test: Count = 500
    steps: Count = 2000
    batch_size: Count = 64
    lr: Positive = 3e-3
    steps_per_call: Count = 250
    p: Count = 32
    width: Count = 64
    depth: Count = 2
    fno_modes: Count = 12
    fno_width: Count = 16
    fno_depth: Count = 3
    fno_projection: Count = 64
    n2: Count = 32  # heat2d_backward: n2 x n2 grid
    fno2_modes: Count = 8
    unet_channels: tuple[Count, ...] = (16, 32)

    def __post_init__(self):
        if not set(self.problems) <= set(PROBLEMS) or len(set(self.problems)) != len(self.problems):
            raise ValueError(f"problems must be distinct names from {PROBLEMS}, got "
                             f"{self.problems}")
        if self.n % 2 or self.n < 2 * self.fno_modes:
            raise ValueError(f"n must be even and >= 2 * fno_modes = {2 * self.fno_modes}")
        if self.p > min(self.n, self.n_train):
            raise ValueError(f"p must be <= min(n, n_train) = {min(self.n, self.n_train)}")
        if self.n_test < 2:
            raise ValueError("n_test must be >= 2 (PCA floor)")
        if self.n2 < 2 * self.fno2_modes or self.n2 % 2 ** (len(self.unet_channels) - 1):
            raise ValueError(f"n2 must be >= 2 * fno2_modes = {2 * self.fno2_modes} and divisible"
                             f" by 2^(len(unet_channels) - 1)")

    def array_sizes(self) -> dict[str, float]:
        return {"n_train * max(n, n2 ** 2)": self.n_train * max(self.n, self.n2 ** 2),
                "batch_size * n * max(width, fno_projection)":
                    self.batch_size * self.n * max(self.width, self.fno_projection)}


PRESETS = {
    "smoke": Config(n=32, n_train=64, n_test=32, steps=40, steps_per_call=20, batch_size=16,
                    p=8, width=16, fno_modes=6, fno_width=8, fno_depth=2, fno_projection=16,
                    burgers_nt=40, times=(0.01,), deltas=(1e-2,), problems=PROBLEMS, n2=8,
                    fno2_modes=3, unet_channels=(4, 8)),
    "quick": Config(),
    "full": Config(n=128, n_train=5000, n_test=2000, steps=20000, batch_size=128, p=64,
                   width=128, depth=3, fno_modes=16, fno_width=32, fno_depth=4,
                   fno_projection=128, steps_per_call=500, times=(0.002, 0.005, 0.02),
                   problems=PROBLEMS, n2=64, fno2_modes=16, unet_channels=(32, 64, 128),
                   deltas=(1e-3, 1e-2, 1e-1)),
}


def run(cfg: Config, key) -> dict:
    rows = []
    cells = []  # (label, problem, the config view the library reads)
    for name in cfg.problems:
        view = lambda **kw: types.SimpleNamespace(**{**dataclasses.asdict(cfg), **kw})  # noqa
        if name == "heat_forward":
            cells += [(f"{name} t={t:g}", name, view(t=t)) for t in cfg.times]
        elif name in ("heat_backward", "heat2d_backward"):
            cells += [(f"{name} t={t:g} δ={d:g}", name, view(t=t, delta=d))
                      for t in cfg.times for d in cfg.deltas]
        else:
            cells.append((name, name, view()))
    for i, (label, name, c) in enumerate(cells):
        kp = jax.random.fold_in(key, i)
        u_tr, v_tr = make_data(name, c, jax.random.fold_in(kp, 0), cfg.n_train)
        u_te, v_te = make_data(name, c, jax.random.fold_in(kp, 1), cfg.n_test)
        fl = floors(name, c, v_te)
        last = cfg.n2 if name == "heat2d_backward" else cfg.n
        for j, kind in enumerate(MODELS + (("unet",) if name == "heat2d_backward" else ())):
            km = jax.random.fold_in(kp, 10 + j)
            model, fwd = make_model(kind, cfg, km, v_tr, name)
            model, wall = fit_aligned(model, fwd, u_tr, v_tr, steps=cfg.steps,
                                      batch_size=cfg.batch_size, lr=cfg.lr,
                                      steps_per_call=cfg.steps_per_call,
                                      key=jax.random.fold_in(km, 1))
            pred = np.asarray(jax.jit(fwd)(model, u_te))
            s = score(pred, v_te)
            floor = fl["wiener"] if fl["wiener"] is not None else (
                fl["pca"] if kind != "fno" else None)
            rows.append(dict(problem=label, kind=name, model=kind, params=n_params(model),
                             train_s=wall,
                             floor=floor, ratio=None if not floor else s["mse"] / floor,
                             energy=float(np.mean(np.asarray(v_te, np.float64) ** 2)),
                             **s, **{f"floor_{k}": v for k, v in fl.items()},
                             example=dict(  # the last n values: time T, or the last row
                                 v=np.asarray(v_te[0])[-last:], pred=pred[0][-last:])))
    return dict(rows=rows, n=cfg.n, p=cfg.p, n_test=cfg.n_test, problems=[c[0] for c in cells])


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    out, rows = [], results["rows"]
    for r in rows:
        if r["floor_wiener"] is not None:
            out.append(cl.lower_bound(
                f"{r['problem']}, {r['model']}: test MSE >= Wiener MMSE - 3 SE (every estimator; "
                f"{results['n_test']} test functions)", r["mse"], r["floor_wiener"],
                rtol=min(3 * r["se"] / r["floor_wiener"], 0.999)))
        if r["model"] in ("deeponet", "pod_deeponet"):
            out.append(cl.lower_bound(
                f"{r['problem']}, {r['model']}: test MSE >= PCA floor^2 of the test outputs at "
                f"p = {results['p']} (exact for the test set; 1e-6 round-off)", r["mse"],
                r["floor_pca"], rtol=1e-6))
    by = {(r["problem"], r["model"]): r for r in rows}
    for name in results["problems"]:
        f, d = by[(name, "fno")], by[(name, "deeponet")]
        out.append(cl.difference(
            f"{name}: FNO minus DeepONet mean relative L2 ({f['params']} vs {d['params']} "
            f"parameters)", f["rel_l2"], f["rel_l2_se"], d["rel_l2"], d["rel_l2_se"]))
    return out


def plot(results: dict, out_dir) -> list[str]:
    rows, names = results["rows"], results["problems"]
    firsts = list(dict.fromkeys(r["kind"] for r in rows))  # one example per kind of problem
    fig, axes = plotting.new_figure(1, len(firsts) + 1, width=3.6, height=3.2)
    ax = axes[0, 0]
    w = 0.27
    for j, kind in enumerate(MODELS):
        vals = [next(r for r in rows if r["problem"] == p and r["model"] == kind)
                for p in names]
        ax.bar(np.arange(len(names)) + (j - 1) * w, [v["rel_l2"] for v in vals], w,
               yerr=[2 * v["rel_l2_se"] for v in vals], label=kind, color=f"C{j}")
    for i, p in enumerate(names):
        r = next(r for r in rows if r["problem"] == p and r["model"] == "deeponet")
        for key, style, what in (("floor_wiener", "k_", "Wiener (all)"),
                                 ("floor_pca", "r_", "PCA floor (p-basis)")):
            if r[key]:
                ax.plot([i], [np.sqrt(r[key] / r["energy"])], style,
                        ms=18, label=what if i == len(names) - 1 else None)
    ax.set(yscale="log", ylabel="test relative L2", xticks=np.arange(len(names)))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=6)
    ax.legend(fontsize=6)
    ax.set_title("error beside the floors (relative)", fontsize=9)
    for i, k in enumerate(firsts):
        ax = axes[0, i + 1]
        p = next(r["problem"] for r in rows if r["kind"] == k)
        ex = [r for r in rows if r["problem"] == p]
        x = np.arange(len(ex[0]["example"]["v"])) / len(ex[0]["example"]["v"])
        ax.plot(x, ex[0]["example"]["v"], "k-", lw=1.6, label="exact")
        for j, r in enumerate(ex):
            ax.plot(x, r["example"]["pred"], "--", color=f"C{j}", lw=1, label=r["model"])
        ax.set_title(p + {"diffusion_reaction": " (at T)", "heat2d_backward": " (last row)"}.get(
            k, ""), fontsize=9)
        ax.legend(fontsize=6)
    return plotting.save(fig, f"{out_dir}/operator_zoo.png")
