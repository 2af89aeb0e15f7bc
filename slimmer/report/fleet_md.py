"""`fleet.md`: the `slimmer.fleet/v1` document as Markdown (a pull-request comment, a
CI step summary): the verdict, one row per service linking its own report.md, the
services left alone and how to run the slim project."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slimmer.report.common import human_bytes, md_cell, md_code

ICON = {"passed": "✅", "failed": "❌", "error": "❌"}


def render(doc: Mapping[str, Any]) -> str:
    totals = doc["totals"]
    icon = "✅" if doc["verdict"] == "passed" else "❌"
    parts = [
        f"### {icon} slim compose `{md_code(doc['compose_file'], False)}`: "
        f"{totals['passed']} of {totals['services']} service(s) passed\n\n"
        f"Project `{md_code(doc['project'], False)}`; slimmer {doc['slimmer_version']}.",
        _table(doc),
        _errors(doc),
        _left_alone(doc),
        _override(doc),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _table(doc: Mapping[str, Any]) -> str:
    lines = [
        "| service | slim image | before | after | verified | base | time | report |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in doc["services"]:
        tagged = "" if s["tagged"] else " (not tagged)"
        lines.append(
            f"| `{md_code(s['service'])}` | `{md_code(s['output'])}`{tagged} "
            f"| {_size(s['before_bytes'])} | {_size(s['after_bytes'])} "
            f"| {ICON[s['verification']]} {s['verification']} "
            f"| {md_cell(s['base'] or '-')} | {s['seconds']:.0f}s | {_link(s['report'])} |"
        )
    return "\n".join(lines)


def _link(report: str | None) -> str:
    if report is None:
        return "-"
    md = report[: -len(".json")] + ".md" if report.endswith(".json") else report
    return f"[{md_cell(md)}]({md.replace(' ', '%20')})"


def _size(n: int | None) -> str:
    return human_bytes(n) if n is not None else "-"


def _errors(doc: Mapping[str, Any]) -> str:
    rows = [
        f"- `{md_code(s['service'], False)}`: {md_cell(s['error'])}"
        for s in doc["services"]
        if s["error"]
    ]
    return "#### Errors\n\n" + "\n".join(rows) if rows else ""


def _left_alone(doc: Mapping[str, Any]) -> str:
    rows = [
        f"- `{md_code(x['service'], False)}` (`{md_code(x['image'], False)}`): {md_cell(x['why'])}"
        for x in doc["left_alone"]
    ]
    return "#### Left alone\n\n" + "\n".join(rows) if rows else ""


def _override(doc: Mapping[str, Any]) -> str:
    if doc["override"] is None:
        return "No override was written: no service passed."
    return (
        "Run the slim project:\n\n```sh\n"
        f"docker compose -f {doc['compose_file']} -f {doc['override']} up\n```"
    )
