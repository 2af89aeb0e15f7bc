"""Expanders of language runtimes and servers: Python imports and distribution
metadata, Node.js requires, nginx document roots.

Each follows what the runtime would load from the kept code on any path, found
statically in the image (nothing is imported or run), to a fixed point within
one call. Files already kept are followed but not added again.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from functools import partial

from slimmer.image.paths import (
    SYSTEM_DIRS,
    compile_glob,
    exists,
    expand,
    is_dir,
    is_file,
    is_system_dir,
    read_text,
    tree_memo,
    walk_below,
)
from slimmer.model import TreeView
from slimmer.plan.keep import (
    Addition,
    Expander,
    ProfileContext,
    Reason,
    Result,
    argv_words,
    kept_named,
    subtree,
)
from slimmer.plan.nginxconf import referenced_paths
from slimmer.plan.pyimports import ModuleFinder, imported_names, module_of, search_path

EXPANDERS: dict[str, Expander] = {}


def _expander(name: str) -> Callable[[Expander], Expander]:
    def register(fn: Expander) -> Expander:
        EXPANDERS[name] = fn
        return fn

    return register


def _new(additions: Iterable[Addition], kept: frozenset[str]) -> list[Addition]:
    return [a for a in additions if a.path not in kept]


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


@_expander("python-imports")
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
    return _new(out, ctx.kept), []


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


@_expander("python-dist-info")
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
    return _new(out, ctx.kept), []


# -- Node.js ---------------------------------------------------------------------------

_JS = (".js", ".mjs", ".cjs")
_SPECIFIERS = (
    re.compile(r"""\brequire\s*\(\s*(['"])([^'"\n]+)\1\s*\)"""),
    re.compile(r"""\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)"""),
    re.compile(r"""(?:^|[;}\s])(?:import|export)\s[^'";]*?\bfrom\s*(['"])([^'"\n]+)\1""", re.M),
    re.compile(r"""^\s*import\s*(['"])([^'"\n]+)\1""", re.M),
)
NODE_BUILTINS = frozenset(
    {
        "assert",
        "async_hooks",
        "buffer",
        "child_process",
        "cluster",
        "console",
        "constants",
        "crypto",
        "dgram",
        "diagnostics_channel",
        "dns",
        "domain",
        "events",
        "fs",
        "http",
        "http2",
        "https",
        "inspector",
        "module",
        "net",
        "os",
        "path",
        "perf_hooks",
        "process",
        "punycode",
        "querystring",
        "readline",
        "repl",
        "stream",
        "string_decoder",
        "sys",
        "test",
        "timers",
        "tls",
        "trace_events",
        "tty",
        "url",
        "util",
        "v8",
        "vm",
        "wasi",
        "worker_threads",
        "zlib",
    }
)
_NODE_FILE_SUFFIXES = ("", ".js", ".json", ".node", ".mjs", ".cjs")


def js_specifiers(source: str) -> frozenset[str]:
    """Module specifiers of `require('x')`, `import ... from 'x'`, `import('x')`."""
    return frozenset(m.group(2) for rx in _SPECIFIERS for m in rx.finditer(source))


def _specifiers_of(tree: TreeView, path: str) -> frozenset[str]:
    return js_specifiers(read_text(tree, path) or "")


def node_global_dirs(ctx: ProfileContext) -> list[str]:
    """Node's global folders: NODE_PATH, $HOME/.node_modules and .node_libraries, and
    the ones Debian's nodejs adds (/usr/lib/<triplet>/nodejs, /usr/share/nodejs,
    /usr/lib/nodejs)."""
    env = ctx.config.env
    home = env.get("HOME", "/root")
    dirs = [d for d in env.get("NODE_PATH", "").split(":") if d.startswith("/")]
    dirs += [f"{home}/.node_modules", f"{home}/.node_libraries"]
    dirs += list(expand(ctx.tree, compile_glob("/usr/lib/*/nodejs")))
    dirs += ["/usr/share/nodejs", "/usr/lib/nodejs", "/usr/local/lib/node", "/usr/lib/node"]
    return [d for d in dirs if is_dir(ctx.tree, d)]


def _node_file(tree: TreeView, base: str) -> list[str]:
    """LOAD_AS_FILE, then LOAD_AS_DIRECTORY (package.json main, index.*)."""
    for suffix in _NODE_FILE_SUFFIXES:
        if is_file(tree, base + suffix):
            return [base + suffix]
    if not is_dir(tree, base):
        return []
    out = [
        f"{base}/{n}"
        for n in ("package.json", "index.js", "index.json", "index.node")
        if is_file(tree, f"{base}/{n}")
    ]
    pkg = read_text(tree, f"{base}/package.json") or ""
    m = re.search(r'"main"\s*:\s*"([^"]+)"', pkg)
    if m:
        out += _node_file(tree, posixpath.normpath(posixpath.join(base, m.group(1))))
    return out


def _node_package(tree: TreeView, name: str, start: str, global_dirs: tuple[str, ...]) -> str:
    """The directory of package `name` as required from directory `start`, or ""."""
    here = start
    while True:
        if posixpath.basename(here) != "node_modules" and is_dir(
            tree, cand := posixpath.join(here, "node_modules", name)
        ):
            return cand
        if here == "/":
            break
        here = posixpath.dirname(here)
    return next((f"{g}/{name}" for g in global_dirs if is_dir(tree, f"{g}/{name}")), "")


def node_resolve(
    tree: TreeView, spec: str, source: str, global_dirs: tuple[str, ...]
) -> tuple[list[str], str]:
    """(files, package directory kept whole or "") that `spec` required from `source` loads."""
    first = spec.split("/")[0]
    if spec.startswith("node:") or first in NODE_BUILTINS:
        return [], ""
    start = posixpath.dirname(source)
    if spec.startswith(("./", "../", "/")) or spec in (".", ".."):
        return _node_file(tree, posixpath.normpath(posixpath.join(start, spec))), ""
    name = "/".join(spec.split("/")[:2]) if spec.startswith("@") else first
    return [], _node_package(tree, name, start, global_dirs)


@_expander("node-requires")
def node_requires(ctx: ProfileContext, profile_name: str) -> Result:
    """Modules the kept JavaScript requires or imports, found with a regex scan: a
    relative file as Node resolves it, a package (node_modules up the tree, then
    the global folders) whole; followed to a fixed point."""
    tree, global_dirs = ctx.tree, tuple(node_global_dirs(ctx))
    queue = sorted((p for p in ctx.kept if p.endswith(_JS) and is_file(tree, p)), reverse=True)
    seen, out = set(queue), []
    while queue:
        source = queue.pop()
        specs = tree_memo(tree, "jsreq:" + source, partial(_specifiers_of, tree, source))
        for spec in sorted(specs):
            files, package = tree_memo(
                tree,
                f"jsres:{posixpath.dirname(source)}\0{spec}",
                partial(node_resolve, tree, spec, source, global_dirs),
            )
            reason = Reason(
                "profile",
                f"{source} requires {spec!r} (found statically: "
                f"requires on paths the probes did not take)",
                profile_name,
            )
            found = [*files, *((package, *walk_below(tree, package)) if package else ())]
            for path in found:
                if path not in seen:
                    seen.add(path)
                    out.append(Addition(path, reason))
                    if path.endswith(_JS) and is_file(tree, path):
                        queue.append(path)
    return _new(out, ctx.kept), []


# -- nginx ---------------------------------------------------------------------------

NGINX_PREFIXES = ("/usr/share/nginx", "/etc/nginx")


def nginx_main_configs(ctx: ProfileContext) -> list[str]:
    """The `-c FILE` of the config's command line, else /etc/nginx/nginx.conf."""
    words = argv_words(ctx)
    named = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-c"]
    named = [posixpath.join(NGINX_PREFIXES[0], n) if not n.startswith("/") else n for n in named]
    return sorted(set(named)) or ["/etc/nginx/nginx.conf"]


def _nginx_glob(tree: TreeView, pattern: str) -> list[str]:
    try:
        return list(expand(tree, compile_glob(pattern)))
    except ValueError:
        return []


@_expander("nginx-roots")
def nginx_roots(ctx: ProfileContext, profile_name: str) -> Result:
    """Every `root`/`alias` tree of the nginx configuration (with its includes)
    whole, and the files it names (certificates, keys, htpasswd, modules)."""
    tree = ctx.tree
    prefixes = tuple(p for p in NGINX_PREFIXES if is_dir(tree, p))
    out: list[Addition] = []
    for main in nginx_main_configs(ctx):
        found = referenced_paths(
            main, partial(read_text, tree), partial(_nginx_glob, tree), prefixes
        )
        for item in found:
            reason = Reason(
                "profile",
                f"{item.directive} {item.path} in {item.source}: nginx "
                f"serves or reads it on requests no probe made",
                profile_name,
            )
            if item.tree and item.path not in SYSTEM_DIRS and is_dir(tree, item.path):
                out += subtree(tree, item.path, reason, closure=False)
            elif not item.tree and exists(tree, item.path):
                out.append(Addition(item.path, reason))
    return _new(out, ctx.kept), []
