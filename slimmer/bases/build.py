"""Build a distroless-style base image on the engine, or find one already there.

`build_base` resolves the flavour's packages for one architecture (`arch`:
amd64 or arm64, default the engine's own) on the Debian mirror, checks the
recipe's dependencies, downloads and unpacks the `.deb`s (cached), assembles
the tree (`rootfs`), writes it as ONE layer with `write_layer`, adds a config
(os linux, the architecture and its variant, distroless's `Env`, `User` "",
`WorkingDir` "/", labels naming the flavour and its packages), loads the
archive and tags it. Nothing time- or host-dependent goes in: every mtime comes
from a package member or the recipe, the config's dates are the epoch, so the
same packages (and slimmer version, which is a label) give the same image ID.

Tags: the engine keeps one image per tag, so each architecture has its own,
`slimmer/distroless-FLAVOUR:debian12-ARCH`; a build for the engine's own
architecture is also tagged `slimmer/distroless-FLAVOUR:debian12`, the name
slimmer has always used (and `find_base` returns for it). A tag thus names the
same architecture on any engine, and the short name stays the native one.
`find_base` takes an image only when its config says the architecture asked for.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimmer import __version__
from slimmer.bases import recipe
from slimmer.bases.arch import ARCHES, DebianArch, arch_of
from slimmer.bases.control import PackageRecord
from slimmer.bases.debfile import DebContents, Keep, read_deb
from slimmer.bases.debian import (
    Mirror,
    Opener,
    default_cache_dir,
    fetch_deb,
    resolve_packages,
    urlopen,
)
from slimmer.bases.errors import DebianError
from slimmer.bases.libraries import Library, provided_libraries
from slimmer.bases.rootfs import Rootfs, assemble, rootfs_tree
from slimmer.engine_api import ContainerEngine
from slimmer.errors import UsageError
from slimmer.image.store import ContentStore
from slimmer.image.writer import assemble_archive, sha256_file, write_layer
from slimmer.model import VERSION_LABEL

FLAVOUR_LABEL = "io.slimmer.base.flavour"
PACKAGES_LABEL = "io.slimmer.base.packages"
CA_LABEL = "io.slimmer.base.ca-certificates"
EPOCH = "1970-01-01T00:00:00Z"


def base_tag(flavour: str, arch: str = "") -> str:
    """The tag slimmer gives its own build of `flavour` for `arch`
    ("slimmer/distroless-base:debian12-arm64"); without `arch`, the short tag a
    build for the engine's own architecture gets too ("...:debian12")."""
    tail = f"-{arch}" if arch else ""
    return f"slimmer/distroless-{recipe.flavour(flavour).name}:debian{recipe.DEBIAN_VERSION}{tail}"


def distroless_ref(flavour: str, arch: str = "") -> str:
    """Google's image of `flavour` ("gcr.io/distroless/base-nossl-debian12"); with
    `arch`, its tag for that architecture alone ("...-debian12:latest-arm64")."""
    ref = f"gcr.io/distroless/{recipe.flavour(flavour).name}-debian{recipe.DEBIAN_VERSION}"
    return f"{ref}:latest-{arch}" if arch else ref


@dataclass(frozen=True)
class BaseImage:
    """A base built and tagged on the engine. `tag` is the one `find_base` returns
    for it, `tags` every tag it was given; `packages` are (name, version) sorted
    by name; `size` is the layer's uncompressed tar bytes; `files` the number of
    layer members."""

    flavour: str
    arch: str
    tag: str
    tags: tuple[str, ...]
    image_id: str
    packages: tuple[tuple[str, str], ...]
    size: int
    files: int
    libraries: tuple[Library, ...] = ()


@dataclass(frozen=True)
class BaseListing:
    """One flavour of one architecture, as `slim bases list` shows it: the
    engine's image of it (`ref`, "" when it has none) and the command that builds it."""

    flavour: str
    summary: str
    platform: str
    ref: str
    build: str


def list_bases(engine: ContainerEngine) -> list[BaseListing]:
    """Every flavour of every architecture, the engine's own architecture first."""
    native = engine_arch(engine)
    arches = sorted(ARCHES.values(), key=lambda a: a != native)  # stable: native first
    return [
        BaseListing(
            f.name,
            f.summary,
            arch.platform,
            find_base(engine, f.name, arch.name) or "",
            build_command(f.name, arch, native),
        )
        for arch in arches
        for f in recipe.FLAVOURS.values()
    ]


def find_base(engine: ContainerEngine, flavour: str, arch: str) -> str | None:
    """The reference of a `flavour` base for `arch` the engine has: Google's image
    when present (its plain tag, then `latest-ARCH`), else slimmer's own (the
    short tag, then the architecture's), else None. An image whose config names
    another architecture is passed over."""
    refs = (
        distroless_ref(flavour),
        distroless_ref(flavour, arch),
        base_tag(flavour),
        base_tag(flavour, arch),
    )
    for ref in refs:
        if engine.image_exists(ref) and engine.inspect_image(ref).architecture == arch:
            return ref
    return None


def base_tags(flavour: str, arch: DebianArch, native: DebianArch | None) -> tuple[str, ...]:
    """The tags a build of `flavour` for `arch` gets on an engine of `native`
    architecture (None: one slimmer builds no bases for); the first is the one
    `find_base` returns (module docstring)."""
    own = base_tag(flavour, arch.name)
    return (base_tag(flavour), own) if arch == native else (own,)


def build_command(flavour: str, arch: DebianArch, native: DebianArch | None) -> str:
    """The command that builds `flavour` for `arch` on an engine of `native` architecture."""
    platform = "" if arch == native else f"--platform {arch.platform} "
    return f"slim bases build {platform}{flavour}"


def engine_arch(engine: ContainerEngine) -> DebianArch | None:
    """The architecture of the engine's own platform; None when slimmer builds no
    bases for it."""
    try:
        return default_arch(engine)
    except UsageError:
        return None


def default_arch(engine: ContainerEngine) -> DebianArch:
    """The architecture a base is built for when none is named: the engine's own
    (`UsageError` when slimmer builds no bases for it: name one)."""
    os_, name = engine.platform()
    return arch_of(name, os_ or "linux")


def build_base(
    engine: ContainerEngine,
    flavour: str,
    arch: DebianArch | None = None,
    *,
    workdir: Path | None = None,
    cache_dir: Path | None = None,
    mirror: Mirror | None = None,
    strip_docs: bool = True,
    opener: Opener = urlopen,
) -> BaseImage:
    """Build `flavour` for `arch` (default: the engine's own) from Debian 12
    packages, load it and tag it (module docstring). Scratch files live in a
    directory under `workdir` (default: the system's temporary directory),
    removed on return; `.deb`s stay in `cache_dir`."""
    name = recipe.flavour(flavour).name
    native = engine_arch(engine)
    arch = arch or default_arch(engine)
    work = Path(tempfile.mkdtemp(prefix="slimmer-base-", dir=workdir))
    try:
        store = ContentStore(work / "store")
        cache = cache_dir or default_cache_dir()
        mirror = mirror or Mirror.from_env()
        rootfs = prepare_rootfs(name, arch, store, cache, mirror, strip_docs, opener)
        libraries = provided_libraries(rootfs_tree(rootfs, store), arch.search_dirs)
        image_id, size, files = _write_and_load(engine, rootfs, store, work)
        tags = base_tags(name, arch, native)
        for tag in tags:
            engine.tag_image(image_id, tag)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    packages = tuple((p.name, p.version) for p in rootfs.packages)
    return BaseImage(name, arch.name, tags[0], tags, image_id, packages, size, files, libraries)


def prepare_rootfs(
    flavour: str,
    arch: DebianArch,
    store: ContentStore,
    cache_dir: Path,
    mirror: Mirror,
    strip_docs: bool = True,
    opener: Opener = urlopen,
) -> Rootfs:
    """The `arch` tree of `flavour` (no engine needed): resolve, check, fetch,
    unpack, assemble."""
    names = recipe.downloads_of(flavour)
    records = resolve_packages(names, arch, mirror, cache_dir, opener)
    problems = recipe.missing_depends(flavour, {n: r.depends for n, r in records.items()})
    if problems:
        raise DebianError(f"checking the {flavour} recipe: {'; '.join(problems)}")
    debs = {n: _unpack(records[n], cache_dir, store, _keep(n, strip_docs), opener) for n in names}
    return assemble(flavour, arch, debs, store)


def _keep(package: str, strip_docs: bool) -> Keep:
    if package == recipe.CA_PACKAGE:
        return recipe.is_ca_source
    if strip_docs:
        return lambda path: not recipe.is_dropped(path)
    return lambda path: True


def _unpack(
    record: PackageRecord, cache_dir: Path, store: ContentStore, keep: Keep, opener: Opener
) -> DebContents:
    deb = read_deb(fetch_deb(record, cache_dir, opener), store, keep)
    said = tuple(deb.control.get(f) for f in ("Package", "Version", "Architecture"))
    if said != (record.name, record.version, record.architecture):
        raise DebianError(
            f"unpacking {record.deb_name}: its control file says {' '.join(said)},"
            f" the index {record.name} {record.version} {record.architecture}"
        )
    return deb


def _write_and_load(
    engine: ContainerEngine, rootfs: Rootfs, store: ContentStore, work: Path
) -> tuple[str, int, int]:
    """Write the layer and archive, load it; (image ID, layer bytes, members)."""
    layer = work / "layer.tar"
    with open(layer, "wb") as out:
        files, _ = write_layer(rootfs.entries, store, out)
    config = base_config(rootfs, "sha256:" + sha256_file(layer))
    archive = assemble_archive([layer], config, work / "image.tar")
    with open(archive.archive, "rb") as fh:
        engine.load_image(fh)
    return archive.image_id, archive.layer_bytes, files


def base_config(rootfs: Rootfs, layer_digest: str) -> dict[str, Any]:
    """The image config of `rootfs` written as the layer with `layer_digest`."""
    summary = recipe.flavour(rootfs.flavour).summary
    variant = {"variant": rootfs.arch.variant} if rootfs.arch.variant else {}
    return {
        "architecture": rootfs.arch.name,
        **variant,
        "os": "linux",
        "config": {
            "Env": list(recipe.ENV),
            "User": "",
            "WorkingDir": "/",
            "Labels": base_labels(rootfs, summary),
        },
        "created": EPOCH,
        "history": [
            {
                "created": EPOCH,
                "created_by": f"slimmer {__version__}: distroless {rootfs.flavour}"
                f" from Debian {recipe.DEBIAN_VERSION} packages",
                "comment": "slimmer",
            }
        ],
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }


def base_labels(rootfs: Rootfs, summary: str) -> Mapping[str, str]:
    return {
        FLAVOUR_LABEL: rootfs.flavour,
        PACKAGES_LABEL: " ".join(f"{p.name}={p.version}" for p in rootfs.packages),
        CA_LABEL: rootfs.ca_version,
        VERSION_LABEL: __version__,
        "org.opencontainers.image.title": f"distroless-{rootfs.flavour}",
        "org.opencontainers.image.description": (
            f"distroless-style {rootfs.flavour} base (Debian {recipe.DEBIAN_VERSION}): {summary}"
        ),
    }
