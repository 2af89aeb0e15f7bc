"""ELF files -> `SymbolVersions`: the symbol versions a file needs and defines.

The one module of slimmer that imports `pyelftools` (`elftools`). It reads
PT_INTERP and the PT_DYNAMIC entries DT_NEEDED and DT_SONAME, the version
needs of `.gnu.version_r` (SHT_GNU_verneed) and the version definitions of
`.gnu.version_d` (SHT_GNU_verdef), the tables `readelf -V` shows.

glibc's symbol versioning (elf/dl-version.c, `_dl_check_map_versions`): for
each Elf_Verneed entry of a loaded object, the object loaded under the name
`vn_file` must have an Elf_Verdef whose first Elf_Verdaux names exactly each
Elf_Vernaux `vna_name` the entry lists, else the program does not start
("version `GLIBC_2.38' not found (required by ...)"). Versions are matched by
name only; the loader never orders them. A need flagged VER_FLG_WEAK is not
an error when missing (`match_symbol`). A library with no DT_VERDEF at all
passes that check with a warning ("no version information available"), but
the first lookup of a versioned symbol in it then fails (dl-lookup.c
`check_match` asserts; exit 127 with Debian 12's glibc 2.36, measured in the
tests), so it meets no need.

Cost: pyelftools builds every section of a file (GNU hash tables included)
to find the two it needs: about 5 ms a file, 2.7 s for the 522 ELF files of
a Debian 12 /usr/bin. It runs on an app's kept ELF files and a base's
libraries only; `slimmer.elf.parse` stays the fast reader for whole images.

Hostile input is normal input: a truncated or corrupt file never raises. It
gives a value whose `error` says what could not be read, holding what was
read before; an empty `needs` with `error` set is never "no requirements".
"""

from __future__ import annotations

import io
import posixpath
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import (
    GNUVerDefSection,
    GNUVerNeedSection,
    GNUVersionSection,
    Version,
    VersionAuxiliary,
)
from elftools.elf.segments import InterpSegment

__all__ = ["VER_FLG_BASE", "VER_FLG_WEAK", "SymbolVersions", "VersionNeed", "read_versions"]

VER_FLG_BASE = 0x1  # Elf_Verdef: the entry naming the file itself, not a version
VER_FLG_WEAK = 0x2  # Elf_Vernaux: a weak need, not fatal when missing

# What pyelftools and the stream raise on a truncated or corrupt file.
_FAULTS = (
    ELFError,
    AssertionError,
    AttributeError,
    EOFError,
    IndexError,
    KeyError,
    OSError,
    OverflowError,
    TypeError,
    ValueError,
    struct.error,
)
_MIN_ENTRY = 8  # the smallest version record (Elf_Verdaux): bounds the entry count


@dataclass(frozen=True)
class VersionNeed:
    """One Elf_Vernaux: `library` (the Elf_Verneed's `vn_file`, a DT_NEEDED
    name) must define `version`; `weak` needs (VER_FLG_WEAK) may be missing."""

    library: str
    version: str
    weak: bool = False


@dataclass(frozen=True)
class SymbolVersions:
    """The symbol-versioning facts of one ELF file.

    `needs` are sorted by (library, version). `defines` are the version names
    of `.gnu.version_d`, sorted, without the VER_FLG_BASE entry, which names
    the file itself (`base_name`); `versioned` says the table exists at all.
    `soname` is DT_SONAME. `dynamic` is False for a static executable (no
    PT_DYNAMIC), which needs nothing from any library. `error` is non-empty
    when the file could not be read completely: `needs` and `defines` then
    hold only what was read before.
    """

    needs: tuple[VersionNeed, ...] = ()
    defines: tuple[str, ...] = ()
    versioned: bool = False
    base_name: str | None = None
    soname: str | None = None
    interp: str | None = None
    needed: tuple[str, ...] = ()
    dynamic: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def is_static(self) -> bool:
        """No PT_DYNAMIC, or one with neither DT_NEEDED nor PT_INTERP (a
        static PIE): no library is loaded for it, so it has no needs."""
        return not self.dynamic or (not self.needed and self.interp is None)

    @property
    def is_musl(self) -> bool:
        """musl-linked: PT_INTERP is musl's loader (/lib/ld-musl-$ARCH.so.1),
        or it needs Alpine's libc.musl-$ARCH.so.1, or it needs musl-gcc's
        plain "libc.so" with no GLIBC_* need (glibc programs need libc.so.6;
        glibc's libc.so is a linker script, never a DT_NEEDED)."""
        if self.interp is not None and posixpath.basename(self.interp).startswith("ld-musl-"):
            return True
        if any(name.startswith("libc.musl-") for name in self.needed):
            return True
        glibc_needs = any(n.version.startswith("GLIBC_") for n in self.needs)
        return "libc.so" in self.needed and not glibc_needs

    def required(self, library: str) -> frozenset[str]:
        """The versions `library` must define for this file (weak ones left out)."""
        return frozenset(n.version for n in self.needs if n.library == library and not n.weak)

    def libraries(self) -> tuple[str, ...]:
        """The libraries named by `needs`, sorted."""
        return tuple(sorted({n.library for n in self.needs}))


def read_versions(source: bytes | bytearray | memoryview | BinaryIO) -> SymbolVersions:
    """Read the symbol versions of an ELF file given as bytes or a seekable
    binary stream. Never raises on bad content: see `SymbolVersions.error`."""
    stream = (
        io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray | memoryview) else source
    )
    reader = _Reader()
    try:
        reader.read(ELFFile(stream))
    except _FAULTS as exc:
        reader.error = _explain(exc)
    return reader.result()


def _explain(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"corrupt or truncated ELF file: {text or type(exc).__name__}"


@dataclass
class _Reader:
    """One read; keeps what it has so a fault still reports it."""

    needs: list[VersionNeed] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)
    versioned: bool = False
    base_name: str | None = None
    soname: str | None = None
    interp: str | None = None
    needed: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    dynamic: bool = False
    error: str = ""

    def result(self) -> SymbolVersions:
        return SymbolVersions(
            needs=tuple(sorted(set(self.needs), key=lambda n: (n.library, n.version, n.weak))),
            defines=tuple(sorted(set(self.defines))),
            versioned=self.versioned,
            base_name=self.base_name,
            soname=self.soname,
            interp=self.interp,
            needed=tuple(self.needed),
            dynamic=self.dynamic,
            error=self.error,
        )

    def read(self, elf: ELFFile) -> None:
        for segment in elf.iter_segments():
            if isinstance(segment, InterpSegment):
                self.interp = segment.get_interp_name()
            elif isinstance(segment, DynamicSegment):
                self._read_dynamic(segment)
        found = self._read_sections(elf)
        self.error = _missing_sections(self.tags, found)

    def _read_dynamic(self, segment: DynamicSegment) -> None:
        """DT_NEEDED, DT_SONAME, and whether DT_VERNEED/DT_VERDEF exist (the
        loader reads the tables through these tags, not through sections)."""
        self.dynamic = True
        for tag in segment.iter_tags():
            kind = tag.entry.d_tag
            self.tags.add(str(kind))
            if kind == "DT_NEEDED":
                self.needed.append(tag.needed)  # type: ignore[attr-defined]
            elif kind == "DT_SONAME":
                self.soname = tag.soname  # type: ignore[attr-defined]

    def _read_sections(self, elf: ELFFile) -> set[str]:
        """Read every SHT_GNU_verneed/SHT_GNU_verdef section; return the
        dynamic tags those sections answer for."""
        found: set[str] = set()
        for index in range(elf.num_sections()):
            section = elf.get_section(index)
            if isinstance(section, GNUVerNeedSection):
                found.add("DT_VERNEED")
                self._read_verneed(section)
            elif isinstance(section, GNUVerDefSection):
                found.add("DT_VERDEF")
                self._read_verdef(section)
        return found

    def _read_verneed(self, section: GNUVerNeedSection) -> None:
        """Each Elf_Verneed names a file (`vn_file`); each of its Elf_Vernaux
        names one version that file must define."""
        for verneed, aux in _pairs(section):
            weak = bool(aux["vna_flags"] & VER_FLG_WEAK)
            self.needs.append(VersionNeed(str(verneed.name), str(aux.name), weak))

    def _read_verdef(self, section: GNUVerDefSection) -> None:
        """The first Elf_Verdaux of each Elf_Verdef names the version; later
        ones name its parents (already defined entries), so they are skipped."""
        self.versioned = True
        for verdef, auxiliaries in _entries(section):
            name = str(next(iter(auxiliaries)).name)
            if verdef["vd_flags"] & VER_FLG_BASE:
                self.base_name = name
            else:
                self.defines.append(name)


def _entries(section: GNUVersionSection) -> Iterator[tuple[Version, Iterator[VersionAuxiliary]]]:
    """`section.iter_versions()`, refusing more entries than the section can
    hold: a hostile `sh_info` with a zero `vn_next` would loop for ages."""
    if section.num_versions() > _capacity(section):
        raise ELFError(
            f"{section.name}: {section.num_versions()} entries in {section['sh_size']} bytes"
        )
    yield from section.iter_versions()


def _pairs(section: GNUVersionSection) -> Iterator[tuple[Version, VersionAuxiliary]]:
    """Each (entry, auxiliary entry) of the section, no more in all than its
    bytes can hold (a hostile `vn_cnt` with a zero `vna_next` repeats one)."""
    budget = _capacity(section)
    for version, auxiliaries in _entries(section):
        for aux in auxiliaries:
            budget -= 1
            if budget < 0:
                raise ELFError(
                    f"{section.name}: more entries than its {section['sh_size']} bytes hold"
                )
            yield version, aux


def _capacity(section: GNUVersionSection) -> int:
    """How many version records (8 bytes or more each) the section can hold,
    its size bounded by the file's."""
    size = min(int(section["sh_size"]), section.elffile.stream_len)
    return max(1, size // _MIN_ENTRY)


def _missing_sections(tags: set[str], found: set[str]) -> str:
    """An error when PT_DYNAMIC has DT_VERNEED or DT_VERDEF but no section
    holds the table (section headers stripped or cut off): better a warning
    than a silent "no requirements"."""
    missing = sorted((tags & {"DT_VERNEED", "DT_VERDEF"}) - found)
    if not missing:
        return ""
    return f"{' and '.join(missing)} present but no section headers describe the table"
