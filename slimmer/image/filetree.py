"""Stack layer archives into one merged file tree, the way overlayfs shows it.

Rules, applied layer by layer (the OCI image spec's "Representing changes"):
1. An opaque whiteout `D/.wh..wh..opq` hides everything lower layers put under
   `D`; it is applied before any other change of the same layer.
2. A whiteout `D/.wh.NAME` deletes `D/NAME` and everything below it.
3. Every other member adds or replaces its path. A directory replacing a
   directory keeps the children; any other replacement drops the old subtree.
   A member below a path that a lower layer holds as a non-directory replaces
   that path with a directory (overlayfs: an upper directory hides a lower file
   or symlink).
4. A hardlink names an earlier member; it shares that member's bytes.

Member names are hostile: a `..` component is skipped with a warning, an
absolute name is taken relative to the root with a warning. Symlink targets are
kept as stored and only ever resolved inside the root (`..` at the root stays
at the root, as in a chroot).
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from slimmer.errors import ImageReadError
from slimmer.image.archive import LayerSource
from slimmer.image.store import ContentStore, Reader
from slimmer.model import (
    EntryType,
    FileEntry,
    ImageConfig,
    Layer,
    LayerMember,
    ResolvedPath,
    Warning_,
)

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_SYMLINKS = 40  # Linux's limit on symlinks followed in one lookup (ELOOP)
ELF_MAGIC = b"\x7fELF"

_TYPES = {
    tarfile.REGTYPE: EntryType.FILE,
    tarfile.AREGTYPE: EntryType.FILE,
    tarfile.CONTTYPE: EntryType.FILE,
    tarfile.DIRTYPE: EntryType.DIR,
    tarfile.SYMTYPE: EntryType.SYMLINK,
    tarfile.LNKTYPE: EntryType.HARDLINK,
    tarfile.CHRTYPE: EntryType.CHAR,
    tarfile.BLKTYPE: EntryType.BLOCK,
    tarfile.FIFOTYPE: EntryType.FIFO,
}

WantContent = Callable[[str], bool]


def keep_all(_: str) -> bool:
    return True


def keep_none(_: str) -> bool:
    return False


def clean_name(name: str) -> tuple[str | None, str]:
    """Normalise a member name to an absolute path; (None, why) when unsafe."""
    note = "absolute member name taken relative to the root" if name.startswith("/") else ""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "member name contains '..'; skipped"
    return "/" + "/".join(parts), note


def parent_of(path: str) -> str:
    return posixpath.dirname(path) or "/"


@dataclass
class LayerChanges:
    """What one layer archive says, in order, before it is applied."""

    index: int
    digest: str
    entries: list[FileEntry] = field(default_factory=list)
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    members: list[LayerMember] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    hardlinks: list[tuple[FileEntry, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(m.size for m in self.members)

    def warn(self, message: str) -> None:
        self.warnings.append(Warning_(f"layer {self.index + 1} ({self.digest[:19]})", message))


def read_layer(
    stream: IO[bytes],
    index: int,
    digest: str,
    store: ContentStore | None,
    want: WantContent,
    origin: tuple[Path, int] | None = None,
) -> LayerChanges:
    """Parse one layer tar stream into `LayerChanges`, keeping wanted bytes in `store`.
    `origin`: the file and offset where this very tar is stored plain, for a store
    that can keep a member's bytes as a span of that file instead of a copy."""
    changes = LayerChanges(index, digest)
    where = f"reading layer {index + 1} ({digest[:19]})"
    try:
        with tarfile.open(fileobj=stream, mode="r|", errors="surrogateescape") as tf:
            for info in stream_members(tf):
                read_member(info, tf.extractfile, changes, store, want, origin)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ImageReadError(f"{where}: {_tar_error(exc)}") from exc
    return changes


def stream_members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a stream-mode (`r|`) tar, one at a time. `tarfile` keeps every
    member it has read in `tf.members`; a stream is read once, so they are dropped as
    the next one is read, which keeps memory flat in the number of entries."""
    while (info := tf.next()) is not None:
        yield info
        tf.members.clear()  # type: ignore[attr-defined]  # untyped in typeshed


def _tar_error(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "unexpected end" in text or "truncated" in text:
        return "unexpected end of archive (truncated layer)"
    return text


def read_member(
    info: tarfile.TarInfo,
    data: Callable[[tarfile.TarInfo], Reader | None],
    changes: LayerChanges,
    store: ContentStore | None,
    want: WantContent,
    origin: tuple[Path, int] | None = None,
) -> None:
    """Add the member `info` of a layer tar to `changes`; `data(info)` opens its bytes
    (asked only of a regular file). `origin` as for `read_layer`."""
    path, note = clean_name(info.name)
    if path is None:
        changes.warn(f"{info.name!r}: {note}")
        return
    if note:
        changes.warn(f"{info.name!r}: {note}")
    if path == "/" and not info.isdir():
        changes.warn(f"{info.name!r}: a non-directory at the root; skipped")
        return
    if path != "/":
        changes.members.append(LayerMember(path, info.size, info.isdir()))
    base = posixpath.basename(path)
    if base == OPAQUE:
        changes.opaque.append(parent_of(path))
        return
    if base.startswith(WHITEOUT + WHITEOUT):
        return  # aufs bookkeeping (.wh..wh.plnk and friends): not content
    if base.startswith(WHITEOUT):
        changes.whiteouts.append(posixpath.join(parent_of(path), base[len(WHITEOUT) :]))
        return
    etype = _TYPES.get(info.type)
    if etype is None:
        changes.warn(f"{path!r}: unsupported member type {info.type!r}; skipped")
        return
    if etype in (EntryType.CHAR, EntryType.BLOCK):
        changes.warn(f"{path!r}: device node kept as metadata only")
    entry = entry_from_tar(info, path, etype, changes.index)
    if etype is EntryType.FILE:
        entry = _with_content(data(info), info, entry, store, want, origin)
    if etype is EntryType.HARDLINK:
        target, why = clean_name(info.linkname)
        if target is None:
            changes.warn(f"{path!r}: hardlink target {info.linkname!r}: {why}")
            return
        changes.hardlinks.append((entry, target))
    changes.entries.append(entry)


def entry_from_tar(info: tarfile.TarInfo, path: str, etype: EntryType, layer: int = 0) -> FileEntry:
    """The `FileEntry` a tar member stands for, at `path` (already made safe)."""
    xattrs = tuple(
        sorted(
            (k[len("SCHILY.xattr.") :], v)
            for k, v in (info.pax_headers or {}).items()
            if k.startswith("SCHILY.xattr.")
        )
    )
    return FileEntry(
        path=path,
        type=etype,
        size=info.size if etype is EntryType.FILE else 0,
        mode=info.mode & 0o7777,
        uid=info.uid,
        gid=info.gid,
        mtime=int(info.mtime),
        link=info.linkname if etype in (EntryType.SYMLINK, EntryType.HARDLINK) else "",
        xattrs=xattrs,
        layer=layer,
        devmajor=info.devmajor if etype in (EntryType.CHAR, EntryType.BLOCK) else 0,
        devminor=info.devminor if etype in (EntryType.CHAR, EntryType.BLOCK) else 0,
    )


def _with_content(
    fh: Reader | None,
    info: tarfile.TarInfo,
    entry: FileEntry,
    store: ContentStore | None,
    want: WantContent,
    origin: tuple[Path, int] | None = None,
) -> FileEntry:
    if fh is None:
        return entry
    head = fh.read(4)
    is_elf = head == ELF_MAGIC
    key = None
    if store is not None and want(entry.path):
        if origin is not None and not info.sparse:  # the store copies if it must
            where = (origin[0], origin[1] + info.offset_data)
            key, size = store.put_span(fh, head, *where)
        else:
            key, size = store.put_stream(fh, head)
        if size != info.size:
            raise EOFError("unexpected end of data")
    return replace(entry, content=key, is_elf=is_elf)


class FileTree:
    """An image's merged file tree: path -> FileEntry, with the root always a directory."""

    def __init__(self) -> None:
        root = FileEntry("/", EntryType.DIR, mode=0o755, implicit=True)
        self._entries: dict[str, FileEntry] = {"/": root}
        # directory -> its children's full paths (the entries' own strings, not a
        # second copy of each name), in insertion order
        self._children: dict[str, dict[str, None]] = {"/": {}}
        self.reclaimable_bytes = 0
        self.warnings: list[Warning_] = []
        self._store: ContentStore | None = None

    # -- building ---------------------------------------------------------------
    def apply(self, changes: LayerChanges) -> None:
        """Apply one layer's changes on top of the tree (rules 1-4 above)."""
        for d in changes.opaque:
            self._hide_below(d)
        for w in changes.whiteouts:
            if w in self._entries and w != "/":
                self._remove(w)
        links = {id(e): t for e, t in changes.hardlinks}
        for entry in changes.entries:
            if id(entry) in links:
                linked = self._link(entry, links[id(entry)], changes)
                if linked is None:
                    continue
                entry = linked
            self._add(entry, changes)
        self.warnings.extend(changes.warnings)

    def _link(self, entry: FileEntry, target: str, changes: LayerChanges) -> FileEntry | None:
        found = self._entries.get(target)
        if found is None or not found.is_regular:
            changes.warn(f"{entry.path!r}: hardlink to missing or non-file {target!r}; skipped")
            return None
        # A hardlink is the same inode: bytes and inode metadata come from its target.
        return replace(
            found,
            path=entry.path,
            type=EntryType.HARDLINK,
            link=found.link if found.type is EntryType.HARDLINK else target,
            layer=entry.layer,
        )

    def _hide_below(self, directory: str) -> None:
        for child in list(self._children.get(directory, {})):
            self._remove(child)

    def _remove(self, path: str) -> None:
        for child in list(self._children.get(path, {})):
            self._remove(child)
        entry = self._entries.pop(path)
        if entry.type is EntryType.FILE:
            self.reclaimable_bytes += entry.size
        self._children.pop(path, None)
        self._children[parent_of(path)].pop(path, None)

    def _add(self, entry: FileEntry, changes: LayerChanges) -> None:
        self._ensure_dir(parent_of(entry.path), changes.index)
        old = self._entries.get(entry.path)
        if old is not None:
            if old.layer == changes.index and not (old.is_dir and entry.is_dir):
                changes.warn(f"{entry.path!r}: duplicate member; the later one wins")
            if old.is_dir and entry.is_dir:
                self._entries[entry.path] = entry
                return
            self._remove(entry.path)
        self._entries[entry.path] = entry
        self._children[parent_of(entry.path)][entry.path] = None
        if entry.is_dir:
            self._children.setdefault(entry.path, {})

    def _ensure_dir(self, path: str, layer: int) -> None:
        old = self._entries.get(path)
        if old is not None and old.is_dir:
            return
        if path != "/":
            self._ensure_dir(parent_of(path), layer)
        if old is not None:
            self._remove(path)
        self._entries[path] = FileEntry(path, EntryType.DIR, mode=0o755, layer=layer, implicit=True)
        self._children[path] = {}
        self._children[parent_of(path)][path] = None

    def attach_store(self, store: ContentStore | None) -> None:
        self._store = store

    # -- reading (TreeView) ---------------------------------------------------------
    def get(self, path: str) -> FileEntry | None:
        return self._entries.get(path)

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def listdir(self, path: str) -> list[str]:
        return sorted(posixpath.basename(c) for c in self._children.get(path, {}))

    def walk(self, path: str = "/") -> Iterator[FileEntry]:
        """Entries under `path` (itself included), parents before children, sorted."""
        entry = self._entries.get(path)
        if entry is None:
            return
        yield entry
        for name in self.listdir(path):
            yield from self.walk(posixpath.join(path, name))

    def resolve(self, path: str, follow_last: bool = True) -> ResolvedPath:
        return resolve_in_root(self._entries.get, path, follow_last)

    def read_bytes(self, path: str, size: int = -1, offset: int = 0) -> bytes:
        """The bytes of the regular file at `path` (symlinks followed)."""
        res = self.resolve(path)
        entry = res.entry
        if entry is None or not entry.is_regular:
            raise FileNotFoundError(path)
        if entry.size == 0:
            return b""
        if entry.content is None or self._store is None:
            raise LookupError(f"{path}: bytes were not kept by the reader")
        return self._store.read(entry.content, size, offset)


def apply_layers(
    sources: Sequence[LayerSource],
    config: ImageConfig,
    store: ContentStore | None,
    want: WantContent,
    parsed: Callable[[LayerSource], LayerChanges | None] = lambda _: None,
) -> tuple[FileTree, tuple[Layer, ...]]:
    """Read and stack every layer in order; return the tree and the layer records.
    `parsed` gives the changes of a layer read already (`image.follow`), if any.

    Layers are matched to the config's non-empty history entries in order, as
    `docker history` and dive do; a missing entry gives an empty `created_by`.
    """
    tree = FileTree()
    history = [h for h in config.history if not h.empty_layer]
    layers = []
    for src in sources:
        changes = parsed(src)
        if changes is None:
            with src.open() as stream:
                changes = read_layer(stream, src.index, src.digest, store, want, src.origin)
        tree.apply(changes)
        hist = history[src.index] if src.index < len(history) else None
        layers.append(
            Layer(
                index=src.index,
                digest=src.digest,
                size=changes.size,
                created_by=hist.created_by if hist else "",
                comment=hist.comment if hist else "",
                members=tuple(changes.members),
                archive_bytes=src.stored_bytes,
            )
        )
    return tree, tuple(layers)


def resolve_in_root(
    get: Callable[[str], FileEntry | None], path: str, follow_last: bool = True
) -> ResolvedPath:
    """Resolve `path` inside a root whose entries `get` returns, like the kernel.

    A relative path is taken from the root. `..` at the root stays at the root.
    More than MAX_SYMLINKS links, or a non-directory used as a directory, ends
    the walk with `error` set. Every symlink crossed is listed in `chain`.
    """
    todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    cur: list[str] = []
    chain: list[str] = []
    while todo:
        name = todo.pop()
        if name == "..":
            if cur:
                cur.pop()
            continue
        here = "/" + "/".join([*cur, name])
        entry = get(here)
        if entry is None:
            rest = "/".join(reversed(todo))
            return ResolvedPath(here + ("/" + rest if rest else ""), tuple(chain), None)
        if entry.type is EntryType.SYMLINK and (todo or follow_last):
            if len(chain) >= MAX_SYMLINKS:
                return ResolvedPath(here, tuple(chain), None, "too many levels of symlinks")
            chain.append(here)
            if entry.link.startswith("/"):
                cur = []
            todo.extend(p for p in reversed(entry.link.split("/")) if p not in ("", "."))
            continue
        if todo and not entry.is_dir:
            return ResolvedPath(here, tuple(chain), None, "not a directory")
        cur.append(name)
    final = "/" + "/".join(cur)
    entry = get(final)
    # the tree's own string for the path: callers keep resolved paths by the thousand
    return ResolvedPath(entry.path if entry is not None else final, tuple(chain), entry)
