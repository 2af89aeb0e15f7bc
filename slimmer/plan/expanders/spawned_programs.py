"""Expander of spawned programs: what kept code runs by a literal name (`spawned-programs`).

A service runs `openssl`, `convert` or `git` on a path the probes never took;
without the program the slim image fails there with "No such file or
directory". Every program named by a literal in a spawning call of kept code
(`spawn_calls` lists the calls per language) is kept, looked up on the image's
PATH (the config's `Env`, else the default) from its WorkingDir as execvp(3)
does, with its ELF closure and, for a script, its `#!` interpreter. A command
line goes through the shell-command scan (`shellscan.command_words`), and keeps
`/bin/sh` when the runtime runs it through the shell. Each reason names the
source file and line.

Kept code is the app's and its packages'; the runtimes' own libraries (Python's
standard library, Perl's and Ruby's, npm) run their helpers only when asked, and
their callers are the evidence.
"""

from __future__ import annotations

import re
from functools import partial

from slimmer.image.paths import read_text, search_path, tree_memo, which
from slimmer.model import TreeView
from slimmer.plan.expanders._common import RUNTIME_LIBRARY, not_kept
from slimmer.plan.expanders.spawn_calls import (
    Scanner,
    Spawn,
    node_spawns,
    perl_spawns,
    php_spawns,
    python_spawns,
    ruby_spawns,
)
from slimmer.plan.keep import Addition, ProfileContext, Reason, Result
from slimmer.plan.planner import interpreters
from slimmer.plan.shellscan import command_words

SHELL = "/bin/sh"  # glibc's and musl's _PATH_BSHELL
_MAX_SOURCE = 4_000_000  # bytes; bigger files are generated tables, not callers
_SCANNERS: tuple[tuple[re.Pattern[str], Scanner], ...] = (
    (re.compile(r"\.py\Z"), python_spawns),
    (re.compile(r"\.[mc]?js\Z"), node_spawns),
    (re.compile(r"\.rb\Z"), ruby_spawns),
    (re.compile(r"\.p[lm]\Z"), perl_spawns),
    (re.compile(r"\.(php\d?|phtml|inc)\Z"), php_spawns),
)
# Whole-line comments, blanked so that line numbers stay true: `#` (Python, Ruby,
# Perl, PHP), `//` (Node, PHP), and Ruby's `=begin`/`=end` and Perl's POD blocks.
_COMMENT_LINE = re.compile(r"(?m)^[ \t]*(#|//).*$")
_END = re.compile(r"(?m)^__(?:END|DATA)__$")
_DOC_BLOCK = re.compile(r"(?ms)^=(begin|pod|head\d|over|item|encoding|for)\b.*?^=(end|cut)\b[^\n]*")


def spawned_programs(ctx: ProfileContext, profile_name: str) -> Result:
    """The programs kept code runs by a literal name, with the interpreters of
    scripts and the shell of command lines (module doc)."""
    env_path, workdir = search_path(ctx.config.env), ctx.config.working_dir or "/"
    out: list[Addition] = []
    for path in sorted(ctx.kept):
        scanner = _scanner(path)
        if scanner is None or RUNTIME_LIBRARY.search(path):
            continue
        spawns = tree_memo(ctx.tree, f"spawns:{path}", partial(_spawns_of, ctx.tree, path, scanner))
        for spawn in spawns:
            out += _additions(ctx.tree, path, spawn, env_path, workdir, profile_name)
    return not_kept(_first_reasons(out), ctx.kept), []


def _scanner(path: str) -> Scanner | None:
    return next((scan for suffix, scan in _SCANNERS if suffix.search(path)), None)


def _spawns_of(tree: TreeView, path: str, scanner: Scanner) -> tuple[Spawn, ...]:
    entry = tree.get(path)
    if entry is None or not entry.is_regular or entry.size > _MAX_SOURCE:
        return ()
    text = read_text(tree, path)
    return scanner(code_lines(text)) if text else ()


def code_lines(text: str) -> str:
    """`text` with whole-line comments and doc blocks blanked, lines kept in place,
    and without what follows Perl's and Ruby's `__END__`/`__DATA__` (data, not code)."""
    text = _END.split(text, 1)[0]
    text = _DOC_BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return _COMMENT_LINE.sub("", text)


def _additions(
    tree: TreeView, path: str, spawn: Spawn, env_path: str, workdir: str, profile_name: str
) -> list[Addition]:
    """The program (or the command line's programs), their interpreters, and the shell."""
    where = f"{path}:{spawn.line}"
    out: list[tuple[str, str]] = []
    if spawn.shell:
        out.append((SHELL, f"{where} runs a command line through `{SHELL} -c` ({spawn.call})"))
    words = [spawn.program] if spawn.program else command_words(spawn.command)
    for word in words:
        found = which(tree, word, env_path, workdir)
        if found is None:
            continue
        out.append((found, f"{where} runs `{word}` ({spawn.call})"))
        out += [
            (i, f"interpreter of {found}, which {where} runs ({spawn.call})")
            for i in interpreters(tree, found, env_path, workdir)
        ]
    return [Addition(p, Reason("profile", why, profile_name)) for p, why in out]


def _first_reasons(additions: list[Addition]) -> list[Addition]:
    """One addition per path: the first source line that asked for it."""
    seen: dict[str, Addition] = {}
    for a in additions:
        seen.setdefault(a.path, a)
    return list(seen.values())
