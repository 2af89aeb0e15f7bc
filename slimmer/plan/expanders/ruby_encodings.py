"""Ruby's encoding libraries (`enc/`), kept by evidence.

Ruby loads `enc/<name>.so` (and a transcoder from `enc/trans/`) on an encoding's
first use, so a name that comes from data never shows in the code. `enc/` is
kept whole only where something says the name may come from data; else a core
set any Ruby may load unasked.
"""

from __future__ import annotations

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
    own = tuple(d + "/" for d in load_path if not in_gem_dir(ctx.tree, d))
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
