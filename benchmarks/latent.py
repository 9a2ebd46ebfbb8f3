r"""Latent vs pixel diffusion throughput at equal model size (issue 17).

Run from the repository root::

    .venv/bin/python -m benchmarks.latent            # 3 rounds, 300 training steps per run
    .venv/bin/python -m benchmarks.latent --quick    # 1 round, 60 steps: checks that it runs

The two models are the same network: ``make_unet_denoiser`` (a preconditioned U-Net,
``channels=(16, 32)``, ``emb_dim=32``, white VP) on the 8 x 8 digits (``[8, 8]``) and on the
latents of the convolutional autoencoder (:mod:`opdiff.nets.autoencoder`, ``[4, 4, 2]``); their
parameter counts differ only in the first and last convolution (printed). The autoencoder is
trained once (its training images/s are printed beside the others: it is part of latent
diffusion's training cost).

Measured, float32, batch 64 (training) and 256 (sampling):

1. **Training images/s**: ``batch x TrainResult.steps_per_s`` of ``train_denoiser`` (the
   engine excludes the compiling first call).
2. **Sampling images/s at 20 NFE**: ``samplers.sample("ancestral", ...)`` with 20 log-SNR
   steps, median of 3 warm calls; for the latent model the decoder runs too (compiled,
   :func:`opdiff.nets.autoencoder.decode_latents`), so it is images, not latents, per second.
3. **Ratios latent / pixel**: every round runs pixel and latent back to back in an order
   rotated each round; the ratio is the median of the per-round ratios.

Goals: latent sampling >= 2x pixel images/s (the latent has 2x fewer numbers and the U-Net
works at 4 x 4 instead of 8 x 8); latent training >= 1.5x. Benchmarks are not tests: nothing
here fails on a timing. The output ends with one line per headline figure.
"""

from __future__ import annotations

import argparse
import math

import jax
import numpy as np

from benchmarks._common import (
    headline, matmul_peak_gflops, median, print_footer, print_header, print_table, time_call,
)
from experiments._learned_common import load_image_set
from opdiff.diffusion import processes, samplers
from opdiff.diffusion.models import make_unet_denoiser
from opdiff.diffusion.training import train_denoiser
from opdiff.nets import nnx
from opdiff.nets.autoencoder import decode_latents, encode_images, train_autoencoder

BATCH, SAMPLE_BATCH, NFE = 64, 256, 20


def _n_params(model) -> int:
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _one_round(tag, x, steps, key, ae):
    proc = processes.vp(x.shape[1:])
    model = make_unet_denoiser(proc, x, channels=(16, 32), emb_dim=32, key=key)
    tr = train_denoiser(model, proc, x, steps=steps, key=key, batch_size=BATCH, progress=False)
    ts = samplers.log_snr_grid(proc, NFE)
    x_t = proc.sample_prior(jax.random.fold_in(key, 1), SAMPLE_BATCH)
    den = tr.ema_params.batched

    def draw():
        out = samplers.sample("ancestral", den, proc, x_t, ts, key=jax.random.fold_in(key, 2))
        return decode_latents(ae, out) if tag == "latent" else np.asarray(out)

    draw()  # compile
    sample_s = median(time_call(draw, 3))
    return {"train": BATCH * tr.steps_per_s, "sample": SAMPLE_BATCH / sample_s,
            "params": _n_params(model)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 60 steps")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per run (default 300; 60 with --quick)")
    args = parser.parse_args(argv)
    rounds, steps = (1, 60) if args.quick else (3, 300)
    if args.steps is not None:
        if args.steps < 2:
            parser.error(f"--steps must be >= 2, got {args.steps}")
        steps = args.steps
    load = print_header("latent vs pixel diffusion throughput (benchmarks/latent.py)")
    print(f"f32 matmul peak: {matmul_peak_gflops():.0f} GFLOP/s", flush=True)
    data = load_image_set("digits")
    ae, ae_res = train_autoencoder(data.x_train, key=jax.random.key(0), steps=steps,
                                   batch_size=BATCH)
    z = encode_images(ae, data.x_train)
    print(f"autoencoder: latent {ae.latent_shape}, training {BATCH * ae_res.steps_per_s:.0f} "
          f"images/s", flush=True)
    runs = {"pixel": [], "latent": []}
    for r in range(rounds):
        order = ["pixel", "latent"] if r % 2 == 0 else ["latent", "pixel"]
        for tag in order:
            x = data.x_train if tag == "pixel" else z
            runs[tag].append(_one_round(tag, x, steps, jax.random.key(r), ae))
    rows = [[tag, runs[tag][0]["params"], *(f"{runs[tag][r][q]:.0f}" for r in range(rounds)
                                            for q in ("train", "sample"))]
            for tag in runs]
    print_table(["model", "params", *(f"r{r} {q}" for r in range(rounds)
                                      for q in ("train img/s", "sample img/s"))], rows)
    ratio = {q: median([runs["latent"][r][q] / runs["pixel"][r][q] for r in range(rounds)])
             for q in ("train", "sample")}
    print_footer(load)
    for tag in runs:
        print(headline(f"{tag}_training", median([x["train"] for x in runs[tag]]), "images/s",
                       "reported", load))
        print(headline(f"{tag}_sampling_{NFE}nfe", median([x["sample"] for x in runs[tag]]),
                       "images/s", "reported", load))
    print(headline("latent_vs_pixel_training", ratio["train"], "x", ">= 1.5", load))
    print(headline("latent_vs_pixel_sampling", ratio["sample"], "x", ">= 2", load))


if __name__ == "__main__":
    main()
