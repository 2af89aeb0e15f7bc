"""The dynamic loader's rules over an image's tree: which files a program loads.

`closure(tree, paths, env)` answers, for each ELF program or library in
`paths`, the files the dynamic loader of the *image* would open to start it,
without running anything and without looking at the host: the PT_INTERP, every
DT_NEEDED object found the way glibc's ld.so (or musl's) searches, preloads,
and every symlink crossed on the way. Each edge carries a reason.

glibc is followed as of 2.36 (elf/dl-load.c `_dl_map_object`, elf/rtld.c),
not lddtree.py, which differs in three places: DT_RUNPATH is not inherited by
dependencies, `$LIB` is expanded, and a library's `$ORIGIN` is the directory it
was opened under. musl follows ldso/dynlink.c `load_library`.

Where the answer depends on the CPU (glibc-hwcaps and legacy hwcap
subdirectories, ld.so.cache hwcaps entries) every variant is kept, since the
slim image may run on another CPU: the file a baseline CPU loads is the
primary, the others are extra edges marked with their variant.
"""

from __future__ import annotations

import posixpath
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from slimmer.elf.ldcache import (
    FLAG_ELF,
    FLAG_TYPE_ELF_LIBC6,
    CacheEntry,
    list_dir,
    parse_ld_so_cache,
    read_file,
    read_ld_so_conf,
)
from slimmer.elf.parse import EM_386, EM_AARCH64, EM_ARM, EM_RISCV, EM_X86_64, ElfInfo, parse_elf_at
from slimmer.errors import SlimError
from slimmer.model import EntryType, TreeView, Warning_
from slimmer.plan.paths import is_dir, is_file

__all__ = ["CacheEntry", "Closure", "Edge", "Missing", "closure", "parse_ld_so_cache",
           "read_ld_so_conf"]


# ---------------------------------------------------------------------------
# The answer


@dataclass(frozen=True)
class Edge:
    """One object the loader opens, and why.

    `kind` is "PT_INTERP", "DT_NEEDED", "LD_PRELOAD" or "/etc/ld.so.preload";
    `name` the string as written there; `requester` the real path of the object
    that asked (the program itself for interpreter and preloads). `path` is the
    path the loader opened (its `$ORIGIN` is that path's directory), `chain` the
    symlinks crossed opening it, `target` the real file. `variant` names the
    CPU-specific subdirectory or cache entry ("glibc-hwcaps/x86-64-v3"), "" for
    the file a baseline CPU loads.
    """

    root: str
    kind: str
    name: str
    requester: str
    path: str
    target: str
    via: str
    chain: tuple[str, ...] = ()
    variant: str = ""

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.chain, self.target)

    @property
    def reason(self) -> str:
        text = f"{self.kind} {self.name} of {self.requester}, found via {self.via}"
        return f"{text} (CPU variant {self.variant})" if self.variant else text


@dataclass(frozen=True)
class Missing:
    """A dependency the loader would not find: the program fails to start
    (or, for a preload, glibc prints an error and goes on)."""

    root: str
    kind: str
    name: str
    requester: str


@dataclass(frozen=True)
class Closure:
    """Everything `closure()` found. `files` holds real paths and every
    symlink crossed, sorted; the roots themselves are included."""

    roots: tuple[str, ...]
    files: tuple[str, ...]
    edges: tuple[Edge, ...]
    missing: tuple[Missing, ...]
    warnings: tuple[Warning_, ...]

    def reasons(self, path: str) -> tuple[str, ...]:
        """Why `path` is in the closure."""
        out = [f"requested: {path}" for r in self.roots if r == path]
        return tuple(out + [e.reason for e in self.edges if path in e.files])


def closure(tree: TreeView, paths: Iterable[str], env: Mapping[str, str],
            workdir: str = "/") -> Closure:
    """The files needed to start each of `paths` in the image, each as its own
    process with environment `env` and working directory `workdir`."""
    image = _Image(tree)
    paths = tuple(paths)
    runs = [_run_root(image, path, env, workdir) for path in paths]
    files = sorted({f for run in runs for f in run.files})
    warnings = list(dict.fromkeys(w for run in runs for w in run.warnings))
    return Closure(roots=tuple(paths), files=tuple(files),
                   edges=tuple(e for run in runs for e in run.edges),
                   missing=tuple(m for run in runs for m in run.missing),
                   warnings=tuple(warnings))


def _run_root(image: _Image, path: str, env: Mapping[str, str], workdir: str) -> _Process:
    process = _Process(image, path, env, workdir)
    process.run()
    return process


# ---------------------------------------------------------------------------
# The image's loader layout: $LIB, $PLATFORM, default dirs, hwcaps, cache flags

_TRIPLETS = {
    (EM_X86_64, 64): "x86_64-linux-gnu", (EM_X86_64, 32): "x86_64-linux-gnux32",
    (EM_386, 32): "i386-linux-gnu", (EM_AARCH64, 64): "aarch64-linux-gnu",
    (EM_ARM, 32): "arm-linux-gnueabihf", (21, 64): "powerpc64le-linux-gnu",
    (22, 64): "s390x-linux-gnu", (EM_RISCV, 64): "riscv64-linux-gnu",
}
_PLATFORMS = {EM_X86_64: "x86_64", EM_386: "i686", EM_AARCH64: "aarch64", EM_ARM: "v7l",
              21: "power8", 22: "z900", EM_RISCV: "riscv64"}
_HWCAPS = {(EM_X86_64, 64): ("x86-64-v4", "x86-64-v3", "x86-64-v2"),
           (21, 64): ("power10", "power9"), (22, 64): ("z16", "z15", "z14", "z13")}
_LEGACY_CAPS = {EM_X86_64: ("avx512_1", "x86_64"), EM_386: ("i686", "i586")}
_LEGACY_PLATFORMS = {EM_X86_64: ("x86_64", "haswell", "xeon_phi")}
_CACHE_ARCH = {(EM_X86_64, 64): 0x0300, (EM_X86_64, 32): 0x0800, (EM_386, 32): 0,
               (EM_AARCH64, 64): 0x0A00, (EM_ARM, 32): 0x0900, (21, 64): 0x0500,
               (22, 64): 0x0400, (EM_RISCV, 64): 0x1000}
_MUSL_ARCH = {EM_X86_64: "x86_64", EM_386: "i386", EM_AARCH64: "aarch64", EM_ARM: "armhf",
              21: "powerpc64le", 22: "s390x", EM_RISCV: "riscv64"}


@dataclass(frozen=True)
class _Layout:
    """How the image's glibc was configured, for one ELF class and machine.

    glibc expands `$LIB` to the last part of its `slibdir` and searches
    `slibdir`, `libdir` (elf/Makefile trusted-dirs). Debian patches `$LIB` to
    "lib/<triplet>" and adds /lib and /usr/lib: measured on Debian 12, RPATH
    "/opt/$LIB" searches "/opt/lib/x86_64-linux-gnu". Fedora-style lib64
    layouts use "lib64" and /lib64, /usr/lib64; anything else "lib".
    """

    lib: str
    platform: str
    default_dirs: tuple[str, ...]
    subdirs: tuple[str, ...]
    cache_flags: int | None


def _detect_layout(tree: TreeView, info: ElfInfo) -> _Layout:
    key = (info.machine, info.elf_class)
    triplet = _TRIPLETS.get(key)
    platform = _PLATFORMS.get(info.machine, info.machine_name)
    subdirs = tuple(f"glibc-hwcaps/{c}" for c in _HWCAPS.get(key, ())) + _legacy_subdirs(info)
    arch = _CACHE_ARCH.get(key)
    flags = None if arch is None else arch | FLAG_TYPE_ELF_LIBC6
    if triplet and any(is_dir(tree, f"{d}/{triplet}") for d in ("/lib", "/usr/lib")):
        dirs: tuple[str, ...] = (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
        return _Layout(f"lib/{triplet}", platform, dirs, subdirs, flags)
    if info.elf_class == 64 and any(is_file(tree, f"{d}/libc.so.6")
                                    for d in ("/lib64", "/usr/lib64")):
        return _Layout("lib64", platform, ("/lib64", "/usr/lib64"), subdirs, flags)
    return _Layout("lib", platform, ("/lib", "/usr/lib"), subdirs, flags)


def _legacy_subdirs(info: ElfInfo) -> tuple[str, ...]:
    """glibc < 2.37 also searched tls/, AT_PLATFORM and legacy hwcap
    subdirectories ("tls/x86_64/x86_64", "x86_64", ...) of every directory."""
    platforms = _LEGACY_PLATFORMS.get(info.machine, (_PLATFORMS.get(info.machine, ""),))
    caps = _LEGACY_CAPS.get(info.machine, ())
    out = []
    for tls in ("tls/", ""):
        for plat in (*[p + "/" for p in platforms if p], ""):
            for cap in (*[c + "/" for c in caps], ""):
                out.append((tls + plat + cap).rstrip("/"))
    return tuple(dict.fromkeys(s for s in out if s))


# ---------------------------------------------------------------------------
# Image access, cached for one closure() call


class _Image:
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
# Loaded objects and search results


@dataclass(eq=False)
class _Obj:
    """A loaded object (glibc's `struct link_map`): the path it was opened
    under, the names it answers to, and the object that first loaded it.
    `shortname` is musl's: the file name it was found under by a search."""

    opened: str
    real: str
    info: ElfInfo
    origin: str
    loader: _Obj | None = None
    names: set[str] = field(default_factory=set)
    shortname: str = ""


@dataclass(frozen=True)
class _Probe:
    opened: str
    real: str
    chain: tuple[str, ...]
    info: ElfInfo
    variant: str = ""


@dataclass(frozen=True)
class _Candidate:
    path: str
    variant: str = ""


@dataclass(frozen=True)
class _Found:
    probe: _Probe
    via: str
    variants: tuple[tuple[_Probe, str], ...] = ()


_DST = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")
_MUSL_SELF = ("c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet.")


class _Process:
    """One program started in the image: the loader's state for one root."""

    def __init__(self, image: _Image, root: str, env: Mapping[str, str], workdir: str) -> None:
        self.image, self.tree, self.root = image, image.tree, root
        self.env, self.workdir = env, workdir
        self.files: set[str] = set()
        self.edges: list[Edge] = []
        self.missing: list[Missing] = []
        self.warnings: list[Warning_] = []
        self.loaded: list[_Obj] = []
        self.by_real: dict[str, _Obj] = {}
        self.queue: deque[_Obj] = deque()
        self.main: _Obj | None = None
        self.rtld: _Obj | None = None
        self.musl = False
        self.secure = False
        self.layout = _Layout("lib", "", ("/lib", "/usr/lib"), (), None)

    # -- driving -----------------------------------------------------------

    def run(self) -> None:
        main = self._load_main()
        if main is None or main.info.is_static:
            return
        self.musl = _is_musl(main.info, self.tree)
        self._load_interp(main)
        for kind, names in self._preloads():
            for name in names:
                self._map(name, main, kind)
        self.queue.appendleft(main)
        self._walk()

    def _walk(self) -> None:
        """Breadth first, like `_dl_map_object_deps`: each object's DT_NEEDED
        in order, then the objects they brought in, in load order."""
        done: set[str] = set()
        while self.queue:
            obj = self.queue.popleft()
            if obj.real in done:
                continue
            done.add(obj.real)
            for name in obj.info.needed:
                self._map(name, obj, "DT_NEEDED")

    def _load_main(self) -> _Obj | None:
        resolved = self.tree.resolve(_join(self.workdir, self.root))
        if resolved.entry is None or not resolved.entry.is_regular:
            self.missing.append(Missing(self.root, "root", self.root, ""))
            return None
        self.files.update((*resolved.chain, resolved.path))
        self.secure = resolved.entry.is_setuid or resolved.entry.is_setgid
        info = self.image.elf(resolved.path)
        if not info.elf_class:
            self._warn(resolved.path, f"{info.error}; no dependencies were looked for")
            return None
        self._check(resolved.path, info)
        self.layout = _detect_layout(self.tree, info)
        # The executable's $ORIGIN is its real directory (/proc/self/exe).
        main = _Obj("", resolved.path, info, posixpath.dirname(resolved.path))
        self.main = main
        self._register(main)
        return main

    def _load_interp(self, main: _Obj) -> None:
        """PT_INTERP is opened by the kernel. glibc puts ld.so on the list of
        loaded objects under that path and its SONAME, so a DT_NEEDED
        "ld-linux-x86-64.so.2" is that object, never searched for."""
        interp = main.info.interp
        if interp is None:
            self.rtld = self._musl_rtld() if self.musl else None
            return
        probe = self._probe(_join(self.workdir, interp), check_class=False)
        if probe is None:
            self.missing.append(Missing(self.root, "PT_INTERP", interp, main.real))
            return
        self._edge("PT_INTERP", interp, main, probe, "the kernel (path in PT_INTERP)")
        rtld = _Obj(interp, probe.real, probe.info, posixpath.dirname(interp), names={interp})
        self.rtld = self.by_real.get(probe.real) or rtld
        self._register(self.rtld)

    def _musl_rtld(self) -> _Obj | None:
        """A musl library given as a root has no PT_INTERP: its libc is the
        image's /lib/ld-musl-$ARCH.so.1."""
        assert self.main is not None
        path = f"/lib/ld-musl-{_MUSL_ARCH.get(self.main.info.machine, '')}.so.1"
        probe = self._probe(path, check_class=False)
        if probe is None:
            return None
        obj = _Obj(path, probe.real, probe.info, "/lib", names={path})
        self._register(obj)
        return obj

    def _preloads(self) -> Iterator[tuple[str, list[str]]]:
        """LD_PRELOAD (separated by spaces or colons), then /etc/ld.so.preload
        (also tabs and newlines; `#` comments), each loaded by the program.
        In a setuid/setgid program glibc drops LD_PRELOAD names containing a
        slash and loads the others only if the file itself is setuid. musl
        has no ld.so.preload and ignores LD_PRELOAD when secure."""
        names = [n for n in re.split(r"[ :]+", self.env.get("LD_PRELOAD", "")) if n]
        if self.secure:
            names = [] if self.musl else [n for n in names if "/" not in n]
        yield "LD_PRELOAD", names
        if self.musl:
            return
        text = read_file(self.tree, "/etc/ld.so.preload").decode("utf-8", "replace")
        text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        yield "/etc/ld.so.preload", [n for n in re.split(r"[ \t\n:]+", text) if n]

    # -- one DT_NEEDED -------------------------------------------------------

    def _map(self, name: str, loader: _Obj, kind: str) -> _Obj | None:
        """Find `name` for `loader` (glibc `_dl_map_object`, musl `load_library`)."""
        known = self._already_loaded(name)
        if known is not None:
            self._reuse_edge(kind, name, loader, known, "already loaded")
            return known
        found = self._find(name, loader, kind)
        if found is None:
            self.missing.append(Missing(self.root, kind, name, loader.real))
            return None
        obj = self._adopt(found.probe, name, loader, kind, found.via)
        for probe, via in found.variants:
            self._adopt(probe, name, loader, kind, via)
        return obj

    def _adopt(self, probe: _Probe, name: str, loader: _Obj, kind: str, via: str) -> _Obj:
        """Glibc and musl also recognise an object already loaded under
        another name when the file opened is the same (device and inode)."""
        self._edge(kind, name, loader, probe, via)
        short = "" if "/" in name else posixpath.basename(probe.opened)
        same = self.by_real.get(probe.real)
        if same is not None:
            same.names.add(name)
            same.shortname = same.shortname or short
            return same
        origin = posixpath.dirname(probe.opened)
        obj = _Obj(probe.opened, probe.real, probe.info, origin, loader, {name, probe.opened},
                   short)
        self._check(probe.real, probe.info)
        if probe.variant:
            self.by_real[obj.real] = obj
        else:
            self._register(obj)
        self.queue.append(obj)
        return obj

    def _already_loaded(self, name: str) -> _Obj | None:
        """Rule 1. glibc: an object answers to the path it was opened under,
        every name it was requested by, and its DT_SONAME. musl: to the
        file name it was found under in a search, never to its SONAME, and
        "libc.*", "libm.*", "libpthread.*"... are musl's ld-musl itself."""
        if self.musl:
            if self.rtld is not None and _is_musl_self(name, self.rtld):
                return self.rtld
            if "/" in name:
                return None
            return next((o for o in self.loaded if o.shortname == name), None)
        return next((o for o in self.loaded
                     if name in o.names or (o.info.soname is not None and o.info.soname == name)),
                    None)

    def _find(self, name: str, loader: _Obj, kind: str) -> _Found | None:
        if "/" in name:
            path = name if self.musl else self._expand(name, loader)
            probe = self._probe(_join(self.workdir, path)) if path else None
            return _Found(probe, "the path as written") if probe else None
        if kind == "LD_PRELOAD" and self.secure:
            return self._secure_preload(name)
        steps = (self._musl_steps(name, None if kind == "LD_PRELOAD" else loader) if self.musl
                 else self._glibc_steps(name, loader))
        return self._search(name, steps)

    def _search(self, name: str, steps: Iterator[tuple[str, list[_Candidate]]]) -> _Found | None:
        """Try each step's candidates in order; the first file a baseline CPU
        would load ends the search. CPU-specific variants met before it are
        kept too; if only variants exist, the best one is the answer."""
        variants: list[tuple[_Probe, str]] = []
        for via, candidates in steps:
            for cand in candidates:
                probe = self._probe(cand.path, variant=cand.variant)
                if probe is None:
                    continue
                if not cand.variant:
                    return _Found(probe, via, tuple(variants))
                variants.append((probe, via))
        if not variants:
            return None
        (best, via), rest = variants[0], variants[1:]
        self._warn(best.real, f"{name} exists only in CPU-specific directories; it will not "
                   "load on CPUs without " + best.variant)
        return _Found(best, via, tuple(rest))

    # -- glibc's search order -------------------------------------------------

    def _glibc_steps(self, name: str, loader: _Obj) -> Iterator[tuple[str, list[_Candidate]]]:
        """glibc `_dl_map_object`, for a name without a slash:
        2. DT_RPATH of the requester, then of the object that loaded it, and
           on up to the executable (then the executable's own) -- only when
           the requester has no DT_RUNPATH. An object with a DT_RUNPATH has
           its DT_RPATH ignored (elf/get-dynamic-info.h).
        3. LD_LIBRARY_PATH (separated by ":" or ";"), not for setuid/setgid.
        4. DT_RUNPATH of the requester only: never inherited.
        5. /etc/ld.so.cache (see `_cache_candidates`).
        6. The default directories, unless the requester has DF_1_NODEFLIB.
        """
        if loader.info.runpath is None:
            chain: list[_Obj] = []
            obj: _Obj | None = loader
            while obj is not None:
                chain.append(obj)
                obj = obj.loader
            if self.main is not None and self.main not in chain:
                chain.append(self.main)
            for owner in chain:
                if owner.info.rpath is not None and owner.info.runpath is None:
                    yield (f"DT_RPATH of {owner.real}",
                           self._dirs(self._split(owner.info.rpath, ":", owner), name))
        llp = self.env.get("LD_LIBRARY_PATH", "")
        if llp and not self.secure and self.main is not None:
            yield "LD_LIBRARY_PATH", self._dirs(self._split(llp, ":;", self.main), name)
        if loader.info.runpath is not None:
            yield (f"DT_RUNPATH of {loader.real}",
                   self._dirs(self._split(loader.info.runpath, ":", loader), name))
        yield from self._cache_step(name, loader)
        if not loader.info.nodeflib:
            yield "default directories", self._dirs(list(self.layout.default_dirs), name)

    def _cache_step(self, name: str, loader: _Obj) -> Iterator[tuple[str, list[_Candidate]]]:
        entries, problem = self.image.ld_cache()
        if problem:
            self._warn("/etc/ld.so.cache", problem)
        if entries is None:
            conf = self.image.conf_dirs()
            if conf:
                self._warn("/etc/ld.so.cache", "missing; the /etc/ld.so.conf directories were "
                           "searched in its place, which glibc itself does not do")
                yield ("/etc/ld.so.conf (no ld.so.cache)",
                       self._dirs(self._nodeflib_filter(list(conf), loader), name))
            return
        yield "ld.so.cache", self._cache_candidates(entries, name, loader)

    def _cache_candidates(self, entries: tuple[CacheEntry, ...], name: str,
                          loader: _Obj) -> list[_Candidate]:
        """Rule 5 (elf/dl-cache.c): entries for `name` whose flags fit the
        program (ELF libc6 of its architecture, or plain ELF). The first
        plain entry is what a baseline CPU gets; glibc-hwcaps entries are
        CPU variants. If the file is gone or of the wrong class, glibc goes
        on to the default directories. With DF_1_NODEFLIB, entries inside
        the default directories are skipped."""
        want = self.layout.cache_flags
        fits = [e for e in entries if e.name == name and
                (e.flags in (FLAG_ELF, want) if want is not None
                 else e.flags & 0xFF == FLAG_TYPE_ELF_LIBC6)]
        picked = [_Candidate(e.path, _cache_variant(e.path)) for e in fits if e.hwcap]
        picked += [_Candidate(e.path) for e in fits if not e.hwcap][:1]
        allowed = self._nodeflib_filter([c.path for c in picked], loader)
        return [c for c in picked if c.path in allowed]

    def _nodeflib_filter(self, paths: list[str], loader: _Obj) -> list[str]:
        if not loader.info.nodeflib:
            return paths
        system = tuple(d.rstrip("/") + "/" for d in self.layout.default_dirs)
        return [p for p in paths if not (p + "/").startswith(system)]

    def _secure_preload(self, name: str) -> _Found | None:
        """LD_PRELOAD of a setuid/setgid glibc program: only the default
        directories, and only a library that is itself setuid."""
        steps = iter([("default directories (setuid program)",
                       self._dirs(list(self.layout.default_dirs), name))])
        found = self._search(name, steps)
        if found is None:
            return None
        entry = self.tree.resolve(found.probe.real).entry
        return found if entry is not None and entry.is_setuid else None

    # -- musl's search order --------------------------------------------------

    def _musl_steps(self, name: str,
                    loader: _Obj | None) -> Iterator[tuple[str, list[_Candidate]]]:
        """musl `load_library`: LD_LIBRARY_PATH (":" or newline; ignored when
        secure), then DT_RUNPATH or else DT_RPATH of the requester and of each
        object that loaded it (inherited, unlike glibc; a preload has no
        requester: `load_library(name, 0)`), then the lines of
        /etc/ld-musl-$ARCH.path next to the loader, or /lib:/usr/local/lib:
        /usr/lib. Only $ORIGIN is expanded; empty entries are skipped; no
        hwcaps, no cache, no class check."""
        llp = self.env.get("LD_LIBRARY_PATH", "")
        if llp and not self.secure:
            yield "LD_LIBRARY_PATH", self._musl_dirs(llp, None, name)
        obj: _Obj | None = loader
        while obj is not None:
            paths = obj.info.runpath if obj.info.runpath is not None else obj.info.rpath
            if paths is not None:
                yield f"DT_RUNPATH/DT_RPATH of {obj.real}", self._musl_dirs(paths, obj, name)
            obj = obj.loader
        yield self._musl_sys_path(name)

    def _musl_sys_path(self, name: str) -> tuple[str, list[_Candidate]]:
        rtld = self.rtld
        ldso = rtld.opened if rtld is not None else "/lib/ld-musl.so.1"
        arch = posixpath.basename(ldso).removeprefix("ld-musl-").split(".so")[0]
        prefix = posixpath.dirname(posixpath.dirname(ldso)).rstrip("/")
        conf = f"{prefix}/etc/ld-musl-{arch}.path"
        if is_file(self.tree, conf):
            text = read_file(self.tree, conf).decode("utf-8", "replace")
            return conf, self._musl_dirs(text, None, name)
        return "musl's default path", self._musl_dirs("/lib:/usr/local/lib:/usr/lib", None, name)

    def _musl_dirs(self, text: str, owner: _Obj | None, name: str) -> list[_Candidate]:
        dirs = [d for d in re.split(r"[:\n]+", text) if d]
        if owner is not None:
            dirs = [_DST.sub(lambda m: owner.origin if "ORIGIN" in m.group(0) else m.group(0), d)
                    for d in dirs]
        return [_Candidate(_join(self.workdir, f"{d.rstrip('/')}/{name}")) for d in dirs]

    # -- paths -------------------------------------------------------------------

    def _split(self, text: str, seps: str, owner: _Obj) -> list[str]:
        """A search path: an empty entry is the working directory; tokens
        are expanded for `owner`; an entry that cannot be expanded is
        dropped; trailing slashes go; relative entries are relative to the
        working directory."""
        out = []
        for part in re.split(f"[{re.escape(seps)}]", text):
            expanded = self._expand(part, owner) if part else self.workdir
            if expanded is not None:
                out.append(_join(self.workdir, expanded.rstrip("/") or "/"))
        return out

    def _expand(self, text: str, owner: _Obj) -> str | None:
        """Dynamic string tokens (elf/dl-load.c `_dl_dst_substitute`):
        `$ORIGIN`/`${ORIGIN}` is the directory `owner` was opened under (for
        the executable, its real directory); `$LIB` and `$PLATFORM` as the
        image's glibc sets them (`_Layout`). In a setuid/setgid program an
        entry using `$ORIGIN` is kept only if it expands into a default
        directory."""
        values = {"ORIGIN": owner.origin, "LIB": self.layout.lib,
                  "PLATFORM": self.layout.platform}
        result = _DST.sub(lambda m: values[m.group(1) or m.group(2)], text)
        if self.secure and "ORIGIN" in "".join(m.group(0) for m in _DST.finditer(text)):
            if not any(result.startswith(d + "/") or result == d
                       for d in self.layout.default_dirs):
                return None
        return result

    def _dirs(self, dirs: list[str], name: str) -> list[_Candidate]:
        """Each directory's CPU-specific subdirectories, then the directory."""
        out = []
        for d in dirs:
            for sub in self.layout.subdirs:
                if self.image.is_dir(f"{d}/{sub.split('/', 1)[0]}"):
                    out.append(_Candidate(f"{d}/{sub}/{name}".replace("//", "/"), sub))
            out.append(_Candidate(f"{d}/{name}".replace("//", "/")))
        return out

    # -- files -------------------------------------------------------------------

    def _probe(self, path: str, variant: str = "", check_class: bool = True) -> _Probe | None:
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
        if check_class and not self.musl and self.main is not None and info.elf_class and (
                (info.elf_class, info.machine) != (self.main.info.elf_class,
                                                   self.main.info.machine)):
            return None
        return _Probe(path, resolved.path, resolved.chain, info, variant)

    def _check(self, real: str, info: ElfInfo) -> None:
        """A file whose dependencies cannot be read is named, never taken
        as having none."""
        if not info.elf_class:
            self._warn(real, f"not a loadable ELF file ({info.error}); the loader stops "
                       "with an error here")
        elif info.error:
            self._warn(real, f"dependency information incomplete ({info.error}); libraries "
                       "it needs may be missing from the closure")

    def _register(self, obj: _Obj) -> None:
        self.loaded.append(obj)
        self.by_real.setdefault(obj.real, obj)

    def _edge(self, kind: str, name: str, loader: _Obj, probe: _Probe, via: str) -> None:
        self.files.update((*probe.chain, probe.real))
        self.edges.append(Edge(self.root, kind, name, loader.real, probe.opened, probe.real,
                               via, probe.chain, probe.variant))

    def _reuse_edge(self, kind: str, name: str, loader: _Obj, obj: _Obj, via: str) -> None:
        self.edges.append(Edge(self.root, kind, name, loader.real, obj.opened, obj.real, via))

    def _warn(self, where: str, message: str) -> None:
        warning = Warning_(where, message)
        if warning not in self.warnings:
            self.warnings.append(warning)


def _cache_variant(path: str) -> str:
    match = re.search(r"glibc-hwcaps/[^/]+", path)
    return match.group(0) if match else "ld.so.cache hwcap entry"


def _is_musl(info: ElfInfo, tree: TreeView) -> bool:
    """musl when PT_INTERP is ld-musl-*, or, for a library, when it needs
    musl's libc.musl-* or the image has /lib/ld-musl-* and no glibc."""
    if info.interp is not None:
        return posixpath.basename(info.interp).startswith("ld-musl-")
    if any(n.startswith("libc.musl-") for n in info.needed):
        return True
    return (any(n.startswith("ld-musl-") for n in list_dir(tree, "/lib"))
            and not is_file(tree, "/etc/ld.so.cache"))


def _is_musl_self(name: str, rtld: _Obj) -> bool:
    if name == rtld.opened:
        return True
    return name.startswith("lib") and name[3:].startswith(_MUSL_SELF)


def _join(workdir: str, path: str) -> str:
    """A relative path is relative to the process's working directory;
    nothing is normalised: `..` is for the tree to resolve physically."""
    return path if path.startswith("/") else posixpath.join(workdir or "/", path)
