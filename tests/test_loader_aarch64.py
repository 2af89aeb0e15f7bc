"""slimmer.elf's loader rules for aarch64, on synthetic Debian 12 arm64 trees (merged
/usr, PT_INTERP /lib/ld-linux-aarch64.so.1, multiarch /usr/lib/aarch64-linux-gnu).

glibc's rules are the same on both machines; what differs is the machine tables of
`slimmer.elf.layout`: `$LIB` is "lib/aarch64-linux-gnu", `$PLATFORM` "aarch64" (the
kernel's AT_PLATFORM), no glibc-hwcaps subdirectories (glibc 2.36 defines none for
aarch64) and one legacy hwcap, "atomics" (sysdeps/unix/sysv/linux/aarch64/
dl-procinfo.h: HWCAP_IMPORTANT is HWCAP_ATOMICS). The real aarch64 loader's own
`--list` is the oracle in tests/test_loader_engine.py (run under emulation)."""

from __future__ import annotations

from collections.abc import Mapping

from slimmer.elf.loader import Closure, closure
from slimmer.elf.parse import DF_1_PIE, EM_AARCH64
from tests.memtree import Link, MemTree, Spec, make_elf

ML = "/usr/lib/aarch64-linux-gnu"
LDSO = "/lib/ld-linux-aarch64.so.1"


def lib(*needed: str, soname: str | None = None, machine: int = EM_AARCH64) -> bytes:
    return make_elf(machine=machine, needed=needed, soname=soname)


def exe(*needed: str, runpath: str | None = None) -> bytes:
    return make_elf(
        machine=EM_AARCH64,
        interp=LDSO,
        needed=[*needed, "libc.so.6"],
        runpath=runpath,
        flags_1=DF_1_PIE,
    )


def arm64(files: Mapping[str, Spec]) -> MemTree:
    base: dict[str, Spec] = {
        "/lib": Link("usr/lib"),
        "/bin": Link("usr/bin"),
        "/usr/lib/ld-linux-aarch64.so.1": Link("aarch64-linux-gnu/ld-linux-aarch64.so.1"),
        f"{ML}/ld-linux-aarch64.so.1": lib(soname="ld-linux-aarch64.so.1"),
        f"{ML}/libc.so.6": lib("ld-linux-aarch64.so.1", soname="libc.so.6"),
    }
    return MemTree({**base, **files})


def primary(c: Closure, name: str) -> list[str]:
    return [e.path for e in c.edges if e.name == name and not e.variant]


def test_interpreter_and_multiarch_default_directory() -> None:
    tree = arm64({"/usr/bin/app": exe("libz.so.1"), f"{ML}/libz.so.1": lib(soname="libz.so.1")})
    c = closure(tree, ["/usr/bin/app"], {})
    assert c.missing == ()
    assert primary(c, "libz.so.1") == ["/lib/aarch64-linux-gnu/libz.so.1"]
    assert primary(c, "libc.so.6") == ["/lib/aarch64-linux-gnu/libc.so.6"]
    interp = [e for e in c.edges if e.kind == "PT_INTERP"]
    assert [e.target for e in interp] == [f"{ML}/ld-linux-aarch64.so.1"]


def test_lib_and_platform_tokens_expand_for_aarch64() -> None:
    tree = arm64(
        {
            "/usr/bin/app": exe("libx.so", "liby.so", runpath="/o/$LIB:/p/$PLATFORM"),
            "/o/lib/aarch64-linux-gnu/libx.so": lib(),
            "/p/aarch64/liby.so": lib(),
            "/p/x86_64/liby.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert primary(c, "libx.so") == ["/o/lib/aarch64-linux-gnu/libx.so"]
    assert primary(c, "liby.so") == ["/p/aarch64/liby.so"]


def test_no_x86_hwcaps_and_the_atomics_legacy_subdirectory_is_a_variant() -> None:
    tree = arm64(
        {
            "/usr/bin/app": exe("libx.so", runpath="/opt/a"),
            "/opt/a/glibc-hwcaps/x86-64-v3/libx.so": lib(),
            "/opt/a/atomics/libx.so": lib(),
            "/opt/a/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert primary(c, "libx.so") == ["/opt/a/libx.so"]
    assert "/opt/a/atomics/libx.so" in c.files
    assert "/opt/a/glibc-hwcaps/x86-64-v3/libx.so" not in c.files


def test_an_x86_64_library_first_in_the_path_is_skipped() -> None:
    """The loader skips a file of another machine and searches on (dl-load.c
    open_verify): an amd64 copy earlier in RUNPATH is not the arm64 program's."""
    tree = arm64(
        {
            "/usr/bin/app": exe("libx.so", runpath="/opt/amd:/opt/arm"),
            "/opt/amd/libx.so": lib(machine=62),
            "/opt/arm/libx.so": lib(),
        }
    )
    c = closure(tree, ["/usr/bin/app"], {})
    assert primary(c, "libx.so") == ["/opt/arm/libx.so"]
