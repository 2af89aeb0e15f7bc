"""Render a `FleetResult` (`slim compose`): the `slimmer.fleet/v1` document and the
terminal's one row per service. The Markdown and HTML faces (fleet_md, fleet_html)
are rendered from the document alone; each service's own `slimmer.slim/v3` report is
linked from it by a path relative to the fleet report, never embedded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from slimmer import __version__
from slimmer.pipeline.fleet import FleetResult, ServiceOutcome
from slimmer.report.common import human_bytes

SCHEMA = "slimmer.fleet/v1"


def to_json(r: FleetResult, reports: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `slimmer.fleet/v1` document (docs/schemas/fleet-v1.json). `reports` maps a
    service to its own report.json, relative to where the fleet report is written."""
    services = [_service(o, (reports or {}).get(o.chosen.service)) for o in r.outcomes]
    passed = [o for o in r.outcomes if o.status == "passed"]
    return {
        "schema": SCHEMA,
        "slimmer_version": __version__,
        "compose_file": str(r.file),
        "project": r.project,
        "override": str(r.override) if r.override is not None else None,
        "verdict": "failed" if r.failed else "passed",
        "exit_code": r.failed[0].exit_code if r.failed else 0,
        "services": services,
        "left_alone": [
            {"service": x.service, "image": x.image, "why": x.why} for x in r.left_alone
        ],
        "totals": {
            "services": len(r.outcomes),
            "passed": len(passed),
            "before_bytes": sum(o.result.before_bytes for o in passed if o.result),
            "after_bytes": sum(o.result.after_bytes for o in passed if o.result),
        },
    }


def _service(o: ServiceOutcome, report: str | None) -> dict[str, Any]:
    res, c = o.result, o.chosen
    base = None
    if res is not None:
        base = res.on_base.choice.ref if res.on_base is not None else "scratch"
    return {
        "service": c.service,
        "why": c.why,
        "image": c.image,
        "source_id": res.source_id if res else None,
        "output": c.output,
        "output_id": res.image_id if res and res.tagged else None,
        "tagged": bool(res and res.tagged),
        "verification": o.status,
        "exit_code": o.exit_code,
        "error": o.error,
        "before_bytes": res.before_bytes if res else None,
        "after_bytes": res.after_bytes if res else None,
        "reduction": round(res.reduction, 3) if res else None,
        "base": base,
        "user": res.user if res else None,
        "probes": o.probes,
        "seconds": round(o.seconds, 3),
        "report": report,
    }


STATUS = {"passed": "[green]passed[/]", "failed": "[red]FAILED[/]", "error": "[red]error[/]"}


def render(doc: Mapping[str, Any], report: str | None = None) -> RenderableType:
    """One row per service (before, after, verified, base, time), then what was left
    alone, the override and where the reports are."""
    t = Table(box=None, padding=(0, 2), header_style="bold")
    for col in ("service", "slim image", "before", "after", "verified", "base", "time"):
        t.add_column(col, justify="right" if col in ("before", "after", "time") else "left")
    for s in doc["services"]:
        t.add_row(
            s["service"],
            s["output"] if s["tagged"] else f"{s['output']} [red](not tagged)[/]",
            _size(s["before_bytes"]),
            _size(s["after_bytes"]),
            STATUS[s["verification"]],
            s["base"] or "-",
            f"{s['seconds']:.0f}s",
        )
    lines: list[RenderableType] = [t]
    for s in doc["services"]:
        if s["error"]:
            lines.append(Text(f"{s['service']}: {s['error']}", style="red"))
    for x in doc["left_alone"]:
        lines.append(Text(f"left alone: {x['service']} ({x['image']}): {x['why']}"))
    lines.append(Text(_override_line(doc)))
    lines.append(
        Text(f"report: {report}" if report else "--report-dir DIR writes fleet.json/.md/.html")
    )
    return Group(*lines)


def _size(n: int | None) -> str:
    return human_bytes(n) if n is not None else "-"


def _override_line(doc: Mapping[str, Any]) -> str:
    if doc["override"] is None:
        return "override: not written (no service passed)"
    return (
        f"override: {doc['override']}; run the slim project with "
        f"docker compose -f {doc['compose_file']} -f {doc['override']} up"
    )
