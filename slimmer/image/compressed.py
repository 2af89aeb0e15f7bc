"""The compressed size of an image: what a registry would store, without a registry.

`docker push` sends each layer as a gzip stream of its uncompressed tar; the
registry stores those blobs. We estimate each blob's size by streaming the
layer's tar through zlib at gzip's default level (6) with a gzip header and
trailer (wbits 31), counting the output and writing it nowhere. The engine's
own gzip writer (Go's compress/gzip) at its default level lands within a few
percent of zlib's output; the number is an estimate of that order, and is the
same for the same layer whatever transport it was read from (a layer already
stored gzip-compressed is decompressed and compressed again, so an OCI layout
and a `docker save` archive of one image give one answer).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from slimmer.errors import ImageReadError
from slimmer.image.archive import ArchiveImage, LayerSource

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
        raise ImageReadError(
            f"compressing layer {layer.index + 1} ({layer.digest[:19]}): {exc or 'unexpected end'}"
        ) from exc


def compressed_sizes(archive: ArchiveImage, level: int = LEVEL) -> tuple[int, ...]:
    """gzip size of each layer of `archive`, in layer order."""
    return tuple(layer_gzip_size(layer, level) for layer in archive.layers)
