"""slimmer.trace.events on strace logs recorded on a host (tests/data/strace/README.md)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from slimmer.trace.events import (
    SCHEMA,
    STRACE_OPTIONS,
    TRACED_SYSCALLS,
    Event,
    Trace,
    join,
    normalise,
    parse,
)
from slimmer.trace.stracetext import parse_result, unescape

DATA = Path(__file__).parent / "data" / "strace"
REC = "/tmp/slimmer-rec"  # the directory record.sh ran the programs in


def load(name: str) -> Trace:
    return parse((DATA / name).read_bytes(), cwd=REC)


def pid_of(trace: Trace, *argv: str) -> int:
    return next(p for p, a in trace.processes.items() if a == argv)


def events(trace: Trace, path: str, pid: int | None = None) -> list[Event]:
    return [e for e in trace.events if e.path == path and (pid is None or e.pid == pid)]


# -- the recordings use the sensor's exact option set --------------------------


def test_recordings_use_the_sensor_options() -> None:
    script = (DATA / "record.sh").read_text()
    trace_list = re.search(r"TRACE='([^']*)'", script)
    opts = re.search(r'echo "(.*)"; }', script)
    assert trace_list and opts
    assert trace_list.group(1) == ",".join("?" + n for n in TRACED_SYSCALLS)
    recorded = opts.group(1).replace("$1", "-x").replace("$TRACE", trace_list.group(1))
    assert recorded.split() == list(STRACE_OPTIONS)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.log")))
def test_every_recording_reads_cleanly(name: str) -> None:
    trace = load(name)
    assert trace.events and trace.warnings == ()
    assert all(e.path.startswith("/") and e.raw.startswith("/") for e in trace.events)


# -- working directories --------------------------------------------------------


def test_open_after_chdir_is_relative_to_the_new_cwd() -> None:
    trace = load("python_chdir.log")
    [x] = events(trace, "/tmp/x")
    assert (x.kind, x.syscall, x.existed, x.errno) == ("open", "openat", False, "ENOENT")
    assert x.result == -1
    assert events(trace, "/tmp")[0].kind == "chdir"
    assert "/usr/lib/python3.11/json/__init__.py" in trace.touched(["stat"])


def test_fork_child_inherits_a_copy_of_the_cwd() -> None:
    trace = load("fork_cwd.log")
    parent = next(iter(trace.processes))
    [child] = [c for c, p in trace.parents.items() if p == parent and not events(trace, "/etc", c)]
    # access() has no dirfd: only the tracked cwd can place these.
    assert events(trace, "/usr/share", child)[0].kind == "access"
    [misc] = events(trace, "/usr/share/misc", child)
    assert misc.raw == "/usr/lib/../share/misc"  # the child's relative chdir("lib")
    # The child's chdir did not move the parent.
    assert events(trace, "/usr/bin", parent)[0].kind == "access"
    assert not events(trace, "/usr/lib/bin")


def test_threads_share_the_cwd() -> None:
    trace = load("fork_cwd.log")
    parent = next(iter(trace.processes))
    thread = next(c for c, p in trace.parents.items() if p == parent and events(trace, "/etc", c))
    assert events(trace, "/etc", thread)[0].syscall == "chdir"
    [hostname] = [e for e in events(trace, "/etc/hostname", parent) if e.kind == "access"]
    assert hostname.existed


def test_fchdir_moves_the_cwd_to_the_fd_path() -> None:
    trace = load("fork_cwd.log")
    [fchdir] = [e for e in trace.events if e.syscall == "fchdir"]
    assert (fchdir.path, fchdir.kind) == ("/var", "chdir")
    assert events(trace, "/var/lib")[0].existed
    [gone] = events(trace, "/var/no-such-file")
    assert (gone.existed, gone.errno) == (False, "ENOENT")


def test_relative_exec_in_a_forked_subshell_through_a_symlink() -> None:
    trace = load("shell.log")
    shell = pid_of(trace, *trace.processes[min(trace.processes)])
    direct = pid_of(trace, "./mytrue")
    [exe] = [e for e in events(trace, f"{REC}/links/mytrue", direct) if e.kind == "exec"]
    assert exe.raw == f"{REC}/links/./mytrue" and exe.follow and exe.existed
    subshell = trace.parents[direct]
    assert trace.parents[subshell] == shell
    [again] = [e for e in events(trace, f"{REC}/links/mytrue", subshell) if e.kind == "exec"]
    assert again.raw == f"{REC}/links/../links/mytrue"
    assert f"{REC}/links/mytrue" in trace.executables()


# -- unfinished / resumed ---------------------------------------------------------


def test_unfinished_and_resumed_halves_are_joined() -> None:
    text = (DATA / "shell.log").read_text()
    assert "<unfinished ...>" in text and " resumed>" in text
    trace = load("shell.log")
    # Each vfork's result (the child pid) comes after the child's first calls.
    for child in (pid_of(trace, "cat", "hostname"), pid_of(trace, "./mytrue")):
        assert child in trace.parents
    cat = pid_of(trace, "cat", "/etc/passwd")
    [opened] = [e for e in events(trace, "/etc/passwd", cat) if e.kind == "open"]
    assert (opened.result, opened.target, opened.flags) == (3, "/etc/passwd", "O_RDONLY")


SYNTHETIC = """\
10 chdir("/srv") = 0
10 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>
11 openat(AT_FDCWD, "early", O_RDONLY <unfinished ...>
10 <... clone resumed>, child_tidptr=0x7f) = 11
11 <... openat resumed>) = 3</srv/early>
10 clone3({flags=CLONE_VM|CLONE_FS|CLONE_THREAD, exit_signal=0} => {parent_tid=[12]}, 88) = 12
12 chdir("/opt") = 0
10 stat("conf", {st_mode=S_IFREG|0644, ...}) = 0
11 stat("conf", 0x7ffd) = -1 ENOENT (No such file or directory)
11 openat(5, "x", O_RDONLY) = 3
11 +++ exited with 0 +++
10 --- SIGCHLD {si_signo=SIGCHLD} ---
10 mkdir("made", 0755) = 0
10 mkdir("there", 0755) = -1 EEXIST (File exists)
10 openat(AT_FDCWD</opt>, "new", O_WRONLY|O_CREAT|O_EXCL, 0600) = 4</opt/new>
10 openat(AT_FDCWD</opt>, "old", O_RDONLY) = 5</opt/old (deleted)>
10 lstat("/etc/secret", 0x7ffd) = -1 EACCES (Permission denied)
10 newfstatat(AT_FDCWD</opt>, "link", 0x7ffd, AT_SYMLINK_NOFOLLOW) = 0
10 rename("a", "b") = 0
10 symlinkat("../target", AT_FDCWD</opt>, "sym") = 0
10 execve("/bin/app", ["app", "--x"], 0x7ffd /* 3 vars */ <unfinished ...>
"""


def test_child_calls_before_the_fork_result_inherit_the_cwd() -> None:
    trace = parse(SYNTHETIC)
    assert trace.parents == {11: 10, 12: 10}
    [early] = events(trace, "/srv/early")
    assert (early.pid, early.target) == (11, "/srv/early")
    # The thread (CLONE_FS) moved pid 10 too; the forked child kept /srv.
    assert events(trace, "/opt/conf")[0].pid == 10
    assert events(trace, "/srv/conf")[0].pid == 11


def test_undecoded_dirfd_is_skipped_with_a_warning() -> None:
    trace = parse(SYNTHETIC)
    assert not [e for e in trace.events if e.path.endswith("/x")]
    assert trace.warnings == ("openat by pid 11: dirfd not decoded",)


def test_existed_flags() -> None:
    trace = parse(SYNTHETIC)
    by_path = {e.path: e for e in trace.events}
    assert not by_path["/opt/made"].existed  # mkdir created it
    assert by_path["/opt/there"].existed  # EEXIST
    assert not by_path["/opt/new"].existed  # O_CREAT|O_EXCL succeeded
    assert by_path["/opt/old"].target == "/opt/old"  # " (deleted)" dropped
    assert by_path["/etc/secret"].existed and not by_path["/etc/secret"].follow  # EACCES
    assert not by_path["/opt/link"].follow
    assert (by_path["/opt/a"].kind, by_path["/opt/b"].kind) == ("rename", "create")
    assert (by_path["/opt/sym"].kind, by_path["/opt/sym"].target) == ("create", "../target")
    # Killed mid-execve: the result is unknown, so assume the file is there.
    app = by_path["/bin/app"]
    assert (app.errno, app.existed) == ("?", True)
    assert 10 not in trace.processes


def test_existed_on_recorded_failures() -> None:
    trace = load("shell.log")
    assert [e.existed for e in events(trace, "/etc/passwd/x")] == [False]  # ENOTDIR
    assert [e.existed for e in events(trace, "/nonexistent")] == [False]  # ENOENT
    fork_cwd = load("fork_cwd.log")
    # Python's readlink("fork_cwd.py"), relative to the initial cwd, then absolute.
    scripts = [e for e in fork_cwd.events if e.raw == f"{REC}/fork_cwd.py" and e.errno]
    assert [(e.kind, e.errno, e.existed) for e in scripts] == [("readlink", "EINVAL", True)] * 2
    [link] = [e for e in fork_cwd.events if e.syscall == "readlinkat"]
    assert (link.path, link.target, link.follow) == (f"{REC}/links/mytrue", "/bin/true", False)


def test_dirfd_decoding() -> None:
    trace = load("fork_cwd.log")
    [passwd] = [e for e in events(trace, "/etc/passwd") if e.syscall == "newfstatat"]
    assert passwd.existed and passwd.flags == "0"
    assert [e.target for e in events(trace, "/etc/hostname") if e.kind == "open"] == [
        "/etc/hostname"
    ]


# -- escapes ------------------------------------------------------------------------

NAMES = [
    b"new\nline",
    b'quo"te',
    b"back\\slash",
    b"lt<gt>",
    b"com,ma",
    b"\xff\xfebin",
    b"caf\xc3\xa9",
    b"tab\there",
    b"sp ace",
]


@pytest.mark.parametrize("name", ["escapes.log", "escapes_xx.log", "escapes_octal.log"])
def test_escaped_names_decode_to_the_exact_bytes(name: str) -> None:
    trace = load(name)
    opened = [e for e in trace.events if e.path.startswith(f"{REC}/esc/")]
    assert [os.fsencode(e.path) for e in opened] == [f"{REC}/esc/".encode() + n for n in NAMES]
    assert all(e.target == e.path for e in opened)


def test_the_three_escape_styles_give_the_same_events() -> None:
    def shape(t: Trace) -> list[tuple[str, ...]]:
        return [(e.syscall, e.path, e.target, e.errno) for e in t.events]

    plain = shape(load("escapes.log"))
    assert shape(load("escapes_xx.log")) == plain
    assert shape(load("escapes_octal.log")) == plain


def test_arguments_keep_their_positions() -> None:
    trace = parse('7 vfork() = 8\n7 renameat2(AT_FDCWD</a>, "x", , "/y", 0) = 0\n')
    assert trace.parents == {8: 7}
    assert [e.path for e in trace.events] == ["/a/x", "/y"]  # "/y" stays argument 3


def test_unescape_forms() -> None:
    assert unescape(r"a\x41\101\0\n\t\"\\") == b'aAA\x00\n\t"\\'
    assert unescape(r"\3770") == b"\xff0"


# -- paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "want"),
    [("/a/./b/../c", "/a/c"), ("//a//b/", "/a/b"), ("/..", "/"), ("/a/../../b", "/b"), ("/", "/")],
)
def test_normalise(path: str, want: str) -> None:
    assert normalise(path) == want


def test_join_keeps_the_name_as_given() -> None:
    assert join("/a/link", "../x") == "/a/link/../x"
    assert join("/", "x") == "/x"
    assert join("/a", "/abs") == "/abs"


# -- the value and its JSON form ----------------------------------------------------------


def test_helpers() -> None:
    trace = load("python_chdir.log")
    assert "/tmp/x" in trace.missing() and "/tmp/x" not in trace.touched()
    assert trace.executables() == ("/usr/bin/python3",)
    kinds = trace.by_kind()
    assert set(kinds) == {"open", "stat", "exec", "chdir", "readlink"}
    assert "/etc/ld.so.preload" in trace.missing()  # the only access(), and it failed
    assert kinds["exec"] == ("/usr/bin/python3",)
    assert trace.processes[pid_of(trace, *trace.processes[min(trace.processes)])][1] == "-c"


def test_json_round_trip_and_contract() -> None:
    trace = load("fork_cwd.log")
    text = trace.to_json()
    doc = json.loads(text)
    assert doc["schema"] == SCHEMA == "slimmer.trace/v1"
    assert sorted(doc) == [
        "events", "parents", "processes", "refusals", "schema", "syscalls", "warnings"
    ]  # fmt: skip
    assert sorted(doc["events"][0]) == sorted(
        [
            "pid",
            "syscall",
            "kind",
            "path",
            "raw",
            "result",
            "errno",
            "existed",
            "follow",
            "flags",
            "target",
        ]
    )
    assert text == json.dumps(doc, sort_keys=True, separators=(",", ":"))
    assert Trace.from_json(text) == trace


def test_json_keeps_undecodable_names() -> None:
    trace = load("escapes.log")
    again = Trace.from_json(trace.to_json())
    assert [e.path for e in again.events] == [e.path for e in trace.events]


def test_from_json_rejects_another_schema() -> None:
    with pytest.raises(ValueError, match="schema"):
        Trace.from_json('{"schema": "slimmer.trace/v0"}')


def test_octal_and_hex_results_parse_as_strace_prints_them() -> None:
    """With --seccomp every call is traced: `umask` returns its old mask in octal."""
    trace = parse("7 umask(077) = 022\n7 brk(NULL) = 0x55d0c000\n7 getpid() = 7\n")
    assert trace.syscalls == ("brk", "getpid", "umask")
    assert parse_result("022") == (0o22, "", "")
    assert parse_result("0x1f") == (31, "", "")
    assert parse_result("0") == (0, "", "")
    assert parse_result("-1 EPERM (Operation not permitted)") == (-1, "EPERM", "")
