"""A training run used by the tests in a separate interpreter.

    python tests/_train_script.py OUT.npz [--workdir DIR] [--resume] [--kill-at STEP] [--mesh]
        [--kill-in-save K --kill-at-rename R] [--sleep-per-call S]

Trains a small MLP on sin(3x) for 60 steps (5 per call, checkpoints every 20), then writes
the final parameters and all losses to OUT.npz. ``--kill-at S`` sends SIGKILL to itself once
S steps are done, simulating a crash; ``--kill-in-save K`` sends SIGKILL in the middle of
the K-th checkpoint save, just before orbax's R-th commit rename; ``--sleep-per-call`` slows training down (for the lock test);
``--mesh`` shards the batch over all local devices.
"""

import argparse
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import opdiff
from opdiff.nets import MLP, nnx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--workdir")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--kill-at", type=int)
    p.add_argument("--mesh", action="store_true")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--kill-in-save", type=int)
    p.add_argument("--kill-at-rename", type=int, default=3)
    p.add_argument("--sleep-per-call", type=float, default=0.0)
    a = p.parse_args()

    if a.kill_in_save is not None:
        # Orbax writes a checkpoint into "<step>.orbax-checkpoint-tmp/" and commits it by three
        # os.rename calls (its two items, then the directory): SIGKILL just before the R-th.
        real_save, real_rename, saves, renames = opdiff.checkpoint.save, os.rename, [], []

        def save(*args, **kw):
            saves.append(1)
            real_save(*args, **kw)

        def rename(src, dst, *args, **kw):
            if len(saves) == a.kill_in_save and "orbax-checkpoint-tmp" in os.fspath(src):
                renames.append(1)
                if len(renames) == a.kill_at_rename:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_rename(src, dst, *args, **kw)

        opdiff.checkpoint.save = save
        os.rename = rename

    key = jax.random.key(0)
    net = MLP(1, 1, width=16, depth=2, key=jax.random.fold_in(key, 1))
    x = jnp.linspace(-1, 1, 256)[:, None]
    y = jnp.sin(3 * x)

    def loss(model, batch, k):
        xb, yb = batch
        return jnp.mean((jax.vmap(model)(xb) - yb) ** 2)

    def callback(step, value):
        if a.kill_at is not None and step >= a.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(a.sleep_per_call)

    res = opdiff.fit(
        loss, net, optax.adam(1e-2), (x, y), steps=a.steps, key=key, batch_size=64,
        steps_per_call=5, workdir=a.workdir, checkpoint_every=20 if a.workdir else None,
        resume=a.resume, callback=callback,
        mesh=opdiff.parallel.data_mesh() if a.mesh else None,
    )
    leaves = jax.tree.leaves(nnx.state(res.params, nnx.Param))
    np.savez(a.out, losses=res.losses, n_devices=jax.device_count(), start_step=res.start_step,
             param_devices=len(leaves[0].sharding.device_set),
             **{f"leaf{i}": np.asarray(v) for i, v in enumerate(leaves)})


if __name__ == "__main__":
    main()
