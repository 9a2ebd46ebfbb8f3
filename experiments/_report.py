"""The record of a run (``results.json``), its JSON form, and the saved results.

An experiment's ``run(cfg, key)`` returns ``results`` (a dict of arrays, scalars, strings,
lists); ``claims(cfg, results)`` returns :class:`opdiff.claims.Claim` objects;
``plot(results, out_dir)`` the file names it drew. The runner splits the results
(:func:`split_results`: JSON for everything small, one ``results.npz`` for the arrays, no
pickle), reloads them (:func:`load_results`), and only then evaluates the claims and draws, so
``python -m experiments plot NAME`` redraws every figure from the saved files alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

SCHEMA_KEYS = (
    "name",
    "preset",
    "config",
    "results",
    "checks",
    "figures",
    "runtime_s",
    "device",
    "jax_version",
    "dtype",
)
CLAIM_KEYS = ("claim", "kind", "measured", "bound", "tightness", "holds", "detail")
ARRAYS_FILE = "results.npz"


def to_jsonable(obj: Any) -> Any:
    """numpy/jax scalars and arrays to plain Python; non-finite floats to strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        arr = np.asarray(obj)
        return to_jsonable(arr.tolist()) if arr.ndim else to_jsonable(arr.item())
    return _plain_scalar(obj, repr, default=repr)


_NOT_A_SCALAR = object()


def _plain_scalar(obj: Any, nonfinite, *, default=None) -> Any:
    """A Python bool/int/float/str/None for a (numpy) scalar; ``nonfinite(x)`` for a NaN or
    infinite float; ``default(obj)`` (or a sentinel) for anything else."""
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else nonfinite(x)
    if obj is None or isinstance(obj, str):
        return obj
    return _NOT_A_SCALAR if default is None else default(obj)


def dumps(record: dict) -> str:
    return json.dumps(to_jsonable(record), indent=2, allow_nan=False)


def validate(record: dict) -> None:
    """Raise ``ValueError`` if ``record`` does not follow the results.json schema."""
    missing = [k for k in SCHEMA_KEYS if k not in record]
    if missing:
        raise ValueError(f"results.json is missing keys {missing}")
    for k in ("config", "results"):
        if not isinstance(record[k], dict):
            raise ValueError(f"results.json[{k!r}] must be an object")
    if not isinstance(record["checks"], list) or not record["checks"]:
        raise ValueError("results.json['checks'] must be a non-empty list")
    from opdiff.claims import KINDS

    for c in record["checks"]:
        if set(c) != set(CLAIM_KEYS) or not isinstance(c["holds"], bool):
            raise ValueError(f"malformed check {c!r}: needs {CLAIM_KEYS} with a boolean holds")
        if c["kind"] not in KINDS:
            raise ValueError(f"malformed check {c!r}: kind must be one of {KINDS}")


_ARRAY, _FLOAT = "__array__", "__float__"  # placeholders in the JSON form of the results


def split_results(results: dict, prefix: str = "") -> tuple[Any, dict[str, np.ndarray]]:
    """``results`` as (JSON-ready tree, arrays): every array with ``ndim >= 1`` goes to the
    arrays under its ``/``-joined key path and is replaced by ``{"__array__": path}``; a
    non-finite float becomes ``{"__float__": "nan"|"inf"|"-inf"}``, so the round trip through
    :func:`join_results` is exact."""
    arrays: dict[str, np.ndarray] = {}

    def walk(obj, path):
        if isinstance(obj, dict):
            for k in obj:
                if not isinstance(k, str) or "/" in k or not k:
                    raise ValueError(f"results keys must be non-empty strings without '/', got "
                                     f"{k!r} at {path or 'the top'}")
            return {k: walk(v, f"{path}/{k}" if path else k) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(obj)]
        if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
            arr = np.asarray(obj)
            if arr.ndim:
                if arr.dtype == object:
                    raise TypeError(f"results[{path!r}] is an object array; save numbers")
                arrays[path] = arr
                return {_ARRAY: path}
            obj = arr.item()
        plain = _plain_scalar(obj, lambda x: {_FLOAT: repr(x)})
        if plain is not _NOT_A_SCALAR:
            return plain
        raise TypeError(f"results[{path!r}] is a {type(obj).__name__}; results hold arrays, "
                        f"numbers, strings, lists and dicts only")

    if not isinstance(results, dict):
        raise TypeError(f"run must return a dict of results, got {type(results).__name__}")
    return walk(results, prefix), arrays


def join_results(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of :func:`split_results`."""
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY}:
            return arrays[tree[_ARRAY]]
        if set(tree) == {_FLOAT}:
            return float(tree[_FLOAT])
        return {k: join_results(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_results(v, arrays) for v in tree]
    return tree


def load_results(out_dir) -> tuple[dict, dict]:
    """``(record, results)`` of a saved run in ``out_dir`` (``results.json`` and, if the run had
    arrays, ``results.npz``; nothing is unpickled)."""
    from pathlib import Path

    out_dir = Path(out_dir)
    record = json.loads((out_dir / "results.json").read_text())
    arrays = {}
    if (out_dir / ARRAYS_FILE).exists():
        with np.load(out_dir / ARRAYS_FILE, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return record, join_results(record["results"], arrays)


def fmt(v) -> str:
    """A claim's number for a table: 4 significant digits, lists cut after 6 entries,
    ``None`` as a dash (summary.md, the console and index.html show the same text)."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x) for x in v[:6]) + (", …" if len(v) > 6 else "") + "]"
    return str(v)


def measured_text(check: dict) -> str:
    """A claim record's measured value, and for a finding its standard error (``value ± se``)."""
    se = (check.get("detail") or {}).get("se") if check.get("kind") == "finding" else None
    return fmt(check.get("measured")) + ("" if se is None else f" ± {fmt(se)}")


def verdict_table(records_by_seed: dict[int, dict]) -> tuple[list[list], int, int]:
    """Rows ``[claim, verdict per seed, measured per seed]`` for the claims whose verdict
    differs, the number of claims compared and the number that agree."""
    seeds = sorted(records_by_seed)
    first = records_by_seed[seeds[0]]["checks"]
    counts = {s: len(records_by_seed[s]["checks"]) for s in seeds}
    if len(set(counts.values())) != 1:
        raise ValueError(f"the seeds state different numbers of claims: {counts}")
    rows, agree = [], 0
    for i, claim in enumerate(first):
        holds = [records_by_seed[s]["checks"][i]["holds"] for s in seeds]
        if len(set(holds)) == 1:
            agree += 1
            continue
        measured = [records_by_seed[s]["checks"][i]["measured"] for s in seeds]
        rows.append([claim["claim"][:90], " / ".join("yes" if h else "NO" for h in holds),
                     " / ".join(str(m)[:24] for m in measured)])
    return rows, len(first), agree
