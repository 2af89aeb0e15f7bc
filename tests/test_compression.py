"""The run's compressed size, computed beside it by a thread per core."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import pytest

from slimmer.image.compressed import SAMPLES, Compressed
from slimmer.image.reader import open_image
from slimmer.pipeline.compression import CompressedSize
from tests.synth import M, docker_archive, layer, mixed_layer


def test_every_layer_is_sized_once_whatever_thread_takes_it(tmp_path: Path) -> None:
    layers = [
        layer(M(f"f{i}", data=os.urandom(1000 * i) + b"z" * 200_000 * i)) for i in range(1, 6)
    ]
    path = docker_archive(tmp_path / "d.tar", layers)
    expected = sum(len(gzip.compress(data, compresslevel=6, mtime=0)) for data in layers)
    # small layers are compressed whole: the figure is gzip's own
    assert CompressedSize(path).result() == Compressed(expected, "full")


def test_a_stopped_or_broken_sizing_gives_none(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"not a tar")
    assert CompressedSize(broken).result() is None
    data = layer(M("a", data=os.urandom(8 << 20)))
    sizing = CompressedSize(docker_archive(tmp_path / "d.tar", [data]))
    sizing.stop()  # stopped at once, or done before the stop was seen: never a part
    full = Compressed(len(gzip.compress(data, compresslevel=6, mtime=0)), "full")
    assert sizing.result() in (None, full)


def test_a_save_is_sized_layer_by_layer_as_it_is_written(tmp_path: Path) -> None:
    """The source's size while the engine saves it (`while_saved`, told each layer by
    the reader's parse): its first layer is sampled before the save goes on, and the
    figure is the finished archive's."""
    big = mixed_layer(5, 40)
    small = layer(M("b", data=os.urandom(300_000)))
    archive = docker_archive(tmp_path / "src.tar", [big, small])
    data = archive.read_bytes()
    first_end = data.index(big) + len(big)
    keep = tmp_path / "kept.tar"
    sizing = CompressedSize.while_saved(keep)

    def save(_name: str, dest: Path) -> str:
        with open(dest, "wb") as out:
            out.write(data[:first_end])
            out.flush()
            deadline = time.monotonic() + 60
            while sizing.sampled_while_saving == 0 and time.monotonic() < deadline:
                time.sleep(0.02)  # the save waits until the first layer is sized
            out.write(data[first_end:])
        os.link(dest, keep)
        sizing.saved(keep)
        return "sha256:" + "e" * 64

    image = open_image("app", save=save, workdir=tmp_path, layer_seen=sizing.layer_seen)
    image.close()
    # the first layer, every sample of it (the small second may be sized before `saved`)
    assert sizing.sampled_while_saving in (SAMPLES, 2 * SAMPLES)
    assert sizing.result() == CompressedSize(archive).result()


def test_a_stopped_save_stops_its_sizing(tmp_path: Path) -> None:
    """A save that fails part-way (the run's Ctrl-C, an engine error) leaves the sizing
    waiting for bytes that never come: `stop` ends it, with no figure."""
    data = docker_archive(tmp_path / "src.tar", [mixed_layer(6, 40)]).read_bytes()
    sizing = CompressedSize.while_saved(tmp_path / "kept.tar")

    def save(_name: str, dest: Path) -> str:
        dest.write_bytes(data[: len(data) // 2])
        raise OSError("the engine went away")

    with pytest.raises(OSError, match="went away"):
        open_image("app", save=save, workdir=tmp_path, layer_seen=sizing.layer_seen)
    sizing.stop()
    assert sizing.result() is None
