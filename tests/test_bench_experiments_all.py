"""benchmarks/experiments_all.py: the command it times and the summary it reads back."""

from __future__ import annotations

import json
import sys

from benchmarks import experiments_all as ea


def test_command_is_the_readme_command_with_jobs(tmp_path):
    cmd = ea.command("quick", tmp_path, 2)
    assert cmd[0] == sys.executable
    assert cmd[1:] == ["-m", "experiments", "all", "--preset", "quick", "--out", str(tmp_path),
                       "--force", "--jobs", "2"]


def test_summarise_counts_claims_and_reads_run_times(tmp_path):
    for name, holds, t in (("a", [True, True, False], 3.5), ("b", [True], 10.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(
            {"name": name, "runtime_s": t, "checks": [{"holds": h} for h in holds]}))
    (tmp_path / "summary.md").write_text("not a result")
    s = ea.summarise(tmp_path)
    assert (s["held"], s["total"], s["experiments"]) == (3, 4, 2)
    assert s["runtimes"] == {"a": 3.5, "b": 10.0}


def test_bad_arguments_exit_2(capsys):
    assert ea.main(["--jobs", "0"]) == 2
    assert "--jobs values and --rounds must be >= 1" in capsys.readouterr().err
