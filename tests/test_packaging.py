"""The installed package: a wheel built from this checkout, installed into a fresh venv, runs an
experiment and writes the report through the ``opdiff`` console script, from a folder outside
the repository.

The new venv gets opdiff from the wheel only (``--no-deps --no-index``); the third-party
dependencies are made visible by a ``.pth`` line naming this interpreter's site-packages (no
download; their ``.pth`` hooks, the editable install of this checkout among them, do not run
from there). The test checks that ``opdiff`` and ``opdiff_experiments`` are imported from the
new venv, not from the checkout, and that no top-level ``experiments`` package was installed.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, *, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(venv_python, venv_bin)`` of a fresh venv holding the wheel of this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheels = tmp / "dist"
    try:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
              str(ROOT)], cwd=tmp)
    except AssertionError as err:
        if "setuptools" in str(err) and ("No matching distribution" in str(err)
                                         or "Could not find" in str(err)):
            pytest.skip(f"cannot build a wheel here (no setuptools to be had): {err}")
        raise
    (wheel,) = wheels.glob("opdiff-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                         "['purelib'])"], cwd=tmp).stdout.strip())
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
            if Path(p).is_dir()]
    (purelib / "_opdiff_test_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
          "--no-index", str(wheel)], cwd=tmp)
    return py, venv / "bin", purelib


def test_wheel_ships_the_runner_under_its_own_name(installed):
    py, _, purelib = installed
    assert (purelib / "opdiff_experiments" / "_runner.py").is_file()
    assert not (purelib / "experiments").exists()
    out = _run([str(py), "-c", "import opdiff, opdiff_experiments as e; "
                "print(opdiff.__file__); print(e.__file__); print(len(e.EXPERIMENTS))"],
               cwd=purelib.parent).stdout.split()
    assert all(str(purelib) in p for p in out[:2]), out
    assert int(out[2]) >= 21


def test_console_script_runs_an_experiment_and_the_report_outside_the_repo(installed,
                                                                           tmp_path):
    _, bin_dir, _ = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
    work = tmp_path / "elsewhere"
    work.mkdir()
    opdiff = str(bin_dir / "opdiff")
    listed = _run([opdiff, "list"], cwd=work, env=env).stdout
    assert "approx_classics" in listed
    _run([opdiff, "run", "approx_classics", "--preset", "smoke", "--out", "res"], cwd=work,
         env=env, timeout=900)
    record = json.loads((work / "res" / "approx_classics" / "results.json").read_text())
    assert record["checks"] and all(c["holds"] for c in record["checks"])
    proc = _run([opdiff, "report", "--out", "res"], cwd=work, env=env)
    assert "index.html" in proc.stdout
    page = (work / "res" / "index.html").read_text()
    assert "approx_classics" in page and "approx_classics/approx_classics.png" in page
    bad = subprocess.run([opdiff, "run", "no_such_experiment"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
