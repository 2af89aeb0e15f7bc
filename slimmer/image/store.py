"""A content-addressed store of file bytes on disk, inside one work directory.

The reader copies the bytes of the files it is asked to keep here, keyed by their
SHA-256, so a layer is never held in memory and nothing taken from an archive ever
chooses where a file is written.

A private store (one run's) appends every blob to one pack file and keeps each
key's span in memory: an image of 10,000 files costs one file on disk, not
10,000 creations, which on a busy ext4 cost more than reading the image. Bytes
that already lie in a file in one piece (a member of a plain layer tar in a saved
archive) are not copied at all: the store hashes them and keeps their span of
that file, which it holds open until it closes (so the file may be unlinked).
A shared store (the read cache, which other runs read and write at once) keeps a
file per blob, each made by an atomic rename.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Protocol

CHUNK = 1 << 20


class Reader(Protocol):
    """What the store reads bytes from: a file, or a tar member's bounded data."""

    def read(self, n: int = -1, /) -> bytes: ...


class FileSpan(io.RawIOBase):
    """A read-only stream of `size` bytes at `offset` of an open file descriptor (read
    with pread, so the descriptor's own position is never moved)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd, self._pos, self._end = fd, offset, offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        want = min(len(buf), self._end - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


class ContentStore:
    """Blobs by SHA-256. `shared`: a file per blob, for a store other processes use
    at once; else one pack file (see the module)."""

    def __init__(self, root: Path, shared: bool = False) -> None:
        self.root = root
        self.shared = shared
        self.root.mkdir(parents=True, exist_ok=True)
        self._dirs: set[str] = set()
        self._pack: IO[bytes] | None = None
        self._spans: dict[str, tuple[int, int, int]] = {}  # key -> (fd, offset, size)
        self._files: dict[Path, int] = {}  # files spans lie in -> their open descriptor

    @property
    def takes_spans(self) -> bool:
        """Whether `put_span` keeps a span (else it copies, like `put_stream`)."""
        return not self.shared

    @classmethod
    def temporary(cls) -> ContentStore:
        return cls(Path(tempfile.mkdtemp(prefix="slimmer-store-")))

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"bad content key {key!r}")
        return self.root / key[:2] / key

    def put_stream(self, src: Reader, head: bytes = b"") -> tuple[str, int]:
        """Copy `head` + the rest of `src` into the store; return (key, size). Bytes
        already stored are not kept twice."""
        if self.shared:
            return self._put_file(src, head)
        if self._pack is None:
            self._pack = open(self.root / "pack", "w+b")
        pack = self._pack
        start = pack.seek(0, io.SEEK_END)
        try:
            digest, size = _copy(src, head, pack)
        except BaseException:
            pack.truncate(start)
            raise
        key = digest.hexdigest()
        if key in self._spans:
            pack.truncate(start)
        else:
            self._spans[key] = (pack.fileno(), start, size)
        return key, size

    def put_span(self, src: Reader, head: bytes, path: Path, offset: int) -> tuple[str, int]:
        """Like `put_stream` for bytes that also lie in `path` from `offset` on, in one
        piece: they are hashed as they are read from `src`, and kept as that span."""
        if not self.takes_spans:
            return self.put_stream(src, head)
        fd = self._files.get(path)
        if fd is None:
            fd = self._files[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        key, size = hash_stream(src, head)
        self._spans.setdefault(key, (fd, offset, size))
        return key, size

    def _put_file(self, src: Reader, head: bytes) -> tuple[str, int]:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".in-")
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = _copy(src, head, out)
            key = digest.hexdigest()
            dest = self._path(key)
            if key[:2] not in self._dirs:
                dest.parent.mkdir(exist_ok=True)
                self._dirs.add(key[:2])
            if dest.exists():  # the same bytes: renaming over them would flush for nothing
                os.unlink(tmp)
            else:
                os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key, size

    def keys(self) -> set[str]:
        """The keys of every blob stored."""
        if not self.shared:
            return set(self._spans)
        return {p.name for p in self.root.glob("??/*") if p.is_file()}

    def put_bytes(self, data: bytes) -> str:
        return self.put_stream(io.BytesIO(data))[0]

    def open(self, key: str) -> IO[bytes]:
        span = self._span(key)
        if span is None:
            return open(self._path(key), "rb")
        return io.BufferedReader(FileSpan(*span), CHUNK)

    def read(self, key: str, size: int = -1, offset: int = 0) -> bytes:
        span = self._span(key)
        if span is None:
            with open(self._path(key), "rb") as fh:
                if offset:
                    fh.seek(offset)
                return fh.read(size)
        fd, start, length = span
        offset = min(offset, length)
        want = length - offset if size < 0 else min(size, length - offset)
        return os.pread(fd, want, start + offset)

    def _span(self, key: str) -> tuple[int, int, int] | None:
        span = self._spans.get(key)
        if span is not None and self._pack is not None:
            self._pack.flush()  # what was appended is read through the descriptor
        return span

    def close(self) -> None:
        if self._pack is not None:
            self._pack.close()
            self._pack = None
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
        self._spans.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def hash_stream(src: Reader, head: bytes = b"") -> tuple[str, int]:
    """(SHA-256 hex, size) of `head` + the rest of `src`, read in chunks: the key
    `put_stream` would store those bytes under, without storing them."""
    digest, size = _copy(src, head, None)
    return digest.hexdigest(), size


def _copy(src: Reader, head: bytes, out: IO[bytes] | None) -> tuple[hashlib._Hash, int]:
    """`head` + the rest of `src` written to `out` (None: only read): their SHA-256
    and their size."""
    digest = hashlib.sha256()
    size = 0
    chunk = head or src.read(CHUNK)
    while chunk:
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
        size += len(chunk)
        chunk = src.read(CHUNK)
    return digest, size
