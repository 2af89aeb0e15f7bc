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
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slimmer.errors import SlimError
from slimmer.image.archive import open_archive
from slimmer.image.compressed import Compressed, Share, combine_shares, size_share


class _Stopped(Exception):
    """The run ended before the size was known."""


class CompressedSize:
    """The total gzip size of every layer of the archive at `path` (each layer's
    `estimate_layer`), computed in a daemon thread started at once. `result()` waits
    for it; None when it failed."""

    def __init__(
        self, path: Path, transport: str = "docker-archive", known: Compressed | None = None
    ) -> None:
        self.path = path  # the archive, kept on disk by the run until it ends
        self._transport = transport
        self._stop = threading.Event()
        self._total: Compressed | None = known  # known: from the read cache, no thread
        self.known = known is not None
        self._thread = threading.Thread(
            target=self._run, args=(path,), name="slimmer-gzip", daemon=True
        )
        if known is None:
            self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            layers = open_archive(self._transport, path).layers
            workers = max(1, os.cpu_count() or 1)
            todo: queue.SimpleQueue[tuple[int, int, int]] = queue.SimpleQueue()
            for index in sorted(range(len(layers)), key=lambda i: -layers[i].stored_bytes):
                for share in range(workers):
                    todo.put((index, share, workers))
            shares: dict[int, list[Share]] = {i: [] for i in range(len(layers))}
            with ThreadPoolExecutor(workers, thread_name_prefix="slimmer-gzip") as pool:
                for done in pool.map(self._worker, [todo] * workers):
                    for index, part in done:
                        shares[index].append(part)
            sizes = (combine_shares(layers[i], shares[i]) for i in range(len(layers)))
            self._total = sum(sizes, Compressed(0, "stored"))
        except (_Stopped, SlimError, OSError, EOFError):
            self._total = None

    def _worker(self, todo: queue.SimpleQueue[tuple[int, int, int]]) -> list[tuple[int, Share]]:
        """The shares of the layers' work this thread takes from `todo`, read through a
        handle on the archive of its own (a tar member's reads seek the archive's one
        file object), opened once for all of them."""
        layers = open_archive(self._transport, self.path).layers
        done: list[tuple[int, Share]] = []
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                index, share, shares = todo.get_nowait()
            except queue.Empty:
                return done
            done.append((index, size_share(layers[index], share, shares)))

    def result(self) -> Compressed | None:
        """The size, waiting for the thread to finish."""
        if self._thread.is_alive():
            self._thread.join()
        return self._total

    def stop(self) -> None:
        """End the thread early (the run is over, or its archive is going away)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
