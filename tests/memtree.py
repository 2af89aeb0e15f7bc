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

import hashlib
import io
import os
import posixpath
import re
import struct
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from slimmer.elf.parse import is_elf
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
            self._entries[path] = FileEntry(
                path,
                EntryType.FILE,
                size=len(item.data),
                mode=item.mode,
                is_elf=is_elf(item.data[:4]),
                content=hashlib.sha256(item.data).hexdigest(),
            )
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
                return ResolvedPath(
                    posixpath.join(current, name, *parts),
                    tuple(chain),
                    error="not a directory" if here else "",
                )
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
        return sorted(
            p[len(prefix) :]
            for p in self._entries
            if p.startswith(prefix) and "/" not in p[len(prefix) :] and p != "/"
        )

    def read_bytes(self, path: str, size: int = -1, offset: int = 0) -> bytes:
        real = self.resolve(path).path
        data = self._data[real]
        return data[offset:] if size < 0 else data[offset : offset + size]

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.path))


# ---------------------------------------------------------------------------
# Copying host files into a MemTree, with the symlinks on their way


def add_host_path(tree: MemTree, path: str) -> None:
    """Add the host file at `path` and every symlink crossed to reach it."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current = "/"
    while parts:
        name = parts.pop(0)
        if name == "..":
            current = posixpath.dirname(current)
            continue
        candidate = posixpath.join(current, name)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            tree.add(candidate, Link(target))
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            current = "/" if target.startswith("/") else current
            continue
        current = candidate
    if os.path.isfile(current):
        with open(current, "rb") as f:
            tree.add(current, File(f.read(), os.stat(current).st_mode & 0o7777))


def add_host_dir(tree: MemTree, top: str) -> None:
    """Add a host directory tree as it is: files, symlinks, empty dirs."""
    add_host_path(tree, top)
    for dirpath, dirnames, filenames in os.walk(top):
        tree.add(dirpath, Dir())
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                tree.add(full, Link(os.readlink(full)))
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    tree.add(full, File(f.read(), os.stat(full).st_mode & 0o7777))


# ---------------------------------------------------------------------------
# Building small ELF files: with the host's gcc, or by hand with struct

HOST_LDSO = "/lib64/ld-linux-x86-64.so.2"
HOST_LIBC = "/lib/x86_64-linux-gnu/libc.so.6"

# The test program prints the path every loaded object was opened under
# (glibc's l_name), which is what the resolver's `Edge.path` must match.
EXE_SOURCE = r"""
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
static int show(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size; (void)data;
    if (info->dlpi_name[0]) printf("%s\n", info->dlpi_name);
    return 0;
}
int main(void) { return dl_iterate_phdr(show, NULL); }
"""


class Builder:
    """Compiles tiny programs and libraries with the host's gcc."""

    def __init__(self, src_dir: Path) -> None:
        self.src_dir = src_dir
        src_dir.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def lib(
        self,
        path: Path,
        needs: Sequence[Path] = (),
        soname: str | None = "",
        flags: Sequence[str] = (),
    ) -> Path:
        """A shared library; `soname` "" means its file name, None none."""
        name = path.name if soname == "" else soname
        args = ["-shared", "-fPIC", *([f"-Wl,-soname,{name}"] if name else [])]
        fn = re.sub(r"\W", "_", path.name)
        return self._cc(path, f"int f_{fn}(void) {{ return 1; }}\n", [*args, *flags], needs)

    def exe(self, path: Path, needs: Sequence[Path] = (), flags: Sequence[str] = ()) -> Path:
        return self._cc(path, EXE_SOURCE, list(flags), needs)

    def _cc(self, out: Path, source: str, args: list[str], needs: Sequence[Path]) -> Path:
        self._count += 1
        src = self.src_dir / f"s{self._count}.c"
        src.write_text(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        link = [
            a
            for n in needs
            for a in (f"-L{n.parent}", f"-Wl,-rpath-link,{n.parent}", f"-l:{n.name}")
        ]
        cmd = ["gcc", "-o", str(out), str(src), "-Wl,--no-as-needed", *args, *link]
        subprocess.run(cmd, check=True, capture_output=True)
        return out


def run_host(
    exe: Path | str, env: dict[str, str] | None = None, cwd: Path | str | None = None
) -> tuple[int, list[str], str]:
    """Run a test program with the host's real loader: exit code, the paths
    of the objects it loaded (vdso left out), stderr."""
    full_env = {"PATH": "/usr/bin:/bin", **(env or {})}
    proc = subprocess.run([str(exe)], env=full_env, cwd=cwd, capture_output=True, text=True)
    loaded = [p for p in proc.stdout.splitlines() if not p.startswith("linux-vdso")]
    return proc.returncode, loaded, proc.stderr


def dynamic_entry_offsets(data: bytes) -> list[tuple[int, int, int]]:
    """(file offset, d_tag, d_val) of each PT_DYNAMIC entry of a 64-bit LE file."""
    elf = ELFFile(io.BytesIO(data))
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_DYNAMIC":
            base = seg["p_offset"]
            count = seg["p_filesz"] // 16
            return [
                (base + 16 * i, *struct.unpack_from("<qQ", data, base + 16 * i))
                for i in range(count)
            ]
    raise ValueError("no PT_DYNAMIC")


def patch_dynamic(data: bytes, old_tag: int, new_tag: int, new_val: int | None = None) -> bytes:
    """Rewrite the first dynamic entry tagged `old_tag`."""
    for offset, tag, val in dynamic_entry_offsets(data):
        if tag == old_tag:
            value = val if new_val is None else new_val
            return data[:offset] + struct.pack("<qQ", new_tag, value) + data[offset + 16 :]
    raise ValueError(f"no dynamic entry {old_tag:#x}")


def dynstr_offset(data: bytes, text: str) -> int:
    """The offset of `text` inside the dynamic string table."""
    elf = ELFFile(io.BytesIO(data))
    section = elf.get_section_by_name(".dynstr")
    if section is None:
        raise ValueError("no .dynstr section")
    table = section.data()
    index = table.find(text.encode() + b"\0")
    if index < 0:
        raise ValueError(f"{text!r} not in .dynstr")
    return index


def make_elf(
    *,
    elf_class: int = 64,
    endian: str = "little",
    machine: int = 62,
    e_type: int = 3,
    interp: str | None = None,
    needed: Sequence[str] = (),
    soname: str | None = None,
    rpath: str | None = None,
    runpath: str | None = None,
    flags_1: int | None = None,
    dynamic: bool = True,
) -> bytes:
    """A minimal ELF file written by hand: header, PT_LOAD over the whole
    file, PT_INTERP, PT_DYNAMIC and a dynamic string table. No code."""
    is64, p = elf_class == 64, "<" if endian == "little" else ">"
    ehsize, phsize, dynsize = (64, 56, 16) if is64 else (52, 32, 8)
    strtab = b"\0"
    entries: list[tuple[int, int]] = []

    def add_string(tag: int, text: str) -> None:
        nonlocal strtab
        entries.append((tag, len(strtab)))
        strtab += text.encode() + b"\0"

    for name in needed:
        add_string(1, name)
    for tag, value in ((14, soname), (15, rpath), (29, runpath)):
        if value is not None:
            add_string(tag, value)
    if flags_1 is not None:
        entries.append((0x6FFFFFFB, flags_1))
    nph = 1 + (interp is not None) + dynamic
    interp_bytes = (interp or "").encode() + b"\0" if interp is not None else b""
    interp_off = ehsize + nph * phsize
    str_off = interp_off + len(interp_bytes)
    dyn_off = (str_off + len(strtab) + 7) & ~7
    base = 0x10000
    entries += [(5, base + str_off), (10, len(strtab)), (0, 0)]
    dyn = b"".join(struct.pack(p + ("qQ" if is64 else "iI"), t, v) for t, v in entries)
    total = dyn_off + len(dyn)
    phdrs = [_phdr(p, is64, 1, 0, base, total)]
    if interp is not None:
        phdrs.append(_phdr(p, is64, 3, interp_off, base + interp_off, len(interp_bytes)))
    if dynamic:
        phdrs.append(_phdr(p, is64, 2, dyn_off, base + dyn_off, len(dyn)))
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if endian == "little" else 2, 1, 0])
    ident += b"\0" * 8
    rest = p + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH")
    header = ident + struct.pack(
        rest, e_type, machine, 1, 0, ehsize, 0, 0, ehsize, phsize, nph, 0, 0, 0
    )
    body = header + b"".join(phdrs) + interp_bytes + strtab
    body += b"\0" * (dyn_off - len(body))
    return body + (dyn if dynamic else b"")


def _phdr(p: str, is64: bool, ptype: int, offset: int, vaddr: int, size: int) -> bytes:
    if is64:
        return struct.pack(p + "IIQQQQQQ", ptype, 4, offset, vaddr, vaddr, size, size, 8)
    return struct.pack(p + "IIIIIIII", ptype, offset, vaddr, vaddr, size, size, 4, 4)
