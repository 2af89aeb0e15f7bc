"""The three long byte moves of a run, metered for the progress bars: the image read
from the engine (`docker save`), the layer written, and the image loaded back
(the whole archive, or the layer sent while it is written: `EarlyLoad`)."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO, cast

from slimmer.engine_api import ContainerEngine
from slimmer.errors import SlimError
from slimmer.image.follow import Growing
from slimmer.image.meter import MeteredReader, MeteredWriter, content_bytes
from slimmer.image.reader import EngineSaver
from slimmer.image.writer import without_layers
from slimmer.model import MANAGED_LABEL, FileEntry, Progress, metered
from slimmer.pipeline.beside import Beside

CHUNK = 1 << 20  # bytes of the layer sent at a time


def metered_saver(
    engine: ContainerEngine,
    progress: Progress,
    keep: Path | None = None,
    saved: Callable[[Path], None] | None = None,
) -> EngineSaver:
    """Like `engine.saver`, telling `progress` the bytes saved (of the engine's size of
    the image: the save's tar headers make the count end a little past it). With
    `keep`, the saved archive is also linked there, to outlive the reader's spool, and
    `saved` is told that path as soon as the save ends (before the reader parses it)."""

    def save(ref: str, dest: Path) -> str:
        info = engine.inspect_image(ref)
        add = metered(progress, "from the engine", info.size)
        with open(dest, "wb") as out:
            engine.save_image(info.id, cast(IO[bytes], MeteredWriter(out, add)))
        if keep is not None:
            os.link(dest, keep)
            if saved is not None:
                saved(keep)
        return info.id

    return save


def write_meter(entries: Sequence[FileEntry], progress: Progress) -> Callable[[int], None]:
    """The writer's `taken` for a layer of `entries`: tells `progress` the file bytes
    written, of the layer's total."""
    return metered(progress, "layer", content_bytes(entries))


def metered_load(engine: ContainerEngine, archive: Path, progress: Progress) -> None:
    """Load `archive` into the engine, telling `progress` the bytes sent."""
    add = metered(progress, "into the engine", archive.stat().st_size)
    with open(archive, "rb") as fh:
        engine.load_image(cast(IO[bytes], MeteredReader(fh, add)))


class _CalledOff(Exception):
    """The early load was called off: the stream ends unfinished, and the engine
    refuses the cut tar (its import makes no image)."""


class EarlyLoad:
    """The slim layer sent to the engine while the writer writes it.

    `docker load` of a written archive has the engine unpack the whole archive into
    a spool directory, then register each layer from there, and can start only once
    the archive is written. Instead, the layer tar is streamed to the engine's
    `docker import` (`ContainerEngine.import_layer`) as it grows, so the engine
    registers it meanwhile; the image is then loaded from an archive of its config
    and manifest alone (`image.writer.without_layers`): the engine takes a layer it
    holds already by its chain ID, without a tar for it. The imported image, labelled
    temporary and told to `made` (the run removes what it made), is removed at once.

    Only for an image of one layer (on scratch): an import registers its layer on
    nothing. An engine that declines (Podman's load reads every layer's bytes), or
    any failure, leaves the caller to load the whole archive (`load` says False)."""

    def __init__(
        self,
        engine: ContainerEngine,
        layer: Path,
        total: int,
        progress: Progress,
        made: Callable[[str], None],
    ) -> None:
        self._engine = engine
        self._made = made
        self._written = threading.Event()  # the layer file is whole
        self._off = threading.Event()  # called off: the stream must not end cleanly
        layer.touch()  # the writer truncates and fills this same file
        self._sending = Beside(
            lambda tell: self._send(layer, total, tell), progress, "slimmer-import"
        )

    def _send(self, layer: Path, total: int, tell: Progress) -> str:
        """The imported image's ID; "" when the engine declined."""
        add = metered(tell, "into the engine", total)

        def chunks() -> Iterator[bytes]:
            with io.BufferedReader(Growing(layer, self._written), CHUNK) as fh:
                while True:
                    chunk = fh.read(CHUNK)
                    if self._off.is_set():  # the end too: a cut tar must not end cleanly
                        raise _CalledOff
                    if not chunk:
                        return
                    add(len(chunk))
                    yield chunk

        image_id = self._engine.import_layer(chunks(), {MANAGED_LABEL: "temporary"})
        if image_id is None:
            return ""
        self._made(image_id)
        return image_id

    def load(self, archive: Path, image_id: str) -> bool:
        """Once the layer is written: whether the image `image_id` of `archive` is now
        loaded from its layer sent early (else the caller loads `archive` whole)."""
        self._written.set()
        try:
            imported = self._sending.result()
        except (SlimError, OSError, _CalledOff):
            return False  # the whole archive's load says what is wrong, if anything
        if not imported:
            return False
        try:
            loaded = self._engine.load_image(without_layers(archive))
            return image_id in loaded or self._engine.image_exists(image_id)
        except SlimError:
            return False
        finally:
            with suppress(SlimError):  # else the run's own clean-up removes it
                self._engine.remove_image(imported, force=True)

    def call_off(self) -> None:
        """Stop sending (the write failed, or the image needs no load): the engine
        gets a cut tar and makes no image. Waits for the sending thread."""
        self._off.set()
        self._written.set()  # a read waiting for more bytes ends
        self._sending.cancel()
