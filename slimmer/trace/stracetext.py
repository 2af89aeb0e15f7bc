"""strace's text format: lines into calls, and the values inside them.

One file written by `strace -f -y -x`: each line starts with the pid; a call
that blocks is split into `<unfinished ...>` and `<... NAME resumed>` halves,
joined here in the order the calls started. Strings come escaped (`\\xNN`
with -x/-xx, octal and C escapes otherwise) and are decoded to their exact
bytes; `-y` decorates file descriptors with their path (`3</etc/passwd>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# -- lines -> calls -------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    seq: int  # line number where the call started: the order it was made in
    pid: int
    name: str
    args: tuple[str, ...]
    result: str  # the text after "= ", or "?" when the call never finished


_PREFIX = re.compile(
    r"^(?:\[pid\s+)?(?P<pid>\d+)\]?\s+"
    r"(?:(?:\d+:\d+:\d+|\d+)(?:\.\d+)?\s+)?(?P<rest>.*)$"
)
_UNFINISHED = re.compile(r"\s*<unfinished \.\.\.>")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>[\w?]+) resumed>\s?(?P<rest>.*)$")
_HEAD = re.compile(r"^(?P<name>\w+)\((?P<rest>.*)$")


def split_calls(text: str) -> tuple[list[Call], list[str]]:
    """Join `<unfinished ...>`/`<... resumed>` halves into whole calls, by pid."""
    pending: dict[int, tuple[int, str]] = {}
    calls: list[Call] = []
    warnings: list[str] = []
    for num, line in enumerate(text.split("\n"), 1):
        m = _PREFIX.match(line)
        rest = m.group("rest") if m else line
        if not rest.strip() or rest.startswith(("---", "+++", "strace:")):
            continue
        pid = int(m.group("pid")) if m else 0
        seq, body = num, rest
        resumed = _RESUMED.match(rest)
        if resumed:
            if pid not in pending:
                warnings.append(f"line {num}: resumed call {resumed.group('name')} never started")
                continue
            seq, head = pending.pop(pid)
            body = head + resumed.group("rest")
        if re.search(r"<unfinished \.\.\.>\s*$", body):
            pending[pid] = (seq, _UNFINISHED.sub("", body) + " ")
            continue
        call = _call(seq, pid, _UNFINISHED.sub("", body))
        if call is None:
            warnings.append(f"line {num}: cannot read {rest[:80]!r}")
        else:
            calls.append(call)
    for pid, (seq, head) in pending.items():  # killed mid-call: the result is unknown
        call = _call(seq, pid, head.rstrip(" ,") + ") = ?")
        if call is not None:
            calls.append(call)
    calls.sort(key=lambda c: c.seq)
    return calls, warnings


def _call(seq: int, pid: int, body: str) -> Call | None:
    m = _HEAD.match(body)
    if not m:
        return None
    split = _split_args(m.group("rest"))
    if split is None:
        return None
    args, after = split
    result = re.match(r"\s*=\s*(.*)$", after)
    return Call(seq, pid, m.group("name"), args, result.group(1) if result else "?")


def _split_args(text: str) -> tuple[tuple[str, ...], str] | None:
    """Split "a, {b, c}, "d,e")  = 0" at top-level commas up to the closing paren.

    Quotes (with backslash escapes), brackets and `-y` decorations `<...>`
    (in which strace escapes `<` and `>`) are skipped as units.
    """
    args: list[str] = []
    depth, start, i, quote, deco = 0, 0, 0, False, False
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1  # the escaped character cannot end the string
            quote = c != '"'
            i += 1
            continue
        if deco:
            deco = c != ">"
        elif c == '"':
            quote = True
        elif c == "<":
            deco = True
        elif c in "([{":
            depth += 1
        elif c in "}]" or (c == ")" and depth > 0):
            depth -= 1
        elif c == ")":
            args.append(text[start:i].strip())
            return (() if args == [""] else tuple(args)), text[i + 1 :]
        elif c == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    return None


# -- values -------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", re.S)
_SIMPLE = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, "e": 27}


def unescape(body: str) -> bytes:
    """The bytes strace printed as `body`: `\\xHH`, octal and C escapes decoded."""

    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] == "x" and len(e) == 3:
            return chr(int(e[1:], 16))
        if e[0] in "01234567":
            return chr(int(e, 8) & 0xFF)
        return chr(_SIMPLE.get(e, ord(e)))

    return _ESCAPE.sub(one, body).encode("latin-1")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def string_arg(token: str) -> str | None:
    """A quoted string argument (`"..."` or `"..."...` when cut), or None (NULL, address)."""
    m = re.match(r'^"((?:[^"\\]|\\.)*)"', token, re.S)
    return _text(unescape(m.group(1))) if m else None


def fd_arg(token: str) -> tuple[str, str | None]:
    """`3</etc>` or `AT_FDCWD</x>` -> ("3", "/etc"); the path is None when not a file."""
    m = re.match(r"^(-?\w+)(?:<(.*)>)?$", token, re.S)
    if not m:
        return token, None
    return m.group(1), _deco_path(m.group(2)) if m.group(2) is not None else None


def _deco_path(body: str) -> str | None:
    """The path inside a `-y` decoration; None for sockets, pipes and the like."""
    path = _text(unescape(body)).removesuffix(" (deleted)")
    return path if path.startswith("/") else None


def parse_argv(token: str) -> tuple[str, ...]:
    if not token.startswith("["):
        return ()
    split = _split_args(token[1:].rstrip("]") + ")")
    items = split[0] if split else ()
    return tuple(s for s in (string_arg(i) for i in items) if s is not None)


_RESULT = re.compile(
    r"^(?P<val>0x[0-9a-fA-F]+|-?\d+|\?)(?:<(?P<deco>[^>]*)>)?(?:\s+(?P<errno>E[A-Z0-9]+))?"
)


def parse_result(text: str) -> tuple[int | None, str, str]:
    """ "-1 ENOENT (...)" -> (-1, "ENOENT", ""); "3</etc/x>" -> (3, "", "/etc/x")."""
    m = _RESULT.match(text.strip())
    if not m or m.group("val") == "?":
        return None, (m.group("errno") or "?") if m else "?", ""
    deco = _deco_path(m.group("deco")) if m.group("deco") is not None else None
    return _number(m.group("val")), m.group("errno") or "", deco or ""


def _number(text: str) -> int:
    """A result as strace prints it: decimal, `0x` hex, or octal with a leading zero
    (`umask` returns `022`), which Python's base-0 `int` refuses."""
    digits = text.removeprefix("-")
    if digits.startswith("0x"):
        value = int(digits, 16)
    elif digits.startswith("0") and len(digits) > 1:
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if text.startswith("-") else value
