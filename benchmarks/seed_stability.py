"""Do the verdicts depend on the seed? Every experiment at one preset, once per seed.

    python -m benchmarks.seed_stability [--preset quick] [--seeds 0 1] [--out DIR]
                                        [--only NAME ...]

Runs each experiment (through the CLI's runner, ``--set seed=S``) into ``DIR/seed-S/NAME`` and
compares the claims of the runs claim by claim (matched by position: an experiment states the
same claims in the same order for every seed). A claim whose verdict differs between seeds is
listed with its measured values: either the claim is fragile (a tolerance tighter than the
seed-to-seed spread, a finding that is not stable) or a seed broke something. Not a timed
benchmark: it reports the agreement, the runtimes and the load (a run under load only takes
longer; verdicts do not depend on it).
For two finished runs (e.g. ``python -m experiments all --seed 1``), ``python -m experiments
compare DIR_A DIR_B`` gives the same verdict comparison and also lists the findings that moved
by more than three combined standard errors.

Ends with one line per figure, ``name: value unit (goal: ...)``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks._common import headline, print_footer, print_header, print_table
from experiments import EXPERIMENTS
from experiments._report import verdict_table
from experiments._runner import run_one


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default="results/seed_stability")
    p.add_argument("--only", nargs="*", default=None, help="experiments to run (default: all)")
    args = p.parse_args(argv)
    names = args.only or list(EXPERIMENTS)
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown or len(set(args.seeds)) < 2:
        print(f"error: unknown experiments {unknown}" if unknown else
              "error: --seeds needs at least two distinct seeds", file=sys.stderr)
        return 2
    load = print_header(f"seed stability of the verdicts ({args.preset})")
    rows, total, agree, runtime = [], 0, 0, 0.0
    for name in names:
        records = {}
        for seed in args.seeds:
            t0 = time.perf_counter()
            records[seed] = run_one(name, args.preset, Path(args.out) / f"seed-{seed}",
                                    [f"seed={seed}"], force=True)
            runtime += time.perf_counter() - t0
        diff, n, ok = verdict_table(records)
        total, agree = total + n, agree + ok
        rows += [[name, *r] for r in diff]
        print(f"{name}: {ok}/{n} verdicts agree across seeds {args.seeds}", flush=True)
    if rows:
        print_table(["experiment", "claim", "verdicts", "measured"], rows)
    print(headline("verdicts_agreeing", agree, f"of {total} claims",
                   "every claim's verdict the same for every seed", load))
    print(headline("wall_time", runtime / 60, f"min for {len(args.seeds)} seeds", "information",
                   load))
    print_footer(load)
    return 0 if agree == total else 1


if __name__ == "__main__":
    sys.exit(main())
