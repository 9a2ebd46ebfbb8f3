"""The result record every experiment returns, and its JSON form."""

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
    "metrics",
    "bounds",
    "checks",
    "figures",
    "runtime_s",
    "device",
    "jax_version",
    "dtype",
)
CHECK_KEYS = ("claim", "measured", "bound", "holds")


@dataclasses.dataclass(frozen=True)
class Check:
    """One claim an experiment tests: ``measured`` against ``bound``; ``holds`` is the verdict."""

    claim: str
    measured: Any
    bound: Any
    holds: bool


@dataclasses.dataclass
class Report:
    """What ``run`` returns: named metrics, named bounds, checks and figure file names."""

    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    bounds: dict[str, Any] = dataclasses.field(default_factory=dict)
    checks: list[Check] = dataclasses.field(default_factory=list)
    figures: list[str] = dataclasses.field(default_factory=list)

    def check(self, claim: str, measured: Any, bound: Any, holds: bool) -> None:
        self.checks.append(Check(claim, measured, bound, bool(holds)))


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
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else repr(x)
    if obj is None or isinstance(obj, str):
        return obj
    return repr(obj)


def dumps(record: dict) -> str:
    return json.dumps(to_jsonable(record), indent=2, allow_nan=False)


def validate(record: dict) -> None:
    """Raise ``ValueError`` if ``record`` does not follow the results.json schema."""
    missing = [k for k in SCHEMA_KEYS if k not in record]
    if missing:
        raise ValueError(f"results.json is missing keys {missing}")
    for k in ("config", "metrics", "bounds"):
        if not isinstance(record[k], dict):
            raise ValueError(f"results.json[{k!r}] must be an object")
    if not isinstance(record["checks"], list) or not record["checks"]:
        raise ValueError("results.json['checks'] must be a non-empty list")
    for c in record["checks"]:
        if set(c) != set(CHECK_KEYS) or not isinstance(c["holds"], bool):
            raise ValueError(f"malformed check {c!r}: needs {CHECK_KEYS} with a boolean holds")
