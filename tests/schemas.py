"""The JSON schema of a machine document, found by its schema ID: `slimmer.X/vN` is
documented in docs/schemas/X-vN.json. Tests validate against `json_schema(SCHEMA)`
with the writer's own constant, so each ID is written once (test_schema_ids pins it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def schema_path(schema_id: str) -> Path:
    family, version = schema_id.removeprefix("slimmer.").split("/")
    return SCHEMAS / f"{family}-{version}.json"


def json_schema(schema_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(schema_path(schema_id).read_text())
    return doc
