"""`slim validate` as a user runs it (the installed CLI) on engine images and archives:
a fixture image, a slim output read back from the engine, and a saved archive whose
layer bytes were changed after the fact (its diff ID no longer matches)."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import jsonschema
import pytest

from slimmer.engine import Engine, saver
from slimmer.engine_api import Leftover
from slimmer.errors import ExitStatus
from slimmer.image.validate import SCHEMA as VALIDATE_SCHEMA
from tests.installed import run_slim
from tests.schemas import json_schema

pytestmark = [pytest.mark.engine, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json_schema(VALIDATE_SCHEMA)
OUT = "slimmer-test/validate-c-static:slim"


def test_a_fixture_image_is_valid(fixture_images: dict[str, str]) -> None:
    res = run_slim("validate", fixture_images["c-static"], "--format", "json")
    assert res.returncode == ExitStatus.OK, res.stderr
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert (doc["valid"], doc["image"]["layers"]) == (True, 2)


def test_a_slim_output_read_back_from_the_engine_is_valid(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    before = set(engine.leftovers())
    probes = ROOT / "fixtures" / "c-static" / "probe.toml"
    try:
        made = run_slim(
            fixture_images["c-static"], "-o", OUT, "--probes", str(probes),
            "--report-dir", str(tmp_path),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        res = run_slim("validate", OUT, "--format", "json")
        assert res.returncode == ExitStatus.OK, res.stderr
        doc = json.loads(res.stdout)
        assert doc["image"]["id"] == engine.inspect_image(OUT).id
        assert (doc["violations"], doc["warnings"]) == ([], []), "slimmer's own layers are sorted"
    finally:
        engine.remove_image(OUT, force=True)
    assert _settled(engine, before) <= before, "slimmer left containers or images behind"


def test_an_archive_with_a_changed_layer_fails(
    engine: Engine, fixture_images: dict[str, str], tmp_path: Path
) -> None:
    saved = tmp_path / "saved.tar"
    saver(engine)(fixture_images["c-static"], saved)
    broken = _change_layer_bytes(saved, tmp_path / "broken.tar", b"hello from", b"HELLO FROM")
    res = run_slim("validate", f"docker-archive:{broken}")
    assert res.returncode == ExitStatus.INVALID, res.stderr
    assert "INVALID" in res.stdout
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(f"slim: error: validating docker-archive:{broken}: 1 violation; ")
    assert "diff-id: layer 2: tar hashes to sha256:" in line


def _change_layer_bytes(src: Path, dest: Path, old: bytes, new: bytes) -> Path:
    """A copy of the `docker save` archive `src` where `old` becomes `new` (same length)
    inside a layer tar: the tar stays well formed, its hash changes."""
    changed = 0
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        for info in tin:
            fh = tin.extractfile(info) if info.isfile() else None
            data = fh.read() if fh is not None else b""
            if info.name.endswith("layer.tar") and old in data:
                data, changed = data.replace(old, new), changed + 1
            tout.addfile(info, io.BytesIO(data) if fh is not None else None)
    assert changed == 1
    return dest


def _settled(engine: Engine, before: set[Leftover], wait: float = 15) -> set[Leftover]:
    """The engine's leftovers once nothing new is left: other runs sharing the engine
    (other test sessions) may hold a container for a moment, so wait for them."""
    deadline = time.monotonic() + wait
    while True:
        now = set(engine.leftovers())
        if now <= before or time.monotonic() > deadline:
            return now
        time.sleep(1)
