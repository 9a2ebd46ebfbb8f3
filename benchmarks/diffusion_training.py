r"""Training and sampling throughput of the U-Net denoiser (issue 7).

Run from the repository root::

    .venv/bin/python -m benchmarks.diffusion_training                  # full
    .venv/bin/python -m benchmarks.diffusion_training --quick          # fewer variants, 1 round
    .venv/bin/python -m benchmarks.diffusion_training --dtype bf16     # bf16 compute (GPU)
    .venv/bin/python -m benchmarks.diffusion_training --mode smoke     # digits c16 only, seconds
    .venv/bin/python -m benchmarks.diffusion_training --mode gpu       # more steps (a GPU)

(``--mode`` picks one of ``MODES``: ``full`` (the default), ``quick`` (same as ``--quick``),
``smoke`` (one workload, a few steps: checks that the script runs) and ``gpu`` (every workload
with a few hundred steps per run, where a step takes milliseconds).)

Run times on the 2-core VM (2026-11-22, jax 0.10.2), machine nearly idle (load average
0.1-1.7, f32 matmul peak 141-195 GFLOP/s): full 203 s wall / 302 s CPU, ``--quick`` 67 s wall /
96 s CPU (CPU = all threads of this process). While other jobs loaded it (load average 4-9)
the same took 4.5-15 min and 1-4 min. About half of it is XLA compilation (a training step
compiles in 6-14 s, a sampler in 3-7 s).

The model is what the learned-diffusion experiments train:
``Preconditioned(UNet(shape, channels, emb_dim, residual=False), process)`` built by
``opdiff.diffusion.models.make_unet_denoiser`` for the VP process with the identity basis
(``make_process("white", shape)``), trained by DSM with the :math:`x_0`-prediction weighting
through :func:`opdiff.diffusion.training.train_denoiser` (that is :func:`opdiff.fit` with
``denoiser_loss``; Adam with clipping and warm-up/cosine schedule, EMA 0.999), batch 128.

Workloads:

* ``digits c16``: 8 x 8 scikit-learn digits, ``channels=(16, 32)``, ``emb_dim=32``;
* ``digits c32``: 8 x 8 digits, ``channels=(32, 64)``, ``emb_dim=32`` (full mode only);
* ``28x28 c32``: 28 x 28, ``channels=(32, 64, 128)``, ``emb_dim=64``, on Fashion-MNIST when the
  Debian package ``dataset-fashion-mnist`` is installed and on 8,192 uniform random images
  otherwise (the speed does not depend on the pixel values; the script says which).

What is measured (float32 unless ``--dtype bf16``):

1. **Training images/s**, warm: ``128 x`` steps/s of ``train_denoiser`` with
   ``steps_per_call=1``, wall-clock from the end of the first (compiling) call to the end of
   the last (a ``callback`` timestamps each call, as in ``benchmarks/engine.py``); the first
   call's time (compile + one step) is reported separately. **Achieved GFLOP/s**: the FLOPs of
   one training step from XLA's cost analysis of the compiled step
   (``jax.jit(step).lower(...).compile().cost_analysis()["flops"]``; the step is the
   hand-written one of item 4, the same computation as the engine's) times steps/s, and its
   percentage of the matmul peak measured in the same round (``matmul_peak_gflops``, a jitted
   2048 x 2048 ``a @ b`` in the compute dtype). Where the hand-written step is not compiled
   (``--quick`` at 28 x 28) the FLOPs come from the cost analysis of the lowered HLO, which
   the full run shows to be within 2 % of the compiled count.
2. **The ``lax.scan`` finding** (full mode): the digits ``c16`` training with
   ``steps_per_call=10``, i.e. ten steps per call inside ``lax.scan``, where XLA:CPU runs the
   convolutions' backward pass far slower (measured 9x on the idle VM, 12-20x under load).
   Reported as the ratio of images/s spc1/spc10 (> 1: the scan is slower). The library's
   docstring tells users to keep ``steps_per_call=1`` for conv nets on a CPU.
3. **Sampling images/s at 20 NFE**: ``samplers.sample`` with ``"ancestral"`` (20 steps) and
   ``"pf_heun"`` (10 steps; :func:`~opdiff.diffusion.samplers.nfe` counts 20; ancestral only
   with ``--quick``) on the log-SNR grid, with the trained weights of the last
   engine run, a batch of 256 (8 x 8) or 64 (28 x 28), median of warm calls (the first,
   compiling call is reported apart). GFLOP/s = NFE x FLOPs of one denoiser call (cost
   analysis of its lowered HLO) x samples/s.
4. **Peer: the same step written by hand** (digits ``c16``; every workload in full mode).
   One ``jax.jit`` of ``value_and_grad`` of the same ``denoiser_loss`` + the same optax update
   + the EMA, on the ``nnx.split`` parameters, with the engine's key schedule and batch draw,
   called from a Python loop that blocks only at the end. Its loss curve matches the
   engine's bit for bit (printed); the ratio engine/hand of images/s should be >= 0.9 (the
   engine adds no overhead). PyTorch is not installed, so there is no cross-framework peer.

``--dtype bf16`` sets the compute dtype of every ``Conv``/``Linear``/``GroupNorm`` of the U-Net
to bfloat16 (flax's own mixed precision: parameters, optimizer state, the time embedding's
sines and the preconditioning stay float32; inputs and weights are cast to bfloat16 inside each
layer, so the convolutions run in bfloat16). It is meant for a GPU; on a CPU it runs, with a
note. The matmul peak is then measured in bfloat16 too, and the f32 peak printed for context.

Method: every variant runs once per round (2 rounds; 1 with ``--quick``), the variants of one
workload back to back in an order rotated every round; rates are medians over rounds and
ratios medians of per-round ratios. Every ``train_denoiser`` call builds a new ``jax.jit``;
a private persistent compilation cache (a temporary directory, unless the user configured
one) lets later rounds load the first round's executables, so the compile times printed are
the first round's and compilation is never timed as throughput. All runs start from the same
weights and key (initial weights drawn with the ``"rbg"`` PRNG, which compiles faster in
nnx's eager initialisation; training keeps the default key). On a shared machine
single figures scatter by +-40 % (engine/hand ratios of 0.68-1.42 were seen in single rounds
under load); read the per-round columns and the wall/CPU times printed at the end.

The output ends with one line per headline figure, ``name: value unit (goal: ...)``. Goals:
digits training >= 2,000 images/s on a 2-core CPU (1,000 steps of batch 128 in about a
minute, the budget of the experiments' quick presets); 28 x 28 training at >= 10 % of the
matmul peak; sampling at 20 NFE >= 3/20 of the training images/s (a denoiser call costs a
third of a training step's FLOPs per image: 2.5 vs 7.5 MFLOP for digits, by XLA's count, so
this asks the sampler's FLOP rate to match training's); engine/hand >= 0.9. Benchmarks are not
tests: nothing here fails on a timing.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

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
    time_call,
)
from experiments._learned_common import load_image_set
from opdiff import images
from opdiff.diffusion import samplers
from opdiff.diffusion.models import make_process, make_unet_denoiser
from opdiff.diffusion.training import default_optimizer, denoiser_loss, train_denoiser
from opdiff.nets import nnx

BATCH = 128
LEARNING_RATE = 1e-3
N_RANDOM_28 = 8192  # random 28 x 28 images when Fashion-MNIST is absent
NFE = 20
SAMPLERS = (("ancestral", 20), ("pf_heun", 10))  # (method, steps): 20 NFE each
SCAN_SPC = 10
DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Workload:
    """One training configuration of the benchmark."""

    name: str
    data: str  # "digits" or "28x28"
    channels: tuple[int, ...]
    emb_dim: int
    sample_batch: int


WORKLOADS = (
    Workload("digits c16", "digits", (16, 32), 32, 256),
    Workload("digits c32", "digits", (32, 64), 32, 256),
    Workload("28x28 c32", "28x28", (32, 64, 128), 64, 64),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Steps and repeats of one mode (``full``, ``quick``, ``smoke`` or ``gpu``)."""

    rounds: int
    steps: dict[str, int]  # per workload run by the engine: steps of one run
    hand: tuple[str, ...]  # workloads that also run the hand-written step (compiles it)
    scan: tuple[str, ...]  # workloads that also run with steps_per_call=SCAN_SPC
    scan_steps: int  # a multiple of SCAN_SPC (the first call compiles and is not timed)
    sample_repeats: dict[str, int]  # per sampled workload
    samplers: dict[str, tuple[str, ...]]  # per sampled workload
    peak_repeats: int


MODES = {
    "full": Settings(rounds=2, steps={"digits c16": 80, "digits c32": 40, "28x28 c32": 5},
                     hand=("digits c16", "digits c32", "28x28 c32"),
                     scan=("digits c16",), scan_steps=2 * SCAN_SPC,
                     sample_repeats={"digits c16": 5, "28x28 c32": 2},
                     samplers={"digits c16": ("ancestral", "pf_heun"),
                               "28x28 c32": ("ancestral", "pf_heun")},
                     peak_repeats=7),
    "quick": Settings(rounds=1, steps={"digits c16": 40, "28x28 c32": 3},
                      hand=("digits c16",), scan=(), scan_steps=0,
                      sample_repeats={"digits c16": 3, "28x28 c32": 1},
                      samplers={"digits c16": ("ancestral",), "28x28 c32": ("ancestral",)},
                      peak_repeats=5),
    "smoke": Settings(rounds=1, steps={"digits c16": 6}, hand=("digits c16",), scan=(),
                      scan_steps=0, sample_repeats={"digits c16": 1},
                      samplers={"digits c16": ("ancestral",)}, peak_repeats=3),
    "gpu": Settings(rounds=2, steps={"digits c16": 300, "digits c32": 300, "28x28 c32": 200},
                    hand=("digits c16", "digits c32", "28x28 c32"),
                    scan=("digits c16",), scan_steps=10 * SCAN_SPC,
                    sample_repeats={"digits c16": 5, "28x28 c32": 5},
                    samplers={"digits c16": ("ancestral", "pf_heun"),
                              "28x28 c32": ("ancestral", "pf_heun")},
                    peak_repeats=7),
}


# --- small pure helpers ---------------------------------------------------------------------


def flops_from_cost_analysis(cost: Any) -> float:
    """The ``"flops"`` entry of a compiled computation's ``cost_analysis()``.

    jax versions return a dict, a list with one dict per device/program, or ``None``; this
    returns the first dict's ``flops`` as a float, or NaN when there is none.
    """
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not isinstance(cost, dict) or "flops" not in cost:
        return float("nan")
    return float(cost["flops"])


def rate_from_stamps(stamps: Sequence[tuple[int, float]]) -> float:
    """Steps/s from ``(steps completed, wall time)`` stamps taken at the end of every call.

    The rate runs from the end of the first call (which compiled) to the end of the last:
    :math:`(s_{\\rm last}-s_{\\rm first})/(t_{\\rm last}-t_{\\rm first})`; NaN with fewer than
    two stamps.
    """
    if len(stamps) < 2:
        return float("nan")
    (s0, t0), (s1, t1) = stamps[0], stamps[-1]
    return (s1 - s0) / (t1 - t0) if t1 > t0 else float("nan")


def set_compute_dtype(module, dtype) -> int:
    """Set the computation ``dtype`` of every ``Conv``, ``Linear`` and ``GroupNorm`` inside
    ``module`` (their parameters keep ``param_dtype``); returns how many layers were set."""
    n = 0
    for _, node in nnx.iter_graph(module):
        if isinstance(node, (nnx.Conv, nnx.Linear, nnx.GroupNorm)):
            node.dtype = dtype
            n += 1
    return n


# --- workload set-up ------------------------------------------------------------------------


def train_images(data: str) -> tuple[np.ndarray, str]:
    """``(x_train [N, H, W] float32 in [-1, 1], description)`` for ``"digits"`` or
    ``"28x28"`` (Fashion-MNIST if installed, else uniform random images)."""
    if data == "digits":
        x = load_image_set("digits").x_train
        return x, f"scikit-learn digits, {len(x)} training images"
    if images.fashion_mnist_available():
        x = load_image_set("fashion").x_train
        return x, f"Fashion-MNIST, {len(x)} training images"
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (N_RANDOM_28, 28, 28)).astype(np.float32)
    return x, (f"{N_RANDOM_28} uniform random 28x28 images (dataset-fashion-mnist is not "
               "installed; speed does not depend on the content)")


def build_model(w: Workload, process, x: np.ndarray, dtype):
    """A fresh preconditioned U-Net with fixed initial weights, compute dtype ``dtype``.

    The weights are drawn with the ``"rbg"`` PRNG: nnx initialises eagerly, compiling one
    program per parameter shape, and those compile about 2.5x faster than threefry's (~4 s
    instead of ~10 s of CPU per U-Net here). Only the initial values change, not the speed of
    training or sampling (training itself keeps the default threefry key).
    """
    model = make_unet_denoiser(process, x, channels=w.channels, emb_dim=w.emb_dim,
                               key=jax.random.key(1, impl="rbg"))
    if dtype != jnp.float32:
        set_compute_dtype(model.net, dtype)
    return model


# --- the two training contenders ------------------------------------------------------------


def engine_run(make: Callable[[], Any], process, x, steps: int, spc: int, key) -> dict:
    """``train_denoiser`` for ``steps`` steps, ``spc`` per call; rates and the first call."""
    stamps: list[tuple[int, float]] = []
    model = make()
    t_start = time.perf_counter()
    result = train_denoiser(model, process, x, steps=steps, key=key, batch_size=BATCH,
                            lr=LEARNING_RATE, steps_per_call=spc, progress=False,
                            callback=lambda s, _loss: stamps.append((s, time.perf_counter())))
    return {"rate": rate_from_stamps(stamps), "first_call": stamps[0][1] - t_start,
            "losses": result.losses, "model": result.params}


class HandWritten:
    """The engine's training step written by hand: one ``jax.jit`` of ``value_and_grad`` of
    ``denoiser_loss`` + the optax update + the EMA, with the engine's key schedule
    (``split(fold_in(key, i))``) and batch draw (``randint`` rows with replacement).

    The step is lowered at construction (:attr:`flops_lowered`: XLA's cost analysis of the
    HLO before optimisation, cheap) and compiled on the first :meth:`run` or :meth:`compile`
    (timed: :attr:`compile_s`; :attr:`flops_compiled`: the cost analysis of the compiled step).
    """

    def __init__(self, model, process, x, steps: int, key):
        graphdef, self.params0, rest = nnx.split(model, nnx.Param, ...)
        self.optimizer = default_optimizer(LEARNING_RATE, steps)
        loss_fn = denoiser_loss(process)
        self.x, self.key = jnp.asarray(x), key
        n = self.x.shape[0]
        ema_decay = 0.999

        def loss_of(params, xb, k):
            return loss_fn(nnx.merge(graphdef, params, rest), xb, k)

        def step(params, opt_state, ema, x, key, i):
            data_key, loss_key = jax.random.split(jax.random.fold_in(key, i))
            xb = x[jax.random.randint(data_key, (BATCH,), 0, n)]
            loss, grads = jax.value_and_grad(loss_of)(params, xb, loss_key)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            ema = jax.tree.map(lambda e, q: ema_decay * e + (1.0 - ema_decay) * q, ema, params)
            return params, opt_state, ema, loss

        self.lowered = jax.jit(step).lower(self.params0, self.optimizer.init(self.params0),
                                           self.params0, self.x, key, jnp.int32(0))
        self.flops_lowered = flops_from_cost_analysis(self.lowered.cost_analysis())
        self.step, self.compile_s, self.flops_compiled = None, float("nan"), float("nan")

    def compile(self) -> None:
        """Compile the lowered step (once), timing it and reading its cost analysis."""
        if self.step is None:
            t0 = time.perf_counter()
            self.step = self.lowered.compile()
            self.compile_s = time.perf_counter() - t0
            self.flops_compiled = flops_from_cost_analysis(self.step.cost_analysis())

    @property
    def flops(self) -> float:
        """FLOPs per step: the compiled step's cost analysis when compiled, else the HLO's."""
        return self.flops_compiled if np.isfinite(self.flops_compiled) else self.flops_lowered

    def run(self, steps: int) -> dict:
        """One warm-up step, then ``steps - 1`` timed steps (the engine also times
        ``steps - 1``); the loss of every step."""
        self.compile()
        params, opt_state, ema = self.params0, self.optimizer.init(self.params0), self.params0
        params, opt_state, ema, loss = self.step(params, opt_state, ema, self.x, self.key,
                                                 jnp.int32(0))
        losses = [loss]
        jax.block_until_ready(params)
        t0 = time.perf_counter()
        for i in range(1, steps):
            params, opt_state, ema, loss = self.step(params, opt_state, ema, self.x, self.key,
                                                     jnp.int32(i))
            losses.append(loss)
        jax.block_until_ready((params, losses))
        dt = time.perf_counter() - t0
        return {"rate": (steps - 1) / dt, "losses": np.asarray(jnp.stack(losses), np.float64)}


# --- sampling -------------------------------------------------------------------------------


def forward_flops(model, x) -> float:
    """FLOPs of one denoiser evaluation on the batch ``x`` (XLA cost analysis of the lowered
    HLO of ``model.batched(x, t)``, parameters as arguments)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def fwd(p, x, t):
        return nnx.merge(graphdef, p, rest).batched(x, t)

    lowered = jax.jit(fwd).lower(params, x, jnp.float32(0.5))
    return flops_from_cost_analysis(lowered.cost_analysis())


def sampling_rates(model, process, batch: int, methods: Sequence[str],
                   repeats: int) -> dict[str, dict]:
    """Images/s of each 20-NFE sampler in ``methods`` (warm median), its first call's seconds
    and whether the samples are finite."""
    steps_of = dict(SAMPLERS)
    out = {}
    den = model.batched
    x_T = process.sample_prior(jax.random.key(3), batch)
    for method in methods:
        n_steps = steps_of[method]
        ts = samplers.log_snr_grid(process, n_steps)

        def run(method=method, ts=ts):
            return jax.block_until_ready(samplers.sample(method, den, process, x_T, ts,
                                                         key=jax.random.key(4)))

        t0 = time.perf_counter()
        x0 = run()
        first = time.perf_counter() - t0
        warm = median(time_call(run, repeats))
        out[method] = {"nfe": samplers.nfe(method, n_steps), "steps": n_steps,
                       "rate": batch / warm, "first_call": first,
                       "finite": bool(np.all(np.isfinite(np.asarray(x0, np.float32))))}
    return out


# --- driver ---------------------------------------------------------------------------------


def memory_line(when: str) -> str:
    """``memory: peak RSS ... MiB[, device peak ... MiB] (when)`` for this process so far."""
    dev = device_peak_memory_mib()
    return (f"memory: peak RSS {peak_rss_mib():.0f} MiB"
            + ("" if dev is None else f", device peak {dev:.0f} MiB") + f" ({when})")


def use_private_compilation_cache() -> str | None:
    """Switch on jax's persistent compilation cache in a temporary directory (removed at exit)
    unless one is configured; returns the directory, or ``None`` if the user's cache is used.

    Every ``train_denoiser`` call builds a new ``jax.jit``, so without a persistent cache each
    round would recompile the same step; with it, rounds after the first load the executable
    (identical HLO) and the compile times are those of the first round. Must run before the
    first compilation.
    """
    if jax.config.jax_compilation_cache_dir:
        return None
    path = tempfile.mkdtemp(prefix="opdiff_bench_jax_cache_")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    jax.config.update("jax_compilation_cache_dir", path)
    return path



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, rounds, variants")
    parser.add_argument("--mode", choices=tuple(MODES), default=None,
                        help="settings (default full; --quick is --mode quick)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="f32",
                        help="compute dtype of the U-Net layers (bf16 is meant for a GPU)")
    args = parser.parse_args(argv)
    if args.quick and args.mode not in (None, "quick"):
        parser.error(f"--quick contradicts --mode {args.mode}")
    private_cache = use_private_compilation_cache()
    mode = args.mode or ("quick" if args.quick else "full")
    cfg, dtype = MODES[mode], DTYPES[args.dtype]
    suffix = "" if args.dtype == "f32" else f"_{args.dtype}"
    on_cpu = jax.devices()[0].platform == "cpu"

    load = print_header("U-Net diffusion training and sampling throughput"
                        + ("" if mode == "full" else f" (--mode {mode})"))
    if private_cache:
        print("persistent compilation cache: a private temporary directory (later rounds reuse "
              "the first round's executables; compile times are the first round's)")
    else:
        print(f"persistent compilation cache: {jax.config.jax_compilation_cache_dir} (the "
              "user's: compile times may be cache loads)")
    if args.dtype == "bf16" and on_cpu:
        print("note: --dtype bf16 is meant for a GPU; XLA:CPU has no fast bfloat16 "
              "convolutions, so expect these CPU figures to be slower than float32.\n")
    print(f"model: Preconditioned(UNet(residual=False)) on VP (identity basis), DSM "
          f"x0-weighting, adam {LEARNING_RATE} + clip + warm-up/cosine, EMA 0.999, batch "
          f"{BATCH}; compute dtype {args.dtype} (parameters float32)")
    t_start, cpu_start = time.perf_counter(), time.process_time()

    def elapsed() -> str:
        return (f"wall {time.perf_counter() - t_start:.0f} s, "
                f"CPU {time.process_time() - cpu_start:.0f} s")

    work = [w for w in WORKLOADS if w.name in cfg.steps]
    data = {d: train_images(d) for d in sorted({w.data for w in work})}
    for d, (_, what) in data.items():
        print(f"data {d}: {what}")
    procs = {w.name: make_process("white", data[w.data][0].shape[1:]) for w in work}
    key = jax.random.key(2)
    hands = {w.name: HandWritten(build_model(w, procs[w.name], data[w.data][0], dtype),
                                 procs[w.name], data[w.data][0], cfg.steps[w.name], key)
             for w in work}
    print(f"set-up done ({elapsed()})", flush=True)

    def engine(w: Workload, spc: int, steps: int) -> dict:
        x = data[w.data][0]
        return engine_run(lambda: build_model(w, procs[w.name], x, dtype), procs[w.name], x,
                          steps, spc, key)

    samples: dict[tuple[str, str], list[dict]] = {}
    peaks: list[float] = []
    models: dict[str, Any] = {}
    for r in range(cfg.rounds):
        peaks.append(matmul_peak_gflops(2048, dtype, repeats=cfg.peak_repeats))
        for w in work:
            steps = cfg.steps[w.name]
            variants = {"engine spc1": lambda w=w, steps=steps: engine(w, 1, steps)}
            if w.name in cfg.hand:
                variants["hand-written"] = lambda w=w, steps=steps: hands[w.name].run(steps)
            if w.name in cfg.scan:
                variants[f"engine spc{SCAN_SPC}"] = lambda w=w: engine(w, SCAN_SPC,
                                                                      cfg.scan_steps)
            names = list(variants)
            for name in names[r % len(names):] + names[: r % len(names)]:
                out = variants[name]()
                if name == "engine spc1":
                    models[w.name] = out.pop("model")
                samples.setdefault((w.name, name), []).append(out)
        print(f"round {r + 1}/{cfg.rounds} done ({elapsed()})", flush=True)

    sampling, fwd = {}, {}
    for w in work:
        if w.name in cfg.samplers:
            sampling[w.name] = sampling_rates(models[w.name], procs[w.name], w.sample_batch,
                                              cfg.samplers[w.name], cfg.sample_repeats[w.name])
            fwd[w.name] = forward_flops(models[w.name], jnp.zeros((w.sample_batch,
                                                                   *procs[w.name].shape)))
    peaks.append(matmul_peak_gflops(2048, dtype, repeats=cfg.peak_repeats))
    peak_f32 = median(peaks) if dtype == jnp.float32 else matmul_peak_gflops(2048, jnp.float32)
    print(f"sampling done ({elapsed()})")
    total = elapsed()
    print()

    def rates(wname: str, variant: str) -> list[float]:
        return [s["rate"] for s in samples[(wname, variant)]]

    def ratio(wname: str, a: str, b: str) -> float:
        return median([x / y for x, y in zip(rates(wname, a), rates(wname, b))])

    def gflops(wname: str) -> float:
        return median(rates(wname, "engine spc1")) * hands[wname].flops / 1e9

    def of_peak(wname: str) -> float:
        return median([rate * hands[wname].flops / 1e9 / p
                       for rate, p in zip(rates(wname, "engine spc1"), peaks)])

    agree = {}
    for w in work:
        if (w.name, "hand-written") in samples:
            e = samples[(w.name, "engine spc1")][0]["losses"]
            h = samples[(w.name, "hand-written")][0]["losses"]
            agree[w.name] = float(np.max(np.abs(e - h) / np.abs(h)))
    print("same math: max relative difference of the engine's and the hand-written loss "
          "curves (same weights, keys, batches; 0 = bit-identical): "
          + ", ".join(f"{k} {v:.1e}" for k, v in agree.items()) + "\n")

    rows = []
    for w in work:
        has_hand = (w.name, "hand-written") in samples
        for variant in [v for (wn, v) in samples if wn == w.name]:
            rs = rates(w.name, variant)
            first = samples[(w.name, variant)][0].get("first_call")  # round 1: compiled
            rows.append([
                f"{w.name} {variant}",
                fmt_value(BATCH * median(rs)),
                " ".join(fmt_value(BATCH * x) for x in rs),
                fmt_value(median(rs)),
                fmt_value(hands[w.name].compile_s if first is None else first),
                fmt_value(ratio(w.name, variant, "hand-written")) if has_hand else "-",
                fmt_value(median(rs) * hands[w.name].flops / 1e9),
                f"{100 * of_peak(w.name):.1f}%" if variant == "engine spc1" else "",
            ])
    print(f"training, batch {BATCH}. images/s: wall-clock, warm, median over rounds (per round "
          f"beside). first/compile s: round 1's first engine call (compile + 1 call's "
          f"steps); for the hand-written step, its compile time.\nvs hand: median per-round "
          f"ratio to the hand-written loop. GFLOP/s: XLA cost-analysis FLOPs/step x steps/s; "
          f"of peak: per round, vs the {args.dtype} matmul peak.")
    print_table(["variant", "images/s", "per round", "steps/s", "first/compile s", "vs hand",
                 "GFLOP/s", "of peak"], rows)
    print(memory_line("after training"))
    for w in work:
        h = hands[w.name]
        src = ("compiled step" if np.isfinite(h.flops_compiled)
               else "lowered HLO (step not compiled in this mode)")
        print(f"{w.name}: {h.flops / 1e9:.4g} GFLOP per training step ({h.flops / BATCH / 1e6:.3g}"
              f" MFLOP per image), from the {src}; lowered HLO: {h.flops_lowered / 1e9:.4g}")
    print(f"matmul peak {args.dtype} (2048x2048, per round + at the end): "
          f"{' '.join(fmt_value(p) for p in peaks)} GFLOP/s")
    print()

    rows = []
    for wname, by_method in sampling.items():
        w = next(w for w in work if w.name == wname)
        for method, s in by_method.items():
            rows.append([f"{wname} {method}", s["steps"], s["nfe"], w.sample_batch,
                         fmt_value(s["rate"]),
                         fmt_value(s["rate"] * s["nfe"] * fwd[wname] / w.sample_batch / 1e9),
                         fmt_value(s["first_call"]), "yes" if s["finite"] else "NO"])
    print("sampling (log-SNR grid, weights of the last engine run), warm median; GFLOP/s from "
          "the lowered HLO's FLOPs of one denoiser call x NFE; the first call compiles")
    print_table(["model sampler", "steps", "NFE", "batch", "images/s", "GFLOP/s",
                 "first call s", "finite"], rows)
    print(memory_line("after sampling"))
    print(f"total time: {total} (CPU time over wall time > 1: XLA used both cores; much less "
          "than 1: the machine was shared)")
    print()

    def train_rate(wname: str) -> float:
        return BATCH * median(rates(wname, "engine spc1"))

    def first_call(wname: str) -> float:
        return samples[(wname, "engine spc1")][0]["first_call"]  # round 1: a real compile

    names = {w.name for w in work}
    lines = [headline(f"unet_train_digits{suffix}", train_rate("digits c16"), "images/s",
                      ">= 2000 on a 2-core CPU (channels (16, 32), batch 128)", load)]
    if "digits c32" in names:
        lines.append(headline(f"unet_train_digits_c32{suffix}", train_rate("digits c32"),
                              "images/s", "none, context (channels (32, 64))", load))
    if "28x28 c32" in names:
        lines.append(headline(f"unet_train_28x28{suffix}", train_rate("28x28 c32"), "images/s",
                              "none, context (its goal is achieved_gflops_28x28)", load))
    lines.append(headline(f"achieved_gflops_digits{suffix}", gflops("digits c16"), "GFLOP/s",
                          f"none, context ({100 * of_peak('digits c16'):.1f}% of the matmul "
                          "peak)", load))
    if "28x28 c32" in names:
        lines.append(headline(f"achieved_gflops_28x28{suffix}", gflops("28x28 c32"), "GFLOP/s",
                              f">= 10% of the matmul peak, i.e. >= "
                              f"{fmt_value(0.1 * median(peaks))}; measured "
                              f"{100 * of_peak('28x28 c32'):.1f}%", load))
    for wname, tag in (("digits c16", "digits"), ("28x28 c32", "28x28")):
        if wname in names:
            lines.append(headline(f"compile_train_{tag}{suffix}", first_call(wname), "s",
                                  "none, context (engine's first call: compile + 1 step)", load))
    for wname, tag in (("digits c16", "digits"), ("28x28 c32", "28x28")):
        for method, s in sampling.get(wname, {}).items():
            lines.append(headline(
                f"sampling_{NFE}nfe_{tag}_{method}{suffix}", s["rate"], "images/s",
                f">= 3/20 of training images/s = {fmt_value(0.15 * train_rate(wname))}", load))
    if ("digits c16", "hand-written") in samples:
        lines.append(headline(f"engine_vs_hand_ratio{suffix}",
                              ratio("digits c16", "engine spc1", "hand-written"), "ratio",
                              ">= 0.9 (digits c16)", load))
    platform = jax.devices()[0].platform
    for wname in cfg.scan:
        lines.append(headline(f"scan_slowdown_{platform}_{wname.replace(' ', '_')}{suffix}",
                              ratio(wname, "engine spc1", f"engine spc{SCAN_SPC}"), "x",
                              f"none, reported (images/s at spc1 / spc{SCAN_SPC})", load))
    if dtype != jnp.float32:
        lines.append(headline(f"matmul_peak_{args.dtype}", median(peaks), "GFLOP/s",
                              "context", load))
    lines.append(headline("matmul_peak_f32", peak_f32, "GFLOP/s", "context", load))
    print("\n".join(lines))
    print_footer(load)


if __name__ == "__main__":
    main()
