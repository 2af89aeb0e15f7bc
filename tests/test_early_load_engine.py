"""The slim layer sent to a real engine while it is written (`pipeline.transfers.EarlyLoad`):
the image it loads is the written archive's, nothing it made is left behind, and a
load called off mid-layer makes no image."""

from __future__ import annotations

import tarfile
import threading
from pathlib import Path

import pytest

from slimmer.engine import Engine
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image
from slimmer.image.writer import WriteRequest, kept_entries, layer_file, write_image
from slimmer.model import Progress, Transfer
from slimmer.pipeline.transfers import EarlyLoad
from tests.synth import M, docker_archive, layer

pytestmark = pytest.mark.engine


def _source(tmp_path: Path) -> Path:
    big = bytes(range(256)) * 8192  # 2 MiB: the layer is sent in several chunks
    return docker_archive(
        tmp_path / "src.tar",
        [
            layer(
                M("bin/", "dir"),
                M("bin/tool", data=b"\x7fELF tool", mode=0o755),
                M("data/big", data=big),
                M("data/other", data=big[::-1]),
                M("data/link", "hardlink", link="data/big"),
            )
        ],
        cmd=["/bin/tool"],
    )


def _temporaries(engine: Engine) -> set[str]:
    return {i.id for i in engine.leftovers() if i.kind == "image"}


def test_a_layer_sent_while_written_loads_the_written_image(engine: Engine, tmp_path: Path) -> None:
    made: list[str] = []
    told: list[Transfer] = []

    def progress(event: str | Transfer) -> None:
        if isinstance(event, Transfer):
            told.append(event)

    before = _temporaries(engine)
    with open_image(f"docker-archive:{_source(tmp_path)}", want=keep_all) as src:
        out = tmp_path / "out"
        out.mkdir()
        entries = tuple(kept_entries(src.tree, [e.path for e in src.tree], src.store))
        early = EarlyLoad(engine, layer_file(out), 4 << 20, progress, made.append)
        written = write_image(WriteRequest(entries, src.store, src.config, src.id, out))
    try:
        assert not engine.image_exists(written.image_id)
        assert early.load(written.archive, written.image_id)
        loaded = engine.inspect_image(written.image_id)
        assert loaded.id == written.image_id and loaded.config["Cmd"] == ["/bin/tool"]
        # the image the import made held the layer only until the load took it
        assert len(made) == 1 and not engine.image_exists(made[0])
        assert _temporaries(engine) - {written.image_id} == before
        assert told and told[-1].step == "into the engine" and told[-1].done >= 4 << 20
    finally:
        engine.remove_image(written.image_id, force=True)


def test_a_load_called_off_mid_layer_makes_no_image(engine: Engine, tmp_path: Path) -> None:
    made: list[str] = []
    quiet: Progress = lambda _event: None  # noqa: E731
    before = _temporaries(engine)
    path = tmp_path / "layer.tar"
    early = EarlyLoad(engine, path, 1 << 20, quiet, made.append)
    # half a tar: a header whose file's bytes never come
    with open(path, "ab") as fh:
        fh.write(_header("cut", 1 << 20))
        fh.write(b"x" * 4096)
        fh.flush()
    threading.Event().wait(0.2)  # let it send what there is
    early.call_off()
    assert made == [] and _temporaries(engine) == before


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.PAX_FORMAT)
