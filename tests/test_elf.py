"""slimmer.elf.parse: the struct reader, cross-checked with pyelftools.

ELF samples are made in the tests: with the host's gcc into tmp_path, or
written by hand (`make_elf`) for the classes and byte orders gcc here cannot
produce (32-bit, big-endian).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

from slimmer.elf.parse import DF_1_NODEFLIB, DF_1_PIE, ElfInfo, is_elf, parse_elf
from tests.memtree import Builder, dynstr_offset, make_elf, patch_dynamic
from tests.needs import needs, require

needs_gcc = needs("gcc")


def pyelftools_view(data: bytes) -> dict[str, object]:
    """The same facts, read by pyelftools."""
    elf = ELFFile(io.BytesIO(data))
    out: dict[str, object] = {
        "interp": None,
        "needed": [],
        "rpath": None,
        "runpath": None,
        "soname": None,
        "flags_1": 0,
        "machine": elf["e_machine"],
    }
    for seg in elf.iter_segments():
        if isinstance(seg, InterpSegment):
            out["interp"] = seg.get_interp_name()
        if isinstance(seg, DynamicSegment):
            for tag in seg.iter_tags():
                kind = tag.entry.d_tag
                if kind == "DT_NEEDED":
                    out["needed"].append(tag.needed)  # type: ignore[attr-defined]
                elif kind in ("DT_RPATH", "DT_RUNPATH", "DT_SONAME"):
                    out[kind[3:].lower()] = getattr(tag, kind[3:].lower())
                elif kind == "DT_FLAGS_1":
                    out["flags_1"] = tag.entry.d_val
    return out


def our_view(info: ElfInfo) -> dict[str, object]:
    names = {
        62: "EM_X86_64",
        3: "EM_386",
        183: "EM_AARCH64",
        22: "EM_S390",
        21: "EM_PPC64",
        20: "EM_PPC",
    }
    return {
        "interp": info.interp,
        "needed": list(info.needed),
        "rpath": info.rpath,
        "runpath": info.runpath,
        "soname": info.soname,
        "flags_1": info.flags_1,
        "machine": names.get(info.machine, info.machine),
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require("gcc")
    root = tmp_path_factory.mktemp("elf")
    b = Builder(root / "src")
    dep = b.lib(root / "libdep.so.1")
    lib = b.lib(
        root / "libfoo.so.1",
        needs=[dep],
        flags=["-Wl,--disable-new-dtags", "-Wl,-rpath,/opt/r:$ORIGIN"],
    )
    exe = b.exe(
        root / "app", needs=[lib], flags=["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"]
    )
    static = b.exe(root / "static", flags=["-static"])
    static_pie = b.exe(root / "static-pie", flags=["-static-pie"])
    return {"dep": dep, "lib": lib, "exe": exe, "static": static, "static_pie": static_pie}


def test_is_elf() -> None:
    assert is_elf(b"\x7fELF\x02\x01")
    assert not is_elf(b"#!/bin/sh\n")
    assert not is_elf(b"\x7fEL")


@needs_gcc
def test_executable_fields(built: dict[str, Path]) -> None:
    info = parse_elf(built["exe"].read_bytes())
    assert info.ok and info.elf_class == 64 and info.endian == "little"
    assert info.machine == 62 and info.e_type == 3  # PIE executables are ET_DYN
    assert info.interp == "/lib64/ld-linux-x86-64.so.2"
    assert info.needed == ("libfoo.so.1", "libc.so.6")
    assert info.runpath == "$ORIGIN/../lib" and info.rpath is None
    assert not info.is_static and not info.nodeflib


@needs_gcc
def test_library_fields(built: dict[str, Path]) -> None:
    info = parse_elf(built["lib"].read_bytes())
    assert info.soname == "libfoo.so.1"
    assert info.rpath == "/opt/r:$ORIGIN" and info.runpath is None
    assert info.needed[0] == "libdep.so.1"
    assert info.interp is None and not info.is_static


@needs_gcc
def test_static_and_static_pie(built: dict[str, Path]) -> None:
    static = parse_elf(built["static"].read_bytes())
    assert static.ok and static.is_static and static.needed == () and not static.has_dynamic
    pie = parse_elf(built["static_pie"].read_bytes())
    assert pie.ok and pie.has_dynamic and pie.interp is None
    assert pie.flags_1 & DF_1_PIE and pie.is_static


@needs_gcc
def test_nodeflib_flag(built: dict[str, Path]) -> None:
    """ld.bfd ignores `-z nodeflib`, so the flag is patched in."""
    data = built["exe"].read_bytes()
    patched = patch_dynamic(data, 0x6FFFFFFB, 0x6FFFFFFB, DF_1_PIE | DF_1_NODEFLIB)
    assert parse_elf(patched).nodeflib
    assert not parse_elf(data).nodeflib


@needs_gcc
def test_file_object_and_bytes_agree(built: dict[str, Path]) -> None:
    with built["exe"].open("rb") as f:
        assert parse_elf(f) == parse_elf(built["exe"].read_bytes())


@needs_gcc
@pytest.mark.parametrize("key", ["dep", "lib", "exe", "static", "static_pie"])
def test_matches_pyelftools_on_built_files(built: dict[str, Path], key: str) -> None:
    data = built[key].read_bytes()
    assert our_view(parse_elf(data)) == pyelftools_view(data)


def _host_elf_files(limit: int) -> list[Path]:
    out: list[Path] = []
    for top in ("/usr/bin", "/usr/lib/x86_64-linux-gnu"):
        for entry in sorted(Path(top).iterdir()) if os.path.isdir(top) else ():
            if entry.is_file() and not entry.is_symlink():
                with entry.open("rb") as f:
                    if is_elf(f.read(4)):
                        out.append(entry)
            if len(out) >= limit:
                return out
    return out


def test_matches_pyelftools_on_host_files() -> None:
    """Every ELF file of /usr/bin and /usr/lib/x86_64-linux-gnu (top level,
    up to 400) reads the same as with pyelftools."""
    files = _host_elf_files(400)
    assert files, "no ELF files in the host's /usr/bin and /usr/lib/x86_64-linux-gnu"
    for path in files:
        data = path.read_bytes()
        info = parse_elf(data)
        assert info.ok, (path, info.error)
        assert our_view(info) == pyelftools_view(data), path


@pytest.mark.parametrize(
    "elf_class,endian,machine",
    [
        (64, "little", 62),
        (32, "little", 3),
        (64, "big", 22),
        (32, "big", 20),
        (64, "little", 183),
    ],
)
def test_hand_written_classes_and_byte_orders(elf_class: int, endian: str, machine: int) -> None:
    data = make_elf(
        elf_class=elf_class,
        endian=endian,
        machine=machine,
        interp="/lib/ld.so.1",
        needed=["liba.so.1", "libb.so.2"],
        soname="libx.so",
        rpath="/r",
        runpath="$ORIGIN/r",
        flags_1=DF_1_NODEFLIB,
    )
    info = parse_elf(data)
    assert info.ok, info.error
    assert (info.elf_class, info.endian, info.machine) == (elf_class, endian, machine)
    assert info.needed == ("liba.so.1", "libb.so.2")
    assert (info.interp, info.soname, info.rpath, info.runpath) == (
        "/lib/ld.so.1",
        "libx.so",
        "/r",
        "$ORIGIN/r",
    )
    assert info.nodeflib
    assert our_view(info) == pyelftools_view(data)


def test_every_truncation_is_named_never_silent() -> None:
    """Cut the file anywhere: no exception, and either an error is set or
    the answer is the whole answer (never a silently shorter DT_NEEDED)."""
    data = make_elf(
        interp="/lib64/ld-linux-x86-64.so.2", needed=["liba.so", "libb.so"], runpath="/x"
    )
    full = parse_elf(data)
    for cut in range(len(data)):
        info = parse_elf(data[:cut])
        assert info.error or info == full, cut
    assert parse_elf(data[:10]).error == "ELF identification truncated"


@needs_gcc
def test_truncated_real_library_reports_error(built: dict[str, Path]) -> None:
    data = built["lib"].read_bytes()
    for cut in (20, 100, len(data) // 2, len(data) - 200):
        info = parse_elf(data[:cut])
        assert info.error or info == parse_elf(data), cut


def test_not_elf() -> None:
    info = parse_elf(b"#!/bin/sh\necho hi\n")
    assert not info.ok and "not an ELF file" in info.error and info.elf_class == 0


def test_strtab_outside_any_load_segment() -> None:
    data = bytearray(make_elf(needed=["liba.so"]))
    offsets = [
        i for i in range(0, len(data) - 16, 8) if data[i : i + 8] == (5).to_bytes(8, "little")
    ]
    data[offsets[-1] + 8 : offsets[-1] + 16] = (0x7FFF0000).to_bytes(8, "little")
    info = parse_elf(bytes(data))
    assert "not inside any PT_LOAD" in info.error


@needs_gcc
def test_string_offset_outside_strsz(built: dict[str, Path]) -> None:
    data = built["exe"].read_bytes()
    bad = patch_dynamic(data, 1, 1, 0x7FFFFFF)  # first DT_NEEDED points far away
    info = parse_elf(bad)
    assert "outside DT_STRSZ" in info.error


@needs_gcc
def test_runpath_and_rpath_both_read(built: dict[str, Path]) -> None:
    data = built["lib"].read_bytes()
    both = patch_dynamic(data, 0x6FFFFEF5, 29, dynstr_offset(data, "libdep.so.1"))  # GNU_HASH
    info = parse_elf(both)
    assert info.rpath == "/opt/r:$ORIGIN" and info.runpath == "libdep.so.1"


def test_bad_program_header_size() -> None:
    data = bytearray(make_elf(needed=["a"]))
    data[54:56] = (8).to_bytes(2, "little")  # e_phentsize
    assert "bad program header table" in parse_elf(bytes(data)).error


def test_no_dynamic_segment_is_static() -> None:
    info = parse_elf(make_elf(dynamic=False, e_type=2))
    assert info.ok and info.is_static and info.needed == ()
