"""What the app layer holds when the slim image is built on a base image.

The base's layers stay as they are. The one layer added on top holds the kept
files that the base lacks, or holds with other content, type, mode or owner.
Where a kept file meets a file the base itself needs, the conflict is settled
here. Each settlement is a `Decision`, reported before anything is written:

- **A base directory meets an app symlink**, or a base symlink meets an app
  directory (a merged-`/usr` source on a split base, or the reverse): the base's
  entry stays. App entries below such a path are written where the base's
  symlinks lead (`/lib/x` becomes `/usr/lib/x` when the base's `/lib` links
  there). A layer entry must never replace a base directory with a link: that
  would hide the base's own files.
- **The base holds a shared library or the loader under the same path**: the
  base's copy stays. Its libc and loader are the ones it was built and tested
  with. `elf.compat` has already proved that they satisfy the app's
  symbol-version needs.
- **`/etc/passwd` and `/etc/group`**: merged. The base's lines stay, and each app
  account whose name and ID the base lacks is added after them.
- **Any other file that differs** (a CA bundle, a config file): the app's copy
  wins, as `COPY` in a Dockerfile would.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from slimmer.model import EntryType, FileEntry, TreeView
from slimmer.plan.keep import GeneratedFile, KeepSet, Reason

MERGED_FILES = ("/etc/passwd", "/etc/group")


@dataclass(frozen=True)
class Decision:
    """One conflict between a kept path and the base, and how it was settled."""

    path: str
    action: str  # "base-kept", "relocated", "merged", "app-kept"
    detail: str

    def describe(self) -> str:
        return f"{self.path}: {self.action} ({self.detail})"


@dataclass(frozen=True)
class AppLayer:
    """The entries of the app layer (source tree entries, some under new paths), the
    generated files, and what was left out because the base already has it."""

    entries: tuple[FileEntry, ...]
    generated: tuple[GeneratedFile, ...]
    identical: int
    identical_bytes: int
    decisions: tuple[Decision, ...]


def app_layer(
    source: TreeView,
    keep: KeepSet,
    base: TreeView,
    base_libs: Iterable[str] = (),
    owners: Mapping[str, tuple[int, int]] | None = None,
) -> AppLayer:
    """Split the keep set against `base`. `base_libs` are the base's shared libraries
    and loader (real paths); a kept file at one of those paths is the base's.
    `owners` (path -> uid, gid, see `plan.owners`) change owners before comparing.
    Pure: reads both trees, returns a value."""
    libs = frozenset(base_libs)
    entries: dict[str, FileEntry] = {}
    decisions: list[Decision] = []
    identical = identical_bytes = 0
    generated = {g.path: g for g in keep.generated}
    for path in sorted(keep.paths()):
        entry = source.get(path)
        if path == "/" or entry is None or path in generated:
            continue
        target = _through_base_links(base, path)
        if target != path:
            decisions.append(Decision(path, "relocated", f"the base links it to {target}"))
        uid, gid = (owners or {}).get(path, (entry.uid, entry.gid))
        ours = replace(entry, path=target, link=_relink(base, entry), uid=uid, gid=gid)
        verdict = _settle(ours, base.get(target), libs)
        if verdict == "same":
            identical += 1
            identical_bytes += entry.size if entry.is_regular else 0
        elif verdict == "write":
            entries[target] = ours
        elif verdict == "merge":
            continue
        elif verdict.startswith("skip"):
            decisions.append(Decision(target, "base-kept", verdict.partition(":")[2].strip()))
        else:  # "app": the app's file replaces the base's
            entries[target] = ours
            decisions.append(Decision(target, "app-kept", "differs from the base's copy"))
    merged = _merge_accounts(source, base, keep)
    for gen in merged:
        entries.pop(gen.path, None)
        generated[gen.path] = gen
        decisions.append(Decision(gen.path, "merged", "the base's accounts, then the app's"))
    return AppLayer(
        tuple(entries[p] for p in sorted(entries)),
        tuple(generated[p] for p in sorted(generated)),
        identical,
        identical_bytes,
        tuple(decisions),
    )


def _settle(ours: FileEntry, theirs: FileEntry | None, libs: frozenset[str]) -> str:
    """ "write", "same", "app", "merge", or "skip: why" for one kept entry against the
    base's."""
    if theirs is None:
        return "write"
    if theirs.is_dir and ours.type is EntryType.SYMLINK:
        return f"skip: the base has a directory here; the app's link to {ours.link} is dropped"
    if theirs.type is EntryType.SYMLINK and ours.is_dir:
        return f"skip: the base links this directory to {theirs.link}"
    if theirs.is_dir and ours.is_dir:
        return "same" if _meta(theirs) == _meta(ours) else "write"
    if _same(ours, theirs):
        return "same"
    if ours.path in libs:
        return "skip: the base's own library (its libc and loader stay the base's)"
    if ours.path in MERGED_FILES:
        return "merge"  # the base's file, or the merged one `_merge_accounts` writes
    return "app"


def _meta(entry: FileEntry) -> tuple[object, ...]:
    return (entry.mode & 0o7777, entry.uid, entry.gid)


def _same(a: FileEntry, b: FileEntry) -> bool:
    if a.is_regular and b.is_regular:
        return a.content is not None and a.content == b.content and _meta(a) == _meta(b)
    return a.type == b.type and a.link == b.link and _meta(a) == _meta(b)


def _through_base_links(base: TreeView, path: str) -> str:
    """`path` with its parent directory resolved through the base's symlinks."""
    parent, name = posixpath.split(path)
    if parent == "/":
        return path
    resolved = base.resolve(parent)
    if not resolved.exists:
        return path
    return posixpath.join(resolved.path, name)


def _relink(base: TreeView, entry: FileEntry) -> str:
    """A hardlink's target follows the same relocation as any path."""
    if entry.type is EntryType.HARDLINK and entry.link.startswith("/"):
        return _through_base_links(base, entry.link)
    return entry.link


@dataclass(frozen=True)
class _Account:
    line: str
    name: str
    id: str


def _accounts(text: str) -> list[_Account]:
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and not line.startswith("#"):
            out.append(_Account(line, fields[0], fields[2]))
    return out


def merge_accounts(base_text: str, app_text: str) -> str:
    """The base's lines, then each app line whose name and ID the base does not use."""
    have = _accounts(base_text)
    names = {a.name for a in have}
    ids = {a.id for a in have}
    added = [a.line for a in _accounts(app_text) if a.name not in names and a.id not in ids]
    lines = [*base_text.rstrip("\n").splitlines(), *added]
    return "\n".join(lines) + "\n" if lines else ""


def _merge_accounts(source: TreeView, base: TreeView, keep: KeepSet) -> Sequence[GeneratedFile]:
    out = []
    for path in MERGED_FILES:
        theirs = base.get(path)
        if theirs is None or not theirs.is_regular:
            continue
        base_text = base.read_bytes(path).decode("utf-8", "replace")
        ours = source.get(path)
        app_text = source.read_bytes(path).decode("utf-8", "replace") if ours else ""
        merged = merge_accounts(base_text, app_text)
        if merged == base_text:
            continue  # no account of the app's is missing: the base's file stays
        reason = Reason("base", "the base's accounts, then the app's")
        data = merged.encode()
        out.append(GeneratedFile(path, data, reason, theirs.mode & 0o7777, theirs.mtime))
    return out
