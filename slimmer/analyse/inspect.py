"""`slim inspect`: what a user asks about an image before slimming it.

`analyse(image)` returns an `Inspection` value; renderers in `slimmer.report`
turn it into terminal tables or versioned JSON. The slim report counts both its
images with it (`pipeline.summary`).

Counting: names are counted, bytes are counted once. `files` and `elf_files`
count every path of a regular file, a hardlink included (it is a name a program
can open or run: perl and perl5.36.0, git's libexec programs); `tree_bytes` and
`elf_bytes` count each file's bytes once, at the file a hardlink group is first
written as, as the layer holds them.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from slimmer.analyse.efficiency import efficiency
from slimmer.analyse.packages import Package, inventory, is_metadata_file
from slimmer.image.filetree import FileTree
from slimmer.image.paths import SHELLS as SHELLS
from slimmer.image.reader import Image
from slimmer.model import EntryType, FileEntry, TreeView

SCHEMA = "slimmer.inspect/v1"
TOP = 10

PACKAGE_MANAGERS = (
    "apt",
    "apt-get",
    "dpkg",
    "apk",
    "yum",
    "dnf",
    "microdnf",
    "rpm",
    "pip",
    "pip3",
    "npm",
    "yarn",
    "gem",
    "zypper",
)
BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
CACHE_DIRS = (
    "/var/cache/apt",
    "/var/lib/apt/lists",
    "/var/cache/apk",
    "/var/cache/yum",
    "/var/cache/dnf",
    "/root/.cache/pip",
    "/root/.npm",
    "/usr/local/share/.cache",
    "/root/.cache",
)


def want_for_inspect(path: str) -> bool:
    return is_metadata_file(path)


@dataclass(frozen=True)
class LayerRow:
    index: int
    digest: str
    size: int
    files: int
    created_by: str


@dataclass(frozen=True)
class SizedPath:
    path: str
    size: int


@dataclass(frozen=True)
class Inspection:
    ref: str
    id: str
    os: str
    architecture: str
    size_bytes: int
    tree_bytes: int
    files: int
    directories: int
    symlinks: int
    layers: tuple[LayerRow, ...]
    largest_files: tuple[SizedPath, ...]
    largest_dirs: tuple[SizedPath, ...]
    efficiency: float
    wasted_bytes: int
    user_wasted_percent: float
    reclaimable_bytes: int
    inefficient_files: tuple[tuple[str, int, int], ...]
    elf_files: int
    elf_bytes: int
    shells: tuple[str, ...]
    setuid: tuple[str, ...]
    setgid: tuple[str, ...]
    package_managers: tuple[str, ...]
    caches: tuple[SizedPath, ...]
    packages: tuple[Package, ...]
    warnings: tuple[str, ...]


def analyse(image: Image) -> Inspection:
    tree = image.tree
    entries = list(tree)
    files = [e for e in entries if e.is_regular]
    kinds = Counter(e.type for e in entries)
    eff = efficiency(image.layers)
    return Inspection(
        ref=str(image.ref),
        id=image.id,
        os=image.config.os,
        architecture=image.config.architecture,
        size_bytes=image.size,
        tree_bytes=sum(e.size for e in entries if e.type is EntryType.FILE),
        files=len(files),
        directories=kinds[EntryType.DIR] - 1,
        symlinks=kinds[EntryType.SYMLINK],
        layers=tuple(
            LayerRow(
                layer.index,
                layer.digest,
                layer.size,
                sum(1 for m in layer.members if not m.is_dir),
                layer.created_by,
            )
            for layer in image.layers
        ),
        largest_files=_largest_files(files),
        largest_dirs=_largest_dirs(entries),
        efficiency=eff.score,
        wasted_bytes=eff.wasted_bytes,
        user_wasted_percent=eff.user_wasted_percent,
        reclaimable_bytes=tree.reclaimable_bytes,
        inefficient_files=eff.inefficient,
        elf_files=sum(1 for e in files if e.is_elf),
        elf_bytes=sum(e.size for e in files if e.is_elf and e.type is EntryType.FILE),
        shells=named_binaries(tree, SHELLS),
        setuid=tuple(sorted(e.path for e in files if e.is_setuid)),
        setgid=tuple(sorted(e.path for e in files if e.is_setgid)),
        package_managers=named_binaries(tree, PACKAGE_MANAGERS),
        caches=_caches(tree),
        packages=inventory(tree),
        warnings=tuple(str(w) for w in image.warnings),
    )


def _largest_files(files: list[FileEntry]) -> tuple[SizedPath, ...]:
    own = [e for e in files if e.type is EntryType.FILE]
    top = sorted(own, key=lambda e: (-e.size, e.path))[:TOP]
    return tuple(SizedPath(e.path, e.size) for e in top)


def _largest_dirs(entries: list[FileEntry], max_depth: int = 3) -> tuple[SizedPath, ...]:
    """Directories by the bytes of the files below them, up to `max_depth` levels deep."""
    sizes: Counter[str] = Counter()
    for e in entries:
        if e.type is not EntryType.FILE:
            continue
        d = posixpath.dirname(e.path)
        while d != "/":
            if d.count("/") <= max_depth:
                sizes[d] += e.size
            d = posixpath.dirname(d)
    top = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return tuple(SizedPath(p, s) for p, s in top)


def named_binaries(tree: TreeView, names: Iterable[str]) -> tuple[str, ...]:
    """The programs called one of `names` in the usual bin directories (`BIN_DIRS`),
    each reported once, where it resolves: `/bin/sh -> dash` on a merged-/usr
    image is `/usr/bin/dash`. What `@shells`, `@package-managers`, `slim lint` and
    the slim report's before and after all list."""
    found = set()
    for d in BIN_DIRS:
        for name in names:
            path = f"{d}/{name}"
            res = tree.resolve(path)
            if res.entry is not None and res.entry.is_regular:
                found.add(res.path)
    return tuple(sorted(found))


def _caches(tree: FileTree) -> tuple[SizedPath, ...]:
    out = []
    for d in CACHE_DIRS:
        entry = tree.get(d)
        if entry is None or not entry.is_dir:
            continue
        size = sum(e.size for e in tree.walk(d) if e.type is EntryType.FILE)
        if size:
            out.append(SizedPath(d, size))
    return tuple(out)
