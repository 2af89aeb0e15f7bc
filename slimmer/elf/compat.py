"""Can an app's ELF files run on a base image's libraries? Pure: values in, values out.

Before the app's kept ELF files go on top of a base (a distroless-style image
built from Debian packages), every version need glibc's loader will check
must be met (see `slimmer.elf.versions` for the rule: a need is met when the
library the loader finds has an Elf_Verdef of exactly that name; a weak need
never fails; a library without DT_VERDEF meets none). What this module decides:

- which copy answers a need: the base's for glibc's own libraries
  (`GLIBC_SONAMES`, the libc6 package: they must match the base's loader),
  else the app's own copy when the caller says the app ships one, else the
  base's; a library neither has is the app's business, not an incompatibility;
- which libc a set of files is built for, and that a musl program cannot run
  on a glibc base (nor the reverse): its PT_INTERP names a loader the base
  does not have.

Versions are not ordered by the loader; only the messages compare them, within
a family (the name before the last "_" and dotted number: GLIBC_2.36 is family
GLIBC, number 2.36), so a refusal can say how far the base goes.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from slimmer.elf.versions import SymbolVersions

__all__ = [
    "GLIBC_LOADERS",
    "GLIBC_SONAMES",
    "BaseCheck",
    "Defined",
    "Incompatibility",
    "Libc",
    "LibcMismatch",
    "Provided",
    "Source",
    "check_base",
    "family",
    "file_libc",
    "highest",
    "incompatibilities",
    "libc_mismatches",
    "libc_of",
    "provided_by",
    "version_key",
]

Libc = Literal["glibc", "musl", "none", "mixed"]
"""The libc a file (or set of files) is built for; "mixed" is a set holding both."""

Source = Literal["base", "app"]
"""Whose copy of a library answers a need: the base image's or the app's own."""

Defined = frozenset[str]
"""A library's version definitions; empty when it has no DT_VERDEF (it meets no need)."""

# glibc's dynamic loader under its name on each Debian architecture (PT_INTERP
# basename, and a DT_NEEDED of libc.so.6 and libraries using _dl_* symbols).
GLIBC_LOADERS = frozenset(
    {
        "ld-linux-x86-64.so.2",  # amd64
        "ld-linux-x32.so.2",  # x32
        "ld-linux.so.2",  # i386
        "ld-linux-aarch64.so.1",  # arm64
        "ld-linux-armhf.so.3",  # armhf
        "ld-linux.so.3",  # armel
        "ld64.so.2",  # ppc64el
        "ld64.so.1",  # s390x
        "ld-linux-riscv64-lp64d.so.1",  # riscv64
        "ld-linux-loongarch-lp64d.so.1",  # loong64
        "ld.so.1",  # mips, powerpc
    }
)

# The shared libraries of Debian 12's libc6 package (`dpkg -L libc6`, gconv
# modules left out): built with the loader, they must come from the base.
GLIBC_SONAMES = GLIBC_LOADERS | frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libresolv.so.2",
        "libutil.so.1",
        "libanl.so.1",
        "libnsl.so.1",
        "libBrokenLocale.so.1",
        "libc_malloc_debug.so.0",
        "libthread_db.so.1",
        "libmemusage.so",
        "libpcprofile.so",
        "libnss_files.so.2",
        "libnss_dns.so.2",
        "libnss_compat.so.2",
        "libnss_hesiod.so.2",
    }
)

_NUMBERED = re.compile(r"(?P<family>.+)_(?P<number>\d{1,9}(?:\.\d{1,9})*)")


def version_key(name: str) -> tuple[str, tuple[int, ...]]:
    """(family, number): "GLIBC_2.2.5" -> ("GLIBC", (2, 2, 5)), "CXXABI_TM_1"
    -> ("CXXABI_TM", (1,)); a name without a trailing number ("GLIBC_PRIVATE")
    is a family of its own, numbered ()."""
    match = _NUMBERED.fullmatch(name)
    if match is None:
        return name, ()
    return match["family"], tuple(int(part) for part in match["number"].split("."))


def family(name: str) -> str:
    """The family of a version name: "GLIBCXX_3.4.29" -> "GLIBCXX"."""
    return version_key(name)[0]


def highest(defined: Iterable[str], of_family: str) -> str | None:
    """The newest version of `of_family` in `defined`, by dotted number."""
    same = [name for name in defined if family(name) == of_family]
    return max(same, key=version_key, default=None)


@dataclass(frozen=True)
class Incompatibility:
    """`path` needs `version` from `library`, and the copy that answers it
    (the `source`'s: "base" or "app") does not define it; `have` is the newest
    version of the same family that copy defines. `missing`: the library must
    come from the base's libc and the base has none ("" `version` when the
    file needs the library without naming a version)."""

    path: str
    library: str
    version: str
    have: str | None
    source: Source = "base"
    missing: bool = False

    def describe(self) -> str:
        """One line, e.g. "/app/server needs GLIBC_2.38 from libc.so.6; the
        base's libc.so.6 defines up to GLIBC_2.36"."""
        need = f"{self.path} needs {self.version} from {self.library}"
        if self.missing:
            need = need if self.version else f"{self.path} needs {self.library}"
            return f"{need}; the base has no {self.library}"
        return f"{need}; {self._what_it_has()}"

    def _what_it_has(self) -> str:
        copy = f"the {self.source}'s {self.library}"
        fam, number = version_key(self.version)
        if self.have is None:
            return f"{copy} defines no {fam} version" if number else f"{copy} does not define it"
        if version_key(self.have)[1] < number:
            return f"{copy} defines up to {self.have}"
        return f"{copy} does not define it (its newest {fam} is {self.have})"


@dataclass(frozen=True)
class LibcMismatch:
    """`path` is built for `libc` (shown by `evidence`), the base for `base_libc`."""

    path: str
    libc: Libc
    base_libc: Libc
    evidence: str

    def describe(self) -> str:
        """One line, e.g. "/app/hello is linked against musl (PT_INTERP
        /lib/ld-musl-x86_64.so.1); the base's libc is glibc"."""
        base = (
            "the base has no libc"
            if self.base_libc == "none"
            else f"the base's libc is {self.base_libc}"
        )
        return f"{self.path} is linked against {self.libc} ({self.evidence}); {base}"


@dataclass(frozen=True)
class Provided:
    """A base image's libraries: soname -> `Defined`, and the base's libc.
    `warnings` say where the definitions are not certain."""

    libraries: Mapping[str, Defined]
    libc: Libc
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaseCheck:
    """The verdict on one app over one base: `ok` when nothing is refused.
    `warnings` name files whose versions could not be read completely."""

    mismatches: tuple[LibcMismatch, ...] = ()
    incompatibilities: tuple[Incompatibility, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.incompatibilities

    def reasons(self) -> tuple[str, ...]:
        """Each refusal as one line: libc mismatches first."""
        return tuple(m.describe() for m in self.mismatches) + tuple(
            i.describe() for i in self.incompatibilities
        )


# -- which libc -----------------------------------------------------------------


def file_libc(path: str, sv: SymbolVersions) -> Libc:
    """The libc one file is built for or is: musl when `sv.is_musl` or the
    file is musl's loader/libc (ld-musl-*, libc.musl-*); glibc when its
    PT_INTERP is glibc's loader, it needs a libc6 library or a GLIBC_*
    version, or it is one of libc6's libraries; else "none" (static, or no
    libc at all)."""
    names = {posixpath.basename(path), sv.soname or ""}
    if sv.is_musl or any(n.startswith(("ld-musl-", "libc.musl-")) for n in names):
        return "musl"
    if _glibc_evidence(sv) or names & GLIBC_SONAMES:
        return "glibc"
    return "none"


def libc_of(files: Mapping[str, SymbolVersions]) -> Libc:
    """The libc of a set of files (path -> versions): the one libc its files
    are built for, "none" when none is, "mixed" when both are."""
    kinds = {file_libc(path, sv) for path, sv in files.items()} - {"none"}
    if not kinds:
        return "none"
    return "mixed" if len(kinds) > 1 else kinds.pop()


def libc_mismatches(app: Mapping[str, SymbolVersions], base_libc: Libc) -> list[LibcMismatch]:
    """The app's files built for a libc the base lacks: a musl program's
    PT_INTERP names /lib/ld-musl-*.so.1, which a glibc base does not have;
    a glibc program needs libc.so.6 and ld-linux from the base. A "mixed"
    base serves both; a file built for no libc runs anywhere."""
    out = []
    for path in sorted(app):
        libc = file_libc(path, app[path])
        if libc in ("glibc", "musl") and base_libc not in (libc, "mixed"):
            out.append(LibcMismatch(path, libc, base_libc, _evidence(app[path], libc)))
    return out


def _glibc_evidence(sv: SymbolVersions) -> str:
    """Why `sv` is glibc's: its loader, a libc6 library it needs, or a GLIBC version."""
    if sv.interp is not None and posixpath.basename(sv.interp) in GLIBC_LOADERS:
        return f"PT_INTERP {sv.interp}"
    needed = sorted(set(sv.needed) & GLIBC_SONAMES)
    if needed:
        return f"needs {needed[0]}"
    glibc = sorted(n.version for n in sv.needs if family(n.version) == "GLIBC")
    return f"needs {glibc[0]}" if glibc else ""


def _evidence(sv: SymbolVersions, libc: Libc) -> str:
    if libc == "glibc":
        return _glibc_evidence(sv) or "it is part of glibc"
    if sv.interp is not None:
        return f"PT_INTERP {sv.interp}"
    musl = [n for n in sv.needed if n.startswith("libc.musl-") or n == "libc.so"]
    return f"needs {musl[0]}" if musl else "it is part of musl"


# -- what the base provides -----------------------------------------------------


def provided_by(files: Mapping[str, SymbolVersions]) -> Provided:
    """The libraries of a set of files (path -> versions), by DT_SONAME or
    else file name. Copies under one name that define different versions are
    merged to what every copy defines (which copy the loader finds depends on
    its search path), with a warning."""
    copies: dict[str, list[str]] = {}
    for path in sorted(files):
        name = files[path].soname or posixpath.basename(path)
        copies.setdefault(name, []).append(path)
    libraries = {name: _merge(files[p] for p in paths) for name, paths in copies.items()}
    warnings = [_differ(name, paths, files) for name, paths in sorted(copies.items())]
    warnings += _unreadable(files)
    return Provided(libraries, libc_of(files), tuple(w for w in warnings if w))


def _merge(copies: Iterable[SymbolVersions]) -> Defined:
    return frozenset.intersection(*(frozenset(sv.defines) for sv in copies))


def _differ(name: str, paths: list[str], files: Mapping[str, SymbolVersions]) -> str:
    if len({(files[p].versioned, files[p].defines) for p in paths}) < 2:
        return ""
    listed = ", ".join(paths)
    return f"{name}: copies define different versions ({listed}); only those all define count"


def _unreadable(files: Mapping[str, SymbolVersions]) -> list[str]:
    return [
        f"{path}: symbol versions not read completely ({files[path].error})"
        for path in sorted(files)
        if files[path].error
    ]


# -- the check --------------------------------------------------------------------


def check_base(
    app: Mapping[str, SymbolVersions],
    base: Provided,
    shipped: Mapping[str, Defined] | None = None,
) -> BaseCheck:
    """Everything that stops `app` (path -> versions of its kept ELF files)
    from running on `base`: libc mismatches, then unmet version needs of the
    other files. `shipped` (soname -> `Defined`) are the libraries the app
    brings itself, used where the loader will find them instead of the base's."""
    mismatches = libc_mismatches(app, base.libc)
    wrong = {m.path for m in mismatches}
    rest = {path: sv for path, sv in app.items() if path not in wrong}
    return BaseCheck(
        tuple(mismatches),
        tuple(incompatibilities(rest, base, shipped)),
        base.warnings + tuple(_unreadable(app)),
    )


def incompatibilities(
    app: Mapping[str, SymbolVersions],
    base: Provided,
    shipped: Mapping[str, Defined] | None = None,
) -> list[Incompatibility]:
    """The unmet version needs of `app`'s files, sorted by path, library and
    version number. See `check_base` for `shipped`."""
    out: list[Incompatibility] = []
    for path in sorted(app):
        for library in _libraries(app[path]):
            required = app[path].required(library)
            out.extend(_check_library(path, library, required, base, shipped or {}))
    return out


def _libraries(sv: SymbolVersions) -> list[str]:
    """The libraries to check for one file: those its version needs name,
    and the libc6 libraries it needs even without a version."""
    return sorted(set(sv.libraries()) | (set(sv.needed) & GLIBC_SONAMES))


def _check_library(
    path: str,
    library: str,
    required: frozenset[str],
    base: Provided,
    shipped: Mapping[str, Defined],
) -> Iterator[Incompatibility]:
    """Which copy answers: libc6's libraries always the base's (missing is an
    error), else the app's own copy, else the base's, else none (nothing to
    check: the app ships a library slimmer has no definitions for)."""
    if library in GLIBC_SONAMES and library not in base.libraries:
        # A numbered version says more than GLIBC_PRIVATE.
        newest = max(required, key=lambda v: (bool(version_key(v)[1]), version_key(v)), default="")
        yield Incompatibility(path, library, newest, None, "base", missing=True)
    elif library in shipped and library not in GLIBC_SONAMES:
        yield from _unmet(path, library, required, shipped[library], "app")
    elif library in base.libraries:
        yield from _unmet(path, library, required, base.libraries[library], "base")


def _unmet(
    path: str, library: str, required: frozenset[str], defined: Defined, source: Source
) -> Iterator[Incompatibility]:
    """The needs the copy answering them does not define, weak ones aside."""
    for version in sorted(required - defined, key=version_key):
        yield Incompatibility(path, library, version, highest(defined, family(version)), source)
