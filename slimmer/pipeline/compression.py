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
on the archive), largest first: while the run waits on its containers, both cores
of a small machine compress, and the size is known sooner.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slimmer.errors import SlimError
from slimmer.image.archive import open_archive
from slimmer.image.compressed import Compressed, estimate_layer


class _Stopped(Exception):
    """The run ended before the size was known."""


class CompressedSize:
    """The total gzip size of every layer of the archive at `path` (each layer's
    `estimate_layer`), computed in a daemon thread started at once. `result()` waits
    for it; None when it failed."""

    def __init__(self, path: Path, transport: str = "docker-archive") -> None:
        self.path = path  # the archive, kept on disk by the run until it ends
        self._transport = transport
        self._stop = threading.Event()
        self._total: Compressed | None = None
        self._thread = threading.Thread(
            target=self._run, args=(path,), name="slimmer-gzip", daemon=True
        )
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            layers = open_archive(self._transport, path).layers
            todo: queue.SimpleQueue[int] = queue.SimpleQueue()
            for index in sorted(range(len(layers)), key=lambda i: -layers[i].stored_bytes):
                todo.put(index)
            workers = max(1, min(os.cpu_count() or 1, len(layers)))
            with ThreadPoolExecutor(workers, thread_name_prefix="slimmer-gzip") as pool:
                sizes = pool.map(self._worker, [todo] * workers)
                self._total = sum(sizes, Compressed(0, "stored"))
        except (_Stopped, SlimError, OSError, EOFError):
            self._total = None

    def _worker(self, todo: queue.SimpleQueue[int]) -> Compressed:
        """The gzip size of the layers this thread takes from `todo`, read through a
        handle on the archive of its own (a tar member's reads seek the archive's one
        file object), opened once for all of them."""
        layers = open_archive(self._transport, self.path).layers
        total = Compressed(0, "stored")
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return total
            total = total + estimate_layer(layers[index])

    def result(self) -> Compressed | None:
        """The size, waiting for the thread to finish."""
        self._thread.join()
        return self._total

    def stop(self) -> None:
        """End the thread early (the run is over, or its archive is going away)."""
        self._stop.set()
        self._thread.join()
