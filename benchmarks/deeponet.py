"""Training speed of opdiff on the DeepONet paper's antiderivative problem, against DeepXDE.

Run from the repository root::

    .venv/bin/python -m benchmarks.deeponet            # full, ~5 min on an idle 2-core VM
    .venv/bin/python -m benchmarks.deeponet --quick    # ~1 min: fewer rounds, low cap in (2)

(On the shared reference VM, with the f32 matmul peak at 30-80 instead of ~185 GFLOP/s, the
full run took 17 min and ``--quick`` 2.5 min.)

    # with the DeepXDE half (run in its own interpreter; see "DeepXDE" below):
    .venv/bin/python -m benchmarks.deeponet --deepxde-python .venv-deepxde/bin/python

Workload (Lu et al. 2021, the authors' code defaults): ``DeepONet(100, 1, 40)``, i.e. branch
``[100, 40, 40]``, trunk ``[1, 40, 40]``, ReLU, Glorot normal, output bias, 7,401 parameters;
MSE loss, ``optax.adam(1e-3)``, float32, **full batch** of 10,000 antiderivative triplets
(``opdiff.data.make_unaligned`` of ``functions.GaussianRandomField()`` (RBF, l = 0.2,
1000-point grid) with ``catalog.antiderivative``, m = 100 equispaced sensors, one query point
per function); the test set is 100,000 further triplets from another key.

What is measured:

1. **Iterations/s of** ``opdiff.fit`` with ``steps_per_call=1`` and ``steps_per_call=100``
   (one ``lax.scan`` of 100 steps per call), reported separately. Wall-clock: a ``callback``
   timestamps the end of every jitted call and the rate runs from the end of the first
   (compiling) call to the end of the last, so it counts ``fit``'s per-call host work;
   ``TrainResult.steps_per_s`` is shown beside it. The achieved GFLOP/s counts the matmuls
   only (forward ``2 B (100*40 + 40*40 + 1*40 + 40*40)``, a step ~3x the forward).
2. **Time to test MSE <= 1e-6.** One ``fit`` run (``steps_per_call=100``) with a checkpoint
   every 1000 steps (``workdir`` in a temporary directory, ``checkpoint_every=1000``); the
   ``callback`` restores each new checkpoint (``opdiff.checkpoint.restore``) and computes the
   MSE over all 100,000 test triplets (float32 predictions, float64 mean). The first
   evaluation at or below 1e-6 stops training. Reported: the iterations and the wall-clock
   seconds to that evaluation, compilation excluded (time from the end of the first call, plus
   the first call's 100 steps at the run's own rate); checkpoint saves and evaluations are
   included, though they mostly overlap the next scanned call, which ``fit`` has already
   dispatched (their total is printed). The cap is 60,000 iterations (the paper trains 50,000);
   if the target is not reached, the line says so and gives the best test MSE.
   ``--quick`` caps it at 2,000 iterations, which is not expected to reach the target.
   This run happens once, after the interleaved rounds of (1) and (3).
   **opdiff's best recipe** (``opdiff.operator_learning.recipes.RECIPES["adam_lbfgs"]``:
   Adam with warm-up and cosine decay, then L-BFGS on the full batch) from the same weights:
   one ``fit`` call for the Adam phase (no evaluations: the target is not expected there), then
   ``recipes.lbfgs_phase`` evaluating the test MSE every 1000 iterations and stopping at the
   target. Its seconds are wall-clock from the start of training, **compilation included**
   (the L-BFGS phase compiles mid-run), test evaluations excluded; the iterations count Adam
   steps plus L-BFGS iterations (one L-BFGS iteration costs about 1-1.5 Adam steps: a
   value-and-gradient per line-search trial). ``--recipe-cap`` bounds the L-BFGS iterations
   (``--quick``: 1,000 Adam steps and 1,000 L-BFGS iterations, not expected to reach it).
3. **DeepXDE** (PyTorch backend) on the same configuration and the **same arrays** (float32
   NumPy): ``dde.data.Triple`` (test set: the first 1,000 test triplets, evaluated by DeepXDE
   only at its first and last iteration), ``dde.nn.DeepONet([100, 40, 40], [1, 40, 40],
   "relu", "Glorot normal")``, ``Model.compile("adam", lr=1e-3)``, ``Model.train(iterations=N)``
   full batch. Its iterations/s is timed by a ``dde.callbacks.Callback`` stamping
   ``on_batch_end``, without the first 10 iterations (warm-up) and the last (which includes
   DeepXDE's test evaluation). The ratio opdiff/DeepXDE is the median of per-round ratios;
   goal: opdiff >= 5x DeepXDE.
4. The **float32 matmul peak** of this machine (jitted 2048 x 2048 ``a @ b``) every round,
   for context.

**DeepXDE** runs in a subprocess with another interpreter (DeepXDE and torch are not
dependencies of opdiff): ``--deepxde-python PATH`` or the environment variable
``OPDIFF_DEEPXDE_PYTHON``; if neither is given and ``deepxde`` and ``torch`` are importable
here, this interpreter is used (still in a subprocess). The subprocess gets the arrays in a
temporary ``.npz`` (plain arrays, no pickle), runs with ``DDE_BACKEND=pytorch`` and
``torch.set_num_threads(T)``, T = the cores this process may use (2 on the reference VM;
XLA's CPU client also uses all of them), and prints one JSON line with its timing. One
subprocess per round; its start-up and import are not timed. Without DeepXDE the output says
that it was not measured and how to enable it. To create such an interpreter::

    python3 -m venv .venv-deepxde && .venv-deepxde/bin/pip install deepxde torch==2.13.0

Because the reference machine is a noisy 2-core VM, every variant of (1) and (3) runs once per
round (3 rounds; 2 with ``--quick``) in an order rotated every round, and rates are medians
over rounds. Every opdiff run starts from the same weights and key (so the two opdiff
variants trace the same loss curve, which is checked); DeepXDE starts from its own Glorot
draw, so only its loss level after N iterations is comparable.

The output ends with one line per headline figure, ``name: value unit (goal: ...)``.
Benchmarks are not tests: nothing here fails on a timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import opdiff
from benchmarks._common import (
    fmt_value,
    headline,
    matmul_peak_gflops,
    median,
    print_footer,
    print_header,
    print_table,
)
from opdiff import checkpoint, data, functions
from opdiff import operator_learning as ol
from opdiff.operator_learning import recipes
from opdiff.nets import DeepONet, nnx
from opdiff.operators import catalog

N_SENSORS, P = 100, 40
N_TRAIN, N_TEST = 10_000, 100_000
N_TEST_DEEPXDE = 1_000  # test rows handed to DeepXDE's Triple (it evaluates them twice)
LEARNING_RATE = 1e-3
SCAN_STEPS = 100  # steps_per_call of the scanned variant
EVAL_EVERY = 1000  # test-MSE evaluations in (2)
TARGET_MSE = 1e-6
DEEPXDE_SKIP = 10  # warm-up iterations of DeepXDE left out of its rate
SEED_TRAIN, SEED_TEST, SEED_MODEL, SEED_FIT = 0, 1, 2, 3
ENV_DEEPXDE = "OPDIFF_DEEPXDE_PYTHON"

# (full, quick) settings
ROUNDS = {"full": 3, "quick": 2}
STEPS_SPC1 = {"full": 300, "quick": 100}
STEPS_SCAN = {"full": 600, "quick": 300}  # the first call (100 steps) compiles, untimed
DEEPXDE_ITERS = {"full": 200, "quick": 60}
CAP = {"full": 60_000, "quick": 2_000}
RECIPE_QUICK = 1_000  # --quick: Adam steps and L-BFGS cap of the recipe (not expected to reach)
PEAK_REPEATS = {"full": 7, "quick": 5}


# --- workload -------------------------------------------------------------------------------


def make_datasets() -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """``(u [n, 100], y [n, 1], s [n])`` float32 NumPy arrays: 10,000 train, 100,000 test."""
    grf = functions.GaussianRandomField()
    op = catalog.antiderivative(grf.grid)
    sensors = functions.equispaced_sensors(N_SENSORS)

    def arrays(n, seed):
        ds = data.make_unaligned(grf, op, n_funcs=n, sensors=sensors, key=jax.random.key(seed))
        return tuple(np.ascontiguousarray(a, np.float32)
                     for a in (ds.inputs, ds.points, ds.outputs))

    return arrays(N_TRAIN, SEED_TRAIN), arrays(N_TEST, SEED_TEST)


def make_model() -> DeepONet:
    """The paper's DeepONet with fixed initial weights (every opdiff run starts here)."""
    return DeepONet(N_SENSORS, 1, P, key=jax.random.key(SEED_MODEL))


def mse(model, batch, key):
    """Mean squared error of ``model.unaligned`` on a batch of triplets ``(u, y, s)``."""
    del key
    u, y, s = batch
    return jnp.mean((model.unaligned(u, y)[:, 0] - s) ** 2)


def n_params(model) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def train_step_flops(batch_size: int) -> float:
    """Matmul FLOPs of one training step: ~3x the forward pass ``2 B sum(in*out)``."""
    macs = N_SENSORS * 40 + 40 * P + 1 * 40 + 40 * P
    return 3.0 * 2.0 * batch_size * macs


def opdiff_run(train, steps: int, steps_per_call: int) -> dict[str, Any]:
    """Train with ``opdiff.fit`` (full batch); wall-clock and reported steps/s, the losses."""
    stamps: list[tuple[int, float]] = []

    def stamp(step: int, loss: float) -> None:
        stamps.append((step, time.perf_counter()))

    result = opdiff.fit(mse, make_model(), optax.adam(LEARNING_RATE), train, steps=steps,
                        key=jax.random.key(SEED_FIT), steps_per_call=steps_per_call,
                        progress=False, callback=stamp)
    (s0, t0), (s1, t1) = stamps[0], stamps[-1]  # stamps[0] ends the compiling call
    return {"wall": (s1 - s0) / (t1 - t0), "reported": result.steps_per_s,
            "losses": result.losses}


# --- (2) time to a test MSE -----------------------------------------------------------------


class _Reached(Exception):
    """Raised by the callback to stop ``fit`` once the test MSE reaches the target."""


def time_to_target(train, test, cap: int) -> dict[str, Any]:
    """Train up to ``cap`` steps, evaluating the test MSE every ``EVAL_EVERY`` steps."""
    model = make_model()
    optimizer = optax.adam(LEARNING_RATE)
    graphdef, theta, rest = nnx.split(model, nnx.Param, ...)
    # The state fit saves (see opdiff/train.py and tests/test_train.py), as restore template.
    template = {"step": np.asarray(0, np.int64), "params": theta,
                "opt_state": optimizer.init(theta), "ema": None}
    u_test, y_test, s_test = (jnp.asarray(a) for a in test)
    s64 = np.asarray(test[2], np.float64)

    @jax.jit
    def predict(params, u, y):
        return nnx.merge(graphdef, params, rest).unaligned(u, y)[:, 0]

    def test_mse(params) -> float:
        pred = np.asarray(predict(params, u_test, y_test), np.float64)
        return float(np.mean((pred - s64) ** 2))

    initial = test_mse(theta)  # also compiles ``predict`` before training starts
    stamps: list[tuple[int, float]] = []
    evals: list[dict[str, float]] = []
    eval_s = [0.0]

    with tempfile.TemporaryDirectory(prefix="opdiff-bench-deeponet-") as workdir:
        ckpt_dir = os.path.join(workdir, "checkpoints")

        def on_call(step: int, loss: float) -> None:
            now = time.perf_counter()
            stamps.append((step, now))
            if step % EVAL_EVERY:
                return
            state = checkpoint.restore(ckpt_dir, template, step)
            assert int(state["step"]) == step, "checkpoint layout changed"
            value = test_mse(state["params"])
            evals.append({"step": step, "test_mse": value, "loss": loss, "t": now})
            eval_s[0] += time.perf_counter() - now
            if value <= TARGET_MSE:
                raise _Reached

        t_start = time.perf_counter()
        try:
            opdiff.fit(mse, model, optimizer, train, steps=cap, key=jax.random.key(SEED_FIT),
                       steps_per_call=SCAN_STEPS, workdir=workdir, checkpoint_every=EVAL_EVERY,
                       max_to_keep=2, progress=False, callback=on_call)
        except _Reached:
            pass
        t_end = time.perf_counter()

    (s0, t0), (s1, t1) = stamps[0], stamps[-1]
    rate = (s1 - s0) / (t1 - t0)

    def elapsed(t: float) -> float:
        """Seconds from the start of training to ``t``, compilation excluded."""
        return t - t0 + s0 / rate

    for e in evals:
        e["elapsed"] = elapsed(e["t"])
    best = min(evals, key=lambda e: e["test_mse"])
    reached = evals[-1] if evals[-1]["test_mse"] <= TARGET_MSE else None
    return {"initial": initial, "evals": evals, "best": best, "reached": reached,
            "rate": rate, "eval_s": eval_s[0], "first_call_s": t0 - t_start,
            "total_s": t_end - t_start, "steps": s1}


def recipe_time_to_target(train, test, lbfgs_cap: int | None = None,
                          adam_steps: int | None = None) -> dict[str, Any]:
    """opdiff's best recipe (``recipes.RECIPES["adam_lbfgs"]``) from ``make_model()``'s weights:
    Adam, then L-BFGS evaluated every ``EVAL_EVERY`` iterations until the test MSE reaches
    ``TARGET_MSE`` or ``lbfgs_cap`` iterations ran. Seconds include compilation, not the
    evaluations."""
    r = recipes.recipe("adam_lbfgs")
    adam_steps = r["steps"] if adam_steps is None else adam_steps
    lbfgs_cap = r["lbfgs_steps"] if lbfgs_cap is None else lbfgs_cap
    model = make_model()
    u_test, y_test = (jnp.asarray(a) for a in test[:2])
    s64 = np.asarray(test[2], np.float64)

    graphdef, _, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def predict(theta):
        return nnx.merge(graphdef, theta, rest).unaligned(u_test, y_test)[:, 0]

    evals: list[dict[str, Any]] = []
    eval_s = [0.0]
    t_start = time.perf_counter()

    def evaluate(step: int, m) -> None:
        t0 = time.perf_counter()
        elapsed = t0 - t_start - eval_s[0]  # training seconds so far
        pred = np.asarray(predict(nnx.state(m, nnx.Param)), np.float64)
        value = float(np.mean((pred - s64) ** 2))
        eval_s[0] += time.perf_counter() - t0
        evals.append({"step": step, "test_mse": value, "elapsed": elapsed})
        if value <= TARGET_MSE:
            raise _Reached

    tx = optax.adam(ol.make_schedule(r["lr"], adam_steps, r["schedule"],
                                     final_fraction=r["final_lr_fraction"],
                                     warmup=min(r["warmup_steps"], adam_steps - 1)))
    res = opdiff.fit(mse, model, tx, train, steps=adam_steps, key=jax.random.key(SEED_FIT),
                     steps_per_call=SCAN_STEPS, progress=False)
    adam_s = time.perf_counter() - t_start
    try:
        evaluate(adam_steps, res.params)
        recipes.lbfgs_phase(mse, res.params, train, steps=lbfgs_cap, memory=r["lbfgs_memory"],
                            segment=EVAL_EVERY,
                            on_segment=lambda n, m: evaluate(adam_steps + n, m))
    except _Reached:
        pass
    best = min(evals, key=lambda e: e["test_mse"])
    reached = evals[-1] if evals[-1]["test_mse"] <= TARGET_MSE else None
    return {"evals": evals, "best": best, "reached": reached, "adam_steps": adam_steps,
            "adam_s": adam_s, "eval_s": eval_s[0], "lbfgs_cap": lbfgs_cap,
            "total_s": time.perf_counter() - t_start}


# --- (3) DeepXDE in another interpreter -----------------------------------------------------


def deepxde_worker(argv: list[str]) -> None:
    """Entry point run by the DeepXDE interpreter (``python -c <this source>``).

    ``argv``: npz path, iterations, warm-up iterations to skip, torch threads, seed. Imports
    only NumPy, torch and DeepXDE; prints one line ``OPDIFF_DEEPXDE_JSON {...}``.
    """
    import json
    import os
    import time

    os.environ.setdefault("DDE_BACKEND", "pytorch")
    npz, iterations, skip, threads, seed = argv[0], *map(int, argv[1:5])
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    import deepxde as dde

    if dde.backend.backend_name != "pytorch":
        raise SystemExit(f"DeepXDE backend is {dde.backend.backend_name!r}, not pytorch")
    dde.config.set_random_seed(seed)
    with np.load(npz, allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    triple = dde.data.Triple(X_train=(a["u_train"], a["y_train"]), y_train=a["s_train"],
                             X_test=(a["u_test"], a["y_test"]), y_test=a["s_test"])
    net = dde.nn.DeepONet([a["u_train"].shape[1], 40, 40], [1, 40, 40], "relu",
                          "Glorot normal")
    model = dde.Model(triple, net)
    model.compile("adam", lr=1e-3)
    stamps = []

    class Stamp(dde.callbacks.Callback):
        def on_batch_end(self):
            stamps.append(time.perf_counter())

    t0 = time.perf_counter()
    losshistory, _ = model.train(iterations=iterations, display_every=iterations, verbose=0,
                                 callbacks=[Stamp()])
    total = time.perf_counter() - t0
    # stamps[i] ends iteration i + 1; the last one also ran DeepXDE's test evaluation.
    window = stamps[skip:iterations - 1]
    pred = model.predict((a["u_test"], a["y_test"]))
    out = {
        "deepxde": dde.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "float": f"float{dde.config.real.precision}",
        "iterations": iterations,
        "timed_iterations": len(window) - 1,
        "it_per_s": (len(window) - 1) / (window[-1] - window[0]),
        "train_s": total,
        "n_params": int(sum(p.numel() for p in net.parameters())),
        "final_train_loss": float(np.sum(losshistory.loss_train[-1])),
        "test_mse": float(np.mean((pred.astype(np.float64) - a["s_test"]) ** 2)),
    }
    print("OPDIFF_DEEPXDE_JSON " + json.dumps(out), flush=True)


class DeepXDERunner:
    """Runs :func:`deepxde_worker` in ``python`` on the arrays saved in ``npz``."""

    MARK = "OPDIFF_DEEPXDE_JSON "

    def __init__(self, python: str, npz: str, iterations: int, threads: int):
        self.python, self.npz, self.iterations, self.threads = python, npz, iterations, threads
        self.code = (textwrap.dedent(inspect.getsource(deepxde_worker))
                     + "\nimport sys\ndeepxde_worker(sys.argv[1:])\n")

    def run(self) -> dict[str, Any]:
        env = dict(os.environ, DDE_BACKEND="pytorch")
        cmd = [self.python, "-c", self.code, self.npz, str(self.iterations), str(DEEPXDE_SKIP),
               str(self.threads), str(SEED_MODEL)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        for line in proc.stdout.splitlines():
            if line.startswith(self.MARK):
                out = json.loads(line[len(self.MARK):])
                return {"wall": out["it_per_s"], **out}
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"DeepXDE subprocess failed (exit {proc.returncode}):\n{tail}")


def find_deepxde_python(arg: str | None) -> tuple[str | None, str]:
    """The interpreter for the DeepXDE half and where it came from (or None and why not)."""
    if arg:
        return arg, "--deepxde-python"
    if os.environ.get(ENV_DEEPXDE):
        return os.environ[ENV_DEEPXDE], ENV_DEEPXDE
    if importlib.util.find_spec("deepxde") and importlib.util.find_spec("torch"):
        return sys.executable, "this interpreter (deepxde and torch importable)"
    return None, "deepxde/torch not importable here and no interpreter given"


# --- driver ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds, fewer steps, cap 2,000 iterations in (2) (~1 min)")
    parser.add_argument("--deepxde-python", metavar="PATH",
                        help=f"interpreter with deepxde + torch (or set {ENV_DEEPXDE})")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads for DeepXDE (default: usable cores)")
    parser.add_argument("--cap", type=int, default=None,
                        help="iteration cap of (2), a multiple of 1000 (default: 60,000; "
                             "2,000 with --quick; 0 skips it)")
    parser.add_argument("--recipe-cap", type=int, default=None,
                        help="L-BFGS iteration cap of opdiff's best recipe in (2) (default: the "
                             "recipe's; 1,000 with --quick; 0, or --cap 0, skips it)")
    parser.add_argument("--recipe-adam-steps", type=int, default=None,
                        help="Adam steps of the recipe (default: the recipe's; 1,000 with "
                             "--quick)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    rounds = ROUNDS[mode]
    cap = CAP[mode] if args.cap is None else args.cap
    if cap < 0 or cap % EVAL_EVERY:
        parser.error(f"--cap must be 0 or a positive multiple of {EVAL_EVERY}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.torch_threads or cores
    dde_python, dde_source = find_deepxde_python(args.deepxde_python)
    if dde_python is not None and not os.access(dde_python, os.X_OK):
        parser.error(f"DeepXDE interpreter {dde_python!r} (from {dde_source}) is not executable")

    load = print_header("DeepONet paper config: opdiff vs DeepXDE"
                        + (" (--quick)" if args.quick else ""))
    t_start = time.perf_counter()
    train_np, test_np = make_datasets()
    train = tuple(jnp.asarray(a) for a in train_np)
    model = make_model()
    print(f"model: DeepONet({N_SENSORS}, 1, {P}): branch [100, 40, 40], trunk [1, 40, 40], "
          f"ReLU, Glorot normal, bias; {n_params(model)} parameters; adam({LEARNING_RATE}), "
          "float32")
    print(f"data: antiderivative, {N_TRAIN} training triplets (full batch), {N_TEST} test "
          f"triplets; generated in {time.perf_counter() - t_start:.1f} s")
    print(f"rounds: {rounds}; steps per run: {STEPS_SPC1[mode]} (spc1), {STEPS_SCAN[mode]} "
          f"(spc{SCAN_STEPS}, the first {SCAN_STEPS} untimed); time-to-MSE cap: {cap}")
    print(f"threads: XLA CPU uses all {cores} usable cores; torch.set_num_threads({threads})")

    variants: dict[str, Callable[[], dict[str, Any]]] = {
        "opdiff spc1": lambda: opdiff_run(train, STEPS_SPC1[mode], 1),
        f"opdiff spc{SCAN_STEPS}": lambda: opdiff_run(train, STEPS_SCAN[mode], SCAN_STEPS),
    }
    tmpdir = tempfile.TemporaryDirectory(prefix="opdiff-bench-deeponet-")
    dde_runner = None
    if dde_python is not None:
        npz = os.path.join(tmpdir.name, "antiderivative.npz")
        np.savez(npz, u_train=train_np[0], y_train=train_np[1], s_train=train_np[2][:, None],
                 u_test=test_np[0][:N_TEST_DEEPXDE], y_test=test_np[1][:N_TEST_DEEPXDE],
                 s_test=test_np[2][:N_TEST_DEEPXDE, None])
        dde_runner = DeepXDERunner(dde_python, npz, DEEPXDE_ITERS[mode], threads)
        variants["deepxde"] = dde_runner.run
        print(f"DeepXDE: {dde_python} (from {dde_source}), {DEEPXDE_ITERS[mode]} iterations per "
              f"run, the first {DEEPXDE_SKIP} and the last untimed")
    else:
        print(f"DeepXDE: not measured ({dde_source})")
    print(flush=True)

    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    peaks: list[float] = []
    dde_error = None
    try:
        for r in range(rounds):
            names = list(variants)
            for name in names[r % len(names):] + names[: r % len(names)]:
                try:
                    samples[name].append(variants[name]())
                except RuntimeError as err:  # only the DeepXDE subprocess raises this
                    dde_error = str(err)
                    del variants[name]
                    print(f"DeepXDE failed, not measured further:\n{dde_error}", flush=True)
            peaks.append(matmul_peak_gflops(2048, jnp.float32, repeats=PEAK_REPEATS[mode]))
            print(f"round {r + 1}/{rounds} done ({time.perf_counter() - t_start:.0f} s)",
                  flush=True)
    finally:
        tmpdir.cleanup()
    has_dde = bool(samples.get("deepxde"))

    ref = samples["opdiff spc1"][0]["losses"]
    scan = samples[f"opdiff spc{SCAN_STEPS}"][0]["losses"][: ref.size]
    rel = float(np.max(np.abs(scan - ref) / np.abs(ref)))
    print(f"same math: spc1 and spc{SCAN_STEPS} loss curves agree to {rel:.1e} over "
          f"{ref.size} steps (max relative difference; 0 = bit-identical); "
          f"loss at step {ref.size}: {ref[-1]:.3g}")
    print()

    def rates(name: str) -> list[float]:
        return [run["wall"] for run in samples[name]]

    def ratio(name: str, other: str) -> float:
        """Median over rounds of the per-round ratio (robust to load that varies by round)."""
        return median([a / b for a, b in zip(rates(name), rates(other))])

    rows = []
    for name, runs in samples.items():
        if not runs:
            continue
        reported = [run["reported"] for run in runs if "reported" in run]
        gf = [rate * train_step_flops(N_TRAIN) / 1e9 for rate in rates(name)]
        rows.append([
            name,
            fmt_value(median(rates(name))),
            fmt_value(median(reported)) if reported else "-",
            " ".join(fmt_value(x) for x in rates(name)),
            fmt_value(ratio(name, "deepxde")) if has_dde else "-",
            fmt_value(median(gf)),
            f"{100 * median([g / p for g, p in zip(gf, peaks)]):.1f}%",
        ])
    print("spc = steps_per_call. it/s: wall-clock, median over rounds. fit-reported: "
          "TrainResult.steps_per_s.\nvs DeepXDE: median per-round ratio. GFLOP/s: matmul FLOPs "
          "of a full-batch step x it/s; of peak: per round, over the matmul peak.")
    print_table(["variant", "it/s", "fit-reported", "per round", "vs DeepXDE", "GFLOP/s",
                 "of peak"], rows)
    print(f"matmul peak f32 (2048x2048, per round): {' '.join(fmt_value(p) for p in peaks)} "
          "GFLOP/s")
    print(f"step FLOPs: {train_step_flops(N_TRAIN) / 1e6:.0f} MFLOP (full batch {N_TRAIN})")
    if has_dde:
        d = samples["deepxde"][-1]
        print(f"DeepXDE {d['deepxde']}, torch {d['torch']}, {d['threads']} threads, "
              f"{d['float']}, {d['n_params']} parameters; after {d['iterations']} iterations: "
              f"train loss {d['final_train_loss']:.3g}, MSE on its {N_TEST_DEEPXDE} test rows "
              f"{d['test_mse']:.3g} (own initial weights; opdiff's loss at step "
              f"{d['iterations']}: {ref[min(d['iterations'], ref.size) - 1]:.3g})")
        print("DeepXDE timed over "
              + ", ".join(f"{run['timed_iterations']} it in {run['train_s']:.1f} s total"
                          for run in samples["deepxde"]))
    print(flush=True)

    ttm = None
    if cap:
        print(f"time to test MSE <= {TARGET_MSE:g}: one run, spc{SCAN_STEPS}, evaluation every "
              f"{EVAL_EVERY} steps on {N_TEST} test triplets, cap {cap} iterations", flush=True)
        ttm = time_to_target(train, test_np, cap)
        show = {e["step"] for e in ttm["evals"]
                if e["step"] in (1000, 2000, 5000) or e["step"] % 10_000 == 0}
        show |= {ttm["evals"][-1]["step"], ttm["best"]["step"]}
        print_table(["step", "test MSE", "train loss", "seconds"],
                    [[e["step"], f"{e['test_mse']:.3g}", f"{e['loss']:.3g}",
                      fmt_value(e["elapsed"])] for e in ttm["evals"] if e["step"] in show])
        print(f"initial test MSE {ttm['initial']:.3g}; {ttm['steps']} steps at "
              f"{fmt_value(ttm['rate'])} it/s (wall, saves and evaluations included); "
              f"evaluations (restore + test MSE) {ttm['eval_s']:.1f} s in all; first call "
              f"(compile + {SCAN_STEPS} steps) {ttm['first_call_s']:.1f} s; whole run "
              f"{ttm['total_s']:.0f} s")
        if ttm["reached"]:
            e = ttm["reached"]
            print(f"reached: test MSE {e['test_mse']:.3g} after {e['step']} iterations, "
                  f"{e['elapsed']:.0f} s (compilation excluded); at the spc{SCAN_STEPS} rate "
                  f"of (1), the iterations alone would take "
                  f"{e['step'] / median(rates(f'opdiff spc{SCAN_STEPS}')):.0f} s")
        else:
            b = ttm["best"]
            print(f"NOT reached within {cap} iterations: best test MSE {b['test_mse']:.3g} at "
                  f"step {b['step']}")
        print()
    rtt = None
    recipe_cap = args.recipe_cap if args.recipe_cap is not None else (
        0 if cap == 0 else RECIPE_QUICK if args.quick else None)
    recipe_adam = args.recipe_adam_steps or (RECIPE_QUICK if args.quick else None)
    if recipe_cap != 0:
        r = recipes.recipe("adam_lbfgs")
        print(f"time to test MSE <= {TARGET_MSE:g}, opdiff's best recipe: {r}", flush=True)
        rtt = recipe_time_to_target(train, test_np, recipe_cap, recipe_adam)
        print_table(["iterations", "test MSE", "seconds"],
                    [[e["step"], f"{e['test_mse']:.3g}", fmt_value(e["elapsed"])]
                     for e in rtt["evals"]])
        print(f"Adam phase ({rtt['adam_steps']} steps, compilation included) "
              f"{rtt['adam_s']:.1f} s; evaluations {rtt['eval_s']:.1f} s (excluded); whole run "
              f"{rtt['total_s']:.0f} s")
        e = rtt["reached"] or rtt["best"]
        print(("reached" if rtt["reached"] else f"NOT reached within {rtt['lbfgs_cap']} L-BFGS "
               "iterations: best") + f" test MSE {e['test_mse']:.3g} after {e['step']} "
              f"iterations, {e['elapsed']:.0f} s (compilation included)")
        print()
    print(f"total time: {time.perf_counter() - t_start:.0f} s")
    print()

    context = "none, context"
    # the under-load mark of headline(), for the lines written by hand (a nan figure)
    mark = f" [under load: {load.describe()} on entry]" if load.loaded else ""
    spc1, scan_name = "opdiff spc1", f"opdiff spc{SCAN_STEPS}"
    print(headline("opdiff_paper_config", median(rates(spc1)), "it/s", context, load))
    print(headline(f"opdiff_paper_config_spc{SCAN_STEPS}", median(rates(scan_name)), "it/s",
                   context, load))
    def of_peak(name: str) -> float:
        """Median over rounds of the achieved matmul GFLOP/s over that round's f32 peak, in %."""
        return 100 * median([r * train_step_flops(N_TRAIN) / 1e9 / p
                             for r, p in zip(rates(name), peaks)])

    print(headline(f"opdiff_spc{SCAN_STEPS}_fraction_of_matmul_peak", of_peak(scan_name), "%",
                   ">= 60", load))
    print(headline("opdiff_spc1_fraction_of_matmul_peak", of_peak(spc1), "%", "context", load))
    if has_dde:
        print(headline("deepxde_paper_config", median(rates("deepxde")), "it/s", context, load))
        print(headline("deepxde_fraction_of_matmul_peak", of_peak("deepxde"), "%", "context",
                       load))
        print(headline("opdiff_vs_deepxde", ratio(spc1, "deepxde"), "x", ">= 5", load))
        print(headline(f"opdiff_spc{SCAN_STEPS}_vs_deepxde", ratio(scan_name, "deepxde"), "x",
                       ">= 5", load))
    else:
        why = dde_error.strip().splitlines()[-1] if dde_error else dde_source
        print(f"deepxde: not measured ({why}); enable with --deepxde-python PATH or "
              f"{ENV_DEEPXDE}=PATH, an interpreter with deepxde + torch, e.g. "
              "python3 -m venv .venv-deepxde && .venv-deepxde/bin/pip install deepxde "
              "torch==2.13.0")
        print(f"opdiff_vs_deepxde: nan x (goal: >= 5; DeepXDE not measured){mark}")
    if ttm is not None:
        name = f"time_to_test_mse_{TARGET_MSE:g}"
        if ttm["reached"]:
            e = ttm["reached"]
            print(headline(name, e["elapsed"], "s", context, load))
            print(headline(f"iterations_to_test_mse_{TARGET_MSE:g}", e["step"], "iterations",
                           context, load))
        else:
            b = ttm["best"]
            print(f"{name}: nan s (goal: none, context; not reached within {cap} iterations, "
                  f"best test MSE {b['test_mse']:.3g} at step {b['step']}){mark}")
        print(f"best_test_mse: {ttm['best']['test_mse']:.3g} mse (goal: none, context; "
              f"paper: 9.27e-7 after 50000){mark}")
    if rtt is not None:
        name = f"recipe_time_to_test_mse_{TARGET_MSE:g}"
        e = rtt["reached"]
        if e:
            print(headline(name, e["elapsed"], "s", "<= 60", load))
            print(headline(f"recipe_iterations_to_test_mse_{TARGET_MSE:g}", e["step"],
                           "iterations", "context", load))
        else:
            b = rtt["best"]
            print(f"{name}: nan s (goal: <= 60; not reached within {rtt['lbfgs_cap']} L-BFGS "
                  f"iterations, best test MSE {b['test_mse']:.3g} at {b['step']}){mark}")
    print(headline("matmul_peak_f32", median(peaks), "GFLOP/s", "context", load))
    print_footer(load)


if __name__ == "__main__":
    main()
