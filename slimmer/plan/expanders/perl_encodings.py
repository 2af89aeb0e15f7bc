"""The modules Perl's `Encode` loads by an encoding's name, for the `perl-modules`
expander (`slimmer.plan.expanders.perl`).

`Encode` holds ASCII, Latin-1 and UTF-8 itself; any other encoding's module is
required on its first lookup (`Encode::getEncoding`: the name, lower-cased, in
`%Encode::ExtModule`, which `Encode/Config.pm` and an optional
`Encode/ConfigLocal.pm` fill: `'UTF-16LE' => 'Encode::Unicode'`), so no `use`
names it. Kept: the module of each encoding kept app code names by a literal
(`encode("UTF-16LE", …)`, `decode`, `find_encoding`, `from_to`, an `:encoding(…)`
I/O layer), or every module of the table when a name is computed at run time or
is not in the table (`Encode::Alias` maps aliases by patterns; the alias may be
any of them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from slimmer.image.paths import is_file, read_text, tree_memo
from slimmer.model import TreeView
from slimmer.plan.keep import ProfileContext, Reason

_CALL = re.compile(
    r"(?<![\w$@%>:])(?:Encode::)?(encode|decode|find_encoding|from_to)\s*\(\s*"
    r"(?:(\$\w+)\s*,\s*)?"  # from_to's first argument is the data
    r"(?:(['\"])([\w.:+-]+)\3|([$@&]\w*|\w+\())"
)
_FROM_TO_TARGET = re.compile(r"\s*,\s*(?:(['\"])([\w.:+-]+)\1|([$@&]\w*))")
_LAYER = re.compile(r":encoding\(\s*(?:(['\"]?)([\w.:+-]+)\1|(\$\w+))\s*\)")
_TABLE_ENTRY = re.compile(r"""(['"])([^'"\n]+)\1\s*=>\s*(['"])(Encode::[\w:]+)\3""")
# The encodings Encode.pm defines itself (Encode::XS, Encode::utf8), by their
# names and the aliases every Encode knows them by, normalised (`_key`).
BUILT_IN = frozenset(
    {"ascii", "usascii", "asciictrl", "iso88591", "latin1", "l1", "null", "utf8", "utf8strict"}
)
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
        out.append(EncodingUse(line, m.group(4) or COMPUTED))
        if m.group(1) == "from_to" and (t := _FROM_TO_TARGET.match(code, m.end())):
            out.append(EncodingUse(line, t.group(2) or COMPUTED))
    for m in _LAYER.finditer(code):
        out.append(EncodingUse(code.count("\n", 0, m.start()) + 1, m.group(2) or COMPUTED))
    return tuple(sorted(out, key=lambda u: u.line))


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def encoding_table(tree: TreeView, inc: tuple[str, ...]) -> dict[str, str]:
    """`%Encode::ExtModule` as the image's `Encode/Config.pm` (and `ConfigLocal.pm`)
    fill it: normalised encoding name -> module."""
    out: dict[str, str] = {}
    for name in ("Config", "ConfigLocal"):
        files = (f"{d}/Encode/{name}.pm" for d in inc)
        text = next((read_text(tree, f) for f in files if is_file(tree, f)), None) or ""
        for m in _TABLE_ENTRY.finditer(text):
            out.setdefault(_key(m.group(2)), m.group(4))
    return out


def encode_modules(
    ctx: ProfileContext, inc: tuple[str, ...], sources: Iterable[str], profile_name: str
) -> list[tuple[str, Reason]]:
    """(module name, reason) of each `Encode` module `sources` (the app's kept Perl
    code: Perl's own library is no evidence) may load by an encoding's name; nothing
    unless `Encode.pm` is kept. A call counts in a file that names `Encode`."""
    if not any(p.endswith("/Encode.pm") and p.rpartition("/Encode.pm")[0] in inc for p in ctx.kept):
        return []
    table = tree_memo(
        ctx.tree, "perl-encode:" + "\0".join(inc), partial(encoding_table, ctx.tree, inc)
    )
    out: list[tuple[str, Reason]] = []
    for path in sorted(sources):
        uses = tree_memo(ctx.tree, f"perl-encode-uses:{path}", partial(_uses_of, ctx.tree, path))
        for use in uses:
            out += _modules_for(table, path, use, profile_name)
    return out


def _uses_of(tree: TreeView, path: str) -> tuple[EncodingUse, ...]:
    text = read_text(tree, path)
    return encoding_uses(text.split("\n__END__\n", 1)[0]) if text else ()


def _modules_for(
    table: dict[str, str], path: str, use: EncodingUse, profile_name: str
) -> list[tuple[str, Reason]]:
    where = f"{path}:{use.line}"
    key = _key(use.name)
    if use.name and key in BUILT_IN:
        return []
    if use.name and key in table:
        why = f"{where} asks Encode for {use.name!r}, which Encode loads from {table[key]}"
        return [(table[key], Reason("profile", why, profile_name))]
    what = f"names {use.name!r}, which Encode's table does not list (an alias may be any)"
    why = f"{where} {what if use.name else 'asks Encode for an encoding named at run time'}"
    return [(m, Reason("profile", why, profile_name)) for m in sorted(set(table.values()))]
