"""Render a `FindingsReport` (`slim lint`): terminal text, JSON (`slimmer.lint/v1`,
docs/schemas/lint-v1.json), Markdown and SARIF 2.1.0 for code scanning; and a
`FindingsDelta` (what slimming fixed) as JSON and Markdown."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from slimmer import __version__
from slimmer.findings.delta import FindingsDelta
from slimmer.findings.rules import RULES, SCHEMA, Finding, FindingsReport, LintRule, Severity
from slimmer.report.common import dump_json, md_cell, md_code

FORMATS = ("text", "json", "sarif", "md")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/slimmer/slimmer/blob/main/docs/lint.md"
# SARIF level, and GitHub's security-severity (0-10), of each severity.
_LEVEL = {
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}
_SCORE = {
    Severity.LOW: "2.0",
    Severity.MEDIUM: "5.0",
    Severity.HIGH: "7.5",
    Severity.CRITICAL: "9.5",
}
# Config findings are fixed in the Dockerfile: SARIF points there.
DOCKERFILE = "Dockerfile"


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "severity": f.severity.label,
        "title": f.rule.title,
        "evidence": f.evidence,
        "detail": f.detail,
        "fix": f.rule.fix,
    }


def summary(findings: tuple[Finding, ...]) -> dict[str, int]:
    out = {s.label: sum(1 for f in findings if f.severity is s) for s in Severity}
    return {"total": len(findings), **out}


def to_json(report: FindingsReport) -> dict[str, Any]:
    """The `slimmer.lint/v1` document."""
    return {
        "schema": SCHEMA,
        "image": {"ref": report.ref, "id": report.image_id},
        "summary": summary(report.findings),
        "ignored": list(report.ignored),
        "traced": report.traced,
        "findings": [_finding(f) for f in report.findings],
    }


def delta_to_json(delta: FindingsDelta) -> dict[str, Any]:
    """The findings of a slim run's input and result, side by side (for its report)."""
    return {
        "before": delta.before,
        "after": delta.after,
        "counts": delta.counts(),
        "fixed": [_finding(f) for f in delta.fixed],
        "still": [_finding(f) for f in delta.still],
        "new": [_finding(f) for f in delta.new],
    }


def to_text(report: FindingsReport) -> str:
    """A table of the findings, then each rule's fix once."""
    buf = io.StringIO()
    console = Console(file=buf, width=120, highlight=False, soft_wrap=False, color_system=None)
    s = summary(report.findings)
    counts = ", ".join(f"{s[sev.label]} {sev.label}" for sev in reversed(Severity))
    console.print(escape(f"{report.ref}: {s['total']} findings ({counts})"))
    if report.findings:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("severity", "ID", "evidence", "detail"):
            table.add_column(column, overflow="fold")
        for f in report.findings:
            table.add_row(f.severity.label, f.id, escape(f.evidence), escape(f.detail))
        console.print(table)
        rules = {f.id: f.rule for f in report.findings}
        console.print("\nHow to fix")
        for rule_id, rule in sorted(rules.items()):
            console.print(escape(f"  {rule_id}: {rule.fix}"))
    return buf.getvalue()


def to_markdown(report: FindingsReport) -> str:
    s = summary(report.findings)
    lines = [f"### slim lint `{report.ref}`: {s['total']} findings", ""]
    lines += [
        "| " + " | ".join(f"{sev.label} {s[sev.label]}" for sev in reversed(Severity)) + " |",
        "|---|---|---|---|",
        "",
    ]
    lines += _md_table(report.findings)
    return "\n".join(lines) + "\n"


def delta_to_markdown(delta: FindingsDelta) -> str:
    c = delta.counts()
    lines = [f"**Findings**: {c['fixed']} fixed, {c['still']} still present, {c['new']} new", ""]
    for title, rows in (("Fixed", delta.fixed), ("Still present", delta.still), ("New", delta.new)):
        if rows:
            lines += [f"<details><summary>{title} ({len(rows)})</summary>", ""]
            lines += [*_md_table(rows), "", "</details>", ""]
    return "\n".join(lines) + "\n"


def _md_table(findings: tuple[Finding, ...]) -> list[str]:
    if not findings:
        return ["No findings."]
    rows = ["| severity | ID | evidence | detail | fix |", "|---|---|---|---|---|"]
    for f in findings:
        cells = (
            md_cell(f.severity.label),
            md_cell(f.id),
            f"`{md_code(f.evidence)}`",
            md_cell(f.detail),
            md_cell(f.rule.fix),
        )
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def to_sarif(report: FindingsReport) -> dict[str, Any]:
    """One SARIF 2.1.0 run: every rule of slimmer, a result per finding."""
    index = {r.id: i for i, r in enumerate(RULES)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "slimmer",
                        "version": __version__,
                        "informationUri": INFO_URI,
                        "rules": [_sarif_rule(r) for r in RULES],
                    }
                },
                "automationDetails": {"id": f"slim-lint/{report.ref}"},
                "results": [_sarif_result(f, index[f.id], report.ref) for f in report.findings],
            }
        ],
    }


def _sarif_rule(rule: LintRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.id.removeprefix("SLM-").title().replace("-", ""),
        "shortDescription": {"text": rule.title},
        "help": {"text": rule.fix, "markdown": rule.fix},
        "helpUri": INFO_URI,
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {
            "security-severity": _SCORE[rule.severity],
            "tags": ["security", "container"],
        },
    }


def _sarif_result(f: Finding, rule_index: int, ref: str) -> dict[str, Any]:
    in_config = not f.evidence.startswith("/")
    uri = DOCKERFILE if in_config else f.evidence.lstrip("/")
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri}}}
    if in_config:
        location["logicalLocations"] = [{"name": f.evidence, "kind": "member"}]
    else:
        location["physicalLocation"]["artifactLocation"]["uriBaseId"] = "IMAGEROOT"
    text = f"{f.rule.title}: {f.evidence}" + (f" ({f.detail})" if f.detail else "")
    return {
        "ruleId": f.id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f"{text} in {ref}. Fix: {f.rule.fix}"},
        "locations": [location],
        "partialFingerprints": {"slimmerFinding/v1": "|".join(f.key)},
    }


RENDERERS: dict[str, Callable[[FindingsReport], str]] = {
    "text": to_text,
    "json": lambda r: dump_json(to_json(r)),
    "sarif": lambda r: dump_json(to_sarif(r)),
    "md": to_markdown,
}


def render(report: FindingsReport, fmt: str) -> str:
    return RENDERERS[fmt](report)
