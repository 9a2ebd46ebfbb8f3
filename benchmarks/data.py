"""Speed of operator-data generation, ``opdiff.data`` against the DeepONet authors' loops.

Run from the repository root::

    .venv/bin/python -m benchmarks.data           # full, 1-2 minutes
    .venv/bin/python -m benchmarks.data --quick   # 30-45 s
    .venv/bin/python -m benchmarks.data --quick --rounds 1 --loop-funcs 10 --dr-loop-funcs 5 \
        --acc-funcs 1 --dr-check 2                # smoke

(``--rounds``, ``--loop-funcs``, ``--dr-loop-funcs``, ``--acc-funcs`` and ``--dr-check``
override the mode's settings of the same names below; the data sets keep their sizes.)

Workloads (the data sets of Lu et al. 2021), all float32 in opdiff:

1. **Antiderivative**, 10,000 triplets: inputs from ``GaussianRandomField(kernel="rbf",
   length_scale=0.2, n_grid=1000)`` with its default sampler, the truncated Karhunen-Loeve
   expansion (``method="kl"``, rank 16 here), read at ``m = 100`` equispaced sensors by cubic
   interpolation, one output point per function (``points_per_func=1``);
   ``opdiff.data.make_unaligned`` with ``catalog.antiderivative(grid)``.
2. **Nonlinear ODE** :math:`s'=-s^2+u`, :math:`s(0)=0`, the same way with
   ``catalog.nonlinear_ode(grid, substeps=1)`` and ``on_nonfinite="drop"``. opdiff solves on
   the whole 1000-point grid by RK4 (one step per interval) and keeps one grid value per
   function.
3. **Diffusion-reaction** :math:`s_t=Ds_{xx}+ks^2+u(x)`, ``D = k = 0.01``, 1,000 solutions on
   the 100 x 101 (x, t) grid (``nx = nt = 100``): ``make_aligned`` with
   ``catalog.diffusion_reaction(100, 100)`` and a (KL) GRF with ``n_grid=100`` (sensors = the
   grid), and the raw solver ``opdiff.operators.reaction_diffusion.diffusion_reaction`` on
   pre-sampled inputs.

The peers, written here after the authors' recipe (one process, one function at a time):

* ODEs (1, 2): the same GRF sampled with NumPy the authors' way (Cholesky factor of the
  1000 x 1000 kernel matrix with the jitter of opdiff's ``method="cholesky"``, computed once and
  timed as setup; then ``L @ z`` per function),
  ``scipy.interpolate.interp1d(kind="cubic")`` of the grid values (built once per function),
  evaluated at the sensors, and ``scipy.integrate.solve_ivp`` (RK45, default tolerances
  ``rtol=1e-3, atol=1e-6``) of :math:`s'=g(s,u(x))` with ``u`` the cubic interpolant, from 0
  to one point :math:`y\\sim U[0,1)` (``t_eval=[y]``).
* Diffusion-reaction (3): NumPy sampling on the 100-point grid, then a linearised
  Crank-Nicolson finite-difference solver (:func:`cn_diffusion_reaction`, written for this
  benchmark): central differences in x, Crank-Nicolson in t, the reaction :math:`ks^2`
  linearised about :math:`s^n` and averaged CN-style, which is exactly the semi-implicit
  :math:`k\\,s^n s^{n+1}`; one tridiagonal ``scipy.linalg.solve_banded`` per time step.

What is measured. opdiff is timed end to end (one call returns the finished dataset as NumPy
arrays) after a warm-up call that compiles and builds the cached GRF factor and sensor
matrix; the per-stage split (KL GRF sampling, sensor interpolation, operator) repeats
``_generate``'s chunked loop (chunks of 4096 functions) with a sync after each stage, and
"rest" is the end-to-end time minus the stages (host copies, query-point draw, gather, finite
checks and drops; ~10 ms, so on a busy VM it can come out negative). For context, the ODE
data sets are also timed with the Cholesky sampler (``method="cholesky"``: a full
1000 x 1000 factor and 1000 normals per function; the same distribution as KL to about 1e-10
of the covariance's largest eigenvalue). The authors' loops are slow (milliseconds per
function), so each round times a subset and the time for the full count is **extrapolated
linearly** (setup + count x time per function); the output says from how many functions.
Every variant runs once per round, in an order rotated every round (5 rounds; 2 with
``--quick``), on this possibly busy 2-core VM; times are medians over rounds and speed-ups are
medians of per-round ratios. The f32 matmul peak (jitted
2048 x 2048 ``a @ b``) is measured every round for context: when other processes load the
cores it drops (185 GFLOP/s on an idle VM), and so do the speed-ups, since opdiff's
multi-threaded XLA kernels lose more to contention than the single-threaded loops do. The
achieved GFLOP/s of opdiff's diffusion-reaction solver (its matmul FLOPs over its time) is
printed next to it.

Accuracy, so that the speed comparison is also an accuracy comparison: for a few functions,
opdiff's labels (every grid value) are compared with a tight ``solve_ivp`` (RK45,
``rtol=1e-10, atol=1e-12``, interval by interval) of the ODE driven by the piecewise-linear
input that opdiff's operators define, and the authors' RK45-default labels (at random ``y``)
with a tight solve driven by their cubic interpolant; the gap between the two tight solutions
(different interpolants of the same grid values) is printed too. For diffusion-reaction the
NumPy reference and opdiff's CNAB2 solver are compared on the same inputs, both in float64 at
``nt = 100`` and ``nt = 400`` (two second-order schemes on the same spatial grid: the gap is
O(dt^2) and shrinks ~16x), and with opdiff in float32, the data sets' precision.

The nonlinear ODE blows up in finite time for a few GRF inputs in 10,000 (``u`` below about
:math:`-(\\pi/2)^2` over most of [0, 1]); with ``on_nonfinite="drop"`` ``make_unaligned``
discards the functions whose path is not finite on [0, 1] (so the data set has a few fewer
than 10,000 triplets) and the output prints their count
(``metadata["dropped_nonfinite"]``), next to the scipy loop's failed solves (a blow-up before
its drawn ``y``; a subset, so fewer). Every data set uses the fixed key ``SEED``.

The output ends with one line per headline figure, ``name: value unit (goal: ...)``.
Benchmarks are not tests: nothing here fails on a timing.
"""

from __future__ import annotations

import os

# The reference loops' only BLAS call is one 1000-long matvec per function: one thread does it
# best, and a multi-threaded OpenBLAS matvec gets ~20x slower when other processes keep the
# cores busy. Set before NumPy loads OpenBLAS (jax/XLA has its own thread pool; opdiff's timed
# path makes no BLAS call). The authors ran their loop in a pool of single-threaded processes.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.interpolate
import scipy.linalg

from benchmarks._common import (
    device_peak_memory_mib,
    fmt_value,
    headline,
    matmul_peak_gflops,
    median,
    peak_rss_mib,
    print_footer,
    print_header,
    print_table,
)
from opdiff import data, functions
from opdiff.operators import catalog, reaction_diffusion

N_FUNCS = 10_000  # triplets for the ODE data sets (one point per function)
N_GRID, LENGTH_SCALE, M_SENSORS = 1000, 0.2, 100
SUBSTEPS = 1  # RK4 steps per grid interval for opdiff's nonlinear ODE
N_DR, NX, NT, D, K_REACTION = 1000, 100, 100, 0.01, 0.01
CHUNK = 4096  # make_aligned / make_unaligned's default chunk (the stage split repeats it)
SEED = 1  # key of every opdiff data set (the nonlinear ODE drops the inputs that blow up)

# (full, quick) settings
ROUNDS = {"full": 5, "quick": 2}
LOOP_FUNCS = {"full": 400, "quick": 60}  # authors' ODE loop: functions per round
DR_LOOP_FUNCS = {"full": 150, "quick": 25}  # NumPy diffusion-reaction loop: functions per round
ACC_FUNCS = {"full": 6, "quick": 3}  # functions in the ODE accuracy check
ACC_POINTS = 16  # random y per function for the authors' labels in the accuracy check
DR_CHECK = {"full": 20, "quick": 8}  # functions in the diffusion-reaction agreement check
PEAK_REPEATS = {"full": 7, "quick": 5}
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def antiderivative_rhs(s, u):
    """:math:`ds/dx=u`."""
    return u


def nonlinear_rhs(s, u):
    """:math:`ds/dx=-s^2+u`."""
    return -s * s + u


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall-clock seconds of ``fn()`` (which must return finished, host-side results)."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# --- opdiff ---------------------------------------------------------------------------------


def opdiff_stages(space, spec, n_funcs: int, sensors, key) -> dict[str, float]:
    """``_generate``'s loop (chunks of ``CHUNK``) with a sync after each stage, timed per stage.

    Returns the seconds spent sampling, interpolating to the sensors and applying the operator.
    """
    grid = np.asarray(space.grid)
    times = {"sampling": 0.0, "interpolation": 0.0, "operator": 0.0}
    for i, start in enumerate(range(0, n_funcs, CHUNK)):
        count = min(CHUNK, n_funcs - start)
        t0 = time.perf_counter()
        u = space.sample(count, key=jax.random.fold_in(key, i), dtype=jnp.float32)
        u.block_until_ready()
        t1 = time.perf_counter()
        np.asarray(functions.interpolate(u, grid, sensors, "cubic"))
        t2 = time.perf_counter()
        np.asarray(spec.apply(u))
        t3 = time.perf_counter()
        times["sampling"] += t1 - t0
        times["interpolation"] += t2 - t1
        times["operator"] += t3 - t2
    return times


# --- the authors' method, one function at a time ------------------------------------------------


def numpy_cholesky(space: functions.GaussianRandomField) -> np.ndarray:
    """Lower Cholesky factor of the kernel matrix plus ``space.jitter`` on the diagonal (the
    authors' sampler, whatever ``space.method`` opdiff samples with)."""
    k = space.covariance()
    k[np.diag_indices_from(k)] += space.jitter
    return np.linalg.cholesky(k)


def scipy_ode_loop(space, rhs, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """``n`` triplets the authors' way: NumPy GRF sample, ``interp1d`` cubic to the sensors,
    ``solve_ivp`` (RK45, default tolerances) of ``s' = rhs(s, u(x))`` from 0 to ``y ~ U[0,1)``.

    Returns setup (Cholesky) and per-stage seconds, the triplets, and the count of failed solves
    (a blow-up before ``y``; their label is NaN).
    """
    grid = space.grid
    sensors = functions.equispaced_sensors(M_SENSORS)
    t_setup, chol = timed(lambda: numpy_cholesky(space))
    inputs, points, outputs = np.empty((n, M_SENSORS)), np.empty(n), np.empty(n)
    t = {"sampling": 0.0, "interpolation": 0.0, "solve": 0.0}
    failed = 0
    for i in range(n):
        t0 = time.perf_counter()
        u = chol @ rng.standard_normal(grid.size)
        t1 = time.perf_counter()
        f = scipy.interpolate.interp1d(grid, u, kind="cubic", copy=False, assume_sorted=True)
        inputs[i] = f(sensors)
        t2 = time.perf_counter()
        y = rng.uniform()
        sol = scipy.integrate.solve_ivp(lambda x, s: rhs(s, f(x)), (0.0, y), [0.0], t_eval=[y])
        if sol.status == 0:
            outputs[i] = sol.y[0, -1]
        else:
            outputs[i], failed = np.nan, failed + 1
        points[i] = y
        t3 = time.perf_counter()
        t["sampling"] += t1 - t0
        t["interpolation"] += t2 - t1
        t["solve"] += t3 - t2
    return {"setup": t_setup, "stages": t, "loop": sum(t.values()), "n": n, "failed": failed}


def cn_diffusion_reaction(u: np.ndarray, *, D: float = D, k: float = K_REACTION, nt: int = NT,
                          t_final: float = 1.0) -> np.ndarray:
    r"""Linearised Crank-Nicolson for :math:`s_t=Ds_{xx}+ks^2+u(x)`, zero initial/boundary values.

    ``u`` is given on ``x_j = j/(nx-1)``; returns :math:`s(x_j,t_n)`, shape ``(nt+1, nx)``.
    With :math:`r=D\Delta t/(2h^2)`, :math:`\Delta_h` the second difference, and the reaction
    linearised about :math:`s^n` (:math:`g(s^{n+1})\approx g(s^n)+g'(s^n)(s^{n+1}-s^n)`) and
    averaged over the step, which gives :math:`ks^ns^{n+1}`:

    .. math:: (1+2r-k\Delta t\,s^n_j)s^{n+1}_j-r(s^{n+1}_{j-1}+s^{n+1}_{j+1})
              =s^n_j+r\Delta_hs^n_j+\Delta t\,u_j,

    a tridiagonal system per step (a new diagonal every step), solved with
    ``scipy.linalg.solve_banded``. Second order in :math:`\Delta t` and :math:`h`.
    """
    nx = u.size
    h, dt = 1.0 / (nx - 1), t_final / nt
    r = D * dt / (2.0 * h * h)
    src = dt * np.asarray(u[1:-1], np.float64)
    m = nx - 2
    ab = np.zeros((3, m))
    ab[0, 1:] = -r  # super-diagonal
    ab[2, :-1] = -r  # sub-diagonal
    s = np.zeros(m)
    out = np.zeros((nt + 1, nx))
    for n in range(nt):
        ab[1] = (1.0 + 2.0 * r) - (k * dt) * s
        b = (1.0 - 2.0 * r) * s + src
        b[1:] += r * s[:-1]
        b[:-1] += r * s[1:]
        s = scipy.linalg.solve_banded((1, 1), ab, b, overwrite_b=True, check_finite=False)
        out[n + 1, 1:-1] = s
    return out


def dr_solver_flops() -> float:
    """Matmul FLOPs of opdiff's CNAB2 solver for the batch: ``nt + 1`` advances (the Heun start
    takes two), each two ``M x M`` matrices times ``M x N_DR`` (``M = nx - 2``)."""
    m = NX - 2
    return (NT + 1) * 2 * 2.0 * m * m * N_DR


def tridiagonal_flops() -> float:
    """Rough FLOPs of the reference's work for the batch: per step and unknown, ~8 to build
    the right-hand side and diagonal and ~8 for the tridiagonal solve."""
    return NT * 16.0 * (NX - 2) * N_DR


def numpy_dr_loop(space, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """``n`` diffusion-reaction solutions one at a time: NumPy GRF sample on the 100-point
    grid (the sensors are the grid nodes, so no interpolation), then
    :func:`cn_diffusion_reaction`."""
    t_setup, chol = timed(lambda: numpy_cholesky(space))
    inputs, outputs = np.empty((n, NX)), np.empty((n, NT + 1, NX))
    t = {"sampling": 0.0, "solve": 0.0}
    for i in range(n):
        t0 = time.perf_counter()
        inputs[i] = chol @ rng.standard_normal(NX)
        t1 = time.perf_counter()
        outputs[i] = cn_diffusion_reaction(inputs[i])
        t2 = time.perf_counter()
        t["sampling"] += t1 - t0
        t["solve"] += t2 - t1
    return {"setup": t_setup, "stages": t, "loop": sum(t.values()), "n": n, "failed": 0}


def extrapolate(run: dict[str, Any], count: int) -> float:
    """Seconds for ``count`` functions: setup + ``count`` x the measured time per function."""
    return run["setup"] + count * run["loop"] / run["n"]


# --- accuracy -------------------------------------------------------------------------------


def tight_pl_path(rhs, u: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Tight solve of ``s' = rhs(s, I_h u(x))`` (piecewise-linear input), interval by interval
    so that the right-hand side is smooth within each call; values at the grid nodes."""
    s = np.zeros(grid.size)
    for i in range(grid.size - 1):
        xa, xb, ua, ub = grid[i], grid[i + 1], u[i], u[i + 1]
        slope = (ub - ua) / (xb - xa)
        sol = scipy.integrate.solve_ivp(lambda x, y: rhs(y, ua + slope * (x - xa)), (xa, xb),
                                        [s[i]], **TIGHT)
        s[i + 1] = sol.y[0, -1]
    return s


def ode_accuracy(space, spec, rhs, key, n_funcs: int, rng: np.random.Generator) -> dict[str, float]:
    """Max abs errors of opdiff's labels (all grid values; float32 as in the data sets, and
    float64) and of the authors' RK45-default labels (``ACC_POINTS`` random ``y`` per
    function), each against a tight solve of its own input representation; and the gap between
    the two tight solutions."""
    grid = space.grid
    u32 = space.sample(2 * n_funcs, key=key, dtype=jnp.float32)
    paths = np.asarray(spec.apply(u32), np.float64)
    with jax.enable_x64(True):
        paths64 = np.asarray(spec.apply(jnp.asarray(np.asarray(u32, np.float64))))
    ok = np.all(np.isfinite(paths), axis=1) & (np.max(np.abs(paths), axis=1) < 10.0)
    idx = np.flatnonzero(ok)[:n_funcs]  # skip inputs that blow up (or nearly)
    err = {"opdiff": 0.0, "opdiff64": 0.0, "authors": 0.0, "gap": 0.0, "scale": 0.0}
    for i in idx:
        u = np.asarray(u32[i], np.float64)
        exact_pl = tight_pl_path(rhs, u, grid)
        err["opdiff"] = max(err["opdiff"], float(np.max(np.abs(paths[i] - exact_pl))))
        err["opdiff64"] = max(err["opdiff64"], float(np.max(np.abs(paths64[i] - exact_pl))))
        f = scipy.interpolate.interp1d(grid, u, kind="cubic", copy=False, assume_sorted=True)
        tight = scipy.integrate.solve_ivp(lambda x, s: rhs(s, f(x)), (0.0, 1.0), [0.0],
                                          dense_output=True, **TIGHT)
        err["gap"] = max(err["gap"], float(np.max(np.abs(tight.sol(grid)[0] - exact_pl))))
        for y in rng.uniform(size=ACC_POINTS):
            sol = scipy.integrate.solve_ivp(lambda x, s: rhs(s, f(x)), (0.0, y), [0.0],
                                            t_eval=[y])
            err["authors"] = max(err["authors"], abs(float(sol.y[0, -1] - tight.sol(y)[0])))
        err["scale"] = max(err["scale"], float(np.max(np.abs(exact_pl))))
    return dict(err, n=len(idx))


def dr_agreement(u32: jax.Array) -> dict[str, float]:
    """Max abs differences between opdiff's CNAB2 solver and the NumPy linearised CN on the same
    inputs: both in float64 at ``nt = NT`` and ``4 NT`` (compared at the ``NT + 1`` common
    times; two second-order schemes on the same grid, so the gap shrinks ~16x), and opdiff in
    float32 (the data sets' precision) at ``NT``."""
    u = np.asarray(u32, np.float64)
    result = {}
    for nt in (NT, 4 * NT):
        with jax.enable_x64(True):
            ours = np.asarray(reaction_diffusion.diffusion_reaction(
                jnp.asarray(u), D=D, k=K_REACTION, nt=nt))
        ref = np.stack([cn_diffusion_reaction(ui, nt=nt) for ui in u])
        every = nt // NT
        result[f"f64 nt={nt}"] = float(np.max(np.abs(ours[:, ::every] - ref[:, ::every])))
        if nt == NT:
            ours32 = np.asarray(reaction_diffusion.diffusion_reaction(u32, D=D, k=K_REACTION,
                                                                      nt=nt))
            result["f32"] = float(np.max(np.abs(ours32 - ref)))
            result["scale"] = float(np.max(np.abs(ref)))
    return result


# --- driver ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller subsets, fewer rounds (30-45 s)")
    overrides = {"rounds": ROUNDS, "loop_funcs": LOOP_FUNCS, "dr_loop_funcs": DR_LOOP_FUNCS,
                 "acc_funcs": ACC_FUNCS, "dr_check": DR_CHECK}
    for name in overrides:
        parser.add_argument("--" + name.replace("_", "-"), type=int,
                            help=f"overrides the mode's {name.upper()} (>= 1)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    setting = {}
    for name, table in overrides.items():
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        setting[name] = table[mode] if value is None else value
    rounds, loop_n, dr_loop_n = setting["rounds"], setting["loop_funcs"], setting["dr_loop_funcs"]

    load = print_header("operator-data generation benchmark" + (" (--quick)" if args.quick else ""))
    t_start = time.perf_counter()

    grf = functions.GaussianRandomField(kernel="rbf", length_scale=LENGTH_SCALE, n_grid=N_GRID)
    grf_chol = functions.GaussianRandomField(kernel="rbf", length_scale=LENGTH_SCALE,
                                             n_grid=N_GRID, method="cholesky")
    grf_dr = functions.GaussianRandomField(kernel="rbf", length_scale=LENGTH_SCALE, n_grid=NX)
    grid = grf.grid
    sensors = functions.equispaced_sensors(M_SENSORS)
    dr_sensors = functions.equispaced_sensors(NX)
    specs = {"antiderivative": catalog.antiderivative(grid),
             "nonlinear_ode": catalog.nonlinear_ode(grid, substeps=SUBSTEPS)}
    rhs = {"antiderivative": antiderivative_rhs, "nonlinear_ode": nonlinear_rhs}
    on_nonfinite = {"antiderivative": "raise", "nonlinear_ode": "drop"}
    dr_spec = catalog.diffusion_reaction(NX, NT, D=D, k=K_REACTION)

    print(f"GRF: rbf, l={LENGTH_SCALE}, {N_GRID}-point grid on [0, 1], method={grf.method!r} "
          f"(KL rank {grf.rank}; variant: Cholesky, jitter {grf_chol.jitter:g}); {M_SENSORS} "
          "sensors, cubic; float32")
    print(f"ODE data sets: {N_FUNCS:,} functions, 1 point each, key {SEED}; nonlinear ODE RK4 "
          f"with substeps={SUBSTEPS}, on_nonfinite='drop'")
    print(f"diffusion-reaction: {N_DR:,} functions, nx={NX}, nt={NT}, D={D}, k={K_REACTION}, "
          f"{NX}-point GRF (KL rank {grf_dr.rank}), outputs {N_DR} x {(NT + 1) * NX}")
    print(f"rounds: {rounds}; authors' ODE loop {loop_n} functions per round, NumPy "
          f"diffusion-reaction loop {dr_loop_n} per round (both extrapolated linearly)")
    print(flush=True)

    # Warm-up: compile every jitted call, build the cached factors and sensor matrices, and
    # count the functions each ODE data set drops (non-finite paths; same key every call).
    key = jax.random.key(SEED)

    def make_ode(space, name):
        return data.make_unaligned(space, specs[name], n_funcs=N_FUNCS, sensors=sensors, key=key,
                                   on_nonfinite=on_nonfinite[name])

    dropped = {(space.method, name): make_ode(space, name).metadata["dropped_nonfinite"]
               for space in (grf, grf_chol) for name in specs}
    dr_key = jax.random.key(SEED)
    data.make_aligned(grf_dr, dr_spec, n_funcs=N_DR, sensors=dr_sensors, key=dr_key)
    u_dr = grf_dr.sample(N_DR, key=jax.random.key(SEED + 1000), dtype=jnp.float32)

    def dr_solver():
        return np.asarray(reaction_diffusion.diffusion_reaction(u_dr, D=D, k=K_REACTION, nt=NT))

    dr_solver()
    print(f"nonlinear ODE, key {SEED}: on_nonfinite='drop' drops "
          f"{dropped['kl', 'nonlinear_ode']} of the {N_FUNCS:,} functions (KL sampler; "
          f"{dropped['cholesky', 'nonlinear_ode']} with Cholesky): their paths blow up before "
          "x = 1")
    print(f"warm-up done ({time.perf_counter() - t_start:.0f} s)", flush=True)

    # Variants: name -> callable returning seconds (opdiff) or a dict (stages, loops).
    tasks: dict[str, dict[str, Callable[[int], Any]]] = {}
    for name, spec in specs.items():
        tasks[name] = {
            "opdiff": lambda r, name=name: timed(lambda: make_ode(grf, name))[0],
            "stages": lambda r, spec=spec: opdiff_stages(grf, spec, N_FUNCS, sensors, key),
            "opdiff cholesky": lambda r, name=name: timed(lambda: make_ode(grf_chol, name))[0],
            "loop": lambda r, name=name: scipy_ode_loop(
                grf, rhs[name], loop_n, np.random.default_rng([r, list(specs).index(name)])),
        }
    tasks["diffusion_reaction"] = {
        "opdiff": lambda r: timed(lambda: data.make_aligned(
            grf_dr, dr_spec, n_funcs=N_DR, sensors=dr_sensors, key=dr_key))[0],
        "stages": lambda r: opdiff_stages(grf_dr, dr_spec, N_DR, dr_sensors, dr_key),
        "solver": lambda r: timed(dr_solver)[0],
        "loop": lambda r: numpy_dr_loop(grf_dr, dr_loop_n, np.random.default_rng([r, 99])),
    }
    samples: dict[str, dict[str, list[Any]]] = {t: {v: [] for v in vs} for t, vs in tasks.items()}
    peaks: list[float] = []
    for r in range(rounds):
        for task, variants in tasks.items():
            names = list(variants)
            for v in names[r % len(names):] + names[: r % len(names)]:
                samples[task][v].append(variants[v](r))
        peaks.append(matmul_peak_gflops(2048, jnp.float32, repeats=PEAK_REPEATS[mode]))
        print(f"round {r + 1}/{rounds} done ({time.perf_counter() - t_start:.0f} s)", flush=True)
    print()

    # Accuracy (not timed).
    acc_rng = np.random.default_rng(7)
    accuracy = {name: ode_accuracy(grf, specs[name], rhs[name], jax.random.key(SEED + 2000),
                                   setting["acc_funcs"], acc_rng) for name in specs}
    agreement = dr_agreement(u_dr[:setting["dr_check"]])

    # --- report -----------------------------------------------------------------------------
    def count_of(task: str) -> int:
        return N_DR if task == "diffusion_reaction" else N_FUNCS

    def loop_times(task: str) -> list[float]:
        return [extrapolate(run, count_of(task)) for run in samples[task]["loop"]]

    def speedup(task: str, variant: str) -> float:
        return median([a / b for a, b in zip(loop_times(task), samples[task][variant])])

    summary: dict[str, dict[str, float]] = {}
    titles = {"antiderivative": "antiderivative", "nonlinear_ode": "nonlinear ODE s' = -s^2 + u",
              "diffusion_reaction": "diffusion-reaction"}
    ops = {"antiderivative": "trapezoid cumsum", "nonlinear_ode": f"RK4, substeps={SUBSTEPS}",
           "diffusion_reaction": "CNAB2"}
    for task in tasks:
        s = samples[task]
        count = count_of(task)
        loop_total = sum(run["n"] for run in s["loop"])
        peer = "NumPy loop" if task == "diffusion_reaction" else "scipy loop"
        maker = "make_aligned" if task == "diffusion_reaction" else "make_unaligned"
        stage = {k: median([st[k] for st in s["stages"]]) for k in s["stages"][0]}
        rest = median([e - sum(st.values()) for e, st in zip(s["opdiff"], s["stages"])])
        space = grf_dr if task == "diffusion_reaction" else grf
        rows = [
            [f"opdiff {maker}, GRF method=\"kl\"", fmt_value(median(s["opdiff"])),
             " ".join(fmt_value(x) for x in s["opdiff"]), fmt_value(speedup(task, "opdiff"))],
            [f"  sampling (GRF, KL rank {space.rank})", fmt_value(stage["sampling"]), "", ""],
            ["  sensor interpolation (cubic)", fmt_value(stage["interpolation"]), "", ""],
            [f"  operator ({ops[task]})", fmt_value(stage["operator"]), "", ""],
            ["  rest (host copies, draws, checks)", fmt_value(rest), "", ""],
        ]
        extra = "solver" if task == "diffusion_reaction" else "opdiff cholesky"
        label = ("opdiff raw solver, pre-sampled inputs" if extra == "solver"
                 else f'opdiff {maker}, GRF method="cholesky"')
        rows.append([label, fmt_value(median(s[extra])),
                     " ".join(fmt_value(x) for x in s[extra]), fmt_value(speedup(task, extra))])
        rows.append([f"{peer} (extrapolated)", fmt_value(median(loop_times(task))),
                     " ".join(fmt_value(x) for x in loop_times(task)), "1.00"])
        print(f"-- {titles[task]}: {count:,} functions --")
        print_table(["variant", "time (s)", "per round (s)", f"speed-up vs {peer}"], rows)
        dev = device_peak_memory_mib()
        print(f"memory: peak RSS {peak_rss_mib():.0f} MiB"
              + ("" if dev is None else f", device peak {dev:.0f} MiB")
              + " (this process, all data sets so far)")
        per_fn = {k: 1e3 * median([run["stages"][k] / run["n"] for run in s["loop"]])
                  for k in s["loop"][0]["stages"]}
        failed = sum(run["failed"] for run in s["loop"])
        print(f"{peer}: extrapolated linearly to {count:,} from {s['loop'][0]['n']} functions per "
              f"round ({loop_total:,} in all): "
              f"{1e3 * median([run['loop'] / run['n'] for run in s['loop']]):.2f} ms per function ("
              + ", ".join(f"{k} {v:.2f}" for k, v in per_fn.items())
              + f" ms) + {median([run['setup'] for run in s['loop']]):.3f} s Cholesky setup"
              + (f"; {failed} solves failed (blow-up)"
                 if failed and on_nonfinite.get(task) != "drop" else ""))
        if on_nonfinite.get(task) == "drop":
            print(f"blow-ups: opdiff dropped {dropped['kl', task]} of {count:,} functions "
                  f"({dropped['cholesky', task]} with Cholesky; path not finite on [0, 1]); "
                  f"{peer}: {failed} of {loop_total:,} solves failed (blow-up before the drawn y)")
        print(flush=True)
        summary[task] = {"opdiff": median(s["opdiff"]), "speedup": speedup(task, "opdiff"),
                         "loop": median(loop_times(task))}
        if task == "diffusion_reaction":
            summary[task]["solver"] = median(s["solver"])
            summary[task]["solver_speedup"] = speedup(task, "solver")
            flops = dr_solver_flops()
            summary[task]["gflops"] = flops / summary[task]["solver"] / 1e9
            of_peak = median([flops / t / 1e9 / p for t, p in zip(s["solver"], peaks)])
            print(f"opdiff raw solver: {flops / 1e9:.2f} GFLOP of matmuls (CNAB2: two "
                  f"{NX - 2}x{NX - 2} matrices applied per step to the batch, {NT + 1} steps "
                  f"counting the Heun start) -> {summary[task]['gflops']:.1f} GFLOP/s, "
                  f"{100 * of_peak:.0f}% of the matmul peak (a tridiagonal solve per step, as in "
                  f"the NumPy loop, needs roughly {flops / tridiagonal_flops():.0f}x fewer flops)")
            print(flush=True)

    print("-- accuracy of the labels (max abs error; tight = solve_ivp RK45 rtol=1e-10, "
          "atol=1e-12) --")
    rows = []
    for name, acc in accuracy.items():
        rows.append([titles[name], acc["n"], f"{acc['opdiff']:.1e}", f"{acc['opdiff64']:.1e}",
                     f"{acc['authors']:.1e}", f"{acc['gap']:.1e}", f"{acc['scale']:.2f}"])
    print_table(["operator", "functions", "opdiff f32", "opdiff f64",
                 "authors' RK45 default", "tight PL vs cubic", "max |s|"], rows)
    print("opdiff: every grid value, against the tight solve for the piecewise-linear input "
          "(its representation);\nauthors': RK45 with default tolerances to "
          f"{ACC_POINTS} random y per function, against the tight solve for their cubic\n"
          "interpolant. The last error column is the gap between those two exact labels (same "
          "grid values,\ndifferent interpolants), not a solver error.")
    print()
    print(f"diffusion-reaction: opdiff CNAB2 vs NumPy linearised CN, {setting['dr_check']} "
          "functions, "
          f"max |s| {agreement['scale']:.2f}; max |difference|:")
    f1, f4 = agreement[f"f64 nt={NT}"], agreement[f"f64 nt={4 * NT}"]
    print(f"  both float64: {f1:.1e} at nt={NT}, {f4:.1e} at nt={4 * NT} (ratio {f1 / f4:.1f}; "
          "16 for two O(dt^2) schemes on the same grid)")
    print(f"  opdiff float32 (the data sets' precision): {agreement['f32']:.1e} at nt={NT}")
    print()
    print(f"matmul peak f32 (2048x2048, per round): {' '.join(fmt_value(p) for p in peaks)} "
          "GFLOP/s")
    print(f"total time: {time.perf_counter() - t_start:.0f} s")
    print()

    context = "none, context"
    lines = []
    for name in specs:
        lines += [
            headline(f"{name}_10k_opdiff", summary[name]["opdiff"], "s", "< 1 s", load),
            headline(f"{name}_speedup_vs_scipy_loop", summary[name]["speedup"], "x", ">= 100",
                     load),
            headline(f"{name}_10k_scipy_loop", summary[name]["loop"], "s",
                     f"{context}; extrapolated", load),
        ]
    dr = summary["diffusion_reaction"]
    lines += [
        headline("diffusion_reaction_1k_opdiff", dr["opdiff"], "s", context, load),
        headline("diffusion_reaction_1k_opdiff_solver", dr["solver"], "s", context, load),
        headline("diffusion_reaction_speedup_vs_numpy_loop", dr["speedup"], "x", context, load),
        headline("diffusion_reaction_solver_speedup_vs_numpy_loop", dr["solver_speedup"], "x",
                 context, load),
        headline("diffusion_reaction_1k_numpy_loop", dr["loop"], "s",
                 f"{context}; extrapolated", load),
        headline("diffusion_reaction_solver_achieved", dr["gflops"], "GFLOP/s", context, load),
        headline("matmul_peak_f32", median(peaks), "GFLOP/s", "context", load),
    ]
    print("\n".join(lines))
    print_footer(load)


if __name__ == "__main__":
    main()
