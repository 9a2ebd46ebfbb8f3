r"""Resolution as an axis: train at n = 64, evaluate zero-shot at 2x and 4x, beside aliasing terms.

    python -m experiments run resolution              # ~1.5 min on a 2-core CPU (float32)

The input law is the periodic power-law field on a fine grid of ``n * max(factors)`` points
(:class:`opdiff.functions.PeriodicPowerLawField`); every coarser grid holds the same functions
subsampled, and the exact answer is known at every resolution (the heat semigroup and the
antiderivative of the fine trigonometric interpolant). Models are trained on the coarse grid
``n`` only:

* the FNO (:class:`opdiff.nets.fno.FNO`): the same weights on every grid;
* a linear one-layer FNO (heat only): its aliasing is exactly computable;
* DeepONet: the branch reads the ``n`` training sensors (subsampled from the finer input), the
  trunk is evaluated at the new points.

Terms from the input law (:mod:`opdiff.operator_learning.fno_bounds`): the relative input
energy above the training Nyquist frequency; for the heat problem the **aliasing MMSE** at the
training grid (a floor for every model there: the coarse samples do not determine the coarse
target; 0 at the fine grid), and for the linear FNO the **exact aliasing gap**
:math:`\sum_{k\in\mathcal M}|G_k|^2A_k`, the expected mean-square difference between its outputs
at the training grid and at 4x, at the shared points, with :math:`G` read off the trained
model's impulse response. Claims: every model's coarse-grid heat MSE >= the aliasing MMSE − 3 SE;
the linear FNO's measured gap equals the exact one within 3 SE; the other changes are findings.
The 2-D part of issue 18 (U-Net, the FNO denoiser on 32² vs 64²) is not built yet.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import claims as cl
from opdiff import functions, plotting
from opdiff.nets import DeepONet
from opdiff.nets.deeponet import n_params
from opdiff.nets.fno import FNO
from opdiff.operator_learning import fno_bounds as fb
from opdiff.operator_learning.zoo import fit_aligned, periodic_antiderivative, score, transfer
from opdiff.operators import heat

from ._config import Count, NonNegative, Positive, Seed

NAME = "resolution"
DESCRIPTION = "FNO vs DeepONet trained at n=64, zero-shot at 2x and 4x, beside aliasing terms"
DTYPE = "float32"
PROBLEMS = ("heat_forward", "antiderivative")


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    problems: tuple[str, ...] = PROBLEMS
    n: Count = 64
    factors: tuple[Count, ...] = (2, 4)
    alpha: Positive = 1.5
    k0: NonNegative = 1.0
    nu: Positive = 0.05
    t: Positive = 0.002
    n_train: Count = 1000
    n_test: Count = 1000
    steps: Count = 2000
    batch_size: Count = 64
    lr: Positive = 3e-3
    steps_per_call: Count = 250
    p: Count = 32
    width: Count = 64
    depth: Count = 2
    fno_modes: Count = 16
    fno_width: Count = 16
    fno_depth: Count = 3
    fno_projection: Count = 64

    def __post_init__(self):
        if not set(self.problems) <= set(PROBLEMS) or len(set(self.problems)) != len(self.problems):
            raise ValueError(f"problems must be distinct names from {PROBLEMS}, got "
                             f"{self.problems}")
        if self.n % 2 or self.n < 2 * self.fno_modes:
            raise ValueError(f"n must be even and >= 2 * fno_modes = {2 * self.fno_modes}")
        if min(self.factors) < 2 or list(self.factors) != sorted(set(self.factors)):
            raise ValueError(f"factors must be increasing ints >= 2, got {self.factors}")
        if self.n_test < 2:
            raise ValueError("n_test must be >= 2")

    def array_sizes(self) -> dict[str, float]:
        return {"(n_train + n_test) * n * max(factors)":
                (self.n_train + self.n_test) * self.n * max(self.factors)}


PRESETS = {
    "smoke": Config(n=16, n_train=64, n_test=64, steps=40, steps_per_call=20, batch_size=16,
                    p=8, width=16, fno_modes=4, fno_width=8, fno_depth=2, fno_projection=16),
    "quick": Config(),
    "full": Config(factors=(2, 4, 8), n_train=5000, n_test=4000, steps=20000, batch_size=128,
                   width=128, depth=3, fno_width=32, fno_depth=4, fno_projection=128),
}


def run(cfg: Config, key) -> dict:
    nf = cfg.n * max(cfg.factors)
    field = functions.PeriodicPowerLawField(n=nf, alpha=cfg.alpha, k0=cfg.k0)
    spec = field.spectrum()
    a = heat.periodic_multiplier(np.fft.fftfreq(nf, 1.0 / nf), cfg.t, cfg.nu)
    res = [cfg.n] + [cfg.n * f for f in cfg.factors]
    out = dict(n=cfg.n, resolutions=res, problems=list(cfg.problems), n_test=cfg.n_test,
               above_nyquist=fb.energy_above_nyquist(spec, cfg.n) / float(spec.sum()),
               rows=[])
    for i, name in enumerate(cfg.problems):
        kp = jax.random.fold_in(key, i)
        u = {s: field.sample(m, key=jax.random.fold_in(kp, c))
             for c, (s, m) in enumerate((("train", cfg.n_train), ("test", cfg.n_test)))}
        if name == "heat_forward":
            v = {s: heat.periodic(x, cfg.t, cfg.nu) for s, x in u.items()}
            out["aliasing_mmse"] = fb.aliasing_mmse(spec, a, cfg.n)
            out["heat_energy"] = float(np.mean(np.asarray(v["test"], np.float64) ** 2))
        else:
            v = {s: jnp.asarray(periodic_antiderivative(np.asarray(x)), jnp.float32)
                 for s, x in u.items()}
        sub = lambda x, m: x[:, :: nf // m]  # noqa: E731
        kinds = ["fno", "deeponet"] + (["linear_fno"] if name == "heat_forward" else [])
        for j, kind in enumerate(kinds):
            km = jax.random.fold_in(kp, 10 + j)
            if kind == "deeponet":
                model = DeepONet(cfg.n, 1, cfg.p, branch_width=cfg.width, branch_depth=cfg.depth,
                                 trunk_width=cfg.width, trunk_depth=cfg.depth,
                                 activation="gelu", key=km)

                def fwd(mm, x):  # branch reads the training sensors, trunk at every point
                    y = jnp.arange(x.shape[1], dtype=jnp.float32)[:, None] / x.shape[1]
                    return mm.aligned(x[:, :: x.shape[1] // cfg.n], y)[..., 0]
            else:
                linear = kind == "linear_fno"
                model = FNO(1, 1, cfg.fno_modes, width=4 if linear else cfg.fno_width,
                            depth=1 if linear else cfg.fno_depth,
                            activation=None if linear else "gelu",
                            projection_width=None if linear else cfg.fno_projection,
                            positional=not linear and name == "antiderivative", key=km)
                fwd = lambda mm, x: mm.batched(x[..., None])[..., 0]  # noqa: E731
            model, wall = fit_aligned(model, fwd, sub(u["train"], cfg.n),
                                      sub(v["train"], cfg.n), steps=cfg.steps,
                                      batch_size=cfg.batch_size, lr=cfg.lr,
                                      steps_per_call=cfg.steps_per_call,
                                      key=jax.random.fold_in(km, 1))
            f = jax.jit(fwd)
            preds = {m: np.asarray(f(model, sub(u["test"], m)), np.float64) for m in res}
            row = dict(problem=name, model=kind, params=n_params(model), train_s=wall,
                       scores=[score(preds[m], sub(v["test"], m)) for m in res])
            d = np.mean((preds[cfg.n] - preds[nf][:, :: nf // cfg.n]) ** 2, axis=1)
            row["shared_gap"], row["shared_gap_se"] = (float(x) for x in cl.mean_se(d))
            row["shared_gap_relative"] = float(np.sqrt(
                d.mean() / np.mean(np.asarray(sub(v["test"], cfg.n), np.float64) ** 2)))
            if kind == "linear_fno":
                h = transfer(model, cfg.n)
                s = h[cfg.n // 2].real  # off the retained modes the transfer is one constant
                row["exact_gap"] = fb.aliasing_gap(spec, cfg.n, cfg.fno_modes, h - s)
            if kind == "fno" or kind == "deeponet":
                row["example"] = dict(x_fine=np.arange(nf) / nf, v=np.asarray(v["test"][0]),
                                      **{f"pred_{m}": preds[m][0] for m in res})
            out["rows"].append(row)
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    out, n = [], results["n"]
    for r in results["rows"]:
        s0 = r["scores"][0]
        if r["problem"] == "heat_forward":
            floor = results["aliasing_mmse"]
            out.append(cl.lower_bound(
                f"heat_forward, {r['model']} at n={n}: test MSE >= aliasing MMSE - 3 SE (every "
                f"estimator at the training grid)", s0["mse"], floor,
                rtol=min(3 * s0["se"] / floor, 0.999)))
        if r["model"] == "linear_fno":
            out.append(cl.within(
                f"{r['problem']}, linear FNO: E|out(n={n}) - out(4x)|^2 at shared points = exact "
                f"aliasing gap sum |G_k|^2 A_k (3 SE)", r["shared_gap"], r["exact_gap"],
                atol=3 * r["shared_gap_se"]))
        for m, s in zip(results["resolutions"][1:], r["scores"][1:]):
            out.append(cl.difference(
                f"{r['problem']}, {r['model']}: relative L2 at n={m} minus at n={n} (zero-shot; "
                f"input energy above the training Nyquist: "
                f"{100 * results['above_nyquist']:.2g} %)", s["rel_l2"], s["rel_l2_se"],
                s0["rel_l2"], s0["rel_l2_se"]))
    return out


def plot(results: dict, out_dir) -> list[str]:
    names, res = results["problems"], results["resolutions"]
    fig, axes = plotting.new_figure(1, 2 * len(names), width=3.8, height=3.2)
    for i, name in enumerate(names):
        ax = axes[0, 2 * i]
        for j, r in enumerate(x for x in results["rows"] if x["problem"] == name):
            ax.errorbar(res, [s["rel_l2"] for s in r["scores"]],
                        [2 * s["rel_l2_se"] for s in r["scores"]], fmt="o-", color=f"C{j}",
                        label=f"{r['model']} ({r['params']} params)")
        if name == "heat_forward":
            ax.plot([res[0]], [np.sqrt(results["aliasing_mmse"] / results["heat_energy"])],
                    "k_", ms=20,
                    label="aliasing MMSE at n (≈ relative)")
        ax.set(xscale="log", yscale="log", xlabel="evaluation grid n", ylabel="relative L2")
        ax.minorticks_off()
        ax.set_xticks(res)
        ax.set_xticklabels([str(m) for m in res])
        ax.set_title(f"{name}: trained at n={results['n']}", fontsize=9)
        ax.legend(fontsize=6)
        ax = axes[0, 2 * i + 1]
        ex = next(x for x in results["rows"] if x["problem"] == name)["example"]
        ax.plot(ex["x_fine"], ex["v"], "k-", lw=1.5, label="exact")
        for m in res:
            ax.plot(np.arange(m) / m, ex[f"pred_{m}"], "--", lw=1, label=f"FNO at n={m}")
        ax.set_title(f"{name}: one test function", fontsize=9)
        ax.legend(fontsize=6)
    return plotting.save(fig, f"{out_dir}/resolution.png")
