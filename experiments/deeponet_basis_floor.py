r"""DeepONet and POD-DeepONet error against the number of basis functions ``p``, beside the PCA
(reconstruction) floor that no network with ``p`` basis functions can beat.

    python -m experiments run deeponet_basis_floor            # ~1 min on a 2-core CPU

Every DeepONet output lies in an affine ``p``-space, so on any test set its relative Bochner
error is at least the PCA floor of those test outputs (Lanthaler–Mishra–Karniadakis 2022;
:func:`opdiff.deeponet_bounds.pca_floor`): Eckart–Young for the empirical measure, exact up to
float32 rounding (``floor_rtol``). Two output families on ``n_points`` points (= sensors):
(1) :math:`G(u)=\int_0^xu`, ``u`` a Matérn-½ GRF (rough: the sensors lose information too;
the exact Bayes and joint sensor + basis floors are closed forms,
:func:`~opdiff.deeponet_bounds.gaussian_floors`, :func:`~opdiff.deeponet_bounds.joint_floor`);
(2) NOMAD sinusoids :math:`u=2\pi f\cos2\pi fx`, :math:`G(u)=\sin2\pi fx`,
:math:`f\sim U(0,f_{max})`, whose floor stays high until :math:`p\approx2f_{max}`
(:func:`~opdiff.deeponet_bounds.sinusoid_floors`). Reference values: reference/deeponet.md §4.4.

All ``p``, both models and both families train in one call (:mod:`opdiff.deeponet_sweep`);
inputs and outputs divided by their training RMS; the trunk reads ``2x - 1`` (with inputs in
[0, 1] a ReLU trunk can start dead at small ``p``); POD modes are the training principal
components scaled by their standard deviations (same span, unit-variance branch targets).

Claims: error ≥ test-set PCA floor at every ``p`` (both models, both families); POD-DeepONet ≥
the projection onto its own training-POD space; population floors reproduce the reference table
to its last quoted digit; POD-DeepONet error / floor at the smallest ``p`` (finding); rough family:
error ≥ the joint sensor + basis floor (``mc_z`` standard errors of slack). Numbers: notes/.
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
from opdiff.nets import DeepONet, PODDeepONet

from ._config import AtLeastTwo, Count, NonNegative, Positive, Range, Seed

NAME = "deeponet_basis_floor"
DESCRIPTION = "DeepONet / POD-DeepONet error vs p beside the PCA floor (Matérn-1/2, NOMAD)"
DTYPE = "float32"

FAMILIES = ("matern", "nomad")
MODELS = ("deeponet", "pod")
LABELS = {"matern": "antiderivative, Matérn-½ GRF", "nomad": "NOMAD: sin 2πfx, f~U(0,f_max)",
          "deeponet": "DeepONet", "pod": "POD-DeepONet"}
# reference/deeponet.md §4.4 [C]: relative PCA floors (population)
RESOLVED = 1e-7  # relative floors below this are float64 eigen-solver noise (reference §4.3)
REFERENCE_FLOORS = {"matern": {10: 1.6e-2, 40: 2.0e-3},
                    "nomad": {10: 0.66, 15: 0.43, 20: 0.028}}


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    p_values: tuple[Count, ...] = (2, 4, 8, 16, 20, 24, 32, 64)
    n_seeds: Count = 1
    n_train: Count = 5000
    n_test: AtLeastTwo = 1000
    n_grid: AtLeastTwo = 1001  # fine grid of the GRF and of the labels
    # output points = sensors (every (n_grid-1)/(n_points-1)-th point)
    n_points: Annotated[int, Range(lo=3)] = 101
    matern_length_scale: Positive = 0.2
    f_max: Positive = 10.0
    width: Count = 64  # branch and trunk hidden width
    depth: Count = 2  # branch and trunk hidden layers
    steps: Count = 2500
    batch_size: Count = 32
    lr: Positive = 3e-3
    steps_per_call: Count = 250
    floor_rtol: NonNegative = 1e-3  # float32 rounding of the predictions; no Monte-Carlo slack
    mc_z: NonNegative = 3.0  # standard errors of slack against population floors
    reference_digits: Count = 2  # significant digits the reference quotes its floors to

    def __post_init__(self):
        if not self.p_values or min(self.p_values) < 1:
            raise ValueError("p_values must be positive")
        if max(self.p_values) > min(self.n_train, self.n_points):
            raise ValueError("max(p_values) must be <= min(n_train, n_points) (POD modes)")
        if self.n_points < 3 or (self.n_grid - 1) % (self.n_points - 1):
            raise ValueError("n_points - 1 must divide n_grid - 1")
        if self.n_seeds < 1 or self.n_test < 2 or self.steps < 1:
            raise ValueError("n_seeds, steps must be >= 1 and n_test >= 2")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_grid ** 2": self.n_grid ** 2,
            "(n_train + n_test) * n_grid": (self.n_train + self.n_test) * self.n_grid,
            "len(p_values) * n_seeds * max(n_train, n_test) * n_points":
                len(self.p_values) * self.n_seeds * max(self.n_train, self.n_test) * self.n_points,
        }


PRESETS = {
    "smoke": Config(p_values=(2, 8), n_train=64, n_test=64, n_grid=201, n_points=101, width=16,
                    depth=1, steps=40, batch_size=16, steps_per_call=20),
    "quick": Config(),
    "full": Config(p_values=(2, 4, 8, 12, 16, 20, 24, 32, 48, 64, 96), n_seeds=3, n_train=5000,
                   n_test=5000, n_grid=2001, n_points=201, width=128, steps=40000,
                   batch_size=64, steps_per_call=1000),
}


def run(cfg: Config, key) -> dict:
    n, m, ps = cfg.n_train, cfg.n_points, np.asarray(cfg.p_values)
    # --- the two families: inputs, outputs, output weights, population floors ----------------
    grf = functions.GaussianRandomField(kernel="matern12", length_scale=cfg.matern_length_scale,
                                        n_grid=cfg.n_grid)
    idx = db.subgrid(cfg.n_grid, m)
    A = db.cumulative_trapezoid_matrix(grf.grid)[idx]
    u = np.asarray(grf.sample(n + cfg.n_test, key=jax.random.fold_in(key, 1)), np.float64)
    F = np.asarray(grf.factor)
    w = db.trapezoid_weights(grf.grid[idx])
    fams = {"matern": dict(inputs=u[:, idx], outputs=u @ A.T, points=grf.grid[idx], w=w,
                           pop=db.gaussian_floors(A @ F, w, SF=F[idx]))}  # sensors = outputs
    space = functions.Sinusoids(f_max=cfg.f_max, n_grid=m)
    _, f = space.sample_with_frequencies(n + cfg.n_test, key=jax.random.fold_in(key, 2))
    f, x = np.asarray(f, np.float64)[:, None], space.grid
    w = db.trapezoid_weights(x)
    fams["nomad"] = dict(inputs=2 * np.pi * f * np.cos(2 * np.pi * f * x),
                         outputs=np.sin(2 * np.pi * f * x), points=x, w=w,
                         pop=db.sinusoid_floors(x, w, cfg.f_max))
    # --- members: DeepONet(p) masked and POD-DeepONet(p), every p and seed, padded to p_max ----
    members = [(p, s) for p in cfg.p_values for s in range(cfg.n_seeds)]
    p_max, E = max(cfg.p_values), len(members)
    arch = dict(branch_width=cfg.width, branch_depth=cfg.depth)
    sweeps, order = {}, []
    for i, fam in enumerate(FAMILIES):
        d = fams[fam]
        u_tr, v_tr = d["inputs"][:n], d["outputs"][:n]
        d["in_scale"] = float(np.sqrt(np.mean(u_tr**2)))
        out_scale = float(np.sqrt(np.mean(v_tr**2)))
        d["pca_train"] = pca = db.pca(v_tr, d["w"])  # POD basis from the TRAINING outputs only
        modes = pca.modes * np.sqrt(pca.eigenvalues)[:, None] / out_scale
        keys = ds.member_keys(jax.random.fold_in(key, 10 + i), 2 * E)
        dn = [DeepONet(m, 1, p, key=k, trunk_width=cfg.width, trunk_depth=cfg.depth, **arch)
              for p, k in [(p_max, keys[0])] + [(p, keys[j]) for j, (p, _) in enumerate(members)]]
        pod = [PODDeepONet(m, pca.mean / out_scale, modes[:p], key=k, **arch)
               for p, k in [(p_max, keys[0])] + [(p, keys[E + j]) for j, (p, _) in
                                                 enumerate(members)]]
        common = dict(inputs=(u_tr / d["in_scale"])[None].astype(np.float32),
                      outputs=(v_tr / out_scale)[None].astype(np.float32),
                      group=np.zeros(E, np.int32), n_train=np.full(E, n, np.int32),
                      out_scale=out_scale)
        masks = np.stack([np.arange(p_max) < p for p, _ in members]).astype(np.float32)
        sweeps[fam, "deeponet"] = ds.Sweep(*ds.stack_members(dn[0], dn[1:]),
                                              ds.deeponet_forward(2 * d["points"][:, None] - 1),
                                              masks, **common)
        sweeps[fam, "pod"] = ds.Sweep(*ds.stack_members(pod[0], pod[1:]), ds.pod_forward,
                                         None, **common)
        order += [(fam, "deeponet"), (fam, "pod")]
    trained, losses = ds.train_sweeps([sweeps[o] for o in order], steps=cfg.steps,
                                      batch_size=cfg.batch_size, lr=cfg.lr,
                                      key=jax.random.fold_in(key, 3),
                                      steps_per_call=cfg.steps_per_call)
    # --- errors and floors -----------------------------------------------------------------------
    out = {"p_values": ps, "final_train_loss_per_member": float(losses[-1]),
           "error_norm": "relative Bochner L2: sqrt(mean_i ||v_i - pred_i||_w^2 / "
                         "mean_i ||v_i||_w^2), trapezoid weights on the output grid"}
    for (fam, mdl), params in zip(order, trained):
        d = fams[fam]
        u_te, v_te, w, pop = d["inputs"][n:], d["outputs"][n:], d["w"], d["pop"]
        pca_test = db.pca(v_te, w)
        r = out.setdefault(fam, {})
        if mdl == "deeponet":
            second = pca_test.second_moment
            r.update(pca_floor_test=db.relative_pca_floor(pca_test, ps),
                     pca_floor_population=np.sqrt(db.pca_tail(pop["eigs"], ps)
                                                  / pop["second_moment"]),
                     pca_floor_population_dense=np.sqrt(db.pca_tail(
                         pop["eigs"], np.arange(1, ps.max() + 1)) / pop["second_moment"]),
                     pod_train_space_floor=np.array([db.bochner(db.sq_errors(
                         db.project(d["pca_train"], v_te, int(p)), v_te, w)) for p in ps])
                     / np.sqrt(second), eigs_test=pca_test.eigenvalues,
                     eigs_population=pop["eigs"],
                     population_floor_at_reference_p=np.sqrt(db.pca_tail(
                         pop["eigs"], sorted(REFERENCE_FLOORS[fam])) / pop["second_moment"]))
            ok = r["pca_floor_population"] > RESOLVED
            r["test_over_population_floor"] = np.where(
                ok, r["pca_floor_test"] / np.where(ok, r["pca_floor_population"], 1.0), np.nan)
            if "sensor_sq" in pop:
                r["joint_abs"] = db.joint_floor(pop, ps)
                r["joint_sensor_basis_floor"] = r["joint_abs"] / np.sqrt(pop["second_moment"])
                r["sensor_floor"] = float(np.sqrt(pop["sensor_sq"] / pop["second_moment"]))
        pred = ds.predict_sweep(sweeps[fam, mdl], params, (u_te / d["in_scale"])[None])
        sq = db.sq_errors(pred, v_te[None], w).reshape(len(ps), cfg.n_seeds, -1)
        rel = np.sqrt(sq.mean(-1)) / np.sqrt(pca_test.second_moment)  # [n_p, n_seeds]
        ok = r["pca_floor_test"] > RESOLVED  # no ratio against a floor that is round-off
        rel_se = 0.5 * rel * sq.std(-1, ddof=1) / np.sqrt(sq.shape[-1]) / sq.mean(-1)
        r[mdl] = dict(rel_error_seeds=rel, rel_error=rel.mean(1), rel_error_se_seeds=rel_se,
                      abs_error_seeds=np.sqrt(
            sq.mean(-1)), mc_rtol=np.array([[db.mc_rtol(sq[i, s], cfg.mc_z) for s in range(
                cfg.n_seeds)] for i in range(len(ps))]), error_over_floor=np.where(
            ok, rel.mean(1) / np.where(ok, r["pca_floor_test"], 1.0), np.nan))
    out["deeponet_error_over_floor_at_min_p"] = [
        float(out[f]["deeponet"]["rel_error"][0] / out[f]["pca_floor_test"][0]) for f in FAMILIES]
    return out


def claims(cfg: Config, results: dict) -> list[cl.Claim]:
    ps, ns = list(cfg.p_values), cfg.n_seeds
    out = []
    for f in FAMILIES:  # 1. error >= the test-set PCA floor (exact; float32 rounding only)
        fl = results[f]["pca_floor_test"]
        for mdl in MODELS:
            rel = results[f][mdl]["rel_error_seeds"]
            out.append(cl.lower_bound(
                f"{LABELS[f]}: {LABELS[mdl]} relative test error >= PCA floor of the test "
                f"outputs at every p={ps} (same test set: exact, rtol {cfg.floor_rtol:g} for "
                f"float32 rounding; min error/floor {np.min(rel / fl[:, None]):.3g}; measured: "
                "min over seeds)", rel.min(1), fl, rtol=cfg.floor_rtol))
    out.append(cl.lower_bound(  # 2. POD-DeepONet >= projection onto its own training-POD space
        "POD-DeepONet test error >= projection error onto its own space (training mean + first "
        "p training POD modes), both families, every p",
        np.concatenate([results[f]["pod"]["rel_error_seeds"].ravel() for f in FAMILIES]),
        np.concatenate([np.repeat(results[f]["pod_train_space_floor"], ns) for f in FAMILIES]),
        rtol=cfg.floor_rtol))
    for f in FAMILIES:  # 3. population floors against reference/deeponet.md §4.4 [C]
        ref = np.array([REFERENCE_FLOORS[f][p] for p in sorted(REFERENCE_FLOORS[f])])
        unit = 10.0 ** (np.floor(np.log10(ref)) - cfg.reference_digits + 1)  # last quoted digit
        out.append(cl.within(
            f"{LABELS[f]}: population PCA floor at p={sorted(REFERENCE_FLOORS[f])} equals "
            f"reference §4.4 [C] {ref.tolist()} to one unit of its last quoted digit "
            f"({unit.tolist()}; rounded or truncated) ({cfg.n_points}-point output grid)",
            results[f]["population_floor_at_reference_p"], ref, atol=unit))
    pod2 = [(results[f]["pod"]["rel_error_seeds"][0], results[f]["pod"]["rel_error_se_seeds"][0],
             results[f]["pca_floor_test"][0]) for f in FAMILIES]
    out.append(cl.finding(  # 4. how close the floor binds at the smallest p (no theorem)
        f"POD-DeepONet error / test PCA floor at p={ps[0]} for {list(FAMILIES)} (mean over "
        "seeds; SE of the test-set mean)", [e.mean() / fl for e, _, fl in pod2],
        [np.sqrt(np.sum(se ** 2)) / se.size / fl for _, se, fl in pod2]))
    # 5. rough family: error >= joint sensor + basis floor (population; Monte-Carlo slack)
    r = results["matern"]
    meas = np.stack([r[mdl]["abs_error_seeds"] for mdl in MODELS])
    rt = np.stack([r[mdl]["mc_rtol"] for mdl in MODELS])
    floor = np.broadcast_to(r["joint_abs"][None, :, None], meas.shape)
    out.append(cl.lower_bound(
        f"{LABELS['matern']}: both models' test error >= joint floor of any predictor that "
        f"reads the {cfg.n_points} sensors and outputs an affine p-space (Gaussian, exact "
        f"population; slack {cfg.mc_z:g} standard errors, max rtol {rt.max():.3f}, folded into "
        "the floor)", meas.ravel(), (floor * (1.0 - rt)).ravel()))
    return out


def plot(results: dict, out_dir) -> list[str]:
    ps = np.asarray(results["p_values"])
    shown = lambda a: np.where(np.asarray(a, float) > RESOLVED, a, np.nan)  # noqa: E731
    fig, axes = plotting.new_figure(2, 2, width=4.8, height=3.6)
    for ax, f in zip(axes[0], FAMILIES):
        r = results[f]
        bounds = {"PCA floor (test outputs)": shown(r["pca_floor_test"]),
                  "PCA floor (population, every p)": (np.arange(1, ps.max() + 1),
                                                      shown(r["pca_floor_population_dense"])),
                  "POD-DeepONet own space (train POD)": shown(r["pod_train_space_floor"])}
        if "joint_sensor_basis_floor" in r:
            bounds["joint sensors + basis floor (population)"] = r["joint_sensor_basis_floor"]
        plotting.error_panel(ax, ps, {LABELS[mdl]: r[mdl]["rel_error"] for mdl in MODELS},
                             bounds, title=LABELS[f], xlabel="basis functions p",
                             ylabel="relative L2 test error", logx=True)
        ref = REFERENCE_FLOORS[f]
        ax.plot(list(ref), list(ref.values()), "kx", ms=6, label="reference §4.4 [C]")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], 0.3 * RESOLVED))
        ax.legend(fontsize=6.5)
    ratios = {f"{f}, {LABELS[mdl]}": results[f][mdl]["rel_error"]
              / shown(results[f]["pca_floor_test"]) for f in FAMILIES for mdl in MODELS}
    plotting.error_panel(axes[1, 0], ps, ratios, {"1 (floor attained)": np.ones(len(ps))},
                         title=f"measured / PCA floor (floors > {RESOLVED:g} only)",
                         xlabel="basis functions p", ylabel="error / floor", logx=True)
    ax = axes[1, 1]
    for i, f in enumerate(FAMILIES):
        for lam, style, what in ((results[f]["eigs_test"], "o", "test sample"),
                                 (results[f]["eigs_population"], "-", "population")):
            k = min(100, lam.size)
            ax.semilogy(np.arange(1, k + 1), lam[:k] / np.sum(lam), style, ms=2.5, lw=1,
                        color=f"C{i}", label=f"{f}: {what}")
    ax.set_ylim(1e-16, 2)
    ax.set_xlabel("k")
    ax.set_ylabel(r"$\lambda_k/\sum\lambda$")
    ax.set_title("output covariance spectra", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return plotting.save(fig, f"{out_dir}/deeponet_basis_floor.png")
