"""Render a `Validation`: text for people, versioned JSON (`slimmer.validate/v1`,
docs/schemas/validate-v1.json) for programs. Pure functions, values in, strings out."""

from __future__ import annotations

from typing import Any

from slimmer.image.validate import SCHEMA, Validation, Violation
from slimmer.report.common import count, dump_json

FORMATS = ("text", "json")


def render(result: Validation, fmt: str) -> str:
    return dump_json(to_json(result)) if fmt == "json" else to_text(result)


def to_json(result: Validation) -> dict[str, Any]:
    """The `slimmer.validate/v1` document."""
    return {
        "schema": SCHEMA,
        "image": {
            "ref": result.source,
            "id": result.image_id,
            "layers": result.layers,
            "entries": result.entries,
        },
        "valid": result.valid,
        "violations": [_violation(v) for v in result.violations],
        "warnings": [_violation(v) for v in result.warnings],
    }


def _violation(v: Violation) -> dict[str, Any]:
    return {"rule": v.rule, "message": v.message, "layer": v.layer, "entry": v.entry}


def to_text(result: Validation) -> str:
    verdict = "valid" if result.valid else "INVALID"
    head = (
        f"{result.source}: {verdict} ({result.image_id[:19] or 'no image ID'}, "
        f"{count(result.layers, 'layer')}, {count(result.entries, 'entry', 'entries')})"
    )
    lines = [head]
    lines += [f"  error: {v}" for v in result.violations]
    lines += [f"  warning: {v}" for v in result.warnings]
    return "\n".join(lines) + "\n"
