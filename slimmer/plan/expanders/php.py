"""Expander of PHP: the extensions its ini files load, and the files kept PHP
code includes, found statically.

PHP loads every `extension=` and `zend_extension=` of `php.ini` and of the ini
files in its scan directory (`conf.d`) at start, whatever the request; a probe
sees only the ones its SAPI loaded. `include`, `include_once`, `require` and
`require_once` of a literal name (or `__DIR__ . '/name'`) are resolved from the
including file's directory, the WorkingDir and the default include_path.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from functools import partial

from slimmer.image.paths import compile_glob, expand, is_file, read_text
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.expanders._requires import (
    Runtime,
    interpreter_kept,
    require_closure,
    script_roots,
    search_key,
)
from slimmer.plan.keep import Addition, ProfileContext, Reason, Result

_INTERPRETER = re.compile(r"php(-fpm|-cgi)?(\d+(\.\d+)*)?\Z")
_INCLUDE = re.compile(
    r"""\b(?:include|include_once|require|require_once)\b\s*\(?\s*"""
    r"""(?:(__DIR__|dirname\s*\(\s*__FILE__\s*\))\s*\.\s*)?(['"])([^'"\n]+)\2"""
)
_EXTENSION = re.compile(r"""^\s*(zend_extension|extension)\s*=\s*["']?([^"';\s]+)""", re.M)
_EXTENSION_DIR = re.compile(r"""^\s*extension_dir\s*=\s*["']?([^"';\s]+)""", re.M)
INI_GLOBS = (
    "/etc/php/*/*/php.ini",
    "/etc/php/*/*/conf.d/*.ini",
    "/usr/local/etc/php/php.ini",
    "/usr/local/etc/php/conf.d/*.ini",
    "/etc/php.ini",
    "/etc/php.d/*.ini",
)
EXTENSION_DIR_GLOBS = (
    "/usr/lib/php/[0-9]*",
    "/usr/local/lib/php/extensions/*",
    "/usr/lib64/php/modules",
)
INCLUDE_PATH = ("/usr/share/php", "/usr/local/lib/php")


def php_includes(source: str) -> list[str]:
    """Literal names the PHP source includes or requires; a `__DIR__ .` prefix is
    kept as a leading `./` (relative to the including file). A name with a
    variable in it cannot be known and is skipped."""
    out = []
    for m in _INCLUDE.finditer(source):
        name = m.group(3)
        if "$" in name:
            continue
        out.append("./" + name.lstrip("/") if m.group(1) else name)
    return out


def ini_extensions(text: str) -> list[tuple[str, str]]:
    """(directive, name) of each `extension=` / `zend_extension=` line."""
    return [(m.group(1), m.group(2)) for m in _EXTENSION.finditer(text)]


def resolve_extension(tree: TreeView, dirs: Iterable[str], name: str) -> str | None:
    """An extension's file: an absolute path as given, else `name` or `name.so`
    in the first extension directory holding it."""
    if name.startswith("/"):
        return name if is_file(tree, name) else None
    for d in dirs:
        for candidate in (f"{d}/{name}", f"{d}/{name}.so"):
            if is_file(tree, candidate):
                return candidate
    return None


def resolve_include(tree: TreeView, dirs: tuple[str, ...], name: str, source: str) -> list[str]:
    """The file an include loads: absolute as given, `./`/`../` from the including
    file's directory, else the include_path and the including file's directory."""
    here = posixpath.dirname(source)
    if name.startswith("/"):
        candidates = [name]
    elif name.startswith(("./", "../")):
        candidates = [posixpath.join(here, name)]
    else:
        candidates = [posixpath.join(d, name) for d in (*dirs, here)]
    return next(([posixpath.normpath(c)] for c in candidates if is_file(tree, c)), [])


def _extension_additions(ctx: ProfileContext, profile_name: str) -> list[Addition]:
    tree = ctx.tree
    inis = [p for g in INI_GLOBS for p in expand(tree, compile_glob(g))]
    texts = {ini: read_text(tree, ini) or "" for ini in inis}
    dirs = [m.group(1) for t in texts.values() for m in _EXTENSION_DIR.finditer(t)]
    dirs += [d for g in EXTENSION_DIR_GLOBS for d in expand(tree, compile_glob(g))]
    out = []
    for ini, text in texts.items():
        for directive, name in ini_extensions(text):
            found = resolve_extension(tree, dirs, name)
            if found is not None:
                detail = f"{directive}={name} in {ini}: PHP loads it at start"
                out.append(Addition(found, Reason("profile", detail, profile_name)))
    return out


def php_modules(ctx: ProfileContext, profile_name: str) -> Result:
    """The extensions the image's PHP ini files load, and the files kept PHP code
    includes, to a fixed point."""
    if not interpreter_kept(ctx, _INTERPRETER):
        return [], []
    dirs = (ctx.config.working_dir or "/", *INCLUDE_PATH)
    runtime = Runtime(
        key=search_key("php", dirs),
        verb="includes",
        sources=(".php", ".inc"),
        specs_of=php_includes,
        resolve=partial(resolve_include, ctx.tree, dirs),
    )
    roots = script_roots(ctx, (".php",))
    extensions = not_kept(_extension_additions(ctx, profile_name), ctx.kept)
    return [*extensions, *require_closure(ctx, runtime, roots, profile_name)], []
