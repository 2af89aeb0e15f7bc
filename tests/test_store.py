"""The content store: a private store's pack file, a shared store's file per blob."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest

from slimmer.image.archive import open_archive
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image
from slimmer.image.store import CHUNK, ContentStore
from slimmer.model import FileEntry
from tests.synth import M, docker_archive, layer


def test_a_private_store_packs_blobs_and_keeps_each_once(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "s")
    big = b"b" * (CHUNK * 2 + 7)
    k1, _ = store.put_stream(io.BytesIO(b"one"))
    k2, size = store.put_stream(io.BytesIO(big[4:]), big[:4])
    assert store.put_stream(io.BytesIO(b"one")) == (k1, 3)  # stored once
    assert (size, store.keys()) == (len(big), {k1, k2})
    assert store.read(k1) == b"one" and store.read(k2, 5, CHUNK * 2) == b"bbbbb"
    with store.open(k2) as fh:
        assert fh.read() == big
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["pack"]
    store.close()
    assert not (tmp_path / "s").exists()


def test_a_shared_store_keeps_a_file_per_blob(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "s", shared=True)
    key = store.put_bytes(b"data")
    assert store.put_bytes(b"data") == key
    assert store.keys() == {key} and store.read(key, 2, 1) == b"at"


def test_members_of_a_plain_saved_layer_are_kept_as_spans_of_the_archive(tmp_path: Path) -> None:
    long_name = "deep/" + "n" * 120 + "/file"  # a pax header before its data
    files = {
        "a": os.urandom(5000),
        long_name: os.urandom(CHUNK + 17),
        "x-" + "é" * 60: b"utf-8 name\n",
        "empty": b"",
        "twin": b"",
    }
    plain = layer(M("deep/", "dir"), *(M(n, data=d) for n, d in files.items()))
    packed = gzip.compress(layer(M("z", data=b"in a compressed layer")), mtime=0)
    path = docker_archive(tmp_path / "d.tar", [plain, packed])
    archive = open_archive("docker-archive", path)
    assert archive.layers[0].origin is not None and archive.layers[1].origin is None
    with open_image(f"docker-archive:{path}", want=keep_all) as img:
        for name, data in [*files.items(), ("z", b"in a compressed layer")]:
            assert img.tree.read_bytes("/" + name) == data
            with img.store.open(_key(img.tree.get("/" + name))) as fh:
                assert fh.read() == data
        # only the compressed layer's file was copied into the pack
        assert img.store.read(_key(img.tree.get("/z")), 5, 3) == b"a com"
        pack = list(img.store.root.iterdir())
        assert [p.stat().st_size for p in pack] == [len(b"in a compressed layer")]


def _key(entry: FileEntry | None) -> str:
    assert entry is not None and entry.content is not None
    return entry.content


def test_closing_the_image_closes_the_archive_its_spans_hold(tmp_path: Path) -> None:
    path = docker_archive(tmp_path / "d.tar", [layer(M("a", data=b"bytes"))])
    img = open_image(f"docker-archive:{path}", want=keep_all)
    descriptors = [fd for fd, _start, _size in img.store._spans.values()]
    assert descriptors and all(os.fstat(fd) for fd in descriptors)
    img.close()
    for fd in descriptors:
        with pytest.raises(OSError):
            os.fstat(fd)
