"""The programs a shell script can run, found without running it.

A probe takes one branch of a script; the slim image must still hold the
programs of the others (`case` arms, error paths, functions). This scanner
reads POSIX sh / bash text and returns every word in command position: the
first word of a line or of a pipeline, after `;`, `&&`, `||`, `|`, `&`, `(`,
`{`, `$(`, a backquote, and after the keywords `if`, `then`, `else`, `elif`,
`do`, `while`, `until`, `!`; plus the word after `exec`, `command`, `nohup`,
`env`, `xargs`, `nice`, `timeout N`, `time`. Assignments (`A=1 cmd`),
redirections (`>file`), `for`/`case` headers and function names are skipped.
It over-approximates (a word in command position inside a string may be
taken), never under-approximates a plain command line.
"""

from __future__ import annotations

import re
import shlex

_STARTS = frozenset(
    {
        "if",
        "then",
        "else",
        "elif",
        "do",
        "while",
        "until",
        "!",
        "{",
        "}",
        "(",
        ")",
        ";;",
        "fi",
        "done",
        "esac",
    }
)
_WRAPPERS = frozenset(
    {
        "exec",
        "command",
        "nohup",
        "env",
        "xargs",
        "nice",
        "time",
        "builtin",
        "sudo",
        "su-exec",
        "gosu",
        "chroot",
        "setsid",
        "stdbuf",
        "ionice",
    }
)
_SEPARATORS = re.compile(r"^[;&|()]+$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_REDIRECT = re.compile(r"^\d*[<>]")
_FUNCTION = re.compile(r"^\s*(function\s+)?[A-Za-z_][\w.-]*\s*\(\s*\)")


def command_words(script: str) -> list[str]:
    """Words in command position, in order of appearance, without duplicates."""
    seen: dict[str, None] = {}
    for line in _lines(script):
        for word in _line_commands(line):
            seen.setdefault(word, None)
    return list(seen)


def sourced_files(script: str) -> list[str]:
    """Files read with `.` or `source`."""
    out = []
    for line in _lines(script):
        tokens = _tokens(line)
        for i, tok in enumerate(tokens[:-1]):
            if tok in (".", "source") and (i == 0 or _SEPARATORS.match(tokens[i - 1])):
                out.append(tokens[i + 1])
    return out


def _lines(script: str) -> list[str]:
    text = script.replace("\\\n", " ")
    out = []
    for line in [*text.splitlines(), *_substitutions(text)]:
        if _FUNCTION.match(line):
            line = line[_FUNCTION.match(line).end() :]  # type: ignore[union-attr]
        out.append(line)
    return out


def _substitutions(text: str) -> list[str]:
    """The commands inside `$(...)` and backquotes, also within double quotes."""
    out = re.findall(r"`([^`]*)`", text)
    start = text.find("$(")
    while start >= 0:
        depth, i = 1, start + 2
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        inner = text[start + 2 : i - 1]
        out.extend([inner, *_substitutions(inner)] if "$(" in inner else [inner])
        start = text.find("$(", start + 2)
    return [line for chunk in out for line in chunk.splitlines()]


def _tokens(line: str) -> list[str]:
    try:
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lex.whitespace_split = True
        lex.commenters = "#"
        return list(lex)
    except ValueError:  # an unbalanced quote: a string that spans lines
        return line.split("#", 1)[0].split()


def _line_commands(line: str) -> list[str]:
    out: list[str] = []
    expect = True
    skip_header = False
    tokens = _tokens(line)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if _SEPARATORS.match(tok) or tok in _STARTS:
            expect, skip_header = True, False
            continue
        if skip_header or not expect:
            continue
        if tok in ("for", "case", "select", "function", "in"):
            skip_header = True
            continue
        if _ASSIGNMENT.match(tok) or tok.startswith("-"):
            continue
        if _REDIRECT.match(tok) or tok in ("<", ">"):
            i += 1 if tok.rstrip("0123456789") in ("<", ">", ">>", "<<") else 0
            continue
        if tok == "timeout" and i < len(tokens) and tokens[i][:1].isdigit():
            i += 1
        out.append(tok)
        expect = tok in _WRAPPERS or tok == "timeout"
    return [w for w in out if w not in _WRAPPERS and w not in ("timeout", "[", "[[", "test")]
