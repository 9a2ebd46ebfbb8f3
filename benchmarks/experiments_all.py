"""The wall time of ``python -m experiments all`` at one preset, as a user runs it.

    python -m benchmarks.experiments_all [--preset quick] [--jobs 2 [1 ...]] [--rounds 1]
                                         [--warm] [--out DIR]

Runs the README's command (``python -m experiments all --preset P --jobs J --force``) in a
fresh interpreter once per ``--jobs`` value and round, interleaved (``J1, J2, J1, J2, ...``),
each into ``DIR/jobs-J``, and reports per run the wall time, the CPU time of the process tree
(user + system, so CPU / wall is the number of cores kept busy), the peak resident memory of
the largest process, and the claims held; then the per-experiment run times of the last run of
each ``--jobs`` value. ``--warm`` first runs the command once, unmeasured, so that the
measured runs find every compilation in jax's persistent cache (the state a user is in from
the second run on); without it the first measured run pays for whatever the cache lacks.

The goal (issue 16): the quick preset in at most 8 minutes on the 2-core reference CPU, with
every claim holding. Ends with one line per figure, ``name: value unit (goal: ...)``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import (headline, matmul_peak_gflops, median, print_footer,
                                print_header, print_table)

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = {"quick": 480.0}


def command(preset: str, out: Path, jobs: int) -> list[str]:
    """The README's ``experiments all`` command line for one run."""
    return [sys.executable, "-m", "experiments", "all", "--preset", preset, "--out", str(out),
            "--force", "--jobs", str(jobs)]


def summarise(out: Path) -> dict:
    """Claims held, claims stated and per-experiment run times of the run saved in ``out``."""
    held = total = 0
    times = {}
    for path in sorted(out.glob("*/results.json")):
        rec = json.loads(path.read_text())
        total += len(rec["checks"])
        held += sum(bool(c["holds"]) for c in rec["checks"])
        times[rec["name"]] = float(rec["runtime_s"])
    return {"held": held, "total": total, "experiments": len(times), "runtimes": times}


def run_once(preset: str, out: Path, jobs: int) -> dict:
    """One timed run in a child interpreter: wall, CPU of the process tree, peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(command(preset, out, jobs), cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):  # 1: a claim or an experiment failed; still reported
        raise RuntimeError(f"experiments all exited {proc.returncode}: {proc.stderr[-2000:]}")
    return {"jobs": jobs, "wall": wall, "cpu": cpu, "rc": proc.returncode,
            "peak_rss_mib": after.ru_maxrss / 1024.0, **summarise(out)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick", choices=["smoke", "quick", "full"])
    p.add_argument("--jobs", type=int, nargs="+", default=[2])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--warm", action="store_true",
                   help="one unmeasured run first, to fill the compilation cache")
    p.add_argument("--out", default="results/bench_experiments_all")
    args = p.parse_args(argv)
    if min(args.jobs) < 1 or args.rounds < 1:
        print("error: --jobs values and --rounds must be >= 1", file=sys.stderr)
        return 2
    load = print_header("experiments all: wall time of every experiment at one preset",
                        argv=[sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    print(f"f32 matmul peak of this machine: {matmul_peak_gflops():.0f} GFLOP/s\n", flush=True)
    out = Path(args.out)
    if args.warm:
        t0 = time.perf_counter()
        run_once(args.preset, out / "warm", args.jobs[0])
        print(f"warm-up run (unmeasured): {time.perf_counter() - t0:.0f} s\n", flush=True)
    runs = []
    for r in range(args.rounds):
        order = args.jobs if r % 2 == 0 else list(reversed(args.jobs))
        for jobs in order:
            runs.append(run_once(args.preset, out / f"jobs-{jobs}", jobs))
            x = runs[-1]
            print(f"round {r + 1}, --jobs {jobs}: {x['wall']:.0f} s wall, {x['held']}/"
                  f"{x['total']} claims", flush=True)
    print()
    print_table(["--jobs", "wall s", "CPU s", "cores busy", "peak RSS MiB", "claims held",
                 "experiments"],
                [[x["jobs"], f"{x['wall']:.0f}", f"{x['cpu']:.0f}", f"{x['cpu'] / x['wall']:.2f}",
                  f"{x['peak_rss_mib']:.0f}", f"{x['held']}/{x['total']}", x["experiments"]]
                 for x in runs])
    last = {x["jobs"]: x for x in runs}
    names = sorted({n for x in last.values() for n in x["runtimes"]},
                   key=lambda n: -max(x["runtimes"].get(n, 0.0) for x in last.values()))
    print_table(["experiment", *[f"s at --jobs {j}" for j in last]],
                [[n, *[f"{x['runtimes'].get(n, float('nan')):.1f}" for x in last.values()]]
                 for n in names])
    print_footer(load)
    goal = GOAL_S.get(args.preset)
    goal_text = (f"<= {goal:.0f} s ({goal / 60:.0f} min) on the 2-core CPU, every claim holding"
                 if goal else "none, context")
    for jobs in args.jobs:
        sel = [x for x in runs if x["jobs"] == jobs]
        print(headline(f"experiments_all_{args.preset}_wall_jobs{jobs}",
                       median([x["wall"] for x in sel]), "s", goal_text, load))
        print(headline(f"experiments_all_{args.preset}_claims_held_jobs{jobs}",
                       min(x["held"] for x in sel), f"of {sel[0]['total']} claims",
                       "every claim holds", load))
    if len(args.jobs) > 1:
        base = args.jobs[-1]
        for jobs in args.jobs[:-1]:
            ratios = [b["wall"] / a["wall"] for a, b in zip(
                [x for x in runs if x["jobs"] == jobs], [x for x in runs if x["jobs"] == base])]
            print(headline(f"experiments_all_{args.preset}_speedup_jobs{jobs}_vs_jobs{base}",
                           median(ratios), "x", "context (interleaved runs)", load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
