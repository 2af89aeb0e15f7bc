"""An image read straight from a registry, as an `ArchiveImage`: no engine, no pull.

Opening one fetches the manifest (and, for an index, the chosen platform's
manifest) and the config blob; each layer blob is fetched only when its stream
is opened, and streamed, never stored whole. So a question about the config
alone fetches no layer at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from slimmer.errors import ImageReadError
from slimmer.image.archive import ArchiveImage, LayerSource
from slimmer.registry.client import MANIFEST_TYPES, Manifest, RegistryClient
from slimmer.registry.credentials import lookup
from slimmer.registry.platforms import Platform, choose, host_platform
from slimmer.registry.refs import RegistryRef, parse_registry_ref


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach registries: an extra CA (`--registry-ca`), the platform to pick
    from an index (`--platform`; None: this host's), and the environment in which
    Docker's config.json is looked up (None: the process's)."""

    ca_file: Path | None = None
    platform: Platform | None = None
    env: dict[str, str] | None = None


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


def open_remote(client: RegistryClient, ref: RegistryRef, opts: RegistryOptions) -> RemoteImage:
    """Read `ref`'s manifest (choosing the platform from an index) and config."""
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
        entry = choose(entries, opts.platform or host_platform(), where)
        manifest = client.manifest(ref.repository, str(entry.get("digest", "")))
    if manifest.media_type not in MANIFEST_TYPES:
        raise ImageReadError(f"reading {where}: indexes nested too deeply")
    return RemoteImage(_archive(client, ref, manifest.json(), where), manifest, index)


def _archive(
    client: RegistryClient, ref: RegistryRef, doc: dict[str, Any], where: str
) -> ArchiveImage:
    config_digest = str((doc.get("config") or {}).get("digest", ""))
    raw = client.blob(ref.repository, config_digest)
    try:
        config = json.loads(raw)
    except ValueError:
        raise ImageReadError(f"reading {where}: the config is not JSON") from None
    if not isinstance(config, dict):
        raise ImageReadError(f"reading {where}: the config is not a JSON object")
    diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or ()]
    descs = doc.get("layers") or []
    if diff_ids and len(diff_ids) != len(descs):
        raise ImageReadError(
            f"reading {where}: config names {len(diff_ids)} layers, manifest {len(descs)}"
        )
    layers = tuple(
        LayerSource(
            i,
            diff_ids[i] if i < len(diff_ids) else str(desc.get("digest")),
            _opener(client, ref.repository, str(desc.get("digest"))),
            int(desc.get("size") or 0),
            str(desc.get("digest")),
        )
        for i, desc in enumerate(descs)
    )
    return ArchiveImage(config, config_digest, layers, (_tag_of(ref),), raw)


def _opener(client: RegistryClient, repo: str, digest: str) -> Callable[[], IO[bytes]]:
    return lambda: client.open_blob(repo, digest)


def _tag_of(ref: RegistryRef) -> str:
    return str(ref)


def remote_opener(
    opts: RegistryOptions,
) -> Callable[[str], tuple[ArchiveImage, Callable[[], None]]]:
    """For `image.reader.open_image`: a function from `HOST/REPO:TAG` to the opened
    image and the function that closes its connection."""

    def open_one(name: str) -> tuple[ArchiveImage, Callable[[], None]]:
        ref = parse_registry_ref(name)
        client = connect(ref.host, opts)
        try:
            return open_remote(client, ref, opts).archive, client.close
        except BaseException:
            client.close()
            raise

    return open_one
