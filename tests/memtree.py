"""An in-memory `TreeView` for unit tests: a dict of path -> file, link or dir.

    tree = MemTree({
        "/usr/bin/app": File(elf_bytes, mode=0o4755),
        "/lib": Link("usr/lib"),
        "/usr/lib/libfoo.so.1": host_bytes,      # bytes alone: a 0o755 file
        "/opt/empty": Dir(),
    })

Parent directories are created implicitly. Symlinks are resolved inside the
root the way the kernel does in a chroot: component by component, `..` is
physical (taken after following a link) and stays at "/" at the root,
absolute targets restart at the image root.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from slimmer.elf import is_elf
from slimmer.model import EntryType, FileEntry, ResolvedPath

_MAX_LINKS = 40


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int = 0o755


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


Spec = bytes | File | Link | Dir


class MemTree:
    """A `TreeView` over an in-memory dict."""

    def __init__(self, spec: Mapping[str, Spec]) -> None:
        self._entries: dict[str, FileEntry] = {"/": FileEntry("/", EntryType.DIR, mode=0o755)}
        self._data: dict[str, bytes] = {}
        for path, item in spec.items():
            self.add(path, item)

    def add(self, path: str, item: Spec) -> None:
        path = posixpath.normpath("/" + path.lstrip("/"))
        self._mkparents(path)
        if isinstance(item, bytes):
            item = File(item)
        if isinstance(item, File):
            self._data[path] = item.data
            self._entries[path] = FileEntry(path, EntryType.FILE, size=len(item.data),
                                            mode=item.mode, is_elf=is_elf(item.data[:4]))
        elif isinstance(item, Link):
            self._entries[path] = FileEntry(path, EntryType.SYMLINK, mode=0o777, link=item.target)
        else:
            self._entries[path] = FileEntry(path, EntryType.DIR, mode=item.mode)

    def _mkparents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in self._entries:
            self._entries[parent] = FileEntry(parent, EntryType.DIR, mode=0o755)
            parent = posixpath.dirname(parent)

    def get(self, path: str) -> FileEntry | None:
        return self._entries.get(posixpath.normpath("/" + path.lstrip("/")))

    def resolve(self, path: str, follow_last: bool = True) -> ResolvedPath:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        current = "/"
        chain: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                current = posixpath.dirname(current)
                continue
            here = self._entries.get(current)
            if here is None or not here.is_dir:
                return ResolvedPath(posixpath.join(current, name, *parts), tuple(chain),
                                    error="not a directory" if here else "")
            candidate = posixpath.join(current, name)
            entry = self._entries.get(candidate)
            if entry is not None and entry.type is EntryType.SYMLINK and (parts or follow_last):
                hops += 1
                if hops > _MAX_LINKS:
                    return ResolvedPath(candidate, tuple(chain), error="too many symlinks")
                chain.append(candidate)
                target = [p for p in entry.link.split("/") if p not in ("", ".")]
                parts = target + parts
                current = "/" if entry.link.startswith("/") else current
                continue
            current = candidate
        return ResolvedPath(current, tuple(chain), self._entries.get(current))

    def listdir(self, path: str) -> list[str]:
        real = self.resolve(path).path
        prefix = real.rstrip("/") + "/"
        return sorted(p[len(prefix):] for p in self._entries
                      if p.startswith(prefix) and "/" not in p[len(prefix):] and p != "/")

    def read_bytes(self, path: str, size: int = -1, offset: int = 0) -> bytes:
        real = self.resolve(path).path
        data = self._data[real]
        return data[offset:] if size < 0 else data[offset : offset + size]

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.path))
