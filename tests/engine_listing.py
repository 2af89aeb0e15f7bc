"""An oracle for what an image holds, independent of slimmer's reader: a container is
created (never started) from the image and `get_archive(container, "/")` streams the
merged filesystem the engine itself stacked; every member is listed with its type,
size, mode, owner, link target and the SHA-256 of its bytes. The paths the engine's
init layer adds to every container (moby `daemon/initlayer`: /.dockerenv,
/etc/hosts, ... and /dev, /proc, /sys) are left out."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from slimmer.engine import Engine

# What the engine's init layer puts into every container (moby daemon/initlayer), and
# the directories it creates to hold them: not part of either image.
INIT_LAYER = frozenset(
    {"/.dockerenv", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab", "/etc"}
    | {"/dev", "/proc", "/sys"}
)


@dataclass(frozen=True)
class Listed:
    """One member of the engine's merged filesystem tar."""

    kind: str
    size: int
    mode: int
    owner: str
    link: str
    digest: str


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's archive stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, out: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buf = chunk
        n = min(len(out), len(self._buf))
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _norm(name: str) -> str:
    return "/" + name.strip("/") if name.strip("/") else "/"


def outside_init(path: str) -> bool:
    top = "/" + path.split("/")[1]
    return path not in INIT_LAYER and top not in ("/dev", "/proc", "/sys")


def engine_listing(engine: Engine, image: str) -> dict[str, Listed]:
    """The engine's merged filesystem of `image`, path -> `Listed` (init layer left out)."""
    # a command of its own: the container never starts, and an image without one
    # (a distroless base) can be listed too
    container = engine.create_container(image, command=["/never-started"])
    try:
        stream = io.BufferedReader(_Chunks(engine.get_archive(container, "/")), 1 << 20)
        with tarfile.open(fileobj=stream, mode="r|", errors="surrogateescape") as tf:
            listed = _list_members(tf)
    finally:
        engine.remove_container(container)
    assert container not in {item.id for item in engine.leftovers()}, "container left behind"
    return {p: e for p, e in listed.items() if p != "/" and outside_init(p)}


def _list_members(tf: tarfile.TarFile) -> dict[str, Listed]:
    out: dict[str, Listed] = {}
    for m in tf:
        path, owner, mode = _norm(m.name), f"{m.uid}:{m.gid}", m.mode & 0o7777
        if m.islnk():  # the same inode as a member listed before it
            target = out[_norm(m.linkname)]
            out[path] = Listed("file", target.size, mode, owner, "", target.digest)
        elif m.isreg():
            out[path] = Listed("file", m.size, mode, owner, "", _sha256(tf, m))
        else:
            link = m.linkname if m.issym() else ""
            out[path] = Listed(_KINDS[m.type], 0, mode, owner, link, "")
    return out


_KINDS = {
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.FIFOTYPE: "fifo",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
}


def _sha256(tf: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    fh = tf.extractfile(member)
    assert fh is not None
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def expected_changes(a: Mapping[str, Listed], b: Mapping[str, Listed]) -> set[str]:
    """Paths in both listings that differ, by the rules `slim diff` states: a symlink's
    mode means nothing; a file's bytes count, its time does not."""
    out = set()
    for path in a.keys() & b.keys():
        x, y = a[path], b[path]
        if x.kind == y.kind == "symlink":
            x, y = Listed(**{**x.__dict__, "mode": 0}), Listed(**{**y.__dict__, "mode": 0})
        if x != y:
            out.add(path)
    return out


def expected_sets(
    engine: Engine, a_image: str, b_image: str
) -> tuple[set[str], set[str], set[str]]:
    """The paths a diff of A and B must call added, removed and changed, from the
    engine's own listings of both images."""
    a, b = engine_listing(engine, a_image), engine_listing(engine, b_image)
    return set(b.keys() - a.keys()), set(a.keys() - b.keys()), expected_changes(a, b)
