"""How the image's glibc was built, for one ELF class and machine: what `$LIB`
and `$PLATFORM` expand to, the default directories, the CPU-specific
subdirectories (glibc-hwcaps and legacy hwcaps) and the ld.so.cache flags
that fit the program.

Where the answer depends on the CPU every variant is kept, since the slim
image may run on another CPU (see `slimmer.elf.loader`).
"""

from __future__ import annotations

from dataclasses import dataclass

from slimmer.elf.ldcache import FLAG_TYPE_ELF_LIBC6
from slimmer.elf.parse import EM_386, EM_AARCH64, EM_ARM, EM_RISCV, EM_X86_64, ElfInfo
from slimmer.image.paths import is_dir, is_file
from slimmer.model import TreeView

__all__ = ["DEFAULT_LAYOUT", "Layout", "detect_layout"]

_TRIPLETS = {
    (EM_X86_64, 64): "x86_64-linux-gnu",
    (EM_X86_64, 32): "x86_64-linux-gnux32",
    (EM_386, 32): "i386-linux-gnu",
    (EM_AARCH64, 64): "aarch64-linux-gnu",
    (EM_ARM, 32): "arm-linux-gnueabihf",
    (21, 64): "powerpc64le-linux-gnu",
    (22, 64): "s390x-linux-gnu",
    (EM_RISCV, 64): "riscv64-linux-gnu",
}
_PLATFORMS = {
    EM_X86_64: "x86_64",
    EM_386: "i686",
    EM_AARCH64: "aarch64",
    EM_ARM: "v7l",
    21: "power8",
    22: "z900",
    EM_RISCV: "riscv64",
}
_HWCAPS = {
    (EM_X86_64, 64): ("x86-64-v4", "x86-64-v3", "x86-64-v2"),
    (21, 64): ("power10", "power9"),
    (22, 64): ("z16", "z15", "z14", "z13"),
}
# HWCAP_IMPORTANT's names: aarch64 has one, "atomics" (its dl-procinfo.h).
_LEGACY_CAPS = {
    EM_X86_64: ("avx512_1", "x86_64"),
    EM_386: ("i686", "i586"),
    EM_AARCH64: ("atomics",),
}
_LEGACY_PLATFORMS = {EM_X86_64: ("x86_64", "haswell", "xeon_phi")}
_CACHE_ARCH = {
    (EM_X86_64, 64): 0x0300,
    (EM_X86_64, 32): 0x0800,
    (EM_386, 32): 0,
    (EM_AARCH64, 64): 0x0A00,
    (EM_ARM, 32): 0x0900,
    (21, 64): 0x0500,
    (22, 64): 0x0400,
    (EM_RISCV, 64): 0x1000,
}


@dataclass(frozen=True)
class Layout:
    """How the image's glibc was configured, for one ELF class and machine.

    glibc expands `$LIB` to the last part of its `slibdir` and searches
    `slibdir`, `libdir` (elf/Makefile trusted-dirs). Debian patches `$LIB` to
    "lib/<triplet>" and adds /lib and /usr/lib: measured on Debian 12, RPATH
    "/opt/$LIB" searches "/opt/lib/x86_64-linux-gnu". Fedora-style lib64
    layouts use "lib64" and /lib64, /usr/lib64; anything else "lib".
    """

    lib: str
    platform: str
    default_dirs: tuple[str, ...]
    subdirs: tuple[str, ...]
    cache_flags: int | None


DEFAULT_LAYOUT = Layout("lib", "", ("/lib", "/usr/lib"), (), None)
"""The layout before the program is read: plain "lib", no CPU variants."""


def detect_layout(tree: TreeView, info: ElfInfo) -> Layout:
    """The layout for the program `info`, by the directories the image has
    (see `Layout`)."""
    key = (info.machine, info.elf_class)
    triplet = _TRIPLETS.get(key)
    platform = _PLATFORMS.get(info.machine, info.machine_name)
    subdirs = tuple(f"glibc-hwcaps/{c}" for c in _HWCAPS.get(key, ())) + _legacy_subdirs(info)
    arch = _CACHE_ARCH.get(key)
    flags = None if arch is None else arch | FLAG_TYPE_ELF_LIBC6
    if triplet and any(is_dir(tree, f"{d}/{triplet}") for d in ("/lib", "/usr/lib")):
        dirs: tuple[str, ...] = (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
        return Layout(f"lib/{triplet}", platform, dirs, subdirs, flags)
    if info.elf_class == 64 and any(
        is_file(tree, f"{d}/libc.so.6") for d in ("/lib64", "/usr/lib64")
    ):
        return Layout("lib64", platform, ("/lib64", "/usr/lib64"), subdirs, flags)
    return Layout("lib", platform, ("/lib", "/usr/lib"), subdirs, flags)


def _legacy_subdirs(info: ElfInfo) -> tuple[str, ...]:
    """glibc < 2.37 also searched tls/, AT_PLATFORM and legacy hwcap
    subdirectories ("tls/x86_64/x86_64", "x86_64", ...) of every directory."""
    platforms = _LEGACY_PLATFORMS.get(info.machine, (_PLATFORMS.get(info.machine, ""),))
    caps = _LEGACY_CAPS.get(info.machine, ())
    out = []
    for tls in ("tls/", ""):
        for plat in (*[p + "/" for p in platforms if p], ""):
            for cap in (*[c + "/" for c in caps], ""):
                out.append((tls + plat + cap).rstrip("/"))
    return tuple(dict.fromkeys(s for s in out if s))
