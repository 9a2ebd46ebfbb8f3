"""benchmarks/suite.py: the figure-line parser, the plan, the budget, and one ``--quick`` run.

The ``--quick`` run runs every benchmark script at its smallest size (a few minutes on a 2-core
CPU) and checks the JSON it writes against the scripts' own output: every script present and
successful, every figure line of every log parsed, the load marks consistent with the load on
entry that each script printed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import _common, suite

ROOT = Path(__file__).resolve().parent.parent
# experiments_all times ``experiments all`` itself (7 minutes on the CPU): run on its own, not
# a suite job
SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py")
                 if not p.stem.startswith("_") and p.stem not in ("suite", "experiments_all"))


# --- the parser -----------------------------------------------------------------------------


def test_parse_figure_reads_name_value_unit_goal_and_the_load_mark():
    assert suite.parse_figure("engine_b1024: 83.0 steps/s (goal: none, context)") == {
        "name": "engine_b1024", "value": 83.0, "unit": "steps/s", "goal": "none, context",
        "under_load": None}
    fig = suite.parse_figure("x: 12.3 it/s (goal: g) [under load: 1-min load 3.00 on 2 cores "
                             "on entry]")
    assert fig is not None
    assert (fig["value"], fig["unit"], fig["goal"]) == (12.3, "it/s", "g")
    assert fig["under_load"] == "1-min load 3.00 on 2 cores on entry"


def test_parse_figure_goals_with_parentheses_units_with_spaces_and_odd_values():
    fig = suite.parse_figure("unet_train_digits_c32: 1200 images/s (goal: none, context "
                             "(channels (32, 64)))")
    assert fig is not None and fig["goal"] == "none, context (channels (32, 64))"
    fig = suite.parse_figure("verdicts_agreeing: 266 of 267 claims (goal: every claim's verdict "
                             "the same for every seed) [under load: 1-min load 9.00 on 2 cores "
                             "on entry]")
    assert fig is not None and (fig["value"], fig["unit"]) == (266.0, "of 267 claims")
    assert fig["goal"] == "every claim's verdict the same for every seed"
    assert suite.parse_figure("a: nan s (goal: g)")["value"] == "nan"  # JSON has no NaN
    assert suite.parse_figure("a: -inf s (goal: g)")["value"] == "-inf"
    assert suite.parse_figure("mse: -1.5e-03 x (goal: g)")["value"] == -1.5e-3
    assert suite.parse_figure("count: 3 (goal: g)") == {
        "name": "count", "value": 3.0, "unit": "", "goal": "g", "under_load": None}
    # lines of a benchmark's output that are not figures
    for line in ("load on entry: 1-min load 0.20 on 2 cores (quiet)",
                 "device: cpu (AMD EPYC, 2 cores, 1 device(s))", "round 1/1 done (36 s)",
                 "x: fast (goal: g)", "no colon (goal: g)", ""):
        assert suite.parse_figure(line) is None, line


@pytest.mark.parametrize("value", [0.0123, 3.0, 57.25, 1234.0, -2.5, float("nan")])
@pytest.mark.parametrize("entry", [0.1, 5.0])
def test_parse_figure_inverts_common_headline(value, entry):
    load = _common.Load(entry, 2)
    line = _common.headline("some_figure_b1", value, "GFLOP/s", ">= 10% (of 2 peaks)", load)
    fig = suite.parse_figure(line)
    assert fig is not None and fig["name"] == "some_figure_b1"
    printed = _common.fmt_value(value)
    assert fig["value"] == (printed if math.isnan(value) else float(printed))
    assert (fig["unit"], fig["goal"]) == ("GFLOP/s", ">= 10% (of 2 peaks)")
    assert (fig["under_load"] is not None) == load.loaded
    if load.loaded:
        assert fig["under_load"] == f"{load.describe()} on entry"


def test_parse_output_reads_the_header_footer_and_figures(capsys):
    load = _common.print_header("t", ["prog"])
    print(_common.headline("f", 2.0, "s", "g", load))
    print("broken: figure (goal: g")
    _common.print_footer(load)
    parsed = suite.parse_output(capsys.readouterr().out)
    assert parsed["load_entry"] == pytest.approx(load.entry, abs=0.006)
    assert parsed["load_after"] is not None and parsed["peak_rss_mib"] > 0
    assert parsed["device_peak_mib"] is None and parsed["device"].startswith("cpu")
    assert [f["name"] for f in parsed["figures"]] == ["f"]
    assert parsed["unparsed"] == ["broken: figure (goal: g"]


# --- plan, budget, timeout ------------------------------------------------------------------


def test_every_benchmark_script_is_planned_in_both_modes():
    assert len(SCRIPTS) == 9
    for mode in ("gpu", "quick"):
        modules = {a["args"][1] for a in suite.plan(mode, None) if a["kind"] == "benchmark"}
        assert modules == {f"benchmarks.{s}" for s in SCRIPTS}
    assert all(j["kind"] == "benchmark" for j in suite.plan("quick", None))
    assert {j["experiment"] for j in suite.plan("gpu", None) if j["kind"] == "experiment"} == {
        name for name, _ in suite.FULL_PRESETS}
    with pytest.raises(ValueError, match="unknown job.*'nope'"):
        suite.plan("quick", ["engine", "nope"])


_PARSE_CHECK = """
import argparse, importlib, json, sys
from benchmarks import suite

class Parsed(BaseException):  # not an Exception: the experiments' runner catches those
    pass

original = argparse.ArgumentParser.parse_args

def parse_then_stop(self, args=None, namespace=None):
    original(self, args, namespace)
    raise Parsed

argparse.ArgumentParser.parse_args = parse_then_stop
outcome = []
for mode in ("gpu", "quick"):
    for job in suite.plan(mode, None):
        module = job["args"][1]
        module = "experiments._runner" if module == "experiments" else module
        args = [a.replace("{work}", "/nonexistent") for a in job["args"][2:]]
        try:
            importlib.import_module(module).main(args)
            outcome.append([mode, job["name"], "ran past its parser"])
        except Parsed:
            outcome.append([mode, job["name"], "ok"])
        except SystemExit as err:
            outcome.append([mode, job["name"], f"exit {err.code}"])
print(json.dumps(outcome))
"""


def test_every_planned_command_is_accepted_by_its_scripts_parser():
    # In a fresh interpreter: two benchmark modules switch jax to float64 when imported.
    proc = subprocess.run([sys.executable, "-c", _PARSE_CHECK], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(outcome) == len(suite.plan("gpu", None)) + len(suite.plan("quick", None))
    assert [o for o in outcome if o[2] != "ok"] == [], proc.stderr[-2000:]
    from experiments import EXPERIMENTS
    assert {name for name, _ in suite.FULL_PRESETS} <= set(EXPERIMENTS)
    for mode in ("gpu", "quick"):
        only = suite.plan(mode, ["seed_stability"])[0]["args"]
        assert set(only[only.index("--only") + 1:only.index("--out")]) <= set(EXPERIMENTS)


def test_dry_run_prints_every_command_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert suite.main(["--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    jobs = suite.plan("gpu", None)
    assert [line.split(":")[0] for line in printed[:-1]] == [
        j["name"].split(":")[0] for j in jobs]
    assert "experiments run rf_bandlimit --preset full" in "\n".join(printed)
    assert f"budget {suite.BUDGET_S['gpu']:.0f} s" in printed[-1]
    assert not out.exists() and not (tmp_path / "s.json.logs").exists()


def test_a_job_over_the_budget_is_skipped_and_recorded(tmp_path):
    out = tmp_path / "s.json"
    record = suite.run_suite("quick", out, budget_s=1.0, only=["engine", "data"])
    assert json.loads(out.read_text()) == record
    assert [(j["name"], j["status"]) for j in record["jobs"]] == [("engine", "skipped"),
                                                                   ("data", "skipped")]
    assert all("budget" in j["reason"] for j in record["jobs"])
    assert record["suite"]["wall_s"] < 5.0  # nothing ran


def test_a_job_past_its_time_is_stopped(tmp_path):
    code, wall, text = suite.run_command(
        [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"],
        tmp_path / "log", timeout_s=2.0)
    assert code is None and 2.0 <= wall < 30.0 and "started" in text


# --- the whole quick suite --------------------------------------------------------------------


def test_quick_suite_runs_every_script_and_parses_every_figure(tmp_path):
    out = tmp_path / "suite.json"
    # OPDIFF_QUICK_SUITE_ONLY="a b": only those scripts (.ci/run's second interpreter runs two,
    # the first all nine: the same harness on the newest jax without the 100 s a second time)
    only = os.environ.get("OPDIFF_QUICK_SUITE_ONLY", "").split()
    scripts = sorted(only) if only else SCRIPTS
    assert set(scripts) <= set(SCRIPTS), only
    # A budget well above the 3 minutes the quick suite takes on an idle 2-core CPU, so that a
    # loaded machine runs every script too (the budget's skipping is tested above).
    proc = subprocess.run([sys.executable, "-m", "benchmarks.suite", "--quick", "--out",
                           str(out), "--budget", "1500", *(["--only", *only] if only else [])],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(out.read_text())
    s = record["suite"]
    assert s["mode"] == "quick" and s["cores"] >= 1 and s["device"].startswith("cpu")
    assert isinstance(s["load"]["before"], float) and isinstance(s["load"]["after"], float)
    assert s["load"]["loaded_before"] == (s["load"]["before"] > 0.5 * s["cores"])
    assert s["versions"]["jax"] and s["versions"]["python"]
    jobs = {j["name"]: j for j in record["jobs"]}
    assert sorted(jobs) == scripts
    for name, job in jobs.items():
        assert job["status"] == "ok" and job["returncode"] == 0, (name, job.get("output_tail"))
        assert job["wall_s"] > 0
        assert job["unparsed"] == [], name
        log_lines = Path(job["log"]).read_text().splitlines()
        figure_lines = [line for line in log_lines if "(goal: " in line]
        assert len(job["figures"]) == len(figure_lines) > 0, name
        for fig, line in zip(job["figures"], figure_lines):
            assert line.startswith(f"{fig['name']}: ")
            assert isinstance(fig["value"], float) or fig["value"] in ("nan", "inf", "-inf")
            assert isinstance(fig["unit"], str) and fig["goal"]
            assert f"(goal: {fig['goal']})" in line
        # the load each script printed on entry and after, and its peak memory
        assert job["load_entry"] is not None and job["load_after"] is not None, name
        assert job["peak_rss_mib"] > 50, name
        loaded = job["load_entry"] > 0.5 * s["cores"]
        wrong = [line for fig, line in zip(job["figures"], figure_lines)
                 if (fig["under_load"] is not None) != loaded]
        assert wrong == [], (name, "load on entry", job["load_entry"], "marks disagree", wrong)
