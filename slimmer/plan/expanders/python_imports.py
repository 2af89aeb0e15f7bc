"""Where the modules a Python source file imports are in an image: names (found by
`slimmer.plan.expanders.python_source`) resolved against the image's tree the way CPython's
`PathFinder`/`FileFinder` do, and the search path of its interpreter."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from slimmer.model import TreeView
from slimmer.plan.expanders.python_source import IDENT


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
    or module, the portions together are a namespace package.

    A source's compiled `__pycache__/<name>.*.pyc` is not among the files: the
    source imports without it (CPython compiles it, and writes the cache or, in
    a directory it cannot write, keeps the code in memory), so only the caches
    the trace saw read are worth their bytes.
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
        else the source, else a sourceless `.pyc`."""
        entries = self._index(directory).get(name, [])
        ext = tuple(f"{directory}/{e}" for e in sorted(entries) if e.endswith(".so"))
        if ext:
            return ext
        if f"{name}.py" in entries:
            return (f"{directory}/{name}.py",)
        if f"{name}.pyc" in entries:
            return (f"{directory}/{name}.pyc",)
        return ()

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


# -- modules inside the interpreter ------------------------------------------------------

# Frozen into every CPython 3 interpreter (importlib's bootstrap; zipimport since 3.8):
# sys.meta_path's FrozenImporter serves them before any file is looked at, and
# importlib/__init__.py installs the frozen pair as importlib._bootstrap(_external),
# so those files are read only by an interpreter without them.
BOOTSTRAP_FROZEN = frozenset(
    {
        "_frozen_importlib",
        "_frozen_importlib_external",
        "importlib._bootstrap",
        "importlib._bootstrap_external",
        "zipimport",
    }
)
# The start-up modules CPython 3.11+ freezes (Python/frozen.c, `stdlib_modules`), used
# unless `-X frozen_modules=off` (or PYTHON_FROZEN_MODULES=off, 3.13): their .py and
# .pyc files are never read (os.py stays: getpath finds the prefix by it).
STDLIB_FROZEN = frozenset(
    {
        "abc",
        "codecs",
        "io",
        "_collections_abc",
        "_sitebuiltins",
        "genericpath",
        "ntpath",
        "posixpath",
        "os",
        "site",
        "stat",
        "importlib.util",
        "importlib.machinery",
        "runpy",
    }
)
# Interpreters that freeze STDLIB_FROZEN are those with the option to turn it off.
_FROZEN_OPTION = b"frozen_modules"


def frozen_names(binary: bytes) -> frozenset[str]:
    """The modules frozen into an interpreter (or libpython) whose bytes are `binary`:
    the bootstrap set when its names are there, STDLIB_FROZEN too when the
    `frozen_modules` option is."""
    out: set[str] = set()
    if b"\0_frozen_importlib_external\0" in binary:
        out |= BOOTSTRAP_FROZEN
    if _FROZEN_OPTION in binary:
        out |= STDLIB_FROZEN
    return frozenset(out)


# Python modules the C code of CPython's extension modules imports (PyImport_Import*),
# which no `.py` file shows. An extension module in a file is followed as a source
# with these imports; a built-in one through `builtin_c_imports` (Debian builds
# _pickle, _datetime, _elementtree, array and pyexpat into the interpreter, python.org
# builds have them in lib-dynload: the same C code).
# Measured, not recalled: on Debian 12's CPython 3.11.2 (python3.11 3.11.2-6+deb12u9,
# the fixture images), each lib-dynload module and each built-in one was imported
# alone in a fresh `python3 -I -S` with builtins.__import__ hooked. A call whose
# innermost Python frame is importlib's `_call_with_frames_removed` comes from the C
# code of the module that frame creates or executes. The hook also sees modules
# start-up had already imported (codecs, io), which a diff of sys.modules misses; the
# diff against sys.modules at start found nothing the hook did not. Imports a function
# makes when called (`call:` below) were measured by calling it with the hook on.
# Left out: names chosen at run time (the modules a pickle names), sys.modules
# look-ups that never import (_json's json.decoder) and CPython's test modules
# (_testbuffer imports struct). No other module imported anything, at init or in the
# calls tried.
EXTENSION_IMPORTS: dict[str, tuple[str, ...]] = {
    "_asyncio": (
        "asyncio",
        "asyncio.events",
        "asyncio.base_futures",
        "asyncio.exceptions",
        "asyncio.base_tasks",
        "asyncio.coroutines",
        "traceback",
        "weakref",
    ),
    "_curses": ("curses",),  # call: initscr, resizeterm (LINES, COLS)
    "_curses_panel": ("_curses",),
    "_datetime": ("time", "_strptime"),  # call: strftime, timetuple; strptime
    "_decimal": ("collections", "collections.abc", "numbers"),
    "_elementtree": ("copy", "pyexpat", "xml.etree.ElementPath"),
    "_pickle": ("codecs", "copyreg", "_compat_pickle", "functools"),
    "_sqlite3": ("functools", "sqlite3.dump"),  # call: Connection.iterdump
    "_ssl": ("_socket",),
    "_zoneinfo": ("datetime", "io", "weakref", "zoneinfo._common", "zoneinfo._tzpath"),
    "array": ("collections.abc",),
    # call: getcodec, which encodings/<codec>.py runs at import; the CJK codecs share maps
    "_codecs_cn": ("_multibytecodec",),
    "_codecs_hk": ("_codecs_tw", "_multibytecodec"),
    "_codecs_iso2022": ("_codecs_cn", "_codecs_jp", "_codecs_kr", "_multibytecodec"),
    "_codecs_jp": ("_multibytecodec",),
    "_codecs_kr": ("_multibytecodec",),
    "_codecs_tw": ("_multibytecodec",),
}


def builtin_c_imports(names: Iterable[str], builtins: frozenset[str]) -> dict[str, str]:
    """What the C code of the built-in modules among `names` imports (EXTENSION_IMPORTS),
    each mapped to the first built-in module, by name, that imports it."""
    out: dict[str, str] = {}
    for name in sorted(set(names) & builtins):
        for imported in EXTENSION_IMPORTS.get(name, ()):
            out.setdefault(imported, name)
    return out
