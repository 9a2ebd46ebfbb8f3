r"""Operator datasets: generation, ``.npz`` storage without pickle, DeepXDE import, batching.

Two layouts, as in DeepXDE:

* **aligned** (Cartesian product): every function is observed at the same query points,
  ``inputs [n_funcs, m]`` (u at the m sensors), ``points [n_points, d]``,
  ``outputs [n_funcs, n_points]`` (:math:`G(u_i)(y_j)`);
* **unaligned** (triplets): row ``i`` is one ``(u_i at sensors, y_i, G(u_i)(y_i))``,
  ``inputs [n, m]``, ``points [n, d]``, ``outputs [n]``.

A dataset is generated from a function space (anything with ``.grid`` and
``.sample(n, key=...)``, see :mod:`opdiff.functions`), an :class:`OperatorSpec` (the reference
operator on that grid and the points where it returns values), the sensors and a key. Inputs
are read at the sensors by interpolation from the fine grid; outputs are the operator's values
on its own output points (query points are drawn from those, so labels are exact for the
sampled representation, never re-interpolated).

Files are ``.npz`` archives of plain numeric arrays plus one JSON string (``metadata``);
loading never unpickles. DeepXDE's aligned format stores ``X`` as a pickled object array; it
is read only when the caller passes ``allow_pickle=True`` by name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

__all__ = [
    "OperatorSpec",
    "AlignedDataset",
    "UnalignedDataset",
    "make_aligned",
    "make_unaligned",
    "save",
    "load",
    "load_deepxde_aligned",
    "load_deepxde_unaligned",
]

FORMAT = "opdiff-operator-dataset/1"


@dataclasses.dataclass(frozen=True)
class OperatorSpec:
    """A reference operator in the form datasets need.

    Attributes:
        name: short name, stored in the metadata.
        apply: ``apply(u) -> G(u)``: maps input functions on the space's grid, ``[n, N]``, to
            the operator's values at ``output_points``, ``[n, P]`` (scalar outputs) or
            ``[n, P, c]`` (``c`` output components).
        output_points: ``[P, d]`` coordinates where ``apply`` returns values.
        params: JSON-able description of the operator's parameters (for the metadata).
    """

    name: str
    apply: Callable[[Any], Any]
    output_points: np.ndarray
    params: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        pts = np.asarray(self.output_points)
        if pts.ndim != 2:
            raise ValueError(f"output_points must have shape (P, d), got {pts.shape}")


def _check_finite(name: str, arr: np.ndarray):
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")


@dataclasses.dataclass(frozen=True)
class _Dataset:
    inputs: np.ndarray
    sensors: np.ndarray
    points: np.ndarray
    outputs: np.ndarray
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        n, m = _shape2("inputs", self.inputs)
        if np.shape(self.sensors)[:1] != (m,):
            raise ValueError(f"sensors must have {m} rows (one per input column), got "
                             f"shape {np.shape(self.sensors)}")
        _shape2("points", self.points)
        self._check_layout(n)
        for name in ("inputs", "points", "outputs"):
            _check_finite(name, np.asarray(getattr(self, name)))

    def _check_layout(self, n: int) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        return int(np.shape(self.inputs)[0])


@dataclasses.dataclass(frozen=True)
class AlignedDataset(_Dataset):
    """Cartesian-product operator data; see the module docstring for the shapes."""

    def _check_layout(self, n):
        p = np.shape(self.points)[0]
        if np.shape(self.outputs)[:2] != (n, p):
            raise ValueError(f"outputs must have shape ({n}, {p}, ...), got {np.shape(self.outputs)}")

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays sharing the leading (function) axis, for :func:`opdiff.fit`'s ``data``."""
        return {"inputs": self.inputs, "outputs": self.outputs}

    def to_unaligned(self) -> UnalignedDataset:
        """Every (function, point) pair as a triplet row."""
        n, p = np.shape(self.outputs)[:2]
        return UnalignedDataset(
            inputs=np.repeat(self.inputs, p, axis=0),
            sensors=self.sensors,
            points=np.tile(self.points, (n, 1)),
            outputs=np.reshape(self.outputs, (n * p,) + np.shape(self.outputs)[2:]),
            metadata=dict(self.metadata),
        )


@dataclasses.dataclass(frozen=True)
class UnalignedDataset(_Dataset):
    """Triplet operator data; see the module docstring for the shapes."""

    def _check_layout(self, n):
        if np.shape(self.points)[0] != n or np.shape(self.outputs)[:1] != (n,):
            raise ValueError(
                f"points and outputs must have {n} rows like inputs, got "
                f"{np.shape(self.points)} and {np.shape(self.outputs)}"
            )

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays sharing the leading (row) axis, for :func:`opdiff.fit`'s ``data``."""
        return {"inputs": self.inputs, "points": self.points, "outputs": self.outputs}


def _shape2(name, arr):
    shape = np.shape(arr)
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {shape}")
    return shape


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _count(name: str, value) -> int:
    """A Python or NumPy int >= 1 (never a bool or a float)."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _as_points(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x[:, None] if x.ndim == 1 else x


def _generate(space, operator: OperatorSpec, n_funcs: int, sensors, interp: str, key,
              chunk: int, dtype, on_nonfinite: str):
    from opdiff import functions

    n_funcs, chunk = _count("n_funcs", n_funcs), _count("chunk", chunk)
    if on_nonfinite not in ("raise", "drop"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'drop', got {on_nonfinite!r}")
    sensors = np.asarray(sensors, np.float64)
    grid = np.asarray(space.grid)
    functions.sensor_matrix(grid, sensors, interp)  # validates the sensors up front
    ins, outs = [], []
    for i, start in enumerate(range(0, n_funcs, chunk)):
        count = min(chunk, n_funcs - start)
        u = space.sample(count, key=jax.random.fold_in(key, i), dtype=dtype)
        # Both calls run compiled code cached across calls (no re-jitting per dataset).
        ins.append(np.asarray(functions.interpolate(u, grid, sensors, interp)))
        outs.append(np.asarray(operator.apply(u)))
    ins, outs = np.concatenate(ins), np.concatenate(outs)
    bad = ~np.all(np.isfinite(outs.reshape(outs.shape[0], -1)), axis=1)
    if bad.any() and on_nonfinite == "raise":
        raise ValueError(
            f"operator {operator.name!r} gave non-finite outputs for {int(bad.sum())} of "
            f"{n_funcs} input functions (e.g. a solution that blows up); pass "
            "on_nonfinite='drop' to discard those functions"
        )
    return sensors, ins[~bad], outs[~bad], int(bad.sum())


def _metadata(space, operator, interp, layout, extra=None):
    meta = {
        "format": FORMAT,
        "layout": layout,
        "operator": operator.name,
        "operator_params": operator.params,
        "space": type(space).__name__,
        "space_params": _jsonable_fields(space),
        "interp": interp,
    }
    meta.update(extra or {})
    return json.loads(json.dumps(meta, default=str))


def _jsonable_fields(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return {}


def make_aligned(
    space,
    operator: OperatorSpec,
    *,
    n_funcs: int,
    sensors,
    key: PRNGKeyArray,
    n_points: int | None = None,
    interp: str = "cubic",
    chunk: int = 4096,
    dtype=jnp.float32,
    on_nonfinite: str = "raise",
) -> AlignedDataset:
    """Generate an aligned dataset.

    Args:
        space: a function space with ``.grid`` and ``.sample(n, key=...)``.
        operator: the reference operator on ``space.grid``.
        n_funcs: number of input functions.
        sensors: ``[m]`` sensor locations inside the space's domain.
        key: PRNG key; functions use ``fold_in(key, chunk index)``, points ``fold_in(key, -1)``.
        n_points: ``None`` keeps every output point; an int keeps that many, drawn without
            replacement (the same for every function).
        interp: ``"linear"`` or ``"cubic"`` interpolation from the grid to the sensors.
        chunk: functions generated per jitted call (bounds the memory used).
        dtype: dtype of the sampled functions and of the computation.
        on_nonfinite: ``"raise"`` (default) if the operator's output of some function is not
            finite (the nonlinear ODE blows up for a few GRF inputs), or ``"drop"`` to discard
            those functions; the count is recorded as ``metadata["dropped_nonfinite"]``.

    Raises:
        ValueError: for sizes that are not positive ints (bools and floats are refused, NumPy
            ints accepted), sensors outside the domain or not finite, more points than the
            operator provides, an unknown ``interp`` or ``on_nonfinite``, or non-finite
            generated values (with ``on_nonfinite="raise"``).
    """
    sensors, inputs, outputs, dropped = _generate(space, operator, n_funcs, sensors, interp, key,
                                                  chunk, dtype, on_nonfinite)
    points = np.asarray(operator.output_points)
    if n_points is not None:
        total = points.shape[0]
        if not _is_int(n_points) or not 1 <= n_points <= total:
            raise ValueError(f"n_points must be an int in [1, {total}], got {n_points!r}")
        n_points = int(n_points)
        idx = np.sort(np.asarray(jax.random.choice(
            jax.random.fold_in(key, 2**31 - 1), total, (n_points,), replace=False)))
        points, outputs = points[idx], outputs[:, idx]
    return AlignedDataset(inputs, sensors, points, outputs,
                          _metadata(space, operator, interp, "aligned",
                                    {"dropped_nonfinite": dropped}))


def make_unaligned(
    space,
    operator: OperatorSpec,
    *,
    n_funcs: int,
    sensors,
    key: PRNGKeyArray,
    points_per_func: int = 1,
    interp: str = "cubic",
    chunk: int = 4096,
    dtype=jnp.float32,
    on_nonfinite: str = "raise",
) -> UnalignedDataset:
    """Generate ``n_funcs * points_per_func`` triplets; each function's query points are
    drawn uniformly (with replacement) from the operator's output points.

    Args: as :func:`make_aligned`, with ``points_per_func`` query points per function
    (``on_nonfinite="drop"`` leaves ``points_per_func`` rows per *kept* function).

    Raises:
        ValueError: as :func:`make_aligned`, and if ``points_per_func`` is not a positive int.
    """
    points_per_func = _count("points_per_func", points_per_func)
    sensors, inputs, outputs, dropped = _generate(space, operator, n_funcs, sensors, interp, key,
                                                  chunk, dtype, on_nonfinite)
    points = np.asarray(operator.output_points)
    kept = inputs.shape[0]
    idx = np.asarray(jax.random.randint(jax.random.fold_in(key, 2**31 - 1),
                                        (kept, points_per_func), 0, points.shape[0]))
    rows = np.repeat(np.arange(kept), points_per_func)
    flat = idx.reshape(-1)
    return UnalignedDataset(
        inputs=inputs[rows],
        sensors=sensors,
        points=points[flat],
        outputs=outputs[rows, flat],
        metadata=_metadata(space, operator, interp, "unaligned",
                           {"points_per_func": points_per_func, "dropped_nonfinite": dropped}),
    )


# --- files ------------------------------------------------------------------------------------


_ARRAYS = ("inputs", "sensors", "points", "outputs")
_LAYOUTS = {"aligned": AlignedDataset, "unaligned": UnalignedDataset}
# What NumPy and zipfile raise for a file that exists but is not a readable archive (a
# truncated or corrupted zip, an empty file, a .npy or pickle, a member that is not an array).
# (zipfile raises RuntimeError for a member flagged as encrypted.)
_CORRUPT = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError,
            RuntimeError, pickle.UnpicklingError, struct.error)


def save(path: str | os.PathLike, dataset: AlignedDataset | UnalignedDataset) -> None:
    """Write ``dataset`` to ``path`` (``.npz``), atomically (temporary file, then rename).

    Raises:
        TypeError: if ``dataset`` is not an :class:`AlignedDataset` or :class:`UnalignedDataset`.
    """
    if not isinstance(dataset, (AlignedDataset, UnalignedDataset)):
        raise TypeError(f"dataset must be an AlignedDataset or UnalignedDataset, got "
                        f"{type(dataset).__name__}")
    path = os.fspath(path)
    layout = "aligned" if isinstance(dataset, AlignedDataset) else "unaligned"
    meta = dict(dataset.metadata, format=FORMAT, layout=layout)
    tmp = path + ".tmp.npz"
    np.savez(
        tmp,
        inputs=np.asarray(dataset.inputs),
        sensors=np.asarray(dataset.sensors),
        points=np.asarray(dataset.points),
        outputs=np.asarray(dataset.outputs),
        metadata=np.array(json.dumps(meta)),
    )
    os.replace(tmp, path)


class _NotNpz(ValueError):
    """A file NumPy can read that is not an ``.npz`` archive."""


def _read_npz(path: str, keys, *, allow_pickle: bool = False
              ) -> tuple[list[str], dict[str, Any]]:
    """The names in the ``.npz`` at ``path`` and the members among ``keys``, read into memory.

    A missing or unreadable file keeps its ``OSError`` (``FileNotFoundError``, ...); a file
    that is not a readable ``.npz`` archive gives a ``ValueError`` naming it and the problem.
    """
    member = None
    with open(path, "rb") as f:  # file-system errors propagate unchanged
        try:
            obj = np.load(f, allow_pickle=allow_pickle)
            if not isinstance(obj, np.lib.npyio.NpzFile):
                what = ("a single .npy array" if isinstance(obj, np.ndarray)
                        else f"a pickled {type(obj).__name__}")
                raise _NotNpz(f"it holds {what}, not a .npz archive of named arrays")
            with obj as z:
                files, arrays = list(z.files), {}
                for member in (k for k in keys if k in files):
                    arrays[member] = z[member]
                return files, arrays
        except _CORRUPT as e:
            f.seek(0)
            head = f.read(6)
            zip_level = (zipfile.BadZipFile, zlib.error, struct.error, EOFError, OSError)
            if isinstance(e, _NotNpz):
                problem = str(e)
            elif member is not None and not isinstance(e, zip_level):
                problem = f"array {member!r} cannot be read ({type(e).__name__}: {e})"
            elif not head:
                problem = "the file is empty"
            elif head.startswith(b"PK"):
                problem = f"truncated or corrupted zip archive ({type(e).__name__}: {e})"
            elif head != b"\x93NUMPY":
                problem = f"it starts with {head!r}, neither a zip nor a .npy header"
            else:
                problem = f"corrupted .npy data ({type(e).__name__}: {e})"
            raise ValueError(f"{path!r} is not a readable .npz archive: {problem}") from e


def _parse_metadata(path: str, raw) -> dict:
    raw = np.asarray(raw)
    if raw.ndim != 0 or raw.dtype.kind not in "US":
        raise ValueError(f"{path!r}: metadata must be a JSON string (a 0-d str array), got an "
                         f"array of dtype {raw.dtype} and shape {raw.shape}")
    try:
        text = raw[()].decode("utf-8") if raw.dtype.kind == "S" else str(raw[()])
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path!r}: metadata is not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path!r}: metadata must be a JSON object, got "
                         f"{type(meta).__name__} {meta!r:.80}")
    return meta


def load(path: str | os.PathLike) -> AlignedDataset | UnalignedDataset:
    """Read a dataset written by :func:`save` (never unpickles).

    Raises:
        FileNotFoundError: (or another ``OSError``) if the file cannot be opened.
        ValueError: naming the file and the problem, if it is not a valid opdiff dataset: an
            empty, truncated or corrupted file, not an ``.npz`` archive (a ``.npy``, random
            bytes, pickled data), missing arrays, metadata that is not a JSON object, another
            format, a ``layout`` other than ``"aligned"``/``"unaligned"``, arrays that are not
            real numeric, or arrays whose shapes disagree with the layout or hold NaN/inf.
    """
    p = os.fspath(path)
    files, arrays = _read_npz(p, _ARRAYS + ("metadata",))
    missing = sorted(set(_ARRAYS + ("metadata",)) - set(files))
    if missing:
        raise ValueError(f"{p!r} is not an opdiff dataset: missing {missing} (has {files})")
    meta = _parse_metadata(p, arrays.pop("metadata"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{p!r}: unknown format {meta.get('format')!r}, expected {FORMAT!r}")
    layout = meta.get("layout")
    if layout not in _LAYOUTS:
        raise ValueError(f"{p!r}: unknown layout {layout!r}, expected one of {tuple(_LAYOUTS)}")
    for name in _ARRAYS:
        dt = arrays[name].dtype
        if dt == np.bool_ or not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)):
            raise ValueError(f"{p!r}: {name} must be a real numeric array, got dtype {dt}")
    try:
        return _LAYOUTS[layout](**arrays, metadata=meta)
    except ValueError as e:
        raise ValueError(f"{p!r}: invalid {layout} dataset: {e}") from e


def load_deepxde_unaligned(path: str | os.PathLike, split: str = "train") -> UnalignedDataset:
    """Read DeepXDE's unaligned (triplet) ``.npz``: keys ``X_{split}0`` (branch inputs
    ``[n, m]``), ``X_{split}1`` (trunk inputs ``[n, d]``) and ``y_{split}`` (``[n, 1]``).

    The sensors are not stored in this format; they are set to ``m`` equispaced points on
    [0, 1], DeepXDE's antiderivative convention, and recorded as assumed in the metadata.

    Raises:
        ValueError: for a bad ``split``, or (naming the file) a file that is not a readable
            ``.npz``, lacks the keys, or holds arrays of the wrong shapes or non-finite values.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    p = os.fspath(path)
    keys = (f"X_{split}0", f"X_{split}1", f"y_{split}")
    files, arrays = _read_npz(p, keys)
    missing = [k for k in keys if k not in files]
    if missing:
        raise ValueError(f"{p!r} lacks DeepXDE keys {missing}; has {files}")
    u, y, s = (arrays[k] for k in keys)
    try:
        if u.ndim != 2:
            raise ValueError(f"{keys[0]} must be 2-D (n, m), got shape {u.shape}")
        outputs = s[:, 0] if s.ndim == 2 and s.shape[1] == 1 else s
        return UnalignedDataset(u, np.linspace(0.0, 1.0, u.shape[1]), _as_points(y), outputs,
                                {"source": "deepxde-unaligned", "sensors_assumed": True})
    except ValueError as e:
        raise ValueError(f"{p!r}: invalid DeepXDE unaligned data: {e}") from e


def load_deepxde_aligned(path: str | os.PathLike, *, allow_pickle: bool = False) -> AlignedDataset:
    """Read DeepXDE's aligned ``.npz`` (keys ``X`` = object array ``(branch [n, m], trunk
    [P, d])`` and ``y`` ``[n, P]``).

    ``X`` is a pickled object array, and unpickling a file can run arbitrary code. It is
    therefore refused unless the caller passes ``allow_pickle=True`` for a file they trust.

    Raises:
        ValueError: if ``allow_pickle`` is not set, or (naming the file) the file is not a
            readable ``.npz`` or does not have this layout.
    """
    if allow_pickle is not True:
        raise ValueError(
            "DeepXDE's aligned format stores X as a pickled object array; loading it can "
            "execute code from the file. Pass allow_pickle=True only for files you trust."
        )
    p = os.fspath(path)
    files, arrays = _read_npz(p, ("X", "y"), allow_pickle=allow_pickle)
    if "X" not in files or "y" not in files:
        raise ValueError(f"{p!r} lacks DeepXDE aligned keys X, y; has {files}")
    x, y = arrays["X"], np.asarray(arrays["y"])
    try:
        if x.ndim != 1 or len(x) != 2:
            raise ValueError(f"X must hold (branch inputs, trunk inputs), got shape {x.shape}")
        u, pts = np.asarray(x[0], np.float64), _as_points(np.asarray(x[1], np.float64))
        if u.ndim != 2:
            raise ValueError(f"X[0] (branch inputs) must be 2-D (n, m), got shape {u.shape}")
        return AlignedDataset(u, np.linspace(0.0, 1.0, u.shape[1]), pts, y,
                              {"source": "deepxde-aligned", "sensors_assumed": True})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{p!r}: invalid DeepXDE aligned data: {e}") from e
