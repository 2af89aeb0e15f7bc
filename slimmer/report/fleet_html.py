"""`fleet.html`: one self-contained page (inline CSS, no request leaves it) rendered
from the `slimmer.fleet/v1` document: one row per service, linking its own
report.html, the services left alone and the command that runs the slim project."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from slimmer.report.common import human_bytes, summary_page


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render(doc: Mapping[str, Any]) -> str:
    totals = doc["totals"]
    body = [
        f"<h1>slim compose <code>{_e(doc['compose_file'])}</code></h1>",
        f'<p class="{_e(doc["verdict"])}" data-verdict="{_e(doc["verdict"])}">'
        f"{totals['passed']} of {totals['services']} service(s) passed; project "
        f"<code>{_e(doc['project'])}</code>; slimmer {_e(doc['slimmer_version'])}</p>",
        _table(doc),
        _left_alone(doc),
        _override(doc),
    ]
    return summary_page("slim compose " + doc["project"], body)


def _table(doc: Mapping[str, Any]) -> str:
    head = ("service", "slim image", "before", "after", "verified", "base", "time", "report")
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for s in doc["services"]:
        status = s["verification"]
        error = f"<br><small>{_e(s['error'])}</small>" if s["error"] else ""
        rows.append(
            f'<tr data-service="{_e(s["service"])}"><td>{_e(s["service"])}</td>'
            f"<td><code>{_e(s['output'])}</code>{'' if s['tagged'] else ' (not tagged)'}</td>"
            f'<td class="n">{_size(s["before_bytes"])}</td>'
            f'<td class="n">{_size(s["after_bytes"])}</td>'
            f'<td class="{_e(status)}">{_e(status)}{error}</td>'
            f'<td>{_e(s["base"] or "-")}</td><td class="n">{s["seconds"]:.0f}s</td>'
            f"<td>{_link(s['report'])}</td></tr>"
        )
    return "\n".join(rows) + "\n</table>"


def _link(report: str | None) -> str:
    if report is None:
        return "-"
    page = report[: -len(".json")] + ".html" if report.endswith(".json") else report
    return f'<a href="{_e(page)}">{_e(page)}</a>'


def _size(n: int | None) -> str:
    return human_bytes(n) if n is not None else "-"


def _left_alone(doc: Mapping[str, Any]) -> str:
    if not doc["left_alone"]:
        return ""
    items = "".join(
        f'<li data-left-alone="{_e(x["service"])}"><code>{_e(x["service"])}</code> '
        f"(<code>{_e(x['image'])}</code>): {_e(x['why'])}</li>"
        for x in doc["left_alone"]
    )
    return f"<h2>Left alone</h2><ul>{items}</ul>"


def _override(doc: Mapping[str, Any]) -> str:
    if doc["override"] is None:
        return "<p>No override was written: no service passed.</p>"
    cmd = f"docker compose -f {doc['compose_file']} -f {doc['override']} up"
    return f"<h2>Run the slim project</h2><pre>{_e(cmd)}</pre>"
