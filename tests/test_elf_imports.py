"""`slimmer.elf.imports`: the undefined dynamic symbols of ELF files.

Samples: small C programs compiled here with the host's gcc (x86-64, glibc),
checked against `nm -D --undefined-only`; 32-bit and big-endian files built by
hand with struct (a header and three sections: null, .dynsym, .dynstr), since
the host's gcc makes neither.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from slimmer.elf.imports import imports_of_bytes
from tests.needs import require

SOURCES = {
    "system": '#include <stdlib.h>\nint main(void) { return system("true"); }\n',
    "popen": '#include <stdio.h>\nint main(void) { return popen("true", "r") == 0; }\n',
    "plain": "#include <string.h>\nint main(int c, char **v) { return (int)strlen(v[c - 1]); }\n",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each of SOURCES compiled (dynamic), and `system` also linked statically."""
    require("gcc", "nm")
    out_dir = tmp_path_factory.mktemp("elf-imports")
    out = {}
    for name, source in [*SOURCES.items(), ("static", SOURCES["system"])]:
        src = out_dir / f"{name}.c"
        src.write_text(source)
        flags = ["-static"] if name == "static" else []
        subprocess.run(["gcc", *flags, "-o", str(out_dir / name), str(src)], check=True)
        out[name] = out_dir / name
    return out


def _nm_undefined(path: Path) -> set[str]:
    res = subprocess.run(
        ["nm", "-D", "--undefined-only", str(path)], capture_output=True, text=True, check=True
    )
    return {line.split()[-1].split("@")[0] for line in res.stdout.splitlines() if line.strip()}


@pytest.mark.parametrize("name", list(SOURCES))
def test_agrees_with_nm(built: dict[str, Path], name: str) -> None:
    found = imports_of_bytes(built[name].read_bytes())
    assert found.error == ""
    assert set(found.names) == _nm_undefined(built[name])


def test_shell_functions_show_up(built: dict[str, Path]) -> None:
    names = {n: imports_of_bytes(built[n].read_bytes()).names for n in SOURCES}
    assert "system" in names["system"] and "popen" not in names["system"]
    assert "popen" in names["popen"]
    assert not {"system", "popen"} & names["plain"]


def test_a_static_file_says_it_has_no_table(built: dict[str, Path]) -> None:
    found = imports_of_bytes(built["static"].read_bytes())
    assert found.names == frozenset() and "no dynamic symbol table" in found.error


def test_hostile_files_give_an_error_never_an_exception(built: dict[str, Path]) -> None:
    data = built["system"].read_bytes()
    assert imports_of_bytes(b"").error == "not an ELF file"
    assert imports_of_bytes(b"#!/bin/sh\n" * 10).error == "not an ELF file"
    no_headers = data[:0x28] + b"\0" * 8 + data[0x30:]  # e_shoff = 0, as sstrip leaves it
    assert "no section headers" in imports_of_bytes(no_headers).error
    for cut in (64, len(data) // 2, len(data) - 100):
        found = imports_of_bytes(data[:cut])
        assert found.names == frozenset() and "truncated" in found.error, cut


def elf_with_dynsym(is64: bool, endian: str, symbols: list[tuple[str, int]]) -> bytes:
    """An ELF with sections null, .dynsym (symbols as (name, st_shndx)), .dynstr."""
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n, _ in symbols)
    offsets = [1 + sum(len(n) + 1 for n, _ in symbols[:i]) for i in range(len(symbols))]
    sym_fmt = endian + ("IBBHQQ" if is64 else "IIIBBH")
    syms = [(at, 0x12, 0, shndx, 0, 0) if is64 else (at, 0, 0, 0x12, 0, shndx)
            for at, (_, shndx) in zip(offsets, symbols, strict=True)]  # fmt: skip
    dynsym = bytes(struct.calcsize(sym_fmt)) + b"".join(struct.pack(sym_fmt, *s) for s in syms)
    ehsize, shdr = (64, endian + "IIQQQQIIQQ") if is64 else (52, endian + "IIIIIIIIII")
    sym_at, str_at = ehsize, ehsize + len(dynsym)
    sh_at = str_at + len(strtab)
    sections = [
        struct.pack(shdr, *[0] * 10),
        struct.pack(shdr, 0, 11, 2, 0, sym_at, len(dynsym), 2, 1, 8, struct.calcsize(sym_fmt)),
        struct.pack(shdr, 0, 3, 2, 0, str_at, len(strtab), 0, 0, 1, 0),
    ]
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if endian == "<" else 2, 1]) + bytes(9)
    tail = (
        struct.pack(endian + "HHIQQQIHHHHHH", 3, 62, 1, 0, 0, sh_at, 0, 64, 56, 0, 64, 3, 0)
        if is64
        else struct.pack(endian + "HHIIIIIHHHHHH", 3, 3, 1, 0, 0, sh_at, 0, 52, 32, 0, 40, 3, 0)
    )
    return ident + tail + dynsym + strtab + b"".join(sections)


@pytest.mark.parametrize(("is64", "endian"), [(True, "<"), (False, "<"), (True, ">"), (False, ">")])
def test_every_class_and_byte_order(is64: bool, endian: str) -> None:
    data = elf_with_dynsym(is64, endian, [("popen", 0), ("my_own", 7), ("execvp", 0)])
    found = imports_of_bytes(data)
    assert (found.names, found.error) == (frozenset({"popen", "execvp"}), "")
