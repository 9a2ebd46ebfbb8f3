"""Every benchmark in one run, and the ``full`` presets of experiments that fit: one JSON file.

Run from the repository root::

    .venv/bin/python -m benchmarks.suite                  # GPU sizes, <= 8 min budget
    .venv/bin/python -m benchmarks.suite --quick          # small CPU sizes, <= 3 min budget
    .venv/bin/python -m benchmarks.suite --out results/suite.json --budget 600 --only engine
    .venv/bin/python -m benchmarks.suite --dry-run        # print the plan: commands, estimates

What it runs. The nine scripts of ``benchmarks/`` (``JOBS``; ``experiments_all``, which times
a whole ``experiments all`` run, is run on its own; in default mode also the U-Net
benchmark in bfloat16, and then the ``full`` presets listed in ``FULL_PRESETS``), in the order
of ``JOBS``, each in its own interpreter, ``python -m benchmarks.NAME ARGS``, with the
arguments of the mode (below). Each script is a fresh process, rather than its ``main(argv)``
called in this one, because two of them switch jax to float64 for the whole process and two set
thread variables that BLAS and XLA read once at import; a fresh process also gives each script
its own peak RSS and device peak memory, and a script that crashes, hangs or runs out of memory
is recorded (status, exit code, the tail of its output) and the suite goes on. The suite itself
never imports jax, so it holds no device memory while the scripts run.

Sizes. ``--quick`` uses each script's smallest options (``QUICK`` column of ``JOBS``): a
smoke test that every script runs end to end and prints its figures, meant for a 2-core CPU
(the oracle benchmark runs only its NFE search there, on a 16 x 16 field: its oracle timing
and Monte-Carlo peer have no smaller size than 128 x 128, minutes on that CPU).
The default mode uses sizes meant for one H100-class GPU (``GPU`` column): the engine with
2,000 steps per run at batch 1024 and 5,000 at batch 1; the data benchmark's full mode; the
U-Net with ``--mode gpu`` (a few hundred steps per run) in float32 and then bfloat16; the
DeepONet benchmark's full mode (time to test MSE 1e-6 capped at 60,000 iterations); random
features at the quick size (n = 4096, N = 1024) with the libraries' own thread pools (the
NumPy and scikit-learn peers run on the host's cores); the oracle's full mode (256 x 256); seed
stability of two quick experiments. Then ``FULL_PRESETS`` through ``python -m experiments run
NAME --preset full``.

Budget. ``--budget`` seconds in all (default 480 in the default mode, 180 with ``--quick``).
Every job has an estimated duration (``JOBS``; the GPU estimates are guesses scaled from CPU
runs, to be replaced by the wall times of a first GPU run, which the JSON records): a job whose
estimate exceeds the budget left is skipped (recorded as ``skipped``), and a job still running
when the budget is spent is stopped (``timeout``). So the suite ends within the budget plus a
few seconds, whatever the machine.

Output: one JSON file (``--out``, default ``results/benchmark_suite.json``; the logs of every
job go beside it, in ``<out>.logs/``) with

* ``suite``: mode, command line, budget, start and end (UTC), wall time, the device (from the
  scripts' headers), Python and package versions, git commit, core count, and the 1-minute load
  average before and after the suite (``loaded_before``: > 0.5 per core);
* ``jobs``: one entry per script and experiment, in order: name, kind (``benchmark`` or
  ``experiment``), command, status (``ok``, ``failed``, ``timeout``, ``skipped``), exit code,
  wall time, the load on entry and after and the peak memory as the script printed them, every
  figure line parsed by :func:`parse_figure` (name, value, unit, goal, ``under_load``), the
  lines that look like figures but did not parse (``unparsed``: should be empty), and for a
  failure the last lines of its output. An experiment's figures are its claim counts and run
  time from its ``results.json``.

The figure lines are those of ``benchmarks._common.headline``:
``name: value unit (goal: ...)``, optionally followed by ``[under load: ...]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = "results/benchmark_suite.json"
BUDGET_S = {"gpu": 480.0, "quick": 180.0}
TAIL_LINES = 40  # lines of output kept in the JSON for a job that did not succeed
PACKAGES = ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "flax", "optax", "numpy",
            "scipy", "scikit-learn", "orbax-checkpoint", "deepxde", "torch")

# ``{work}`` in arguments is replaced by this run's work folder (``<out>.logs``).
SEED_STABILITY_GPU = ("--preset", "quick", "--only", "operator_data", "spectral_autoregression",
                      "--out", "{work}/seed_stability")
SEED_STABILITY_QUICK = ("--preset", "smoke", "--only", "operator_data",
                        "--out", "{work}/seed_stability")


@dataclasses.dataclass(frozen=True)
class Job:
    """One benchmark script with its arguments and estimated seconds in each mode.

    ``gpu`` or ``quick`` ``None``: the job does not run in that mode.
    """

    name: str
    module: str
    gpu: tuple[str, ...] | None
    quick: tuple[str, ...] | None
    gpu_estimate_s: float
    quick_estimate_s: float


JOBS = (
    Job("engine", "benchmarks.engine",
        ("--steps", "2000", "--small-steps", "5000"),
        ("--quick", "--rounds", "1", "--steps", "40", "--small-steps", "200"), 45, 15),
    Job("deeponet", "benchmarks.deeponet", (), ("--quick", "--cap", "0"), 90, 30),
    Job("random_features", "benchmarks.random_features", ("--quick", "--multithread"),
        ("--quick", "--n", "512", "--features", "128", "--rounds", "1"), 45, 12),
    Job("diffusion_oracle", "benchmarks.diffusion_oracle", (),
        ("--quick", "--nfe-only", "--side", "16", "--iters", "10"), 120, 45),
    Job("diffusion_training", "benchmarks.diffusion_training", ("--mode", "gpu"),
        ("--mode", "smoke"), 90, 30),
    Job("data", "benchmarks.data", (),
        ("--quick", "--rounds", "1", "--loop-funcs", "10", "--dr-loop-funcs", "5",
         "--acc-funcs", "1", "--dr-check", "2"), 60, 25),
    Job("seed_stability", "benchmarks.seed_stability", SEED_STABILITY_GPU,
        SEED_STABILITY_QUICK, 40, 15),
    Job("latent", "benchmarks.latent", (), ("--quick", "--steps", "20"), 60, 20),
    Job("fno", "benchmarks.fno", (),
        ("--quick", "--rounds", "1", "--steps", "100", "--neuralop-python", "none"), 60, 15),
    Job("diffusion_training_bf16", "benchmarks.diffusion_training",
        ("--mode", "gpu", "--dtype", "bf16"), None, 90, 0),
)

# Experiments whose ``full`` preset fits after the benchmarks (default mode only), with the
# estimated seconds on a GPU (their full presets took 53-189 s on the 2-core CPU).
FULL_PRESETS = (("rf_bandlimit", 30), ("sampler_convergence", 30), ("rf_rates", 45),
                ("spectral_autoregression", 60))

_VALUE = r"[-+]?(?:nan|inf|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
FIGURE_RE = re.compile(
    r"^(?P<name>[^\s:]+): (?P<value>" + _VALUE + r")(?: (?P<unit>.*?))? \(goal: (?P<goal>.*)\)"
    r"(?: \[under load: (?P<load>[^\]]*)\])?\s*$", re.IGNORECASE)
LOAD_ENTRY_RE = re.compile(r"^load on entry: 1-min load (?P<load>\S+) on (?P<cores>\d+) cores")
FOOTER_RE = re.compile(r"^load: (?:(?P<entry>\S+) on entry, )?(?P<after>\S+) after .*?"
                       r"peak RSS (?P<rss>[\d.]+) MiB(?:; device peak memory (?P<dev>[\d.]+) "
                       r"MiB)?")
DEVICE_RE = re.compile(r"^device: (?P<device>.+)$")


def parse_figure(line: str) -> dict[str, Any] | None:
    """Parse one figure line ``name: value unit (goal: goal)[ [under load: ...]]``.

    Returns ``{"name", "value" (float; NaN and infinities as the strings "nan", "inf",
    "-inf", since JSON has no such numbers), "unit" ("" when absent), "goal", "under_load"
    (the text of the mark, or None)}``, or ``None`` for a line that is not a figure line.
    The goal runs to the last ``)`` before the end or before the under-load mark, so a goal may
    contain parentheses.
    """
    m = FIGURE_RE.match(line.strip())
    if m is None:
        return None
    value = float(m["value"])
    return {"name": m["name"], "value": value if math.isfinite(value) else str(value),
            "unit": (m["unit"] or "").strip(), "goal": m["goal"], "under_load": m["load"]}


def parse_output(text: str) -> dict[str, Any]:
    """The figures, the lines that contain ``(goal: `` but do not parse, the device, and the
    load on entry, load after and peak memory of a benchmark's output (``None`` where the
    script printed none)."""
    out: dict[str, Any] = {"figures": [], "unparsed": [], "device": None, "load_entry": None,
                           "load_after": None, "peak_rss_mib": None, "device_peak_mib": None}
    for raw in text.splitlines():
        line = raw.rstrip()
        fig = parse_figure(line)
        if fig is not None:
            out["figures"].append(fig)
        elif "(goal: " in line:
            out["unparsed"].append(line)
        elif (m := LOAD_ENTRY_RE.match(line)) and out["load_entry"] is None:
            out["load_entry"] = float(m["load"])
        elif m := FOOTER_RE.match(line):
            out["load_after"] = float(m["after"])
            out["peak_rss_mib"] = float(m["rss"])
            out["device_peak_mib"] = None if m["dev"] is None else float(m["dev"])
        elif (m := DEVICE_RE.match(line)) and out["device"] is None:
            out["device"] = m["device"]
    return out


def versions() -> dict[str, str | None]:
    """Installed versions of Python and the packages that matter (``None``: not installed),
    read from package metadata, without importing them."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit() -> str | None:
    """``HEAD``'s hash, with ``+dirty`` when the working tree has changes; None without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty.strip() else "")


def load_average() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return None


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_command(command: Sequence[str], log: Path, timeout_s: float) -> tuple[int | None, float,
                                                                             str]:
    """Run ``command`` from the repository root in its own process group, output (stdout and
    stderr interleaved) to ``log``; stop the group at ``timeout_s``.

    Returns ``(exit code or None on timeout, wall seconds, output)``.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(list(command), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=max(timeout_s, 1.0))
        except subprocess.TimeoutExpired:
            code = None
            for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
    wall = time.perf_counter() - t0
    return code, wall, log.read_text(errors="replace")


def experiment_figures(name: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of an experiment's ``results.json``: claims holding, and its run time."""
    checks = record.get("checks", [])
    holding = sum(bool(c.get("holds")) for c in checks)
    return [
        {"name": f"{name}_full_claims_holding", "value": float(holding),
         "unit": f"of {len(checks)} claims", "goal": "every claim holds", "under_load": None},
        {"name": f"{name}_full_runtime", "value": float(record.get("runtime_s", float("nan"))),
         "unit": "s", "goal": "information", "under_load": None},
    ]


def plan(mode: str, only: Sequence[str] | None) -> list[dict[str, Any]]:
    """The jobs of ``mode`` (``"gpu"`` or ``"quick"``) in order, optionally only those named.

    Each is ``{"name", "kind", "args" (after the interpreter, with "{work}"), "estimate_s"}``.
    """
    jobs = []
    for job in JOBS:
        args = job.gpu if mode == "gpu" else job.quick
        if args is None:
            continue
        jobs.append({"name": job.name, "kind": "benchmark", "args": ["-m", job.module, *args],
                     "estimate_s": job.gpu_estimate_s if mode == "gpu" else job.quick_estimate_s})
    if mode == "gpu":
        for name, estimate in FULL_PRESETS:
            jobs.append({"name": f"experiment:{name}", "kind": "experiment",
                         "args": ["-m", "experiments", "run", name, "--preset", "full", "--out",
                                  "{work}/experiments", "--force"],
                         "experiment": name, "estimate_s": estimate})
    if only:
        known = {j["name"] for j in jobs}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"--only: unknown job(s) {unknown} in mode {mode}; expected some of "
                             f"{sorted(known)}")
        jobs = [j for j in jobs if j["name"] in only]
    return jobs


def run_suite(mode: str, out: Path, budget_s: float, only: Sequence[str] | None = None,
              argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the jobs of ``mode`` within ``budget_s`` seconds and write the JSON to ``out``.

    Returns the record that was written.
    """
    jobs = plan(mode, only)
    work = out.parent / (out.name + ".logs")
    work.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    load_before = load_average()
    started, t_start = utc_now(), time.perf_counter()
    print(f"benchmark suite ({mode}): {len(jobs)} jobs, budget {budget_s:.0f} s, "
          f"1-min load {load_before} on {cores} cores; logs in {work}", flush=True)
    records = []
    for job in jobs:
        left = budget_s - (time.perf_counter() - t_start)
        command = [sys.executable] + [a.replace("{work}", str(work)) for a in job["args"]]
        rec: dict[str, Any] = {"name": job["name"], "kind": job["kind"],
                               "command": " ".join(command[1:]), "estimate_s": job["estimate_s"],
                               "status": "skipped", "returncode": None, "wall_s": None,
                               "figures": [], "unparsed": []}
        if job["estimate_s"] > left:
            rec["reason"] = (f"budget: {left:.0f} s left, estimate {job['estimate_s']:.0f} s")
            records.append(rec)
            print(f"  {job['name']}: skipped ({rec['reason']})", flush=True)
            continue
        log = work / (job["name"].replace(":", "_") + ".log")
        code, wall, text = run_command(command, log, left)
        rec.update(returncode=code, wall_s=round(wall, 2), log=str(log))
        rec["status"] = "timeout" if code is None else ("ok" if code == 0 else "failed")
        if job["kind"] == "benchmark":
            rec.update(parse_output(text))
        else:
            path = work / "experiments" / job["experiment"] / "results.json"
            try:
                rec["figures"] = experiment_figures(job["experiment"],
                                                    json.loads(path.read_text()))
            except (OSError, ValueError) as err:
                if rec["status"] == "ok":
                    rec["status"] = "failed"
                rec["error"] = f"no readable {path}: {err}"
        if rec["status"] != "ok":
            rec["output_tail"] = text.splitlines()[-TAIL_LINES:]
        records.append(rec)
        print(f"  {job['name']}: {rec['status']} in {wall:.0f} s, "
              f"{len(rec['figures'])} figures", flush=True)
    devices = [r.get("device") for r in records if r.get("device")]
    load_after = load_average()
    record = {
        "suite": {
            "mode": mode, "command": " ".join(argv if argv is not None else sys.argv),
            "budget_s": budget_s, "started_utc": started, "finished_utc": utc_now(),
            "wall_s": round(time.perf_counter() - t_start, 2),
            "device": max(set(devices), key=devices.count) if devices else None,
            "host": platform.node(), "platform": platform.platform(), "cores": cores,
            "versions": versions(), "git_commit": git_commit(),
            "load": {"before": load_before, "after": load_after, "cores": cores,
                     "loaded_before": (load_before is not None and load_before > 0.5 * cores)},
        },
        "jobs": records,
    }
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small CPU sizes (budget 180 s) instead of GPU sizes (480 s)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"JSON file ({DEFAULT_OUT})")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole suite (default 480, 180 with --quick)")
    parser.add_argument("--only", nargs="+", default=None, metavar="JOB",
                        help="run only these jobs (names as in the JSON)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the jobs, their commands and estimates; run nothing")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "gpu"
    budget = BUDGET_S[mode] if args.budget is None else args.budget
    if not budget > 0:
        parser.error(f"--budget must be > 0 seconds, got {args.budget}")
    if not args.out:
        parser.error("--out must name a file, got ''")
    try:
        jobs = plan(mode, args.only)
    except ValueError as err:
        parser.error(str(err))
    out = Path(args.out)
    if args.dry_run:
        work = out.parent / (out.name + ".logs")
        for job in jobs:
            command = " ".join(a.replace("{work}", str(work)) for a in job["args"])
            print(f"{job['name']}: ~{job['estimate_s']:.0f} s: python {command}")
        print(f"estimates {sum(j['estimate_s'] for j in jobs):.0f} s in all; budget {budget:.0f} s")
        return 0
    record = run_suite(mode, out, budget, args.only,
                       argv=[sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    counts: dict[str, int] = {}
    for rec in record["jobs"]:
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
    print(f"wrote {out}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
          + f"; {sum(len(r['figures']) for r in record['jobs'])} figures in "
          f"{record['suite']['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
