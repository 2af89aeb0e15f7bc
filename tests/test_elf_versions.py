"""slimmer.elf.versions and slimmer.elf.compat on real ELF files.

Samples: the host's /usr/bin and /usr/lib/x86_64-linux-gnu (Debian 12, glibc
2.36), cross-checked with binutils' `readelf -V`; programs and libraries built
here with gcc, g++ and musl-gcc from the sources below; truncated, section-less
and mutated copies of them. Bases too old for a program are synthetic: the
host's own definitions cut at a version. Where the host's loader can judge
(a library with fewer versions than a program needs), it is run and must agree.
"""

from __future__ import annotations

import dataclasses
import io
import os
import random
import re
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from slimmer.elf.compat import (
    GLIBC_SONAMES,
    Incompatibility,
    Provided,
    check_base,
    family,
    file_libc,
    highest,
    incompatibilities,
    libc_of,
    provided_by,
    version_key,
)
from slimmer.elf.parse import is_elf, parse_elf
from slimmer.elf.versions import SymbolVersions, VersionNeed, read_versions
from tests.needs import require, require_paths

MULTIARCH = "/usr/lib/x86_64-linux-gnu"
LIBC = f"{MULTIARCH}/libc.so.6"
LIBSTDCXX = f"{MULTIARCH}/libstdc++.so.6"
GLIBC_INTERP = "/lib64/ld-linux-x86-64.so.2"
MUSL_INTERP = "/lib/ld-musl-x86_64.so.1"

HELLO = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'
# arc4random is new in glibc 2.36, so this program needs GLIBC_2.36.
ARC4RANDOM = "#include <stdlib.h>\nint main(void) { return (int)(arc4random() & 1); }\n"
CXX = """#include <iostream>
#include <filesystem>
#include <string>
int main(int argc, char **argv) {
    std::string s(argv[0]);
    std::cout << std::filesystem::path(s).filename() << std::endl;
    try { throw std::runtime_error(s); } catch (const std::exception &e) { return argc - 1; }
}
"""
LIBMY = "int old_fn(void) { return 1; }\nint new_fn(void) { return 2; }\n"
LIBMY_V1 = "MYLIB_1.0 { global: old_fn; new_fn; local: *; };\n"
LIBMY_V2 = "MYLIB_1.0 { global: old_fn; local: *; };\nMYLIB_2.0 { global: new_fn; } MYLIB_1.0;\n"
USES_LIBMY = (
    "int old_fn(void); int new_fn(void);\nint main(void) { return old_fn() + new_fn() - 3; }\n"
)


# -- building samples ----------------------------------------------------------


def _cc(out: Path, source: str, *flags: str, compiler: str = "gcc", lang: str = "c") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_name(out.name + "." + lang)
    src.write_text(source)
    subprocess.run([compiler, "-o", str(out), str(src), *flags], check=True, capture_output=True)
    return out


def _libmy(root: Path, name: str, script: str | None) -> Path:
    flags = ["-shared", "-fPIC", "-Wl,-soname,libmy.so.1"]
    if script is not None:
        (root / f"{name}.map").write_text(script)
        flags.append(f"-Wl,--version-script,{root / f'{name}.map'}")
    return _cc(root / name / "libmy.so.1", LIBMY, *flags)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every sample program and library, by name."""
    require("gcc", "g++", "musl-gcc")
    root = tmp_path_factory.mktemp("versions")
    out = {
        "hello": _cc(root / "hello", HELLO),
        "arc4random": _cc(root / "arc4random", ARC4RANDOM),
        "cxx": _cc(root / "cxx", CXX, "-std=c++17", compiler="g++", lang="cc"),
        "static": _cc(root / "static", HELLO, "-static"),
        "static-pie": _cc(root / "static-pie", HELLO, "-static-pie"),
        "musl": _cc(root / "musl", HELLO, compiler="musl-gcc"),
        "musl-static": _cc(root / "musl-static", HELLO, "-static", compiler="musl-gcc"),
        "libmy-v1": _libmy(root, "v1", LIBMY_V1),
        "libmy-v2": _libmy(root, "v2", LIBMY_V2),
        "libmy-plain": _libmy(root, "plain", None),
    }
    out["uses-libmy"] = _cc(root / "uses-libmy", USES_LIBMY, str(out["libmy-v2"]))
    return out


def _read(path: Path | str) -> SymbolVersions:
    with open(path, "rb") as f:
        return read_versions(f)


def _host_elf_files(directory: str) -> list[str]:
    """The regular ELF files directly in `directory` (symlinks left out)."""
    out = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as f:
                if is_elf(f.read(4)):
                    out.append(entry.path)
    return out


@pytest.fixture(scope="module")
def host_programs() -> dict[str, SymbolVersions]:
    require_paths("/usr/bin/ls", LIBC)
    return {path: _read(path) for path in _host_elf_files("/usr/bin")}


@pytest.fixture(scope="module")
def host_base(host_programs: dict[str, SymbolVersions]) -> Provided:
    """The host as a base: the libraries in the multiarch directory that the
    host's programs (and the samples) name, with glibc's own."""
    names = {n for sv in host_programs.values() for n in sv.needed}
    names |= GLIBC_SONAMES | {"libstdc++.so.6", "libgcc_s.so.1"}
    paths = [f"{MULTIARCH}/{n}" for n in sorted(names) if os.path.isfile(f"{MULTIARCH}/{n}")]
    return provided_by({p: _read(p) for p in paths})


def _cut(provided: Provided, newest: dict[str, str]) -> Provided:
    """`provided` with each library's versions of a family newer than
    `newest[family]` left out: a base older than the host."""

    def keep(name: str) -> bool:
        fam, number = version_key(name)
        return fam not in newest or number <= version_key(newest[fam])[1]

    libraries = {lib: frozenset(filter(keep, defs)) for lib, defs in provided.libraries.items()}
    return Provided(libraries, provided.libc)


# -- cross-checks with readelf and the struct reader ---------------------------


def _readelf(path: Path | str) -> tuple[set[tuple[str, str]], set[str], str | None]:
    """(library, version) needs, defined versions and the BASE name, as
    `readelf -V` prints them."""
    require("readelf")
    text = subprocess.run(
        ["readelf", "-V", "-W", str(path)],
        env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    needs: set[tuple[str, str]] = set()
    defines: set[str] = set()
    base, library = None, ""
    for line in text.splitlines():
        if m := re.search(r"File: (\S+)\s+Cnt:", line):
            library = m[1]
        elif m := re.search(r"Name: (\S+)\s+Flags: \S+\s+Version:", line):
            needs.add((library, m[1]))
        elif m := re.search(r"Flags: (\S+)\s+Index: \d+\s+Cnt: \d+\s+Name: (\S+)", line):
            if "BASE" in m[1]:
                base = m[2]
            else:
                defines.add(m[2])
    return needs, defines, base


def _assert_matches_readelf(path: Path | str) -> None:
    sv = _read(path)
    needs, defines, base = _readelf(path)
    assert sv.ok, sv.error
    assert {(n.library, n.version) for n in sv.needs} == needs
    assert set(sv.defines) == defines
    assert sv.base_name == base


@pytest.mark.parametrize(
    "path",
    [
        "/usr/bin/ls",
        "/usr/bin/python3",
        LIBC,
        f"{MULTIARCH}/libm.so.6",
        f"{MULTIARCH}/ld-linux-x86-64.so.2",
        LIBSTDCXX,
        f"{MULTIARCH}/libgcc_s.so.1",
    ],
)
def test_host_files_match_readelf(path: str) -> None:
    require_paths(path)
    _assert_matches_readelf(os.path.realpath(path))


@pytest.mark.parametrize(
    "name", ["hello", "arc4random", "cxx", "static", "musl", "uses-libmy", "libmy-v2"]
)
def test_built_files_match_readelf(built: dict[str, Path], name: str) -> None:
    _assert_matches_readelf(built[name])


def test_every_host_program_reads_cleanly_and_agrees_with_the_struct_reader(
    host_programs: dict[str, SymbolVersions],
) -> None:
    assert len(host_programs) > 100
    for path, sv in host_programs.items():
        info = parse_elf(Path(path).read_bytes())
        assert sv.ok, (path, sv.error)
        assert (sv.needed, sv.interp, sv.soname) == (info.needed, info.interp, info.soname), path
        assert sv.dynamic == info.has_dynamic, path


def test_bytes_and_a_stream_give_the_same_value() -> None:
    require_paths("/usr/bin/ls")
    data = Path("/usr/bin/ls").read_bytes()
    assert read_versions(data) == read_versions(io.BytesIO(data)) == _read("/usr/bin/ls")
    assert read_versions(memoryview(data)) == read_versions(bytearray(data))


# -- what real files need and define --------------------------------------------


def test_libc_defines_up_to_the_running_glibc() -> None:
    require_paths(LIBC)
    libc = _read(LIBC)
    running = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    assert highest(libc.defines, "GLIBC") == "GLIBC_" + running.split()[1]
    assert libc.soname == libc.base_name == "libc.so.6"
    assert "libc.so.6" not in libc.defines  # the BASE entry names the file, not a version
    assert {"GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_PRIVATE"} <= set(libc.defines)
    assert libc.versioned and file_libc(LIBC, libc) == "glibc"


def test_ls_needs_libc_versions_and_is_glibcs(host_programs: dict[str, SymbolVersions]) -> None:
    ls = host_programs["/usr/bin/ls"]
    assert ls.interp == GLIBC_INTERP and "libc.so.6" in ls.needed
    assert {"GLIBC_2.2.5", "GLIBC_2.34"} <= ls.required("libc.so.6")
    assert all(family(v) == "GLIBC" for v in ls.required("libc.so.6"))
    assert ls.defines == () and not ls.versioned and not ls.is_musl and not ls.is_static
    assert file_libc("/usr/bin/ls", ls) == "glibc"


def test_a_program_built_here_needs_the_glibc_2_34_start(built: dict[str, Path]) -> None:
    hello = _read(built["hello"])
    # crt1.o calls __libc_start_main@GLIBC_2.34; puts is GLIBC_2.2.5.
    assert hello.required("libc.so.6") == {"GLIBC_2.2.5", "GLIBC_2.34"}
    assert hello.libraries() == ("libc.so.6",)
    assert _read(built["arc4random"]).required("libc.so.6") >= {"GLIBC_2.34", "GLIBC_2.36"}


def test_a_cxx_program_needs_glibcxx_and_cxxabi(built: dict[str, Path]) -> None:
    cxx = _read(built["cxx"])
    families = {family(v) for v in cxx.required("libstdc++.so.6")}
    assert families == {"GLIBCXX", "CXXABI"}
    assert "libc.so.6" in cxx.libraries()


def test_static_programs_need_nothing(built: dict[str, Path]) -> None:
    for name in ("static", "static-pie", "musl-static"):
        sv = _read(built[name])
        assert sv.ok and sv.is_static and sv.needs == () and sv.needed == (), name
        assert file_libc(name, sv) == "none"
        assert check_base({name: sv}, Provided({}, "none")).ok
    assert not _read(built["static"]).dynamic and _read(built["static-pie"]).dynamic


def test_a_library_lists_its_own_versions(built: dict[str, Path]) -> None:
    v2 = _read(built["libmy-v2"])
    assert v2.defines == ("MYLIB_1.0", "MYLIB_2.0") and v2.base_name == "libmy.so.1"
    plain = _read(built["libmy-plain"])
    assert plain.defines == () and not plain.versioned and plain.base_name is None
    assert _read(built["uses-libmy"]).required("libmy.so.1") == {"MYLIB_1.0", "MYLIB_2.0"}


# -- refusals -------------------------------------------------------------------


def test_an_old_base_is_refused_with_the_file_and_the_version(
    built: dict[str, Path], host_base: Provided
) -> None:
    base = _cut(host_base, {"GLIBC": "GLIBC_2.28"})
    result = check_base({"/app/server": _read(built["hello"])}, base)
    assert not result.ok and result.mismatches == ()
    assert result.reasons() == (
        "/app/server needs GLIBC_2.34 from libc.so.6; "
        "the base's libc.so.6 defines up to GLIBC_2.28",
    )
    assert result.incompatibilities == (
        Incompatibility("/app/server", "libc.so.6", "GLIBC_2.34", "GLIBC_2.28", "base"),
    )


def test_a_program_one_glibc_too_new_is_refused(
    built: dict[str, Path], host_base: Provided
) -> None:
    app = {"/app/rand": _read(built["arc4random"])}
    assert check_base(app, host_base).ok
    refused = check_base(app, _cut(host_base, {"GLIBC": "GLIBC_2.35"}))
    assert refused.reasons() == (
        "/app/rand needs GLIBC_2.36 from libc.so.6; the base's libc.so.6 defines up to GLIBC_2.35",
    )


def test_every_need_of_a_host_program_is_listed_in_version_order(host_base: Provided) -> None:
    require_paths("/usr/bin/ls")
    found = incompatibilities(
        {"/usr/bin/ls": _read("/usr/bin/ls")}, _cut(host_base, {"GLIBC": "GLIBC_2.28"})
    )
    versions = [i.version for i in found]
    assert versions == sorted(versions, key=version_key) and "GLIBC_2.34" in versions
    assert all(i.have == "GLIBC_2.28" and i.library == "libc.so.6" for i in found)


def test_the_host_base_satisfies_every_host_program(
    host_programs: dict[str, SymbolVersions], host_base: Provided
) -> None:
    """The oracle: these programs run on this host, so nothing may be refused."""
    assert host_base.libc == "glibc" and libc_of(host_programs) == "glibc"
    result = check_base(host_programs, host_base)
    assert result.ok, result.reasons()[:5]
    assert result.warnings == ()


def test_an_old_libstdcxx_is_refused_unless_the_app_ships_a_new_one(
    built: dict[str, Path], host_base: Provided
) -> None:
    cxx = _read(built["cxx"])
    newest = max(
        (v for v in cxx.required("libstdc++.so.6") if family(v) == "GLIBCXX"), key=version_key
    )
    older = [
        v
        for v in host_base.libraries["libstdc++.so.6"]
        if family(v) == "GLIBCXX" and version_key(v) < version_key(newest)
    ]
    below = max(older, key=version_key)
    base = _cut(host_base, {"GLIBCXX": below})
    app = {"/app/cxx": cxx}
    assert check_base(app, base).reasons() == (
        f"/app/cxx needs {newest} from libstdc++.so.6; "
        f"the base's libstdc++.so.6 defines up to {below}",
    )
    shipped = {"libstdc++.so.6": frozenset(_read(LIBSTDCXX).defines)}
    assert check_base(app, base, shipped).ok
    old_copy = {"libstdc++.so.6": base.libraries["libstdc++.so.6"]}
    (refusal,) = check_base(app, host_base, old_copy).reasons()
    assert refusal.endswith(f"the app's libstdc++.so.6 defines up to {below}")


def test_a_library_the_base_lacks_is_the_apps_own_business(built: dict[str, Path]) -> None:
    libc_only = Provided({"libc.so.6": frozenset(_read(LIBC).defines)}, "glibc")
    app = {"/app/cxx": _read(built["cxx"]), "/app/uses": _read(built["uses-libmy"])}
    assert check_base(app, libc_only).ok  # libstdc++, libgcc_s and libmy come with the app


def test_glibcs_own_libraries_must_come_from_the_base(built: dict[str, Path]) -> None:
    hello = {"/app/hello": _read(built["hello"])}
    no_libc = Provided({}, "none")
    assert [i.describe() for i in incompatibilities(hello, no_libc)] == [
        "/app/hello needs GLIBC_2.34 from libc.so.6; the base has no libc.so.6"
    ]
    # Shipping a libc does not help: libc6's libraries must match the base's loader.
    shipped = {"libc.so.6": frozenset(_read(LIBC).defines)}
    assert incompatibilities(hello, no_libc, shipped) == incompatibilities(hello, no_libc)
    assert check_base(hello, no_libc).reasons() == (
        f"/app/hello is linked against glibc (PT_INTERP {GLIBC_INTERP}); the base has no libc",
    )
    unversioned = SymbolVersions(needed=("libm.so.6",), dynamic=True)
    (missing,) = incompatibilities({"/app/m": unversioned}, Provided({}, "glibc"))
    assert missing.describe() == "/app/m needs libm.so.6; the base has no libm.so.6"


_NO_MYLIB = "the app's libmy.so.1 defines no MYLIB version"


@pytest.mark.parametrize(
    ("copy", "loader_says", "refusals"),
    [
        ("libmy-v2", "", ()),
        (
            "libmy-v1",
            "version `MYLIB_2.0' not found",
            ("needs MYLIB_2.0 from libmy.so.1; the app's libmy.so.1 defines up to MYLIB_1.0",),
        ),
        (
            "libmy-plain",
            "Assertion",
            (
                f"needs MYLIB_1.0 from libmy.so.1; {_NO_MYLIB}",
                f"needs MYLIB_2.0 from libmy.so.1; {_NO_MYLIB}",
            ),
        ),
    ],
)
def test_the_verdict_agrees_with_the_hosts_loader(
    built: dict[str, Path], copy: str, loader_says: str, refusals: tuple[str, ...]
) -> None:
    """glibc's loader, given each copy of libmy.so.1 on LD_LIBRARY_PATH: v1
    lacks MYLIB_2.0; the unversioned copy passes the version check with a
    warning ("no version information available"), then check_match asserts."""
    program = built["uses-libmy"]
    env = {"LD_LIBRARY_PATH": str(built[copy].parent)}
    proc = subprocess.run([str(program)], env=env, capture_output=True, text=True)
    assert (proc.returncode == 0) == (not refusals), proc.stderr
    assert loader_says in proc.stderr
    shipped = {"libmy.so.1": frozenset(_read(built[copy]).defines)}
    libc_only = Provided({"libc.so.6": frozenset(_read(LIBC).defines)}, "glibc")
    result = check_base({"/app/uses": _read(program)}, libc_only, shipped)
    assert result.reasons() == tuple(f"/app/uses {r}" for r in refusals)


def test_a_weak_need_is_never_refused() -> None:
    """glibc's match_symbol: a missing version flagged VER_FLG_WEAK is not fatal."""
    sv = SymbolVersions(
        needs=(
            VersionNeed("libc.so.6", "GLIBC_2.2.5"),
            VersionNeed("libc.so.6", "GLIBC_2.99", weak=True),
        ),
        needed=("libc.so.6",),
        dynamic=True,
    )
    base = Provided({"libc.so.6": frozenset({"GLIBC_2.2.5"})}, "glibc")
    assert sv.required("libc.so.6") == {"GLIBC_2.2.5"}
    assert check_base({"/app/w": sv}, base).ok


# -- musl ------------------------------------------------------------------------


def test_a_musl_program_is_musls_and_refused_on_a_glibc_base(
    built: dict[str, Path], host_base: Provided
) -> None:
    musl = _read(built["musl"])
    assert musl.ok and musl.is_musl and musl.interp == MUSL_INTERP
    assert musl.needed == ("libc.so",) and musl.needs == ()
    assert file_libc("/app/hello", musl) == "musl"
    result = check_base({"/app/hello": musl}, host_base)
    assert result.reasons() == (
        f"/app/hello is linked against musl (PT_INTERP {MUSL_INTERP}); the base's libc is glibc",
    )
    assert check_base({"/app/hello": musl}, Provided({}, "musl")).ok


def test_a_glibc_program_is_refused_on_a_musl_base(built: dict[str, Path]) -> None:
    result = check_base({"/app/hello": _read(built["hello"])}, Provided({}, "musl"))
    assert result.reasons() == (
        f"/app/hello is linked against glibc (PT_INTERP {GLIBC_INTERP}); the base's libc is musl",
    )


def test_an_alpine_library_is_musls() -> None:
    """Alpine's libc is named libc.musl-$ARCH.so.1; its libraries have no PT_INTERP."""
    lib = SymbolVersions(needed=("libz.so.1", "libc.musl-x86_64.so.1"), dynamic=True)
    assert lib.is_musl and file_libc("/usr/lib/libssl.so.3", lib) == "musl"
    (mismatch,) = check_base({"/usr/lib/libssl.so.3": lib}, Provided({}, "glibc")).mismatches
    assert mismatch.evidence == "needs libc.musl-x86_64.so.1"


def test_the_libc_of_a_set_of_files(built: dict[str, Path]) -> None:
    require_paths(MUSL_INTERP)
    glibc = {LIBC: _read(LIBC), "/app/hello": _read(built["hello"])}
    musl = {MUSL_INTERP: _read(MUSL_INTERP), "/app/m": _read(built["musl"])}
    static = {"/app/s": _read(built["static"]), "/app/ms": _read(built["musl-static"])}
    assert libc_of(glibc) == "glibc" and libc_of(musl) == "musl"
    assert libc_of({MUSL_INTERP: _read(MUSL_INTERP)}) == "musl"  # the loader by its name
    assert libc_of(static) == "none" and libc_of({}) == "none"
    assert libc_of({**glibc, **musl}) == "mixed"
    assert check_base({**glibc, **musl}, Provided({}, "mixed")).mismatches == ()


# -- hostile input ----------------------------------------------------------------


def test_a_truncated_file_is_an_error_never_no_requirements(built: dict[str, Path]) -> None:
    data = built["cxx"].read_bytes()
    whole = read_versions(data)
    for size in range(0, len(data), max(1, len(data) // 97)):
        cut = read_versions(data[:size])
        assert cut.error or cut.needs == whole.needs, size
    half = read_versions(data[: len(data) // 2])
    assert half.error.startswith("corrupt or truncated ELF file")


def test_a_truncated_libc_keeps_nothing_silent() -> None:
    require_paths(LIBC)
    data = Path(LIBC).read_bytes()
    cut = read_versions(data[: len(data) - 64])  # the section header table ends the file
    assert cut.error and cut.interp == GLIBC_INTERP


@pytest.mark.parametrize("data", [b"", b"#!/bin/sh\necho hi\n", b"\x7fELF", b"\x7fELF\x02\x01\x01"])
def test_what_is_not_an_elf_file_is_an_error(data: bytes) -> None:
    assert read_versions(data).error


def _section_header_offset(data: bytes, section_type: str) -> int:
    elf = ELFFile(io.BytesIO(data))
    index = next(i for i, s in enumerate(elf.iter_sections()) if s["sh_type"] == section_type)
    return int(elf["e_shoff"]) + index * int(elf["e_shentsize"])


def test_section_headers_stripped_is_an_error_not_no_requirements(
    built: dict[str, Path],
) -> None:
    data = bytearray(built["hello"].read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<HH", data, 0x3C, 0, 0)  # e_shnum, e_shstrndx
    sv = read_versions(bytes(data))
    assert "DT_VERNEED" in sv.error and sv.needs == ()
    assert sv.needed == ("libc.so.6",) and sv.interp == GLIBC_INTERP  # read through DT_STRTAB


def test_hostile_entry_counts_are_refused_quickly(built: dict[str, Path]) -> None:
    data = built["hello"].read_bytes()
    header = _section_header_offset(data, "SHT_GNU_verneed")
    many_entries = bytearray(data)
    struct.pack_into("<I", many_entries, header + 44, 0xFFFFFFFF)  # sh_info: entries
    assert "entries in" in read_versions(bytes(many_entries)).error
    many_names = bytearray(data)
    (table,) = struct.unpack_from("<Q", data, header + 24)  # sh_offset
    struct.pack_into("<H", many_names, table + 2, 0xFFFF)  # vn_cnt; the last vna_next is 0
    assert "more entries than its" in read_versions(bytes(many_names)).error


def _mutations(data: bytes, count: int, seed: int) -> Iterable[bytes]:
    rng = random.Random(seed)
    hot = [0, 64, *range(0x28, 0x40)]  # the ELF and program headers, e_shoff, e_shnum
    for _ in range(count):
        copy = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            at = rng.choice(hot) if rng.random() < 0.3 else rng.randrange(len(copy))
            copy[at] = rng.randrange(256)
        yield bytes(copy)


def test_mutated_files_never_raise(built: dict[str, Path]) -> None:
    data = built["uses-libmy"].read_bytes()
    for mutant in _mutations(data, 300, seed=1):
        assert isinstance(read_versions(mutant), SymbolVersions)


# -- the pure parts ---------------------------------------------------------------


def test_version_families_and_order() -> None:
    assert version_key("GLIBC_2.2.5") == ("GLIBC", (2, 2, 5))
    assert version_key("GLIBC_2.2.5") < version_key("GLIBC_2.10") < version_key("GLIBC_2.36")
    assert version_key("CXXABI_TM_1") == ("CXXABI_TM", (1,))
    assert version_key("GLIBC_PRIVATE") == ("GLIBC_PRIVATE", ())
    assert version_key("X_" + "9" * 5000) == ("X_" + "9" * 5000, ())  # no huge ints
    assert family("GLIBCXX_3.4.29") == "GLIBCXX" and family("GCC_4.2.0") == "GCC"
    assert highest(["GLIBC_2.9", "GLIBC_2.28", "GLIBCXX_3.4", "GLIBC_PRIVATE"], "GLIBC") == (
        "GLIBC_2.28"
    )
    assert highest(["GCC_3.0"], "GLIBC") is None


def test_each_refusal_says_what_the_copy_has() -> None:
    def line(version: str, have: str | None) -> str:
        return Incompatibility("/a", "libc.so.6", version, have).describe()

    assert line("GLIBC_ABI_DT_RELR", None) == (
        "/a needs GLIBC_ABI_DT_RELR from libc.so.6; the base's libc.so.6 does not define it"
    )
    assert line("GLIBC_2.2.5", "GLIBC_2.36") == (
        "/a needs GLIBC_2.2.5 from libc.so.6; "
        "the base's libc.so.6 does not define it (its newest GLIBC is GLIBC_2.36)"
    )
    assert line("GLIBC_2.17", None).endswith("the base's libc.so.6 defines no GLIBC version")


def test_copies_that_differ_count_only_what_all_define(built: dict[str, Path]) -> None:
    v1, v2 = _read(built["libmy-v1"]), _read(built["libmy-v2"])
    merged = provided_by({"/a/libmy.so.1": v2, "/b/libmy.so.1": v1})
    assert merged.libraries == {"libmy.so.1": frozenset({"MYLIB_1.0"})}
    assert merged.warnings == (
        "libmy.so.1: copies define different versions (/a/libmy.so.1, /b/libmy.so.1); "
        "only those all define count",
    )
    assert provided_by({"/a/libmy.so.1": v2, "/b/libmy.so.1": v2}).warnings == ()


def test_an_unreadable_app_file_is_a_warning(built: dict[str, Path], host_base: Provided) -> None:
    data = built["hello"].read_bytes()
    result = check_base({"/app/cut": read_versions(data[: len(data) // 2])}, host_base)
    (warning,) = result.warnings
    assert warning.startswith("/app/cut: symbol versions not read completely (corrupt")


def test_values_are_frozen(built: dict[str, Path]) -> None:
    sv = _read(built["hello"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        sv.error = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Incompatibility("/a", "l", "V_1", None).path = "/b"  # type: ignore[misc]
