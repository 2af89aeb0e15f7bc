"""slimmer.globs: one table of (pattern, path, expected) cases, run against the
glob engine and checked against Python's own `fnmatch` and `glob`.

Every case runs through `loose_glob` (what `slim check --forbid` compiles) and,
when the pattern is a strict absolute glob, through `compile_glob` (profiles,
`--include`, `--exclude`) too; both must give `expected`.

The oracles, applied to the pattern's absolute form (`loose_glob(p).pattern`):
- fnmatch: `fnmatch.fnmatchcase(path, pattern)`, for patterns with no `**`
  component (fnmatch has none);
- glob: whether `glob.glob(root + pattern, recursive=True)` finds the path in a
  real tree under tmp_path built from the table's paths (results normalised
  with `posixpath.normpath`, so glob's `/a/` for `/a/**` counts as `/a`).
A case marked FN or GL is a documented difference (see slimmer.globs): there
the oracle must give the other answer, so every difference is listed here.
"""

from __future__ import annotations

import fnmatch
import glob
import posixpath
from pathlib import Path
from typing import NamedTuple

import pytest

from slimmer.globs import Glob, compile_glob, loose_glob, name_pattern

pytestmark = pytest.mark.filterwarnings("error")  # no "possible nested set" FutureWarning

FN = "fnmatch"  # fnmatchcase answers the other way
GL = "glob"  # glob.glob answers the other way


class Case(NamedTuple):
    pattern: str
    path: str
    expected: bool
    unlike: str = ""  # FN or GL: the oracle that differs, on purpose


CASES = [
    # `*`: any run of characters within one name, never `/`, never an empty name
    Case("/usr/bin/*sh", "/usr/bin/bash", True),
    Case("/usr/bin/*sh", "/usr/bin/x/bash", False, FN),  # fnmatch's `*` crosses `/`
    Case("/usr/bin/*", "/usr/bin", False),
    Case("/usr/bin/*", "/usr/bin/", False, FN),  # no empty name
    Case("/*", "/", False, FN),
    Case("/a*b/c", "/ab/c", True),
    Case("/lib/*/libgcc_s.so.1", "/lib/x86_64-linux-gnu/libgcc_s.so.1", True),
    Case("/usr/lib/*/libssl.so.[0-9]", "/usr/lib/x86_64-linux-gnu/libssl.so.3", True),
    Case("/usr/lib/*/libssl.so.[0-9]", "/usr/lib/a/b/libssl.so.3", False, FN),
    # `?`: one character, never `/`
    Case("/bin/?ash", "/bin/bash", True),
    Case("/bin/?ash", "/bin/ash", False),
    Case("/bin/?ash", "/bin//ash", False, FN),
    # classes: never `/`
    Case("/bin/[bd]ash", "/bin/dash", True),
    Case("/bin/[!b]ash", "/bin/bash", False),
    Case("/bin/[!b]ash", "/bin/dash", True),
    Case("/a/[!x]b", "/a//b", False, FN),  # the old profiles engine said True
    Case("/a/[!x]b", "/a/yb", True),
    Case("/a/[!x]", "/a/x", False),
    Case("/r/[a-c]", "/r/b", True),
    Case("/r/[a-c]", "/r/d", False),
    Case("/r/[a-c-]", "/r/-", True),  # a `-` after a range is literal
    Case("/r/[-a]", "/r/-", True),
    Case("/r/[a-]", "/r/-", True),
    Case("/r/[!-a]", "/r/A", True),  # old --forbid read `[!-a]` as "not `/` to `a`"
    Case("/r/[!-a]", "/r/-", False),
    Case("/r/[z-a]", "/r/z", False),  # a reversed range is empty (old engines: re.error)
    Case("/r/[!z-a]", "/r/z", True),
    Case("/r/[+-0]", "/r/,", True),
    Case("/r/[+-0]", "/r//", False, FN),  # a range spanning `/` still excludes it
    Case("/r/[]x]", "/r/]", True),
    Case("/r/[!]x]", "/r/y", True),
    Case("/r/[!]x]", "/r/]", False),
    Case("/r/[^a]", "/r/^", True),  # `^` is literal, not a negation
    Case("/r/[^a]", "/r/b", False),
    Case("/r/[a&&b]", "/r/&", True),  # regex set operators are literal
    Case("/r/[~~]", "/r/~", True),
    Case("/r/[x/y]", "/r/[x/y]", True, FN),  # split at `/` first: `[x` and `y]` literal
    Case("/r/[x/y]", "/r/x", False, FN),
    # unclosed brackets, escapes: there is no backslash escape, bracket instead
    Case("/r/[", "/r/[", True),
    Case("/r/a[", "/r/a[", True),
    Case("/r/[]", "/r/[]", True),
    Case("/r/[!]", "/r/[!]", True),
    Case("/e/[*]", "/e/*", True),
    Case("/e/[*]", "/e/x", False),
    Case("/e/[?]", "/e/?", True),
    Case("/e/[[]x", "/e/[x", True),
    Case("/e/a\\*", "/e/a\\b", True),  # `\` is a literal backslash, `*` still a wildcard
    Case("/e/a\\*", "/e/a*", False),
    Case("/e/a+b(c)", "/e/a+b(c)", True),
    Case("/e/a.c", "/e/abc", False),
    # a leading dot is matched like any character (glob.glob's default hides it)
    Case("/root/*", "/root/.bashrc", True, GL),
    Case("/root/?bashrc", "/root/.bashrc", True, GL),
    Case("/root/[.]bashrc", "/root/.bashrc", True, GL),
    Case("/root/.*", "/root/.bashrc", True),
    Case("/root/**", "/root/.cache/x", True, GL),
    # `**` at the start, in the middle, at the end
    Case("/**/apt", "/apt", True),
    Case("/**/apt", "/usr/bin/apt", True),
    Case("/**/apt", "/usr/bin/aptx", False),
    Case("/usr/**/libc.so.6", "/usr/libc.so.6", True),
    Case("/usr/**/libc.so.6", "/usr/a/b/libc.so.6", True),
    Case("/usr/**/libc.so.6", "/usr/a/libc.so.60", False),
    Case("/usr/**/libc.so.6", "/usr2/libc.so.6", False),
    Case("/usr/**/*.a", "/usr/lib/x/libc.a", True),
    Case("/a/**/b/**", "/a/b/c", True),
    Case("/a/**/**/b", "/a/b", True),
    Case("/etc/ssl/**", "/etc/ssl/certs/x.pem", True),
    Case("/etc/ssl/**", "/etc/ssl/certs", True),
    Case("/etc/ssl/**", "/etc/ssl", False, GL),  # glob yields the directory itself
    Case("/etc/ssl/**", "/etc/ssl2/x", False),
    Case("/**", "/etc", True),
    Case("/**", "/", False, GL),
    Case("/a/x**", "/a/xy", True),  # not a whole component: two `*`s
    Case("/a/x**", "/a/xy/z", False, FN),
    # the loose forms `--forbid` takes (compile_glob rejects them)
    Case("*.pyc", "/a/b.pyc", True),  # a bare name: in any directory
    Case("*.pyc", "/b.pyc", True),
    Case("*.pyc", "/a.pyc/b", False),
    Case("bash", "/usr/bin/bash", True),
    Case("bash", "/usr/bin/rbash", False),
    Case("**", "/a/b", True),
    Case("*", "/", False),
    Case("usr/bin/sh", "/usr/bin/sh", True),  # the leading `/` is optional
    Case("/usr/bin/", "/usr/bin", True),  # a trailing `/` is ignored
    Case("/a//b", "/a/b", False, GL),  # empty and `.` components match nothing
    Case("/a/./b", "/a/b", False, GL),
]


def _id(case: Case) -> str:
    return f"{case.pattern} ~ {case.path}"


def _strict(pattern: str) -> bool:
    """Whether `compile_glob` takes `pattern` (absolute, no empty, `.` or `..`)."""
    return pattern.startswith("/") and all(p not in ("", ".", "..") for p in pattern[1:].split("/"))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_engine(case: Case) -> None:
    assert loose_glob(case.pattern).match(case.path) is case.expected
    if _strict(case.pattern):
        assert compile_glob(case.pattern).match(case.path) is case.expected
    else:
        with pytest.raises(ValueError):
            compile_glob(case.pattern)


FNMATCH_CASES = [c for c in CASES if "**" not in loose_glob(c.pattern).parts]


@pytest.mark.parametrize("case", FNMATCH_CASES, ids=_id)
def test_against_fnmatch(case: Case) -> None:
    pattern = loose_glob(case.pattern).pattern
    differs = case.unlike == FN
    assert fnmatch.fnmatchcase(case.path, pattern) is (case.expected != differs)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The table's (normalised) paths as a real tree: a directory where a path is
    another's prefix, an empty file elsewhere."""
    root = tmp_path_factory.mktemp("globs")
    paths = {c.path for c in CASES if c.path != "/" and posixpath.normpath(c.path) == c.path}
    dirs = {p[:i] for p in paths for i, c in enumerate(p) if c == "/" and i}
    for path in sorted(dirs):
        Path(str(root) + path).mkdir()
    for path in sorted(paths - dirs):
        Path(str(root) + path).touch()
    return root


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_against_glob(case: Case, tree: Path) -> None:
    root = str(tree)
    found = {
        posixpath.normpath(hit[len(root) :] or "/")
        for hit in glob.glob(glob.escape(root) + loose_glob(case.pattern).pattern, recursive=True)
    }
    differs = case.unlike == GL
    assert (case.path in found) is (case.expected != differs)


def test_every_documented_difference_is_checked() -> None:
    """An FN mark on a `**` pattern would go unchecked (fnmatch is not asked)."""
    assert {c.unlike for c in CASES} == {"", FN, GL}
    assert all(c in FNMATCH_CASES for c in CASES if c.unlike == FN)


# -- the compiled object -------------------------------------------------------------


def test_strict_globs_say_what_is_wrong() -> None:
    for bad, why in [
        ("usr/bin", "absolute"),
        ("/usr//bin", "empty"),
        ("/usr/../x", "'..'"),
        ("/", "empty"),
        ("/a/", "empty"),
    ]:
        with pytest.raises(ValueError, match=why):
            compile_glob(bad)


def test_loose_globs_are_normalised_to_absolute_ones() -> None:
    assert loose_glob("usr/bin/") == compile_glob("/usr/bin")
    assert loose_glob("*.pyc") == compile_glob("/**/*.pyc")
    assert loose_glob("/opt/**") == compile_glob("/opt/**")


def test_literal_and_basename_drive_the_path_index() -> None:
    literal = compile_glob("/etc/passwd")
    assert literal.literal and literal.basename == "passwd"
    named = compile_glob("/usr/**/libc.so.6")
    assert not named.literal and named.basename == "libc.so.6"
    assert compile_glob("/usr/lib/*.so").basename is None
    assert not loose_glob("bash").literal and loose_glob("bash").basename == "bash"
    assert isinstance(literal, Glob)


def test_name_patterns_match_one_name() -> None:
    assert name_pattern("lib*.so.[0-9]").match("libssl.so.3")
    assert not name_pattern("lib*.so.[0-9]").match("libssl.so.30")
    assert not name_pattern("[!x]").match("/")
