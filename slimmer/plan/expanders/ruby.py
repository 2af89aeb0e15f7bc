"""Expander of Ruby: the files kept Ruby code requires, found statically.

`require 'x'`, `require_relative 'x'`, `load 'x'` and `autoload :X, 'x'` with a
literal name are read anywhere in a file, inside methods too: a service that
requires `json` or `openssl` only when a handler first runs never shows it to
the probes. Names are resolved as Ruby does, against `$LOAD_PATH` as the image
would build it, then the `require_paths` of its installed gems. Comments are
not code: a `require` in a comment or an `=begin` block is not followed.

Evidence, not directories: the gem specifications kept are those of the gems
whose files are kept (RubyGems reads a spec to activate its gem), and `enc/` is
kept whole only where something picks encodings by data (else a core set).
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
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.expanders._requires import Runtime, require_closure
from slimmer.plan.keep import Addition, ProfileContext, Reason, Result, argv_words, kept_named

_INTERPRETER = re.compile(r"ruby(\d+(\.\d+)*)?\Z")
_REQUIRE = re.compile(
    r"""(?<![\w.$:])(require_relative|require|load)\b\s*\(?\s*(['"])([^'"\n]+)\2"""
)
_AUTOLOAD = re.compile(r"""(?<![\w$])autoload\??\s*\(?\s*:\w+\s*,\s*(['"])([^'"\n]+)\1""")
# `require lib` / `require(name)`: a name computed at run time from a variable.
_COMPUTED = re.compile(
    r"(?<![\w.$:])(?:require|load)\b[ \t]*\(?[ \t]*[a-z_@][\w.]*[ \t]*\)?[ \t]*$"
)
_BLOCK_COMMENT = re.compile(r"^=begin\b.*?^=end\b[^\n]*", re.M | re.S)
_NATIVE = (".so", ".o", ".bundle")
SELF = "*"
"""The spec of a computed require without a literal prefix: the requiring file's
own namespace directory (`digest.rb`'s `require lib` loads `digest/<name>`)."""
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
# Gem directories (Gem.path): each holds specifications/, gems/ and extensions/.
GEM_DIR_GLOBS = (
    "/var/lib/gems/[0-9]*",
    "/usr/local/lib/ruby/gems/[0-9]*",
    "/usr/lib/ruby/gems/[0-9]*",
    "/usr/lib/*/ruby/gems/[0-9]*",
    "/usr/share/rubygems-integration/*",
    "/usr/lib/*/rubygems-integration/[0-9]*",
)


def ruby_code(source: str) -> str:
    """Ruby source without its comments: `=begin`/`=end` blocks, whole-line `#`
    comments and everything after `__END__` (a trailing `# x` after code stays)."""
    source = _BLOCK_COMMENT.sub("", source.split("\n__END__\n", 1)[0])
    return "\n".join(line for line in source.split("\n") if not line.lstrip().startswith("#"))


def ruby_specs(source: str) -> list[str]:
    """Literal names of `require`, `require_relative` (marked with a leading `./`
    when not already relative), `load` and `autoload` in Ruby source, anywhere in
    the code (comments are skipped). A computed name is a directory: the literal
    prefix of an interpolated name (`"x/#{y}"` -> `x/*`), else the requiring
    file's own namespace (`require lib` -> `*`)."""
    code = ruby_code(source)
    out = []
    for m in _REQUIRE.finditer(code):
        verb, name = m.group(1), m.group(3)
        if verb == "require_relative" and not name.startswith(("./", "../", "/")):
            name = "./" + name
        if "#{" in name:
            prefix = name[: name.index("#{")].rpartition("/")[0]
            name = f"{prefix}/*" if prefix.strip("./") else ""
        out.append(name)
    out += [m.group(2) for m in _AUTOLOAD.finditer(code) if "#{" not in m.group(2)]
    out += [SELF for line in code.split("\n") if _COMPUTED.search(line)]
    return list(dict.fromkeys(n for n in out if n.strip() == n and n))


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


def _gem_dirs(tree: TreeView, homes: Iterable[str] = ()) -> list[str]:
    found = (d for g in GEM_DIR_GLOBS for d in expand(tree, compile_glob(g)))
    return list(dict.fromkeys(d for d in [*homes, *found] if is_dir(tree, d)))


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
    for gem_dir in _gem_dirs(tree, homes):
        dirs += _gem_paths(tree, gem_dir)
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


def _describe(spec: str) -> str:
    if spec == SELF:
        return "a computed name (its own namespace directory, whole)"
    if spec.endswith("/*"):
        return f"a computed name below {spec[:-1]!r} (that directory, whole)"
    return repr(spec)


def ruby_requires(ctx: ProfileContext, profile_name: str) -> Result:
    """Files the kept Ruby code requires (inside methods too), resolved against the
    image's `$LOAD_PATH` and gems, with native extensions, to a fixed point; the
    specifications of the gems they activate; the encodings Ruby may load."""
    if not any(is_file(ctx.tree, p) for p in kept_named(ctx, _INTERPRETER)):
        return [], []
    load_path = ruby_load_path(ctx)
    wd = ctx.config.working_dir or "/"
    scripts = [posixpath.join(wd, w) for w in argv_words(ctx) if w.endswith(".rb")]
    kept_rb = [p for p in ctx.kept if p.endswith(".rb") and not _is_prelude(load_path, p)]
    digest = hashlib.sha256("\0".join(load_path).encode()).hexdigest()[:12]
    runtime = Runtime(
        key=f"ruby-{digest}",
        verb="requires",
        sources=(".rb",),
        specs_of=ruby_specs,
        resolve=partial(resolve_require, ctx.tree, load_path),
        describe=_describe,
    )
    found = require_closure(ctx, runtime, [*scripts, *kept_rb], profile_name)
    code = ctx.kept | {a.path for a in found}
    found += gem_specs(ctx, code, profile_name)
    found += ruby_encodings(ctx, load_path, code, profile_name)
    return not_kept(found, ctx.kept), []


# -- the gems RubyGems activates ------------------------------------------------------

_DEPENDENCY = re.compile(r"add_(?:runtime_)?dependency\s*\(?\s*(?:%q<([^>]+)>|['\"]([^'\"]+)['\"])")


def gemspec_dependencies(text: str) -> list[str]:
    """The names of a gemspec's runtime dependencies (activated with the gem)."""
    return [a or b for a, b in _DEPENDENCY.findall(text)]


def gem_specs(ctx: ProfileContext, code: Iterable[str], profile_name: str) -> list[Addition]:
    """The specification (and `gem.build_complete` markers) of each installed gem
    with a file in `code`, and of the gems it depends on: RubyGems reads a gem's
    spec to activate it on a require, and refuses an extension gem without its
    marker. Other gems' specs are not read (a spec names its own files)."""
    tree = ctx.tree
    homes = [p for p in ctx.config.env.get("GEM_HOME", "").split(":") if p.startswith("/")]
    out: list[Addition] = []
    for gem_dir in _gem_dirs(tree, homes):
        specs = {posixpath.basename(p)[: -len(".gemspec")]: p for p in _spec_files(tree, gem_dir)}
        roots = {g: f"{gem_dir}/gems/{g}/" for g in specs}
        used = {g for g, below in roots.items() for p in code if p.startswith(below)}
        queue, why = sorted(used), {g: "its files are kept" for g in used}
        while queue:
            full = queue.pop()
            for dep in gemspec_dependencies(read_text(tree, specs[full]) or ""):
                for other in (g for g in specs if g.rpartition("-")[0] == dep and g not in why):
                    why[other] = f"{full} depends on it"
                    queue.append(other)
        for full, because in sorted(why.items()):
            reason = Reason("profile", f"RubyGems activates gem {full}: {because}", profile_name)
            marks = expand(
                tree, compile_glob(f"{gem_dir}/extensions/*/*/{full}/gem.build_complete")
            )
            out += [Addition(p, reason, False) for p in (specs[full], *marks)]
    return out


def _spec_files(tree: TreeView, gem_dir: str) -> tuple[str, ...]:
    return expand(tree, compile_glob(f"{gem_dir}/specifications/*.gemspec"))


# -- encodings ------------------------------------------------------------------------

ENC_DIR_GLOBS = ("/usr/lib/*/ruby/[0-9]*/enc", "/usr/local/lib/ruby/[0-9]*/*-linux*/enc")
# The encoding libraries any Ruby may load without a name from data: the indexes,
# and UTF-16/32, which the interpreter and Psych/JSON detect from byte order marks.
CORE_ENCODINGS = (
    "encdb.so",
    "utf_16be.so",
    "utf_16le.so",
    "utf_32be.so",
    "utf_32le.so",
    "trans/transdb.so",
    "trans/utf_16_32.so",
)
_PICKS_ENCODING = re.compile(
    r"force_encoding|\bencode!?\b|Encoding\.find|Encoding::Converter|set_encoding"
    r"|\w*_encoding\s*=[^=]|\bencoding:|:encoding\s*=>|Encoding::(?!UTF_8\b|BINARY\b|ASCII_8BIT\b|US_ASCII\b)[A-Z]"
    r"|['\"][rwa]b?\+?:[\w-]+|\bNKF\b|\bKconv\b|\bIconv\b",
)
# A magic comment on the first two lines naming a source encoding other than UTF-8.
_MAGIC = re.compile(
    r"\A(?:#![^\n]*\n)?#.*coding[:=]\s*(?!utf-8\b|us-ascii\b|binary\b|ascii-8bit\b)[\w-]+",
    re.I,
)
_UTF8_LOCALE = re.compile(r"\A(|C|POSIX|[\w@]*\.(?i:utf-?8)(@\w+)?)\Z")


def ruby_encodings(
    ctx: ProfileContext, load_path: Iterable[str], code: Iterable[str], profile_name: str
) -> list[Addition]:
    """Ruby loads `enc/<name>.so` (and a transcoder) on an encoding's first use.
    All of `enc/` where the name may come from data: an encoding library outside
    the core traced, a non-UTF-8 locale or `-E`/`-K` in RUBYOPT, or app or gem code
    (not Ruby's own library) that names or converts encodings; else the core set."""
    tree = ctx.tree
    dirs = [d for g in ENC_DIR_GLOBS for d in expand(tree, compile_glob(g)) if is_dir(tree, d)]
    if not dirs:
        return []
    evidence = _encoding_evidence(ctx, dirs, tuple(load_path), code)
    out: list[Addition] = []
    for d in dirs:
        if evidence:
            reason = Reason(
                "profile", f"Ruby loads any encoding it is asked for: {evidence}", profile_name
            )
            out += [Addition(p, reason) for p in walk_below(tree, d)]
            continue
        reason = Reason(
            "profile",
            "Ruby's encoding indexes and UTF-16/32 (byte order marks); no code "
            "names another encoding, the locale is UTF-8 or C",
            profile_name,
        )
        out += [Addition(f"{d}/{n}", reason) for n in CORE_ENCODINGS if is_file(tree, f"{d}/{n}")]
    return out


def _encoding_evidence(
    ctx: ProfileContext, dirs: list[str], load_path: tuple[str, ...], code: Iterable[str]
) -> str:
    """Why the encoding may come from data ('' when nothing says so)."""
    core = {f"{d}/{n}" for d in dirs for n in CORE_ENCODINGS}
    traced = sorted(p for p in ctx.traced if p.startswith(tuple(dirs)) and p.endswith(".so"))
    if extra := [p for p in traced if p not in core]:
        return f"{extra[0]} was loaded"
    env = ctx.config.env
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        if not _UTF8_LOCALE.match(env.get(var, "")):
            return f"{var}={env[var]} is not a UTF-8 locale"
    if re.search(r"(^|\s)(-E|-K|--encoding|--external-encoding)", env.get("RUBYOPT", "")):
        return f"RUBYOPT={env['RUBYOPT']} sets an encoding"
    own = tuple(d + "/" for d in load_path if not _in_gem_dir(ctx.tree, d))
    for path in sorted(p for p in code if p.endswith(".rb") and not p.startswith(own)):
        said = tree_memo(ctx.tree, f"ruby-enc:{path}", partial(_names_encoding, ctx.tree, path))
        if said:
            return f"{path} says {said!r}"
    return ""


def _names_encoding(tree: TreeView, path: str) -> str:
    """What in `path` names or converts an encoding ('' when nothing does)."""
    text = read_text(tree, path) or ""
    m = _MAGIC.search(text) or _PICKS_ENCODING.search(ruby_code(text))
    return m.group(0).strip() if m else ""


def _in_gem_dir(tree: TreeView, directory: str) -> bool:
    return any(directory.startswith(g + "/") for g in _gem_dirs(tree))
