"""`--base`: the image the slim image is written on, chosen and proven to run the app.

`scratch` (the default) writes one layer with every kept file. Any other value
names a base:

- `auto` picks the smallest distroless flavour that supplies the libraries of
  the kept ELF files. `static` has no libc. `base-nossl` adds glibc.
  `base` adds OpenSSL 3 (libssl.so.3, libcrypto.so.3). `cc` adds the C++
  runtime (libgcc_s.so.1, libstdc++.so.6, libgomp.so.1). A musl program brings
  its own loader and libc, so it goes on `static`.
- A flavour name picks that flavour. The engine's `gcr.io/distroless/<flavour>-debian12`
  is used when it has one, else slimmer's own build (`slim bases build`), which is
  built on demand from Debian packages.
- Any other value is an engine image reference, used as it is.

A flavour's base is the one of the image's own architecture (its config's;
the engine's when it names none): an arm64 image goes on the arm64 base
(`bases.build.find_base`), built for arm64 when the engine has none. slimmer
builds bases for amd64 and arm64; an image of another architecture can go
only on scratch or a REF, and a REF of another architecture than the image's
is refused.

Before anything is written, the versions every kept ELF file needs are checked
against what the base's libraries define (`elf.compat`). A base that cannot
run the app is refused with `BaseRefused`, whose message names the file and the
version.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from slimmer.bases import recipe
from slimmer.bases.arch import DebianArch, arch_of
from slimmer.bases.build import (
    build_base,
    build_command,
    default_arch,
    engine_arch,
    find_base,
)
from slimmer.bases.errors import DebianError
from slimmer.elf.compat import GLIBC_SONAMES, Provided, check_base, libc_of, provided_by
from slimmer.elf.versions import SymbolVersions, read_versions
from slimmer.engine import saver
from slimmer.engine_api import ContainerEngine
from slimmer.errors import BaseRefused, UsageError
from slimmer.image.reader import Image, open_with_layers
from slimmer.image.writer import BaseLayers
from slimmer.model import TreeView

SCRATCH, AUTO = "scratch", "auto"
# The sonames each flavour adds to the one before it (Debian 12 packages).
FLAVOUR_ADDS: Mapping[str, frozenset[str]] = {
    "static": frozenset(),
    "base-nossl": GLIBC_SONAMES,
    "base": frozenset({"libssl.so.3", "libcrypto.so.3"}),
    "cc": frozenset({"libgcc_s.so.1", "libstdc++.so.6", "libgomp.so.1"}),
}
ORDER = tuple(FLAVOUR_ADDS)


@dataclass(frozen=True)
class BaseChoice:
    """The base an image is written on, and why it was chosen."""

    spec: str  # as the user gave it: auto, a flavour, or a reference
    ref: str
    image_id: str
    digest: str | None
    flavour: str | None
    why: str


@dataclass
class PreparedBase:
    """A chosen base read for writing on: its tree, its layer tars, its libraries."""

    choice: BaseChoice
    image: Image
    layers: BaseLayers
    libs: frozenset[str]  # real paths of the base's ELF files
    provided: Provided

    def close(self) -> None:
        self.image.close()


def choose_flavour(needs: Mapping[str, Iterable[str]], libc: str) -> tuple[str, str]:
    """(flavour, why) for kept ELF files' DT_NEEDED (`needs`: path -> sonames)."""
    if libc == "musl":
        return "static", "a musl program brings its own loader and libc; no glibc needed"
    chosen, because = "static", "no kept ELF file needs a shared library of a base"
    for flavour in ORDER[1:]:  # each flavour holds the ones before it
        users = _users(needs, FLAVOUR_ADDS[flavour])
        if users:
            name, path = users[0]
            chosen, because = flavour, f"{name} (needed by {path}) comes with {flavour}"
    return chosen, because


def _users(needs: Mapping[str, Iterable[str]], sonames: frozenset[str]) -> list[tuple[str, str]]:
    return sorted(
        (name, path) for path, names in needs.items() for name in names if name in sonames
    )


def resolve_base(
    engine: ContainerEngine,
    spec: str,
    app: Mapping[str, SymbolVersions],
    arch: str = "",
) -> BaseChoice:
    """The base `spec` names, on the engine, for an image of architecture `arch`
    ("" for the engine's own); a flavour is built when missing."""
    if spec == AUTO:
        needs = {p: sv.needed for p, sv in app.items()}
        flavour, why = choose_flavour(needs, libc_of(app))
        return _flavour_choice(engine, spec, flavour, why, arch)
    if spec in recipe.FLAVOURS:
        return _flavour_choice(engine, spec, spec, f"--base {spec}", arch)
    info = engine.inspect_image(spec)
    if arch and info.architecture and info.architecture != arch:
        raise BaseRefused(
            f"writing on {spec}: it is a linux/{info.architecture} image and the app is"
            f" linux/{arch}; use a base of the app's platform (--base scratch always works)"
        )
    return BaseChoice(spec, spec, info.id, _digest(info.digests), None, f"--base {spec}")


def _flavour_choice(
    engine: ContainerEngine, spec: str, flavour: str, why: str, arch: str
) -> BaseChoice:
    want = _base_arch(arch, spec) if arch else default_arch(engine)
    ref = find_base(engine, flavour, want.name) or _build(engine, flavour, want)
    info = engine.inspect_image(ref)
    return BaseChoice(spec, ref, info.id, _digest(info.digests), flavour, why)


def _base_arch(arch: str, spec: str) -> DebianArch:
    try:
        return arch_of(arch)
    except UsageError as exc:
        raise BaseRefused(
            f"--base {spec}: {exc}; use --base scratch or an image of linux/{arch} (--base REF)"
        ) from exc


def _build(engine: ContainerEngine, flavour: str, arch: DebianArch) -> str:
    """Build the missing base; a failure says how to build it ahead of the run."""
    try:
        return build_base(engine, flavour, arch).tag
    except DebianError as exc:
        native = engine_arch(engine)
        raise DebianError(
            f"{exc} (building the {arch.platform} {flavour} base, which the engine lacks;"
            f" build it ahead with `{build_command(flavour, arch, native)}`)"
        ) from exc


def _digest(digests: Iterable[str]) -> str | None:
    return next(iter(sorted(digests)), None)


def prepare(engine: ContainerEngine, choice: BaseChoice, workdir: Path) -> PreparedBase:
    """Read the base's tree and layers, and the versions its ELF files define."""
    image, files = open_with_layers(choice.ref, saver(engine), workdir)
    try:
        versions = elf_versions(image.tree, (e.path for e in image.tree if e.is_elf))
        layers = BaseLayers(choice.ref, image.id, choice.digest, dict(image.config.raw), files)
        libs = frozenset(versions)
        return PreparedBase(choice, image, layers, libs, provided_by(versions))
    except BaseException:
        image.close()
        raise


def elf_versions(tree: TreeView, paths: Iterable[str]) -> dict[str, SymbolVersions]:
    """Symbol versions of each regular ELF file among `paths` (real paths)."""
    out: dict[str, SymbolVersions] = {}
    for path in sorted(set(paths)):
        entry = tree.get(path)
        if entry is not None and entry.is_regular and entry.is_elf:
            out[path] = read_versions(tree.read_bytes(path))
    return out


def refuse_if_incompatible(
    app: Mapping[str, SymbolVersions], base: PreparedBase
) -> tuple[str, ...]:
    """Raise `BaseRefused` when the base cannot run the app; else its warnings."""
    shipped = {
        sv.soname or posixpath.basename(path): frozenset(sv.defines)
        for path, sv in app.items()
        if (sv.soname or posixpath.basename(path)) not in base.provided.libraries
    }
    verdict = check_base(app, base.provided, shipped)
    if not verdict.ok:
        reasons = verdict.reasons()
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise BaseRefused(
            f"writing on {base.choice.ref}: {reasons[0]}{more}; use another --base "
            f"(--base scratch always works)",
            reasons,
        )
    return verdict.warnings
