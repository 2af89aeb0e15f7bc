"""The modules a Python source file may import, found statically, and where they are.

Nothing is imported or run: the source is parsed with `ast` (a regex scan when
it does not parse, e.g. Python 2 or a newer grammar than the host's), and names
are resolved against an image's tree the way CPython's `PathFinder` does.

What counts as imported (every import anywhere in the file: in functions, in
`try`/`except ImportError`, under `if`):
- `import a.b.c` imports `a`, `a.b` and `a.b.c`;
- `from a.b import c` imports `a`, `a.b`, and `a.b.c` if that is a module
  (`c` may be a name defined in `a.b`; resolution decides);
- relative imports are made absolute from the module's package: in module
  `p.q.m`, `from . import x` is `p.q.x`, `from ..r import s` is `p.r` and `p.r.s`;
  in a package's `__init__`, the package is the module itself;
- `importlib.import_module("x")` and `__import__("x")` with a literal name.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from slimmer.model import TreeView

_FROM = re.compile(rb"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+\(?([\w, \t]+)", re.M)
_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([\w., \t]+)", re.M)
_DYNAMIC = re.compile(rb"""\b(?:import_module|__import__)\(\s*(['"])([A-Za-z_][\w.]*)\1""")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
MAX_PARSE = 4_000_000  # bytes; bigger sources (generated tables) get the line scan


def absolute_name(name: str, level: int, package: str) -> str | None:
    """`from <level dots><name> import ...` in `package`, as an absolute name.

    None when the dots climb above the top-level package.
    """
    if level == 0:
        return name or None
    parts = package.split(".") if package else []
    if level - 1 >= len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_names(source: bytes | str, module: str, is_package: bool) -> frozenset[str]:
    """Absolute names of the modules `source` (module `module`) may import."""
    package = module if is_package else module.rpartition(".")[0]
    raw = source if isinstance(source, bytes) else source.encode()
    if len(raw) > MAX_PARSE:
        return _scan(raw, package)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _scan(raw, package)
    out: set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            _from_import(node.module or "", node.level, [a.name for a in node.names], package, out)
    return _valid(out, raw)


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones too: imports are statements, so only statement
    lists (bodies, else/finally blocks, handlers, match cases) are walked, never
    expressions, which is most of a module's nodes."""
    todo = list(reversed(body))
    while todo:
        node = todo.pop()
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                for child in reversed(children):
                    if isinstance(child, ast.stmt):
                        todo.append(child)
                    elif isinstance(child, (ast.ExceptHandler, ast.match_case)):
                        todo.extend(reversed(child.body))


def _from_import(name: str, level: int, names: Sequence[str], package: str, out: set[str]) -> None:
    base = absolute_name(name, level, package)
    if base is None:
        return
    out.update(_with_parents(base))
    out.update(f"{base}.{n}" for n in names if n != "*")


def _scan(source: bytes, package: str) -> frozenset[str]:
    """The fallback for sources `ast` cannot parse: line-start import statements."""
    out: set[str] = set()
    for m in _FROM.finditer(source):
        names = [n.strip() for n in m.group(3).decode("ascii", "replace").split(",")]
        _from_import(
            m.group(2).decode("ascii", "replace"),
            len(m.group(1)),
            [n.split()[0] for n in names if n],
            package,
            out,
        )
    for m in _IMPORT.finditer(source):
        for item in m.group(1).decode("ascii", "replace").split(","):
            words = item.split()
            if words:
                out.update(_with_parents(words[0]))
    return _valid(out, source)


def _valid(names: set[str], source: bytes) -> frozenset[str]:
    """`names` plus literal `import_module("x")`/`__import__("x")` names, keeping
    only well-formed dotted names."""
    for m in _DYNAMIC.finditer(source):
        names.update(_with_parents(m.group(2).decode("ascii")))
    return frozenset(n for n in names if all(_IDENT.match(p) for p in n.split(".")))


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
    if not parts or not all(_IDENT.match(p) for p in parts):
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
