"""Globs over image paths: the one syntax of `slim check --forbid`, the profiles'
`paths`/`when` lists and the planner's `--include`/`--exclude`. Pure: patterns
are compiled to regexes over path strings; walking an image tree with a glob is
`slimmer.image.paths.expand`.

A glob is an absolute path (`compile_glob`); each `/`-separated component is
matched against one name:
- `*` matches any run of characters within one name, `?` exactly one character;
- `[...]` matches one character of a class: single characters and ranges
  (`[a-z0-9_]`); `[!...]` negates it. A `]` right after `[` or `[!` belongs to
  the class (`[]x]`), as does a `-` first or last (`[-a]`, `[a-]`) or right
  after a range (`[a-c-]`). A reversed range (`[z-a]`) is empty, so `[z-a]`
  matches nothing and `[!z-a]` any character. An unclosed `[` is a literal `[`;
- nothing else is special: `\\` is a literal backslash (there are no escapes).
  A special character is matched literally by bracketing it, as `glob.escape`
  does: `[*]`, `[?]`, `[[]`; `]` alone, `!` and `^` are always literal
  (`[^a]` is `^` or `a`);
- a component that is exactly `**` matches zero or more whole names, so
  `/usr/**/libc.so.6` matches `/usr/libc.so.6` and `/usr/lib/x/libc.so.6`; a
  trailing `**` matches one or more, so `/etc/ssl/**` is everything below
  `/etc/ssl` but not `/etc/ssl` itself. `**` inside a longer component (`a**`)
  is two `*`s.
Wildcards match a leading dot: `/root/*` matches `/root/.bashrc`, as the
profiles and `--forbid` always did. Matching is case-sensitive.

`compile_glob` rejects a pattern that is not absolute or holds an empty, `.`
or `..` component. `loose_glob` is the forgiving form `--forbid` takes: a
pattern with no `/` is a name in any directory (`*.pyc` is `/**/*.pyc`); one
with a `/` is a path from the root, its leading `/` optional and a trailing `/`
ignored (`usr/bin/` is `/usr/bin`); empty, `.` and `..` components there are
literal names, which no (normalised) image path holds, so they match nothing.

Differences from Python's `fnmatch.fnmatchcase` applied to whole paths, each
one what `glob.glob` does with a real directory tree:
- `*`, `?` and classes never match `/`: not `[!x]`, not a range spanning it
  (`[%-0]`); `/a/[!x]b` does not match `/a//b`. Only a `**` component crosses
  directories.
- the pattern is split at `/` before brackets are read, so a class cannot hold
  a `/`: `/a/[x/y]` is the components `[x` and `y]`, both literal.
- a component never matches an empty name: `/*` does not match `/`, `/a/*`
  does not match `/a/`.
- `**` as a whole component, as above (fnmatch reads it as `*`, which there
  crosses `/`).
Differences from `glob.glob(pattern, recursive=True)`:
- a leading dot is matched (glob's `include_hidden=True`; the default, like the
  shell, hides dot names from `*`, `?`, `[...]` and `**`);
- a trailing `**` does not match the directory itself (glob yields `/a/` for
  `/a/**`);
- paths are strings: nothing checks that a directory exists or follows a
  symlink (expanding over an image tree does, see `slimmer.image.paths`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

DOUBLE_STAR = "**"
_WILD = re.compile(r"[*?\[]")
_NAME = "[^/]"  # one character of a name
_ANY_NAMES = f"(?:/{_NAME}+)*"  # zero or more whole names, each after its `/`
_SOME_NAMES = f"(?:/{_NAME}+)+"  # one or more


@dataclass(frozen=True)
class Glob:
    """A compiled glob: `regex` matches whole paths, `parts` drive tree walks.
    `pattern` is the absolute form (a `loose_glob` is normalised to it)."""

    pattern: str
    parts: tuple[str, ...]
    regex: re.Pattern[str]

    @property
    def literal(self) -> bool:
        """Whether the glob names exactly one path (`pattern` itself)."""
        return not is_wild(self.pattern)

    @property
    def basename(self) -> str | None:
        """The last component when it is literal (an index key), else None."""
        last = self.parts[-1]
        return None if is_wild(last) else last

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def is_wild(text: str) -> bool:
    """Whether `text` holds a wildcard character (`*`, `?` or `[`)."""
    return _WILD.search(text) is not None


def compile_glob(pattern: str) -> Glob:
    """Compile an absolute glob; ValueError says what is wrong with it."""
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ValueError("a glob must be an absolute path starting with '/'")
    parts = tuple(pattern[1:].split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"a glob may not hold an empty, '.' or '..' component ({part!r})")
    return _glob(parts)


def loose_glob(pattern: str) -> Glob:
    """Compile a `--forbid` glob: a bare name matches in any directory, a path
    needs no leading `/` (see the module docstring). Never raises."""
    if "/" not in pattern:
        return _glob((DOUBLE_STAR, pattern))
    return _glob(tuple(pattern.strip("/").split("/")))


def _glob(parts: tuple[str, ...]) -> Glob:
    return Glob("/" + "/".join(parts), parts, re.compile(path_regex(parts) + r"\Z"))


def path_regex(parts: Sequence[str]) -> str:
    """The regex of an absolute path whose components are `parts`."""
    out = []
    for i, part in enumerate(parts):
        if part == DOUBLE_STAR:
            out.append(_SOME_NAMES if i == len(parts) - 1 else _ANY_NAMES)
        else:
            out.append("/" + name_regex(part))
    return "".join(out)


@lru_cache(maxsize=1024)
def name_pattern(part: str) -> re.Pattern[str]:
    """The compiled `name_regex` of one component, anchored at both ends."""
    return re.compile(name_regex(part) + r"\Z")


def name_regex(part: str) -> str:
    """The regex of one path component with `*`, `?` and `[...]` wildcards."""
    if part and not part.strip("*"):
        return _NAME + "+"  # `*` alone: any name, never the empty one
    out, i = [], 0
    while i < len(part):
        c = part[i]
        end = class_end(part, i) if c == "[" else -1
        if c == "*":
            out.append(_NAME + "*")
        elif c == "?":
            out.append(_NAME)
        elif end > 0:
            out.append(class_regex(part[i + 1 : end]))
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def class_end(part: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 (then `[` is
    literal). A `]` right after `[` or `[!` belongs to the class."""
    j = start + 1
    if part[j : j + 1] == "!":
        j += 1
    if part[j : j + 1] == "]":
        j += 1
    return part.find("]", j)


def class_regex(body: str) -> str:
    """The regex of the class `[body]`; it never matches `/`."""
    negate = body.startswith("!")
    ranges = class_ranges(body[1:] if negate else body)
    items = "".join(_range_regex(lo, hi) for lo, hi in ranges)
    if negate:
        return f"[^/{items}]"
    if not items:
        return "(?!)"  # only reversed ranges: matches nothing, as in fnmatch
    holds_slash = any(lo <= "/" <= hi for lo, hi in ranges)
    return f"(?!/)[{items}]" if holds_slash else f"[{items}]"


def class_ranges(body: str) -> list[tuple[str, str]]:
    """The (first, last) character ranges of a class body (without its `!`),
    read as fnmatch reads them; reversed ranges are dropped."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        if body[i + 1 : i + 2] == "-" and i + 2 < len(body):
            lo, hi = body[i], body[i + 2]
            i += 3
        else:
            lo = hi = body[i]
            i += 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def _range_regex(lo: str, hi: str) -> str:
    return re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
