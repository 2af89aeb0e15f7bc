"""Expander of Perl: the modules kept Perl code uses or requires, found statically.

`use Foo::Bar`, `no Foo::Bar`, `require Foo::Bar`, `require "file.pl"` and the
modules of `use parent`/`use base` are read anywhere in a file, inside subs
too. A module name becomes `Foo/Bar.pm`, found in the first `@INC` directory
holding it; its XS part, `auto/Foo/Bar/Bar.so` (with its `.al`/`.ix` autoload
files), is found the same way, as DynaLoader and AutoLoader do. The modules
`Encode` loads by an encoding's name are `perl_encodings`'.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from functools import partial

from slimmer.image.paths import compile_glob, expand, is_dir, is_file
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.expanders._requires import (
    Runtime,
    interpreter_kept,
    require_closure,
    script_roots,
    search_key,
)
from slimmer.plan.expanders.perl_encodings import encode_modules
from slimmer.plan.keep import Addition, ProfileContext, Result, argv_words

_INTERPRETER = re.compile(r"perl(5[\d.]*)?\Z")
_MODULE = re.compile(r"(?m)(?:^|[;{}])\s*(?:use|no|require)\s+([A-Za-z_][\w:]*)")
_FILE = re.compile(r"""(?m)(?:^|[;{}])\s*(?:require|do)\s*\(?\s*(['"])([^'"\n]+)\1""")
_PARENT = re.compile(r"""(?m)^\s*use\s+(?:parent|base)\s+(?:-norequire\s*,\s*)?(.*?);""")
_WORDS = re.compile(r"[A-Za-z_][\w:]*")
_NOT_MODULES = frozenset({"if", "parent", "base", "lib", "qw", "v5", "strict_vars"})
# @INC of Debian's and upstream's perl, in perl's order.
INC_GLOBS = (
    "/etc/perl",
    "/usr/local/lib/*/perl/5*",
    "/usr/local/share/perl/5*",
    "/usr/lib/*/perl5/5*",
    "/usr/share/perl5",
    "/usr/lib/*/perl-base",
    "/usr/lib/*/perl/5*",
    "/usr/share/perl/5*",
    "/usr/local/lib/site_perl",
    "/usr/local/lib/perl5/site_perl/5*/*-linux*",
    "/usr/local/lib/perl5/site_perl/5*",
    "/usr/local/lib/perl5/5*/*-linux*",
    "/usr/local/lib/perl5/5*",
)


def perl_specs(source: str) -> list[str]:
    """Modules (`Foo::Bar`) and files (`lib/x.pl`, marked with a leading `./` when
    relative) Perl source loads."""
    out = [m.group(1) for m in _MODULE.finditer(source) if m.group(1) not in _NOT_MODULES]
    for m in _PARENT.finditer(source):
        words = _WORDS.findall(m.group(1).replace("qw", " "))
        out += [w for w in words if w not in _NOT_MODULES]
    for m in _FILE.finditer(source):
        name = m.group(2)
        out.append(name if name.startswith(("/", "./", "../")) else "./" + name)
    return out


def resolve_module(tree: TreeView, inc: tuple[str, ...], name: str, source: str) -> list[str]:
    """The files `name` loads: a module's `.pm` in the first `@INC` directory holding
    it, and its `auto/` directory's files (XS `.so`, `.al`, `.ix`); a file name from
    the requiring file's directory, then `@INC`."""
    if name.startswith(("/", "./", "../")):
        here = posixpath.dirname(source)
        rel = name[2:] if name.startswith("./") else name
        cands = [posixpath.normpath(posixpath.join(here, name))] + [f"{d}/{rel}" for d in inc]
        return next(([c] for c in cands if is_file(tree, c)), [])
    rel = name.replace("::", "/")
    out = next(([f"{d}/{rel}.pm"] for d in inc if is_file(tree, f"{d}/{rel}.pm")), [])
    auto = next((f"{d}/auto/{rel}" for d in inc if is_dir(tree, f"{d}/auto/{rel}")), "")
    if auto:
        out += [p for p in _files_in(tree, auto)]
    return out


def _files_in(tree: TreeView, directory: str) -> Iterable[str]:
    for name in sorted(tree.listdir(tree.resolve(directory).path)):
        if is_file(tree, f"{directory}/{name}"):
            yield f"{directory}/{name}"


def perl_inc(ctx: ProfileContext) -> tuple[str, ...]:
    """`@INC` as the image's perl builds it: `-I` words, PERL5LIB, then the
    distribution's directories that exist."""
    first = [w[2:] for w in argv_words(ctx) if w.startswith("-I") and len(w) > 2]
    first += [p for p in ctx.config.env.get("PERL5LIB", "").split(":") if p.startswith("/")]
    dirs = [*first, *(d for g in INC_GLOBS for d in expand(ctx.tree, compile_glob(g)))]
    return tuple(dict.fromkeys(d for d in dirs if is_dir(ctx.tree, d)))


def perl_modules(ctx: ProfileContext, profile_name: str) -> Result:
    """Modules the kept Perl code uses or requires (inside subs too), with their XS
    libraries, resolved against the image's `@INC`; to a fixed point."""
    if not interpreter_kept(ctx, _INTERPRETER):
        return [], []
    inc = perl_inc(ctx)
    runtime = Runtime(
        key=search_key("perl", inc),
        verb="uses",
        sources=(".pm", ".pl"),
        specs_of=perl_specs,
        resolve=partial(resolve_module, ctx.tree, inc),
    )
    roots = script_roots(ctx, (".pl", ".pm"))
    sources = [r for r in roots if is_file(ctx.tree, r)]
    encodings = [
        Addition(path, reason)
        for module, reason in encode_modules(ctx, inc, sources, profile_name)
        for path in resolve_module(ctx.tree, inc, module, "")
    ]
    return [*require_closure(ctx, runtime, roots, profile_name), *not_kept(encodings, ctx.kept)], []
