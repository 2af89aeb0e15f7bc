"""`slim docker-archive:FILE -o OUT`: an image that is not on the engine, and one the
engine could not hold at all (deeper than overlay2's 125 layers), is slimmed from
its archive; the engine runs a one-layer copy of it that the run removes again."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimmer.engine import Engine
from slimmer.image.writer import assemble_archive
from tests.installed import ROOT, run_slim

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

LAYERS = 200  # deeper than the engine stacks (125)
PROBES = ROOT / "fixtures" / "c-static" / "probe.toml"


def _layer(path: Path, members: list[tuple[str, bytes | None, int]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _c_static_files(engine: Engine, image: str, work: Path) -> dict[str, bytes]:
    """`server` and `www/index.txt` of the c-static fixture, from its saved layers."""
    saved = work / "c-static.tar"
    with open(saved, "wb") as out:
        engine.save_image(image, out)
    files: dict[str, bytes] = {}
    with tarfile.open(saved) as outer:
        for member in outer:
            if member.name.endswith("layer.tar") and (fh := outer.extractfile(member)):
                with tarfile.open(fileobj=io.BytesIO(fh.read())) as inner:
                    for m in inner:
                        if m.isfile() and (data := inner.extractfile(m)):
                            files[m.name] = data.read()
    saved.unlink()
    return files


@pytest.fixture(scope="module")
def deep_archive(
    engine: Engine, fixture_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """c-static's server in the first of LAYERS layers, one small file in each other."""
    work = tmp_path_factory.mktemp("deep")
    app = _c_static_files(engine, fixture_images["c-static"], work)
    layers = [
        _layer(
            work / "l0000.tar",
            [
                ("server", app["server"], 0o755),
                ("www", None, 0o755),
                ("www/index.txt", app["www/index.txt"], 0o644),
            ],
        )  # fmt: skip
    ]
    for i in range(1, LAYERS):
        layers.append(
            _layer(
                work / f"l{i:04}.tar", [("layers", None, 0o755), (f"layers/l{i}", b"%d" % i, 0o644)]
            )
        )
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": ["/server"], "Cmd": ["8080"], "ExposedPorts": {"8080/tcp": {}}},
        "history": [{"created_by": f"layer {i}"} for i in range(LAYERS)],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + _sha256(p) for p in layers]},
    }
    archive = assemble_archive(layers, config, work / "deep.tar").archive
    for layer in layers:
        layer.unlink()
    yield archive


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
