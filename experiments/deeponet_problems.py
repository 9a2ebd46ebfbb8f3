r"""DeepONet on the paper's other operators: nonlinear ODE, gravity pendulum, diffusion–reaction,
and (``full`` only) viscous Burgers; test relative :math:`L^2` errors beside published ones and
beside the PCA floor.

    python -m experiments run deeponet_problems            # ~1.5 min on a 2-core CPU
    python -m experiments run deeponet_problems --preset full   # GPU (diffusion–reaction)

**Operators and data** (Lu et al. 2021, ``lululxvi/deeponet`` ``main()`` defaults, reference
§1.2 [V], with opdiff's solvers). Inputs are GRFs with RBF kernel, :math:`l=0.2`, variance 1
(opdiff's default truncated Karhunen–Loève sampler: dropped eigenvalues are below 1e-10 of the
largest); ``m = 100`` equispaced sensors.

* ``nonlinear_ode``: :math:`s'=-s^2+u`, :math:`s(0)=0`, :math:`x\in[0,1]`; input on 1000
  points, sensors by cubic interpolation, labels by RK4 on the piecewise-linear input
  (``ode_substeps`` steps per grid interval; error :math:`O(10^{-12})` at 1000 points, far
  below the network's). **The Riccati term blows up**: where :math:`u` is strongly negative,
  :math:`s\to-\infty` within [0, 1]. Measured on 40 000 draws of this GRF: 0.84 % reach
  :math:`\max|s|>5`, 0.26 % exceed 10 and some overflow float32 (the deeponet repo's RK45
  labels at a random ``x`` have the same problem, unaddressed there). Those few functions
  would dominate an MSE loss and make the relative error of the rest meaningless, so the input
  measure here is the GRF **conditioned on** :math:`\max_x|s|\le` ``ode_output_bound`` = 5
  (rejection sampling, :class:`BoundedOutputs`; the acceptance rate is recorded).
* ``pendulum``: :math:`s_1'=s_2,\ s_2'=-k\sin s_1+u`, :math:`k=1`, :math:`T=1` (the deeponet
  repo's ``main()``; the paper's figures probably used T = 3 [R]). The network outputs **both
  components** (angle and angular velocity): ``DeepONet(n_outputs=2)``, each component in its
  own ``p``-dimensional trunk space (DeepXDE's "split_both"); errors are over both components
  jointly, per-component errors are recorded as well.
* ``diffusion_reaction``: :math:`s_t=Ds_{xx}+ks^2+u(x)`, :math:`D=k=0.01`, zero initial and
  boundary values, on :math:`[0,1]^2`; CNAB2 with :math:`n_x=100` (the input's grid: the 100
  sensors *are* the grid points) and :math:`n_t=100` steps. Training: ``P = 100`` random
  :math:`(x,t)` grid points per function (the paper's setup), the trunk reads
  :math:`y=(x,t)` (``coord_dim = 2``).
* ``burgers`` (``full`` only): :math:`u_t+uu_x=\nu u_{xx}` on the periodic unit interval,
  :math:`G(u_0)=u(\cdot,T)` on 128 points, ETDRK4 with 200 steps (a 4x finer step changes the
  labels by < 1e-5). Inputs: a periodic power-law field with the spectrum of the FNO/CMAME
  Burgers measure :math:`625(-\Delta+25I)^{-2}` (``alpha = 4``, ``k0 = 5/(2π)``) **without its
  constant mode** (that measure also draws a random mean of variance 1; ours has mean zero),
  variance 0.352 (its non-constant modes' share). **Not** FNO's :math:`\nu=0.1,\ T=1`: with a
  mean-zero input every mode decays by at least :math:`e^{-4\pi^2\nu T}\approx0.02` there
  (output RMS 0.010 against 0.63 for the input, measured), so the operator is nearly zero;
  here :math:`\nu=0.05,\ T=0.5` (output RMS 0.18, steepened fronts). Aligned training (every
  function on all 128 points, batches of 50 functions); the sensors are the 128 grid points.

Training: Adam on the MSE with :func:`opdiff.operator_learning.train_deeponet`, minibatches
sampled with replacement, a cosine decay to 1 % of the rate; no checkpoint selection: the last
step is evaluated. The paper's unstacked ReLU DeepONet with Glorot-normal initialisation; ODEs
[100,40,40] x [1,40,40] as the antiderivative (reference §1.2: the paper's ODE nets may have a
deeper trunk [R]); diffusion–reaction wider (the paper: width 100 [R]).

**Test errors** are measured on held-out functions on the *full* output grid (1000 points,
101 x 100 (t, x) points, 128 points), as the mean over functions of the per-function relative
:math:`L^2` error :math:`\|G(u)-\mathcal N(u)\|_2/\|G(u)\|_2` (DeepXDE's "mean l2 relative
error"; Wang et al.'s metric).

**Published numbers** (beside ours in the table figure, never thresholds): diffusion–reaction,
JAX vanilla DeepONet of Wang, Wang & Perdikaris: mean relative :math:`L^2` **9.71e-3 ±
5.25e-3** [V] (their network is 5 x 50 tanh, 5000 functions, 120 000 steps: the same data
setup, another architecture); Burgers, CMAME 2022 DeepONet **2.15 %** [R, unverified], for
FNO's :math:`\nu=0.1` data with random means: **not comparable** with this Burgers setting,
shown only because the issue asks for the published numbers. For the nonlinear ODE and the
pendulum the reference notes hold no checked numbers, so none is shown.

**Claims** (levels by preset, each about twice the error measured here with seed 0 on a
2-core CPU, so they say "learned the operator to this accuracy", not more):

* ``quick`` (10-13 s of training per problem, about 1 min in all): nonlinear ODE <= 8e-2,
  pendulum <= 5e-2, diffusion–reaction <= 1e-1; measured 4.4e-2, 1.7e-2 and 4.2e-2 (the
  nonlinear ODE is the hardest: its near-blow-up functions with :math:`|s|` up to 5 are steep).
* ``full``: nonlinear ODE <= 3e-2, pendulum <= 1e-2, Burgers <= 5e-2: measured **1.49e-2,
  3.5e-3, 2.4e-2** by running the ``full`` settings of these three on the CPU (about 100, 140
  and 50 s of training). Diffusion–reaction <= 2e-2 is **not measured** (120 000 steps of
  batch 10 000 is GPU work; no GPU in that session): twice Wang et al.'s 9.71e-3 [V], a target.
* every problem: the PCA floor of the test outputs for the network's ``p`` (per component for
  the pendulum: each component lies in its own affine ``p``-space) is at most the measured
  Bochner :math:`L^2` error on the same functions (an exact inequality for the empirical
  measure; trapezoid weights, 2-D product weights for diffusion–reaction, uniform for the
  periodic grid; slack 1e-3 for float32 rounding). With these smooth inputs the floor at the
  network's ``p`` is at float32 round-off (1e-8 relative): the measured errors are
  approximation, optimisation and generalisation error. The examples figure shows the floor
  against ``p``: it crosses the measured error at ``p`` = 4–6 (``quick``), so a network with
  fewer basis functions than that could not reach these errors whatever its training.

Figures: ``deeponet_problems.png`` (the table: measured mean relative L2 ± std, the claim
levels, published numbers, relative PCA floors; training losses), and
``deeponet_problems_examples.png`` (one row per problem: predictions against the truth, for
diffusion–reaction heat maps of truth, prediction and error; the PCA floor against ``p``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import data, functions, plotting
from opdiff import operator_learning as ol
from opdiff.nets import DeepONet
from opdiff.operators import catalog
from opdiff.theory import checks
from opdiff.theory import deeponet as th

from experiments._config import AtLeastTwo, Count, HalfOpenUnit, NonNegative, Positive, Range, Seed
from experiments._report import Report

NAME = "deeponet_problems"
DESCRIPTION = "DeepONet: nonlinear ODE, pendulum, diffusion-reaction, Burgers; rel. L2, PCA floor"
DTYPE = "float32"

PROBLEMS = ("nonlinear_ode", "pendulum", "diffusion_reaction", "burgers")
# Published mean relative L2 errors: (value, std or None, tag, source)
PUBLISHED = {
    "diffusion_reaction": (9.71e-3, 5.25e-3, "V",
                           "Wang-Wang-Perdikaris JAX DeepONet (5x50 tanh, 5000 fns, 120k steps)"),
    "burgers": (2.15e-2, None, "R",
                "CMAME 2022 DeepONet on FNO's nu=0.1 data (unverified; not this setting)"),
}
BURGERS_K0 = 5.0 / (2.0 * np.pi)  # (-Delta + 25)^-2 = ((2 pi k)^2 + 5^2)^-2 ∝ (k^2 + k0^2)^-2


def _burgers_variance(n: int) -> float:
    """Pointwise variance of 625(-Δ+25)^-2 without its constant mode, on an n-point grid."""
    k = np.fft.fftfreq(n, 1.0 / n)
    k = k[k != 0]
    return float(np.sum(625.0 / ((2 * np.pi * k) ** 2 + 25.0) ** 2))


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    problems: tuple[str, ...] = PROBLEMS
    length_scale: Positive = 0.2
    n_sensors: AtLeastTwo = 100
    final_lr_fraction: Annotated[float, Range(0, 1, lo_open=True)] = 1e-2
    steps_per_call: Count = 100
    n_examples: Count = 3
    floor_rtol: HalfOpenUnit = 1e-3
    data_chunk: Count = 100  # functions per solver call (sizes that divide by it compile once)
    # ODE problems: unaligned triplets, one grid point per training function
    ode_grid: AtLeastTwo = 1000
    ode_substeps: Count = 1
    ode_n_train: Count = 10000
    ode_n_test: AtLeastTwo = 1000
    ode_p: Count = 40
    ode_width: Count = 40
    ode_depth: Count = 1
    ode_steps: Count = 50000
    ode_batch_size: Count = 1000
    ode_lr: Positive = 3e-3
    ode_output_bound: Positive = 5.0  # nonlinear ODE: condition on max|s| <= this (see docstring)
    pendulum_k: Positive = 1.0
    nonlinear_ode_rel_l2_threshold: Positive = 3e-2
    pendulum_rel_l2_threshold: Positive = 1e-2
    # diffusion-reaction: P random (x, t) points per training function
    dr_nx: Annotated[int, Range(lo=3)] = 100
    dr_nt: Count = 100
    dr_D: Positive = 0.01
    dr_k: NonNegative = 0.01
    dr_n_train: Count = 5000
    dr_points_per_func: Count = 100
    dr_n_test: AtLeastTwo = 200
    dr_p: Count = 100
    dr_width: Count = 100
    dr_depth: Count = 2
    dr_steps: Count = 120000
    dr_batch_size: Count = 10000
    dr_lr: Positive = 1e-3
    dr_rel_l2_threshold: Positive = 2e-2
    # Burgers: aligned (every function on all points)
    burgers_n: Annotated[int, Range(lo=8)] = 128
    burgers_nu: Positive = 0.05
    burgers_t: Positive = 0.5
    burgers_nt: Count = 200
    burgers_n_train: Count = 1000
    burgers_n_test: AtLeastTwo = 200
    burgers_p: Count = 100
    burgers_width: Count = 100
    burgers_depth: Count = 2
    burgers_steps: Count = 50000
    burgers_batch_size: Count = 50
    burgers_lr: Positive = 1e-3
    burgers_rel_l2_threshold: Positive = 5e-2

    def __post_init__(self):
        unknown = [p for p in self.problems if p not in PROBLEMS]
        if unknown or not self.problems or len(set(self.problems)) != len(self.problems):
            raise ValueError(f"problems must be distinct names from {PROBLEMS}, "
                             f"got {self.problems}")
        ints = ("n_sensors", "steps_per_call", "data_chunk", "n_examples", "ode_substeps",
                "ode_n_train", "ode_n_test", "ode_p", "ode_width", "ode_depth", "ode_steps",
                "ode_batch_size", "dr_n_train", "dr_points_per_func", "dr_n_test", "dr_p",
                "dr_width", "dr_depth", "dr_steps", "dr_batch_size", "burgers_nt",
                "burgers_n_train", "burgers_n_test", "burgers_p", "burgers_width",
                "burgers_depth", "burgers_steps", "burgers_batch_size")
        for name in ints:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.ode_n_test < 2 or self.dr_n_test < 2 or self.burgers_n_test < 2:
            raise ValueError("the test sets need at least 2 functions (PCA floor)")
        if self.n_sensors > self.ode_grid or self.dr_nx < 3 or self.burgers_n < 8:
            raise ValueError("n_sensors must be <= ode_grid, dr_nx >= 3, burgers_n >= 8")
        for name in ("length_scale", "ode_output_bound", "ode_lr", "dr_lr", "burgers_lr",
                     "burgers_nu", "burgers_t", "nonlinear_ode_rel_l2_threshold",
                     "pendulum_rel_l2_threshold", "dr_rel_l2_threshold",
                     "burgers_rel_l2_threshold"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if not 0 < self.final_lr_fraction <= 1 or not 0 <= self.floor_rtol < 1:
            raise ValueError("final_lr_fraction must be in (0, 1] and floor_rtol in [0, 1)")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "ode_grid ** 2": self.ode_grid ** 2,
            "max(ode_n_train, ode_n_test) * ode_grid":
                max(self.ode_n_train, self.ode_n_test) * self.ode_grid,
            "max(data_chunk, dr_n_test) * dr_nx * dr_nt":
                max(self.data_chunk, self.dr_n_test) * self.dr_nx * self.dr_nt,
            "dr_n_train * dr_points_per_func": self.dr_n_train * self.dr_points_per_func,
            "max(burgers_n_train, burgers_n_test) * burgers_n":
                max(self.burgers_n_train, self.burgers_n_test) * self.burgers_n,
        }


PRESETS = {
    "smoke": Config(problems=("nonlinear_ode", "pendulum", "diffusion_reaction"), ode_grid=200,
                    ode_n_train=1000, ode_n_test=100, ode_steps=300, ode_batch_size=200,
                    dr_n_train=100, dr_points_per_func=20, dr_n_test=20, dr_p=20, dr_width=20,
                    dr_depth=1, dr_steps=300, dr_batch_size=200, dr_lr=3e-3,
                    nonlinear_ode_rel_l2_threshold=0.5, pendulum_rel_l2_threshold=0.5,
                    dr_rel_l2_threshold=0.8),
    "quick": Config(problems=("nonlinear_ode", "pendulum", "diffusion_reaction"),
                    ode_n_test=500, ode_steps=8000,
                    dr_n_train=1000, dr_n_test=100, dr_p=60, dr_width=60, dr_depth=1,
                    dr_steps=5000, dr_batch_size=1000, dr_lr=3e-3,
                    nonlinear_ode_rel_l2_threshold=8e-2, pendulum_rel_l2_threshold=5e-2,
                    dr_rel_l2_threshold=1e-1),
    "full": Config(),
}


# --- the problems ------------------------------------------------------------------------------


@dataclasses.dataclass
class Problem:
    name: str
    title: str
    train: object
    test: object  # aligned, on the full output grid
    weights: np.ndarray  # quadrature weights of the test points
    model: DeepONet
    steps: int
    lr: float
    batch_size: int
    threshold: float
    n_outputs: int = 1
    extra: dict = dataclasses.field(default_factory=dict)


def _deeponet(n_sensors, coord_dim, p, width, depth, key, n_outputs=1):
    return DeepONet(n_sensors, coord_dim, p, branch_width=width, branch_depth=depth,
                    trunk_width=width, trunk_depth=depth, n_outputs=n_outputs,
                    activation="relu", kernel_init="glorot_normal", key=key)


@dataclasses.dataclass(frozen=True)
class BoundedOutputs:
    """The input measure of ``space`` conditioned on ``max |G(u)| <= bound`` (rejection
    sampling; a function space for :func:`opdiff.data.make_unaligned` and friends)."""

    space: Any
    operator: Any  # an OperatorSpec on space.grid
    bound: float
    block: int = 128  # draws per call: one shape, one compilation of sampler and solver

    @property
    def grid(self):
        return self.space.grid

    def _draw(self, key, dtype):
        u = np.asarray(self.space.sample(self.block, key=key, dtype=dtype))
        s = np.asarray(self.operator.apply(jnp.asarray(u))).reshape(self.block, -1)
        return u, np.all(np.abs(s) <= self.bound, axis=1)  # NaN and inf fail too

    def sample(self, n: int, *, key, dtype=jnp.float32):
        kept, have, i = [], 0, 0
        while have < n:
            u, ok = self._draw(jax.random.fold_in(key, i), dtype)
            kept.append(u[ok])
            have += int(ok.sum())
            i += 1
            if i > 100 + 2 * n // self.block:
                raise RuntimeError(f"fewer than {n} of {i * self.block} draws have "
                                   f"|G(u)| <= {self.bound}")
        return jnp.asarray(np.concatenate(kept)[:n])

    def acceptance(self, n_blocks: int, *, key) -> float:
        """The fraction of ``n_blocks * block`` draws of ``space`` that satisfy the bound."""
        oks = [self._draw(jax.random.fold_in(key, i), jnp.float32)[1] for i in range(n_blocks)]
        return float(np.mean(np.concatenate(oks)))


def _ode_problem(cfg: Config, name: str, keys) -> Problem:
    grf = functions.GaussianRandomField(length_scale=cfg.length_scale, n_grid=cfg.ode_grid)
    sensors = functions.equispaced_sensors(cfg.n_sensors)
    extra = {}
    if name == "nonlinear_ode":
        op = catalog.nonlinear_ode(grf.grid, substeps=cfg.ode_substeps)
        title, k_out = "nonlinear ODE  s' = -s² + u", 1
        threshold = cfg.nonlinear_ode_rel_l2_threshold
        space = BoundedOutputs(grf, op, cfg.ode_output_bound, block=cfg.data_chunk)
        extra["acceptance"] = space.acceptance(32, key=keys[3])
    else:
        op = catalog.pendulum(grf.grid, k=cfg.pendulum_k, substeps=cfg.ode_substeps)
        title = f"pendulum  s₁'' = −k sin s₁ + u, k = {cfg.pendulum_k:g}"
        k_out, threshold = 2, cfg.pendulum_rel_l2_threshold
        space = grf
    kw = dict(sensors=sensors, interp="cubic", chunk=cfg.data_chunk)
    train = data.make_unaligned(space, op, n_funcs=cfg.ode_n_train, key=keys[0], **kw)
    test = data.make_aligned(space, op, n_funcs=cfg.ode_n_test, key=keys[1], **kw)
    model = _deeponet(cfg.n_sensors, 1, cfg.ode_p, cfg.ode_width, cfg.ode_depth, keys[2], k_out)
    return Problem(name, title, train, test, th.trapezoid_weights(grf.grid), model,
                   cfg.ode_steps, cfg.ode_lr, cfg.ode_batch_size, threshold, k_out,
                   {"x": grf.grid, "p": cfg.ode_p, **extra})


def _dr_problem(cfg: Config, keys) -> Problem:
    grf = functions.GaussianRandomField(length_scale=cfg.length_scale, n_grid=cfg.dr_nx)
    sensors = functions.equispaced_sensors(cfg.n_sensors)
    op = catalog.diffusion_reaction(cfg.dr_nx, cfg.dr_nt, D=cfg.dr_D, k=cfg.dr_k)
    kw = dict(sensors=sensors, interp="cubic", chunk=cfg.data_chunk)
    train = data.make_unaligned(grf, op, n_funcs=cfg.dr_n_train, key=keys[0],
                                points_per_func=cfg.dr_points_per_func, **kw)
    test = data.make_aligned(grf, op, n_funcs=cfg.dr_n_test, key=keys[1], **kw)
    x = np.linspace(0.0, 1.0, cfg.dr_nx)
    t = np.linspace(0.0, 1.0, cfg.dr_nt + 1)
    weights = np.outer(th.trapezoid_weights(t), th.trapezoid_weights(x)).ravel()  # t-major
    model = _deeponet(cfg.n_sensors, 2, cfg.dr_p, cfg.dr_width, cfg.dr_depth, keys[2])
    return Problem("diffusion_reaction", f"diffusion–reaction  D = k = {cfg.dr_D:g}", train,
                   test, weights, model, cfg.dr_steps, cfg.dr_lr, cfg.dr_batch_size,
                   cfg.dr_rel_l2_threshold, 1, {"x": x, "t": t, "p": cfg.dr_p})


def _burgers_problem(cfg: Config, keys) -> Problem:
    field = functions.PeriodicPowerLawField(n=cfg.burgers_n, alpha=4.0, k0=BURGERS_K0,
                                            variance=_burgers_variance(cfg.burgers_n))
    x = np.arange(cfg.burgers_n) / cfg.burgers_n
    op = catalog.burgers(cfg.burgers_n, nu=cfg.burgers_nu, t_final=cfg.burgers_t,
                         nt=cfg.burgers_nt)
    # sensors: the grid points themselves (the periodic grid lacks x = 1, so read the
    # inputs directly rather than interpolating)
    train = _periodic_aligned(field, op, cfg.burgers_n_train, keys[0])
    test = _periodic_aligned(field, op, cfg.burgers_n_test, keys[1])
    model = _deeponet(cfg.burgers_n, 1, cfg.burgers_p, cfg.burgers_width, cfg.burgers_depth,
                      keys[2])
    return Problem("burgers", f"Burgers ν = {cfg.burgers_nu:g}, T = {cfg.burgers_t:g}", train,
                   test, np.full(cfg.burgers_n, 1.0 / cfg.burgers_n), model, cfg.burgers_steps,
                   cfg.burgers_lr, cfg.burgers_batch_size, cfg.burgers_rel_l2_threshold, 1,
                   {"x": x, "p": cfg.burgers_p})


def _periodic_aligned(field, op, n_funcs, key) -> data.AlignedDataset:
    u = field.sample(n_funcs, key=key)
    s = np.asarray(op.apply(u))
    x = np.arange(field.n) / field.n
    return data.AlignedDataset(np.asarray(u), x, np.asarray(op.output_points), s,
                               {"operator": op.name, "operator_params": op.params,
                                "layout": "aligned", "space": "PeriodicPowerLawField"})


def _build(cfg: Config, name: str, key) -> Problem:
    keys = [jax.random.fold_in(key, i) for i in range(4)]
    if name in ("nonlinear_ode", "pendulum"):
        return _ode_problem(cfg, name, keys)
    if name == "diffusion_reaction":
        return _dr_problem(cfg, keys)
    return _burgers_problem(cfg, keys)


# --- floors ------------------------------------------------------------------------------------


def floor_and_error(prob: Problem, pred: np.ndarray, max_p: int) -> dict:
    """PCA floor (per output component, summed in squares) against the Bochner error on the
    same test functions, absolute and relative to the root mean square norm of the outputs."""
    v = np.asarray(prob.test.outputs, np.float64)
    e = np.asarray(pred, np.float64) - v
    if v.ndim == 2:
        v, e = v[..., None], e[..., None]
    ps = np.arange(1, max_p + 1)
    floor_sq = np.zeros(ps.size)
    second = 0.0
    for c in range(v.shape[2]):
        res = th.pca(v[:, :, c], prob.weights)
        floor_sq += th.pca_floor(res.eigenvalues, ps) ** 2
        second += res.second_moment
    sq = np.sum(prob.weights[None, :, None] * e**2, axis=(1, 2))
    bochner = float(np.sqrt(sq.mean()))
    return dict(ps=ps, floor=np.sqrt(floor_sq),
                floor_p=float(np.sqrt(floor_sq[prob.extra["p"] - 1])),
                bochner=bochner, rms_norm=float(np.sqrt(second)))


# --- run ---------------------------------------------------------------------------------------


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    results = {}
    for name in cfg.problems:
        k = jax.random.fold_in(key, PROBLEMS.index(name))
        prob = _build(cfg, name, jax.random.fold_in(k, 0))
        fit = ol.train_deeponet(prob.model, prob.train, steps=prob.steps,
                                key=jax.random.fold_in(k, 1), lr=prob.lr, schedule="cosine",
                                final_lr_fraction=cfg.final_lr_fraction,
                                batch_size=prob.batch_size, steps_per_call=cfg.steps_per_call)
        pred = ol.predict(fit.model, prob.test)
        m = ol.evaluate(fit.model, prob.test, pred=pred)
        fe = floor_and_error(prob, pred, max_p=max(2 * prob.extra["p"], 10))
        results[name] = dict(prob=prob, fit=fit, pred=pred, metrics=m, floor=fe)

        rep.metrics[name] = dict(
            test_rel_l2_mean=m["rel_l2_mean"], test_rel_l2_std=m["rel_l2_std"],
            test_rel_l2_median=m["rel_l2_median"], test_rel_l2_global=m["rel_l2"],
            test_mse=m["mse"], test_max_abs_error=m["max_abs_error"],
            test_rel_l2_per_output=m.get("rel_l2_per_output"),
            test_mse_per_output=m.get("mse_per_output"),
            bochner_l2_error=fe["bochner"],
            relative_bochner_l2_error=fe["bochner"] / fe["rms_norm"],
            final_train_mse=float(fit.train_mse[-1]), steps=prob.steps,
            n_train_rows=len(prob.train), n_test_functions=len(prob.test),
            train_wall_s=fit.wall_s, steps_per_s=fit.steps_per_s,
        )
        below = np.flatnonzero(fe["floor"] <= fe["bochner"])
        rep.metrics[name]["smallest_p_with_floor_below_error"] = (
            int(fe["ps"][below[0]]) if below.size else None)
        if "acceptance" in prob.extra:
            rep.metrics[name]["input_acceptance_rate"] = prob.extra["acceptance"]
        rep.bounds[name] = dict(pca_floor_p=fe["floor_p"],
                                relative_pca_floor_p=fe["floor_p"] / fe["rms_norm"],
                                p=prob.extra["p"], rel_l2_threshold=prob.threshold,
                                published=PUBLISHED.get(name))
        pub = PUBLISHED.get(name)
        pub_txt = f"; published {pub[0]:g} [{pub[2]}]" if pub else ""
        rep.check(f"{name}: mean relative L2 test error over {len(prob.test)} held-out functions "
                  f"(full output grid) <= {prob.threshold:g}{pub_txt}",
                  m["rel_l2_mean"], prob.threshold, m["rel_l2_mean"] <= prob.threshold)
        rep.check(**checks.lower_bound(
            f"{name}: PCA floor (p={prob.extra['p']}"
            f"{', per component' if prob.n_outputs > 1 else ''}"
            f") <= Bochner L2 error on the same test functions (slack {cfg.floor_rtol:g})",
            fe["bochner"], fe["floor_p"], rtol=cfg.floor_rtol))

    rep.figures += _summary_figure(cfg, results, out_dir)
    rep.figures += _examples_figure(cfg, results, out_dir)
    return rep


# --- figures -----------------------------------------------------------------------------------


def _summary_figure(cfg: Config, results: dict, out_dir: Path) -> list[str]:
    fig, axes = plotting.new_figure(1, 2, width=5.2, height=3.8)
    ax = axes[0, 0]
    names = list(results)
    xs = np.arange(len(names))
    for i, name in enumerate(names):
        r = results[name]
        m, fe = r["metrics"], r["floor"]
        ax.errorbar([i], [m["rel_l2_mean"]], yerr=[[min(m["rel_l2_std"], 0.9 * m["rel_l2_mean"])],
                                                  [m["rel_l2_std"]]],
                    fmt="o", color="C0", capsize=3,
                    label="measured (mean ± std)" if i == 0 else None)
        ax.plot([i - 0.25, i + 0.25], [r["prob"].threshold] * 2, "-", color="C3",
                label="claim level" if i == 0 else None)
        rel_floor = max(fe["floor_p"] / fe["rms_norm"], 1e-9)
        ax.plot([i], [rel_floor], "v", color="gray",
                label="relative PCA floor, p of the net (≥1e-9)" if i == 0 else None)
        pub = PUBLISHED.get(name)
        if pub:
            first = not any(PUBLISHED.get(n) for n in names[:i])
            ax.plot([i + 0.12], [pub[0]], "*", color="k", ms=9,
                    label="published [V]/[R]" if first else None)
            ax.annotate(f"{pub[0]:.3g} [{pub[2]}]", (i + 0.15, pub[0]), fontsize=6.5)
        ax.annotate(f"{m['rel_l2_mean']:.2e}", (i + 0.08, m["rel_l2_mean"]), fontsize=7, color="C0")
    ax.set_yscale("log")
    ax.set_xticks(xs, [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel("relative L2 test error")
    ax.set_title("test error per problem (mean over held-out functions)", fontsize=9)
    ax.legend(fontsize=6.5, loc="center left")
    ax.grid(alpha=0.3, axis="y")

    ax = axes[0, 1]
    for i, name in enumerate(names):
        losses = results[name]["fit"].losses
        thin = max(1, losses.size // 2000)
        ax.loglog(np.arange(1, losses.size + 1)[::thin], losses[::thin], color=f"C{i}",
                  linewidth=0.8, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (batch MSE)")
    ax.set_title("training", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return plotting.save(fig, out_dir / "deeponet_problems.png")


def _examples_figure(cfg: Config, results: dict, out_dir: Path) -> list[str]:
    n = len(results)
    fig, axes = plotting.new_figure(n, 4, width=3.6, height=2.9)
    for row, (name, r) in enumerate(results.items()):
        prob, pred, fe = r["prob"], r["pred"], r["floor"]
        v = np.asarray(prob.test.outputs)
        rel = ol.per_function_rel_l2(pred.reshape(len(v), -1), v.reshape(len(v), -1))
        ax = axes[row]
        if name == "diffusion_reaction":
            nt1, nx = prob.extra["t"].size, prob.extra["x"].size
            j = int(np.argsort(rel)[len(rel) // 2])  # the median function
            truth, guess = v[j].reshape(nt1, nx), pred[j].reshape(nt1, nx)
            ext = (0, 1, 0, 1)
            lim = max(np.abs(truth).max(), np.abs(guess).max())
            for a, img, title in ((ax[0], truth, "truth s(x, t)"),
                                  (ax[1], guess, "DeepONet"),
                                  (ax[2], guess - truth, "prediction − truth")):
                vmax = lim if a is not ax[2] else np.abs(guess - truth).max()
                im = a.imshow(img, origin="lower", extent=ext, aspect="auto", cmap="RdBu_r",
                              vmin=-vmax, vmax=vmax)
                fig.colorbar(im, ax=a, shrink=0.85)
                a.set_xlabel("x")
                a.set_ylabel("t")
                note = f" (median fn, rel. L2 {rel[j]:.1e})" if a is ax[0] else ""
                a.set_title(title + note, fontsize=8)
        else:
            x = prob.extra["x"]
            order = np.argsort(rel)
            quantiles = np.linspace(0.1, 0.9, cfg.n_examples)
            picks = [int(order[int(q * (len(rel) - 1))]) for q in quantiles]
            comps = [0] if v.ndim == 2 else [0, 1]
            for c_i, c in enumerate(comps):
                a = ax[c_i]
                for k, j in enumerate(picks):
                    vt = v[j] if v.ndim == 2 else v[j, :, c]
                    pt = pred[j] if v.ndim == 2 else pred[j, :, c]
                    a.plot(x, vt, "-", color=f"C{k}", linewidth=1.4,
                           label=f"truth (rel. L2 {rel[j]:.1e})" if c_i == 0 else None)
                    a.plot(x, pt, "--", color="k", linewidth=0.9,
                           label="DeepONet" if (k == 0 and c_i == 0) else None)
                comp = ("" if len(comps) == 1
                        else (" — angle s₁" if c == 0 else " — velocity s₂"))
                a.set_title(prob.title + comp, fontsize=8)
                a.set_xlabel("x")
                a.grid(alpha=0.3)
                if c_i == 0:
                    a.legend(fontsize=6)
            if len(comps) == 1:
                a = ax[1]
                for k, j in enumerate(picks):
                    a.semilogy(x, np.abs(pred[j] - v[j]) + 1e-12, color=f"C{k}", linewidth=0.9)
                a.set_title("|prediction − truth| (same functions)", fontsize=8)
                a.set_xlabel("x")
                a.grid(alpha=0.3)
            a = ax[2]
            a.hist(np.log10(rel), bins=30, color="C0", alpha=0.8)
            a.axvline(np.log10(prob.threshold), color="C3", label="claim level")
            a.axvline(np.log10(rel.mean()), color="k", linestyle="--", label="mean")
            a.set_xlabel("log10 relative L2 error")
            a.set_title(f"{len(rel)} held-out functions", fontsize=8)
            a.legend(fontsize=6)
        a = ax[3]
        a.semilogy(fe["ps"], fe["floor"] / fe["rms_norm"], "-", color="k",
                   label="relative PCA floor")
        a.axhline(fe["bochner"] / fe["rms_norm"], color="C1", linestyle="--",
                  label="DeepONet (relative Bochner L2)")
        a.axvline(prob.extra["p"], color="gray", linewidth=0.8)
        a.set_ylim(bottom=max(1e-9, 0.3 * np.min(fe["floor"][fe["floor"] > 0] / fe["rms_norm"],
                                                 initial=1.0)))
        a.set_xlabel("p")
        a.set_title(f"floor vs p (network p = {prob.extra['p']})", fontsize=8)
        a.legend(fontsize=6)
        a.grid(alpha=0.3)
    return plotting.save(fig, out_dir / "deeponet_problems_examples.png")
