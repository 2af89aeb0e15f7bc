"""The Dockerfile plan: grouping, the bound, symlinks as links, quoting, config lines."""

from __future__ import annotations

import json

from slimmer.model import ImageConfig
from slimmer.pipeline import dockerfile
from slimmer.pipeline.dockerfile import plan_dockerfile
from tests.memtree import Link, MemTree

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
    return plan_dockerfile(
        "app:1", "sha256:" + "a" * 64, "base:1" if base else "scratch", "sha256:" + "b" * 64,
        entries, ["/etc/passwd"], CONFIG, tree, base, {p: "traced: open by run" for p in paths},
        labels={"org.opencontainers.image.source": "https://example.invalid/app"},
        seccomp=seccomp,
    )  # fmt: skip


def test_files_are_grouped_by_directory_with_their_reason_and_links_stay_links() -> None:
    tree = MemTree({"/app/run": b"x", "/app/lib.so": b"yy", "/usr/bin/tool": b"t",
                    "/usr/bin/alias": Link("tool")})  # fmt: skip
    plan = _plan(tree, ["/app/run", "/app/lib.so", "/usr/bin/tool", "/usr/bin/alias"])
    lines = plan.text.splitlines()
    assert 'COPY --from=app ["/app/lib.so", "/app/run", "/app/"]' in lines
    assert 'COPY --from=app ["/usr/bin/tool", "/usr/bin/"]' in lines
    assert [e.path for e in plan.links] == ["/usr/bin/alias"]
    assert 'COPY ["slimmer-files/links/", "/"]' in lines
    assert lines[lines.index('COPY --from=app ["/usr/bin/tool", "/usr/bin/"]') - 1] == (
        "# traced: open by run"
    )
    assert plan.exact_bytes == plan.coarse_bytes == 4
    assert lines[4:6] == ["", "FROM scratch"] and lines[3] == "FROM app:1 AS app"


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


def test_many_groups_collapse_into_whole_directories_within_the_bound() -> None:
    files = {f"/opt/app/m{i}/f{j}.py": b"p" * 10 for i in range(40) for j in range(3)}
    files.update({f"/opt/app/m{i}/unused.txt": b"u" for i in range(40)})
    tree = MemTree(files)
    kept = [p for p in files if p.endswith(".py")]
    plan = _plan(tree, kept, base=MemTree({"/etc/os-release": b"x"}))
    assert len(plan.copies) <= dockerfile.MAX_COPIES
    whole = [c for c in plan.copies if c.whole_dir]
    assert whole and all(c.sources[0].startswith("/opt/app") for c in whole)
    assert plan.coarse_bytes >= plan.exact_bytes == 40 * 3 * 10


def test_a_directory_holding_a_differing_base_file_is_never_copied_whole() -> None:
    files = {f"/etc/conf{i}/a.conf": b"c" for i in range(30)}
    files["/etc/passwd"] = b"app accounts"
    base = MemTree({"/etc/passwd": b"base accounts"})
    plan = _plan(MemTree(files), sorted(files), base=base)
    assert not any(c.whole_dir and c.sources[0] == "/etc" for c in plan.copies)
    assert json.dumps(["/etc/passwd", "/etc/"]) in plan.text


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
