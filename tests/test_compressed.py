"""The compressed size the slim report shows: stored, full or a sampled estimate
(slimmer.image.compressed), checked against Python's own gzip module."""

from __future__ import annotations

import functools
import gzip
import itertools
from collections.abc import Iterator
from pathlib import Path

from slimmer.image.archive import open_archive
from slimmer.image.cache import ReadCache
from slimmer.image.compressed import (
    BLOCK,
    ERROR_BOUND,
    SAMPLES,
    Compressed,
    combine_shares,
    estimate_image,
    estimate_layer,
    leading_share,
    sample_offsets,
    size_share,
)
from slimmer.pipeline.compression import CompressedSize
from tests.synth import M, docker_archive, layer, mixed_layer, oci_layout


def test_sample_offsets_are_fixed_and_spread_over_the_layer() -> None:
    size = 100 << 20
    offsets = sample_offsets(size)
    assert offsets == sample_offsets(size)  # deterministic
    assert len(offsets) == SAMPLES and offsets == tuple(sorted(offsets))
    assert offsets[0] > 0 and offsets[-1] + BLOCK < size
    gaps = {b - a for a, b in zip(offsets, offsets[1:], strict=False)}
    assert max(gaps) - min(gaps) <= 1  # one block per equal stratum


def test_a_large_layer_is_estimated_within_the_bound_of_gzip(tmp_path: Path) -> None:
    data = mixed_layer(7, 48)
    archive = open_archive("docker-archive", docker_archive(tmp_path / "d.tar", [data]))
    estimate = estimate_layer(archive.layers[0])
    full = len(gzip.compress(data, compresslevel=6, mtime=0))
    assert estimate.method == "sampled" and estimate.estimated
    assert abs(estimate.bytes - full) <= ERROR_BOUND * full, (estimate.bytes, full)
    assert estimate_layer(archive.layers[0]) == estimate  # the same figure again


def test_the_work_dealt_out_in_shares_gives_the_same_figure(tmp_path: Path) -> None:
    """Threads sizing one layer's samples in shares (any number of them) add up to the
    figure one thread gives; a layer sized whole is share 0's alone."""
    big = mixed_layer(11, 40)
    small = layer(M("a", data=b"hello " * 50_000))
    path = docker_archive(tmp_path / "d.tar", [big, small])
    layers = open_archive("docker-archive", path).layers
    for one in layers:
        alone = estimate_layer(one)
        for shares in (2, 3, 5):
            parts = [size_share(one, s, shares) for s in range(shares)]
            assert combine_shares(one, parts) == alone
    sizing = CompressedSize(path)
    assert sizing.result() == estimate_layer(layers[0]) + estimate_layer(layers[1])


def test_a_small_layer_is_compressed_whole_and_a_gzip_blob_is_its_own_size(
    tmp_path: Path,
) -> None:
    data = layer(M("a", data=b"hello " * 50_000))
    archive = open_archive("docker-archive", docker_archive(tmp_path / "d.tar", [data]))
    full = Compressed(len(gzip.compress(data, compresslevel=6, mtime=0)), "full")
    assert estimate_layer(archive.layers[0]) == full
    oci = open_archive("oci", oci_layout(tmp_path / "oci", [data]))
    blobs = list((tmp_path / "oci" / "blobs" / "sha256").iterdir())
    stored = estimate_layer(oci.layers[0])
    assert stored.method == "stored" and not stored.estimated
    assert stored.bytes in {p.stat().st_size for p in blobs}
    # an image's figure is as good as its worst layer's
    both = estimate_image([archive.layers[0], oci.layers[0]])
    assert both == Compressed(full.bytes + stored.bytes, "full")


def test_the_cache_keeps_the_better_figure(tmp_path: Path) -> None:
    cache = ReadCache(tmp_path / "cache")
    image_id = "sha256:" + "a" * 64
    assert cache.compressed(image_id) is None
    cache.note_compressed(image_id, Compressed(100, "full"))
    cache.note_compressed(image_id, Compressed(90, "sampled"))  # worse: not kept
    assert cache.compressed(image_id) == Compressed(100, "full")
    cache.note_compressed(image_id, Compressed(95, "stored"))
    assert cache.compressed(image_id) == Compressed(95, "stored")
    # an entry an older slimmer wrote: a bare number, a full gzip
    (tmp_path / "cache" / "images" / (image_id.replace(":", "-") + ".gzip-bytes")).write_text("7")
    assert cache.compressed(image_id) == Compressed(7, "full")


def _nth_call(calls: Iterator[int], n: int) -> bool:
    """True from the `n`-th call on (calls counted by `calls`)."""
    return next(calls) >= n


def test_a_leading_share_and_the_rest_dealt_out_give_the_same_figure(tmp_path: Path) -> None:
    """A reader following a layer as it is written takes its first samples in order,
    stopping wherever the save ends; threads take the rest (`skip`): one figure."""
    big = mixed_layer(13, 40)
    small = layer(M("a", data=b"hello " * 50_000))
    layers = open_archive("docker-archive", docker_archive(tmp_path / "d.tar", [big, small])).layers
    alone = estimate_layer(layers[0])
    for stop_after in (0, 1, 77, SAMPLES):
        asked = itertools.count()
        lead, taken = leading_share(layers[0], functools.partial(_nth_call, asked, stop_after))
        assert taken == stop_after
        rest = [size_share(layers[0], s, 2, skip=taken) for s in range(2)]
        assert combine_shares(layers[0], [lead, *rest]) == alone
    # a layer sized whole is whole at once, whenever the save ends
    lead, taken = leading_share(layers[1], lambda: True)
    assert taken == SAMPLES and combine_shares(layers[1], [lead]) == estimate_layer(layers[1])
