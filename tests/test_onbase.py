"""The app layer on a base: what is left out, what is relocated, what is merged."""

from __future__ import annotations

from slimmer.plan.keep import KeepSet, Reason
from slimmer.plan.onbase import app_layer, merge_accounts
from tests.memtree import Dir, File, Link, MemTree

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
R = (Reason("traced", "opened"),)


def keep(*paths: str) -> KeepSet:
    return KeepSet({p: R for p in paths})


def merged_usr(extra: dict[str, bytes | File | Link | Dir]) -> MemTree:
    return MemTree({"/lib": Link("usr/lib"), "/bin": Link("usr/bin"), **extra})


def test_identical_files_stay_in_the_base_and_new_ones_go_in_the_layer() -> None:
    source = merged_usr({LIBC: b"libc", "/app/main": b"app", "/etc/os-release": b"12"})
    base = merged_usr({LIBC: b"libc", "/etc/os-release": b"12"})
    layer = app_layer(source, keep(LIBC, "/app", "/app/main", "/etc/os-release"), base)
    assert [e.path for e in layer.entries] == ["/app", "/app/main"]
    assert (layer.identical, layer.identical_bytes) == (2, 6)
    assert layer.decisions == ()


def test_the_bases_libc_wins_and_the_decision_is_reported() -> None:
    source = merged_usr({LIBC: b"app's older libc"})
    base = merged_usr({LIBC: b"base libc"})
    layer = app_layer(source, keep(LIBC), base, base_libs=[LIBC])
    assert layer.entries == ()
    (d,) = layer.decisions
    assert (d.path, d.action) == (LIBC, "base-kept") and "libc" in d.detail


def test_other_differing_files_are_the_apps() -> None:
    source = MemTree({"/etc/ssl/certs/ca-certificates.crt": b"app bundle with a private CA"})
    base = MemTree({"/etc/ssl/certs/ca-certificates.crt": b"base bundle"})
    layer = app_layer(source, keep("/etc/ssl/certs/ca-certificates.crt"), base)
    assert [e.path for e in layer.entries] == ["/etc/ssl/certs/ca-certificates.crt"]
    assert layer.decisions[0].action == "app-kept"


def test_a_split_base_keeps_its_directory_and_takes_files_through_its_links() -> None:
    """Merged-/usr source on a base whose /lib is a directory, and the reverse."""
    source = merged_usr({"/usr/lib/libz.so.1": b"z"})
    split = MemTree({"/lib/libc.so.6": b"c", "/usr/lib/": Dir()})
    layer = app_layer(source, keep("/lib", "/usr/lib/libz.so.1"), split)
    assert [e.path for e in layer.entries] == ["/usr/lib/libz.so.1"]
    assert layer.decisions[0].action == "base-kept" and layer.decisions[0].path == "/lib"
    unmerged = MemTree({"/lib/libz.so.1": b"z"})
    layer = app_layer(unmerged, keep("/lib", "/lib/libz.so.1"), merged_usr({"/usr/lib": Dir()}))
    assert [e.path for e in layer.entries] == ["/usr/lib/libz.so.1"]
    actions = {d.action for d in layer.decisions}
    assert actions == {"base-kept", "relocated"}


def test_accounts_are_merged_base_first() -> None:
    base = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/x\n"
    app = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/x\nclash:x:65532:1::/:/x\n"
    merged = merge_accounts(base, app)
    assert merged.splitlines() == [*base.splitlines(), "www-data:x:33:33::/var/www:/x"]
    source = MemTree({"/etc/passwd": app.encode()})
    layer = app_layer(source, keep("/etc/passwd"), MemTree({"/etc/passwd": base.encode()}))
    (gen,) = layer.generated
    assert gen.path == "/etc/passwd" and gen.data == merged.encode()
    assert layer.entries == () and layer.decisions[0].action == "merged"
    same = app_layer(
        MemTree({"/etc/passwd": base.encode()}),
        keep("/etc/passwd"),
        MemTree({"/etc/passwd": base.encode()}),
    )
    assert same.generated == () and same.entries == ()
