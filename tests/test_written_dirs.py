"""State written at run time: the directories the app wrote into are kept whole,
and verification names a created path's missing directory as the cause."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from slimmer.model import ImageConfig, TreeView
from slimmer.pipeline.verify import PARENT_MISSING, missing_paths
from slimmer.plan.keep import Reason
from slimmer.plan.planner import TracedPath, plan
from slimmer.plan.written_dirs import WRITE_PARENT, keeps_whole, state_paths, written_dir
from slimmer.trace.events import TRACED_SYSCALLS, Event, Trace, parse
from tests.memtree import Dir, File, Link, MemTree

DATA = "/var/lib/postgresql/data"
POSTGRES = "/usr/lib/postgresql/15/bin/postgres"


def db_tree() -> MemTree:
    return MemTree(
        {
            POSTGRES: File(b"\x7fELF" + b"\0" * 60),
            f"{DATA}/PG_VERSION": File(b"15\n", 0o600),
            f"{DATA}/global/pg_control": File(b"c" * 64, 0o600),
            f"{DATA}/global/1262": File(b"", 0o600),
            f"{DATA}/base/1/1259": File(b"", 0o600),
            f"{DATA}/base/5/1259": File(b"", 0o600),
            "/run/postgresql": Dir(0o2775),
            "/var/run": Link("../run"),
            "/etc/hostname": File(b"x\n", 0o644),
            "/tmp/leftover": File(b"x"),
        }
    )


def no_closure(
    tree: TreeView, paths: Sequence[str], env: Mapping[str, str], wd: str
) -> Iterable[tuple[str, Reason]]:
    return []


def test_written_dir_counts_successful_creates_and_writes_only() -> None:
    assert written_dir("open", "O_RDWR|O_CREAT|O_EXCL", f"{DATA}/postmaster.pid", "") == DATA
    assert written_dir("open", "O_WRONLY|O_APPEND", "/var/log/app/a.log", "") == "/var/log/app"
    assert written_dir("create", "", "/run/postgresql/.s.PGSQL.5432", "") == "/run/postgresql"
    assert written_dir("open", "O_RDONLY|O_CLOEXEC", f"{DATA}/PG_VERSION", "") is None
    assert written_dir("open", "O_RDWR|O_CREAT", "/x/y", "EACCES") is None
    assert written_dir("stat", "", f"{DATA}/PG_VERSION", "") is None


def test_system_directories_are_never_kept_whole() -> None:
    assert keeps_whole(DATA) and keeps_whole("/run/postgresql") and keeps_whole("/srv/app/db")
    for d in ("/", "/tmp", "/etc", "/var/lib", "/run", "/usr/lib/python3.11/__pycache__"):
        assert not keeps_whole(d), d


def test_state_paths_walk_the_outermost_written_directory() -> None:
    tree = db_tree()
    traced = [
        (f"{DATA}/global", WRITE_PARENT, POSTGRES),
        (DATA, WRITE_PARENT, POSTGRES),
        ("/tmp", WRITE_PARENT, POSTGRES),
        (f"{DATA}/base/1", "open", POSTGRES),
    ]
    found = dict(state_paths(tree, traced))
    assert sorted(found) == [
        DATA,
        f"{DATA}/PG_VERSION",
        f"{DATA}/base",
        f"{DATA}/base/1",
        f"{DATA}/base/1/1259",
        f"{DATA}/base/5",
        f"{DATA}/base/5/1259",
        f"{DATA}/global",
        f"{DATA}/global/1262",
        f"{DATA}/global/pg_control",
    ]
    reason = found[f"{DATA}/base/5/1259"]
    assert reason.kind == "state" and DATA in reason.detail and POSTGRES in reason.detail


def test_planner_keeps_the_data_directory_whole_and_the_socket_directory() -> None:
    tree = db_tree()
    traced = [
        TracedPath(f"{DATA}/global/pg_control", "open", POSTGRES),
        TracedPath(DATA, WRITE_PARENT, POSTGRES),
        TracedPath("/var/run/postgresql", "create-parent", POSTGRES),
        TracedPath("/var/run/postgresql", WRITE_PARENT, POSTGRES),
    ]
    keep = plan(tree, ImageConfig({"config": {}}), traced, no_closure)
    assert f"{DATA}/base/5/1259" in keep and f"{DATA}/global/1262" in keep
    assert "/run/postgresql" in keep and "/var/run" in keep
    assert "/tmp/leftover" not in keep and "/etc/hostname" not in keep


def _event(kind: str, path: str, errno: str, flags: str = "") -> Event:
    return Event(1, "openat", kind, path, path, -1, errno, False, flags=flags)


def test_verification_names_the_missing_parent_of_a_created_path() -> None:
    tree = db_tree()
    lock = "/run/postgresql/.s.PGSQL.5432.lock"
    trace = Trace(
        events=(
            _event("open", lock, "ENOENT", "O_WRONLY|O_CREAT|O_EXCL"),
            _event("open", "/nowhere/x.lock", "ENOENT", "O_WRONLY|O_CREAT"),
            _event("open", "/run/other/x", "ENOENT", "O_RDONLY"),
        ),
        processes={1: (POSTGRES,)},
    )
    found = missing_paths([trace], tree, kept=[POSTGRES, "/run"])
    assert [m.path for m in found] == ["/run/postgresql"]
    assert found[0].by.startswith(PARENT_MISSING) and lock in found[0].by
    assert POSTGRES in found[0].by
    kept = missing_paths([trace], tree, kept=[POSTGRES, "/run", "/run/postgresql"])
    assert kept == ()


BIND_LOG = """\
7 bind(3<socket:[1149370]>, {sa_family=AF_UNIX, sun_path="/run/app/a.sock"}, 21) = 0
7 bind(4<socket:[1149371]>, {sa_family=AF_UNIX, sun_path="/run/gone/b.sock"}, 29) = -1 ENOENT \
(No such file or directory)
7 bind(5<socket:[1149372]>, {sa_family=AF_UNIX, sun_path=@"abstract"}, 11) = 0
7 chdir("/srv") = 0
7 bind(6<socket:[1149374]>, {sa_family=AF_UNIX, sun_path="rel.sock"}, 11) = 0
7 bind(7<socket:[1149375]>, {sa_family=AF_INET, sin_port=htons(80), \
sin_addr=inet_addr("0.0.0.0")}, 16) = 0
"""


def test_bind_of_a_unix_socket_is_a_create() -> None:
    """Recorded with `strace -f -qq -y -x -e trace=bind` around Python binding AF_UNIX
    sockets (a path, a missing directory, an abstract name, a relative name)."""
    trace = parse(BIND_LOG)
    got = [(e.kind, e.path, e.errno, e.existed) for e in trace.events if e.syscall == "bind"]
    assert got == [
        ("create", "/run/app/a.sock", "", False),
        ("create", "/run/gone/b.sock", "ENOENT", False),
        ("create", "/srv/rel.sock", "", False),
    ]
    assert "bind" in TRACED_SYSCALLS
    assert written_dir("create", "", "/run/app/a.sock", "") == "/run/app"
