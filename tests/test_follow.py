"""Reading a `docker save` archive while it is written (slimmer.image.follow): the same
image as a read of the finished archive, and a broken layer still named."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from slimmer.errors import ImageReadError
from slimmer.image.filetree import keep_all
from slimmer.image.follow import GrowingSlice, save_and_parse
from slimmer.image.reader import open_image
from slimmer.image.store import ContentStore
from tests.synth import M, docker_archive, layer


def _slow_saver(archive: Path, image_id: str = "sha256:" + "e" * 64) -> Callable[[str, Path], str]:
    """A saver that writes `archive` into its destination in small, slow pieces, as a
    `docker save` stream arrives."""

    def save(_name: str, dest: Path) -> str:
        data = archive.read_bytes()
        with open(dest, "wb") as out:
            for i in range(0, len(data), 7_000):
                out.write(data[i : i + 7_000])
                out.flush()
                time.sleep(0.001)
        return image_id

    return save


def _layers() -> list[bytes]:
    return [
        layer(
            M("etc/"),
            M("etc/a", data=b"a" * 50_000),
            M("bin/"),
            M("bin/x", data=b"\x7fELF" + b"x" * 9_000),
        ),
        layer(M("etc/.wh.a"), M("etc/b", data=b"b" * 30_000), M("etc/c", "hardlink", link="etc/b")),
    ]


def test_layers_parsed_while_saving_make_the_image_a_finished_read_makes(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "src.tar", _layers())
    spool = tmp_path / "spool.tar"
    image_id, early = save_and_parse(
        _slow_saver(archive), "app", spool, ContentStore(tmp_path / "s"), keep_all
    )
    assert image_id == "sha256:" + "e" * 64 and spool.read_bytes() == archive.read_bytes()
    assert len(early) == 2  # both layers parsed before the save ended
    followed = open_image("app", save=_slow_saver(archive), want=keep_all, workdir=tmp_path)
    finished = open_image(f"docker-archive:{archive}", want=keep_all, workdir=tmp_path)
    with followed, finished:
        assert sorted(followed.tree.walk(), key=lambda e: e.path) == sorted(
            finished.tree.walk(), key=lambda e: e.path
        )
        assert followed.layers == finished.layers
        assert followed.tree.read_bytes("/etc/b") == b"b" * 30_000
        assert followed.tree.get("/etc/a") is None


def test_a_broken_layer_is_named_as_a_finished_read_names_it(tmp_path: Path) -> None:
    broken = _layers()
    broken[1] = broken[1][: 512 * 3 + 100]  # cut inside /etc/b's bytes
    archive = docker_archive(tmp_path / "src.tar", broken)
    with pytest.raises(ImageReadError, match=r"reading layer 2 \(sha256:"):
        open_image("app", save=_slow_saver(archive), want=keep_all, workdir=tmp_path)


def test_layers_written_out_of_order_are_stacked_by_the_manifest(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "src.tar", _layers())
    reordered = tmp_path / "reordered.tar"
    with tarfile.open(archive) as src, tarfile.open(reordered, "w") as out:
        members = src.getmembers()
        layers = [m for m in members if m.name.endswith("/layer.tar")]
        rest = [m for m in members if m not in layers]
        for m in [*reversed(layers), *rest]:  # layer 2 first, the manifest still last
            out.addfile(m, src.extractfile(m))
    followed = open_image("app", save=_slow_saver(reordered), want=keep_all, workdir=tmp_path)
    finished = open_image(f"docker-archive:{archive}", want=keep_all, workdir=tmp_path)
    with followed, finished:
        assert sorted(followed.tree.walk(), key=lambda e: e.path) == sorted(
            finished.tree.walk(), key=lambda e: e.path
        )
        assert followed.tree.get("/etc/a") is None and followed.tree.get("/etc/b") is not None
        assert followed.tree.get("/etc/b").layer == 1  # type: ignore[union-attr]
        assert followed.tree.read_bytes("/etc/c") == b"b" * 30_000  # a hardlink, moved too


def test_a_growing_slice_waits_for_its_bytes_and_ends_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "growing"
    path.write_bytes(b"head")
    ended, stop = threading.Event(), threading.Event()

    def write_later() -> None:
        time.sleep(0.1)
        with open(path, "ab") as out:
            out.write(b"0123456789")
        ended.set()

    writer = threading.Thread(target=write_later)
    writer.start()
    view = GrowingSlice(path, 4, 12, ended, stop)  # two bytes more than will come
    assert view.seekable() and view.read(6) == b"012345"  # waited for the writer
    view.seek(-4, io.SEEK_END)
    assert view.tell() == 8 and view.read(2) == b"89"
    writer.join()
    with pytest.raises(EOFError):  # the file ended inside the slice
        view.read(2)
    stop.set()
    view.seek(0)
    with pytest.raises(EOFError):  # stopped: no read, even of bytes that are there
        view.read(1)
    view.close()
