"""The Dockerfile plan: the pick stage (exact files, the tree tar, the chain of stages),
the keep list and its escapes, quoting, config lines."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

from slimmer.image.store import ContentStore
from slimmer.image.writer import write_layer
from slimmer.model import FileEntry, ImageConfig
from slimmer.pipeline import dockerfile
from slimmer.pipeline.dockerfile import escape_name, plan_dockerfile, spellable
from tests.memtree import Dir, Link, MemTree

CONFIG = ImageConfig(
    {
        "config": {
            "Entrypoint": ["/app/run"],
            "Cmd": ["--port", "8080"],
            "Env": ["PATH=/usr/bin:/bin", 'GREETING=it costs $5 "now"'],
            "WorkingDir": "/app",
            "User": "app",
            "ExposedPorts": {"8080/tcp": {}},
            "StopSignal": "SIGINT",
            "Healthcheck": {"Test": ["CMD", "/app/run", "--check"], "Interval": 30_000_000_000},
        }
    }
)


def _plan(
    tree: MemTree, paths: list[str], base: MemTree | None = None, seccomp: str | None = None
) -> dockerfile.DockerfilePlan:
    entries = [e for p in paths if (e := tree.get(p)) is not None]
    return _plan_entries(tree, entries, base, seccomp)


def _plan_entries(
    tree: MemTree, entries: list[FileEntry], base: MemTree | None = None,
    seccomp: str | None = None,
) -> dockerfile.DockerfilePlan:  # fmt: skip
    paths = [e.path for e in entries]
    return plan_dockerfile(
        "app:1", "sha256:" + "a" * 64, "base:1" if base else "scratch", "sha256:" + "b" * 64,
        entries, ["/etc/passwd"], CONFIG, tree, base, {p: "traced: open by run" for p in paths},
        labels={"org.opencontainers.image.source": "https://example.invalid/app"},
        seccomp=seccomp,
    )  # fmt: skip


def test_files_are_copied_exactly_per_directory_into_the_pick_stage() -> None:
    tree = MemTree({"/app/run": b"x", "/app/lib.so": b"yy", "/usr/bin/tool": b"t",
                    "/usr/bin/alias": Link("tool"), "/app/unused": b"zzz"})  # fmt: skip
    plan = _plan(tree, ["/app/run", "/app/lib.so", "/usr/bin/tool", "/usr/bin/alias"])
    lines = plan.text.splitlines()
    assert 'COPY --from=app ["/app/lib.so", "/app/run", "/pick/app/"]' in lines
    assert 'COPY --from=app ["/usr/bin/tool", "/pick/usr/bin/"]' in lines
    assert lines[lines.index('COPY --from=app ["/usr/bin/tool", "/pick/usr/bin/"]') - 1] == (
        "# traced: open by run"
    )
    assert not any("/app/unused" in line for line in lines)
    # the link and every ancestor directory come from the tar, never from a COPY
    assert [e.path for e in plan.tree] == ["/app", "/usr", "/usr/bin", "/usr/bin/alias"]
    assert plan.exact_bytes == plan.copied_bytes == 4
    assert lines[3] == "FROM app:1 AS app" and "FROM scratch AS pick" in lines
    assert lines.index('ADD ["slimmer-files/tree.tar", "/pick/"]') < lines.index(
        'COPY --from=app ["/app/lib.so", "/app/run", "/pick/app/"]'
    )
    final = lines.index("FROM scratch")  # the base: scratch here
    assert [x for x in lines[final:] if x.startswith("COPY --from")] == [
        'COPY --from=pick ["/pick/", "/"]'
    ]
    assert not any(x.startswith("RUN") for x in lines), "no shell needed anywhere"


def test_ancestors_take_the_base_metadata_and_else_the_source_one() -> None:
    source = MemTree({"/tmp/cache.db": b"d", "/home/app": Dir(0o700), "/home/app/.rc": b"r"})
    base = MemTree({"/tmp": Dir(0o1777), "/etc/os-release": b"x"})
    plan = _plan(source, ["/tmp/cache.db", "/home/app/.rc"], base)
    tree = {e.path: e for e in plan.tree}
    assert tree["/tmp"].mode & 0o7777 == 0o1777  # the final COPY must leave /tmp 1777
    assert tree["/home/app"].mode & 0o7777 == 0o700  # the base has no /home: the source's
    assert set(tree) == {"/tmp", "/home", "/home/app"}


def _get(tree: MemTree, path: str) -> FileEntry:
    entry = tree.get(path)
    assert entry is not None
    return entry


def test_the_tree_tar_carries_modes_owners_and_links(tmp_path: Path) -> None:
    source = MemTree({"/srv/data/x": b"x", "/srv/cur": Link("data/x"), "/srv/data": Dir(0o750)})
    data = replace(_get(source, "/srv/data"), uid=70, gid=70)
    plan = _plan_entries(source, [data, _get(source, "/srv/cur"), _get(source, "/srv/data/x")])
    out = io.BytesIO()
    write_layer(plan.tree, ContentStore(tmp_path), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        got = {m.name: (m.type, m.mode & 0o7777, m.uid, m.linkname) for m in tf}
    assert got == {
        "srv": (tarfile.DIRTYPE, 0o755, 0, ""),
        "srv/cur": (tarfile.SYMTYPE, 0o777, 0, "data/x"),
        "srv/data": (tarfile.DIRTYPE, 0o750, 70, ""),
    }


def test_a_name_a_copy_cannot_spell_goes_into_the_tar_and_the_list_escapes_it() -> None:
    odd = ["/app/a*b", "/app/it[1]", "/app/c\\d", "/app/$HOME", "/app/new\nline", "/app/x\udcff"]
    tree = MemTree({p: b"o" for p in [*odd, "/app/ok name.txt"]})
    plan = _plan(tree, [*odd, "/app/ok name.txt"])
    assert {e.path for e in plan.tree if e.is_regular} == set(odd)
    assert 'COPY --from=app ["/app/ok name.txt", "/pick/app/"]' in plan.text.splitlines()
    assert "1 files" not in plan.text and "6 files whose names a COPY cannot spell" in plan.text
    listed = [line for line in plan.keep_list.splitlines() if not line.startswith("#")]
    assert "/app/new\\nline\tfile 0755 0:0 1 (tree.tar)" in listed
    assert "/app/x\\xff\tfile 0755 0:0 1 (tree.tar)" in listed
    assert "/app/c\\\\d\tfile 0755 0:0 1 (tree.tar)" in listed
    assert "/app/ok name.txt\tfile 0755 0:0 1" in listed
    assert all("\n" not in x for x in listed) and listed == sorted(
        listed, key=lambda x: x.split("\t")[0]
    )


def test_spellable_and_escape_name() -> None:
    assert spellable("/usr/lib/python3.11/encodings/utf_8.py")
    assert spellable("/opt/app/ok name (1).txt")
    for bad in ("/a*", "/a?", "/a[", "/a\\b", "/a$b", "/a\nb", "/a\x7f", "/a\udcfe"):
        assert not spellable(bad), bad
    assert escape_name("/a\tb\\c\udcfe\u00e9\x1b") == "/a\\tb\\\\c\\xfe\u00e9\\x1b"


def test_an_owner_slim_changed_is_given_with_chown() -> None:
    tree = MemTree({"/var/lib/app/state": b"s", "/var/lib/app/conf": b"c"})
    state = replace(_get(tree, "/var/lib/app/state"), uid=65532, gid=65532)
    plan = _plan_entries(tree, [state, _get(tree, "/var/lib/app/conf")])
    lines = plan.text.splitlines()
    assert 'COPY --from=app ["/var/lib/app/conf", "/pick/var/lib/app/"]' in lines
    assert (
        'COPY --from=app --chown=65532:65532 ["/var/lib/app/state", "/pick/var/lib/app/"]' in lines
    )


def test_many_directories_chain_pick_stages_below_the_layer_limit() -> None:
    files = {f"/opt/app/m{i}/f.py": b"p" for i in range(250)}
    plan = _plan(MemTree(files), sorted(files), base=MemTree({"/etc/os-release": b"x"}))
    lines = plan.text.splitlines()
    assert len(plan.copies) == 250
    stages = [i for i, x in enumerate(lines) if x.startswith("FROM ")] + [len(lines)]
    for start, end in zip(stages, stages[1:], strict=False):
        steps = [x for x in lines[start:end] if x.startswith(("COPY", "ADD"))]
        assert len(steps) <= dockerfile.PICK_STEPS + 1, lines[start]
    assert "FROM scratch AS pick3" in lines and "FROM scratch AS pick4" not in lines
    assert 'COPY --from=pick2 ["/pick/", "/pick/"]' in lines
    assert 'COPY --from=pick3 ["/pick/", "/"]' in lines
    assert sum(x.startswith("COPY --from=app") for x in lines) == 250


def test_config_is_exec_form_and_quoted() -> None:
    text = _plan(MemTree({"/app/run": b"x"}), ["/app/run"]).text
    assert 'ENV PATH="/usr/bin:/bin" \\\n    GREETING="it costs \\$5 \\"now\\""' in text
    assert 'ENTRYPOINT ["/app/run"]' in text and 'CMD ["--port", "8080"]' in text
    assert "WORKDIR /app" in text and "EXPOSE 8080/tcp" in text and "USER app" in text
    assert "STOPSIGNAL SIGINT" in text
    assert 'HEALTHCHECK --interval=30s CMD ["/app/run", "--check"]' in text
    assert 'LABEL "org.opencontainers.image.source"="https://example.invalid/app"' in text
    assert 'COPY ["slimmer-files/etc/passwd", "/etc/passwd"]' in text
    assert "# syntax=" not in text


def test_generated_files_take_one_copy_per_directory() -> None:
    info = [f"/var/lib/dpkg/info/p{i}.{ext}" for i in range(40) for ext in ("list", "md5sums")]
    lines = dockerfile._generated_lines(["/etc/passwd", "/var/lib/dpkg/status", *info])
    copies = [line for line in lines if line.startswith("COPY")]
    assert len(copies) == 3  # not 82: the classic builder commits a layer per COPY
    assert copies[0] == 'COPY ["slimmer-files/etc/passwd", "/etc/passwd"]'
    last = '"slimmer-files/var/lib/dpkg/info/p9.md5sums", "/var/lib/dpkg/info/"]'
    assert copies[2].endswith(last)
    assert copies[2].count("slimmer-files/") == 80


def test_the_seccomp_profile_is_named_with_the_run_flag() -> None:
    tree = MemTree({"/app/run": b"x"})
    assert "seccomp" not in _plan(tree, ["/app/run"]).text
    lines = _plan(tree, ["/app/run"], seccomp="out/app.seccomp.json").text.splitlines()
    assert "#   docker run --security-opt seccomp=out/app.seccomp.json IMAGE" in lines
    assert all(line.startswith("#") for line in lines if "seccomp" in line)
