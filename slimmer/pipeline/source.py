"""Where a slimming run's source image comes from, and which image its containers run.

An engine image is read with `docker save` (through the read cache when there is
one) and run as it is. An archive (`docker-archive:`, `oci-archive:`, `oci:`) is
read from its file and, to run it, loaded as a copy flattened to one layer: every
path of its merged tree under the source's own config, labelled temporary. The
engine's overlay2 driver stacks at most 125 layers, so a deeper image can only run
flattened; and the copy holds exactly the merged tree the planner reads, so what
the probes see is what the slim image is cut from.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from slimmer.engine_api import ContainerEngine
from slimmer.image.cache import ReadCache
from slimmer.image.filetree import keep_all
from slimmer.image.reader import Image, open_image
from slimmer.image.writer import WriteRequest, kept_entries, write_image
from slimmer.model import MANAGED_LABEL, ImageRef, Progress
from slimmer.pipeline.compression import CompressedSize
from slimmer.pipeline.transfers import metered_load, metered_saver, write_meter


@dataclass(frozen=True)
class Source:
    """The source of a run, read."""

    image: Image
    run_id: str  # the image its tracing containers run
    size_bytes: int  # as the engine counts it; of an archive, its layers' bytes
    gzip: CompressedSize | None  # its layers' gzip size, computed beside the run
    loaded: str | None = None  # a flattened copy this run loaded to run (an archive)
    cached: bool = False  # taken from the read cache (no `docker save`)


def read_engine_image(
    engine: ContainerEngine,
    ref: ImageRef,
    cache: ReadCache | None,
    work: Path,
    progress: Progress,
) -> Source:
    """An engine image, read through `cache` when there is one. An entry of a run that
    ended before the image's gzip size was known is read again: the size needs the
    image's layer tars, which the cache lacks."""
    info = engine.inspect_image(ref.name)
    store = None
    if cache is not None:
        cached = cache.load(ref, info.id)
        if cached is not None and cache.compressed(info.id) is not None:
            return Source(cached, cached.id, info.size, None, cached=True)
        if cached is not None:
            cached.close()
        store = cache.blobs
    # the saved archive's gzip size is computed beside the save, the parse and the
    # rest of the run: each layer as soon as the save has written it
    sizing = CompressedSize.while_saved(work / "source.tar")
    save = metered_saver(engine, progress, keep=sizing.path, saved=sizing.saved)
    try:
        image = open_image(
            ref,
            save=save,
            want=keep_all,
            workdir=work,
            store=store,
            progress=progress,
            layer_seen=sizing.layer_seen,
        )
    except BaseException:
        sizing.stop()
        raise
    if cache is not None:
        cache.save(image)
    return Source(image, image.id, info.size, sizing)


def read_archive_image(
    engine: ContainerEngine, ref: ImageRef, work: Path, progress: Progress
) -> Source:
    """An archive, read from its file and loaded flattened to run (see the module)."""
    image = open_image(ref, want=keep_all, workdir=work, progress=progress)
    try:
        out = Path(tempfile.mkdtemp(prefix="flat-", dir=work))
        entries = kept_entries(image.tree, (e.path for e in image.tree.walk()), image.store)
        labels = {MANAGED_LABEL: "temporary"}
        taken = write_meter(entries, progress)
        request = WriteRequest(
            tuple(entries), image.store, image.config, image.id, out, labels, taken=taken
        )
        written = write_image(request)
        existed = engine.image_exists(written.image_id)  # a run beside this one loaded it
        if not existed:
            metered_load(engine, written.archive, progress)
        os.unlink(written.archive)
    except BaseException:
        image.close()
        raise
    gzip = CompressedSize(Path(ref.name), ref.transport)
    loaded = None if existed else written.image_id
    return Source(image, written.image_id, image.size, gzip, loaded)
