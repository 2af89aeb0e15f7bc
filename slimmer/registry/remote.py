"""An image read straight from a registry, as an `ArchiveImage`: no engine, no pull.

Opening one fetches the manifest (and, for an index, the chosen platform's
manifest) and the config blob; each layer blob is fetched only when its stream
is opened, and streamed, never stored whole. So a question about the config
alone fetches no layer at all.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from slimmer.errors import ImageReadError, RegistryImageNotFound
from slimmer.image.archive import ArchiveImage, LayerSource
from slimmer.image.platforms import Platform, choose, host_platform
from slimmer.registry.client import MANIFEST_TYPES, Manifest, RegistryClient
from slimmer.registry.credentials import lookup
from slimmer.registry.refs import RegistryRef, parse_registry_ref

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach registries: an extra CA (`--registry-ca`), the platform to pick
    from an index (`--platform`; None: this host's), and the environment in which
    Docker's config.json is looked up (None: the process's)."""

    ca_file: Path | None = None
    platform: Platform | None = None
    env: dict[str, str] | None = None
    keep_blobs: bool = False  # for commands that read each layer twice (see `remote_opener`)


@dataclass(frozen=True)
class RemoteImage:
    """What opening a registry image found: the image, the manifest it came from, and
    the index it was chosen from (when there was one)."""

    archive: ArchiveImage
    manifest: Manifest
    index: Manifest | None


def connect(host: str, opts: RegistryOptions) -> RegistryClient:
    """A client for `host` with the credentials config.json gives for it."""
    return RegistryClient(host, lookup(host, opts.env), opts.ca_file)


def open_remote(
    client: RegistryClient, ref: RegistryRef, opts: RegistryOptions, keep: Path | None = None
) -> RemoteImage:
    """Read `ref`'s manifest (choosing the platform from an index) and config. With
    `keep` (a directory), each layer blob read to its end is kept there, and opening
    it again reads that copy: a second pass over the layers fetches nothing."""
    where = str(ref)
    top = client.manifest(ref.repository, ref.reference)
    index, manifest = None, top
    for _ in range(4):  # an index may point at an index; a few levels at most
        if not manifest.is_index:
            break
        index = manifest
        entries = manifest.json().get("manifests") or []
        if not isinstance(entries, list):
            raise ImageReadError(f"reading {where}: the index's manifests is not a list")
        entry = choose(entries, opts.platform or host_platform(), where, RegistryImageNotFound)
        manifest = client.manifest(ref.repository, str(entry.get("digest", "")))
    if manifest.media_type not in MANIFEST_TYPES:
        raise ImageReadError(f"reading {where}: indexes nested too deeply")
    return RemoteImage(_archive(client, ref, manifest.json(), where, keep), manifest, index)


def _archive(
    client: RegistryClient, ref: RegistryRef, doc: dict[str, Any], where: str, keep: Path | None
) -> ArchiveImage:
    config_digest = _digest((doc.get("config") or {}).get("digest"), where)
    raw = client.blob(ref.repository, config_digest)
    try:
        config = json.loads(raw)
    except ValueError:
        raise ImageReadError(f"reading {where}: the config is not JSON") from None
    if not isinstance(config, dict):
        raise ImageReadError(f"reading {where}: the config is not a JSON object")
    diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or ()]
    descs = doc.get("layers") or []
    if not isinstance(descs, list) or not all(isinstance(d, dict) for d in descs):
        raise ImageReadError(f"reading {where}: the manifest's layers is not a list")
    for desc in descs:
        _digest(desc.get("digest"), where)
    if diff_ids and len(diff_ids) != len(descs):
        raise ImageReadError(
            f"reading {where}: config names {len(diff_ids)} layers, manifest {len(descs)}"
        )
    layers = tuple(
        LayerSource(
            i,
            diff_ids[i] if i < len(diff_ids) else str(desc.get("digest")),
            _opener(client, ref.repository, str(desc.get("digest")), keep),
            int(desc.get("size") or 0),
            str(desc.get("digest")),
        )
        for i, desc in enumerate(descs)
    )
    return ArchiveImage(config, config_digest, layers, (_tag_of(ref),), raw)


def _digest(value: Any, where: str) -> str:
    """A digest from a manifest (hostile input): only `sha256:<64 hex>` is used."""
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise ImageReadError(f"reading {where}: invalid blob digest {str(value)[:80]!r}")
    return value


def _opener(
    client: RegistryClient, repo: str, digest: str, keep: Path | None
) -> Callable[[], IO[bytes]]:
    if keep is None:
        return lambda: client.open_blob(repo, digest)
    copy = keep / digest.replace(":", "-")  # checked by `_digest`: no path parts

    def open_kept() -> IO[bytes]:
        if copy.is_file():
            return open(copy, "rb")
        return client.open_blob(repo, digest, copy_to=copy)

    return open_kept


def _tag_of(ref: RegistryRef) -> str:
    return str(ref)


def remote_opener(
    opts: RegistryOptions,
) -> Callable[[str], tuple[ArchiveImage, Callable[[], None]]]:
    """For `image.reader.open_image`: a function from `HOST/REPO:TAG` to the opened
    image and the function that closes its connection. With `opts.keep_blobs` the
    layer blobs are kept in a temporary directory (removed by that function) for a
    second pass: `slim validate` reads each blob as stored and as a tar, `slim check`
    the tree and then the gzip estimate."""

    def open_one(name: str) -> tuple[ArchiveImage, Callable[[], None]]:
        ref = parse_registry_ref(name)
        client = connect(ref.host, opts)
        keep = Path(tempfile.mkdtemp(prefix="slimmer-blobs-")) if opts.keep_blobs else None

        def close() -> None:
            client.close()
            if keep is not None:
                shutil.rmtree(keep, ignore_errors=True)

        try:
            return open_remote(client, ref, opts, keep).archive, close
        except BaseException:
            close()
            raise

    return open_one
