"""Where the modules a Python source file imports are in an image: names (found by
`slimmer.plan.pysource`) resolved against the image's tree the way CPython's
`PathFinder`/`FileFinder` do, and the search path of its interpreter."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from slimmer.model import TreeView
from slimmer.plan.pysource import IDENT


def module_of(path: str, dirs: Sequence[str]) -> tuple[str, bool] | None:
    """(dotted name, is a package's `__init__`) of the source file `path` under one
    of the search `dirs` (the deepest that holds it), or None."""
    best = max((d for d in dirs if path.startswith(d.rstrip("/") + "/")), key=len, default=None)
    if best is None:
        return None
    rel = path[len(best.rstrip("/")) + 1 :]
    parts = rel.split("/")
    parts[-1] = parts[-1].split(".")[0]
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    if not parts or not all(IDENT.match(p) for p in parts):
        return None
    return ".".join(parts), is_package


# -- resolution against an image tree ------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """Where a name resolved: `files` to keep, `search` to look for its submodules."""

    files: tuple[str, ...] = ()
    search: tuple[str, ...] = ()


@dataclass
class ModuleFinder:
    """Finds module files in a tree the way CPython's PathFinder/FileFinder do.

    In each directory of the search path, in order: a directory `name` with an
    `__init__` is a regular package and wins; a directory without one is a
    namespace portion, remembered; else `name.<ext suffix>.so`, `name.so`,
    `name.py`, `name.pyc` is a module and wins. When no directory has a package
    or module, the portions together are a namespace package. Compiled
    `__pycache__/<name>.*.pyc` files are kept beside the sources found.
    """

    tree: TreeView
    _dirs: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    _found: dict[tuple[str, tuple[str, ...]], Found] = field(default_factory=dict)

    def find(self, dotted: str, path: Sequence[str]) -> tuple[str, ...]:
        """The files that importing `dotted` loads (its packages' `__init__` too)."""
        files: list[str] = []
        search = tuple(path)
        for part in dotted.split("."):
            found = self._find_in(part, search)
            if not found.files and not found.search:
                return ()
            files.extend(found.files)
            search = found.search
        return tuple(files)

    def _find_in(self, name: str, search: tuple[str, ...]) -> Found:
        key = (name, search)
        if key not in self._found:
            self._found[key] = self._lookup(name, search)
        return self._found[key]

    def _lookup(self, name: str, search: tuple[str, ...]) -> Found:
        portions: list[str] = []
        for directory in search:
            names = self._index(directory).get(name, [])
            if name in names:  # a directory (or a file without a suffix)
                pkg = f"{directory}/{name}"
                init = self._module_file(pkg, "__init__")
                if init:
                    return Found(init, (pkg,))
                if self._is_dir(pkg):
                    portions.append(pkg)
            files = self._module_file(directory, name)
            if files:
                return Found(files)
        return Found((), tuple(portions))

    def _module_file(self, directory: str, name: str) -> tuple[str, ...]:
        """Extension modules (every ABI variant: the image's interpreter picks one),
        else the source with its compiled caches, else a sourceless `.pyc`."""
        entries = self._index(directory).get(name, [])
        ext = tuple(f"{directory}/{e}" for e in sorted(entries) if e.endswith(".so"))
        if ext:
            return ext
        if f"{name}.py" in entries:
            return (f"{directory}/{name}.py", *self._pycache(directory, name))
        if f"{name}.pyc" in entries:
            return (f"{directory}/{name}.pyc",)
        return ()

    def _pycache(self, directory: str, name: str) -> list[str]:
        cache = f"{directory}/__pycache__"
        return [f"{cache}/{e}" for e in self._index(cache).get(name, []) if e.endswith(".pyc")]

    def _index(self, directory: str) -> dict[str, list[str]]:
        """Directory listing grouped by the part of each name before its first dot."""
        index = self._dirs.get(directory)
        if index is None:
            index = {}
            real = self.tree.resolve(directory).path
            for entry in self.tree.listdir(real):
                index.setdefault(entry.split(".")[0] if entry[:1] != "." else entry, []).append(
                    entry
                )
            self._dirs[directory] = index
        return index

    def _is_dir(self, path: str) -> bool:
        entry = self.tree.resolve(path).entry
        return entry is not None and entry.is_dir


def search_path(tree: TreeView, candidates: Iterable[str]) -> tuple[str, ...]:
    """The existing directories of `candidates`, real paths, in order, once each."""
    out: list[str] = []
    for path in candidates:
        res = tree.resolve(posixpath.normpath(path))
        if res.entry is not None and res.entry.is_dir and res.path not in out:
            out.append(res.path)
    return tuple(out)
