"""Each machine document's schema ID is written once, as a constant beside its writer;
writers, readers, the docs' JSON schemas and the tests (through tests/schemas.py) use
that constant. This is the one place the IDs are spelled out, so changing one (a
contract change) fails here."""

from __future__ import annotations

import json

from slimmer.analyse import check, diff, inspect
from slimmer.analyse.slimreasons import SLIM_SCHEMAS
from slimmer.findings import rules
from slimmer.image import validate
from slimmer.model import SLIM_SCHEMA
from slimmer.report import deps_view, fleet_view, platforms_view, trace_view
from slimmer.trace import events
from tests.schemas import SCHEMAS, json_schema, schema_path

PINNED = {
    inspect.SCHEMA: "slimmer.inspect/v1",
    check.SCHEMA: "slimmer.check/v1",
    diff.SCHEMA: "slimmer.diff/v1",
    rules.SCHEMA: "slimmer.lint/v1",
    validate.SCHEMA: "slimmer.validate/v1",
    SLIM_SCHEMA: "slimmer.slim/v3",
    deps_view.SCHEMA: "slimmer.deps/v1",
    trace_view.SCHEMA: "slimmer.profile/v1",  # `slim profile --format json`: the command's name
    events.SCHEMA: "slimmer.trace/v1",
    fleet_view.SCHEMA: "slimmer.fleet/v1",
    platforms_view.SCHEMA: "slimmer.platforms/v1",
}


def test_each_id_is_pinned_and_distinct() -> None:
    assert list(PINNED) == list(PINNED.values())
    assert len(set(PINNED)) == len(PINNED)


def test_every_documented_schema_carries_its_writers_id() -> None:
    documented = {schema_path(s): s for s in PINNED if schema_path(s).exists()}
    assert sorted(documented) == sorted(SCHEMAS.glob("*.json"))
    for path, schema_id in documented.items():
        doc = json_schema(schema_id)
        assert doc["$id"] == schema_id, path
        const = doc["properties"]["schema"]["const"]
        assert const == schema_id, path
        assert json.dumps(doc).count(f'"{schema_id}"') == 2, path


def test_slim_reports_read_back_include_the_one_written() -> None:
    assert SLIM_SCHEMAS[-1] == SLIM_SCHEMA and len(set(SLIM_SCHEMAS)) == len(SLIM_SCHEMAS)
