"""The HTML report, rendered by a real browser (headless Chromium, Debian's ``chromium``).

Oracles: the page a browser builds from ``index.html`` (``--dump-dom`` after the load event)
has every figure loaded (the page's own load handler counts ``naturalWidth > 0``), one claims
row per claim of every ``results.json`` with the same text and verdict, and the summary
counts; a screenshot is saved in the test's tmp dir. A broken figure link must be seen as
broken (the check can fail). Skipped, with the reason, only where no Chromium can be found.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from experiments import EXPERIMENTS
from experiments._html import build_report
from experiments._runner import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium found (apt-get install chromium; .ci/run does this where apt "
                "is available)")


def _chromium(args: list[str], page: Path, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--allow-file-access-from-files", f"--user-data-dir={cwd / 'profile'}",
           "--virtual-time-budget=10000", *args, page.as_uri()]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


class _Page(HTMLParser):
    """The body's data attributes and the claims rows ``(experiment, text, holds)``."""

    def __init__(self):
        super().__init__()
        self.body: dict[str, str] = {}
        self.rows: list[list] = []
        self._in_text = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "tr" and "claim" in (a.get("class") or "").split():
            self.rows.append([a["data-experiment"], "", a["data-holds"] == "true"])
        elif tag == "td" and a.get("class") == "claim-text":
            self._in_text = True

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_text = False

    def handle_data(self, data):
        if self._in_text:
            self.rows[-1][1] += data


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "res"
    for name in ("approx_classics", "rf_rates"):
        assert main(["run", name, "--preset", "smoke", "--out", str(out)]) == 0
    assert main(["report", "--out", str(out)]) == 0
    return out


def test_the_report_opens_in_chromium_with_every_figure_and_claim(results, tmp_path):
    page = results / "index.html"
    dom = _chromium(["--dump-dom"], page, tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Page()
    parsed.feed(dom.stdout)
    records = [json.loads((results / n / "results.json").read_text())
               for n in ("approx_classics", "rf_rates")]
    n_figs = sum(len(r["figures"]) for r in records)
    assert int(parsed.body["data-images-total"]) == n_figs >= 2
    assert parsed.body["data-images-loaded"] == parsed.body["data-images-total"]
    want = [[r["name"], c["claim"], bool(c["holds"])] for r in records for c in r["checks"]]
    got = [[e, html.unescape(t), h] for e, t, h in parsed.rows]
    assert got == want
    assert int(parsed.body["data-claims-total"]) == len(want)
    assert int(parsed.body["data-claims-held"]) == sum(h for *_, h in want)
    shot = tmp_path / "report.png"
    proc = _chromium([f"--screenshot={shot}", "--window-size=1280,1600"], page, tmp_path)
    assert proc.returncode == 0 and shot.stat().st_size > 20_000, proc.stderr[-2000:]


def test_the_report_of_a_smoke_all_run_loads_every_figure(smoke_all, tmp_path):
    # issue 19's must-show: the report of a smoke `all` run opens with every figure loaded
    out, proc = smoke_all
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _chromium(["--dump-dom"], out / "index.html", tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Page()
    parsed.feed(dom.stdout)
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*/results.json"))]
    assert len(records) == len(EXPERIMENTS)
    n_figs = sum(len(r["figures"]) for r in records)
    assert int(parsed.body["data-images-total"]) == n_figs > len(EXPERIMENTS)
    assert parsed.body["data-images-loaded"] == parsed.body["data-images-total"]
    assert int(parsed.body["data-claims-total"]) == len(parsed.rows) == sum(
        len(r["checks"]) for r in records)


def test_a_missing_figure_is_seen_as_broken(results, tmp_path):
    copy = tmp_path / "res"
    shutil.copytree(results, copy)
    record = json.loads((copy / "rf_rates" / "results.json").read_text())
    (copy / "rf_rates" / Path(record["figures"][0]).name).unlink()
    build_report(copy, order=("approx_classics", "rf_rates"))
    dom = _chromium(["--dump-dom"], copy / "index.html", tmp_path)
    parsed = _Page()
    parsed.feed(dom.stdout)
    assert int(parsed.body["data-images-loaded"]) == int(parsed.body["data-images-total"]) - 1


def test_failed_claims_are_marked(results, tmp_path):
    copy = tmp_path / "res"
    shutil.copytree(results, copy)
    path = copy / "approx_classics" / "results.json"
    record = json.loads(path.read_text())
    record["checks"][0]["holds"] = False
    path.write_text(json.dumps(record))
    other = json.loads((copy / "rf_rates" / "results.json").read_text())["checks"]
    held = sum(bool(c["holds"]) for c in record["checks"] + other)
    text = build_report(copy).read_text()
    assert text.count('class="claim fail"') == 1 + sum(not c["holds"] for c in other)
    assert "FAILS" in text and f'data-claims-held="{held}"' in text


def test_report_of_an_empty_folder_exits_2(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert "no results" in capsys.readouterr().err


def test_each_section_names_its_seed_and_the_page_explains_the_verdicts(tmp_path):
    (tmp_path / "approx_classics").mkdir()
    (tmp_path / "approx_classics" / "results.json").write_text(json.dumps(
        {"name": "approx_classics", "preset": "quick", "config": {"seed": 7}, "checks": [],
         "figures": [], "runtime_s": 1.0}))
    text = build_report(tmp_path).read_text()
    assert "preset <b>quick</b> · seed 7 · " in text
    assert 'class="legend">Every verdict is computed by <code>opdiff.claims</code>' in text
