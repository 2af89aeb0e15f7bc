"""A read-only `TreeView` of this host's own filesystem.

The sensor bundles the host's strace with its ELF closure; resolving that
closure with the same loader rules as for images (`slimmer.loader`) needs the
host seen through the same interface. Only metadata and file bytes are read.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator

from slimmer.model import EntryType, FileEntry, ResolvedPath

MAX_SYMLINKS = 40
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
        return FileEntry(path, kind, size=st.st_size if kind is EntryType.FILE else 0,
                         mode=stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid,
                         mtime=int(st.st_mtime), link=link,
                         is_elf=kind is EntryType.FILE and self._head(path) == _ELF)

    @staticmethod
    def _head(path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read(4)
        except OSError:
            return b""

    def resolve(self, path: str, follow_last: bool = True) -> ResolvedPath:
        """Like FileTree.resolve: every symlink crossed, in order, and the final path."""
        todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
        cur: list[str] = []
        chain: list[str] = []
        while todo:
            name = todo.pop()
            if name == "..":
                if cur:
                    cur.pop()
                continue
            here = "/" + "/".join([*cur, name])
            entry = self.get(here)
            if entry is None:
                rest = "/".join(reversed(todo))
                return ResolvedPath(here + ("/" + rest if rest else ""), tuple(chain), None)
            if entry.type is EntryType.SYMLINK and (todo or follow_last):
                if len(chain) >= MAX_SYMLINKS:
                    return ResolvedPath(here, tuple(chain), None, "too many levels of symlinks")
                chain.append(here)
                if entry.link.startswith("/"):
                    cur = []
                todo.extend(p for p in reversed(entry.link.split("/")) if p not in ("", "."))
                continue
            if todo and not entry.is_dir:
                return ResolvedPath(here, tuple(chain), None, "not a directory")
            cur.append(name)
        final = "/" + "/".join(cur)
        return ResolvedPath(final, tuple(chain), self.get(final))

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
