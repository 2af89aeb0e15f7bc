"""The Python interpreters of an image, for the Python expanders
(`slimmer.plan.expanders.python`): the sys.path they search, and the modules
built or frozen into them.

Read statically from the image tree (no interpreter is run) and memoised per tree.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from functools import partial

from slimmer.image.paths import is_file, is_system_dir, read_text, tree_memo
from slimmer.model import TreeView
from slimmer.plan.expanders.python_imports import STDLIB_FROZEN, frozen_names, search_path
from slimmer.plan.keep import ProfileContext, argv_words, kept_named

_INTERPRETER = re.compile(r"python3?(\.\d+)?\Z")
_VERSIONED = re.compile(r"python(3\.\d+)\Z")
_LIBPYTHON = re.compile(r"libpython3\.\d+\.so")
_PYINIT = re.compile(rb"PyInit_(\w+)\0")
_STDLIB = re.compile(r"/lib/python3\.\d+\Z")

# -- sys.path ---------------------------------------------------------------------------


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


# -- built-in and frozen modules -----------------------------------------------------------


def builtin_modules(ctx: ProfileContext) -> frozenset[str]:
    """Modules built into the kept interpreters or a kept libpython: the names of
    the `PyInit_<name>` functions in their inittab (read as strings from the file;
    an extension module in lib-dynload has its own, the interpreter none for it)."""
    return _interpreter_modules(ctx)[0]


def frozen_modules(ctx: ProfileContext) -> frozenset[str]:
    """Modules frozen into the kept interpreters or a kept libpython (see
    `python_imports.frozen_names`), less the start-up set when a command line says
    `-X frozen_modules=off` or the Env PYTHON_FROZEN_MODULES=off."""
    frozen = _interpreter_modules(ctx)[1]
    off = "frozen_modules=off" in argv_words(ctx)
    if off or ctx.config.env.get("PYTHON_FROZEN_MODULES") == "off":
        return frozen - STDLIB_FROZEN
    return frozen


def _interpreter_modules(ctx: ProfileContext) -> tuple[frozenset[str], frozenset[str]]:
    found = [*kept_named(ctx, _INTERPRETER), *kept_named(ctx, _LIBPYTHON)]
    binaries = sorted({ctx.tree.resolve(p).path for p in found if is_file(ctx.tree, p)})
    key = "python_interp:" + "\0".join(binaries)
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


def in_stdlib(path: str, dirs: Iterable[str]) -> bool:
    """Whether `path` is a file of the standard library: under a `lib/pythonX.Y` of
    `dirs` and not in its site-packages or dist-packages."""
    stdlib = (d for d in dirs if _STDLIB.search(d))
    return "-packages/" not in path and any(path.startswith(d + "/") for d in stdlib)
