"""Preflight: the entrypoint program and the platform, checked before anything runs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO, Any

import pytest

from slimmer.engine_api import ImageInfo
from slimmer.errors import ExitStatus, ImageUnrunnable
from slimmer.image.paths import which
from slimmer.model import ImageConfig, ImageRef
from slimmer.pipeline.preflight import (
    check_engine_image,
    check_platform,
    check_program,
    program_dirs,
    shebang,
    want_program_dirs,
)
from tests.fake_engine import UnusedEngine
from tests.memtree import Dir, File, Link, MemTree
from tests.synth import M, config_for, docker_archive, layer

ELF_STATIC = Path("/proc/self/exe")  # any host ELF file stands in for a program


def _config(**container: Any) -> ImageConfig:
    return ImageConfig({"architecture": "amd64", "os": "linux", "config": container})


def _refused(config: ImageConfig, tree: MemTree) -> str:
    with pytest.raises(ImageUnrunnable) as info:
        check_program("app:1", config, tree)
    assert info.value.exit_code == ExitStatus.IMAGE
    assert "\n" not in str(info.value)
    return str(info.value)


def test_a_program_on_path_through_symlinks_is_found() -> None:
    tree = MemTree({"/bin": Link("usr/bin"), "/usr/bin/app": File(b"\x00" * 8)})
    env = {"PATH": "/nowhere:/bin"}
    assert which(tree, "app", env["PATH"]) == "/bin/app"
    check_program("app:1", _config(Entrypoint=["app"], Env=["PATH=/nowhere:/bin"]), tree)


def test_the_default_path_serves_an_image_without_one() -> None:
    tree = MemTree({"/usr/local/bin/app": File(b"\x00" * 8)})
    check_program("app:1", _config(Cmd=["app", "--serve"]), tree)


def test_a_file_without_an_execute_bit_is_skipped_on_path() -> None:
    tree = MemTree({"/usr/bin/app": File(b"", mode=0o644), "/bin/app": File(b"\x00")})
    assert which(tree, "app") == "/bin/app"


def test_a_relative_program_is_taken_from_the_working_dir() -> None:
    tree = MemTree({"/srv/run.bin": File(b"\x00" * 8)})
    check_program("app:1", _config(Entrypoint=["./run.bin"], WorkingDir="/srv"), tree)
    message = _refused(_config(Entrypoint=["./run.bin"], WorkingDir="/opt"), tree)
    assert "'./run.bin' does not exist" in message


def test_a_missing_entrypoint_is_named() -> None:
    tree = MemTree({"/usr/bin/other": File(b"\x00")})
    message = _refused(_config(Entrypoint=["/app/server"]), tree)
    assert message == (
        "checking app:1: its entrypoint program '/app/server' does not exist in the image"
    )
    message = _refused(_config(Entrypoint=["server"], Env=["PATH=/usr/bin"]), tree)
    assert "'server' not found in PATH /usr/bin" in message


def test_a_dangling_symlink_and_a_directory_are_refused() -> None:
    tree = MemTree({"/usr/bin/app": Link("/opt/gone"), "/opt/dir": Dir()})
    assert "does not exist" in _refused(_config(Entrypoint=["/usr/bin/app"]), tree)
    assert "is not a regular file" in _refused(_config(Entrypoint=["/opt/dir"]), tree)


def test_a_program_without_execute_bits_is_refused() -> None:
    tree = MemTree({"/app": File(b"\x00", mode=0o644)})
    assert "/app is not executable" in _refused(_config(Entrypoint=["/app"]), tree)


def test_no_entrypoint_or_command() -> None:
    assert "no entrypoint or command" in _refused(_config(), MemTree({}))


def test_a_scripts_interpreter_must_exist() -> None:
    script = File(b"#!/usr/bin/python3 -u\nprint('hi')\n")
    tree = MemTree({"/app/run.py": script})
    message = _refused(_config(Entrypoint=["/app/run.py"]), tree)
    assert "interpreter (#! of /app/run.py) /usr/bin/python3 does not exist" in message
    tree.add("/usr/bin/python3", File(b"\x00" * 8))
    check_program("app:1", _config(Entrypoint=["/app/run.py"]), tree)


def test_scripts_nested_too_deep_are_refused() -> None:
    tree = MemTree({f"/s{i}": File(f"#!/s{i + 1}\n".encode()) for i in range(6)})
    assert "too many levels" in _refused(_config(Entrypoint=["/s0"]), tree)


def test_an_elf_programs_loader_must_exist() -> None:
    exe = ELF_STATIC.read_bytes()  # the host's python: dynamically linked
    tree = MemTree({"/app": File(exe)})
    message = _refused(_config(Entrypoint=["/app"]), tree)
    assert "needs the loader /lib" in message or "needs the loader /lib64" in message


def test_shebang_parsing() -> None:
    assert shebang(b"#! /bin/sh -e\n") == "/bin/sh"
    assert shebang(b"#!\t/usr/bin/env python3\n") == "/usr/bin/env"
    assert shebang(b"#!\n") is None
    assert shebang(b"\x7fELF") is None


def test_another_architecture_or_os_is_refused() -> None:
    with pytest.raises(ImageUnrunnable) as info:
        check_platform("app:1", _config(), ("linux", "arm64"))
    assert str(info.value) == (
        "checking app:1: it is built for linux/amd64 but the engine runs linux/arm64 and "
        "cannot run linux/amd64 under emulation; to slim it, install qemu-user-static and "
        "binfmt-support on the engine's host and register the handler with the F flag "
        "(`update-binfmts --enable qemu-amd64`; binfmt_misc must be mounted), or run "
        "slimmer on a linux/amd64 engine"
    )
    arm = ImageConfig({"architecture": "arm64", "os": "windows", "config": {}})
    with pytest.raises(ImageUnrunnable, match="windows/arm64"):
        check_platform("app:1", arm, ("linux", "arm64"))


def test_an_image_without_a_platform_passes() -> None:
    check_platform("app:1", ImageConfig({"config": {}}), ("linux", "amd64"))


# -- an engine image, read for the check alone (`slim profile`) ------------------------------
def test_program_dirs_are_path_and_the_named_programs_directory() -> None:
    config = _config(Entrypoint=["bin/run"], WorkingDir="/srv", Env=["PATH=/usr/bin::sbin"])
    assert program_dirs(config) == {"/usr/bin", "/srv", "/srv/sbin", "/srv/bin"}
    assert "/usr/local/bin" in program_dirs(_config(Cmd=["app"]))  # the default PATH
    want = want_program_dirs(config)
    assert want("/usr/bin/env") and want("/srv/bin/run")
    assert not want("/usr/bin/x/y") and not want("/usr/lib/libc.so.6")


class SavingEngine(UnusedEngine):
    """An engine holding one image, a synthetic `docker save` archive; counts saves."""

    def __init__(self, archive: Path, platform: tuple[str, str] = ("linux", "amd64")) -> None:
        self.archive = archive
        self.saves = 0
        self.engine_platform = platform

    def platform(self) -> tuple[str, str]:
        return self.engine_platform

    def inspect_image(self, ref: str) -> ImageInfo:
        return ImageInfo("sha256:" + "ab" * 32, (ref,), {}, {}, 1, "amd64", "linux")

    def save_image(self, ref: str, out: IO[bytes]) -> int:
        self.saves += 1
        data = self.archive.read_bytes()
        out.write(data)
        return len(data)


def _engine_image(tmp_path: Path, cmd: list[str], *members: M) -> tuple[SavingEngine, ImageConfig]:
    """The fake engine and the config it gives for an image of `members` running `cmd`."""
    layers = [layer(*members)]
    archive = docker_archive(tmp_path / "image.tar", layers, cmd=cmd)
    return SavingEngine(archive), ImageConfig(config_for(layers, cmd=cmd))


SHELL = [
    M("bin", "symlink", link="usr/bin"),
    M("usr/bin/dash", data=b"\x00" * 8, mode=0o755),
    M("usr/bin/sh", "symlink", link="dash"),
]


def test_a_program_in_path_is_checked_from_one_cheap_read(tmp_path: Path) -> None:
    script = M("usr/bin/app", data=b"#!/bin/sh\necho hi\n", mode=0o755)
    engine, config = _engine_image(tmp_path, ["app"], script, *SHELL)
    check_engine_image(engine, ImageRef("engine", "app:1"), config)
    assert engine.saves == 1


def test_a_program_linked_out_of_path_is_read_again_whole_from_one_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    real = M("opt/app/run", data=b"#!/opt/app/python\n", mode=0o755)
    link = M("usr/bin/app", "symlink", link="/opt/app/run")
    python = M("opt/app/python", data=b"\x00" * 8, mode=0o755)
    engine, config = _engine_image(tmp_path, ["app"], real, link, python)
    check_engine_image(engine, ImageRef("engine", "app:1"), config)  # needs /opt/app's bytes
    assert engine.saves == 1
    engine, config = _engine_image(tmp_path, ["app"], real, link)  # its #! is missing
    with pytest.raises(ImageUnrunnable) as info:
        check_engine_image(engine, ImageRef("engine", "app:1"), config)
    assert str(info.value) == (
        "checking app:1: its interpreter (#! of /usr/bin/app) /opt/app/python "
        "does not exist in the image"
    )
    assert not list(work.iterdir())  # the saved archive and both reads are gone


def test_another_platform_is_refused_before_the_image_is_saved(tmp_path: Path) -> None:
    engine, config = _engine_image(tmp_path, ["app"], *SHELL)
    other = ImageConfig({**config.raw, "architecture": "s390x"})
    with pytest.raises(ImageUnrunnable, match="linux/s390x"):
        check_engine_image(engine, ImageRef("engine", "app:1"), other)
    assert engine.saves == 0


def test_the_platform_is_the_engines_not_this_hosts(tmp_path: Path) -> None:
    engine, config = _engine_image(tmp_path, ["app"], *SHELL)
    engine.engine_platform = ("linux", "arm64")  # an engine elsewhere (DOCKER_HOST)
    with pytest.raises(ImageUnrunnable, match="the engine runs linux/arm64"):
        check_engine_image(engine, ImageRef("engine", "app:1"), config)
    assert engine.saves == 0
