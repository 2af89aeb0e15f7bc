"""`slim inspect` on every fixture image, through the real engine, against dive 0.13."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimmer.engine import Engine
from tests.dive import DIVE_FIXTURES, dive_json
from tests.installed import run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e]


def _slim_json(*args: str) -> dict[str, object]:
    res = run_slim("inspect", *args, "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    doc: dict[str, object] = json.loads(res.stdout)
    return doc


def test_inspect_matches_dive_on_every_fixture(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    compared = []
    for name, tag in sorted((n, fixture_images[n]) for n in DIVE_FIXTURES):
        before = engine.inspect_image(tag).id
        archive = tmp_path / f"{name}.tar"
        with open(archive, "wb") as out:
            engine.save_image(tag, out)
        ours = _slim_json(tag)
        theirs = dive_json(archive, tmp_path)["image"]
        assert ours["efficiency"] == theirs["efficiencyScore"], name
        assert ours["wasted_bytes"] == theirs["inefficientBytes"], name
        assert ours["image"]["size_bytes"] == theirs["sizeBytes"], name  # type: ignore[index]
        # The same numbers without an engine, from the saved archive.
        offline = _slim_json(f"docker-archive:{archive}")
        assert offline["efficiency"] == ours["efficiency"]
        assert offline["image"]["id"] == before  # type: ignore[index]
        assert engine.inspect_image(tag).id == before  # the input is never changed
        archive.unlink()
        compared.append((name, ours["efficiency"], ours["wasted_bytes"]))
    assert len(compared) == len(DIVE_FIXTURES)
    print("\n".join(f"{n}: efficiency={e} wasted={w}" for n, e, w in compared))


def test_layers_fixture_reader_rules(engine: Engine, fixture_images: dict[str, str]) -> None:
    """The many-layer fixture: deletions, overwrites, opaque dir, links, setuid, xattrs."""
    doc = _slim_json(fixture_images["layers"])
    assert doc["reclaimable_bytes"] > 0  # type: ignore[operator]
    assert doc["setuid"], "the setuid binary is reported"
    inefficient = doc["inefficient_files"]
    assert isinstance(inefficient, list) and inefficient, "overwritten files are inefficient"
