"""The `seccomp` section of a slim report (`--seccomp`), and its rows in every face."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slimmer.pipeline.slim import SeccompResult
from slimmer.seccomp.profile import KINDS, SeccompProfile


def to_json(s: SeccompResult) -> dict[str, Any]:
    """The optional `seccomp` object of `slimmer.slim/v3` (docs/json.md)."""
    p = s.profile
    return {
        "path": str(s.path),
        "architecture": p.architecture,
        "allowed_count": len(p.allowed),
        "allowed_by_reason": {k: list(v) for k, v in p.by_kind().items()},
        "allowed": [
            {"name": a.name, "reasons": [{"kind": r.kind, "detail": r.detail} for r in a.reasons]}
            for a in p.allowed
        ],
        "engine_default": {"source": p.default_source, "allowed_count": p.default_count},
        "fewer_than_default": p.fewer,
        "enosys": list(p.enosys),
        "dropped": list(p.dropped),
        "refused": [{"call": r.call, "errno": r.errno, "program": r.program} for r in s.refused],
    }


def rows(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(what, detail) rows of a report's `seccomp` section; none without one."""
    s = doc.get("seccomp")
    if not s:
        return []
    groups = _in_order(s["allowed_by_reason"])
    by = ", ".join(f"{k} {len(v)}" for k, v in groups)
    out = [
        ("Seccomp profile", f"{s['path']} ({s['architecture']})"),
        (
            "Allowed calls",
            f"{s['allowed_count']} ({by}); {s['fewer_than_default']} fewer than the "
            f"engine's default ({s['engine_default']['allowed_count']})",
        ),
        ("Apply with", f"docker run --security-opt seccomp={s['path']}"),
    ]
    for kind, names in groups:
        out.append((f"Allowed: {kind}", " ".join(names)))
    if s["refused"]:
        refused = ", ".join(f"{r['call']} ({r['errno']}, by {r['program']})" for r in s["refused"])
        out.append(("Refused by the profile", refused))
    return out


def _in_order(by: Mapping[str, list[str]]) -> list[tuple[str, list[str]]]:
    """The reason groups in `KINDS` order, whatever order the JSON came in (a saved
    report.json has its keys sorted)."""
    return sorted(by.items(), key=lambda kv: (KINDS.index(kv[0]) if kv[0] in KINDS else 99, kv[0]))


def refused_line(doc: Mapping[str, Any]) -> str:
    """The calls the profile refused in the last diagnosis run, or ""."""
    s = doc.get("seccomp") or {}
    calls = [f"{r['call']} ({r['errno']}, by {r['program']})" for r in s.get("refused", [])]
    return ("the seccomp profile refused " + ", ".join(calls)) if calls else ""


def summary_line(profile: SeccompProfile, path: Path) -> str:
    """One line for `slim profile --seccomp`."""
    by = ", ".join(f"{k} {len(v)}" for k, v in profile.by_kind().items())
    return (
        f"seccomp profile written to {path}: {len(profile.allowed)} calls allowed ({by}), "
        f"{profile.fewer} fewer than the engine's default ({profile.default_count}); "
        f"apply with docker run --security-opt seccomp={path}"
    )
