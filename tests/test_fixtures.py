"""Integration: every fixture image builds, and its `probes` and `heldout`
probes all pass on a container of the original image, with the same answers
twice (so a slim image's answers can be compared to them)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from slimmer.engine import LABEL, Engine
from slimmer.trace.proberun import run_probes_on_image
from slimmer.trace.probes import ProbeResult, load_probe_file
from tests.fixtures_build import FIXTURES_DIR, fixture_names, standalone_fixture_names

pytestmark = pytest.mark.engine


def _containers_of(engine: Engine, image: str) -> set[str]:
    """slimmer-labelled containers of `image` (others' tests may run alongside)."""
    image_id = engine.inspect_image(image).id
    found = engine._api.containers(all=True, filters={"label": LABEL, "ancestor": image_id})
    return {str(c["Id"]) for c in found}


def _failures(results: list[ProbeResult]) -> list[str]:
    return [f"{r.probe.label}: {r.error}" for r in results if not r.ok]


def test_every_fixture_has_a_probe_file() -> None:
    names = fixture_names()
    assert len(names) >= 8
    for name in names:
        assert (FIXTURES_DIR / name / "probe.toml").is_file(), name


# ctx-web and ctx-worker exit at start alone, by design: their probes pass in their
# context (tests/test_context_e2e.py)
@pytest.mark.parametrize("name", standalone_fixture_names())
def test_probes_pass_on_the_original(
    engine: Engine, fixture_images: dict[str, str], name: str
) -> None:
    image = fixture_images[name]
    spec = load_probe_file(FIXTURES_DIR / name / "probe.toml")
    before = _containers_of(engine, image)
    try:
        narrow = run_probes_on_image(engine, image, spec)
        heldout = run_probes_on_image(engine, image, spec, heldout=True)
        again = run_probes_on_image(engine, image, spec, heldout=True)
    finally:
        leftover = _containers_of(engine, image) - before
        for container in leftover:
            engine.remove_container(container)
    assert not _failures(narrow), "narrow probes failed"
    assert not _failures(heldout), "heldout probes failed"
    assert [r.observable() for r in again] == [r.observable() for r in heldout]
    assert not leftover, "run_probes_on_image left containers behind"


def _layer_members(engine: Engine, image: str, tmp_path: Path) -> list[list[tarfile.TarInfo]]:
    archive = tmp_path / "image.tar"
    with open(archive, "wb") as fh:
        engine.save_image(image, fh)
    layers: list[list[tarfile.TarInfo]] = []
    with tarfile.open(archive) as outer:
        manifest: list[dict[str, Any]] = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            inner = outer.extractfile(name)
            assert inner is not None
            with tarfile.open(fileobj=inner, encoding="utf-8", errors="surrogateescape") as tf:
                layers.append(tf.getmembers())
    return layers


def test_layers_fixture_holds_the_awkward_entries(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    """The layer tars the engine writes hold what the image reader must handle."""
    layers = _layer_members(engine, fixture_images["layers"], tmp_path)
    members = [m for layer in layers for m in layer]
    names = {m.name.rstrip("/") for m in members}
    assert len(layers) >= 12
    assert "opt/d/.wh..wh..opq" in names
    assert {"opt/data/.wh.deleted.bin", "opt/.wh.gone"} <= names
    assert any(m.islnk() and m.name.startswith("opt/links/") for m in members)
    assert any(m.issym() and m.linkname == "../../../../../../etc" for m in members)
    assert any(m.isfifo() for m in members)
    assert any(m.name == "usr/local/bin/suid-true" and m.mode & 0o4000 for m in members)
    assert any("\udcff" in m.name for m in members), "non-UTF-8 name"
    assert max(len(m.name) for m in members) > 255
    cap = [m for m in members if m.name == "usr/local/bin/cap-sleep"]
    assert cap and "SCHILY.xattr.security.capability" in cap[-1].pax_headers
