"""One process of a two-process training run, or the single-process reference.

    python tests/_multihost_script.py OUT.npz [--port P --process-id I [--num-processes N]]
        [--steps S] [--workdir DIR [--resume]] [--no-collectives]

Without ``--port`` it trains a small MLP on sin(3x) (batch 64, 5 steps per call) on the default
device with ``mesh=None``: the reference. With ``--port`` it joins a ``jax.distributed`` job whose
coordinator is ``127.0.0.1:P`` (process 0 hosts it), checks that a cross-process sum works, then
trains the same model with the same key and data over ``opdiff.parallel.data_mesh()``, whose
``data`` axis spans the devices of every process, and finally exercises
``opdiff.parallel.replicate`` on committed, typed-key and mismatched leaves.

Every process writes its own OUT.npz:

* ``status="unsupported"`` and ``reason`` when the cross-process computation itself raised
  (this jax cannot run CPU multi-process collectives; nothing is trained). A failure of
  ``jax.distributed.initialize`` is not that: it propagates and the process exits non-zero;
* otherwise ``status="ok"``, the final parameters ``leaf0..``, the losses, ``n_devices``
  (global), ``n_processes``, ``process_index``, ``param_devices``, ``fully_replicated`` and, for
  multi-process runs, ``replicate_ok`` and ``mismatch`` (the error ``replicate`` raised when the
  processes passed different values).

``--no-collectives`` sets ``jax_cpu_collectives_implementation`` to ``None`` before initializing,
which is what a jax without CPU collectives does; the test uses it to check that path.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax


def probe_collectives() -> str | None:
    """Sum one value per device over every device of every process.

    Returns ``None`` when the sum is right, or the error the computation raised (first line).
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    n = jax.device_count()
    assert jax.process_count() >= 2 and n > jax.local_device_count(), (
        f"jax.distributed.initialize gave {jax.process_count()} process(es), {n} global "
        f"device(s), {jax.local_device_count()} local"
    )
    mesh = Mesh(np.array(jax.devices()), ("data",))
    values = np.arange(1, n + 1, dtype=np.float32)
    try:
        x = jax.make_array_from_callback(
            (n,), NamedSharding(mesh, PartitionSpec("data")), lambda index: values[index]
        )
        total = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, PartitionSpec()))(x)
        got = float(np.asarray(total))
    except (RuntimeError, NotImplementedError) as e:  # JaxRuntimeError is a RuntimeError
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
    assert got == n * (n + 1) / 2, f"cross-process sum over {n} devices gave {got}"
    return None


def check_replicate(mesh) -> dict:
    """``parallel.replicate`` on a multi-process mesh: committed leaves, typed keys, a mismatch."""
    from opdiff import parallel

    w = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    committed = jax.device_put(w, jax.local_devices()[0])
    tree = {"w": committed, "key": jax.random.key(3), "n": np.int64(7), "none": None}
    rep = parallel.replicate(tree, mesh)
    ok = (
        rep["w"].is_fully_replicated
        and rep["w"].sharding.mesh == mesh
        and np.array_equal(np.asarray(rep["w"]), w)
        and rep["n"].dtype == jnp.int32  # canonical dtype, as jax.device_put gives
        and int(rep["n"]) == 7
        and rep["none"] is None
        and np.array_equal(np.asarray(jax.random.key_data(rep["key"])),
                           np.asarray(jax.random.key_data(jax.random.key(3))))
    )
    again = parallel.replicate(rep, mesh)  # leaves that are already global arrays
    ok = ok and np.array_equal(np.asarray(again["w"]), w)
    try:
        parallel.replicate({"w": np.full(3, float(jax.process_index()))}, mesh)
        mismatch = "not detected"
    except ValueError as e:
        mismatch = str(e)
    return {"replicate_ok": bool(ok), "mismatch": mismatch}


def train(steps: int, mesh, workdir=None, resume=False):
    import opdiff
    from opdiff.nets import MLP

    key = jax.random.key(0)
    net = MLP(1, 1, width=16, depth=2, key=jax.random.fold_in(key, 1))
    x = jnp.linspace(-1, 1, 256)[:, None]
    y = jnp.sin(3 * x)

    def loss(model, batch, k):
        xb, yb = batch
        return jnp.mean((jax.vmap(model)(xb) - yb) ** 2)

    return opdiff.fit(
        loss, net, optax.adam(1e-2), (x, y), steps=steps, key=key, batch_size=64,
        steps_per_call=5, mesh=mesh, workdir=workdir,
        checkpoint_every=10 if workdir else None, resume=resume,
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--port", type=int)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--num-processes", type=int, default=2)
    p.add_argument("--init-timeout", type=int, default=60, help="seconds")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--workdir", help="checkpoint every 10 steps there (one dir for all)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-collectives", action="store_true")
    a = p.parse_args()

    mesh = None
    if a.port is not None:
        if a.no_collectives:
            jax.config.update("jax_cpu_collectives_implementation", None)
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{a.port}", num_processes=a.num_processes,
            process_id=a.process_id, initialization_timeout=a.init_timeout,
        )
        reason = probe_collectives()
        if reason is not None:
            np.savez(a.out, status="unsupported", reason=reason, jax_version=jax.__version__)
            jax.distributed.shutdown()
            return
        from opdiff import parallel

        mesh = parallel.data_mesh()

    from opdiff.nets import nnx

    res = train(a.steps, mesh, a.workdir, a.resume)
    leaves = jax.tree.leaves(nnx.state(res.params, nnx.Param))
    out = dict(
        status="ok", jax_version=jax.__version__, losses=res.losses,
        n_devices=jax.device_count(), n_processes=jax.process_count(),
        process_index=jax.process_index(),
        fully_replicated=all(v.is_fully_replicated for v in leaves),
        param_devices=len(leaves[0].sharding.device_set),
        **{f"leaf{i}": np.asarray(v) for i, v in enumerate(leaves)},
    )
    if a.port is not None:
        out.update(check_replicate(mesh))
    np.savez(a.out, **out)
    if a.port is not None:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
