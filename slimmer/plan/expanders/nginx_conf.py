"""What an nginx configuration reads from disk: document roots and named files.

nginx serves any file below a `root` or `alias` directory, so a probe that
requested one page says nothing about the others: every such tree is kept
whole. The syntax followed is nginx's (src/core/ngx_conf_file.c): words
separated by blanks, `'...'`/`"..."` quoting with backslash escapes, `#`
comments to the end of the line, directives ended by `;` or opening a `{`
block. `include` takes a glob, relative to the directory of the main file.

Pure: the caller passes how to read a file and how to expand a glob.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass

ROOT_DIRECTIVES = frozenset({"root", "alias"})
FILE_DIRECTIVES = frozenset(
    {
        "ssl_certificate",
        "ssl_certificate_key",
        "ssl_trusted_certificate",
        "ssl_client_certificate",
        "ssl_dhparam",
        "ssl_crl",
        "ssl_password_file",
        "ssl_stapling_file",
        "ssl_session_ticket_key",
        "auth_basic_user_file",
        "load_module",
    }
)
MAX_INCLUDES = 500


@dataclass(frozen=True)
class NginxPath:
    """A path a configuration names: `directive` in `source`; `tree` for roots."""

    path: str
    directive: str
    source: str
    tree: bool


def tokens(text: str) -> Iterator[str]:
    """Words, and `;`, `{`, `}` as tokens of their own; quotes and comments removed."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in ";{}":
            yield c
            i += 1
        elif c in "\"'":
            word, i = _quoted(text, i)
            yield word
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in ";{}\"'":
                i += 1
            yield text[start:i]


def _quoted(text: str, i: int) -> tuple[str, int]:
    quote, out, i = text[i], [], i + 1
    while i < len(text) and text[i] != quote:
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out), i + 1


def directives(text: str) -> Iterator[tuple[str, list[str]]]:
    """(name, arguments) of every directive, blocks flattened."""
    words: list[str] = []
    for tok in tokens(text):
        if tok in (";", "{"):
            if words:
                yield words[0], words[1:]
            words = []
        elif tok == "}":
            words = []
        else:
            words.append(tok)


def referenced_paths(
    main: str,
    read: Callable[[str], str | None],
    glob: Callable[[str], list[str]],
    prefixes: tuple[str, ...],
) -> list[NginxPath]:
    """Roots, aliases and named files of `main` and every file it includes.

    A relative `include` or file is taken from the directory of `main` (nginx's
    conf prefix); a relative root from each of `prefixes` (nginx's --prefix:
    /usr/share/nginx on Debian, /etc/nginx in the official image). A value
    holding a variable is cut at the last `/` before the first `$`.
    """
    conf_dir = posixpath.dirname(main)
    todo, seen, out = [main], {main}, []
    while todo and len(seen) <= MAX_INCLUDES:
        source = todo.pop()
        text = read(source)
        if text is None:
            continue
        for name, args in directives(text):
            if name == "include" and args:
                for path in glob(_absolute(args[0], conf_dir)):
                    if path not in seen:
                        seen.add(path)
                        todo.append(path)
            elif name in ROOT_DIRECTIVES and args:
                out += [NginxPath(p, name, source, True) for p in _roots(args[0], prefixes)]
            elif name in FILE_DIRECTIVES and args and "$" not in args[0]:
                base = prefixes[0] if name == "load_module" and prefixes else conf_dir
                out.append(NginxPath(_absolute(args[0], base), name, source, False))
    return out


def _absolute(value: str, base: str) -> str:
    return posixpath.normpath(value if value.startswith("/") else posixpath.join(base, value))


def _roots(value: str, prefixes: tuple[str, ...]) -> list[str]:
    if "$" in value:
        value = value[: value.index("$")].rpartition("/")[0]
    if not value:
        return []
    if value.startswith("/"):
        return [posixpath.normpath(value)]
    return [posixpath.normpath(posixpath.join(p, value)) for p in prefixes]
