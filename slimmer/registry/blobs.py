"""A blob's body as a stream: counted, hashed and checked against its digest at the
end, optionally copied to a file as it passes (kept only once it matched)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from slimmer.errors import ImageReadError, RegistryError

_CHUNK = 1 << 20


class _Reader(Protocol):
    def read(self, n: int) -> bytes: ...


@dataclass
class FetchStats:
    """What a client fetched: manifests, blobs opened, and blob bytes read."""

    manifests: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    blob_digests: list[str] = field(default_factory=list)


class BlobStream(io.RawIOBase):
    """A blob's body as a stream: counted, hashed, and checked against its digest at
    the end. `tell`/`seek` work within the first bytes, which is what a peek at the
    compression magic needs."""

    _HEAD = 64

    def __init__(
        self,
        raw: _Reader,
        on_close: Callable[[], None],
        digest: str,
        where: str,
        stats: FetchStats,
        copy_to: Path | None = None,
    ) -> None:
        super().__init__()
        self._raw, self._on_close = raw, on_close
        self._digest, self._where, self._stats = digest, where, stats
        self._sha = hashlib.sha256()
        self._copy_to = copy_to
        self._copy = open(copy_to.with_suffix(".part"), "wb") if copy_to else None
        self._head = self._pull(self._HEAD)
        self._pos = 0
        self._done = False

    def _pull(self, n: int) -> bytes:
        try:
            data = self._raw.read(n)
        except Exception as exc:  # urllib3's protocol and read errors
            raise RegistryError(f"reading {self._where}: {type(exc).__name__}") from None
        data = bytes(data or b"")
        self._sha.update(data)
        self._stats.blob_bytes += len(data)
        if self._copy is not None:
            self._copy.write(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos > len(self._head) or self._pos > len(self._head):
            raise OSError("a registry blob can only seek back within its first bytes")
        self._pos = pos
        return pos

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        if self._pos < len(self._head):
            n = min(len(view), len(self._head) - self._pos)
            view[:n] = self._head[self._pos : self._pos + n]
            self._pos += n
            return n
        data = self._pull(min(len(view), _CHUNK))
        if not data:
            self._finish()
            return 0
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        buf = bytearray(size)
        n = self.readinto(buf)
        return bytes(buf[:n])

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        actual = "sha256:" + self._sha.hexdigest()
        if actual != self._digest:
            raise ImageReadError(f"reading {self._where}: the blob hashes to {actual[:19]}")
        if self._copy is not None and self._copy_to is not None:
            self._copy.close()
            self._copy = None
            self._copy_to.with_suffix(".part").rename(self._copy_to)

    def close(self) -> None:
        if not self.closed:
            self._on_close()
            if self._copy is not None and self._copy_to is not None:  # not read to the end
                self._copy.close()
                self._copy_to.with_suffix(".part").unlink(missing_ok=True)
        super().close()
