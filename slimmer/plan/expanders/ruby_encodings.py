"""Ruby's encoding libraries (`enc/`), kept by evidence.

Ruby loads `enc/<name>.so` (and transcoders from `enc/trans/`) on an encoding's
first use, so a name that comes from data never shows in the code. Kept: a core
set any Ruby may load unasked; for each encoding app or gem code names by a
literal (`str.encode("ISO-8859-1")`, `force_encoding("EUC-JP")`,
`Encoding::Windows_31J`, `File.open(p, "r:cp932")`, `encoding: "..."`) the
library Ruby loads for it and the transcoders between it and UTF-8 (and the
literal source of `encode(to, from)`), resolved through Ruby 3.1's own tables
(`ruby_encoding_table`: aliases and replicas, CP932 -> Windows-31J); all of
`enc/` where the name may come from data or cannot be resolved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
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
from slimmer.plan.expanders.ruby_encoding_table import NAMES, TRANSCODERS, UNLOADED
from slimmer.plan.expanders.ruby_gems import in_gem_dir
from slimmer.plan.expanders.ruby_source import ruby_code
from slimmer.plan.keep import Addition, ProfileContext, Reason

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
# The XML escaping decorators of `encode(xml: :text)`.
XML_ESCAPE = "trans/escape.so"
KNOWN_LIBRARIES = frozenset(
    {*CORE_ENCODINGS, XML_ESCAPE, *UNLOADED}
    | {lib for _, libs in NAMES.values() for lib in libs}
    | {lib for libs in TRANSCODERS.values() for lib in libs}
)
_DEFAULT = "UTF-8"
# The names Ruby gives the locale's charset and its defaults: UTF-8 or US-ASCII
# here, as `-E`/`-K` and a locale that is not UTF-8 or C keep all of enc/.
_LOCALE_NAMES = frozenset({"locale", "filesystem", "external", "internal"})
_PICKS_ENCODING = re.compile(
    r"\bforce_encoding\b|(?<!def )\bencode!?(?![\w?])|Encoding\.find\b|Encoding::Converter\b"
    r"|\bset_encoding\b|\.\w*encoding\s*(?==[^=])|\bdefault_(?:ex|in)ternal\s*(?==[^=])"
    r"|\bencoding:|:encoding\s*=>"
    r"|Encoding::(?!UTF_8\b|BINARY\b|ASCII_8BIT\b|US_ASCII\b)(?P<const>[A-Z]\w*)"
    r"|(?P<q>['\"])(?:[rwa][bt]?\+?|[rwa]\+?[bt]?):(?i:bom\|)?(?P<mode>[^'\"\s]*)(?P=q)"
    r"|\b(?P<own>NKF|Kconv|Iconv)\b",
)
_MODE_NAME = re.compile(r"[\w.+-]+")
_NOT_ENCODINGS = frozenset(
    {
        "Converter",
        "CompatibilityError",
        "ConverterNotFoundError",
        "InvalidByteSequenceError",
        "UndefinedConversionError",
    }
)
_OPEN_ARGS = re.compile(r"\s*(?:=|\.(?:new|search_convpath|asciicompat_encoding)\b)?\s*\(?\s*")
_ARG = re.compile(r"(['\"])([\w.:+-]+)\1|(?:::)?Encoding::(\w+)")
_COMMA = re.compile(r"\s*,\s*")
# What may follow `encode` and the like when they name no encoding: nothing, an
# option, the end of the call or statement.
_NO_NAME = re.compile(
    r"\)|\*\*|\w+:(?!:)|$|[.;&|}\]]|(?:if|unless|and|or|then|do|end|rescue|nil)\b", re.M
)
_XML = re.compile(r"[^\n]*?\bxml:")
# A magic comment on the first two lines naming a source encoding other than UTF-8.
_MAGIC = re.compile(
    r"\A(?:#![^\n]*\n)?#.*coding[:=]\s*(?!utf-8\b|us-ascii\b|binary\b|ascii-8bit\b)[\w-]+",
    re.I,
)
_UTF8_LOCALE = re.compile(r"\A(|C|POSIX|[\w@]*\.(?i:utf-?8)(@\w+)?)\Z")
COMPUTED = None
_C_STRING = re.compile(rb"(?<=\0)[\w.:+-]{3,40}(?=\0)")
# The C strings of an index that are not encoding names: ELF sections, symbols,
# libraries, and the decorators of `transdb.so` (newlines, XML escapes).
_NOT_A_NAME = re.compile(r"\A(?:[._]|rb_|Init_|lib|GLIBC_|GNU\Z)|_newline\Z|escape\Z|\Axml_")


@dataclass(frozen=True)
class EncodingUse:
    """One place in a source that asks Ruby for encodings: its line, what it says,
    the literal names (`names`, `COMPUTED` when a name comes at run time), whether
    the first two convert into each other (`encode(to, from)`), and whether it asks
    for XML escaping."""

    line: int
    said: str
    names: tuple[str, ...] | None
    pair: bool = False
    xml: bool = False


def encoding_uses(code: str) -> tuple[EncodingUse, ...]:
    """Every place Ruby `code` (comments removed) names or converts an encoding."""
    out: list[EncodingUse] = []
    for m in _PICKS_ENCODING.finditer(code):
        line = code.count("\n", 0, m.start()) + 1
        said = m.group(0).strip()
        if m["own"]:  # NKF, Kconv, Iconv convert by names of their own
            out.append(EncodingUse(line, said, COMPUTED))
        elif m["q"]:  # an I/O mode string: "r:ext:int"; "r:#{enc}" is computed
            parts = m["mode"].split(":")
            names = tuple(parts) if all(_MODE_NAME.fullmatch(n) for n in parts) else COMPUTED
            out.append(EncodingUse(line, said, names, pair=len(parts) == 2))
        elif m["const"]:  # Encoding::Shift_JIS
            if m["const"] not in _NOT_ENCODINGS:
                out.append(EncodingUse(line, said, (f"Encoding::{m['const']}",)))
        elif use := _call_use(code, m, line, said):
            out.append(use)
    return tuple(out)


def _call_use(code: str, m: re.Match[str], line: int, said: str) -> EncodingUse | None:
    """The encodings a call or assignment at `m` names by its leading literal
    arguments; None when it names none (no argument, options only)."""
    pos = _OPEN_ARGS.match(code, m.end())
    at = pos.end() if pos else m.end()
    names: list[str] = []
    while arg := _ARG.match(code, at):
        names.append(arg.group(2) or f"Encoding::{arg.group(3)}")
        if not (sep := _COMMA.match(code, arg.end())):
            break
        at = sep.end()
        if not _ARG.match(code, at) and not _NO_NAME.match(code, at):
            return EncodingUse(line, said, COMPUTED)  # encode("UTF-8", from)
    xml = bool(said.startswith("encode") and _XML.match(code, m.end()))
    if names:
        pair = said.startswith(("encode", "Encoding::Converter")) and len(names) >= 2
        return EncodingUse(line, said, tuple(names[:2]), pair=pair, xml=xml)
    if _NO_NAME.match(code, at):
        return EncodingUse(line, said, (), xml=True) if xml else None
    return EncodingUse(line, said, COMPUTED)


def canonical(name: str) -> str | None:
    """The encoding Ruby gives `name` (a name, an alias or an `Encoding::` constant),
    None when Ruby 3.1 does not know it."""
    if name.lower() in _LOCALE_NAMES:
        return _DEFAULT
    if name.startswith("Encoding::"):
        const = name.removeprefix("Encoding::").lower()
        found = {c for n, (c, _) in NAMES.items() if re.sub(r"[^0-9a-z]", "_", n) == const}
        return found.pop() if len(found) == 1 else None
    row = NAMES.get(name.lower())
    return row[0] if row else None


def conversion_libraries(source: str, target: str) -> frozenset[str]:
    """The libraries Ruby may load to convert `source` into `target` (both as
    `canonical` gives them): those of every transcoder on a shortest path."""
    if source == target:
        return frozenset()
    ahead = _distances(source, forward=True)
    back = _distances(target, forward=False)
    if target not in ahead:
        return frozenset()
    total = ahead[target]
    return frozenset(
        lib
        for (a, b), libs in TRANSCODERS.items()
        if a in ahead and b in back and ahead[a] + 1 + back[b] == total
        for lib in libs
    )


def _distances(start: str, forward: bool) -> dict[str, int]:
    out = {start: 0}
    todo = [start]
    while todo:
        here = todo.pop(0)
        for a, b in TRANSCODERS:
            near, far = (a, b) if forward else (b, a)
            if near == here and far not in out:
                out[far] = out[here] + 1
                todo.append(far)
    return out


def use_libraries(use: EncodingUse) -> dict[str, str] | None:
    """Library (relative to `enc/`) -> the encoding it serves, for a use with
    literal names; None when a name is computed or unknown to Ruby."""
    if use.names is None:
        return None
    found = [canonical(n) for n in use.names]
    if None in found:
        return None
    names = [n for n in found if n]
    out: dict[str, str] = {XML_ESCAPE: "XML escaping"} if use.xml else {}
    for name in names:
        for lib in NAMES[name.lower()][1]:
            out.setdefault(lib, name)
        for lib in conversion_libraries(name, _DEFAULT) | conversion_libraries(_DEFAULT, name):
            out.setdefault(lib, f"{name} <-> {_DEFAULT}")
    if use.pair and len(names) == 2:
        for lib in conversion_libraries(names[1], names[0]):
            out.setdefault(lib, f"{names[1]} -> {names[0]}")
    return out


def ruby_encodings(
    ctx: ProfileContext, load_path: Iterable[str], code: Iterable[str], profile_name: str
) -> list[Addition]:
    """Ruby loads `enc/<name>.so` (and a transcoder) on an encoding's first use.
    All of `enc/` where the name may come from data: an encoding library outside
    the core traced, a non-UTF-8 locale or `-E`/`-K` in RUBYOPT, a magic comment,
    app or gem code (not Ruby's own library) naming an encoding at run time or by
    a name Ruby's table does not settle; else the core set and the libraries of
    the encodings kept code names by literals (Ruby's own library too)."""
    tree = ctx.tree
    dirs = [d for g in ENC_DIR_GLOBS for d in expand(tree, compile_glob(g)) if is_dir(tree, d)]
    if not dirs:
        return []
    own = tuple(d + "/" for d in load_path if not in_gem_dir(tree, d))
    evidence = _encoding_evidence(ctx, dirs)
    named: dict[str, str] = {}
    for path in sorted(p for p in code if p.endswith(".rb")):
        if evidence:
            break
        said, libs = _source_libraries(tree, path)
        # Ruby's own library counts with its literal names (cgi/util's
        # Encoding::ISO_8859_1), not its computed ones: its caller picks those
        evidence = "" if path.startswith(own) else said
        for lib, why in libs.items():
            named.setdefault(lib, why)
    out: list[Addition] = []
    for d in dirs:
        mismatch = tree_memo(tree, f"ruby-enc-table:{d}", partial(table_mismatch, tree, d))
        if evidence or (named and mismatch):
            why = evidence or mismatch
            reason = Reason(
                "profile", f"Ruby loads any encoding it is asked for: {why}", profile_name
            )
            out += [Addition(p, reason) for p in walk_below(tree, d)]
            continue
        core = Reason(
            "profile",
            "Ruby's encoding indexes and UTF-16/32 (byte order marks); the locale is UTF-8 or C",
            profile_name,
        )
        out += [Addition(f"{d}/{n}", core) for n in CORE_ENCODINGS if is_file(tree, f"{d}/{n}")]
        out += [
            Addition(f"{d}/{lib}", Reason("profile", why, profile_name))
            for lib, why in sorted(named.items())
            if lib not in CORE_ENCODINGS and is_file(tree, f"{d}/{lib}")
        ]
    return out


def table_mismatch(tree: TreeView, enc_dir: str) -> str:
    """What in the image's `enc_dir` Ruby 3.1's tables (`ruby_encoding_table`) do
    not know: a library, or an encoding name `encdb.so`/`trans/transdb.so` declare
    (C strings there); '' when they all match."""
    for path in sorted(walk_below(tree, enc_dir)):
        if path.endswith(".so") and path[len(enc_dir) + 1 :] not in KNOWN_LIBRARIES:
            return f"{path} is not in Ruby 3.1's encoding table"
    stems = {lib.removeprefix("trans/").removesuffix(".so") for lib in KNOWN_LIBRARIES}
    ends = {n.lower() for pair in TRANSCODERS for n in pair}
    for index, known in (("encdb.so", NAMES.keys()), ("trans/transdb.so", ends)):
        try:
            data = tree.read_bytes(f"{enc_dir}/{index}")
        except (LookupError, FileNotFoundError, OSError):
            continue
        for m in _C_STRING.finditer(data):
            name = m.group().decode()
            if name.lower() not in known and not _NOT_A_NAME.search(name) and name not in stems:
                return f"{enc_dir}/{index} declares {name!r}, which Ruby 3.1's table does not know"
    return ""


def _encoding_evidence(ctx: ProfileContext, dirs: list[str]) -> str:
    """Why the encoding may come from data, outside the code ('' when nothing
    says so)."""
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
    return ""


def _source_libraries(tree: TreeView, path: str) -> tuple[str, dict[str, str]]:
    """(why every encoding may be loaded, '' when nothing says so; library -> why
    it is kept) for the Ruby source `path`."""
    return tree_memo(tree, f"ruby-enc:{path}", partial(_read_source, tree, path))


def _read_source(tree: TreeView, path: str) -> tuple[str, dict[str, str]]:
    text = read_text(tree, path) or ""
    evidence = ""
    if magic := _MAGIC.search(text):
        evidence = f"{path} says {magic.group(0).strip()!r}"
    out: dict[str, str] = {}
    for use in encoding_uses(ruby_code(text)):
        where = f"{path}:{use.line}"
        libs = use_libraries(use)
        names = ", ".join(map(repr, use.names or ()))
        if libs is None and use.names is COMPUTED:
            evidence = evidence or f"{where} names an encoding at run time ({use.said!r})"
        elif libs is None:
            evidence = evidence or f"{where} names {names}, which Ruby 3.1 does not know"
        for lib, serves in (libs or {}).items():
            asks = f"{names}: {serves}" if names else serves
            out.setdefault(lib, f"{where} asks Ruby for {asks}, which needs enc/{lib}")
    return evidence, out
