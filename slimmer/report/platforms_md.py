"""`report.md` of a multi-platform run, from the `slimmer.platforms/v1` document: the
combined summary, then one section per platform linking its own report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slimmer.report.common import human_bytes
from slimmer.report.platforms_view import summary_line


def render(doc: Mapping[str, Any]) -> str:
    parts = [
        f"# slim `{doc['source']}` -> `{doc['output']}`\n",
        f"**{doc['verdict']}**: {summary_line(doc)} (slimmer {doc['slimmer_version']})\n",
    ]
    if doc["skipped"]:
        parts.append("Skipped (the engine cannot run them): " + ", ".join(doc["skipped"]) + "\n")
    for p in doc["platforms"]:
        parts.append(_section(p))
    return "\n".join(parts)


def _section(p: Mapping[str, Any]) -> str:
    report = p["report"]
    link = f"[{report}]({report})" if report else "-"
    how = "under emulation (qemu-user)" if p["emulated"] else "natively"
    ratio = (p.get("slowdown") or {}).get("app")
    if ratio is not None:
        how += f", its app phases {ratio:.1f}x the native platform's time"
    rows = [
        f"## {p['platform']}\n",
        "| | |",
        "|---|---|",
        f"| source | `{p['source']}` |",
        f"| slim image | `{p['output']}`{'' if p['tagged'] else ' (not tagged)'} |",
        f"| size | {human_bytes(p['before_bytes'])} -> {human_bytes(p['after_bytes'])} "
        f"({p['reduction']:.1%} smaller) |",
        f"| verification | {p['verification']}, {p['probes']} probe(s), ran {how} |",
        f"| time | {p['seconds']:.1f}s |",
        f"| pushed | {'`' + p['pushed_digest'] + '`' if p['pushed_digest'] else '-'} |",
        f"| report | {link} |",
    ]
    return "\n".join(rows) + "\n"
