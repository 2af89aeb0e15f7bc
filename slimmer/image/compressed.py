"""The compressed size of an image: what a registry would store, without a registry.

Three ways, best first (`Compressed.method` names the one used):
- `stored`: a layer stored gzip-compressed (an OCI layout, a registry's blob)
  already has its compressed size: the blob's;
- `full`: the whole layer through zlib, as below (`layer_gzip_size`);
- `sampled`: an estimate of `full` from a deterministic sample of the layer
  (`estimate_layer`), for a fraction of the time.

`docker push` sends each layer as a gzip stream of its uncompressed tar; the
registry stores those blobs. `layer_gzip_size` finds a blob's size by streaming
the layer's tar through zlib at gzip's default level (6) with a gzip header and
trailer (wbits 31), counting the output and writing it nowhere. The engine's
own gzip writer (Go's compress/gzip) at its default level lands within a few
percent of zlib's output. `compressed_sizes` (`slim check`'s budget) is the same
for the same layer whatever transport it was read from (a layer already stored
gzip-compressed is decompressed and compressed again, so an OCI layout and a
`docker save` archive of one image give one answer); the slim report takes the
faster `estimate_layer`.

The sample (`sampled_deflate`): one 256 KiB block from the middle of each of 128
equal strata of the layer's tar, each compressed with the 32 KiB before it as
deflate's preset dictionary (the history it has in place), scaled by the layer's
size over the bytes sampled. It is deterministic (the same layer, the same
figure) and reads at most 36 MiB of a layer. Its error is checked, not derived:
within ERROR_BOUND (2 %) of the full level-6 gzip of every fixture image
(tests/test_compressed_engine.py); a layer of very uneven content (a few large
incompressible files among text) can miss by more on its own.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Literal

from slimmer.errors import ImageReadError
from slimmer.image.archive import ArchiveImage, LayerSource, compression_of

LEVEL = 6
GZIP_WBITS = 31  # 16 + 15: a gzip header and trailer around a 32 KiB-window deflate stream
CHUNK = 1 << 20


def gzip_size(chunks: Iterable[bytes], level: int = LEVEL) -> int:
    """Bytes of the gzip stream of the concatenated `chunks`."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)
    total = 0
    for chunk in chunks:
        total += len(compressor.compress(chunk))
    return total + len(compressor.flush())


def layer_gzip_size(layer: LayerSource, level: int = LEVEL) -> int:
    """gzip size of one layer's uncompressed tar, streamed (never held whole)."""
    try:
        with layer.open() as stream:
            return gzip_size(iter(lambda: stream.read(CHUNK), b""), level)
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(layer, exc) from exc


def compressed_sizes(archive: ArchiveImage, level: int = LEVEL) -> tuple[int, ...]:
    """gzip size of each layer of `archive`, in layer order."""
    return tuple(layer_gzip_size(layer, level) for layer in archive.layers)


# -- the sampled estimate ---------------------------------------------------------

Method = Literal["stored", "full", "sampled"]
METHODS: tuple[Method, ...] = ("stored", "full", "sampled")  # best first

BLOCK = 256 << 10  # bytes compressed per sample
WINDOW = 32 << 10  # deflate's window: the bytes before a sample that prime it
SAMPLES = 128  # samples per layer; a layer up to SAMPLES * BLOCK is compressed whole
GZIP_FRAME = 18  # a gzip header (10 bytes) and trailer (8) around the deflate stream
# What tests/test_compressed_engine.py checks on every fixture image: the sampled
# estimate of the whole image within this fraction of a full level-6 gzip.
ERROR_BOUND = 0.02


@dataclass(frozen=True)
class Compressed:
    """A compressed size and how it was found (see the module)."""

    bytes: int
    method: Method

    @property
    def estimated(self) -> bool:
        return self.method == "sampled"

    def __add__(self, other: Compressed) -> Compressed:
        worst = max(self.method, other.method, key=METHODS.index)
        return Compressed(self.bytes + other.bytes, worst)


def sample_offsets(size: int, block: int = BLOCK, samples: int = SAMPLES) -> tuple[int, ...]:
    """Where each sample of a `size`-byte layer starts: one block in the middle of each
    of `samples` equal strata (a systematic sample: every region of the tar, and so
    every kind of file in it, is represented in proportion to its bytes)."""
    stride = size / samples
    return tuple(int(i * stride + (stride - block) / 2) for i in range(samples))


def sampled_deflate(
    stream: IO[bytes], size: int, level: int = LEVEL, block: int = BLOCK, samples: int = SAMPLES
) -> int:
    """An estimate of the deflate size of the `size` bytes of the seekable `stream`.

    Each sample is compressed with the WINDOW bytes before it as deflate's preset
    dictionary: within a single stream deflate sees exactly those bytes as its
    history, so a sample costs what it costs in place (up to where the stream's block
    boundaries fall). The estimate is the samples' compression ratio times `size`."""
    packed, raw = sampled_sums(stream, sample_offsets(size, block, samples), level, block)
    return _scaled(packed, raw, size)


def sampled_sums(
    stream: IO[bytes], offsets: Iterable[int], level: int = LEVEL, block: int = BLOCK
) -> tuple[int, int]:
    """(deflated bytes, raw bytes) of the samples of `stream` at `offsets`, each primed
    as `sampled_deflate` primes it."""
    raw = packed = 0
    for start in offsets:
        prime = max(0, start - WINDOW)
        stream.seek(prime)
        history = stream.read(start - prime)
        data = stream.read(block)
        compressor = (
            zlib.compressobj(level, zlib.DEFLATED, -15, zdict=history)
            if history  # none at the stream's start
            else zlib.compressobj(level, zlib.DEFLATED, -15)
        )
        packed += len(compressor.compress(data)) + len(compressor.flush())
        raw += len(data)
    return packed, raw


def _scaled(packed: int, raw: int, size: int) -> int:
    return round(packed * size / raw) if raw else 2


@dataclass(frozen=True)
class Share:
    """One share of the work of sizing a layer (`size_share`): the figure of a layer
    sized whole (share 0's), or the sums of the samples dealt to this share."""

    whole: Compressed | None = None
    packed: int = 0
    raw: int = 0


def estimate_layer(layer: LayerSource, level: int = LEVEL) -> Compressed:
    """The gzip size of one layer: the stored blob's when it is stored gzip-compressed,
    the whole layer's when it is small (or stored otherwise compressed, and so not
    seekable), else a sampled estimate of the layer's plain tar (`sampled_deflate`)."""
    return combine_shares(layer, [size_share(layer, 0, 1, level)])


def size_share(
    layer: LayerSource, share: int, shares: int, level: int = LEVEL, skip: int = 0
) -> Share:
    """Share `share` of `shares` of `estimate_layer(layer)`'s work, for threads to do at
    once: a sampled layer's samples are dealt out in turn (every `shares`-th to each),
    a layer sized whole is share 0's. `combine_shares` of all of them is
    `estimate_layer`'s figure, whatever the number of shares. With `skip`, a sampled
    layer's first `skip` samples are left out (`leading_share` took them)."""
    try:
        method = _method(layer)
        if method != "sampled":
            return Share(_whole(layer, method, level)) if share == 0 else Share()
        with layer.open() as stream:
            offsets = sample_offsets(layer.stored_bytes)[skip:][share::shares]
            packed, raw = sampled_sums(stream, offsets, level)
            return Share(packed=packed, raw=raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(layer, exc) from exc


def leading_share(
    layer: LayerSource, enough: Callable[[], bool], level: int = LEVEL
) -> tuple[Share, int]:
    """The first samples of a sampled layer, in order, until `enough()` (for a reader
    that follows a layer as it is written, and stops where others take over): their
    share of `estimate_layer`'s work and how many they are, for `size_share`'s `skip`.
    A layer sized whole is sized whole: all SAMPLES of it."""
    try:
        method = _method(layer)
        if method != "sampled":
            return Share(_whole(layer, method, level)), SAMPLES
        packed = raw = taken = 0
        with layer.open() as stream:
            for start in sample_offsets(layer.stored_bytes):
                if enough():
                    break
                more, read = sampled_sums(stream, [start], level)
                packed, raw, taken = packed + more, raw + read, taken + 1
        return Share(packed=packed, raw=raw), taken
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(layer, exc) from exc


def _method(layer: LayerSource) -> Method:
    """How `estimate_layer` sizes `layer`: `stored` (a gzip blob is its own size),
    `full` (a small layer, or one otherwise compressed and so not seekable) or
    `sampled` (a large layer stored uncompressed)."""
    stored_as = _stored_compression(layer)
    if stored_as == "gzip":
        return "stored"
    if stored_as is not None or layer.stored_bytes <= SAMPLES * BLOCK:
        return "full"
    return "sampled"


def _whole(layer: LayerSource, method: Method, level: int) -> Compressed:
    """The figure of a layer that is not sampled (`method` is `stored` or `full`)."""
    if method == "stored":
        return Compressed(layer.stored_bytes, "stored")
    with layer.open() as stream:
        return Compressed(gzip_size(iter(lambda: stream.read(CHUNK), b""), level), "full")


def _unreadable(layer: LayerSource, exc: BaseException) -> ImageReadError:
    return ImageReadError(
        f"compressing layer {layer.index + 1} ({layer.digest[:19]}): {exc or 'unexpected end'}"
    )


def combine_shares(layer: LayerSource, shares: Iterable[Share]) -> Compressed:
    """The layer's figure from every share of its work (`size_share`)."""
    done = list(shares)
    for part in done:
        if part.whole is not None:
            return part.whole
    packed, raw = sum(p.packed for p in done), sum(p.raw for p in done)
    return Compressed(_scaled(packed, raw, layer.stored_bytes) + GZIP_FRAME, "sampled")


def _stored_compression(layer: LayerSource) -> str | None:
    raw = layer.opener()
    try:
        return compression_of(raw.read(4))
    finally:
        raw.close()


def estimate_image(layers: Sequence[LayerSource], level: int = LEVEL) -> Compressed:
    """The gzip size of every layer added up (`estimate_layer`)."""
    total = Compressed(0, "stored")
    for layer in layers:
        total = total + estimate_layer(layer, level=level)
    return total
