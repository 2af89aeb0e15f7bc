"""Paths of an image tree: globs matched against path sets and trees, walks, and
the small queries profiles and expanders ask.

The glob syntax (`*`, `?`, `[...]`, `**`) is `slimmer.globs`'s; `Glob`,
`compile_glob` and `name_regex` are re-exported here for the profiles and the
planner (`--include`, `--exclude`).

Against an image tree a glob is matched component by component from its
literal prefix, so `/usr/share/zoneinfo/**` never looks outside that directory.
Literal and `*` components follow a symlink to a directory, as glob(3) does,
and the match is reported under the name the glob used; `**` does not descend
through symlinks (zoneinfo's `posix -> .` would loop), it reports the link.
"""

from __future__ import annotations

import posixpath
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, TypeVar, cast

from slimmer.globs import Glob as Glob
from slimmer.globs import compile_glob as compile_glob
from slimmer.globs import is_wild, name_pattern
from slimmer.globs import name_regex as name_regex
from slimmer.model import TreeView

T = TypeVar("T")


# -- matching against an image tree -------------------------------------------------

_MEMO: weakref.WeakKeyDictionary[object, dict[str, object]] = weakref.WeakKeyDictionary()


def tree_memo(tree: TreeView, key: str, make: Callable[[], T]) -> T:
    """`make()`, remembered for as long as `tree` lives (a tree never changes once
    read, and profiles are applied to the same tree on every planner pass)."""
    try:
        store = _MEMO.setdefault(tree, {})
    except TypeError:  # a tree that cannot be weakly referenced is not cached
        return make()
    if key not in store:
        store[key] = make()
    return cast(T, store[key])


class ContentMemo(Protocol):
    """Results of work on a file's bytes, by the bytes' digest, that outlive a run
    (`slimmer.image.cache.ParsedCache`)."""

    def get(self, key: str) -> object | None: ...
    def put(self, key: str, value: object) -> None: ...


_CONTENT_MEMO: ContextVar[ContentMemo | None] = ContextVar("slimmer_content_memo", default=None)


@contextmanager
def using_content_memo(memo: ContentMemo | None) -> Iterator[None]:
    """`content_memo` consults and fills `memo` inside this block."""
    token = _CONTENT_MEMO.set(memo)
    try:
        yield
    finally:
        _CONTENT_MEMO.reset(token)


def content_memo(tree: TreeView, path: str, key: str, make: Callable[[], T]) -> T:
    """`make()`, a function of the bytes of the file at `path` and of `key` alone:
    remembered per tree (`tree_memo`) and, inside `using_content_memo`, by the
    file's content digest, so a later run over the same bytes (the same image
    again, or another holding the same file) skips the work."""

    def by_content() -> T:
        memo = _CONTENT_MEMO.get()
        entry = tree.get(path)
        if memo is None or entry is None or not entry.content:
            return make()
        stored = f"{key}\0{entry.content}"
        hit = memo.get(stored)
        if hit is not None:
            return cast(T, hit)
        value = make()
        memo.put(stored, value)
        return value

    return tree_memo(tree, f"{key}\0{path}", by_content)


def expand(tree: TreeView, glob: Glob) -> tuple[str, ...]:
    """Paths of `tree` that `glob` matches, sorted; remembered per tree and pattern."""

    def make() -> tuple[str, ...]:
        out: set[str] = set()
        _match(tree, "", "", glob.parts, out)
        return tuple(sorted(out))

    return tree_memo(tree, "glob:" + glob.pattern, make)


def _match(tree: TreeView, named: str, real: str, parts: Sequence[str], out: set[str]) -> None:
    """Match `parts` below the directory `real` (reached under the name `named`)."""
    head, rest = parts[0], parts[1:]
    if head == "**":
        _match_deep(tree, named, real, rest, out)
        return
    names = [head] if not is_wild(head) else _matching_names(tree, real or "/", head)
    for name in names:
        child_named, child_real = f"{named}/{name}", f"{real}/{name}"
        entry = tree.get(child_real)
        if entry is None:
            continue
        if not rest:
            out.add(child_named)
            continue
        target = tree.resolve(child_real).path if not entry.is_dir else child_real
        target_entry = tree.get(target)
        if target_entry is not None and target_entry.is_dir:
            _match(tree, child_named, target, rest, out)


def _matching_names(tree: TreeView, directory: str, part: str) -> list[str]:
    rx = name_pattern(part)
    return [n for n in tree.listdir(directory) if rx.match(n)]


def _match_deep(tree: TreeView, named: str, real: str, rest: Sequence[str], out: set[str]) -> None:
    """`**` then `rest`: try `rest` here, then below every real subdirectory."""
    if rest:
        _match(tree, named, real, rest, out)
    for name in tree.listdir(real or "/"):
        child_real = f"{real}/{name}"
        entry = tree.get(child_real)
        if entry is None:
            continue
        if not rest:
            out.add(f"{named}/{name}")
        if entry.is_dir:
            _match_deep(tree, f"{named}/{name}", child_real, rest, out)


def walk_below(tree: TreeView, directory: str) -> Iterator[str]:
    """Every path below `directory` (symlinks in its name followed; inside, not)."""
    real = tree.resolve(directory).path
    entry = tree.get(real)
    if entry is None or not entry.is_dir:
        return
    stack = [real]
    while stack:
        here = stack.pop()
        for name in tree.listdir(here):
            child = posixpath.join(here, name)
            yield child
            child_entry = tree.get(child)
            if child_entry is not None and child_entry.is_dir:
                stack.append(child)


# -- matching against sets of paths -------------------------------------------------


class PathIndex:
    """A set of paths, indexed so that many globs can be tested against it quickly.

    Literal globs are set lookups, globs with a literal last name look only at
    paths of that name, and the rest scan the sorted paths once.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = frozenset(paths)
        self._sorted: list[str] | None = None
        self._by_name: dict[str, list[str]] | None = None

    def first(self, globs: Iterable[Glob]) -> str | None:
        """The smallest path any of `globs` matches, or None."""
        best: str | None = None
        for glob in globs:
            hit = self._first_one(glob)
            if hit is not None and (best is None or hit < best):
                best = hit
        return best

    def _first_one(self, glob: Glob) -> str | None:
        if glob.literal:
            return glob.pattern if glob.pattern in self.paths else None
        name = glob.basename
        candidates = self._named(name) if name is not None else self._all()
        return next((p for p in candidates if glob.regex.match(p)), None)

    def _all(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.paths)
        return self._sorted

    def _named(self, name: str) -> list[str]:
        if self._by_name is None:
            index: dict[str, list[str]] = {}
            for path in self._all():
                index.setdefault(path.rpartition("/")[2], []).append(path)
            self._by_name = index
        return self._by_name.get(name, [])


SYSTEM_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/usr",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/usr/lib32",
        "/usr/lib64",
        "/usr/libexec",
        "/usr/local",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/usr/local/lib",
        "/usr/local/include",
        "/usr/local/share",
        "/usr/share",
        "/usr/include",
        "/usr/src",
        "/etc",
        "/var",
        "/var/lib",
        "/var/cache",
        "/var/log",
        "/var/spool",
        "/var/mail",
        "/var/opt",
        "/var/tmp",
        "/var/run",
        "/opt",
        "/srv",
        "/home",
        "/root",
        "/mnt",
        "/media",
        "/boot",
        "/tmp",
        "/run",
        "/proc",
        "/sys",
        "/dev",
    }
)
SYSTEM_TREES = (
    "/bin/",
    "/sbin/",
    "/lib/",
    "/lib32/",
    "/lib64/",
    "/libx32/",
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/lib/",
    "/usr/lib32/",
    "/usr/lib64/",
    "/usr/libexec/",
    "/usr/share/",
    "/usr/include/",
    "/usr/local/bin/",
    "/usr/local/sbin/",
    "/usr/local/lib/",
    "/usr/local/include/",
    "/etc/",
    "/var/lib/",
    "/var/cache/",
    "/var/log/",
    "/var/spool/",
    "/tmp/",
    "/var/tmp/",
    "/run/",
    "/var/run/",
    "/proc/",
    "/sys/",
    "/dev/",
)


def is_system_dir(path: str) -> bool:
    """A directory the distribution owns (or holds many programs' files): never kept
    whole. `/app`, `/opt/app`, `/srv/www`, `/usr/src/app`, `/var/www/html` are not."""
    return path in SYSTEM_DIRS or path.startswith(SYSTEM_TREES)


# -- small queries --------------------------------------------------------------------


def read_text(tree: TreeView, path: str) -> str | None:
    """The file's text, or None when it is missing or its bytes were not kept."""
    try:
        return tree.read_bytes(path).decode("utf-8", "replace")
    except (LookupError, FileNotFoundError, OSError):
        return None


def is_dir(tree: TreeView, path: str) -> bool:
    entry = tree.resolve(path).entry
    return entry is not None and entry.is_dir


def is_file(tree: TreeView, path: str) -> bool:
    entry = tree.resolve(path).entry
    return entry is not None and entry.is_regular


def exists(tree: TreeView, path: str) -> bool:
    """Whether `path` names an entry (a dangling symlink counts)."""
    return tree.resolve(path, follow_last=False).entry is not None


def real_file(tree: TreeView, path: str, dirs: dict[str, str]) -> str | None:
    """The real path of the non-directory `path` (its directories' symlinks followed,
    the last name not), or None; `dirs` remembers resolved directories."""
    parent, _, base = path.rpartition("/")
    real_parent = dirs.get(parent)
    if real_parent is None:
        real_parent = dirs[parent] = tree.resolve(parent or "/").path.rstrip("/")
    real = f"{real_parent}/{base}"
    entry = tree.get(real)
    return real if entry is not None and not entry.is_dir else None


# -- programs -------------------------------------------------------------------------

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH the engine gives a container whose image sets none (moby's DefaultPathEnv)."""

SHELLS = ("sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox", "fish", "tcsh", "csh")
"""Program names that are shells: what `@shells` and `slim lint` report, and the
interpreters whose `-c` strings and `#!` scripts the planner scans for commands. One
list for both: a shell that can run a command is attack surface and a program runner
alike (scanning a csh or fish script with the POSIX scanner only ever adds programs)."""


def search_path(env: Mapping[str, str]) -> str:
    """The PATH programs are looked up on: the image's own, or `DEFAULT_PATH` when it
    sets none. A PATH set empty stays empty (the engine replaces the default with it)."""
    return env.get("PATH", DEFAULT_PATH)


def which(
    tree: TreeView, name: str, env_path: str = DEFAULT_PATH, workdir: str = "/"
) -> str | None:
    """Where execvp(3) finds the program `name` in the image, or None; the path is
    normalised but not resolved (`/bin/sh`, not `/usr/bin/dash`).

    A name with a `/` is taken as it is, relative to `workdir`; a bare name is looked
    for in each directory of `env_path` in turn, an empty entry meaning the current
    directory (POSIX), a relative one taken from `workdir`. The first candidate that
    is a regular file with an execute bit wins, its symlinks followed inside the image
    root; a directory, a dangling link or a file without an execute bit is passed
    over, as execvp passes over what execve refuses (EACCES, ENOENT).

    runc itself (Go's exec.LookPath) differs in two places that only make it refuse
    more: a PATH set empty finds nothing, and since Go 1.19 a hit through an empty or
    relative entry is refused ("cannot run executable found relative to current
    directory"). A shell script's commands follow execvp; the planner keeps both.
    """
    if "/" in name:
        path = posixpath.normpath(posixpath.join(workdir, name))
        return path if is_executable(tree, path) else None
    for directory in env_path.split(":"):
        path = posixpath.normpath(posixpath.join(workdir, directory or ".", name))
        if is_executable(tree, path):
            return path
    return None


def is_executable(tree: TreeView, path: str) -> bool:
    """Whether `path` (symlinks followed) is a regular file with an execute bit."""
    entry = tree.resolve(path).entry
    return entry is not None and entry.is_regular and bool(entry.mode & 0o111)
