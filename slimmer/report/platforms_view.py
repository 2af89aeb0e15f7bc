"""Render an `IndexResult` (`slim IMAGE --platform ...` on an image index): the
`slimmer.platforms/v1` document and the terminal's one row per platform. Each
platform's own `slimmer.slim/v3` report is a section of the run, written beside the
combined one (PLATFORM/report.json) and linked from it, never embedded; the Markdown
and HTML faces (platforms_md, platforms_html) are rendered from the document alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from slimmer import __version__
from slimmer.image.platforms import Platform
from slimmer.pipeline.multiplatform import IndexResult, PlatformRun
from slimmer.report.common import human_bytes

SCHEMA = "slimmer.platforms/v1"


def dir_name(p: Platform) -> str:
    """Where a platform's own report goes: `linux-arm64`, `linux-arm-v7`."""
    return str(p).replace("/", "-")


def to_json(r: IndexResult, reports: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `slimmer.platforms/v1` document (docs/schemas/platforms-v1.json). `reports`
    maps a platform to its own report.json, relative to the combined report."""
    runs = [_platform(x, (reports or {}).get(str(x.platform))) for x in r.runs]
    native = next((run for run in runs if not run["emulated"]), None)
    for run in runs:
        run["slowdown"] = slowdown(run, native) if run["emulated"] else None
    passed = [x for x in r.runs if x.passed]
    return {
        "schema": SCHEMA,
        "slimmer_version": __version__,
        "source": r.source,
        "source_index": r.source_index,
        "output": r.output,
        "verdict": "failed" if r.failed else "passed",
        "exit_code": 4 if r.failed else 0,
        "platforms": runs,
        "skipped": [str(p) for p in r.skipped],
        "pushed": (
            {"ref": r.output, "digest": r.index, "media_type": r.index_media_type}
            if r.index is not None
            else None
        ),
        "totals": {
            "platforms": len(r.runs),
            "passed": len(passed),
            "before_bytes": sum(x.result.before_bytes for x in r.runs),
            "after_bytes": sum(x.result.after_bytes for x in passed),
        },
    }


def _platform(x: PlatformRun, report: str | None) -> dict[str, Any]:
    res = x.result
    status = "skipped" if res.verified is None else ("passed" if res.verified else "failed")
    return {
        "platform": str(x.platform),
        "source": x.source,
        "source_id": res.source_id,
        "output": x.output,
        "output_id": res.image_id if res.tagged else None,
        "tagged": res.tagged,
        "verification": status,
        "emulated": any("ran under emulation" in w for w in res.warnings),
        "before_bytes": res.before_bytes,
        "after_bytes": res.after_bytes,
        "reduction": round(res.reduction, 3),
        "seconds": round(sum(s for _, s in res.phases), 3),
        "phases": {name: round(s, 3) for name, s in res.phases},
        "probes": len(res.original_results),
        "pushed_digest": x.pushed,
        "report": report,
    }


# the phases that run the app (under emulation, the guest's code): their times compared
SLOWED = ("tracing", "verifying")


def slowdown(
    emulated: Mapping[str, Any], native: Mapping[str, Any] | None
) -> dict[str, float] | None:
    """How many times longer an emulated platform's app phases took than the native
    platform's in the same run (per phase, and both together); None with no native run."""
    if native is None:
        return None
    out: dict[str, float] = {}
    for phase in SLOWED:
        mine, theirs = emulated["phases"].get(phase), native["phases"].get(phase)
        if mine is not None and theirs:
            out[phase] = round(mine / theirs, 2)
    mine = sum(emulated["phases"].get(k, 0.0) for k in SLOWED)
    theirs = sum(native["phases"].get(k, 0.0) for k in SLOWED)
    if theirs:
        out["app"] = round(mine / theirs, 2)
    return out or None


def how(p: Mapping[str, Any]) -> str:
    """`native`, or `emulated` with how much slower its app phases ran than native."""
    if not p["emulated"]:
        return "native"
    ratio = (p.get("slowdown") or {}).get("app")
    return "emulated" if ratio is None else f"emulated ({ratio:.1f}x native)"


STATUS = {"passed": "[green]passed[/]", "failed": "[red]FAILED[/]", "skipped": "[yellow]not run[/]"}


def render(doc: Mapping[str, Any], report: str | None = None) -> RenderableType:
    """One row per platform (before, after, verified, emulated, time), then the skipped
    platforms, what was pushed and where the reports are."""
    t = Table(box=None, padding=(0, 2), header_style="bold")
    for col in ("platform", "slim image", "before", "after", "verified", "how", "time"):
        t.add_column(col, justify="right" if col in ("before", "after", "time") else "left")
    for p in doc["platforms"]:
        t.add_row(
            p["platform"],
            p["output"] if p["tagged"] else f"{p['output']} [red](not tagged)[/]",
            human_bytes(p["before_bytes"]),
            human_bytes(p["after_bytes"]),
            STATUS[p["verification"]],
            how(p),
            f"{p['seconds']:.0f}s",
        )
    lines: list[RenderableType] = [t, Text(summary_line(doc))]
    if doc["skipped"]:
        lines.append(Text("skipped (the engine cannot run them): " + ", ".join(doc["skipped"])))
    lines.append(
        Text(f"report: {report}" if report else "--report-dir DIR writes report.json/.md/.html")
    )
    return Group(*lines)


def summary_line(doc: Mapping[str, Any]) -> str:
    """The combined verdict in one line: how many platforms passed, the sizes, the push."""
    t = doc["totals"]
    pushed = doc["pushed"]
    where = (
        f"pushed one index of {t['platforms']} to {pushed['ref']}@{pushed['digest']}"
        if pushed
        else ("nothing pushed" if doc["verdict"] == "failed" else "not pushed (no --push)")
    )
    return (
        f"{t['passed']} of {t['platforms']} platform(s) verified; "
        f"{human_bytes(t['before_bytes'])} -> {human_bytes(t['after_bytes'])}; {where}"
    )
