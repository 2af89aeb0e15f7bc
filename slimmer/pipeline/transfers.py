"""The three long byte moves of a run, metered for the progress bars: the image read
from the engine (`docker save`), the layer written, and the archive loaded back."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, cast

from slimmer.engine_api import ContainerEngine
from slimmer.image.meter import MeteredReader, MeteredWriter, content_bytes
from slimmer.image.reader import EngineSaver
from slimmer.model import FileEntry, Progress, metered


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
