"""Counting the bytes of a long step as they move, for the progress bars.

Each wrapper calls `add(n)` with the size of every chunk that passes through it
and changes nothing else: the bytes, the positions and the errors are those of
the wrapped stream. `model.metered` turns the counts into `Transfer` events.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import IO, Any

from slimmer.model import EntryType, FileEntry

Add = Callable[[int], None]


class MeteredReader(io.RawIOBase):
    """A readable stream that counts what is read from `raw` (seek and tell pass through)."""

    def __init__(self, raw: IO[bytes], add: Add) -> None:
        super().__init__()
        self._raw, self._add = raw, add

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._raw.seekable()

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self._add(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class MeteredWriter:
    """A writable sink that counts what is written into `out`."""

    def __init__(self, out: IO[bytes], add: Add) -> None:
        self._out, self._add = out, add

    def write(self, data: bytes) -> int:
        n = self._out.write(data)
        self._add(len(data))
        return n

    def flush(self) -> None:
        self._out.flush()


def content_bytes(entries: Iterable[FileEntry]) -> int:
    """The file bytes a layer of `entries` carries (regular files' sizes)."""
    return sum(e.size for e in entries if e.type is EntryType.FILE)
