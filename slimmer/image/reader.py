"""Read an image, from the engine, a registry or a file, into config + layers + merged tree.

`open_image("app:1")` streams `docker save` from the engine into a spool file
in a private work directory, then reads it like `docker-archive:PATH`; the
three file transports need no engine at all, and neither does
`registry:HOST/REPO:TAG`, read through the `remote` opener the caller gives
(slimmer.registry.remote), its layer blobs streamed as they are opened. Layers are streamed one at a
time; only file metadata and (when asked) file bytes in the on-disk
`ContentStore` are kept.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, cast

from slimmer.errors import UsageError
from slimmer.image.archive import ArchiveImage, LayerSource, open_archive
from slimmer.image.filetree import (
    FileTree,
    LayerChanges,
    WantContent,
    apply_layers,
    keep_all,
    keep_none,
)
from slimmer.image.follow import LayerSeen, save_and_parse, take
from slimmer.image.meter import MeteredReader
from slimmer.image.platforms import Platform
from slimmer.image.store import ContentStore
from slimmer.model import ImageConfig, ImageRef, Layer, Progress, Warning_, metered

TRANSPORTS = ("docker-archive", "oci-archive", "oci", "registry")


def parse_ref(text: str) -> ImageRef:
    """`docker-archive:PATH`, `oci-archive:PATH`, `oci:DIR`, `registry:REF`, or an engine
    reference."""
    text = text.strip()
    if not text:
        raise UsageError("image reference is empty")
    for transport in TRANSPORTS:
        prefix = transport + ":"
        if text.startswith(prefix) and len(text) > len(prefix):
            return ImageRef(transport, text[len(prefix) :])
    return ImageRef("engine", text)


@dataclass
class Image:
    """An image read into memory (metadata) and a content store (bytes)."""

    ref: ImageRef
    id: str
    config: ImageConfig
    layers: tuple[Layer, ...]
    tree: FileTree
    store: ContentStore
    warnings: tuple[Warning_, ...] = ()
    repo_tags: tuple[str, ...] = ()
    _workdir: Path | None = field(default=None, repr=False)
    _on_close: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        """Bytes of all layers' members (what `docker history` and dive add up)."""
        return sum(layer.size for layer in self.layers)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        if self._workdir is not None:
            if self.store.root.is_relative_to(self._workdir):  # this image's own store:
                self.store.close()  # its open files too (a span holds the saved archive)
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Image:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


EngineSaver = Callable[[str, Path], str]
"""Saves an engine image into a file; returns the image ID."""

RemoteOpener = Callable[[str], tuple[ArchiveImage, Callable[[], None]]]
"""Opens a registry image (`HOST/REPO:TAG`): the image, and what closes its connection."""


def open_image(
    ref: str | ImageRef,
    *,
    save: EngineSaver | None = None,
    remote: RemoteOpener | None = None,
    want: WantContent = keep_none,
    workdir: Path | None = None,
    store: ContentStore | None = None,
    progress: Progress | None = None,
    platform: Platform | None = None,
    layer_seen: LayerSeen | None = None,
) -> Image:
    """Read `ref` into an `Image`. Engine references need `save` (see engine.saver),
    registry references `remote` (see registry.remote.remote_opener, which picks the
    platform of an index itself); of an OCI layout's index, the image of `platform`
    (default: this host's) is read.
    `progress`, when given, is told the layer bytes read as a `Transfer`;
    `layer_seen`, where each layer lies in the spool of an engine image's save, as
    the save goes on (image.follow).

    File bytes go into `store` when given (a shared, longer-lived store, see
    `slimmer.image.cache`), else into a private store removed on `close()`.
    """
    image_ref = parse_ref(ref) if isinstance(ref, str) else ref
    work = Path(tempfile.mkdtemp(prefix="slimmer-", dir=workdir))
    try:
        store = store if store is not None else ContentStore(work / "store")
        if image_ref.transport == "engine":
            if save is None:
                raise UsageError(f"reading {image_ref}: no engine to read it from")
            spool = work / "image.tar"
            # each layer parsed while the save goes on (image.follow)
            image_id, early = save_and_parse(save, image_ref.name, spool, store, want, layer_seen)
            archive = _metered(open_archive("docker-archive", spool), progress)
            image = _read(image_ref, image_id, archive, store, want, work, _taker(early))
            spool.unlink(missing_ok=True)
            return image
        if image_ref.transport == "registry":
            return _read_remote(image_ref, remote, store, want, work, progress)
        archive = open_archive(image_ref.transport, Path(image_ref.name), platform)
        archive = _metered(archive, progress)
        return _read(image_ref, archive.config_digest, archive, store, want, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _read_remote(
    ref: ImageRef,
    remote: RemoteOpener | None,
    store: ContentStore,
    want: WantContent,
    work: Path,
    progress: Progress | None,
) -> Image:
    if remote is None:
        raise UsageError(f"reading {ref}: no registry client to read it with")
    archive, close = remote(ref.name)
    try:
        image = _read(ref, archive.config_digest, _metered(archive, progress), store, want, work)
    except BaseException:
        close()
        raise
    image._on_close = close
    return image


def _metered(archive: ArchiveImage, progress: Progress | None) -> ArchiveImage:
    """`archive` with layers that count the bytes read from them into `progress`."""
    if progress is None:
        return archive
    add = metered(progress, "layers", sum(src.stored_bytes for src in archive.layers))

    def opener(src: LayerSource) -> Callable[[], IO[bytes]]:
        return lambda: cast(IO[bytes], MeteredReader(src.opener(), add))

    layers = tuple(replace(src, opener=opener(src)) for src in archive.layers)
    return replace(archive, layers=layers)


def _taker(early: dict[int, LayerChanges]) -> Callable[[LayerSource], LayerChanges | None]:
    def parsed(src: LayerSource) -> LayerChanges | None:
        if src.origin is None:
            return None
        return take(early, src.origin[1], src.index, src.digest)

    return parsed


def _read(
    ref: ImageRef,
    image_id: str,
    archive: ArchiveImage,
    store: ContentStore,
    want: WantContent,
    work: Path,
    parsed: Callable[[LayerSource], LayerChanges | None] = lambda _: None,
) -> Image:
    config = ImageConfig(archive.config)
    tree, layers = apply_layers(archive.layers, config, store, want, parsed)
    tree.attach_store(store)
    return Image(
        ref=ref,
        id=image_id,
        config=config,
        layers=layers,
        tree=tree,
        store=store,
        warnings=tuple(tree.warnings),
        repo_tags=archive.repo_tags,
        _workdir=work,
    )


def open_with_layers(
    ref: str, save: EngineSaver, workdir: Path, want: WantContent = keep_all
) -> tuple[Image, tuple[Path, ...]]:
    """Read an engine image and also keep its layer tars, uncompressed and byte for byte
    (each hashes to its diff ID), in `workdir`: what writing on a base needs."""
    image_ref = parse_ref(ref)
    work = Path(tempfile.mkdtemp(prefix="slimmer-base-", dir=workdir))
    try:
        spool = work / "image.tar"
        image_id = save(image_ref.name, spool)
        archive = open_archive("docker-archive", spool)
        files = []
        for layer in archive.layers:
            dest = work / f"layer-{layer.index}.tar"
            with layer.open() as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            files.append(dest)
        image = _read(image_ref, image_id, archive, ContentStore(work / "store"), want, work)
        spool.unlink(missing_ok=True)
        return image, tuple(files)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
