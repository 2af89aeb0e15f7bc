"""Foreign platforms: the preflight lets an image through when the engine runs its
platform under emulation, found out by running a tiny program of that platform, and
refuses it otherwise, naming the platform and how to enable emulation."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from slimmer.engine import Engine
from slimmer.errors import EngineError, ImageUnrunnable
from slimmer.model import ImageConfig
from slimmer.pipeline.emulation import (
    LABEL,
    can_emulate,
    check_image,
    emulation_notes,
    exit_program,
)
from slimmer.pipeline.preflight import check_platform
from slimmer.trace.sensor import EMULATED_TIMEOUT_FACTOR, host_architecture
from tests.fake_engine import UnusedEngine

ARM = ImageConfig({"architecture": "arm64", "os": "linux", "config": {}})


def test_an_emulated_platform_passes_and_is_asked_only_when_foreign() -> None:
    asked: list[tuple[str, str]] = []

    def emulates(os_: str, arch: str) -> bool:
        asked.append((os_, arch))
        return True

    check_platform("app:1", ARM, ("linux", "amd64"), emulates)
    check_platform("app:1", ImageConfig({"config": {}}), ("linux", "amd64"), emulates)
    assert asked == [("linux", "arm64")]


def test_a_platform_without_emulation_is_refused_naming_qemu() -> None:
    with pytest.raises(ImageUnrunnable) as info:
        check_platform("app:1", ARM, ("linux", "amd64"), lambda *_: False)
    assert info.value.exit_code == 6
    message = str(info.value)
    assert "built for linux/arm64" in message
    assert "cannot run linux/arm64 under emulation" in message
    assert "qemu-user-static" in message and "update-binfmts --enable qemu-aarch64" in message


class _NoHandler(UnusedEngine):
    """An engine whose host has no aarch64 handler: the container does not start."""

    def __init__(self) -> None:
        self.loaded: list[bytes] = []
        self.removed: list[str] = []

    def load_image(self, archive: Any) -> list[str]:
        self.loaded.append(bytes(archive))
        return []

    def create_container(self, image: str, **kwargs: Any) -> str:
        assert kwargs["labels"] == {LABEL: "arm64"}
        return "c1"

    def start(self, container: str) -> None:
        raise EngineError("starting container c1: exec format error")

    def remove_container(self, container: str) -> None:
        self.removed.append(container)

    def remove_image(self, ref: str, force: bool = False) -> None:
        self.removed.append(ref)


def test_no_handler_means_no_emulation_and_nothing_is_left() -> None:
    engine = _NoHandler()
    assert can_emulate(engine, "linux", "arm64") is False
    assert can_emulate(engine, "linux", "arm64") is False  # asked once per engine
    assert len(engine.loaded) == 1
    assert engine.removed[0] == "c1" and engine.removed[1].startswith("slimmer-emulation-check:")
    assert can_emulate(engine, "linux", "mips") is False  # no check program: no engine call


def test_the_check_program_is_an_aarch64_elf_that_file_reads(tmp_path: Path) -> None:
    """`file` (libmagic), not our own parser, says what the program is."""
    program = tmp_path / "check"
    program.write_bytes(exit_program("arm64"))
    out = subprocess.run(["file", "-b", str(program)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"`file` is needed for this test: {out.stderr}")
    assert "ELF 64-bit LSB executable, ARM aarch64" in out.stdout, out.stdout
    assert "statically linked" in out.stdout


@pytest.mark.engine
@pytest.mark.emulated
def test_the_engine_runs_arm64_under_emulation_and_leaves_nothing(engine: Engine) -> None:
    """The machine's qemu-user-static (scripts/ensure-qemu.sh) lets the engine run the
    check program; it is gone afterwards. Fails (never skips) without emulation."""
    before = {i.id for i in engine.leftovers()}
    assert can_emulate(engine, "linux", "arm64"), (
        "the engine cannot run linux/arm64: run scripts/ensure-qemu.sh "
        "(qemu-user-static, binfmt-support, binfmt_misc mounted, handler with the F flag)"
    )
    assert {i.id for i in engine.leftovers()} == before
    assert check_image("arm64", "t:1") == check_image("arm64", "t:1")  # deterministic


def test_the_report_notes_an_emulated_run_and_its_scaled_timeouts() -> None:
    (note,) = emulation_notes(ARM, 60)
    assert note.startswith("linux/arm64 ran under emulation (qemu-user)")
    assert f"x{EMULATED_TIMEOUT_FACTOR:g} (60s -> {60 * EMULATED_TIMEOUT_FACTOR:g}s)" in note
    native = ImageConfig({"architecture": host_architecture(), "os": "linux", "config": {}})
    assert emulation_notes(native, 60) == ()
