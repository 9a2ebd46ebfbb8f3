"""Atomic, verified, resumable checkpoints of training state with orbax.

A checkpoint is the flat list of array leaves of a pytree (params, optimizer state, EMA,
step), saved by orbax under ``DIR/<step>/`` together with one CRC-32 per leaf. Orbax writes into
a temporary directory and renames it on commit, so a process killed mid-save leaves the previous
checkpoints untouched and the half-written one invisible. Restoring needs a *template* pytree of
the same structure (the freshly initialised state); its tree structure is authoritative, so
nothing is unpickled and containers such as optax's NamedTuples round-trip exactly.

What is guaranteed:

* ``save`` refuses a tree with a NaN or infinite floating-point leaf (a diverged state is never
  written as good) and a negative step; ``max_to_keep`` must be a positive int or ``None``.
* ``restore`` tells apart a checkpoint that cannot be read (:class:`CorruptCheckpointError`:
  missing or damaged files, a CRC-32 that does not match, non-finite values) from one that is
  intact but belongs to another model (:class:`CheckpointMismatchError`: leaf count, shapes or
  dtypes differ from the template).
* :func:`restore_newest` falls back from an unreadable newest checkpoint to the newest readable
  one, with a warning naming each skipped step and why; it never deletes anything.
"""

from __future__ import annotations

import operator
import os
import shutil
import warnings
import zlib
from typing import Any

import jax
import numpy as np

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "CorruptCheckpointError",
    "all_steps",
    "latest_step",
    "restore",
    "restore_newest",
    "save",
    "set_aside",
]

_FORMAT = 1  # version of the manifest written beside the arrays


class CheckpointError(ValueError):
    """A checkpoint could not be used."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint's files are missing, damaged, fail their checksum, or hold NaN/inf.

    Attributes:
        step: the checkpoint's step.
    """

    def __init__(self, step: int, reason: str):
        self.step = step
        self.reason = reason
        super().__init__(f"checkpoint {step} is unreadable: {reason}")


class CheckpointMismatchError(CheckpointError):
    """An intact checkpoint whose leaves do not match the template (another model/optimizer)."""


def _check_max_to_keep(max_to_keep: Any) -> int | None:
    if max_to_keep is None:
        return None
    if isinstance(max_to_keep, bool) or not hasattr(max_to_keep, "__index__"):
        raise TypeError(f"max_to_keep must be a positive int or None, got {max_to_keep!r}")
    value = operator.index(max_to_keep)
    if value < 1:
        raise ValueError(
            f"max_to_keep must be a positive int or None (0 would delete every checkpoint), "
            f"got {max_to_keep!r}"
        )
    return value


def _manager(directory: str | os.PathLike, max_to_keep: int | None = None):
    import orbax.checkpoint as ocp  # imported lazily: ~0.4 s

    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True
    )
    return ocp, ocp.CheckpointManager(os.path.abspath(os.fspath(directory)), options=options)


def _short(err: BaseException) -> str:
    """One readable line for an error from orbax/tensorstore (their specs run to kilobytes)."""
    text = str(err).split(" [tensorstore_spec=")[0].splitlines()[0] if str(err) else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(err).__name__}: {text}"


def _name(i: int) -> str:
    return f"leaf_{i:05d}"


def _host(leaf: Any) -> np.ndarray | None:
    """The leaf as a contiguous host array, or ``None`` where it is not fully on this host."""
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        if not leaf.is_fully_replicated:
            return None  # a shard of a multi-process array: not checksummed here
        leaf = leaf.addressable_data(0)  # every process holds the whole (replicated) value
    return np.ascontiguousarray(np.asarray(leaf))


def _crc(arr: np.ndarray) -> int:
    return zlib.crc32(arr.reshape(-1).view(np.uint8).data)


def _describe(tree: Any) -> list[dict]:
    """Path, shape and dtype of every leaf of ``tree`` (the manifest's leaf entries)."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        leaf = leaf if hasattr(leaf, "dtype") else np.asarray(leaf)
        out.append({"path": jax.tree_util.keystr(path), "shape": list(np.shape(leaf)),
                    "dtype": np.dtype(leaf.dtype).name})
    return out


def save(directory: str | os.PathLike, step: int, tree: Any, *, max_to_keep: int | None = 3):
    """Save ``tree`` as checkpoint ``step`` under ``directory``, atomically, with checksums.

    The checkpoint holds two orbax items committed together: ``state`` (the array leaves) and
    ``manifest`` (JSON: each leaf's tree path, shape, dtype and CRC-32).

    Args:
        directory: checkpoint root; created if missing.
        step: non-negative integer that names the checkpoint.
        tree: a pytree of arrays (jax or numpy) and scalars, all finite.
        max_to_keep: how many of the newest checkpoints to keep (``None`` keeps all).

    Raises:
        ValueError: if ``step`` is negative, ``max_to_keep`` is not positive, or a
            floating-point leaf holds NaN or inf (named by its tree path).
        TypeError: if ``max_to_keep`` is not an int or ``None``.
    """
    max_to_keep = _check_max_to_keep(max_to_keep)
    if int(step) < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    leaves = jax.tree.leaves(tree)
    entries = _describe(tree)
    for entry, leaf in zip(entries, leaves):
        host = _host(leaf)
        if host is None:
            continue
        if np.issubdtype(host.dtype, np.inexact) and not np.all(np.isfinite(host)):
            raise ValueError(f"refusing to save checkpoint {step}: leaf {entry['path']} holds "
                             f"non-finite values")
        entry["crc32"] = _crc(host)
    manifest = {"format": _FORMAT, "step": int(step), "leaves": entries}
    items = {_name(i): leaf for i, leaf in enumerate(leaves)}
    ocp, mngr = _manager(directory, max_to_keep)
    with mngr:
        mngr.save(int(step), force=True, args=ocp.args.Composite(
            state=ocp.args.StandardSave(items), manifest=ocp.args.JsonSave(manifest)))
        mngr.wait_until_finished()


def all_steps(directory: str | os.PathLike) -> list[int]:
    """Steps of the committed checkpoints under ``directory`` (ascending; [] if none)."""
    if not os.path.isdir(directory):
        return []
    _, mngr = _manager(directory)
    with mngr:
        return sorted(int(s) for s in mngr.all_steps())


def latest_step(directory: str | os.PathLike) -> int | None:
    """Step of the newest committed checkpoint under ``directory``, or ``None``."""
    steps = all_steps(directory)
    return steps[-1] if steps else None


def _restore_step(directory: str | os.PathLike, template: Any, step: int) -> Any:
    """Checkpoint ``step`` in ``template``'s structure: manifest first, then arrays, verified."""
    leaves, treedef = jax.tree.flatten(template)
    want = _describe(template)

    def abstract(leaf):
        leaf = leaf if hasattr(leaf, "dtype") else np.asarray(leaf)
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=getattr(leaf, "sharding",
                                                                            None))

    target = {_name(i): abstract(leaf) for i, leaf in enumerate(leaves)}
    ocp, mngr = _manager(directory)
    with mngr:
        legacy = os.path.isdir(os.path.join(os.fspath(directory), str(step), "default"))
        if legacy:  # written before the manifest existed: no checksums to verify
            item, have = None, None
        else:
            try:
                manifest = mngr.restore(step, args=ocp.args.Composite(
                    manifest=ocp.args.JsonRestore()))["manifest"]
                have = manifest["leaves"]
            except Exception as err:  # noqa: BLE001 -- any failure to read it is damage
                raise CorruptCheckpointError(
                    step, f"its manifest cannot be read ({_short(err)})") from err
            if len(have) != len(want):
                raise CheckpointMismatchError(
                    f"checkpoint {step} does not match the template (a different model or "
                    f"optimizer?): it holds {len(have)} arrays, the template {len(want)}")
            for h, w in zip(have, want):
                if h["shape"] != w["shape"] or h["dtype"] != w["dtype"]:
                    raise CheckpointMismatchError(
                        f"checkpoint {step}: leaf {h['path']} has shape {tuple(h['shape'])} and "
                        f"dtype {h['dtype']}, the template's {w['path']} expects "
                        f"{tuple(w['shape'])} and {w['dtype']} (a different model?)")
        try:
            if legacy:
                restored = mngr.restore(step, args=ocp.args.StandardRestore(target))
            else:
                restored = mngr.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target)))["state"]
        except Exception as err:  # noqa: BLE001 -- the manifest matched: the data is damaged
            if legacy:
                raise CheckpointMismatchError(
                    f"checkpoint {step} does not match the template (a different model or "
                    f"optimizer?) or is damaged: {_short(err)}") from err
            raise CorruptCheckpointError(step, _short(err)) from err
    out = [restored[_name(i)] for i in range(len(leaves))]
    for i, leaf in enumerate(out):
        host = _host(leaf)
        if host is None:
            continue
        if have is not None and "crc32" in have[i] and _crc(host) != have[i]["crc32"]:
            raise CorruptCheckpointError(step, f"leaf {want[i]['path']} fails its CRC-32 check")
        if np.issubdtype(host.dtype, np.inexact) and not np.all(np.isfinite(host)):
            raise CorruptCheckpointError(step, f"leaf {want[i]['path']} holds non-finite values")
    return jax.tree.unflatten(treedef, out)


def restore(directory: str | os.PathLike, template: Any, step: int | None = None) -> Any:
    """Restore checkpoint ``step`` (default: the newest readable) into ``template``'s structure.

    Args:
        directory: checkpoint root.
        template: a pytree with the structure, shapes and dtypes of the saved one; its leaves'
            shardings are reused where they are jax arrays.
        step: which checkpoint; ``None`` for the newest readable one (see
            :func:`restore_newest`).

    Returns:
        A pytree like ``template`` holding the saved values.

    Raises:
        FileNotFoundError: if there is no checkpoint (or no checkpoint ``step``) to restore.
        CorruptCheckpointError: if checkpoint ``step`` (or, with ``step=None``, every
            checkpoint) cannot be read, fails its checksum or holds non-finite values.
        CheckpointMismatchError: if the saved leaves do not match the template's count, shapes
            or dtypes. Both errors are ``ValueError``\\ s.
    """
    if step is None:
        return restore_newest(directory, template)[1]
    steps = all_steps(directory)
    if int(step) not in steps:
        raise FileNotFoundError(
            f"no checkpoint {step} under {os.fspath(directory)!r} (it has {steps or 'none'})"
        )
    return _restore_step(directory, template, int(step))


def restore_newest(
    directory: str | os.PathLike, template: Any, *, below: int | None = None
) -> tuple[int, Any, list[tuple[int, str]]]:
    """Restore the newest checkpoint that can be read, skipping damaged ones with a warning.

    Args:
        directory: checkpoint root.
        template: as for :func:`restore`.
        below: only consider steps ``<= below`` (``None``: all).

    Returns:
        ``(step, tree, skipped)``: the step restored, its pytree, and ``(step, reason)`` for
        every newer checkpoint that was unreadable (left on disk untouched).

    Raises:
        FileNotFoundError: if there is no checkpoint.
        CorruptCheckpointError: if no checkpoint can be read.
        CheckpointMismatchError: as soon as an intact checkpoint does not match the template
            (older ones belong to the same run, so they would not match either).
    """
    steps = [s for s in all_steps(directory) if below is None or s <= below]
    if not steps:
        raise FileNotFoundError(f"no checkpoint found under {os.fspath(directory)!r}")
    skipped: list[tuple[int, str]] = []
    for step in reversed(steps):
        try:
            tree = _restore_step(directory, template, step)
        except CorruptCheckpointError as err:
            skipped.append((step, err.reason))
            warnings.warn(
                f"checkpoint {step} under {os.fspath(directory)!r} is unreadable ({err.reason}); "
                f"trying an older one (it is not deleted)",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        return step, tree, skipped
    raise CorruptCheckpointError(
        steps[-1], f"no checkpoint under {os.fspath(directory)!r} can be read: "
        + "; ".join(f"{s}: {r}" for s, r in skipped)
    )


def set_aside(directory: str | os.PathLike, step: int, into: str | os.PathLike) -> str:
    """Move checkpoint ``step`` out of ``directory`` into ``into/<step>`` (never deleting it).

    Used when training resumes from an older step: the newer checkpoints would otherwise be
    overwritten or collide with the ones the resumed run writes. Returns the new path (a suffix
    ``.1``, ``.2``, ... is added if ``into/<step>`` exists already).
    """
    src = os.path.join(os.fspath(directory), str(int(step)))
    os.makedirs(into, exist_ok=True)
    dst = os.path.join(os.fspath(into), str(int(step)))
    k = 0
    while os.path.exists(dst):
        k += 1
        dst = os.path.join(os.fspath(into), f"{int(step)}.{k}")
    shutil.move(src, dst)
    return dst
