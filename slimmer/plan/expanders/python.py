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
from slimmer.plan.keep import (
    Addition,
    ProfileContext,
    Reason,
    Result,
    argv_words,
    kept_named,
    subtree,
)
from slimmer.plan.pyimports import ModuleFinder, imported_names, module_of, search_path

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


def _parse_imports(tree: TreeView, path: str, module: str, is_package: bool) -> frozenset[str]:
    try:
        source = tree.read_bytes(path)
    except (LookupError, FileNotFoundError, OSError):
        return frozenset()
    return imported_names(source, module, is_package)


def _imports_of(
    tree: TreeView, path: str, dirs: tuple[str, ...]
) -> tuple[frozenset[str], tuple[str, ...]]:
    """What `path` imports, and where to look (a file outside sys.path is a script:
    its own directory comes first)."""
    found = module_of(path, dirs)
    module, is_package = found if found is not None else ("__main__", False)
    search = dirs if found is not None else (posixpath.dirname(path), *dirs)
    key = f"pyimports:{path}\0{module}\0{is_package}"
    names = tree_memo(tree, key, partial(_parse_imports, tree, path, module, is_package))
    return names, search


def python_imports(ctx: ProfileContext, profile_name: str) -> Result:
    """Modules the kept Python code imports anywhere (in functions, in try/except),
    resolved against the image's sys.path, followed to a fixed point."""
    dirs = python_path(ctx)
    if not dirs:
        return [], []
    finder = tree_memo(ctx.tree, "py-finder", partial(ModuleFinder, ctx.tree))
    queue = _python_sources(ctx)[::-1]
    seen = set(queue)
    out: list[Addition] = []
    while queue:
        source = queue.pop()
        names, search = _imports_of(ctx.tree, source, dirs)
        for name in sorted(names):
            for path in finder.find(name, search):
                if path in seen:
                    continue
                seen.add(path)
                out.append(
                    Addition(
                        path,
                        Reason(
                            "profile",
                            f"{source} imports {name} (found statically: imports on "
                            f"paths the probes did not take)",
                            profile_name,
                        ),
                    )
                )
                if path.endswith(".py"):
                    queue.append(path)
    return not_kept(out, ctx.kept), []


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
