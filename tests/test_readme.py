"""The README's library examples run as printed, with smaller budgets.

Each ```python block of README.md is executed in order in one namespace (as a reader pasting
them into one session would), in a temporary folder; step counts and dataset sizes are cut so
the whole walk takes seconds. The last block (data parallelism) reuses the first example's
loss, network and data, so it runs right after the first.
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"
SMALLER = [(r"steps=5000", "steps=40"), (r"checkpoint_every=1000", "checkpoint_every=20"),
           (r"n_funcs=10_000", "n_funcs=200"), (r"batch_size=1024", "batch_size=64")]


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _shrink(code: str) -> str:
    for pattern, repl in SMALLER:
        code = re.sub(pattern, repl, code)
    return code


def test_readme_library_examples_run(tmp_path, monkeypatch):
    blocks = _blocks()
    assert len(blocks) >= 6, "the README lost its library examples"
    monkeypatch.chdir(tmp_path)
    x64 = jax.config.jax_enable_x64
    try:
        first: dict = {}
        exec(compile(_shrink(blocks[0]), "README block 1", "exec"), first)
        assert first["result"].step == 40 and np.isfinite(first["result"].losses).all()
        assert (tmp_path / "runs" / "runge" / "checkpoints" / "40").is_dir()
        parallel = dict(first)
        exec(compile(_shrink(blocks[-1]), "README block (mesh)", "exec"), parallel)
        np.testing.assert_allclose(parallel["result"].losses[0], first["result"].losses[0],
                                   rtol=0.5)  # same model and data, another batch size
        ns = dict(first)
        for i, code in enumerate(blocks[1:-1], start=2):
            exec(compile(_shrink(code), f"README block {i}", "exec"), ns)
        assert (tmp_path / "antiderivative.npz").exists()
        assert np.asarray(ns["errors"]).shape == (3, 4)
        assert np.isfinite(float(np.sum(ns["kl"])))
        assert ns["imgs"].shape == (100, 8, 8)
    finally:
        jax.config.update("jax_enable_x64", x64)
