"""Compressed sizes of the two images of a run, computed beside the run.

The full gzip size of a layer costs about a second per 30 MB of layer on one
core, more than the rest of a run on a large image; the run takes instead the
sampled estimate of `slimmer.image.compressed.estimate_layer` (a deterministic
sample of at most 32 MiB a layer; within 2 % of the full size on every fixture)
or the stored size of a layer kept compressed. zlib lets go of the interpreter
lock while it compresses, so a thread does it while the run waits on its
containers (tracing, verifying). The thread reads an archive that the run keeps
on disk until the size is known, and stops early when the run ends first.

Layers are sized by as many threads as there are cores (each with its own handle
on the archive), largest first, and a sampled layer's samples are dealt out among
them (`size_share`): while the run waits on its containers, both cores of a small
machine compress, even for an image of one layer, and the size is known sooner.

The source of an engine image is sized earlier still (`CompressedSize.while_saved`):
its thread is told each layer's place in the spool as the reader's parse meets it
(`image.follow.LayerSeen`) and samples that layer through a `GrowingSlice` while
the engine saves the rest, on the core the save leaves idle; once the save has
ended, what it did not reach is sized as above. Each layer's figure is the one
`estimate_layer` gives the finished archive.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, cast

from slimmer.errors import SlimError
from slimmer.image.archive import LayerSource, open_archive
from slimmer.image.compressed import (
    SAMPLES,
    Compressed,
    Share,
    combine_shares,
    leading_share,
    size_share,
)
from slimmer.image.follow import GrowingSlice

FOLLOW_NICENESS = 10  # added to the niceness of the thread that samples during the save


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority by FOLLOW_NICENESS (Linux sets it per
    thread; elsewhere, or where it is refused, nothing changes)."""
    if sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + FOLLOW_NICENESS)
    except OSError:
        pass


class _Stopped(Exception):
    """The run ended before the size was known."""


class CompressedSize:
    """The total gzip size of every layer of the archive at `path` (each layer's
    `estimate_layer`), computed in a daemon thread started at once. `result()` waits
    for it; None when it failed."""

    def __init__(
        self,
        path: Path,
        transport: str = "docker-archive",
        known: Compressed | None = None,
        following: bool = False,
    ) -> None:
        self.path = path  # the archive, kept on disk by the run until it ends
        self._transport = transport
        self._stop = threading.Event()
        self._total: Compressed | None = known  # known: from the read cache, no thread
        self.known = known is not None
        # following a save: (spool, offset, size) of each layer seen; None once saved
        self._seen: queue.SimpleQueue[tuple[Path, int, int] | None] | None = (
            queue.SimpleQueue() if following else None
        )
        self._saved = threading.Event()
        # samples taken before the save ended (a layer sized whole counts SAMPLES)
        self.sampled_while_saving = 0
        self._thread = threading.Thread(target=self._run, name="slimmer-gzip", daemon=True)
        if known is None:
            self._thread.start()

    @classmethod
    def while_saved(cls, archive: Path) -> CompressedSize:
        """The size of an image the engine is saving, to be kept at `archive` once
        saved, each layer sized as its bytes arrive: tell it `layer_seen` and, once the
        save has ended, `saved`."""
        return cls(archive, following=True)

    def layer_seen(self, spool: Path, offset: int, size: int) -> None:
        """The layer tar at `offset` (`size` bytes) of `spool` is being written."""
        if self._seen is not None and not self._saved.is_set():
            self._seen.put((spool, offset, size))

    def saved(self, archive: Path) -> None:
        """The save has ended: the whole archive is at `archive`."""
        if self._seen is not None:
            self.path = archive
            self._saved.set()
            self._seen.put(None)

    def _run(self) -> None:
        try:
            early = self._followed() if self._seen is not None else {}
            layers = open_archive(self._transport, self.path).layers
            self._total = sum(self._sized(layers, early), Compressed(0, "stored"))
        except (_Stopped, SlimError, OSError, EOFError):
            self._total = None

    def _followed(self) -> dict[int, tuple[Share, int]]:
        """`_follow` in a thread of its own at a lower priority: while the save goes on,
        the save, its parse and the traced app are the run's critical path, and the
        sampling takes only what they leave (the threads sizing the rest after the
        save are this one's, at the usual priority)."""
        with ThreadPoolExecutor(
            1, thread_name_prefix="slimmer-gzip-follow", initializer=_lower_priority
        ) as helper:
            return helper.submit(self._follow).result()

    def _follow(self) -> dict[int, tuple[Share, int]]:
        """The leading share of each layer seen before the save ended, sized through a
        `GrowingSlice` of the spool until it ends (`leading_share`), by the layer's
        offset: the share and how many samples it holds. A layer this cannot size is
        left to `_sized`."""
        assert self._seen is not None
        early: dict[int, tuple[Share, int]] = {}
        while True:
            item = self._seen.get()
            if self._stop.is_set():
                raise _Stopped
            if item is None:  # saved (a stop sets its event first)
                return early
            if self._saved.is_set():  # what is left is sized by a thread per core
                continue
            spool, offset, size = item
            layer = LayerSource(len(early), "", self._slice(spool, offset, size), size)
            try:
                early[offset] = leading_share(layer, self._saved.is_set)
                self.sampled_while_saving += early[offset][1]
            except SlimError:
                if self._stop.is_set():
                    raise _Stopped from None

    def _slice(self, spool: Path, offset: int, size: int) -> Callable[[], IO[bytes]]:
        def opened() -> IO[bytes]:
            return cast(IO[bytes], GrowingSlice(spool, offset, size, self._saved, self._stop))

        return opened

    def _sized(
        self, layers: tuple[LayerSource, ...], early: dict[int, tuple[Share, int]]
    ) -> list[Compressed]:
        """Every layer's figure: what `early` holds of it (by its place in the archive),
        and the rest of its samples dealt out to a thread per core, largest layer first."""
        workers = max(1, os.cpu_count() or 1)
        shares: dict[int, list[Share]] = {}
        todo: queue.SimpleQueue[tuple[int, int, int, int]] = queue.SimpleQueue()
        for index in sorted(range(len(layers)), key=lambda i: -layers[i].stored_bytes):
            origin = layers[index].origin
            lead, taken = early.get(origin[1], (None, 0)) if origin is not None else (None, 0)
            shares[index] = [lead] if lead is not None else []
            if taken < SAMPLES:
                for share in range(workers):
                    todo.put((index, share, workers, taken))
        with ThreadPoolExecutor(workers, thread_name_prefix="slimmer-gzip") as pool:
            for done in pool.map(self._worker, [todo] * workers):
                for index, part in done:
                    shares[index].append(part)
        return [combine_shares(layers[i], shares[i]) for i in range(len(layers))]

    def _worker(
        self, todo: queue.SimpleQueue[tuple[int, int, int, int]]
    ) -> list[tuple[int, Share]]:
        """The shares of the layers' work this thread takes from `todo`, read through a
        handle on the archive of its own (a tar member's reads seek the archive's one
        file object), opened once for all of them."""
        layers = open_archive(self._transport, self.path).layers
        done: list[tuple[int, Share]] = []
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                index, share, shares, skip = todo.get_nowait()
            except queue.Empty:
                return done
            done.append((index, size_share(layers[index], share, shares, skip=skip)))

    def result(self) -> Compressed | None:
        """The size, waiting for the thread to finish."""
        if self._thread.is_alive():
            self._thread.join()
        return self._total

    def stop(self) -> None:
        """End the thread early (the run is over, or its archive is going away)."""
        self._stop.set()
        if self._seen is not None:
            self._seen.put(None)  # a thread waiting for the next layer
        if self._thread.is_alive():
            self._thread.join()
