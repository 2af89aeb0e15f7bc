"""Image archives in: `docker save` archives and OCI layouts -> config + layer streams.

Sources:
- `docker-archive:PATH`: what `docker save` writes (legacy `manifest.json` with
  `<id>/layer.tar` entries, or the OCI-shaped archive newer engines write; both
  carry `manifest.json`);
- `oci-archive:PATH`: a tar of an OCI image layout;
- `oci:DIR`: an OCI image layout directory.

Every name taken from inside an archive (manifest paths, blob digests) is
treated as hostile: it is only ever looked up, never used to write a file.
Layers are opened as streams and decompressed on the fly (gzip, zstd is
refused with a clear message); nothing here holds a layer in memory.
"""

from __future__ import annotations

import gzip
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from slimmer.errors import ImageNotFound, ImageReadError
from slimmer.image.platforms import Platform, choose, host_platform

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MAX_JSON = 64 << 20


@dataclass(frozen=True)
class LayerSource:
    """One layer of an archive: its diff ID and a way to open its tar stream."""

    index: int
    digest: str
    opener: Callable[[], IO[bytes]]
    stored_bytes: int
    blob: str = ""  # OCI: the manifest's digest of the stored (maybe compressed) blob
    # the file and offset where the layer's tar is stored as it is (uncompressed, in
    # one piece), so its members' bytes can be read from there and need no copy
    origin: tuple[Path, int] | None = None

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        raw = self.opener()
        try:
            yield _decompress(raw, self)
        finally:
            raw.close()


@dataclass(frozen=True)
class ArchiveImage:
    config: dict[str, Any]
    config_digest: str
    layers: tuple[LayerSource, ...]
    repo_tags: tuple[str, ...] = ()
    config_bytes: bytes = b""  # the config file as stored (its sha256 is the image ID)


def compression_of(head: bytes) -> str | None:
    """The compression a layer blob starting with `head` (4 bytes) is stored in."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return None


def _decompress(raw: IO[bytes], layer: LayerSource) -> IO[bytes]:
    kind = compression_of(_peek(raw, 4))
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        raise ImageReadError(
            f"reading layer {layer.index + 1} ({layer.digest[:19]}): "
            "zstd-compressed layers are not supported"
        )
    return raw


def _peek(raw: IO[bytes], n: int) -> bytes:
    pos = raw.tell()
    data = raw.read(n)
    raw.seek(pos)
    return data


# -- docker save archives -----------------------------------------------------


class _TarIndex:
    """The member index of an outer archive file (seekable, read lazily)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._tf = tarfile.open(path, mode="r:")
            self._members = {_clean(m.name): m for m in self._tf.getmembers()}
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ImageReadError(f"reading archive {path}: {exc}") from exc

    def has(self, name: str) -> bool:
        return _clean(name) in self._members

    def plain_offset(self, name: str) -> int | None:
        """Where the bytes of member `name` start in the archive file, when they are a
        plain (not sparse, not compressed) tar; else None."""
        member = self._members.get(_clean(name))
        if member is None or not member.isfile() or member.issparse():
            return None
        with self.open(name) as fh:
            if compression_of(fh.read(4)) is not None:
                return None
        return int(member.offset_data)

    def open(self, name: str) -> IO[bytes]:
        member = self._members.get(_clean(name))
        if member is None or not member.isfile():
            raise ImageReadError(f"reading archive {self.path}: no member {name!r}")
        fh = self._tf.extractfile(member)
        assert fh is not None
        return fh

    def size(self, name: str) -> int:
        member = self._members.get(_clean(name))
        return member.size if member else 0

    def read_json(self, name: str) -> Any:
        return _loads(self.read_bytes(name), f"{self.path}:{name}")

    def read_bytes(self, name: str) -> bytes:
        if self.size(name) > _MAX_JSON:
            raise ImageReadError(f"reading archive {self.path}: {name} is too large")
        with self.open(name) as fh:
            return fh.read()


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _loads(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageReadError(f"reading {where}: invalid JSON ({exc})") from exc


def open_docker_archive(path: Path, platform: Platform | None = None) -> ArchiveImage:
    if not path.is_file():
        raise ImageNotFound(f"reading docker-archive {path}: no such file")
    idx = _TarIndex(path)
    if not idx.has("manifest.json"):
        if idx.has("index.json"):
            return _oci_from(_TarBlobs(idx), str(path), platform)
        raise ImageReadError(f"reading docker-archive {path}: no manifest.json")
    manifest = idx.read_json("manifest.json")
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise ImageReadError(f"reading docker-archive {path}: manifest.json is not a list")
    entry = manifest[0]
    config_name = str(entry.get("Config", ""))
    raw = idx.read_bytes(config_name)
    config = _loads(raw, f"{path}:{config_name}")
    layers = []
    diff_ids = _diff_ids(config)
    for i, name in enumerate(entry.get("Layers") or ()):
        name = str(name)
        if not idx.has(name):
            raise ImageReadError(f"reading docker-archive {path}: missing layer {name!r}")
        digest = diff_ids[i] if i < len(diff_ids) else f"layer:{name}"
        offset = idx.plain_offset(name)
        origin = (path, offset) if offset is not None else None
        layers.append(LayerSource(i, digest, _bind(idx.open, name), idx.size(name), origin=origin))
    _check_layer_count(layers, diff_ids, str(path))
    digest = "sha256:" + Path(config_name).stem.rsplit("/", 1)[-1]
    tags = tuple(entry.get("RepoTags") or ())
    return ArchiveImage(config, digest, tuple(layers), tags, raw)


def _bind(fn: Callable[[str], IO[bytes]], name: str) -> Callable[[], IO[bytes]]:
    return lambda: fn(name)


def _diff_ids(config: Any) -> list[str]:
    if not isinstance(config, dict):
        raise ImageReadError("image config is not a JSON object")
    rootfs = config.get("rootfs") or {}
    return [str(d) for d in rootfs.get("diff_ids") or ()]


def _check_layer_count(layers: list[LayerSource], diff_ids: list[str], where: str) -> None:
    if diff_ids and len(diff_ids) != len(layers):
        raise ImageReadError(
            f"reading {where}: config names {len(diff_ids)} layers, manifest {len(layers)}"
        )


# -- OCI layouts --------------------------------------------------------------


class _DirBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def read_json(self, name: str) -> Any:
        return _loads(self.read_bytes(name), f"{self.root}/{name}")

    def read_bytes(self, name: str) -> bytes:
        p = self.root / name
        if not p.is_file():
            raise ImageReadError(f"reading OCI layout {self.root}: no {name}")
        if p.stat().st_size > _MAX_JSON:
            raise ImageReadError(f"reading OCI layout {self.root}: {name} is too large")
        return p.read_bytes()

    def has(self, name: str) -> bool:
        return (self.root / name).is_file()

    def open(self, name: str) -> IO[bytes]:
        return open(self.root / name, "rb")

    def size(self, name: str) -> int:
        return (self.root / name).stat().st_size


class _TarBlobs:
    def __init__(self, idx: _TarIndex) -> None:
        self.idx = idx

    def read_json(self, name: str) -> Any:
        return self.idx.read_json(name)

    def read_bytes(self, name: str) -> bytes:
        return self.idx.read_bytes(name)

    def has(self, name: str) -> bool:
        return self.idx.has(name)

    def open(self, name: str) -> IO[bytes]:
        return self.idx.open(name)

    def size(self, name: str) -> int:
        return self.idx.size(name)


def _blob_name(digest: Any, where: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ImageReadError(f"reading {where}: invalid blob digest {digest!r}")
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _oci_from(blobs: _DirBlobs | _TarBlobs, where: str, platform: Platform | None) -> ArchiveImage:
    index = blobs.read_json("index.json")
    manifest = _pick_manifest(blobs, index, where, platform)
    config_digest = (manifest.get("config") or {}).get("digest")
    raw = blobs.read_bytes(_blob_name(config_digest, where))
    config = _loads(raw, f"{where}: config")
    layers = []
    diff_ids = _diff_ids(config)
    for i, desc in enumerate(manifest.get("layers") or ()):
        name = _blob_name((desc or {}).get("digest"), where)
        if not blobs.has(name):
            raise ImageReadError(f"reading {where}: missing layer blob {name}")
        digest = diff_ids[i] if i < len(diff_ids) else str(desc.get("digest"))
        blob = str(desc.get("digest"))
        layers.append(LayerSource(i, digest, _bind(blobs.open, name), blobs.size(name), blob))
    _check_layer_count(layers, diff_ids, where)
    tags = tuple(
        str((m.get("annotations") or {}).get("org.opencontainers.image.ref.name", ""))
        for m in index.get("manifests") or ()
        if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
    )
    return ArchiveImage(config, str(config_digest), tuple(layers), tags, raw)


def _pick_manifest(
    blobs: _DirBlobs | _TarBlobs, index: Any, where: str, platform: Platform | None
) -> dict[str, Any]:
    """Follow index.json (and nested indexes) to one image manifest.

    An index whose entries name platforms gives the entry of `platform` (default: this
    host's); one it lacks is `ImageNotFound` naming what it has. Entries without a
    platform (a plain layout of one image) give the first.
    """
    for _ in range(8):
        manifests = (index or {}).get("manifests") if isinstance(index, dict) else None
        if not manifests:
            raise ImageReadError(f"reading {where}: index has no manifests")
        described = [m for m in manifests if isinstance(m, dict) and m.get("platform")]
        chosen = (
            choose(described, platform or host_platform(), where) if described else manifests[0]
        )
        doc = blobs.read_json(_blob_name(chosen.get("digest"), where))
        if not isinstance(doc, dict):
            raise ImageReadError(f"reading {where}: manifest is not a JSON object")
        if "layers" in doc:
            return doc
        index = doc
    raise ImageReadError(f"reading {where}: indexes nested too deeply")


def open_oci_dir(path: Path, platform: Platform | None = None) -> ArchiveImage:
    if not (path / "index.json").is_file():
        raise ImageNotFound(f"reading OCI layout {path}: no index.json")
    return _oci_from(_DirBlobs(path), str(path), platform)


def open_oci_archive(path: Path, platform: Platform | None = None) -> ArchiveImage:
    if not path.is_file():
        raise ImageNotFound(f"reading oci-archive {path}: no such file")
    return _oci_from(_TarBlobs(_TarIndex(path)), str(path), platform)


def open_archive(transport: str, path: Path, platform: Platform | None = None) -> ArchiveImage:
    """The image in the file at `path`; of an OCI index, the image of `platform` (default:
    this host's). A docker-archive holds one image per tag, not per platform, unless
    it is an OCI layout in a tar (as `docker save` of containerd's store writes)."""
    if transport == "docker-archive":
        return open_docker_archive(path, platform)
    if transport == "oci-archive":
        return open_oci_archive(path, platform)
    if transport == "oci":
        return open_oci_dir(path, platform)
    raise ImageReadError(f"unknown image transport {transport!r}")
