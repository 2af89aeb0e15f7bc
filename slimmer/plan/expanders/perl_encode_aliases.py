"""The aliases of Perl's `Encode` (`Encode/Alias.pm`), read from the image, for
`perl_encodings`: which table names a name given to `encode()` may stand for.

`Encode::find_alias` tries each `define_alias(MATCH => EXPR)` of `init_aliases`
and looks the result up again (which may load its module). A MATCH is a name
(compared ignoring case) or a `qr//` pattern; EXPR is Perl code, evaluated with
the match's groups. Read here: the names, the patterns Python's `re` compiles,
and the EXPRs that are one double-quoted string of text, `$1`, `${1}` and
`\\L$1`. Every alias that matches is followed (a superset of the ones Perl
tries: it stops at the first that resolves). An alias whose pattern or EXPR is
not read this way makes a name it may match unknown (`UNKNOWN`), and the caller
keeps every module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNKNOWN = "\0unknown"
_CALL = re.compile(r"define_alias\s*\((.*?)\)\s*;", re.S)
_REGEX_PAIR = re.compile(r"qr/((?:\\.|[^/\\])*)/([a-z]*)\s*=>\s*'([^']*)'")
_NAME_PAIR = re.compile(r"'([^'\n]+)'\s*=>\s*'([^'\n]+)'")
_COMMENT = re.compile(r"(?m)^[ \t]*#.*$")
_QUOTED = re.compile(r'"((?:[^"\\$]|\$\{?\d\}?|\\L\$\d)*)"')
_GROUP = re.compile(r"\\L\$(\d)|\$\{?(\d)\}?")


@dataclass(frozen=True)
class Alias:
    """One `define_alias` pair: a name or a pattern (None when Python cannot
    compile it), and the string EXPR (None when it is not one `_QUOTED` string)."""

    name: str
    pattern: re.Pattern[str] | None
    template: str | None

    def apply(self, find: str) -> str | None:
        """The name this alias gives `find`: None when it does not match,
        `UNKNOWN` when that cannot be read."""
        if not self.pattern:
            if self.name and find.lower() == self.name.lower():
                return self.template if self.template is not None else UNKNOWN
            return UNKNOWN if not self.name else None
        m = self.pattern.search(find)
        if m is None:
            return None
        if self.template is None:
            return UNKNOWN
        return _GROUP.sub(lambda g: _group(m, g), self.template)


def _group(m: re.Match[str], g: re.Match[str]) -> str:
    text = m.group(int(g.group(1) or g.group(2))) or ""
    return text.lower() if g.group(1) else text


def parse_aliases(source: str) -> tuple[Alias, ...]:
    """The `define_alias` pairs of `Encode/Alias.pm`'s text."""
    code = _COMMENT.sub("", source.split("\n__END__\n", 1)[0])
    out: list[Alias] = []
    for call in _CALL.finditer(code):
        body = call.group(1)
        for m in _REGEX_PAIR.finditer(body):
            out.append(Alias("", _compile(m.group(1), m.group(2)), _template(m.group(3))))
        for m in _NAME_PAIR.finditer(_REGEX_PAIR.sub("", body)):
            out.append(Alias(m.group(1), None, m.group(2)))
    return tuple(out)


def _compile(pattern: str, flags: str) -> re.Pattern[str] | None:
    bits = (re.I if "i" in flags else 0) | (re.X if "x" in flags else 0)
    try:
        return re.compile(pattern, bits)
    except re.error:
        return None


def _template(expr: str) -> str | None:
    m = _QUOTED.fullmatch(expr.strip())
    return m.group(1) if m else None


def alias_names(aliases: tuple[Alias, ...], find: str, depth: int = 4) -> frozenset[str]:
    """Every name the aliases may turn `find` into, followed `depth` deep;
    `UNKNOWN` among them when an alias that matches cannot be read."""
    out: set[str] = set()
    todo = [find]
    for _ in range(depth):
        new = {n for f in todo for a in aliases if (n := a.apply(f)) is not None} - out
        new.discard(find)
        out |= new
        todo = [n for n in new if n != UNKNOWN]
    return frozenset(out)
