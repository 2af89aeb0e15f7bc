"""`--user`: who the slim image runs as, and what that user must own.

A service moved from root to a plain user (distroless's `nonroot`, 65532) still
has to write where it wrote before. Those places come from the traced run:

- a file opened for writing that existed: the file itself;
- a path created, renamed, linked or removed: its parent directory, which the
  user must be able to write into;
- a directory created by the app: the directory too, when it is kept.

Nothing under /dev, /proc or /sys is taken. Neither is a sticky,
world-writable directory such as /tmp, which every user can already write
into. The paths become `owners` for the app layer (`plan.onbase.app_layer`,
`with_owners`). Everything else keeps its owner, so a file that only root may
read stays root's. Verification then shows whether the app really runs as
the user.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

from slimmer.model import FileEntry, TreeView

NONROOT = (65532, 65532)
_WRITE_FLAGS = frozenset({"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"})
_CHANGES_PARENT = frozenset({"create", "rename", "link", "remove"})
_SYSTEM = ("/dev/", "/proc/", "/sys/")
_UID = re.compile(r"^(\d+)(?::(\d+))?$")


def parse_user(text: str) -> tuple[int, int] | None:
    """`nonroot` -> (65532, 65532); `UID[:GID]` -> numbers; a name -> None (used as
    given, with no ownership changes)."""
    if text == "nonroot":
        return NONROOT
    found = _UID.match(text)
    if not found:
        return None
    uid = int(found.group(1))
    return uid, int(found.group(2) or uid)


def user_field(text: str) -> str:
    """The config's `User` for a `--user` value (`nonroot` is 65532:65532)."""
    ids = parse_user(text)
    return f"{ids[0]}:{ids[1]}" if ids else text


class _Written:
    """What one event says the app wrote to."""

    def __init__(self) -> None:
        self.paths: set[str] = set()

    def add(self, kind: str, path: str, flags: str, existed: bool) -> None:
        if path.startswith(_SYSTEM) or not path.startswith("/"):
            return
        opened = set(flags.split("|"))
        if kind == "open" and _WRITE_FLAGS & opened:
            if existed:
                self.paths.add(path)
            if "O_CREAT" in opened or not existed:
                self.paths.add(posixpath.dirname(path))
        elif kind in _CHANGES_PARENT:
            self.paths.add(posixpath.dirname(path))
            if kind == "create":
                self.paths.add(path)


def written_paths(events: Iterable[tuple[str, str, str, bool]]) -> frozenset[str]:
    """Paths the app wrote into, from (kind, path, flags, existed) of traced events."""
    written = _Written()
    for kind, path, flags, existed in events:
        written.add(kind, path, flags, existed)
    return frozenset(written.paths - {"/"})


def owners_for(
    tree: TreeView, written: Iterable[str], ids: tuple[int, int]
) -> dict[str, tuple[int, int]]:
    """path -> new (uid, gid) for each written path the tree holds as a real entry,
    except sticky world-writable directories."""
    out: dict[str, tuple[int, int]] = {}
    for path in sorted(written):
        entry = tree.get(tree.resolve(path).path)
        if entry is None or (entry.is_dir and entry.mode & 0o1002 == 0o1002):
            continue
        out[entry.path] = ids
    return out


def with_owners(
    entries: Iterable[FileEntry], owners: Mapping[str, tuple[int, int]]
) -> list[FileEntry]:
    """`entries` with the owners of `owners` applied."""
    return [
        replace(e, uid=owners[e.path][0], gid=owners[e.path][1]) if e.path in owners else e
        for e in entries
    ]
