"""Reading a `docker save` archive while the engine is still writing it.

The engine writes a legacy `docker save` archive layer by layer (`<id>/layer.tar`
members, each a plain tar), and its `manifest.json`, which says which member is
which layer, last. Parsing each layer as its bytes arrive, instead of after the
whole save, takes the parse off the wait for the save: `save_and_parse` runs the
save in a thread and follows the growing file in the caller's thread, parsing
every `*/layer.tar` member into `LayerChanges` (with the lean reader of
`image.tarscan`), keyed by where its bytes start in the file. Once the save has
ended, the reader opens the archive as usual and takes each layer's changes by
that offset (`take`), giving them their layer's index and digest; a layer not
parsed here (an archive of another shape, a member compressed, a layer holding
what only `tarfile` reads) is read the usual way then.

An error while following (a layer the usual rules refuse, a member cut short)
drops everything parsed early: the usual read of the finished archive then
reports the error with the layer's name.

A caller can also be told where each layer's tar lies in the file as soon as its
header is read (`LayerSeen`), and read it through a `GrowingSlice`, whose reads
wait for the bytes: the run's compressed-size estimate samples each source layer
while the engine is still saving the next (`pipeline.compression`).
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from slimmer.errors import ImageReadError
from slimmer.image import tarscan
from slimmer.image.filetree import LayerChanges, WantContent, read_member
from slimmer.image.store import ContentStore

POLL = 0.02  # seconds between looks at a file that has not grown
_PLACEHOLDER = "sha256:"  # the digest of a layer parsed before the manifest named it

LayerSeen = Callable[[Path, int, int], None]
"""Told (file, offset, size) of each `*/layer.tar` member of a save being written to
that file, once its header is read."""


class Growing(io.RawIOBase):
    """A file being written: a read at its end waits for more bytes, until `done`."""

    def __init__(self, path: Path, done: threading.Event) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115  # closed by close()
        self._done = done

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while True:
            n = self._fh.readinto(buffer)
            if n:
                return n
            if self._done.is_set():  # bytes written between the read and the check
                return self._fh.readinto(buffer) or 0
            self._done.wait(POLL)

    def close(self) -> None:
        self._fh.close()
        super().close()


class GrowingSlice(io.RawIOBase):
    """The `size` bytes at `offset` of a file still being written, seekable: a read
    waits until its bytes are written. Once `ended` (the writer is done) a read past
    the file's end is an EOFError; once `stop` is set, any read is."""

    def __init__(
        self, path: Path, offset: int, size: int, ended: threading.Event, stop: threading.Event
    ) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115  # closed by close()
        self._offset, self._size, self._pos = offset, size, 0
        self._ended, self._stop = ended, stop

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if self._stop.is_set():
            raise EOFError("stopped")
        if want <= 0:
            return 0
        end = self._offset + self._pos + want
        while os.fstat(self._fh.fileno()).st_size < end:
            if self._stop.is_set():
                raise EOFError("stopped")
            if self._ended.is_set() and os.fstat(self._fh.fileno()).st_size < end:
                raise EOFError("the file ended inside the slice")
            self._stop.wait(POLL)
        self._fh.seek(self._offset + self._pos)
        n = self._fh.readinto(memoryview(buffer)[:want])
        self._pos += n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def save_and_parse(
    save: Callable[[str, Path], str],
    name: str,
    spool: Path,
    store: ContentStore,
    want: WantContent,
    seen: LayerSeen | None = None,
) -> tuple[str, dict[int, LayerChanges]]:
    """`save(name, spool)` in a thread while the caller parses the layers it writes:
    the image ID, and the changes of each layer parsed, by its offset in `spool`
    (`seen`, when given, is told each layer's place as its parse starts).
    An error of the save is raised here, once the parse has stopped."""
    spool.touch()
    done = threading.Event()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["id"] = save(name, spool)
        except BaseException as exc:  # raised in the caller's thread below
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name="slimmer-save", daemon=True)
    thread.start()
    try:
        early = _parse_following(spool, done, store, want, seen)
    except (ImageReadError, tarfile.TarError, EOFError, OSError, ValueError):
        early = {}  # the usual read of the finished archive says what is wrong
    # the save ends (or fails) before its file is read again; a Ctrl-C here does not
    # wait for it (the caller removes the spool, and the process ends)
    thread.join()
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    return str(outcome["id"]), early


def _parse_following(
    spool: Path,
    done: threading.Event,
    store: ContentStore,
    want: WantContent,
    seen: LayerSeen | None,
) -> dict[int, LayerChanges]:
    early: dict[int, LayerChanges] = {}
    with io.BufferedReader(Growing(spool, done), 1 << 20) as stream:
        try:
            for info, data in tarscan.members(stream):
                if not (info.isfile() and info.name.endswith("/layer.tar")):
                    continue
                # guessed: the n-th is layer n (a legacy save writes the layer
                # directories sorted by their v1 IDs, so `take` often corrects it)
                index, origin = len(early), (spool, info.offset_data)
                if seen is not None:
                    seen(spool, info.offset_data, info.size)
                changes = _scan_layer(data, index, store, want, origin)
                if changes is not None:
                    early[info.offset_data] = changes
        except tarscan.Unusual:
            pass  # the layers not parsed here are read the usual way
    return early


def _scan_layer(
    data: tarscan.Bounded,
    index: int,
    store: ContentStore,
    want: WantContent,
    origin: tuple[Path, int],
) -> LayerChanges | None:
    """One layer tar read with `tarscan`; None when it holds what only `tarfile`
    reads (that layer is then read the usual way, after the save)."""
    changes = LayerChanges(index, _PLACEHOLDER)
    try:
        for info, member in tarscan.members(data):
            read_member(info, _opener(member), changes, store, want, origin)
    except tarscan.Unusual:
        return None
    return changes


def _opener(data: tarscan.Bounded) -> Callable[[tarfile.TarInfo], tarscan.Bounded]:
    def opened(_: tarfile.TarInfo) -> tarscan.Bounded:
        return data

    return opened


def take(
    early: dict[int, LayerChanges], offset: int, index: int, digest: str
) -> LayerChanges | None:
    """The changes parsed early of the layer whose tar starts at `offset` in the spool,
    as layer `index` (`digest`) of the image; None when it was not parsed early."""
    changes = early.pop(offset, None)
    if changes is None:
        return None
    where = f"layer {index + 1} ({digest[:19]})"
    placeholder = f"layer {changes.index + 1} ({_PLACEHOLDER})"
    changes.warnings[:] = [
        replace(w, where=where) if w.where == placeholder else w for w in changes.warnings
    ]
    if changes.index != index:  # each entry records the layer it came from
        # (a hardlink is known by the identity of its entry: moved together)
        moved = {id(e): replace(e, layer=index) for e in changes.entries}
        changes.hardlinks[:] = [(moved[id(e)], to) for e, to in changes.hardlinks]
        changes.entries[:] = [moved[id(e)] for e in changes.entries]
    changes.index, changes.digest = index, digest
    return changes
