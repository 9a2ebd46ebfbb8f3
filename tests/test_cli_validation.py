"""Validation of every experiment ``Config`` through the CLI, the size guard, the overwrite
policy and atomic figure writes (issue 13, items 7 and 8)."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from conftest import run_python
from experiments import EXPERIMENTS
from experiments import _config
from experiments._runner import main, make_config
from opdiff import plotting


def _module(name):
    return importlib.import_module(f"experiments.{name}")


def _outside(rule: _config.Rule) -> str:
    """A value just outside the rule's range, as --set text (or a wrong-typed one)."""
    r = rule.range
    if r is None:
        return "1.5" if rule.base is int else "nan"
    if r.lo is not None:
        return f"{r.lo:g}" if r.lo_open else (str(int(r.lo) - 1) if rule.base is int
                                              else f"{r.lo - 0.5:g}")
    return f"{r.hi:g}" if r.hi_open else f"{r.hi + 1:g}"


def invalid_values(rule: _config.Rule) -> list[str]:
    """--set texts that ``rule`` must refuse: one out of its range (when it declares one)
    and one of the wrong form for its type."""
    if rule.element is not None:
        bad = ["1,,2", _outside(rule.element) if rule.element.base in (int, float) else
               {bool: "yes,maybe", str: "a, ,b"}[rule.element.base]]
        if rule.length is not None:
            bad.append(",".join(["1"] * (rule.length + 1)))
        elif not rule.may_be_empty:
            bad.append("")
        return bad
    if rule.base is bool:
        return ["maybe", "2"]
    if rule.base is str:
        return ["", "   "]
    if rule.base is int:
        return [_outside(rule), "1.5", "1e3x", "true"]
    return [_outside(rule), "nan", "inf", "-inf", "abc"]


def _refuse(capsys, name, tmp_path, key, text):
    argv = ["run", name, "--preset", "smoke", "--out", str(tmp_path), "--set", f"{key}={text}"]
    code = main(argv)
    err = capsys.readouterr().err
    where = f"{name} --set {key}={text!r}"
    assert code == 2, f"{where}: exit {code}, stderr {err!r}"
    assert err.count("\n") == 1 and err.startswith("error: "), f"{where}: {err!r}"
    assert key in err, f"{where}: key not named in {err!r}"
    assert "Traceback" not in err, where


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_field_refuses_invalid_values_with_one_line_exit_2(capsys, tmp_path, monkeypatch,
                                                                 name):
    module = _module(name)

    def no_run(cfg, out_dir):  # validation must stop every bad value before any work
        raise AssertionError(f"{name}.run called with {cfg}")

    monkeypatch.setattr(module, "run", no_run)
    rules = _config.rules(module.Config)
    assert set(rules) == set(module.PRESETS["smoke"].__dataclass_fields__)
    kinds = set()
    for key, rule in rules.items():
        kinds.add(rule.base if rule.element is None else (tuple, rule.element.base))
        for text in invalid_values(rule):
            _refuse(capsys, name, tmp_path, key, text)
    assert int in kinds and float in kinds  # every experiment has both
    assert not any(tmp_path.iterdir()), "nothing may be written for refused input"


def test_rules_cover_every_field_and_declare_ranges_for_counts():
    n_fields = 0
    for name in EXPERIMENTS:
        rules = _config.rules(_module(name).Config)
        n_fields += len(rules)
        # every int field declares a range (counts, seeds, indices): none is a bare int
        bare = [k for k, r in rules.items()
                if (r.element or r).base is int and (r.element or r).range is None]
        assert not bare, f"{name}: int fields without a declared range: {bare}"
        assert rules["seed"].describe() == "int >= 0"
    assert n_fields > 400


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_preset_validates_and_fits(name):
    module = _module(name)
    assert set(module.PRESETS) == {"smoke", "quick", "full"}
    for preset, cfg in module.PRESETS.items():
        _config.validate(cfg)
        assert make_config(module, preset, []) == cfg
        sizes = cfg.array_sizes()
        assert sizes and all(v >= 0 for v in sizes.values()), (preset, sizes)
        for expr in sizes:  # every expression is written in the Config's own field names
            assert any(f in expr for f in _config.rules(module.Config)), expr
        # the guard never refuses a preset on a 16 GiB machine
        _config.check_size(cfg, module.DTYPE, memory=16 * 2**30)


# ----------------------------------------------------------------------------- the issue's cases


def test_huge_mlp_points_exits_2_instead_of_an_xla_abort(tmp_path):
    proc = run_python(["-m", "experiments", "run", "approx_classics", "--preset", "smoke",
                       "--out", str(tmp_path), "--set", "mlp_points=1000000000000"],
                      timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Check failed" not in proc.stderr and "Traceback" not in proc.stderr
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("error: "), err
    assert "mlp_points" in err and "memory" in err
    assert not any(tmp_path.iterdir())


def test_size_guard_names_the_product_and_the_machine_memory():
    cfg = make_config(_module("approx_classics"), "smoke", [])
    with pytest.raises(_config.ConfigError) as err:
        _config.check_size(cfg, "float64", memory=1024)
    # the largest of approx_classics' smoke arrays: 8 x 256 points x 21 complex Fourier modes
    assert err.value.key == "fourier_samples"
    assert str(err.value) == ("16 * fourier_samples * (2 * max(fourier_orders) + 1) = 8.6e+04 "
                              "float64 values (672 KiB) would not fit in this machine's memory "
                              "(1 KiB); lower fourier_samples or fourier_orders")
    _config.check_size(cfg, "float64", memory=2**20)


@pytest.mark.parametrize("text, fragment", [
    ("mlp_lr=-0.01", "--set mlp_lr=-0.01: expected float > 0, got -0.01"),
    ("eval_points=0", "--set eval_points=0: expected int >= 1, got 0"),
    ("mlp_widths=1,,2", "--set mlp_widths=1,,2: empty element"),
    ("mlp_widths=1,2,", "--set mlp_widths=1,2,: empty element"),
    ("mlp_widths=", "--set mlp_widths=: expected a non-empty comma-separated tuple"),
    ("cheb_degrees=4,0", "element 1 is 0"),
    ("fourier_a=nan", "--set fourier_a=nan: expected float > 1, got nan (not finite)"),
    ("mlp_steps=1.5", "--set mlp_steps=1.5: expected int >= 1, got '1.5'"),
    ("fourier_samples=10", "fourier_samples must be >= 2 max(fourier_orders) + 1"),
])
def test_the_issue_values_exit_2_naming_the_key(capsys, tmp_path, text, fragment):
    assert main(["run", "approx_classics", "--preset", "smoke", "--out", str(tmp_path),
                 "--set", text]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("out", ["", "   "])
def test_empty_out_is_refused(capsys, out):
    for argv in (["run", "approx_classics", "--preset", "smoke", "--out", out],
                 ["all", "--preset", "smoke", "--out", out]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out must name a folder" in err, err


def test_out_that_is_a_file_is_refused(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["run", "approx_classics", "--preset", "smoke", "--out", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_parse_value_trims_and_refuses_empty_elements():
    cls = _module("approx_classics").Config
    assert _config.parse_value(cls, "mlp_widths", " 3, 4 ") == (3, 4)
    assert _config.parse_value(cls, "mlp_widths", "3") == (3,)
    for text in ("1,,2", ",1", "1,", " , "):
        with pytest.raises(_config.ConfigError, match="empty element"):
            _config.parse_value(cls, "mlp_widths", text)
    g = _module("guidance").Config
    assert _config.rules(g)["mixture_sd"].describe() == "2 comma-separated values, each float > 0"
    with pytest.raises(_config.ConfigError, match="3 element"):
        _config.check_value(g, "mixture_sd", (1.0, 1.0, 1.0))


# ----------------------------------------------------------------------------- overwrite policy


@pytest.fixture
def fake_run(monkeypatch):
    """approx_classics's run/claims/plot replaced by fast fakes; plot draws ``figures`` (a list
    to edit)."""
    from opdiff import claims as cl

    module = _module("approx_classics")
    state = {"figures": ["a.png", "b.png"], "calls": 0}

    def run(cfg, key):
        state["calls"] += 1
        return {"call": state["calls"]}

    def claims(cfg, results):
        return [cl.within("fake", 1.0, 1.0)]

    def plot(results, out_dir):
        names = []
        for fig_name in state["figures"]:
            fig, axes = plotting.new_figure()
            axes[0, 0].plot([0, 1], [0, results["call"]])
            names += plotting.save(fig, out_dir / fig_name)
        return names

    monkeypatch.setattr(module, "run", run)
    monkeypatch.setattr(module, "claims", claims)
    monkeypatch.setattr(module, "plot", plot)
    return state


def _record(out):
    return json.loads((out / "approx_classics" / "results.json").read_text())


def test_second_run_into_the_same_out_is_refused_without_force(capsys, tmp_path, fake_run):
    argv = ["run", "approx_classics", "--preset", "smoke", "--out", str(tmp_path)]
    assert main(argv) == 0
    before = (tmp_path / "approx_classics" / "results.json").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results of an earlier run" in err and "--force" in err, err
    assert (tmp_path / "approx_classics" / "results.json").read_bytes() == before
    assert fake_run["calls"] == 1

    fake_run["figures"] = ["a.png"]  # the new run no longer draws b.png
    assert main(argv + ["--force"]) == 0
    assert _record(tmp_path)["results"]["call"] == 2
    assert sorted(p.name for p in (tmp_path / "approx_classics").iterdir()) == \
        ["a.png", "results.json"]  # stale figure gone, no temporary files left


def test_all_twice_needs_force(capsys, tmp_path, fake_run, monkeypatch):
    import experiments._runner as runner

    monkeypatch.setattr(runner, "EXPERIMENTS", ("approx_classics",))
    argv = ["all", "--preset", "smoke", "--out", str(tmp_path)]
    assert main(argv) == 0
    summary = (tmp_path / "summary.md").read_text()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --force" in err, err
    assert fake_run["calls"] == 1 and (tmp_path / "summary.md").read_text() == summary
    assert main(argv + ["--force"]) == 0
    assert fake_run["calls"] == 2 and _record(tmp_path)["results"]["call"] == 2


def test_a_failed_forced_run_leaves_no_stale_record(tmp_path, fake_run, monkeypatch):
    argv = ["run", "approx_classics", "--preset", "smoke", "--out", str(tmp_path)]
    assert main(argv) == 0

    def boom(cfg, key):
        raise RuntimeError("experiment failed")

    monkeypatch.setattr(_module("approx_classics"), "run", boom)
    assert main(argv + ["--force"]) == 1
    # the old record is gone (it would describe figures the failed run may have replaced);
    # a plain rerun is then allowed
    assert not (tmp_path / "approx_classics" / "results.json").exists()


# ----------------------------------------------------------------------------- atomic figures


def _figure(y):
    fig, axes = plotting.new_figure()
    axes[0, 0].plot(np.arange(3), np.asarray(y, float))
    return fig


@pytest.mark.parametrize("pdf", [False, True])
def test_figures_are_written_atomically(tmp_path, monkeypatch, pdf):
    path = tmp_path / "fig.png"
    assert plotting.save(_figure([0, 1, 2]), path, pdf=pdf) == \
        (["fig.png", "fig.pdf"] if pdf else ["fig.png"])
    png = path.read_bytes()
    assert png.startswith(b"\x89PNG")
    if pdf:
        assert path.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    mode = path.stat().st_mode & 0o777
    assert mode & 0o044, oct(mode)  # readable by others as usual (not a private temp file)

    from matplotlib.figure import Figure

    def disk_full(self, fname, **kwargs):
        fname.write(b"\x89PNG truncated")  # part of the file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    with pytest.raises(OSError, match="No space left"):
        plotting.save(_figure([2, 1, 0]), path, pdf=pdf)
    assert path.read_bytes() == png  # the earlier figure is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        (["fig.pdf", "fig.png"] if pdf else ["fig.png"])  # no temporary file left behind


def test_save_keeps_the_format_of_the_name(tmp_path):
    names = plotting.save(_figure([0, 1, 0]), tmp_path / "x.png", pdf=True)
    assert names == ["x.png", "x.pdf"]
    assert (tmp_path / "x.pdf").read_bytes()[:4] == b"%PDF"
    assert len((tmp_path / "x.png").read_bytes()) > 1000
