"""`report.md`: the `slimmer.slim/v3` document as Markdown for a pull-request comment or
`$GITHUB_STEP_SUMMARY`. The verdict and the before/after table come first; long lists
go in `<details>`. Rendered from the JSON document alone, so `slim report` can
re-render a saved report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from slimmer.report import seccomp_view
from slimmer.report.common import (
    cache_line,
    context_rows,
    critical_path,
    dockerfile_sizes,
    facts_rows,
    human_bytes,
    md_cell,
    md_code,
    phase_bar,
)

LIMIT = 50  # rows per list: the whole report stays far below GitHub's 1 MiB


class _Md(str):
    """A cell that is Markdown already (code spans built with `md_code`): `_table`
    leaves it as it is and escapes every other cell with `md_cell`."""


def render(doc: Mapping[str, Any]) -> str:
    parts = [
        _verdict(doc),
        _before_after(doc),
        _base(doc),
        _context(doc),
        _seccomp(doc),
        _probes(doc),
        _findings(doc),
        _reasons(doc),
        _removed(doc),
        _packages(doc),
        _kept(doc),
        _warnings(doc),
        _phases(doc),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _verdict(doc: Mapping[str, Any]) -> str:
    status = doc["verification"]["status"]
    icon = {"passed": "✅", "failed": "❌", "skipped": "⚠️"}[status]
    src, res = doc["source"], doc["result"]
    tagged = "tagged" if res["tagged"] else "**not tagged**"
    return (
        f"### {icon} slim `{md_code(src['ref'], in_table=False)}` → "
        f"`{md_code(res['ref'], in_table=False)}`: verification {status}\n\n"
        f"{human_bytes(src['size_bytes'])} → **{human_bytes(res['size_bytes'])}** "
        f"({res['reduction']}x smaller), {tagged}; slimmer {doc['slimmer_version']}"
        f"{' on ' + doc['engine'] if doc.get('engine') else ''}."
        f"{_dockerfile(doc)}"
    )


def _dockerfile(doc: Mapping[str, Any]) -> str:
    d = doc.get("dockerfile")
    if not d:
        return ""
    return (
        f" The Dockerfile `{md_code(d['path'], in_table=False)}` builds "
        f"{dockerfile_sizes(d)}; its verification {d['verification']}."
    )


def _context(doc: Mapping[str, Any]) -> str:
    rows = context_rows(doc)
    if not rows:
        return ""
    return "#### Run context (for the runs only; values never shown)\n\n" + _table(
        ("what", "detail"), rows
    )


def _seccomp(doc: Mapping[str, Any]) -> str:
    rows = seccomp_view.rows(doc)
    if not rows:
        return ""
    return "#### Seccomp profile (--seccomp)\n\n" + _table(("what", "detail"), rows)


def _table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    return value if isinstance(value, _Md) else md_cell(value)


def _listed(items: Sequence[str]) -> _Md:
    return _Md(", ".join(f"`{md_code(i)}`" for i in items) if items else "none")


def _before_after(doc: Mapping[str, Any]) -> str:
    rows = facts_rows(doc)
    if not rows:
        return ""
    return _table(("", "before", "after"), [(n, _md_list(b), _md_list(a)) for n, b, a in rows])


def _md_list(cell: str | tuple[str, ...]) -> str | _Md:
    return _listed(cell) if isinstance(cell, tuple) else cell


def _base(doc: Mapping[str, Any]) -> str:
    base = doc.get("base")
    if not base:
        return ""
    lines = [
        f"**Base** `{base['ref']}` ({base['why']}); app layer "
        f"{human_bytes(base['app_layer_bytes'])}, {base['left_to_base']['paths']} kept paths "
        f"left to the base."
    ]
    if base["decisions"]:
        rows = [(d["path"], d["action"], d["detail"]) for d in base["decisions"]]
        lines.append(_details(f"{len(rows)} decisions", _table(("path", "action", "why"), rows)))
    return "\n\n".join(lines)


def _probes(doc: Mapping[str, Any]) -> str:
    rows = []
    for p in doc["verification"]["probes"]:
        slim = p["slim"]
        after = "—" if slim is None else f"{'ok' if slim['ok'] else 'FAIL'} {slim['code']}"
        before = f"{'ok' if p['original']['ok'] else 'FAIL'} {p['original']['code']}"
        rows.append((p["probe"], before, after, "yes" if p["same"] else "**no**"))
    text = "**Probes**\n\n" + _table(("probe", "original", "slim", "same"), rows)
    diffs = [d for r in doc["verification"]["rounds"] for d in r["differences"]]
    if doc["verification"]["status"] == "failed":
        blamed = [f"`{md_code(a['path'], in_table=False)}` ({md_cell(a['looked_up_by'])})"
                  for r in doc["verification"]["rounds"]
                  for a in r["added_paths"]]  # fmt: skip
        text += "\n\nWhat differed:\n\n" + "\n".join(f"- {md_cell(d)}" for d in diffs)
        if blamed:
            text += "\n\nMissing files found by tracing the slim image: " + ", ".join(blamed)
    return text


def _reasons(doc: Mapping[str, Any]) -> str:
    counts = doc.get("files_by_reason") or {}
    rows = [
        (reason, human_bytes(size), counts.get(reason, ""))
        for reason, size in sorted(doc["bytes_by_reason"].items(), key=lambda kv: -kv[1])
    ]
    return "**Kept, by reason**\n\n" + _table(("reason", "bytes", "paths"), rows)


def _removed(doc: Mapping[str, Any]) -> str:
    removed = doc.get("removed")
    if not removed:
        return ""
    dirs = [(d["path"], human_bytes(d["bytes"]), d["files"]) for d in removed["largest_dirs"]]
    files = [(f["path"], human_bytes(f["bytes"])) for f in removed["largest_files"]]
    return _details(
        "Largest removed directories and files",
        _table(("directory", "bytes", "files"), dirs) + "\n\n" + _table(("file", "bytes"), files),
    )


def _packages(doc: Mapping[str, Any]) -> str:
    pkgs = doc.get("packages") or []
    if not pkgs:
        return ""
    by = {s: [p for p in pkgs if p["status"] == s] for s in ("kept", "partly", "removed")}
    title = ", ".join(f"{len(v)} {k}" for k, v in by.items())
    rows = [
        (p["name"], p["version"], p["manager"], p["status"], f"{p['kept_files']}/{p['files']}")
        for p in pkgs[:LIMIT]
    ]
    more = f"\n\n…and {len(pkgs) - LIMIT} more in report.json" if len(pkgs) > LIMIT else ""
    table = _table(("package", "version", "manager", "status", "files kept"), rows)
    return _details(f"Packages: {title}", table + more)


def _kept(doc: Mapping[str, Any]) -> str:
    kept = sorted(doc["kept"], key=lambda k: -k["size_bytes"])
    rows = [
        (k["path"], human_bytes(k["size_bytes"]), _reason(k["reasons"][0])) for k in kept[:LIMIT]
    ]
    more = f"\n\n…and {len(kept) - LIMIT} more in report.json" if len(kept) > LIMIT else ""
    return _details(
        f"Largest of the {len(kept):,} kept paths, and why",
        _table(("path", "bytes", "why"), rows) + more,
    )


def _reason(r: Mapping[str, Any]) -> str:
    head = f"{r['kind']} ({r['source']})" if r.get("source") else r["kind"]
    return f"{head}: {r['detail']}"


def _warnings(doc: Mapping[str, Any]) -> str:
    warnings = doc.get("warnings") or []
    if not warnings:
        return ""
    body = "\n".join(f"- {md_cell(w)}" for w in warnings[:LIMIT])
    return _details(f"{len(warnings)} warnings", body)


def _phases(doc: Mapping[str, Any]) -> str:
    """Each phase's wall time and its time on the critical path (phases overlap: the
    source is read beside its tracing), with a bar of both, and the peak RSS."""
    phases = doc["phases"]
    crit = critical_path(phases)
    total = sum(crit)
    rows = [
        (p["name"], f"{p['seconds']:.1f} s", f"{c:.1f} s",
         phase_bar(p["seconds"], c, total),
         human_bytes(p["peak_rss_bytes"]) if p.get("peak_rss_bytes") else "")
        for p, c in zip(phases, crit, strict=True)
    ]  # fmt: skip
    head = ("phase", "wall time", "on the critical path", "█ critical, ░ beside", "peak RSS")
    body = _table(head, rows)
    cached = cache_line(doc)
    if cached is not None:
        body += f"\n\nFrom the read cache: {md_cell(cached)}."
    return _details("Time and peak memory by phase", body)


def _findings(doc: Mapping[str, Any]) -> str:
    """`slim lint` of the input and of the result: what slimming fixed and what it left."""
    found = doc.get("findings")
    if not found:
        return ""
    c = found["counts"]
    text = (
        f"**Findings** (`slim lint`): {c['fixed']} fixed by slimming, "
        f"{c['still']} still present, {c['new']} new"
    )
    for key, title in (("fixed", "Fixed"), ("still", "Still present"), ("new", "New")):
        rows = [
            (f["severity"], _code(f["id"]), _code(f["evidence"]), f["detail"], f["fix"])
            for f in found[key][:LIMIT]
        ]
        if rows:
            head = ("severity", "ID", "evidence", "detail", "fix")
            text += "\n\n" + _details(f"{title} ({len(found[key])})", _table(head, rows))
    return text


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _code(value: object) -> _Md:
    return _Md(f"`{md_code(value)}`")
