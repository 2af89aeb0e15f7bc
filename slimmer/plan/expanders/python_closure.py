"""The import closure of kept Python code, for `python-imports`
(`slimmer.plan.expanders.python`): what the sources import, resolved against the
image's sys.path and followed to a fixed point.

An import inside a function of the standard library runs only when that function
is called, so it waits until some kept source names the function (os's `popen`
imports subprocess; `shutil.unpack_archive` reaches zipfile through
`_unpack_zipfile`, named in shutil's format table). A name is a call site as far
as a static reader can tell: an attribute, or a name imported `from` the module,
in any kept source, or a bare name in the module itself (see `python_source.Imports`),
but in a library's `if __name__ == "__main__":` block. A dunder is always called
(the runtime calls it). The app's and its packages' functions are not waited on:
their imports are followed at once, as frameworks call them by name strings.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from slimmer.image.paths import content_memo
from slimmer.model import TreeView
from slimmer.plan.expanders.python_imports import (
    BOOTSTRAP_FROZEN,
    EXTENSION_IMPORTS,
    ModuleFinder,
    builtin_c_imports,
    module_of,
)
from slimmer.plan.expanders.python_interp import in_stdlib
from slimmer.plan.expanders.python_source import Imports, parse_imports
from slimmer.plan.keep import Addition, Reason


class _Waiting(NamedTuple):
    """Imports inside `function` of `source`, waiting for the function to be named."""

    function: str
    source: str
    imports: Imports
    search: tuple[str, ...]
    own: frozenset[str]  # the bare names of `source`: its own functions called


@dataclass
class ImportClosure:
    """The walk: sources queued, files found, imports waiting for their function.

    `mains` are the files and module names run as `__main__`; `builtins` and
    `frozen` the modules of the interpreters (see `python_interp`); `tooling` the
    top-level names not followed (see `python.TOOLING`)."""

    tree: TreeView
    dirs: tuple[str, ...]
    mains: frozenset[str]
    finder: ModuleFinder
    builtins: frozenset[str]
    frozen: frozenset[str]
    tooling: frozenset[str]
    profile_name: str
    out: list[Addition] = field(default_factory=list, init=False)
    _queue: list[str] = field(default_factory=list, init=False)
    _seen: set[str] = field(default_factory=set, init=False)
    _mentioned: set[str] = field(default_factory=set, init=False)
    _waiting: list[_Waiting] = field(default_factory=list, init=False)

    def run(self, start: Iterable[str]) -> list[Addition]:
        """The files `start` (sources already kept or added) reaches, each with its
        reason; frozen modules are followed but not added."""
        self._queue = sorted(set(start))[::-1]
        self._seen = set(self._queue)
        while self._queue or self._wake():
            if self._queue:
                self._step(self._queue.pop())
        return self.out

    def _step(self, source: str) -> None:
        imports, search = _imports_of(self.tree, source, self.dirs, self.mains)
        self._mentioned |= imports.mentions
        if in_stdlib(source, self.dirs):
            self._waiting += [
                _Waiting(f, source, Imports(n), search, imports.own) for f, n in imports.lazy
            ]
            imports = Imports(imports.eager(), imports.fallbacks)
        self._follow(source, imports, search, "")

    def _wake(self) -> bool:
        """Follow the waiting imports of the functions now named; False when none."""
        called = [_called(w.function, self._mentioned, w.own) for w in self._waiting]
        woken = [w for w, c in zip(self._waiting, called, strict=True) if c]
        self._waiting = [w for w, c in zip(self._waiting, called, strict=True) if not c]
        for w in woken:
            via = f" in {w.function}(), a function kept code names,"
            self._follow(w.source, w.imports, w.search, via)
        return bool(woken)

    def _follow(self, source: str, imports: Imports, search: tuple[str, ...], via: str) -> None:
        wanted = _wanted(imports, search, self.finder, self.builtins, self.frozen, self.tooling)
        for name, what in wanted:
            for path in [p for p in self.finder.find(name, search) if p not in self._seen]:
                self._seen.add(path)
                if not is_frozen(path, self.dirs, self.frozen):
                    why = _reason(source, what + via, path, self.profile_name)
                    self.out.append(Addition(path, why))
                bootstrap = is_frozen(path, self.dirs, self.frozen & BOOTSTRAP_FROZEN)
                if path.endswith(".so") or (path.endswith(".py") and not bootstrap):
                    self._queue.append(path)  # a frozen module's code imports the same


def _parse_imports(tree: TreeView, path: str, module: str, is_package: bool, main: bool) -> Imports:
    try:
        source = tree.read_bytes(path)
    except (LookupError, FileNotFoundError, OSError):
        return Imports(frozenset())
    return parse_imports(source, module, is_package, main)


def _imports_of(
    tree: TreeView, path: str, dirs: tuple[str, ...], mains: frozenset[str]
) -> tuple[Imports, tuple[str, ...]]:
    """What `path` imports, and where to look (a file outside sys.path is a script:
    its own directory comes first). `mains` are the files and module names run as
    `__main__`, whose `if __name__ == "__main__":` blocks count. An extension
    module imports what EXTENSION_IMPORTS says its C code does."""
    found = module_of(path, dirs)
    module, is_package = found if found is not None else ("__main__", False)
    if path.endswith(".so"):  # an extension module: what its C code imports
        return Imports(frozenset(EXTENSION_IMPORTS.get(module, ()))), dirs
    main = path in mains or module in mains
    search = dirs if found is not None else (posixpath.dirname(path), *dirs)
    key = f"python_imports:{module}\0{is_package}\0{main}"
    names = content_memo(
        tree, path, key, partial(_parse_imports, tree, path, module, is_package, main)
    )
    return names, search


def _needed(
    imports: Imports, search: tuple[str, ...], finder: ModuleFinder, builtins: frozenset[str]
) -> frozenset[str]:
    """`imports.names`, and each fallback's names when one of the modules it stands
    in for is neither built in nor found (`try: from _decimal import *` / `except
    ImportError: from _pydecimal import *` keeps _pydecimal only without _decimal)."""
    out = set(imports.names)
    for fallback in imports.fallbacks:
        if not all(_resolves(m, names, search, finder, builtins) for m, names in fallback.tried):
            out |= fallback.instead
    return frozenset(out)


def _resolves(
    module: str,
    names: tuple[str, ...],
    search: tuple[str, ...],
    finder: ModuleFinder,
    builtins: frozenset[str],
) -> bool:
    """Whether importing `module` (and `names` from it) finds what it asks for: a
    built-in or a file; from a package, every name must be a submodule (an
    attribute of its `__init__` cannot be told from a missing one)."""
    if module in builtins:
        return True
    files = finder.find(module, search)
    if not files:
        return False
    if not files[-1].rpartition("/")[2].startswith("__init__."):
        return True
    return all(finder.find(f"{module}.{n}", search) for n in names)


def _called(function: str, mentioned: set[str], own: frozenset[str]) -> bool:
    """Whether code may call `function`: a dunder (the runtime calls it), a bare
    name of its own module, or a name by which any kept source may reach another
    module's function (`mentioned`: `os.popen`, `from os import popen`)."""
    dunder = function.startswith("__") and function.endswith("__")
    return dunder or function in own or function in mentioned


def _wanted(
    imports: Imports,
    search: tuple[str, ...],
    finder: ModuleFinder,
    builtins: frozenset[str],
    frozen: frozenset[str],
    tooling: frozenset[str],
) -> list[tuple[str, str]]:
    """The names to find for `imports` (see `_needed`), each with how the source
    imports it: by name, or through the C code of a built-in module it imports
    (`python_imports.builtin_c_imports`). Names of a TOOLING family left out are dropped."""
    names = _needed(imports, search, finder, builtins | frozen)
    via = builtin_c_imports(names, builtins)
    out = {n: n for n in names if n.split(".")[0] not in tooling}
    for name, builtin in via.items():
        if name not in names and name.split(".")[0] not in tooling:
            out[name] = f"{builtin}, built in, whose C code imports {name},"
    return sorted(out.items())


def _reason(source: str, name: str, path: str, profile_name: str) -> Reason:
    what = "an extension module" if path.endswith(".so") else "a module"
    return Reason(
        "profile",
        f"{source} imports {name} (found statically: imports on paths the probes "
        f"did not take; {what} found on the image's sys.path)",
        profile_name,
    )


def is_frozen(path: str, dirs: tuple[str, ...], frozen: frozenset[str]) -> bool:
    """Whether `path` is the file of a module the interpreter has frozen in (its
    bytes are never read: FrozenImporter comes before the path finder)."""
    found = module_of(path, dirs)
    return found is not None and found[0] in frozen
