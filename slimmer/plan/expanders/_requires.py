"""The static require closure shared by the script runtimes (Ruby, PHP, Perl).

Each runtime says how to find the names a source file loads (`specs_of`) and
where one name resolves (`resolve`); this module follows them from the kept
sources to a fixed point, as the runtime would on any path, and gives every
file found a reason naming the source and the statement that asked for it.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from slimmer.image.paths import is_file, read_text, tree_memo
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.keep import Addition, ProfileContext, Reason, argv_words, kept_named

SpecsOf = Callable[[str], Iterable[str]]
"""A source's text -> the literal names it requires (in the runtime's own notation)."""
Resolve = Callable[[str, str], list[str]]
"""(name, requiring file) -> the image files that name loads (first match wins)."""
Describe = Callable[[str], str]
"""A name as a reason shows it (a runtime's computed names say what they stand for)."""


def _quoted(spec: str) -> str:
    return repr(spec)


@dataclass(frozen=True)
class Runtime:
    """One scripting runtime's require rules, for `require_closure`."""

    key: str  # memo prefix, unique per runtime and search path
    verb: str  # how a statement is described: "requires", "includes", "uses"
    sources: tuple[str, ...]  # suffixes of files scanned for requires
    specs_of: SpecsOf
    resolve: Resolve
    describe: Describe = _quoted


def interpreter_kept(ctx: ProfileContext, interpreter: re.Pattern[str]) -> bool:
    """Whether a file named like the runtime's interpreter is kept (an expander of
    a runtime adds nothing to an image that does not keep the runtime)."""
    return any(is_file(ctx.tree, p) for p in kept_named(ctx, interpreter))


def script_roots(
    ctx: ProfileContext, suffixes: tuple[str, ...], follow: Callable[[str], bool] = bool
) -> list[str]:
    """Where a closure starts: the scripts the command line names (from the
    WorkingDir), then the kept sources with one of `suffixes` that `follow` accepts."""
    wd = ctx.config.working_dir or "/"
    scripts = [posixpath.join(wd, w) for w in argv_words(ctx) if w.endswith(suffixes)]
    return [*scripts, *(p for p in ctx.kept if p.endswith(suffixes) and follow(p))]


def search_key(runtime: str, dirs: Iterable[str]) -> str:
    """A memo key prefix for `runtime` with this search path (`Runtime.key`)."""
    return f"{runtime}-" + hashlib.sha256("\0".join(dirs).encode()).hexdigest()[:12]


def _specs(tree: TreeView, path: str, specs_of: SpecsOf) -> tuple[str, ...]:
    return tuple(sorted(set(specs_of(read_text(tree, path) or ""))))


def require_closure(
    ctx: ProfileContext, runtime: Runtime, roots: Iterable[str], profile_name: str
) -> list[Addition]:
    """Files `roots` (and what they load, recursively) require, not kept yet.

    A file already kept is followed but not added again. Native extensions found
    (`.so`) are kept with their ELF closure."""
    tree = ctx.tree
    queue = sorted({r for r in roots if is_file(tree, r)}, reverse=True)
    seen, out = set(queue), []
    while queue:
        source = queue.pop()
        key = f"{runtime.key}:specs:{source}"
        specs = tree_memo(tree, key, partial(_specs, tree, source, runtime.specs_of))
        for spec in specs:
            found = tree_memo(
                tree,
                f"{runtime.key}:res:{source}\0{spec}",
                partial(runtime.resolve, spec, source),
            )
            reason = Reason(
                "profile",
                f"{source} {runtime.verb} {runtime.describe(spec)} (found statically: "
                f"loads on paths the probes did not take)",
                profile_name,
            )
            for path in found:
                if path in seen:
                    continue
                seen.add(path)
                out.append(Addition(path, reason))
                if path.endswith(runtime.sources):
                    queue.append(path)
    return not_kept(out, ctx.kept)
