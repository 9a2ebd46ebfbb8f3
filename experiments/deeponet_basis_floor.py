r"""DeepONet and POD-DeepONet error against the number of basis functions ``p``, beside the PCA
(reconstruction) floor that no network with ``p`` basis functions can beat.

    python -m experiments run deeponet_basis_floor            # ~1 min on a 2-core CPU

Every DeepONet output lies in an affine space of dimension ``p`` (the trunk functions plus the
output bias; for POD-DeepONet the training mean plus ``p`` training principal components), so
on any set of test functions its error is at least the PCA floor of those outputs
(Lanthaler–Mishra–Karniadakis 2022; reference §4.3):

.. math:: \Big(\tfrac1n\sum_i\|v_i-\mathcal N(u_i)\|_{L^2}^2\Big)^{1/2}\ \ge\
          \Big(\sum_{k>p}\hat\lambda_k\Big)^{1/2},

:math:`\hat\lambda_k` the eigenvalues of the (1/n) covariance of the test outputs in the
trapezoid-weighted inner product. Computed on the *same* test functions as the error, this is
Eckart–Young for the empirical measure: it holds exactly, with no Monte-Carlo slack (only float32
rounding of the predictions, covered by ``floor_rtol``). Errors are relative Bochner
:math:`L^2` errors :math:`(\overline{\|v-\hat v\|^2}/\overline{\|v\|^2})^{1/2}`, the floor
divided by the same :math:`(\overline{\|v\|^2})^{1/2}`.

Two output families on a fixed grid of ``n_points`` points (aligned layout, so POD applies),
``n_points`` equispaced sensors:

1. **rough inputs**: :math:`G(u)=\int_0^x u`, ``u`` a Matérn-½ GRF with ``l = 0.2``;
   :math:`\lambda_k\sim k^{-4}`, floor :math:`\sim p^{-3/2}` (reference §4.4: relative floor
   1.6e-2 at p = 10, 2.0e-3 at p = 40 [C]). With rough inputs the sensors lose information
   too: the exact Bayes error of any predictor that sees ``m`` sensor values, and the joint
   floor of any predictor that sees the sensors *and* outputs an affine ``p``-space, are
   computed in closed form (population, Gaussian) and drawn; checked with the Monte-Carlo
   slack of the test set (3 standard errors).
2. **NOMAD sinusoids** (Seidman et al. 2022; ``PredictiveIntelligenceLab/NOMAD``'s
   antiderivative): :math:`u=2\pi f\cos 2\pi fx`, :math:`G(u)=\sin 2\pi fx`,
   :math:`f\sim U(0,10)`: a one-parameter, transport-like family whose linear floor stays high
   until ``p ≈ 2 f_max`` (reference §4.4 [C]: 0.66 at p = 10, 0.43 at p = 15, 0.028 at p = 20,
   5.5e-6 at p = 25). The population floor is computed by quadrature over ``f``. (The
   family ``u = sin 2πfx``, ``G(u) = (1 - cos 2πfx)/(2πf)`` is *not* used: its 1/f amplitude
   hides the high frequencies, and its relative floor is only 0.093 at p = 10, 5.5e-3 at
   p = 20 on this grid; the reference table is for outputs ``sin 2πfx``.)

Claims: measured ≥ floor at every ``p`` for both models and both families (through
:func:`opdiff.theory.checks.lower_bound`); the POD-DeepONet error ≥ the projection error onto
its own training-POD space; the population floors reproduce the reference table (10 %); the
floor binds at the smallest ``p`` (POD-DeepONet within ``bind_factor`` of it); and, for the
rough family, measured ≥ the joint sensor + basis floor.

Design notes. All ``p`` values, both models and both families train in **one** ``opdiff.fit``
call: each member is the real ``DeepONet(p)`` / ``PODDeepONet(p)`` built from its own key,
zero-padded into the ``p = max(p_values)`` model (DeepONet: basis functions beyond ``p``
masked), so padded weights get zero gradients and every member follows its own trajectory
(``experiments/_deeponet_common.py``). Inputs and outputs are divided by their training RMS
(a scalar; the model class is unchanged). The trunk reads ``2x - 1``: with inputs in [0, 1],
zero initial biases and a ReLU on the trunk's last layer (DeepXDE's convention), every trunk
function starts as ``c_k x`` with ``c_k`` of random sign, and at small ``p`` all of them can be
dead from the start (seen at p = 2 and 4: relative error 1.0). POD-DeepONet's modes are the
training principal components scaled by their standard deviations, so the branch's targets
have unit variance; the span, hence every floor, is unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import jax
import numpy as np

from opdiff import functions, plotting
from opdiff.nets import DeepONet, PODDeepONet
from opdiff.theory import checks
from opdiff.theory import deeponet as th

from experiments import _deeponet_common as C
from experiments._config import AtLeastTwo, Count, NonNegative, Positive, Range, Seed
from experiments._report import Report

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
    bind_factor: Positive = 2.0
    reference_rtol: NonNegative = 0.1

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


# --- the two families -------------------------------------------------------------------------


def matern_family(cfg: Config, key) -> dict:
    grf = functions.GaussianRandomField(kernel="matern12", length_scale=cfg.matern_length_scale,
                                        n_grid=cfg.n_grid)
    idx = C.subgrid(cfg.n_grid, cfg.n_points)
    x = grf.grid
    A = C.cumulative_trapezoid_matrix(x)[idx]
    u = np.asarray(grf.sample(cfg.n_train + cfg.n_test, key=key), np.float64)
    F = np.asarray(grf.factor)
    w = th.trapezoid_weights(x[idx])
    pop = C.gaussian_floors(A @ F, w, SF=F[idx])  # sensors are the output points
    return dict(inputs=u[:, idx], outputs=u @ A.T, points=x[idx], w=w, pop=pop)


def nomad_family(cfg: Config, key) -> dict:
    space = functions.Sinusoids(f_max=cfg.f_max, n_grid=cfg.n_points)
    _, f = space.sample_with_frequencies(cfg.n_train + cfg.n_test, key=key)
    f = np.asarray(f, np.float64)[:, None]
    x = space.grid
    w = th.trapezoid_weights(x)
    # population covariance of sin(2 pi f x), f ~ U(0, f_max): composite 16-point
    # Gauss-Legendre in f, one panel per 1/40 of a period of the fastest wave over [0, 1]
    panels = max(200, int(40 * cfg.f_max))
    t, tw = np.polynomial.legendre.leggauss(16)
    edges = np.linspace(0.0, cfg.f_max, panels + 1)
    half = np.diff(edges)[:, None] / 2
    fq = ((edges[:-1, None] + half) + half * t[None, :]).ravel()
    fw = (half * tw[None, :]).ravel() / cfg.f_max
    V = np.sin(2 * np.pi * fq[:, None] * x[None, :])
    mean = fw @ V
    cov = (V * fw[:, None]).T @ V - np.outer(mean, mean)
    sw = np.sqrt(w)
    eigs = np.clip(np.linalg.eigvalsh(sw[:, None] * cov * sw[None, :])[::-1], 0.0, None)
    pop = dict(eigs=eigs, second_moment=float(np.sum(w * (fw @ V**2))))
    return dict(inputs=2 * np.pi * f * np.cos(2 * np.pi * f * x), outputs=np.sin(2 * np.pi * f * x),
                points=x, w=w, pop=pop)


# --- members ----------------------------------------------------------------------------------


def build_sweeps(cfg: Config, fam: dict, key) -> dict:
    n, m = cfg.n_train, cfg.n_points
    u_tr, v_tr = fam["inputs"][:n], fam["outputs"][:n]
    in_scale = float(np.sqrt(np.mean(u_tr**2)))
    out_scale = float(np.sqrt(np.mean(v_tr**2)))
    pca_train = th.pca(v_tr, fam["w"])  # POD basis from the TRAINING outputs only
    members = [(p, s) for p in cfg.p_values for s in range(cfg.n_seeds)]
    p_max = max(cfg.p_values)
    arch = dict(branch_width=cfg.width, branch_depth=cfg.depth)
    dkw = dict(trunk_width=cfg.width, trunk_depth=cfg.depth, **arch)

    def dn(p, k):
        return DeepONet(m, 1, p, key=k, **dkw)

    # Modes scaled by their standard deviation: the branch's targets (the POD coefficients)
    # then all have unit variance; the affine space, hence every floor, is unchanged.
    scaled_modes = pca_train.modes * np.sqrt(pca_train.eigenvalues)[:, None] / out_scale

    def pod(p, k):
        return PODDeepONet(m, pca_train.mean / out_scale, scaled_modes[:p], key=k, **arch)

    keys = C.member_keys(key, 2 * len(members))
    group = np.zeros(len(members), np.int32)
    n_train = np.full(len(members), n, np.int32)
    u_in = (u_tr / in_scale)[None].astype(np.float32)
    v_in = (v_tr / out_scale)[None].astype(np.float32)
    ens_d, par_d = C.stack_members(dn(p_max, keys[0]),
                                   [dn(p, keys[i]) for i, (p, _) in enumerate(members)])
    masks = np.stack([np.arange(p_max) < p for p, _ in members]).astype(np.float32)
    ens_p, par_p = C.stack_members(
        pod(p_max, keys[0]), [pod(p, keys[len(members) + i]) for i, (p, _) in enumerate(members)])
    common = dict(inputs=u_in, outputs=v_in, group=group, n_train=n_train, out_scale=out_scale)
    return dict(
        # the trunk reads the output points mapped to [-1, 1] (x -> 2x - 1), see notes below
        deeponet=C.Sweep(ens_d, par_d, C.deeponet_forward(2 * fam["points"][:, None] - 1), masks,
                         **common),
        pod=C.Sweep(ens_p, par_p, C.pod_forward, None, **common),
        members=members, in_scale=in_scale, pca_train=pca_train)


# --- run ----------------------------------------------------------------------------------------


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    fams = {"matern": matern_family(cfg, jax.random.fold_in(key, 1)),
            "nomad": nomad_family(cfg, jax.random.fold_in(key, 2))}
    sweeps = {f: build_sweeps(cfg, fams[f], jax.random.fold_in(key, 10 + i))
              for i, f in enumerate(FAMILIES)}
    order = [(f, mdl) for f in FAMILIES for mdl in MODELS]
    trained, losses = C.train([sweeps[f][mdl] for f, mdl in order], steps=cfg.steps,
                              batch_size=cfg.batch_size, lr=cfg.lr,
                              key=jax.random.fold_in(key, 3), steps_per_call=cfg.steps_per_call)
    rep.metrics["final_train_loss_per_member"] = float(losses[-1])
    ps = np.asarray(cfg.p_values)
    n = cfg.n_train
    res = {}
    for (f, mdl), params in zip(order, trained):
        fam, sw = fams[f], sweeps[f]
        u_te, v_te = fam["inputs"][n:], fam["outputs"][n:]
        pred = C.predict(sw[mdl], params, (u_te / sw["in_scale"])[None])
        sq = C.sq_errors(pred, v_te[None], fam["w"])  # [E, n_test]
        res[(f, mdl)] = dict(sq=sq.reshape(len(ps), cfg.n_seeds, -1))

    floors, rows = {}, {}
    for f in FAMILIES:
        fam, w = fams[f], fams[f]["w"]
        v_te = fam["outputs"][n:]
        pca_test = th.pca(v_te, w)
        second = pca_test.second_moment
        pop = fam["pop"]
        fl = dict(
            test=th.relative_pca_floor(pca_test, ps),
            population=np.sqrt(C.tail(pop["eigs"], ps) / pop["second_moment"]),
            pod_space=np.array([C.bochner(C.sq_errors(th.project(sweeps[f]["pca_train"], v_te,
                                                                 int(p)), v_te, w))
                                for p in ps]) / np.sqrt(second),
        )
        if "sensor_sq" in pop:
            joint_abs = np.sqrt(pop["sensor_sq"] + C.tail(pop["explained_eigs"], ps))
            fl["joint_abs"] = joint_abs
            fl["joint"] = joint_abs / np.sqrt(pop["second_moment"])
            fl["sensor"] = float(np.sqrt(pop["sensor_sq"] / pop["second_moment"]))
        fl["eigs_test"] = pca_test.eigenvalues
        floors[f] = fl
        for mdl in MODELS:
            sq = res[(f, mdl)]["sq"]
            rel = np.sqrt(sq.mean(-1)) / np.sqrt(second)  # [n_p, n_seeds]
            res[(f, mdl)].update(rel=rel, abs=np.sqrt(sq.mean(-1)),
                                 rtol_mc=np.array([[C.mc_rtol(sq[i, s], cfg.mc_z)
                                                    for s in range(cfg.n_seeds)]
                                                   for i in range(len(ps))]))
            rows[(f, mdl)] = rel.mean(1)
            rep.metrics[f"{f}_{mdl}_rel_error"] = rel.mean(1)
            ok = fl["test"] > RESOLVED  # no ratio against a floor that is round-off
            rep.metrics[f"{f}_{mdl}_error_over_floor"] = np.where(
                ok, rel.mean(1) / np.where(ok, fl["test"], 1.0), np.nan)
            if cfg.n_seeds > 1:
                rep.metrics[f"{f}_{mdl}_rel_error_seeds"] = rel
        rep.bounds.update({f"{f}_pca_floor_test": fl["test"],
                           f"{f}_pca_floor_population": fl["population"],
                           f"{f}_pod_train_space_floor": fl["pod_space"]})
        if "joint" in fl:
            rep.bounds[f"{f}_sensor_floor"] = fl["sensor"]
            rep.bounds[f"{f}_joint_sensor_basis_floor"] = fl["joint"]
        resolved = fl["population"] > RESOLVED
        rep.metrics[f"{f}_test_over_population_floor"] = np.where(
            resolved, fl["test"] / np.where(resolved, fl["population"], 1.0), np.nan)
    rep.metrics["p_values"] = ps
    rep.metrics["error_norm"] = ("relative Bochner L2: sqrt(mean_i ||v_i - pred_i||_w^2 / "
                                 "mean_i ||v_i||_w^2), trapezoid weights on the output grid")

    # 1. measured >= the test-set PCA floor, every p and seed (exact; float32 rounding only)
    labels = [f"p={p} seed={s}" for p in ps for s in range(cfg.n_seeds)]
    for f in FAMILIES:
        for mdl in MODELS:
            rel = res[(f, mdl)]["rel"]
            holds, recs = C.lower_bound_all(
                f"{f} {mdl} error >= PCA floor", rel, np.repeat(floors[f]["test"], cfg.n_seeds),
                rtol=cfg.floor_rtol, labels=labels)
            rep.metrics[f"{f}_{mdl}_floor_checks"] = recs
            rep.check(f"{LABELS[f]}: {LABELS[mdl]} relative test error >= PCA floor of the test "
                      f"outputs at every p={list(cfg.p_values)} (same test set: exact, rtol "
                      f"{cfg.floor_rtol:g} for float32 rounding; min error/floor "
                      f"{np.min(rel / floors[f]['test'][:, None]):.3g})",
                      rel.min(1), floors[f]["test"], holds)
    # 2. POD-DeepONet >= projection onto its own training-POD space (exact, per test set)
    pod_rel = np.stack([res[(f, "pod")]["rel"] for f in FAMILIES])
    pod_fl = np.stack([np.repeat(floors[f]["pod_space"], cfg.n_seeds) for f in FAMILIES])
    holds, recs = C.lower_bound_all("POD error >= own-space projection", pod_rel, pod_fl,
                                    rtol=cfg.floor_rtol,
                                    labels=[f"{f} {lab}" for f in FAMILIES for lab in labels])
    rep.metrics["pod_own_space_checks"] = recs
    rep.check("POD-DeepONet test error >= projection error onto its own space (training mean + "
              "first p training POD modes), both families, every p",
              float(np.min(pod_rel.reshape(pod_fl.shape) / pod_fl)), 1.0, holds)
    # 3. population floors against reference/deeponet.md §4.4 [C]
    for f in FAMILIES:
        ref = REFERENCE_FLOORS[f]
        pref = np.array(sorted(ref))
        pop = np.sqrt(C.tail(fams[f]["pop"]["eigs"], pref) / fams[f]["pop"]["second_moment"])
        recs = [checks.within(f"{f} p={p}", val / ref[p], 1.0, atol=cfg.reference_rtol)
                for p, val in zip(pref, pop)]
        rep.metrics[f"{f}_population_floor_at_reference_p"] = dict(zip(pref.tolist(), pop))
        rep.check(f"{LABELS[f]}: population PCA floor at p={pref.tolist()} within "
                  f"{cfg.reference_rtol:.0%} of reference §4.4 [C] {[ref[p] for p in pref]} "
                  f"({cfg.n_points}-point output grid)",
                  pop, [ref[p] for p in pref], all(r["holds"] for r in recs))
    # 4. the floor binds at the smallest p
    ratio = [float(rows[(f, "pod")][0] / floors[f]["test"][0]) for f in FAMILIES]
    rep.check(f"floor binds at p={ps[0]}: POD-DeepONet error/PCA floor <= {cfg.bind_factor:g} "
              f"for {list(FAMILIES)}", ratio, cfg.bind_factor,
              all(r <= cfg.bind_factor for r in ratio))
    rep.metrics["deeponet_error_over_floor_at_min_p"] = [
        float(rows[(f, "deeponet")][0] / floors[f]["test"][0]) for f in FAMILIES]
    # 5. rough family: measured >= joint sensor + basis floor (population; Monte-Carlo slack)
    f = "matern"
    meas = np.stack([res[(f, mdl)]["abs"] for mdl in MODELS])
    rt = np.stack([res[(f, mdl)]["rtol_mc"] for mdl in MODELS])
    bound = np.broadcast_to(floors[f]["joint_abs"][None, :, None], meas.shape)
    holds, recs = C.lower_bound_all("error >= joint floor", meas, bound, rtol=rt,
                                    labels=[f"{mdl} {lab}" for mdl in MODELS for lab in labels])
    rep.metrics["matern_joint_floor_checks"] = recs
    rep.metrics["matern_joint_floor_mc_rtol_max"] = float(rt.max())
    rep.check(f"{LABELS[f]}: both models' test error >= joint floor of any predictor that reads "
              f"the {cfg.n_points} sensors and outputs an affine p-space (Gaussian, exact "
              f"population; slack {cfg.mc_z:g} standard errors, max rtol {rt.max():.3f}); "
              "min error/floor",
              float(np.min(meas / bound)), 1.0, holds)

    # --- figure -----------------------------------------------------------------------------
    fig, axes = plotting.new_figure(2, 2, width=4.8, height=3.6)
    def shown(a):  # floors below float64 eigen-solver noise are not drawn
        a = np.asarray(a, float)
        return np.where(a > RESOLVED, a, np.nan)

    for ax, f in zip(axes[0], FAMILIES):
        fl = floors[f]
        pd = np.arange(1, ps.max() + 1)
        pop_dense = np.sqrt(C.tail(fams[f]["pop"]["eigs"], pd) / fams[f]["pop"]["second_moment"])
        bounds = {"PCA floor (test outputs)": shown(fl["test"]),
                  "PCA floor (population, every p)": (pd, shown(pop_dense)),
                  "POD-DeepONet own space (train POD)": shown(fl["pod_space"])}
        if "joint" in fl:
            bounds["joint sensors + basis floor (population)"] = fl["joint"]
        plotting.error_panel(ax, ps, {LABELS[mdl]: rows[(f, mdl)] for mdl in MODELS}, bounds,
                             title=LABELS[f], xlabel="basis functions p",
                             ylabel="relative L2 test error", logx=True)
        ref = REFERENCE_FLOORS[f]
        ax.plot(list(ref), list(ref.values()), "kx", ms=6, label="reference §4.4 [C]")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], 0.3 * RESOLVED))
        ax.legend(fontsize=6.5)
    ratios = {f"{f}, {LABELS[mdl]}": rows[(f, mdl)] / shown(floors[f]["test"])
              for f in FAMILIES for mdl in MODELS}
    plotting.error_panel(axes[1, 0], ps, ratios, {"1 (floor attained)": np.ones(len(ps))},
                         title=f"measured / PCA floor (floors > {RESOLVED:g} only)",
                         xlabel="basis functions p", ylabel="error / floor", logx=True)
    ax = axes[1, 1]
    for i, f in enumerate(FAMILIES):
        lam_t = floors[f]["eigs_test"]
        lam_p = fams[f]["pop"]["eigs"]
        kt, kp = min(100, lam_t.size), min(100, lam_p.size)
        ax.semilogy(np.arange(1, kt + 1), lam_t[:kt] / np.sum(lam_t), "o", ms=2.5,
                    color=f"C{i}", label=f"{f}: test sample")
        ax.semilogy(np.arange(1, kp + 1), lam_p[:kp] / np.sum(lam_p), "-", lw=1,
                    color=f"C{i}", label=f"{f}: population")
    ax.set_ylim(1e-16, 2)
    ax.set_xlabel("k")
    ax.set_ylabel(r"$\lambda_k/\sum\lambda$")
    ax.set_title("output covariance spectra", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    rep.figures += plotting.save(fig, out_dir / "deeponet_basis_floor.png")
    return rep
