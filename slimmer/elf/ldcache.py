"""glibc's /etc/ld.so.cache and /etc/ld.so.conf, read from an image's tree.

The cache is parsed in both formats ldconfig writes: the new
`glibc-ld.so.cache1.1` (alone, or after the old `ld.so-1.7.0` table), with
its hwcaps extension; `ld.so.conf` with its `include` globs is read only as a
fallback when an image has no cache (ld.so itself never reads it).
"""

from __future__ import annotations

import fnmatch
import posixpath
import struct
from dataclasses import dataclass

from slimmer.errors import SlimError
from slimmer.image.paths import is_file
from slimmer.model import TreeView

_OLD_MAGIC = b"ld.so-1.7.0"
_NEW_MAGIC = b"glibc-ld.so.cache1.1"
_HWCAP_EXTENSION = 1 << 62
FLAG_ELF = 0x0001
FLAG_TYPE_ELF_LIBC6 = 0x0003


@dataclass(frozen=True)
class CacheEntry:
    """One ld.so.cache entry: library `name` -> `path`, with ldconfig's flags
    (ELF type in the low byte, architecture/ABI in the high byte) and hwcap
    (bit 62 set: a glibc-hwcaps subdirectory entry)."""

    name: str
    path: str
    flags: int
    hwcap: int = 0

    @property
    def is_hwcaps(self) -> bool:
        return bool(self.hwcap & _HWCAP_EXTENSION)


def parse_ld_so_cache(data: bytes) -> tuple[CacheEntry, ...]:
    """Parse /etc/ld.so.cache (glibc elf/dl-cache.c, sysdeps/generic/dl-cache.h).

    The new format starts with "glibc-ld.so.cache1.1": a 48-byte header, then
    24-byte entries (flags, key, value, osversion, hwcap) whose string offsets
    count from the header's start. The old format "ld.so-1.7.0" has 12-byte
    entries with offsets counting from the end of the entry table; ldconfig's
    "compat" format writes an old table followed (8-byte aligned) by a new one,
    and glibc then reads only the new one, as here. Raises ValueError.
    """
    if data.startswith(_NEW_MAGIC):
        return _parse_new_cache(data, 0)
    if not data.startswith(_OLD_MAGIC) or len(data) < 16:
        raise ValueError("unknown ld.so.cache format (bad magic)")
    (nlibs,) = struct.unpack_from("<I", data, 12)
    table_end = 16 + 12 * nlibs
    new_at = (table_end + 7) & ~7
    if data[new_at : new_at + len(_NEW_MAGIC)] == _NEW_MAGIC:
        return _parse_new_cache(data, new_at)
    if table_end > len(data):
        raise ValueError("ld.so.cache entry table ends past the end of the file")
    return tuple(
        CacheEntry(_cstr(data, table_end + key), _cstr(data, table_end + value), flags)
        for flags, key, value in struct.iter_unpack("<iII", data[16:table_end])
    )


def _parse_new_cache(data: bytes, base: int) -> tuple[CacheEntry, ...]:
    endian = ">" if len(data) > base + 28 and data[base + 28] == 3 else "<"
    if len(data) < base + 48:
        raise ValueError("ld.so.cache header truncated")
    (nlibs,) = struct.unpack_from(endian + "I", data, base + 20)
    start, end = base + 48, base + 48 + 24 * nlibs
    if end > len(data):
        raise ValueError("ld.so.cache entry table ends past the end of the file")
    return tuple(
        CacheEntry(_cstr(data, base + key), _cstr(data, base + value), flags, hwcap)
        for flags, key, value, _, hwcap in struct.iter_unpack(endian + "iIIIQ", data[start:end])
    )


def _cstr(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        raise ValueError(f"ld.so.cache string at {offset:#x} is outside the file")
    return data[offset:end].decode("utf-8", "surrogateescape")


def read_ld_so_conf(tree: TreeView, path: str = "/etc/ld.so.conf") -> tuple[str, ...]:
    """The directories ldconfig would cache, from ld.so.conf (elf/ldconfig.c
    `parse_conf`): `#` starts a comment; `include PATTERN...` reads files
    matching each glob (relative to the including file's directory);
    `hwcap` lines are ignored; any other line is one directory."""
    dirs: list[str] = []
    _parse_conf(tree, path, dirs, set())
    return tuple(dict.fromkeys(dirs))


def _parse_conf(tree: TreeView, path: str, dirs: list[str], seen: set[str]) -> None:
    real = tree.resolve(path).path
    if real in seen or not is_file(tree, path):
        return
    seen.add(real)
    text = read_file(tree, path).decode("utf-8", "replace")
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        words = line.split()
        if not words or (words[0].lower() == "hwcap" and len(words) > 1):
            continue
        if words[0] == "include" and len(words) > 1:
            for pattern in words[1:]:
                full = posixpath.join(posixpath.dirname(path), pattern)
                for match in _glob(tree, full):
                    _parse_conf(tree, match, dirs, seen)
            continue
        dirs.append(line.split("=", 1)[0].rstrip().rstrip("/") or "/")


def _glob(tree: TreeView, pattern: str) -> list[str]:
    """glob(3) inside the tree: sorted matches; `*` does not match a leading dot."""
    paths = ["/"]
    for part in [p for p in pattern.split("/") if p]:
        if not any(c in part for c in "*?["):
            paths = [posixpath.join(p, part) for p in paths]
            continue
        paths = [
            posixpath.join(p, n)
            for p in paths
            for n in list_dir(tree, p)
            if fnmatch.fnmatchcase(n, part) and (part.startswith(".") or n[:1] != ".")
        ]
    return sorted(p for p in paths if tree.resolve(p).exists)


def read_file(tree: TreeView, path: str) -> bytes:
    """The bytes of `path` in the image (symlinks followed); b"" when unreadable."""
    try:
        return tree.read_bytes(tree.resolve(path).path)
    except (SlimError, OSError, LookupError, ValueError):
        return b""


def list_dir(tree: TreeView, path: str) -> list[str]:
    """Names in the directory `path` (symlinks followed); [] when it is none."""
    resolved = tree.resolve(path)
    if resolved.entry is None or not resolved.entry.is_dir:
        return []
    return [posixpath.basename(n.rstrip("/")) for n in tree.listdir(resolved.path)]
