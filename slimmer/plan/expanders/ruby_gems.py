"""Ruby gems as RubyGems finds and activates them, read from the image.

A gem directory (an entry of `Gem.path`) holds `specifications/<gem>.gemspec`,
`gems/<gem>/` and `extensions/<platform>/<abi>/<gem>/`. A gem's `require_paths`
join `$LOAD_PATH`; RubyGems reads a gem's spec (and those of its runtime
dependencies) to activate it, and refuses an extension gem without its
`gem.build_complete` marker. Only the specs of gems in use are kept: a spec
names its own files, so other gems' specs are not read.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from slimmer.image.paths import compile_glob, expand, is_dir, read_text
from slimmer.model import TreeView
from slimmer.plan.keep import Addition, ProfileContext, Reason

# Gem directories (Gem.path): each holds specifications/, gems/ and extensions/.
GEM_DIR_GLOBS = (
    "/var/lib/gems/[0-9]*",
    "/usr/local/lib/ruby/gems/[0-9]*",
    "/usr/lib/ruby/gems/[0-9]*",
    "/usr/lib/*/ruby/gems/[0-9]*",
    "/usr/share/rubygems-integration/*",
    "/usr/lib/*/rubygems-integration/[0-9]*",
)
_DEPENDENCY = re.compile(r"add_(?:runtime_)?dependency\s*\(?\s*(?:%q<([^>]+)>|['\"]([^'\"]+)['\"])")


def gemspec_require_paths(text: str) -> list[str]:
    """A gemspec's `require_paths` (`["lib"]` when it does not say)."""
    m = re.search(r"\.require_paths\s*=\s*\[([^\]]*)\]", text)
    if not m:
        return ["lib"]
    return re.findall(r"""['"]([^'"]+)['"]""", m.group(1)) or ["lib"]


def gemspec_dependencies(text: str) -> list[str]:
    """The names of a gemspec's runtime dependencies (activated with the gem)."""
    return [a or b for a, b in _DEPENDENCY.findall(text)]


def gem_dirs(tree: TreeView, homes: Iterable[str] = ()) -> list[str]:
    """The gem directories that exist: `homes` (GEM_PATH, GEM_HOME) first."""
    found = (d for g in GEM_DIR_GLOBS for d in expand(tree, compile_glob(g)))
    return list(dict.fromkeys(d for d in [*homes, *found] if is_dir(tree, d)))


def gem_paths(tree: TreeView, gem_dir: str) -> list[str]:
    """The require paths and extension directories of the gems installed in `gem_dir`."""
    out: list[str] = []
    for spec in _spec_files(tree, gem_dir):
        full = posixpath.basename(spec)[: -len(".gemspec")]
        for rp in gemspec_require_paths(read_text(tree, spec) or ""):
            out.append(rp if rp.startswith("/") else f"{gem_dir}/gems/{full}/{rp}")
        out += expand(tree, compile_glob(f"{gem_dir}/extensions/*/*/{full}"))
    return [d for d in out if is_dir(tree, d)]


def in_gem_dir(tree: TreeView, directory: str) -> bool:
    """Whether `directory` lies inside one of the image's gem directories."""
    return any(directory.startswith(g + "/") for g in gem_dirs(tree))


def gem_specs(ctx: ProfileContext, code: Iterable[str], profile_name: str) -> list[Addition]:
    """The specification (and `gem.build_complete` markers) of each installed gem
    with a file in `code`, and of the gems it depends on: RubyGems reads a gem's
    spec to activate it on a require, and refuses an extension gem without its
    marker. Other gems' specs are not read (a spec names its own files)."""
    tree = ctx.tree
    homes = [p for p in ctx.config.env.get("GEM_HOME", "").split(":") if p.startswith("/")]
    out: list[Addition] = []
    for gem_dir in gem_dirs(tree, homes):
        specs = {posixpath.basename(p)[: -len(".gemspec")]: p for p in _spec_files(tree, gem_dir)}
        for full, because in sorted(_gems_in_use(tree, gem_dir, specs, code).items()):
            reason = Reason("profile", f"RubyGems activates gem {full}: {because}", profile_name)
            marks = expand(
                tree, compile_glob(f"{gem_dir}/extensions/*/*/{full}/gem.build_complete")
            )
            out += [Addition(p, reason, False) for p in (specs[full], *marks)]
    return out


def _gems_in_use(
    tree: TreeView, gem_dir: str, specs: dict[str, str], code: Iterable[str]
) -> dict[str, str]:
    """Gem (full name) -> why it is activated: its files are in `code`, or a gem
    in use depends on it (followed to a fixed point)."""
    roots = {g: f"{gem_dir}/gems/{g}/" for g in specs}
    used = {g for g, below in roots.items() for p in code if p.startswith(below)}
    queue, why = sorted(used), {g: "its files are kept" for g in used}
    while queue:
        full = queue.pop()
        for dep in gemspec_dependencies(read_text(tree, specs[full]) or ""):
            for other in (g for g in specs if g.rpartition("-")[0] == dep and g not in why):
                why[other] = f"{full} depends on it"
                queue.append(other)
    return why


def _spec_files(tree: TreeView, gem_dir: str) -> tuple[str, ...]:
    return expand(tree, compile_glob(f"{gem_dir}/specifications/*.gemspec"))
