"""The ELF shared libraries a base provides, to choose the smallest base that
covers an app's dependencies.

A library counts as provided when glibc's loader would find it by name without
an `ld.so.cache` (distroless runs no ldconfig, so none is there): a name in one
of the base architecture's search directories (`DebianArch.search_dirs`:
glibc's built-in path, the two multiarch directories, then `/lib`, `/usr/lib`;
on amd64 also `/lib64`, where the program interpreter `ld-linux-x86-64.so.2`
lives). The name may be a symlink (`libssl.so.3`) or a file; it must resolve,
inside the root, to a regular ELF file (the reader's `is_elf`). Works on any
`TreeView`: a tree `rootfs.rootfs_tree` assembled, or an image read back (a
real `gcr.io/distroless` base included).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from slimmer.elf.parse import parse_elf_at
from slimmer.model import TreeView


@dataclass(frozen=True)
class Library:
    """One loadable name: `name` as a `DT_NEEDED` entry would say it, `path`
    where it is found, `target` the file it resolves to, and that file's
    `DT_SONAME` ("" when it has none or could not be read)."""

    name: str
    path: str
    target: str
    soname: str


def provided_libraries(tree: TreeView, dirs: Iterable[str]) -> tuple[Library, ...]:
    """Every shared-library name in `dirs` of `tree`, sorted by path."""
    found = {lib.path: lib for d in dirs for lib in _in_dir(tree, d)}
    return tuple(found[p] for p in sorted(found))


def _in_dir(tree: TreeView, directory: str) -> Iterator[Library]:
    real = tree.resolve(directory)
    if real.entry is None or not real.entry.is_dir:
        return
    for name in tree.listdir(real.path):
        if ".so" not in name:
            continue
        path = posixpath.join(directory, name)
        lib = _library(tree, path, posixpath.join(real.path, name))
        if lib is not None:
            yield lib


def _library(tree: TreeView, path: str, real_path: str) -> Library | None:
    res = tree.resolve(real_path)
    entry = res.entry
    if entry is None or not entry.is_regular or not entry.is_elf:
        return None
    return Library(posixpath.basename(path), path, res.path, _soname(tree, res.path))


def _soname(tree: TreeView, path: str) -> str:
    """DT_SONAME of the ELF file at `path`; "" when it has none or its bytes were
    not kept by the reader."""
    try:
        info = parse_elf_at(lambda offset, size: tree.read_bytes(path, size, offset))
    except (LookupError, OSError):
        return ""
    return info.soname or ""


def missing_names(libraries: Iterable[Library], needed: Iterable[str]) -> tuple[str, ...]:
    """The names in `needed` (DT_NEEDED entries) that no library in `libraries`
    provides, sorted: an empty answer means the base covers them."""
    have = {lib.name for lib in libraries}
    return tuple(sorted(set(needed) - have))
