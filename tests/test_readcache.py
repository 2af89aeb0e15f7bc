"""The read cache gives back the image it was given, bytes included."""

from __future__ import annotations

from pathlib import Path

from slimmer.image.cache import ReadCache
from slimmer.image.filetree import keep_all
from slimmer.image.reader import open_image, parse_ref
from tests.synth import M, docker_archive, layer


def test_round_trip(tmp_path: Path) -> None:
    arch = docker_archive(tmp_path / "i.tar", [layer(M("a", data=b"bytes"), M("d/", "dir"))])
    cache = ReadCache(tmp_path / "cache")
    ref = parse_ref(f"docker-archive:{arch}")
    with open_image(ref, want=keep_all, store=cache.blobs) as image:
        cache.save(image)
        assert image.tree.read_bytes("/a") == b"bytes"
        image_id = image.id
    assert cache.load(ref, "sha256:" + "0" * 64) is None
    again = cache.load(ref, image_id)
    assert again is not None and again.id == image_id
    assert again.tree.read_bytes("/a") == b"bytes"
    assert {e.path for e in again.tree} == {"/", "/a", "/d"}
    (tmp_path / "cache/images" / (image_id.replace(":", "-") + ".pickle")).write_bytes(b"junk")
    assert cache.load(ref, image_id) is None
