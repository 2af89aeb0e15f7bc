"""ELF files -> `DynamicImports`: the names of the functions a file takes from others.

A dynamically linked file names every symbol it needs from another object in
its dynamic symbol table (`.dynsym`, section type SHT_DYNSYM) with section
index SHN_UNDEF; the names live in the string table its `sh_link` points to
(`.dynstr`). This is the list `nm -D --undefined-only` prints. Symbol versions
are kept apart (`.gnu.version`), so a name here is bare (`system`, not
`system@GLIBC_2.2.5`).

Why it matters: some libc functions run another program by name. glibc's
`system()`, `popen()` and `wordexp()` run `/bin/sh -c` (`_PATH_BSHELL`); its
`execvp()`/`execlp()`/`execvpe()` run a file that the kernel refuses with
ENOEXEC (a script without `#!`) with `/bin/sh` too (posix/execvpe.c,
`maybe_script_execute`). A file that imports one of them may need the shell.

The section headers are read, not PT_DYNAMIC: the dynamic symbol count is only
in the section header (or in a hash table). A file without section headers
(`sstrip`) gives an empty set with `error` set, never a silent "imports nothing".

Hostile input is normal input: every offset is bounds-checked, tables are
capped, and nothing here raises on bad content.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from slimmer.elf.parse import ELF_MAGIC, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, ReadAt
from slimmer.image.paths import tree_memo
from slimmer.model import TreeView

__all__ = ["DynamicImports", "read_imports", "imports_of_bytes", "imports_in_tree"]

SHT_DYNSYM = 11
SHN_UNDEF = 0
_MAX_SECTIONS = 65536
_MAX_TABLE = 64 << 20  # bytes: a dynsym or dynstr larger than this is not read


@dataclass(frozen=True)
class DynamicImports:
    """The undefined dynamic symbols of one file; `error` says what could not be read."""

    names: frozenset[str] = frozenset()
    error: str = ""


class _Corrupt(Exception):
    pass


@dataclass(frozen=True)
class _Layout:
    """Struct formats of one ELF class and byte order."""

    endian: str
    is64: bool

    @property
    def shdr(self) -> str:
        return self.endian + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")

    @property
    def sym_size(self) -> int:
        return 24 if self.is64 else 16


def imports_of_bytes(data: bytes) -> DynamicImports:
    """`read_imports` of a file held in memory."""
    return read_imports(lambda offset, size: data[offset : offset + size])


def imports_in_tree(tree: TreeView, path: str) -> DynamicImports:
    """`read_imports` of the file `path` of an image tree, remembered for as long as
    the tree lives; a file the reader cannot give gives `error`, never an exception."""

    def make() -> DynamicImports:
        try:
            return read_imports(lambda offset, size: tree.read_bytes(path, size, offset))
        except (LookupError, OSError) as exc:  # bytes not kept by the reader
            return DynamicImports(error=f"reading {path}: {exc}")

    return tree_memo(tree, f"elf-imports:{path}", make)


def read_imports(read_at: ReadAt) -> DynamicImports:
    """The names `nm -D --undefined-only` lists for the file `read_at` reads."""
    try:
        layout, sections = _sections(read_at)
        for sh in sections:
            if sh[1] == SHT_DYNSYM:
                return DynamicImports(_undefined(read_at, layout, sh, sections))
        return DynamicImports(error="no dynamic symbol table (static, or not linked)")
    except _Corrupt as exc:
        return DynamicImports(error=str(exc))


def _read(read_at: ReadAt, offset: int, size: int, what: str) -> bytes:
    if size > _MAX_TABLE or offset < 0 or size < 0:
        raise _Corrupt(f"{what}: {size} bytes at {offset} is out of bounds")
    data = read_at(offset, size)
    if len(data) != size:
        raise _Corrupt(f"{what}: truncated ({len(data)} of {size} bytes at {offset})")
    return data


def _sections(read_at: ReadAt) -> tuple[_Layout, list[tuple[int, ...]]]:
    head = read_at(0, 64)
    if head[:4] != ELF_MAGIC or len(head) < 52:
        raise _Corrupt("not an ELF file")
    if head[4] not in (ELFCLASS32, ELFCLASS64) or head[5] not in (ELFDATA2LSB, ELFDATA2MSB):
        raise _Corrupt(f"unknown ELF class {head[4]} or data encoding {head[5]}")
    layout = _Layout("<" if head[5] == ELFDATA2LSB else ">", head[4] == ELFCLASS64)
    if layout.is64 and len(head) < 64:
        raise _Corrupt("truncated ELF header")
    # e_shoff, then e_shentsize and e_shnum (Elf64_Ehdr / Elf32_Ehdr offsets)
    fmt, at, ent_at = ("Q", 0x28, 0x3A) if layout.is64 else ("I", 0x20, 0x2E)
    (shoff,) = struct.unpack_from(layout.endian + fmt, head, at)
    shentsize, shnum = struct.unpack_from(layout.endian + "HH", head, ent_at)
    size = struct.calcsize(layout.shdr)
    if shoff == 0:
        raise _Corrupt("no section headers (stripped with sstrip?)")
    if shentsize != size:
        raise _Corrupt(f"section header size {shentsize}, expected {size}")
    if shnum == 0:  # more than SHN_LORESERVE sections: the count is in section 0's sh_size
        shnum = struct.unpack(layout.shdr, _read(read_at, shoff, size, "section 0"))[5]
    if shnum > _MAX_SECTIONS:
        raise _Corrupt(f"{shnum} section headers")
    table = _read(read_at, shoff, size * shnum, "section headers")
    return layout, [struct.unpack_from(layout.shdr, table, i * size) for i in range(shnum)]


def _undefined(
    read_at: ReadAt, layout: _Layout, dynsym: tuple[int, ...], sections: list[tuple[int, ...]]
) -> frozenset[str]:
    offset, size, link = dynsym[4], dynsym[5], dynsym[6]
    if link >= len(sections):
        raise _Corrupt(f"dynamic symbol table links to section {link} of {len(sections)}")
    strtab = _read(read_at, sections[link][4], sections[link][5], "dynamic string table")
    symbols = _read(read_at, offset, size - size % layout.sym_size, "dynamic symbol table")
    fmt = layout.endian + ("IBBHQQ" if layout.is64 else "IIIBBH")
    out = set()
    for at in range(layout.sym_size, len(symbols), layout.sym_size):  # entry 0 is null
        fields = struct.unpack_from(fmt, symbols, at)
        name_at, shndx = fields[0], fields[3] if layout.is64 else fields[5]
        if shndx == SHN_UNDEF and 0 < name_at < len(strtab):
            end = strtab.find(b"\0", name_at)
            name = strtab[name_at : end if end >= 0 else len(strtab)]
            out.add(name.decode("utf-8", "replace"))
    return frozenset(out)
