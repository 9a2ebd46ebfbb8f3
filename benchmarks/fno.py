"""Training speed of opdiff's FNO (steps/s, achieved GFLOP/s), against neuraloperator's FNO.

Run from the repository root::

    .venv/bin/python -m benchmarks.fno            # full: 5 interleaved rounds
    .venv/bin/python -m benchmarks.fno --quick    # 2 rounds of fewer steps (a smoke run)
    .venv/bin/python -m benchmarks.fno --neuralop-python .venv-neuralop/bin/python

Workload: 1-D heat semigroup data (``PeriodicPowerLawField(n=128, alpha=2.5)`` inputs,
``heat.periodic`` outputs, 1,024 training functions), ``FNO(1, 1, modes=16, width=32,
depth=4, projection_width=128, positional=True)``, MSE, ``optax.adam(1e-3)``, float32,
minibatches of 64 functions, ``opdiff.fit`` with ``steps_per_call=50``; the rate is
``TrainResult.steps_per_s`` (compilation excluded).

GFLOP/s counts per example and forward pass: the lifting ``2 n c_0 w``; per layer the real FFT
and its inverse ``2 x 2.5 n log2(n) w``, the retained-mode product ``8 m w^2`` (complex
multiply-adds), the pointwise skip ``2 n w^2``; the projection ``2 n w P + 2 n P``; a training
step is counted as 3 forward passes. This is an estimate for comparison with the f32 matmul
peak (``matmul_peak_gflops``), printed every round.

**neuraloperator** (PyTorch, optional, never a dependency of opdiff) runs in a subprocess with
another interpreter (``--neuralop-python PATH``, default ``.venv-neuralop/bin/python`` when it
exists): ``neuralop.models.FNO(n_modes=(2(m-1),), hidden_channels=w, n_layers=L,
projection_channel_ratio=P/w, lifting_channel_ratio=1, use_channel_mlp=False)`` (its rFFT
keeps ``n_modes//2 + 1 = m`` wavenumbers, as opdiff does; no per-layer channel MLP, as opdiff
has none; its lifting is still a two-layer MLP, w -> w), its grid embedding (opdiff's
``positional``), on the same arrays, ``torch.optim.Adam``, the same batch; steps/s from the
wall time of the steps after 10 warm-up steps. Parameter counts of both are printed in real
numbers (a complex weight counts twice). The ratio opdiff / neuraloperator is the median of
per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks._common import (headline, matmul_peak_gflops, median, print_footer,
                                print_header, print_table)
from opdiff import fit, functions
from opdiff.nets.deeponet import n_params
from opdiff.nets.fno import FNO
from opdiff.operators import heat

N, MODES, WIDTH, DEPTH, PROJ, BATCH, N_TRAIN = 128, 16, 32, 4, 128, 64, 1024

_TORCH = r"""
import json, sys, time
import numpy as np, torch
from neuralop.models import FNO
a = np.load(sys.argv[1]); cfg = json.loads(sys.argv[2])
torch.manual_seed(0); torch.set_num_threads(cfg["threads"])
u = torch.tensor(a["u"])[:, None]; v = torch.tensor(a["v"])[:, None]
m = FNO(n_modes=(2 * (cfg["modes"] - 1),), hidden_channels=cfg["width"], in_channels=1,
        out_channels=1, n_layers=cfg["depth"], projection_channel_ratio=cfg["proj"] / cfg["width"],
        lifting_channel_ratio=1, use_channel_mlp=False)
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(1)
def step():
    idx = torch.randint(0, u.shape[0], (cfg["batch"],), generator=g)
    opt.zero_grad(); loss = torch.mean((m(u[idx]) - v[idx]) ** 2); loss.backward(); opt.step()
for _ in range(10):
    step()
t0 = time.perf_counter()
for _ in range(cfg["steps"]):
    step()
dt = time.perf_counter() - t0
params = sum(p.numel() * (2 if p.is_complex() else 1) for p in m.parameters())
print(json.dumps({"steps_per_s": cfg["steps"] / dt, "params": params}))
"""


def flops_per_step() -> float:
    c0, n, w, m, p = 2, N, WIDTH, MODES, PROJ
    fwd = 2 * n * c0 * w + DEPTH * (2 * 2.5 * n * math.log2(n) * w + 8 * m * w * w
                                    + 2 * n * w * w) + 2 * n * w * p + 2 * n * p
    return 3.0 * BATCH * fwd


def data():
    field = functions.PeriodicPowerLawField(n=N, alpha=2.5)
    u = field.sample(N_TRAIN, key=jax.random.key(0))
    return u, heat.periodic(u, 0.002, 0.5)


def opdiff_rate(u, v, steps: int) -> tuple[float, int]:
    model = FNO(1, 1, MODES, width=WIDTH, depth=DEPTH, projection_width=PROJ, positional=True,
                key=jax.random.key(1))

    def loss(m, batch, _key):
        return jnp.mean((m.batched(batch["u"][..., None])[..., 0] - batch["v"]) ** 2)

    res = fit(loss, model, optax.adam(1e-3), {"u": u, "v": v}, steps=steps, batch_size=BATCH,
              steps_per_call=50, key=jax.random.key(2))
    return float(res.steps_per_s), n_params(model)


def neuralop_rate(python: str, path: str, steps: int) -> dict:
    cfg = dict(modes=MODES, width=WIDTH, depth=DEPTH, proj=PROJ, batch=BATCH, steps=steps,
               threads=os.cpu_count() or 1)
    proc = subprocess.run([python, "-c", _TORCH, path, json.dumps(cfg)], capture_output=True,
                          text=True, timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"neuraloperator subprocess failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 200 steps")
    parser.add_argument("--neuralop-python", metavar="PATH", default=None,
                        help="an interpreter with neuraloperator + torch (default: "
                             ".venv-neuralop/bin/python when it exists; 'none': no peer)")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (2 with --quick)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per run (default 2000; 200 with --quick)")
    args = parser.parse_args(argv)
    rounds, steps = (2, 200) if args.quick else (5, 2000)
    rounds = rounds if args.rounds is None else args.rounds
    steps = steps if args.steps is None else args.steps
    if rounds < 1 or steps < 50:
        parser.error(f"--rounds must be >= 1 and --steps >= 50, got {rounds} and {steps}")
    load = print_header("FNO training speed (opdiff vs neuraloperator)")
    if args.neuralop_python == "none":
        python = None
    else:
        python = args.neuralop_python or (".venv-neuralop/bin/python"
                                          if os.path.exists(".venv-neuralop/bin/python")
                                          else None)
    u, v = data()
    rows, ratios, rates, gflops = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, u=np.asarray(u, np.float32), v=np.asarray(v, np.float32))
        for r in range(rounds):
            peak = matmul_peak_gflops()
            rate, params = opdiff_rate(u, v, steps)
            rates.append(rate)
            gflops.append(rate * flops_per_step() / 1e9)
            peer = neuralop_rate(python, path, steps) if python else None
            if peer:
                ratios.append(rate / peer["steps_per_s"])
            rows.append([r, f"{rate:.1f}", f"{gflops[-1]:.2f}", f"{peak:.0f}", params,
                         "-" if not peer else f"{peer['steps_per_s']:.1f}",
                         "-" if not peer else peer["params"]])
    print_table(["round", "opdiff steps/s", "GFLOP/s", "matmul peak", "params",
                 "neuralop steps/s", "neuralop params"], rows)
    if not python:
        print("neuraloperator: no interpreter (--neuralop-python PATH); peer skipped\n")
    print_footer(load)
    print(headline("fno_train_steps_per_s", median(rates), "steps/s", "report", load))
    print(headline("fno_train_gflops", median(gflops), "GFLOP/s", "report", load))
    if ratios:
        print(headline("fno_vs_neuraloperator", median(ratios), "x", ">= 1", load))


if __name__ == "__main__":
    sys.exit(main())
