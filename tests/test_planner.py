"""The planner: traced paths, config, closure and profiles, with reasons."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from slimmer.image.filetree import keep_all
from slimmer.image.reader import Image, open_image
from slimmer.model import TreeView
from slimmer.plan.keep import Addition, GeneratedFile, ProfileContext, Reason
from slimmer.plan.planner import TracedPath, UserRules, plan
from slimmer.plan.shellscan import command_words as shell_commands
from tests.synth import M, docker_archive, layer

ELF = b"\x7fELF" + b"\0" * 60


def image(tmp_path: Path, **kw: object) -> Image:
    arch = docker_archive(
        tmp_path / "i.tar",
        [
            layer(
                M("usr/", "dir"),
                M("usr/bin/", "dir"),
                M("bin", "symlink", link="usr/bin"),
                M("usr/bin/app", data=ELF, mode=0o755),
                M("usr/bin/sh", data=ELF, mode=0o755),
                M("usr/bin/curl", data=ELF, mode=0o755),
                M("usr/bin/unused", data=ELF),
                M("usr/lib/libc.so.6", data=ELF),
                M("usr/lib/libcurl.so.4", data=ELF),
                M("usr/local/bin/run.sh", data=b"#!/usr/bin/env sh\nexec app\n", mode=0o755),
                M("etc/passwd", data=b"root:x:0:0::/:/bin/sh\n"),
                M("etc/group", data=b"root:x:0:\n"),
                M("etc/app.conf", data=b"conf"),
                M("tmp/", "dir", mode=0o1777),
                M("usr/bin/env", data=ELF, mode=0o755),
            )
        ],
        **kw,
    )
    return open_image(f"docker-archive:{arch}", want=keep_all)


def fake_closure(
    tree: TreeView, paths: Sequence[str], env: Mapping[str, str], workdir: str
) -> Iterable[tuple[str, Reason]]:
    for p in paths:
        yield "/usr/lib/libc.so.6", Reason("elf", f"DT_NEEDED libc.so.6 of {p}")
        if p.endswith("curl"):
            yield "/usr/lib/libcurl.so.4", Reason("elf", f"DT_NEEDED libcurl.so.4 of {p}")


def test_traced_config_closure_and_reasons(tmp_path: Path) -> None:
    with image(tmp_path, cmd=["/usr/local/bin/run.sh"]) as img:
        raw = dict(img.config.raw)
        raw["config"] = {
            **img.config.container,
            "User": "app",
            "Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost || exit 1"]},
        }
        from slimmer.model import ImageConfig

        keep = plan(
            img.tree,
            ImageConfig(raw),
            [
                TracedPath("/bin/app", "exec", "run.sh"),
                TracedPath("/etc/app.conf", "open", "app"),
                TracedPath("/proc/self/maps", "open", "app"),
                TracedPath("/tmp/created", "open"),
            ],
            fake_closure,
        )
    paths = set(keep.paths())
    assert {
        "/bin",
        "/usr/bin/app",
        "/etc/app.conf",
        "/usr/lib/libc.so.6",
        "/usr/local/bin/run.sh",
        "/usr/bin/env",
        "/usr/bin/sh",
        "/usr/bin/curl",
        "/usr/lib/libcurl.so.4",
        "/etc/passwd",
        "/etc/group",
        "/usr",
        "/usr/lib",
    } <= paths
    assert "/usr/bin/unused" not in paths and not any(p.startswith("/proc") for p in paths)
    assert keep.reasons["/bin"][0].kind == "symlink"
    assert keep.reasons["/usr/lib/libcurl.so.4"][0].detail.startswith("DT_NEEDED libcurl")
    assert keep.reasons["/usr/bin/curl"][0].detail == "run by the HEALTHCHECK shell command"
    assert keep.reasons["/usr/bin/sh"][0].kind == "config"


def test_profiles_iterate_and_user_rules(tmp_path: Path) -> None:
    calls = []

    def profiles(ctx: ProfileContext) -> tuple[list[Addition], list[GeneratedFile]]:
        calls.append(len(ctx.kept))
        adds = [Addition("/etc/app.conf", Reason("profile", "app config", "demo"))]
        if "/etc/app.conf" in ctx.kept:
            adds.append(Addition("/usr/bin/curl", Reason("profile", "needs curl", "demo")))
        return adds, [GeneratedFile("/etc/generated", b"x", Reason("profile", "gen", "demo"))]

    with image(tmp_path) as img:
        keep = plan(
            img.tree,
            img.config,
            [],
            fake_closure,
            profiles,
            UserRules(include=("/usr/bin/u*",), exclude=("/etc/group",)),
        )
    assert "/usr/lib/libcurl.so.4" in keep and "/usr/bin/unused" in keep
    assert "/etc/group" not in keep
    assert [g.path for g in keep.generated] == ["/etc/generated"]
    assert len(calls) >= 3


def test_shell_commands() -> None:
    assert shell_commands("curl -f http://x || exit 1") == ["curl", "exit"]
    assert shell_commands("A=1 exec nginx -g 'daemon off;'; true && ls|wc -l") == [
        "nginx",
        "true",
        "ls",
        "wc",
    ]
