"""The search machinery glibc's and musl's rules share: loaded objects,
candidate files, search paths with their dynamic string tokens (`$ORIGIN`,
`$LIB`, `$PLATFORM`), CPU-specific subdirectories, and trying candidates in
order the way the loader opens them.

The rules themselves, which path is searched when, are in
`slimmer.elf.glibc` and `slimmer.elf.musl`; `slimmer.elf.loader` drives them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from slimmer.elf.layout import DEFAULT_LAYOUT
from slimmer.elf.ldcache import CacheEntry, parse_ld_so_cache, read_file, read_ld_so_conf
from slimmer.elf.parse import ElfInfo, parse_elf_at
from slimmer.errors import SlimError
from slimmer.image.paths import is_dir, is_file
from slimmer.model import EntryType, TreeView, Warning_

__all__ = ["DST", "Candidate", "Found", "LoaderView", "Obj", "Probe", "Search", "Step", "join"]

DST = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")
"""A dynamic string token: `$NAME` or `${NAME}` (elf/dl-load.c `is_dst`)."""


# ---------------------------------------------------------------------------
# Loaded objects and search results


@dataclass(eq=False)
class Obj:
    """A loaded object (glibc's `struct link_map`): the path it was opened
    under, the names it answers to, and the object that first loaded it.
    `shortname` is musl's: the file name it was found under by a search."""

    opened: str
    real: str
    info: ElfInfo
    origin: str
    loader: Obj | None = None
    names: set[str] = field(default_factory=set)
    shortname: str = ""


@dataclass(frozen=True)
class Probe:
    """A file the loader would open: the path tried, the real file, the
    symlinks crossed, and the CPU variant the path belongs to."""

    opened: str
    real: str
    chain: tuple[str, ...]
    info: ElfInfo
    variant: str = ""


@dataclass(frozen=True)
class Candidate:
    """A path to try, and its CPU variant ("" for a baseline CPU)."""

    path: str
    variant: str = ""


@dataclass(frozen=True)
class Found:
    """The answer of a search, how it was found, and the CPU variants."""

    probe: Probe
    via: str
    variants: tuple[tuple[Probe, str], ...] = ()


Step = tuple[str, list[Candidate]]
"""One step of a search order: where the candidates come from, and them."""


# ---------------------------------------------------------------------------
# The tree as the loader reads it, cached for one closure() call


class LoaderView:
    """The tree plus what is read from it once: ELF headers, ld.so.cache."""

    def __init__(self, tree: TreeView) -> None:
        self.tree = tree
        self._elf: dict[str, ElfInfo] = {}
        self._exists: dict[str, bool] = {}
        self._cache: tuple[tuple[CacheEntry, ...] | None, str] | None = None
        self._conf: tuple[str, ...] | None = None

    def elf(self, real: str) -> ElfInfo:
        if real not in self._elf:
            self._elf[real] = _read_elf(self.tree, real)
        return self._elf[real]

    def is_dir(self, path: str) -> bool:
        if path not in self._exists:
            self._exists[path] = is_dir(self.tree, path)
        return self._exists[path]

    def ld_cache(self) -> tuple[tuple[CacheEntry, ...] | None, str]:
        """The cache entries (None: no usable cache) and a problem, if any.
        glibc ignores a cache it cannot read, as if there were none."""
        if self._cache is None:
            self._cache = _load_cache(self.tree)
        return self._cache

    def conf_dirs(self) -> tuple[str, ...]:
        if self._conf is None:
            self._conf = read_ld_so_conf(self.tree)
        return self._conf


def _read_elf(tree: TreeView, real: str) -> ElfInfo:
    def read_at(offset: int, size: int) -> bytes:
        return tree.read_bytes(real, size, offset)

    try:
        return parse_elf_at(read_at)
    except (SlimError, OSError, LookupError, ValueError) as exc:
        return ElfInfo(error=f"cannot read the file: {exc}")


def _load_cache(tree: TreeView) -> tuple[tuple[CacheEntry, ...] | None, str]:
    if not is_file(tree, "/etc/ld.so.cache"):
        return None, ""
    try:
        return parse_ld_so_cache(read_file(tree, "/etc/ld.so.cache")), ""
    except ValueError as exc:
        return None, f"unreadable, ignored as glibc does: {exc}"


# ---------------------------------------------------------------------------
# The search state of one process


class Search:
    """What the search rules read of one program started in the image: its
    environment and working directory, the executable (`main`), the
    dynamic loader (`rtld`), whether the loader is musl's, whether the
    program is setuid/setgid (`secure`), and the image's layout. Warnings
    met while searching are collected in `warnings`."""

    def __init__(self, image: LoaderView, env: Mapping[str, str], workdir: str) -> None:
        self.image, self.tree = image, image.tree
        self.env, self.workdir = env, workdir
        self.warnings: list[Warning_] = []
        self.main: Obj | None = None
        self.rtld: Obj | None = None
        self.musl = False
        self.secure = False
        self.layout = DEFAULT_LAYOUT

    def search(self, name: str, steps: Iterator[Step]) -> Found | None:
        """Try each step's candidates in order; the first file a baseline CPU
        would load ends the search. CPU-specific variants met before it are
        kept too; if only variants exist, the best one is the answer."""
        variants: list[tuple[Probe, str]] = []
        for via, candidates in steps:
            for cand in candidates:
                probe = self.probe(cand.path, variant=cand.variant)
                if probe is None:
                    continue
                if not cand.variant:
                    return Found(probe, via, tuple(variants))
                variants.append((probe, via))
        if not variants:
            return None
        (best, via), rest = variants[0], variants[1:]
        self.warn(
            best.real,
            f"{name} exists only in CPU-specific directories; it will not "
            "load on CPUs without " + best.variant,
        )
        return Found(best, via, tuple(rest))

    # -- paths -------------------------------------------------------------------

    def split(self, text: str, seps: str, owner: Obj) -> list[str]:
        """A search path: an empty entry is the working directory; tokens
        are expanded for `owner`; an entry that cannot be expanded is
        dropped; trailing slashes go; relative entries are relative to the
        working directory."""
        out = []
        for part in re.split(f"[{re.escape(seps)}]", text):
            expanded = self.expand(part, owner) if part else self.workdir
            if expanded is not None:
                out.append(join(self.workdir, expanded.rstrip("/") or "/"))
        return out

    def expand(self, text: str, owner: Obj) -> str | None:
        """Dynamic string tokens (elf/dl-load.c `_dl_dst_substitute`):
        `$ORIGIN`/`${ORIGIN}` is the directory `owner` was opened under (for
        the executable, its real directory); `$LIB` and `$PLATFORM` as the
        image's glibc sets them (`Layout`). In a setuid/setgid program an
        entry using `$ORIGIN` is kept only if it expands into a default
        directory."""
        values = {"ORIGIN": owner.origin, "LIB": self.layout.lib, "PLATFORM": self.layout.platform}
        result = DST.sub(lambda m: values[m.group(1) or m.group(2)], text)
        if self.secure and "ORIGIN" in "".join(m.group(0) for m in DST.finditer(text)):
            if not any(result.startswith(d + "/") or result == d for d in self.layout.default_dirs):
                return None
        return result

    def dirs(self, dirs: list[str], name: str) -> list[Candidate]:
        """Each directory's CPU-specific subdirectories, then the directory."""
        out = []
        for d in dirs:
            for sub in self.layout.subdirs:
                if self.image.is_dir(f"{d}/{sub.split('/', 1)[0]}"):
                    out.append(Candidate(f"{d}/{sub}/{name}".replace("//", "/"), sub))
            out.append(Candidate(f"{d}/{name}".replace("//", "/")))
        return out

    # -- files -------------------------------------------------------------------

    def probe(self, path: str, variant: str = "", check_class: bool = True) -> Probe | None:
        """Open `path` as the loader would: a missing file or a directory
        means "not here"; glibc also skips a file of another ELF class or
        machine and searches on (elf/dl-load.c `open_verify`), musl does not."""
        resolved = self.tree.resolve(path)
        entry = resolved.entry
        if entry is None or resolved.error or entry.type is EntryType.DIR:
            return None
        if not entry.is_regular:
            return None
        info = self.image.elf(resolved.path)
        if (
            check_class
            and not self.musl
            and self.main is not None
            and info.elf_class
            and (
                (info.elf_class, info.machine) != (self.main.info.elf_class, self.main.info.machine)
            )
        ):
            return None
        return Probe(path, resolved.path, resolved.chain, info, variant)

    def warn(self, where: str, message: str) -> None:
        warning = Warning_(where, message)
        if warning not in self.warnings:
            self.warnings.append(warning)


def join(workdir: str, path: str) -> str:
    """A relative path is relative to the process's working directory;
    nothing is normalised: `..` is for the tree to resolve physically."""
    return path if path.startswith("/") else posixpath.join(workdir or "/", path)
