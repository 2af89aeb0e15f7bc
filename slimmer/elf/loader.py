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

This module drives one program's start (`_Process`); the rules are in
`slimmer.elf.glibc` (glibc's search order), `slimmer.elf.musl` (musl's),
`slimmer.elf.search` (search paths, `$ORIGIN`/`$LIB`/`$PLATFORM`, CPU
variants, opening candidates) and `slimmer.elf.layout` (the image's glibc
configuration: `$LIB`, default directories, hwcaps subdirectories).
"""

from __future__ import annotations

import posixpath
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from slimmer.elf import glibc, musl
from slimmer.elf.layout import detect_layout
from slimmer.elf.ldcache import CacheEntry, parse_ld_so_cache, read_file, read_ld_so_conf
from slimmer.elf.parse import ElfInfo
from slimmer.elf.search import Found, LoaderView, Obj, Probe, Search, join
from slimmer.model import TreeView, Warning_

__all__ = [
    "CacheEntry",
    "Closure",
    "Edge",
    "Missing",
    "closure",
    "parse_ld_so_cache",
    "read_ld_so_conf",
]


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


def closure(
    tree: TreeView, paths: Iterable[str], env: Mapping[str, str], workdir: str = "/"
) -> Closure:
    """The files needed to start each of `paths` in the image, each as its own
    process with environment `env` and working directory `workdir`."""
    image = LoaderView(tree)
    paths = tuple(paths)
    runs = [_run_root(image, path, env, workdir) for path in paths]
    files = sorted({f for run in runs for f in run.files})
    warnings = list(dict.fromkeys(w for run in runs for w in run.warnings))
    return Closure(
        roots=tuple(paths),
        files=tuple(files),
        edges=tuple(e for run in runs for e in run.edges),
        missing=tuple(m for run in runs for m in run.missing),
        warnings=tuple(warnings),
    )


def _run_root(image: LoaderView, path: str, env: Mapping[str, str], workdir: str) -> _Process:
    process = _Process(image, path, env, workdir)
    process.run()
    return process


# ---------------------------------------------------------------------------
# One program started: the driver; the rules are glibc's, musl's, search's


class _Process(Search):
    """One program started in the image: the loader's state for one root.
    The search state the rules read is `Search`'s."""

    def __init__(self, image: LoaderView, root: str, env: Mapping[str, str], workdir: str) -> None:
        super().__init__(image, env, workdir)
        self.root = root
        self.files: set[str] = set()
        self.edges: list[Edge] = []
        self.missing: list[Missing] = []
        self.loaded: list[Obj] = []
        self.by_real: dict[str, Obj] = {}
        self.queue: deque[Obj] = deque()

    # -- driving -----------------------------------------------------------

    def run(self) -> None:
        main = self._load_main()
        if main is None or main.info.is_static:
            return
        self.musl = musl.is_musl(main.info, self.tree)
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

    def _load_main(self) -> Obj | None:
        resolved = self.tree.resolve(join(self.workdir, self.root))
        if resolved.entry is None or not resolved.entry.is_regular:
            self.missing.append(Missing(self.root, "root", self.root, ""))
            return None
        self.files.update((*resolved.chain, resolved.path))
        self.secure = resolved.entry.is_setuid or resolved.entry.is_setgid
        info = self.image.elf(resolved.path)
        if not info.elf_class:
            self.warn(resolved.path, f"{info.error}; no dependencies were looked for")
            return None
        self._check(resolved.path, info)
        self.layout = detect_layout(self.tree, info)
        # The executable's $ORIGIN is its real directory (/proc/self/exe).
        main = Obj("", resolved.path, info, posixpath.dirname(resolved.path))
        self.main = main
        self._register(main)
        return main

    def _load_interp(self, main: Obj) -> None:
        """PT_INTERP is opened by the kernel. glibc puts ld.so on the list of
        loaded objects under that path and its SONAME, so a DT_NEEDED
        "ld-linux-x86-64.so.2" is that object, never searched for."""
        interp = main.info.interp
        if interp is None:
            self.rtld = self._musl_rtld() if self.musl else None
            return
        probe = self.probe(join(self.workdir, interp), check_class=False)
        if probe is None:
            self.missing.append(Missing(self.root, "PT_INTERP", interp, main.real))
            return
        self._edge("PT_INTERP", interp, main, probe, "the kernel (path in PT_INTERP)")
        rtld = Obj(interp, probe.real, probe.info, posixpath.dirname(interp), names={interp})
        self.rtld = self.by_real.get(probe.real) or rtld
        self._register(self.rtld)

    def _musl_rtld(self) -> Obj | None:
        """A musl library given as a root: `musl.rtld`, loaded."""
        obj = musl.rtld(self)
        if obj is not None:
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

    def _map(self, name: str, loader: Obj, kind: str) -> Obj | None:
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

    def _adopt(self, probe: Probe, name: str, loader: Obj, kind: str, via: str) -> Obj:
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
        obj = Obj(probe.opened, probe.real, probe.info, origin, loader, {name, probe.opened}, short)
        self._check(probe.real, probe.info)
        if probe.variant:
            self.by_real[obj.real] = obj
        else:
            self._register(obj)
        self.queue.append(obj)
        return obj

    def _already_loaded(self, name: str) -> Obj | None:
        """Rule 1: `glibc.already_loaded`, `musl.already_loaded`."""
        if self.musl:
            return musl.already_loaded(name, self.loaded, self.rtld)
        return glibc.already_loaded(name, self.loaded)

    def _find(self, name: str, loader: Obj, kind: str) -> Found | None:
        """A name with a slash is opened as written (glibc expands its
        tokens first); any other is searched for by glibc's or musl's
        order. LD_PRELOAD of a setuid/setgid program: `glibc.secure_preload`
        (musl never gets here: it drops them all, see `_preloads`)."""
        if "/" in name:
            path = name if self.musl else self.expand(name, loader)
            probe = self.probe(join(self.workdir, path)) if path else None
            return Found(probe, "the path as written") if probe else None
        if kind == "LD_PRELOAD" and self.secure:
            return glibc.secure_preload(self, name)
        steps = (
            musl.steps(self, name, None if kind == "LD_PRELOAD" else loader)
            if self.musl
            else glibc.steps(self, name, loader)
        )
        return self.search(name, steps)

    # -- bookkeeping -------------------------------------------------------------

    def _check(self, real: str, info: ElfInfo) -> None:
        """A file whose dependencies cannot be read is named, never taken
        as having none."""
        if not info.elf_class:
            self.warn(
                real, f"not a loadable ELF file ({info.error}); the loader stops with an error here"
            )
        elif info.error:
            self.warn(
                real,
                f"dependency information incomplete ({info.error}); libraries "
                "it needs may be missing from the closure",
            )

    def _register(self, obj: Obj) -> None:
        self.loaded.append(obj)
        self.by_real.setdefault(obj.real, obj)

    def _edge(self, kind: str, name: str, loader: Obj, probe: Probe, via: str) -> None:
        self.files.update((*probe.chain, probe.real))
        self.edges.append(
            Edge(
                self.root,
                kind,
                name,
                loader.real,
                probe.opened,
                probe.real,
                via,
                probe.chain,
                probe.variant,
            )
        )

    def _reuse_edge(self, kind: str, name: str, loader: Obj, obj: Obj, via: str) -> None:
        self.edges.append(Edge(self.root, kind, name, loader.real, obj.opened, obj.real, via))
