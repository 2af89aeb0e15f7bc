"""The architectures slimmer builds bases for, and every fact that differs between them. Pure.

A Debian 12 base of one architecture differs from another's only in:

- the package index: `main/binary-<arch>/Packages.xz`, which lists the
  architecture's own packages and the `all` ones;
- the multiarch triplet (`x86_64-linux-gnu`, `aarch64-linux-gnu`): glibc's
  built-in search path is `/lib/<triplet>`, `/usr/lib/<triplet>`, `/lib`,
  `/usr/lib` (`ld.so --help` on each);
- the program interpreter a glibc program names in PT_INTERP:
  `/lib64/ld-linux-x86-64.so.2` on amd64, `/lib/ld-linux-aarch64.so.1` on arm64;
- the merged-/usr links at the root: debootstrap links `bin`, `sbin` and `lib`
  on every architecture, and `lib64` too on amd64, where the interpreter lives
  (a Debian 12 arm64 root has no `/lib64`);
- the image config's `architecture` and `variant` (the OCI names: Debian's
  arm64 is the OCI `arm64`, variant `v8`, as Debian's and distroless's arm64
  images say);
- the ELF machine of its programs (`e_machine`).

Debian's and the OCI's names for these two architectures are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from slimmer.elf.parse import EM_AARCH64, EM_X86_64
from slimmer.errors import UsageError


@dataclass(frozen=True)
class DebianArch:
    """One architecture bases are built for (see the module docstring)."""

    name: str  # Debian's and the OCI's name: "amd64", "arm64"
    triplet: str  # the multiarch directory name: "aarch64-linux-gnu"
    interpreter: str  # glibc's PT_INTERP: "/lib/ld-linux-aarch64.so.1"
    merged_dirs: tuple[str, ...]  # the root's links into /usr
    variant: str  # the OCI variant ("" when the platform has none)
    elf_machine: int  # the e_machine of its ELF files (EM_AARCH64)

    @property
    def platform(self) -> str:
        """`linux/arm64`, as `--platform` takes it (without the variant)."""
        return f"linux/{self.name}"

    @property
    def index(self) -> str:
        """The package index of this architecture, relative to `dists/<suite>/`."""
        return f"main/binary-{self.name}/Packages.xz"

    @property
    def package_architectures(self) -> tuple[str, str]:
        """The `Architecture:` values a package of this index may have."""
        return (self.name, "all")

    @property
    def search_dirs(self) -> tuple[str, ...]:
        """Where glibc's loader finds a library by name without an ld.so.cache: its
        built-in path, then the interpreter's directory when that is not on it."""
        dirs = (f"/lib/{self.triplet}", f"/usr/lib/{self.triplet}", "/lib", "/usr/lib")
        home = self.interpreter.rsplit("/", 1)[0]
        return dirs if home in dirs else (*dirs, home)


AMD64 = DebianArch(
    "amd64",
    "x86_64-linux-gnu",
    "/lib64/ld-linux-x86-64.so.2",
    ("bin", "sbin", "lib", "lib64"),
    "",
    EM_X86_64,
)
ARM64 = DebianArch(
    "arm64",
    "aarch64-linux-gnu",
    "/lib/ld-linux-aarch64.so.1",
    ("bin", "sbin", "lib"),
    "v8",
    EM_AARCH64,
)
ARCHES: Mapping[str, DebianArch] = {a.name: a for a in (AMD64, ARM64)}


def arch_of(name: str, os_: str = "linux", variant: str = "") -> DebianArch:
    """The architecture called `name` (an image config's or `--platform`'s);
    `UsageError` naming the platforms there are bases for otherwise. A variant
    other than the architecture's own (arm64's `v8`) is refused too."""
    found = ARCHES.get(name)
    if os_ != "linux" or found is None or variant not in ("", found.variant):
        tail = f"/{variant}" if variant else ""
        known = " and ".join(a.platform for a in ARCHES.values())
        raise UsageError(f"bases for {os_}/{name}{tail}: slimmer builds bases for {known} only")
    return found
