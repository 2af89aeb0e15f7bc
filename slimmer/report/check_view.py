"""Render a `CheckResult`: text, versioned JSON, JUnit XML, GitHub annotations, Markdown.

Every renderer is a pure function from the result to a string; only
`write_step_summary` touches a file (the one GitHub Actions names).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from slimmer.analyse.check import SCHEMA, BudgetResult, CheckResult, Status, Unit
from slimmer.errors import SlimError
from slimmer.report.common import count, dump_json, human_bytes, md_cell, md_code, md_html, shown

FORMATS = ("text", "json", "junit", "github", "md")
SHOWN_OFFENDERS = 10

_LABELS = {
    "max-size": "uncompressed size",
    "max-compressed-size": "compressed size (gzip)",
    "max-layers": "layers",
    "max-files": "files",
    "min-efficiency": "efficiency (dive)",
    "max-wasted": "wasted bytes (dive)",
    "max-reclaimable": "reclaimable bytes",
    "max-growth": "growth over the baseline",
}
_RATIO_LABELS = {
    "max-wasted": "wasted share of the bytes above the first layer (dive)",
    "max-reclaimable": "reclaimable share of the size",
    "max-growth": "growth over the baseline",
}
_ICONS = {Status.PASS: "✅", Status.WARN: "⚠️", Status.FAIL: "❌"}


# -- values as words ---------------------------------------------------------------


def format_value(value: float, unit: Unit) -> str:
    if unit is Unit.BYTES:
        return human_bytes(value)
    if unit is Unit.RATIO:
        return _percent(value, 2)
    return f"{int(value):,}"


def _percent(value: float, digits: int) -> str:
    return f"{value * 100:.{digits}f}%"


def _pair(r: BudgetResult) -> tuple[str, str]:
    """Value and limit as text, precise enough that different numbers read differently."""
    value, limit = format_value(r.value, r.unit), format_value(r.limit, r.unit)
    if value == limit and r.value != r.limit:
        if r.unit is Unit.BYTES:
            return f"{int(r.value):,} B", f"{int(r.limit):,} B"
        for digits in range(3, 16):
            value, limit = _percent(r.value, digits), _percent(r.limit, digits)
            if value != limit:
                break
    return value, limit


def describe(r: BudgetResult) -> str:
    """One line saying what was measured against which limit."""
    if r.rule == "forbid":
        return _describe_forbid(r)
    if r.rule == "max-findings":
        return _describe_findings(r)
    label = _LABELS.get(r.rule, r.rule)
    if r.unit is Unit.RATIO:
        label = _RATIO_LABELS.get(r.rule, label)
    value, limit = _pair(r)
    if r.bound == "min":
        op = ">=" if not r.broken else "<"
    else:
        op = "<=" if not r.broken else ">"
    return f"{label} {value} {op} limit {limit}"


def _describe_forbid(r: BudgetResult) -> str:
    if not r.offenders:
        return f"nothing matches {r.id.split(':', 1)[1]}"
    listed = ", ".join(r.offenders[:SHOWN_OFFENDERS])
    more = len(r.offenders) - SHOWN_OFFENDERS
    noun = "path matches" if len(r.offenders) == 1 else "paths match"
    return f"{len(r.offenders)} {noun}: {listed}" + (f" (+{more} more)" if more > 0 else "")


def _describe_findings(r: BudgetResult) -> str:
    """`3 slim lint findings at or above high: SLM-SECRET-ENV config.Env[K], ...`."""
    if not r.offenders:
        return f"no slim lint {r.note.removeprefix('findings ')}"
    listed = ", ".join(r.offenders[:SHOWN_OFFENDERS])
    more = len(r.offenders) - SHOWN_OFFENDERS
    return f"{len(r.offenders)} slim lint {r.note}: {listed}" + (
        f" (+{more} more)" if more > 0 else ""
    )


def summary_line(result: CheckResult) -> str:
    counts = [
        (result.count(Status.FAIL), "failed"),
        (result.count(Status.WARN), "warned"),
        (result.count(Status.PASS), "passed"),
    ]
    text = ", ".join(f"{n} {word}" for n, word in counts if n)
    return f"{result.verdict.upper()}: {text or 'no rules'}"


def _facts_line(result: CheckResult) -> str:
    m = result.measurements
    parts = [f"{human_bytes(m.size_bytes)} uncompressed"]
    if m.compressed_bytes is not None:
        parts.append(f"{human_bytes(m.compressed_bytes)} gzip (estimated)")
    parts += [
        count(m.layers, "layer"),
        count(m.files, "file"),
        f"efficiency {_percent(m.efficiency, 4)}",
        f"wasted {human_bytes(m.wasted_bytes)}",
        f"reclaimable {human_bytes(m.reclaimable_bytes)}",
    ]
    if m.baseline_bytes is not None:
        parts.append(f"baseline {human_bytes(m.baseline_bytes)} ({m.baseline_source})")
    return "; ".join(parts)


# -- text --------------------------------------------------------------------------------


def to_text(result: CheckResult) -> str:
    width = max((len(r.id) for r in result.results), default=0)
    lines = [f"slim check {result.image} ({result.id[:19]})", f"  {_facts_line(result)}", ""]
    for r in result.results:
        lines.append(f"  {r.status.upper():4}  {r.id:{width}}  {describe(r)}")
    lines += ["", summary_line(result)]
    return "\n".join(shown(line) for line in lines) + "\n"


# -- JSON --------------------------------------------------------------------------------


def to_json(result: CheckResult) -> dict[str, Any]:
    """The `slimmer.check/v1` document (its schema: docs/schemas/check-v1.json)."""
    m = result.measurements
    baseline = (
        None
        if m.baseline_bytes is None
        else {"source": m.baseline_source, "size_bytes": m.baseline_bytes}
    )
    return {
        "schema": SCHEMA,
        "image": {"ref": result.image, "id": result.id},
        "verdict": str(result.verdict),
        "passed": result.verdict is not Status.FAIL,
        "summary": {
            "total": len(result.results),
            "pass": result.count(Status.PASS),
            "warn": result.count(Status.WARN),
            "fail": result.count(Status.FAIL),
        },
        "measurements": {
            "size_bytes": m.size_bytes,
            "compressed_bytes": m.compressed_bytes,
            "layers": m.layers,
            "files": m.files,
            "efficiency": m.efficiency,
            "wasted_bytes": m.wasted_bytes,
            "user_wasted_percent": m.user_wasted_percent,
            "reclaimable_bytes": m.reclaimable_bytes,
            "baseline": baseline,
        },
        "rules": [_rule_json(r) for r in result.results],
    }


def _rule_json(r: BudgetResult) -> dict[str, Any]:
    whole = r.unit is not Unit.RATIO
    return {
        "id": r.id,
        "rule": r.rule,
        "status": str(r.status),
        "warn": r.warn,
        "unit": str(r.unit),
        "bound": r.bound,
        "value": int(r.value) if whole else r.value,
        "limit": int(r.limit) if whole else r.limit,
        "offenders": list(r.offenders),
        "message": describe(r),
    }


# -- JUnit XML ---------------------------------------------------------------------------


def to_junit(result: CheckResult) -> str:
    """One test suite for the image, one test case per rule.

    Follows the JUnit XML that Jenkins, GitLab and the GitHub test reporters read
    (tests/data/junit.xsd). A warning is a passing test case whose system-out
    says so: JUnit has no warning state.
    """
    failures = str(result.count(Status.FAIL))
    tests = str(len(result.results))
    root = ET.Element(
        "testsuites",
        {"name": "slim check", "tests": tests, "failures": failures, "errors": "0", "time": "0"},
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _xml(f"slim check {result.image}"),
            "tests": tests,
            "failures": failures,
            "errors": "0",
            "skipped": "0",
            "time": "0",
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in _junit_properties(result):
        ET.SubElement(props, "property", {"name": name, "value": _xml(value)})
    for r in result.results:
        case = ET.SubElement(
            suite, "testcase", {"classname": "slim.check", "name": _xml(r.id), "time": "0"}
        )
        if r.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", {"type": r.rule, "message": _xml(describe(r))})
            failure.text = _xml(_details(r))
        elif r.status is Status.WARN:
            ET.SubElement(case, "system-out").text = _xml(f"warning: {_details(r)}")
    ET.SubElement(suite, "system-out").text = _xml(_facts_line(result))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _junit_properties(result: CheckResult) -> list[tuple[str, str]]:
    m = result.measurements
    props = [
        ("image", result.image),
        ("image.id", result.id),
        ("verdict", str(result.verdict)),
        ("size_bytes", str(m.size_bytes)),
    ]
    if m.compressed_bytes is not None:
        props.append(("compressed_bytes", str(m.compressed_bytes)))
    return props


def _details(r: BudgetResult) -> str:
    lines = [describe(r)]
    if len(r.offenders) > SHOWN_OFFENDERS:
        lines += ["", *r.offenders]
    return "\n".join(lines)


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    """Characters XML 1.0 cannot carry (file names are hostile) as \\xNN escapes."""
    return _XML_BAD.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# -- GitHub Actions ------------------------------------------------------------------------


def to_github(result: CheckResult) -> str:
    """Workflow commands: an `::error` per failed rule, a `::warning` per warned one,
    then the text report for the log."""
    lines = []
    for r in result.results:
        if r.status is Status.PASS:
            continue
        level = "error" if r.status is Status.FAIL else "warning"
        title = _gh_property(f"slim check: {r.id}")
        lines.append(f"::{level} title={title}::{_gh_data(f'{result.image}: {describe(r)}')}")
    return "\n".join(lines) + ("\n" if lines else "") + to_text(result)


def _gh_data(text: str) -> str:
    escaped = shown(text, keep="\n").replace("%", "%25")
    return escaped.replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def write_step_summary(result: CheckResult, env: Mapping[str, str]) -> Path | None:
    """Append the Markdown report to `$GITHUB_STEP_SUMMARY` when it is set."""
    target = env.get("GITHUB_STEP_SUMMARY", "")
    if not target:
        return None
    path = Path(target)
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(to_markdown(result))
    except OSError as exc:
        raise SlimError(f"appending the step summary to {path}: {exc.strerror or exc}") from exc
    return path


def write_report(result: CheckResult, path: Path, fmt: str) -> None:
    """Write the report in `fmt` to `path` (replacing it)."""
    try:
        path.write_text(render(result, fmt), encoding="utf-8")
    except OSError as exc:
        raise SlimError(f"writing the report to {path}: {exc.strerror or exc}") from exc


# -- Markdown ------------------------------------------------------------------------------


def to_markdown(result: CheckResult) -> str:
    icon = _ICONS[result.verdict]
    lines = [
        f"### {icon} slim check `{md_code(result.image, in_table=False)}`: {summary_line(result)}",
        "",
        md_cell(_facts_line(result)),
        "",
        "| | rule | measured | limit |",
        "|---|---|---|---|",
    ]
    for r in result.results:
        lines.append(
            f"| {_ICONS[r.status]} {r.status} | `{md_code(r.id)}` | "
            f"{md_cell(_measured(r))} | {md_cell(_limit(r))} |"
        )
    for r in result.results:
        if r.offenders:
            lines += [
                "",
                f"<details><summary>{md_html(r.id)}: {_paths(len(r.offenders))}</summary>",
                "",
                *(f"- `{md_code(p, in_table=False)}`" for p in r.offenders),
                "",
                "</details>",
            ]
    return "\n".join(lines) + "\n\n"


def _measured(r: BudgetResult) -> str:
    if r.rule == "forbid":
        return _paths(len(r.offenders))
    return _pair(r)[0]


def _paths(n: int) -> str:
    return f"{n} path" if n == 1 else f"{n} paths"


def _limit(r: BudgetResult) -> str:
    if r.rule == "forbid":
        return "none"
    return ("≥ " if r.bound == "min" else "≤ ") + _pair(r)[1]


RENDERERS: dict[str, Callable[[CheckResult], str]] = {
    "text": to_text,
    "json": lambda result: dump_json(to_json(result)),
    "junit": to_junit,
    "github": to_github,
    "md": to_markdown,
}


def render(result: CheckResult, fmt: str) -> str:
    return RENDERERS[fmt](result)


SUFFIXES = {".xml": "junit", ".json": "json", ".md": "md", ".txt": "text"}


def format_for(path: Path) -> str | None:
    """The report format a file name asks for (`report.xml`: junit), None if unknown."""
    return SUFFIXES.get(path.suffix.lower())
