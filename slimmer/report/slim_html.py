"""`report.html`: one self-contained page (inline CSS, SVG and script, no request leaves
it) rendered from the `slimmer.slim/v3` document.

- Where the bytes are, before beside after: two treemaps by directory (two levels
  deep) laid out by `squarify`. The after map splits each directory by the reason
  its kept bytes are there.
- Sortable tables of the kept paths and of the largest removed ones, with reasons.
- The probe results, before and after.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import squarify

from slimmer.report import seccomp_view
from slimmer.report.common import (
    Cell,
    cache_line,
    context_rows,
    critical_path,
    dockerfile_sizes,
    facts_rows,
    human_bytes,
    phase_bar,
)

W, H = 560, 360
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d37295")  # fmt: skip
ROWS = 2000  # kept paths shown; report.json holds all


def render(doc: Mapping[str, Any]) -> str:
    reasons = sorted(doc["bytes_by_reason"], key=lambda r: -doc["bytes_by_reason"][r])
    colours = {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(reasons)}
    src, res = doc["source"], doc["result"]
    body = "\n".join(
        [
            f"<h1>slim <code>{_e(src['ref'])}</code> → <code>{_e(res['ref'])}</code></h1>",
            _verdict(doc),
            _facts(doc),
            '<section class="maps">',
            _treemap("before", doc.get("dirs") or [], "before", src["size_bytes"], None, 1.0),
            _treemap(
                "after",
                doc.get("dirs") or [],
                "after",
                res["size_bytes"],
                colours,
                _area(doc.get("dirs") or []),
            ),  # fmt: skip
            "</section>",
            _legend(colours, doc["bytes_by_reason"]),
            _context(doc),
            _seccomp(doc),
            "<h2>Probes</h2>",
            _probes(doc),
            _findings(doc),
            "<h2>Kept paths, and why</h2>",
            _kept(doc),
            "<h2>Largest removed</h2>",
            _removed(doc),
            _phases(doc),
        ]
    )
    return PAGE.format(title=_e(f"slim {src['ref']}"), body=body, script=SCRIPT, style=STYLE)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _verdict(doc: Mapping[str, Any]) -> str:
    status = doc["verification"]["status"]
    src, res = doc["source"], doc["result"]
    return (
        f'<p class="verdict {status}" data-status="{status}">Verification {status}: '
        f'<span data-bytes-before="{src["size_bytes"]}">{human_bytes(src["size_bytes"])}</span>'
        f' → <span data-bytes-after="{res["size_bytes"]}">{human_bytes(res["size_bytes"])}</span>'
        f" ({res['reduction']}x smaller){'' if res['tagged'] else ', not tagged'}</p>"
        f"{_dockerfile(doc)}"
    )


def _dockerfile(doc: Mapping[str, Any]) -> str:
    d = doc.get("dockerfile")
    if not d:
        return ""
    return (
        f'<p class="dockerfile">The Dockerfile <code>{_e(d["path"])}</code> builds '
        f"{_e(dockerfile_sizes(d))}; its verification {_e(d['verification'])}.</p>"
    )


def _treemap(
    which: str, dirs: Sequence[Mapping[str, Any]], key: str, total: int,
    colours: Mapping[str, str] | None, scale: float,
) -> str:  # fmt: skip
    """Directories by their bytes; `scale` shrinks the map's sides so that its area
    against the before map's is the kept share of the bytes."""
    items = sorted((d for d in dirs if d[key] > 0), key=lambda d: -d[key])
    rects = _layout([d[key] for d in items], 0, 0, W * scale, H * scale)
    shapes = []
    for d, (x, y, w, h) in zip(items, rects, strict=True):
        title = f"{d['path']}: {human_bytes(d[key])}"
        if colours is None:
            shapes.append(_rect(x, y, w, h, "#9aa5b1", title, d["path"], d[key]))
        else:
            parts = sorted(d["by_reason"].items(), key=lambda kv: -kv[1])
            sub = _layout([v for _, v in parts], x, y, w, h)
            for (reason, size), (sx, sy, sw, sh) in zip(parts, sub, strict=True):
                label = f"{d['path']} ({reason}): {human_bytes(size)}"
                shapes.append(_rect(sx, sy, sw, sh, colours[reason], label, d["path"], size))
        if w > 60 and h > 14:
            shapes.append(f'<text x="{x + 3:.1f}" y="{y + 12:.1f}">{_e(d["path"])}</text>')
    return (
        f"<figure><figcaption>{which}: {human_bytes(total)}</figcaption>"
        f'<svg id="map-{which}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'data-total="{sum(d[key] for d in items)}">{"".join(shapes)}</svg></figure>'
    )


def _area(dirs: Sequence[Mapping[str, Any]]) -> float:
    before = sum(d["before"] for d in dirs)
    return max(0.05, (sum(d["after"] for d in dirs) / before) ** 0.5) if before else 1.0


def _layout(
    values: Sequence[int], x: float, y: float, w: float, h: float
) -> list[tuple[float, ...]]:
    if not values or w <= 0 or h <= 0:
        return [(x, y, 0.0, 0.0) for _ in values]
    sizes = squarify.normalize_sizes(list(values), w, h)
    return [(r["x"], r["y"], r["dx"], r["dy"]) for r in squarify.squarify(sizes, x, y, w, h)]


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str, path: str,
          size: int) -> str:  # fmt: skip
    return (
        f'<rect x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" fill="{fill}" '
        f'data-path="{_e(path)}" data-bytes="{size}"><title>{_e(title)}</title></rect>'
    )


def _facts(doc: Mapping[str, Any]) -> str:
    """The before/after table, the Markdown report's rows."""
    rows = facts_rows(doc)
    if not rows:
        return ""

    def cell(value: Cell) -> str:
        return _e(", ".join(value) or "none") if isinstance(value, tuple) else _e(value)

    trs = "".join(
        f"<tr><th>{_e(name)}</th><td>{cell(b)}</td><td>{cell(a)}</td></tr>" for name, b, a in rows
    )
    head = "<thead><tr><th></th><th>before</th><th>after</th></tr></thead>"
    return f'<h2>Before and after</h2><table class="facts">{head}<tbody>{trs}</tbody></table>'


def _findings(doc: Mapping[str, Any]) -> str:
    """`slim lint` of the input and of the result, one sortable table."""
    found = doc.get("findings")
    if not found:
        return ""
    c = found["counts"]
    head = f"<h2>Findings</h2><p>{c['fixed']} fixed by slimming, {c['still']} still present, "
    head += f"{c['new']} new (<code>slim lint</code>)</p>"
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    rows = [
        [(state, state), (f["severity"], order.get(f["severity"], 9)), (f["id"], f["id"]),
         (f["evidence"], f["evidence"]), (f["detail"], f["detail"])]
        for key, state in (("fixed", "fixed"), ("still", "still present"), ("new", "new"))
        for f in found[key]
    ]  # fmt: skip
    cols = ("after slimming", "severity", "ID", "evidence", "detail")
    return head + (_table(cols, rows, "findings") if rows else "")


def _legend(colours: Mapping[str, str], sizes: Mapping[str, int]) -> str:
    items = "".join(
        f'<li><span style="background:{c}"></span>{_e(r)} {human_bytes(sizes[r])}</li>'
        for r, c in colours.items()
    )
    return f'<ul class="legend">{items}</ul>'


def _table(head: Sequence[str], rows: Sequence[Sequence[tuple[str, object]]], tid: str) -> str:
    """Rows of (text, sort key) cells; headers sort on click."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    trs = "".join(
        "<tr>" + "".join(f'<td data-key="{_e(k)}">{_e(t)}</td>' for t, k in row) + "</tr>"
        for row in rows
    )
    head_row = f"<thead><tr>{th}</tr></thead>"
    return f'<table class="sortable" id="{tid}">{head_row}<tbody>{trs}</tbody></table>'


def _phases(doc: Mapping[str, Any]) -> str:
    """Each phase's wall time and time on the critical path, with the Markdown report's
    bar (report.common.phase_bar)."""
    phases = doc["phases"]
    crit = critical_path(phases)
    total = sum(crit)
    rows = [
        [(p["name"], i), (f"{p['seconds']:.1f} s", p["seconds"]), (f"{c:.1f} s", c),
         (phase_bar(p["seconds"], c, total), c)]
        for i, (p, c) in enumerate(zip(phases, crit, strict=True))
    ]  # fmt: skip
    head = ("phase", "wall time", "on the critical path", "█ critical, ░ beside")
    cached = cache_line(doc)
    tail = f"<p>From the read cache: {_e(cached)}.</p>" if cached is not None else ""
    return "<h2>Time by phase</h2>" + _table(head, rows, "phases") + tail


def _context(doc: Mapping[str, Any]) -> str:
    rows = [[(what, what), (detail, detail)] for what, detail in context_rows(doc)]
    if not rows:
        return ""
    return "<h2>Run context</h2>" + _table(("what", "detail"), rows, "context")


def _seccomp(doc: Mapping[str, Any]) -> str:
    rows = [[(what, what), (detail, detail)] for what, detail in seccomp_view.rows(doc)]
    if not rows:
        return ""
    return "<h2>Seccomp profile</h2>" + _table(("what", "detail"), rows, "seccomp")


def _probes(doc: Mapping[str, Any]) -> str:
    rows = []
    for p in doc["verification"]["probes"]:
        slim, orig = p["slim"] or {}, p["original"]
        rows.append([
            (p["probe"], p["probe"]),
            (f"{'ok' if orig['ok'] else 'FAIL'} {orig['code']}", orig["ok"]),
            (f"{'ok' if slim.get('ok') else 'FAIL'} {slim.get('code')}", slim.get("ok")),
            ("yes" if p["same"] else "no", p["same"]),
        ])  # fmt: skip
    return _table(("probe", "original", "slim", "same"), rows, "probes")


def _kept(doc: Mapping[str, Any]) -> str:
    kept = sorted(doc["kept"], key=lambda k: -k["size_bytes"])[:ROWS]
    rows = [
        [
            (k["path"], k["path"]),
            (human_bytes(k["size_bytes"]), k["size_bytes"]),
            (_reason(k["reasons"][0]), k["reasons"][0]["kind"]),
        ]
        for k in kept
    ]
    return _table(("path", "bytes", "why"), rows, "kept")


def _reason(r: Mapping[str, Any]) -> str:
    head = f"{r['kind']} ({r['source']})" if r.get("source") else r["kind"]
    return f"{head}: {r['detail']}"


def _removed(doc: Mapping[str, Any]) -> str:
    removed = doc.get("removed") or {"largest_dirs": [], "largest_files": []}
    rows = [
        [(d["path"], d["path"]), (human_bytes(d["bytes"]), d["bytes"]), ("directory", "dir")]
        for d in removed["largest_dirs"]
    ] + [
        [(f["path"], f["path"]), (human_bytes(f["bytes"]), f["bytes"]), ("file", "file")]
        for f in removed["largest_files"]
    ]
    return _table(("path", "bytes", "kind"), rows, "removed")


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328}
code{font-family:ui-monospace,monospace}
.verdict.passed{color:#1a7f37}.verdict.failed{color:#cf222e}
.maps{display:flex;gap:24px;flex-wrap:wrap}
figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
svg{border:1px solid #d0d7de}svg rect{stroke:#fff;stroke-width:.5}
svg text{font-size:10px;fill:#fff;pointer-events:none}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:12px}
.legend span{display:inline-block;width:12px;height:12px;margin-right:4px}
table{border-collapse:collapse;margin-bottom:16px}
th,td{border:1px solid #d0d7de;padding:2px 8px;text-align:left}
th{cursor:pointer;background:#f6f8fa}
"""

SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.key, y = b.cells[col].dataset.key;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title><style>{style}</style></head>
<body>
{body}
<script>{script}</script>
</body></html>
"""
