"""Data-parallel meshes: the batch is sharded over a ``data`` axis, everything else replicated.

On one host, ``data_mesh()`` spans all local devices (8 emulated CPUs under
``XLA_FLAGS=--xla_force_host_platform_device_count=8``, or the GPUs of a node). On several
hosts, call ``jax.distributed.initialize()`` first; ``jax.devices()`` then lists every device of
every process and the same mesh spans them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DATA_AXIS", "data_mesh", "replicate", "shard_batch", "batch_sharding"]

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


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put every leaf of ``tree`` on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding that splits axis 0 over the ``data`` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Constrain (inside ``jit``) every array leaf of ``batch`` to be split on its axis 0.

    Scalars are replicated. Must be called under ``jax.jit``.
    """
    batch_spec = batch_sharding(mesh)
    repl = NamedSharding(mesh, PartitionSpec())

    def constrain(x):
        return jax.lax.with_sharding_constraint(x, batch_spec if x.ndim >= 1 else repl)

    return jax.tree.map(constrain, batch)
