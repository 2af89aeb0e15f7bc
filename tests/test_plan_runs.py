"""What the trace says each program did: the program of each event (its process's last
exec, inherited across a fork), each program's named paths, the image's LC_CTYPE locale."""

from __future__ import annotations

from slimmer.pipeline.inputs import event_programs
from slimmer.plan.planner import TracedPath
from slimmer.plan.runs import ctype_locale, locale_matches, program_runs
from slimmer.trace.events import Event, Trace


def _event(pid: int, kind: str, path: str, errno: str = "") -> Event:
    syscall = "execve" if kind == "exec" else "openat"
    result = -1 if errno else 0
    return Event(pid, syscall, kind, path, path, result, errno, not errno)


def test_each_event_belongs_to_the_program_its_process_ran() -> None:
    """A forked shell opens the redirections before it execs envsubst; a failed exec (a
    PATH miss) changes nothing; a forked child without an exec runs its parent's."""
    events = (
        _event(10, "exec", "/docker-entrypoint.sh"),
        _event(10, "open", "/docker-entrypoint.sh"),
        _event(11, "open", "/etc/nginx/templates/t"),
        _event(11, "exec", "/usr/local/bin/envsubst", "ENOENT"),
        _event(11, "exec", "/usr/bin/envsubst"),
        _event(11, "open", "/usr/lib/locale/locale-archive"),
        _event(12, "open", "/tmp/x"),
        _event(10, "exec", "/usr/sbin/nginx"),
        _event(13, "open", "/srv/www/index.html"),
    )
    trace = Trace(events, parents={11: 10, 12: 11, 13: 10})
    assert event_programs(trace) == [
        "/docker-entrypoint.sh",
        "/docker-entrypoint.sh",
        "/docker-entrypoint.sh",
        "/docker-entrypoint.sh",
        "/usr/bin/envsubst",
        "/usr/bin/envsubst",
        "/usr/bin/envsubst",
        "/usr/sbin/nginx",
        "/usr/sbin/nginx",
    ]


def test_program_runs_gather_what_each_program_named() -> None:
    traced = [
        TracedPath("/usr/bin/envsubst", "exec", "envsubst", "/usr/bin/envsubst"),
        TracedPath("/usr/bin/envsubst", "open", "envsubst", "/usr/bin/envsubst"),
        TracedPath("/usr/bin/awk", "exec", "awk", ""),
        TracedPath("/etc/nginx/t", "open", "sh", "/bin/sh"),
        TracedPath("/usr/lib/locale/C.utf8/LC_CTYPE", "open", "envsubst", "/usr/bin/envsubst"),
    ]
    assert program_runs(traced) == {
        "/bin/sh": frozenset({"/etc/nginx/t"}),
        "/usr/bin/awk": frozenset(),
        "/usr/bin/envsubst": frozenset({"/usr/bin/envsubst", "/usr/lib/locale/C.utf8/LC_CTYPE"}),
    }


def test_ctype_locale_follows_glibc_precedence() -> None:
    assert ctype_locale({}) == "C"
    assert ctype_locale({"LANG": ""}) == "C"
    assert ctype_locale({"LANG": "de_DE.UTF-8"}) == "de_DE.UTF-8"
    assert ctype_locale({"LANG": "de_DE.UTF-8", "LC_CTYPE": "ja_JP.eucJP"}) == "ja_JP.eucJP"
    env = {"LANG": "de_DE.UTF-8", "LC_CTYPE": "ja_JP.eucJP", "LC_ALL": "POSIX"}
    assert ctype_locale(env) == "POSIX"
    assert locale_matches({"LC_ALL": "en_US.utf8"}, ["*.utf8"])
    assert not locale_matches({"LC_ALL": "en_US.ISO-8859-15"}, ["C", "*.UTF-8"])
