"""Expanders of Python: the modules kept Python code imports, and the distribution
metadata of the modules kept.

Each follows what the runtime would load from the kept code on any path, found
statically in the image (nothing is imported or run), to a fixed point within
one call. Files already kept are followed but not added again.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from functools import partial

from slimmer.image.paths import (
    is_file,
    is_system_dir,
    read_text,
    tree_memo,
)
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.expanders.pycodecs import codec_additions
from slimmer.plan.keep import (
    Addition,
    ProfileContext,
    Reason,
    Result,
    argv_words,
    kept_named,
    subtree,
)
from slimmer.plan.pyimports import (
    BOOTSTRAP_FROZEN,
    EXTENSION_IMPORTS,
    STDLIB_FROZEN,
    ModuleFinder,
    builtin_c_imports,
    frozen_names,
    module_of,
    search_path,
)
from slimmer.plan.pysource import Imports, parse_imports

# -- Python ---------------------------------------------------------------------------

_INTERPRETER = re.compile(r"python3?(\.\d+)?\Z")
_VERSIONED = re.compile(r"python(3\.\d+)\Z")
_PY_SCRIPT = re.compile(rb"\A#![^\n]*python")


def python_path(ctx: ProfileContext) -> tuple[str, ...]:
    """The image's sys.path for the interpreters kept or run, real existing dirs.

    In order: the directories of `.py` scripts in the config (sys.path[0]),
    PYTHONPATH, the WorkingDir unless a system dir (`python -m`), then per
    interpreter `<prefix>/lib/pythonX.Y` and its lib-dynload, Debian's
    `/usr/local/lib/pythonX.Y/dist-packages` and `/usr/lib/python3/dist-packages`,
    upstream's `<prefix>/lib/pythonX.Y/site-packages`, a venv's site-packages
    (a `pyvenv.cfg` above the interpreter's bin/), and directories `.pth` files add.
    """
    interpreters = tuple(p for p in kept_named(ctx, _INTERPRETER) if is_file(ctx.tree, p))
    if not interpreters:
        return ()
    wd = ctx.config.working_dir or "/"
    first = [posixpath.dirname(posixpath.join(wd, w)) for w in argv_words(ctx) if w.endswith(".py")]
    first += [p for p in ctx.config.env.get("PYTHONPATH", "").split(":") if p.startswith("/")]
    if not is_system_dir(wd):
        first.append(wd)
    key = "pypath:" + "\0".join([*first, "", *interpreters])
    return tree_memo(ctx.tree, key, partial(_python_path, ctx.tree, first, interpreters))


def _python_path(tree: TreeView, first: list[str], interpreters: Iterable[str]) -> tuple[str, ...]:
    dirs = [*first]
    for named in interpreters:
        dirs += _interpreter_dirs(tree, named)
    found = list(search_path(tree, dirs))
    for d in [d for d in found if d.endswith("-packages")]:
        found += [p for p in search_path(tree, _pth_dirs(tree, d)) if p not in found]
    return tuple(found)


def _interpreter_dirs(tree: TreeView, named: str) -> list[str]:
    real = tree.resolve(named).path
    prefix = posixpath.dirname(posixpath.dirname(real))
    m = _VERSIONED.search(real)
    versions = (
        [m.group(1)]
        if m
        else sorted(
            n[6:]
            for n in tree.listdir(tree.resolve(f"{prefix}/lib").path)
            if re.fullmatch(r"python3\.\d+", n)
        )
    )
    venv = posixpath.dirname(posixpath.dirname(named))
    out = []
    for v in versions:
        lib = f"{prefix}/lib/python{v}"
        out += [
            lib,
            f"{lib}/lib-dynload",
            f"/usr/local/lib/python{v}/dist-packages",
            "/usr/lib/python3/dist-packages",
            f"/usr/lib/python{v}/dist-packages",
            f"{lib}/site-packages",
        ]
        if is_file(tree, f"{venv}/pyvenv.cfg"):
            out.append(f"{venv}/lib/python{v}/site-packages")
    return out


def _pth_dirs(tree: TreeView, site: str) -> list[str]:
    """Directories `.pth` files in `site` add (lines that are not comments or imports)."""
    out = []
    for name in tree.listdir(site):
        text = read_text(tree, f"{site}/{name}") if name.endswith(".pth") else None
        for line in (text or "").splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "import ", "import\t")):
                out.append(posixpath.normpath(posixpath.join(site, line)))
    return out


def _python_sources(ctx: ProfileContext) -> list[str]:
    """Kept `.py` files, and kept executable scripts whose `#!` line runs python."""
    out = set()
    for path in ctx.kept:
        entry = ctx.tree.get(path)
        if entry is None or not entry.is_regular or entry.is_elf:
            continue
        if path.endswith(".py") or (
            entry.mode & 0o111
            and "." not in path.rpartition("/")[2]
            and _is_python_script(ctx.tree, path)
        ):
            out.add(path)
    return sorted(out)


def _is_python_script(tree: TreeView, path: str) -> bool:
    def make() -> bool:
        try:
            return bool(_PY_SCRIPT.match(tree.read_bytes(path, 128)))
        except (LookupError, FileNotFoundError, OSError):
            return False

    return tree_memo(tree, "pyscript:" + path, make)


# Tooling, by family: the interactive help (`help()` imports pydoc, which reads
# pydoc_data), packaging and build tools, the IDE and Tk, 2to3, CPython's own test
# suite, the debugger (`breakpoint()` imports pdb) and doctest, the interactive
# prompt's line editing (site.py imports readline for `python3 -i`). Library code imports
# them on paths a service does not take (a `help()`, an install-time entry point, a
# self-test), so a family is followed only when the trace saw one of its modules used.
TOOLING: dict[str, str] = {
    "pydoc": "help",
    "pydoc_data": "help",
    "setuptools": "packaging",
    "pkg_resources": "packaging",
    "distutils": "packaging",
    "_distutils_hack": "packaging",
    "ensurepip": "packaging",
    "pip": "packaging",
    "idlelib": "tk",
    "tkinter": "tk",
    "turtle": "tk",
    "turtledemo": "tk",
    "lib2to3": "2to3",
    "test": "cpython-tests",
    "doctest": "debugging",
    "pdb": "debugging",
    "readline": "interactive",
    "rlcompleter": "interactive",
}


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
    key = f"pyimports:{path}\0{module}\0{is_package}\0{main}"
    names = tree_memo(tree, key, partial(_parse_imports, tree, path, module, is_package, main))
    return names, search


_LIBPYTHON = re.compile(r"libpython3\.\d+\.so")
_PYINIT = re.compile(rb"PyInit_(\w+)\0")


def builtin_modules(ctx: ProfileContext) -> frozenset[str]:
    """Modules built into the kept interpreters or a kept libpython: the names of
    the `PyInit_<name>` functions in their inittab (read as strings from the file;
    an extension module in lib-dynload has its own, the interpreter none for it)."""
    return _interpreter_modules(ctx)[0]


def frozen_modules(ctx: ProfileContext) -> frozenset[str]:
    """Modules frozen into the kept interpreters or a kept libpython (see
    `pyimports.frozen_names`), less the start-up set when a command line says
    `-X frozen_modules=off` or the Env PYTHON_FROZEN_MODULES=off."""
    frozen = _interpreter_modules(ctx)[1]
    off = "frozen_modules=off" in argv_words(ctx)
    if off or ctx.config.env.get("PYTHON_FROZEN_MODULES") == "off":
        return frozen - STDLIB_FROZEN
    return frozen


def _interpreter_modules(ctx: ProfileContext) -> tuple[frozenset[str], frozenset[str]]:
    found = [*kept_named(ctx, _INTERPRETER), *kept_named(ctx, _LIBPYTHON)]
    binaries = sorted({ctx.tree.resolve(p).path for p in found if is_file(ctx.tree, p)})
    key = "pyinterp:" + "\0".join(binaries)
    return tree_memo(ctx.tree, key, partial(_scan_interpreters, ctx.tree, binaries))


def _scan_interpreters(
    tree: TreeView, binaries: Iterable[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """(built-in, frozen) module names of the interpreter binaries."""
    builtin: set[str] = set()
    frozen: set[str] = set()
    for path in binaries:
        try:
            data = tree.read_bytes(path)
        except (LookupError, FileNotFoundError, OSError):
            continue
        builtin.update(m.group(1).decode("ascii", "replace") for m in _PYINIT.finditer(data))
        frozen |= frozen_names(data)
    return frozenset(builtin), frozenset(frozen)


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


def main_programs(ctx: ProfileContext, sources: Iterable[str]) -> frozenset[str]:
    """Files and module names that run as `__main__`: the `.py` words and the
    `-m NAME` of the config's command lines, executed files, and kept scripts
    whose `#!` line runs python."""
    wd = ctx.config.working_dir or "/"
    words = argv_words(ctx)
    out = {posixpath.normpath(posixpath.join(wd, w)) for w in words if w.endswith(".py")}
    out.update(b for a, b in zip(words, words[1:], strict=False) if a == "-m")
    out.update(ctx.tree.resolve(p).path for p in ctx.executed)
    out.update(p for p in sources if not p.endswith(".py"))
    return frozenset(out)


def _tooling_left_out(ctx: ProfileContext, dirs: tuple[str, ...]) -> frozenset[str]:
    """The TOOLING top-level names not followed: those of families with no kept
    module (none traced, run or otherwise kept)."""
    used = set()
    for path in ctx.kept:
        found = module_of(path, dirs) if path.endswith((".py", ".pyc", ".so")) else None
        family = TOOLING.get(found[0].split(".")[0]) if found is not None else None
        if family is not None:
            used.add(family)
    return frozenset(name for name, family in TOOLING.items() if family not in used)


def _reason(source: str, name: str, path: str, profile_name: str) -> Reason:
    what = "an extension module" if path.endswith(".so") else "a module"
    return Reason(
        "profile",
        f"{source} imports {name} (found statically: imports on paths the probes "
        f"did not take; {what} found on the image's sys.path)",
        profile_name,
    )


def python_imports(ctx: ProfileContext, profile_name: str) -> Result:
    """Modules the kept Python code imports anywhere (in functions, in try/except),
    those the C code of the extension modules it imports imports (EXTENSION_IMPORTS),
    and the codecs of `encodings` it may look up (see `pycodecs`), resolved against
    the image's sys.path, followed to a fixed point.

    Left out: imports only in an imported module's `if __name__ == "__main__":`
    block, TOOLING families no kept module belongs to, `except ImportError`
    fallbacks of modules that are there (built in, frozen or a file), and the
    files of frozen modules. The imports of a frozen module are still followed,
    but for importlib's bootstrap (BOOTSTRAP_FROZEN), whose imports in functions
    serve the packages that call those functions (importlib.metadata imported by
    `find_distributions`, which only importlib.metadata calls; importlib.readers
    by `get_resource_reader`, which only importlib.resources calls). A source's
    `__pycache__` is not added (see `ModuleFinder`): the trace keeps the caches
    that were read.
    """
    dirs = python_path(ctx)
    if not dirs:
        return [], []
    finder = tree_memo(ctx.tree, "py-finder", partial(ModuleFinder, ctx.tree))
    sources = _python_sources(ctx)
    mains = main_programs(ctx, sources)
    tooling = _tooling_left_out(ctx, dirs)
    frozen = frozen_modules(ctx)
    builtins = builtin_modules(ctx)
    out = codec_additions(ctx, dirs, sources, profile_name)
    out += _startup(ctx, dirs, finder, frozen, profile_name)
    queue = sorted({*sources, *(a.path for a in out)})[::-1]
    seen = set(queue)
    while queue:
        source = queue.pop()
        imports, search = _imports_of(ctx.tree, source, dirs, mains)
        for name, what in _wanted(imports, search, finder, builtins, frozen, tooling):
            for path in finder.find(name, search):
                if path in seen:
                    continue
                seen.add(path)
                if not _is_frozen(path, dirs, frozen):
                    out.append(Addition(path, _reason(source, what, path, profile_name)))
                bootstrap = _is_frozen(path, dirs, frozen & BOOTSTRAP_FROZEN)
                if path.endswith(".so") or (path.endswith(".py") and not bootstrap):
                    queue.append(path)  # a frozen module's code imports the same
    return not_kept(out, ctx.kept), []


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
    (`pyimports.builtin_c_imports`). Names of a TOOLING family left out are dropped."""
    names = _needed(imports, search, finder, builtins | frozen)
    via = builtin_c_imports(names, builtins)
    out = {n: n for n in names if n.split(".")[0] not in tooling}
    for name, builtin in via.items():
        if name not in names and name.split(".")[0] not in tooling:
            out[name] = f"{builtin}, built in, whose C code imports {name},"
    return sorted(out.items())


def _startup(
    ctx: ProfileContext,
    dirs: tuple[str, ...],
    finder: ModuleFinder,
    frozen: frozenset[str],
    profile_name: str,
) -> list[Addition]:
    """The modules CPython imports at every start (`site`, and `_sitebuiltins` it
    imports), unless frozen into the interpreter (3.11+)."""
    why = Reason(
        "profile", "CPython imports it at start-up (a file in this interpreter)", profile_name
    )
    files = [p for name in ("site", "_sitebuiltins") for p in finder.find(name, dirs)]
    return [Addition(p, why) for p in files if not _is_frozen(p, dirs, frozen)]


def _is_frozen(path: str, dirs: tuple[str, ...], frozen: frozenset[str]) -> bool:
    """Whether `path` is the file of a module the interpreter has frozen in (its
    bytes are never read: FrozenImporter comes before the path finder)."""
    found = module_of(path, dirs)
    return found is not None and found[0] in frozen


def _provides(tree: TreeView, site: str, name: str) -> frozenset[str]:
    """Top-level import names a `*.dist-info`/`*.egg-info` provides: top_level.txt,
    else RECORD's first components, else the project name."""
    base = f"{site}/{name}"
    top = read_text(tree, f"{base}/top_level.txt")
    if top is not None:
        return frozenset(t.strip().lower() for t in top.splitlines() if t.strip())
    record = read_text(tree, f"{base}/RECORD") or ""
    firsts = {line.split(",")[0].split("/")[0] for line in record.splitlines() if line}
    tops = {
        f.split(".")[0].lower()
        for f in firsts
        if f
        and not f.startswith("..")
        and not f.endswith((".dist-info", ".data"))
        and f != "__pycache__"
    }
    project = name.split("-")[0].lower()
    return frozenset(tops or {project, project.replace(".", "_")})


def python_dist_info(ctx: ProfileContext, profile_name: str) -> Result:
    """The `*.dist-info`/`*.egg-info` of distributions with a kept module:
    importlib.metadata (entry points, versions) reads them at run time."""
    sites = [d for d in python_path(ctx) if d.endswith("-packages")]
    tops: dict[str, set[str]] = {d: set() for d in sites}
    for path in ctx.kept:
        for site in sites:
            if path.startswith(site + "/"):
                tops[site].add(path[len(site) + 1 :].split("/")[0].split(".")[0].lower())
    out: list[Addition] = []
    for site in sites:
        for name in ctx.tree.listdir(site):
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            provides = tree_memo(
                ctx.tree, f"pydist:{site}/{name}", partial(_provides, ctx.tree, site, name)
            )
            hit = sorted(provides & tops[site])
            if hit:
                reason = Reason(
                    "profile",
                    f"metadata of the distribution providing kept "
                    f"module {hit[0]} (importlib.metadata)",
                    profile_name,
                )
                out += subtree(ctx.tree, f"{site}/{name}", reason, closure=False)
    return not_kept(out, ctx.kept), []
