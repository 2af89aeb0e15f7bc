"""A trace of an emulated program: qemu-user's own calls dropped, the guest's kept.

The log is real (tests/data/strace/README.md, "An emulated program")."""

from __future__ import annotations

from pathlib import Path

from slimmer.model import ImageConfig
from slimmer.trace.events import parse
from slimmer.trace.sensor import (
    EMULATED_TIMEOUT_FACTOR,
    drop_emulator_calls,
    emulated,
    host_architecture,
    timeout_factor,
)

LOG = Path(__file__).parent / "data" / "strace" / "qemu_arm64_cat.log"


def test_qemus_own_calls_are_dropped_and_the_guests_kept() -> None:
    trace = parse(LOG.read_bytes())
    raw_paths = {e.path for e in trace.events}
    assert "/proc/sys/vm/mmap_min_addr" in raw_paths  # qemu's, before the filter
    assert any(p.startswith("/etc/qemu-binfmt/aarch64/") for p in raw_paths)
    kept = drop_emulator_calls(trace)
    paths = {e.path for e in kept.events}
    assert not any("qemu" in p for p in paths), sorted(paths)
    assert not any(p.startswith("/proc/") for p in paths), sorted(paths)
    assert {
        "/bin/cat",
        "/lib/ld-linux-aarch64.so.1",
        "/etc/ld.so.preload",
        "/etc/ld.so.cache",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/etc/debian_version",
    } <= paths
    assert kept.processes == trace.processes  # the guest's exec is still the program
    assert trace.events != kept.events  # a new value; the input is unchanged
    assert len(trace.events) - len(kept.events) == 6


def test_timeouts_scale_only_for_another_architecture() -> None:
    native = ImageConfig({"architecture": host_architecture(), "os": "linux"})
    foreign = ImageConfig({"architecture": "arm64" if host_architecture() != "arm64" else "amd64"})
    assert not emulated(native) and timeout_factor(native) == 1.0
    assert not emulated(ImageConfig({"config": {}}))  # no architecture named: native
    assert emulated(foreign) and timeout_factor(foreign) == EMULATED_TIMEOUT_FACTOR > 1
