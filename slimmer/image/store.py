"""A content-addressed store of file bytes on disk, inside one work directory.

The reader copies the bytes of the files it is asked to keep here, named by
their SHA-256, so a layer is never held in memory and nothing taken from an
archive ever chooses where a file is written.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO

CHUNK = 1 << 20


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def temporary(cls) -> ContentStore:
        return cls(Path(tempfile.mkdtemp(prefix="slimmer-store-")))

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"bad content key {key!r}")
        return self.root / key[:2] / key

    def put_stream(self, src: IO[bytes], head: bytes = b"") -> tuple[str, int]:
        """Copy `head` + the rest of `src` into the store; return (key, size)."""
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".in-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                chunk = head or src.read(CHUNK)
                while chunk:
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    chunk = src.read(CHUNK)
            key = digest.hexdigest()
            dest = self._path(key)
            dest.parent.mkdir(exist_ok=True)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key, size

    def put_bytes(self, data: bytes) -> str:
        return self.put_stream(io.BytesIO(data))[0]

    def open(self, key: str) -> IO[bytes]:
        return open(self._path(key), "rb")

    def read(self, key: str, size: int = -1, offset: int = 0) -> bytes:
        with self.open(key) as fh:
            if offset:
                fh.seek(offset)
            return fh.read(size)

    def path(self, key: str) -> Path:
        """The on-disk path of a stored blob (for handing to tar writers)."""
        return self._path(key)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
