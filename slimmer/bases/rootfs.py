"""Assemble a flavour's file tree from unpacked packages and the recipe. Pure
(bytes go to and come from the given `ContentStore`).

Packages are laid down in the recipe's order, as distroless stacks its package
layers: a directory two packages ship keeps the metadata of the later one; a
path that two packages ship as anything but a directory is a conflict dpkg
would refuse, and so is a path below a non-directory. Then come the `status.d`
records, the CA bundle and the recipe's generated files and directories,
which replace what a package put at their path.

The tree is merged-/usr, as Debian 12 supports only that layout and its
debootstrap builds it: what a package ships under /bin, /sbin, /lib (and, on
amd64, /lib64: `DebianArch.merged_dirs`) goes under /usr, and those are
symlinks to usr/bin, usr/sbin, usr/lib (and usr/lib64). An app image built
from Debian 12 then has its libc, loader and shell at the very paths the base
has them, so the base's copies replace the app's path for path. A missing
parent directory is added as root-owned 0755 with mtime 0. Every other entry
keeps the mode, owner and mtime its package gives it, so the same packages
give the same tree.
"""

from __future__ import annotations

import posixpath
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace

from slimmer.bases import recipe
from slimmer.bases.arch import DebianArch
from slimmer.bases.control import status_text
from slimmer.bases.debfile import DebContents
from slimmer.bases.errors import DebianError
from slimmer.image.filetree import FileTree, LayerChanges
from slimmer.image.store import ContentStore
from slimmer.model import EntryType, FileEntry

STATUS_DIR = "/var/lib/dpkg/status.d"


def merged_usr(path: str, merged_dirs: Container[str]) -> str:
    """Where `path` lives in a merged-/usr tree whose root links `merged_dirs`
    into /usr: `/lib/x` is `/usr/lib/x`."""
    top = path.split("/", 2)[1] if path.startswith("/") else ""
    return "/usr" + path if top in merged_dirs else path


def _usr_links(merged_dirs: Iterable[str]) -> list[FileEntry]:
    names = tuple(merged_dirs)
    return [
        FileEntry(f"/{name}", EntryType.SYMLINK, mode=0o777, link=f"usr/{name}") for name in names
    ] + [FileEntry(f"/usr/{name}", EntryType.DIR, mode=0o755) for name in names]


@dataclass(frozen=True)
class Installed:
    """A package in a base, as its control file names it."""

    name: str
    version: str
    architecture: str


@dataclass(frozen=True)
class Rootfs:
    """A flavour's tree: `entries` sorted by path (the root itself not included),
    file bytes in the store the tree was assembled with."""

    flavour: str
    arch: DebianArch
    entries: tuple[FileEntry, ...]
    packages: tuple[Installed, ...]
    ca_version: str

    @property
    def content_bytes(self) -> int:
        """Bytes of the regular files (a hardlink counted once, as tar stores it)."""
        return sum(e.size for e in self.entries if e.type is EntryType.FILE)


def assemble(
    flavour: str, arch: DebianArch, debs: Mapping[str, DebContents], store: ContentStore
) -> Rootfs:
    """The `arch` tree of `flavour` from its unpacked packages (`debs`, by package
    name, holding every `recipe.downloads_of(flavour)`), with the recipe's extras."""
    tree: dict[str, FileEntry] = {}
    owners: dict[str, str] = {}
    installed = [debs[name] for name in recipe.packages_of(flavour)]
    for deb in installed:
        _install(tree, owners, deb, arch.merged_dirs)
    for entry in _usr_links(arch.merged_dirs):
        tree.setdefault(entry.path, entry)
    generated = [_generated(g, store) for g in recipe.generated()]
    replaced = {g.path for g in generated}
    ca = debs[recipe.CA_PACKAGE]
    status = status_files(installed, tree, replaced, store, arch.merged_dirs)
    for entry in [*status, *_ca_files(ca, store)]:
        tree[entry.path] = entry
    for entry in generated:
        tree[entry.path] = entry
    _add_parents(tree)
    entries = tuple(sorted(_linked(tree).values(), key=_path_bytes))
    packages = tuple(sorted((_installed(d) for d in installed), key=lambda p: p.name))
    return Rootfs(flavour, arch, entries, packages, ca.control.get("Version"))


def _install(
    tree: dict[str, FileEntry],
    owners: dict[str, str],
    deb: DebContents,
    merged_dirs: tuple[str, ...],
) -> None:
    for shipped in deb.entries:
        if shipped.path in ("/" + d for d in merged_dirs) and shipped.is_dir:
            continue  # the usr-merge symlink stands here
        hardlink = shipped.type is EntryType.HARDLINK
        link = merged_usr(shipped.link, merged_dirs) if hardlink else shipped.link
        entry = replace(shipped, path=merged_usr(shipped.path, merged_dirs), link=link)
        old = tree.get(entry.path)
        if old is not None and not (old.is_dir and entry.is_dir):
            raise DebianError(
                f"installing {deb.name}: {entry.path} is also in {owners[entry.path]}"
            )
        tree[entry.path] = entry
        owners[entry.path] = deb.name


def status_files(
    debs: Iterable[DebContents],
    tree: Mapping[str, FileEntry],
    replaced: Container[str],
    store: ContentStore,
    merged_dirs: Container[str],
) -> list[FileEntry]:
    """`status.d/<name>` and `status.d/<name>.md5sums` of each package; the md5sums
    list only the files of `tree` (merged-/usr over `merged_dirs`) that nothing in
    `replaced` overwrites."""
    out = []
    for deb in debs:
        out.append(
            _file(f"{STATUS_DIR}/{deb.name}", status_text(deb.control).encode(), 0o644, store)
        )
        kept = [
            f"{md5}  {name}\n"
            for md5, name in deb.md5sums
            if (path := merged_usr("/" + name, merged_dirs)) in tree and path not in replaced
        ]
        if kept:
            data = "".join(kept).encode()
            out.append(_file(f"{STATUS_DIR}/{deb.name}.md5sums", data, 0o644, store))
    return out


def _installed(deb: DebContents) -> Installed:
    return Installed(deb.name, deb.control.get("Version"), deb.control.get("Architecture"))


def _path_bytes(entry: FileEntry) -> bytes:
    return entry.path.encode("utf-8", "surrogateescape")


def _ca_files(ca: DebContents, store: ContentStore) -> list[FileEntry]:
    certs = [
        (e.path, store.read(e.content))
        for e in ca.entries
        if e.type is EntryType.FILE and e.path != recipe.CA_COPYRIGHT and e.content
    ]
    try:
        bundle = recipe.ca_bundle(certs)
    except ValueError as exc:
        raise DebianError(f"building the CA bundle from {recipe.CA_PACKAGE}: {exc}") from exc
    copyright_ = [e for e in ca.entries if e.path == recipe.CA_COPYRIGHT and e.is_regular]
    return [_file(recipe.CA_BUNDLE, bundle, 0o644, store), *copyright_]


def _generated(gen: recipe.RecipeEntry, store: ContentStore) -> FileEntry:
    if gen.data is None:
        return FileEntry(
            gen.path, EntryType.DIR, mode=gen.mode, uid=gen.uid, gid=gen.gid, mtime=gen.mtime
        )
    entry = _file(gen.path, gen.data, gen.mode, store, gen.mtime)
    return replace(entry, uid=gen.uid, gid=gen.gid)


def _file(path: str, data: bytes, mode: int, store: ContentStore, mtime: int = 0) -> FileEntry:
    key = store.put_bytes(data)
    return FileEntry(path, EntryType.FILE, size=len(data), mode=mode, mtime=mtime, content=key)


def _add_parents(tree: dict[str, FileEntry]) -> None:
    for path in sorted(tree):
        parent = posixpath.dirname(path)
        while parent != "/":
            found = tree.get(parent)
            if found is not None and not found.is_dir:
                raise DebianError(
                    f"assembling the base: {path} is below the non-directory {parent}"
                )
            if found is None:
                tree[parent] = FileEntry(parent, EntryType.DIR, mode=0o755)
            parent = posixpath.dirname(parent)


def _linked(tree: dict[str, FileEntry]) -> dict[str, FileEntry]:
    """Hardlinks carry their target's bytes and inode metadata, as `write_layer`
    expects of a hardlink group."""
    out = dict(tree)
    for path, entry in tree.items():
        if entry.type is not EntryType.HARDLINK:
            continue
        target = tree.get(entry.link)
        if target is None or target.type is not EntryType.FILE:
            raise DebianError(f"assembling the base: hardlink {path} to missing {entry.link}")
        out[path] = replace(target, path=path, type=EntryType.HARDLINK, link=entry.link)
    return out


def rootfs_tree(rootfs: Rootfs, store: ContentStore) -> FileTree:
    """`rootfs` as a `FileTree` (a `TreeView`) reading bytes from `store`."""
    tree = FileTree()
    tree.apply(LayerChanges(0, "", entries=list(rootfs.entries)))
    tree.attach_store(store)
    return tree
