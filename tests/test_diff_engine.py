"""`slim diff` through the Python API, checked against the engine's own merge
(tests/engine_listing.py): two unrelated fixtures, a slim pair's reasons, packages
and config, engine and archive references. Every fixture's slim pair is also
diffed through the installed CLI in tests/test_slim_engine.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from slimmer import api
from slimmer.analyse.diff import SCHEMA as DIFF_SCHEMA
from slimmer.analyse.diff import ImageDiff, diff_images
from slimmer.analyse.slimreasons import load_slim_reasons
from slimmer.engine import Engine, saver
from slimmer.pipeline.slim import SlimOptions
from slimmer.report import diff_view, slim_view
from slimmer.report.common import dump_json
from slimmer.trace.probes import load_probe_file
from tests.engine_listing import expected_sets, outside_init
from tests.schemas import json_schema

pytestmark = [pytest.mark.engine]
ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json_schema(DIFF_SCHEMA)
FIXTURES = ["layers", "py-batch"]


@dataclass(frozen=True)
class Slimmed:
    source: str
    output: str
    report: Path


# -- the slim images ------------------------------------------------------------------


@pytest.fixture(scope="module")
def slimmed(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Slimmed]]:
    """Each fixture slimmed once with its narrow probes, with its report.json written.

    Only what this module creates is checked for removal: other suites share the engine,
    and `tests/test_slim_engine.py` checks that a slim run leaves nothing behind."""
    out: dict[str, Slimmed] = {}
    try:
        for name in FIXTURES:
            spec = load_probe_file(ROOT / "fixtures" / name / "probe.toml")
            tag = f"slimmer-test/{name}:diff"
            out[name] = Slimmed(fixture_images[name], tag, Path())
            opts = SlimOptions(output=tag, probes=spec.probes, timeout=spec.timeout)
            result = api.slim(fixture_images[name], opts)
            report = tmp_path_factory.mktemp(name) / "report.json"
            report.write_text(dump_json(slim_view.to_json(result)))
            out[name] = Slimmed(fixture_images[name], tag, report)
        yield out
    finally:
        for item in out.values():
            engine.remove_image(item.output, force=True)
    assert not any(engine.image_exists(item.output) for item in out.values())


@pytest.fixture(scope="module")
def diffs(engine: Engine, slimmed: dict[str, Slimmed]) -> dict[str, ImageDiff]:
    return {
        name: diff_images(s.source, s.output, saver(engine), report=load_slim_reasons(s.report))
        for name, s in slimmed.items()
    }


def assert_matches_engine(engine: Engine, d: ImageDiff, a_image: str, b_image: str) -> None:
    """Added, removed and changed paths of `d` are those of the engine's own listings."""
    added, removed, changed = expected_sets(engine, a_image, b_image)
    assert {p.path for p in d.added if outside_init(p.path)} == added
    assert {p.path for p in d.removed if outside_init(p.path)} == removed
    assert {c.path for c in d.changed if outside_init(c.path)} == changed


def test_two_fixtures_match_the_engines_own_merge(
    engine: Engine, fixture_images: dict[str, str]
) -> None:
    """Two fixtures on one base: paths added, removed and changed all at once (layers'
    whiteouts, opaque directories and odd names against py-batch's Python)."""
    a, b = fixture_images["layers"], fixture_images["py-batch"]
    d = diff_images(a, b, saver(engine))
    assert d.added and d.removed and d.changed and not d.b_slimmed_from_a
    assert_matches_engine(engine, d, a, b)
    assert {c.field for c in d.config} >= {"cmd", "labels"}


@pytest.mark.parametrize("name", FIXTURES)
def test_slim_output_is_marked_and_its_files_explained(
    name: str, diffs: dict[str, ImageDiff]
) -> None:
    d = diffs[name]
    assert d.b_slimmed_from_a
    assert d.kept is not None and d.kept.matches, d.warnings
    assert d.kept.unexplained == ()
    assert len(d.kept.files) == d.b.files
    assert d.b.size_bytes < d.a.size_bytes and d.directories
    jsonschema.validate(diff_view.to_json(d), SCHEMA)


def test_packages_of_a_slim_image(diffs: dict[str, ImageDiff]) -> None:
    """py-batch's slim image keeps a dpkg status trimmed to the packages whose files
    survive: packages only go away; none is added or changes version."""
    p = diffs["py-batch"].packages
    assert p.removed and not p.added and not p.changed
    assert {x.name for x in p.removed} >= {"apt", "bash"}


def test_engine_and_archive_references_agree(
    engine: Engine, slimmed: dict[str, Slimmed], diffs: dict[str, ImageDiff], tmp_path: Path
) -> None:
    item = slimmed["layers"]
    source_id = engine.inspect_image(item.source).id
    archive = tmp_path / "slim.tar"
    with open(archive, "wb") as out:
        engine.save_image(item.output, out)
    d = diff_images(item.source, f"docker-archive:{archive}", saver(engine))
    want = diffs["layers"]
    assert (d.added, d.removed, d.changed) == (want.added, want.removed, want.changed)
    assert d.b_slimmed_from_a
    assert engine.inspect_image(item.source).id == source_id, "the input is never changed"
