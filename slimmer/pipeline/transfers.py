"""The three long byte moves of a run, metered for the progress bars: the image read
from the engine (`docker save`), the layer written, and the archive loaded back."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, cast

from slimmer.engine_api import ContainerEngine
from slimmer.image.meter import MeteredReader, MeteredWriter, content_bytes, metered_entries
from slimmer.image.reader import EngineSaver
from slimmer.model import FileEntry, Progress, metered


def metered_saver(
    engine: ContainerEngine, progress: Progress, keep: Path | None = None
) -> EngineSaver:
    """Like `engine.saver`, telling `progress` the bytes saved (of the engine's size of
    the image: the save's tar headers make the count end a little past it). With
    `keep`, the saved archive is also linked there, to outlive the reader's spool."""

    def save(ref: str, dest: Path) -> str:
        info = engine.inspect_image(ref)
        add = metered(progress, "from the engine", info.size)
        with open(dest, "wb") as out:
            engine.save_image(info.id, cast(IO[bytes], MeteredWriter(out, add)))
        if keep is not None:
            os.link(dest, keep)
        return info.id

    return save


def metered_write(entries: Iterable[FileEntry], progress: Progress) -> Iterator[FileEntry]:
    """`entries`, counting their file bytes into `progress` as the writer takes them."""
    listed = list(entries)
    add = metered(progress, "layer", content_bytes(listed))
    return metered_entries(listed, add)


def metered_load(engine: ContainerEngine, archive: Path, progress: Progress) -> None:
    """Load `archive` into the engine, telling `progress` the bytes sent."""
    add = metered(progress, "into the engine", archive.stat().st_size)
    with open(archive, "rb") as fh:
        engine.load_image(cast(IO[bytes], MeteredReader(fh, add)))
