"""The run's compressed size, computed beside it by a thread per core."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from slimmer.image.compressed import Compressed
from slimmer.pipeline.compression import CompressedSize
from tests.synth import M, docker_archive, layer


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
