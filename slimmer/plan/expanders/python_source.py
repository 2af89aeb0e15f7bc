"""The modules a Python source file may import, found statically.

Nothing is imported or run: the source is parsed with `ast` (a regex scan when
it does not parse, e.g. Python 2 or a newer grammar than the host's).
`slimmer.plan.expanders.python_imports` resolves the names against an image's tree.

What counts as imported (every import anywhere in the file: in functions, in
`try`/`except ImportError`, under `if`):
- `import a.b.c` imports `a`, `a.b` and `a.b.c`;
- `from a.b import c` imports `a`, `a.b`, and `a.b.c` if that is a module
  (`c` may be a name defined in `a.b`; resolution decides);
- relative imports are made absolute from the module's package: in module
  `p.q.m`, `from . import x` is `p.q.x`, `from ..r import s` is `p.r` and `p.r.s`;
  in a package's `__init__`, the package is the module itself;
- `importlib.import_module("x")` and `__import__("x")` with a literal name.

Left out, as paths a Linux container never takes:
- the body of `if __name__ == "__main__":`, unless the file is the program
  (`python3 file.py`, `python3 -m module`, a package's `__main__`): an imported
  library's self-test or command-line block is not a path of the app; nor are
  its private (`_test`, `_main`) or `test` functions that only this block names
  (e.g. pickle's `_test()`, which imports doctest);
- the body of an `if` testing for another platform (`sys.platform == "win32"`,
  `os.name == "nt"`, `sys.platform.startswith("darwin")`); its `else` is walked.

Imports in an `except ImportError:` handler of a `try` that imports are
fallbacks (`Fallback`): the caller keeps them only when a tried module is missing.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_FROM = re.compile(rb"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+\(?([\w, \t]+)", re.M)
_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([\w., \t]+)", re.M)
_DYNAMIC = re.compile(rb"""\b(?:import_module|__import__)\(\s*(['"])([A-Za-z_][\w.]*)\1""")
IDENT = re.compile(r"^[A-Za-z_]\w*$")
MAX_PARSE = 4_000_000  # bytes; bigger sources (generated tables) get the line scan


def parser_fingerprint() -> str:
    """Names this version of `parse_imports` (the digest of this module's code): results
    kept by content digest (`slimmer.image.cache.ParsedCache`) are this parser's only."""
    return "imports-" + hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


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


@dataclass(frozen=True)
class Fallback:
    """`try: import <tried> / except ImportError: import <instead>`: the handler's
    imports run only when one of `tried` fails. Each tried import is (module,
    names imported from it): `import a.b` is ("a.b", ()), `from . import x` in
    package `p` is ("p", ("x",)); a name may be a submodule or an attribute."""

    tried: frozenset[tuple[str, tuple[str, ...]]]
    instead: frozenset[str]


@dataclass(frozen=True)
class Imports:
    """What a source may import: `names` on any path but a fallback handler's,
    and the `fallbacks`, kept only when their `tried` modules cannot be found.

    `lazy` are the imports made inside a function, by the name of the innermost
    function (`def popen(...): import subprocess` is ("popen", {"subprocess"})),
    which run only when that function is called. How the source names functions,
    but in an `if __name__ == "__main__":` block of a module not run as the
    program: `mentions`, the names any module's function may go by (attribute
    names, names imported `from` a module, and every name of a source that imports
    `*`), and `own`, its bare names (its own functions, or built-ins). `names`
    includes the lazy imports: a caller may tell them apart or not."""

    names: frozenset[str]
    fallbacks: tuple[Fallback, ...] = ()
    lazy: tuple[tuple[str, frozenset[str]], ...] = ()
    mentions: frozenset[str] = frozenset()
    own: frozenset[str] = frozenset()

    def every(self) -> frozenset[str]:
        return self.names.union(*(f.instead for f in self.fallbacks))

    def eager(self) -> frozenset[str]:
        """`names` less those imported only inside functions."""
        return self.names - frozenset().union(*(n for _f, n in self.lazy))


def imported_names(
    source: bytes | str, module: str, is_package: bool, main: bool = False
) -> frozenset[str]:
    """Absolute names of the modules `source` (module `module`) may import,
    fallbacks included (see `parse_imports`)."""
    return parse_imports(source, module, is_package, main).every()


def parse_imports(
    source: bytes | str, module: str, is_package: bool, main: bool = False
) -> Imports:
    """The modules `source` (module `module`) may import.

    `main` says the module runs as `__main__` (so does a module named `__main__`
    or `pkg.__main__`): only then do its `if __name__ == "__main__":` blocks count.
    Imports in an `except ImportError`/`ModuleNotFoundError` handler are fallbacks.
    """
    main = main or module.rpartition(".")[2] == "__main__"
    package = module if is_package else module.rpartition(".")[0]
    raw = source if isinstance(source, bytes) else source.encode()
    if len(raw) > MAX_PARSE:
        return Imports(_scan(raw, package))
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Imports(_scan(raw, package))
    body = tree.body if main else _without_main_only(tree.body)
    live = {id(n) for n in body if main or not (isinstance(n, ast.If) and is_main_guard(n.test))}
    attrs, bare, functions_in = _survey(body, live)
    owner = _innermost_functions(functions_in)
    top: set[str] = set()
    lazy: dict[str, set[str]] = {}
    fallbacks = []
    for node in _statements(body, main, skip_fallbacks=True):
        _add_import(
            node, package, lazy.setdefault(owner[id(node)], set()) if id(node) in owner else top
        )
        if isinstance(node, (ast.Try, ast.TryStar)):
            fallbacks += _fallbacks(node, main, package)
    eager = _valid(top, raw)
    functions = [(f, _valid(n, b"") - eager) for f, n in sorted(lazy.items())]
    functions = [(f, n) for f, n in functions if n]
    names = eager.union(*(n for _f, n in functions))
    return Imports(names, tuple(fallbacks), tuple(functions), attrs, bare)


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _survey(
    body: list[ast.stmt], live: set[int]
) -> tuple[frozenset[str], frozenset[str], list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    """One walk of `body`: (attribute and `from`-imported names, bare names) that
    the statements whose id() is in `live` mention (with a `from x import *`, the
    bare names count as the former too), and every function definition, outer ones
    before the ones inside them."""
    attrs: set[str] = set()
    bare: set[str] = set()
    star = False
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    for top in body:
        counts = id(top) in live
        for node in ast.walk(top):
            if isinstance(node, _DEFS):
                functions.append(node)
            if not counts:
                continue
            if isinstance(node, ast.Name):
                bare.add(node.id)
            elif isinstance(node, ast.Attribute):
                attrs.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                attrs.update(a.name for a in node.names)
                star = star or any(a.name == "*" for a in node.names)
    return frozenset(attrs | bare if star else attrs), frozenset(bare), functions


def _innermost_functions(
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef],
) -> dict[int, str]:
    """id() of each import statement inside one of `functions` (outer ones first) ->
    the innermost function's name (inner ones overwrite their outer ones)."""
    out: dict[int, str] = {}
    for node in functions:
        for stmt in _statements(node.body, True):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                out[id(stmt)] = node.name
    return out


def _add_import(node: ast.stmt, package: str, out: set[str]) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            out.update(_with_parents(alias.name))
    elif isinstance(node, ast.ImportFrom):
        _from_import(node.module or "", node.level, [a.name for a in node.names], package, out)


_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError"})


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in _IMPORT_ERRORS for k in kinds)


def _fallbacks(node: ast.Try | ast.TryStar, main: bool, package: str) -> list[Fallback]:
    """The `except ImportError` handlers of `node` whose `try` imports something."""
    tried: set[tuple[str, tuple[str, ...]]] = set()
    for stmt in _statements(node.body, main):
        if isinstance(stmt, ast.Import):
            tried.update((a.name, ()) for a in stmt.names)
        elif isinstance(stmt, ast.ImportFrom):
            base = absolute_name(stmt.module or "", stmt.level, package)
            names = tuple(sorted(a.name for a in stmt.names if a.name != "*"))
            tried.update([(base, names)] if base else [])
    out = []
    for handler in node.handlers:
        if tried and _catches_import_error(handler):
            instead: set[str] = set()
            for stmt in _statements(handler.body, main):
                _add_import(stmt, package, instead)
            out.append(Fallback(frozenset(tried), frozenset(instead)))
    return out


def _statements(
    body: list[ast.stmt], main: bool, skip_fallbacks: bool = False
) -> Iterator[ast.stmt]:
    """Every statement, nested ones too: imports are statements, so only statement
    lists (bodies, else/finally blocks, handlers, match cases) are walked, never
    expressions, which is most of a module's nodes. Unless `main`, the body of an
    `if __name__ == "__main__":` is skipped (its `else` is walked); with
    `skip_fallbacks`, so are `except ImportError` handlers of a `try` that imports."""
    todo = list(reversed(body))
    while todo:
        node = todo.pop()
        yield node
        skip_body = isinstance(node, ast.If) and (
            (not main and is_main_guard(node.test)) or is_other_platform(node.test)
        )
        imports = (
            skip_fallbacks and isinstance(node, (ast.Try, ast.TryStar)) and _imports_in(node.body)
        )
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            if skip_body and name == "body":
                continue
            children = getattr(node, name, None)
            if isinstance(children, list):
                for child in reversed(children):
                    if isinstance(child, ast.stmt):
                        todo.append(child)
                    elif isinstance(child, ast.ExceptHandler):
                        if not (imports and _catches_import_error(child)):
                            todo.extend(reversed(child.body))
                    elif isinstance(child, ast.match_case):
                        todo.extend(reversed(child.body))


def _imports_in(body: list[ast.stmt]) -> bool:
    return any(isinstance(s, (ast.Import, ast.ImportFrom)) for s in _statements(body, True))


def _without_main_only(body: list[ast.stmt]) -> list[ast.stmt]:
    """`body` less its private or `test` functions that only `__main__` blocks name,
    directly or through other such functions (random's `_test` calls
    `_test_generator`, which imports statistics)."""
    guards = [n for n in body if isinstance(n, ast.If) and is_main_guard(n.test)]
    if not guards:
        return body
    defs = {
        n.name: n
        for n in body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (n.name.startswith("_") or n.name == "test")
    }
    refs = {id(n): _names_in(n) for n in body}
    reached = set().union(*(refs[id(g)] for g in guards)) & defs.keys()
    while True:
        dropped = _unnamed_elsewhere(body, guards, defs, reached, refs)
        more = set().union(*(refs[id(defs[d])] for d in dropped)) & defs.keys() - reached
        if not more:
            return [n for n in body if not _is_def_in(n, defs, dropped)]
        reached |= more


def _unnamed_elsewhere(
    body: list[ast.stmt],
    guards: list[ast.If],
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
    reached: set[str],
    refs: dict[int, set[str]],
) -> set[str]:
    """The `reached` functions no statement names but the guards and each other."""
    dropped = set(reached)
    while True:
        live = [n for n in body if n not in guards and not _is_def_in(n, defs, dropped)]
        named = dropped & set().union(*(refs[id(n)] for n in live))
        if not named:
            return dropped
        dropped -= named


def _is_def_in(
    node: ast.stmt, defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef], names: set[str]
) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
        node.name in names and defs.get(node.name) is node
    )


def _names_in(node: ast.AST) -> set[str]:
    """Every name and attribute name `node` mentions."""
    out = set()
    for x in ast.walk(node):
        if isinstance(x, ast.Name):
            out.add(x.id)
        elif isinstance(x, ast.Attribute):
            out.add(x.attr)
    return out


_OTHER_PLATFORMS = frozenset({"win32", "cygwin", "darwin", "nt", "java", "emscripten", "wasi"})


def is_other_platform(test: ast.expr) -> bool:
    """`sys.platform == "win32"`, `os.name == "nt"`, `sys.platform.startswith("win")`
    (and the like for cygwin, darwin, emscripten): never true in a Linux container."""
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute):
        target, args = test.func.value, test.args
        if test.func.attr != "startswith" or len(args) != 1:
            return False
        value = args[0].value if isinstance(args[0], ast.Constant) else None
        return (
            _is_platform(target) and isinstance(value, str) and value in ("win", "darwin", "cygwin")
        )
    sides = _equality_sides(test)
    if sides is None:
        return False
    left, right = sides
    for attr, const in ((left, right), (right, left)):
        if _is_platform(attr) and isinstance(const, ast.Constant):
            return const.value in _OTHER_PLATFORMS
    return False


def _equality_sides(test: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    """The two sides of a single `a == b` comparison, or None for any other test."""
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and len(test.comparators) == 1
    ):
        return test.left, test.comparators[0]
    return None


def _is_platform(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and (node.value.id, node.attr) in (("sys", "platform"), ("os", "name"))
    )


def is_main_guard(test: ast.expr) -> bool:
    """`__name__ == "__main__"` (either way round)."""
    sides = _equality_sides(test)
    if sides is None:
        return False
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


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
    return frozenset(n for n in names if all(IDENT.match(p) for p in n.split(".")))
