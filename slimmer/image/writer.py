"""Write the slim image: one deterministic layer and a config derived from the source.

The layer is a PAX tar sorted by path, each member with its original mode,
owner, mtime and xattrs (`security.capability` included); hardlinks stay
hardlinks when their target is kept too. The config keeps the source's runtime
settings and adds labels naming the source image and the slimmer version.
Nothing time- or host-dependent goes in, so the same input and options give
the same image ID.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

from slimmer import __version__
from slimmer.errors import SlimError
from slimmer.image.store import ContentStore
from slimmer.image.validate import validate_archive
from slimmer.model import (
    BASE_ID_LABEL,
    OCI_BASE_DIGEST,
    OCI_BASE_NAME,
    SOURCE_LABEL,
    VERSION_LABEL,
    EntryType,
    FileEntry,
    ImageConfig,
    TreeView,
)

KEPT_CONFIG = (
    "Entrypoint",
    "Cmd",
    "Env",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
    "ArgsEscaped",
)

COPY_CHUNK = 1 << 20  # bytes per copy of a file into a tar (tarfile's own is 16 KiB)

_TAR_TYPES = {
    EntryType.FILE: tarfile.REGTYPE,
    EntryType.DIR: tarfile.DIRTYPE,
    EntryType.SYMLINK: tarfile.SYMTYPE,
    EntryType.HARDLINK: tarfile.LNKTYPE,
    EntryType.CHAR: tarfile.CHRTYPE,
    EntryType.BLOCK: tarfile.BLKTYPE,
    EntryType.FIFO: tarfile.FIFOTYPE,
}


@dataclass(frozen=True)
class WrittenImage:
    """A `docker save`-format archive on disk, ready to load."""

    archive: Path
    image_id: str
    layer_digest: str
    layer_bytes: int
    files: int
    content_bytes: int


class ExtraFile(Protocol):
    """A file written into the slim image that the source does not hold as-is (the
    planner's `plan.keep.GeneratedFile` is one)."""

    @property
    def path(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def mode(self) -> int: ...
    @property
    def mtime(self) -> int: ...


def kept_entries(
    tree: TreeView,
    keep: Iterable[str],
    store: ContentStore,
    generated: Iterable[ExtraFile] = (),
) -> list[FileEntry]:
    """The entries to write: the kept paths of `tree`, with generated files in place."""
    entries = {p: e for p in set(keep) if p != "/" and (e := tree.get(p)) is not None}
    for gen in generated:
        key = store.put_bytes(gen.data)
        entries[gen.path] = FileEntry(
            gen.path,
            EntryType.FILE,
            size=len(gen.data),
            mode=gen.mode,
            mtime=gen.mtime,
            content=key,
        )
    return list(entries.values())


def write_layer(
    entries: Iterable[FileEntry],
    store: ContentStore,
    out: IO[bytes],
    taken: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Write `entries` as one layer tar sorted by path; return (members, content bytes).
    `taken` is told each file's bytes once they are written (a progress meter)."""
    entries = sorted(entries, key=lambda e: e.path.encode("utf-8", "surrogateescape"))
    # hardlink group -> member name written; only files some hardlink names need it
    linked = {e.link for e in entries if e.type is EntryType.HARDLINK}
    written_at: dict[tuple[object, ...], str] = {}
    count = content = 0
    with tarfile.TarFile(
        fileobj=out,
        mode="w",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
        copybufsize=COPY_CHUNK,
    ) as tf:
        for entry in entries:
            info, data = _member(entry, written_at, store, linked)
            if data is None:
                tf.addfile(info)
            else:
                with data:
                    tf.addfile(info, data)
                if taken is not None:
                    taken(info.size)
            count += 1
            content += info.size
    return count, content


def _member(
    entry: FileEntry,
    written_at: dict[tuple[object, ...], str],
    store: ContentStore,
    linked: set[str],
) -> tuple[tarfile.TarInfo, IO[bytes] | None]:
    name = entry.path.lstrip("/")
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime = entry.mode, entry.uid, entry.gid, entry.mtime
    info.uname = info.gname = ""
    info.type = _TAR_TYPES[entry.type]
    if entry.xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in entry.xattrs}
    if entry.type is EntryType.SYMLINK:
        info.linkname = entry.link
    elif entry.type in (EntryType.CHAR, EntryType.BLOCK):
        info.devmajor, info.devminor = entry.devmajor, entry.devminor
    elif entry.is_regular:
        # Files of one hardlink group share the first path, bytes and inode metadata.
        first = entry.link if entry.type is EntryType.HARDLINK else entry.path
        group = (first, entry.content, entry.mode, entry.uid, entry.gid, entry.xattrs)
        if group in written_at:
            info.type, info.linkname = tarfile.LNKTYPE, written_at[group]
            return info, None
        if first in linked:
            written_at[group] = name
        info.type, info.size = tarfile.REGTYPE, entry.size
        if entry.size:
            if entry.content is None:
                raise SlimError(f"writing the slim image: the bytes of {entry.path} were not kept")
            return info, store.open(entry.content)
    return info, None


def slim_config(
    source: ImageConfig,
    layer_digest: str,
    source_id: str,
    summary: str,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The slim image's config: the source's runtime settings, one layer, our labels."""
    container = {k: source.container[k] for k in KEPT_CONFIG if k in source.container}
    # The source's own base annotations name layers the result no longer shares.
    carried = {
        k: v
        for k, v in dict(container.get("Labels") or {}).items()
        if k not in (OCI_BASE_NAME, OCI_BASE_DIGEST)
    }
    container["Labels"] = {
        **carried,
        **dict(labels or {}),
        SOURCE_LABEL: source_id,
        VERSION_LABEL: __version__,
    }
    created = str(source.raw.get("created") or "1970-01-01T00:00:00Z")
    doc: dict[str, Any] = {
        "architecture": source.architecture or "amd64",
        "os": source.os or "linux",
        "config": container,
        "created": created,
        "history": [{"created": created, "created_by": summary, "comment": "slimmer"}],
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    if source.raw.get("variant"):
        doc["variant"] = source.raw["variant"]
    return doc


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class BaseLayers:
    """A base image to write on: its config, and its layer tars byte for byte (so the
    result shares them with the base on disk and on the wire)."""

    ref: str
    image_id: str
    digest: str | None  # a registry digest (name@sha256:...) when the engine knows one
    config: Mapping[str, Any]
    layer_files: tuple[Path, ...]


@dataclass(frozen=True)
class WriteRequest:
    """Everything one written image needs: `entries` (their bytes in `store`) as one
    layer, on `base`'s layers when given (else on nothing), with `source`'s runtime
    config and `labels`, as a `docker save` archive under `workdir`. `taken` is told
    each file's bytes once written (a progress meter)."""

    entries: tuple[FileEntry, ...]
    store: ContentStore
    source: ImageConfig
    source_id: str
    workdir: Path
    labels: Mapping[str, str] = field(default_factory=dict)
    base: BaseLayers | None = None
    taken: Callable[[int], None] | None = None


def write_image(request: WriteRequest) -> WrittenImage:
    """Write the image `request` describes: the one write step of every image slimmer
    makes (the slim image on scratch or on a base, an archive flattened to run).

    On a base, the base's layers are copied unchanged and the app layer comes last;
    rootfs and history are the base's, then ours, and the config names the base
    (`org.opencontainers.image.base.name`/`.digest`, `io.slimmer.base.id`)."""
    layer_path = layer_file(request.workdir)
    with open(layer_path, "wb") as raw:
        out = _Hashing(raw)
        files, content = write_layer(
            request.entries, request.store, cast(IO[bytes], out), request.taken
        )
    layer_digest = "sha256:" + out.hexdigest()
    config = slim_config(
        request.source,
        layer_digest,
        request.source_id,
        _history_line(request, files),
        {**request.labels, **_base_labels(request.base)},
    )
    base = request.base
    base_files = base.layer_files if base is not None else ()
    if base is not None:
        base_rootfs = list((base.config.get("rootfs") or {}).get("diff_ids") or [])
        config["rootfs"]["diff_ids"] = [*base_rootfs, layer_digest]
        config["history"] = [*(base.config.get("history") or []), *config["history"]]
    written = assemble_archive([*base_files, layer_path], config, request.workdir / "image.tar")
    layer_path.unlink()
    layer_bytes = written.layer_bytes - sum(f.stat().st_size for f in base_files)
    return WrittenImage(
        written.archive, written.image_id, layer_digest, layer_bytes, files, content
    )


def layer_file(workdir: Path) -> Path:
    """Where `write_image` writes the image's own layer tar, front to back, before the
    archive takes it in: a reader may follow it there while it is written."""
    return workdir / "layer.tar"


def without_layers(archive: Path) -> bytes:
    """The `docker save` archive at `archive` without its layer tars: the config and
    the manifest, which the engine's `docker load` takes for an image whose layers it
    holds already (it looks each up by its chain ID before it reads the layer's tar)."""
    out = io.BytesIO()
    with (
        tarfile.open(archive) as src,
        tarfile.TarFile(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for info in src:
            if not info.name.endswith("/layer.tar"):
                dst.addfile(info, src.extractfile(info) if info.isfile() else None)
    return out.getvalue()


def _history_line(request: WriteRequest, files: int) -> str:
    short = request.source_id[:19]
    if request.base is None:
        return f"slimmer {__version__}: {files} entries kept from {short}"
    base = request.base
    return f"slimmer {__version__}: {files} entries of {short} on {base.ref} ({base.image_id[:19]})"


def _base_labels(base: BaseLayers | None) -> dict[str, str]:
    """The labels naming the base an image is written on (none on scratch)."""
    if base is None:
        return {}
    labels = {OCI_BASE_NAME: base.ref, BASE_ID_LABEL: base.image_id}
    if base.digest:
        labels[OCI_BASE_DIGEST] = base.digest.partition("@")[2]
    return labels


@dataclass(frozen=True)
class Archive:
    """A `docker save`-format archive written by `assemble_archive`."""

    archive: Path
    image_id: str
    layer_bytes: int  # the uncompressed tar bytes of every layer


def assemble_archive(layers: Sequence[Path], config: Mapping[str, Any], archive: Path) -> Archive:
    """A loadable `docker save` archive at `archive`: the layer tars in order (their
    `rootfs.diff_ids` in `config` must name them) and the config, written canonically
    so the same inputs give the same image ID. The archive is validated before it is
    returned (the last layer, slimmer's own, must be sorted too); a violation is an
    internal error. Each diff ID in `config` must be the hash of its layer's bytes as
    written (the engine checks it when it loads the archive)."""
    data = canonical_json(config)
    config_hex = hashlib.sha256(data).hexdigest()
    # each layer is named by its diff ID, which the config already holds: no layer is
    # read again for it
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    if len(diff_ids) != len(layers):
        raise SlimError(
            f"internal error: writing {archive.name}: {len(layers)} layers, "
            f"{len(diff_ids)} diff IDs"
        )
    names = [f"{str(d).removeprefix('sha256:')}/layer.tar" for d in diff_ids]
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": None, "Layers": names}]
    with tarfile.TarFile(archive, "w", format=tarfile.PAX_FORMAT, copybufsize=COPY_CHUNK) as tf:
        _add_bytes(tf, f"{config_hex}.json", data)
        for layer, name in dict(zip(layers, names, strict=True)).items():
            tf.add(str(layer), arcname=name, filter=_plain)
        _add_bytes(tf, "manifest.json", canonical_json(manifest))
    _must_validate(archive, len(layers) - 1)
    size = sum(layer.stat().st_size for layer in layers)
    return Archive(archive, "sha256:" + config_hex, size)


def _must_validate(archive: Path, sorted_from: int) -> None:
    # not hashed again: every diff ID was taken from the bytes as they were written
    # (`_Hashing`, `sha256_file`, a base's own), and the engine checks it on load
    checked = validate_archive("docker-archive", archive, sorted_from=sorted_from, digests=False)
    if not checked.valid:
        raise SlimError(
            f"internal error: writing {archive.name}: the written image is invalid: "
            f"{checked.violations[0]}"
        )


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o644
    return info


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


class _Hashing:
    """A writable sink that also takes the SHA-256 of what goes through it (the layer's
    diff ID, without reading the layer again)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._out.write(data)

    def tell(self) -> int:
        return self._out.tell()

    def flush(self) -> None:
        self._out.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
