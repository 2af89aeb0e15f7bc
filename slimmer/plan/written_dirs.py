"""State written at run time: the directories the traced app wrote into.

A service's state lives in directories it writes: a database's data directory
baked into the image, a queue's spool, a cache. The probes read only a part of
it (one database's catalog, the newest segment), but any other query may read
the rest, so a directory the app wrote into is kept whole, with the owner and
mode the image gives it and everything below it.

The evidence is a `write-parent` traced path: the directory of a file or
directory the app created, or of a file it opened for writing, where the call
succeeded. A directory the distribution owns (`/`, `/etc`, `/tmp`, `/var/lib`,
...) or one holding programs and libraries (`/usr/...`, `/lib/...`) is never
kept whole: writing one lock file there says nothing about the rest of it. Its
own entry is still kept, as `create-parent`, so the write works.

Pure: traced paths and the image tree in, (path, reason) pairs out.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator

from slimmer.image.paths import SYSTEM_DIRS, walk_below
from slimmer.model import TreeView
from slimmer.plan.keep import Reason

WRITE_PARENT = "write-parent"
"""The traced-path kind of a directory the app wrote into (a call that succeeded)."""

_CREATES = frozenset({"create", "rename", "link"})
_WRITE_FLAGS = frozenset({"O_CREAT", "O_WRONLY", "O_RDWR"})
_NEVER_WHOLE = ("/usr/", "/bin/", "/sbin/", "/lib", "/boot/", "/proc/", "/sys/", "/dev/")
_NOT_STATE = ("/.slimmer",)


def written_dir(kind: str, flags: str, path: str, errno: str) -> str | None:
    """The directory a traced call wrote into, or None when it wrote nothing.

    A create (mkdir, mknod, symlink, the new name of rename/link) or an open with
    O_CREAT, O_WRONLY or O_RDWR writes into the directory of its path, when the
    kernel did not refuse it (`errno` empty)."""
    if errno or path == "/":
        return None
    opened_for_write = kind == "open" and bool(_WRITE_FLAGS & set(flags.split("|")))
    if kind in _CREATES or opened_for_write:
        return posixpath.dirname(path)
    return None


def keeps_whole(directory: str) -> bool:
    """Whether a directory written at run time is the app's state, kept whole."""
    if directory in SYSTEM_DIRS or directory.startswith(_NOT_STATE):
        return False
    return not (directory + "/").startswith(_NEVER_WHOLE)


def state_paths(
    tree: TreeView, traced: Iterable[tuple[str, str, str]]
) -> Iterator[tuple[str, Reason]]:
    """Every path of each state directory in the image, with why.

    `traced` holds (path, kind, program) triples; those of kind `write-parent`
    name the directories written into. A directory inside another state
    directory is covered by it and not walked again."""
    writers: dict[str, str] = {}
    for path, kind, by in traced:
        if kind == WRITE_PARENT and keeps_whole(path):
            writers.setdefault(path, by)
    roots = _outermost(tree, writers)
    for root in roots:
        by = f" by {writers[root]}" if writers[root] else ""
        reason = Reason(
            "state", f"{root} was written into at run time{by}; kept whole with owner and mode"
        )
        yield root, reason
        for below in sorted(walk_below(tree, root)):
            yield below, reason


def _outermost(tree: TreeView, writers: dict[str, str]) -> list[str]:
    """The written directories that exist in the image as directories and are not
    below another one, sorted."""
    real = {}
    for named in writers:
        res = tree.resolve(named)
        if res.entry is not None and res.entry.is_dir and keeps_whole(res.path):
            real[res.path] = named
    writers.update({r: writers[n] for r, n in real.items()})
    out: list[str] = []
    for path in sorted(real):
        if not any(path.startswith(root + "/") for root in out):
            out.append(path)
    return out
