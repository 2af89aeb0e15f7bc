"""The before/after facts of a slimming run, for the reports: what each image holds,
what was kept and why (with sizes), what was removed, which packages survived.

Both images are counted by `slim inspect`'s own code (`analyse.inspect.analyse`):
the source as read, the slim image as written (its archive read back), so the
report and `slim inspect OUT` cannot disagree.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from slimmer.analyse.inspect import Inspection, analyse
from slimmer.analyse.packages import Package, inventory
from slimmer.image.compressed import Compressed
from slimmer.image.reader import Image
from slimmer.model import FileEntry, TreeView
from slimmer.plan.keep import KeepSet

TOP = 15
DPKG_INFO = "/var/lib/dpkg/info"


@dataclass(frozen=True)
class ImageFacts:
    """What one image holds, counted one way."""

    size_bytes: int
    layers: int
    files: int
    symlinks: int
    elf_files: int
    packages: int
    shells: tuple[str, ...]
    package_managers: tuple[str, ...]
    setuid: tuple[str, ...]
    compressed_bytes: int | None = None
    # how compressed_bytes was found: "stored", "full" or "sampled" (an estimate;
    # slimmer.image.compressed)
    compressed_method: str | None = None


@dataclass(frozen=True)
class Sized:
    path: str
    bytes: int
    files: int = 1


@dataclass(frozen=True)
class PackageFate:
    manager: str
    name: str
    version: str
    status: str  # "kept", "partly", "removed"
    kept_files: int
    files: int


@dataclass(frozen=True)
class DirBytes:
    """A directory (two levels deep at most): file bytes below it before and after, the
    kept bytes by the first reason of each kept file."""

    path: str
    before: int
    after: int
    by_reason: Mapping[str, int]


@dataclass(frozen=True)
class Summary:
    before: ImageFacts
    after: ImageFacts
    kept_sizes: Mapping[str, int]  # kept path -> bytes (0 for non-files)
    files_by_reason: Mapping[str, int]
    removed_dirs: tuple[Sized, ...]
    removed_files: tuple[Sized, ...]
    packages: tuple[PackageFate, ...]
    dirs: tuple[DirBytes, ...] = ()


def facts_of_source(ins: Inspection, compressed: Compressed | None = None) -> ImageFacts:
    return ImageFacts(
        size_bytes=ins.size_bytes,
        layers=len(ins.layers),
        files=ins.files,
        symlinks=ins.symlinks,
        elf_files=ins.elf_files,
        packages=len(ins.packages),
        shells=ins.shells,
        package_managers=ins.package_managers,
        setuid=ins.setuid,
        compressed_bytes=compressed.bytes if compressed is not None else None,
        compressed_method=compressed.method if compressed is not None else None,
    )


def with_compressed(facts: ImageFacts, compressed: Compressed | None) -> ImageFacts:
    """`facts` with the image's compressed size (and how it was found)."""
    if compressed is None:
        return replace(facts, compressed_bytes=None, compressed_method=None)
    return replace(facts, compressed_bytes=compressed.bytes, compressed_method=compressed.method)


def facts_of_written(
    written: Image, size_bytes: int, compressed: Compressed | None = None
) -> ImageFacts:
    """The facts of the slim image as it was written: its docker-save archive read
    back (`written`: file metadata, and the bytes of package metadata at least) and
    counted by `slim inspect`'s own `analyse`, so `slim inspect OUT` says the same.
    The keep set alone would miss the files the run generates (Python's lazy imports,
    the trimmed dpkg status) and a base's own files."""
    return replace(facts_of_source(analyse(written), compressed), size_bytes=size_bytes)


def summarize(tree: TreeView, keep: KeepSet, before: ImageFacts, after: ImageFacts) -> Summary:
    """Kept sizes, removed bytes and package fates of `keep` over the source `tree`."""
    entries = list(tree)
    kept = {p: (e.size if (e := tree.get(p)) is not None and e.is_regular else 0)
            for p in keep.paths()}  # fmt: skip
    removed = [e for e in entries if e.is_regular and e.path not in kept]
    by_reason: Counter[str] = Counter()
    for reasons in keep.reasons.values():
        r = reasons[0]
        by_reason[r.source and f"{r.kind}:{r.source}" or r.kind] += 1
    fates = _fates(tree, set(kept))
    return Summary(
        before=before,
        after=replace(after, packages=sum(1 for f in fates if f.status != "removed")),
        kept_sizes=kept,
        files_by_reason=dict(sorted(by_reason.items())),
        removed_dirs=_largest_dirs(removed),
        removed_files=tuple(
            Sized(e.path, e.size) for e in sorted(removed, key=lambda e: (-e.size, e.path))[:TOP]
        ),
        packages=fates,
        dirs=_dirs(entries, kept, keep),
    )


def _top(path: str, depth: int = 2) -> str:
    parts = path.strip("/").split("/")[:-1][:depth]
    return "/" + "/".join(parts) if parts else "/"


def _dirs(entries: list[FileEntry], kept: Mapping[str, int], keep: KeepSet) -> tuple[DirBytes, ...]:
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    for e in entries:
        if not e.is_regular:
            continue
        top = _top(e.path)
        before[top] += e.size
        if e.path in kept:
            after[top] += e.size
            first = keep.reasons[e.path][0]
            label = f"{first.kind}:{first.source}" if first.source else first.kind
            reasons.setdefault(top, Counter())[label] += e.size
    return tuple(
        DirBytes(d, before[d], after[d], dict(sorted(reasons.get(d, Counter()).items())))
        for d in sorted(before)
    )


def _largest_dirs(removed: list[FileEntry], depth: int = 3) -> tuple[Sized, ...]:
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for e in removed:
        d = posixpath.dirname(e.path)
        while d != "/":
            if d.count("/") <= depth:
                sizes[d] += e.size
                counts[d] += 1
            d = posixpath.dirname(d)
    top = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return tuple(Sized(d, n, counts[d]) for d, n in top)


def _fates(tree: TreeView, kept: set[str]) -> tuple[PackageFate, ...]:
    out = []
    for pkg in inventory(tree):
        files = _package_files(tree, pkg)
        if files:
            n = sum(1 for f in files if f in kept)
            status = "kept" if n == len(files) else "partly" if n else "removed"
        else:  # no file list: judged by its metadata
            n, status = 0, "kept" if pkg.source in kept else "removed"
        out.append(PackageFate(pkg.manager, pkg.name, pkg.version, status, n, len(files)))
    return tuple(sorted(out, key=lambda f: (f.manager, f.name)))


def _package_files(tree: TreeView, pkg: Package) -> list[str]:
    """The regular files a dpkg package installed, from its `.list` (others: none)."""
    if pkg.manager != "dpkg":
        return []
    for name in (f"{pkg.name}.list", f"{pkg.name}:amd64.list"):
        path = f"{DPKG_INFO}/{name}"
        entry = tree.get(path)
        if entry is not None and entry.is_regular:
            text = tree.read_bytes(path).decode("utf-8", "replace")
            resolved = (tree.resolve(p) for p in text.splitlines() if p.startswith("/"))
            return sorted({r.path for r in resolved if r.entry is not None and r.entry.is_regular})
    return []
