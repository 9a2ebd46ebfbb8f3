"""The experiment runner: every experiment at --preset smoke through the CLI, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_python
from experiments import EXPERIMENTS
from experiments._report import load_results, validate
from experiments._runner import main


def _same(a, b) -> bool:
    """Equal saved results, arrays (from results.npz) compared entry by entry."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
                and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b)))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # both NaN (a fit that the smoke preset cannot support)
    return a == b


def test_the_cli_runs_an_experiment_in_a_fresh_interpreter(tmp_path):
    proc = run_python(["-m", "experiments", "run", "approx_classics", "--preset", "smoke",
                       "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "claims hold" in proc.stdout and "wrote" in proc.stdout
    validate(json.loads((tmp_path / "approx_classics" / "results.json").read_text()))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_at_smoke_through_the_cli(smoke_all, tmp_path, name):
    out, proc = smoke_all
    log = out / name / "log.txt"
    assert f"] {name} [smoke]" in proc.stdout, (
        proc.stderr[-2000:] + (log.read_text()[-3000:] if log.exists() else ""))
    record = json.loads((out / name / "results.json").read_text())
    validate(record)
    assert record["name"] == name and record["preset"] == "smoke"
    for fig in record["figures"]:
        assert (out / name / fig).stat().st_size > 1000
    assert all(c.get("kind") for c in record["checks"])  # verdicts from opdiff.claims
    # the figures come back from the saved results alone (in a copy: the run is shared)
    shutil.copytree(out / name, tmp_path / name, ignore=shutil.ignore_patterns("*.png"))
    assert main(["plot", name, "--out", str(tmp_path)]) == 0
    for fig in record["figures"]:
        assert (tmp_path / name / fig).stat().st_size > 1000


def test_smoke_all_exits_0_and_writes_the_summary_and_report(smoke_all):
    out, proc = smoke_all
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"({len(EXPERIMENTS)} experiments," in proc.stdout
    summary = (out / "summary.md").read_text()
    assert {r.split("|")[1].strip() for r in summary.splitlines()[4:]} == set(EXPERIMENTS)
    assert (out / "index.html").stat().st_size > 10_000


def test_same_seed_gives_identical_metrics(tmp_path):
    for out in ("a", "b"):
        assert main(["run", "approx_classics", "--preset", "smoke", "--out",
                     str(tmp_path / out)]) == 0
    (a, ra), (b, rb) = (load_results(tmp_path / o / "approx_classics") for o in ("a", "b"))
    assert _same(ra, rb)  # the arrays of results.npz too
    assert a["checks"] == b["checks"]


def test_all_writes_summary(tmp_path, monkeypatch):
    import experiments._runner as runner

    monkeypatch.setattr(runner, "EXPERIMENTS", ("approx_classics",))
    assert main(["all", "--preset", "smoke", "--out", str(tmp_path)]) == 0
    summary = (tmp_path / "summary.md").read_text()
    n_checks = len(json.loads((tmp_path / "approx_classics" / "results.json").read_text())["checks"])
    assert summary.count("| approx_classics |") == n_checks
    # every row has the table's seven columns, also when a claim says |z| (escaped pipes)
    rows = [line for line in summary.splitlines() if line.startswith("| ")]
    assert all(line.replace("\\|", "").count("|") == 8 for line in rows), rows[:3]


def test_set_overrides_reach_the_config(tmp_path):
    assert main(["run", "approx_classics", "--preset", "smoke", "--out", str(tmp_path),
                 "--set", "mlp_widths=3", "--set", "fourier_a=2.0", "--set", "seed=5"]) == 0
    record = json.loads((tmp_path / "approx_classics" / "results.json").read_text())
    assert record["config"]["mlp_widths"] == [3]
    assert record["config"]["fourier_a"] == 2.0 and record["config"]["seed"] == 5


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "nope"], "unknown experiment 'nope'"),
        (["run", "approx_classics", "--preset", "huge"], "unknown preset 'huge'"),
        (["run", "approx_classics", "--set", "seed"], "malformed --set 'seed'"),
        (["run", "approx_classics", "--set", "nope=1"], "unknown config key 'nope'"),
        (["run", "approx_classics", "--set", "seed=abc"], "--set seed=abc: expected int"),
        (["run", "approx_classics", "--set", "fourier_a=0.5"],
         "--set fourier_a=0.5: expected float > 1, got 0.5"),
        (["run", "approx_classics", "--set", "cheb_rho_bound=2"],  # __post_init__'s relation
         "cheb_rho_bound must be in (1, 1.2198)"),
        (["all", "--preset", "huge"], "unknown preset 'huge'"),
        ([], "expected a command"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err


def test_bad_input_through_a_real_process():
    proc = run_python(["-m", "experiments", "run", "nope"])
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown experiment" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_names_every_experiment():
    proc = run_python(["-m", "experiments", "list"])
    assert proc.returncode == 0
    for name in EXPERIMENTS:
        assert name in proc.stdout


def test_saved_results_round_trip_exactly():
    import math

    import numpy as np

    from experiments._report import join_results, split_results

    results = {"nan": math.nan, "inf": -math.inf, "arr": np.arange(3.0), "n": np.int64(7),
               "nested": [1, {"f": np.float32(2.5), "s": "x", "b": np.bool_(True)}], "none": None}
    tree, arrays = split_results(results)
    assert json.loads(json.dumps(tree, allow_nan=False)) == tree  # strict JSON
    back = join_results(tree, arrays)
    assert math.isnan(back["nan"]) and back["inf"] == -math.inf and back["n"] == 7
    np.testing.assert_array_equal(back["arr"], results["arr"])
    assert back["nested"] == [1, {"f": 2.5, "s": "x", "b": True}] and back["none"] is None
    with pytest.raises(TypeError, match="results"):
        split_results({"obj": object()})
    with pytest.raises(ValueError, match="without '/'"):
        split_results({"a/b": 1})


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_has_the_one_shape(name):
    # Config + PRESETS, run, claims, plot and nothing else at the top level; <= 300 lines; a
    # docstring of <= 30 lines (numbers belong in notes/). The maths lives in opdiff/.
    import ast

    source = (Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py").read_text()
    tree = ast.parse(source)
    defs = [n.name for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert sorted(defs) == ["Config", "claims", "plot", "run"], defs
    assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    assert {"NAME", "DESCRIPTION", "DTYPE", "PRESETS"} <= assigned
    assert len(source.splitlines()) <= 300
    assert len((ast.get_docstring(tree) or "x" * 31).splitlines()) <= 30


def test_summary_rows_keep_seven_columns_when_a_claim_contains_a_pipe():
    from experiments._runner import summary_markdown

    check = {"claim": "max |z| over 40^2 entries <= 4.85", "kind": "upper_bound",
             "measured": 2.3, "bound": 4.85, "tightness": 0.47, "holds": True}
    row = summary_markdown([{"name": "x", "checks": [check]}]).splitlines()[-1]
    assert row.replace("\\|", "").count("|") == 8 and "max \\|z\\|" in row


def test_summary_shows_a_findings_standard_error():
    from experiments._runner import summary_markdown

    check = {"claim": "learned - exact KL", "kind": "finding", "measured": -0.467,
             "bound": None, "tightness": None, "holds": True, "detail": {"se": 0.058}}
    row = summary_markdown([{"name": "x", "checks": [check]}]).splitlines()[-1]
    assert "| -0.467 ± 0.058 |" in row
    bound = dict(check, kind="upper_bound", bound=1.0, tightness=0.5, detail={})
    assert "| -0.467 | 1 |" in summary_markdown([{"name": "x", "checks": [bound]}])


def test_all_in_worker_processes_gives_the_serial_results(tmp_path, monkeypatch, capsys):
    # --jobs 2: each experiment in a spawned worker, its console output in OUT/NAME/log.txt;
    # results and verdicts are those of the in-process run, summary.md lists both
    import experiments._runner as runner

    # deeponet_data_size: trained on data made with NumPy's BLAS, whose round-off depends on
    # its thread count (fixed to one by the runner): its numbers differed between workers
    # and the parent process before that
    names = ("approx_classics", "operator_data", "deeponet_data_size")
    monkeypatch.setattr(runner, "EXPERIMENTS", names)
    assert main(["all", "--preset", "smoke", "--out", str(tmp_path / "s"), "--jobs", "1"]) == 0
    assert main(["all", "--preset", "smoke", "--out", str(tmp_path / "p"), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 at a time" in out and "[3/3]" in out and out.count("claims hold") == 6
    for name in names:
        (a, ra), (b, rb) = (load_results(tmp_path / d / name) for d in "sp")
        assert _same(ra, rb) and a["checks"] == b["checks"]
        assert (tmp_path / "p" / name / "log.txt").is_file()
        assert not (tmp_path / "s" / name / "log.txt").exists()
    rows = [r for r in (tmp_path / "p" / "summary.md").read_text().splitlines()
            if r.startswith("| ") and not r.startswith("| experiment")]
    assert {r.split("|")[1].strip() for r in rows} == set(names)
    assert (tmp_path / "p" / "index.html").is_file()


def test_a_failing_worker_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    import experiments._runner as runner

    monkeypatch.setattr(runner, "EXPERIMENTS", ("approx_classics", "operator_data"))
    (tmp_path / "approx_classics" / "results.json").mkdir(parents=True)  # cannot be replaced
    assert main(["all", "--preset", "smoke", "--out", str(tmp_path), "--jobs", "2",
                 "--force"]) == 1
    cap = capsys.readouterr()
    assert "approx_classics FAILED" in cap.out and "operator_data [smoke]" in cap.out
    assert cap.err.count("\n") == 1 and "error: approx_classics: IsADirectoryError" in cap.err
    assert "Traceback" in (tmp_path / "approx_classics" / "log.txt").read_text()
    summary = (tmp_path / "summary.md").read_text()
    assert "| operator_data |" in summary and "| approx_classics |" not in summary


def test_all_seed_reaches_every_experiment(tmp_path, monkeypatch, smoke_all):
    # `all --seed 5` gives each experiment what `run NAME --set seed=5` gives, and not the
    # seed-0 numbers of the shared smoke run
    import experiments._runner as runner

    monkeypatch.setattr(runner, "EXPERIMENTS", ("approx_classics",))
    assert main(["all", "--preset", "smoke", "--out", str(tmp_path / "a"), "--jobs", "1",
                 "--seed", "5"]) == 0
    assert main(["run", "approx_classics", "--preset", "smoke", "--out", str(tmp_path / "r"),
                 "--set", "seed=5"]) == 0
    (a, ra), (r, rr), (zero, rz) = (load_results(d / "approx_classics")
                                    for d in (tmp_path / "a", tmp_path / "r", smoke_all[0]))
    assert a["config"]["seed"] == 5 and _same(ra, rr) and a["checks"] == r["checks"]
    assert zero["config"]["seed"] == 0 and not _same(rz, ra)


@pytest.mark.parametrize("option, value, message", [
    *[("--jobs", v, "--jobs must be a positive integer or 'auto'") for v in ("0", "-1", "two", "")],
    *[("--seed", v, "--seed must be an integer >= 0") for v in ("-1", "1.5", "x", "")]])
def test_bad_jobs_or_seed_exit_2_naming_the_option(capsys, tmp_path, option, value, message):
    assert main(["all", "--preset", "smoke", "--out", str(tmp_path), option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not any(tmp_path.iterdir())


def test_jobs_auto(monkeypatch):
    import experiments._runner as runner

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    assert runner.parse_jobs("auto") == 2 and runner.parse_jobs("3") == 3
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 1)
    assert runner.parse_jobs("auto") == 1
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 16)
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    assert runner.parse_jobs("auto") == 1  # one accelerator: one process


def test_pool_order_is_longest_first_from_the_remembered_run_times(tmp_path, monkeypatch):
    import experiments._runner as runner

    monkeypatch.setattr(runner, "_runtimes_file", lambda: tmp_path / "cache" / "runtimes.json")
    names = ["a", "b", "c", "d"]
    assert runner._longest_first(names, tmp_path / "out", "quick") == names  # nothing known
    runner._remember_runtimes([{"name": "a", "runtime_s": 5.0}, {"name": "b", "runtime_s": 50.0},
                               {"name": "c", "runtime_s": 20.0}], "quick")
    runner._remember_runtimes([{"name": "a", "runtime_s": 99.0}], "smoke")  # another preset
    # d unknown: first; then by the quick times; a result in OUT beats the remembered time
    assert runner._longest_first(names, tmp_path / "out", "quick") == ["d", "b", "c", "a"]
    (tmp_path / "out" / "a").mkdir(parents=True)
    (tmp_path / "out" / "a" / "results.json").write_text(
        json.dumps({"preset": "quick", "runtime_s": 30.0}))
    assert runner._longest_first(names, tmp_path / "out", "quick") == ["d", "b", "a", "c"]
    (tmp_path / "cache" / "runtimes.json").write_text("{not json")  # damaged: ignored
    assert runner._longest_first(names, tmp_path / "out2", "quick") == names


def _fake_run(folder, checks, seed):
    (folder / "approx_classics").mkdir(parents=True)
    (folder / "approx_classics" / "results.json").write_text(json.dumps(
        {"name": "approx_classics", "config": {"seed": seed},
         "checks": [c.as_record() for c in checks]}))


def test_compare_lists_verdict_flips_and_findings_that_moved(tmp_path, capsys):
    from opdiff import claims as cl

    _fake_run(tmp_path / "a", [cl.upper_bound("err <= b", 1.0, 2.0),
                               cl.finding("slope", -1.0, 0.1), cl.finding("gap", 0.5, 0.1)], 0)
    _fake_run(tmp_path / "b", [cl.upper_bound("err <= b", 3.0, 2.0),
                               cl.finding("slope", -2.0, 0.1), cl.finding("gap", 0.6, 0.1)], 1)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 1  # a flip
    out = capsys.readouterr().out
    assert "3 claims compared: 1 with a different verdict" in out
    assert "2 findings, 2 with a standard error: 1 moved by more than 3" in out
    assert "| approx_classics | err <= b | yes / NO | 1.0 / 3.0 |" in out
    assert "| approx_classics | slope |" in out and "| 7.1 | yes |" in out  # 1/hypot(.1,.1)
    assert "| gap |" not in out  # z = 0.71
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--z", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "0 with a different verdict" in out and "0 moved" in out
    assert "both runs have seed 0" in out


@pytest.mark.parametrize("args, message", [(["nowhere", "nowhere"], "no results folder"),
                                           (["A", "A", "--z", "0"], "--z must be a positive")])
def test_compare_bad_input_exits_2(tmp_path, capsys, args, message):
    (tmp_path / "A").mkdir()
    args = [str(tmp_path / a) if a in ("A", "nowhere") else a for a in args]
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
