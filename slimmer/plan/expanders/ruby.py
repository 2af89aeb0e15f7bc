"""Expander of Ruby: the files kept Ruby code requires, found statically.

`require 'x'`, `require_relative 'x'`, `load 'x'` and `autoload :X, 'x'` with a
literal name are read anywhere in a file, inside methods too (`ruby_source`): a
service that requires `json` or `openssl` only when a handler first runs never
shows it to the probes. Names are resolved as Ruby does, against `$LOAD_PATH` as
the image would build it, then the `require_paths` of its installed gems.

Evidence, not directories: the gem specifications kept are those of the gems
whose files are kept (`ruby_gems`), and `enc/` is kept whole only where
something picks encodings by data, else a core set (`ruby_encodings`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from functools import partial

from slimmer.image.paths import (
    compile_glob,
    expand,
    is_dir,
    is_file,
    tree_memo,
    walk_below,
)
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.expanders._requires import (
    Runtime,
    interpreter_kept,
    require_closure,
    script_roots,
    search_key,
)
from slimmer.plan.expanders.ruby_encodings import ruby_encodings
from slimmer.plan.expanders.ruby_gems import gem_dirs, gem_paths, gem_specs
from slimmer.plan.expanders.ruby_source import SELF, describe_spec, ruby_specs
from slimmer.plan.keep import ProfileContext, Result, argv_words

_INTERPRETER = re.compile(r"ruby(\d+(\.\d+)*)?\Z")
_NATIVE = (".so", ".o", ".bundle")
# The prelude (gem_prelude.rb) loads these at every start, whatever the app: their
# lazy requires serve `gem` and Bundler, so they are followed only when named.
_PRELUDE = ("rubygems", "did_you_mean", "error_highlight", "bundled_gems")

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
    for gem_dir in gem_dirs(tree, homes):
        dirs += gem_paths(tree, gem_dir)
    return tuple(dict.fromkeys(d for d in dirs if is_dir(tree, d)))


def resolve_require(tree: TreeView, load_path: Iterable[str], name: str, source: str) -> list[str]:
    """The file `name` loads: a relative name (require_relative) from the real
    directory of `source`; else the first `$LOAD_PATH` directory holding
    `name.rb` or `name.so` (or `name` itself when it has its extension). A
    computed name (`x/*`, `*`) loads any file below its directory."""
    if name == SELF or name.endswith("/*"):
        return _computed(tree, tuple(load_path), name, source)
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
                named = _named_by(tree, load_path, candidate, stem) if e == ".so" and d else []
                return [candidate, *named]
    return []


def _computed(tree: TreeView, load_path: tuple[str, ...], name: str, source: str) -> list[str]:
    """Every `.rb`/`.so` below the directory a computed require picks from: `x/`
    of the load path (`./x/` beside `source`), or `source`'s own namespace."""
    if name.startswith(("./", "../")):
        base = posixpath.dirname(tree.resolve(source).path)
        return _below(tree, [posixpath.normpath(posixpath.join(base, name[:-2]))])
    if name == SELF:
        real = tree.resolve(source).path
        home = next((d for d in load_path if real.startswith(d + "/")), None)
        if home is None:
            return _below(tree, [real[: -len(".rb")]] if real.endswith(".rb") else [])
        name = real[len(home) + 1 :].rpartition(".")[0] + "/*"
    return _below(tree, [f"{d}/{name[:-2]}" for d in load_path])


def _below(tree: TreeView, dirs: Iterable[str]) -> list[str]:
    out = []
    for d in dirs:
        if is_dir(tree, d):
            out += sorted(p for p in walk_below(tree, d) if p.endswith((".rb", ".so")))
    return out


_C_NAME = re.compile(rb"[a-z0-9_]+(?:/[a-z0-9_]+)+(?=\0)")


def _named_by(tree: TreeView, load_path: Iterable[str], so: str, stem: str) -> list[str]:
    """The Ruby files a native extension requires from its C code: names below its
    own `stem/` written in the binary (psych.so calls `rb_require("psych/syntax_error")`),
    where no Ruby scan can see them."""
    if stem.startswith(("/", ".")):
        return []
    try:
        data = tree.read_bytes(so)
    except (LookupError, FileNotFoundError, OSError):
        return []
    names = sorted({m.decode() for m in _C_NAME.findall(data)})
    out: list[str] = []
    for name in (n for n in names if n.startswith(stem + "/")):
        out += resolve_require(tree, load_path, name, so)
    return out


def _is_prelude(load_path: Iterable[str], path: str) -> bool:
    """Whether `path` is a file of a library the prelude loads at every start."""
    return any(
        path in (f"{d}/{lib}.rb",) or path.startswith(f"{d}/{lib}/")
        for d in load_path
        for lib in _PRELUDE
    )


def ruby_requires(ctx: ProfileContext, profile_name: str) -> Result:
    """Files the kept Ruby code requires (inside methods too), resolved against the
    image's `$LOAD_PATH` and gems, with native extensions, to a fixed point; the
    specifications of the gems they activate; the encodings Ruby may load."""
    if not interpreter_kept(ctx, _INTERPRETER):
        return [], []
    load_path = ruby_load_path(ctx)
    runtime = Runtime(
        key=search_key("ruby", load_path),
        verb="requires",
        sources=(".rb",),
        specs_of=ruby_specs,
        resolve=partial(resolve_require, ctx.tree, load_path),
        describe=describe_spec,
    )
    roots = script_roots(ctx, (".rb",), lambda p: not _is_prelude(load_path, p))
    found = require_closure(ctx, runtime, roots, profile_name)
    code = ctx.kept | {a.path for a in found}
    found += gem_specs(ctx, code, profile_name)
    found += ruby_encodings(ctx, load_path, code, profile_name)
    return not_kept(found, ctx.kept), []
