"""`report.html` of a multi-platform run: one self-contained page (inline CSS, no
request leaves it) from the `slimmer.platforms/v1` document: the combined summary and
one row per platform, linking its own report.html."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from slimmer.report.common import human_bytes, summary_page
from slimmer.report.platforms_view import how, summary_line


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render(doc: Mapping[str, Any]) -> str:
    skipped = ", ".join(doc["skipped"])
    body = [
        f"<h1>slim <code>{_e(doc['source'])}</code> &rarr; <code>{_e(doc['output'])}</code></h1>",
        f'<p class="{_e(doc["verdict"])}" data-verdict="{_e(doc["verdict"])}">'
        f"{_e(summary_line(doc))}; slimmer {_e(doc['slimmer_version'])}</p>",
        f"<p>Skipped (the engine cannot run them): {_e(skipped)}</p>" if skipped else "",
        _table(doc),
    ]
    return summary_page("slim " + doc["source"], body)


def _table(doc: Mapping[str, Any]) -> str:
    head = ("platform", "slim image", "before", "after", "verified", "how", "time", "pushed")
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "<th>report</th></tr>"]
    for p in doc["platforms"]:
        status = p["verification"]
        link = p["report"].removesuffix(".json") + ".html" if p["report"] else None
        rows.append(
            f'<tr data-platform="{_e(p["platform"])}"><td>{_e(p["platform"])}</td>'
            f"<td><code>{_e(p['output'])}</code>{'' if p['tagged'] else ' (not tagged)'}</td>"
            f'<td class="n">{human_bytes(p["before_bytes"])}</td>'
            f'<td class="n">{human_bytes(p["after_bytes"])}</td>'
            f'<td class="{_e(status)}">{_e(status)}</td>'
            f"<td>{_e(how(p))}</td>"
            f'<td class="n">{p["seconds"]:.0f}s</td>'
            f"<td><code>{_e(p['pushed_digest'] or '-')}</code></td>"
            f"<td>{_link(link)}</td></tr>"
        )
    return "\n".join(rows) + "\n</table>"


def _link(path: str | None) -> str:
    return f'<a href="{_e(path)}">{_e(path)}</a>' if path else "-"
