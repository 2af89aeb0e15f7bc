"""Render a `TracedRun`: what the traced run touched, and the probe results."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

from slimmer.trace.probes import ProbeResult
from slimmer.trace.tracer import TracedRun

SCHEMA = "slimmer.profile/v1"


def to_json(traced_run: TracedRun) -> dict[str, Any]:
    """The `slimmer.profile/v1` document: probe results and every run's whole trace."""
    return {
        "schema": SCHEMA,
        "image": traced_run.image,
        "probes": [_result(r) for r in traced_run.results],
        "runs": [
            {
                "what": run.what,
                "exit_code": run.exit_code,
                "seconds": round(run.seconds, 3),
                "trace": json.loads(run.trace.to_json()),
            }
            for run in traced_run.runs
        ],
    }


def _result(r: ProbeResult) -> dict[str, Any]:
    return {
        "probe": r.probe.label,
        "kind": r.probe.kind,
        "ok": r.ok,
        "code": r.code,
        "output": r.output.decode("utf-8", "replace"),
        "error": r.error,
        "attempts": r.attempts,
        "seconds": round(r.seconds, 3),
    }


def render(traced_run: TracedRun) -> RenderableType:
    kinds: dict[str, set[str]] = {}
    for trace in traced_run.traces:
        for kind, paths in trace.by_kind().items():
            kinds.setdefault(kind, set()).update(paths)
    summary = Table(title="Files touched (existing)", title_justify="left")
    summary.add_column("kind")
    summary.add_column("paths", justify="right")
    summary.add_column("examples", overflow="fold")
    for kind, found in sorted(kinds.items()):
        names = sorted(found)
        summary.add_row(kind, str(len(names)), ", ".join(names[:3]))
    probes = Table(title="Probes", title_justify="left")
    for col in ("probe", "result", "code", "bytes", "attempts"):
        probes.add_column(col)
    for r in traced_run.results:
        probes.add_row(
            r.probe.label,
            "[green]ok[/]" if r.ok else f"[red]{r.error}[/]",
            str(r.code),
            str(len(r.output)),
            str(r.attempts),
        )
    runs = Table(title="Runs", title_justify="left")
    for col in ("run", "exit code", "events", "seconds"):
        runs.add_column(col)
    for run in traced_run.runs:
        runs.add_row(run.what, str(run.exit_code), str(len(run.trace.events)), f"{run.seconds:.1f}")
    return Group(summary, probes, runs)
