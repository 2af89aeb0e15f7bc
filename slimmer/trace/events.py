"""strace output -> file-access events, with each process's working directory.

Pure: text in, a `Trace` value out. The sensor runs strace with
`STRACE_OPTIONS`; this module reads exactly that format, one file in which
`-f` prefixes every line with the pid of the thread that made the call.

Paths are kept as the process named them: relative names are joined to the
directory they were relative to (the `-y`-decoded dirfd, or the tracked working
directory), `..` is *not* resolved across symlinks in `Event.raw`, and
`Event.path` is its lexical normalisation. Following symlinks is the
planner's job, against the image tree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

from slimmer.trace.stracetext import (
    Call,
    fd_arg,
    parse_argv,
    parse_result,
    split_calls,
    string_arg,
)

SCHEMA = "slimmer.trace/v1"


@dataclass(frozen=True)
class _PathArg:
    """Where one path of a call is: its argument index and its dirfd's index.

    `path` None means the dirfd itself is the path (fchdir). `kind` overrides
    the syscall's kind (the new name of rename/link/symlink is a "create").
    """

    path: int | None
    dirfd: int | None = None
    kind: str = ""


@dataclass(frozen=True)
class _Spec:
    kind: str
    paths: tuple[_PathArg, ...] = ()
    flags: tuple[int, ...] = ()
    follow: bool = True  # whether the last component's symlink is followed
    toggle: str = ""  # flag that inverts `follow` (O_NOFOLLOW, AT_SYMLINK_FOLLOW)
    target: int | None = None  # readlink's buffer, symlink's contents
    argv: int | None = None


def _at(kind: str, flags: int, toggle: str = "AT_SYMLINK_NOFOLLOW", follow: bool = True) -> _Spec:
    return _Spec(kind, (_PathArg(1, 0),), (flags,), follow, toggle)


_P0 = (_PathArg(0),)
_SPECS: Mapping[str, _Spec] = {
    "open": _Spec("open", _P0, (1,), toggle="O_NOFOLLOW"),
    "openat": _at("open", 2, "O_NOFOLLOW"),
    "openat2": _at("open", 2, "O_NOFOLLOW"),
    "creat": _Spec("open", _P0),
    "stat": _Spec("stat", _P0),
    "stat64": _Spec("stat", _P0),
    "lstat": _Spec("stat", _P0, follow=False),
    "lstat64": _Spec("stat", _P0, follow=False),
    "newfstatat": _at("stat", 3),
    "fstatat64": _at("stat", 3),
    "statx": _at("stat", 2),
    "access": _Spec("access", _P0, (1,)),
    "faccessat": _at("access", 2),
    "faccessat2": _Spec("access", (_PathArg(1, 0),), (2, 3), toggle="AT_SYMLINK_NOFOLLOW"),
    "readlink": _Spec("readlink", _P0, follow=False, target=1),
    "readlinkat": _Spec("readlink", (_PathArg(1, 0),), follow=False, target=2),
    "execve": _Spec("exec", _P0, argv=1),
    "execveat": _Spec("exec", (_PathArg(1, 0),), (4,), True, "AT_SYMLINK_NOFOLLOW", argv=2),
    "chdir": _Spec("chdir", _P0),
    "fchdir": _Spec("chdir", (_PathArg(None, 0),)),
    "mkdir": _Spec("create", _P0, follow=False),
    "mkdirat": _at("create", 2, "", False),
    "mknod": _Spec("create", _P0, follow=False),
    "mknodat": _at("create", 2, "", False),
    "unlink": _Spec("remove", _P0, follow=False),
    "rmdir": _Spec("remove", _P0, follow=False),
    "unlinkat": _at("remove", 2, "", False),
    "rename": _Spec("rename", (_PathArg(0), _PathArg(1, None, "create")), follow=False),
    "renameat": _Spec("rename", (_PathArg(1, 0), _PathArg(3, 2, "create")), follow=False),
    "renameat2": _Spec("rename", (_PathArg(1, 0), _PathArg(3, 2, "create")), (4,), False),
    "link": _Spec("link", (_PathArg(0), _PathArg(1, None, "create")), follow=False),
    "linkat": _Spec(
        "link", (_PathArg(1, 0), _PathArg(3, 2, "create")), (4,), False, "AT_SYMLINK_FOLLOW"
    ),
    "symlink": _Spec("create", (_PathArg(1),), follow=False, target=0),
    "symlinkat": _Spec("create", (_PathArg(2, 1),), follow=False, target=0),
}
_FORKS = ("fork", "vfork", "clone", "clone2", "clone3")
# bind() of an AF_UNIX socket creates its path: a "create" event, like mknod.
_SUN_PATH = re.compile(r'sun_path=("(?:[^"\\]|\\.)*")')

TRACED_SYSCALLS: tuple[str, ...] = (*_SPECS, *_FORKS, "bind")
"""Every syscall the parser understands; the sensor traces exactly these."""

_COMMON_OPTIONS: tuple[str, ...] = (
    "-f",  # follow forks/threads; with -o every line starts with the pid
    "-qq",  # no attach/detach/exit-status lines
    "-y",  # decode fds (dirfds, AT_FDCWD, returned fds) to their paths
    "-x",  # non-ASCII strings in hex: the log stays ASCII and exact
    "-s",
    "4096",  # argv strings up to PATH_MAX (paths are never cut)
)
_NO_SIGNALS = ("-e", "signal=none")  # no "--- SIGCHLD ---" lines
STRACE_OPTIONS: tuple[str, ...] = (
    *_COMMON_OPTIONS,
    "--seccomp-bpf",  # stop only on the traced syscalls: much less overhead
    *_NO_SIGNALS,
    # "?" tolerates names this strace or architecture does not have.
    "-e",
    "trace=" + ",".join("?" + name for name in TRACED_SYSCALLS),
)
"""The strace options whose output `parse` reads (add `-o FILE -- CMD...`)."""

EVERY_CALL_OPTIONS: tuple[str, ...] = (*_COMMON_OPTIONS, *_NO_SIGNALS)
"""The same format with every system call traced (`--seccomp`: the evidence of a
seccomp profile). Slower: strace stops on every call. Without `--seccomp-bpf` on
purpose too: under a container's own seccomp filter, a call that filter refuses
(SECCOMP_RET_ERRNO) outranks strace's SECCOMP_RET_TRACE and would never be seen;
plain ptrace stops see it fail."""


def strace_options(every_call: bool = False) -> tuple[str, ...]:
    """The strace options for a file-access trace, or one of every system call."""
    return EVERY_CALL_OPTIONS if every_call else STRACE_OPTIONS


# Errors that say the path was not there (or not looked at) rather than that
# it was there but refused: anything else (EACCES, ELOOP, EISDIR, EINVAL from
# readlink on a non-link, ...) means the kernel found the object.
_ABSENT = frozenset({"ENOENT", "ENOTDIR", "ENAMETOOLONG", "EFAULT", "EBADF", "ENOSYS"})


@dataclass(frozen=True)
class Event:
    """One path named by one system call.

    `path` is absolute and lexically normalised; `raw` is the same name joined
    to its base directory without removing `..` (which is wrong across
    symlinks). `existed` is True when the kernel found the object: the call
    succeeded, failed for a reason other than a missing path, or its result is
    unknown; for a "create" kind only EEXIST says the path existed, and an
    `O_CREAT|O_EXCL` open that succeeded created it. `follow` says whether a
    symlink in the last component was followed. `target` is the kernel's path
    of the opened file (every symlink resolved), a readlink's result or a
    symlink's contents.
    """

    pid: int
    syscall: str
    kind: str
    path: str
    raw: str
    result: int
    errno: str
    existed: bool
    follow: bool = True
    flags: str = ""
    target: str = ""


@dataclass(frozen=True)
class Trace:
    """Everything one traced run touched, in the order the calls were made.

    `processes` maps a pid to the argv of its last successful exec; `parents`
    maps a forked pid to its parent. `warnings` name the lines that could not
    be read. `syscalls` names every system call in the log (sorted), and
    `refusals` each (call, errno, pid) that failed with EPERM or ENOSYS, the two
    answers of a seccomp filter: both are meaningful only when the sensor traced
    every call (`strace_options(every_call=True)`); otherwise they cover the file
    calls only.
    """

    events: tuple[Event, ...]
    processes: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    parents: Mapping[int, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    syscalls: tuple[str, ...] = ()
    refusals: tuple[tuple[str, str, int], ...] = ()

    def touched(self, kinds: Iterable[str] | None = None) -> tuple[str, ...]:
        """Sorted paths that existed when named (optionally only these kinds)."""
        wanted = None if kinds is None else frozenset(kinds)
        return tuple(
            sorted(
                {e.path for e in self.events if e.existed and (wanted is None or e.kind in wanted)}
            )
        )

    def missing(self) -> tuple[str, ...]:
        """Sorted paths looked up but never found (search paths, optional configs)."""
        found = set(self.touched())
        return tuple(sorted({e.path for e in self.events if not e.existed} - found))

    def by_kind(self) -> dict[str, tuple[str, ...]]:
        """Existing paths grouped by event kind."""
        groups: dict[str, set[str]] = {}
        for e in self.events:
            if e.existed:
                groups.setdefault(e.kind, set()).add(e.path)
        return {k: tuple(sorted(v)) for k, v in sorted(groups.items())}

    def executables(self) -> tuple[str, ...]:
        return self.touched(["exec"])

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "events": [asdict(e) for e in self.events],
            "processes": {str(p): list(a) for p, a in sorted(self.processes.items())},
            "parents": {str(c): p for c, p in sorted(self.parents.items())},
            "warnings": list(self.warnings),
            "syscalls": list(self.syscalls),
            "refusals": [[name, errno, pid] for name, errno, pid in self.refusals],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Trace:
        doc: dict[str, Any] = json.loads(text)
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"reading a trace: schema {doc.get('schema')!r} is not {SCHEMA}")
        return cls(
            events=tuple(Event(**e) for e in doc["events"]),
            processes=MappingProxyType({int(p): tuple(a) for p, a in doc["processes"].items()}),
            parents=MappingProxyType({int(c): int(p) for c, p in doc["parents"].items()}),
            warnings=tuple(doc["warnings"]),
            syscalls=tuple(doc.get("syscalls", ())),
            refusals=tuple((str(n), str(e), int(p)) for n, e, p in doc.get("refusals", ())),
        )


# -- paths --------------------------------------------------------------------


def join(base: str, name: str) -> str:
    """`name` made absolute against directory `base`, with nothing removed."""
    if name.startswith("/"):
        return name
    return base.rstrip("/") + "/" + name if name else base


def normalise(path: str) -> str:
    """Lexical normalisation: `//`, `.` and `..` removed (`..` at the root stays there)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


# -- calls -> events ------------------------------------------------------------


class _Walker:
    """Replays calls in order, tracking each process's cwd.

    Working directories live in "fs" records, as in the kernel: a child made
    with CLONE_FS (every thread) shares its parent's, any other child gets a
    copy. A `-y`-decoded `AT_FDCWD</dir>` is the kernel's own answer and
    replaces the tracked one.
    """

    def __init__(self, cwd: str) -> None:
        self.initial = cwd
        self.fs_of: dict[int, int] = {}
        self.cwds: dict[int, str | None] = {}
        self.processes: dict[int, tuple[str, ...]] = {}
        self.parents: dict[int, int] = {}
        self.warnings: list[str] = []

    def _fs(self, pid: int) -> int:
        if pid not in self.fs_of:
            self.fs_of[pid] = len(self.cwds)
            self.cwds[len(self.cwds)] = None
        return self.fs_of[pid]

    def cwd(self, pid: int) -> str:
        return self.cwds[self._fs(pid)] or self.initial

    def set_cwd(self, pid: int, path: str) -> None:
        self.cwds[self._fs(pid)] = path

    def fork(self, call: Call) -> None:
        child, _, _ = parse_result(call.result)
        if child is None or child <= 0:
            return
        flags = re.search(r"flags=([\w|]+)", ",".join(call.args))
        if flags and "CLONE_FS" in flags.group(1).split("|"):
            self.fs_of[child] = self._fs(call.pid)
        else:
            self.fs_of[child] = len(self.cwds)
            self.cwds[len(self.cwds)] = self.cwds[self._fs(call.pid)]
        self.parents[child] = call.pid

    def events(self, call: Call) -> list[Event]:
        if call.name in _FORKS:
            self.fork(call)
            return []
        if call.name == "bind":
            return self._bind(call)
        spec = _SPECS.get(call.name)
        if spec is None:
            return []
        out = [e for p in spec.paths if (e := self._event(call, spec, p)) is not None]
        self._effects(call, spec, out)
        return out

    def _effects(self, call: Call, spec: _Spec, events: list[Event]) -> None:
        if not events or events[0].result < 0 or events[0].errno:
            return
        if spec.kind == "chdir":
            self.set_cwd(call.pid, events[0].raw)
        elif spec.kind == "exec" and spec.argv is not None and spec.argv < len(call.args):
            self.processes[call.pid] = parse_argv(call.args[spec.argv])

    def _bind(self, call: Call) -> list[Event]:
        """The path a bind() of an AF_UNIX socket creates (abstract names have none)."""
        m = _SUN_PATH.search(call.args[1]) if len(call.args) > 1 else None
        name = string_arg(m.group(1)) if m else None
        if not name:
            return []
        raw = join(self.cwd(call.pid), name)
        value, errno, _ = parse_result(call.result)
        return [
            Event(
                pid=call.pid,
                syscall="bind",
                kind="create",
                path=normalise(raw),
                raw=raw,
                result=-1 if value is None else value,
                errno=errno,
                existed=errno == "EADDRINUSE",
            )
        ]

    def _base(self, call: Call, p: _PathArg) -> str | None:
        if p.dirfd is None:
            return self.cwd(call.pid)
        fd, path = fd_arg(call.args[p.dirfd]) if p.dirfd < len(call.args) else ("", None)
        if fd == "AT_FDCWD":
            if path is not None:
                self.set_cwd(call.pid, path)
            return path or self.cwd(call.pid)
        return path

    def _event(self, call: Call, spec: _Spec, p: _PathArg) -> Event | None:
        flags = "|".join(call.args[i] for i in spec.flags if i < len(call.args))
        name = "" if p.path is None else _arg_string(call, p.path)
        if name is None:
            return None
        if name == "" and p.path is not None:
            if spec.kind == "stat" or "AT_EMPTY_PATH" not in flags:
                return None  # fstat() of an fd already opened (and recorded)
        base = self._base(call, p)  # always: an AT_FDCWD decoration updates the cwd
        if base is None and not name.startswith("/"):
            self.warnings.append(f"{call.name} by pid {call.pid}: dirfd not decoded")
            return None
        raw = join(base or "/", name)
        value, errno, deco = parse_result(call.result)
        kind = p.kind or spec.kind
        target = deco
        if spec.target is not None:
            target = _arg_string(call, spec.target) or ""  # an address when it failed
        follow = spec.follow != (spec.toggle in _tokens(flags))
        return Event(
            pid=call.pid,
            syscall=call.name,
            kind=kind,
            path=normalise(raw),
            raw=raw,
            result=-1 if value is None else value,
            errno=errno,
            existed=_existed(kind, flags, value, errno),
            follow=follow,
            flags=flags if spec.flags else "",
            target=target,
        )


def _arg_string(call: Call, index: int) -> str | None:
    return string_arg(call.args[index]) if index < len(call.args) else None


def _existed(kind: str, flags: str, value: int | None, errno: str) -> bool:
    if kind == "create":
        return errno == "EEXIST"
    if value is None:
        return True  # never finished: assume the worst, the planner checks the tree
    if errno:
        return errno not in _ABSENT
    return not (kind == "open" and {"O_CREAT", "O_EXCL"} <= _tokens(flags))


def _tokens(flags: str) -> set[str]:
    """The flag names in "O_RDONLY|O_CLOEXEC" or openat2's "{flags=O_RDONLY, ...}"."""
    return set(re.split(r"[|,{}= ]+", flags)) - {""}


def parse(data: bytes | str, cwd: str = "/") -> Trace:
    """Read one strace log written with `STRACE_OPTIONS`.

    `cwd` is the first process's working directory (the container's), used
    until a `-y` decoration or a chdir says otherwise.
    """
    text = data.decode("latin-1") if isinstance(data, bytes) else _latin(data)
    calls, warnings = split_calls(text)
    walker = _Walker(cwd)
    events = [e for c in calls for e in walker.events(c)]
    return Trace(
        events=tuple(events),
        processes=MappingProxyType(dict(sorted(walker.processes.items()))),
        parents=MappingProxyType(dict(sorted(walker.parents.items()))),
        warnings=tuple(warnings + walker.warnings),
        syscalls=tuple(sorted({c.name for c in calls})),
        refusals=_refusals(calls),
    )


SECCOMP_ERRNOS = ("EPERM", "ENOSYS")
"""What a call refused by a seccomp filter returns: the engine's default action
(`SCMP_ACT_ERRNO`, EPERM) or a rule's `errnoRet` (ENOSYS)."""


def _refusals(calls: Iterable[Call]) -> tuple[tuple[str, str, int], ...]:
    """(call, errno, first pid) of each call that failed with EPERM or ENOSYS."""
    found: dict[tuple[str, str], int] = {}
    for c in calls:
        _, errno, _ = parse_result(c.result)
        if errno in SECCOMP_ERRNOS:
            found.setdefault((c.name, errno), c.pid)
    return tuple(sorted((n, e, p) for (n, e), p in found.items()))


def _latin(text: str) -> str:
    """A str log as the latin-1 view of its bytes (undoing surrogateescape)."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")
