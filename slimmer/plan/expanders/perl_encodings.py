"""The modules Perl's `Encode` loads by an encoding's name, for the `perl-modules`
expander (`slimmer.plan.expanders.perl`).

`Encode` holds ASCII, Latin-1 and UTF-8 itself; any other encoding's module is
required on its first lookup (`Encode::getEncoding`: the name, lower-cased, in
`%Encode::ExtModule`, which `Encode/Config.pm` and an optional
`Encode/ConfigLocal.pm` fill: `'UTF-16LE' => 'Encode::Unicode'`), so no `use`
names it. Kept: the module of each encoding kept app code names by a literal
(`encode("UTF-16LE", …)`, `decode`, `find_encoding`, `from_to`, with or without
parentheses, a bareword before `=>` too; an `:encoding(…)` I/O layer), with the
modules of the names its aliases give it (`perl_encode_aliases`), or every module
of the table when a name is computed at run time (a variable, a call, a constant)
or neither the table nor the aliases settle it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from slimmer.image.paths import is_file, read_text, tree_memo
from slimmer.model import TreeView
from slimmer.plan.expanders._common import RUNTIME_LIBRARY
from slimmer.plan.expanders.perl_encode_aliases import UNKNOWN, Alias, alias_names, parse_aliases
from slimmer.plan.keep import ProfileContext, Reason

# A call with or without parentheses; its name argument a quoted literal, a bareword
# before `=>` (Perl quotes it: `encode(utf8 => $s)`), or computed: a variable, a
# call, a constant (`encode(ENC, $s)`).
_CALL = re.compile(
    r"(?<![\w$@%>:])(?:Encode::)?(encode|decode|find_encoding|from_to)(?:\s*\(\s*|\s+)"
    r"(?:(\$\w+)\s*,\s*)?"  # from_to's first argument is the data
    r"(?:(['\"])([\w.:+-]+)\3|(\w+)(?=\s*=>)|([$@&]\w*|\w+\(|[A-Z_][A-Z0-9_]*\b))"
)
_FROM_TO_TARGET = re.compile(r"\s*,\s*(?:(['\"])([\w.:+-]+)\1|([$@&]\w*))")
_LAYER = re.compile(r":encoding\(\s*(?:(['\"]?)([\w.:+-]+)\1|(\$\w+))\s*\)")
_COMMENT = re.compile(r"(?m)^[ \t]*#.*$")
_TABLE_ENTRY = re.compile(r"""(['"])([^'"\n]+)\1\s*=>\s*(['"])(Encode::[\w:]+)\3""")
# The encodings Encode.pm defines itself (Encode::XS, Encode::utf8), by their
# names and the aliases every Encode knows them by, normalised (`_key`). Encode.so
# may compile in more (Encode 3.x: cp1252, which the table still gives Encode::Byte):
# `xs_encodings` reads them from the image.
BUILT_IN = frozenset(
    {"ascii", "usascii", "asciictrl", "iso88591", "latin1", "null", "utf8", "utf8strict"}
)
_C_STRING = re.compile(rb"(?<=\0)[\w.:+-]{2,32}(?=\0)")
COMPUTED = ""


@dataclass(frozen=True)
class EncodingUse:
    """An encoding named in a source: its line and name (`COMPUTED` when it is not
    a literal)."""

    line: int
    name: str


def encoding_uses(code: str) -> tuple[EncodingUse, ...]:
    """Every encoding Perl `code` looks up by name (module doc)."""
    out = []
    for m in _CALL.finditer(code) if "Encode" in code else ():
        line = code.count("\n", 0, m.start()) + 1
        out.append(EncodingUse(line, m.group(4) or m.group(5) or COMPUTED))
        if m.group(1) == "from_to" and (t := _FROM_TO_TARGET.match(code, m.end())):
            out.append(EncodingUse(line, t.group(2) or COMPUTED))
    for m in _LAYER.finditer(code):
        out.append(EncodingUse(code.count("\n", 0, m.start()) + 1, m.group(2) or COMPUTED))
    return tuple(sorted(out, key=lambda u: u.line))


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def encoding_table(tree: TreeView, inc: tuple[str, ...]) -> dict[str, str]:
    """`%Encode::ExtModule` as the image's `Encode/Config.pm` (and `ConfigLocal.pm`)
    fill it: normalised encoding name -> module (entries commented out skipped)."""
    out: dict[str, str] = {}
    for name in ("Config", "ConfigLocal"):
        files = (f"{d}/Encode/{name}.pm" for d in inc)
        text = next((read_text(tree, f) for f in files if is_file(tree, f)), None) or ""
        code = _COMMENT.sub("", text.split("\n__END__\n", 1)[0])
        for m in _TABLE_ENTRY.finditer(code):  # a later entry wins, as in a Perl hash
            out[_key(m.group(2))] = m.group(4)
    return out


def encode_modules(
    ctx: ProfileContext, inc: tuple[str, ...], sources: Iterable[str], profile_name: str
) -> list[tuple[str, Reason]]:
    """(module name, reason) of each `Encode` module the kept Perl `sources` may load
    by an encoding's name; nothing unless `Encode.pm` is kept. A call counts in a
    file that names `Encode`. Perl's own library counts with its literal names
    (`Encode::Unicode::UTF7` asks for UTF-16BE when it loads), not its computed ones
    (`Encode::Alias` looks up whatever its caller names: the caller is the evidence)."""
    if not any(p.endswith("/Encode.pm") and p.rpartition("/Encode.pm")[0] in inc for p in ctx.kept):
        return []
    key = "\0".join(inc)
    table = tree_memo(ctx.tree, "perl-encode:" + key, partial(encoding_table, ctx.tree, inc))
    aliases = tree_memo(ctx.tree, "perl-encode-alias:" + key, partial(_aliases, ctx.tree, inc))
    xs = tree_memo(ctx.tree, "perl-encode-xs:" + key, partial(xs_encodings, ctx.tree, inc, table))
    lookup = _Lookup(table, aliases, BUILT_IN | xs)
    out: list[tuple[str, Reason]] = []
    for path in sorted(sources):
        uses = tree_memo(ctx.tree, f"perl-encode-uses:{path}", partial(_uses_of, ctx.tree, path))
        for use in uses:
            if use.name or not RUNTIME_LIBRARY.search(path):
                out += _modules_for(lookup, path, use, profile_name)
    return out


def xs_encodings(tree: TreeView, inc: tuple[str, ...], table: dict[str, str]) -> frozenset[str]:
    """The encodings of the table that the image's `auto/Encode/Encode.so` compiles
    in (their names are C strings there): Encode finds them before its table, so
    their table module is never loaded."""
    so = next(
        (f"{d}/auto/Encode/Encode.so" for d in inc if is_file(tree, f"{d}/auto/Encode/Encode.so")),
        "",
    )
    try:
        data = tree.read_bytes(so) if so else b""
    except (LookupError, FileNotFoundError, OSError):
        return frozenset()
    names = {_key(m.group().decode()) for m in _C_STRING.finditer(data)}
    return frozenset(names & table.keys())


@dataclass(frozen=True)
class _Lookup:
    """What settles the module of an encoding's name: the table, the aliases, the
    names Encode holds itself."""

    table: dict[str, str]
    aliases: tuple[Alias, ...]
    built_in: frozenset[str]


def _aliases(tree: TreeView, inc: tuple[str, ...]) -> tuple[Alias, ...]:
    found = next((f"{d}/Encode/Alias.pm" for d in inc if is_file(tree, f"{d}/Encode/Alias.pm")), "")
    return parse_aliases(read_text(tree, found) or "") if found else ()


def table_modules(
    table: dict[str, str],
    aliases: tuple[Alias, ...],
    name: str,
    built_in: frozenset[str] = BUILT_IN,
) -> frozenset[str]:
    """The modules Encode may load for `name`: those of the name and of every name
    its aliases give it; none for an encoding Encode holds itself (`built_in`);
    every module of the table when an alias cannot be read or nothing is found."""
    if _key(name) in built_in:
        return frozenset()
    names = {name, *alias_names(aliases, name)}
    held = {n for n in names if _key(n) in built_in}
    found = frozenset(table[_key(n)] for n in names - held if _key(n) in table)
    if UNKNOWN not in names and (found or held):
        return found
    return frozenset(table.values())


def _uses_of(tree: TreeView, path: str) -> tuple[EncodingUse, ...]:
    text = read_text(tree, path)
    return encoding_uses(text.split("\n__END__\n", 1)[0]) if text else ()


def _modules_for(
    lookup: _Lookup, path: str, use: EncodingUse, profile_name: str
) -> list[tuple[str, Reason]]:
    where = f"{path}:{use.line}"
    every = frozenset(lookup.table.values())
    found = (
        table_modules(lookup.table, lookup.aliases, use.name, lookup.built_in)
        if use.name
        else every
    )
    if not use.name:
        why = f"{where} asks Encode for an encoding named at run time"
    elif found == every:
        why = f"{where} names {use.name!r}, which Encode's table and aliases do not settle"
    else:
        why = f"{where} asks Encode for {use.name!r}, which Encode loads from {{}}"
    return [(m, Reason("profile", why.format(m), profile_name)) for m in sorted(found)]
