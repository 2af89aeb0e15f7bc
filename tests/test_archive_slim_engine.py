"""`slim docker-archive:FILE -o OUT`: an image that is not on the engine, and one the
engine could not hold at all (deeper than overlay2's 125 layers), is slimmed from
its archive; the engine runs a one-layer copy of it that the run removes again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.scale import app_files, build_archive, layer_tars
from slimmer.engine import Engine
from tests.installed import ROOT, run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

LAYERS = 200  # deeper than the engine stacks (125)
PROBES = ROOT / "fixtures" / "c-static" / "probe.toml"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def deep_archive(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """c-static's server in the first of LAYERS layers, one small file in each other
    (written as the scale benchmark writes its layer series, from the fixture that
    `fixture_images` builds when it is missing)."""
    assert "c-static" in fixture_images
    work = tmp_path_factory.mktemp("deep")
    app = app_files(engine, work)
    yield build_archive("deep", layer_tars(work, LAYERS, app), work)


def _ours(engine: Engine) -> set[str]:
    return {item.id for item in engine.leftovers()}


def test_an_image_deeper_than_the_engine_allows_is_slimmed_from_its_archive(
    engine: Engine, deep_archive: Path, tmp_path: Path
) -> None:
    before_sha = _sha256(deep_archive)
    left_before = _ours(engine)
    out = "slimmer-test/deep-archive:slim"
    res = run_slim(
        f"docker-archive:{deep_archive}",
        "-o",
        out,
        "--probes",
        str(PROBES),
        "--report-dir",
        str(tmp_path),
    )
    try:
        assert res.returncode == 0, res.stderr
        assert "Traceback" not in res.stderr
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["verification"]["status"] == "passed" and report["result"]["tagged"]
        assert report["after"]["layers"] == 1
        assert engine.inspect_image(out).id == report["result"]["id"]
        assert report["before"]["layers"] == LAYERS
        kept = {k["path"] for k in report["kept"]}
        assert "/server" in kept and "/www/index.txt" in kept
        # the one-layer copy the engine ran is gone; the archive is untouched
        assert _ours(engine) <= left_before
        assert _sha256(deep_archive) == before_sha
    finally:
        if engine.image_exists(out):
            engine.remove_image(out, force=True)


def test_a_dockerfile_needs_the_input_on_the_engine(deep_archive: Path, tmp_path: Path) -> None:
    res = run_slim(
        f"docker-archive:{deep_archive}",
        "-o",
        "slimmer-test/deep-archive:never",
        "--dockerfile",
        str(tmp_path / "Dockerfile"),
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "must be on the engine" in lines[0]
