"""Expander of Ruby: the files kept Ruby code requires, found statically.

`require 'x'`, `require_relative 'x'`, `load 'x'` and `autoload :X, 'x'` with a
literal name are read anywhere in a file, inside methods too: a service that
requires `json` or `openssl` only when a handler first runs never shows it to
the probes. Names are resolved as Ruby does, against `$LOAD_PATH` as the image
would build it, then the `require_paths` of its installed gems.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable
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
from slimmer.plan.expanders._requires import Runtime, require_closure
from slimmer.plan.keep import ProfileContext, Result, argv_words, kept_named

_INTERPRETER = re.compile(r"ruby(\d+(\.\d+)*)?\Z")
_REQUIRE = re.compile(
    r"""(?<![\w.$:])(require_relative|require|load)\b\s*\(?\s*(['"])([^'"\n]+)\2"""
)
_AUTOLOAD = re.compile(r"""(?<![\w$])autoload\??\s*\(?\s*:\w+\s*,\s*(['"])([^'"\n]+)\1""")
_NATIVE = (".so", ".o", ".bundle")

# $LOAD_PATH of Debian's and upstream's ruby, in Ruby's order: site, vendor, then
# rubylibdir and archdir (RbConfig's sitelibdir, vendorlibdir, rubylibdir, archdir).
LOAD_PATH_GLOBS = (
    "/usr/local/lib/site_ruby/[0-9]*",
    "/usr/local/lib/*/site_ruby",
    "/usr/local/lib/site_ruby",
    "/usr/lib/ruby/vendor_ruby/[0-9]*",
    "/usr/lib/*/ruby/vendor_ruby/[0-9]*",
    "/usr/lib/ruby/vendor_ruby",
    "/usr/lib/ruby/[0-9]*",
    "/usr/lib/*/ruby/[0-9]*",
    "/usr/local/lib/ruby/site_ruby/[0-9]*",
    "/usr/local/lib/ruby/site_ruby/[0-9]*/*-linux*",
    "/usr/local/lib/ruby/vendor_ruby/[0-9]*",
    "/usr/local/lib/ruby/[0-9]*",
    "/usr/local/lib/ruby/[0-9]*/*-linux*",
)
# Gem directories (Gem.path): each holds specifications/, gems/ and extensions/.
GEM_DIR_GLOBS = (
    "/var/lib/gems/[0-9]*",
    "/usr/local/lib/ruby/gems/[0-9]*",
    "/usr/lib/ruby/gems/[0-9]*",
    "/usr/lib/*/ruby/gems/[0-9]*",
    "/usr/share/rubygems-integration/*",
    "/usr/lib/*/rubygems-integration/[0-9]*",
)


def ruby_specs(source: str) -> list[str]:
    """Literal names of `require`, `require_relative` (marked with a leading `./`
    when not already relative), `load` and `autoload` in Ruby source, anywhere in
    the file. Interpolated names (`"x/#{y}"`) cannot be known and are skipped."""
    out = []
    for m in _REQUIRE.finditer(source):
        verb, name = m.group(1), m.group(3)
        if verb == "require_relative" and not name.startswith(("./", "../", "/")):
            name = "./" + name
        out.append(name)
    out += [m.group(2) for m in _AUTOLOAD.finditer(source)]
    return [n for n in out if "#{" not in n and n.strip() == n and n]


def gemspec_require_paths(text: str) -> list[str]:
    """A gemspec's `require_paths` (`["lib"]` when it does not say)."""
    m = re.search(r"\.require_paths\s*=\s*\[([^\]]*)\]", text)
    if not m:
        return ["lib"]
    return re.findall(r"""['"]([^'"]+)['"]""", m.group(1)) or ["lib"]


def _gem_paths(tree: TreeView, gem_dir: str) -> list[str]:
    """The require paths and extension directories of the gems installed in `gem_dir`."""
    out: list[str] = []
    for spec in expand(tree, compile_glob(f"{gem_dir}/specifications/*.gemspec")):
        full = posixpath.basename(spec)[: -len(".gemspec")]
        for rp in gemspec_require_paths(read_text(tree, spec) or ""):
            out.append(rp if rp.startswith("/") else f"{gem_dir}/gems/{full}/{rp}")
        out += expand(tree, compile_glob(f"{gem_dir}/extensions/*/*/{full}"))
    return [d for d in out if is_dir(tree, d)]


def ruby_load_path(ctx: ProfileContext) -> tuple[str, ...]:
    """The image's `$LOAD_PATH` for the rubies kept or run, then the installed gems'
    require paths: `-I` words and RUBYLIB first, as Ruby puts them."""
    words = argv_words(ctx)
    first = [w[2:] for w in words if w.startswith("-I") and len(w) > 2]
    first += [p for p in ctx.config.env.get("RUBYLIB", "").split(":") if p.startswith("/")]
    homes = [p for p in ctx.config.env.get("GEM_PATH", "").split(":") if p.startswith("/")]
    homes += [p for p in (ctx.config.env.get("GEM_HOME", ""),) if p.startswith("/")]
    key = "rubypath:" + "\0".join([*first, "", *homes])
    return tree_memo(ctx.tree, key, partial(_load_path, ctx.tree, first, homes))


def _load_path(tree: TreeView, first: list[str], homes: list[str]) -> tuple[str, ...]:
    dirs = [*first]
    for pattern in LOAD_PATH_GLOBS:
        dirs += expand(tree, compile_glob(pattern))
    for gem_dir in [*homes, *(d for g in GEM_DIR_GLOBS for d in expand(tree, compile_glob(g)))]:
        dirs += _gem_paths(tree, gem_dir)
    return tuple(dict.fromkeys(d for d in dirs if is_dir(tree, d)))


def resolve_require(tree: TreeView, load_path: Iterable[str], name: str, source: str) -> list[str]:
    """The file `name` loads: a relative name (require_relative) from the real
    directory of `source`; else the first `$LOAD_PATH` directory holding
    `name.rb` or `name.so` (or `name` itself when it has its extension)."""
    stem, ext = posixpath.splitext(name)
    exts = [".so"] if ext in _NATIVE else [ext] if ext == ".rb" else [".rb", ".so"]
    stem = stem if ext in (*_NATIVE, ".rb") else name
    if name.startswith(("./", "../")):
        base = posixpath.dirname(tree.resolve(source).path)
        dirs: Iterable[str] = [base]
    elif name.startswith("/"):
        dirs = [""]
    else:
        dirs = load_path
    for d in dirs:
        for e in exts:
            candidate = posixpath.normpath(posixpath.join(d, stem) + e) if d else stem + e
            if is_file(tree, candidate):
                companions = _companions(tree, load_path, stem) if e == ".so" and d else []
                return [candidate, *companions]
    return []


def _companions(tree: TreeView, load_path: Iterable[str], stem: str) -> list[str]:
    """The Ruby files beside a native extension `stem.so`: everything below a
    `stem/` directory of the load path. An extension's C code requires them itself
    (psych.so requires `psych/syntax_error`), where no Ruby scan can see it."""
    if stem.startswith("/") or stem.startswith("."):
        return []
    out = []
    for d in load_path:
        below = f"{d}/{stem}"
        if is_dir(tree, below):
            out += sorted(p for p in walk_below(tree, below) if p.endswith((".rb", ".so")))
    return out


def ruby_requires(ctx: ProfileContext, profile_name: str) -> Result:
    """Files the kept Ruby code requires (inside methods too), resolved against the
    image's `$LOAD_PATH` and gems, with native extensions; to a fixed point."""
    if not any(is_file(ctx.tree, p) for p in kept_named(ctx, _INTERPRETER)):
        return [], []
    load_path = ruby_load_path(ctx)
    wd = ctx.config.working_dir or "/"
    scripts = [posixpath.join(wd, w) for w in argv_words(ctx) if w.endswith(".rb")]
    roots = [*scripts, *(p for p in ctx.kept if p.endswith(".rb"))]
    digest = hashlib.sha256("\0".join(load_path).encode()).hexdigest()[:12]
    runtime = Runtime(
        key=f"ruby-{digest}",
        verb="requires",
        sources=(".rb",),
        specs_of=ruby_specs,
        resolve=partial(resolve_require, ctx.tree, load_path),
    )
    return require_closure(ctx, runtime, roots, profile_name), []
