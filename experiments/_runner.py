"""The experiment runner behind ``python -m experiments``.

    python -m experiments list
    python -m experiments run NAME [--preset smoke|quick|full] [--out DIR] [--set key=value ...]
    python -m experiments all [--preset ...] [--out DIR] [--strict]

Bad input (unknown experiment or preset, malformed ``--set``, unknown config key, a value of
the wrong type) exits with status 2 and one line on stderr; a failure inside an experiment
exits 1 with one line (set ``OPDIFF_TRACEBACK=1`` to see the traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import time
import typing
from pathlib import Path

from experiments import EXPERIMENTS
from experiments._report import Report, dumps, validate

PRESETS = ("smoke", "quick", "full")
DEFAULT_PRESET = "quick"
DEFAULT_OUT = "results"


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def load(name: str):
    if name not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"experiments.{name}")


def _parse_value(key: str, text: str, hint):
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint in (int, float, str):
            return hint(text)
        if origin is tuple:
            (item, *rest) = typing.get_args(hint)
            parts = [p for p in text.split(",") if p.strip()]
            return tuple(_parse_value(key, p.strip(), item) for p in parts)
    except ValueError:
        raise UsageError(
            f"--set {key}={text}: expected {getattr(hint, '__name__', hint)}"
        ) from None
    raise UsageError(f"--set {key}: config field of type {hint} cannot be set from the CLI")


def make_config(module, preset: str, sets: list[str]):
    """The preset's config with ``key=value`` overrides applied (types from the dataclass)."""
    if preset not in module.PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose from {', '.join(module.PRESETS)}")
    cfg = module.PRESETS[preset]
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for item in sets:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"malformed --set {item!r}; expected key=value")
        if key not in hints:
            raise UsageError(
                f"unknown config key {key!r} for {module.NAME}; keys: {', '.join(hints)}"
            )
        changes[key] = _parse_value(key, value, hints[key])
    try:
        return dataclasses.replace(cfg, **changes)
    except (ValueError, TypeError) as err:
        raise UsageError(f"invalid config for {module.NAME}: {err}") from None


def _device() -> str:
    import jax

    devs = jax.devices()
    kind = devs[0].device_kind
    return f"{len(devs)}x {devs[0].platform}:{kind}"


def run_one(name: str, preset: str, out: str | os.PathLike, sets: list[str] | None = None) -> dict:
    """Run experiment ``name`` and write ``OUT/NAME/results.json``; return the record."""
    module = load(name)
    cfg = make_config(module, preset, sets or [])
    import jax

    out_dir = Path(out) / name
    out_dir.mkdir(parents=True, exist_ok=True)
    x64_before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", module.DTYPE == "float64")
    t0 = time.perf_counter()
    try:
        report: Report = module.run(cfg, out_dir)
    finally:
        jax.config.update("jax_enable_x64", x64_before)
    record = {
        "name": name,
        "preset": preset,
        "config": dataclasses.asdict(cfg),
        "metrics": report.metrics,
        "bounds": report.bounds,
        "checks": [dataclasses.asdict(c) for c in report.checks],
        "figures": list(report.figures),
        "runtime_s": time.perf_counter() - t0,
        "device": _device(),
        "jax_version": jax.__version__,
        "dtype": module.DTYPE,
    }
    validate(record)
    text = dumps(record)
    tmp = out_dir / "results.json.tmp"
    tmp.write_text(text)
    os.replace(tmp, out_dir / "results.json")
    return record


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v[:6]) + (", …" if len(v) > 6 else "") + "]"
    return str(v)


def summary_markdown(records: list[dict]) -> str:
    lines = [
        "# opdiff results summary",
        "",
        "| experiment | claim | measured | bound | holds |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        for c in r["checks"]:
            mark = "yes" if c["holds"] else "**NO**"
            lines.append(
                f"| {r['name']} | {c['claim']} | {_fmt(c['measured'])} | {_fmt(c['bound'])} | {mark} |"
            )
    return "\n".join(lines) + "\n"


def _print_checks(record: dict):
    n_ok = sum(c["holds"] for c in record["checks"])
    print(f"{record['name']} [{record['preset']}] {record['runtime_s']:.1f}s: "
          f"{n_ok}/{len(record['checks'])} claims hold")
    for c in record["checks"]:
        print(f"  [{'ok' if c['holds'] else 'FAIL'}] {c['claim']}: "
              f"measured {_fmt(c['measured'])}, bound {_fmt(c['bound'])}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m experiments", description="Run opdiff experiments.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="list the experiments")
    r = sub.add_parser("run", help="run one experiment")
    r.add_argument("name")
    r.add_argument("--preset", default=DEFAULT_PRESET)
    r.add_argument("--out", default=DEFAULT_OUT)
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    a = sub.add_parser("all", help="run every experiment and write OUT/summary.md")
    a.add_argument("--preset", default=DEFAULT_PRESET)
    a.add_argument("--out", default=DEFAULT_OUT)
    a.add_argument("--strict", action="store_true", help="exit 1 if any claim fails")
    return p


def _enable_compilation_cache() -> None:
    """Cache XLA compilations on disk (``~/.cache/opdiff/jax``, or ``JAX_COMPILATION_CACHE_DIR``)
    so that a second run of an experiment skips most of its compile time; jax's own default
    is no cache. Set ``OPDIFF_NO_COMPILE_CACHE=1`` to turn it off."""
    if os.environ.get("OPDIFF_NO_COMPILE_CACHE"):
        return
    import jax

    path = os.environ.get("JAX_COMPILATION_CACHE_DIR",
                          str(Path.home() / ".cache" / "opdiff" / "jax"))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", 1.0)))


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise UsageError("expected a command: list, run NAME, or all")
        if args.command == "list":
            for name in EXPERIMENTS:
                m = load(name)
                print(f"{name:24s} {m.DESCRIPTION}")
            return 0
        _enable_compilation_cache()
        if args.command == "run":
            module = load(args.name)
            make_config(module, args.preset, args.sets)  # validate before any work
            record = run_one(args.name, args.preset, args.out, args.sets)
            _print_checks(record)
            print(f"wrote {Path(args.out) / args.name / 'results.json'}")
            return 0
        if args.preset not in PRESETS:
            raise UsageError(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
        records = []
        for name in EXPERIMENTS:
            record = run_one(name, args.preset, args.out)
            _print_checks(record)
            records.append(record)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "summary.md").write_text(summary_markdown(records))
        failed = sum(not c["holds"] for r in records for c in r["checks"])
        print(f"wrote {Path(args.out) / 'summary.md'}: {failed} claim(s) failed")
        return 1 if (failed and args.strict) else 0
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one readable line for the user, no traceback
        if os.environ.get("OPDIFF_TRACEBACK"):
            raise
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
