"""Every ``python`` block of README.md runs as pasted, in order, in one fresh interpreter (as a
reader pasting them into one session would), each in at most 60 s on this 2-core CPU, from an
empty working directory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 60.0

DRIVER = r"""
import json, sys, time, traceback
blocks = json.loads(open(sys.argv[1]).read())
ns = {"__name__": "__main__"}
times = []
for i, code in enumerate(blocks):
    t0 = time.perf_counter()
    try:
        exec(compile(code, f"README block {i + 1}", "exec"), ns)
    except BaseException:
        traceback.print_exc()
        print(json.dumps({"failed": i + 1, "times": times}))
        sys.exit(1)
    times.append(time.perf_counter() - t0)
print(json.dumps({"failed": None, "times": times}))
"""


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_python_blocks_run_as_pasted_in_order(tmp_path):
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 5
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    (tmp_path / "driver.py").write_text(DRIVER)
    proc = subprocess.run([sys.executable, "driver.py", "blocks.json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60 * (len(blocks) + 2),
                          env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
                               "HOME": str(Path.home())})
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["failed"] is None, (
        f"README python block {report['failed']} raised:\n{proc.stderr[-4000:]}")
    slow = {i + 1: round(t, 1) for i, t in enumerate(report["times"]) if t > LIMIT_S}
    assert not slow, f"README blocks over {LIMIT_S:.0f} s (block: seconds): {slow}"
