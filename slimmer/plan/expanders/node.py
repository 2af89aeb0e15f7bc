"""Expanders of Node.js: the modules kept JavaScript requires or imports, found
statically in the image (nothing is run) and followed to a fixed point within one
call, as Node would resolve them on any path. Files already kept are followed but
not added again."""

from __future__ import annotations

import posixpath
import re
from functools import partial

from slimmer.image.paths import (
    compile_glob,
    expand,
    is_dir,
    is_file,
    read_text,
    tree_memo,
    walk_below,
)
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.keep import Addition, ProfileContext, Reason, Result

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
    return not_kept(out, ctx.kept), []
