"""`slim diff A B`: what changed between two images, as one `ImageDiff` value.

Each image is read once, layer by layer, through the reader. Every regular file's
bytes are hashed while they stream past (the SHA-256 `ContentStore` would name
them by) and then dropped; only the package metadata files are kept, so reading
two 2 GB images holds two trees of metadata and never their bytes. `compare_snapshots` is
pure: two `Snapshot`s (and a slim run's report) in, an `ImageDiff` out.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from slimmer.analyse.configdiff import ConfigChange, config_changes
from slimmer.analyse.packages import Package, inventory, is_metadata_file
from slimmer.analyse.slimreasons import KeptFiles, SlimRunReasons, kept_files
from slimmer.image.filetree import WantContent
from slimmer.image.platforms import Platform
from slimmer.image.reader import EngineSaver, Image, RemoteOpener, open_image
from slimmer.image.store import ContentStore, Reader, hash_stream
from slimmer.model import SOURCE_LABEL, EntryType, FileEntry, ImageConfig, Progress

SCHEMA = "slimmer.diff/v1"


# -- values -------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One of the two images: as named, its ID, layer bytes and merged-tree counts."""

    ref: str
    id: str
    size_bytes: int  # all layers' members, as `slim inspect` counts
    tree_bytes: int  # regular files visible in the merged tree
    files: int  # non-directory entries


@dataclass(frozen=True)
class PathInfo:
    path: str
    type: str
    size: int


@dataclass(frozen=True)
class FieldChange:
    """One attribute of a path that differs: `field` is type, size, content, mode,
    owner, target (symlinks), device or xattrs; `a` and `b` its values as text."""

    field: str
    a: str
    b: str


@dataclass(frozen=True)
class Change:
    path: str
    type: str  # in B
    size_delta: int
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class DirDelta:
    """Bytes of the regular files below a top-level or second-level directory."""

    path: str
    a_bytes: int
    b_bytes: int

    @property
    def delta(self) -> int:
        return self.b_bytes - self.a_bytes


@dataclass(frozen=True)
class PackageVersion:
    manager: str
    name: str
    version: str


@dataclass(frozen=True)
class PackageChange:
    manager: str
    name: str
    a_version: str
    b_version: str


@dataclass(frozen=True)
class PackageDiff:
    added: tuple[PackageVersion, ...] = ()
    removed: tuple[PackageVersion, ...] = ()
    changed: tuple[PackageChange, ...] = ()


@dataclass(frozen=True)
class ImageDiff:
    a: Side
    b: Side
    b_slimmed_from_a: bool  # B's io.slimmer.source label is A's image ID
    added: tuple[PathInfo, ...]
    removed: tuple[PathInfo, ...]
    changed: tuple[Change, ...]
    unchanged: int
    directories: tuple[DirDelta, ...]
    packages: PackageDiff
    config: tuple[ConfigChange, ...]
    kept: KeptFiles | None
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    """What `compare_snapshots` needs of one image: its merged tree (metadata and digests only)."""

    side: Side
    config: ImageConfig
    entries: Mapping[str, FileEntry]
    packages: tuple[Package, ...]
    warnings: tuple[str, ...] = ()


# -- reading: hash every file, keep only the package metadata ------------------------


class DigestStore(ContentStore):
    """A `ContentStore` that names every file by its SHA-256 like the real one, but
    writes to disk only the files `keep` selects.

    The reader asks `want(path)` and then streams that same file into `put_stream`
    (`filetree._with_content`); `want` answers yes for every file and notes whether
    the next bytes are to be kept.
    """

    def __init__(self, root: Path, keep: WantContent) -> None:
        super().__init__(root)
        self._keep = keep
        self._keep_next = False

    def want(self, path: str) -> bool:
        self._keep_next = self._keep(path)
        return True

    @property
    def takes_spans(self) -> bool:
        return False  # every file goes through `put_stream`, which picks what to keep

    def put_stream(self, src: Reader, head: bytes = b"") -> tuple[str, int]:
        keep, self._keep_next = self._keep_next, False
        if keep:
            return super().put_stream(src, head)
        return hash_stream(src, head)


def read_snapshot(
    ref: str,
    save: EngineSaver | None = None,
    remote: RemoteOpener | None = None,
    platform: Platform | None = None,
) -> Snapshot:
    """Read `ref` (engine reference or archive) into a `Snapshot`; no bytes are kept
    after this returns (the spool of an engine image is removed once read)."""
    with tempfile.TemporaryDirectory(prefix="slimmer-diff-") as tmp:
        store = DigestStore(Path(tmp) / "store", is_metadata_file)
        with open_image(
            ref,
            save=save,
            remote=remote,
            want=store.want,
            workdir=Path(tmp),
            store=store,
            platform=platform,
        ) as img:
            return snapshot(img)


def snapshot(image: Image) -> Snapshot:
    entries = {e.path: e for e in image.tree}
    side = Side(
        ref=str(image.ref),
        id=image.id,
        size_bytes=image.size,
        tree_bytes=sum(e.size for e in entries.values() if e.type is EntryType.FILE),
        files=sum(1 for e in entries.values() if not e.is_dir),
    )
    warnings = tuple(str(w) for w in image.warnings)
    return Snapshot(side, image.config, entries, inventory(image.tree), warnings)


def diff_images(
    a: str,
    b: str,
    save: EngineSaver | None = None,
    report: SlimRunReasons | None = None,
    progress: Progress = lambda _: None,
    remote: RemoteOpener | None = None,
    platform: Platform | None = None,
) -> ImageDiff:
    """Read A, then B (one at a time), and compare them; of an index, each side's
    image of `platform`."""
    progress(f"reading {a}")
    first = read_snapshot(a, save, remote, platform)
    progress(f"reading {b}")
    second = read_snapshot(b, save, remote, platform)
    progress("comparing")
    return compare_snapshots(first, second, report)


# -- comparing ----------------------------------------------------------------------


def compare_snapshots(a: Snapshot, b: Snapshot, report: SlimRunReasons | None = None) -> ImageDiff:
    changed = [c for c in _changes(a.entries, b.entries) if c.fields]
    common = sum(1 for p in a.entries if p in b.entries)
    kept = kept_files(b.entries, a.side.id, b.side.id, report) if report is not None else None
    return ImageDiff(
        a=a.side,
        b=b.side,
        b_slimmed_from_a=slimmed_from(b.config, a.side.id),
        added=_only_in(b.entries, a.entries),
        removed=_only_in(a.entries, b.entries),
        changed=tuple(changed),
        unchanged=common - len(changed),
        directories=directory_deltas(a.entries.values(), b.entries.values()),
        packages=package_diff(a.packages, b.packages),
        config=config_changes(a.config, b.config),
        kept=kept,
        warnings=_warnings(a, b, kept),
    )


def slimmed_from(config: ImageConfig, source_id: str) -> bool:
    labels = config.container.get("Labels") or {}
    return bool(source_id) and labels.get(SOURCE_LABEL) == source_id


def _only_in(
    these: Mapping[str, FileEntry], other: Mapping[str, FileEntry]
) -> tuple[PathInfo, ...]:
    return tuple(PathInfo(p, kind(e), e.size) for p, e in sorted(these.items()) if p not in other)


def _changes(a: Mapping[str, FileEntry], b: Mapping[str, FileEntry]) -> Iterable[Change]:
    for path, old in sorted(a.items()):
        new = b.get(path)
        if new is not None:
            size_delta = new.size - old.size if new.is_regular or old.is_regular else 0
            yield Change(path, kind(new), size_delta, entry_changes(old, new))


def kind(entry: FileEntry) -> str:
    """The entry's type, with hardlinks counted as files (the same bytes, another name)."""
    return EntryType.FILE.value if entry.is_regular else entry.type.value


def entry_changes(a: FileEntry, b: FileEntry) -> tuple[FieldChange, ...]:
    """What differs between two entries at one path: regular files by size and content
    digest, symlinks by target, devices by number; every type (but a symlink, whose
    mode means nothing) by mode; every type by owner and extended attributes."""
    if kind(a) != kind(b):
        return (FieldChange("type", kind(a), kind(b)),)
    pairs = [("owner", _owner(a), _owner(b)), ("xattrs", _xattrs(a), _xattrs(b))]
    if a.type is not EntryType.SYMLINK:
        pairs.insert(0, ("mode", f"{a.mode:04o}", f"{b.mode:04o}"))
    if a.is_regular:
        pairs[:0] = [("size", str(a.size), str(b.size)), ("content", _digest(a), _digest(b))]
    elif a.type is EntryType.SYMLINK:
        pairs.insert(0, ("target", a.link, b.link))
    elif a.type in (EntryType.CHAR, EntryType.BLOCK):
        pairs.insert(0, ("device", _device(a), _device(b)))
    return tuple(FieldChange(f, x, y) for f, x, y in pairs if x != y)


def _owner(e: FileEntry) -> str:
    return f"{e.uid}:{e.gid}"


def _xattrs(e: FileEntry) -> str:
    return ", ".join(f"{k}={v}" for k, v in e.xattrs)


def _digest(e: FileEntry) -> str:
    return f"sha256:{e.content}" if e.content else ""


def _device(e: FileEntry) -> str:
    return f"{e.devmajor},{e.devminor}"


def directory_deltas(a: Iterable[FileEntry], b: Iterable[FileEntry]) -> tuple[DirDelta, ...]:
    """Bytes of regular files by top-level and second-level directory, in both images;
    the rows that differ, largest absolute change first. Files at the root count for /."""
    before, after = _dir_bytes(a), _dir_bytes(b)
    rows = [DirDelta(d, before.get(d, 0), after.get(d, 0)) for d in before.keys() | after.keys()]
    return tuple(sorted((r for r in rows if r.delta), key=lambda r: (-abs(r.delta), r.path)))


def _dir_bytes(entries: Iterable[FileEntry]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in entries:
        if e.type is EntryType.FILE:
            for d in _top_dirs(e.path):
                out[d] = out.get(d, 0) + e.size
    return out


def _top_dirs(path: str) -> list[str]:
    parts = posixpath.dirname(path).split("/")[1:3]
    if parts == [""]:
        return ["/"]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def package_diff(a: Iterable[Package], b: Iterable[Package]) -> PackageDiff:
    """Packages by manager and name: only in A, only in B, or at other versions."""
    old, new = _versions(a), _versions(b)
    return PackageDiff(
        added=tuple(PackageVersion(*k, new[k]) for k in sorted(new.keys() - old.keys())),
        removed=tuple(PackageVersion(*k, old[k]) for k in sorted(old.keys() - new.keys())),
        changed=tuple(
            PackageChange(*k, old[k], new[k])
            for k in sorted(old.keys() & new.keys())
            if old[k] != new[k]
        ),
    )


def _versions(packages: Iterable[Package]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], set[str]] = {}
    for p in packages:
        found.setdefault((p.manager, p.name), set()).add(p.version)
    return {k: ", ".join(sorted(v)) for k, v in found.items()}


def _warnings(a: Snapshot, b: Snapshot, kept: KeptFiles | None) -> tuple[str, ...]:
    out = [f"A: {w}" for w in a.warnings] + [f"B: {w}" for w in b.warnings]
    if kept is not None and not kept.matches:
        out.append(
            f"{kept.report} is the report of another run: it does not name A "
            f"({a.side.id[:19]}) as source and B ({b.side.id[:19]}) as result"
        )
    return tuple(out)
