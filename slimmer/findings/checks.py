"""The checks of `slim lint`: pure functions from a `LintInput` to findings.

Each check decides from the image config and the merged file tree alone (plus
the image's tags, and the paths a traced run opened when one is given); none
runs a container. docs/lint.md has the table of checks. File bytes are read only
for /etc/passwd, /etc/shadow and the secret candidates (`secrets.is_candidate`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from slimmer.analyse.inspect import PACKAGE_MANAGERS, SHELLS, named_binaries
from slimmer.findings import rules as m
from slimmer.findings import secrets
from slimmer.findings.rules import Finding
from slimmer.image.paths import search_path, which
from slimmer.model import EntryType, FileEntry, ImageConfig, TreeView

OCI_LABELS = ("created", "revision", "source", "version")
LARGE_BYTES = 5_000_000  # SLM-UNUSED-LARGE: files at least this big

# SLM-BUILD-JUNK: directory names that are junk wherever they are.
JUNK_DIRS = frozenset({".git", ".svn", ".hg", ".idea", ".vscode"})
# ... and paths that are junk when they hold files (caches of pip, npm, apt).
JUNK_SUFFIXES = ("/.cache/pip", "/node_modules/.cache", "/.npm/_cacache")
APT_LISTS = "/var/lib/apt/lists"
# __pycache__ below these belongs to an installed runtime, not to the build.
RUNTIME_PREFIXES = ("/usr/lib/", "/usr/local/lib/", "/usr/share/", "/opt/")


@dataclass(frozen=True)
class LintInput:
    """What the checks look at. `opened` is None when no traced run was given."""

    config: ImageConfig
    tree: TreeView
    tags: tuple[str, ...] = ()
    opened: frozenset[str] | None = None
    large_bytes: int = LARGE_BYTES


Check = Callable[[LintInput], Iterable[Finding]]


def user_root(inp: LintInput) -> Iterator[Finding]:
    user = inp.config.user
    name = user.partition(":")[0]
    root_names = {"", "root", "0"} | {n for n, uid in _accounts(inp.tree) if uid == "0"}
    if name in root_names:
        yield Finding(m.USER_ROOT, "config.User", f"User is {user!r}" if user else "User is unset")


def healthcheck(inp: LintInput) -> Iterator[Finding]:
    test = inp.config.healthcheck
    if not test or test[0] == "NONE":
        yield Finding(m.HEALTHCHECK_MISSING, "config.Healthcheck", "no HEALTHCHECK")
        return
    program = test[1] if test[0] == "CMD" and len(test) > 1 else "/bin/sh"
    workdir = inp.config.working_dir or "/"
    if which(inp.tree, program, search_path(inp.config.env), workdir) is None:
        yield Finding(m.HEALTHCHECK_PROGRAM, "config.Healthcheck", f"{program} is not in the image")


def secret_env(inp: LintInput) -> Iterator[Finding]:
    for name, hits in secrets.scan_env(inp.config.env).items():
        for hit in hits:
            yield Finding(m.SECRET_ENV, f"config.Env[{name}]", f"{hit.kind}: {hit.masked}")


def secret_files(inp: LintInput) -> Iterator[Finding]:
    for entry in _regular(inp.tree):
        if not secrets.is_candidate(entry.path):
            continue
        for hit in secrets.scan_lines(_lines(inp.tree, entry.path, secrets.MAX_FILE_BYTES)):
            yield Finding(m.SECRET_FILE, entry.path, f"{hit.kind}: {hit.masked}")


def build_junk(inp: LintInput) -> Iterator[Finding]:
    """Reported once at the top-most junk directory; `*.log` files one by one."""
    reported: list[str] = []
    for entry in sorted(inp.tree, key=lambda e: e.path):
        if any(entry.path.startswith(r + "/") for r in reported):
            continue
        why = _junk(inp.tree, entry)
        if why:
            if entry.is_dir:
                reported.append(entry.path)
            yield Finding(m.BUILD_JUNK, entry.path, why)


def _junk(tree: TreeView, entry: FileEntry) -> str:
    name = posixpath.basename(entry.path)
    if entry.is_dir:
        if name in JUNK_DIRS:
            return f"{name} directory"
        if name == "__pycache__" and not entry.path.startswith(RUNTIME_PREFIXES):
            return "bytecode cache of the app's build"
        if entry.path.endswith(JUNK_SUFFIXES) and _holds_files(tree, entry.path):
            return "package-manager cache"
        if entry.path == APT_LISTS and _holds_files(tree, entry.path, ignore=("lock",)):
            return "apt package lists"
    elif entry.is_regular and name.endswith(".log") and entry.size > 0:
        return f"log file ({entry.size} bytes)"
    return ""


def _holds_files(tree: TreeView, path: str, ignore: tuple[str, ...] = ()) -> bool:
    for name in tree.listdir(path):
        entry = tree.get(posixpath.join(path, name))
        if entry is None or name in ignore:
            continue
        if entry.is_regular or (entry.is_dir and _holds_files(tree, entry.path)):
            return True
    return False


def shells(inp: LintInput) -> Iterator[Finding]:
    for path in named_binaries(inp.tree, SHELLS):
        yield Finding(m.SHELL, path, "shell (@shells)")


def package_managers(inp: LintInput) -> Iterator[Finding]:
    for path in named_binaries(inp.tree, PACKAGE_MANAGERS):
        yield Finding(m.PKG_MANAGER, path, "package manager (@package-managers)")


def setuid(inp: LintInput) -> Iterator[Finding]:
    for e in _regular(inp.tree):
        bits = [b for b, on in (("setuid", e.is_setuid), ("setgid", e.is_setgid)) if on]
        if bits:
            yield Finding(m.SETUID, e.path, f"{' and '.join(bits)}, mode {e.mode & 0o7777:04o}")


def world_writable(inp: LintInput) -> Iterator[Finding]:
    """Regular files and directories anyone may write; a sticky directory (/tmp) is fine."""
    for e in inp.tree:
        if not (e.is_regular or e.is_dir) or e.type is EntryType.HARDLINK:
            continue
        if e.mode & 0o002 and not (e.is_dir and e.mode & 0o1000):
            yield Finding(m.WORLD_WRITABLE, e.path, f"mode {e.mode & 0o7777:04o}")


def duplicate_uids(inp: LintInput) -> Iterator[Finding]:
    by_uid: dict[str, list[str]] = {}
    for name, uid in _accounts(inp.tree):
        by_uid.setdefault(uid, []).append(name)
    for uid, names in sorted(by_uid.items()):
        if len(names) > 1:
            yield Finding(m.UID_DUPLICATE, "/etc/passwd", f"UID {uid}: {', '.join(names)}")


def empty_passwords(inp: LintInput) -> Iterator[Finding]:
    """An empty second field of /etc/shadow lets anyone log in with no password
    (shadow(5)); `*`, `!` and `!!` lock the account."""
    for line in _lines(inp.tree, "/etc/shadow"):
        fields = line.split(":")
        if len(fields) > 1 and fields[0] and fields[1] == "":
            yield Finding(m.SHADOW_EMPTY, "/etc/shadow", f"account {fields[0]}")


def labels(inp: LintInput) -> Iterator[Finding]:
    have = inp.config.container.get("Labels") or {}
    for name in OCI_LABELS:
        key = f"org.opencontainers.image.{name}"
        if not str(have.get(key) or ""):
            yield Finding(m.LABEL_MISSING, f"config.Labels[{key}]", "not set")


def latest_only(inp: LintInput) -> Iterator[Finding]:
    if inp.tags and all(t.rpartition(":")[2] == "latest" for t in inp.tags):
        yield Finding(m.TAG_LATEST, "tags", ", ".join(sorted(inp.tags)))


def unused_large(inp: LintInput) -> Iterator[Finding]:
    if inp.opened is None:
        return
    for e in _regular(inp.tree):
        if e.size >= inp.large_bytes and e.path not in inp.opened:
            yield Finding(m.UNUSED_LARGE, e.path, f"{e.size} bytes, never opened")


CHECKS: tuple[Check, ...] = (
    user_root,
    healthcheck,
    secret_env,
    secret_files,
    build_junk,
    shells,
    package_managers,
    setuid,
    world_writable,
    duplicate_uids,
    empty_passwords,
    labels,
    latest_only,
    unused_large,
)
CONTENT_PATHS = ("/etc/passwd", "/etc/shadow")


def _regular(tree: TreeView) -> Iterator[FileEntry]:
    return (e for e in tree if e.is_regular)


def _lines(tree: TreeView, path: str, size: int = -1) -> list[str]:
    """The text lines of a regular file; none when it is absent or its bytes were
    not kept (a hardlink to a path the reader was not asked for)."""
    entry = tree.get(path)
    if entry is None or not entry.is_regular:
        return []
    try:
        data = tree.read_bytes(path, size=size)
    except (LookupError, FileNotFoundError):
        return []
    return data.decode("utf-8", errors="replace").splitlines()


def _accounts(tree: TreeView) -> list[tuple[str, str]]:
    """(name, uid) of each well-formed /etc/passwd line."""
    out = []
    for line in _lines(tree, "/etc/passwd"):
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and not line.startswith("#"):
            out.append((fields[0], fields[2]))
    return out
