"""A read-only `TreeView` of this host's own filesystem.

The sensor bundles the host's strace with its ELF closure; resolving that
closure with the same loader rules as for images (`slimmer.elf.loader`) needs the
host seen through the same interface. Only metadata and file bytes are read.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator

from slimmer.image.filetree import resolve_in_root
from slimmer.model import EntryType, FileEntry, ResolvedPath

_ELF = b"\x7fELF"


class HostTree:
    """The host's files under `/`, as FileEntry values (no bytes kept in memory)."""

    def get(self, path: str) -> FileEntry | None:
        try:
            st = os.lstat(path)
        except OSError:
            return None
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            kind = EntryType.DIR
        elif stat.S_ISLNK(mode):
            kind = EntryType.SYMLINK
        elif stat.S_ISREG(mode):
            kind = EntryType.FILE
        else:
            kind = EntryType.CHAR
        link = os.readlink(path) if kind is EntryType.SYMLINK else ""
        return FileEntry(
            path,
            kind,
            size=st.st_size if kind is EntryType.FILE else 0,
            mode=stat.S_IMODE(mode),
            uid=st.st_uid,
            gid=st.st_gid,
            mtime=int(st.st_mtime),
            link=link,
            is_elf=kind is EntryType.FILE and self._head(path) == _ELF,
        )

    @staticmethod
    def _head(path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read(4)
        except OSError:
            return b""

    def resolve(self, path: str, follow_last: bool = True) -> ResolvedPath:
        """Like FileTree.resolve: every symlink crossed, in order, and the final path."""
        return resolve_in_root(self.get, path, follow_last)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    def read_bytes(self, path: str, size: int = -1, offset: int = 0) -> bytes:
        with open(self.resolve(path).path, "rb") as fh:
            fh.seek(offset)
            return fh.read(size)

    def __iter__(self) -> Iterator[FileEntry]:
        """Walking the whole host is never needed; only the root is listed."""
        for name in self.listdir("/"):
            entry = self.get(posixpath.join("/", name))
            if entry is not None:
                yield entry
