"""Build a distroless-style base image on the engine, or find one already there.

`build_base` resolves the flavour's packages on the Debian mirror, checks the
recipe's dependencies, downloads and unpacks the `.deb`s (cached), assembles
the tree (`rootfs`), writes it as ONE layer with `write_layer`, adds a config
(os linux, amd64, distroless's `Env`, `User` "", `WorkingDir` "/", labels
naming the flavour and its packages), loads the archive and tags it
`base_tag(flavour)`. Nothing time- or host-dependent goes in: every mtime comes
from a package member or the recipe, the config's dates are the epoch, so the
same packages (and slimmer version, which is a label) give the same image ID.
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
from slimmer.image.store import ContentStore
from slimmer.image.writer import assemble_archive, sha256_file, write_layer
from slimmer.model import VERSION_LABEL

FLAVOUR_LABEL = "io.slimmer.base.flavour"
PACKAGES_LABEL = "io.slimmer.base.packages"
CA_LABEL = "io.slimmer.base.ca-certificates"
EPOCH = "1970-01-01T00:00:00Z"


def base_tag(flavour: str) -> str:
    """The tag slimmer gives its own build of `flavour`."""
    return f"slimmer/distroless-{recipe.flavour(flavour).name}:debian{recipe.DEBIAN_VERSION}"


def distroless_ref(flavour: str) -> str:
    """Google's image of `flavour` ("gcr.io/distroless/base-nossl-debian12")."""
    return f"gcr.io/distroless/{recipe.flavour(flavour).name}-debian{recipe.DEBIAN_VERSION}"


@dataclass(frozen=True)
class BaseImage:
    """A base built and tagged on the engine. `packages` are (name, version)
    sorted by name; `size` is the layer's uncompressed tar bytes; `files` the
    number of layer members."""

    flavour: str
    tag: str
    image_id: str
    packages: tuple[tuple[str, str], ...]
    size: int
    files: int
    libraries: tuple[Library, ...] = ()


def find_base(engine: ContainerEngine, flavour: str) -> str | None:
    """The reference of a `flavour` base the engine has: Google's image when
    present, else slimmer's own tag, else None."""
    for ref in (distroless_ref(flavour), base_tag(flavour)):
        if engine.image_exists(ref):
            return ref
    return None


def build_base(
    engine: ContainerEngine,
    flavour: str,
    *,
    workdir: Path | None = None,
    cache_dir: Path | None = None,
    mirror: Mirror | None = None,
    strip_docs: bool = True,
    opener: Opener = urlopen,
) -> BaseImage:
    """Build `flavour` from Debian 12 packages, load it and tag it `base_tag`.
    Scratch files live in a directory under `workdir` (default: the system's
    temporary directory), removed on return; `.deb`s stay in `cache_dir`."""
    name = recipe.flavour(flavour).name
    work = Path(tempfile.mkdtemp(prefix="slimmer-base-", dir=workdir))
    try:
        store = ContentStore(work / "store")
        cache = cache_dir or default_cache_dir()
        rootfs = prepare_rootfs(name, store, cache, mirror or Mirror.from_env(), strip_docs, opener)
        libraries = provided_libraries(rootfs_tree(rootfs, store))
        image_id, size, files = _write_and_load(engine, rootfs, store, work)
        tag = base_tag(name)
        engine.tag_image(image_id, tag)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    packages = tuple((p.name, p.version) for p in rootfs.packages)
    return BaseImage(name, tag, image_id, packages, size, files, libraries)


def prepare_rootfs(
    flavour: str,
    store: ContentStore,
    cache_dir: Path,
    mirror: Mirror,
    strip_docs: bool = True,
    opener: Opener = urlopen,
) -> Rootfs:
    """The tree of `flavour` (no engine needed): resolve, check, fetch, unpack, assemble."""
    names = recipe.downloads_of(flavour)
    records = resolve_packages(names, mirror, cache_dir, opener)
    problems = recipe.missing_depends(flavour, {n: r.depends for n, r in records.items()})
    if problems:
        raise DebianError(f"checking the {flavour} recipe: {'; '.join(problems)}")
    debs = {n: _unpack(records[n], cache_dir, store, _keep(n, strip_docs), opener) for n in names}
    return assemble(flavour, debs, store)


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
    said = (deb.control.get("Package"), deb.control.get("Version"))
    if said != (record.name, record.version):
        raise DebianError(
            f"unpacking {record.deb_name}: its control file says {said[0]} {said[1]},"
            f" the index {record.name} {record.version}"
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
    return {
        "architecture": "amd64",
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
