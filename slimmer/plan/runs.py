"""What the trace says each program did when it ran: the evidence that a program
which could do something (import `iconv_open`) did not need to in the image's own
environment.

A program's runs are every process that executed it (and the processes they forked
without an exec of their own); what they named is every path of the image those
processes named (opened, stat-ed, executed, read as a link) and found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Protocol

from slimmer.image.paths import Glob
from slimmer.model import TreeView

# glibc's precedence for the LC_CTYPE category (setlocale(LC_ALL, "")): LC_ALL, then
# LC_CTYPE, then LANG; none (or empty) is the C locale.
_CTYPE_VARS = ("LC_ALL", "LC_CTYPE", "LANG")


class _Traced(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def program(self) -> str: ...


def program_runs(traced: Iterable[_Traced]) -> Mapping[str, frozenset[str]]:
    """Each program the trace ran (as its exec named it) -> every path its processes
    named, over all its runs."""
    runs: dict[str, set[str]] = {}
    for t in traced:
        if t.kind == "exec":
            runs.setdefault(t.path, set())
        if t.program:
            runs.setdefault(t.program, set()).add(t.path)
    return {prog: frozenset(paths) for prog, paths in sorted(runs.items())}


def ctype_locale(env: Mapping[str, str]) -> str:
    """The locale whose charset a program's `setlocale(LC_ALL, "")` takes from `env`."""
    for name in _CTYPE_VARS:
        if env.get(name):
            return env[name]
    return "C"


def by_real_path(tree: TreeView, runs: Mapping[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """`runs` keyed by the image's real path of each program (symlinks resolved); runs of
    one file under two names are merged."""
    out: dict[str, frozenset[str]] = {}
    for prog, paths in runs.items():
        real = tree.resolve(prog).path
        out[real] = out.get(real, frozenset()) | paths
    return out


def ran_without(
    real_runs: Mapping[str, frozenset[str]], path: str, tree: TreeView, avoided: Sequence[Glob]
) -> bool:
    """True when the program `path` ran in the trace and none of its runs named a path
    `avoided` matches."""
    named = real_runs.get(tree.resolve(path).path)
    if named is None:
        return False
    return not any(glob.match(p) for p in named for glob in avoided)


def locale_matches(env: Mapping[str, str], patterns: Sequence[str]) -> bool:
    """True when the image's LC_CTYPE locale (`ctype_locale`) matches one of `patterns`
    (fnmatch globs, case-sensitive)."""
    locale = ctype_locale(env)
    return any(fnmatchcase(locale, p) for p in patterns)
