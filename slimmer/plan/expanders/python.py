"""Expanders of Python: the modules kept Python code imports, and the distribution
metadata of the modules kept. The interpreters' sys.path and their built-in and
frozen modules are found by `python_interp`, the codecs looked up by name by `python_codecs`,
and the import closure walked by `python_closure`.

Each follows what the runtime would load from the kept code on any path, found
statically in the image (nothing is imported or run), to a fixed point within
one call. Files already kept are followed but not added again.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from functools import partial

from slimmer.image.paths import read_text, tree_memo
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.expanders.python_closure import ImportClosure, is_frozen
from slimmer.plan.expanders.python_codecs import codec_additions
from slimmer.plan.expanders.python_imports import ModuleFinder, module_of
from slimmer.plan.expanders.python_interp import builtin_modules, frozen_modules, python_path
from slimmer.plan.keep import Addition, ProfileContext, Reason, Result, argv_words, subtree

_PY_SCRIPT = re.compile(rb"\A#![^\n]*python")


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


def python_imports(ctx: ProfileContext, profile_name: str) -> Result:
    """Modules the kept Python code imports anywhere (in functions, in try/except),
    those the C code of the extension modules it imports imports (EXTENSION_IMPORTS),
    and the codecs of `encodings` it may look up (see `python_codecs`), resolved against
    the image's sys.path, followed to a fixed point.

    Left out: imports only in an imported module's `if __name__ == "__main__":`
    block, imports inside a standard library function no kept source names (see
    `python_closure`), TOOLING families no kept module belongs to, `except ImportError`
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
    closure = ImportClosure(ctx.tree, dirs, mains, finder, builtins, frozen, tooling, profile_name)
    out += closure.run([*sources, *(a.path for a in out)])
    return not_kept(out, ctx.kept), []


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
    return [Addition(p, why) for p in files if not is_frozen(p, dirs, frozen)]


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
