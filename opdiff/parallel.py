"""Data-parallel meshes: the batch is sharded over a ``data`` axis, everything else replicated.

On one host, ``data_mesh()`` spans all local devices (8 emulated CPUs under
``XLA_FLAGS=--xla_force_host_platform_device_count=8``, or the GPUs of a node). On several
processes (hosts), call ``jax.distributed.initialize()`` first; ``jax.devices()`` then lists every
device of every process and the same mesh spans them all. Every process runs the same program
with the same values (key, data, initial parameters); :func:`replicate` checks that they agree
and builds global arrays from each process's local copy, so no data crosses the network except
the collectives XLA inserts (the gradient all-reduce). On CPU the cross-process collectives are
gloo over TCP (jax's default ``jax_cpu_collectives_implementation``); see ``notes/reliability.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "DATA_AXIS",
    "data_mesh",
    "replicate",
    "shard_batch",
    "batch_sharding",
    "replicated_sharding",
]

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"data"`` over ``devices`` (default: ``jax.devices()``).

    The axis type is ``Auto`` (the ``Mesh`` constructor's default), so sharding constraints
    inside ``jit`` behave the same on jax 0.10 to 0.12.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must be a non-empty sequence of jax devices, got []")
    return Mesh(np.array(devices), (DATA_AXIS,))


def replicate(tree: Any, mesh: Mesh, *, check_equal: bool = True) -> Any:
    """Put every leaf of ``tree`` on every device of ``mesh``.

    On a mesh of one process this is ``jax.device_put``. On a mesh spanning several processes
    (after ``jax.distributed.initialize``) every process must call it with the same values:
    each leaf (numpy, Python scalar, or a jax array on this process's devices, committed or
    not) becomes a global array whose local shards are copies of this process's value; leaves
    that are already global arrays are resharded. Python scalars lose their weak type there.

    Args:
        tree: a pytree of arrays and scalars (``None`` leaves stay ``None``).
        mesh: the target mesh.
        check_equal: on a multi-process mesh, compare one fingerprint (a hash of all local
            leaves) across processes, one small all-gather per call; ignored on one process.

    Raises:
        ValueError: on a multi-process mesh, if the processes passed different values.
    """
    sharding = replicated_sharding(mesh)
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)
    return _replicate_across_processes(tree, sharding, check_equal)


def _is_key_array(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _replicate_across_processes(tree: Any, sharding: NamedSharding, check_equal: bool) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    out: list[Any] = [None] * len(leaves)
    local: dict[int, np.ndarray] = {}  # leaf index -> this process's value, on the host
    key_impls: dict[int, Any] = {}  # leaf index -> PRNG impl of a typed key leaf
    for i, x in enumerate(leaves):
        if _is_key_array(x):
            key_impls[i] = jax.random.key_impl(x)
            x = jax.random.key_data(x)
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            out[i] = jax.device_put(x, sharding)  # already global: same-device-set reshard
            continue
        value = np.asarray(x)
        local[i] = value.astype(jax.dtypes.canonicalize_dtype(value.dtype), copy=False)
    if check_equal and local:
        _check_same_on_every_process(local)
    for i, value in local.items():
        out[i] = jax.make_array_from_callback(
            value.shape, sharding, lambda index, v=value: np.asarray(v[index])
        )
    for i, impl in key_impls.items():
        out[i] = jax.random.wrap_key_data(out[i], impl=impl)
    return jax.tree.unflatten(treedef, out)


def _check_same_on_every_process(local: dict[int, np.ndarray]) -> None:
    """Raise ``ValueError`` unless every process holds the same ``local`` values."""
    from jax.experimental import multihost_utils

    h = hashlib.blake2b(digest_size=16)
    for i, v in sorted(local.items()):
        h.update(f"{i}:{v.dtype.str}:{v.shape};".encode())
        h.update(np.ascontiguousarray(v).reshape(-1).view(np.uint8))
    mine = np.frombuffer(h.digest(), dtype=np.uint32)
    every = np.asarray(multihost_utils.process_allgather(mine)).reshape(-1, mine.size)
    differ = [p for p in range(every.shape[0]) if not np.array_equal(every[p], every[0])]
    if differ:
        raise ValueError(
            f"replicate: processes {differ} passed values different from process 0's "
            f"({len(local)} leaves compared); on a multi-process mesh every process must pass "
            "the same tree (same key, data and initial parameters)"
        )


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding that puts a whole copy on every device of ``mesh``.

    Pass it as ``jax.jit(..., out_shardings=...)`` for outputs read on the host: on a mesh
    spanning several processes only fully replicated arrays can be read (``np.asarray``) in
    every process.
    """
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding that splits axis 0 over the ``data`` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Constrain (inside ``jit``) every array leaf of ``batch`` to be split on its axis 0.

    Scalars are replicated. Must be called under ``jax.jit``.
    """
    batch_spec = batch_sharding(mesh)
    repl = replicated_sharding(mesh)

    def constrain(x):
        return jax.lax.with_sharding_constraint(x, batch_spec if x.ndim >= 1 else repl)

    return jax.tree.map(constrain, batch)
