"""The experiment runner behind ``python -m experiments``.

    python -m experiments list
    python -m experiments run NAME [--preset smoke|quick|full] [--out DIR] [--set key=value ...]
                                   [--force]
    python -m experiments all [--preset ...] [--out DIR] [--strict] [--force] [--jobs N|auto]
                              [--seed N]
    python -m experiments plot NAME [--out DIR]     # redraw figures from the saved results
    python -m experiments compare DIR_A DIR_B [--z Z]   # two runs, e.g. two seeds

Bad input exits with status 2 and one line on stderr, before any computation: an unknown
experiment or preset, a malformed ``--set``, an unknown config key, a value that breaks the
field's declared rule (its type and range, from the ``Config`` annotations, see
``experiments/_config.py``: e.g. ``eval_points=0``, ``mlp_lr=-0.01``, ``alpha=nan``, a tuple
``1,,2`` with an empty element), a relation between fields that the experiment's
``__post_init__`` refuses, a configuration whose largest array would not fit in this
machine's memory (e.g. ``mlp_points=1000000000000``), an empty ``--out``. The line names the
key, the expected and the given value. A failure inside an experiment exits 1 with one line
(set ``OPDIFF_TRACEBACK=1`` to see the traceback).

Earlier results are never replaced silently: ``run`` refuses an ``--out`` that already holds
``NAME/results.json`` and ``all`` one that holds any experiment's results (exit 2, before any
work), unless ``--force`` is given; then the old ``results.json`` is removed first, the run
writes its figures and a new ``results.json``, and figures of the old run that the new one
did not draw are deleted. (Refusing, rather than writing a new run folder, keeps the one
layout ``OUT/NAME/results.json`` that ``summary.md``, the notes and scripts rely on.)
``all --jobs N`` runs N experiments at a time, each in a worker process of its own (started
with ``spawn``; a worker runs one experiment after another and keeps its compilations), and
prints each experiment's claims when it ends; its console output goes to ``OUT/NAME/log.txt``.
Experiments start longest first, by the run times the last ``all`` of the same preset recorded
in ``~/.cache/opdiff/runtimes.json`` (the first run goes in registry order).
The numbers do not depend on ``--jobs``: every experiment runs from its own key in a process
that sees the same devices, with NumPy's BLAS on one thread (:func:`_one_blas_thread`).
``auto`` (the default) is 2 on a machine with two or more CPU cores and no accelerator plugin
installed, else 1: one experiment keeps 1.1-1.5 of the two cores of the reference CPU busy,
and two processes on one GPU would contend for its memory.
With one worker (or one experiment) everything runs in this process, as before.

``results.json``, ``summary.md`` and the figures are written
atomically (a temporary file in the same folder, then a rename), so an interrupted or failed
write never leaves a truncated file in place of a complete one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib
import importlib.metadata
import json
import math
import multiprocessing
import os
import re
import secrets
import sys
import time
from pathlib import Path

from . import EXPERIMENTS
from . import _config
from ._html import build_report
from ._report import (ARRAYS_FILE, dumps, fmt, measured_text, join_results, load_results,
                                 split_results, validate, verdict_table)

PRESETS = ("smoke", "quick", "full")
DEFAULT_PRESET = "quick"
DEFAULT_OUT = "results"


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def load(name: str):
    if name not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__package__}.{name}")


def make_config(module, preset: str, sets: list[str]):
    """The preset's config with ``key=value`` overrides applied, validated field by field
    (types and ranges from the ``Config`` annotations), by its ``__post_init__`` (relations
    between fields) and by the size guard; any violation is a :class:`UsageError` naming the
    key."""
    if preset not in module.PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose from {', '.join(module.PRESETS)}")
    cfg = module.PRESETS[preset]
    cls = type(cfg)
    try:
        rules = _config.rules(cls)
    except TypeError as err:  # a Config declaration the rules do not cover: a bug, not input
        raise TypeError(f"{module.NAME}.Config: {err}") from None
    changes, texts = {}, {}
    for item in sets:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"malformed --set {item!r}; expected key=value")
        if key not in rules:
            raise UsageError(
                f"unknown config key {key!r} for {module.NAME}; keys: {', '.join(rules)}"
            )
        try:
            changes[key] = _config.parse_value(cls, key, value)
            _config.check_value(cls, key, changes[key], text=value)
        except _config.ConfigError as err:
            raise UsageError(f"invalid config for {module.NAME}: {err}") from None
        texts[key] = value
    for key in rules.keys() - changes.keys():  # the preset's own values (a bug if bad)
        try:
            _config.check_value(cls, key, getattr(cfg, key))
        except _config.ConfigError as err:
            raise UsageError(f"invalid preset {preset!r} of {module.NAME}: {err}") from None
    set_note = ", ".join(f"{k}={v}" for k, v in texts.items())
    try:
        cfg = dataclasses.replace(cfg, **changes)
    except Exception as err:  # __post_init__: relations between fields
        msg = str(err) or type(err).__name__
        if texts and not any(k in msg for k in texts):
            msg += f" (after --set {set_note})"
        raise UsageError(f"invalid config for {module.NAME}: {msg}") from None
    try:
        _config.check_size(cfg, getattr(module, "DTYPE", "float32"))
    except _config.ConfigError as err:
        where = f"--set {set_note}: " if set_note else f"preset {preset!r}: "
        raise UsageError(f"invalid config for {module.NAME}: {where}{err}") from None
    return cfg


def check_out(out, names, *, force: bool = False) -> Path:
    """The output folder ``out`` as a path; a :class:`UsageError` if it is empty or a file, or
    if it already holds the results of one of the experiments ``names`` and ``force`` is
    false."""
    if out is None or not str(out).strip():
        raise UsageError("--out must name a folder, got an empty string")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if force:
        return path
    found = [path / n / "results.json" for n in names if (path / n / "results.json").exists()]
    if found:
        what = (f"{found[0]} holds the results of an earlier run" if len(found) == 1 else
                f"{path} holds the results of {len(found)} earlier runs ({found[0]}, ...)")
        raise UsageError(f"{what}; pass --force to replace them, or choose another --out")
    return path


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    # not tempfile.mkstemp: its files are private (0600); this one gets the usual umask
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _device() -> str:
    import jax

    devs = jax.devices()
    kind = devs[0].device_kind
    return f"{len(devs)}x {devs[0].platform}:{kind}"


def run_one(name: str, preset: str, out: str | os.PathLike, sets: list[str] | None = None,
            *, force: bool = False) -> dict:
    """Run experiment ``name`` and write ``OUT/NAME/results.json``; return the record.

    Refuses (:class:`UsageError`) to replace the results of an earlier run unless ``force``.
    """
    module = load(name)
    cfg = make_config(module, preset, sets or [])
    out_dir = check_out(out, [name], force=force) / name
    import jax

    out_dir.mkdir(parents=True, exist_ok=True)
    old_figures = []
    old = out_dir / "results.json"
    if old.exists():  # force: the old record goes first, so it never describes new figures
        try:
            old_figures = list(json.loads(old.read_text()).get("figures", []))
        except (ValueError, AttributeError, OSError):
            pass
        old.unlink()
    (out_dir / ARRAYS_FILE).unlink(missing_ok=True)
    x64_before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", module.DTYPE == "float64")
    t0 = time.perf_counter()
    try:
        with _one_blas_thread():
            record = _run(module, name, cfg, out_dir, t0)
    finally:
        jax.config.update("jax_enable_x64", x64_before)
    record["preset"] = preset
    validate(record)
    _write_atomic(out_dir / "results.json", dumps(record))
    for fig in set(old_figures) - set(record["figures"]):
        stale = out_dir / Path(str(fig)).name
        if stale.is_file():
            stale.unlink()
    return record


def _one_blas_thread():
    """NumPy's BLAS limited to one thread while an experiment runs (``threadpoolctl``, a
    scikit-learn dependency), so that its numbers do not depend on the machine's core count
    or on ``all --jobs``: a multithreaded BLAS splits some reductions by thread, and a network
    trained on the data amplifies that last-bit difference to a percent-level one in its error
    (measured: DeepONet test MSEs moved by 1-3 % between one and two BLAS threads). It also
    keeps two ``all`` workers from each spinning a BLAS thread per core (the float64
    random-feature experiments ran 4-6x slower that way)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _record(module, name, preset, cfg, t0, **parts) -> dict:
    import jax

    return {"name": name, "preset": preset, "config": dataclasses.asdict(cfg), **parts,
            "runtime_s": time.perf_counter() - t0, "device": _device(),
            "jax_version": jax.__version__, "dtype": module.DTYPE}


def experiment_key(module, cfg):
    """``jax.random.key(cfg.seed)``, with the generator named by the config's ``prng`` field or
    the module's ``PRNG`` constant when there is one (rbg keys compile faster on a CPU)."""
    import jax

    impl = getattr(cfg, "prng", None) or getattr(module, "PRNG", None)
    return jax.random.key(cfg.seed) if impl is None else jax.random.key(cfg.seed, impl=impl)


def _run(module, name, cfg, out_dir: Path, t0: float) -> dict:
    """run -> save -> reload -> claims -> plot: claims and figures see only saved results."""
    import numpy as np

    results = module.run(cfg, experiment_key(module, cfg))
    tree, arrays = split_results(results)
    if arrays:
        tmp = out_dir / f".{ARRAYS_FILE}.{os.getpid()}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, out_dir / ARRAYS_FILE)
    results = join_results(tree, arrays)
    checks = [c.as_record() for c in module.claims(cfg, results)]
    figures = list(module.plot(results, out_dir))
    return _record(module, name, None, cfg, t0, results=tree, checks=checks, figures=figures)


def redraw(name: str, out: str | os.PathLike) -> list[str]:
    """Draw the figures of experiment ``name`` again from ``OUT/NAME/results.json`` (+ .npz)."""
    module = load(name)
    out_dir = Path(out) / name
    if not (out_dir / "results.json").exists():
        raise UsageError(f"no saved results of {name} in {out_dir}; run it first")
    record, results = load_results(out_dir)
    if "results" not in record:
        raise UsageError(f"{out_dir / 'results.json'} was written by an older runner; rerun {name}")
    return list(module.plot(results, out_dir))


def report(out: str | os.PathLike) -> Path:
    """Write ``OUT/index.html`` (:func:`experiments._html.build_report`) from the saved
    results; a folder without results is a :class:`UsageError`."""
    descriptions = {}
    for name in EXPERIMENTS:
        try:
            descriptions[name] = load(name).DESCRIPTION
        except Exception:  # a module that no longer imports still gets its section
            descriptions[name] = ""
    try:
        return build_report(out, order=EXPERIMENTS, descriptions=descriptions)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None


def compare(out_a, out_b, z: float = 3.0) -> tuple[str, int]:
    """Set two runs side by side (e.g. ``all --seed 0`` and ``all --seed 1``): the claims whose
    verdict differs, and the findings that moved by more than ``z`` combined standard errors
    (:func:`opdiff.claims.finding_shift`). Returns ``(markdown text, verdict flips)``;
    experiments present in only one run are named, claims are matched by position."""
    from opdiff.claims import finding_shift

    dirs = [Path(out_a), Path(out_b)]
    runs = []
    for d in dirs:
        if not d.is_dir():
            raise UsageError(f"no results folder {d}")
        runs.append({p.parent.name: json.loads(p.read_text())
                     for p in sorted(d.glob("*/results.json"))})
        if not runs[-1]:
            raise UsageError(f"no NAME/results.json in {d}")
    a, b = runs
    order = [n for n in EXPERIMENTS if n in a or n in b]
    order += sorted((set(a) | set(b)) - set(order))
    flips, moved, lines = [], [], []
    n_claims = n_findings = n_shift = 0
    for name in order:
        if name not in a or name not in b:
            lines.append(f"- {name}: only in {dirs[0] if name in a else dirs[1]}")
            continue
        ca, cb = a[name]["checks"], b[name]["checks"]
        if len(ca) != len(cb):
            lines.append(f"- {name}: {len(ca)} against {len(cb)} claims, not compared")
            continue
        seeds = (a[name].get("config", {}).get("seed"), b[name].get("config", {}).get("seed"))
        rows, n, _ = verdict_table({0: a[name], 1: b[name]})
        n_claims += n
        flips += [f"| {name} | {' | '.join(_cell(x) for x in row)} |" for row in rows]
        for x, y in zip(ca, cb):
            shift = finding_shift(x, y)
            if x.get("kind") == "finding":
                n_findings += 1
            if shift is not None:
                n_shift += 1
                if shift["z"] > z:
                    moved.append((shift["z"], f"| {name} | {_cell(x['claim'])} | "
                                  f"{measured_text(x)} | {measured_text(y)} | "
                                  f"{shift['z']:.1f} | {'yes' if shift['same_sign'] else 'no'} |"))
        if seeds[0] == seeds[1]:
            lines.append(f"- {name}: both runs have seed {seeds[0]}")
    text = [f"# {dirs[0]} against {dirs[1]}", "",
            f"{n_claims} claims compared: {len(flips)} with a different verdict. "
            f"{n_findings} findings, {n_shift} with a standard error: {len(moved)} moved by "
            f"more than {z:g} combined SEs (an SE over test functions at one trained model "
            "does not cover the training seed).", ""]
    if flips:
        text += ["| experiment | claim | holds A / B | measured A / B |", "|---|---|---|---|",
                 *flips, ""]
    if moved:
        text += ["| experiment | finding | A | B | z | same sign |", "|---|---|---|---|---|---|",
                 *[row for _, row in sorted(moved, key=lambda m: -m[0])], ""]
    text += lines
    return "\n".join(text).rstrip() + "\n", len(flips)


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def summary_markdown(records: list[dict]) -> str:
    lines = [
        "# opdiff results summary",
        "",
        "| experiment | claim | kind | measured | bound | tightness | holds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        for c in r["checks"]:
            mark = "yes" if c["holds"] else "**NO**"
            tight = c.get("tightness")
            claim = str(c["claim"]).replace("|", "\\|")  # a |z| must not split the row
            lines.append(
                f"| {r['name']} | {claim} | {c.get('kind', '–')} | {measured_text(c)} | "
                f"{fmt(c['bound'])} | {'–' if tight is None else fmt(tight)} | {mark} |"
            )
    return "\n".join(lines) + "\n"


def _accelerator_installed() -> bool:
    """Whether a jax accelerator plugin (CUDA, ROCm, TPU) is installed, or ``JAX_PLATFORMS``
    names a platform other than the CPU; read without starting a jax backend."""
    platforms = os.environ.get("JAX_PLATFORMS", "").strip().lower()
    if platforms:
        return platforms != "cpu"
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith(("jax-cuda", "jax-rocm", "libtpu", "jax-tpu")):
            return True
    return False


def default_jobs() -> int:
    """``--jobs auto``: 2 on a CPU-only machine with at least two cores, else 1."""
    return 2 if (os.cpu_count() or 1) >= 2 and not _accelerator_installed() else 1


def parse_jobs(text: str) -> int:
    """``--jobs``: ``auto`` (:func:`default_jobs`) or a positive int; a :class:`UsageError`
    naming the option otherwise."""
    if str(text).strip().lower() == "auto":
        return default_jobs()
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise UsageError(f"--jobs must be a positive integer or 'auto', got {text!r}")
    return jobs


LOG_FILE = "log.txt"


def _worker_init() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    # several processes may share one accelerator: allocate on demand, not 75 % each
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    _enable_compilation_cache()


def _worker_run(name: str, preset: str, out: str, force: bool,
                sets: list[str] | None = None) -> str | None:
    """Run one experiment in a worker process with its console output in ``OUT/NAME/log.txt``;
    ``None`` on success, else the error as one line (the traceback goes to the log)."""
    import traceback

    log_dir = Path(out) / name
    log_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_dir / LOG_FILE, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            run_one(name, preset, out, sets, force=force)
            return None
        except Exception as err:
            traceback.print_exc()
            return f"{type(err).__name__}: {err}"
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _runtimes_file() -> Path:
    """Where ``all`` remembers each experiment's last run time per preset (for the order of
    the next parallel run): ``~/.cache/opdiff/runtimes.json``."""
    return Path.home() / ".cache" / "opdiff" / "runtimes.json"


def _read_runtimes() -> dict:
    try:
        data = json.loads(_runtimes_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember_runtimes(records, preset: str) -> None:
    """Store the run times of ``records`` (best effort: a read-only home is no error)."""
    data = _read_runtimes()
    for rec in records:
        data[f"{preset}/{rec['name']}"] = float(rec["runtime_s"])
    try:
        path = _runtimes_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(data, indent=0, sort_keys=True))
    except OSError:
        pass


def _longest_first(names, out: Path, preset: str) -> list[str]:
    """``names`` ordered for a pool, longest first: the run time an earlier run of the same
    preset left in ``out``, else the one ``all`` remembered (:func:`_runtimes_file`);
    experiments without either go first, in registry order. (Run in registry order, the
    quick presets ended 50 s later: operator_zoo, the longest, started last.)"""
    remembered = _read_runtimes()

    def last_runtime(name):
        try:
            rec = json.loads((out / name / "results.json").read_text())
            if rec.get("preset") == preset:
                return float(rec["runtime_s"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            return float(remembered[f"{preset}/{name}"])
        except (KeyError, TypeError, ValueError):
            return math.inf
    times = {n: last_runtime(n) for n in names}
    return sorted(names, key=lambda n: -times[n])  # stable: ties keep the registry order


def _run_pool(names, preset: str, out: Path, force: bool, jobs: int,
              sets: list[str] | None = None) -> list[str]:
    """Run ``names`` in ``jobs`` worker processes, printing each experiment's claims as it
    ends; returns one line per failed experiment."""
    failures = []
    ctx = multiprocessing.get_context("spawn")
    order = _longest_first(names, out, preset)
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx,
                                                initializer=_worker_init) as pool:
        futures = {pool.submit(_worker_run, n, preset, str(out), force, sets): n for n in order}
        try:
            for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                name = futures[fut]
                try:
                    error = fut.result()
                except Exception as err:  # the worker process died
                    error = f"{type(err).__name__}: {err}"
                if error is None:
                    record = json.loads((out / name / "results.json").read_text())
                    print(f"[{done}/{len(names)}] ", end="")
                    _print_checks(record)
                else:
                    failures.append(f"{name}: {error} (log: {out / name / LOG_FILE})")
                    print(f"[{done}/{len(names)}] {name} FAILED: {failures[-1]}")
                sys.stdout.flush()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return failures


def _print_checks(record: dict):
    n_ok = sum(c["holds"] for c in record["checks"])
    print(f"{record['name']} [{record['preset']}] {record['runtime_s']:.1f}s: "
          f"{n_ok}/{len(record['checks'])} claims hold")
    for c in record["checks"]:
        print(f"  [{'ok' if c['holds'] else 'FAIL'}] {c['claim']}: "
              f"measured {measured_text(c)}, bound {fmt(c['bound'])}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage block
        raise UsageError(message)


def build_parser(prog: str = "python -m experiments") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Run opdiff experiments.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="list the experiments")
    r = sub.add_parser("run", help="run one experiment")
    r.add_argument("name")
    r.add_argument("--preset", default=DEFAULT_PRESET)
    r.add_argument("--out", default=DEFAULT_OUT)
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--force", action="store_true",
                   help="replace the results of an earlier run in --out")
    d = sub.add_parser("plot", help="redraw an experiment's figures from its saved results")
    d.add_argument("name")
    d.add_argument("--out", default=DEFAULT_OUT)
    c = sub.add_parser("compare", help="two runs side by side (e.g. two seeds): verdicts "
                                       "that differ, findings that moved")
    c.add_argument("dirs", nargs=2, metavar="DIR")
    c.add_argument("--z", type=float, default=3.0,
                   help="list findings that moved by more than Z combined SEs (default 3)")
    h = sub.add_parser("report", help="write OUT/index.html from the saved results")
    h.add_argument("--out", default=DEFAULT_OUT)
    a = sub.add_parser("all", help="run every experiment; write OUT/summary.md and "
                                   "OUT/index.html")
    a.add_argument("--preset", default=DEFAULT_PRESET)
    a.add_argument("--out", default=DEFAULT_OUT)
    a.add_argument("--strict", action="store_true", help="exit 1 if any claim fails")
    a.add_argument("--force", action="store_true",
                   help="replace the results of earlier runs in --out")
    a.add_argument("--seed", help="every experiment's seed (default: each preset's, 0); "
                                   "another seed re-draws every key of every experiment")
    a.add_argument("--jobs", default="auto",
                   help="experiments run at a time, each in its own process (default auto: "
                        "2 on a CPU-only machine with 2+ cores, else 1)")
    return p


def _enable_compilation_cache() -> None:
    """Cache XLA compilations on disk (``~/.cache/opdiff/jax``, or ``JAX_COMPILATION_CACHE_DIR``)
    so that a second run of an experiment skips most of its compile time; jax's own default
    is no cache. Every compilation is cached (``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``,
    default 0): the quick presets compile hundreds of small programs of 0.1-0.5 s each —
    a third of noise_color's run — which jax's 1 s default never stored.
    Set ``OPDIFF_NO_COMPILE_CACHE=1`` to turn it off."""
    if os.environ.get("OPDIFF_NO_COMPILE_CACHE"):
        return
    import jax

    path = os.environ.get("JAX_COMPILATION_CACHE_DIR",
                          str(Path.home() / ".cache" / "opdiff" / "jax"))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", 0.0)))


def console() -> None:
    """The ``opdiff`` console script of the installed package (``opdiff list | run NAME |
    plot NAME | all | report | compare A B``); the same commands as ``python -m experiments`` in a clone."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main(prog="opdiff"))


def main(argv: list[str] | None = None, *, prog: str = "python -m experiments") -> int:
    try:
        args = build_parser(prog).parse_args(argv)
        if args.command is None:
            raise UsageError("expected a command: list, run NAME, plot NAME, all, or report")
        if args.command == "list":
            for name in EXPERIMENTS:
                m = load(name)
                print(f"{name:24s} {m.DESCRIPTION}")
            return 0
        if args.command == "plot":
            for fig in redraw(args.name, args.out):
                print(f"wrote {Path(args.out) / args.name / fig}")
            return 0
        if args.command == "compare":
            if not (math.isfinite(args.z) and args.z > 0):
                raise UsageError(f"--z must be a positive number, got {args.z}")
            text, flips = compare(*args.dirs, z=args.z)
            print(text, end="")
            return 1 if flips else 0
        if args.command == "report":
            print(f"wrote {report(args.out)}")
            return 0
        if args.command == "run":
            module = load(args.name)
            make_config(module, args.preset, args.sets)  # validate before any work
            check_out(args.out, [args.name], force=args.force)
            _enable_compilation_cache()
            record = run_one(args.name, args.preset, args.out, args.sets, force=args.force)
            _print_checks(record)
            print(f"wrote {Path(args.out) / args.name / 'results.json'}")
            return 0
        if args.preset not in PRESETS:
            raise UsageError(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}")
        jobs = parse_jobs(args.jobs)
        if args.seed is not None and not re.fullmatch(r"\d+", args.seed.strip()):
            raise UsageError(f"--seed must be an integer >= 0, got {args.seed!r}")
        sets = [] if args.seed is None else [f"seed={int(args.seed)}"]
        for name in EXPERIMENTS:
            make_config(load(name), args.preset, sets)
        out = check_out(args.out, EXPERIMENTS, force=args.force)
        t0 = time.perf_counter()
        errors = []
        if min(jobs, len(EXPERIMENTS)) <= 1:
            _enable_compilation_cache()
            records = []
            for name in EXPERIMENTS:
                record = run_one(name, args.preset, out, sets, force=args.force)
                _print_checks(record)
                records.append(record)
        else:
            print(f"running {len(EXPERIMENTS)} experiments, {jobs} at a time (output of each "
                  f"in {out}/NAME/{LOG_FILE})")
            errors = _run_pool(EXPERIMENTS, args.preset, out, args.force, jobs, sets)
            records = [json.loads((out / n / "results.json").read_text()) for n in EXPERIMENTS
                       if (out / n / "results.json").is_file()]
        out.mkdir(parents=True, exist_ok=True)
        _remember_runtimes(records, args.preset)
        _write_atomic(out / "summary.md", summary_markdown(records))
        failed = sum(not c["holds"] for r in records for c in r["checks"])
        print(f"wrote {out / 'summary.md'}: {failed} claim(s) failed "
              f"({len(records)} experiments, {time.perf_counter() - t0:.0f} s wall)")
        print(f"wrote {report(out)}")
        if errors:
            for line in errors:
                print(f"error: {line}", file=sys.stderr)
            return 1
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
