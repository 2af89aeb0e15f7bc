"""The codecs of Python's `encodings` package that kept code may look up, for the
`python-imports` expander (`slimmer.plan.expanders.python`).

CPython finds a codec by importing `encodings.<normalised name>` on first use (and
that module imports its C module, e.g. `_codecs_jp` for shift_jis), so no import
statement names it. Kept: the codecs CPython and the standard library name by
literal (CORE_CODECS) and the locale's, or every codec when the app looks one up by
a name computed at run time (`computed_codec_lines`, the evidence).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from functools import partial

from slimmer.image.paths import is_file, read_text, tree_memo
from slimmer.model import TreeView
from slimmer.plan.expanders.python_interp import in_stdlib
from slimmer.plan.keep import Addition, ProfileContext, Reason

# The codecs CPython and the standard library name by literal: the defaults of
# str.encode/bytes.decode and the file system (UTF-8, ASCII, Latin-1), json's
# detection of UTF-16/32, IDNA host names (socket, http.client), the escape codecs
# of repr and pickle, and charmap under the single-byte tables. Kept with the
# package's `__init__` and `aliases` (how a name becomes a module name).
CORE_CODECS = (
    "__init__",
    "aliases",
    "ascii",
    "latin_1",
    "utf_8",
    "utf_8_sig",
    "utf_16",
    "utf_16_le",
    "utf_16_be",
    "utf_32",
    "utf_32_le",
    "utf_32_be",
    "idna",
    "punycode",
    "raw_unicode_escape",
    "unicode_escape",
    "charmap",
)
_LOCALE_VARS = ("LC_ALL", "LC_CTYPE", "LANG")


def codec_additions(
    ctx: ProfileContext, dirs: tuple[str, ...], sources: list[str], profile_name: str
) -> list[Addition]:
    """The `encodings` package's sources, which CPython imports by a name computed
    from the codec's (`encodings.<name>`): every codec when a kept source outside
    the standard library names one computed at run time (`x.encode(name)`; its
    line is the evidence), else CORE_CODECS and the codec of the locale the Env
    names. A codec's C module (`_codecs_jp` for shift_jis) is then found as its
    import. Compiled caches are left to the trace: a codec imports from its source.
    """
    packages = [f"{d}/encodings" for d in dirs if is_file(ctx.tree, f"{d}/encodings/__init__.py")]
    evidence = _computed_codec_evidence(ctx, dirs, sources) if packages else None
    out: list[Addition] = []
    for pkg in packages:
        if evidence is not None:
            why = f"{evidence}: a codec named at run time may be any of {pkg}"
            names = [n[:-3] for n in ctx.tree.listdir(pkg) if n.endswith(".py")]
        else:
            why = "CPython and the standard library look these codecs up by literal names"
            names = list(CORE_CODECS)
        out += _codec_files(ctx, pkg, names, Reason("profile", why, profile_name))
        out += _codec_files(ctx, pkg, _locale_codecs(ctx, pkg), _locale_reason(ctx, profile_name))
    return out


def _codec_files(
    ctx: ProfileContext, pkg: str, names: Iterable[str], why: Reason
) -> list[Addition]:
    paths = sorted({f"{pkg}/{n}.py" for n in names})
    return [Addition(p, why) for p in paths if is_file(ctx.tree, p)]


def _computed_codec_evidence(
    ctx: ProfileContext, dirs: tuple[str, ...], sources: list[str]
) -> str | None:
    """`file:line` of the first kept source outside the standard library (the app and
    its packages) that looks a codec up by a computed name, or None."""
    for path in sources:
        if in_stdlib(path, dirs):
            continue
        lines = tree_memo(ctx.tree, "python_codecs:" + path, partial(_codec_lines, ctx.tree, path))
        if lines:
            return f"{path}:{lines[0]} looks a codec up by a name computed at run time"
    return None


def _codec_lines(tree: TreeView, path: str) -> tuple[int, ...]:
    try:
        return computed_codec_lines(tree.read_bytes(path))
    except (LookupError, FileNotFoundError, OSError):
        return ()


def _locale_codecs(ctx: ProfileContext, pkg: str) -> list[str]:
    """The codec modules of the charsets LC_ALL, LC_CTYPE and LANG name
    (`ja_JP.eucJP` -> euc_jp), through the package's alias table."""
    aliases = tree_memo(ctx.tree, "pyaliases:" + pkg, partial(_aliases, ctx.tree, pkg))
    out = []
    for var in _LOCALE_VARS:
        charset = ctx.config.env.get(var, "").partition(".")[2].partition("@")[0]
        name = re.sub(r"[^0-9a-z]+", "_", charset.lower()).strip("_")
        if name:
            out.append(aliases.get(name, name))
    return out


def _locale_reason(ctx: ProfileContext, profile_name: str) -> Reason:
    named = ", ".join(f"{v}={ctx.config.env[v]}" for v in _LOCALE_VARS if v in ctx.config.env)
    return Reason("profile", f"the locale's codec ({named}), looked up at start-up", profile_name)


def _aliases(tree: TreeView, pkg: str) -> dict[str, str]:
    """`encodings.aliases.aliases`, read as a literal (empty when it cannot be)."""
    text = read_text(tree, f"{pkg}/aliases.py") or ""
    m = re.search(r"^aliases\s*=\s*(\{.*?^\})", text, re.M | re.S)
    try:
        value = ast.literal_eval(m.group(1)) if m else {}
    except (ValueError, SyntaxError):
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


# -- codecs named at run time --------------------------------------------------------------

# `codecs` functions whose first argument is a codec name.
_CODEC_FUNCS = frozenset(
    {
        "lookup",
        "getencoder",
        "getdecoder",
        "getincrementalencoder",
        "getincrementaldecoder",
        "getreader",
        "getwriter",
        "iterencode",
        "iterdecode",
    }
)


def computed_codec_lines(source: bytes | str) -> tuple[int, ...]:
    """Lines of `source` that look a codec up by a name computed at run time.

    A name that is not a literal can be any codec. Counted: `x.encode(name)` /
    `x.decode(name)`, `codecs.lookup(name)` and the other `codecs` functions above,
    and any call with `encoding=name` (`open`, `io.TextIOWrapper`, `codecs.open`,
    `subprocess.run`) where `name` is not a constant. A source `ast` cannot parse
    has none (nothing is guessed).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    lines = {
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and _computes(node)
    }
    return tuple(sorted(lines))


def _computes(node: ast.Call) -> bool:
    if any(k.arg == "encoding" and not isinstance(k.value, ast.Constant) for k in node.keywords):
        return True
    func = node.func
    if not isinstance(func, ast.Attribute):
        return False
    of_codecs = isinstance(func.value, ast.Name) and func.value.id == "codecs"
    if func.attr in ("encode", "decode") or (of_codecs and func.attr in _CODEC_FUNCS):
        first = node.args[0] if node.args else None
        return first is not None and not isinstance(first, (ast.Constant, ast.Starred))
    return False
