"""--user: the parsing of the value, and what the traced app wrote to."""

from __future__ import annotations

from slimmer.pipeline.base import choose_flavour
from slimmer.plan.owners import owners_for, parse_user, user_field, written_paths
from tests.memtree import Dir, MemTree


def test_user_values() -> None:
    assert parse_user("nonroot") == (65532, 65532) and user_field("nonroot") == "65532:65532"
    assert parse_user("1000") == (1000, 1000) and parse_user("1000:50") == (1000, 50)
    assert parse_user("www-data") is None and user_field("www-data") == "www-data"


def test_written_paths_and_their_owners() -> None:
    events = [
        ("open", "/var/lib/job/last-run", "O_WRONLY|O_CREAT|O_TRUNC", True),
        ("open", "/etc/job/signing.key", "O_RDONLY", True),
        ("open", "/var/log/app.log", "O_WRONLY|O_APPEND", True),
        ("create", "/run/app/app.sock", "", False),
        ("rename", "/srv/data/new", "", True),
        ("open", "/dev/null", "O_WRONLY", True),
        ("open", "/tmp/x", "O_RDWR|O_CREAT", False),
    ]
    written = written_paths(events)
    assert written == {"/var/lib/job/last-run", "/var/lib/job", "/var/log/app.log",
                       "/run/app", "/run/app/app.sock", "/srv/data", "/tmp"}  # fmt: skip
    tree = MemTree({"/var/lib/job": Dir(), "/var/log/app.log": b"", "/tmp": Dir(0o1777),
                    "/etc/job/signing.key": b"k"})  # fmt: skip
    owners = owners_for(tree, written, (65532, 65532))
    assert set(owners) == {"/var/lib/job", "/var/log/app.log"}  # /tmp is sticky, 1777


def test_auto_base_is_the_smallest_flavour_with_the_libraries() -> None:
    assert choose_flavour({"/server": []}, "none")[0] == "static"
    assert choose_flavour({"/app": ["libc.so.6", "libz.so.1"]}, "glibc")[0] == "base-nossl"
    flavour, why = choose_flavour(
        {"/usr/bin/python3": ["libc.so.6"], "/lib/_ssl.so": ["libssl.so.3"]}, "glibc"
    )
    assert flavour == "base" and why.startswith("libssl.so.3 (needed by /lib/_ssl.so)")
    assert choose_flavour({"/java": ["libstdc++.so.6", "libssl.so.3"]}, "glibc")[0] == "cc"
    assert choose_flavour({"/hello": ["libc.musl-x86_64.so.1"]}, "musl")[0] == "static"
