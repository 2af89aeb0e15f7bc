"""Why each file of a slim image is there, read from the slim run's report.json: what
`slim diff A B --report FILE` (or B's labels) adds to a diff of a slim pair."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimmer.errors import UsageError
from slimmer.model import SLIM_SCHEMA, FileEntry

# The slim-run reports `--report` reads: every version names kept paths and reasons alike.
SLIM_SCHEMAS = ("slimmer.slim/v1", "slimmer.slim/v2", SLIM_SCHEMA)


@dataclass(frozen=True)
class KeptReason:
    kind: str
    detail: str
    source: str = ""


@dataclass(frozen=True)
class SlimRunReasons:
    """What `diff` reads of a slim run's report.json (`slimmer.slim/v1`, `v2` or `v3`)."""

    path: str
    source_id: str
    result_id: str
    reasons: Mapping[str, tuple[KeptReason, ...]]
    generated: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KeptFile:
    path: str
    reasons: tuple[KeptReason, ...]
    generated: bool = False


@dataclass(frozen=True)
class KeptFiles:
    """Every non-directory path of B with the reasons the slim run recorded for it;
    `matches` says the report names exactly A as source and B as result."""

    report: str
    matches: bool
    files: tuple[KeptFile, ...]

    @property
    def unexplained(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.files if not f.reasons)


def load_slim_reasons(path: Path) -> SlimRunReasons:
    """Read a slim run's report.json (`SLIM_SCHEMAS`); UsageError when it is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"reading slim report {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"reading slim report {path}: {exc}") from exc
    return slim_reasons(doc, str(path))


def slim_reasons(doc: Any, where: str) -> SlimRunReasons:
    """The kept paths and their reasons of a parsed slim-run report."""
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema not in SLIM_SCHEMAS or not isinstance(doc.get("kept"), list):
        raise UsageError(
            f"reading slim report {where}: not a slim run's report (schema {schema!r}); "
            "write one with `slim IMAGE -o OUT --report-dir DIR`"
        )
    reasons: dict[str, tuple[KeptReason, ...]] = {}
    generated = set()
    for item in doc["kept"]:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            reasons[item["path"]] = reasons.get(item["path"], ()) + _reasons(item)
            if item.get("generated") is True:
                generated.add(item["path"])
    ids = [str((doc.get(k) or {}).get("id", "")) for k in ("source", "result")]
    return SlimRunReasons(where, ids[0], ids[1], reasons, frozenset(generated))


def _reasons(item: Mapping[str, Any]) -> tuple[KeptReason, ...]:
    return tuple(
        KeptReason(str(r.get("kind", "")), str(r.get("detail", "")), str(r.get("source", "")))
        for r in item.get("reasons") or ()
        if isinstance(r, dict)
    )


def kept_files(
    entries: Mapping[str, FileEntry], a_id: str, b_id: str, report: SlimRunReasons
) -> KeptFiles:
    """Every non-directory path of B (`entries`) with the reasons `report` gives it."""
    files = tuple(
        KeptFile(p, report.reasons.get(p, ()), p in report.generated)
        for p, e in sorted(entries.items())
        if not e.is_dir
    )
    matches = report.source_id == a_id and report.result_id == b_id
    return KeptFiles(report.path, matches, files)
