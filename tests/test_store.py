"""The content store: a private store's pack file, a shared store's file per blob."""

from __future__ import annotations

import io
from pathlib import Path

from slimmer.image.store import CHUNK, ContentStore


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
