"""The HTML report of a results folder: ``OUT/index.html``, one static offline page.

Built from the saved records alone (``OUT/NAME/results.json``; the figures are linked, not
redrawn): a summary table (claims held / total and run time per experiment), then one section
per experiment with its description, figures, claims table (failures marked), preset, config,
run time, device and versions. No server, no network, no external script or style sheet; one
inline script counts the figures that loaded (``<body data-images-loaded=…>``), which is what
the browser test reads.
"""

from __future__ import annotations

import html
import json
import platform
from pathlib import Path

from ._report import fmt, measured_text

INDEX = "index.html"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp")

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d232a;
 background:#f6f7f9;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin:36px 0 6px;padding-top:8px;border-top:1px solid #d9dde3}
.sub{color:#5a6472;margin:0 0 18px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;margin:10px 0}
th,td{border:1px solid #e1e4e8;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#eef1f5}
td.num{font-variant-numeric:tabular-nums;max-width:230px;overflow-wrap:anywhere}
td.claim-text{width:48%}table.summary td.num{white-space:nowrap}
tr.fail td{background:#fde8e8}tr.fail td.verdict{color:#a4161a;font-weight:700}
tr.ok td.verdict{color:#1b7f3b}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.badge.ok{background:#dcf3e3;color:#1b7f3b}.badge.fail{background:#fde0e0;color:#a4161a}
.figs{display:flex;flex-wrap:wrap;gap:12px;margin:10px 0}
.figs figure{margin:0;background:#fff;border:1px solid #e1e4e8;padding:6px;max-width:100%}
.figs img{max-width:560px;width:100%;height:auto;display:block}
.figs figcaption{font-size:12px;color:#5a6472;margin-top:4px}
nav ol{columns:3;font-size:14px}details{margin:8px 0}
pre{background:#fff;border:1px solid #e1e4e8;padding:8px;overflow:auto;font-size:12px}
.meta{font-size:13px;color:#5a6472}
.legend{font-size:13px;color:#3a4250;max-width:980px}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-loaded', String(ok.length));
  imgs.forEach(function (i) { if (!(i.naturalWidth > 0)) { i.setAttribute('data-broken', '1'); } });
});
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


_LEGEND = (
    "Every verdict is computed by <code>opdiff.claims</code>: an <i>upper_bound</i> or "
    "<i>lower_bound</i> holds when the measurement is on the right side of the bound (within "
    "the stated tolerance; tightness = the measured/bound ratio at the closest point), an "
    "<i>equality</i> when it is within the stated tolerance of the exact value (tightness = "
    "worst error/tolerance), a <i>rate</i> when the fitted log-log slope exceeds the theory's "
    "exponent by at most z standard errors (the error decays at least that fast). A "
    "<i>finding</i> is a measured value &plusmn; its standard error with no theorem behind it: "
    "it holds when both are finite. Its SE is the one the experiment states, most often over "
    "test functions at one trained model, so the training seed is not in it; "
    "<code>all --seed N</code> and <code>compare</code> show how far another seed moves it.")


def _records(out: Path, order: tuple[str, ...]) -> list[dict]:
    """The records under ``out``, registry order first, then any other folder alphabetically."""
    found = {p.parent.name: p for p in out.glob("*/results.json")}
    names = [n for n in order if n in found] + sorted(n for n in found if n not in order)
    records = []
    for name in names:
        try:
            rec = json.loads(found[name].read_text())
        except (OSError, ValueError) as err:
            rec = {"name": name, "error": f"unreadable results.json: {err}"}
        rec.setdefault("name", name)
        records.append(rec)
    return records


def _claims_table(rec: dict) -> str:
    rows = []
    for c in rec.get("checks", []):
        ok = bool(c.get("holds"))
        tight = c.get("tightness")
        rows.append(
            f'<tr class="claim {"ok" if ok else "fail"}" data-experiment="{_e(rec["name"])}" '
            f'data-holds="{str(ok).lower()}"><td class="claim-text">{_e(c.get("claim", ""))}</td>'
            f'<td>{_e(c.get("kind", "–"))}</td><td class="num">{_e(measured_text(c))}</td>'
            f'<td class="num">{_e(fmt(c.get("bound")))}</td>'
            f'<td class="num">{_e("–" if tight is None else fmt(tight))}</td>'
            f'<td class="verdict">{"holds" if ok else "FAILS"}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("claim", "kind", "measured", "bound", "tightness",
                                              "verdict"))
    return f"<table class=\"claims\"><tr>{head}</tr>{''.join(rows)}</table>"


def _figures(rec: dict, out: Path) -> str:
    items = []
    for fig in rec.get("figures", []):
        rel = f"{rec['name']}/{Path(str(fig)).name}"
        if Path(rel).suffix.lower() in _IMAGE_SUFFIXES:
            items.append(f'<figure><a href="{_e(rel)}"><img src="{_e(rel)}" alt="{_e(fig)}" '
                         f'loading="eager"></a><figcaption>{_e(fig)}</figcaption></figure>')
        else:
            items.append(f'<figure><a href="{_e(rel)}">{_e(fig)}</a></figure>')
    return f'<div class="figs">{"".join(items)}</div>' if items else ""


def _section(rec: dict, out: Path, description: str) -> str:
    name = rec["name"]
    if "error" in rec:
        return f'<section id="{_e(name)}"><h2>{_e(name)}</h2><p>{_e(rec["error"])}</p></section>'
    checks = rec.get("checks", [])
    held = sum(bool(c.get("holds")) for c in checks)
    badge = "ok" if held == len(checks) else "fail"
    seed = rec.get("config", {}).get("seed", "?")
    meta = (f'preset <b>{_e(rec.get("preset"))}</b> · seed {_e(seed)} · '
            f'{fmt(rec.get("runtime_s"))} s · '
            f'{_e(rec.get("device", "?"))} · jax {_e(rec.get("jax_version", "?"))} · '
            f'{_e(rec.get("dtype", "?"))}')
    config = json.dumps(rec.get("config", {}), indent=1, sort_keys=True)
    return (f'<section id="{_e(name)}"><h2>{_e(name)} <span class="badge {badge}">{held}/'
            f'{len(checks)} claims hold</span></h2><p>{_e(description)}</p>'
            f'<p class="meta">{meta}</p>{_figures(rec, out)}{_claims_table(rec)}'
            f'<details><summary>config</summary><pre>{_e(config)}</pre></details></section>')


def build_report(out, *, order: tuple[str, ...] = (), descriptions: dict | None = None) -> Path:
    """Write ``OUT/index.html`` from the records in ``OUT`` and return its path.

    Args:
        out: a results folder (``OUT/NAME/results.json`` per experiment).
        order: experiment names in the order to show them (others follow alphabetically).
        descriptions: ``{name: one line}`` (the registry's ``DESCRIPTION``); missing: blank.

    Raises:
        FileNotFoundError: if ``out`` holds no ``*/results.json``.
    """
    out = Path(out)
    records = _records(out, tuple(order))
    if not records:
        raise FileNotFoundError(f"no results in {out} (expected {out}/NAME/results.json); run "
                                f"an experiment first")
    descriptions = descriptions or {}
    total = sum(len(r.get("checks", [])) for r in records)
    held = sum(bool(c.get("holds")) for r in records for c in r.get("checks", []))
    seconds = sum(float(r.get("runtime_s") or 0.0) for r in records)
    rows = []
    for r in records:
        cs = r.get("checks", [])
        h = sum(bool(c.get("holds")) for c in cs)
        cls = "ok" if h == len(cs) and "error" not in r else "fail"
        rows.append(f'<tr class="{cls}"><td><a href="#{_e(r["name"])}">{_e(r["name"])}</a></td>'
                    f'<td>{_e(r.get("preset", "?"))}</td><td class="num">{h}/{len(cs)}</td>'
                    f'<td class="num">{fmt(r.get("runtime_s"))}</td></tr>')
    summary = ("<table class=\"summary\"><tr><th>experiment</th><th>preset</th><th>claims "
               f"held</th><th>run time (s)</th></tr>{''.join(rows)}</table>")
    nav = "".join(f'<li><a href="#{_e(r["name"])}">{_e(r["name"])}</a></li>' for r in records)
    sections = "".join(_section(r, out, descriptions.get(r["name"], "")) for r in records)
    failed = total - held
    page = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>opdiff results</title><style>{_STYLE}</style></head>"
        f'<body data-claims-total="{total}" data-claims-held="{held}"><main>'
        "<h1>opdiff results</h1>"
        f'<p class="sub">{len(records)} experiments · <b>{held} of {total} claims hold</b>'
        f'{f" · <b style=color:#a4161a>{failed} fail</b>" if failed else ""} · run time '
        f'{seconds / 60:.1f} min · report written by Python {_e(platform.python_version())}</p>'
        f"{summary}<p class=\"legend\">{_LEGEND}</p>"
        f"<nav><h3>Contents</h3><ol>{nav}</ol></nav>{sections}</main>"
        f"<script>{_SCRIPT}</script></body></html>\n")
    path = out / INDEX
    tmp = out / f".{INDEX}.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["INDEX", "build_report"]
